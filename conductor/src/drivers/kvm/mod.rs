//! `mgt=kvm`: power and boot order of libvirt guests.
//!
//! `control_info` takes the prototype's keys, `ssh_address`,
//! `ssh_username` (default root), `ssh_port`, `ssh_key_filename` or
//! `ssh_password`, `ssh_virt_type=virsh`, which become a libvirt SSH URI
//! (`qemu+ssh://…`, or `qemu+libssh2://…` with a password), or a direct
//! `libvirt_uri` (`qemu:///system`, `qemu+ssh://root@hv1/system?keyfile=…`,
//! `qemu+tls://…`). `ssh_verify_host=false` accepts unknown host keys.
//! `domain` names the guest (default: the node name); when no domain has
//! that name, the guest whose interface has the node's primary MAC is used.
//!
//! Fixes over the prototype: `on` leaves a running guest alone, one
//! connection per hypervisor (see `hypervisor.rs`) instead of an SSH
//! session per command, and the boot order is edited in the domain XML
//! and given back to `virDomainDefineXML`, not sed'ed through `virsh edit`.
//! The boot order of a libvirt guest is always persistent, and a changed
//! order takes effect at the next start of the guest's qemu process
//! (`on`, `boot`, `cycle`; not `reset`).

mod console;
mod domxml;
mod hypervisor;
mod libvirt;

mod vm;

pub use vm::{Guest, Outcomes as VmOutcomes};

use async_trait::async_trait;
use serde_json::{Map, Value};
use xcat3_common::config::KvmConfig;
use xcat3_common::model::{HypervisorCapacity, LibvirtTransport, LibvirtUri, VmShape};
use xcat3_common::rpc::{BootDevice, PowerTarget};

use super::{
    Console, ConsoleLink, DriverError, Management, NodeInfo, Power, PowerState, Properties, Vm,
    control_str,
};
use hypervisor::{Endpoint, Hypervisor, Hypervisors};
use libvirt::{Connection, Domain, ERR_OPERATION_INVALID, XML_INACTIVE};
use xcat3_common::hardware;

pub struct Kvm {
    hypervisors: Hypervisors,
    domain_type: String,
    memory_overcommit: f64,
    cpu_overcommit: f64,
}

/// What a node's `control_info` says, checked.
#[derive(Debug, PartialEq)]
struct Target {
    uri: String,
    password: Option<(String, String)>,
    domain: String,
    mac: Option<String>,
}

fn map_str<'a>(info: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, DriverError> {
    match info.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DriverError::invalid(format!(
            "control_info.{key}: must be a string"
        ))),
    }
}

fn map_bool(info: &Map<String, Value>, key: &str, default: bool) -> Result<bool, DriverError> {
    match info.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(_) => Err(DriverError::invalid(format!(
            "control_info.{key}: must be true or false"
        ))),
    }
}

