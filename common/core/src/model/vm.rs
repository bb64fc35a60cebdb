//! A KVM guest's shape, kept in its `control_info.vm_*` keys, and a
//! hypervisor's capacity as conductors report it.
//!
//! The API validates a `mkvm` request by writing its options into these
//! keys and reading them back with [`VmShape::from_control_info`]; the
//! conductor reads the same keys to build the domain, so both agree on
//! what a shape means.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::FieldError;

/// The `control_info` keys of a guest's shape.
pub const VM_KEYS: &[&str] = &[
    "vm_host",
    "vm_memory",
    "vm_cpus",
    "vm_disk",
    "vm_disk_image",
    "vm_network",
    "vm_pool",
    "vm_boot",
];

/// The hypervisor a guest's `control_info` names (`vm_host`), if any.
pub fn vm_host(info: &Map<String, Value>) -> Option<&str> {
    info.get("vm_host").and_then(Value::as_str)
}

/// What a guest looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmShape {
    /// The hypervisor node (`type=hypervisor`) the guest lives on.
    pub host: Option<String>,
    pub memory_mib: u64,
    pub cpus: u32,
    pub disk: Option<VmDisk>,
    pub network: VmNetwork,
    /// The libvirt storage pool of the guest's disk.
    pub pool: String,
    /// libvirt boot devices in order (`network`, `hd`, `cdrom`).
    pub boot: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmDisk {
    /// A new empty qcow2 volume of this many bytes.
    Size(u64),
    /// A qcow2 overlay on this backing image (a path on the hypervisor).
    Image(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmNetwork {
    /// A libvirt network by name.
    Network(String),
    /// A host bridge.
    Bridge(String),
}

pub const DEFAULT_MEMORY_MIB: u64 = 1024;
pub const DEFAULT_POOL: &str = "default";
pub const DEFAULT_NETWORK: &str = "default";

/// `20G`, `512M`, `1T`, `4096K` or plain bytes (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn int(info: &Map<String, Value>, key: &str) -> Result<Option<u64>, FieldError> {
    match info.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            FieldError::new(format!("control_info.{key}"), "must be a positive integer")
        }),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            FieldError::new(
                format!("control_info.{key}"),
                format!("`{s}` is not a positive integer"),
            )
        }),
        Some(_) => Err(FieldError::new(
            format!("control_info.{key}"),
            "must be a positive integer",
        )),
    }
}

fn text<'a>(info: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, FieldError> {
    match info.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
        Some(_) => Err(FieldError::new(
            format!("control_info.{key}"),
            "must be a non-empty string",
        )),
    }
}

impl VmShape {
    /// Whether `info` says anything about a guest shape.
    pub fn present(info: &Map<String, Value>) -> bool {
        VM_KEYS.iter().any(|k| info.contains_key(*k))
    }

    /// Reads and checks the `vm_*` keys, with defaults for those absent.
    pub fn from_control_info(info: &Map<String, Value>) -> Result<VmShape, FieldError> {
        let memory_mib = int(info, "vm_memory")?.unwrap_or(DEFAULT_MEMORY_MIB);
        if !(16..=16 * 1024 * 1024).contains(&memory_mib) {
            return Err(FieldError::new(
                "control_info.vm_memory",
                format!("{memory_mib} MiB is not between 16 MiB and 16 TiB"),
            ));
        }
        let cpus = int(info, "vm_cpus")?.unwrap_or(1);
        if !(1..=1024).contains(&cpus) {
            return Err(FieldError::new(
                "control_info.vm_cpus",
                format!("{cpus} is not between 1 and 1024"),
            ));
        }
        let size = match info.get("vm_disk") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_u64().filter(|b| *b > 0),
            Some(Value::String(s)) => parse_size(s).filter(|b| *b > 0),
            Some(_) => None,
        };
        if info.get("vm_disk").is_some_and(|v| !v.is_null()) && size.is_none() {
            return Err(FieldError::new(
                "control_info.vm_disk",
                "must be a size such as 20G, 512M or bytes",
            ));
        }
        let image = text(info, "vm_disk_image")?;
        let disk = match (size, image) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "control_info.vm_disk_image",
                    "give vm_disk (a new disk) or vm_disk_image (an overlay on an image), not both",
                ));
            }
            (Some(b), None) => Some(VmDisk::Size(b)),
            (None, Some(p)) if p.starts_with('/') => Some(VmDisk::Image(p.to_string())),
            (None, Some(p)) => {
                return Err(FieldError::new(
                    "control_info.vm_disk_image",
                    format!("`{p}` is not an absolute path on the hypervisor"),
                ));
            }
            (None, None) => None,
        };
        let network = match text(info, "vm_network")? {
            None => VmNetwork::Network(DEFAULT_NETWORK.into()),
            Some(n) => match n.split_once(':') {
                Some(("bridge", b)) if !b.is_empty() => VmNetwork::Bridge(b.into()),
                Some(("network", b)) if !b.is_empty() => VmNetwork::Network(b.into()),
                None => VmNetwork::Network(n.into()),
                Some(_) => {
                    return Err(FieldError::new(
                        "control_info.vm_network",
                        format!("`{n}` is not NAME, network:NAME or bridge:BRIDGE"),
                    ));
                }
            },
        };
        let boot = match text(info, "vm_boot")? {
            None => vec!["network".to_string(), "hd".to_string()],
            Some(b) => {
                let devs: Vec<String> = b.split(',').map(|d| d.trim().to_string()).collect();
                if let Some(bad) = devs
                    .iter()
                    .find(|d| !["network", "hd", "cdrom"].contains(&d.as_str()))
                {
                    return Err(FieldError::new(
                        "control_info.vm_boot",
                        format!("`{bad}` is not one of network, hd, cdrom"),
                    ));
                }
                devs
            }
        };
        Ok(VmShape {
            host: text(info, "vm_host")?.map(str::to_string),
            memory_mib,
            cpus: cpus as u32,
            disk,
            network,
            pool: text(info, "vm_pool")?.unwrap_or(DEFAULT_POOL).to_string(),
            boot,
        })
    }
}

