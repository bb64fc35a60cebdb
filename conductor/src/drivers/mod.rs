//! Drivers: one trait per interface (Ironic's split), one file or folder
//! per driver.
//!
//! A hardware type (one per `mgt`, declared with its properties in
//! `xcat3_common::hardware`) offers optional interfaces: [`Power`],
//! [`Management`], [`Console`], [`Inspect`] and [`Vm`].
//! [`Drivers`] holds this conductor's implementation of each; a test checks
//! it offers exactly what the declarations say, with the same properties.
//!
//! The actions (`actions/`), not the driver, fan out over nodes, bound
//! concurrency and turn errors into per-node results. A driver's
//! `validate` does no IO and runs before anything touches a BMC.

pub mod dhcp;
mod fake;
mod ipmi;
pub mod kvm;
mod redfish;
mod ssh_console;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use xcat3_common::config::Config;
use xcat3_common::hardware::{self, Interface, Property};
use xcat3_common::inspect::{Beacon, EventLog, HealthReport, Inventory, Reading, SensorFilter};
use xcat3_common::model::{HypervisorCapacity, Mgt};
use xcat3_common::rpc::{BootDevice, PowerTarget};

pub use fake::Fake;
pub use ipmi::Ipmi;
pub use kvm::{Guest, Kvm, VmOutcomes};
pub use redfish::Redfish;

/// What a driver knows about a node (loaded in bulk by the runner).
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub mgt: Option<Mgt>,
    pub control_info: Map<String, Value>,
    /// How its console is reached (`method`, `ssh_*`) and held (`logging`).
    pub console_info: Map<String, Value>,
    /// Last recorded power state (`on` / `off`).
    pub power_state: Option<String>,
    /// Last recorded boot device.
    pub boot_device: Option<String>,
    /// MAC of the primary nic; loaded only for drivers that need it (kvm).
    pub primary_mac: Option<String>,
    /// Every nic's MAC, when the action loaded nics (inventory).
    pub nic_macs: Vec<String>,
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

/// A per-node driver failure: the wire's [`NodeError`] (a kind, and a
/// message that goes to the admin as is, so it names the field or the BMC
/// and never holds a secret).
pub use xcat3_common::rpc::NodeError as DriverError;

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
/// The `control_info` keys an interface reads, in groups (as declared in
/// `xcat3_common::hardware`).
pub type Properties = &'static [&'static [Property]];

