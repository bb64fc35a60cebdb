//! The console server every conductor runs (the prototype's separate
//! "console-server" process, built in): the ring owner of a node holds its
//! console, so there is exactly one connection per node across the
//! cluster; when the ring changes the new owner connects and the old one
//! lets go.
//!
//! - `node.rs`: one node's console (link, log, replay, viewers, backoff);
//! - `log.rs`: the per-node log files, rotated;
//! - `http.rs`: the endpoint the API attaches viewers through (a
//!   websocket, with the token this conductor registered).
//!
//! Which consoles are held is reconciled every `[console]
//! reconcile_interval` and whenever the ring changes: every owned node
//! with `console_info.logging = always` is connected; an `on_demand` one
//! only while a viewer is attached (plus `linger`).

mod http;
pub mod log;
mod node;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit, watch};
use xcat3_common::config::ConsoleConfig;
use xcat3_common::console::{Connection, ConsoleState, Logging};
use xcat3_db::{Db, nodes};

pub use http::{DialError, Dialed, dial, serve, splice};
pub use node::{Attachment, Chunk};

use crate::drivers::{Drivers, NodeInfo};
use crate::membership::Membership;
use node::NodeConsole;

/// Console connections being set up at once (a conductor starting with
/// thousands of `always` consoles must not flood the BMC network).
const CONNECTING: usize = 256;

/// Why a viewer could not attach.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("node {0}: not found")]
    NotFound(String),
    #[error("node {node}: its console is held by conductor {owner}, not this one")]
    NotOwner { node: String, owner: String },
    #[error("node {0}: {1}")]
    Invalid(String, String),
    #[error("node {0}: {1}")]
    Store(String, xcat3_db::DbError),
}

pub struct ConsoleServer {
    host: String,
    db: Db,
    membership: Arc<Membership>,
    drivers: Drivers,
    config: ConsoleConfig,
    consoles: Mutex<HashMap<String, Arc<NodeConsole>>>,
    connecting: Semaphore,
}

impl ConsoleServer {
    pub fn new(
        host: String,
        db: Db,
        membership: Arc<Membership>,
        drivers: Drivers,
        config: ConsoleConfig,
    ) -> Arc<ConsoleServer> {
        Arc::new(ConsoleServer {
            host,
            db,
            membership,
            drivers,
            config,
            consoles: Mutex::default(),
            connecting: Semaphore::new(CONNECTING),
        })
    }

    pub fn config(&self) -> &ConsoleConfig {
        &self.config
    }

    pub fn drivers(&self) -> &Drivers {
        &self.drivers
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    async fn connect_permit(&self) -> SemaphorePermit<'_> {
        self.connecting.acquire().await.expect("never closed")
    }

    /// Consoles this conductor holds or is connecting.
    pub fn held(&self) -> usize {
        self.consoles.lock().expect("consoles lock").len()
    }

