//! Actions: group the nodes by ring owner, send one request per conductor,
//! merge the per-node results as batches arrive.
//!
//! **Invariant:** every node named gets exactly one result: the conductor's
//! value or error, `Could not be found.`, no live conductor, or
//! `timeout: conductor <host> did not answer` once the deadline passes, or
//! `conductor <host> stopped heartbeating …` as soon as its owner is seen
//! dead while its nodes wait.
//!
//! **Invariant:** for a recorded request, conductors write each batch of
//! results to the history before sending it, so a lost reply path (a
//! broker restart, a dropped API connection) loses no result: the API
//! reads the missing ones back from the history until the deadline, and
//! checks it once more before it calls any node timed out or lost.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::sync::mpsc;
use xcat3_common::metrics;
use xcat3_common::model::tokens;
use xcat3_common::ring::HashRing;
use xcat3_common::rpc::{Action, ErrorKind, NodeResult, ProvisionTarget, Request, now_ms};
use xcat3_db::history::{self, NodeOutcome};
use xcat3_db::nodes as node_db;
use xcat3_db::services;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Origin;

/// How long to wait for a conductor's `done` after its last result.
const DONE_GRACE_MS: i64 = 5_000;

/// A batch of `(node, result)`: the v1 text, and for an error its kind.
pub type Results = Vec<(String, NodeResult)>;

/// A batch as the dispatcher passes it on, with whether it is in the
/// history already (a conductor recorded it).
type Batch = (Results, bool);

/// How often the history is read for results whose reply path was lost.
const RECOVERY_POLL: Duration = Duration::from_millis(500);

/// The ring of conductors alive now.
pub async fn live_ring(st: &AppState) -> ApiResult<HashRing> {
    let live = services::live_conductors(&st.db, st.config.conductor.heartbeat_timeout).await?;
    metrics::gauge(
        "xcat3_api_live_conductors",
        "Conductors alive in the ring, as the API last saw it.",
        &[],
        live.len() as f64,
    );
    Ok(HashRing::new(&live))
}

/// Starts `action` on `names`; results stream out of the receiver, which
/// closes after the last node's result.
pub async fn dispatch(
    st: &AppState,
    action: Action,
    names: Vec<String>,
    origin: &Origin,
) -> ApiResult<mpsc::Receiver<Results>> {
    dispatch_routed(st, action, names, BTreeMap::new(), origin).await
}

/// Whether `action` is an operator's request, kept in the history (not a
/// query the API makes for itself, nor a follow-up of a callback).
/// Hardware reads (inventory, sensors, event logs, health) are not kept:
/// they change nothing and their results are documents, not outcomes.
fn recorded(action: &Action) -> bool {
    !matches!(
        action,
        Action::HypervisorInfo
            | Action::Provision {
                target: ProvisionTarget::LocalBoot | ProvisionTarget::Takeover
            }
            | Action::Inventory
            | Action::Vitals { .. }
            | Action::EventLog { clear: false, .. }
            | Action::Health
            | Action::ConsoleList
            | Action::ConsoleLog { .. }
    )
}

/// Forwards `outcomes` to the caller's channel and, for a recorded
/// request, writes every node's result to the history once the last has
/// arrived, before the caller's channel closes: when the reply ends, the
/// history is complete.
fn forward(
    st: &AppState,
    request_id: String,
    action: Action,
    record: bool,
    mut outcomes: mpsc::Receiver<Batch>,
) -> mpsc::Receiver<Results> {
    let (tx, rx) = mpsc::channel::<Results>(64);
    let db = st.db.clone();
    tokio::spawn(async move {
        // Only what no conductor recorded is written at the end.
        let mut unrecorded = BTreeMap::new();
        let mut failed = 0;
        while let Some((batch, recorded)) = outcomes.recv().await {
            failed += batch.iter().filter(|(_, r)| !r.is_ok()).count();
            if record && !recorded {
                unrecorded.extend(batch.iter().map(|(node, r)| {
                    let outcome = NodeOutcome {
                        node: node.clone(),
                        ok: r.is_ok(),
                        result: action.history_text(r.text()),
                        kind: r.kind(),
                    };
                    (node.clone(), outcome)
                }));
            }
            // The caller may be gone (client disconnected); the action and
            // its history go on regardless.
            let _ = tx.send(batch).await;
        }
        let unrecorded: Vec<NodeOutcome> = unrecorded.into_values().collect();
        if record && let Err(e) = history::finish(&db, &request_id, &unrecorded, failed).await {
            tracing::error!(request_id, error = %e, "recording the request's results failed");
        }
    });
    rx
}

