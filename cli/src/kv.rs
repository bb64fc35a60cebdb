//! `key=value` arguments, as the v1 client read them.

use anyhow::bail;
use serde_json::{Map, Value, json};

/// Splits `key=value`; the value is JSON when it parses as JSON (so
/// `primary=true` is a boolean), otherwise a string.
pub fn split(arg: &str) -> anyhow::Result<(String, Value)> {
    let (k, v) = split_raw(arg)?;
    Ok((k, decode(v)))
}

/// Splits `key=value`, keeping the value as the text given.
pub fn split_raw(arg: &str) -> anyhow::Result<(String, &str)> {
    let Some((k, v)) = arg.split_once('=') else {
        bail!("`{arg}` is not key=value");
    };
    if k.is_empty() {
        bail!("`{arg}` has an empty key");
    }
    Ok((k.to_string(), v))
}

/// JSON when possible (`true`, `5`, `{"a":1}`), else the text itself.
pub fn decode(v: &str) -> Value {
    if v.is_empty() {
        return Value::String(String::new());
    }
    match serde_json::from_str::<Value>(v) {
        // A bare number stays text when it would lose its form ("0001").
        Ok(Value::Number(n)) if n.to_string() != v => Value::String(v.to_string()),
        Ok(j) => j,
        Err(_) => Value::String(v.to_string()),
    }
}

/// `-c k=v,k2=v2` → an object.
pub fn dict(arg: &str) -> anyhow::Result<Map<String, Value>> {
    let mut m = Map::new();
    for part in arg.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = split(part)?;
        m.insert(k, v);
    }
    Ok(m)
}

/// `path=value` → JSON patches: an empty value removes, otherwise adds.
/// `aliases` maps a first segment to a field (`control` → `control_info`).
pub fn patches(args: &[String], aliases: &[(&str, &str)]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for a in args {
        let Some((path, raw)) = a.split_once('=') else {
            bail!("`{a}` is not path=value (an empty value removes the attribute)");
        };
        let mut segs: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        if segs.iter().any(String::is_empty) {
            bail!("`{path}` is not a valid attribute path");
        }
        if let Some((_, to)) = aliases.iter().find(|(from, _)| *from == segs[0]) {
            segs[0] = to.to_string();
        }
        let path = format!("/{}", segs.join("/"));
        if raw.is_empty() {
            out.push(json!({"op": "remove", "path": path}));
        } else {
            out.push(json!({"op": "add", "path": path, "value": decode(raw)}));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_patches() {
        assert_eq!(decode("true"), json!(true));
        assert_eq!(decode("10.0.0.1"), json!("10.0.0.1"));
        assert_eq!(decode("0001"), json!("0001"));
        assert_eq!(decode("623"), json!(623));
        let p = patches(
            &["control/bmc_address=10.0.0.9".into(), "arch=".into()],
            &[("control", "control_info")],
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                json!({"op": "add", "path": "/control_info/bmc_address", "value": "10.0.0.9"}),
                json!({"op": "remove", "path": "/arch"}),
            ]
        );
        assert!(patches(&["novalue".into()], &[]).is_err());
    }
}
