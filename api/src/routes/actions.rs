//! Actions on many nodes: power and boot device (v1 wire format), and the
//! ring placement. Replies are `{"nodes": {name: result}}`, or, with
//! `Accept: application/x-ndjson`, one such line per batch as results
//! arrive.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Value, json};
use xcat3_common::agent::Step;
use xcat3_common::model::{ImageKind, ProvisionEvent, ProvisionState};
use xcat3_common::noderange;
use xcat3_common::rpc::{Action, BootDevice, PowerTarget, ProvisionTarget};
use xcat3_db::nodes as node_db;
use xcat3_db::{DbError, resources};

use super::requested_names;
use crate::AppState;
use crate::dispatch::{self, Results};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params};
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nodes/power", get(power_status).put(power_set))
        .route("/nodes/boot_device", get(boot_get).put(boot_set))
        .route("/nodes/provision", put(provision))
        .route(
            "/nodes/provision/callback",
            put(callback).layer(DefaultBodyLimit::max(CALLBACK_MAX_BODY)),
        )
        .route(
            "/nodes/provision/postscripts",
            axum::routing::post(fetch_postscripts).layer(DefaultBodyLimit::max(CALLBACK_MAX_BODY)),
        )
        .route("/ring", get(ring))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    power_status,
    power_set,
    boot_get,
    boot_set,
    provision,
    callback,
    fetch_postscripts,
    ring
))]
pub struct Doc;

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

/// How a node's result goes on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// v1's text (`"on"`, `"ok"`, an error message).
    Text,
    /// A successful result is the JSON document the conductor sent
    /// (inventory, readings, events); a failure is its message, with its
    /// kind in `error_kinds`, in plain replies too.
    Json,
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
    run(&st, &origin, names, action, status, Shape::Text).await
}

/// Dispatches `action` on `names`; the reply streams when the caller
/// asked for ndjson.
pub(super) async fn run(
    st: &AppState,
    origin: &Origin,
    names: Vec<String>,
    action: Action,
    status: StatusCode,
    shape: Shape,
) -> ApiResult<Response> {
    let mut rx = dispatch::dispatch(st, action, names, origin).await?;
    if origin.stream {
        let stream = async_stream(rx, shape);
        let body = Body::from_stream(stream);
        return Ok((
            status,
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            body,
        )
            .into_response());
    }
    if shape == Shape::Json {
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            all.extend(batch);
        }
        return Ok((
            status,
            [(header::CONTENT_TYPE, "application/json")],
            documents_json(all),
        )
            .into_response());
    }
    // The plain reply is exactly v1's; the kinds are in the stream and in
    // the history (`GET /v1/requests/{id}`, the id in the reply header).
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    while let Some(batch) = rx.recv().await {
        all.extend(batch.into_iter().map(|(n, r)| (n, r.into_text())));
    }
    Ok((status, Json(json!({ "nodes": all }))).into_response())
}

/// A stream line: v1's `{"nodes": {node: text}}`, plus (an addition)
/// `"error_kinds": {node: kind}` when some failed: `unreachable`,
/// `authentication`, `unsupported`, `timeout`, `invalid`, `bmc_error`,
/// `locked`, `not_found` or `internal`.
pub(super) fn results_json(results: Results) -> Value {
    let mut nodes = serde_json::Map::new();
    let mut kinds = serde_json::Map::new();
    for (name, r) in results {
        if let Some(kind) = r.kind() {
            kinds.insert(name.clone(), Value::String(kind.as_str().into()));
        }
        nodes.insert(name, Value::String(r.into_text()));
    }
    let mut v = json!({ "nodes": nodes });
    if !kinds.is_empty() {
        v["error_kinds"] = Value::Object(kinds);
    }
    v
}

/// [`results_json`] for [`Shape::Json`], as text: a successful node's
/// document (and a failed command's outcome) goes in as the conductor wrote it (checked to be JSON, not
/// parsed into a tree and written out again: 10,000 nodes' readings are
/// tens of megabytes); anything else is a JSON string.
fn documents_json(results: Results) -> String {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = String::with_capacity(
        results
            .iter()
            .map(|(n, r)| n.len() + r.text().len() + 4)
            .sum::<usize>()
            + 32,
    );
    let mut kinds = serde_json::Map::new();
    out.push_str("{\"nodes\":{");
    for (i, (name, r)) in results.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quoted(&name));
        out.push(':');
        if let Some(kind) = r.kind() {
            kinds.insert(name, Value::String(kind.as_str().into()));
        }
        // A command that ran and failed is still its outcome document.
        let document = r.is_ok() || r.kind() == Some(xcat3_common::rpc::ErrorKind::CommandFailed);
        let text = r.into_text();
        if document && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
            out.push_str(&text);
        } else {
            out.push_str(&quoted(&text));
        }
    }
    out.push('}');
    if !kinds.is_empty() {
        out.push_str(",\"error_kinds\":");
        out.push_str(&Value::Object(kinds).to_string());
    }
    out.push('}');
    out
}

