//! `/v1/drivers`: the hardware types (one per `mgt`), their interfaces and
//! the `control_info` keys each reads, what a UI renders as a form and
//! `xcat3 driver-show` prints. Declared in `xcat3_common::hardware`; the
//! same declarations validate nodes when they are written.

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use serde_json::{Value, json};
use xcat3_common::hardware;
use xcat3_common::model::Mgt;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/drivers", get(list))
        .route("/drivers/{name}", get(show))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show))]
pub struct Doc;

/// Every hardware type, and the keys every node may hold whatever its
/// type (`common`: deploy keys; libvirt connection keys on hypervisors).
#[utoipa::path(get, path = "/v1/drivers", tag = "drivers", operation_id = "list_drivers", responses((status = 200, description = "hardware types (one per mgt), their interfaces and the control_info keys each reads", body = Object)))]
async fn list() -> Json<Value> {
    Json(json!({
        "drivers": hardware::TYPES.iter().map(|t| t.describe()).collect::<Vec<_>>(),
        "common": hardware::describe_common(),
    }))
}

#[utoipa::path(get, path = "/v1/drivers/{name}", tag = "drivers", operation_id = "show_driver", params(("name" = String, Path)), responses((status = 200, description = "one hardware type", body = Object)))]
async fn show(Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let mgt = Mgt::parse("driver", &name).map_err(|e| ApiError::not_found(e.to_string()))?;
    Ok(Json(hardware::of(mgt).describe()))
}
