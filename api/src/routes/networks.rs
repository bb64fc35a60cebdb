//! `/v1/networks`: subnets that DHCP and deployment use.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use xcat3_common::model::{NetworkSpec, apply_patches, parse_patches, tokens};
use xcat3_db::resources as db;

use super::{Fields, parse_fields};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params, Path};
use crate::view;
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list).post(create))
        .route("/networks/{name}", get(show).patch(update).delete(remove))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, create, update, remove))]
pub struct Doc;

/// `GET /networks[?fields=]` → `{"networks": [{"name"}..]}` (v1 default: names).
#[utoipa::path(get, path = "/v1/networks", tag = "networks", operation_id = "list_networks", params(("fields" = Option<NetworkFields>, Query, style = Form, explode = false)), responses((status = 200, description = "networks", body = NetworkListOut)))]
async fn list(State(st): State<AppState>, Params(q): Params<Fields>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::NETWORK_FIELDS)?
        .unwrap_or_else(|| vec!["name".to_string()]);
    let nets: Vec<Value> = db::networks(&st.db)
        .await?
        .iter()
        .map(|n| view::network(n, Some(&fields)))
        .collect();
    Ok(Json(json!({ "networks": nets })))
}

#[utoipa::path(get, path = "/v1/networks/{name}", tag = "networks", operation_id = "show_network", params(("name" = String, Path), ("fields" = Option<NetworkFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the network", body = NetworkOut)))]
async fn show(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Params(q): Params<Fields>,
) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::NETWORK_FIELDS)?;
    let n = db::network(&st.db, &name).await?;
    Ok(Json(view::network(&n, fields.as_deref())))
}

/// `POST /networks` → 201 `{"network": {"<name>": "ok"}}`.
#[utoipa::path(post, path = "/v1/networks", tag = "networks", operation_id = "create_network", request_body = NetworkIn, responses((status = 201, description = "created: {\"network\": {name: \"ok\"}}", body = Created)))]
async fn create(
    State(st): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec = NetworkSpec::from_json(&body).map_err(|e| with_name(&body, e))?;
    db::create_network(&st.db, &spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "network": { spec.name: tokens::OK } })),
    ))
}

fn with_name(body: &Value, e: xcat3_common::model::FieldError) -> ApiError {
    match body.get("name").and_then(Value::as_str) {
        Some(n) => ApiError::bad_request(format!("network {n}: {e}")),
        None => ApiError::bad_request(format!("network: {e}")),
    }
}

/// `PATCH /networks/{name}` with a JSON-patch list → the updated network.
#[utoipa::path(patch, path = "/v1/networks/{name}", tag = "networks", operation_id = "update_network", params(("name" = String, Path)), request_body = Vec<Patch>, responses((status = 200, description = "the network as updated", body = NetworkOut)))]
async fn update(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let writable: Vec<&str> = NetworkSpec::WRITABLE
        .iter()
        .copied()
        .filter(|f| *f != "name")
        .collect();
    let ops = parse_patches(&body, &writable)
        .map_err(|e| ApiError::bad_request(format!("network {name}: {e}")))?;
    let old = db::network(&st.db, &name).await?;
    let mut doc = view::network(&old, None);
    doc["extra"] = Value::Object(xcat3_db::nodes::parse_map(&old.extra));
    if let Some(o) = doc.as_object_mut() {
        o.remove("created_at");
        o.remove("updated_at");
    }
    apply_patches(&mut doc, &ops)
        .map_err(|e| ApiError::bad_request(format!("network {name}: {e}")))?;
    let spec = NetworkSpec::from_json(&doc)
        .map_err(|e| ApiError::bad_request(format!("network {name}: {e}")))?;
    let saved = db::update_network(&st.db, old, &spec).await?;
    Ok(Json(view::network(&saved, None)))
}

#[utoipa::path(delete, path = "/v1/networks/{name}", tag = "networks", operation_id = "delete_network", params(("name" = String, Path)), responses((status = 202, description = "deleted")))]
async fn remove(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    db::delete_network(&st.db, &name).await?;
    Ok(StatusCode::ACCEPTED)
}
