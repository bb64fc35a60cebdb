//! Runs one request: ownership check, claim and bulk lock, bulk load, the
//! action's module (`actions/`), batched replies, bulk record of what was
//! observed, bulk unlock.
//!
//! **Invariant:** every node named in the request gets exactly one result.
//! The batcher remembers every node it was given a result for; whatever
//! an action leaves out gets an internal error in the last batch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tracing::Instrument;
use xcat3_bus::Responder;
use xcat3_common::metrics;
use xcat3_common::model::{self, Mgt, tokens};
use xcat3_common::rpc::{
    Action, ErrorKind, NodeError, NodeResult, ProvisionTarget, ReplyBatch, Request, now_ms,
};
use xcat3_db::history::{self, NodeOutcome};
use xcat3_db::nodes::{self as node_db, NodeRecord, Observed, parse_map};
use xcat3_db::{Db, locks};

use crate::actions::{self, Batch, NodeStep, Observation, PowerGate, Results};
use crate::drivers::{Drivers, NodeInfo, VmHost};
use crate::membership::Membership;
use crate::provision::Provisioner;

/// Send a batch when it holds this many results...
const BATCH_SIZE: usize = 1000;
/// ...or when its oldest result is this old.
const BATCH_INTERVAL: Duration = Duration::from_millis(200);

/// What acts on nodes: per-node drivers, the power-on pacing in front of
/// them, and bulk provisioning (DHCP and boot files).
pub struct Actors {
    pub drivers: Drivers,
    pub power_gate: PowerGate,
    pub provisioner: Arc<Provisioner>,
    /// The console server (None when `[console] listen` is empty).
    pub consoles: Option<Arc<crate::console::ConsoleServer>>,
}

/// What the runner needs; shared by every request on this conductor.
pub struct Runner {
    pub host: String,
    pub db: Db,
    pub membership: Arc<Membership>,
    actors: Actors,
    /// Nodes some request on this conductor is acting on now. The DB lock
    /// holds our host name for all of them, so this set is what tells two
    /// of our own requests apart.
    in_flight: Mutex<HashSet<String>>,
    /// Bounds concurrent driver calls across all requests.
    permits: Arc<Semaphore>,
    /// Upper bound on one driver call.
    call_timeout: Duration,
    /// Requests running now (the power sync pauses while any does).
    active: AtomicUsize,
    /// What `exec` and `copy` share: the cluster's SSH key.
    shell: crate::shell::Shell,
}

impl Runner {
    pub fn new(
        host: String,
        db: Db,
        membership: Arc<Membership>,
        actors: Actors,
        workers: usize,
        call_timeout: Duration,
    ) -> Runner {
        Runner {
            host,
            db,
            membership,
            actors,
            in_flight: Mutex::new(HashSet::new()),
            permits: Arc::new(Semaphore::new(workers.max(1))),
            call_timeout,
            active: AtomicUsize::new(0),
            shell: crate::shell::Shell::default(),
        }
    }

    /// The cluster's SSH identity, for `exec` and `copy`.
    pub fn shell(&self) -> &crate::shell::Shell {
        &self.shell
    }

    pub fn actors(&self) -> &Actors {
        &self.actors
    }

