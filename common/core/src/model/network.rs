//! Networks, OS images and passwords: single-resource inventory objects.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Map, Value, json};

use super::fields::{FieldError, check_hostname, parse_ip};

/// A validated network (drives DHCP subnets).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpec {
    pub name: String,
    pub subnet: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    /// Comma-separated IPs (the prototype allowed one).
    pub nameservers: Option<String>,
    pub ntpservers: Option<String>,
    pub domain: Option<String>,
    /// `first-last`, both inside the subnet.
    pub dynamic_range: Option<String>,
    pub next_server: Option<String>,
    pub extra: Map<String, Value>,
}

impl NetworkSpec {
    pub const WRITABLE: &'static [&'static str] = &[
        "name",
        "subnet",
        "netmask",
        "gateway",
        "nameservers",
        "ntpservers",
        "domain",
        "dynamic_range",
        "next_server",
        "extra",
    ];

    pub fn from_json(value: &Value) -> Result<NetworkSpec, FieldError> {
        let obj = object(value, Self::WRITABLE, &["id", "created_at", "updated_at"])?;
        let name = req_str(obj, "name")?;
        check_resource_name("name", name)?;
        let ip = |k: &str| -> Result<Option<IpAddr>, FieldError> {
            opt_str(obj, k)?.map(|s| parse_ip(k, s)).transpose()
        };
        let subnet = ip("subnet")?;
        let netmask = opt_str(obj, "netmask")?.map(parse_netmask).transpose()?;
        let gateway = ip("gateway")?;
        let next_server = ip("next_server")?;
        let v4 = |k: &str, a: IpAddr| match a {
            IpAddr::V4(v) => Ok(v),
            IpAddr::V6(_) => Err(FieldError::new(k, "only IPv4 networks are supported")),
        };
        let net = match (subnet, netmask) {
            (Some(s), Some(m)) => {
                let (s, m) = (v4("subnet", s)?, m);
                if u32::from(s) & u32::from(m) != u32::from(s) {
                    return Err(FieldError::new(
                        "subnet",
                        format!("{s} is not the network address of {s}/{m} (host bits set)"),
                    ));
                }
                Some((s, m))
            }
            (None, None) => None,
            (Some(_), None) => return Err(FieldError::new("netmask", "is required with subnet")),
            (None, Some(_)) => return Err(FieldError::new("subnet", "is required with netmask")),
        };
        let inside = |k: &str, a: Ipv4Addr| -> Result<(), FieldError> {
            if let Some((s, m)) = net
                && u32::from(a) & u32::from(m) != u32::from(s)
            {
                return Err(FieldError::new(k, format!("{a} is outside {s}/{m}")));
            }
            Ok(())
        };
        if let Some(g) = gateway {
            inside("gateway", v4("gateway", g)?)?;
        }
        let nameservers = opt_str(obj, "nameservers")?
            .map(|s| {
                s.split(',')
                    .map(|ip| parse_ip("nameservers", ip.trim()).map(|a| a.to_string()))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| v.join(","))
            })
            .transpose()?;
        let dynamic_range = opt_str(obj, "dynamic_range")?
            .map(|r| -> Result<String, FieldError> {
                let (a, b) = r.split_once('-').ok_or_else(|| {
                    FieldError::new("dynamic_range", format!("`{r}` is not FIRST-LAST"))
                })?;
                let (a, b) = (
                    v4("dynamic_range", parse_ip("dynamic_range", a)?)?,
                    v4("dynamic_range", parse_ip("dynamic_range", b)?)?,
                );
                if a > b {
                    return Err(FieldError::new(
                        "dynamic_range",
                        format!("{a} is after {b}"),
                    ));
                }
                inside("dynamic_range", a)?;
                inside("dynamic_range", b)?;
                Ok(format!("{a}-{b}"))
            })
            .transpose()?;
        let domain = opt_str(obj, "domain")?;
        if let Some(d) = domain {
            check_hostname("domain", d)?;
        }
        Ok(NetworkSpec {
            name: name.to_string(),
            subnet: net.map(|(s, _)| s.to_string()),
            netmask: net.map(|(_, m)| m.to_string()),
            gateway: gateway.map(|g| g.to_string()),
            nameservers,
            ntpservers: opt_str(obj, "ntpservers")?.map(str::to_string),
            domain: domain.map(str::to_string),
            dynamic_range,
            next_server: next_server.map(|a| a.to_string()),
            extra: opt_map(obj, "extra")?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name, "subnet": self.subnet, "netmask": self.netmask,
            "gateway": self.gateway, "nameservers": self.nameservers,
            "ntpservers": self.ntpservers, "domain": self.domain,
            "dynamic_range": self.dynamic_range, "next_server": self.next_server,
            "extra": self.extra,
        })
    }
}

/// Accepts `255.255.255.0` or a prefix length `24`; must be contiguous.
fn parse_netmask(s: &str) -> Result<Ipv4Addr, FieldError> {
    let bad = || FieldError::new("netmask", format!("`{s}` is not a netmask"));
    let mask: Ipv4Addr = match s.trim().trim_start_matches('/').parse::<u8>() {
        Ok(len) if len <= 32 => Ipv4Addr::from(u32::MAX.checked_shl(32 - len as u32).unwrap_or(0)),
        Ok(_) => return Err(bad()),
        Err(_) => s.trim().parse().map_err(|_| bad())?,
    };
    let m = u32::from(mask);
    if m.leading_ones() + m.trailing_zeros() != 32 {
        return Err(bad());
    }
    Ok(mask)
}

