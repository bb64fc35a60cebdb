//! Seeing the hardware: `GET /nodes/inventory`, `GET /nodes/vitals`,
//! `GET|DELETE /nodes/eventlog`, `PUT /nodes/beacon`, `GET /nodes/health`.
//!
//! Each is a multi-node action like power (`?noderange=` or a v1 body,
//! ndjson on request, one result per node), except a stored inventory,
//! which is read from the database without asking any BMC. A node's value
//! is its result document (`Shape::Json`); a failure is its message with
//! its kind in `error_kinds`.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::json;
use xcat3_common::inspect::{Beacon, SensorFilter, SensorKind};
use xcat3_common::rpc::{Action, ErrorKind};
use xcat3_db::inventory;
use xcat3_db::nodes as node_db;

use super::actions::{Shape, run};
use super::requested_names;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params};
#[allow(unused_imports)]
use crate::wire::*;

/// Event-log entries one request may ask for per node.
pub const MAX_EVENTS: u32 = 4096;
/// Entries `eventlog` returns when not told.
pub const DEFAULT_EVENTS: u32 = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nodes/inventory", get(inventory))
        .route("/nodes/vitals", get(vitals))
        .route("/nodes/eventlog", get(eventlog).delete(eventlog_clear))
        .route("/nodes/beacon", put(beacon))
        .route("/nodes/health", get(health))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(inventory, vitals, eventlog, eventlog_clear, beacon, health))]
pub struct Doc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InventoryQuery {
    noderange: Option<String>,
    /// Read every BMC now (and store what it says) instead of answering
    /// from the database.
    refresh: Option<bool>,
}

/// `GET /nodes/inventory?noderange=[&refresh=true]`: each node's
/// inventory with `read_at`; without `refresh`, the stored one.
#[utoipa::path(get, path = "/v1/nodes/inventory", tag = "inspect", operation_id = "inventory", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}"), ("refresh" = Option<bool>, Query, description = "read every BMC now (and store it) instead of answering the stored inventory")), responses((status = 200, description = "per node: its inventory, or its error", body = PerNodeInventory)))]
async fn inventory(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<InventoryQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    if q.refresh == Some(true) {
        return run(
            &st,
            &origin,
            names,
            Action::Inventory,
            StatusCode::OK,
            Shape::Json,
        )
        .await;
    }
    let known = node_db::existing(&st.db, &names).await?;
    let stored = inventory::load(&st.db, &names).await?;
    let mut nodes = serde_json::Map::new();
    let mut kinds = BTreeMap::new();
    for n in names {
        let v = if let Some((data, read_at)) = stored.get(&n) {
            crate::view::inventory(data, *read_at)
        } else if known.contains(&n) {
            kinds.insert(n.clone(), ErrorKind::NotFound.as_str());
            json!("no inventory stored yet: read it with refresh=true (xcat3 inventory --refresh)")
        } else {
            kinds.insert(n.clone(), ErrorKind::NotFound.as_str());
            json!(xcat3_common::model::tokens::NOT_FOUND)
        };
        nodes.insert(n, v);
    }
    let mut out = json!({ "nodes": nodes });
    if !kinds.is_empty() {
        out["error_kinds"] = json!(kinds);
    }
    if origin.stream {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            format!("{out}\n"),
        )
            .into_response());
    }
    Ok((StatusCode::OK, Json(out)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VitalsQuery {
    noderange: Option<String>,
    /// `temp`, `fan`, `voltage`, `power` or `all` (the default).
    sensors: Option<String>,
}

/// `GET /nodes/vitals?noderange=[&sensors=temp]`: a list of readings per
/// node (`name`, `kind`, `value`, `unit`, `status`).
#[utoipa::path(get, path = "/v1/nodes/vitals", tag = "inspect", operation_id = "vitals", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}"), ("sensors" = Option<SensorWord>, Query)), responses((status = 200, description = "per node: its sensor readings, or its error", body = PerNodeVitals)))]
async fn vitals(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<VitalsQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let s = q.sensors.as_deref().unwrap_or("all");
    let sensors = SensorFilter::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "sensors: `{s}` is not one of {}",
            SensorKind::CHOICES.join(", ")
        ))
    })?;
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    run(
        &st,
        &origin,
        names,
        Action::Vitals { sensors },
        StatusCode::OK,
        Shape::Json,
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EventLogQuery {
    noderange: Option<String>,
    /// The newest this many entries (1-4096; default 20).
    count: Option<u32>,
}

fn event_count(q: &EventLogQuery) -> ApiResult<u32> {
    match q.count.unwrap_or(DEFAULT_EVENTS) {
        n @ 1..=MAX_EVENTS => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "count: {n} is not between 1 and {MAX_EVENTS}"
        ))),
    }
}

