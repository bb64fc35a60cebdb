//! `HypervisorInfo`: a hypervisor node's capacity (what `mkvm` places
//! guests by), read through the VM interface on the node's own libvirt
//! connection keys, whatever its `mgt`.

use async_trait::async_trait;

use super::{NodeStep, Observation};
use crate::drivers::{DriverError, Drivers, NodeInfo};

#[derive(Clone)]
pub struct Capacity;

#[async_trait]
impl NodeStep for Capacity {
    fn name(&self) -> &'static str {
        "hypervisor_info"
    }

    fn writes(&self) -> bool {
        false
    }

    async fn run(
        &self,
        drivers: &Drivers,
        node: &NodeInfo,
    ) -> Result<(String, Observation), DriverError> {
        let c = drivers
            .hypervisors()
            .capacity(&node.name, &node.control_info)
            .await?;
        Ok((serde_json::to_string(&c).unwrap_or_default(), None))
    }
}