/// [`dispatch`], with some nodes placed in the ring by another name
/// (`routes`: node → name), e.g. KVM guests by their hypervisor.
pub async fn dispatch_routed(
    st: &AppState,
    action: Action,
    names: Vec<String>,
    routes: BTreeMap<String, String>,
    origin: &Origin,
) -> ApiResult<mpsc::Receiver<Results>> {
    let request_id = origin.request_id.clone();
    let existing = node_db::existing(&st.db, &names).await?;
    let ring = live_ring(st).await?;
    let record = recorded(&action);
    if record {
        history::start(
            &st.db,
            &request_id,
            &action.describe(),
            origin.caller.as_deref(),
            names.len(),
        )
        .await?;
    }
    let (tx, outcomes) = mpsc::channel::<Batch>(64);
    let rx = forward(st, request_id.clone(), action.clone(), record, outcomes);

    let missing: Results = names
        .iter()
        .filter(|n| !existing.contains(*n))
        .map(|n| {
            let r = NodeResult::error(ErrorKind::NotFound, tokens::NOT_FOUND);
            (n.clone(), r)
        })
        .collect();
    let found: Vec<String> = names.into_iter().filter(|n| existing.contains(n)).collect();
    let deadline_ms = now_ms() + st.config.api.request_timeout as i64 * 1000;
    let mut orphans = Results::new();
    if ring.is_empty() {
        let why = "no conductor is alive to act on this node";
        orphans = found
            .iter()
            .map(|n| (n.clone(), NodeResult::error(ErrorKind::Internal, why)))
            .collect();
    }
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &found {
        let key = routes.get(n).unwrap_or(n);
        if let Some(host) = ring.owner(key) {
            groups.entry(host.to_string()).or_default().push(n.clone());
        }
    }
    tracing::info!(
        nodes = found.len(),
        conductors = groups.len(),
        ?action,
        "dispatching"
    );
    node_errors(action.name(), ErrorKind::NotFound, missing.len());
    node_errors(action.name(), ErrorKind::Internal, orphans.len());
    for first in [missing, orphans] {
        if !first.is_empty() {
            let _ = tx.send((first, false)).await;
        }
    }
    for (host, nodes) in groups {
        let routes = nodes
            .iter()
            .filter_map(|n| routes.get(n).map(|k| (n.clone(), k.clone())))
            .collect();
        // Commands run for their own timeout, `fanout` at a time: such a
        // request may outlast `[api] request_timeout`.
        let deadline_ms = match action.time_needed(nodes.len()) {
            Some(t) => deadline_ms.max(now_ms() + t.as_millis() as i64),
            None => deadline_ms,
        };
        let request = Request {
            request_id: request_id.clone(),
            action: action.clone(),
            nodes,
            deadline_ms,
            routes,
            record,
        };
        let bus = st.bus.clone();
        let tx = tx.clone();
        let liveness = Liveness {
            db: st.db.clone(),
            timeout_s: st.config.conductor.heartbeat_timeout,
            interval_s: st.config.conductor.heartbeat_interval,
        };
        tokio::spawn(async move { call_one(bus.as_ref(), host, request, liveness, tx).await });
    }
    Ok(rx)
}

/// How often a caller waiting on a silent conductor checks it is alive.
const LIVENESS_CHECK: Duration = Duration::from_secs(2);

/// What `call_one` needs to tell a dead conductor from a slow one.
struct Liveness {
    db: xcat3_db::Db,
    timeout_s: u64,
    interval_s: u64,
}

