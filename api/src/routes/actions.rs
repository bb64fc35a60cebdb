//! Actions on many nodes: power and boot device (v1 wire format), and the
//! ring placement. Replies are `{"nodes": {name: result}}`, or, with
//! `Accept: application/x-ndjson`, one such line per batch as results
//! arrive.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Value, json};
use xcat3_common::db::nodes as node_db;
use xcat3_common::noderange;
use xcat3_common::rpc::{Action, BootDevice, PowerTarget, ProvisionTarget};

use super::requested_names;
use crate::AppState;
use crate::dispatch::{self, Results};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nodes/power", get(power_status).put(power_set))
        .route("/nodes/boot_device", get(boot_get).put(boot_set))
        .route("/nodes/provision", put(provision))
        .route("/ring", get(ring))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionQuery {
    target: Option<String>,
    noderange: Option<String>,
    /// Boot device only: every boot, not just the next.
    persistent: Option<bool>,
    /// Provision only (v1): the image of a `nodeset`.
    osimage: Option<String>,
    /// Provision only (v1): the network. Accepted for v1 clients and not
    /// needed: each node's network is the one holding its IP.
    #[allow(dead_code)]
    subnet: Option<String>,
}

pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(crate::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/x-ndjson"))
}

/// Runs `action` and answers with every node's result (or streams them).
async fn act(
    st: AppState,
    headers: HeaderMap,
    q: &ActionQuery,
    body: &Value,
    action: Action,
    status: StatusCode,
) -> ApiResult<Response> {
    let names = requested_names(&st, q.noderange.as_deref(), body).await?;
    let mut rx = dispatch::dispatch(&st, action, names, request_id(&headers)).await?;
    if wants_stream(&headers) {
        let stream = async_stream(rx);
        let body = Body::from_stream(stream);
        return Ok((
            status,
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            body,
        )
            .into_response());
    }
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    while let Some(batch) = rx.recv().await {
        all.extend(batch);
    }
    Ok((status, Json(json!({ "nodes": all }))).into_response())
}

/// Turns result batches into ndjson lines `{"nodes": {...}}`.
fn async_stream(
    rx: tokio::sync::mpsc::Receiver<Results>,
) -> impl futures_util::Stream<Item = Result<String, std::convert::Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let batch = rx.recv().await?;
        let map: serde_json::Map<String, Value> = batch
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let line = format!("{}\n", json!({ "nodes": map }));
        Some((Ok(line), rx))
    })
}

/// `?target=` parsed by `parse`, or a 400 naming the accepted values.
fn parse_target<T>(q: &ActionQuery, parse: fn(&str) -> Option<T>, all: &[&str]) -> ApiResult<T> {
    let t = q.target.as_deref().unwrap_or("");
    parse(t).ok_or_else(|| {
        ApiError::bad_request(format!("target: `{t}` is not one of {}", all.join(", ")))
    })
}

/// Reads take no `target`/`persistent`: such a request meant a write.
fn reject_write_params(q: &ActionQuery, message: &str) -> ApiResult<()> {
    if q.target.is_some() || q.persistent.is_some() {
        return Err(ApiError::bad_request(message));
    }
    Ok(())
}

async fn power_status(
    State(st): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    reject_write_params(
        &q,
        "GET /nodes/power reads the state; use PUT ?target= to change it",
    )?;
    act(st, headers, &q, &body, Action::PowerStatus, StatusCode::OK).await
}

async fn power_set(
    State(st): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let target = parse_target(&q, PowerTarget::parse, PowerTarget::ALL)?;
    if q.persistent.is_some() {
        return Err(ApiError::bad_request("persistent: only for boot_device"));
    }
    act(
        st,
        headers,
        &q,
        &body,
        Action::Power { target },
        StatusCode::ACCEPTED,
    )
    .await
}

async fn boot_get(
    State(st): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    reject_write_params(
        &q,
        "GET /nodes/boot_device reads the device; use PUT ?target= to set it",
    )?;
    act(
        st,
        headers,
        &q,
        &body,
        Action::BootDeviceGet,
        StatusCode::OK,
    )
    .await
}

async fn boot_set(
    State(st): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let device = parse_target(&q, BootDevice::parse, BootDevice::ALL)?;
    let persistent = q.persistent.unwrap_or(false);
    act(
        st,
        headers,
        &q,
        &body,
        Action::BootDeviceSet { device, persistent },
        StatusCode::ACCEPTED,
    )
    .await
}

/// `PUT /nodes/provision?target=dhcp|un_dhcp|un_nodeset`: the owning
/// conductors write (or remove) each node's DHCP reservation and boot files.
async fn provision(
    State(st): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    if q.persistent.is_some() {
        return Err(ApiError::bad_request("persistent: only for boot_device"));
    }
    let t = q.target.as_deref().unwrap_or("");
    let Some(target) = ProvisionTarget::parse(t) else {
        let why = if t == "nodeset" || q.osimage.is_some() {
            "target: OS deployment (`nodeset`, `osimage`) is not available in this version; use dhcp, un_dhcp or un_nodeset".to_string()
        } else {
            format!(
                "target: `{t}` is not one of {}",
                ProvisionTarget::ALL.join(", ")
            )
        };
        return Err(ApiError::bad_request(why));
    };
    act(
        st,
        headers,
        &q,
        &body,
        Action::Provision { target },
        StatusCode::ACCEPTED,
    )
    .await
}

/// `GET /ring?noderange=` → `{"nodes": {name: conductor}}`.
async fn ring(
    State(st): State<AppState>,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    let existing = node_db::existing(&st.db, &names).await?;
    let ring = dispatch::live_ring(&st).await?;
    if ring.is_empty() {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "no conductor is alive".into(),
        });
    }
    let mut map = serde_json::Map::new();
    let mut missing = Vec::new();
    for n in &names {
        match (existing.contains(n), ring.owner(n)) {
            (true, Some(h)) => {
                map.insert(n.clone(), Value::String(h.to_string()));
            }
            _ => missing.push(n.as_str()),
        }
    }
    let mut out = json!({ "nodes": map });
    if !missing.is_empty() {
        out["missing"] = json!(noderange::fold(&missing));
    }
    Ok(Json(out))
}
