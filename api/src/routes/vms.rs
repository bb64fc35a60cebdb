//! KVM guest fleets: `mkvm` (`POST /nodes/vm`) and `rmvm`
//! (`DELETE /nodes/vm?purge=`).
//!
//! The API owns the inventory side: it validates the shape, places new
//! guests on the given hypervisors by free memory (asking each
//! hypervisor's conductor for its capacity), registers or updates each
//! guest node with a fresh MAC and its `control_info.vm_*`, and routes the
//! work to the conductor owning each guest's hypervisor. A guest whose
//! definition fails is taken out of the inventory again (or restored to
//! what it was), so a failed `mkvm` leaves nothing half-created.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use xcat3_common::model::{HypervisorCapacity, NodeSpec, VmShape, vm_host};
use xcat3_common::rpc::Action;
use xcat3_db::nodes::{self as node_db, NodeRecord, NodeUpdate, parse_map};

use super::{check_count, expand_range, requested_names};
use crate::AppState;
use crate::dispatch::{self, Results};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params};
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nodes/vm", post(create).delete(remove))
        .route("/nodes/vm/clone", post(clone))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, clone, remove))]
pub struct Doc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VmQuery {
    noderange: Option<String>,
    /// rmvm: also delete the guests' disks.
    purge: Option<bool>,
}

/// `mkvm` body options and the `control_info` keys they set.
const OPTIONS: &[(&str, &str)] = &[
    ("memory", "vm_memory"),
    ("cpus", "vm_cpus"),
    ("disk", "vm_disk"),
    ("disk_image", "vm_disk_image"),
    ("network", "vm_network"),
    ("pool", "vm_pool"),
    ("boot", "vm_boot"),
];

/// The value `node_type` a hypervisor node has.
const HYPERVISOR: &str = "hypervisor";

/// A locally administered MAC in QEMU's range (52:54:00), random; the
/// inventory's unique key catches the rare collision and we draw again.
fn new_mac() -> String {
    let b = uuid::Uuid::new_v4();
    let b = b.as_bytes();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// Collects every batch of a dispatch.
async fn collect(mut rx: tokio::sync::mpsc::Receiver<Results>) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    while let Some(batch) = rx.recv().await {
        all.extend(batch.into_iter().map(|(n, r)| (n, r.into_text())));
    }
    all
}

