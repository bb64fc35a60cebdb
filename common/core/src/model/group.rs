//! Node groups (xCAT's `nodegroup`): a name nodes list in their `groups`,
//! and attributes those nodes inherit where they set none themselves.
//!
//! A group's document is a node's writable fields without nics or groups
//! (`mgt`, `netboot`, `arch`, `type`, `control_info`, `console_info`),
//! validated exactly as a node's are. Inheritance is per field and, inside
//! `control_info` / `console_info`, per key: a node's own value wins, then
//! the first group in its list that sets it (xCAT's precedence).

use serde_json::{Map, Value};

use super::fields::{FieldError, check_hostname, check_node_name};
use super::node::NodeSpec;

/// Most groups one node may belong to.
pub const MAX_GROUPS_PER_NODE: usize = 32;

/// A validated group: its name and the attributes it gives its members.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// The attributes, as a node spec named like the group with no nics
    /// and no groups (so they are checked by the node's own rules).
    pub attrs: NodeSpec,
}

impl GroupSpec {
    /// Fields a group document may hold.
    pub const WRITABLE: &'static [&'static str] = &[
        "name",
        "mgt",
        "netboot",
        "arch",
        "type",
        "control_info",
        "console_info",
    ];

    /// Validates one group object. Errors name the field.
    pub fn from_json(value: &Value) -> Result<GroupSpec, FieldError> {
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new("group", "must be a JSON object"))?;
        if let Some(key) = obj.keys().find(|k| !Self::WRITABLE.contains(&k.as_str())) {
            let why = match key.as_str() {
                "nics_info" => "a group cannot hold nics (MACs are per node)".to_string(),
                "groups" => "groups do not nest".to_string(),
                _ => format!("unknown field (writable: {})", Self::WRITABLE.join(", ")),
            };
            return Err(FieldError::new(key, why));
        }
        let name = match obj.get("name") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => return Err(FieldError::new("name", "is required")),
            Some(_) => return Err(FieldError::new("name", "must be a string")),
        };
        check_node_name(&name)?;
        let attrs = NodeSpec::from_json(value)?;
        Ok(GroupSpec { name, attrs })
    }

    /// The group's document (the shape PATCH edits and `show` returns,
    /// secrets unmasked: callers mask).
    pub fn to_json(&self) -> Value {
        let mut doc = self.attrs.to_json();
        if let Some(o) = doc.as_object_mut() {
            o.remove("nics_info");
            o.remove("groups");
        }
        doc
    }
}

/// Parses a node's `groups`: a list of names, or xCAT's comma-separated
/// string (`"compute,rack3"`). Order is kept (it is the precedence);
/// a name given twice is an error.
pub fn parse_groups(value: Option<&Value>) -> Result<Vec<String>, FieldError> {
    let names: Vec<String> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| FieldError::new(format!("groups[{i}]"), "must be a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(FieldError::new(
                "groups",
                "must be a list of group names or a comma-separated string",
            ));
        }
    };
    if names.len() > MAX_GROUPS_PER_NODE {
        return Err(FieldError::new(
            "groups",
            format!("more than {MAX_GROUPS_PER_NODE} groups"),
        ));
    }
    for (i, n) in names.iter().enumerate() {
        check_hostname(&format!("groups[{i}]"), n)?;
        if names[..i].contains(n) {
            return Err(FieldError::new(
                format!("groups[{i}]"),
                format!("`{n}` is given twice"),
            ));
        }
    }
    Ok(names)
}

/// A node's scalar fields a group can give it, by wire name.
pub const INHERITED_FIELDS: &[&str] = &["mgt", "netboot", "arch", "type"];

/// What a node ends up with once its groups are applied, and where each
/// inherited value came from (`"mgt"` or `"control_info.bmc_username"`
/// → group name).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Inherited(pub Vec<(String, String)>);

impl Inherited {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `{"mgt": "compute", "control_info.bmc_username": "compute"}`.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(path, group)| (path.clone(), Value::String(group.clone())))
                .collect(),
        )
    }
}

