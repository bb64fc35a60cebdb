//! `/v1/osimages`: imported OS media (created by copycds).

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use xcat3_common::model::{OsImageSpec, apply_patches, parse_patches};
use xcat3_db::resources as db;

use super::{ById, Fields, parse_fields};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params, Path};
use crate::view;
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/osimages",
            get(list).post(copycds).layer(DefaultBodyLimit::disable()),
        )
        .route("/osimages/build", axum::routing::post(genimage))
        .route("/osimages/get_by_id", get(by_id))
        .route("/osimages/{name}", get(show).patch(update).delete(remove))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(copycds, genimage, list, show, by_id, update, remove))]
pub struct Doc;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CopycdsQuery {
    /// The osimage name (default `<distro><version>-<arch>`).
    name: Option<String>,
    /// The ISO's file name, recorded as the image's `orig_name`.
    filename: Option<String>,
}

/// `POST /osimages?filename=F[&name=N]` with the ISO as the body
/// (`application/octet-stream`, streamed to disk): copycds. 201 with the
/// image (`result`: `created`, or `exists` for a medium imported before).
#[utoipa::path(post, path = "/v1/osimages", tag = "osimages", operation_id = "copycds", params(("filename" = Option<String>, Query, description = "the ISO's file name (recorded as orig_name)"), ("name" = Option<String>, Query, description = "osimage name (default DISTROVERSION-ARCH)")), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "an OS install ISO (Ubuntu, Debian, RHEL, Rocky, Alma, CentOS), unpacked under /install/NAME/ without mounting"), responses((status = 201, description = "the image: name, result (created | exists), distro, ver, arch, flavor, kernel, initrd", body = Object)))]
async fn copycds(
    State(st): State<AppState>,
    Params(q): Params<CopycdsQuery>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let install_dir = std::path::PathBuf::from(&st.config.api.install_dir);
    let incoming = install_dir.join(".incoming");
    let io = |e: std::io::Error| {
        ApiError::internal(format!("storing the upload in {}: {e}", incoming.display()))
    };
    tokio::fs::create_dir_all(&incoming).await.map_err(io)?;
    let upload = incoming.join(format!("{}.iso", uuid::Uuid::new_v4()));
    // Removed however this request ends, a dropped connection included.
    let _upload_guard = crate::copycds::RemoveOnDrop::new(upload.clone());
    let stored = async {
        let mut file = tokio::fs::File::create(&upload).await.map_err(io)?;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("reading the upload: {e}")))?;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        Ok::<_, ApiError>(())
    }
    .await;
    let filename = q.filename.as_deref().unwrap_or("upload.iso");
    let result = match stored {
        Ok(()) => {
            crate::copycds::import(&st.db, &install_dir, &upload, filename, q.name.as_deref()).await
        }
        Err(e) => Err(e),
    };
    let imported = result?;
    let m = &imported.manifest;
    let d = &m.media;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": m.name, "result": imported.result, "distro": d.distro, "ver": d.version,
            "arch": d.arch, "flavor": d.flavor, "kernel": d.kernel, "initrd": d.initrd,
            "orig_name": m.orig_name,
        })),
    ))
}

/// `POST /osimages/build`'s body: what `xcat3 genimage` sends.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenimageBody {
    /// The osimage's name.
    name: String,
    #[schema(value_type = DistroWord)]
    distro: String,
    /// The API host's own architecture (default).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "x86_64")]
    arch: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<ImageKindWord>)]
    kind: Option<String>,
    /// Debian packages added to the image.
    #[serde(default)]
    packages: Vec<String>,
    /// Largest unpacked root (`600M`, `2G`): it all sits in a node's RAM.
    #[serde(default)]
    size_limit: Option<String>,
    /// Build again over an existing built image of this name.
    #[serde(default)]
    force: bool,
}