/// Turns result batches into ndjson lines ([`results_json`] or
/// [`documents_json`]).
fn async_stream(
    rx: tokio::sync::mpsc::Receiver<Results>,
    shape: Shape,
) -> impl futures_util::Stream<Item = Result<String, std::convert::Infallible>> {
    futures_util::stream::unfold(rx, move |mut rx| async move {
        let batch = rx.recv().await?;
        let mut line = match shape {
            Shape::Text => results_json(batch).to_string(),
            Shape::Json => documents_json(batch),
        };
        line.push('\n');
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

#[utoipa::path(get, path = "/v1/nodes/power", tag = "actions", operation_id = "power_status", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 200, description = "per node: on, off, or its error; with Accept: application/x-ndjson, one such object per line as batches finish", content((NodeResults = "application/json"), (NodeResults = "application/x-ndjson")))))]
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

#[utoipa::path(put, path = "/v1/nodes/power", tag = "actions", operation_id = "power_set", params(("target" = xcat3_common::rpc::PowerTarget, Query), ("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 202, description = "per node: ok, or its error; with Accept: application/x-ndjson, one such object per line as batches finish", content((NodeResults = "application/json"), (NodeResults = "application/x-ndjson")))))]
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

#[utoipa::path(get, path = "/v1/nodes/boot_device", tag = "actions", operation_id = "boot_device_get", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 200, description = "per node: net, disk, cdrom, bios, or its error; with Accept: application/x-ndjson, one such object per line as batches finish", content((NodeResults = "application/json"), (NodeResults = "application/x-ndjson")))))]
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

#[utoipa::path(put, path = "/v1/nodes/boot_device", tag = "actions", operation_id = "boot_device_set", params(("target" = xcat3_common::rpc::BootDevice, Query), ("persistent" = Option<bool>, Query, description = "every boot, not only the next"), ("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 202, description = "per node: ok, or its error; with Accept: application/x-ndjson, one such object per line as batches finish", content((NodeResults = "application/json"), (NodeResults = "application/x-ndjson")))))]
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
#[utoipa::path(put, path = "/v1/nodes/provision", tag = "actions", operation_id = "provision", params(("target" = ProvisionWord, Query), ("osimage" = Option<String>, Query, description = "nodeset: the image (default: each node's own)"), ("subnet" = Option<String>, Query, description = "accepted for v1 clients and not needed: each node's network is the one holding its IP"), ("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 202, description = "per node: ok, or an error naming the field; with Accept: application/x-ndjson, one such object per line as batches finish", content((NodeResults = "application/json"), (NodeResults = "application/x-ndjson")))))]
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

/// The callback's body: the node's token, and from an image's agent the
/// step it reached or the step that failed. Small and typed: this route
/// is open to anyone on the provisioning network.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CallbackBody {
    /// The node's token (kernel command line, answer file).
    #[schema(required)]
    token: Option<String>,
    /// The step reached (`image fetched`, `root mounted`, `agent up`,
    /// `installing`, `done`); absent means `done` (installers' callback).
    #[schema(value_type = Option<StepWord>)]
    step: Option<String>,
    /// With `step`: that step failed, and why. The node is `deploy failed`
    /// with this text.
    error: Option<String>,
    /// From an image's agent with `done`: the node's SSH host public keys
    /// (OpenSSH lines, at most 8), made at its boot; conductors check the
    /// node's SSH server against them (`exec`, `copy`).
    host_keys: Option<Vec<String>>,
    /// From an image's agent: how each post-boot script ran (kept per
    /// node, `xcat3 postscripts NODERANGE`).
    #[schema(value_type = Option<Vec<xcat3_common::postscripts::Ran>>)]
    postscripts: Option<Vec<xcat3_common::postscripts::Ran>>,
    /// v1's key handout, refused by name.
    #[schema(ignore)]
    fetch_ssh_pub: Option<serde::de::IgnoredAny>,
}

/// Largest callback body (a token, a step, a 1 KiB error, host keys, the
/// output tails of up to 64 post-boot scripts).
pub const CALLBACK_MAX_BODY: usize = 128 * 1024;

/// The one answer to every refused callback whose request was well
/// formed: the same status and text whether the node is unknown, not
/// deploying, calling from elsewhere or holding a wrong token, so the
/// callback cannot be used to list nodes or read their states.
fn callback_refused() -> ApiError {
    ApiError::with_status(
        StatusCode::FORBIDDEN,
        "install callback refused: not the one-time token of a node deploying under this name, from its own address",
    )
}

/// The address a callback comes from: the connection's peer, or, when the
/// peer is one of `trusted_proxies`, the last `X-Forwarded-For` hop (the
/// one the proxy added). IPv4-mapped IPv6 addresses compare as IPv4.
fn client_address(
    peer: Option<SocketAddr>,
    trusted_proxies: &[String],
    headers: &axum::http::HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?.ip().to_canonical();
    let trusted = trusted_proxies
        .iter()
        .any(|p| p.parse::<IpAddr>().is_ok_and(|p| p.to_canonical() == peer));
    if !trusted {
        return Some(peer);
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// What a report does to a node in state `current` deployed with an
/// image of `kind` (`None`: an installer medium): the event, the step
/// recorded, the failure text, and whether the token is used up.
fn judge_report(
    current: ProvisionState,
    kind: Option<ImageKind>,
    step: Step,
    error: Option<String>,
) -> Result<(ProvisionState, Option<String>, bool), String> {
    let stateless = kind == Some(ImageKind::Stateless);
    let event = match (&error, step) {
        (Some(_), _) => ProvisionEvent::Fail,
        (None, Step::Done) if stateless => ProvisionEvent::Booted,
        (None, Step::Done) => ProvisionEvent::Callback,
        (None, _) => ProvisionEvent::Rebooting,
    };
    // Only a stateless node comes back from booted or failed by itself
    // (it network-boots its image again); its report of a failure there
    // is a failure of that new boot.
    let from = match current {
        ProvisionState::Booted | ProvisionState::DeployFailed if stateless => {
            ProvisionState::Deploying
        }
        s if event == ProvisionEvent::Rebooting && s != ProvisionState::Deploying => {
            return Err(format!("state: {s}, not deploying"));
        }
        s => s,
    };
    let next = from.next(event)?;
    let consume = !stateless && (next == ProvisionState::Deployed || error.is_some());
    let error = error.map(|e| format!("{step} failed: {e}"));
    Ok((next, error, consume))
}

/// `PUT /nodes/provision/callback?name=N` with `{"token": "..."}`: the
/// installer's last step, or with `step` (and `error`) a boot step an
/// image's agent reached (or that failed there). Without `step`, or with
/// `done`, the node is `deployed` and its token used up, then the owning
/// conductor turns its boot entry to the local disk; a stateless image's
/// node is `booted` instead and keeps its token and network boot, since
/// it reports every boot. A step records where the node is
/// (`deploy_step`); a failed step makes it `deploy failed` with the
/// agent's reason. Unauthenticated by design (the node holds no API
/// credentials): the token is the credential, accepted only from one of
/// the node's own addresses (`[boot] check_node_address`). v1's
/// `fetch_ssh_pub` (root's public key for anyone) is gone.
#[utoipa::path(put, path = "/v1/nodes/provision/callback", tag = "actions", operation_id = "provision_callback", params(("name" = String, Query, description = "the node calling back")), request_body = CallbackBody, responses((status = 200, description = "the node's state after the report (deployed, booted, deploying, deploy failed)", body = NodeResults), (status = 401, description = "no token", body = Fault), (status = 403, description = "not the one-time token of a node deploying under this name, from its own address", body = Fault)))]
async fn callback(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<CallbackQuery>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (client, body) = node_request(&st, req).await?;
    let body: CallbackBody = if body.is_null() {
        CallbackBody {
            token: None,
            step: None,
            error: None,
            host_keys: None,
            postscripts: None,
            fetch_ssh_pub: None,
        }
    } else {
        serde_json::from_value(body).map_err(|e| {
            ApiError::bad_request(format!(
                "request body: {e} (expected {{\"token\": \"...\"}})"
            ))
        })?
    };
    let name = q
        .name
        .ok_or_else(|| ApiError::bad_request("name: missing (the node calling back)"))?;
    if body.fetch_ssh_pub.is_some() {
        return Err(ApiError::bad_request(
            "fetch_ssh_pub: not supported (v1 handed the API host's root key to anyone); put keys in the osimage's template",
        ));
    }
    let step = match body.step.as_deref() {
        None => Step::Done,
        Some(s) => Step::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name}: step: `{s}` is not one of {}",
                Step::NAMES.join(", ")
            ))
        })?,
    };
    let error = body
        .error
        .as_deref()
        .map(xcat3_common::agent::clean_error)
        .map(|e| {
            if e.is_empty() {
                "no reason given".into()
            } else {
                e
            }
        });
    let token = body.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::with_status(
            StatusCode::UNAUTHORIZED,
            format!("{name}: token: missing; the callback needs the node's one-time token"),
        )
    })?;
    let recs = node_db::load(&st.db, std::slice::from_ref(&name), true).await?;
    let Some(rec) = recs.into_iter().next() else {
        tracing::warn!(node = %name, client = ?client, "install callback refused: no such node");
        return Err(callback_refused());
    };
    if !from_node(&st, &rec, client) {
        tracing::warn!(node = %name, client = ?client, "install callback refused: not from one of the node's addresses");
        return Err(callback_refused());
    }
    // The token first: a caller that has not proven itself the node
    // learns nothing about its report, not even that it is malformed.
    if !rec
        .node
        .deploy_token
        .as_deref()
        .is_some_and(|t| same_secret(t, &token))
    {
        tracing::warn!(node = %name, client = ?client, "install callback refused: not the node's token");
        return Err(callback_refused());
    }
    let host_keys = match &body.host_keys {
        Some(keys) => Some(
            xcat3_conductor::shell::checked_host_keys(keys)
                .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))?,
        ),
        None => None,
    };
    let kind = match rec.node.osimage_id {
        Some(id) => match resources::osimage_by_id(&st.db, id).await {
            Ok(row) => row.provmethod.as_deref().and_then(ImageKind::parse),
            Err(DbError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let current = ProvisionState::from_column(rec.node.state.as_deref());
    let (next, error, consume) = match judge_report(current, kind, step, error) {
        Ok(j) => j,
        Err(why) => {
            tracing::warn!(node = %name, client = ?client, %step, why, "install callback refused");
            return Err(callback_refused());
        }
    };
    let to = next.column();
    let report = node_db::StepReport {
        name: &name,
        token: &token,
        from: rec.node.state.as_deref(),
        to: to.as_deref(),
        step: step.as_str(),
        error: error.clone(),
        consume_token: consume,
    };
    if !node_db::report_step(&st.db, &report).await? {
        tracing::warn!(node = %name, client = ?client, "install callback refused: no such node deploying with this token");
        return Err(callback_refused());
    }
    // Only a report its token proved comes this far.
    if let Some(keys) = host_keys {
        xcat3_db::shell::store_host_keys(&st.db, rec.node.id, &keys).await?;
        tracing::info!(node = %name, keys = keys.len(), "node reported its SSH host keys");
    }
    if let Some(runs) = &body.postscripts {
        let runs: Vec<_> = runs
            .iter()
            .take(xcat3_common::postscripts::MAX_PER_NODE)
            .map(|r| xcat3_common::postscripts::Ran {
                name: r.name.chars().take(64).collect(),
                exit_status: r.exit_status,
                output: xcat3_common::postscripts::tail(&r.output),
            })
            .collect();
        xcat3_db::scripts::record_run(&st.db, rec.node.id, &runs).await?;
    }
    match &error {
        Some(e) => {
            tracing::warn!(node = %name, %step, error = %e, "node reports a failed step; deploy failed")
        }
        None => tracing::info!(node = %name, %step, state = %next, "node reports a step"),
    }
    if next == ProvisionState::Deployed {
        // Local boot from now on. Should this fail, the conductor's
        // periodic pass finds the install entry of a node no longer
        // deploying and turns it to local boot anyway.
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
                if let xcat3_common::rpc::NodeResult::Error(e) = r {
                    tracing::warn!(node = %n, kind = %e.kind, result = %e.message, "local boot after the callback not yet set; the conductor's sweep will");
                }
            }
        }
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "nodes": { name: next.as_str() } })),
    )
        .into_response())
}