/// A hypervisor's capacity (the result text of `HypervisorInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypervisorCapacity {
    /// Memory guests may be given: host memory times the overcommit ratio.
    pub memory_mib: u64,
    /// Memory of every defined guest, running or not.
    pub allocated_mib: u64,
    pub cpus: u32,
    pub allocated_cpus: u32,
    pub domains: u32,
}

impl HypervisorCapacity {
    pub fn free_mib(&self) -> u64 {
        self.memory_mib.saturating_sub(self.allocated_mib)
    }
}

/// The longest `--expire-after`: a year.
pub const MAX_EXPIRY_S: u64 = 365 * 24 * 3600;

/// A duration as an operator writes it: `90s`, `30m`, `8h`, `7d`,
/// `1h30m`, or plain seconds. At least 1 s, at most a year.
pub fn parse_duration_s(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("`{t}` is not a duration (90s, 30m, 8h, 7d, 1h30m, or seconds)");
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut units = 0;
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let scale = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(scale));
        digits.clear();
        units += 1;
    }
    if !digits.is_empty() {
        if units > 0 {
            return Err(bad());
        }
        total = digits.parse().map_err(|_| bad())?;
    }
    if t.is_empty() || total == 0 || total > MAX_EXPIRY_S {
        return Err(format!("{} (between 1 s and 365 d)", bad()));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_write_them() {
        assert_eq!(parse_duration_s("90s").unwrap(), 90);
        assert_eq!(parse_duration_s("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration_s("7d").unwrap(), 604_800);
        assert_eq!(parse_duration_s("120").unwrap(), 120);
        for bad in ["", "0", "5x", "1h30", "400d", "-5m"] {
            assert!(parse_duration_s(bad).is_err(), "{bad:?}");
        }
    }
    use serde_json::json;

    fn shape(v: Value) -> Result<VmShape, FieldError> {
        VmShape::from_control_info(v.as_object().unwrap())
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("20G"), Some(20 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1t"), Some(1 << 40));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn defaults_and_forms() {
        let s = shape(json!({"vm_host": "hv1"})).unwrap();
        assert_eq!(s.host.as_deref(), Some("hv1"));
        assert_eq!((s.memory_mib, s.cpus), (1024, 1));
        assert_eq!(s.network, VmNetwork::Network("default".into()));
        assert_eq!(s.boot, ["network", "hd"]);
        assert_eq!(s.disk, None);
        let s = shape(json!({"vm_memory": "2048", "vm_cpus": 4, "vm_disk": "10G",
                             "vm_network": "bridge:br0", "vm_pool": "fast", "vm_boot": "hd,network"}))
        .unwrap();
        assert_eq!((s.memory_mib, s.cpus), (2048, 4));
        assert_eq!(s.disk, Some(VmDisk::Size(10 << 30)));
        assert_eq!(s.network, VmNetwork::Bridge("br0".into()));
        assert_eq!(s.pool, "fast");
        let s = shape(json!({"vm_disk_image": "/var/lib/libvirt/images/golden.qcow2"})).unwrap();
        assert_eq!(
            s.disk,
            Some(VmDisk::Image("/var/lib/libvirt/images/golden.qcow2".into()))
        );
    }

    #[test]
    fn errors_name_the_field() {
        for (v, field) in [
            (json!({"vm_memory": 8}), "vm_memory"),
            (json!({"vm_memory": "lots"}), "vm_memory"),
            (json!({"vm_cpus": 0}), "vm_cpus"),
            (json!({"vm_disk": "ten"}), "vm_disk"),
            (
                json!({"vm_disk": "1G", "vm_disk_image": "/x"}),
                "vm_disk_image",
            ),
            (json!({"vm_disk_image": "golden.qcow2"}), "vm_disk_image"),
            (json!({"vm_network": "vlan:7"}), "vm_network"),
            (json!({"vm_boot": "network,floppy"}), "vm_boot"),
            (json!({"vm_host": ""}), "vm_host"),
        ] {
            let e = shape(v.clone()).unwrap_err();
            assert_eq!(e.field, format!("control_info.{field}"), "{v}");
        }
    }
}