/// The hypervisors named by `hosts`, checked to be `type=hypervisor`.
async fn load_hosts(st: &AppState, hosts: &str) -> ApiResult<Vec<String>> {
    let known = super::names_for(st, hosts).await?;
    let names = expand_range(st, hosts, Arc::new(known))
        .await
        .map_err(|e| ApiError::bad_request(format!("hosts: {}", e.message)))?;
    if names.is_empty() {
        return Err(ApiError::bad_request("hosts: names no node"));
    }
    let recs = node_db::load_resolved(&st.db, &names, false).await?;
    let by_name: HashMap<&str, &NodeRecord> =
        recs.iter().map(|r| (r.node.name.as_str(), r)).collect();
    for n in &names {
        match by_name.get(n.as_str()) {
            None => return Err(ApiError::bad_request(format!("hosts: no node `{n}`"))),
            Some(r) if r.node.node_type.as_deref() != Some(HYPERVISOR) => {
                return Err(ApiError::bad_request(format!(
                    "hosts: `{n}` is not a hypervisor (set its type={HYPERVISOR} and its libvirt_uri or ssh_address)"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(names)
}

/// The guests a `mkvm`/`clonevm` body names, after checking its fields
/// are among `known`.
async fn guest_names(
    st: &AppState,
    q: &VmQuery,
    body: &Value,
    known: &[&str],
) -> ApiResult<Vec<String>> {
    if q.purge.is_some() {
        return Err(ApiError::bad_request("purge: only for DELETE (rmvm)"));
    }
    if !body.is_null() && !body.is_object() {
        return Err(ApiError::bad_request("request body: must be a JSON object"));
    }
    if let Some(k) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Err(ApiError::bad_request(format!(
            "{k}: unknown field (expected {})",
            known.join(", ")
        )));
    }
    let names = requested_names(st, q.noderange.as_deref(), body).await?;
    if names.is_empty() {
        return Err(ApiError::bad_request("nodes: none given"));
    }
    check_count(st, names.len())?;
    Ok(names)
}

/// One guest on its way through `mkvm`.
struct Pending {
    name: String,
    old: Option<NodeRecord>,
    control_info: Map<String, Value>,
    memory_mib: u64,
    cpus: u32,
    /// Where it goes; None until placed.
    host: Option<String>,
}

/// Places guests without a host on `hosts`: on the one with the most free
/// memory that also has the vCPUs, asking each hypervisor's conductor for
/// its capacity. Returns errors for guests that fit nowhere.
async fn place(
    st: &AppState,
    hosts: &[String],
    pending: &mut [Pending],
    origin: &Origin,
) -> ApiResult<BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    if pending.iter().all(|p| p.host.is_some()) {
        return Ok(errors);
    }
    let rx = dispatch::dispatch(st, Action::HypervisorInfo, hosts.to_vec(), origin).await?;
    let mut free: Vec<(String, u64, u32)> = Vec::new();
    let mut unreachable = Vec::new();
    for (host, text) in collect(rx).await {
        match serde_json::from_str::<HypervisorCapacity>(&text) {
            Ok(c) => free.push((host, c.free_mib(), c.cpus.saturating_sub(c.allocated_cpus))),
            Err(_) => unreachable.push(format!("{host}: {text}")),
        }
    }
    for p in pending.iter_mut().filter(|p| p.host.is_none()) {
        let best = free
            .iter_mut()
            .filter(|(_, m, c)| *m >= p.memory_mib && *c >= p.cpus)
            .max_by_key(|(_, m, _)| *m);
        match best {
            Some((host, m, c)) => {
                *m -= p.memory_mib;
                *c -= p.cpus;
                p.host = Some(host.clone());
            }
            None => {
                let most = free.iter().max_by_key(|(_, m, _)| *m);
                let why = match most {
                    Some((h, m, _)) if *m < p.memory_mib => format!(
                        "vm_memory: no hypervisor has {} MiB free (most: {m} MiB on {h})",
                        p.memory_mib
                    ),
                    Some(_) => format!(
                        "vm_cpus: no hypervisor with {} MiB free has {} vCPUs left",
                        p.memory_mib, p.cpus
                    ),
                    None => "no hypervisor could be asked for its capacity".to_string(),
                };
                let why = if unreachable.is_empty() {
                    why
                } else {
                    format!("{why}; {}", unreachable.join("; "))
                };
                errors.insert(p.name.clone(), why);
            }
        }
    }
    Ok(errors)
}

/// `POST /nodes/vm` (`xcat3 mkvm`): body `{"nodes": [...]}` or
/// `?noderange=`, and `hosts`, `memory`, `cpus`, `disk` | `disk_image`,
/// `network`, `pool`, `boot`. Answers `created`, `exists` or an error per
/// guest.
#[utoipa::path(post, path = "/v1/nodes/vm", tag = "vms", operation_id = "mkvm", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), request_body = Option<VmCreate>, responses((status = 201, description = "per guest: created, exists, or an error (failed guests are left as they were)", body = NodeResults)))]
async fn create(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<VmQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut known = vec!["nodes", "hosts", "expire_after"];
    known.extend(OPTIONS.iter().map(|(o, _)| *o));
    let names = guest_names(&st, &q, &body, &known).await?;
    let expiry = expire_after(&body)?;
    let empty = Map::new();
    let obj = body.as_object().unwrap_or(&empty);
    let mut opts = Map::new();
    for (option, key) in OPTIONS {
        if let Some(v) = obj.get(*option).filter(|v| !v.is_null()) {
            opts.insert(key.to_string(), v.clone());
        }
    }
    // The request's own options, checked once for all guests.
    VmShape::from_control_info(&opts).map_err(|e| {
        let option = OPTIONS
            .iter()
            .find(|(_, k)| e.field == format!("control_info.{k}"))
            .map(|(o, _)| *o)
            .unwrap_or("options");
        ApiError::bad_request(format!("{option}: {}", e.message))
    })?;
    let hosts = match obj.get("hosts") {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) => Some(load_hosts(&st, h).await?),
        Some(_) => return Err(ApiError::bad_request("hosts: must be a noderange string")),
    };
    let results = make_guests(&st, &origin, &names, opts, hosts, None).await?;
    set_expiry(&st, &results, expiry).await?;
    Ok((StatusCode::CREATED, Json(json!({ "nodes": results }))))
}

/// `expire_after` of a mkvm/clonevm body, as the time the guests expire.
fn expire_after(body: &Value) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    match body.get("expire_after") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ApiError::bad_request(
                        "expire_after: must be a duration such as 8h",
                    ));
                }
            };
            let secs = xcat3_common::model::parse_duration_s(&text)
                .map_err(|e| ApiError::bad_request(format!("expire_after: {e}")))?;
            Ok(Some(
                chrono::Utc::now() + chrono::Duration::seconds(secs as i64),
            ))
        }
    }
}

