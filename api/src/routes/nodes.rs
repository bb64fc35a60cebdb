//! `/v1/nodes`: bulk inventory. Every node named in a request gets exactly
//! one entry in the reply's `nodes` map.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use xcat3_common::model::{
    MASK, NodeSpec, ProvisionState, apply_patches, has_masked, parse_patches, strip_masked, tokens,
};
use xcat3_common::noderange;
use xcat3_common::rpc::ErrorKind;
use xcat3_db::history::{self, NodeOutcome};
use xcat3_db::nodes::{self as node_db, NodeRecord, NodeUpdate, Outcomes};
use xcat3_db::resources;

use super::{ListQuery, check_count, check_names, expand_range, parse_fields, requested_names};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params, Path};
use crate::view;
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/nodes",
            get(list).post(create).patch(update).delete(delete),
        )
        .route("/nodes/info", get(info))
        .route("/nodes/export", get(export))
        .route("/nodes/{name}", get(show))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, info, create, export, update, delete))]
pub struct Doc;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeListQuery {
    fields: Option<String>,
    noderange: Option<String>,
    /// Only nodes in this provisioning state.
    state: Option<String>,
    /// Only nodes whose last known power state is this (`on`, `off`,
    /// `unknown`).
    power_state: Option<String>,
    /// Only nodes whose last health verdict is this (`ok`, `warning`,
    /// `critical`, `unknown`).
    health: Option<String>,
}

/// Health verdicts a node list can be filtered by (`unknown`: never judged).
pub(crate) const HEALTH_STATES: &[&str] = &["ok", "warning", "critical", "unknown"];

/// Power states a node list can be filtered by (`unknown`: never read).
pub(crate) const POWER_STATES: &[&str] = &["on", "off", "unknown"];

/// `GET /nodes[?noderange=][&state=][&power_state=][&health=]` → `{"nodes": [names]}`; unknown
/// names of a noderange are listed under `missing`.
#[utoipa::path(get, path = "/v1/nodes", tag = "nodes", operation_id = "list_nodes", params(("noderange" = Option<NodeRange>, Query, description = "only these nodes"), ("state" = Option<StateWord>, Query), ("power_state" = Option<PowerStateWord>, Query), ("health" = Option<HealthWord>, Query)), responses((status = 200, description = "node names; with a noderange, its names with no node under missing", body = NodeNameList)))]
async fn list(
    State(st): State<AppState>,
    Params(q): Params<NodeListQuery>,
) -> ApiResult<Json<Value>> {
    if q.fields.is_some() {
        return Err(ApiError::bad_request(
            "fields: not accepted here; use GET /nodes/info",
        ));
    }
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(ProvisionState::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "state: `{s}` is not one of {}",
                ProvisionState::ALL.join(", ")
            ))
        })?),
    };
    let all = node_db::list_names(&st.db).await?;
    let in_state: Option<HashSet<String>> = match state {
        Some(s) => Some(
            node_db::names_in_state(&st.db, s)
                .await?
                .into_iter()
                .collect(),
        ),
        None => None,
    };
    let with_power: Option<HashSet<String>> = match q.power_state.as_deref() {
        Some(p) => {
            if !POWER_STATES.contains(&p) {
                return Err(ApiError::bad_request(format!(
                    "power_state: `{p}` is not one of {}",
                    POWER_STATES.join(", ")
                )));
            }
            Some(
                node_db::names_with_power(&st.db, p)
                    .await?
                    .into_iter()
                    .collect(),
            )
        }
        None => None,
    };
    let with_health: Option<HashSet<String>> = match q.health.as_deref() {
        Some(h) => {
            if !HEALTH_STATES.contains(&h) {
                return Err(ApiError::bad_request(format!(
                    "health: `{h}` is not one of {}",
                    HEALTH_STATES.join(", ")
                )));
            }
            Some(
                node_db::names_with_health(&st.db, h)
                    .await?
                    .into_iter()
                    .collect(),
            )
        }
        None => None,
    };
    let keep = |n: &String| {
        in_state.as_ref().is_none_or(|s| s.contains(n))
            && with_power.as_ref().is_none_or(|s| s.contains(n))
            && with_health.as_ref().is_none_or(|s| s.contains(n))
    };
    let Some(range) = q.noderange else {
        let names: Vec<String> = all.into_iter().filter(keep).collect();
        return Ok(Json(json!({ "nodes": names })));
    };
    // The names just listed serve the expansion too (no second load).
    let known: Arc<HashSet<String>> = Arc::new(all.into_iter().collect());
    let wanted = expand_range(&st, &range, known.clone()).await?;
    check_names(&st, &wanted)?;
    let (found, missing): (Vec<String>, Vec<String>) =
        wanted.into_iter().partition(|n| known.contains(n));
    let found: Vec<String> = found.into_iter().filter(keep).collect();
    let mut out = json!({ "nodes": found });
    if !missing.is_empty() {
        out["missing"] = json!(noderange::fold(&missing));
    }
    Ok(Json(out))
}

