//! `inventory --refresh`, `vitals`, `eventlog`, `beacon` and `health`: one
//! inspect-interface call per node. Results are the `inspect` types as
//! JSON; inventories and health are recorded per node.

use async_trait::async_trait;
use xcat3_common::inspect::{self, SensorFilter};
use xcat3_db::nodes::Observed;

use super::{NodeStep, Observation};
use crate::drivers::{DriverError, Drivers, NodeInfo};

fn json<T: serde::Serialize>(v: &T) -> Result<String, DriverError> {
    serde_json::to_string(v).map_err(|e| DriverError::internal(format!("encoding the result: {e}")))
}

/// Reads the inventory and records it with the time it was read.
#[derive(Clone)]
pub struct Inventory;

#[async_trait]
impl NodeStep for Inventory {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn writes(&self) -> bool {
        false
    }

    fn needs_nics(&self) -> bool {
        true
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.inspect(node)?;
        d.validate(node)?;
        let inv = d.inventory(node, &node.nic_macs).await?;
        let text = json(&inv)?;
        Ok((text.clone(), Some((Observed::Inventory, Some(text)))))
    }
}

#[derive(Clone)]
pub struct Vitals {
    pub which: SensorFilter,
}

#[async_trait]
impl NodeStep for Vitals {
    fn name(&self) -> &'static str {
        "vitals"
    }

    fn writes(&self) -> bool {
        false
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.inspect(node)?;
        d.validate(node)?;
        Ok((json(&d.vitals(node, self.which).await?)?, None))
    }
}

/// `eventlog [-n N] [--clear]`.
#[derive(Clone)]
pub struct Log {
    pub count: u32,
    pub clear: bool,
}

#[async_trait]
impl NodeStep for Log {
    fn name(&self) -> &'static str {
        if self.clear {
            "eventlog_clear"
        } else {
            "eventlog"
        }
    }

    fn writes(&self) -> bool {
        self.clear
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.inspect(node)?;
        d.validate(node)?;
        Ok((
            json(&d.event_log(node, self.count, self.clear).await?)?,
            None,
        ))
    }
}

#[derive(Clone)]
pub struct SetBeacon {
    pub state: inspect::Beacon,
}

#[async_trait]
impl NodeStep for SetBeacon {
    fn name(&self) -> &'static str {
        "beacon"
    }

    fn writes(&self) -> bool {
        true
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.inspect(node)?;
        d.validate(node)?;
        d.set_beacon(node, self.state).await?;
        Ok((self.state.as_str().into(), None))
    }
}

/// Judges the node from its sensors and recent events, and records the
/// verdict (for `list --health` and the per-state counts in `/metrics`).
#[derive(Clone)]
pub struct Health;

#[async_trait]
impl NodeStep for Health {
    fn name(&self) -> &'static str {
        "health"
    }

    fn writes(&self) -> bool {
        false
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.inspect(node)?;
        d.validate(node)?;
        let now = chrono::Utc::now().timestamp();
        let report = d.health(node, now).await?;
        Ok((
            json(&report)?,
            Some((Observed::Health, Some(report.health.as_str().into()))),
        ))
    }
}
