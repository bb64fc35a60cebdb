//! Secrets are write-only: stored for the drivers, never sent back.

use serde_json::{Map, Value};

/// What a reply shows in place of a secret.
pub const MASK: &str = "******";

/// True for keys that hold credentials (`bmc_password`, `ssh_password`,
/// `key_contents`, `token`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "key_contents",
        "private_key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Replaces every secret value in `map` (recursively) with [`MASK`].
pub fn mask_secrets(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if is_secret_key(k) {
            if !v.is_null() {
                *v = Value::String(MASK.to_string());
            }
        } else if let Value::Object(inner) = v {
            mask_secrets(inner);
        }
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
}