/// Image names for the records that reference one.
async fn osimage_names(st: &AppState, recs: &[NodeRecord]) -> ApiResult<HashMap<i64, String>> {
    if recs.iter().all(|r| r.node.osimage_id.is_none()) {
        return Ok(HashMap::new());
    }
    Ok(resources::osimages(&st.db)
        .await?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect())
}

/// `GET /nodes/{name}?fields=a,b` → one node.
#[utoipa::path(get, path = "/v1/nodes/{name}", tag = "nodes", operation_id = "show_node", params(("name" = String, Path), ("fields" = Option<NodeFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the node", body = NodeOut)))]
async fn show(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Value>> {
    let fields = view::canonical_node_fields(parse_fields(q.fields.as_deref(), view::NODE_FIELDS)?);
    let recs = node_db::load_resolved(&st.db, std::slice::from_ref(&name), true).await?;
    let rec = recs
        .first()
        .ok_or_else(|| ApiError::not_found(format!("Node {name} could not be found.")))?;
    let images = osimage_names(&st, &recs).await?;
    let stored = inventories_for(&st, fields.as_deref(), std::slice::from_ref(&name)).await?;
    let mut v = view::node(rec, &images, fields.as_deref());
    put_inventory(&mut v, &name, &stored);
    Ok(Json(v))
}

/// The stored inventories of `names` when `fields` names `inventory`
/// (never by default: it is the largest part of a node).
async fn inventories_for(
    st: &AppState,
    fields: Option<&[String]>,
    names: &[String],
) -> ApiResult<Option<HashMap<String, (String, i64)>>> {
    if !fields.is_some_and(|f| f.iter().any(|x| x == "inventory")) {
        return Ok(None);
    }
    Ok(Some(xcat3_db::inventory::load(&st.db, names).await?))
}

/// Puts `name`'s stored inventory (or null) into its view `v`.
fn put_inventory(v: &mut Value, name: &str, stored: &Option<HashMap<String, (String, i64)>>) {
    if let Some(stored) = stored {
        v["inventory"] = stored
            .get(name)
            .map(|(data, at)| view::inventory(data, *at))
            .unwrap_or(Value::Null);
    }
}

/// `GET /nodes/info?fields=` with a node list (body or `?noderange=`) →
/// `{"nodes": [node..]}` plus `missing` for names that do not exist.
///
/// The reply is serialized node by node into one buffer, so 10,000 nodes
/// never exist as a tree of JSON values at once (peak memory).
#[utoipa::path(get, path = "/v1/nodes/info", tag = "nodes", operation_id = "show_nodes", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}"), ("fields" = Option<NodeFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the nodes; names with no node under missing", body = NodeList)))]
async fn info(
    State(st): State<AppState>,
    Params(q): Params<ListQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let fields = view::canonical_node_fields(parse_fields(q.fields.as_deref(), view::NODE_FIELDS)?);
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    let with_nics = fields
        .as_ref()
        .is_none_or(|f| f.iter().any(|x| x == "nics_info"));
    let recs = node_db::load_resolved(&st.db, &names, with_nics).await?;
    let images = osimage_names(&st, &recs).await?;
    let stored = inventories_for(&st, fields.as_deref(), &names).await?;
    let mut out: Vec<u8> = Vec::with_capacity(recs.len() * 400 + 64);
    out.extend_from_slice(b"{\"nodes\":[");
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut v = view::node(r, &images, fields.as_deref());
        put_inventory(&mut v, &r.node.name, &stored);
        serde_json::to_writer(&mut out, &v).map_err(|e| {
            ApiError::bad_request(format!("cannot encode node {}: {e}", r.node.name))
        })?;
    }
    out.push(b']');
    if recs.len() < names.len() {
        let found: HashSet<&str> = recs.iter().map(|r| r.node.name.as_str()).collect();
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !found.contains(n.as_str()))
            .collect();
        out.extend_from_slice(b",\"missing\":");
        serde_json::to_writer(&mut out, &noderange::fold(&missing))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    out.push(b'}');
    drop(recs);
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// Turns per-node outcomes into the v1 reply `{"nodes": {name: token|error}}`.
fn reply(outcomes: Outcomes, ok: &str) -> Value {
    let map: Map<String, Value> = outcomes
        .into_iter()
        .map(|(name, r)| {
            (
                name,
                Value::String(r.err().unwrap_or_else(|| ok.to_string())),
            )
        })
        .collect();
    json!({ "nodes": map })
}

/// `POST /nodes` `{"nodes":[node..]}` → 201 with `ok` or an error per node.
/// Valid nodes are created (with their nics, atomically) even when others
/// in the request are refused.
#[utoipa::path(post, path = "/v1/nodes", tag = "nodes", operation_id = "create_nodes", request_body = NodesCreate, responses((status = 201, description = "per node: ok, or the error that kept that node out (the others are created)", body = NodeResults)))]
async fn create(
    State(st): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // The documented shape first, for the whole request: a body that is
    // not of it is refused before any node is written.
    let list = body["nodes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    // (serde would also read a node from a list of its field values)
    if let Some(i) = list.iter().position(|v| !v.is_object()) {
        return Err(ApiError::bad_request(format!(
            "nodes[{i}]: must be a JSON object"
        )));
    }
    let _: NodesCreate = crate::wire::read(&body)?;
    if list.is_empty() {
        return Err(ApiError::bad_request("nodes: the list is empty"));
    }
    check_count(&st, list.len())?;

    let mut outcomes = Outcomes::new();
    // How often each name occurs: a name given twice is refused as a whole,
    // since one result per name cannot say which copy won.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in list {
        if let Some(n) = v.get("name").and_then(Value::as_str) {
            *counts.entry(n).or_default() += 1;
        }
    }
    let mut specs = Vec::with_capacity(list.len());
    let mut notes = Map::new();
    for (i, v) in list.iter().enumerate() {
        let key = v
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("nodes[{i}]"));
        if counts.get(key.as_str()).copied().unwrap_or(1) > 1 {
            outcomes.insert(
                key.clone(),
                Err(format!(
                    "Error: duplicate name: {key} is given {} times in this request",
                    counts[key.as_str()]
                )),
            );
            continue;
        }
        // A file written from masked replies (the v1 client's export)
        // holds the mask where secrets were: those keys are left unset and
        // said so, the node is still created.
        let mut cleaned = None;
        let mut unset = Vec::new();
        if has_masked(v) {
            let mut c = v.clone();
            unset = strip_masked(&mut c);
            cleaned = Some(c);
        }
        match NodeSpec::from_json(cleaned.as_ref().unwrap_or(v)) {
            Ok(spec) => {
                if !unset.is_empty() {
                    let note = format!(
                        "left unset: {} (the file held the mask {MASK}, not the secret)",
                        unset.join(", ")
                    );
                    notes.insert(spec.name.clone(), note.into());
                }
                specs.push(spec);
            }
            Err(e) => {
                outcomes.insert(key, Err(e.to_string()));
            }
        }
    }
    if !specs.is_empty() {
        outcomes.extend(node_db::create(&st.db, &specs).await?);
    }
    let mut out = reply(outcomes, tokens::OK);
    // Notes only for nodes that were created.
    notes.retain(|name, _| out["nodes"][name.as_str()] == tokens::OK);
    if !notes.is_empty() {
        out["notes"] = Value::Object(notes);
    }
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /nodes/export` with a node list → `{"nodes": [..], "groups":
/// [..]}`: each node's own writable fields (not what its groups give it)
/// and the groups they list, secrets in clear, for a backup that imports
/// back whole. Admin only; each call is
/// in the request history, naming its caller.
#[utoipa::path(get, path = "/v1/nodes/export", tag = "nodes", operation_id = "export_nodes", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 200, description = "each node's own writable fields and the groups they list, secrets in clear (admin; recorded in the request history)", body = NodeExport)))]
async fn export(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<ListQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    if q.fields.is_some() {
        return Err(ApiError::bad_request(
            "fields: not accepted here; an export holds every writable field",
        ));
    }
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    history::start(
        &st.db,
        &origin.request_id,
        "export --with-secrets",
        origin.caller.as_deref(),
        names.len(),
    )
    .await?;
    let recs = node_db::load(&st.db, &names, true).await?;
    let found: HashSet<&str> = recs.iter().map(|r| r.node.name.as_str()).collect();
    let outcomes: Vec<NodeOutcome> = names
        .iter()
        .map(|n| {
            let ok = found.contains(n.as_str());
            NodeOutcome {
                node: n.clone(),
                ok,
                result: if ok { tokens::OK } else { tokens::NOT_FOUND }.to_string(),
                kind: (!ok).then_some(ErrorKind::NotFound),
            }
        })
        .collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !found.contains(n.as_str()))
        .collect();
    history::finish(&st.db, &origin.request_id, &outcomes, missing.len()).await?;
    // The groups these nodes list, so the backup restores what they
    // inherit too.
    let listed: HashSet<String> = recs
        .iter()
        .flat_map(|r| node_db::group_list(r.node.groups.as_deref()))
        .collect();
    let groups: Vec<Value> = if listed.is_empty() {
        Vec::new()
    } else {
        xcat3_db::groups::list(&st.db)
            .await?
            .iter()
            .filter(|g| listed.contains(&g.name))
            .map(super::groups::document)
            .collect()
    };
    let mut out = json!({
        "nodes": recs.iter().map(|r| r.to_spec().to_json()).collect::<Vec<_>>(),
        "groups": groups,
    });
    if !missing.is_empty() {
        out["missing"] = noderange::fold(&missing).into();
    }
    tracing::info!(
        caller = origin.caller.as_deref().unwrap_or("-"),
        nodes = recs.len(),
        "export with secrets"
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out.to_string(),
    )
        .into_response())
}

