//! Field-level validation shared by every resource.

use std::fmt;
use std::net::IpAddr;

/// A bad field: `field: message`. The caller knows the resource (node name,
/// network name) and puts it in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses `value` of field `field`, naming the accepted values on error.
            pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
                match value {
                    $($text => Ok($name::$variant),)+
                    other => Err(FieldError::new(
                        field,
                        format!("`{other}` is not one of {}", Self::ALL.join(", ")),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Read through `parse`, so a typed body refuses what `parse` refuses.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(stringify!($name), &text)
                    .map_err(|e| serde::de::Error::custom(e.message))
            }
        }

        crate::word_schema!($name, $name::ALL, "");
    };
}

string_enum!(
    /// How the node's power and boot device are managed.
    Mgt { Ipmi = "ipmi", Kvm = "kvm", Redfish = "redfish", Fake = "fake" }
);
string_enum!(
    /// How the node boots from the network.
    Netboot { Pxe = "pxe", Ipxe = "ipxe", Grub2 = "grub2", Petitboot = "petitboot" }
);
string_enum!(
    /// CPU architecture (chooses boot loaders and images).
    Arch { X86_64 = "x86_64", Ppc64le = "ppc64le", Aarch64 = "aarch64" }
);

/// Words that are routes under `/v1/nodes/`; a node so named would be shadowed.
pub const RESERVED_NODE_NAMES: &[&str] = &[
    "info",
    "power",
    "provision",
    "boot_device",
    "callback",
    "export",
    "inventory",
    "vitals",
    "eventlog",
    "beacon",
    "health",
    "vm",
];

/// A node name is a DNS host name (labels of letters, digits and inner
/// hyphens, joined by dots), at most 253 bytes, and not a route word. That
/// keeps it usable as a hostname, a file name and a noderange atom.
pub fn check_node_name(name: &str) -> Result<(), FieldError> {
    check_hostname("name", name)?;
    if RESERVED_NODE_NAMES.contains(&name) {
        return Err(FieldError::new(
            "name",
            format!("`{name}` is reserved (it is an API route)"),
        ));
    }
    Ok(())
}

/// Checks a DNS host name (used for node names and BMC host names).
pub fn check_hostname(field: &str, name: &str) -> Result<(), FieldError> {
    let bad = |why: &str| Err(FieldError::new(field, format!("`{name}` {why}")));
    if name.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if name.len() > 253 {
        return bad("is longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("has an empty label or one longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("may hold only letters, digits, `-` and `.`");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("has a label that starts or ends with `-`");
        }
    }
    Ok(())
}

/// Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff` and
/// `aabbccddeeff` (not all-zero or broadcast); returns the lower-case
/// colon form.
pub fn normalize_mac(field: &str, mac: &str) -> Result<String, FieldError> {
    let hex = mac_digits(field, mac)?;
    if hex == "000000000000" || hex == "ffffffffffff" {
        return Err(FieldError::new(
            field,
            format!("`{mac}` is not a usable MAC address"),
        ));
    }
    let mut out = String::with_capacity(17);
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(pair[0] as char);
        out.push(pair[1] as char);
    }
    Ok(out)
}

/// The twelve lower-case hex digits of a MAC in one of the spellings
/// [`normalize_mac`] accepts, or an error naming `field`.
pub fn mac_digits(field: &str, mac: &str) -> Result<String, FieldError> {
    let hex: String = mac
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let separators_ok = {
        let seps: Vec<char> = mac
            .chars()
            .filter(|c| matches!(c, ':' | '-' | '.'))
            .collect();
        seps.is_empty()
            || (seps.len() == 5 && seps.iter().all(|&c| c == seps[0]) && seps[0] != '.')
            || (seps.len() == 2 && seps.iter().all(|&c| c == '.'))
    };
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) || !separators_ok {
        return Err(FieldError::new(
            field,
            format!("`{mac}` is not a MAC address (expected aa:bb:cc:dd:ee:ff)"),
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Parses an IPv4 or IPv6 address, returning its canonical text.
pub fn parse_ip(field: &str, ip: &str) -> Result<IpAddr, FieldError> {
    ip.trim()
        .parse()
        .map_err(|_| FieldError::new(field, format!("`{ip}` is not an IP address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_normalized() {
        for input in [
            "42:87:0A:05:00:01",
            "42-87-0a-05-00-01",
            "4287.0a05.0001",
            "42870a050001",
        ] {
            assert_eq!(
                normalize_mac("mac", input).unwrap(),
                "42:87:0a:05:00:01",
                "{input}"
            );
        }
        for bad in [
            "42:87:0a:05:00",
            "zz:87:0a:05:00:01",
            "42:87-0a:05:00:01",
            "ff:ff:ff:ff:ff:ff",
            "",
        ] {
            let err = normalize_mac("nics[0].mac", bad).unwrap_err();
            assert_eq!(err.field, "nics[0].mac");
        }
    }

    #[test]
    fn node_names() {
        for ok in ["node1", "rack1n01", "n-1", "node1.cluster"] {
            check_node_name(ok).unwrap();
        }
        for bad in [
            "", "info", "power", "-n", "n-", "node[1]", "a b", "a_b", "x/y", "a..b",
        ] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn enums_name_the_choices() {
        assert_eq!(Mgt::parse("mgt", "ipmi").unwrap(), Mgt::Ipmi);
        let e = Mgt::parse("mgt", "ipmii").unwrap_err();
        assert_eq!(
            e.to_string(),
            "mgt: `ipmii` is not one of ipmi, kvm, redfish, fake"
        );
    }
}
