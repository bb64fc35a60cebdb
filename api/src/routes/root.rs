//! Discovery (`/`, `/v1`), health (`/healthz`, `/readyz`), the OpenAPI
//! document and the 404 fallback.

use axum::Json;
use axum::http::Uri;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

#[utoipa::path(get, path = "/", tag = "meta", operation_id = "versions", responses((status = 200, description = "API versions", body = Object)))]
pub async fn root() -> Json<Value> {
    Json(json!({
        "name": "xCAT3 API",
        "description": "xCAT3 provisions and controls bare-metal and KVM clusters.",
        "versions": [v1_version()],
        "default_version": v1_version(),
    }))
}

fn v1_version() -> Value {
    json!({"id": "v1", "status": "CURRENT", "version": "1.1", "min_version": "1.1",
           "links": [{"href": "/v1/", "rel": "self"}]})
}

#[utoipa::path(get, path = "/v1", tag = "meta", operation_id = "v1_links", responses((status = 200, description = "v1 links", body = Object)))]
pub async fn v1() -> Json<Value> {
    Json(json!({
        "id": "v1",
        "links": [{"href": "/v1/", "rel": "self"}, {"href": "/v1/openapi.json", "rel": "describedby"}],
        "nodes": [{"href": "/v1/nodes/", "rel": "self"}],
    }))
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta", operation_id = "openapi", responses((status = 200, description = "this document", body = Object)))]
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document().clone())
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such resource: {}", uri.path()))
}

/// A known path with a method it does not take (405, with the fault body
/// like every other error).
pub async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::with_status(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// `GET /healthz`: the process serves HTTP (liveness).
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the API can do its work — the database answers,
/// the bus can carry requests, and at least one conductor is alive — else
/// 503; the body says which check failed.
pub async fn readyz(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, Json<Value>) {
    let timeout = st.config.conductor.heartbeat_timeout;
    let (db, conductors) = match xcat3_db::services::live_conductors(&st.db, timeout).await {
        Ok(live) => ("ok".to_string(), live.len()),
        Err(e) => (e.to_string(), 0),
    };
    let bus = match st.bus.check().await {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let ready = db == "ok" && bus == "ok" && conductors > 0;
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": ready, "database": db, "bus": bus, "live_conductors": conductors})),
    )
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(root, v1, openapi))]
pub struct Doc;
