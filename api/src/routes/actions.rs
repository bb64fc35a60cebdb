//! Actions on many nodes: power and boot device (v1 wire format), and the
//! ring placement. Replies are `{"nodes": {name: result}}`, or, with
//! `Accept: application/x-ndjson`, one such line per batch as results
//! arrive.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Value, json};
use xcat3_common::db::nodes as node_db;
use xcat3_common::db::{DbError, resources};
use xcat3_common::model::{ProvisionEvent, ProvisionState};
use xcat3_common::noderange;
use xcat3_common::rpc::{Action, BootDevice, PowerTarget, ProvisionTarget};

use super::requested_names;
use crate::AppState;
use crate::dispatch::{self, Results};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nodes/power", get(power_status).put(power_set))
        .route("/nodes/boot_device", get(boot_get).put(boot_set))
        .route("/nodes/provision", put(provision))
        .route("/nodes/provision/callback", put(callback))
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

/// Runs `action` and answers with every node's result (or streams them).
async fn act(
    st: AppState,
    origin: Origin,
    q: &ActionQuery,
    body: &Value,
    action: Action,
    status: StatusCode,
) -> ApiResult<Response> {
    let names = requested_names(&st, q.noderange.as_deref(), body).await?;
    let mut rx = dispatch::dispatch(&st, action, names, &origin).await?;
    if origin.stream {
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
    origin: Origin,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    reject_write_params(
        &q,
        "GET /nodes/power reads the state; use PUT ?target= to change it",
    )?;
    act(st, origin, &q, &body, Action::PowerStatus, StatusCode::OK).await
}

async fn power_set(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let target = parse_target(&q, PowerTarget::parse, PowerTarget::ALL)?;
    if q.persistent.is_some() {
        return Err(ApiError::bad_request("persistent: only for boot_device"));
    }
    act(
        st,
        origin,
        &q,
        &body,
        Action::Power { target },
        StatusCode::ACCEPTED,
    )
    .await
}

async fn boot_get(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    reject_write_params(
        &q,
        "GET /nodes/boot_device reads the device; use PUT ?target= to set it",
    )?;
    act(st, origin, &q, &body, Action::BootDeviceGet, StatusCode::OK).await
}

async fn boot_set(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let device = parse_target(&q, BootDevice::parse, BootDevice::ALL)?;
    let persistent = q.persistent.unwrap_or(false);
    act(
        st,
        origin,
        &q,
        &body,
        Action::BootDeviceSet { device, persistent },
        StatusCode::ACCEPTED,
    )
    .await
}

/// `PUT /nodes/provision?target=dhcp|nodeset|un_dhcp|un_nodeset[&osimage=]`:
/// the owning conductors write (or remove) each node's DHCP reservation
/// and boot files; `nodeset` also its install entry, answer files and
/// callback token, and sets its next boot to the network.
async fn provision(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<ActionQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    if q.persistent.is_some() {
        return Err(ApiError::bad_request("persistent: only for boot_device"));
    }
    let t = q.target.as_deref().unwrap_or("");
    let Some(target) = ProvisionTarget::parse(t, q.osimage.as_deref()) else {
        return Err(ApiError::bad_request(format!(
            "target: `{t}` is not one of {}",
            ProvisionTarget::ALL.join(", ")
        )));
    };
    match &target {
        ProvisionTarget::Nodeset {
            osimage: Some(name),
        } => match resources::osimage(&st.db, name).await {
            Ok(_) => {}
            Err(DbError::NotFound(_)) => {
                return Err(ApiError::bad_request(format!(
                    "osimage: `{name}` does not exist (xcat3 osimage-list; xcat3 copycds ISO)"
                )));
            }
            Err(e) => return Err(e.into()),
        },
        ProvisionTarget::Nodeset { osimage: None } => {}
        _ if q.osimage.is_some() => {
            return Err(ApiError::bad_request("osimage: only with target=nodeset"));
        }
        _ => {}
    }
    act(
        st,
        origin,
        &q,
        &body,
        Action::Provision { target },
        StatusCode::ACCEPTED,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackQuery {
    name: Option<String>,
}

/// `PUT /nodes/provision/callback?name=N` with `{"token": "..."}`: the
/// installer's last step. The node's one-time token (from its kernel
/// command line and answer file) is consumed in the same statement that
/// makes it `deployed`, so a token works once; then the owning conductor
/// turns the node's boot entry to its local disk. Unauthenticated by
/// design (the installer holds no API credentials): the token is the
/// credential. v1's `fetch_ssh_pub` (root's public key for anyone) is gone.
async fn callback(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<CallbackQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let name = q
        .name
        .ok_or_else(|| ApiError::bad_request("name: missing (the node calling back)"))?;
    if body.get("fetch_ssh_pub").is_some() {
        return Err(ApiError::bad_request(
            "fetch_ssh_pub: not supported (v1 handed the API host's root key to anyone); put keys in the osimage's template",
        ));
    }
    let token = body
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::with_status(
                StatusCode::UNAUTHORIZED,
                format!("{name}: token: missing; the callback needs the node's one-time token"),
            )
        })?;
    if !node_db::consume_deploy_token(&st.db, &name, token).await? {
        let node = resources::node_by_name(&st.db, &name).await?;
        let state = ProvisionState::from_column(node.state.as_deref());
        return Err(match state.next(ProvisionEvent::Callback) {
            Err(why) => ApiError::with_status(StatusCode::CONFLICT, format!("{name}: {why}")),
            Ok(_) => ApiError::with_status(
                StatusCode::FORBIDDEN,
                format!("{name}: token: refused (not this node's current one-time token)"),
            ),
        });
    }
    tracing::info!(node = %name, "install callback accepted; node deployed");
    // Local boot from now on. Should this fail, the conductor's periodic
    // pass finds the install entry of a node no longer deploying and
    // turns it to local boot anyway.
    let mut rx = dispatch::dispatch(
        &st,
        Action::Provision {
            target: ProvisionTarget::LocalBoot,
        },
        vec![name.clone()],
        &origin,
    )
    .await?;
    while let Some(batch) = rx.recv().await {
        for (n, r) in batch {
            if r != xcat3_common::model::tokens::OK {
                tracing::warn!(node = %n, result = %r, "local boot after the callback not yet set; the conductor's sweep will");
            }
        }
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "nodes": { name: "deployed" } })),
    )
        .into_response())
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
