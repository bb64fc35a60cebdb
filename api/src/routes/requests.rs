//! `/v1/requests`: the history of bulk actions. Each action's reply
//! carries its id (header `xcat3-request-id`); its per-node results stay
//! readable here after the reply, for `xcat3 history` and
//! `--retry-failed`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use xcat3_db::history::{self, RequestRow};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, Path};
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/requests", get(list))
        .route("/requests/{id}", get(show))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show))]
pub struct Doc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Most requests to list (newest first); 50 by default, at most 1,000.
    limit: Option<u64>,
}

fn summary(r: &RequestRow) -> Value {
    json!({
        "id": r.id,
        "action": r.action,
        "requested_by": r.requested_by,
        "nodes": r.node_count,
        "failed": r.failed,
        "started_at": r.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "finished_at": r.finished_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    })
}

#[utoipa::path(get, path = "/v1/requests", tag = "requests", operation_id = "list_requests", params(("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "how many (default 50), newest first")), responses((status = 200, description = "the latest bulk actions", body = RequestList)))]
async fn list(State(st): State<AppState>, Params(q): Params<ListQuery>) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is not between 1 and 1000"
        )));
    }
    let rows = history::list(&st.db, limit).await?;
    Ok(Json(
        json!({ "requests": rows.iter().map(summary).collect::<Vec<_>>() }),
    ))
}

/// One request with `results` (node → result, as the action replied),
/// `failed_nodes`, the nodes whose result was an error, and `error_kinds`
/// (failed node → kind).
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests", operation_id = "show_request", params(("id" = String, Path, description = "an action reply's xcat3-request-id header")), responses((status = 200, description = "the action with every node's result", body = RequestDetail)))]
async fn show(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (row, outcomes) = history::get(&st.db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("request {id} could not be found")))?;
    let mut v = summary(&row);
    let results: Map<String, Value> = outcomes
        .iter()
        .map(|o| (o.node.clone(), Value::String(o.result.clone())))
        .collect();
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| o.node.as_str())
        .collect();
    let kinds: Map<String, Value> = outcomes
        .iter()
        .filter_map(|o| Some((o.node.clone(), json!(o.kind?.as_str()))))
        .collect();
    v["results"] = Value::Object(results);
    v["failed_nodes"] = json!(failed);
    v["error_kinds"] = Value::Object(kinds);
    Ok(Json(v))
}
