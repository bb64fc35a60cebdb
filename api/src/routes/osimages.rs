//! `/v1/osimages`: imported OS media (created by copycds).

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use xcat3_common::model::{OsImageSpec, apply_patches, parse_patches};
use xcat3_db::resources as db;

use super::{ById, Fields, parse_fields};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params, Path};
use crate::view;
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/osimages",
            get(list).post(copycds).layer(DefaultBodyLimit::disable()),
        )
        .route("/osimages/get_by_id", get(by_id))
        .route("/osimages/{name}", get(show).patch(update).delete(remove))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(copycds, list, show, by_id, update, remove))]
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
    Ok(Json(view::osimage(
        &db::osimage(&st.db, &name).await?,
        fields.as_deref(),
    )))
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

#[utoipa::path(delete, path = "/v1/osimages/{name}", tag = "osimages", operation_id = "delete_osimage", params(("name" = String, Path)), responses((status = 202, description = "deleted")))]
async fn remove(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    db::delete_osimage(&st.db, &name).await?;
    Ok(StatusCode::ACCEPTED)
}