    /// Upper bound on one driver call.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Whether some request is running on this conductor now.
    pub fn busy(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Nodes being acted on right now (reported in heartbeats).
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// An internal failure of this conductor, naming it.
    pub fn internal(&self, why: impl std::fmt::Display) -> NodeError {
        NodeError::internal(format!("conductor {}: {why}", self.host))
    }

    /// Runs `req` and replies through `responder`. A request whose deadline
    /// passed is dropped unrun: its caller has already reported a timeout,
    /// and a power action must never run late.
    pub async fn run(self: &Arc<Self>, req: Request, responder: &dyn Responder) {
        let span =
            tracing::info_span!("request", request_id = %req.request_id, nodes = req.nodes.len());
        self.active.fetch_add(1, Ordering::Relaxed);
        self.run_in_span(req, responder).instrument(span).await;
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Ends this conductor's in-process claims on `names`.
    fn unclaim(&self, names: &[String]) {
        if let Ok(mut set) = self.in_flight.lock() {
            for n in names {
                set.remove(n);
            }
        }
    }

    async fn run_in_span(self: &Arc<Self>, req: Request, responder: &dyn Responder) {
        let start = std::time::Instant::now();
        if req.expired(now_ms()) {
            tracing::warn!(
                late_ms = now_ms() - req.deadline_ms,
                "dropping expired request"
            );
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        // The action and the batcher run side by side: results stream to
        // the caller while nodes are still being worked on.
        let recorder = req.record.then_some(&self.db);
        let (held, batched) = tokio::join!(
            self.clone().execute(&req, tx),
            batch_replies(rx, &req, &self.host, recorder, responder),
        );
        let Batched {
            observed,
            mut pending,
            answered,
        } = batched;
        // Record observations before the last batch, so that when the
        // caller sees `done`, a status read reflects this action.
        for (what, values) in group_observed(observed) {
            if let Err(e) = node_db::record(&self.db, what, &values).await {
                tracing::error!(error = %e, "recording observations failed");
                metrics::db_error("record");
            }
        }
        self.release(held).await;
        // Exactly one result per node, whatever happened above.
        for n in &req.nodes {
            if !answered.contains(n) {
                let why = format!("internal error on conductor {}", self.host);
                pending.insert(n.clone(), NodeResult::error(ErrorKind::Internal, why));
            }
        }
        let last = ReplyBatch {
            request_id: req.request_id.clone(),
            host: self.host.clone(),
            results: pending,
            done: true,
            recorded: false,
        };
        send(last, &req.action, recorder, responder).await;
        tracing::info!(
            host = %self.host,
            handled = answered.len(),
            ms = start.elapsed().as_millis() as u64,
            "request done"
        );
    }

    /// Ends the claims of nodes we never locked at once, those of locked
    /// nodes only once the database has released them, so that no request
    /// of ours takes a node whose release is still pending.
    async fn release(self: &Arc<Self>, held: Held) {
        let locked: HashSet<&String> = held.locked.iter().collect();
        let never_locked: Vec<String> = held
            .claimed
            .iter()
            .filter(|n| !locked.contains(n))
            .cloned()
            .collect();
        self.unclaim(&never_locked);
        if let Err(e) = locks::release(&self.db, &self.host, &held.locked).await {
            // Keep trying in the background: a lock left behind by a live
            // conductor is released by nobody else until it restarts.
            tracing::error!(error = %e, nodes = held.locked.len(), "releasing locks failed; retrying");
            metrics::db_error("release_locks");
            let (this, names) = (self.clone(), held.locked);
            tokio::spawn(async move {
                for _ in 0..150 {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    if locks::release(&this.db, &this.host, &names).await.is_ok() {
                        tracing::info!(nodes = names.len(), "locks released after retry");
                        this.unclaim(&names);
                        return;
                    }
                }
                tracing::error!(
                    nodes = names.len(),
                    "locks still held; they are cleared when this conductor restarts"
                );
                this.unclaim(&names);
            });
        } else {
            self.unclaim(&held.locked);
        }
    }

    /// Ownership, claims and locks, loading, then the action's module.
    /// Returns what it claimed and locked, for [`release`](Self::release).
    async fn execute(self: Arc<Self>, req: &Request, out: Results) -> Held {
        let mut held = Held::default();
        let answer = |name: &str, r: NodeResult| {
            let _ = out.send((name.to_string(), r, None));
        };
        // Every node of `names` gets the same error (a step failed for all).
        let fail_all = |names: &[String], why: NodeError| {
            for n in names {
                answer(n, NodeResult::Error(why.clone()));
            }
        };
        let module = actions::of(&req.action);
        // Ownership: the API's ring and ours may differ for a moment while
        // membership changes; the caller retries such nodes.
        let ring = match self.membership.ring().await {
            Ok(r) => r,
            Err(e) => {
                metrics::db_error("ring");
                fail_all(&req.nodes, self.internal(e));
                return held;
            }
        };
        let mut work = Vec::with_capacity(req.nodes.len());
        for n in &req.nodes {
            match ring.owner(req.ring_key(n)) {
                Some(h) if h == self.host => work.push(n.clone()),
                other => answer(
                    n,
                    NodeResult::error(
                        ErrorKind::Internal,
                        format!(
                            "not mapped to conductor {} (ring owner: {}); retry",
                            self.host,
                            other.unwrap_or("none")
                        ),
                    ),
                ),
            }
        }
        // Writes take the node lock: first among our own requests, then in
        // the DB against other conductors. Reads take none (as in v1).
        if module.locks() {
            let mut claimed = Vec::with_capacity(work.len());
            if let Ok(mut set) = self.in_flight.lock() {
                for n in work {
                    if set.insert(n.clone()) {
                        claimed.push(n);
                    } else {
                        answer(&n, locked_by(&self.host));
                    }
                }
            }
            held.claimed = claimed.clone();
            match locks::acquire(&self.db, &self.host, &claimed).await {
                Ok(results) => {
                    work = Vec::with_capacity(claimed.len());
                    let returned: HashSet<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
                    for n in claimed.iter().filter(|n| !returned.contains(n.as_str())) {
                        answer(n, not_found());
                    }
                    for (name, r) in results {
                        match r {
                            Ok(()) => work.push(name),
                            Err(holder) => answer(&name, locked_by(&holder)),
                        }
                    }
                    held.locked = work.clone();
                }
                Err(e) => {
                    metrics::db_error("lock");
                    // The statement may have been applied before the
                    // connection failed: release them all (they are ours
                    // alone in-process, so no other request's lock goes).
                    held.locked = claimed.clone();
                    fail_all(&claimed, self.internal(format!("cannot lock: {e}")));
                    return held;
                }
            }
        }
        let batch = match self.load(req, &work, module.needs_nics()).await {
            Ok(b) => b,
            Err(e) => {
                metrics::db_error("load");
                fail_all(&work, self.internal(e));
                return held;
            }
        };
        // Nodes deleted since the API looked them up.
        let loaded: HashSet<&str> = batch.records.iter().map(|r| r.node.name.as_str()).collect();
        for n in &work {
            if !loaded.contains(n.as_str()) {
                answer(n, not_found());
            }
        }
        module.run(&self, batch, &out).await;
        held
    }

    /// The nodes' rows (with every nic, or KVM guests' only, which find
    /// their domain by MAC) and the hypervisors their `vm_host` names.
    async fn load<'r>(
        &self,
        req: &'r Request,
        names: &[String],
        with_nics: bool,
    ) -> Result<Batch<'r>, xcat3_db::DbError> {
        let (records, vm_hosts) = self.load_for_drivers(names, with_nics).await?;
        Ok(Batch {
            request: req,
            records,
            vm_hosts,
        })
    }

    /// [`load_for_drivers`] on this conductor's database.
    pub async fn load_for_drivers(
        &self,
        names: &[String],
        with_nics: bool,
    ) -> Result<(Vec<NodeRecord>, VmHosts), xcat3_db::DbError> {
        load_for_drivers(&self.db, names, with_nics).await
    }

    /// The periodic pass over deploying nodes (timeouts, local boot for
    /// finished ones), then a takeover request to ourselves for those
    /// another conductor prepared: it locks, loads and re-creates them
    /// like any request.
    pub async fn sweep_deploys(self: &Arc<Self>) {
        let ring = match self.membership.ring().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "deploy sweep: reading the ring failed");
                return;
            }
        };
        let names = match self.actors.provisioner.sweep_deploying(&ring).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "deploy sweep failed");
                return;
            }
        };
        if names.is_empty() {
            return;
        }
        tracing::warn!(
            nodes = names.len(),
            "taking over deploying nodes another conductor prepared"
        );
        let req = Request {
            request_id: format!("takeover-{}-{}", self.host, now_ms()),
            action: Action::Provision {
                target: ProvisionTarget::Takeover,
            },
            nodes: names,
            deadline_ms: now_ms() + 4 * self.call_timeout.as_millis() as i64,
            routes: Default::default(),
            record: false,
        };
        self.run(req, &LogResponder).await;
    }

    /// One node, one step: its power-on slot if it needs one, then a
    /// worker permit, then the driver call within the call timeout and the
    /// request's deadline. Counted in the driver-latency metric.
    pub async fn act(
        &self,
        node: &NodeInfo,
        step: &dyn NodeStep,
        deadline_ms: i64,
    ) -> (NodeResult, Observation) {
        let left = || Duration::from_millis((deadline_ms - now_ms()).max(0) as u64);
        // Power-on pacing comes before a worker permit, so that staggered
        // nodes do not hold workers other actions could use.
        let _power_slot = if step.powers_on() {
            match tokio::time::timeout(left(), self.actors.power_gate.enter()).await {
                Ok(slot) => slot,
                Err(_) => {
                    let why = "deadline passed waiting for a power-on slot ([power] max_concurrent, stagger_ms)";
                    return (NodeResult::error(ErrorKind::Timeout, why), None);
                }
            }
        } else {
            None
        };
        let Ok(_permit) = self.permits.acquire().await else {
            let why = "conductor is shutting down";
            return (NodeResult::error(ErrorKind::Internal, why), None);
        };
        if left().is_zero() {
            let why = "deadline passed before the action could run";
            return (NodeResult::error(ErrorKind::Timeout, why), None);
        }
        let limit = self.call_timeout.min(left());
        let started = Instant::now();
        let (result, observed) =
            match tokio::time::timeout(limit, step.run(&self.actors.drivers, node)).await {
                Ok(Ok((text, observed))) => (NodeResult::Ok(text), observed),
                Ok(Err(e)) => (e.into(), None),
                Err(_) => (
                    NodeResult::error(
                        ErrorKind::Timeout,
                        format!("timeout after {} ms", limit.as_millis()),
                    ),
                    None,
                ),
            };
        // `outcome` keeps its three values (ok, error, timeout); the error
        // kinds have their own counter.
        let outcome = match result.kind() {
            None => "ok",
            Some(ErrorKind::Timeout) => "timeout",
            Some(_) => "error",
        };
        let mgt = node.mgt.map(|m| m.as_str()).unwrap_or("none");
        metrics::observe(
            "xcat3_conductor_driver_seconds",
            "Driver call latency per node, by mgt, action and outcome.",
            &[("mgt", mgt), ("action", step.name()), ("outcome", outcome)],
            started.elapsed().as_secs_f64(),
        );
        if let Some(kind) = result.kind() {
            metrics::count(
                "xcat3_conductor_driver_errors_total",
                "Failed driver calls per node, by mgt, action and error kind.",
                &[
                    ("mgt", mgt),
                    ("action", step.name()),
                    ("kind", kind.as_str()),
                ],
                1,
            );
        }
        (result, observed)
    }
}

