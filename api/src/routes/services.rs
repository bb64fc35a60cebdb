//! `/v1/services`: registered conductors and their liveness.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use xcat3_common::db::resources as db;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Params;
use crate::view;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services", get(list))
        .route("/services/hostname", get(by_hostname))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByHost {
    name: String,
}

async fn list(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let now = Utc::now();
    let items: Vec<Value> = db::services(&st.db)
        .await?
        .iter()
        .map(|s| view::service(s, st.config.conductor.heartbeat_timeout, now))
        .collect();
    Ok(Json(json!({ "services": items })))
}

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
