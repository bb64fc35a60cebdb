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

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/passwds", get(list).post(create))
        .route("/passwds/get_by_id", get(by_id))
        .route("/passwds/{key}", get(show).patch(update).delete(remove))
}

async fn list(State(st): State<AppState>, Params(q): Params<Fields>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::PASSWD_FIELDS)?;
    let items: Vec<Value> = db::passwds(&st.db)
        .await?
        .iter()
        .map(|p| view::passwd(p, fields.as_deref()))
        .collect();
    Ok(Json(json!({ "passwds": items })))
}

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

async fn by_id(State(st): State<AppState>, Params(q): Params<ById>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::PASSWD_FIELDS)?;
    Ok(Json(view::passwd(
        &db::passwd_by_id(&st.db, q.id).await?,
        fields.as_deref(),
    )))
}

/// `POST /passwds` → 201 `{"passwd": {"<key>": "ok"}}`.
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

async fn remove(State(st): State<AppState>, Path(key): Path<String>) -> ApiResult<StatusCode> {
    db::delete_passwd(&st.db, &key).await?;
    Ok(StatusCode::ACCEPTED)
}
