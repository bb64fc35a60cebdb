//! Stored rows → v1 wire JSON. Kept apart from the entities so a column
//! rename never changes a reply. Every view masks secrets.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use xcat3_common::model::{MASK, mask_secrets};
use xcat3_db::entity::{network, nic, nodegroup, osimage, passwd, service};
use xcat3_db::nodes::{NodeRecord, group_list, parse_map};

/// Fields a node view can carry (`?fields=`); `nics` and `control` are the
/// v1 client's aliases.
pub const NODE_FIELDS: &[&str] = &[
    "name",
    "mgt",
    "netboot",
    "type",
    "arch",
    "state",
    "last_error",
    "deploy_step",
    "expires_at",
    "power_state",
    "health",
    "reservation",
    "control_info",
    "console_info",
    "nics_info",
    "nics",
    "control",
    "conductor",
    "osimage",
    "groups",
    "inherited",
    "inventory",
];

/// The stored inventory as a view shows it: the document plus `read_at`.
pub fn inventory(data: &str, read_at_ms: i64) -> Value {
    let mut v: Value = serde_json::from_str(data).unwrap_or_else(|_| json!({}));
    if let Some(at) = chrono::DateTime::from_timestamp_millis(read_at_ms) {
        v["read_at"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    v
}

/// Maps the client's aliases to field names.
pub fn canonical_node_fields(fields: Option<Vec<String>>) -> Option<Vec<String>> {
    fields.map(|f| {
        f.into_iter()
            .map(|x| match x.as_str() {
                "nics" => "nics_info".to_string(),
                "control" => "control_info".to_string(),
                _ => x,
            })
            .collect()
    })
}

fn masked(text: &str) -> Value {
    let mut m = parse_map(text);
    mask_secrets(&mut m);
    Value::Object(m)
}

pub fn nic_in_node(n: &nic::Model) -> Value {
    json!({
        "uuid": n.uuid, "name": n.name, "mac": n.mac, "ip": n.ip,
        "netmask": n.netmask, "primary": n.primary, "extra": masked(&n.extra),
    })
}

/// One node as v1 shows it: `conductor` and `osimage` (names) in place of
/// their ids, no `id` or timestamps.
pub fn node(rec: &NodeRecord, osimages: &HashMap<i64, String>, fields: Option<&[String]>) -> Value {
    let n = &rec.node;
    let want = |f: &str| fields.is_none_or(|fs| fs.iter().any(|x| x == f));
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        if want(k) {
            out.insert(k.to_string(), v);
        }
    };
    put("name", n.name.clone().into());
    put("mgt", n.mgt.clone().into());
    put("netboot", n.netboot.clone().into());
    put("type", n.node_type.clone().into());
    put("arch", n.arch.clone().into());
    put("state", n.state.clone().into());
    if n.last_error.is_some() {
        put("last_error", n.last_error.clone().into());
    }
    if n.deploy_step.is_some() {
        put("deploy_step", n.deploy_step.clone().into());
    }
    if let Some(t) = n.expires_at {
        put(
            "expires_at",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into(),
        );
    }
    put("power_state", n.power_state.clone().into());
    put("health", n.health.clone().into());
    put("reservation", n.reservation.clone().into());
    put("control_info", masked(&n.control_info));
    put("console_info", masked(&n.console_info));
    put(
        "nics_info",
        json!({"nics": rec.nics.iter().map(nic_in_node).collect::<Vec<_>>()}),
    );
    if let Some(c) = &n.conductor_affinity {
        put("conductor", c.clone().into());
    }
    if let Some(id) = n.osimage_id {
        put("osimage", osimages.get(&id).cloned().into());
    }
    put("groups", group_list(n.groups.as_deref()).into());
    if !rec.inherited.is_empty() {
        put("inherited", rec.inherited.to_json());
    }
    Value::Object(out)
}

pub const GROUP_FIELDS: &[&str] = &[
    "name",
    "mgt",
    "netboot",
    "arch",
    "type",
    "control_info",
    "console_info",
    "members",
    "created_at",
    "updated_at",
];

/// A group; `members` (a folded noderange) when the caller looked them up.
pub fn group(g: &nodegroup::Model, members: Option<String>, fields: Option<&[String]>) -> Value {
    let mut v = json!({
        "name": g.name, "mgt": g.mgt, "netboot": g.netboot, "arch": g.arch,
        "type": g.node_type, "control_info": masked(&g.control_info),
        "console_info": masked(&g.console_info),
        "created_at": stamp(g.created_at), "updated_at": stamp(g.updated_at),
    });
    if let Some(m) = members {
        v["members"] = m.into();
    }
    filter(v, fields)
}

pub const NIC_FIELDS: &[&str] = &[
    "uuid", "mac", "name", "ip", "netmask", "extra", "primary", "node",
];

pub fn nic(n: &nic::Model, node_name: &str, fields: Option<&[String]>) -> Value {
    let mut v = nic_in_node(n);
    v["node"] = node_name.into();
    filter(v, fields)
}

pub const NETWORK_FIELDS: &[&str] = &[
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
    "created_at",
    "updated_at",
];

pub fn network(n: &network::Model, fields: Option<&[String]>) -> Value {
    filter(
        json!({
            "name": n.name, "subnet": n.subnet, "netmask": n.netmask, "gateway": n.gateway,
            "nameservers": n.nameservers, "ntpservers": n.ntpservers, "domain": n.domain,
            "dynamic_range": n.dynamic_range, "next_server": n.next_server,
            "extra": masked(&n.extra), "created_at": stamp(n.created_at),
            "updated_at": stamp(n.updated_at),
        }),
        fields,
    )
}

pub const OSIMAGE_FIELDS: &[&str] = &[
    "id",
    "name",
    "arch",
    "ver",
    "distro",
    "profile",
    "type",
    "provmethod",
    "rootfstype",
    "orig_name",
    "created_at",
    "updated_at",
];

pub fn osimage(o: &osimage::Model, fields: Option<&[String]>) -> Value {
    filter(
        json!({
            "id": o.id, "name": o.name, "arch": o.arch, "ver": o.ver, "distro": o.distro,
            "profile": o.profile, "type": o.image_type, "provmethod": o.provmethod,
            "rootfstype": o.rootfstype, "orig_name": o.orig_name,
            "created_at": stamp(o.created_at), "updated_at": stamp(o.updated_at),
        }),
        fields,
    )
}

pub const PASSWD_FIELDS: &[&str] = &[
    "id",
    "key",
    "username",
    "password",
    "crypt_method",
    "created_at",
    "updated_at",
];

/// A password entry; the password itself is always masked.
pub fn passwd(p: &passwd::Model, fields: Option<&[String]>) -> Value {
    filter(
        json!({
            "id": p.id, "key": p.key, "username": p.username,
            "password": p.password.as_ref().map(|_| MASK),
            "crypt_method": p.crypt_method,
            "created_at": stamp(p.created_at), "updated_at": stamp(p.updated_at),
        }),
        fields,
    )
}

/// A service; `online` is false once its heartbeat is older than `timeout_s`.
pub fn service(s: &service::Model, timeout_s: u64, now: DateTime<Utc>) -> Value {
    let alive = s.online && (now - s.updated_at).num_seconds() < timeout_s as i64;
    json!({
        "hostname": s.hostname, "type": s.service_type, "online": alive,
        "workers": s.workers, "in_flight": if alive { s.in_flight } else { 0 },
        "created_at": stamp(s.created_at),
        "updated_at": stamp(s.updated_at),
    })
}

fn stamp(t: DateTime<Utc>) -> Value {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into()
}

fn filter(v: Value, fields: Option<&[String]>) -> Value {
    match (v, fields) {
        (Value::Object(m), Some(fs)) => {
            Value::Object(m.into_iter().filter(|(k, _)| fs.contains(k)).collect())
        }
        (v, _) => v,
    }
}