/// `PATCH /nodes` `{"nodes":[{"name"}..], "patches":[{op,path,value}..]}`.
/// The same patches go to every node; each patched node is validated as a
/// whole (as a create would be) and gets `updated` or its own error.
#[utoipa::path(patch, path = "/v1/nodes", tag = "nodes", operation_id = "update_nodes", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), request_body = NodesPatch, responses((status = 200, description = "per node: updated, or the error that left it unchanged", body = NodeResults)))]
async fn update(
    State(st): State<AppState>,
    Params(q): Params<ListQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let _: NodesPatch = crate::wire::read(&body)?;
    let patches = parse_patches(
        body.get("patches").unwrap_or(&Value::Null),
        NodeSpec::PATCHABLE,
    )?;
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    let recs = node_db::load(&st.db, &names, true).await?;

    let mut outcomes = Outcomes::new();
    let mut updates = Vec::with_capacity(recs.len());
    for rec in recs {
        let mut doc = rec.to_spec().to_json();
        let patched = apply_patches(&mut doc, &patches).and_then(|()| NodeSpec::from_json(&doc));
        match patched {
            Ok(new) => updates.push(NodeUpdate { old: rec, new }),
            Err(e) => {
                outcomes.insert(rec.node.name.clone(), Err(e.to_string()));
            }
        }
    }
    if !updates.is_empty() {
        outcomes.extend(node_db::update(&st.db, &updates).await?);
    }
    for name in names {
        outcomes
            .entry(name)
            .or_insert_with(|| Err(tokens::NOT_FOUND.to_string()));
    }
    Ok(Json(reply(outcomes, tokens::UPDATED)))
}

/// `DELETE /nodes` with a node list → 202, `deleted` or an error per node.
#[utoipa::path(delete, path = "/v1/nodes", tag = "nodes", operation_id = "delete_nodes", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 202, description = "per node: deleted or an error", body = NodeResults)))]
async fn delete(
    State(st): State<AppState>,
    Params(q): Params<ListQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    let outcomes = node_db::delete(&st.db, &names).await?;
    Ok((StatusCode::ACCEPTED, Json(reply(outcomes, tokens::DELETED))))
}
