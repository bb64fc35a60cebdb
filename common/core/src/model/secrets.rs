//! Secrets are write-only: stored for the drivers, never sent back.

use serde_json::{Map, Value};

/// What a reply shows in place of a secret.
pub const MASK: &str = "******";

/// Key fragments that mark a credential wherever they appear in a key.
const SECRET_FRAGMENTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "community",
    "key_contents",
    "private_key",
    "privkey",
    "apikey",
];

/// True for keys that hold credentials (`bmc_password`, `ssh_passphrase`,
/// `snmp_community`, `api_key`, `key_contents`, `token`, ...): a key holding
/// one of [`SECRET_FRAGMENTS`], or naming a key itself (`api_key`,
/// `kg_key`, `key`), but not a key's file name or id (`ssh_key_filename`).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_FRAGMENTS.iter().any(|s| k.contains(s))
        || k == "key"
        || k.ends_with("_key")
        || k.ends_with("-key")
}

/// Replaces every secret value in `map` with [`MASK`], looking into nested
/// objects and into objects inside arrays, at any depth.
pub fn mask_secrets(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if is_secret_key(k) {
            if !v.is_null() {
                *v = Value::String(MASK.to_string());
            }
        } else {
            mask_value(v);
        }
    }
}

/// Removes every secret whose value is [`MASK`] from `value` (any depth,
/// lists too) and returns the removed paths (`control_info.bmc_password`,
/// `nics_info.nics[0].extra.key`). A file written from masked replies (the
/// v1 client's `export`) then imports with those secrets unset, instead
/// of storing the mask as a password.
pub fn strip_masked(value: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    strip_at(value, "", &mut removed);
    removed
}

/// Whether [`strip_masked`] would remove anything (no copy, no allocation).
pub fn has_masked(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (is_secret_key(k) && v.as_str() == Some(MASK)) || has_masked(v)),
        Value::Array(items) => items.iter().any(has_masked),
        _ => false,
    }
}

fn strip_at(value: &mut Value, path: &str, removed: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            map.retain(|k, v| {
                let masked = is_secret_key(k) && v.as_str() == Some(MASK);
                if masked {
                    removed.push(join(k));
                }
                !masked
            });
            for (k, v) in map.iter_mut() {
                strip_at(v, &join(k), removed);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                strip_at(v, &format!("{path}[{i}]"), removed);
            }
        }
        _ => {}
    }
}

fn mask_value(v: &mut Value) {
    match v {
        Value::Object(inner) => mask_secrets(inner),
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_nested_secrets_only() {
        let mut v = json!({"bmc_address": "10.0.0.1", "bmc_password": "pw",
                           "ssh": {"key_contents": "-----BEGIN", "user": "root"}});
        mask_secrets(v.as_object_mut().unwrap());
        assert_eq!(
            v,
            json!({"bmc_address": "10.0.0.1", "bmc_password": MASK,
                   "ssh": {"key_contents": MASK, "user": "root"}})
        );
    }

    #[test]
    fn masks_inside_arrays_and_every_kind_of_credential_key() {
        let mut v = json!({
            "switches": [{"host": "sw1", "snmp_community": "public"},
                         [{"ssh_passphrase": "pp"}]],
            "api_key": "k", "API-KEY": "k", "kg_key": "0102", "client_secret": "s",
            "ssh_key_filename": "/root/.ssh/id_rsa", "key": "v",
            "credentials": {"user": "u"}, "vlan": 12,
        });
        mask_secrets(v.as_object_mut().unwrap());
        assert_eq!(
            v,
            json!({
                "switches": [{"host": "sw1", "snmp_community": MASK},
                             [{"ssh_passphrase": MASK}]],
                "api_key": MASK, "API-KEY": MASK, "kg_key": MASK, "client_secret": MASK,
                "ssh_key_filename": "/root/.ssh/id_rsa", "key": MASK,
                "credentials": MASK, "vlan": 12,
            })
        );
    }

    #[test]
    fn masked_secrets_are_stripped_and_named() {
        let mut v = json!({"name": "n1", "control_info": {
            "bmc_address": "10.0.0.1", "bmc_password": MASK, "bmc_username": MASK},
            "nics_info": {"nics": [{"mac": "aa:bb:cc:dd:ee:ff", "extra": {"key": MASK}}]}});
        assert_eq!(
            strip_masked(&mut v),
            ["control_info.bmc_password", "nics_info.nics[0].extra.key"]
        );
        assert_eq!(
            v,
            json!({"name": "n1", "control_info": {"bmc_address": "10.0.0.1", "bmc_username": MASK},
                   "nics_info": {"nics": [{"mac": "aa:bb:cc:dd:ee:ff", "extra": {}}]}})
        );
    }
}