/// How to reach a hypervisor, from the `control_info` holding its keys:
/// `libvirt_uri`, or the prototype's `ssh_*` keys. Either way the URI is
/// rebuilt from checked parts ([`LibvirtUri`]): a stored record written
/// before those checks existed still cannot make libvirt run a program.
fn endpoint_of(info: &Map<String, Value>) -> Result<Endpoint, DriverError> {
    if let Some(uri) = map_str(info, "libvirt_uri")? {
        let uri = LibvirtUri::parse(uri)
            .map_err(|e| DriverError::invalid(format!("control_info.libvirt_uri: {e}")))?;
        return Ok(Endpoint {
            uri: uri.to_string(),
            password: None,
        });
    }
    let address = map_str(info, "ssh_address")?.ok_or_else(|| {
        DriverError::invalid(
            "control_info.ssh_address or control_info.libvirt_uri: one is required for mgt=kvm"
                .into(),
        )
    })?;
    match map_str(info, "ssh_virt_type")? {
        None | Some("virsh") => {}
        Some(other) => {
            return Err(DriverError::invalid(format!(
                "control_info.ssh_virt_type: `{other}` is not supported (only virsh)"
            )));
        }
    }
    let user = map_str(info, "ssh_username")?.unwrap_or("root");
    let port = match info.get("ssh_port") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| {
                    DriverError::invalid(
                        "control_info.ssh_port: must be a port number 1-65535".into(),
                    )
                })? as u16,
        ),
    };
    let verify = map_bool(info, "ssh_verify_host", true)?;
    let key = map_str(info, "ssh_key_filename")?;
    let password = map_str(info, "ssh_password")?;
    let (transport, params) = match (key, password) {
        (Some(_), Some(_)) => {
            return Err(DriverError::invalid(
                "control_info.ssh_password: give ssh_key_filename or ssh_password, not both".into(),
            ));
        }
        // libvirt's libssh2 transport asks us for the password through
        // its credential callback; OpenSSH could only read a terminal.
        // Verified host keys come from ~/.config/libvirt/known_hosts.
        (None, Some(_)) => (
            LibvirtTransport::Libssh2,
            vec![
                ("sshauth", "password".to_string()),
                (
                    "known_hosts_verify",
                    if verify { "normal" } else { "ignore" }.to_string(),
                ),
            ],
        ),
        (key, None) => {
            let mut params = vec![("no_tty", "1".to_string())];
            if let Some(k) = key {
                params.push(("keyfile", k.to_string()));
            }
            if !verify {
                params.push(("no_verify", "1".to_string()));
            }
            (LibvirtTransport::Ssh, params)
        }
    };
    let uri = LibvirtUri::ssh(transport, user, address, port, params)
        .map_err(|(key, e)| DriverError::invalid(format!("control_info.{key}: {e}")))?;
    Ok(Endpoint {
        uri: uri.to_string(),
        password: password.map(|p| (user.to_string(), p.to_string())),
    })
}

/// Whether `info` names a hypervisor itself (rather than through
/// `vm_host`).
fn has_own_endpoint(info: &Map<String, Value>) -> bool {
    ["libvirt_uri", "ssh_address"]
        .iter()
        .any(|k| info.contains_key(*k))
}

/// The endpoint of hypervisor node `host` from its `control_info`; errors
/// name the node.
fn host_endpoint(host: &str, info: &Map<String, Value>) -> Result<Endpoint, DriverError> {
    endpoint_of(info).map_err(|e| DriverError::invalid(format!("vm_host {host}: {}", e.message)))
}

/// The hypervisor endpoint of a guest: its own keys, or its `vm_host`'s.
fn guest_endpoint(node: &NodeInfo) -> Result<Endpoint, DriverError> {
    let Some(host) = &node.vm_host else {
        if VmShape::present(&node.control_info) && !has_own_endpoint(&node.control_info) {
            return Err(DriverError::invalid(
                "control_info.vm_host: not set (the guest was removed by rmvm; mkvm --host HV makes it again)"
                    .into(),
            ));
        }
        return endpoint_of(&node.control_info);
    };
    let info = host.control_info.as_ref().ok_or_else(|| {
        DriverError::invalid(format!(
            "control_info.vm_host: no node `{}` (the guest's hypervisor)",
            host.name
        ))
    })?;
    host_endpoint(&host.name, info)
}

impl Target {
    fn of(node: &NodeInfo) -> Result<Target, DriverError> {
        let domain = control_str(node, "domain")?
            .unwrap_or(&node.name)
            .to_string();
        let Endpoint { uri, password } = guest_endpoint(node)?;
        Ok(Target {
            uri,
            password,
            domain,
            mac: node.primary_mac.clone(),
        })
    }
}

impl Kvm {
    pub fn new(config: &KvmConfig) -> Kvm {
        Kvm {
            hypervisors: Hypervisors::new(config.max_per_hypervisor),
            domain_type: config.domain_type.clone(),
            memory_overcommit: config.memory_overcommit,
            cpu_overcommit: config.cpu_overcommit,
        }
    }

