//! Node commands. Noderanges are expanded by the server (`?noderange=`),
//! which also reports unknown names; only `create` expands locally, since
//! its names do not exist yet.

use std::path::Path;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Map, Value, json};
use xcat3_common::model::MASK;
use xcat3_common::noderange::{self, NoUniverse};
use xcat3_common::rpc::ErrorKind;

use crate::client::{Client, encode};
use crate::{kv, output, progress_allowed};

/// Nodes per request for bulk writes: big enough to be fast, small enough
/// that progress can be shown and no request is huge.
const BATCH: usize = 5_000;
/// Batches in flight at once.
const PARALLEL: usize = 4;

pub(crate) fn range_q(noderange: &str) -> String {
    format!("noderange={}", encode(noderange))
}

/// Sends `nodes` in batches (one POST each), merging the per-node results.
async fn post_nodes(c: &Client, nodes: Vec<Value>) -> anyhow::Result<Value> {
    let bar = (progress_allowed() && nodes.len() > BATCH).then(|| {
        let b = ProgressBar::new(nodes.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} nodes {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let mut merged = Map::new();
    let mut notes = Map::new();
    // A few batches in flight at once: the API works on them in parallel,
    // and each node is still created atomically with its nics.
    let mut replies = futures_util::stream::iter(nodes.chunks(BATCH))
        .map(|chunk| async move {
            let body = json!({ "nodes": chunk });
            (
                chunk.len(),
                c.call(Method::POST, "/nodes", Some(&body)).await,
            )
        })
        .buffer_unordered(PARALLEL);
    while let Some((n, reply)) = replies.next().await {
        let body = reply?.body;
        if let Some(m) = body.get("nodes").and_then(Value::as_object) {
            merged.extend(m.clone());
        }
        if let Some(m) = body.get("notes").and_then(Value::as_object) {
            notes.extend(m.clone());
        }
        if let Some(b) = &bar {
            b.inc(n as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut noted: Vec<(&String, &Value)> = notes.iter().collect();
    noted.sort_by(|a, b| noderange::natural_cmp(a.0, b.0));
    for (name, note) in noted {
        eprintln!("{name}: {}", note.as_str().unwrap_or_default());
    }
    let mut out = json!({ "nodes": merged });
    if !notes.is_empty() {
        out["notes"] = Value::Object(notes);
    }
    Ok(out)
}

/// The writable attributes of `create` (nodes and groups alike):
/// `arch=`, `netboot=`, `mgt=`, `type=`, `groups=` (nodes only), and
/// `-c k=v,..` for control_info.
pub fn attributes(
    what: &str,
    attrs: &[String],
    control: Option<&str>,
    fields: &[&str],
) -> anyhow::Result<Map<String, Value>> {
    let mut base = Map::new();
    for a in attrs {
        let (k, v) = kv::split_raw(a)?;
        if !fields.contains(&k.as_str()) {
            bail!(
                "{what}: unsupported attribute `{k}` (use {}; -c for control_info)",
                fields.join(", ")
            );
        }
        base.insert(k, Value::String(v.to_string()));
    }
    if let Some(ctl) = control {
        base.insert("control_info".into(), Value::Object(kv::dict(ctl)?));
    }
    Ok(base)
}

pub async fn create(
    c: &Client,
    range: &str,
    attrs: &[String],
    control: Option<&str>,
    nics: &[String],
    json: bool,
) -> anyhow::Result<bool> {
    const FIELDS: &[&str] = &["arch", "netboot", "mgt", "type", "groups"];
    let mut base = attributes("create", attrs, control, FIELDS)?;
    if !nics.is_empty() {
        let list: Vec<Value> = nics
            .iter()
            .map(|n| kv::dict(n).map(Value::Object))
            .collect::<Result<_, _>>()?;
        base.insert("nics_info".into(), json!({ "nics": list }));
    }
    let names = noderange::expand(range, &NoUniverse)?;
    let nodes: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let mut n = base.clone();
            n.insert("name".into(), Value::String(name));
            Value::Object(n)
        })
        .collect();
    let reply = post_nodes(c, nodes).await?;
    Ok(output::node_results(&reply, json))
}

/// What `list` prints and filters.
pub struct ListOptions<'a> {
    pub range: Option<&'a str>,
    pub state: Option<&'a str>,
    pub power: Option<&'a str>,
    pub health: Option<&'a str>,
    /// Table columns (`-o`); `None` without `-l`/`-o`: `name (node)` lines.
    pub columns: Option<Vec<String>>,
    pub sort: Option<&'a str>,
}

/// `list -o` columns: the header, the node fields it needs, and how to
/// read its cell from a node of `/nodes/info`.
type Column = (&'static str, &'static str, fn(&Value) -> String);

const COLUMNS: &[Column] = &[
    ("name", "name", |n| text(&n["name"])),
    ("state", "state", |n| {
        n["state"].as_str().unwrap_or("available").to_string()
    }),
    ("power", "power_state", |n| text(&n["power_state"])),
    ("health", "health", |n| text(&n["health"])),
    ("mgt", "mgt", |n| text(&n["mgt"])),
    ("arch", "arch", |n| text(&n["arch"])),
    ("netboot", "netboot", |n| text(&n["netboot"])),
    ("type", "type", |n| text(&n["type"])),
    ("groups", "groups", |n| text(&n["groups"])),
    ("osimage", "osimage", |n| text(&n["osimage"])),
    ("conductor", "conductor", |n| text(&n["conductor"])),
    ("reservation", "reservation", |n| text(&n["reservation"])),
    ("bmc", "control_info", |n| {
        text(&n["control_info"]["bmc_address"])
    }),
    ("mac", "nics_info", |n| primary_nic(n, "mac")),
    ("ip", "nics_info", |n| primary_nic(n, "ip")),
    ("step", "deploy_step", |n| text(&n["deploy_step"])),
    ("expires", "expires_at", |n| text(&n["expires_at"])),
    ("error", "last_error", |n| text(&n["last_error"])),
];

/// The columns of `list -l`.
pub const LONG_COLUMNS: &str = "name,state,power,mgt,arch,groups,bmc,mac,ip";

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn primary_nic(n: &Value, key: &str) -> String {
    let nics = n["nics_info"]["nics"].as_array();
    nics.and_then(|l| {
        l.iter()
            .find(|x| x["primary"] == true)
            .or(l.first())
            .map(|x| text(&x[key]))
    })
    .unwrap_or_default()
}

pub async fn list(c: &Client, o: ListOptions<'_>, json: bool) -> anyhow::Result<bool> {
    let mut query: Vec<String> = Vec::new();
    if let Some(r) = o.range {
        query.push(range_q(r));
    }
    if let Some(s) = o.state {
        query.push(format!("state={}", encode(s)));
    }
    if let Some(p) = o.power {
        query.push(format!("power_state={}", encode(p)));
    }
    if let Some(h) = o.health {
        query.push(format!("health={}", encode(h)));
    }
    let reply = if query.is_empty() {
        c.get("/nodes").await?
    } else {
        c.get(&format!("/nodes?{}", query.join("&"))).await?
    };
    let names: Vec<String> = reply
        .get("nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let Some(columns) = o.columns else {
        if o.sort.is_some() {
            bail!("list: --sort needs a table (-l or -o COLUMNS)");
        }
        if json {
            output::print_json(&reply);
        } else {
            output::lines(names.iter().map(|n| format!("{n} (node)")));
        }
        return Ok(report_missing(&reply));
    };
    let picked: Vec<&Column> = columns
        .iter()
        .map(|c| {
            COLUMNS.iter().find(|(h, _, _)| h == c).ok_or_else(|| {
                let known: Vec<&str> = COLUMNS.iter().map(|(h, _, _)| *h).collect();
                anyhow::anyhow!("list: unknown column `{c}` (known: {})", known.join(", "))
            })
        })
        .collect::<Result<_, _>>()?;
    let sort_at = match o.sort {
        None => None,
        Some(key) => Some(columns.iter().position(|c| c == key).ok_or_else(|| {
            anyhow::anyhow!(
                "list: --sort {key}: not one of the columns ({})",
                columns.join(",")
            )
        })?),
    };
    let mut fields: Vec<&str> = vec!["name"];
    fields.extend(picked.iter().map(|(_, f, _)| *f));
    fields.sort();
    fields.dedup();
    let nodes = node_info(c, &names, &fields.join(",")).await?;
    if json {
        output::print_json(&json!({ "nodes": nodes }));
        return Ok(report_missing(&reply));
    }
    let mut rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| picked.iter().map(|(_, _, cell)| cell(n)).collect())
        .collect();
    if let Some(i) = sort_at {
        rows.sort_by(|a, b| noderange::natural_cmp(&a[i], &b[i]));
    }
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    output::table_dyn(&header, &rows);
    Ok(report_missing(&reply))
}

/// `/nodes/info` for `names`, in batches, in their order.
async fn node_info(c: &Client, names: &[String], fields: &str) -> anyhow::Result<Vec<Value>> {
    let mut replies = futures_util::stream::iter(names.chunks(BATCH))
        .map(|chunk| async move {
            let body =
                json!({ "nodes": chunk.iter().map(|n| json!({"name": n})).collect::<Vec<_>>() });
            c.call(
                Method::GET,
                &format!("/nodes/info?fields={}", encode(fields)),
                Some(&body),
            )
            .await
        })
        .buffered(PARALLEL);
    let mut out = Vec::with_capacity(names.len());
    while let Some(reply) = replies.next().await {
        if let Some(list) = reply?.body.get("nodes").and_then(Value::as_array) {
            out.extend(list.iter().cloned());
        }
    }
    Ok(out)
}

/// Warns about names of the noderange that do not exist; false if any.
fn report_missing(reply: &Value) -> bool {
    match reply.get("missing").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => {
            eprintln!("xcat3: not found: {m}");
            false
        }
        _ => true,
    }
}

pub async fn show(c: &Client, range: &str, fields: Option<&str>) -> anyhow::Result<bool> {
    let mut q = range_q(range);
    if let Some(f) = fields {
        let mut f: Vec<&str> = f.split(',').collect();
        if !f.contains(&"name") {
            f.push("name");
        }
        q.push_str(&format!("&fields={}", encode(&f.join(","))));
    }
    let reply = c
        .call(Method::GET, &format!("/nodes/info?{q}"), None)
        .await?
        .body;
    let nodes: Vec<Value> = reply
        .get("nodes")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|n| json!({"node": n.get("name").cloned().unwrap_or(Value::Null), "attr": n}))
                .collect()
        })
        .unwrap_or_default();
    output::print_json(&Value::Array(nodes));
    Ok(report_missing(&reply))
}

