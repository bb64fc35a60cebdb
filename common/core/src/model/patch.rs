//! JSON-patch (RFC 6902 `add`/`replace`/`remove`) over a resource's writable
//! document. The patched document is validated again as a whole, so a patch
//! can never store what a create would have refused.

use serde_json::{Map, Value};

use super::fields::FieldError;

/// One patch operation, already checked against the resource's writable paths.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub op: Op,
    /// The JSON pointer, split and unescaped (`/control_info/bmc_address`).
    pub path: Vec<String>,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

/// Parses `[{"op","path","value"}...]`, allowing only paths whose first
/// segment is in `writable`.
pub fn parse_patches(value: &Value, writable: &[&str]) -> Result<Vec<PatchOp>, FieldError> {
    let list = value
        .as_array()
        .ok_or_else(|| FieldError::new("patches", "must be a list of {op, path, value}"))?;
    if list.is_empty() {
        return Err(FieldError::new("patches", "is empty"));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let field = format!("patches[{i}]");
        let obj = p
            .as_object()
            .ok_or_else(|| FieldError::new(&field, "must be an object {op, path, value}"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !["op", "path", "value"].contains(&k.as_str()))
        {
            return Err(FieldError::new(format!("{field}.{k}"), "unknown field"));
        }
        let op = match obj.get("op").and_then(Value::as_str) {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            other => {
                return Err(FieldError::new(
                    format!("{field}.op"),
                    format!("{other:?} is not one of add, replace, remove"),
                ));
            }
        };
        let raw = obj
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| FieldError::new(format!("{field}.path"), "is required"))?;
        let path = parse_pointer(raw).ok_or_else(|| {
            FieldError::new(
                format!("{field}.path"),
                format!("`{raw}` is not a JSON pointer like /control_info/bmc_address"),
            )
        })?;
        let top = path[0].as_str();
        if !writable.contains(&top) {
            return Err(FieldError::new(
                raw,
                format!("cannot be changed (writable: {})", writable.join(", ")),
            ));
        }
        let value = match (op, obj.get("value")) {
            (Op::Remove, _) => Value::Null,
            (_, Some(v)) => v.clone(),
            (_, None) => return Err(FieldError::new(format!("{field}.value"), "is required")),
        };
        out.push(PatchOp { op, path, value });
    }
    Ok(out)
}

fn parse_pointer(raw: &str) -> Option<Vec<String>> {
    let rest = raw.strip_prefix('/')?;
    let parts: Vec<String> = rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    (!parts.iter().any(String::is_empty)).then_some(parts)
}

/// Applies `ops` to `doc` in order. Errors name the path.
pub fn apply_patches(doc: &mut Value, ops: &[PatchOp]) -> Result<(), FieldError> {
    for op in ops {
        apply_one(doc, op).map_err(|m| FieldError::new(format!("/{}", op.path.join("/")), m))?;
    }
    Ok(())
}

fn apply_one(doc: &mut Value, op: &PatchOp) -> Result<(), String> {
    let (last, parents) = op.path.split_last().ok_or("empty path")?;
    let mut target = doc;
    for seg in parents {
        target = match target {
            Value::Object(m) => {
                // `add` creates missing intermediate objects: `add
                // /control_info/x` on a node with no control_info works.
                if op.op == Op::Add && !m.contains_key(seg) {
                    m.insert(seg.clone(), Value::Object(Map::new()));
                }
                m.get_mut(seg)
                    .ok_or_else(|| format!("`{seg}` does not exist"))?
            }
            Value::Array(a) => {
                let i = index(seg, a.len())?;
                &mut a[i]
            }
            Value::Null if op.op == Op::Add => {
                *target = Value::Object(Map::new());
                let Value::Object(m) = target else {
                    unreachable!()
                };
                m.insert(seg.clone(), Value::Object(Map::new()));
                m.get_mut(seg).ok_or("unreachable")?
            }
            _ => return Err(format!("`{seg}` is not inside an object or list")),
        };
    }
    match (target, op.op) {
        (Value::Object(m), Op::Add) => {
            m.insert(last.clone(), op.value.clone());
        }
        (Value::Object(m), Op::Replace) => {
            let slot = m.get_mut(last).ok_or("cannot replace: not set")?;
            *slot = op.value.clone();
        }
        (Value::Object(m), Op::Remove) => {
            m.remove(last).ok_or("cannot remove: not set")?;
        }
        (Value::Array(a), Op::Add) if last == "-" => a.push(op.value.clone()),
        (Value::Array(a), Op::Add) => {
            let i = index(last, a.len() + 1)?;
            a.insert(i, op.value.clone());
        }
        (Value::Array(a), Op::Replace) => {
            let i = index(last, a.len())?;
            a[i] = op.value.clone();
        }
        (Value::Array(a), Op::Remove) => {
            let i = index(last, a.len())?;
            a.remove(i);
        }
        (slot @ Value::Null, Op::Add) => {
            let mut m = Map::new();
            m.insert(last.clone(), op.value.clone());
            *slot = Value::Object(m);
        }
        (_, Op::Remove | Op::Replace) => return Err("cannot change: not set".into()),
        _ => return Err("parent is not an object or list".into()),
    }
    Ok(())
}

fn index(seg: &str, len: usize) -> Result<usize, String> {
    seg.parse::<usize>()
        .ok()
        .filter(|i| *i < len)
        .ok_or_else(|| format!("`{seg}` is not an index below {len}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const W: &[&str] = &["mgt", "control_info", "nics_info"];

    fn patched(doc: Value, patches: Value) -> Result<Value, FieldError> {
        let ops = parse_patches(&patches, W)?;
        let mut doc = doc;
        apply_patches(&mut doc, &ops)?;
        Ok(doc)
    }

    #[test]
    fn add_replace_remove() {
        let doc =
            json!({"mgt": "ipmi", "control_info": {"a": 1}, "nics_info": {"nics": [{"mac": "x"}]}});
        let out = patched(
            doc,
            json!([{"op": "add", "path": "/control_info/b", "value": "2"},
                   {"op": "remove", "path": "/control_info/a"},
                   {"op": "replace", "path": "/mgt", "value": "kvm"},
                   {"op": "add", "path": "/nics_info/nics/-", "value": {"mac": "y"}},
                   {"op": "replace", "path": "/nics_info/nics/0/mac", "value": "z"}]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"mgt": "kvm", "control_info": {"b": "2"}, "nics_info": {"nics": [{"mac": "z"}, {"mac": "y"}]}})
        );
    }

    #[test]
    fn refuses_read_only_paths_and_missing_targets() {
        let e = patched(
            json!({}),
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
        )
        .unwrap_err();
        assert_eq!(e.field, "/name");
        let e = patched(
            json!({"control_info": {}}),
            json!([{"op": "remove", "path": "/control_info/zz"}]),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "/control_info/zz: cannot remove: not set");
        assert!(patched(json!({}), json!([{"op": "move", "path": "/mgt"}])).is_err());
        assert!(patched(json!({}), json!({"op": "add"})).is_err());
    }
}
