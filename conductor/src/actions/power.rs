//! `power` and `power status`: one driver call per node; a power-on waits
//! for its turn at the [`PowerGate`] first (inrush current).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use xcat3_common::config::PowerConfig;
use xcat3_common::rpc::PowerTarget;
use xcat3_db::nodes::Observed;

use super::{NodeStep, Observation};
use crate::drivers::{DriverError, Drivers, NodeInfo};

/// `power status`: reads and records the state.
#[derive(Clone)]
pub struct Status;

#[async_trait]
impl NodeStep for Status {
    fn name(&self) -> &'static str {
        "power_status"
    }

    fn writes(&self) -> bool {
        false
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.power(node)?;
        d.validate(node)?;
        let s = d.get_power(node).await?;
        Ok((
            s.as_str().into(),
            Some((Observed::PowerState, Some(s.as_str().into()))),
        ))
    }
}

/// `power on|off|soft|reset|cycle|boot`: acts and records the state the
/// node is in (or heads to).
#[derive(Clone)]
pub struct Set {
    pub target: PowerTarget,
}

#[async_trait]
impl NodeStep for Set {
    fn name(&self) -> &'static str {
        "power"
    }

    fn powers_on(&self) -> bool {
        matches!(
            self.target,
            PowerTarget::On | PowerTarget::Boot | PowerTarget::Cycle
        )
    }

    fn writes(&self) -> bool {
        true
    }

    fn starts_node(&self) -> bool {
        self.powers_on() || self.target == PowerTarget::Reset
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.power(node)?;
        d.validate(node)?;
        let s = d.set_power(node, self.target).await?;
        Ok((
            "ok".into(),
            Some((Observed::PowerState, Some(s.as_str().into()))),
        ))
    }
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
    pub async fn enter(&self) -> Option<OwnedSemaphorePermit> {
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
            ..PowerConfig::default()
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
