//! The v1 wire shapes, typed. Request bodies are read through these types
//! before anything is written (a body that is not of this shape is a 400
//! naming the field), and `openapi.rs` derives the document from them, so
//! the document and what the API accepts cannot drift apart.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use utoipa::ToSchema;
use xcat3_common::inspect::{EventLog, HealthReport, Inventory, Reading};
use xcat3_common::model::{Arch, Mgt, Netboot};
use xcat3_common::rpc::ErrorKind;

use crate::error::ApiError;

/// Reads `body` as a `T`, or answers 400 naming the first field that is not
/// of the documented shape (`nodes[3].mgt: ...`).
pub fn read<'a, T: Deserialize<'a>>(body: &'a Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "request body".to_string()
        } else {
            path
        };
        ApiError::bad_request(format!("{}{at}: {}", node_named(body, &at), e.into_inner()))
    })
}

/// `node NAME: ` when `at` is inside `nodes[i]` and that entry has a name.
fn node_named(body: &Value, at: &str) -> String {
    let index = at
        .strip_prefix("nodes[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(i, _)| i.parse::<usize>().ok());
    match index
        .and_then(|i| body["nodes"][i]["name"].as_str())
        .filter(|n| !n.is_empty())
    {
        Some(name) => format!("node {name}: "),
        None => String::new(),
    }
}

/// A JSON object whose keys and values the handler checks itself (driver
/// settings, `extra`): the shape check only says it is an object, without
/// copying it.
pub struct AnyObject;

impl utoipa::PartialSchema for AnyObject {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        xcat3_common::schema::from_json(serde_json::json!({"type": "object"}))
    }
}
impl utoipa::ToSchema for AnyObject {}

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<AnyObject, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(V)
    }
}

/// A node's groups: a list, or one string `"a,b"`.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum GroupList {
    List(Vec<String>),
    Text(String),
}

impl<'de> Deserialize<'de> for GroupList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(GroupList::Text(s)),
            Value::Array(a) if a.iter().all(Value::is_string) => Ok(GroupList::List(
                a.into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            )),
            _ => Err(serde::de::Error::custom(
                "must be a list of group names or a comma-separated string",
            )),
        }
    }
}

/// A MAC address in one of the spellings `model::normalize_mac` accepts;
/// read through it, so the pattern and the parser agree.
pub struct Mac;

/// The spellings of a MAC: `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`,
/// `aabb.ccdd.eeff`, `aabbccddeeff`.
pub const MAC_PATTERN: &str = "^([0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}[.][0-9A-Fa-f]{4}[.][0-9A-Fa-f]{4}|[0-9A-Fa-f]{12})$";

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        // The spelling only: an all-zero or broadcast MAC is refused for
        // its node alone, with the rest of what only the node can judge.
        xcat3_common::model::mac_digits("mac", &text)
            .map(|_| Mac)
            .map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl utoipa::PartialSchema for Mac {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let v = serde_json::json!({"type": "string", "pattern": MAC_PATTERN,
                                   "example": "52:54:00:12:34:56"});
        xcat3_common::schema::from_json(v)
    }
}
impl ToSchema for Mac {}

/// A network interface as written.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NicIn {
    /// Kept across export and import; generated when absent.
    pub uuid: Option<uuid::Uuid>,
    pub name: Option<String>,
    pub mac: Mac,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub primary: Option<bool>,
    pub extra: Option<AnyObject>,
}

/// `nics_info` of a node.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NicsIn {
    pub nics: Option<Vec<NicIn>>,
}