pub async fn update(c: &Client, range: &str, attrs: &[String], json: bool) -> anyhow::Result<bool> {
    let patches = kv::patches(
        attrs,
        &[
            ("control", "control_info"),
            ("nics", "nics_info"),
            ("console", "console_info"),
        ],
    )?;
    let reply = c
        .call(
            Method::PATCH,
            &format!("/nodes?{}", range_q(range)),
            Some(&json!({ "patches": patches })),
        )
        .await?;
    Ok(output::node_results(&reply.body, json))
}

pub async fn delete(c: &Client, range: &str, json: bool) -> anyhow::Result<bool> {
    let reply = c
        .call(Method::DELETE, &format!("/nodes?{}", range_q(range)), None)
        .await?;
    Ok(output::node_results(&reply.body, json))
}

/// Reads the export format and creates every node in it. Falsy top-level
/// keys are dropped, as the v1 client did.
pub async fn import(c: &Client, file: &Path, json: bool) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let data: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let Some(list) = data.get("nodes").and_then(Value::as_array) else {
        bail!("{}: expected {{\"nodes\": [...]}}", file.display());
    };
    let nodes: Vec<Value> = list.iter().map(without_falsy).collect();
    if nodes.is_empty() {
        bail!("{}: no nodes", file.display());
    }
    let groups = data
        .get("groups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let groups_ok = import_groups(c, &groups).await?;
    let reply = post_nodes(c, nodes).await?;
    Ok(output::node_results(&reply, json) && groups_ok)
}