/// An OS image record (created by copycds; its identity fields are internal).
#[derive(Debug, Clone, PartialEq)]
pub struct OsImageSpec {
    pub profile: Option<String>,
    pub image_type: Option<String>,
    pub provmethod: Option<String>,
    pub rootfstype: Option<String>,
}

impl OsImageSpec {
    /// An osimage name: what copycds registers (`ubuntu24.04-x86_64`).
    pub fn check_name(name: &str) -> Result<(), FieldError> {
        check_resource_name("name", name)
    }

    /// What PATCH may change; `name`, `distro`, `ver`, `arch`, `orig_name`
    /// describe the imported media and are internal.
    pub const WRITABLE: &'static [&'static str] = &["profile", "type", "provmethod", "rootfstype"];

    pub fn from_json(value: &Value) -> Result<OsImageSpec, FieldError> {
        let obj = object(value, Self::WRITABLE, &[])?;
        let word = |k: &str| -> Result<Option<String>, FieldError> {
            opt_str(obj, k)?
                .map(|s| {
                    check_resource_name(k, s)?;
                    Ok(s.to_string())
                })
                .transpose()
        };
        Ok(OsImageSpec {
            profile: word("profile")?,
            image_type: word("type")?,
            provmethod: word("provmethod")?,
            rootfstype: word("rootfstype")?,
        })
    }
}

/// A password entry (`system` is the deployed root password).
#[derive(Debug, Clone, PartialEq)]
pub struct PasswdSpec {
    pub key: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub crypt_method: Option<String>,
}

impl PasswdSpec {
    pub const WRITABLE: &'static [&'static str] = &["key", "username", "password", "crypt_method"];
    pub const CRYPT_METHODS: &'static [&'static str] = &["md5", "sha256", "sha512"];

    pub fn from_json(value: &Value) -> Result<PasswdSpec, FieldError> {
        let obj = object(value, Self::WRITABLE, &["id", "created_at", "updated_at"])?;
        let key = req_str(obj, "key")?;
        check_resource_name("key", key)?;
        let crypt_method = opt_str(obj, "crypt_method")?;
        if let Some(m) = crypt_method
            && !Self::CRYPT_METHODS.contains(&m)
        {
            return Err(FieldError::new(
                "crypt_method",
                format!("`{m}` is not one of {}", Self::CRYPT_METHODS.join(", ")),
            ));
        }
        let password = opt_str(obj, "password")?;
        if password.is_some_and(|p| p.len() > 1024) {
            return Err(FieldError::new("password", "is longer than 1024 bytes"));
        }
        Ok(PasswdSpec {
            key: key.to_string(),
            username: opt_str(obj, "username")?.map(str::to_string),
            password: password.map(str::to_string),
            crypt_method: crypt_method.map(str::to_string),
        })
    }
}

/// Names of networks, passwords and image attributes: 1-64 of
/// `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub(super) fn check_resource_name(field: &str, name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("`{name}` must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit"),
        ))
    }
}

fn object<'a>(
    value: &'a Value,
    writable: &[&str],
    read_only: &[&str],
) -> Result<&'a Map<String, Value>, FieldError> {
    let obj = value
        .as_object()
        .ok_or_else(|| FieldError::new("body", "must be a JSON object"))?;
    for key in obj.keys() {
        if read_only.contains(&key.as_str()) {
            return Err(FieldError::new(key, "is read-only"));
        }
        if !writable.contains(&key.as_str()) {
            return Err(FieldError::new(
                key,
                format!("unknown field (writable: {})", writable.join(", ")),
            ));
        }
    }
    Ok(obj)
}

fn req_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, FieldError> {
    opt_str(obj, key)?.ok_or_else(|| FieldError::new(key, "is required"))
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(FieldError::new(key, "must be a string")),
    }
}

fn opt_map(obj: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(FieldError::new(key, "must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_validation() {
        let n = NetworkSpec::from_json(&json!({"name": "mgmt", "subnet": "10.0.0.0", "netmask": "24",
            "gateway": "10.0.0.1", "dynamic_range": "10.0.0.100-10.0.0.200", "nameservers": "10.0.0.2, 10.0.0.3"}))
        .unwrap();
        assert_eq!(n.netmask.as_deref(), Some("255.255.255.0"));
        assert_eq!(n.nameservers.as_deref(), Some("10.0.0.2,10.0.0.3"));
        for (bad, field) in [
            (
                json!({"name": "m", "subnet": "10.0.0.1", "netmask": "255.255.255.0"}),
                "subnet",
            ),
            (
                json!({"name": "m", "subnet": "10.0.0.0", "netmask": "255.0.255.0"}),
                "netmask",
            ),
            (
                json!({"name": "m", "subnet": "10.0.0.0", "netmask": "24", "gateway": "10.0.1.1"}),
                "gateway",
            ),
            (
                json!({"name": "m", "subnet": "10.0.0.0", "netmask": "24", "dynamic_range": "10.0.0.9-10.0.0.2"}),
                "dynamic_range",
            ),
            (json!({"name": "m", "subnet": "10.0.0.0"}), "netmask"),
            (json!({"name": "m", "dhcpserver": "x"}), "dhcpserver"),
            (json!({"subnet": "10.0.0.0"}), "name"),
        ] {
            assert_eq!(
                NetworkSpec::from_json(&bad).unwrap_err().field,
                field,
                "{bad}"
            );
        }
    }

    #[test]
    fn passwd_validation() {
        assert!(
            PasswdSpec::from_json(
                &json!({"key": "system", "password": "x", "crypt_method": "sha512"})
            )
            .is_ok()
        );
        assert_eq!(
            PasswdSpec::from_json(&json!({"key": "system", "crypt_method": "des"}))
                .unwrap_err()
                .field,
            "crypt_method"
        );
    }
}
