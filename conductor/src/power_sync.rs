//! The periodic power-state sync: every `[power] sync_interval` seconds a
//! conductor reads the power state of each node it owns in the ring and
//! records the ones that changed, so a node switched off by hand shows
//! `off` (Ironic's and MAAS's power-state sync).
//!
//! It must never delay a user's request: its reads run `[power]
//! sync_workers` at a time on a pool of their own (none of the `workers`
//! permits), and wait between nodes while any request runs here. Locked
//! nodes are skipped, and a state an action recorded during the sync is
//! never overwritten (`nodes::record_power_changes` checks each node still
//! holds the state the sync loaded).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use xcat3_common::metrics;
use xcat3_db::nodes::{self as node_db, PowerChange};

use crate::actions::{NodeStep, PowerStatus};
use crate::runner::{Runner, node_info};

/// Nodes loaded and read per slice (one load, one record per slice).
const SLICE: usize = 5_000;

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Nodes whose state was read.
    pub read: usize,
    /// Nodes whose recorded state changed.
    pub changed: u64,
    /// Nodes whose BMC did not answer (their state is left as it was).
    pub failed: usize,
    /// Locked nodes and nodes without a `mgt`, not read.
    pub skipped: usize,
}

/// Runs a sync every `interval` (the service aborts it at shutdown); the
/// first one an interval after start (the conductor has just registered, and the
/// ring may still be settling).
pub async fn run(runner: Arc<Runner>, interval: Duration, workers: usize) {
    if interval.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    // A sync that ran long is not followed by a burst of catch-up ones.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        match sync_once(&runner, workers).await {
            Ok(r) => {
                let secs = started.elapsed().as_secs_f64();
                metrics::gauge(
                    "xcat3_conductor_power_sync_seconds",
                    "How long the last power-state sync took.",
                    &[],
                    secs,
                );
                tracing::info!(
                    read = r.read,
                    changed = r.changed,
                    failed = r.failed,
                    skipped = r.skipped,
                    ms = (secs * 1000.0) as u64,
                    "power sync done"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "power sync failed");
                metrics::db_error("power_sync");
            }
        }
    }
}

/// One sync of the nodes this conductor owns now.
pub async fn sync_once(runner: &Runner, workers: usize) -> Result<SyncReport, xcat3_db::DbError> {
    let ring = runner.membership.ring().await?;
    let owned: Vec<String> = node_db::list_names(&runner.db)
        .await?
        .into_iter()
        .filter(|n| ring.owner(n) == Some(runner.host.as_str()))
        .collect();
    let mut report = SyncReport::default();
    for slice in owned.chunks(SLICE) {
        let (records, hosts) = runner.load_for_drivers(slice, false).await?;
        let nodes: Vec<_> = records
            .iter()
            .filter(|r| r.node.reservation.is_none() && r.node.mgt.is_some())
            .map(|r| node_info(r, &hosts))
            .collect();
        report.skipped += slice.len() - nodes.len();
        let reads = futures_util::stream::iter(nodes)
            .map(|node| async move {
                wait_while_busy(runner).await;
                // The same read as a user's `power status`, without its
                // worker permit.
                let read = PowerStatus.run(&runner.actors().drivers, &node);
                let state = tokio::time::timeout(runner.call_timeout(), read).await;
                (node, state)
            })
            .buffer_unordered(workers.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut changes = Vec::new();
        for (node, state) in reads {
            match state {
                Ok(Ok((now, _))) => {
                    report.read += 1;
                    changes.push(PowerChange {
                        name: node.name,
                        was: node.power_state,
                        now,
                    });
                }
                _ => report.failed += 1,
            }
        }
        report.changed += node_db::record_power_changes(&runner.db, &changes).await?;
    }
    for (outcome, n) in [("ok", report.read), ("error", report.failed)] {
        metrics::count(
            "xcat3_conductor_power_sync_nodes_total",
            "Power states read by the periodic sync, by outcome.",
            &[("outcome", outcome)],
            n as u64,
        );
    }
    metrics::count(
        "xcat3_conductor_power_sync_changes_total",
        "Recorded power states the periodic sync found changed.",
        &[],
        report.changed,
    );
    Ok(report)
}

/// Yields to user requests: a read starts only while none runs.
async fn wait_while_busy(runner: &Runner) {
    while runner.busy() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