/// An exported object without its empty values (as the v1 client's
/// import drops them): `null`, `""`, `[]`, `{}`, `false`.
fn without_falsy(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| truthy(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(_) => true,
    }
}

/// `export --with-secrets`: the API's admin-only export (each node's own
/// values, secrets in clear), written with owner-only permissions.
async fn export_with_secrets(c: &Client, range: &str, out: &Path) -> anyhow::Result<bool> {
    let reply = c
        .call(
            Method::GET,
            &format!("/nodes/export?{}", range_q(range)),
            None,
        )
        .await?
        .body;
    let count = reply
        .get("nodes")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let text =
        serde_json::to_string(&json!({ "nodes": reply["nodes"], "groups": reply["groups"] }))?;
    write_private(out, text.as_bytes()).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "Export nodes data successfully: {count} node(s) to {} (with secrets: keep it safe)",
        out.display()
    );
    Ok(report_missing(&reply))
}

/// Writes a file only its owner can read (it holds secrets).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Removes the masked values of a node's or group's `control_info`
/// (the API never shows secrets), naming their keys in `dropped`.
fn drop_masked(doc: &mut Value, dropped: &mut std::collections::BTreeSet<String>) {
    if let Some(ci) = doc.get_mut("control_info").and_then(Value::as_object_mut) {
        ci.retain(|k, v| {
            let masked = v.as_str() == Some(MASK);
            if masked {
                dropped.insert(k.clone());
            }
            !masked
        });
    }
}