fn locked_by(holder: &str) -> NodeResult {
    NodeResult::error(ErrorKind::Locked, format!("locked by {holder}"))
}

fn not_found() -> NodeResult {
    NodeResult::error(ErrorKind::NotFound, tokens::NOT_FOUND)
}

/// What a driver is handed for one node.
pub fn node_info(rec: &NodeRecord, hosts: &HashMap<String, Map<String, Value>>) -> NodeInfo {
    let n = &rec.node;
    let control_info = parse_map(&n.control_info);
    let vm_host = model::vm_host(&control_info).map(|h| VmHost {
        name: h.to_string(),
        control_info: hosts.get(h).cloned(),
    });
    NodeInfo {
        name: n.name.clone(),
        mgt: n.mgt.as_deref().and_then(|m| Mgt::parse("mgt", m).ok()),
        control_info,
        console_info: parse_map(&n.console_info),
        power_state: n.power_state.clone(),
        boot_device: n.boot_device.clone(),
        primary_mac: rec.primary_mac(),
        nic_macs: rec.nics.iter().map(|n| n.mac.clone()).collect(),
        vm_host,
    }
}

/// Replies of a conductor's request to itself (takeover) go to the log.
struct LogResponder;

#[async_trait::async_trait]
impl Responder for LogResponder {
    async fn reply(&self, batch: &ReplyBatch) -> Result<(), xcat3_bus::BusError> {
        for (node, r) in &batch.results {
            if let NodeResult::Error(e) = r {
                tracing::warn!(node, kind = %e.kind, error = %e.message, "takeover");
            }
        }
        Ok(())
    }

