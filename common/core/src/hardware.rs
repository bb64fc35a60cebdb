//! Hardware types and their interfaces, in Ironic's shape: each `mgt` is a
//! hardware type offering optional interfaces (power, management, console,
//! inspect, vm), and each interface declares the `control_info` keys it
//! reads, its **properties**.
//!
//! The declarations live here, in the pure core, because three processes
//! read them: the API validates a node's keys when it is written (a misspelt
//! `bmc_adress` is refused then, not at power time), serves them on
//! `GET /v1/drivers` for forms and `xcat3 driver-show`, and the conductor's
//! drivers return them from `properties()` (a conductor test checks the two
//! agree).

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::model::{FieldError, Mgt, is_secret_key};

/// An interface a hardware type may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interface {
    /// Power state: status, on, off, soft, reset, cycle, boot.
    Power,
    /// The next boot device.
    Management,
    /// A serial console.
    Console,
    /// Hardware inventory, sensors, event log, identify LED.
    Inspect,
    /// Guests defined on a hypervisor (`mkvm`, `rmvm`, `clonevm`).
    Vm,
}

impl Interface {
    pub const ALL: &'static [Interface] = &[
        Interface::Power,
        Interface::Management,
        Interface::Console,
        Interface::Inspect,
        Interface::Vm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Power => "power",
            Interface::Management => "management",
            Interface::Console => "console",
            Interface::Inspect => "inspect",
            Interface::Vm => "vm",
        }
    }
}

/// Whether a node needs a property for its interface to work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    Required,
    Optional,
    /// One key of the group named here is required (e.g. `libvirt_uri` or
    /// `ssh_address`).
    OneOf(&'static str),
}

/// One `control_info` key an interface reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    pub key: &'static str,
    pub need: Need,
    /// One line for a form's help text.
    pub description: &'static str,
}

const fn required(key: &'static str, description: &'static str) -> Property {
    Property {
        key,
        need: Need::Required,
        description,
    }
}

const fn optional(key: &'static str, description: &'static str) -> Property {
    Property {
        key,
        need: Need::Optional,
        description,
    }
}

const fn one_of(key: &'static str, group: &'static str, description: &'static str) -> Property {
    Property {
        key,
        need: Need::OneOf(group),
        description,
    }
}

/// `boot_mode`, read by the management interfaces that set boot overrides.
const BOOT_MODE: Property = optional(
    "boot_mode",
    "bios (default) or uefi: the firmware mode boot overrides ask for",
);

/// IPMI v2.0 lanplus (RMCP+), power and management alike.
pub const IPMI: &[Property] = &[
    required("bmc_address", "BMC IP address or host name"),
    optional(
        "bmc_username",
        "BMC user (at most 16 bytes; empty: anonymous)",
    ),
    required(
        "bmc_password",
        "BMC password (at most 20 bytes; write-only)",
    ),
    optional("bmc_port", "RMCP+ UDP port (default 623)"),
    optional(
        "cipher_suite",
        "RMCP+ cipher suite: 3 (default), 17, 2 or 1",
    ),
    BOOT_MODE,
];

/// Redfish over HTTPS, power and management alike.
pub const REDFISH: &[Property] = &[
    required(
        "bmc_address",
        "BMC host, host:port, or base URL (https://bmc1 or http://...)",
    ),
    optional("bmc_username", "BMC user"),
    required("bmc_password", "BMC password (write-only)"),
    optional(
        "system_id",
        "the ComputerSystem to manage (default: the first member of /redfish/v1/Systems)",
    ),
    optional(
        "verify_tls",
        "true (default) or false: check the BMC's certificate",
    ),
    BOOT_MODE,
];

/// How to reach a libvirt daemon: a guest's own hypervisor, or (on a node
/// of type `hypervisor`) the host's.
pub const LIBVIRT: &[Property] = &[
    one_of(
        "libvirt_uri",
        "libvirt_uri or ssh_address (or vm_host)",
        "libvirt URI: qemu:///system, qemu+ssh://user@host/system?keyfile=..., qemu+tls://host/system",
    ),
    one_of(
        "ssh_address",
        "libvirt_uri or ssh_address (or vm_host)",
        "hypervisor address for a qemu+ssh connection (prototype key)",
    ),
    optional("ssh_username", "SSH user (default root)"),
    optional("ssh_port", "SSH port (default 22)"),
    optional(
        "ssh_key_filename",
        "private key file on the conductor, under [kvm] key_dir",
    ),
    optional(
        "ssh_password",
        "SSH password (write-only; qemu+libssh2), instead of a key",
    ),
    optional("ssh_virt_type", "virsh (the prototype's only value)"),
    optional(
        "ssh_verify_host",
        "true (default) or false: accept an unknown SSH host key",
    ),
];

