//! `/v1/services`: registered conductors and their liveness.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use xcat3_db::resources as db;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Params;
use crate::view;
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services", get(list))
        .route("/services/hostname", get(by_hostname))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, by_hostname))]
pub struct Doc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByHost {
    name: String,
}

/// Every service; conductors also show `nodes` (how many the ring gives
/// them now) and `in_flight` (nodes being worked on at the last heartbeat).
#[utoipa::path(get, path = "/v1/services", tag = "services", operation_id = "list_services", responses((status = 200, description = "services", body = ServiceListOut)))]
async fn list(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let now = Utc::now();
    let services = db::services(&st.db).await?;
    let ring = crate::dispatch::live_ring(&st).await?;
    let mut owned: HashMap<String, usize> = HashMap::new();
    if !ring.is_empty() {
        for name in xcat3_db::nodes::list_names(&st.db).await? {
            if let Some(h) = ring.owner(&name) {
                *owned.entry(h.to_string()).or_default() += 1;
            }
        }
    }
    let items: Vec<Value> = services
        .iter()
        .map(|s| {
            let mut v = view::service(s, st.config.conductor.heartbeat_timeout, now);
            v["nodes"] = owned.get(&s.hostname).copied().unwrap_or(0).into();
            v
        })
        .collect();
    Ok(Json(json!({ "services": items })))
}

#[utoipa::path(get, path = "/v1/services/hostname", tag = "services", operation_id = "services_of_host", params(("name" = String, Query, description = "host name")), responses((status = 200, description = "the host's services", body = ServiceListOut)))]
async fn by_hostname(
    State(st): State<AppState>,
    Params(q): Params<ByHost>,
) -> ApiResult<Json<Value>> {
    let now = Utc::now();
    let items: Vec<Value> = db::services_by_hostname(&st.db, &q.name)
        .await?
        .iter()
        .map(|s| view::service(s, st.config.conductor.heartbeat_timeout, now))
        .collect();
    Ok(Json(json!({ "services": items })))
}
