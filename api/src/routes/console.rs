//! Serial consoles: `GET /nodes/{name}/console` (a websocket to the node's
//! console), `GET /nodes/{name}/console/log` and `GET /consoles`.
//!
//! The client only ever talks to the API: the API finds the node's owner
//! in the ring, connects to that conductor's console endpoint (address and
//! token from its `services` row) and splices the two websockets, so
//! conductors may sit on a network the admin cannot reach. Anyone who may
//! read may watch; typing (and `force`) needs the operator role, and a
//! reader's console is read-only.

use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use xcat3_common::rpc::Action;
use xcat3_conductor::actions::MAX_LOG_LINES;
use xcat3_conductor::console::{DialError, dial, splice};
use xcat3_db::nodes as node_db;
use xcat3_db::services;

use super::actions::{Shape, run};
use super::requested_names;
use crate::AppState;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params};
#[allow(unused_imports)]
use crate::wire::*;

/// Log lines `console/log` returns when not told.
pub const DEFAULT_LOG_LINES: u32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nodes/{name}/console", get(console))
        .route("/nodes/{name}/console/log", get(console_log))
        .route("/consoles", get(consoles))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(console, console_log, consoles))]
pub struct Doc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConsoleQuery {
    /// Watch without typing (always so for a reader).
    read_only: Option<bool>,
    /// Take the console over from another holder (operator).
    force: Option<bool>,
}

/// `GET /nodes/{name}/console`: upgrades to a websocket joined to the
/// node's console. Binary frames carry its bytes both ways; a text frame
/// `break` sends a serial break; text frames from the server are notices.
#[utoipa::path(get, path = "/v1/nodes/{name}/console", tag = "console", operation_id = "console", params(("name" = String, Path, description = "the node"), ("read_only" = Option<bool>, Query, description = "watch without typing (always so for a reader)"), ("force" = Option<bool>, Query, description = "take the console over from another holder (operator)")), responses((status = 101, description = "a websocket to the node's console"), (status = 403, description = "force asked by a reader", body = Fault), (status = 409, description = "the node has no console now (its mgt has none, console_info.logging is off, its record is incomplete), or the ring just changed: the message says which", body = Fault), (status = 503, description = "no live conductor, or its console endpoint cannot be reached", body = Fault)))]
async fn console(
    State(st): State<AppState>,
    Path(name): Path<String>,
    caller: axum::Extension<Caller>,
    Params(q): Params<ConsoleQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let ws = ws.map_err(|e| {
        ApiError::bad_request(format!(
            "node {name}: the console is a websocket: connect with `Upgrade: websocket` ({e})"
        ))
    })?;
    let may_type = caller.role.is_none_or(|r| r >= Role::Operator);
    let force = q.force.unwrap_or(false);
    if force && !may_type {
        return Err(ApiError::with_status(
            StatusCode::FORBIDDEN,
            "force takes a console over and needs the operator role",
        ));
    }
    let read_only = q.read_only.unwrap_or(false) || !may_type;
    if node_db::existing(&st.db, std::slice::from_ref(&name))
        .await?
        .is_empty()
    {
        return Err(ApiError::not_found(format!("node {name}: not found")));
    }
    let ring = crate::dispatch::live_ring(&st).await?;
    let owner = ring.owner(&name).ok_or_else(|| {
        ApiError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("node {name}: no conductor is alive to hold its console"),
        )
    })?;
    let endpoint = services::console_endpoint(&st.db, owner)
        .await?
        .ok_or_else(|| {
            ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("node {name}: conductor {owner} serves no consoles ([console] listen is empty there)"),
            )
        })?;
    let dialed = dial(&endpoint, &name, read_only, force)
        .await
        .map_err(|e| match e {
            DialError::Refused { status, message } => ApiError::with_status(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                message,
            ),
            DialError::Unreachable { .. } => {
                tracing::warn!(node = %name, conductor = owner, error = %e, "console endpoint unreachable");
                ApiError::with_status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("node {name}: conductor {owner}'s console endpoint cannot be reached"),
                )
            }
        })?;
    tracing::info!(node = %name, conductor = owner, read_only, force, caller = ?caller.name, "console attached");
    Ok(ws.on_upgrade(move |socket| splice(socket, dialed)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    /// Lines from the end of the log (default 100, at most 10,000).
    lines: Option<u32>,
}

/// `GET /nodes/{name}/console/log?lines=N`: the end of the node's console
/// log, as the conductor holding it wrote it (timestamped lines).
#[utoipa::path(get, path = "/v1/nodes/{name}/console/log", tag = "console", operation_id = "console_log", params(("name" = String, Path, description = "the node"), ("lines" = Option<u32>, Query, minimum = 1, maximum = 10000, description = "lines from the end of the log (default 100)")), responses((status = 200, description = "the node's log text, or its error", body = NodeResults)))]
async fn console_log(
    State(st): State<AppState>,
    origin: Origin,
    Path(name): Path<String>,
    Params(q): Params<LogQuery>,
) -> ApiResult<Response> {
    let lines = q.lines.unwrap_or(DEFAULT_LOG_LINES);
    if !(1..=MAX_LOG_LINES).contains(&lines) {
        return Err(ApiError::bad_request(format!(
            "lines: {lines} is not between 1 and {MAX_LOG_LINES}"
        )));
    }
    run(
        &st,
        &origin,
        vec![name],
        Action::ConsoleLog { lines },
        StatusCode::OK,
        Shape::Text,
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConsolesQuery {
    noderange: Option<String>,
}

/// `GET /consoles?noderange=`: each node's console as its conductor holds
/// it (`connected`, viewers, bytes, last output, last error).
#[utoipa::path(get, path = "/v1/consoles", tag = "console", operation_id = "consoles", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 200, description = "per node: its console's state, or its error", body = PerNodeConsole)))]
async fn consoles(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<ConsolesQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    run(
        &st,
        &origin,
        names,
        Action::ConsoleList,
        StatusCode::OK,
        Shape::Json,
    )
    .await
}