    async fn ack(&self) -> Result<(), xcat3_bus::BusError> {
        Ok(())
    }
}

/// What `execute` holds, for the release after it.
#[derive(Default)]
struct Held {
    /// Nodes added to the in-process in-flight set.
    claimed: Vec<String>,
    /// Nodes whose DB lock we took.
    locked: Vec<String>,
}

/// What the batcher saw, for the end of the request.
struct Batched {
    /// Observations for bulk recording.
    observed: Vec<(String, Observed, Option<String>)>,
    /// Results not sent yet: the final `done` batch.
    pending: BTreeMap<String, NodeResult>,
    /// Every node that got a result.
    answered: HashSet<String>,
}

/// Records `batch`'s results in the history first (for a recorded
/// request: one statement per batch), so they outlive the reply path, then
/// sends it. A failed record is said in the batch: the API writes them.
async fn send(
    mut batch: ReplyBatch,
    action: &Action,
    recorder: Option<&Db>,
    responder: &dyn Responder,
) {
    if let Some(db) = recorder {
        let outcomes: Vec<NodeOutcome> = batch
            .results
            .iter()
            .map(|(node, r)| NodeOutcome {
                node: node.clone(),
                ok: r.is_ok(),
                result: action.history_text(r.text()),
                kind: r.kind(),
            })
            .collect();
        match history::record(db, &batch.request_id, &outcomes).await {
            Ok(()) => batch.recorded = true,
            Err(e) => {
                tracing::warn!(error = %e, nodes = outcomes.len(), "recording results failed; the API will");
                metrics::db_error("record_results");
            }
        }
    }
    if let Err(e) = responder.reply(&batch).await {
        tracing::warn!(error = %e, "reply failed");
        metrics::bus_error("reply");
    }
}

