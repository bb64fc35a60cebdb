//! HTTP handlers, one module per resource, and the helpers they share.

pub mod actions;
pub mod console;
pub mod drivers;
pub mod groups;
pub mod inspect;
pub mod networks;
pub mod nics;
pub mod nodes;
pub mod osimages;
pub mod passwds;
pub mod remote;
pub mod requests;
pub mod root;
pub mod scripts;
pub mod services;
pub mod vms;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use xcat3_common::noderange::{self, Resolver};
use xcat3_db::nodes as node_db;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// Every `/v1` route.
pub fn v1() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(root::openapi))
        .merge(nodes::routes())
        .merge(actions::routes())
        .merge(inspect::routes())
        .merge(console::routes())
        .merge(nics::routes())
        .merge(networks::routes())
        .merge(groups::routes())
        .merge(osimages::routes())
        .merge(passwds::routes())
        .merge(services::routes())
        .merge(drivers::routes())
        .merge(requests::routes())
        .merge(vms::routes())
        .merge(remote::routes())
        .merge(scripts::routes())
}

/// `?fields=a,b` and `?noderange=`, accepted wherever the v1 API read them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub fields: Option<String>,
    pub noderange: Option<String>,
}

/// `?fields=` alone (single-resource reads).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    pub fields: Option<String>,
}

/// `?id=N[&fields=]` (the v1 `get_by_id` routes).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ById {
    pub id: i64,
    pub fields: Option<String>,
}

/// Splits `?fields=` into names, refusing any not in `known`.
pub fn parse_fields(fields: Option<&str>, known: &[&str]) -> ApiResult<Option<Vec<String>>> {
    // Absent means every field; `fields=` or `a,,b` is a mistake.
    let Some(f) = fields else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for name in f.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(ApiError::bad_request(format!(
                "fields: `{f}` holds an empty name (known: {})",
                known.join(", ")
            )));
        }
        if !known.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "fields: unknown field `{name}` (known: {})",
                known.join(", ")
            )));
        }
        out.push(name.to_string());
    }
    Ok(Some(out))
}

/// Knows the stored node names, for regexes and literal names that look
/// like ranges (loaded only when the noderange needs them), and the members
/// of the groups the noderange names.
struct DbNames<'a> {
    names: &'a HashSet<String>,
    groups: HashMap<String, Vec<String>>,
}

impl Resolver for DbNames<'_> {
    fn all_names(&self) -> Vec<String> {
        self.names.iter().cloned().collect()
    }
    fn name_count(&self) -> usize {
        self.names.len()
    }
    fn is_name(&self, name: &str) -> bool {
        self.names.contains(name)
    }
    fn group(&self, name: &str) -> Option<Vec<String>> {
        self.groups.get(name).cloned()
    }
}

/// A noderange's atoms, without their exclusion mark: what may name a
/// node or a group (`compute`, `n1-n2`), a bracket range or a regex.
fn atoms(range: &str) -> impl Iterator<Item = &str> {
    range
        .split([',', '@'])
        .map(|a| a.trim().trim_start_matches('-'))
}

/// The members of every group `range` names as an atom (`compute`,
/// `-rack3`, `gpu@rack1`): the group table is read once, and members only
/// when some atom is a group (one query for all of them).
async fn groups_named(st: &AppState, range: &str) -> ApiResult<HashMap<String, Vec<String>>> {
    let atoms: HashSet<&str> = atoms(range)
        .filter(|a| !a.is_empty() && !a.starts_with('/'))
        .collect();
    if atoms.iter().all(|a| a.contains('[')) {
        return Ok(HashMap::new());
    }
    let known = xcat3_db::groups::names(&st.db).await?;
    let wanted: Vec<String> = atoms
        .into_iter()
        .filter(|a| known.contains(*a))
        .map(str::to_string)
        .collect();
    Ok(xcat3_db::groups::members(&st.db, &wanted).await?)
}