#[async_trait]
pub trait Power: Send + Sync {
    /// The keys it reads.
    fn properties(&self) -> Properties;
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
    /// The keys it reads.
    fn properties(&self) -> Properties;
    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError>;
    async fn get_boot_device(&self, node: &NodeInfo) -> Result<BootDevice, DriverError>;
    async fn set_boot_device(
        &self,
        node: &NodeInfo,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError>;
}

/// Hardware inspection: what the machine is, how its sensors read, what
/// its event log says, and its identify LED. Parts a BMC cannot tell are
/// values in the result (`notes`, `na`), never failures; only a BMC that
/// cannot be reached or refuses fails the node.
#[async_trait]
pub trait Inspect: Send + Sync {
    /// The keys it reads.
    fn properties(&self) -> Properties;
    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError>;
    /// Reads the inventory (`nic_macs`: the node's nics, to compare).
    async fn inventory(
        &self,
        node: &NodeInfo,
        nic_macs: &[String],
    ) -> Result<Inventory, DriverError>;
    async fn vitals(
        &self,
        node: &NodeInfo,
        which: SensorFilter,
    ) -> Result<Vec<Reading>, DriverError>;
    /// The newest `count` entries, oldest first; with `clear`, the log is
    /// cleared after they were read.
    async fn event_log(
        &self,
        node: &NodeInfo,
        count: u32,
        clear: bool,
    ) -> Result<EventLog, DriverError>;
    async fn set_beacon(&self, node: &NodeInfo, state: Beacon) -> Result<(), DriverError>;
    /// Every sensor and the last [`HEALTH_EVENTS`] events, judged at
    /// `now` (Unix seconds). Drivers that can do both in one visit do.
    async fn health(&self, node: &NodeInfo, now: i64) -> Result<HealthReport, DriverError> {
        let readings = self.vitals(node, SensorFilter::All).await?;
        let log = self.event_log(node, HEALTH_EVENTS, false).await?;
        Ok(HealthReport::assess(&readings, &log, now))
    }
}

/// A node's serial console (IPMI SOL, a KVM guest's serial port): a byte
/// stream each way. The console server (`crate::console`) holds at most one
/// link per node and shares it among viewers; a driver only connects.
#[async_trait]
pub trait Console: Send + Sync {
    /// The keys it reads.
    fn properties(&self) -> Properties;
    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError>;
    /// Connects; with `force`, takes the console over from whoever holds
    /// it (another console server, an admin's ipmitool).
    async fn connect(&self, node: &NodeInfo, force: bool) -> Result<ConsoleLink, DriverError>;
}

/// One connected console. Dropping `input` closes it; `output` ends after
/// a [`LinkEvent::Closed`] when the far side or the line goes away.
pub struct ConsoleLink {
    pub output: tokio::sync::mpsc::Receiver<LinkEvent>,
    pub input: tokio::sync::mpsc::Sender<LinkInput>,
    /// Whether connecting took the console from another session (known
    /// for IPMI SOL; libvirt and SSH do not say).
    pub took_over: bool,
}

#[derive(Debug)]
pub enum LinkEvent {
    /// What the node printed.
    Data(Vec<u8>),
    /// Why the link ended (names the BMC or hypervisor, never a secret).
    Closed(String),
}

#[derive(Debug)]
pub enum LinkInput {
    /// Keys typed.
    Data(Vec<u8>),
    /// A serial break (SysRq on Linux).
    Break,
}

/// Events `health` looks at: the newest ones.
pub const HEALTH_EVENTS: u32 = 20;

/// Guests on hypervisors (`mkvm`, `clonevm`, `rmvm`) and the hypervisors'
/// capacity. A batch is the guests of one request on one hypervisor.
#[async_trait]
pub trait Vm: Send + Sync {
    /// The guest keys it reads (the hypervisor's are `hardware::LIBVIRT`).
    fn properties(&self) -> Properties;
    /// Whether `info` names a hypervisor itself (not through `vm_host`).
    fn has_own_endpoint(&self, info: &Map<String, Value>) -> bool;
    /// The capacity of hypervisor node `host`, whose `control_info` is `info`.
    async fn capacity(
        &self,
        host: &str,
        info: &Map<String, Value>,
    ) -> Result<HypervisorCapacity, DriverError>;
    /// Defines `guests` on `host`; with `source`, as linked clones of it.
    async fn create_guests(
        &self,
        host: &str,
        info: &Map<String, Value>,
        guests: Vec<Guest>,
        source: Option<String>,
    ) -> VmOutcomes;
    /// Undefines `guests` (on `host`, or on the hypervisor `info` names);
    /// with `purge`, deletes their disks.
    async fn remove_guests(
        &self,
        host: Option<&str>,
        info: &Map<String, Value>,
        guests: Vec<Guest>,
        purge: bool,
    ) -> VmOutcomes;
}

/// A string key of `control_info` (absent and null are None).
pub(crate) fn control_str<'a>(
    node: &'a NodeInfo,
    key: &str,
) -> Result<Option<&'a str>, DriverError> {
    match node.control_info.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DriverError::invalid(format!(
            "control_info.{key}: must be a string"
        ))),
    }
}

/// `control_info.boot_mode`: whether boot overrides ask for UEFI.
pub(crate) fn uefi_boot(node: &NodeInfo) -> Result<bool, DriverError> {
    match control_str(node, "boot_mode")? {
        None | Some("bios") | Some("legacy") => Ok(false),
        Some("uefi") => Ok(true),
        Some(other) => Err(DriverError::invalid(format!(
            "control_info.boot_mode: `{other}` is not one of bios, uefi"
        ))),
    }
}

/// The drivers this conductor has, by `mgt` and interface.
#[derive(Clone)]
pub struct Drivers {
    power: HashMap<Mgt, Arc<dyn Power>>,
    management: HashMap<Mgt, Arc<dyn Management>>,
    inspect: HashMap<Mgt, Arc<dyn Inspect>>,
    console: HashMap<Mgt, Arc<dyn Console>>,
    /// Consoles with `console_info.method = "ssh"`, whatever the `mgt`.
    ssh_console: Arc<dyn Console>,
    vm: HashMap<Mgt, Arc<dyn Vm>>,
}