/// `POST /nodes/provision/postscripts?name=N`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchBody {
    /// The node's token (kernel command line).
    token: String,
}

/// `POST /nodes/provision/postscripts?name=N` with `{"token": "..."}`:
/// the scripts the node runs after boot (`control_info.postscripts`, its
/// own or its group's), in order. For the node's agent: the node's token,
/// from the node's own address, while it deploys or runs a stateless
/// image; refused exactly like a bad callback otherwise.
#[utoipa::path(post, path = "/v1/nodes/provision/postscripts", tag = "actions", operation_id = "fetch_postscripts", params(("name" = String, Query, description = "the node asking")), request_body = FetchBody, responses((status = 200, description = "the node's scripts, in order", body = Vec<xcat3_common::postscripts::Script>), (status = 403, description = "not the token of a node deploying under this name, from its own address", body = Fault)))]
async fn fetch_postscripts(
    State(st): State<AppState>,
    Params(q): Params<CallbackQuery>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let (client, body) = node_request(&st, req).await?;
    let body: FetchBody = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "request body: {e} (expected {{\"token\": \"...\"}})"
        ))
    })?;
    let name = q
        .name
        .ok_or_else(|| ApiError::bad_request("name: missing (the node asking)"))?;
    let recs = node_db::load_resolved(&st.db, std::slice::from_ref(&name), true).await?;
    let Some(rec) = recs.into_iter().next() else {
        return Err(callback_refused());
    };
    let from_node = from_node(&st, &rec, client);
    let state = ProvisionState::from_column(rec.node.state.as_deref());
    let booting = matches!(state, ProvisionState::Deploying | ProvisionState::Booted);
    let token_ok = rec
        .node
        .deploy_token
        .as_deref()
        .is_some_and(|t| same_secret(t, &body.token));
    if !(from_node && booting && token_ok) {
        tracing::warn!(node = %name, client = ?client, "postscripts fetch refused");
        return Err(callback_refused());
    }
    let info = node_db::parse_map(&rec.node.control_info);
    let listed = info
        .get(xcat3_common::postscripts::KEY)
        .and_then(Value::as_str)
        .unwrap_or("");
    let names = xcat3_common::postscripts::parse_list(listed)
        .map_err(|e| ApiError::bad_request(format!("{name}: control_info.postscripts: {e}")))?;
    let stored = xcat3_db::scripts::get(&st.db, &names).await?;
    let scripts = xcat3_common::postscripts::in_order(&names, &stored)
        .map_err(|e| ApiError::with_status(StatusCode::CONFLICT, format!("{name}: {e}")))?;
    Ok((StatusCode::OK, Json(json!(scripts))).into_response())
}

