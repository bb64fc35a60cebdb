//! Post-boot scripts: `/v1/scripts[/{name}]` (stored by name, admin
//! writes), and per node `GET /v1/nodes/postscripts` (the last run:
//! each script's exit status and output tail) and `PUT
//! /v1/nodes/postscripts` (run them again now, over SSH from each node's
//! conductor: xCAT's `updatenode`). Nodes list theirs in
//! `control_info.postscripts`; their agent fetches and runs them at boot
//! (`actions.rs`, `fetch_postscripts`).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use xcat3_common::postscripts;
use xcat3_common::rpc::{Action, ErrorKind};
use xcat3_db::nodes as node_db;

use super::actions::{Shape, run};
use super::requested_names;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params, Path};
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/scripts", get(list))
        .route("/scripts/{name}", get(show).put(put).delete(remove))
        .route("/nodes/postscripts", get(node_runs).put(rerun))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, put, remove, node_runs, rerun))]
pub struct Doc;

fn checked(name: &str) -> ApiResult<()> {
    postscripts::check_name(name).map_err(|e| ApiError::bad_request(format!("name: {e}")))
}

#[utoipa::path(get, path = "/v1/scripts", tag = "scripts", operation_id = "list_scripts", responses((status = 200, description = "every script's name, size in bytes and update time", body = ScriptList)))]
async fn list(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let rows = xcat3_db::scripts::list(&st.db).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|(name, size, at)| {
            json!({"name": name, "size": size, "updated_at": chrono::DateTime::from_timestamp(*at, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))})
        })
        .collect();
    Ok(Json(json!({ "scripts": items })))
}

#[utoipa::path(get, path = "/v1/scripts/{name}", tag = "scripts", operation_id = "show_script", params(("name" = String, Path, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")), responses((status = 200, description = "the script", body = xcat3_common::postscripts::Script)))]
async fn show(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    if postscripts::check_name(&name).is_err() {
        return Err(ApiError::not_found(format!(
            "script {name} could not be found"
        )));
    }
    let found = xcat3_db::scripts::get(&st.db, std::slice::from_ref(&name)).await?;
    let content = found
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("script {name} could not be found")))?;
    Ok(Json(json!({ "name": name, "content": content })))
}

/// `PUT /scripts/{name}`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptBody {
    /// The script: a `#!` line, or it runs under `/bin/sh`.
    content: String,
}

/// `PUT /scripts/{name}` with `{"content": "..."}`: creates or replaces it.
#[utoipa::path(put, path = "/v1/scripts/{name}", tag = "scripts", operation_id = "put_script", params(("name" = String, Path, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")), request_body = ScriptBody, responses((status = 200, description = "stored", body = xcat3_common::postscripts::Script)))]
async fn put(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    checked(&name)?;
    let b: ScriptBody = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "request body: {e} (expected {{\"content\": \"...\"}})"
        ))
    })?;
    if b.content.len() > postscripts::MAX_SCRIPT || b.content.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "content: at most {} bytes of text",
            postscripts::MAX_SCRIPT
        )));
    }
    xcat3_db::scripts::put(&st.db, &name, &b.content).await?;
    Ok(Json(json!({ "name": name, "content": b.content })))
}

#[utoipa::path(delete, path = "/v1/scripts/{name}", tag = "scripts", operation_id = "delete_script", params(("name" = String, Path, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")), responses((status = 204, description = "deleted")))]
async fn remove(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    if postscripts::check_name(&name).is_err() {
        return Err(ApiError::not_found(format!(
            "script {name} could not be found"
        )));
    }
    if xcat3_db::scripts::delete(&st.db, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "script {name} could not be found"
        )))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    noderange: Option<String>,
}

/// `GET /nodes/postscripts?noderange=`: each node's last run of its
/// scripts (from its agent at boot, or a rerun), as an `exec` outcome
/// with `ran_at`; a node whose run failed has `command_failed`.
#[utoipa::path(get, path = "/v1/nodes/postscripts", tag = "scripts", operation_id = "node_postscripts", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange")), responses((status = 200, description = "per node: its last run, or why there is none", body = PerNodeOutcome)))]
async fn node_runs(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<RangeQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    let ids = node_db::ids(&st.db, &names).await?;
    let id_list: Vec<i64> = ids.values().copied().collect();
    let runs = xcat3_db::scripts::runs(&st.db, &id_list).await?;
    let mut nodes = serde_json::Map::new();
    let mut kinds = serde_json::Map::new();
    for n in names {
        let (value, kind) = match ids.get(&n).map(|id| runs.get(id)) {
            None => (
                json!(xcat3_common::model::tokens::NOT_FOUND),
                Some(ErrorKind::NotFound),
            ),
            Some(None) => (
                json!("no post-boot scripts have run on it (xcat3 postscripts NODERANGE --rerun)"),
                Some(ErrorKind::NotFound),
            ),
            Some(Some((ran, at))) => {
                let mut v = json!(postscripts::as_outcome(ran));
                v["ran_at"] = json!(
                    chrono::DateTime::from_timestamp(*at, 0)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                );
                let failed = postscripts::failure(ran).map(|_| ErrorKind::CommandFailed);
                (v, failed)
            }
        };
        if let Some(k) = kind {
            kinds.insert(n.clone(), json!(k.as_str()));
        }
        nodes.insert(n, value);
    }
    let mut out = json!({ "nodes": nodes });
    if !kinds.is_empty() {
        out["error_kinds"] = Value::Object(kinds);
    }
    if origin.stream {
        return Ok((
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
            format!("{out}\n"),
        )
            .into_response());
    }
    Ok((StatusCode::OK, Json(out)).into_response())
}

/// `PUT /nodes/postscripts?noderange=` (`{"timeout", "fanout"}`
/// optional): runs each node's scripts again now, in order, over SSH
/// from its conductor, as root; stops at a node's first failing script.
/// Each node's run is kept as its last.
#[utoipa::path(put, path = "/v1/nodes/postscripts", tag = "scripts", operation_id = "rerun_postscripts", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange")), responses((status = 200, description = "per node: the run, or its error", content((PerNodeOutcome = "application/json"), (PerNodeOutcome = "application/x-ndjson")))))]
async fn rerun(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<RerunQuery>,
) -> ApiResult<Response> {
    let timeout = q.timeout.or(Some(postscripts::DEFAULT_TIMEOUT_S));
    let (_, timeout_s, fanout) = super::remote::session_options(None, timeout, q.fanout)?;
    let names = requested_names(&st, q.noderange.as_deref(), &Value::Null).await?;
    let action = Action::Postscripts { timeout_s, fanout };
    run(&st, &origin, names, action, StatusCode::OK, Shape::Json).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RerunQuery {
    noderange: Option<String>,
    /// Seconds each script may run (default 1800).
    timeout: Option<u32>,
    /// Sessions at once per conductor.
    fanout: Option<u32>,
}
