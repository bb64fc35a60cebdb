//! `/v1/passwds`: credentials for deployment (`system` = root password).
//! Passwords are write-only: every reply masks them.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use xcat3_common::model::{PasswdSpec, apply_patches, parse_patches, tokens};
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
        .route("/passwds", get(list).post(create))
        .route("/passwds/get_by_id", get(by_id))
        .route("/passwds/{key}", get(show).patch(update).delete(remove))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, by_id, create, update, remove))]
pub struct Doc;

#[utoipa::path(get, path = "/v1/passwds", tag = "passwds", operation_id = "list_passwds", params(("fields" = Option<PasswdFields>, Query, style = Form, explode = false)), responses((status = 200, description = "password entries, passwords masked", body = PasswdListOut)))]
async fn list(State(st): State<AppState>, Params(q): Params<Fields>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::PASSWD_FIELDS)?;
    let items: Vec<Value> = db::passwds(&st.db)
        .await?
        .iter()
        .map(|p| view::passwd(p, fields.as_deref()))
        .collect();
    Ok(Json(json!({ "passwds": items })))
}

#[utoipa::path(get, path = "/v1/passwds/{key}", tag = "passwds", operation_id = "show_passwd", params(("key" = String, Path), ("fields" = Option<PasswdFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the entry", body = PasswdOut)))]
async fn show(
    State(st): State<AppState>,
    Path(key): Path<String>,
    Params(q): Params<Fields>,
) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::PASSWD_FIELDS)?;
    Ok(Json(view::passwd(
        &db::passwd(&st.db, &key).await?,
        fields.as_deref(),
    )))
}

#[utoipa::path(get, path = "/v1/passwds/get_by_id", tag = "passwds", operation_id = "show_passwd_by_id", params(("id" = i64, Query), ("fields" = Option<PasswdFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the entry", body = PasswdOut)))]
async fn by_id(State(st): State<AppState>, Params(q): Params<ById>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::PASSWD_FIELDS)?;
    Ok(Json(view::passwd(
        &db::passwd_by_id(&st.db, q.id).await?,
        fields.as_deref(),
    )))
}

/// `POST /passwds` → 201 `{"passwd": {"<key>": "ok"}}`.
#[utoipa::path(post, path = "/v1/passwds", tag = "passwds", operation_id = "create_passwd", request_body = PasswdIn, responses((status = 201, description = "created: {\"passwd\": {key: \"ok\"}}", body = Created)))]
async fn create(
    State(st): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec =
        PasswdSpec::from_json(&body).map_err(|e| ApiError::bad_request(format!("passwd: {e}")))?;
    db::create_passwd(&st.db, &spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "passwd": { spec.key: tokens::OK } })),
    ))
}

#[utoipa::path(patch, path = "/v1/passwds/{key}", tag = "passwds", operation_id = "update_passwd", params(("key" = String, Path)), request_body = Vec<Patch>, responses((status = 200, description = "the entry as updated", body = PasswdOut)))]
async fn update(
    State(st): State<AppState>,
    Path(key): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let err =
        |e: xcat3_common::model::FieldError| ApiError::bad_request(format!("passwd {key}: {e}"));
    let ops = parse_patches(&body, &["username", "password", "crypt_method"]).map_err(err)?;
    let old = db::passwd(&st.db, &key).await?;
    // The stored (unmasked) values are the base the patch edits.
    let mut doc = json!({"key": old.key, "username": old.username, "password": old.password,
                         "crypt_method": old.crypt_method});
    apply_patches(&mut doc, &ops).map_err(err)?;
    let spec = PasswdSpec::from_json(&doc).map_err(err)?;
    Ok(Json(view::passwd(
        &db::update_passwd(&st.db, old, &spec).await?,
        None,
    )))
}

#[utoipa::path(delete, path = "/v1/passwds/{key}", tag = "passwds", operation_id = "delete_passwd", params(("key" = String, Path)), responses((status = 202, description = "deleted")))]
async fn remove(State(st): State<AppState>, Path(key): Path<String>) -> ApiResult<StatusCode> {
    db::delete_passwd(&st.db, &key).await?;
    Ok(StatusCode::ACCEPTED)
}
