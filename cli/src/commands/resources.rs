//! Single-resource commands: groups, networks, nics, passwds, osimages,
//! services.

use anyhow::bail;
use reqwest::Method;
use serde_json::{Map, Value};

use crate::client::{Client, encode};
use crate::{kv, output};

/// What differs between the single-resource families.
pub struct Kind {
    /// Path under /v1 (`/networks`).
    path: &'static str,
    /// The list key in GET replies (`networks`, `images`).
    list_key: &'static str,
    /// The identifying field (`name`, `key`, `uuid`).
    id_field: &'static str,
    /// The word after each listed item: `mgmt (network)`.
    label: &'static str,
}

pub const NETWORK: Kind = Kind {
    path: "/networks",
    list_key: "networks",
    id_field: "name",
    label: "network",
};
pub const GROUP: Kind = Kind {
    path: "/groups",
    list_key: "groups",
    id_field: "name",
    label: "group",
};
pub const NIC: Kind = Kind {
    path: "/nics",
    list_key: "nics",
    id_field: "uuid",
    label: "uuid",
};
pub const PASSWD: Kind = Kind {
    path: "/passwds",
    list_key: "passwds",
    id_field: "key",
    label: "passwd",
};
pub const OSIMAGE: Kind = Kind {
    path: "/osimages",
    list_key: "images",
    id_field: "name",
    label: "osimage",
};

fn fields_query(fields: Option<&str>) -> String {
    fields
        .map(|f| format!("?fields={}", encode(f)))
        .unwrap_or_default()
}

/// `key=value` where only structured keys are JSON: a nameserver or an IP
/// is text even when it would parse as a number.
fn typed_kv(arg: &str) -> anyhow::Result<(String, Value)> {
    let (key, raw) = kv::split_raw(arg)?;
    let value = match key.as_str() {
        "primary" | "extra" | "node_id" => kv::decode(raw),
        _ => Value::String(raw.to_string()),
    };
    Ok((key, value))
}

pub async fn list(c: &Client, k: &Kind, json: bool) -> anyhow::Result<bool> {
    let reply = c.get(k.path).await?;
    if json {
        output::print_json(&reply);
        return Ok(true);
    }
    let items = reply
        .get(k.list_key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        println!("Could not find any resource.");
        return Ok(true);
    }
    output::lines(items.iter().map(|i| {
        let id = i.get(k.id_field).and_then(Value::as_str).unwrap_or("?");
        match i.get("mac").and_then(Value::as_str) {
            Some(mac) if k.id_field == "uuid" => format!("{id} (uuid) {mac} (mac)"),
            _ => format!("{id} ({})", k.label),
        }
    }));
    Ok(true)
}

pub async fn show(c: &Client, k: &Kind, id: &str, fields: Option<&str>) -> anyhow::Result<bool> {
    let reply = c
        .get(&format!(
            "{}/{}{}",
            k.path,
            encode(id),
            fields_query(fields)
        ))
        .await?;
    output::print_json(&reply);
    Ok(true)
}

pub async fn create(c: &Client, k: &Kind, id: &str, attrs: &[String]) -> anyhow::Result<bool> {
    let mut body = Map::new();
    body.insert(k.id_field.to_string(), Value::String(id.to_string()));
    for a in attrs {
        let (key, v) = typed_kv(a)?;
        body.insert(key, v);
    }
    let reply = c
        .call(Method::POST, k.path, Some(&Value::Object(body)))
        .await?;
    output::print_json(&reply.body);
    Ok(true)
}

/// `group-create NAME mgt=.. -c k=v,..`: the node attributes a group
/// can hold, read as `create` reads them.
pub async fn group_create(
    c: &Client,
    name: &str,
    attrs: &[String],
    control: Option<&str>,
) -> anyhow::Result<bool> {
    const FIELDS: &[&str] = &["arch", "netboot", "mgt", "type"];
    let mut body = super::nodes::attributes("group-create", attrs, control, FIELDS)?;
    body.insert("name".into(), Value::String(name.to_string()));
    let reply = c
        .call(Method::POST, GROUP.path, Some(&Value::Object(body)))
        .await?;
    output::print_json(&reply.body);
    Ok(true)
}

pub async fn update(c: &Client, k: &Kind, id: &str, attrs: &[String]) -> anyhow::Result<bool> {
    let patches = kv::patches(attrs, &[])?;
    let reply = c
        .call(
            Method::PATCH,
            &format!("{}/{}", k.path, encode(id)),
            Some(&Value::Array(patches)),
        )
        .await?;
    output::print_json(&reply.body);
    Ok(true)
}

pub async fn delete(c: &Client, k: &Kind, id: &str) -> anyhow::Result<bool> {
    c.call(Method::DELETE, &format!("{}/{}", k.path, encode(id)), None)
        .await?;
    println!("{id} deleted");
    Ok(true)
}