/// `POST /osimages/build`: `genimage`. Builds a node image from Debian's
/// packages on the API host (root and debootstrap needed there) and
/// registers it: 201 with the image when the build is done. With
/// `Accept: application/x-ndjson` the reply streams progress lines
/// (`{"step", "message"}`) and its last line is `{"osimage": {...}}` or
/// `{"error": "..."}`. A failed or abandoned build leaves nothing behind.
#[utoipa::path(post, path = "/v1/osimages/build", tag = "osimages", operation_id = "genimage", request_body = GenimageBody, responses((status = 201, description = "the image built (kind, sizes, build time); with Accept: application/x-ndjson, progress lines, then the image or the error", content((Object = "application/json"), (Object = "application/x-ndjson"))), (status = 409, description = "the image exists (use force) or nodes use it", body = Fault)))]
async fn genimage(
    State(st): State<AppState>,
    origin: Origin,
    JsonBody(body): JsonBody,
) -> ApiResult<axum::response::Response> {
    use xcat3_common::model::ImageKind;
    let b: GenimageBody = serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let kind = match b.kind.as_deref() {
        None => ImageKind::Stateless,
        Some(k) => ImageKind::parse(k).ok_or_else(|| {
            ApiError::bad_request(format!("kind: `{k}` is not one of stateless, image"))
        })?,
    };
    let size_limit = match b.size_limit.as_deref() {
        None => None,
        Some(s) => Some(xcat3_common::model::parse_size(s).ok_or_else(|| {
            ApiError::bad_request(format!("size_limit: `{s}` is not a size (600M, 2G)"))
        })?),
    };
    let req = crate::genimage::Request {
        name: b.name,
        distro: b.distro,
        arch: b.arch.unwrap_or_else(|| std::env::consts::ARCH.to_string()),
        kind,
        packages: b.packages,
        size_limit,
        force: b.force,
    };
    req.check()?;
    let created = |image: Value| json!({ "osimage": image, "result": "created" });
    let (mut running, progress) = crate::genimage::start(st, req, origin.stream);
    let Some(progress) = progress else {
        let image = running.finish().await?;
        return Ok((StatusCode::CREATED, Json(created(image))).into_response());
    };
    // Progress lines while the build runs, then its result; dropping the
    // reply drops `running`, which cancels the build.
    let lines = futures_util::stream::unfold(
        (progress, Some(running)),
        move |(mut progress, running)| async move {
            let line = match progress.recv().await {
                Some(v) => (v, Some(running?)),
                // The build held the only sender: it has ended.
                None => match running?.finish().await {
                    Ok(image) => (created(image), None),
                    Err(e) => (json!({ "error": e.message }), None),
                },
            };
            Some((
                Ok::<_, std::convert::Infallible>(format!("{}\n", line.0)),
                (progress, line.1),
            ))
        },
    );
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// `GET /osimages` → `{"images": [{"name"}..]}` (v1 default: names).
#[utoipa::path(get, path = "/v1/osimages", tag = "osimages", operation_id = "list_osimages", params(("fields" = Option<OsImageFields>, Query, style = Form, explode = false)), responses((status = 200, description = "images", body = OsImageListOut)))]
async fn list(State(st): State<AppState>, Params(q): Params<Fields>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::OSIMAGE_FIELDS)?
        .unwrap_or_else(|| vec!["name".to_string()]);
    let images: Vec<Value> = db::osimages(&st.db)
        .await?
        .iter()
        .map(|o| view::osimage(o, Some(&fields)))
        .collect();
    Ok(Json(json!({ "images": images })))
}

#[utoipa::path(get, path = "/v1/osimages/{name}", tag = "osimages", operation_id = "show_osimage", params(("name" = String, Path), ("fields" = Option<OsImageFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the image", body = OsImageOut)))]
async fn show(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Params(q): Params<Fields>,
) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::OSIMAGE_FIELDS)?;
    let row = db::osimage(&st.db, &name).await?;
    let mut v = view::osimage(&row, fields.as_deref());
    // A built image also says what it is: kind, packages, sizes, build.
    if fields.is_none()
        && let Some(m) = crate::genimage::read_manifest(
            std::path::Path::new(&st.config.api.install_dir),
            &row.name,
        )
        && m.build.is_some()
        && let (Some(out), Value::Object(extra)) =
            (v.as_object_mut(), crate::genimage::image_summary(&m))
    {
        for (k, x) in extra {
            out.entry(k).or_insert(x);
        }
    }
    Ok(Json(v))
}

#[utoipa::path(get, path = "/v1/osimages/get_by_id", tag = "osimages", operation_id = "show_osimage_by_id", params(("id" = i64, Query), ("fields" = Option<OsImageFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the image", body = OsImageOut)))]
async fn by_id(State(st): State<AppState>, Params(q): Params<ById>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::OSIMAGE_FIELDS)?;
    Ok(Json(view::osimage(
        &db::osimage_by_id(&st.db, q.id).await?,
        fields.as_deref(),
    )))
}

/// `PATCH /osimages/{name}`: only profile, type, provmethod and rootfstype;
/// the identity of the imported media is internal.
#[utoipa::path(patch, path = "/v1/osimages/{name}", tag = "osimages", operation_id = "update_osimage", params(("name" = String, Path)), request_body = Vec<Patch>, responses((status = 200, description = "the image as updated (profile, type, provmethod, rootfstype)", body = OsImageOut)))]
async fn update(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let err =
        |e: xcat3_common::model::FieldError| ApiError::bad_request(format!("osimage {name}: {e}"));
    let ops = parse_patches(&body, OsImageSpec::WRITABLE).map_err(err)?;
    let old = db::osimage(&st.db, &name).await?;
    let mut doc = view::osimage(
        &old,
        Some(
            &OsImageSpec::WRITABLE
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        ),
    );
    apply_patches(&mut doc, &ops).map_err(err)?;
    let spec = OsImageSpec::from_json(&doc).map_err(err)?;
    Ok(Json(view::osimage(
        &db::update_osimage(&st.db, old, &spec).await?,
        None,
    )))
}

#[utoipa::path(delete, path = "/v1/osimages/{name}", tag = "osimages", operation_id = "delete_osimage", params(("name" = String, Path)), responses((status = 202, description = "deleted"), (status = 409, description = "nodes are deploying or booted from it", body = Fault)))]
async fn remove(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let row = db::osimage(&st.db, &name).await?;
    let users = xcat3_db::nodes::nodes_using_image(&st.db, row.id).await?;
    if users > 0 {
        return Err(ApiError::with_status(
            StatusCode::CONFLICT,
            format!(
                "osimage {name}: {users} nodes are deploying or booted from it; release them first (deploy -d)"
            ),
        ));
    }
    db::delete_osimage(&st.db, &name).await?;
    // A built image's tree goes with it (an imported medium's stays, as
    // it always has: copycds of the same ISO finds it again).
    let built = row
        .provmethod
        .as_deref()
        .and_then(xcat3_common::model::ImageKind::parse)
        .is_some();
    if built {
        let tree = std::path::Path::new(&st.config.api.install_dir).join(&name);
        let _ = tokio::task::spawn_blocking(move || crate::copycds::remove_tree(&tree)).await;
    }
    Ok(StatusCode::ACCEPTED)
}
