//! `bootdev`: read or set the next boot device, one driver call per node.

use async_trait::async_trait;
use xcat3_common::rpc::BootDevice;
use xcat3_db::nodes::Observed;

use super::{NodeStep, Observation};
use crate::drivers::{DriverError, Drivers, NodeInfo};

/// `bootdev status`: reads and records the device.
#[derive(Clone)]
pub struct Get;

#[async_trait]
impl NodeStep for Get {
    fn name(&self) -> &'static str {
        "boot_device_get"
    }

    fn writes(&self) -> bool {
        false
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.management(node)?;
        d.validate(node)?;
        let dev = d.get_boot_device(node).await?;
        Ok((
            dev.as_str().into(),
            Some((Observed::BootDevice, Some(dev.as_str().into()))),
        ))
    }
}

/// `bootdev net|disk|cdrom|bios [--persistent]`; also the one-time network
/// boot a deploy sets.
#[derive(Clone)]
pub struct Set {
    pub device: BootDevice,
    pub persistent: bool,
}

#[async_trait]
impl NodeStep for Set {
    fn name(&self) -> &'static str {
        "boot_device_set"
    }

    fn writes(&self) -> bool {
        true
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let d = drivers.management(node)?;
        d.validate(node)?;
        d.set_boot_device(node, self.device, self.persistent)
            .await?;
        Ok((
            "ok".into(),
            Some((Observed::BootDevice, Some(self.device.as_str().into()))),
        ))
    }
}