/// Marks the guests that were made (or already existed) to expire.
async fn set_expiry(
    st: &AppState,
    results: &BTreeMap<String, String>,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> ApiResult<()> {
    let Some(at) = at else { return Ok(()) };
    let made: Vec<String> = results
        .iter()
        .filter(|(_, r)| *r == "created" || *r == "exists")
        .map(|(n, _)| n.clone())
        .collect();
    node_db::set_expiry(&st.db, &made, Some(at)).await?;
    Ok(())
}

/// The shared half of `mkvm` and `clonevm`: each guest's record merged
/// with `opts`, placed (on `hosts`, or where it already is), registered,
/// defined through its hypervisor's conductor, and taken back out of the
/// inventory if that fails.
async fn make_guests(
    st: &AppState,
    origin: &Origin,
    names: &[String],
    opts: Map<String, Value>,
    hosts: Option<Vec<String>>,
    source: Option<String>,
) -> ApiResult<BTreeMap<String, String>> {
    let mut results: BTreeMap<String, String> = BTreeMap::new();
    let mut old: HashMap<String, NodeRecord> = node_db::load(&st.db, names, true)
        .await?
        .into_iter()
        .map(|r| (r.node.name.clone(), r))
        .collect();
    let mut pending = Vec::new();
    for name in names {
        let rec = old.remove(name);
        let mut ci = rec
            .as_ref()
            .map(|r| parse_map(&r.node.control_info))
            .unwrap_or_default();
        if let Some(r) = &rec
            && let Some(m) = r.node.mgt.as_deref().filter(|m| *m != "kvm")
        {
            results.insert(
                name.clone(),
                format!("mgt: `{m}`; mkvm makes KVM guests (mgt=kvm)"),
            );
            continue;
        }
        // Where the guest lives now (mkvm'd before, not rmvm'd since).
        let current = vm_host(&ci).map(str::to_string);
        ci.extend(opts.clone());
        let wanted = vm_host(&opts);
        let moved = |c: &str| {
            format!(
                "control_info.vm_host: the guest lives on {c}; rmvm it first to make it elsewhere"
            )
        };
        let host = match (&hosts, current, wanted) {
            (Some(hs), Some(c), _) if hs.contains(&c) => Some(c),
            (None, Some(c), Some(w)) if c != w => {
                results.insert(name.clone(), moved(&c));
                continue;
            }
            (Some(_), Some(c), _) => {
                results.insert(name.clone(), moved(&c));
                continue;
            }
            (Some(_), None, _) => None,
            (None, Some(c), _) => Some(c),
            (None, None, Some(w)) => Some(w.to_string()),
            (None, None, None) => {
                results.insert(
                    name.clone(),
                    "control_info.vm_host: not set; give the hypervisor (mkvm --host HV)".into(),
                );
                continue;
            }
        };
        match VmShape::from_control_info(&ci) {
            Ok(shape) => pending.push(Pending {
                name: name.clone(),
                old: rec,
                control_info: ci,
                memory_mib: shape.memory_mib,
                cpus: shape.cpus,
                host,
            }),
            Err(e) => {
                results.insert(name.clone(), e.to_string());
            }
        }
    }
    if let Some(hosts) = &hosts {
        results.extend(place(st, hosts, &mut pending, origin).await?);
    }
    pending.retain(|p| p.host.is_some() && !results.contains_key(&p.name));
    for p in &mut pending {
        p.control_info.insert("vm_host".into(), json!(p.host));
    }

    // Register: new guests are created, known ones updated, each with a
    // primary nic (a fresh MAC when it has none).
    let (mut created, mut updated) = (HashSet::new(), HashSet::new());
    let mut to_create: Vec<&Pending> = Vec::new();
    let mut updates = Vec::new();
    for p in &pending {
        let ci = p.control_info.clone();
        match &p.old {
            Some(rec) => {
                let mut doc = rec.to_spec().to_json();
                doc["mgt"] = json!("kvm");
                doc["control_info"] = Value::Object(ci);
                if rec.nics.is_empty() {
                    doc["nics_info"] = json!({"nics": [{"mac": new_mac(), "primary": true}]});
                }
                match NodeSpec::from_json(&doc) {
                    Ok(new) => updates.push(NodeUpdate {
                        old: rec.clone(),
                        new,
                    }),
                    Err(e) => {
                        results.insert(p.name.clone(), e.to_string());
                    }
                }
            }
            None => to_create.push(p),
        }
    }
    if !updates.is_empty() {
        for (name, r) in node_db::update(&st.db, &updates).await? {
            match r {
                Ok(()) => {
                    updated.insert(name);
                }
                Err(e) => {
                    results.insert(name, e);
                }
            }
        }
    }
    // A drawn MAC may be taken: those nodes draw again (three tries).
    for attempt in 0..3 {
        if to_create.is_empty() {
            break;
        }
        let mut specs = Vec::new();
        for p in &to_create {
            let doc = json!({"name": p.name, "mgt": "kvm", "control_info": p.control_info,
                             "nics_info": {"nics": [{"mac": new_mac(), "primary": true}]}});
            match NodeSpec::from_json(&doc) {
                Ok(s) => specs.push(s),
                Err(e) => {
                    results.insert(p.name.clone(), e.to_string());
                }
            }
        }
        let outcomes = node_db::create(&st.db, &specs).await?;
        let mut again = Vec::new();
        for p in to_create {
            match outcomes.get(&p.name) {
                Some(Ok(())) => {
                    created.insert(p.name.clone());
                }
                Some(Err(e)) if e.contains(".mac:") && attempt < 2 => again.push(p),
                Some(Err(e)) => {
                    results.insert(p.name.clone(), e.clone());
                }
                None => {}
            }
        }
        to_create = again;
    }

    let routes: BTreeMap<String, String> = pending
        .iter()
        .filter(|p| created.contains(&p.name) || updated.contains(&p.name))
        .filter_map(|p| Some((p.name.clone(), p.host.clone()?)))
        .collect();
    let guests: Vec<String> = routes.keys().cloned().collect();
    if !guests.is_empty() {
        let action = Action::VmCreate { source };
        let rx = dispatch::dispatch_routed(st, action, guests, routes, origin).await?;
        let defined = collect(rx).await;
        // Failed guests leave the inventory as they were.
        let failed = |n: &String| {
            defined
                .get(n)
                .is_none_or(|r| r != "created" && r != "exists")
        };
        let undo: Vec<String> = created.iter().filter(|n| failed(n)).cloned().collect();
        if !undo.is_empty() {
            node_db::delete(&st.db, &undo).await?;
        }
        let restore: Vec<String> = updated.iter().filter(|n| failed(n)).cloned().collect();
        if !restore.is_empty() {
            let now = node_db::load(&st.db, &restore, true).await?;
            let back: Vec<NodeUpdate> = now
                .into_iter()
                .filter_map(|cur| {
                    let was = updates.iter().find(|u| u.old.node.name == cur.node.name)?;
                    Some(NodeUpdate {
                        new: was.old.to_spec(),
                        old: cur,
                    })
                })
                .collect();
            node_db::update(&st.db, &back).await?;
        }
        results.extend(defined);
    }
    Ok(results)
}

/// `POST /nodes/vm/clone` (`xcat3 clonevm`): body `{"source": GUEST}` and
/// the clones by `?noderange=` or `{"nodes": [...]}`. Clones are linked
/// (qcow2 overlays on the source's disks) and live on the source's
/// hypervisor, with its size, network and boot order.
#[utoipa::path(post, path = "/v1/nodes/vm/clone", tag = "vms", operation_id = "clonevm", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), request_body = VmClone, responses((status = 201, description = "per clone: created, exists, or an error", body = NodeResults)))]
async fn clone(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<VmQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let names = guest_names(&st, &q, &body, &["nodes", "source", "expire_after"]).await?;
    let expiry = expire_after(&body)?;
    let source = body
        .get("source")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("source: required (the guest to clone)"))?
        .to_string();
    if names.contains(&source) {
        return Err(ApiError::bad_request(format!(
            "nodes: `{source}` is the source; a guest cannot be its own clone"
        )));
    }
    let src = node_db::load(&st.db, std::slice::from_ref(&source), false)
        .await?
        .pop()
        .ok_or_else(|| ApiError::bad_request(format!("source: no node `{source}`")))?;
    let info = parse_map(&src.node.control_info);
    if src.node.mgt.as_deref() != Some("kvm") || !info.contains_key("vm_host") {
        return Err(ApiError::bad_request(format!(
            "source: `{source}` is not a KVM guest with control_info.vm_host (made by mkvm, or given one)"
        )));
    }
    // The clones take the source's shape; their disks are overlays.
    let opts: Map<String, Value> = info
        .into_iter()
        .filter(|(k, _)| k.starts_with("vm_") && k != "vm_disk" && k != "vm_disk_image")
        .collect();
    let results = make_guests(&st, &origin, &names, opts, None, Some(source)).await?;
    set_expiry(&st, &results, expiry).await?;
    Ok((StatusCode::CREATED, Json(json!({ "nodes": results }))))
}