/// A node's own request (its callback, its postscripts fetch): the
/// address it comes from and its JSON body (`Null` when empty).
async fn node_request(
    st: &AppState,
    req: axum::extract::Request,
) -> ApiResult<(Option<IpAddr>, Value)> {
    let (parts, body) = req.into_parts();
    let client = client_address(
        xcat3_conductor::listener::peer(&parts.extensions),
        &st.config.api.trusted_proxies,
        &parts.headers,
    );
    let body = crate::extract::read_json(axum::extract::Request::from_parts(parts, body))
        .await?
        .unwrap_or(Value::Null);
    Ok((client, body))
}

/// Whether a node's own request comes from one of its addresses (always,
/// with `[boot] check_node_address` off).
fn from_node(st: &AppState, rec: &node_db::NodeRecord, client: Option<IpAddr>) -> bool {
    !st.config.boot.check_node_address
        || client.is_some_and(|c| {
            rec.nics
                .iter()
                .filter_map(|n| n.ip.as_deref()?.parse::<IpAddr>().ok())
                .any(|ip| ip == c)
        })
}

/// Compares two secrets in time that depends on their length only.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `GET /ring?noderange=` → `{"nodes": {name: conductor}}`.
#[utoipa::path(get, path = "/v1/ring", tag = "actions", operation_id = "ring", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 200, description = "the conductor owning each node", body = Placement)))]
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

