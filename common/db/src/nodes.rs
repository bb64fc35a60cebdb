//! Bulk node (and nic) storage. A node is always written together with its
//! nics in one transaction: never half a node.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    Statement, TransactionTrait, Value,
};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::entity::{nic, node, node_inventory};
use super::secrets::{open_infos, seal_text};
use super::{Db, DbError, IN_CHUNK, placeholders, quote, retrying, rows_per_chunk};
use xcat3_common::model::{
    Arch, Inherited, Mgt, Netboot, NicSpec, NodeSpec, ProvisionState, tokens,
};

/// Per-node outcome of a bulk write: `Ok` or the message for that node.
pub type Outcomes = BTreeMap<String, Result<(), String>>;

/// A stored node with its nics.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub node: node::Model,
    pub nics: Vec<nic::Model>,
    /// Values the node's groups gave it (empty unless loaded with
    /// [`load_resolved`]; `node` then holds the resolved values).
    pub inherited: Inherited,
}

impl NodeRecord {
    /// The primary nic's MAC (the first nic's when none is marked), if
    /// the nics were loaded.
    pub fn primary_mac(&self) -> Option<String> {
        self.primary_nic().map(|n| n.mac.clone())
    }

    /// The primary nic (the first when none is marked), if the nics were
    /// loaded.
    pub fn primary_nic(&self) -> Option<&nic::Model> {
        self.nics.iter().find(|n| n.primary).or(self.nics.first())
    }

    /// The writable part, the document a PATCH edits.
    pub fn to_spec(&self) -> NodeSpec {
        let n = &self.node;
        NodeSpec {
            name: n.name.clone(),
            mgt: n.mgt.as_deref().and_then(|v| Mgt::parse("mgt", v).ok()),
            netboot: n
                .netboot
                .as_deref()
                .and_then(|v| Netboot::parse("netboot", v).ok()),
            arch: n.arch.as_deref().and_then(|v| Arch::parse("arch", v).ok()),
            node_type: n.node_type.clone(),
            control_info: parse_map(&n.control_info),
            console_info: parse_map(&n.console_info),
            nics: self.nics.iter().map(nic_spec).collect(),
            groups: group_list(n.groups.as_deref()),
        }
    }
}