/// `DELETE /nodes/vm?purge=true` (`xcat3 rmvm`): undefines the guests
/// (stopping them), with `purge` deletes their disks; the nodes stay in
/// the inventory. Answers `removed`, `absent` or an error per guest.
#[utoipa::path(delete, path = "/v1/nodes/vm", tag = "vms", operation_id = "rmvm", params(("purge" = Option<bool>, Query, description = "delete the disks too"), ("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange. v1 clients may instead send a JSON body {\"nodes\": [{\"name\": ...}]}")), responses((status = 202, description = "per guest: removed, absent, or an error", body = NodeResults)))]
async fn remove(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<VmQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let names = requested_names(&st, q.noderange.as_deref(), &body).await?;
    check_count(&st, names.len())?;
    let routes: BTreeMap<String, String> = node_db::load_resolved(&st.db, &names, false)
        .await?
        .into_iter()
        .filter_map(|r| {
            let host = vm_host(&parse_map(&r.node.control_info))?.to_string();
            Some((r.node.name, host))
        })
        .collect();
    let action = Action::VmRemove {
        purge: q.purge.unwrap_or(false),
    };
    let rx = dispatch::dispatch_routed(&st, action, names, routes.clone(), &origin).await?;
    let results = collect(rx).await;
    // A removed guest lives nowhere: its node keeps its shape (`vm_*`) but
    // not `vm_host`, so a later mkvm may put it on any hypervisor.
    let gone: Vec<String> = routes
        .keys()
        .filter(|n| {
            results
                .get(*n)
                .is_some_and(|r| r == "removed" || r == "absent")
        })
        .cloned()
        .collect();
    if !gone.is_empty() {
        let updates: Vec<NodeUpdate> = node_db::load(&st.db, &gone, true)
            .await?
            .into_iter()
            .map(|rec| {
                let mut new = rec.to_spec();
                new.control_info.remove("vm_host");
                NodeUpdate { old: rec, new }
            })
            .collect();
        node_db::update(&st.db, &updates).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "nodes": results }))))
}