/// A KVM guest's power and boot order: its domain on a libvirt daemon.
pub const KVM_GUEST: &[Property] = &[
    optional(
        "domain",
        "libvirt domain name (default: the node name; else the domain with the node's MAC)",
    ),
    optional(
        "vm_host",
        "the hypervisor node the guest lives on (its libvirt connection is used)",
    ),
];

/// What `mkvm` defines.
pub const VM: &[Property] = &[
    optional(
        "vm_host",
        "the hypervisor node (type=hypervisor) to define the guest on",
    ),
    optional(
        "vm_memory",
        "memory: MiB, or with a unit (4G, 512M); default 1024 MiB",
    ),
    optional("vm_cpus", "virtual CPUs (default 1)"),
    optional("vm_disk", "disk sizes, comma-separated (20G,100G)"),
    optional(
        "vm_disk_image",
        "a base image in the pool to clone the first disk from",
    ),
    optional(
        "vm_network",
        "bridge:NAME or network:NAME (default network:default)",
    ),
    optional("vm_pool", "the storage pool for disks (default default)"),
    optional("vm_boot", "boot order, e.g. network,hd"),
];

/// `mgt=fake`: no hardware; delays and failures to order.
pub const FAKE: &[Property] = &[
    optional("fake_delay_ms", "delay of every call, 0-600000 ms"),
    optional("fake_fail_rate", "share of calls that fail, 0.0-1.0"),
];

/// A console reached over SSH (`console_info.method = "ssh"`, any `mgt`):
/// these are `console_info` keys.
pub const SSH_CONSOLE: &[Property] = &[
    required(
        "ssh_host",
        "console_info: the terminal server or BMC serving the console over SSH",
    ),
    optional("ssh_port", "console_info: SSH port (default 22)"),
    required("ssh_username", "console_info: SSH user"),
    one_of(
        "ssh_password",
        "ssh_password or ssh_key",
        "console_info: SSH password (write-only)",
    ),
    one_of(
        "ssh_key",
        "ssh_password or ssh_key",
        "console_info: an unencrypted OpenSSH private key's text (write-only)",
    ),
    optional(
        "ssh_host_fingerprint",
        "console_info: the server's host key, SHA256:... as ssh-keygen -lf prints it",
    ),
    optional(
        "ssh_verify_host",
        "console_info: true (default) or false: accept a server without ssh_host_fingerprint",
    ),
];

/// What OS deployment reads, whatever the `mgt`.
pub const DEPLOY: &[Property] = &[
    optional(
        "install_disk",
        "the disk to install on (/dev/sda, /dev/disk/by-id/...)",
    ),
    optional("install_packages", "extra packages, separated by spaces"),
    optional("install_args", "extra kernel arguments for the installer"),
    optional(
        "ssh_authorized_keys",
        "public keys for root's authorized_keys on images genimage built, one per line",
    ),
    optional(
        "postscripts",
        "post-boot scripts (xcat3 script-create) the node runs in order, comma-separated names",
    ),
];

/// How xcat3 reaches a node's running OS over SSH (`exec`, `copy`), whatever
/// the `mgt`. The conductor logs in with the cluster's own key (`xcat3
/// ssh-key`), put into the images and answer files xcat3 makes.
pub const SHELL: &[Property] = &[
    optional(
        "os_address",
        "the address the node's OS answers SSH on (default: its primary nic's IP)",
    ),
    optional("os_ssh_port", "the OS's SSH port (default 22)"),
    optional(
        "os_ssh_host_keys",
        "the OS's SSH host public keys, one OpenSSH line each, for nodes xcat3 did not boot (nodes it booted report theirs)",
    ),
];

/// One interface of a hardware type: the driver behind it and what it
/// reads.
#[derive(Debug, Clone, Copy)]
pub struct InterfaceSpec {
    pub interface: Interface,
    /// The implementation's name (`ipmi`, `redfish`, `libvirt`, ...).
    pub driver: &'static str,
    pub properties: &'static [&'static [Property]],
}

/// A hardware type: one per `mgt`.
#[derive(Debug, Clone, Copy)]
pub struct HardwareType {
    pub mgt: Mgt,
    pub description: &'static str,
    pub interfaces: &'static [InterfaceSpec],
}

const fn iface(
    interface: Interface,
    driver: &'static str,
    properties: &'static [&'static [Property]],
) -> InterfaceSpec {
    InterfaceSpec {
        interface,
        driver,
        properties,
    }
}