impl Drivers {
    /// Every driver built into this conductor. New drivers register here
    /// (and declare their hardware type in `xcat3_common::hardware`).
    pub fn builtin(config: &Config) -> Drivers {
        let mut d = Drivers {
            power: HashMap::new(),
            management: HashMap::new(),
            inspect: HashMap::new(),
            console: HashMap::new(),
            ssh_console: Arc::new(ssh_console::SshConsole),
            vm: HashMap::new(),
        };
        let fake = Arc::new(Fake);
        d.power.insert(Mgt::Fake, fake.clone());
        d.management.insert(Mgt::Fake, fake);
        let ipmi = Arc::new(Ipmi::new(&config.ipmi));
        d.power.insert(Mgt::Ipmi, ipmi.clone());
        d.management.insert(Mgt::Ipmi, ipmi.clone());
        d.inspect.insert(Mgt::Ipmi, ipmi.clone());
        d.console.insert(Mgt::Ipmi, ipmi);
        // One libvirt driver: the same connections serve power, boot order
        // and guests.
        let kvm = Arc::new(Kvm::new(&config.kvm));
        d.power.insert(Mgt::Kvm, kvm.clone());
        d.management.insert(Mgt::Kvm, kvm.clone());
        d.console.insert(Mgt::Kvm, kvm.clone());
        d.vm.insert(Mgt::Kvm, kvm);
        let redfish = Arc::new(Redfish::new());
        d.power.insert(Mgt::Redfish, redfish.clone());
        d.management.insert(Mgt::Redfish, redfish.clone());
        d.inspect.insert(Mgt::Redfish, redfish);
        d
    }

    pub fn power(&self, node: &NodeInfo) -> Result<&Arc<dyn Power>, DriverError> {
        pick(&self.power, node, Interface::Power)
    }

    pub fn management(&self, node: &NodeInfo) -> Result<&Arc<dyn Management>, DriverError> {
        pick(&self.management, node, Interface::Management)
    }

    pub fn inspect(&self, node: &NodeInfo) -> Result<&Arc<dyn Inspect>, DriverError> {
        pick(&self.inspect, node, Interface::Inspect)
    }

    /// The node's console: over SSH when `console_info.method` says so,
    /// else its `mgt`'s.
    pub fn console(&self, node: &NodeInfo) -> Result<&Arc<dyn Console>, DriverError> {
        match xcat3_common::console::Method::of(&node.console_info)
            .map_err(|e| DriverError::invalid(e.to_string()))?
        {
            xcat3_common::console::Method::Ssh => Ok(&self.ssh_console),
            xcat3_common::console::Method::Native => pick(&self.console, node, Interface::Console),
        }
    }

    /// The VM interface that defines guests and reads hypervisors (KVM's:
    /// a hypervisor node may have any `mgt`, its guests are `mgt=kvm`).
    pub fn hypervisors(&self) -> &Arc<dyn Vm> {
        self.vm
            .get(&Mgt::Kvm)
            .expect("the kvm hardware type offers the vm interface")
    }

    /// The properties this conductor's driver for `mgt`'s interface `i`
    /// reads; `None` when it has none.
    pub fn properties(&self, mgt: Mgt, i: Interface) -> Option<Properties> {
        match i {
            Interface::Power => self.power.get(&mgt).map(|d| d.properties()),
            Interface::Management => self.management.get(&mgt).map(|d| d.properties()),
            Interface::Vm => self.vm.get(&mgt).map(|d| d.properties()),
            Interface::Inspect => self.inspect.get(&mgt).map(|d| d.properties()),
            Interface::Console => self.console.get(&mgt).map(|d| d.properties()),
        }
    }
}

/// The `interface` driver for the node's `mgt`, or an error naming what is
/// missing.
fn pick<'a, T: ?Sized>(
    drivers: &'a HashMap<Mgt, Arc<T>>,
    node: &NodeInfo,
    interface: Interface,
) -> Result<&'a Arc<T>, DriverError> {
    let mgt = node
        .mgt
        .ok_or_else(|| DriverError::invalid("mgt: not set".into()))?;
    drivers.get(&mgt).ok_or_else(|| {
        let offered = hardware::of(mgt).interface(interface).is_some();
        DriverError::unsupported(if offered {
            format!(
                "mgt: no {} driver for `{mgt}` in this conductor",
                interface.as_str()
            )
        } else {
            format!("mgt: `{mgt}` has no {} interface", interface.as_str())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the API validates and `GET /v1/drivers` shows is what this
    /// conductor runs: every declared interface has a driver reading the
    /// declared properties, and no driver is undeclared.
    #[test]
    fn drivers_match_the_declared_hardware_types() {
        let drivers = Drivers::builtin(&Config::default());
        for t in hardware::TYPES {
            for i in Interface::ALL {
                let declared = t.interface(*i).map(|s| s.properties);
                let built = drivers.properties(t.mgt, *i);
                assert_eq!(built, declared, "{} {}", t.mgt, i.as_str());
            }
        }
    }
}
