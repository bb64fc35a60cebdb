//! `mgt=fake`: a driver with no hardware behind it, so the whole path (API,
//! bus, ring, locks, runner, DB) can be exercised and measured.
//!
//! `control_info.fake_delay_ms` (default 0) delays every call;
//! `control_info.fake_fail_rate` (0.0–1.0, default 0) fails that share of
//! calls. State lives in the node's recorded `power_state`/`boot_device`,
//! which the runner persists, so `status` reflects earlier actions.

use std::time::Duration;

use async_trait::async_trait;
use xcat3_common::rpc::{BootDevice, PowerTarget};

use super::{DriverError, Management, NodeInfo, Power, PowerState, Properties};
use xcat3_common::hardware;

pub struct Fake;

fn number(node: &NodeInfo, key: &str) -> Result<Option<f64>, DriverError> {
    match node.control_info.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
        Some(serde_json::Value::String(s)) => s.parse().map(Some).map_err(|_| {
            DriverError::invalid(format!("control_info.{key}: `{s}` is not a number"))
        }),
        Some(_) => Err(DriverError::invalid(format!(
            "control_info.{key}: must be a number"
        ))),
    }
}

impl Fake {
    fn check(&self, node: &NodeInfo) -> Result<(), DriverError> {
        if let Some(d) = number(node, "fake_delay_ms")?
            && !(0.0..=600_000.0).contains(&d)
        {
            return Err(DriverError::invalid(
                "control_info.fake_delay_ms: must be 0-600000".into(),
            ));
        }
        if let Some(r) = number(node, "fake_fail_rate")?
            && !(0.0..=1.0).contains(&r)
        {
            return Err(DriverError::invalid(
                "control_info.fake_fail_rate: must be 0.0-1.0".into(),
            ));
        }
        Ok(())
    }

    /// Waits the configured delay, then fails at the configured rate.
    async fn call(&self, node: &NodeInfo) -> Result<(), DriverError> {
        let delay = number(node, "fake_delay_ms")?.unwrap_or(0.0);
        if delay > 0.0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        let rate = number(node, "fake_fail_rate")?.unwrap_or(0.0);
        if rate > 0.0 && fastrand::f64() < rate {
            return Err(DriverError::bmc("fake: injected failure".into()));
        }
        Ok(())
    }

    fn current(node: &NodeInfo) -> PowerState {
        match node.power_state.as_deref() {
            Some("on") => PowerState::On,
            _ => PowerState::Off,
        }
    }
}

#[async_trait]
impl Power for Fake {
    fn properties(&self) -> Properties {
        &[hardware::FAKE]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        self.check(node)
    }

    async fn get_power(&self, node: &NodeInfo) -> Result<PowerState, DriverError> {
        self.call(node).await?;
        Ok(Fake::current(node))
    }

    async fn set_power(
        &self,
        node: &NodeInfo,
        target: PowerTarget,
    ) -> Result<PowerState, DriverError> {
        self.call(node).await?;
        Ok(match target {
            PowerTarget::On | PowerTarget::Reset | PowerTarget::Cycle | PowerTarget::Boot => {
                PowerState::On
            }
            PowerTarget::Off | PowerTarget::Soft => PowerState::Off,
        })
    }
}

#[async_trait]
impl Management for Fake {
    fn properties(&self) -> Properties {
        &[hardware::FAKE]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        self.check(node)
    }

    async fn get_boot_device(&self, node: &NodeInfo) -> Result<BootDevice, DriverError> {
        self.call(node).await?;
        Ok(node
            .boot_device
            .as_deref()
            .and_then(BootDevice::parse)
            .unwrap_or(BootDevice::Disk))
    }

    async fn set_boot_device(
        &self,
        node: &NodeInfo,
        _device: BootDevice,
        _persistent: bool,
    ) -> Result<(), DriverError> {
        self.call(node).await
    }
}
