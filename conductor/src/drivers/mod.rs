//! Drivers: one trait per concern (Ironic's split), one file per driver.
//!
//! The runner, not the driver, fans out over nodes, bounds concurrency and
//! turns errors into per-node results. A driver's `validate` does no IO and
//! runs before anything touches a BMC.

pub mod dhcp;
mod fake;
mod ipmi;
pub mod kvm;
mod redfish;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use xcat3_common::config::Config;
use xcat3_common::model::Mgt;
use xcat3_common::rpc::{BootDevice, PowerTarget};

pub use fake::Fake;
pub use ipmi::Ipmi;
pub use kvm::Kvm;
pub use redfish::Redfish;

/// What a driver knows about a node (loaded in bulk by the runner).
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub mgt: Option<Mgt>,
    pub control_info: Map<String, Value>,
    /// Last recorded power state (`on` / `off`).
    pub power_state: Option<String>,
    /// Last recorded boot device.
    pub boot_device: Option<String>,
    /// MAC of the primary nic; loaded only for drivers that need it (kvm).
    pub primary_mac: Option<String>,
    /// For a KVM guest with `control_info.vm_host`: that hypervisor node.
    pub vm_host: Option<VmHost>,
}

/// The hypervisor node a guest names in `control_info.vm_host`.
#[derive(Debug, Clone)]
pub struct VmHost {
    pub name: String,
    /// Its `control_info` (how to reach its libvirt); None when no node has
    /// that name.
    pub control_info: Option<Map<String, Value>>,
}

/// A per-node driver failure; the message goes to the admin as is, so it
/// names the field or the BMC and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    On,
    Off,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
        }
    }
}

/// Power control. Calls may be retried by the caller; `set` is idempotent
/// for `on` and `off` (powering on a running node leaves it running).
#[async_trait]
pub trait Power: Send + Sync {
    /// Checks `control_info` has what the driver needs. No IO.
    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError>;
    async fn get_power(&self, node: &NodeInfo) -> Result<PowerState, DriverError>;
    /// Acts and returns the state the node is in (or heads to) afterwards.
    async fn set_power(
        &self,
        node: &NodeInfo,
        target: PowerTarget,
    ) -> Result<PowerState, DriverError>;
}

/// Boot device management.
#[async_trait]
pub trait Management: Send + Sync {
    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError>;
    async fn get_boot_device(&self, node: &NodeInfo) -> Result<BootDevice, DriverError>;
    async fn set_boot_device(
        &self,
        node: &NodeInfo,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError>;
}

/// A string key of `control_info` (absent and null are None).
pub(crate) fn control_str<'a>(
    node: &'a NodeInfo,
    key: &str,
) -> Result<Option<&'a str>, DriverError> {
    match node.control_info.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DriverError(format!("control_info.{key}: must be a string"))),
    }
}

/// `control_info.boot_mode`: whether boot overrides ask for UEFI.
pub(crate) fn uefi_boot(node: &NodeInfo) -> Result<bool, DriverError> {
    match control_str(node, "boot_mode")? {
        None | Some("bios") | Some("legacy") => Ok(false),
        Some("uefi") => Ok(true),
        Some(other) => Err(DriverError(format!(
            "control_info.boot_mode: `{other}` is not one of bios, uefi"
        ))),
    }
}

/// The drivers this conductor has, by `mgt`.
#[derive(Clone)]
pub struct Drivers {
    power: HashMap<Mgt, Arc<dyn Power>>,
    management: HashMap<Mgt, Arc<dyn Management>>,
    /// Also the `Power`/`Management` of `mgt=kvm`; `mkvm`/`rmvm` use it
    /// directly (the same libvirt connections).
    pub kvm: Arc<Kvm>,
}

impl Drivers {
    /// Every driver built into this conductor. New drivers register here.
    pub fn builtin(config: &Config) -> Drivers {
        let kvm = Arc::new(Kvm::new(&config.kvm));
        let mut d = Drivers {
            power: HashMap::new(),
            management: HashMap::new(),
            kvm: kvm.clone(),
        };
        let fake = Arc::new(Fake);
        d.power.insert(Mgt::Fake, fake.clone());
        d.management.insert(Mgt::Fake, fake);
        let ipmi = Arc::new(Ipmi::new(&config.ipmi));
        d.power.insert(Mgt::Ipmi, ipmi.clone());
        d.management.insert(Mgt::Ipmi, ipmi);
        d.power.insert(Mgt::Kvm, kvm.clone());
        d.management.insert(Mgt::Kvm, kvm);
        let redfish = Arc::new(Redfish::new());
        d.power.insert(Mgt::Redfish, redfish.clone());
        d.management.insert(Mgt::Redfish, redfish);
        d
    }

    pub fn power(&self, node: &NodeInfo) -> Result<&Arc<dyn Power>, DriverError> {
        pick(&self.power, node, "power")
    }

    pub fn management(&self, node: &NodeInfo) -> Result<&Arc<dyn Management>, DriverError> {
        pick(&self.management, node, "management")
    }
}

/// The `kind` driver for the node's `mgt`, or an error naming what is missing.
fn pick<'a, T: ?Sized>(
    drivers: &'a HashMap<Mgt, Arc<T>>,
    node: &NodeInfo,
    kind: &str,
) -> Result<&'a Arc<T>, DriverError> {
    let mgt = node.mgt.ok_or_else(|| DriverError("mgt: not set".into()))?;
    drivers.get(&mgt).ok_or_else(|| {
        DriverError(format!(
            "mgt: no {kind} driver for `{mgt}` in this conductor"
        ))
    })
}