    /// Runs `f` on the node's guest, on its hypervisor's connection.
    async fn with_domain<T, F>(&self, node: &NodeInfo, f: F) -> Result<T, DriverError>
    where
        T: Send + 'static,
        F: Fn(&Hypervisor, &Connection, &Domain) -> Result<T, DriverError> + Send + 'static,
    {
        let t = Target::of(node)?;
        let hv = self.hypervisors.get(&Endpoint {
            uri: t.uri,
            password: t.password,
        });
        hv.call(move |hv, conn| {
            let d = hv.find(conn, &t.domain, t.mac.as_deref())?;
            f(hv, conn, &d)
        })
        .await
    }
}

/// The guest's state as a power state (paused and suspended guests are on).
fn power_of(hv: &Hypervisor, d: &Domain) -> Result<PowerState, DriverError> {
    let active = d
        .is_active()
        .map_err(|e| hv.error(&format!("state of domain {}", d.name()), &e))?;
    Ok(if active {
        PowerState::On
    } else {
        PowerState::Off
    })
}

/// Runs a libvirt action on `d`; "not running" / "already running" races
/// (the guest changed state between our check and the call) count as done.
fn act(
    hv: &Hypervisor,
    d: &Domain,
    what: &str,
    call: fn(&Domain) -> Result<(), libvirt::LibvirtError>,
) -> Result<(), DriverError> {
    match call(d) {
        Ok(()) => Ok(()),
        Err(e) if e.code == ERR_OPERATION_INVALID && what != "reset" => Ok(()),
        Err(e) => Err(hv.error(&format!("{what} domain {}", d.name()), &e)),
    }
}

#[async_trait]
impl Power for Kvm {
    fn properties(&self) -> Properties {
        &[hardware::KVM_GUEST, hardware::LIBVIRT]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Target::of(node).map(|_| ())
    }

    async fn get_power(&self, node: &NodeInfo) -> Result<PowerState, DriverError> {
        self.with_domain(node, |hv, _, d| power_of(hv, d)).await
    }

    async fn set_power(
        &self,
        node: &NodeInfo,
        target: PowerTarget,
    ) -> Result<PowerState, DriverError> {
        self.with_domain(node, move |hv, _, d| {
            let on = power_of(hv, d)? == PowerState::On;
            Ok(match target {
                PowerTarget::On => {
                    if !on {
                        act(hv, d, "start", Domain::start)?;
                    }
                    PowerState::On
                }
                PowerTarget::Off => {
                    if on {
                        act(hv, d, "destroy", Domain::destroy)?;
                    }
                    PowerState::Off
                }
                PowerTarget::Soft => {
                    if on {
                        act(hv, d, "shutdown", Domain::shutdown)?;
                    }
                    PowerState::Off
                }
                PowerTarget::Reset => {
                    if !on {
                        return Err(DriverError::unsupported(format!(
                            "domain {} is off; reset needs a running guest (use on or boot)",
                            d.name()
                        )));
                    }
                    act(hv, d, "reset", Domain::reset)?;
                    PowerState::On
                }
                // A fresh qemu process, so a changed boot order applies.
                PowerTarget::Cycle | PowerTarget::Boot => {
                    if on {
                        act(hv, d, "destroy", Domain::destroy)?;
                    }
                    act(hv, d, "start", Domain::start)?;
                    PowerState::On
                }
            })
        })
        .await
    }
}

#[async_trait]
impl Console for Kvm {
    fn properties(&self) -> Properties {
        &[hardware::KVM_GUEST, hardware::LIBVIRT]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Target::of(node).map(|_| ())
    }

    async fn connect(&self, node: &NodeInfo, force: bool) -> Result<ConsoleLink, DriverError> {
        console::connect(self, node, force).await
    }
}