/// Every hardware type xcat3 knows. A conductor builds a driver for each
/// interface listed here (checked by its tests).
pub const TYPES: &[HardwareType] = &[
    HardwareType {
        mgt: Mgt::Ipmi,
        description: "IPMI v2.0 BMC over RMCP+ (lanplus)",
        interfaces: &[
            iface(Interface::Power, "ipmi", &[IPMI]),
            iface(Interface::Management, "ipmi", &[IPMI]),
            iface(Interface::Console, "ipmi-sol", &[IPMI]),
            iface(Interface::Inspect, "ipmi", &[IPMI]),
        ],
    },
    HardwareType {
        mgt: Mgt::Redfish,
        description: "Redfish BMC over HTTPS",
        interfaces: &[
            iface(Interface::Power, "redfish", &[REDFISH]),
            iface(Interface::Management, "redfish", &[REDFISH]),
            iface(Interface::Inspect, "redfish", &[REDFISH]),
        ],
    },
    HardwareType {
        mgt: Mgt::Kvm,
        description: "KVM guest managed through libvirt",
        interfaces: &[
            iface(Interface::Power, "libvirt", &[KVM_GUEST, LIBVIRT]),
            iface(Interface::Management, "libvirt", &[KVM_GUEST, LIBVIRT]),
            iface(Interface::Console, "libvirt", &[KVM_GUEST, LIBVIRT]),
            iface(Interface::Vm, "libvirt", &[VM]),
        ],
    },
    HardwareType {
        mgt: Mgt::Fake,
        description: "no hardware: state kept in the inventory (tests, demos, benchmarks)",
        interfaces: &[
            iface(Interface::Power, "fake", &[FAKE]),
            iface(Interface::Management, "fake", &[FAKE]),
        ],
    },
];

/// The node type whose nodes carry a libvirt connection for their guests.
pub const HYPERVISOR_TYPE: &str = "hypervisor";

/// The hardware type of `mgt`.
pub fn of(mgt: Mgt) -> &'static HardwareType {
    TYPES
        .iter()
        .find(|t| t.mgt == mgt)
        .expect("every Mgt has a hardware type")
}

impl HardwareType {
    /// Its interface `i`, if offered.
    pub fn interface(&self, i: Interface) -> Option<&'static InterfaceSpec> {
        self.interfaces.iter().find(|s| s.interface == i)
    }

    /// Every property of its interfaces, each key once.
    pub fn properties(&self) -> Vec<Property> {
        let mut out: Vec<Property> = Vec::new();
        for spec in self.interfaces {
            for p in spec.properties.iter().flat_map(|g| g.iter()) {
                if !out.iter().any(|q| q.key == p.key) {
                    out.push(*p);
                }
            }
        }
        out
    }

    /// The type as `GET /v1/drivers` shows it: every interface (null when
    /// not offered) with its properties.
    pub fn describe(&self) -> Value {
        let mut interfaces = Map::new();
        for i in Interface::ALL {
            let v = match self.interface(*i) {
                None => Value::Null,
                Some(spec) => json!({
                    "driver": spec.driver,
                    "properties": spec
                        .properties
                        .iter()
                        .flat_map(|g| g.iter())
                        .map(describe_property)
                        .collect::<Vec<_>>(),
                }),
            };
            interfaces.insert(i.as_str().into(), v);
        }
        json!({
            "name": self.mgt.as_str(),
            "description": self.description,
            "interfaces": interfaces,
        })
    }
}

fn describe_property(p: &Property) -> Value {
    let (required, one_of) = match p.need {
        Need::Required => (true, None),
        Need::Optional => (false, None),
        Need::OneOf(group) => (false, Some(group)),
    };
    let mut v = json!({
        "name": p.key,
        "required": required,
        "description": p.description,
        "secret": is_secret_key(p.key),
    });
    if let Some(group) = one_of {
        v["one_of"] = json!(group);
    }
    v
}

/// The property groups that are not a hardware type's: OS deployment (any
/// node) and, on hypervisors, the libvirt connection; as `GET /v1/drivers`
/// shows them.
pub fn describe_common() -> Value {
    json!({
        "deploy": DEPLOY.iter().map(describe_property).collect::<Vec<_>>(),
        "shell": SHELL.iter().map(describe_property).collect::<Vec<_>>(),
        "hypervisor": LIBVIRT.iter().map(describe_property).collect::<Vec<_>>(),
    })
}

