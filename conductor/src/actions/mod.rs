//! One module per action: how it locks, what it loads, how it runs.
//!
//! The runner (`runner.rs`) owns what every action shares: the ring check,
//! the in-process claim and the database lock, loading the nodes, batching
//! replies, recording observations and unlocking. An action only says
//! whether it needs the lock and every nic, and runs on the loaded nodes.
//! Adding an action is a variant of `rpc::Action`, a module here and an
//! arm in [`of`].
//!
//! Per-node actions (power, boot device, hypervisor capacity) implement
//! [`NodeStep`]: one driver call, run by [`per_node`] under the runner's
//! worker permits, call timeout and deadline. Bulk actions (provision,
//! vm) act on the whole batch at once; so do `exec` and `copy`
//! (`remote.rs`), whose sessions have their own fanout and timeout.

mod boot_device;
mod console;
mod hypervisor;
mod inspect;
mod power;
mod provision;
mod remote;
mod vm;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use xcat3_common::rpc::{Action, NodeResult, Request};
use xcat3_db::nodes::{NodeRecord, Observed};

use crate::drivers::{DriverError, Drivers, NodeInfo};
use crate::runner::Runner;

pub use console::MAX_LOG_LINES;
pub use power::{PowerGate, Status as PowerStatus};

/// An outcome the runner observed and will record in the node table
/// (`None` as the value clears the column).
pub type Observation = Option<(Observed, Option<String>)>;

/// Where an action sends each node's result (and what it observed).
pub type Results = mpsc::UnboundedSender<(String, NodeResult, Observation)>;

/// The nodes of one request, locked (for writes) and loaded.
pub struct Batch<'a> {
    pub request: &'a Request,
    pub records: Vec<NodeRecord>,
    /// The `control_info` of the hypervisors the nodes' `vm_host` names.
    pub vm_hosts: HashMap<String, Map<String, Value>>,
}

/// One action, as the runner drives it.
#[async_trait]
pub trait ActionModule: Send + Sync {
    /// Whether it changes the nodes, and so takes their lock.
    fn locks(&self) -> bool;

    /// Whether it needs every nic of every node (DHCP, guests); otherwise
    /// only KVM guests' nics are loaded (to find a domain by MAC).
    fn needs_nics(&self) -> bool;

    /// Sends exactly one result per record of `batch` to `out`.
    async fn run(&self, runner: &Arc<Runner>, batch: Batch<'_>, out: &Results);
}

/// The module that runs `action`.
pub fn of(action: &Action) -> Box<dyn ActionModule> {
    match action {
        Action::PowerStatus => Box::new(PerNode(power::Status)),
        Action::Power { target } => Box::new(PerNode(power::Set { target: *target })),
        Action::BootDeviceGet => Box::new(PerNode(boot_device::Get)),
        Action::BootDeviceSet { device, persistent } => Box::new(PerNode(boot_device::Set {
            device: *device,
            persistent: *persistent,
        })),
        Action::HypervisorInfo => Box::new(PerNode(hypervisor::Capacity)),
        Action::Provision { target } => Box::new(provision::Provision {
            target: target.clone(),
        }),
        Action::VmCreate { source } => Box::new(vm::Guests::Create {
            source: source.clone(),
        }),
        Action::VmRemove { purge } => Box::new(vm::Guests::Remove { purge: *purge }),
        Action::Inventory => Box::new(PerNode(inspect::Inventory)),
        Action::Vitals { sensors } => Box::new(PerNode(inspect::Vitals { which: *sensors })),
        Action::EventLog { count, clear } => Box::new(PerNode(inspect::Log {
            count: *count,
            clear: *clear,
        })),
        Action::Beacon { state } => Box::new(PerNode(inspect::SetBeacon { state: *state })),
        Action::Health => Box::new(PerNode(inspect::Health)),
        Action::ConsoleList => Box::new(console::Console::List),
        Action::ConsoleLog { lines } => Box::new(console::Console::Log { lines: *lines }),
        Action::Exec {
            command,
            user,
            timeout_s,
            fanout,
        } => Box::new(remote::Remote {
            work: remote::Work::Command(command.clone()),
            user: user.clone(),
            timeout: std::time::Duration::from_secs(*timeout_s as u64),
            fanout: *fanout as usize,
        }),
        Action::Postscripts { timeout_s, fanout } => Box::new(remote::Remote {
            work: remote::Work::Postscripts,
            user: xcat3_common::exec::DEFAULT_USER.into(),
            timeout: std::time::Duration::from_secs(*timeout_s as u64),
            fanout: *fanout as usize,
        }),
        Action::Copy {
            files,
            dest,
            user,
            timeout_s,
            fanout,
        } => Box::new(remote::Remote {
            work: remote::Work::Copy {
                files: Arc::new(files.clone()),
                dest: dest.clone(),
            },
            user: user.clone(),
            timeout: std::time::Duration::from_secs(*timeout_s as u64),
            fanout: *fanout as usize,
        }),
    }
}

/// One node, one driver call.
#[async_trait]
pub trait NodeStep: Send + Sync {
    /// The label for logs and the driver-latency metric.
    fn name(&self) -> &'static str;

    /// Whether it waits for a power-on slot first ([`PowerGate`]).
    fn powers_on(&self) -> bool {
        false
    }

    /// Whether it changes the node (and so the runner must hold its lock).
    fn writes(&self) -> bool;

    /// Whether the node (re)starts when it succeeds: its console, waiting
    /// to reconnect, is told to try at once so the boot is not missed.
    fn starts_node(&self) -> bool {
        false
    }

    /// Whether it reads the node's nics ([`NodeInfo::nic_macs`]).
    fn needs_nics(&self) -> bool {
        false
    }

    /// Runs on one node: the result text and what to record.
    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError>;
}

/// A [`NodeStep`] run on every node of a batch, concurrently.
struct PerNode<S>(S);

#[async_trait]
impl<S: NodeStep + Clone + 'static> ActionModule for PerNode<S> {
    fn locks(&self) -> bool {
        self.0.writes()
    }

    fn needs_nics(&self) -> bool {
        self.0.needs_nics()
    }

    async fn run(&self, runner: &Arc<Runner>, batch: Batch<'_>, out: &Results) {
        let step: Arc<dyn NodeStep> = Arc::new(self.0.clone());
        per_node(runner, &batch, step, out).await;
    }
}

/// Runs `step` on every record of `batch`, each within the runner's
/// permits, timeout and deadline; results go to `out` as they finish.
pub async fn per_node(
    runner: &Arc<Runner>,
    batch: &Batch<'_>,
    step: Arc<dyn NodeStep>,
    out: &Results,
) {
    let deadline_ms = batch.request.deadline_ms;
    let mut tasks = tokio::task::JoinSet::new();
    for rec in &batch.records {
        let info = crate::runner::node_info(rec, &batch.vm_hosts);
        let (runner, step, out) = (runner.clone(), step.clone(), out.clone());
        tasks.spawn(async move {
            let (result, observed) = runner.act(&info, step.as_ref(), deadline_ms).await;
            if step.starts_node()
                && matches!(result, NodeResult::Ok(_))
                && let Some(consoles) = &runner.actors().consoles
            {
                consoles.nudge(&info.name);
            }
            let _ = out.send((info.name, result, observed));
        });
    }
    while tasks.join_next().await.is_some() {}
}