/// A node as written (POST /v1/nodes). Values the shape allows may still
/// be refused for that node alone, with its own error in the reply: a name
/// that is not a DNS host name or is taken, a `control_info` key no
/// interface of its `mgt` reads, a MAC already used, an IP in no network.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeIn {
    /// A DNS host name; not `info`, `power`, `provision`, `boot_device`,
    /// `callback` or `export`.
    pub name: String,
    pub mgt: Option<Mgt>,
    pub netboot: Option<Netboot>,
    pub arch: Option<Arch>,
    #[serde(rename = "type")]
    pub node_type: Option<String>,
    /// Driver settings (GET /v1/drivers lists the keys each `mgt` reads);
    /// secrets are write-only.
    pub control_info: Option<AnyObject>,
    pub console_info: Option<AnyObject>,
    pub nics_info: Option<NicsIn>,
    /// Groups the node inherits from, first one first.
    pub groups: Option<GroupList>,
}

/// POST /v1/nodes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodesCreate {
    #[schema(min_items = 1)]
    pub nodes: Vec<NodeIn>,
}

/// A JSON patch operation.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    Add,
    Replace,
    Remove,
}

/// One JSON patch (RFC 6902 subset).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub op: PatchOp,
    /// `/field` or `/control_info/KEY` (a JSON pointer).
    #[schema(example = "/control_info/bmc_address", pattern = "^(/[^/]+)+$")]
    pub path: String,
    /// Absent for `remove`.
    #[schema(value_type = Option<serde_json::Value>)]
    pub value: Option<IgnoredValue>,
}

/// Any JSON value, skipped by the shape check.
pub struct IgnoredValue;

impl<'de> Deserialize<'de> for IgnoredValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| IgnoredValue)
    }
}

/// PATCH /v1/nodes: the patches, applied to every node of `?noderange=`
/// (v1 clients may name them in `nodes` instead).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodesPatch {
    #[schema(min_items = 1)]
    pub patches: Vec<Patch>,
    #[schema(ignore)]
    #[serde(default)]
    pub nodes: Option<IgnoredValue>,
}

/// The fault body of every error reply (v1's shape).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Fault {
    /// `Client` for a 4xx, `Server` for a 5xx.
    pub faultcode: String,
    /// What was wrong, naming the node and the field.
    pub faultstring: String,
    pub debuginfo: Option<String>,
}

/// Per-node results of a multi-node request: `ok`, `on`, `deleted`, ... or
/// the node's error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NodeResults {
    pub nodes: BTreeMap<String, String>,
    /// With `Accept: application/x-ndjson`, and for inspection replies:
    /// the kind of each failed node's error.
    pub error_kinds: Option<BTreeMap<String, ErrorKind>>,
}

/// A node's value in an `exec` or `copy` reply: its outcome, or its error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PerNodeOutcome {
    pub nodes: BTreeMap<String, OutcomeOrError>,
    pub error_kinds: Option<BTreeMap<String, ErrorKind>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum OutcomeOrError {
    Outcome(xcat3_common::exec::Outcome),
    Error(String),
}

/// `GET /v1/scripts`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ScriptList {
    pub scripts: Vec<ScriptSummary>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ScriptSummary {
    pub name: String,
    /// Bytes.
    pub size: i64,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

/// The cluster's SSH public key.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SshKey {
    /// `ssh-ed25519 AAAA... xcat3`: put it into `authorized_keys`.
    pub public_key: String,
}