/// A stored `groups` column as names, first one first.
pub fn group_list(stored: Option<&str>) -> Vec<String> {
    stored
        .unwrap_or("")
        .split(',')
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// Names as a `groups` column (NULL for none).
fn group_column(groups: &[String]) -> Option<String> {
    (!groups.is_empty()).then(|| groups.join(","))
}

fn nic_spec(n: &nic::Model) -> NicSpec {
    NicSpec {
        uuid: Uuid::parse_str(&n.uuid).unwrap_or_else(|_| Uuid::nil()),
        uuid_given: true,
        name: n.name.clone(),
        mac: n.mac.clone(),
        ip: n.ip.clone(),
        netmask: n.netmask.clone(),
        primary: n.primary,
        extra: parse_map(&n.extra),
    }
}

/// Rows per `UPDATE ... SET col = CASE key WHEN ? THEN ? ... END`: at most
/// [`CASE_ARMS`], and within the placeholder limit at `params_per_row`.
fn case_rows(params_per_row: usize) -> usize {
    CASE_ARMS.min(rows_per_chunk(params_per_row))
}

/// WHEN arms per CASE. SQLite compares a CASE's arms with each other while
/// it compiles the statement, so the cost grows with the square of the
/// arms: 2,000 arms made the first update of 10,000 nodes take 2.5 s
/// against 1.2 s with 1,000 (standalone, this machine); a power-state
/// record of 5,000 nodes in one CASE was slower still.
const CASE_ARMS: usize = 1_000;

/// A column value holding a JSON object's text, as the object.
fn object_of_text(v: &Value) -> Map<String, Json> {
    match v {
        Value::String(Some(t)) => parse_map(t),
        _ => Map::new(),
    }
}

/// Parses a stored JSON object column; an unreadable one reads as empty.
pub fn parse_map(s: &str) -> Map<String, Json> {
    serde_json::from_str(s).unwrap_or_default()
}

fn to_text(m: &Map<String, Json>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

/// All node names, in creation order.
pub async fn list_names(db: &Db) -> Result<Vec<String>, DbError> {
    Ok(node::Entity::find()
        .select_only()
        .column(node::Column::Name)
        .into_tuple::<String>()
        .all(db.conn())
        .await?)
}

/// Names of the nodes in `state` (`available` is stored as NULL).
pub async fn names_in_state(db: &Db, state: ProvisionState) -> Result<Vec<String>, DbError> {
    let q = node::Entity::find()
        .select_only()
        .column(node::Column::Name);
    let q = match state.column() {
        Some(s) => q.filter(node::Column::State.eq(s)),
        None => q.filter(
            sea_orm::Condition::any()
                .add(node::Column::State.is_null())
                .add(node::Column::State.eq("available")),
        ),
    };
    Ok(q.into_tuple::<String>().all(db.conn()).await?)
}

/// Names of the nodes whose last known power state is `power` (`on`,
/// `off`; `unknown` for nodes never read).
pub async fn names_with_power(db: &Db, power: &str) -> Result<Vec<String>, DbError> {
    let q = node::Entity::find()
        .select_only()
        .column(node::Column::Name);
    let q = match power {
        "unknown" => q.filter(node::Column::PowerState.is_null()),
        p => q.filter(node::Column::PowerState.eq(p)),
    };
    Ok(q.into_tuple::<String>().all(db.conn()).await?)
}

/// Names of nodes whose last health verdict is `health` (`unknown`:
/// never judged).
pub async fn names_with_health(db: &Db, health: &str) -> Result<Vec<String>, DbError> {
    let q = node::Entity::find()
        .select_only()
        .column(node::Column::Name);
    let q = match health {
        "unknown" => q.filter(node::Column::Health.is_null()),
        h => q.filter(node::Column::Health.eq(h)),
    };
    Ok(q.into_tuple::<String>().all(db.conn()).await?)
}

/// Which of `names` exist.
pub async fn existing(db: &Db, names: &[String]) -> Result<HashSet<String>, DbError> {
    existing_in(db.conn(), names).await
}

/// Sets (or with `None` clears) when the nodes `names` expire (temporary
/// guests).
pub async fn set_expiry(
    db: &Db,
    names: &[String],
    at: Option<DateTime<Utc>>,
) -> Result<(), DbError> {
    use sea_orm::sea_query::Expr;
    for chunk in names.chunks(IN_CHUNK) {
        retrying(|_| {
            node::Entity::update_many()
                .col_expr(node::Column::ExpiresAt, Expr::value(at))
                .filter(node::Column::Name.is_in(chunk.iter().cloned()))
                .exec(db.conn())
        })
        .await?;
    }
    Ok(())
}

/// Nodes past their `expires_at` at `now`: name and `control_info` (the
/// guest's `vm_host` places it in the ring).
pub async fn expired(db: &Db, now: DateTime<Utc>) -> Result<Vec<(String, String)>, DbError> {
    Ok(node::Entity::find()
        .select_only()
        .column(node::Column::Name)
        .column(node::Column::ControlInfo)
        .filter(node::Column::ExpiresAt.lte(now))
        .into_tuple()
        .all(db.conn())
        .await?)
}

/// The ids of those of `names` that exist, by name.
pub async fn ids(db: &Db, names: &[String]) -> Result<HashMap<String, i64>, DbError> {
    let mut out = HashMap::new();
    for chunk in names.chunks(IN_CHUNK) {
        let found: Vec<(String, i64)> = node::Entity::find()
            .select_only()
            .column(node::Column::Name)
            .column(node::Column::Id)
            .filter(node::Column::Name.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db.conn())
            .await?;
        out.extend(found);
    }
    Ok(out)
}

async fn existing_in<C: ConnectionTrait>(
    conn: &C,
    names: &[String],
) -> Result<HashSet<String>, DbError> {
    let mut out = HashSet::new();
    for chunk in names.chunks(IN_CHUNK) {
        let found: Vec<String> = node::Entity::find()
            .select_only()
            .column(node::Column::Name)
            .filter(node::Column::Name.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(found);
    }
    Ok(out)
}

/// Loads the named nodes (missing names are skipped) in the order given.
pub async fn load(db: &Db, names: &[String], with_nics: bool) -> Result<Vec<NodeRecord>, DbError> {
    let mut by_name: HashMap<String, node::Model> = HashMap::with_capacity(names.len());
    for chunk in names.chunks(IN_CHUNK) {
        let rows = node::Entity::find()
            .filter(node::Column::Name.is_in(chunk.iter().cloned()))
            .all(db.conn())
            .await?;
        by_name.extend(rows.into_iter().map(|n| (n.name.clone(), n)));
    }
    for n in by_name.values_mut() {
        open_infos(
            db,
            ("node", &n.name),
            &mut n.control_info,
            &mut n.console_info,
        )?;
    }
    let mut seen = HashSet::new();
    let mut records: Vec<NodeRecord> = names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .filter_map(|name| by_name.remove(name))
        .map(|node| NodeRecord {
            nics: Vec::new(),
            node,
            inherited: Inherited::default(),
        })
        .collect();
    if with_nics {
        load_nics(db, &mut records, |_| true).await?;
    }
    Ok(records)
}

/// [`load`], with each node's groups applied: `node` holds the values the
/// node acts with (its own, else its first group's that sets one) and
/// `inherited` says which came from a group. Groups are read in one query.
/// For reading and acting; a write edits the node's own values ([`load`]).
pub async fn load_resolved(
    db: &Db,
    names: &[String],
    with_nics: bool,
) -> Result<Vec<NodeRecord>, DbError> {
    let mut records = load(db, names, with_nics).await?;
    super::groups::resolve(db, &mut records).await?;
    Ok(records)
}

/// Fills in the nics (in creation order) of the records `wanted` picks.
pub async fn load_nics(
    db: &Db,
    records: &mut [NodeRecord],
    wanted: impl Fn(&node::Model) -> bool,
) -> Result<(), DbError> {
    let ids: Vec<i64> = records
        .iter()
        .filter(|r| wanted(&r.node))
        .map(|r| r.node.id)
        .collect();
    let mut nics_by_node: HashMap<i64, Vec<nic::Model>> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let rows = nic::Entity::find()
            .filter(nic::Column::NodeId.is_in(chunk.iter().copied()))
            .all(db.conn())
            .await?;
        for n in rows {
            nics_by_node.entry(n.node_id).or_default().push(n);
        }
    }
    for r in records.iter_mut() {
        if let Some(mut list) = nics_by_node.remove(&r.node.id) {
            list.sort_by_key(|n| n.id);
            r.nics = list;
        }
    }
    Ok(())
}

/// Creates nodes with their nics, all in one transaction. A node whose name
/// or MAC is taken (in the database or earlier in `specs`) gets its own
/// error; the rest are created.
pub async fn create(db: &Db, specs: &[NodeSpec]) -> Result<Outcomes, DbError> {
    // A concurrent request may take a name or MAC between our checks and the
    // insert (the unique keys catch that), or deadlock with ours on InnoDB's
    // index locks; the transaction rolled back whole, so re-run it.
    //
    // The first attempt is optimistic about MACs: it does not look up every
    // MAC before inserting (20,000 `IN` values for 10,000 nodes) and lets
    // the unique key object. If it does, the retry checks each MAC and
    // reports which node holds it.
    retrying(|attempt| try_create(db, specs, attempt > 0)).await
}

async fn try_create(db: &Db, specs: &[NodeSpec], check_macs: bool) -> Result<Outcomes, DbError> {
    let txn = db.conn().begin().await?;
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let existing = existing_in(&txn, &names).await?;
    let macs: Vec<String> = specs
        .iter()
        .flat_map(|s| s.nics.iter().map(|n| n.mac.clone()))
        .collect();
    // Only client-supplied uuids can collide; fresh v4 ones need no lookup.
    let uuids: Vec<String> = specs
        .iter()
        .flat_map(|s| {
            s.nics
                .iter()
                .filter(|n| n.uuid_given)
                .map(|n| n.uuid.to_string())
        })
        .collect();
    let used_macs = if check_macs {
        nic_owners(&txn, nic::Column::Mac, &macs).await?
    } else {
        HashMap::new()
    };
    let used_uuids = nic_owners(&txn, nic::Column::Uuid, &uuids).await?;

    let mut out = Outcomes::new();
    let mut claimed_macs: HashMap<String, String> = HashMap::new();
    let mut claimed_uuids: HashSet<String> = HashSet::new();
    let mut accepted: Vec<&NodeSpec> = Vec::with_capacity(specs.len());
    let groups = super::groups::existing_in(&txn, &names).await?;
    for spec in specs {
        if existing.contains(&spec.name) {
            out.insert(
                spec.name.clone(),
                Err("Error: duplicate name: a node with this name already exists".into()),
            );
            continue;
        }
        if groups.contains(&spec.name) {
            out.insert(
                spec.name.clone(),
                Err("Error: duplicate name: a group has this name (groups and nodes share noderanges)".into()),
            );
            continue;
        }
        match check_nic_conflicts(
            spec,
            None,
            &used_macs,
            &used_uuids,
            &claimed_macs,
            &claimed_uuids,
        ) {
            Err(e) => {
                out.insert(spec.name.clone(), Err(e));
            }
            Ok(()) => {
                for n in &spec.nics {
                    claimed_macs.insert(n.mac.clone(), spec.name.clone());
                    claimed_uuids.insert(n.uuid.to_string());
                }
                accepted.push(spec);
            }
        }
    }

    let now = Utc::now();
    // Every column but the id is a placeholder.
    let columns = <node::Column as sea_orm::Iterable>::iter().count() - 1;
    for chunk in accepted.chunks(rows_per_chunk(columns)) {
        let rows = chunk.iter().map(|s| node::ActiveModel {
            id: NotSet,
            name: Set(s.name.clone()),
            mgt: Set(s.mgt.map(|v| v.as_str().to_string())),
            netboot: Set(s.netboot.map(|v| v.as_str().to_string())),
            arch: Set(s.arch.map(|v| v.as_str().to_string())),
            node_type: Set(s.node_type.clone()),
            state: Set(None),
            power_state: Set(None),
            boot_device: Set(None),
            control_info: Set(seal_text(db, &s.control_info)),
            console_info: Set(seal_text(db, &s.console_info)),
            reservation: Set(None),
            conductor_affinity: Set(None),
            osimage_id: Set(None),
            deploy_token: Set(None),
            state_changed_at: Set(None),
            last_error: Set(None),
            deploy_step: Set(None),
            expires_at: Set(None),
            groups: Set(group_column(&s.groups)),
            health: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        });
        node::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
    }
    let accepted_names: Vec<String> = accepted
        .iter()
        .filter(|s| !s.nics.is_empty())
        .map(|s| s.name.clone())
        .collect();
    let ids = ids_by_name(&txn, &accepted_names).await?;
    let nic_rows: Vec<(i64, &NicSpec)> = accepted
        .iter()
        .filter_map(|s| ids.get(&s.name).map(|id| (*id, s)))
        .flat_map(|(id, s)| s.nics.iter().map(move |n| (id, n)))
        .collect();
    insert_nics(&txn, &nic_rows).await?;
    txn.commit().await?;
    for spec in accepted {
        out.insert(spec.name.clone(), Ok(()));
    }
    Ok(out)
}

async fn insert_nics(txn: &DatabaseTransaction, rows: &[(i64, &NicSpec)]) -> Result<(), DbError> {
    let now = Utc::now();
    for chunk in rows.chunks(rows_per_chunk(11)) {
        let models = chunk.iter().map(|(node_id, n)| nic::ActiveModel {
            id: NotSet,
            uuid: Set(n.uuid.to_string()),
            node_id: Set(*node_id),
            name: Set(n.name.clone()),
            mac: Set(n.mac.clone()),
            ip: Set(n.ip.clone()),
            netmask: Set(n.netmask.clone()),
            primary: Set(n.primary),
            extra: Set(to_text(&n.extra)),
            created_at: Set(now),
            updated_at: Set(now),
        });
        nic::Entity::insert_many(models)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// For each value of `column` (mac or uuid) in `values` that is stored:
/// the owning node's id and name.
async fn nic_owners<C: ConnectionTrait>(
    conn: &C,
    column: nic::Column,
    values: &[String],
) -> Result<HashMap<String, (i64, String)>, DbError> {
    let mut owner_ids: HashMap<String, i64> = HashMap::new();
    for chunk in values.chunks(IN_CHUNK) {
        let rows: Vec<(String, i64)> = nic::Entity::find()
            .select_only()
            .column(column)
            .column(nic::Column::NodeId)
            .filter(column.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        owner_ids.extend(rows);
    }
    if owner_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<i64> = owner_ids
        .values()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut names: HashMap<i64, String> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let rows: Vec<(i64, String)> = node::Entity::find()
            .select_only()
            .column(node::Column::Id)
            .column(node::Column::Name)
            .filter(node::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(conn)
            .await?;
        names.extend(rows);
    }
    Ok(owner_ids
        .into_iter()
        .map(|(v, id)| (v, (id, names.get(&id).cloned().unwrap_or_default())))
        .collect())
}

/// Checks a node's nics against the stored ones (other than `own_id`'s) and
/// those claimed earlier in the same request.
fn check_nic_conflicts(
    spec: &NodeSpec,
    own_id: Option<i64>,
    used_macs: &HashMap<String, (i64, String)>,
    used_uuids: &HashMap<String, (i64, String)>,
    claimed_macs: &HashMap<String, String>,
    claimed_uuids: &HashSet<String>,
) -> Result<(), String> {
    for (i, n) in spec.nics.iter().enumerate() {
        if let Some((id, owner)) = used_macs.get(&n.mac)
            && Some(*id) != own_id
        {
            return Err(format!(
                "nics_info.nics[{i}].mac: {} is already used by node {owner}",
                n.mac
            ));
        }
        if let Some(other) = claimed_macs.get(&n.mac) {
            return Err(format!(
                "nics_info.nics[{i}].mac: {} is also given to node {other} in this request",
                n.mac
            ));
        }
        let uuid = n.uuid.to_string();
        if let Some((id, owner)) = used_uuids.get(&uuid)
            && Some(*id) != own_id
        {
            return Err(format!(
                "nics_info.nics[{i}].uuid: {uuid} is already used by node {owner}"
            ));
        }
        if claimed_uuids.contains(&uuid) {
            return Err(format!(
                "nics_info.nics[{i}].uuid: {uuid} is given twice in this request"
            ));
        }
    }
    Ok(())
}

async fn ids_by_name<C: ConnectionTrait>(
    conn: &C,
    names: &[String],
) -> Result<HashMap<String, i64>, DbError> {
    let mut out = HashMap::with_capacity(names.len());
    for chunk in names.chunks(IN_CHUNK) {
        let rows: Vec<(String, i64)> = node::Entity::find()
            .select_only()
            .column(node::Column::Name)
            .column(node::Column::Id)
            .filter(node::Column::Name.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// One node's change: the stored record and its patched, validated spec.
pub struct NodeUpdate {
    pub old: NodeRecord,
    pub new: NodeSpec,
}

/// Writes patched nodes: one `UPDATE ... CASE id ...` per chunk for the
/// node columns, and a replace of the nics of nodes whose nics changed.
pub async fn update(db: &Db, updates: &[NodeUpdate]) -> Result<Outcomes, DbError> {
    retrying(|_| try_update(db, updates)).await
}

type ColumnValue = fn(&NodeSpec) -> Value;

/// Node columns a PATCH can change, and how to read each from a spec.
const UPDATABLE: &[(&str, ColumnValue)] = &[
    ("mgt", |s| s.mgt.map(|v| v.as_str().to_string()).into()),
    ("netboot", |s| {
        s.netboot.map(|v| v.as_str().to_string()).into()
    }),
    ("arch", |s| s.arch.map(|v| v.as_str().to_string()).into()),
    ("type", |s| s.node_type.clone().into()),
    ("control_info", |s| to_text(&s.control_info).into()),
    ("console_info", |s| to_text(&s.console_info).into()),
    ("groups", |s| group_column(&s.groups).into()),
];

async fn try_update(db: &Db, updates: &[NodeUpdate]) -> Result<Outcomes, DbError> {
    let backend = db.backend();
    let txn = db.conn().begin().await?;
    let mut out = Outcomes::new();

    // Nic changes need the same conflict checks as a create.
    let nic_changes: Vec<&NodeUpdate> = updates
        .iter()
        .filter(|u| u.new.nics != u.old.to_spec().nics)
        .collect();
    let macs: Vec<String> = nic_changes
        .iter()
        .flat_map(|u| u.new.nics.iter().map(|n| n.mac.clone()))
        .collect();
    let uuids: Vec<String> = nic_changes
        .iter()
        .flat_map(|u| u.new.nics.iter().map(|n| n.uuid.to_string()))
        .collect();
    let used_macs = nic_owners(&txn, nic::Column::Mac, &macs).await?;
    let used_uuids = nic_owners(&txn, nic::Column::Uuid, &uuids).await?;
    let mut claimed_macs = HashMap::new();
    let mut claimed_uuids = HashSet::new();
    let mut nic_ok: HashSet<i64> = HashSet::new();
    for u in &nic_changes {
        let id = u.old.node.id;
        match check_nic_conflicts(
            &u.new,
            Some(id),
            &used_macs,
            &used_uuids,
            &claimed_macs,
            &claimed_uuids,
        ) {
            Err(e) => {
                out.insert(u.new.name.clone(), Err(e));
            }
            Ok(()) => {
                for n in &u.new.nics {
                    claimed_macs.insert(n.mac.clone(), u.new.name.clone());
                    claimed_uuids.insert(n.uuid.to_string());
                }
                nic_ok.insert(id);
            }
        }
    }
    let writable: Vec<&NodeUpdate> = updates
        .iter()
        .filter(|u| !out.contains_key(&u.new.name))
        .collect();

    let now = Utc::now();
    // Per row: an id and a value for each column's CASE, and the id again
    // in the IN list.
    for chunk in writable.chunks(case_rows(2 * UPDATABLE.len() + 1)) {
        let old_specs: Vec<NodeSpec> = chunk.iter().map(|u| u.old.to_spec()).collect();
        let mut sets = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        for (col, get) in UPDATABLE {
            let changed: Vec<(i64, Value)> = chunk
                .iter()
                .zip(&old_specs)
                .filter_map(|(u, old)| {
                    let v = get(&u.new);
                    (v != get(old)).then_some((u.old.node.id, v))
                })
                .map(|(id, v)| match *col {
                    // Compared in clear, stored sealed.
                    "control_info" | "console_info" => {
                        (id, seal_text(db, &object_of_text(&v)).into())
                    }
                    _ => (id, v),
                })
                .collect();
            if changed.is_empty() {
                continue;
            }
            let q = quote(backend, col);
            let mut case = format!("{q} = CASE {}", quote(backend, "id"));
            for (id, v) in changed {
                case.push_str(" WHEN ? THEN ?");
                values.push(id.into());
                values.push(v);
            }
            case.push_str(&format!(" ELSE {q} END"));
            sets.push(case);
        }
        if sets.is_empty() {
            continue;
        }
        sets.push(format!("{} = ?", quote(backend, "updated_at")));
        values.push(now.into());
        let ids: Vec<i64> = chunk.iter().map(|u| u.old.node.id).collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {} IN ({})",
            quote(backend, "nodes"),
            sets.join(", "),
            quote(backend, "id"),
            placeholders(ids.len())
        );
        values.extend(ids.into_iter().map(Value::from));
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }

    // Replace the nics of nodes whose nics changed (uuids are kept, so a
    // nic keeps its identity across edits).
    let replaced: Vec<&NodeUpdate> = writable
        .iter()
        .copied()
        .filter(|u| nic_ok.contains(&u.old.node.id))
        .collect();
    let ids: Vec<i64> = replaced.iter().map(|u| u.old.node.id).collect();
    for chunk in ids.chunks(IN_CHUNK) {
        nic::Entity::delete_many()
            .filter(nic::Column::NodeId.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
    }
    let rows: Vec<(i64, &NicSpec)> = replaced
        .iter()
        .flat_map(|u| u.new.nics.iter().map(move |n| (u.old.node.id, n)))
        .collect();
    insert_nics(&txn, &rows).await?;
    txn.commit().await?;
    for u in writable {
        out.insert(u.new.name.clone(), Ok(()));
    }
    Ok(out)
}

/// States in which a node must not be deleted.
const UNDELETABLE_STATES: &[&str] = &["deploying"];

/// Deletes nodes and their nics. Locked nodes, nodes mid-deploy and unknown
/// names get their own error; the rest are deleted in one transaction.
pub async fn delete(db: &Db, names: &[String]) -> Result<Outcomes, DbError> {
    let txn = db.conn().begin().await?;
    let mut rows: Vec<(i64, String, Option<String>, Option<String>)> = Vec::new();
    for chunk in names.chunks(IN_CHUNK) {
        let mut q = node::Entity::find()
            .select_only()
            .column(node::Column::Id)
            .column(node::Column::Name)
            .column(node::Column::Reservation)
            .column(node::Column::State)
            .filter(node::Column::Name.is_in(chunk.iter().cloned()));
        if db.backend() == sea_orm::DbBackend::MySql {
            // Hold the rows so nobody locks or starts deploying them between
            // this check and the delete.
            q = q.lock_exclusive();
        }
        rows.extend(
            q.into_tuple::<(i64, String, Option<String>, Option<String>)>()
                .all(&txn)
                .await?,
        );
    }
    let mut out = Outcomes::new();
    let mut ids = Vec::new();
    for (id, name, reservation, state) in rows {
        if let Some(host) = reservation {
            out.insert(name, Err(format!("locked by {host}")));
        } else if let Some(s) = state.filter(|s| UNDELETABLE_STATES.contains(&s.as_str())) {
            out.insert(name, Err(format!("Can not delete node in {s} state")));
        } else {
            ids.push(id);
            out.insert(name, Ok(()));
        }
    }
    for chunk in ids.chunks(IN_CHUNK) {
        nic::Entity::delete_many()
            .filter(nic::Column::NodeId.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
        node_inventory::Entity::delete_many()
            .filter(node_inventory::Column::NodeId.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
        for per_node in ["node_host_keys", "node_postscripts"] {
            super::delete_node_rows(&txn, per_node, chunk).await?;
        }
        node::Entity::delete_many()
            .filter(node::Column::Id.is_in(chunk.iter().copied()))
            .filter(node::Column::Reservation.is_null())
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    for name in names {
        out.entry(name.clone())
            .or_insert_with(|| Err(tokens::NOT_FOUND.to_string()));
    }
    Ok(out)
}

/// Node columns a conductor records after acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    PowerState,
    BootDevice,
    /// The last health verdict.
    Health,
    /// An inventory read from the BMC (kept in `node_inventory`).
    Inventory,
}

/// Records what drivers observed (`power_state`, `boot_device`;
/// `None` clears it) for many nodes: one `UPDATE ... CASE name ...` per
/// 1,000 nodes.
pub async fn record(
    db: &Db,
    what: Observed,
    values: &[(String, Option<String>)],
) -> Result<(), DbError> {
    let col = match what {
        Observed::PowerState => "power_state",
        Observed::BootDevice => "boot_device",
        Observed::Health => "health",
        Observed::Inventory => return crate::inventory::store(db, values).await,
    };
    let rows: Vec<(String, Vec<Value>)> = values
        .iter()
        .map(|(n, v)| (n.clone(), vec![v.clone().into()]))
        .collect();
    set_columns(db, &[col], &rows, None).await.map(|_| ())
}

/// One node's power state as a sync read it: what the inventory said when
/// the sync loaded the node, and what its BMC says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerChange {
    pub name: String,
    pub was: Option<String>,
    pub now: String,
}

/// Records power states a periodic sync read, each only if the node still
/// holds the state the sync loaded and is not locked: an action that ran
/// meanwhile recorded a newer truth, which a sync must not overwrite.
/// One `UPDATE ... WHERE name IN (...)` per (was, now) pair and 5,000
/// nodes. Returns how many nodes changed.
pub async fn record_power_changes(db: &Db, changes: &[PowerChange]) -> Result<u64, DbError> {
    let backend = db.backend();
    let mut by_pair: BTreeMap<(Option<&str>, &str), Vec<&str>> = BTreeMap::new();
    for c in changes
        .iter()
        .filter(|c| c.was.as_deref() != Some(c.now.as_str()))
    {
        by_pair
            .entry((c.was.as_deref(), c.now.as_str()))
            .or_default()
            .push(c.name.as_str());
    }
    let (col, name) = (quote(backend, "power_state"), quote(backend, "name"));
    let mut changed = 0;
    for ((was, now), names) in by_pair {
        for chunk in names.chunks(IN_CHUNK) {
            let guard = match was {
                Some(_) => format!("{col} = ?"),
                None => format!("{col} IS NULL"),
            };
            let sql = format!(
                "UPDATE {} SET {col} = ? WHERE {name} IN ({}) AND {} IS NULL AND {guard}",
                quote(backend, "nodes"),
                placeholders(chunk.len()),
                quote(backend, "reservation"),
            );
            let mut params: Vec<Value> = vec![now.into()];
            params.extend(chunk.iter().map(|n| Value::from(*n)));
            if let Some(w) = was {
                params.push(w.into());
            }
            let stmt = Statement::from_sql_and_values(backend, sql, params);
            changed += retrying(|_| db.conn().execute_raw(stmt.clone()))
                .await?
                .rows_affected();
        }
    }
    Ok(changed)
}

/// Sets `columns` of many nodes, one row of values per node (in the
/// columns' order): one `UPDATE nodes SET a = CASE name WHEN ? THEN ? ...
/// END, b = ... WHERE name IN (...)` per 1,000 nodes. With `only_if =
/// (column, value)` a node is changed only while that column holds that
/// value. Returns how many nodes changed.
pub async fn set_columns(
    db: &Db,
    columns: &[&str],
    rows: &[(String, Vec<Value>)],
    only_if: Option<(&str, Value)>,
) -> Result<u64, DbError> {
    let backend = db.backend();
    let name = quote(backend, "name");
    let mut changed = 0;
    // Per row: a name and a value for each column's CASE, the name again
    // in the IN list (and the guard's value once per statement).
    for chunk in rows.chunks(case_rows(2 * columns.len() + 2)) {
        let mut sql = format!("UPDATE {} SET ", quote(backend, "nodes"));
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * (2 * columns.len() + 1));
        for (i, c) in columns.iter().enumerate() {
            let col = quote(backend, c);
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("{col} = CASE {name}"));
            for (n, values) in chunk {
                sql.push_str(" WHEN ? THEN ?");
                params.push(n.clone().into());
                params.push(values[i].clone());
            }
            sql.push_str(&format!(" ELSE {col} END"));
        }
        sql.push_str(&format!(" WHERE {name} IN ({})", placeholders(chunk.len())));
        params.extend(chunk.iter().map(|(n, _)| Value::from(n.clone())));
        if let Some((col, v)) = &only_if {
            sql.push_str(&format!(" AND {} = ?", quote(backend, col)));
            params.push(v.clone());
        }
        let stmt = Statement::from_sql_and_values(backend, sql, params);
        changed += retrying(|_| db.conn().execute_raw(stmt.clone()))
            .await?
            .rows_affected();
    }
    Ok(changed)
}

/// The install callback: `deploying` → `deployed` if `token` is the
/// node's current one, consuming it in the same statement (a token works
/// once, also against two racing callbacks). False when nothing matched.
pub async fn consume_deploy_token(db: &Db, name: &str, token: &str) -> Result<bool, DbError> {
    use sea_orm::sea_query::Expr;
    let now = Utc::now();
    let r = retrying(|_| {
        node::Entity::update_many()
            .col_expr(node::Column::State, Expr::value("deployed"))
            .col_expr(
                node::Column::DeployToken,
                Expr::value(Option::<String>::None),
            )
            .col_expr(node::Column::StateChangedAt, Expr::value(now))
            .col_expr(node::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(
                node::Column::ConductorAffinity,
                Expr::value(Option::<String>::None),
            )
            .filter(node::Column::Name.eq(name))
            .filter(node::Column::State.eq("deploying"))
            .filter(node::Column::DeployToken.eq(token))
            .exec(db.conn())
    })
    .await?;
    Ok(r.rows_affected == 1)
}

/// A boot step an agent reported, as the API decided it applies: written
/// only if the node still holds `token` and the state `from` it was
/// judged in (a racing report or a new deploy wins).
#[derive(Debug, Clone)]
pub struct StepReport<'a> {
    pub name: &'a str,
    pub token: &'a str,
    /// The stored state the decision was made on (`None` = available).
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub step: &'a str,
    /// The failure text (`deploy failed`), or `None` to clear it.
    pub error: Option<String>,
    /// A finished disk write uses the token up; a stateless node keeps it
    /// for its next boot.
    pub consume_token: bool,
}

/// Applies a [`StepReport`] in one conditional statement. False when the
/// node's token or state no longer match.
pub async fn report_step(db: &Db, r: &StepReport<'_>) -> Result<bool, DbError> {
    use sea_orm::sea_query::Expr;
    let now = Utc::now();
    let result = retrying(|_| {
        let mut q = node::Entity::update_many()
            .col_expr(node::Column::DeployStep, Expr::value(r.step))
            .col_expr(node::Column::LastError, Expr::value(r.error.clone()));
        if r.from != r.to {
            q = q
                .col_expr(node::Column::State, Expr::value(r.to))
                .col_expr(node::Column::StateChangedAt, Expr::value(now));
        }
        if r.consume_token {
            q = q
                .col_expr(
                    node::Column::DeployToken,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    node::Column::ConductorAffinity,
                    Expr::value(Option::<String>::None),
                );
        }
        q = q
            .filter(node::Column::Name.eq(r.name))
            .filter(node::Column::DeployToken.eq(r.token));
        q = match r.from {
            Some(s) => q.filter(node::Column::State.eq(s)),
            None => q.filter(node::Column::State.is_null()),
        };
        q.exec(db.conn())
    })
    .await?;
    Ok(result.rows_affected == 1)
}

/// How many nodes boot from osimage `id` now: `deploying` ones fetch it,
/// `booted` (stateless) ones fetch it again at their next start. Such an
/// image is not deleted.
pub async fn nodes_using_image(db: &Db, id: i64) -> Result<u64, DbError> {
    use sea_orm::PaginatorTrait;
    retrying(|_| {
        node::Entity::find()
            .filter(node::Column::OsimageId.eq(id))
            .filter(node::Column::State.is_in(["deploying", "booted"]))
            .count(db.conn())
    })
    .await
    .map_err(DbError::from)
}

/// A node whose boot files its owner must hold: `deploying`, or `booted`
/// from a stateless image (it network-boots that image at every start),
/// as the conductors' periodic scan sees it.
#[derive(Debug, Clone)]
pub struct Deploying {
    pub name: String,
    /// `deploying` or `booted`.
    pub state: String,
    /// The last boot step reported (where a timed-out node was stuck).
    pub deploy_step: Option<String>,
    pub state_changed_at: Option<chrono::DateTime<Utc>>,
    pub conductor_affinity: Option<String>,
    pub reservation: Option<String>,
}

/// Every node in `deploying` or `booted` (uses the state index).
pub async fn deploying(db: &Db) -> Result<Vec<Deploying>, DbError> {
    type Row = (
        String,
        Option<String>,
        Option<String>,
        Option<chrono::DateTime<Utc>>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = retrying(|_| {
        node::Entity::find()
            .select_only()
            .column(node::Column::Name)
            .column(node::Column::State)
            .column(node::Column::DeployStep)
            .column(node::Column::StateChangedAt)
            .column(node::Column::ConductorAffinity)
            .column(node::Column::Reservation)
            .filter(node::Column::State.is_in(["deploying", "booted"]))
            .into_tuple()
            .all(db.conn())
    })
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, state, deploy_step, state_changed_at, conductor_affinity, reservation)| {
                Deploying {
                    name,
                    state: state.unwrap_or_default(),
                    deploy_step,
                    state_changed_at,
                    conductor_affinity,
                    reservation,
                }
            },
        )
        .collect())
}