#[cfg(test)]
mod tests {
    use super::*;
    use xcat3_common::rpc::{ErrorKind, NodeResult};

    #[test]
    fn the_callers_address_is_the_peer_unless_a_trusted_proxy_says_otherwise() {
        let mut h = axum::http::HeaderMap::new();
        h.append("x-forwarded-for", "10.9.9.9, 10.0.0.21".parse().unwrap());
        let peer = |a: &str| Some(a.parse::<SocketAddr>().unwrap());
        let ip = |a: &str| Some(a.parse::<IpAddr>().unwrap());
        let proxies = ["127.0.0.1".to_string()];
        // A trusted proxy: the hop it added (the last), not what the
        // client claimed before it.
        assert_eq!(
            client_address(peer("127.0.0.1:5000"), &proxies, &h),
            ip("10.0.0.21")
        );
        // Anyone else: its own address, whatever it claims.
        assert_eq!(
            client_address(peer("10.0.0.66:5000"), &proxies, &h),
            ip("10.0.0.66")
        );
        assert_eq!(
            client_address(peer("[::ffff:10.0.0.21]:5000"), &[], &h),
            ip("10.0.0.21")
        );
        assert_eq!(client_address(None, &proxies, &h), None);
        let empty = axum::http::HeaderMap::new();
        assert_eq!(
            client_address(peer("127.0.0.1:5000"), &proxies, &empty),
            None
        );
    }

