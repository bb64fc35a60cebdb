//! `driver-list` and `driver-show`: the hardware types and the
//! `control_info` keys their interfaces read (`GET /v1/drivers`).

use serde_json::Value;

use crate::client::{Client, encode};
use crate::output;

/// The interfaces, in Ironic's order (the reply's map is sorted by name).
const INTERFACES: [&str; 5] = ["power", "management", "console", "inspect", "vm"];

/// One line per hardware type: its name, the interfaces it offers, what
/// it is.
pub async fn list(c: &Client, json: bool) -> anyhow::Result<bool> {
    let v = c.get("/drivers").await?;
    if json {
        output::print_json(&v);
        return Ok(true);
    }
    let types = v.get("drivers").and_then(Value::as_array).cloned();
    let rows: Vec<[String; 3]> = types
        .into_iter()
        .flatten()
        .map(|t| {
            let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            [s("name"), offered(&t).join(","), s("description")]
        })
        .collect();
    output::table(&["NAME", "INTERFACES", "DESCRIPTION"], &rows);
    Ok(true)
}

/// Every interface of one type with its properties: key, required or
/// optional (or which group one of must be set), secret, description.
pub async fn show(c: &Client, name: &str, json: bool) -> anyhow::Result<bool> {
    let t = c.get(&format!("/drivers/{}", encode(name))).await?;
    if json {
        output::print_json(&t);
        return Ok(true);
    }
    let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    println!("{}: {}", s("name"), s("description"));
    for iface in INTERFACES {
        let Some(spec) = t
            .pointer(&format!("/interfaces/{iface}"))
            .and_then(Value::as_object)
        else {
            println!("\n{iface}: not offered");
            continue;
        };
        let driver = spec.get("driver").and_then(Value::as_str).unwrap_or("");
        println!("\n{iface} ({driver}):");
        let rows: Vec<[String; 3]> = spec
            .get("properties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                let ps = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
                let need = match (p.get("required") == Some(&Value::Bool(true)), ps("one_of")) {
                    (true, _) => "required".to_string(),
                    (false, "") => "optional".to_string(),
                    (false, group) => format!("one of {group}"),
                };
                let secret = if p.get("secret") == Some(&Value::Bool(true)) {
                    " (secret)"
                } else {
                    ""
                };
                [
                    format!("  {}", ps("name")),
                    need,
                    format!("{}{secret}", ps("description")),
                ]
            })
            .collect();
        output::table(&["  KEY", "NEED", "DESCRIPTION"], &rows);
    }
    Ok(true)
}

/// The interfaces a type offers (not null in its description).
fn offered(t: &Value) -> Vec<String> {
    INTERFACES
        .into_iter()
        .filter(|i| {
            t.pointer(&format!("/interfaces/{i}"))
                .is_some_and(|v| !v.is_null())
        })
        .map(str::to_string)
        .collect()
}