/// The `control_info` keys a node with this `mgt` and type may hold: its
/// hardware type's properties (any type's when `mgt` is not set yet), the
/// deploy keys, and on a hypervisor the libvirt connection.
pub fn allowed_keys(mgt: Option<Mgt>, node_type: Option<&str>) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = Vec::new();
    let mut add = |props: &[Property]| {
        for p in props {
            if !keys.contains(&p.key) {
                keys.push(p.key);
            }
        }
    };
    match mgt {
        Some(m) => add(&of(m).properties()),
        None => TYPES.iter().for_each(|t| add(&t.properties())),
    }
    add(DEPLOY);
    add(SHELL);
    if node_type == Some(HYPERVISOR_TYPE) {
        add(LIBVIRT);
    }
    keys
}

/// Refuses a `control_info` key no interface of the node reads, naming the
/// keys it may hold. Missing required keys are not refused here: a node
/// may be written in steps (create, then `update -c`), as v1 allowed; the
/// driver names a missing key when an action needs it.
pub fn check_keys(
    info: &Map<String, Value>,
    mgt: Option<Mgt>,
    node_type: Option<&str>,
) -> Result<(), FieldError> {
    let allowed = allowed_keys(mgt, node_type);
    for key in info.keys() {
        if !allowed.contains(&key.as_str()) {
            let whose = match mgt {
                Some(m) => format!("mgt={m}"),
                None => "any mgt".to_string(),
            };
            let mut valid = allowed.clone();
            valid.sort_unstable();
            return Err(FieldError::new(
                format!("control_info.{key}"),
                format!(
                    "unknown key for {whose}{} (valid: {})",
                    if node_type == Some(HYPERVISOR_TYPE) {
                        " on a hypervisor"
                    } else {
                        ""
                    },
                    valid.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_misspelt_key_is_refused_naming_the_valid_ones() {
        let e = check_keys(
            &info(json!({"bmc_adress": "10.0.0.1"})),
            Some(Mgt::Ipmi),
            None,
        )
        .unwrap_err();
        assert_eq!(e.field, "control_info.bmc_adress");
        assert!(
            e.message.starts_with("unknown key for mgt=ipmi (valid: "),
            "{e}"
        );
        for k in [
            "bmc_address",
            "bmc_password",
            "cipher_suite",
            "install_disk",
        ] {
            assert!(e.message.contains(k), "{e}");
        }
        assert!(!e.message.contains("libvirt_uri"), "{e}");
    }

    #[test]
    fn keys_follow_the_type() {
        let redfish = info(json!({"bmc_address": "b", "system_id": "1", "verify_tls": false}));
        assert!(check_keys(&redfish, Some(Mgt::Redfish), None).is_ok());
        // cipher_suite is IPMI's, system_id Redfish's.
        assert!(check_keys(&info(json!({"cipher_suite": 3})), Some(Mgt::Redfish), None).is_err());
        assert!(check_keys(&redfish, Some(Mgt::Ipmi), None).is_err());
        // Without mgt, any type's key (the type is not known yet).
        assert!(check_keys(&redfish, None, None).is_ok());
        assert!(check_keys(&info(json!({"colour": "red"})), None, None).is_err());
        // Hypervisors carry a libvirt connection whatever their mgt.
        let hv = info(json!({"libvirt_uri": "qemu:///system"}));
        assert!(check_keys(&hv, Some(Mgt::Ipmi), Some("hypervisor")).is_ok());
        assert!(check_keys(&hv, Some(Mgt::Ipmi), Some("compute")).is_err());
        // Deploy keys on every type.
        let deploy = info(json!({"install_disk": "/dev/sda"}));
        for t in TYPES {
            assert!(check_keys(&deploy, Some(t.mgt), None).is_ok());
        }
    }

    #[test]
    fn every_mgt_has_a_type_with_power() {
        for m in Mgt::ALL {
            let m = Mgt::parse("mgt", m).unwrap();
            assert!(of(m).interface(Interface::Power).is_some(), "{m}");
        }
    }

    #[test]
    fn the_description_lists_interfaces_and_marks_secrets() {
        let d = of(Mgt::Ipmi).describe();
        assert_eq!(d["name"], "ipmi");
        assert_eq!(d["interfaces"]["console"]["driver"], "ipmi-sol");
        assert!(d["interfaces"]["vm"].is_null());
        let props = d["interfaces"]["power"]["properties"].as_array().unwrap();
        let pw = props.iter().find(|p| p["name"] == "bmc_password").unwrap();
        assert_eq!(pw["required"], true);
        assert_eq!(pw["secret"], true);
        let kvm = of(Mgt::Kvm).describe();
        let uri = kvm["interfaces"]["power"]["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "libvirt_uri")
            .unwrap()
            .clone();
        assert_eq!(uri["required"], false);
        assert_eq!(uri["one_of"], "libvirt_uri or ssh_address (or vm_host)");
    }
}