impl Liveness {
    /// False only when `host` has missed its heartbeats while other
    /// conductors kept theirs: its last one is older than the liveness
    /// timeout by our clock, and older than the newest heartbeat of the
    /// others by the timeout plus two intervals (after a database outage,
    /// which stops every heartbeat alike, each conductor needs up to an
    /// interval to heartbeat again). A database error, or being the only
    /// conductor, is not evidence either: those nodes wait for the
    /// deadline.
    async fn alive(&self, host: &str) -> bool {
        let Ok(rows) = xcat3_db::resources::services(&self.db).await else {
            return true;
        };
        let conductors = rows
            .iter()
            .filter(|r| r.service_type == services::CONDUCTOR);
        let Some(last) = conductors
            .clone()
            .find(|r| r.hostname == host)
            .map(|r| r.updated_at)
        else {
            return true;
        };
        let newest_other = conductors
            .filter(|r| r.hostname != host && r.online)
            .map(|r| r.updated_at)
            .max();
        let timeout = chrono::Duration::seconds(self.timeout_s as i64);
        let behind = timeout + chrono::Duration::seconds(2 * self.interval_s as i64);
        let silent = chrono::Utc::now() - last > timeout;
        !(silent && newest_other.is_some_and(|o| o - last > behind))
    }
}

/// One conductor's share: send, forward batches, fill in what never came.
/// A conductor that stops heartbeating while its nodes wait (killed, cut
/// off) fails them then, not at the deadline: a crashed conductor costs
/// seconds, not the whole `request_timeout`.
async fn call_one(
    bus: &dyn xcat3_bus::Bus,
    host: String,
    request: Request,
    liveness: Liveness,
    tx: mpsc::Sender<Batch>,
) {
    let mut pending: HashSet<String> = request.nodes.iter().cloned().collect();
    let action = request.action.name();
    let fail_rest = |pending: &mut HashSet<String>, kind: ErrorKind, why: String| -> Batch {
        let r = NodeResult::error(kind, why);
        (pending.drain().map(|n| (n, r.clone())).collect(), false)
    };
    // Results a conductor recorded but whose reply never came, read back
    // until `until_ms` (once when it has passed).
    let recover = async |pending: &mut HashSet<String>, until_ms: i64| {
        if !request.record {
            return;
        }
        let recovered = recover_results(&liveness.db, &request, pending, until_ms).await;
        if !recovered.is_empty() {
            count_results(action, &recovered);
            let _ = tx.send((recovered, true)).await;
        }
    };
    let mut replies = 0usize;
    let mut rx = match bus.call(&host, &request).await {
        Ok(rx) => rx,
        Err(e) => {
            metrics::count(
                "xcat3_api_bus_errors_total",
                "Requests the bus could not deliver to a conductor.",
                &[],
                1,
            );
            recover(&mut pending, now_ms()).await;
            node_outcomes(action, "error", pending.len());
            node_errors(action, ErrorKind::Internal, pending.len());
            let why = format!("conductor {host}: {e}");
            let _ = tx
                .send(fail_rest(&mut pending, ErrorKind::Internal, why))
                .await;
            return;
        }
    };
    loop {
        // Once every node has its result, wait only briefly for `done`: the
        // conductor sends it after recording states and releasing locks, so
        // a request that follows sees them; a conductor dying in between
        // must not hold the reply until the deadline.
        let limit = if pending.is_empty() {
            DONE_GRACE_MS
        } else {
            i64::MAX
        };
        let left = (request.deadline_ms - now_ms()).min(limit);
        if left <= 0 {
            break;
        }
        // While nodes wait, look up now and then whether the conductor is
        // still alive; the `done` grace is waited out in one go.
        let wait = if pending.is_empty() {
            Duration::from_millis(left as u64)
        } else {
            Duration::from_millis(left as u64).min(LIVENESS_CHECK)
        };
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(batch)) => {
                replies += 1;
                let results: Results = batch
                    .results
                    .into_iter()
                    .filter(|(n, _)| pending.remove(n))
                    .collect();
                count_results(action, &results);
                if !results.is_empty() {
                    let _ = tx.send((results, batch.recorded)).await;
                }
                if batch.done {
                    break;
                }
            }
            Ok(None) => {
                // The reply path is gone, not necessarily the work.
                recover(&mut pending, request.deadline_ms).await;
                if pending.is_empty() {
                    break;
                }
                node_outcomes(action, "lost", pending.len());
                node_errors(action, ErrorKind::Internal, pending.len());
                let why = format!("conductor {host}: the reply was lost (bus connection dropped)");
                let _ = tx
                    .send(fail_rest(&mut pending, ErrorKind::Internal, why))
                    .await;
                return;
            }
            Err(_) if wait == LIVENESS_CHECK && !pending.is_empty() => {
                if !liveness.alive(&host).await {
                    recover(&mut pending, now_ms()).await;
                    node_outcomes(action, "conductor_lost", pending.len());
                    node_errors(action, ErrorKind::Internal, pending.len());
                    let why = format!(
                        "conductor {host} stopped heartbeating before answering (dead or cut off; these nodes now belong to another conductor): run the request again"
                    );
                    let _ = tx
                        .send(fail_rest(&mut pending, ErrorKind::Internal, why))
                        .await;
                    return;
                }
            }
            Err(_) => break,
        }
    }
    if !pending.is_empty() {
        recover(&mut pending, now_ms()).await;
    }
    let unanswered = pending.len();
    if !pending.is_empty() {
        node_outcomes(action, "timeout", pending.len());
        node_errors(action, ErrorKind::Timeout, pending.len());
        let why = format!("timeout: conductor {host} did not answer");
        let _ = tx
            .send(fail_rest(&mut pending, ErrorKind::Timeout, why))
            .await;
    }
    tracing::info!(
        host,
        nodes = request.nodes.len(),
        replies,
        unanswered,
        "conductor call finished"
    );
}