/// Sends results in batches as they arrive (full, or old enough).
async fn batch_replies(
    mut rx: mpsc::UnboundedReceiver<(String, NodeResult, Observation)>,
    req: &Request,
    host: &str,
    recorder: Option<&Db>,
    responder: &dyn Responder,
) -> Batched {
    let mut out = Batched {
        observed: Vec::new(),
        pending: BTreeMap::new(),
        answered: HashSet::new(),
    };
    let mut since = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout(BATCH_INTERVAL, rx.recv()).await {
            Ok(Some((name, result, obs))) => {
                // A node answered twice keeps its first result.
                if !out.answered.insert(name.clone()) {
                    tracing::error!(node = name, "second result for a node dropped");
                    continue;
                }
                if let Some((what, value)) = obs {
                    out.observed.push((name.clone(), what, value));
                }
                out.pending.insert(name, result);
            }
            Ok(None) => break,
            Err(_) => {}
        }
        let full = out.pending.len() >= BATCH_SIZE;
        if full || (!out.pending.is_empty() && since.elapsed() >= BATCH_INTERVAL) {
            let batch = ReplyBatch {
                request_id: req.request_id.clone(),
                host: host.to_string(),
                results: std::mem::take(&mut out.pending),
                done: false,
                recorded: false,
            };
            send(batch, &req.action, recorder, responder).await;
            since = tokio::time::Instant::now();
        }
    }
    out
}

/// Node name and the value to store (`None`: clear the column).
type ColumnValues = Vec<(String, Option<String>)>;

/// Observations grouped by column, for one bulk statement per column.
fn group_observed(obs: Vec<(String, Observed, Option<String>)>) -> Vec<(Observed, ColumnValues)> {
    let mut out: Vec<(Observed, ColumnValues)> = Vec::new();
    for (name, what, value) in obs {
        match out.iter_mut().find(|(w, _)| *w == what) {
            Some((_, v)) => v.push((name, value)),
            None => out.push((what, vec![(name, value)])),
        }
    }
    out
}

/// Hypervisors' `control_info` by node name.
pub type VmHosts = HashMap<String, Map<String, Value>>;

/// The nodes' rows with their groups applied (with every nic, or KVM
/// guests' only), and the `control_info` of the hypervisors their
/// `vm_host` names: what [`node_info`] needs. The runner, the power sync
/// and the console server all load nodes for drivers this way.
pub async fn load_for_drivers(
    db: &Db,
    names: &[String],
    with_nics: bool,
) -> Result<(Vec<NodeRecord>, VmHosts), xcat3_db::DbError> {
    let mut records = node_db::load_resolved(db, names, with_nics).await?;
    if !with_nics {
        node_db::load_nics(db, &mut records, |n| {
            n.mgt.as_deref() == Some(Mgt::Kvm.as_str())
        })
        .await?;
    }
    let vm_hosts = load_vm_hosts(db, &records).await?;
    Ok((records, vm_hosts))
}

/// The `control_info` of the hypervisors named by the records'
/// `control_info.vm_host` (one query).
async fn load_vm_hosts(db: &Db, records: &[NodeRecord]) -> Result<VmHosts, xcat3_db::DbError> {
    let mut names: Vec<String> = records
        .iter()
        .filter(|r| r.node.control_info.contains("vm_host"))
        .filter_map(|r| model::vm_host(&parse_map(&r.node.control_info)).map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(node_db::load_resolved(db, &names, false)
        .await?
        .into_iter()
        .map(|r| (r.node.name.clone(), parse_map(&r.node.control_info)))
        .collect())
}