/// Expansions running at once. Each is bounded by the noderange budget
/// (`noderange::MAX_EXPANSION`: tens of MB, a fraction of a second), so a
/// few in parallel bound the whole API; the rest wait their turn.
static EXPANSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// The work one request's noderange may cost: four times the nodes a
/// request may name (room for exclusions and intersections), so a range
/// that could never be served is refused before it is built.
fn expansion_budget(st: &AppState) -> usize {
    st.config
        .api
        .max_nodes_per_request
        .saturating_mul(4)
        .max(10_000)
}

/// Expands `range` against the stored names `known`, on a blocking thread
/// so a large expansion never stalls the async workers serving others.
pub async fn expand_range(
    st: &AppState,
    range: &str,
    known: Arc<HashSet<String>>,
) -> ApiResult<Vec<String>> {
    let _turn = EXPANSIONS
        .acquire()
        .await
        .map_err(|_| ApiError::internal("noderange expansion is shut down"))?;
    let groups = groups_named(st, range).await?;
    let range = range.to_string();
    let budget = expansion_budget(st);
    tokio::task::spawn_blocking(move || {
        let resolver = DbNames {
            names: &known,
            groups,
        };
        noderange::expand_within(&range, &resolver, budget)
    })
    .await
    .map_err(|e| ApiError::internal(format!("noderange expansion failed: {e}")))?
    .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The stored names expanding `range` needs: every name when it holds a
/// regex (`/...`); otherwise only which of its atoms that could also be
/// ranges (`n1-n2`, `a:b`) are literal node names, looked up with one
/// `IN` query, so `node[1-100000],-node7` never reads the whole table.
pub async fn names_for(st: &AppState, range: &str) -> ApiResult<HashSet<String>> {
    if range.contains('/') {
        return Ok(node_db::list_names(&st.db).await?.into_iter().collect());
    }
    let ambiguous: Vec<String> = atoms(range)
        .filter(|a| a.contains(['-', ':']) && !a.contains('['))
        .map(str::to_string)
        .collect();
    if ambiguous.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(node_db::existing(&st.db, &ambiguous).await?)
}

/// The node names a multi-node request is about: `?noderange=` (expanded
/// here) or the v1 body `{"nodes":[{"name":..},..]}`, deduplicated in order.
pub async fn requested_names(
    state: &AppState,
    noderange: Option<&str>,
    body: &Value,
) -> ApiResult<Vec<String>> {
    let from_body = body.get("nodes").filter(|v| !v.is_null());
    let names = match (noderange, from_body) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either ?noderange= or a body {\"nodes\": [...]}, not both",
            ));
        }
        (Some(range), None) => {
            let names = names_for(state, range).await?;
            expand_range(state, range, Arc::new(names)).await?
        }
        (None, Some(list)) => {
            let list = list
                .as_array()
                .ok_or_else(|| ApiError::bad_request("nodes: must be a list of {\"name\": ...}"))?;
            let mut seen = HashSet::with_capacity(list.len());
            let mut names = Vec::with_capacity(list.len());
            for (i, n) in list.iter().enumerate() {
                let name = n.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "nodes[{i}].name: is required and must be a string"
                    ))
                })?;
                if seen.insert(name) {
                    names.push(name.to_string());
                }
            }
            names
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "no nodes given: use ?noderange= or a body {\"nodes\": [{\"name\": ...}]}",
            ));
        }
    };
    check_names(state, &names)?;
    Ok(names)
}

/// A request's node list must name at least one node and at most
/// `[api] max_nodes_per_request`.
pub fn check_names(state: &AppState, names: &[String]) -> ApiResult<()> {
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "no nodes given: the node list is empty",
        ));
    }
    check_count(state, names.len())
}

/// Refuses requests naming more nodes than `[api] max_nodes_per_request`.
pub fn check_count(state: &AppState, n: usize) -> ApiResult<()> {
    let max = state.config.api.max_nodes_per_request;
    if n > max {
        return Err(ApiError {
            status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "request names {n} nodes; at most {max} per request ([api] max_nodes_per_request)"
            ),
        });
    }
    Ok(())
}