/// The definitions of the groups `nodes` list (secrets masked, as the
/// API shows them).
async fn listed_groups(c: &Client, nodes: &[Value]) -> anyhow::Result<Vec<Value>> {
    let listed: std::collections::HashSet<&str> = nodes
        .iter()
        .flat_map(|n| n["groups"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    if listed.is_empty() {
        return Ok(Vec::new());
    }
    let fields = "name,mgt,netboot,arch,type,control_info,console_info";
    let reply = c.get(&format!("/groups?fields={}", encode(fields))).await?;
    Ok(reply["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["name"].as_str().is_some_and(|n| listed.contains(n)))
        .cloned()
        .collect())
}

/// Creates the groups of an export file that do not exist yet, before its
/// nodes (which inherit from them); says on stderr what happened to each.
/// False if one could not be created.
async fn import_groups(c: &Client, groups: &[Value]) -> anyhow::Result<bool> {
    if groups.is_empty() {
        return Ok(true);
    }
    let existing = c.get("/groups").await?;
    let existing: std::collections::HashSet<&str> = existing["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    let mut all_ok = true;
    for g in groups {
        let name = g["name"].as_str().unwrap_or("?");
        if existing.contains(name) {
            eprintln!("group {name}: exists");
            continue;
        }
        match c
            .call(Method::POST, "/groups", Some(&without_falsy(g)))
            .await
        {
            Ok(_) => eprintln!("group {name}: ok"),
            Err(e) => {
                all_ok = false;
                eprintln!("group {name}: {e:#}");
            }
        }
    }
    Ok(all_ok)
}

/// Removes what a node inherits from its groups (`inherited` names each
/// value), so an import gives it its own values and its groups again.
fn own_values_only(node: &mut Value) {
    let Some(o) = node.as_object_mut() else {
        return;
    };
    let Some(Value::Object(inherited)) = o.remove("inherited") else {
        return;
    };
    for path in inherited.keys() {
        match path.split_once('.') {
            None => {
                o.remove(path);
            }
            Some((info, key)) => {
                if let Some(m) = o.get_mut(info).and_then(Value::as_object_mut) {
                    m.remove(key);
                }
            }
        }
    }
}

/// Writes `{"nodes":[{name,mgt,netboot,type,arch,control_info,console_info,
/// nics_info,groups}], "groups": [..]}`: each node's own values (not its
/// groups'), and the groups they list.
/// The API never returns secrets, so masked values are left out (and named
/// on stderr) rather than written as fake passwords.
pub async fn export(
    c: &Client,
    range: &str,
    out: &Path,
    with_secrets: bool,
) -> anyhow::Result<bool> {
    if with_secrets {
        return export_with_secrets(c, range, out).await;
    }
    let fields = "name,mgt,netboot,type,arch,nics_info,control_info,console_info,groups,inherited";
    let reply = c
        .call(
            Method::GET,
            &format!("/nodes/info?{}&fields={}", range_q(range), encode(fields)),
            None,
        )
        .await?
        .body;
    let mut nodes = reply
        .get("nodes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut dropped = std::collections::BTreeSet::new();
    for n in &mut nodes {
        own_values_only(n);
        drop_masked(n, &mut dropped);
    }
    let mut groups = listed_groups(c, &nodes).await?;
    for g in &mut groups {
        drop_masked(g, &mut dropped);
    }
    let count = nodes.len();
    let text = serde_json::to_string(&json!({ "nodes": nodes, "groups": groups }))?;
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    if !dropped.is_empty() {
        eprintln!(
            "xcat3: secrets are not exported ({}); set them again after import",
            dropped.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    println!(
        "Export nodes data successfully: {count} node(s) to {}",
        out.display()
    );
    Ok(report_missing(&reply))
}

/// Runs an action, streaming results (ndjson) to drive a progress bar on a
/// terminal, and prints one line per node at the end.
async fn action(c: &Client, method: Method, path: &str, json: bool) -> anyhow::Result<bool> {
    action_on(c, method, path, None, json).await
}

/// Runs an action (streamed results, a progress spinner on a terminal)
/// and prints every node's result; when some failed, says how to retry
/// them.
async fn action_on(
    c: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
    json: bool,
) -> anyhow::Result<bool> {
    let (reply, id) = gather(c, method, path, body).await?;
    let all_ok = output::node_results(&reply, json);
    if let Some(id) = id.filter(|_| !all_ok) {
        let retry = if path.starts_with("/nodes/power?target=") {
            format!("; retry them: xcat3 power --retry-failed {id}")
        } else {
            String::new()
        };
        eprintln!("request {id}: `xcat3 history {id}` shows its results{retry}");
    }
    Ok(all_ok)
}

/// Runs a multi-node request with streamed results (a progress spinner
/// on a terminal): every line's `nodes` and `error_kinds` merged, and the
/// request id.
pub(crate) async fn gather(
    c: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(Value, Option<String>)> {
    let bar = progress_allowed().then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {pos} nodes answered {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        b
    });
    let (mut all, mut kinds) = (Map::new(), Map::new());
    let id = c
        .stream(method, path, body, |line| {
            // Taken, not copied: a line of readings holds megabytes.
            let Value::Object(mut line) = line else {
                return;
            };
            if let Some(Value::Object(m)) = line.remove("nodes") {
                all.extend(m);
                if let Some(b) = &bar {
                    b.set_position(all.len() as u64);
                }
            }
            if let Some(Value::Object(k)) = line.remove("error_kinds") {
                kinds.extend(k);
            }
        })
        .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut reply = json!({ "nodes": all });
    if !kinds.is_empty() {
        reply["error_kinds"] = Value::Object(kinds);
    }
    Ok((reply, id))
}

const POWER_STATES: &[&str] = &[
    "on", "off", "soft", "reset", "cycle", "boot", "status", "stat", "state",
];

/// The call `power STATE` makes: a status read (GET) or a change (PUT
/// `?target=`), on `range` if given (else the nodes go in the body).
fn power_call(state: &str, range: Option<&str>) -> anyhow::Result<(Method, String)> {
    if !POWER_STATES.contains(&state) {
        bail!("power: `{state}` is not one of {}", POWER_STATES.join(", "));
    }
    let (method, mut params) = match state {
        "status" | "stat" | "state" => (Method::GET, vec![]),
        target => (Method::PUT, vec![format!("target={target}")]),
    };
    params.extend(range.map(range_q));
    let path = if params.is_empty() {
        "/nodes/power".to_string()
    } else {
        format!("/nodes/power?{}", params.join("&"))
    };
    Ok((method, path))
}

pub async fn power(c: &Client, range: &str, state: &str, json: bool) -> anyhow::Result<bool> {
    let (method, path) = power_call(state, Some(range))?;
    action(c, method, &path, json).await
}

/// `power --retry-failed ID [STATE] [--kind KIND]`: the failed nodes of
/// power request `ID` (those that failed with `kind`), again, with its
/// state (or `state`).
pub async fn retry_failed_power(
    c: &Client,
    id: &str,
    state: Option<&str>,
    kind: Option<&str>,
    json: bool,
) -> anyhow::Result<bool> {
    if let Some(k) = kind
        && ErrorKind::parse(k).is_none()
    {
        let all: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        bail!("--kind: `{k}` is not one of {}", all.join(", "));
    }
    let past = c.get(&format!("/requests/{}", encode(id))).await?;
    let action = past.get("action").and_then(Value::as_str).unwrap_or("");
    let Some(past_state) = action.strip_prefix("power ") else {
        bail!("request {id} was `{action}`, not a power request");
    };
    if past.get("finished_at").is_none_or(Value::is_null) {
        bail!("request {id} has not finished yet");
    }
    let state = state.unwrap_or(past_state);
    let (method, path) = power_call(state, None)?;
    let kind_of = |n: &str| {
        past.pointer(&format!("/error_kinds/{n}"))
            .and_then(Value::as_str)
    };
    let failed: Vec<Value> = past
        .get("failed_nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|n| kind.is_none() || kind_of(n) == kind)
        .map(|n| json!({ "name": n }))
        .collect();
    if failed.is_empty() {
        match kind {
            Some(k) => eprintln!("request {id} had no nodes that failed with kind {k}"),
            None => eprintln!("request {id} had no failed nodes"),
        }
        return Ok(true);
    }
    eprintln!(
        "retrying {} failed nodes of {id}: power {state}",
        failed.len()
    );
    let body = json!({ "nodes": failed });
    action_on(c, method, &path, Some(&body), json).await
}

/// `history`: the latest requests, one line each; `history ID`: every
/// node's result of one.
pub async fn history(c: &Client, id: Option<&str>, limit: u64, json: bool) -> anyhow::Result<bool> {
    let Some(id) = id else {
        let v = c.get(&format!("/requests?limit={limit}")).await?;
        if json {
            output::print_json(&v);
            return Ok(true);
        }
        let rows = v.get("requests").and_then(Value::as_array).cloned();
        output::lines(rows.into_iter().flatten().map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let n = |k: &str| r.get(k).and_then(Value::as_i64);
            let outcome = match n("failed") {
                None => "running".to_string(),
                Some(0) => "all ok".to_string(),
                Some(f) => format!("{f} failed"),
            };
            let by = r
                .get("requested_by")
                .and_then(Value::as_str)
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            format!(
                "{}  {}  {}: {} nodes, {outcome}{by}",
                s("id"),
                s("started_at"),
                s("action"),
                n("nodes").unwrap_or(0)
            )
        }));
        return Ok(true);
    };
    let v = c.get(&format!("/requests/{}", encode(id))).await?;
    if json {
        output::print_json(&v);
        return Ok(true);
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    eprintln!(
        "{}: {} (started {}, finished {})",
        s("id"),
        s("action"),
        s("started_at"),
        s("finished_at")
    );
    let results = json!({ "nodes": v.get("results").cloned().unwrap_or(json!({})) });
    Ok(output::node_results(&results, false))
}

pub async fn bootdev(
    c: &Client,
    range: &str,
    device: &str,
    persistent: bool,
    json: bool,
) -> anyhow::Result<bool> {
    let q = range_q(range);
    match device {
        "status" | "stat" => action(c, Method::GET, &format!("/nodes/boot_device?{q}"), json).await,
        dev => {
            let p = if persistent { "&persistent=true" } else { "" };
            action(
                c,
                Method::PUT,
                &format!("/nodes/boot_device?target={dev}{p}&{q}"),
                json,
            )
            .await
        }
    }
}

/// `deploy`: `PUT /nodes/provision?target=...` (v1), per-node results.
pub async fn deploy(
    c: &Client,
    range: &str,
    target: &str,
    osimage: Option<&str>,
    network: Option<&str>,
    json: bool,
) -> anyhow::Result<bool> {
    let mut q = format!("target={target}&{}", range_q(range));
    if let Some(o) = osimage {
        q.push_str(&format!("&osimage={}", encode(o)));
    }
    if let Some(n) = network {
        q.push_str(&format!("&subnet={}", encode(n)));
    }
    action(c, Method::PUT, &format!("/nodes/provision?{q}"), json).await
}

/// `mkvm` / `clonevm` / `rmvm`: one call to `route` (`/nodes/vm`,
/// `/nodes/vm/clone`), per-guest results.
pub async fn vm(
    c: &Client,
    method: Method,
    route: &str,
    range: &str,
    extra_query: &str,
    body: Option<&Value>,
    json: bool,
) -> anyhow::Result<bool> {
    let path = format!("{route}?{}{extra_query}", range_q(range));
    let reply = c.call(method, &path, body).await?;
    Ok(output::node_results(&reply.body, json))
}

pub async fn ring(c: &Client, range: &str, json: bool) -> anyhow::Result<bool> {
    let reply = c.get(&format!("/ring?{}", range_q(range))).await?;
    if json {
        output::print_json(&reply);
    } else if let Some(m) = reply.get("nodes").and_then(Value::as_object) {
        let mut rows: Vec<(&String, &Value)> = m.iter().collect();
        rows.sort_by(|a, b| xcat3_common::noderange::natural_cmp(a.0, b.0));
        output::lines(
            rows.into_iter()
                .map(|(n, h)| format!("{n}: {}", h.as_str().unwrap_or("?"))),
        );
    }
    Ok(report_missing(&reply))
}
