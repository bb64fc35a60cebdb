//! Runs one request: ownership check, bulk lock, bounded fan-out over the
//! nodes, batched replies, bulk record of what was observed, bulk unlock.
//!
//! Every node named in the request gets exactly one result.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tracing::Instrument;
use xcat3_bus::Responder;
use xcat3_common::config::PowerConfig;
use xcat3_common::metrics;
use xcat3_common::model::tokens;
use xcat3_common::model::{self, Mgt, VmShape};
use xcat3_common::rpc::{
    Action, BootDevice, NodeResult, PowerTarget, ProvisionTarget, ReplyBatch, Request, now_ms,
};
use xcat3_db::nodes::{self as node_db, NodeRecord, Observed, parse_map};
use xcat3_db::{Db, locks};

use crate::drivers::kvm::{self, Guest, VmOutcomes};
use crate::drivers::{DriverError, Drivers, NodeInfo, VmHost};
use crate::membership::Membership;
use crate::provision::{Prepared, Provisioner};

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
}

/// An outcome the runner observed and will record in the node table
/// (`None` as the value clears the column).
type Observation = Option<(Observed, Option<String>)>;

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
        }
    }

    /// Nodes being acted on right now (reported in heartbeats).
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Runs `req` and replies through `responder`. A request whose deadline
    /// passed is dropped unrun: its caller has already reported a timeout,
    /// and a power action must never run late.
    pub async fn run(self: &Arc<Self>, req: Request, responder: &dyn Responder) {
        let span =
            tracing::info_span!("request", request_id = %req.request_id, nodes = req.nodes.len());
        self.run_in_span(req, responder).instrument(span).await
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
        let (tx, rx) = mpsc::unbounded_channel::<(String, NodeResult, Observation)>();
        // The fan-out and the batcher run side by side: results stream to
        // the caller while nodes are still being worked on.
        let (sent, (observed, mut pending)) = tokio::join!(
            self.clone().execute(&req, tx),
            batch_replies(rx, &req.request_id, &self.host, responder),
        );
        // Record observations before the last batch, so that when the
        // caller sees `done`, a status read reflects this action.
        for (what, values) in group_observed(observed) {
            if let Err(e) = node_db::record(&self.db, what, &values).await {
                tracing::error!(error = %e, "recording observations failed");
                metrics::db_error("record");
            }
        }
        // Claims of nodes we never locked end now; those of locked nodes
        // only once the database has released them, so that no request
        // of ours takes a node whose release is still pending.
        let locked: HashSet<&String> = sent.locked.iter().collect();
        let never_locked: Vec<String> = sent
            .claimed
            .iter()
            .filter(|n| !locked.contains(n))
            .cloned()
            .collect();
        self.unclaim(&never_locked);
        if let Err(e) = locks::release(&self.db, &self.host, &sent.locked).await {
            // Keep trying in the background: a lock left behind by a live
            // conductor is released by nobody else until it restarts.
            tracing::error!(error = %e, nodes = sent.locked.len(), "releasing locks failed; retrying");
            metrics::db_error("release_locks");
            let (this, names) = (self.clone(), sent.locked.clone());
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
            self.unclaim(&sent.locked);
        }
        // Exactly one result per node, whatever happened above.
        for n in &req.nodes {
            if !sent.answered.contains(n) && !pending.contains_key(n) {
                pending.insert(
                    n.clone(),
                    NodeResult::Error(format!("internal error on conductor {}", self.host)),
                );
            }
        }
        let last = ReplyBatch {
            request_id: req.request_id.clone(),
            host: self.host.clone(),
            results: pending,
            done: true,
        };
        if let Err(e) = responder.reply(&last).await {
            tracing::warn!(error = %e, "reply failed");
            metrics::bus_error("reply");
        }
        tracing::info!(
            host = %self.host,
            handled = sent.answered.len(),
            ms = start.elapsed().as_millis() as u64,
            "request done"
        );
    }

    async fn execute(
        self: Arc<Self>,
        req: &Request,
        tx: mpsc::UnboundedSender<(String, NodeResult, Observation)>,
    ) -> Sent {
        let mut sent = Sent::default();
        let answer = |sent: &mut Sent, name: &str, r: NodeResult| {
            sent.answered.insert(name.to_string());
            let _ = tx.send((name.to_string(), r, None));
        };
        // Every node of `names` gets the same error (a step failed for all).
        let fail_all = |sent: &mut Sent, names: &[String], why: String| {
            for n in names {
                answer(sent, n, NodeResult::Error(why.clone()));
            }
        };
        // Ownership: the API's ring and ours may differ for a moment while
        // membership changes; the caller retries such nodes.
        let ring = match self.membership.ring().await {
            Ok(r) => r,
            Err(e) => {
                metrics::db_error("ring");
                fail_all(
                    &mut sent,
                    &req.nodes,
                    format!("conductor {}: {e}", self.host),
                );
                return sent;
            }
        };
        let mut mine = Vec::with_capacity(req.nodes.len());
        for n in &req.nodes {
            match ring.owner(req.ring_key(n)) {
                Some(h) if h == self.host => mine.push(n.clone()),
                other => answer(
                    &mut sent,
                    n,
                    NodeResult::Error(format!(
                        "not mapped to conductor {} (ring owner: {}); retry",
                        self.host,
                        other.unwrap_or("none")
                    )),
                ),
            }
        }
        // Writes take the node lock: first among our own requests, then in
        // the DB against other conductors. Reads take none (as in v1).
        let mut work = mine;
        if req.action.is_write() {
            let mut claimed = Vec::with_capacity(work.len());
            if let Ok(mut set) = self.in_flight.lock() {
                for n in work {
                    if set.insert(n.clone()) {
                        claimed.push(n);
                    } else {
                        answer(
                            &mut sent,
                            &n,
                            NodeResult::Error(format!("locked by {}", self.host)),
                        );
                    }
                }
            }
            sent.claimed = claimed.clone();
            match locks::acquire(&self.db, &self.host, &claimed).await {
                Ok(results) => {
                    work = Vec::with_capacity(claimed.len());
                    let returned: HashSet<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
                    for n in claimed.iter().filter(|n| !returned.contains(n.as_str())) {
                        answer(&mut sent, n, NodeResult::Error(tokens::NOT_FOUND.into()));
                    }
                    for (name, r) in results {
                        match r {
                            Ok(()) => work.push(name),
                            Err(holder) => answer(
                                &mut sent,
                                &name,
                                NodeResult::Error(format!("locked by {holder}")),
                            ),
                        }
                    }
                    sent.locked = work.clone();
                }
                Err(e) => {
                    metrics::db_error("lock");
                    // The statement may have been applied before the
                    // connection failed: release them all (they are ours
                    // alone in-process, so no other request's lock goes).
                    sent.locked = claimed.clone();
                    let why = format!("conductor {}: cannot lock: {e}", self.host);
                    fail_all(&mut sent, &claimed, why);
                    return sent;
                }
            }
        }
        let with_nics = matches!(
            req.action,
            Action::Provision { .. } | Action::VmCreate { .. } | Action::VmRemove { .. }
        );
        let mut records = match node_db::load(&self.db, &work, with_nics).await {
            Ok(r) => r,
            Err(e) => {
                metrics::db_error("load");
                fail_all(&mut sent, &work, format!("conductor {}: {e}", self.host));
                return sent;
            }
        };
        // KVM guests may be found by their MAC when no domain has their name.
        if !with_nics
            && let Err(e) = node_db::load_nics(&self.db, &mut records, |n| {
                n.mgt.as_deref() == Some(Mgt::Kvm.as_str())
            })
            .await
        {
            fail_all(&mut sent, &work, format!("conductor {}: {e}", self.host));
            return sent;
        }
        let hosts = match self.load_vm_hosts(&records).await {
            Ok(h) => h,
            Err(e) => {
                fail_all(&mut sent, &work, format!("conductor {}: {e}", self.host));
                return sent;
            }
        };
        // Nodes deleted since the API looked them up.
        let loaded: HashSet<&str> = records.iter().map(|r| r.node.name.as_str()).collect();
        for n in &work {
            if !loaded.contains(n.as_str()) {
                answer(&mut sent, n, NodeResult::Error(tokens::NOT_FOUND.into()));
            }
        }
        if let Action::Provision { target } = &req.action {
            // DHCP and boot files are written in bulk, not node by node.
            let results = match target {
                ProvisionTarget::Nodeset { osimage } => {
                    self.deploy(&records, osimage.as_deref(), false, &hosts, req.deadline_ms)
                        .await
                }
                ProvisionTarget::Takeover => {
                    self.deploy(&records, None, true, &hosts, req.deadline_ms)
                        .await
                }
                other => self.actors.provisioner.run(&records, other).await,
            };
            for (name, r) in results {
                let r = match r {
                    Ok(()) => NodeResult::Ok(tokens::OK.into()),
                    Err(e) => NodeResult::Error(e),
                };
                answer(&mut sent, &name, r);
            }
            return sent;
        }
        if matches!(
            req.action,
            Action::VmCreate { .. } | Action::VmRemove { .. }
        ) {
            // Guests are defined per hypervisor batch, not node by node.
            let left = Duration::from_millis((req.deadline_ms - now_ms()).max(0) as u64);
            let run = self.run_vms(req, &records, &hosts);
            match tokio::time::timeout(left, run).await {
                Ok(results) => {
                    for (name, r) in results {
                        let r = match r {
                            Ok(text) => NodeResult::Ok(text),
                            Err(e) => NodeResult::Error(e),
                        };
                        answer(&mut sent, &name, r);
                    }
                }
                Err(_) => {
                    for rec in &records {
                        answer(
                            &mut sent,
                            &rec.node.name,
                            NodeResult::Error(
                                "timeout: the hypervisor did not finish before the request's deadline (the guest may still appear; re-run to see)".into(),
                            ),
                        );
                    }
                }
            }
            return sent;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for rec in records {
            let info = node_info(&rec, &hosts);
            sent.answered.insert(info.name.clone());
            let this = self.clone();
            let action = req.action.clone();
            let tx = tx.clone();
            let deadline_ms = req.deadline_ms;
            tasks.spawn(async move {
                let (result, observed) = this.act(&info, &action, deadline_ms).await;
                let _ = tx.send((info.name, result, observed));
            });
        }
        while tasks.join_next().await.is_some() {}
        sent
    }

    /// `nodeset` (or, with `takeover`, re-creating a deploy another
    /// conductor prepared): reservations, install entries and answer files
    /// in bulk, then each node's next boot set to the network once through
    /// its power driver (nodes without `mgt` are booted by hand), then the
    /// states recorded: `deploying`, or `deploy failed` with the reason
    /// when the boot device could not be set.
    async fn deploy(
        self: &Arc<Self>,
        records: &[NodeRecord],
        osimage: Option<&str>,
        takeover: bool,
        hosts: &HashMap<String, Map<String, Value>>,
        deadline_ms: i64,
    ) -> Vec<(String, Result<(), String>)> {
        let provisioner = &self.actors.provisioner;
        let mut out = Vec::with_capacity(records.len());
        let mut ready = Vec::with_capacity(records.len());
        for (name, r) in provisioner.prepare_deploy(records, osimage, takeover).await {
            match r {
                Ok(p) => ready.push(p),
                Err(e) => out.push((name, Err(e))),
            }
        }
        let mut failed: HashMap<String, String> = HashMap::new();
        if !takeover {
            let by_name: HashMap<&str, &NodeRecord> =
                records.iter().map(|r| (r.node.name.as_str(), r)).collect();
            let net_once = Action::BootDeviceSet {
                device: BootDevice::Net,
                persistent: false,
            };
            let mut tasks = tokio::task::JoinSet::new();
            for p in &ready {
                let rec = by_name[p.name.as_str()];
                if rec.node.mgt.is_none() {
                    continue;
                }
                let info = node_info(rec, hosts);
                let (this, action) = (self.clone(), net_once.clone());
                tasks.spawn(async move {
                    let (r, _) = this.act(&info, &action, deadline_ms).await;
                    (info.name, r)
                });
            }
            while let Some(done) = tasks.join_next().await {
                if let Ok((name, NodeResult::Error(e))) = done {
                    failed.insert(
                        name,
                        format!("setting the next boot device to the network failed: {e}"),
                    );
                }
            }
        }
        let (ok, not): (Vec<Prepared>, Vec<Prepared>) = ready
            .into_iter()
            .partition(|p| !failed.contains_key(&p.name));
        let failed: Vec<(String, String)> = not
            .into_iter()
            .map(|p| {
                let e = failed.remove(&p.name).unwrap_or_default();
                (p.name, e)
            })
            .collect();
        let recorded = if takeover {
            provisioner.record_takeover(&ok).await
        } else {
            provisioner.record_deploy(&ok, &failed).await
        };
        match recorded {
            Ok(()) => {
                out.extend(ok.into_iter().map(|p| (p.name, Ok(()))));
                out.extend(failed.into_iter().map(|(n, e)| (n, Err(e))));
            }
            Err(e) => {
                let why = format!("conductor {}: recording the deploy: {e}", self.host);
                out.extend(ok.into_iter().map(|p| (p.name, Err(why.clone()))));
                out.extend(failed.into_iter().map(|(n, _)| (n, Err(why.clone()))));
            }
        }
        out
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
        };
        self.run(req, &LogResponder).await;
    }

    /// One node: validate, then act within the permit and the deadline.
    async fn act(
        &self,
        node: &NodeInfo,
        action: &Action,
        deadline_ms: i64,
    ) -> (NodeResult, Observation) {
        // Power-on pacing comes before a worker permit, so that staggered
        // nodes do not hold workers other actions could use.
        let _power_slot = match action {
            Action::Power { target } if powers_on(*target) => {
                let left = Duration::from_millis((deadline_ms - now_ms()).max(0) as u64);
                match tokio::time::timeout(left, self.actors.power_gate.enter()).await {
                    Ok(slot) => slot,
                    Err(_) => {
                        return (
                            NodeResult::Error(
                                "deadline passed waiting for a power-on slot ([power] max_concurrent, stagger_ms)"
                                    .into(),
                            ),
                            None,
                        );
                    }
                }
            }
            _ => None,
        };
        let Ok(_permit) = self.permits.acquire().await else {
            return (NodeResult::Error("conductor is shutting down".into()), None);
        };
        let left = deadline_ms - now_ms();
        if left <= 0 {
            return (
                NodeResult::Error("deadline passed before the action could run".into()),
                None,
            );
        }
        let limit = self.call_timeout.min(Duration::from_millis(left as u64));
        let fut = self.dispatch(node, action);
        let started = Instant::now();
        let (result, outcome) = match tokio::time::timeout(limit, fut).await {
            Ok(Ok((text, observed))) => ((NodeResult::Ok(text), observed), "ok"),
            Ok(Err(e)) => ((NodeResult::Error(e.to_string()), None), "error"),
            Err(_) => (
                (
                    NodeResult::Error(format!("timeout after {} ms", limit.as_millis())),
                    None,
                ),
                "timeout",
            ),
        };
        let mgt = node.mgt.map(|m| m.as_str()).unwrap_or("none");
        let labels = [
            ("mgt", mgt),
            ("action", action.name()),
            ("outcome", outcome),
        ];
        metrics::observe(
            "xcat3_conductor_driver_seconds",
            "Driver call latency per node, by mgt, action and outcome.",
            &labels,
            started.elapsed().as_secs_f64(),
        );
        result
    }

    async fn dispatch(
        &self,
        node: &NodeInfo,
        action: &Action,
    ) -> Result<(String, Observation), DriverError> {
        match action {
            Action::PowerStatus => {
                let d = self.actors.drivers.power(node)?;
                d.validate(node)?;
                let s = d.get_power(node).await?;
                Ok((
                    s.as_str().into(),
                    Some((Observed::PowerState, Some(s.as_str().into()))),
                ))
            }
            Action::Power { target } => {
                let d = self.actors.drivers.power(node)?;
                d.validate(node)?;
                let s = d.set_power(node, *target).await?;
                Ok((
                    "ok".into(),
                    Some((Observed::PowerState, Some(s.as_str().into()))),
                ))
            }
            Action::BootDeviceGet => {
                let d = self.actors.drivers.management(node)?;
                d.validate(node)?;
                let dev = d.get_boot_device(node).await?;
                Ok((
                    dev.as_str().into(),
                    Some((Observed::BootDevice, Some(dev.as_str().into()))),
                ))
            }
            Action::BootDeviceSet { device, persistent } => {
                let d = self.actors.drivers.management(node)?;
                d.validate(node)?;
                d.set_boot_device(node, *device, *persistent).await?;
                Ok((
                    "ok".into(),
                    Some((Observed::BootDevice, Some(device.as_str().into()))),
                ))
            }
            Action::HypervisorInfo => {
                let c = self
                    .actors
                    .drivers
                    .kvm
                    .capacity(&node.name, &node.control_info)
                    .await?;
                Ok((serde_json::to_string(&c).unwrap_or_default(), None))
            }
            Action::Provision { .. } | Action::VmCreate { .. } | Action::VmRemove { .. } => Err(
                DriverError("internal error: a bulk action reached the per-node path".into()),
            ),
        }
    }

    /// The `control_info` of the hypervisors named by the records'
    /// `control_info.vm_host` (one query).
    async fn load_vm_hosts(
        &self,
        records: &[NodeRecord],
    ) -> Result<HashMap<String, Map<String, Value>>, xcat3_db::DbError> {
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
        Ok(node_db::load(&self.db, &names, false)
            .await?
            .into_iter()
            .map(|r| (r.node.name.clone(), parse_map(&r.node.control_info)))
            .collect())
    }

    /// `mkvm` / `rmvm`: the guests grouped by hypervisor, each group one
    /// batch on that hypervisor's connection, groups concurrently.
    async fn run_vms(
        &self,
        req: &Request,
        records: &[NodeRecord],
        hosts: &HashMap<String, Map<String, Value>>,
    ) -> VmOutcomes {
        let mut out = VmOutcomes::new();
        let mut by_host: BTreeMap<String, Vec<Guest>> = BTreeMap::new();
        // rmvm of guests that name their hypervisor themselves (libvirt_uri).
        let mut on_own = Vec::new();
        for rec in records {
            let name = rec.node.name.clone();
            let info = parse_map(&rec.node.control_info);
            let shape = match VmShape::from_control_info(&info) {
                Ok(s) => s,
                Err(e) => {
                    out.push((name, Err(e.to_string())));
                    continue;
                }
            };
            if req.ring_key(&name) != shape.host.as_deref().unwrap_or(&name) {
                out.push((
                    name,
                    Err(
                        "control_info.vm_host changed while the request was under way; retry"
                            .into(),
                    ),
                ));
                continue;
            }
            let guest = Guest {
                mac: rec.primary_mac(),
                arch: rec.node.arch.clone(),
                shape,
                name,
            };
            match (&guest.shape.host, &req.action) {
                (Some(h), _) => by_host.entry(h.clone()).or_default().push(guest),
                // A guest with no hypervisor at all (rmvm'd before) is gone.
                (None, Action::VmRemove { .. }) if !kvm::has_own_endpoint(&info) => {
                    out.push((guest.name, Ok(tokens::ABSENT.into())))
                }
                (None, Action::VmRemove { .. }) => on_own.push((guest, info)),
                (None, _) => out.push((
                    guest.name,
                    Err("control_info.vm_host: not set (mkvm --host HYPERVISOR)".into()),
                )),
            }
        }
        let purge = matches!(req.action, Action::VmRemove { purge: true });
        let kvm = &self.actors.drivers.kvm;
        let mut tasks = tokio::task::JoinSet::new();
        for (host, guests) in by_host {
            let Some(info) = hosts.get(&host).cloned() else {
                for g in guests {
                    out.push((
                        g.name,
                        Err(format!("control_info.vm_host: no node `{host}`")),
                    ));
                }
                continue;
            };
            let kvm = kvm.clone();
            let create = match &req.action {
                Action::VmCreate { source } => Some(source.clone()),
                _ => None,
            };
            tasks.spawn(async move {
                if let Some(source) = create {
                    kvm.create_guests(&host, &info, guests, source).await
                } else {
                    kvm.remove_guests(Some(&host), &info, guests, purge).await
                }
            });
        }
        for (guest, info) in on_own {
            let kvm = kvm.clone();
            tasks.spawn(async move { kvm.remove_guests(None, &info, vec![guest], purge).await });
        }
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(results) => out.extend(results),
                Err(e) => tracing::error!("VM batch failed: {e}"),
            }
        }
        out
    }
}