    /// Keeps the set of held consoles right until `shutdown`, then lets
    /// every console go.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_secs(self.config.reconcile_interval.max(1));
        let mut hosts: Vec<String> = Vec::new();
        let mut last = None::<tokio::time::Instant>;
        loop {
            match self.membership.ring().await {
                Ok(ring) => {
                    let changed = ring.hosts() != hosts.as_slice();
                    if changed || last.is_none_or(|t| t.elapsed() >= every) {
                        hosts = ring.hosts().to_vec();
                        if let Err(e) = self.reconcile(&ring).await {
                            tracing::warn!(error = %e, "console reconcile failed");
                        }
                        last = Some(tokio::time::Instant::now());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "console reconcile: reading the ring"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        let all: Vec<_> = self
            .consoles
            .lock()
            .expect("consoles lock")
            .drain()
            .map(|(_, c)| c)
            .collect();
        for c in all {
            c.stop();
        }
    }

    /// Connects the `always` consoles this conductor owns, updates the
    /// others it holds, and lets go of what it no longer owns.
    async fn reconcile(
        self: &Arc<Self>,
        ring: &xcat3_common::ring::HashRing,
    ) -> Result<(), xcat3_db::DbError> {
        let owned: Vec<String> = nodes::list_names(&self.db)
            .await?
            .into_iter()
            .filter(|n| ring.owner(n) == Some(self.host.as_str()))
            .collect();
        let mut want: HashMap<String, (NodeInfo, Logging)> = HashMap::new();
        for chunk in owned.chunks(5000) {
            let (records, vm_hosts) =
                crate::runner::load_for_drivers(&self.db, chunk, false).await?;
            for rec in records {
                let info = crate::runner::node_info(&rec, &vm_hosts);
                if self.drivers.console(&info).is_err() {
                    continue;
                }
                let logging =
                    Logging::of(&nodes::parse_map(&rec.node.console_info)).unwrap_or(Logging::Off);
                want.insert(info.name.clone(), (info, logging));
            }
        }
        let mut consoles = self.consoles.lock().expect("consoles lock");
        consoles.retain(|name, c| match want.get(name) {
            Some(_) => true,
            None => {
                c.stop();
                false
            }
        });
        let mut started = 0;
        for (name, (info, logging)) in want {
            match consoles.get(&name) {
                Some(c) => c.update(info, logging),
                None if logging == Logging::Always => {
                    let (c, input) = NodeConsole::new(info, logging);
                    consoles.insert(name, c.clone());
                    tokio::spawn(c.run(self.clone(), input));
                    started += 1;
                }
                None => {}
            }
        }
        if started > 0 {
            tracing::info!(started, held = consoles.len(), "consoles taken");
        }
        Ok(())
    }

    /// The console of `node` (owned here), created on demand.
    async fn console(self: &Arc<Self>, node: &str) -> Result<Arc<NodeConsole>, AttachError> {
        let ring = self
            .membership
            .ring()
            .await
            .map_err(|e| AttachError::Store(node.into(), e))?;
        match ring.owner(node) {
            Some(h) if h == self.host => {}
            other => {
                return Err(AttachError::NotOwner {
                    node: node.into(),
                    owner: other.unwrap_or("(none)").into(),
                });
            }
        }
        if let Some(c) = self.consoles.lock().expect("consoles lock").get(node) {
            return Ok(c.clone());
        }
        let (records, vm_hosts) =
            crate::runner::load_for_drivers(&self.db, &[node.to_string()], false)
                .await
                .map_err(|e| AttachError::Store(node.into(), e))?;
        let rec = records
            .into_iter()
            .next()
            .ok_or_else(|| AttachError::NotFound(node.into()))?;
        let info = crate::runner::node_info(&rec, &vm_hosts);
        let logging = Logging::of(&nodes::parse_map(&rec.node.console_info))
            .map_err(|e| AttachError::Invalid(node.into(), e.to_string()))?;
        if logging == Logging::Off {
            return Err(AttachError::Invalid(
                node.into(),
                "console_info.logging is off: its console is not connected".into(),
            ));
        }
        let driver = self
            .drivers
            .console(&info)
            .map_err(|e| AttachError::Invalid(node.into(), e.message))?;
        driver
            .validate(&info)
            .map_err(|e| AttachError::Invalid(node.into(), e.message))?;
        let mut consoles = self.consoles.lock().expect("consoles lock");
        if let Some(c) = consoles.get(node) {
            return Ok(c.clone());
        }
        let (c, input) = NodeConsole::new(info, logging);
        consoles.insert(node.to_string(), c.clone());
        tokio::spawn(c.clone().run(self.clone(), input));
        Ok(c)
    }

    /// Attaches a viewer to `node`'s console.
    pub async fn attach(
        self: &Arc<Self>,
        node: &str,
        read_only: bool,
        force: bool,
    ) -> Result<Attachment, AttachError> {
        Ok(self.console(node).await?.attach(read_only, force))
    }

    /// The node was just (re)started by an action here: its console, if
    /// it waits to reconnect, tries at once.
    pub fn nudge(&self, node: &str) {
        if let Some(c) = self.consoles.lock().expect("consoles lock").get(node) {
            c.nudge();
        }
    }

    /// `node`'s console as this conductor sees it (`logging` from its
    /// record, for a console not held).
    pub fn state(&self, node: &str, logging: Logging) -> ConsoleState {
        match self.consoles.lock().expect("consoles lock").get(node) {
            Some(c) => c.state(&self.host),
            None => ConsoleState {
                logging,
                state: Connection::Idle,
                conductor: self.host.clone(),
                viewers: 0,
                bytes: 0,
                last_output: None,
                last_error: None,
            },
        }
    }

    /// The last `lines` lines of `node`'s log.
    pub fn log_tail(&self, node: &str, lines: usize) -> std::io::Result<Vec<u8>> {
        log::tail(std::path::Path::new(&self.config.log_dir), node, lines)
    }

    /// Removes a stopped console from the registry (if it is still the
    /// registered one).
    fn retire(&self, c: &Arc<NodeConsole>) {
        let mut consoles = self.consoles.lock().expect("consoles lock");
        if consoles.get(&c.name).is_some_and(|r| Arc::ptr_eq(r, c)) {
            consoles.remove(&c.name);
        }
    }

    /// Retires `c` if nothing needs it; checked under the registry lock so
    /// a viewer attaching meanwhile keeps it.
    fn retire_if_idle(&self, c: &Arc<NodeConsole>) -> bool {
        let mut consoles = self.consoles.lock().expect("consoles lock");
        if !c.idle(Duration::from_secs(self.config.linger)) {
            return false;
        }
        if consoles.get(&c.name).is_some_and(|r| Arc::ptr_eq(r, c)) {
            consoles.remove(&c.name);
        }
        true
    }
}