pub async fn nic_create(c: &Client, attrs: &[String]) -> anyhow::Result<bool> {
    let mut body = Map::new();
    for a in attrs {
        let (key, v) = typed_kv(a)?;
        body.insert(key, v);
    }
    let reply = c
        .call(Method::POST, "/nics", Some(&Value::Object(body)))
        .await?;
    output::print_json(&reply.body);
    Ok(true)
}

pub async fn nic_show(
    c: &Client,
    uuid: Option<&str>,
    mac: Option<&str>,
    fields: Option<&str>,
) -> anyhow::Result<bool> {
    let reply = match (uuid, mac) {
        (Some(u), None) => {
            c.get(&format!("/nics/{}{}", encode(u), fields_query(fields)))
                .await?
        }
        (None, Some(m)) => {
            let f = fields
                .map(|f| format!("&fields={}", encode(f)))
                .unwrap_or_default();
            c.get(&format!("/nics/address?mac={}{f}", encode(m)))
                .await?
        }
        _ => bail!("give a nic UUID or --mac MAC"),
    };
    output::print_json(&reply);
    Ok(true)
}

fn service_line(s: &Value) -> String {
    let host = s.get("hostname").and_then(Value::as_str).unwrap_or("?");
    let ty = s.get("type").and_then(Value::as_str).unwrap_or("?");
    if s.get("online").and_then(Value::as_bool).unwrap_or(false) {
        let workers = s
            .get("workers")
            .filter(|w| !w.is_null())
            .map(|w| w.to_string())
            .unwrap_or_else(|| "1".into());
        let nodes = s.get("nodes").and_then(Value::as_u64).unwrap_or(0);
        let busy = s.get("in_flight").and_then(Value::as_u64).unwrap_or(0);
        format!("{host}({ty}): online workers: {workers} nodes: {nodes} in-flight: {busy}")
    } else {
        format!("{host}({ty}): offline")
    }
}

pub async fn service_list(c: &Client, json: bool) -> anyhow::Result<bool> {
    let reply = c.get("/services").await?;
    if json {
        output::print_json(&reply);
        return Ok(true);
    }
    let items = reply
        .get("services")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        println!("Could not find any resource.");
    }
    output::lines(items.iter().map(service_line));
    Ok(true)
}

pub async fn service_show(c: &Client, host: &str) -> anyhow::Result<bool> {
    let reply = c
        .get(&format!("/services/hostname?name={}", encode(host)))
        .await?;
    output::print_json(&reply);
    Ok(true)
}

/// `genimage NAME --distro D ...`: the build's progress, one line per
/// step (`[  12.3s] bootstrap: I: Retrieving libc6`), then
/// `NAME: created (kind, N MiB root, M MiB unpacked)`; false (exit 1)
/// when the build failed.
pub async fn genimage(c: &Client, body: &Value, json: bool) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let mut last: Option<Value> = None;
    c.stream(Method::POST, "/osimages/build", Some(body), |line| {
        if json {
            crate::output::print_json(&line);
        } else if let Some(step) = line.get("step").and_then(Value::as_str) {
            eprintln!(
                "[{:7.1}s] {step}: {}",
                started.elapsed().as_secs_f64(),
                line.get("message").and_then(Value::as_str).unwrap_or("")
            );
        }
        if line.get("step").is_none() {
            last = Some(line);
        }
    })
    .await?;
    let Some(last) = last else {
        anyhow::bail!("the API ended the build's reply without a result");
    };
    if let Some(e) = last.get("error").and_then(Value::as_str) {
        eprintln!("genimage failed: {e}");
        return Ok(false);
    }
    if !json {
        let img = &last["osimage"];
        println!(
            "{}: created ({} {}{}, {} MiB root archive, {} MiB unpacked, {} s)",
            img["name"].as_str().unwrap_or("?"),
            img["kind"].as_str().unwrap_or("?"),
            img["distro"].as_str().unwrap_or("?"),
            img["ver"].as_str().unwrap_or("?"),
            img["root_bytes"].as_u64().unwrap_or(0) >> 20,
            img["tree_bytes"].as_u64().unwrap_or(0) >> 20,
            img["build_seconds"].as_u64().unwrap_or(0),
        );
    }
    Ok(true)
}

/// `copycds ISO [-n NAME]`: uploads the ISO; prints `NAME: created
/// (distro version arch)` or `exists`.
pub async fn copycds(
    c: &Client,
    iso: &std::path::Path,
    name: Option<&str>,
    json: bool,
) -> anyhow::Result<bool> {
    let filename = iso
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload.iso".into());
    let mut path = format!("/osimages?filename={}", crate::client::encode(&filename));
    if let Some(n) = name {
        path.push_str(&format!("&name={}", crate::client::encode(n)));
    }
    let reply = c.upload(&path, iso).await?;
    if json {
        crate::output::print_json(&reply);
    } else {
        let s = |k: &str| {
            reply
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        println!(
            "{}: {} ({} {} {}, kernel {}, initrd {})",
            s("name"),
            s("result"),
            s("distro"),
            s("ver"),
            s("arch"),
            s("kernel"),
            s("initrd")
        );
    }
    Ok(true)
}
