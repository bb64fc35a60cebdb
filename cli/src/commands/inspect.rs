//! `inventory`, `vitals`, `eventlog`, `beacon`, `health`: one line per
//! fact, each starting with the node's name (as xCAT's `rinv` and
//! `rvitals` print), so `grep` and `sort` work on the output; a failed
//! node is `node: error`, and the summary counts nodes.

use std::io::Write;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use xcat3_common::inspect::{EventLog, HealthReport, Inventory, Reading};
use xcat3_common::noderange::natural_cmp;

use super::nodes::{gather, range_q};
use crate::client::{Client, encode};
use crate::output;

/// Prints each node's lines (`render` for a result document, the text for
/// a failure), naturally sorted, then the summary. True when all succeeded.
fn print_nodes(reply: &Value, json: bool, render: impl Fn(&Value) -> Vec<String>) -> bool {
    let failed = |n: &str| reply.pointer(&format!("/error_kinds/{n}")).is_some();
    let Some(nodes) = reply.get("nodes").and_then(Value::as_object) else {
        return false;
    };
    let ok = nodes.keys().filter(|n| !failed(n)).count();
    if json {
        output::print_json(reply);
        return ok == nodes.len();
    }
    let mut names: Vec<&String> = nodes.keys().collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for n in names {
        let v = &nodes[n.as_str()];
        let lines = match v.as_str() {
            Some(text) => vec![text.to_string()],
            None if failed(n) => vec![v.to_string()],
            None => render(v),
        };
        for l in lines {
            let _ = writeln!(out, "{n}: {l}");
        }
    }
    let _ = writeln!(out, "\nSuccess: {ok}  Total: {}", nodes.len());
    ok == nodes.len()
}

fn inventory_lines(v: &Value) -> Vec<String> {
    let Ok(inv) = Inventory::deserialize(v) else {
        return vec![v.to_string()];
    };
    let mut out = Vec::new();
    for (section, fields) in [
        ("bmc", &inv.bmc),
        ("system", &inv.system),
        ("board", &inv.board),
        ("chassis", &inv.chassis),
        ("firmware", &inv.firmware),
    ] {
        out.extend(fields.iter().map(|(k, v)| format!("{section}.{k}: {v}")));
    }
    for (what, list) in [
        ("processor", &inv.processors),
        ("memory", &inv.memory),
        ("storage", &inv.storage),
    ] {
        for (i, f) in list.iter().enumerate() {
            let parts: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push(format!("{what}[{i}]: {}", parts.join(" ")));
        }
    }
    out.extend(inv.macs.iter().map(|m| format!("mac: {m}")));
    if let Some(c) = &inv.nics {
        out.extend(
            c.missing
                .iter()
                .map(|m| format!("nic not found in hardware: {m}")),
        );
        out.extend(c.unknown.iter().map(|m| format!("mac without a nic: {m}")));
    }
    out.extend(inv.notes.iter().map(|n| format!("note: {n}")));
    if let Some(at) = v.get("read_at").and_then(Value::as_str) {
        out.push(format!("read_at: {at}"));
    }
    out
}

/// `inventory NODERANGE [--refresh]`.
pub async fn inventory(c: &Client, range: &str, refresh: bool, json: bool) -> anyhow::Result<bool> {
    let refresh = if refresh { "&refresh=true" } else { "" };
    let path = format!("/nodes/inventory?{}{refresh}", range_q(range));
    let (reply, _) = gather(c, Method::GET, &path, None).await?;
    Ok(print_nodes(&reply, json, inventory_lines))
}

fn vitals_lines(v: &Value) -> Vec<String> {
    match Vec::<Reading>::deserialize(v) {
        Ok(list) if list.is_empty() => vec!["no sensors".into()],
        Ok(list) => list
            .iter()
            .map(|r| format!("{}: {} ({})", r.name, r.value_text(), r.status))
            .collect(),
        Err(_) => vec![v.to_string()],
    }
}

/// `vitals NODERANGE [temp|fan|voltage|power|all]`.
pub async fn vitals(c: &Client, range: &str, which: &str, json: bool) -> anyhow::Result<bool> {
    let path = format!("/nodes/vitals?{}&sensors={}", range_q(range), encode(which));
    let (reply, _) = gather(c, Method::GET, &path, None).await?;
    Ok(print_nodes(&reply, json, vitals_lines))
}

fn time_text(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

fn eventlog_lines(v: &Value) -> Vec<String> {
    let Ok(log) = EventLog::deserialize(v) else {
        return vec![v.to_string()];
    };
    let mut out: Vec<String> = log
        .events
        .iter()
        .map(|e| {
            format!(
                "{} {} | {} | {}{} [{}]",
                e.id,
                time_text(e.time),
                e.source,
                e.message,
                if e.asserted { "" } else { " (deasserted)" },
                e.severity.as_str()
            )
        })
        .collect();
    out.push(format!(
        "{} of {} entries{}",
        log.events.len(),
        log.total,
        if log.cleared { "; log cleared" } else { "" }
    ));
    out
}

/// `eventlog NODERANGE [-n N] [--clear]`.
pub async fn eventlog(
    c: &Client,
    range: &str,
    count: u32,
    clear: bool,
    json: bool,
) -> anyhow::Result<bool> {
    let method = if clear { Method::DELETE } else { Method::GET };
    let path = format!("/nodes/eventlog?{}&count={count}", range_q(range));
    let (reply, _) = gather(c, method, &path, None).await?;
    Ok(print_nodes(&reply, json, eventlog_lines))
}

/// `beacon NODERANGE on|off|blink`.
pub async fn beacon(c: &Client, range: &str, state: &str, json: bool) -> anyhow::Result<bool> {
    let path = format!("/nodes/beacon?{}&target={}", range_q(range), encode(state));
    let (reply, _) = gather(c, Method::PUT, &path, None).await?;
    Ok(print_nodes(&reply, json, |v| vec![v.to_string()]))
}

fn health_lines(v: &Value) -> Vec<String> {
    match HealthReport::deserialize(v) {
        Ok(r) if r.reasons.is_empty() => vec![r.health.as_str().into()],
        Ok(r) => vec![format!("{}: {}", r.health.as_str(), r.reasons.join("; "))],
        Err(_) => vec![v.to_string()],
    }
}

/// `health NODERANGE`.
pub async fn health(c: &Client, range: &str, json: bool) -> anyhow::Result<bool> {
    let path = format!("/nodes/health?{}", range_q(range));
    let (reply, _) = gather(c, Method::GET, &path, None).await?;
    Ok(print_nodes(&reply, json, health_lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_print_one_per_line() {
        let v = json!({"bmc": {"firmware": "1.00"}, "system": {"model": "X", "serial": "S1"},
            "processors": [{"cores": "8", "model": "Xeon"}], "notes": ["no FRU"],
            "read_at": "2026-12-01T10:00:00Z"});
        assert_eq!(
            inventory_lines(&v),
            [
                "bmc.firmware: 1.00",
                "system.model: X",
                "system.serial: S1",
                "processor[0]: cores=8 model=Xeon",
                "note: no FRU",
                "read_at: 2026-12-01T10:00:00Z"
            ]
        );
        let r = json!([{"name": "FAN1", "kind": "fan", "value": 5600.0, "unit": "RPM", "status": "ok"},
            {"name": "CPU2 Temp", "kind": "temp", "unit": "degrees C", "status": "na"}]);
        assert_eq!(
            vitals_lines(&r),
            ["FAN1: 5600 RPM (ok)", "CPU2 Temp: na (na)"]
        );
    }
}