/// Reads the results of `pending` nodes conductors recorded for `request`
/// from the history, every [`RECOVERY_POLL`] until all are found or
/// `until_ms` passes; found nodes leave `pending`.
async fn recover_results(
    db: &xcat3_db::Db,
    request: &Request,
    pending: &mut HashSet<String>,
    until_ms: i64,
) -> Results {
    let mut out = Results::new();
    loop {
        let names: Vec<String> = pending.iter().cloned().collect();
        match history::results_of(db, &request.request_id, &names).await {
            Ok(found) => out.extend(found.into_iter().filter(|o| pending.remove(&o.node)).map(
                |o| {
                    let r = if o.ok {
                        NodeResult::Ok(o.result)
                    } else {
                        NodeResult::error(o.kind.unwrap_or(ErrorKind::Internal), o.result)
                    };
                    (o.node, r)
                },
            )),
            Err(e) => tracing::warn!(error = %e, "reading recorded results failed"),
        }
        let left = until_ms - now_ms();
        if pending.is_empty() || left <= 0 {
            break;
        }
        tokio::time::sleep(RECOVERY_POLL.min(Duration::from_millis(left as u64))).await;
    }
    if !out.is_empty() {
        tracing::info!(
            request_id = %request.request_id,
            nodes = out.len(),
            "results recovered from the history"
        );
    }
    out
}

/// Counts a batch of results of `action`: ok and error, and errors by kind.
fn count_results(action: &'static str, results: &Results) {
    let mut kinds: BTreeMap<ErrorKind, usize> = BTreeMap::new();
    for kind in results.iter().filter_map(|(_, r)| r.kind()) {
        *kinds.entry(kind).or_default() += 1;
    }
    let failed: usize = kinds.values().sum();
    node_outcomes(action, "ok", results.len() - failed);
    node_outcomes(action, "error", failed);
    for (kind, n) in kinds {
        node_errors(action, kind, n);
    }
}

/// Counts `n` per-node results of `action` with `outcome`.
fn node_outcomes(action: &'static str, outcome: &'static str, n: usize) {
    if n > 0 {
        metrics::count(
            "xcat3_api_node_results_total",
            "Per-node results of actions, by outcome (ok, error, timeout, lost, conductor_lost).",
            &[("action", action), ("outcome", outcome)],
            n as u64,
        );
    }
}

/// Counts `n` failed per-node results of `action` of error `kind`.
fn node_errors(action: &'static str, kind: ErrorKind, n: usize) {
    if n > 0 {
        metrics::count(
            "xcat3_api_node_errors_total",
            "Failed per-node results of actions, by error kind (unreachable, authentication, unsupported, timeout, invalid, bmc_error, locked, not_found, internal).",
            &[("action", action), ("kind", kind.as_str())],
            n as u64,
        );
    }
}
