//! `/v1/osimages`: imported OS media (created by copycds).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use xcat3_common::db::resources as db;
use xcat3_common::model::{OsImageSpec, apply_patches, parse_patches};

use super::{ById, Fields, parse_fields};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};
use crate::view;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/osimages", get(list))
        .route("/osimages/get_by_id", get(by_id))
        .route("/osimages/{name}", get(show).patch(update).delete(remove))
}

/// `GET /osimages` → `{"images": [{"name"}..]}` (v1 default: names).
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

async fn by_id(State(st): State<AppState>, Params(q): Params<ById>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::OSIMAGE_FIELDS)?;
    Ok(Json(view::osimage(
        &db::osimage_by_id(&st.db, q.id).await?,
        fields.as_deref(),
    )))
}

/// `PATCH /osimages/{name}`: only profile, type, provmethod and rootfstype;
/// the identity of the imported media is internal.
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

async fn remove(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    db::delete_osimage(&st.db, &name).await?;
    Ok(StatusCode::ACCEPTED)
}