/// `GET /nodes/eventlog?noderange=[&count=20]`: per node, `total` and the
/// newest `events` (oldest first).
#[utoipa::path(get, path = "/v1/nodes/eventlog", tag = "inspect", operation_id = "eventlog", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}"), ("count" = Option<u32>, Query, minimum = 1, maximum = 4096, description = "the newest this many entries (default 20)")), responses((status = 200, description = "per node: total and the newest entries, oldest first, or its error", body = PerNodeEventLog)))]
async fn eventlog(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<EventLogQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let count = event_count(&q)?;
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    run(
        &st,
        &origin,
        names,
        Action::EventLog {
            count,
            clear: false,
        },
        StatusCode::OK,
        Shape::Json,
    )
    .await
}

/// `DELETE /nodes/eventlog?noderange=[&count=20]`: reads, then clears each
/// node's log; answers what was read (`cleared: true`).
#[utoipa::path(delete, path = "/v1/nodes/eventlog", tag = "inspect", operation_id = "eventlog_clear", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}"), ("count" = Option<u32>, Query, minimum = 1, maximum = 4096, description = "entries to return (default 20)")), responses((status = 200, description = "per node: the log as read before clearing, or its error", body = PerNodeEventLog)))]
async fn eventlog_clear(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<EventLogQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let count = event_count(&q)?;
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    run(
        &st,
        &origin,
        names,
        Action::EventLog { count, clear: true },
        StatusCode::OK,
        Shape::Json,
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BeaconQuery {
    noderange: Option<String>,
    /// `on`, `off` or `blink`.
    target: Option<String>,
}

/// `PUT /nodes/beacon?noderange=&target=on|off|blink`: the identify LED.
#[utoipa::path(put, path = "/v1/nodes/beacon", tag = "inspect", operation_id = "beacon", params(("target" = xcat3_common::inspect::Beacon, Query), ("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 202, description = "per node: on, off, blink, or its error; with Accept: application/x-ndjson, one such object per line as batches finish", content((NodeResults = "application/json"), (NodeResults = "application/x-ndjson")))))]
async fn beacon(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<BeaconQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let t = q.target.as_deref().unwrap_or("");
    let state = Beacon::parse(t).ok_or_else(|| {
        ApiError::bad_request(format!(
            "target: `{t}` is not one of {}",
            Beacon::ALL.join(", ")
        ))
    })?;
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    run(
        &st,
        &origin,
        names,
        Action::Beacon { state },
        StatusCode::ACCEPTED,
        Shape::Text,
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HealthQuery {
    noderange: Option<String>,
}

/// `GET /nodes/health?noderange=`: `{"health": "ok|warning|critical",
/// "reasons": [...]}` per node, judged now from sensors and the last
/// day's events, and recorded (`GET /nodes?health=critical`).
#[utoipa::path(get, path = "/v1/nodes/health", tag = "inspect", operation_id = "health", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 200, description = "per node: ok, warning or critical with reasons (recorded: GET /v1/nodes?health=), or its error", body = PerNodeHealth)))]
async fn health(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<HealthQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    run(
        &st,
        &origin,
        names,
        Action::Health,
        StatusCode::OK,
        Shape::Json,
    )
    .await
}