/// Whether `target` can start a machine (and so draw inrush current).
/// What a driver is handed for one node.
fn node_info(rec: &NodeRecord, hosts: &HashMap<String, Map<String, Value>>) -> NodeInfo {
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
        power_state: n.power_state.clone(),
        boot_device: n.boot_device.clone(),
        primary_mac: rec.primary_mac(),
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
                tracing::warn!(node, error = %e, "takeover");
            }
        }
        Ok(())
    }

    async fn ack(&self) -> Result<(), xcat3_bus::BusError> {
        Ok(())
    }
}

fn powers_on(target: PowerTarget) -> bool {
    matches!(
        target,
        PowerTarget::On | PowerTarget::Boot | PowerTarget::Cycle
    )
}

/// Paces power-on actions on this conductor: at most `max_concurrent` in
/// flight, and starts at least `stagger` apart, in arrival order.
pub struct PowerGate {
    slots: Option<Arc<Semaphore>>,
    stagger: Duration,
    next_start: tokio::sync::Mutex<Instant>,
}

impl PowerGate {
    pub fn new(config: &PowerConfig) -> PowerGate {
        PowerGate {
            slots: (config.max_concurrent > 0)
                .then(|| Arc::new(Semaphore::new(config.max_concurrent))),
            stagger: Duration::from_millis(config.stagger_ms),
            next_start: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this action's turn; the slot is held until it is dropped.
    async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        let slot = match &self.slots {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        if !self.stagger.is_zero() {
            let start = {
                let mut next = self.next_start.lock().await;
                let start = (*next).max(Instant::now());
                *next = start + self.stagger;
                start
            };
            tokio::time::sleep_until(start).await;
        }
        slot
    }
}

/// What `execute` did, for the cleanup after it.
#[derive(Default)]
struct Sent {
    /// Nodes that got (or will get) a result through the channel.
    answered: HashSet<String>,
    /// Nodes added to the in-process in-flight set.
    claimed: Vec<String>,
    /// Nodes whose DB lock we took.
    locked: Vec<String>,
}

/// Sends results in batches as they arrive (full, or old enough); returns
/// the observations for bulk recording and what is left for the final
/// `done` batch.
async fn batch_replies(
    mut rx: mpsc::UnboundedReceiver<(String, NodeResult, Observation)>,
    request_id: &str,
    host: &str,
    responder: &dyn Responder,
) -> (
    Vec<(String, Observed, Option<String>)>,
    BTreeMap<String, NodeResult>,
) {
    let mut observed = Vec::new();
    let mut pending: BTreeMap<String, NodeResult> = BTreeMap::new();
    let mut since = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout(BATCH_INTERVAL, rx.recv()).await {
            Ok(Some((name, result, obs))) => {
                if let Some((what, value)) = obs {
                    observed.push((name.clone(), what, value));
                }
                pending.insert(name, result);
            }
            Ok(None) => break,
            Err(_) => {}
        }
        if pending.len() >= BATCH_SIZE || (!pending.is_empty() && since.elapsed() >= BATCH_INTERVAL)
        {
            let batch = ReplyBatch {
                request_id: request_id.to_string(),
                host: host.to_string(),
                results: std::mem::take(&mut pending),
                done: false,
            };
            if let Err(e) = responder.reply(&batch).await {
                tracing::warn!(error = %e, "reply failed");
                metrics::bus_error("reply");
                metrics::bus_error("reply");
            }
            since = tokio::time::Instant::now();
        }
    }
    (observed, pending)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts are `stagger` apart in arrival order, and no more than
    /// `max_concurrent` actions hold a slot at once (on tokio's paused
    /// clock: logical time, not a timing measurement).
    #[tokio::test(start_paused = true)]
    async fn power_gate_staggers_and_bounds_power_on() {
        let gate = Arc::new(PowerGate::new(&PowerConfig {
            max_concurrent: 2,
            stagger_ms: 100,
        }));
        let t0 = Instant::now();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            tasks.spawn(async move {
                let _slot = gate.enter().await;
                let started = Instant::now() - t0;
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                // Each power-on action takes 250 ms.
                tokio::time::sleep(Duration::from_millis(250)).await;
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                started.as_millis()
            });
        }
        let mut starts: Vec<u128> = tasks.join_all().await;
        starts.sort();
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= 100, "starts {starts:?}");
        }
        assert_eq!(starts[0], 0);
    }

    #[tokio::test(start_paused = true)]
    async fn power_gate_off_by_default() {
        let gate = PowerGate::new(&PowerConfig::default());
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(gate.enter().await.is_none());
        }
        assert_eq!(Instant::now(), t0);
    }
}