/// One group's attributes as [`inherit`] reads them.
pub struct GroupAttrs<'a> {
    pub name: &'a str,
    /// In [`INHERITED_FIELDS`] order.
    pub scalars: [Option<&'a str>; 4],
    /// `control_info`, `console_info`.
    pub infos: [&'a Map<String, Value>; 2],
}

/// Fills the unset `scalars` (in [`INHERITED_FIELDS`] order) and the
/// missing keys of `infos` (`control_info`, `console_info`) from `groups`,
/// first group first. `groups` holds the node's groups in its order; a
/// group that does not exist is simply absent. Returns where each
/// inherited value came from.
pub fn inherit(
    scalars: &mut [&mut Option<String>; 4],
    infos: &mut [(&str, &mut Map<String, Value>); 2],
    groups: &[GroupAttrs<'_>],
) -> Inherited {
    let mut from = Vec::new();
    for (i, slot) in scalars.iter_mut().enumerate() {
        if slot.is_some() {
            continue;
        }
        if let Some((g, v)) = groups
            .iter()
            .find_map(|g| g.scalars[i].map(|v| (g.name, v)))
        {
            **slot = Some(v.to_string());
            from.push((INHERITED_FIELDS[i].to_string(), g.to_string()));
        }
    }
    for (i, (field, own)) in infos.iter_mut().enumerate() {
        for g in groups {
            for (key, value) in g.infos[i] {
                if !own.contains_key(key) {
                    own.insert(key.clone(), value.clone());
                    from.push((format!("{field}.{key}"), g.name.to_string()));
                }
            }
        }
    }
    Inherited(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_group_is_checked_like_a_node() {
        let g = GroupSpec::from_json(&json!({
            "name": "compute", "mgt": "ipmi",
            "control_info": {"bmc_username": "admin", "bmc_password": "pw"}
        }))
        .unwrap();
        assert_eq!(g.name, "compute");
        assert_eq!(g.attrs.mgt.map(|m| m.as_str()), Some("ipmi"));
        let e = GroupSpec::from_json(&json!({"name": "c", "mgt": "ipmi",
            "control_info": {"bmc_adress": "x"}}))
        .unwrap_err();
        assert!(e.to_string().contains("control_info.bmc_adress"), "{e}");
        let e = GroupSpec::from_json(&json!({"name": "c", "nics_info": {"nics": []}})).unwrap_err();
        assert!(e.to_string().starts_with("nics_info:"), "{e}");
        let e = GroupSpec::from_json(&json!({"name": "c", "groups": ["d"]})).unwrap_err();
        assert!(e.to_string().contains("do not nest"), "{e}");
        let e = GroupSpec::from_json(&json!({"mgt": "ipmi"})).unwrap_err();
        assert!(e.to_string().starts_with("name:"), "{e}");
    }

    #[test]
    fn groups_parse_from_a_list_or_xcat_string() {
        assert_eq!(
            parse_groups(Some(&json!("compute, rack3"))).unwrap(),
            ["compute", "rack3"]
        );
        assert_eq!(
            parse_groups(Some(&json!(["gpu", "rack1"]))).unwrap(),
            ["gpu", "rack1"]
        );
        assert!(parse_groups(Some(&json!(["a", "a"]))).is_err());
        assert!(parse_groups(Some(&json!(["bad name"]))).is_err());
        assert!(parse_groups(Some(&json!(7))).is_err());
        assert_eq!(parse_groups(None).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn own_values_win_then_the_first_group() {
        let (mut mgt, mut netboot, mut arch, mut ty) = (None, Some("pxe".to_string()), None, None);
        let mut control = Map::new();
        control.insert("bmc_address".into(), json!("10.0.0.1"));
        control.insert("bmc_username".into(), json!("own"));
        let mut console = Map::new();
        let gpu_c = json!({"bmc_username": "gpu", "bmc_password": "g"});
        let all_c = json!({"bmc_password": "a", "bmc_port": "624"});
        let empty = Map::new();
        let groups = [
            GroupAttrs {
                name: "gpu",
                scalars: [Some("redfish"), Some("ipxe"), None, None],
                infos: [gpu_c.as_object().unwrap(), &empty],
            },
            GroupAttrs {
                name: "all",
                scalars: [Some("ipmi"), None, Some("x86_64"), None],
                infos: [all_c.as_object().unwrap(), &empty],
            },
        ];
        let from = inherit(
            &mut [&mut mgt, &mut netboot, &mut arch, &mut ty],
            &mut [
                ("control_info", &mut control),
                ("console_info", &mut console),
            ],
            &groups,
        );
        assert_eq!(mgt.as_deref(), Some("redfish"));
        assert_eq!(netboot.as_deref(), Some("pxe"));
        assert_eq!(arch.as_deref(), Some("x86_64"));
        assert_eq!(ty, None);
        assert_eq!(control["bmc_username"], "own");
        assert_eq!(control["bmc_password"], "g");
        assert_eq!(control["bmc_port"], "624");
        assert_eq!(
            from.to_json(),
            json!({"mgt": "gpu", "arch": "all", "control_info.bmc_password": "gpu",
                   "control_info.bmc_port": "all"})
        );
    }
}