    /// Documents go in as values, failures and non-JSON text as strings,
    /// names escaped; the whole is one JSON object.
    #[test]
    fn documents_are_embedded_not_reparsed() {
        let results = vec![
            (
                "n1".to_string(),
                NodeResult::Ok(r#"[{"name":"FAN1","value":5600.0}]"#.into()),
            ),
            ("n\"2".to_string(), NodeResult::Ok("not json {".into())),
            (
                "n3".to_string(),
                NodeResult::error(ErrorKind::Unreachable, "BMC 10.0.0.3 did not answer"),
            ),
        ];
        let v: Value = serde_json::from_str(&documents_json(results)).unwrap();
        assert_eq!(v["nodes"]["n1"][0]["value"], 5600.0);
        assert_eq!(v["nodes"]["n\"2"], "not json {");
        assert_eq!(v["nodes"]["n3"], "BMC 10.0.0.3 did not answer");
        assert_eq!(v["error_kinds"], json!({"n3": "unreachable"}));
    }

    /// What an agent's report does, by image kind and state.
    #[test]
    fn reports_are_judged_by_kind_and_state() {
        use ProvisionState as S;
        let stateless = Some(ImageKind::Stateless);
        let image = Some(ImageKind::Image);
        let ok = |cur, kind, step, err: Option<&str>| {
            judge_report(cur, kind, step, err.map(str::to_string)).unwrap()
        };
        // A stateless boot: steps keep it deploying, done makes it booted
        // and keeps the token; its next boot's first step is deploying.
        assert_eq!(
            ok(S::Deploying, stateless, Step::AgentUp, None),
            (S::Deploying, None, false)
        );
        assert_eq!(
            ok(S::Deploying, stateless, Step::Done, None),
            (S::Booted, None, false)
        );
        assert_eq!(
            ok(S::Booted, stateless, Step::RootMounted, None),
            (S::Deploying, None, false)
        );
        assert_eq!(
            ok(S::Booted, stateless, Step::AgentUp, Some("no network")),
            (
                S::DeployFailed,
                Some("agent up failed: no network".into()),
                false
            )
        );
        assert_eq!(
            ok(S::DeployFailed, stateless, Step::AgentUp, None),
            (S::Deploying, None, false)
        );
        // A disk write: done uses the token up, as does a failure.
        assert_eq!(
            ok(S::Deploying, image, Step::Installing, None),
            (S::Deploying, None, false)
        );
        assert_eq!(
            ok(S::Deploying, image, Step::Done, None),
            (S::Deployed, None, true)
        );
        assert_eq!(
            ok(S::Deploying, image, Step::Installing, Some("no disk")),
            (
                S::DeployFailed,
                Some("installing failed: no disk".into()),
                true
            )
        );
        // An installer's plain callback.
        assert_eq!(
            ok(S::Deploying, None, Step::Done, None),
            (S::Deployed, None, true)
        );
        // Refused: a written node does not come back by itself.
        for (cur, kind, step) in [
            (S::Deployed, image, Step::AgentUp),
            (S::DeployFailed, image, Step::Done),
            (S::Available, None, Step::Done),
            (S::Deployed, stateless, Step::Done),
        ] {
            assert!(
                judge_report(cur, kind, step, None).is_err(),
                "{cur} {kind:?} {step}"
            );
        }
    }
}