/// A node's value in an inspection reply: its document, or its error.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = PerNodeInventory)]
pub struct PerNodeInventory {
    pub nodes: BTreeMap<String, InventoryOrError>,
    pub error_kinds: Option<BTreeMap<String, ErrorKind>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum InventoryOrError {
    Inventory(Box<StoredInventory>),
    Error(String),
}

/// An inventory as stored, with when it was read.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StoredInventory {
    #[serde(flatten)]
    pub inventory: Inventory,
    #[schema(format = DateTime)]
    pub read_at: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PerNodeVitals {
    pub nodes: BTreeMap<String, VitalsOrError>,
    pub error_kinds: Option<BTreeMap<String, ErrorKind>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum VitalsOrError {
    Readings(Vec<Reading>),
    Error(String),
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PerNodeEventLog {
    pub nodes: BTreeMap<String, EventLogOrError>,
    pub error_kinds: Option<BTreeMap<String, ErrorKind>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum EventLogOrError {
    Log(EventLog),
    Error(String),
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PerNodeHealth {
    pub nodes: BTreeMap<String, HealthOrError>,
    pub error_kinds: Option<BTreeMap<String, ErrorKind>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum HealthOrError {
    Report(HealthReport),
    Error(String),
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PerNodeConsole {
    pub nodes: BTreeMap<String, ConsoleOrError>,
    pub error_kinds: Option<BTreeMap<String, ErrorKind>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum ConsoleOrError {
    State(xcat3_common::console::ConsoleState),
    Error(String),
}

/// A nic as shown.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NicOut {
    #[schema(format = Uuid)]
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub mac: Option<String>,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub primary: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub extra: Option<Value>,
    /// The node it belongs to (nic routes only).
    pub node: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NicsOut {
    pub nics: Vec<NicOut>,
}

/// A node as shown; `?fields=` picks which fields appear.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NodeOut {
    pub name: Option<String>,
    pub mgt: Option<String>,
    pub netboot: Option<String>,
    #[serde(rename = "type")]
    pub node_type: Option<String>,
    pub arch: Option<String>,
    /// Provisioning state: available, dhcp, deploying, deployed, deploy failed, booted.
    pub state: Option<String>,
    pub last_error: Option<String>,
    /// The last step of a boot or image write: image fetched, root
    /// mounted, agent up, installing, done.
    pub deploy_step: Option<String>,
    /// A temporary guest (`mkvm --expire-after`): when its conductor
    /// removes it (disks too) and deletes the node.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// The last known power state (actions and the periodic sync keep it).
    pub power_state: Option<String>,
    /// The last health verdict.
    pub health: Option<String>,
    /// The conductor holding the node's lock, while an action runs.
    pub reservation: Option<String>,
    /// Secrets (`*password*`, `*token*`, `key_contents`) shown as `******`.
    #[schema(value_type = Option<Object>)]
    pub control_info: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub console_info: Option<Value>,
    pub nics_info: Option<NicsOut>,
    pub conductor: Option<String>,
    pub osimage: Option<String>,
    pub groups: Option<Vec<String>>,
    /// Field or `control_info.KEY` -> the group its value came from.
    pub inherited: Option<BTreeMap<String, String>>,
    /// Only with `fields=inventory`: the stored inventory.
    pub inventory: Option<StoredInventory>,
}

/// A group as written: attributes member nodes inherit where they set none.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct GroupIn {
    pub name: String,
    pub mgt: Option<Mgt>,
    pub netboot: Option<Netboot>,
    pub arch: Option<Arch>,
    #[serde(rename = "type")]
    pub node_type: Option<String>,
    pub control_info: Option<AnyObject>,
    pub console_info: Option<AnyObject>,
}

/// Timestamps and members of a stored group.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GroupOut {
    pub name: Option<String>,
    pub mgt: Option<String>,
    pub netboot: Option<String>,
    pub arch: Option<String>,
    #[serde(rename = "type")]
    pub node_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub control_info: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub console_info: Option<Value>,
    /// Member nodes as a noderange.
    pub members: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

/// A network as written (drives the DHCP subnets).
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct NetworkIn {
    /// 1-64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub name: String,
    #[schema(format = Ipv4)]
    pub subnet: Option<String>,
    /// Dotted (`255.255.255.0`); with `subnet`, the subnet's host bits are 0.
    #[schema(format = Ipv4)]
    pub netmask: Option<String>,
    #[schema(format = Ipv4)]
    pub gateway: Option<String>,
    /// Comma-separated IPs.
    pub nameservers: Option<String>,
    pub ntpservers: Option<String>,
    pub domain: Option<String>,
    /// `first-last`, both inside the subnet.
    #[schema(example = "10.0.0.100-10.0.0.200")]
    pub dynamic_range: Option<String>,
    #[schema(format = Ipv4)]
    pub next_server: Option<String>,
    pub extra: Option<AnyObject>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NetworkOut {
    pub name: Option<String>,
    pub subnet: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub nameservers: Option<String>,
    pub ntpservers: Option<String>,
    pub domain: Option<String>,
    pub dynamic_range: Option<String>,
    pub next_server: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub extra: Option<Value>,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

/// A password entry (`system`: the root password deployed nodes get).
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct PasswdIn {
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub key: String,
    pub username: Option<String>,
    /// Write-only: replies show `******`.
    #[schema(max_length = 1024, write_only)]
    pub password: Option<String>,
    pub crypt_method: Option<CryptMethod>,
}

/// How a password is hashed for the installer.
pub struct CryptMethod;
xcat3_common::word_schema!(
    CryptMethod,
    xcat3_common::model::PasswdSpec::CRYPT_METHODS,
    ""
);

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PasswdOut {
    pub id: Option<i64>,
    pub key: Option<String>,
    pub username: Option<String>,
    /// Always `******` when set.
    pub password: Option<String>,
    pub crypt_method: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

/// A nic created on its own (POST /v1/nics): its node by name or id.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct NicCreate {
    pub uuid: Option<uuid::Uuid>,
    pub name: Option<String>,
    pub mac: Mac,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub primary: Option<bool>,
    pub extra: Option<AnyObject>,
    /// The node's name (or give `node_id`).
    pub node: Option<String>,
    pub node_id: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OsImageOut {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub arch: Option<String>,
    pub ver: Option<String>,
    pub distro: Option<String>,
    pub profile: Option<String>,
    #[serde(rename = "type")]
    pub image_type: Option<String>,
    pub provmethod: Option<String>,
    pub rootfstype: Option<String>,
    pub orig_name: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServiceOut {
    pub id: Option<i64>,
    pub hostname: Option<String>,
    #[serde(rename = "type")]
    pub service_type: Option<String>,
    pub online: Option<bool>,
    pub workers: Option<i64>,
    /// Nodes being worked on at the last heartbeat.
    pub in_flight: Option<i64>,
    /// Conductors: how many nodes the ring gives them now.
    pub nodes: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

/// One bulk action in the history.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RequestSummary {
    pub id: String,
    #[schema(example = "power on")]
    pub action: String,
    /// The token's name.
    pub requested_by: Option<String>,
    pub nodes: i64,
    /// Null while running.
    pub failed: Option<i64>,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RequestList {
    pub requests: Vec<RequestSummary>,
}

/// One bulk action with every node's result.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RequestDetail {
    #[serde(flatten)]
    pub summary: RequestSummary,
    pub results: BTreeMap<String, String>,
    pub failed_nodes: Vec<String>,
    pub error_kinds: BTreeMap<String, ErrorKind>,
}

/// mkvm (POST /v1/nodes/vm): guests named by `?noderange=` (or `nodes`),
/// placed on `hosts` by free memory, or where they already live.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct VmCreate {
    /// Noderange of hypervisors (`type=hypervisor`).
    pub hosts: Option<String>,
    /// MiB (default 1024).
    #[schema(minimum = 1)]
    pub memory: Option<u64>,
    #[schema(minimum = 1)]
    pub cpus: Option<u32>,
    /// New qcow2 disk size, e.g. `20G`.
    pub disk: Option<String>,
    /// Backing image path on the hypervisor (qcow2 overlay).
    pub disk_image: Option<String>,
    /// libvirt network NAME or `bridge:BRIDGE`.
    pub network: Option<String>,
    /// libvirt storage pool (default `default`).
    pub pool: Option<String>,
    /// Boot order, e.g. `network,hd`.
    pub boot: Option<String>,
    /// A temporary guest: removed (disks too) and deleted this long after
    /// it was made: `90s`, `30m`, `8h`, `7d`, `1h30m`, or seconds.
    pub expire_after: Option<String>,
}

/// clonevm (POST /v1/nodes/vm/clone).
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct VmClone {
    /// The shut-off guest node to copy.
    pub source: String,
    /// As for mkvm: temporary clones.
    pub expire_after: Option<String>,
}

/// Lists of names (`{"nodes": [...]}`), with the names of a noderange
/// that are not nodes.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NodeNameList {
    pub nodes: Vec<String>,
    /// Names of the noderange with no node, as a noderange.
    pub missing: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NodeList {
    pub nodes: Vec<NodeOut>,
    pub missing: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NodeExport {
    pub nodes: Vec<NodeOut>,
    pub groups: Vec<GroupOut>,
    pub missing: Option<String>,
}

/// GET /v1/ring.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Placement {
    /// Node -> the conductor owning it in the ring.
    pub nodes: BTreeMap<String, String>,
}

/// A schema for a query value built from the list its handler checks.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident = $fn:ident($values:expr, $description:expr)) => {
        $(#[$doc])*
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                xcat3_common::schema::$fn($values, $description)
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

words!(
    NodeFields = word_list(
        crate::view::NODE_FIELDS,
        "fields to show (`nics` = `nics_info`, `control` = `control_info`; `inventory` only when asked)"
    )
);
words!(GroupFields = word_list(crate::view::GROUP_FIELDS, "fields to show"));
words!(NicFields = word_list(crate::view::NIC_FIELDS, "fields to show"));
words!(NetworkFields = word_list(crate::view::NETWORK_FIELDS, "fields to show"));
words!(OsImageFields = word_list(crate::view::OSIMAGE_FIELDS, "fields to show"));
words!(PasswdFields = word_list(crate::view::PASSWD_FIELDS, "fields to show"));
words!(
    ProvisionWord = words(
        xcat3_common::rpc::ProvisionTarget::ALL,
        "dhcp: reservation and boot files (boot from disk); nodeset: install an OS; un_dhcp / un_nodeset: remove them"
    )
);
words!(SensorWord = words(xcat3_common::inspect::SensorKind::CHOICES, "which sensors"));
words!(
    StepWord = words(
        xcat3_common::agent::Step::NAMES,
        "a step of a boot or image write"
    )
);
words!(DistroWord = words(crate::genimage::DISTROS, "the Debian release to build from"));
words!(
    ImageKindWord = words(
        &["stateless", "image"],
        "stateless: booted into RAM at every start; image: written to control_info.install_disk"
    )
);
words!(
    StateWord = words(
        xcat3_common::model::ProvisionState::ALL,
        "provisioning state"
    )
);
words!(PowerStateWord = words(crate::routes::nodes::POWER_STATES, "last known power state"));
words!(HealthWord = words(crate::routes::nodes::HEALTH_STATES, "last health verdict"));

/// A noderange (`rack[1-2]n[01-48],-rack1n07`, a group, `/regex/`).
pub struct NodeRange;
impl utoipa::PartialSchema for NodeRange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let v = serde_json::json!({"type": "string", "minLength": 1,
            "example": "rack[1-2]n[01-48],-rack1n07"});
        xcat3_common::schema::from_json(v)
    }
}
impl utoipa::ToSchema for NodeRange {}

/// `{"<resource>": {"<name>": "ok"}}`: what a single create answers.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Created(pub BTreeMap<String, BTreeMap<String, String>>);

/// POST /v1/nics: `{"<mac>": "ok"}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MacCreated(pub BTreeMap<String, String>);

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GroupListOut {
    pub groups: Vec<GroupOut>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NetworkListOut {
    pub networks: Vec<NetworkOut>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PasswdListOut {
    pub passwds: Vec<PasswdOut>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NicListOut {
    pub nics: Vec<NicOut>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OsImageListOut {
    pub images: Vec<OsImageOut>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServiceListOut {
    pub services: Vec<ServiceOut>,
}