#[async_trait]
impl Management for Kvm {
    fn properties(&self) -> Properties {
        &[hardware::KVM_GUEST, hardware::LIBVIRT]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Target::of(node).map(|_| ())
    }

    async fn get_boot_device(&self, node: &NodeInfo) -> Result<BootDevice, DriverError> {
        self.with_domain(node, |hv, _, d| {
            let xml = d
                .xml(XML_INACTIVE)
                .map_err(|e| hv.error(&format!("XML of domain {}", d.name()), &e))?;
            domxml::boot_device(&xml)
                .map_err(|e| DriverError::bmc(format!("domain {}: {e}", d.name())))
        })
        .await
    }

    /// Always persistent: libvirt has no one-time boot device.
    async fn set_boot_device(
        &self,
        node: &NodeInfo,
        device: BootDevice,
        _persistent: bool,
    ) -> Result<(), DriverError> {
        let dev = domxml::libvirt_dev(device).map_err(DriverError::unsupported)?;
        self.with_domain(node, move |hv, conn, d| {
            let name = d.name();
            if !d
                .is_persistent()
                .map_err(|e| hv.error(&format!("domain {name}"), &e))?
            {
                return Err(DriverError::unsupported(format!(
                    "domain {name} is transient (not defined); its boot order cannot be changed"
                )));
            }
            let xml = d
                .xml(XML_INACTIVE)
                .map_err(|e| hv.error(&format!("XML of domain {name}"), &e))?;
            let edited = domxml::with_boot_first(&xml, dev)
                .map_err(|e| DriverError::bmc(format!("domain {name}: {e}")))?;
            conn.define(&edited)
                .map_err(|e| hv.error(&format!("define domain {name}"), &e))?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Vm for Kvm {
    fn properties(&self) -> Properties {
        &[hardware::VM]
    }

    fn has_own_endpoint(&self, info: &Map<String, Value>) -> bool {
        has_own_endpoint(info)
    }

    async fn capacity(
        &self,
        host: &str,
        info: &Map<String, Value>,
    ) -> Result<HypervisorCapacity, DriverError> {
        Kvm::capacity(self, host, info).await
    }

    async fn create_guests(
        &self,
        host: &str,
        info: &Map<String, Value>,
        guests: Vec<Guest>,
        source: Option<String>,
    ) -> VmOutcomes {
        Kvm::create_guests(self, host, info, guests, source).await
    }

    async fn remove_guests(
        &self,
        host: Option<&str>,
        info: &Map<String, Value>,
        guests: Vec<Guest>,
        purge: bool,
    ) -> VmOutcomes {
        Kvm::remove_guests(self, host, info, guests, purge).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(control: Value) -> NodeInfo {
        NodeInfo {
            name: "vm1".into(),
            mgt: Some(xcat3_common::model::Mgt::Kvm),
            control_info: control.as_object().unwrap().clone(),
            console_info: Default::default(),
            power_state: None,
            boot_device: None,
            primary_mac: Some("52:54:00:00:00:01".into()),
            nic_macs: vec![],
            vm_host: None,
        }
    }

    #[test]
    fn prototype_ssh_keys_become_libvirt_uris() {
        let t = Target::of(&node(json!({
            "ssh_address": "hv1", "ssh_key_filename": "/root/.ssh/id rsa",
            "ssh_virt_type": "virsh", "ssh_port": "2222"
        })))
        .unwrap();
        assert_eq!(
            t.uri,
            "qemu+ssh://root@hv1:2222/system?no_tty=1&keyfile=/root/.ssh/id%20rsa"
        );
        assert_eq!(t.domain, "vm1");
        assert_eq!(t.mac.as_deref(), Some("52:54:00:00:00:01"));

        let t = Target::of(&node(json!({
            "ssh_address": "fd00::1", "ssh_username": "virt", "ssh_password": "s3cret",
            "ssh_verify_host": false, "domain": "guest-7"
        })))
        .unwrap();
        assert_eq!(
            t.uri,
            "qemu+libssh2://virt@[fd00::1]/system?sshauth=password&known_hosts_verify=ignore"
        );
        assert!(!t.uri.contains("s3cret"));
        assert_eq!(t.password, Some(("virt".into(), "s3cret".into())));
        assert_eq!(t.domain, "guest-7");

        let t = Target::of(&node(json!({"libvirt_uri": "qemu:///system"}))).unwrap();
        assert_eq!(t.uri, "qemu:///system");
    }

    #[test]
    fn bad_control_info_names_the_field() {
        for (control, field) in [
            (json!({}), "ssh_address or control_info.libvirt_uri"),
            (json!({"libvirt_uri": "hv1"}), "libvirt_uri"),
            (
                json!({"ssh_address": "hv1", "ssh_virt_type": "xen"}),
                "ssh_virt_type",
            ),
            (json!({"ssh_address": "hv1", "ssh_port": 0}), "ssh_port"),
            (
                json!({"ssh_address": "hv1", "ssh_password": "x", "ssh_key_filename": "/k"}),
                "ssh_password",
            ),
            (
                json!({"ssh_address": "hv1", "ssh_verify_host": "maybe"}),
                "ssh_verify_host",
            ),
            (
                json!({"libvirt_uri": "qemu:///system", "domain": 7}),
                "domain",
            ),
            // Records stored before write-time checks: never a program.
            (
                json!({"libvirt_uri": "qemu+ext:///system?command=/tmp/prog"}),
                "libvirt_uri",
            ),
            (
                json!({"ssh_address": "hv1", "ssh_username": "root@evil/system?command=/tmp/prog&x="}),
                "ssh_username",
            ),
            (
                json!({"ssh_address": "-oProxyCommand=/tmp/prog"}),
                "ssh_address",
            ),
        ] {
            let e = Target::of(&node(control.clone())).unwrap_err().message;
            assert!(
                e.contains(&format!("control_info.{field}")),
                "{control}: {e}"
            );
        }
    }

    /// Against libvirt's own `test:///default` driver: the driver's power
    /// logic end to end through the C library (the libvirtd + qemu tests
    /// are in tests/e2e/kvm.rs).
    #[tokio::test]
    async fn power_and_boot_order_on_libvirts_test_driver() {
        let kvm = Kvm::new(&KvmConfig::default());
        let mut n = node(json!({"libvirt_uri": "test:///default", "domain": "test"}));
        assert_eq!(kvm.get_power(&n).await.unwrap(), PowerState::On);
        // `on` leaves a running guest running.
        assert_eq!(
            kvm.set_power(&n, PowerTarget::On).await.unwrap(),
            PowerState::On
        );
        assert_eq!(
            kvm.set_power(&n, PowerTarget::Off).await.unwrap(),
            PowerState::Off
        );
        assert_eq!(kvm.get_power(&n).await.unwrap(), PowerState::Off);
        assert!(
            kvm.set_power(&n, PowerTarget::Reset)
                .await
                .unwrap_err()
                .message
                .contains("is off")
        );
        assert_eq!(
            kvm.set_power(&n, PowerTarget::Boot).await.unwrap(),
            PowerState::On
        );
        kvm.set_boot_device(&n, BootDevice::Net, false)
            .await
            .unwrap();
        assert_eq!(kvm.get_boot_device(&n).await.unwrap(), BootDevice::Net);
        kvm.set_boot_device(&n, BootDevice::Disk, true)
            .await
            .unwrap();
        assert_eq!(kvm.get_boot_device(&n).await.unwrap(), BootDevice::Disk);

        n.control_info.insert("domain".into(), json!("nope"));
        let e = kvm.get_power(&n).await.unwrap_err().message;
        assert!(
            e.contains("no domain named `nope` or with MAC 52:54:00:00:00:01"),
            "{e}"
        );
    }
}
