//! Discovery (`/`, `/v1`), the OpenAPI document and the 404 fallback.

use axum::Json;
use axum::http::Uri;
use serde_json::{Value, json};

use crate::error::ApiError;

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

pub async fn v1() -> Json<Value> {
    Json(json!({
        "id": "v1",
        "links": [{"href": "/v1/", "rel": "self"}, {"href": "/v1/openapi.json", "rel": "describedby"}],
        "nodes": [{"href": "/v1/nodes/", "rel": "self"}],
    }))
}

pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such resource: {}", uri.path()))
}
