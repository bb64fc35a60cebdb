//! Node groups: storage, membership and inheritance, all in bulk. A node
//! lists its groups in its `groups` column; which nodes a group holds is
//! one scan of that column (`LIKE`-narrowed, checked exactly here), and
//! resolving any number of nodes reads their groups in one query.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, Condition,
    ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::{Map, Value};

use super::entity::{node, nodegroup};
use super::nodes::{NodeRecord, group_list, parse_map};
use super::secrets::{open_infos, seal_text};
use super::{Db, DbError, IN_CHUNK, is_unique_violation};
use xcat3_common::model::{GroupAttrs, GroupSpec, inherit};

/// Every group, in creation order.
pub async fn list(db: &Db) -> Result<Vec<nodegroup::Model>, DbError> {
    nodegroup::Entity::find()
        .order_by_asc(nodegroup::Column::Id)
        .all(db.conn())
        .await?
        .into_iter()
        .map(|g| opened(db, g))
        .collect()
}

/// A stored group with its secrets decrypted.
fn opened(db: &Db, mut g: nodegroup::Model) -> Result<nodegroup::Model, DbError> {
    open_infos(
        db,
        ("group", &g.name),
        &mut g.control_info,
        &mut g.console_info,
    )?;
    Ok(g)
}

/// One group by name.
pub async fn get(db: &Db, name: &str) -> Result<nodegroup::Model, DbError> {
    nodegroup::Entity::find()
        .filter(nodegroup::Column::Name.eq(name))
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("group {name} could not be found")))
        .and_then(|g| opened(db, g))
}

/// Every group name (the table is small: one row per group, not per node).
pub async fn names(db: &Db) -> Result<HashSet<String>, DbError> {
    Ok(nodegroup::Entity::find()
        .select_only()
        .column(nodegroup::Column::Name)
        .into_tuple::<String>()
        .all(db.conn())
        .await?
        .into_iter()
        .collect())
}

/// Which of `names` are groups (a node may not take a group's name).
pub(crate) async fn existing_in<C: ConnectionTrait>(
    conn: &C,
    names: &[String],
) -> Result<HashSet<String>, DbError> {
    let mut out = HashSet::new();
    for chunk in names.chunks(IN_CHUNK) {
        let found: Vec<String> = nodegroup::Entity::find()
            .select_only()
            .column(nodegroup::Column::Name)
            .filter(nodegroup::Column::Name.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        out.extend(found);
    }
    Ok(out)
}

fn fields(db: &Db, am: &mut nodegroup::ActiveModel, s: &GroupSpec) {
    let a = &s.attrs;
    am.name = Set(s.name.clone());
    am.mgt = Set(a.mgt.map(|v| v.as_str().to_string()));
    am.netboot = Set(a.netboot.map(|v| v.as_str().to_string()));
    am.arch = Set(a.arch.map(|v| v.as_str().to_string()));
    am.node_type = Set(a.node_type.clone());
    am.control_info = Set(seal_text(db, &a.control_info));
    am.console_info = Set(seal_text(db, &a.console_info));
    am.updated_at = Set(Utc::now());
}

/// Creates a group. Groups and nodes share the noderange namespace, so a
/// name a node has is refused.
pub async fn create(db: &Db, s: &GroupSpec) -> Result<(), DbError> {
    if !super::nodes::existing(db, std::slice::from_ref(&s.name))
        .await?
        .is_empty()
    {
        return Err(DbError::Conflict(format!(
            "group {}: a node has this name (groups and nodes share noderanges)",
            s.name
        )));
    }
    let mut am = nodegroup::ActiveModel {
        id: NotSet,
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    fields(db, &mut am, s);
    am.insert(db.conn()).await.map_err(|e| {
        if is_unique_violation(&e) {
            DbError::Conflict(format!("group {} already exists", s.name))
        } else {
            DbError::Db(e)
        }
    })?;
    Ok(())
}

/// Replaces a group's attributes (its name stays).
pub async fn update(
    db: &Db,
    old: nodegroup::Model,
    s: &GroupSpec,
) -> Result<nodegroup::Model, DbError> {
    let mut am = old.into_active_model();
    fields(db, &mut am, s);
    Ok(am.update(db.conn()).await?)
}

/// Deletes a group that no node lists any more: a member would silently
/// lose what it inherits (its BMC password, say).
pub async fn delete(db: &Db, name: &str) -> Result<(), DbError> {
    let members = members(db, &[name.to_string()]).await?;
    if let Some(list) = members.get(name).filter(|l| !l.is_empty()) {
        return Err(DbError::Conflict(format!(
            "group {name} has {} member(s) ({}{}); take it out of their groups first",
            list.len(),
            list.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if list.len() > 5 { ", ..." } else { "" }
        )));
    }
    let res = nodegroup::Entity::delete_many()
        .filter(nodegroup::Column::Name.eq(name))
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(DbError::NotFound(format!(
            "group {name} could not be found"
        )));
    }
    Ok(())
}

/// The member node names of each of `groups`, in creation order: one
/// query for all of them. A group nobody lists maps to an empty list.
pub async fn members(db: &Db, groups: &[String]) -> Result<HashMap<String, Vec<String>>, DbError> {
    let mut out: HashMap<String, Vec<String>> =
        groups.iter().map(|g| (g.clone(), Vec::new())).collect();
    if groups.is_empty() {
        return Ok(out);
    }
    // LIKE narrows (case-insensitively on MySQL); the split below decides.
    let mut any = Condition::any();
    for g in groups {
        any = any.add(node::Column::Groups.like(format!("%{g}%")));
    }
    let rows: Vec<(String, Option<String>)> = node::Entity::find()
        .select_only()
        .column(node::Column::Name)
        .column(node::Column::Groups)
        .filter(any)
        .order_by_asc(node::Column::Id)
        .into_tuple()
        .all(db.conn())
        .await?;
    for (name, stored) in rows {
        for g in stored.as_deref().unwrap_or("").split(',') {
            if let Some(list) = out.get_mut(g) {
                list.push(name.clone());
            }
        }
    }
    Ok(out)
}

/// Applies each record's groups to it in place (see [`inherit`]): the
/// groups all records name are read in one query per 5,000 names.
pub async fn resolve(db: &Db, records: &mut [NodeRecord]) -> Result<(), DbError> {
    let mut wanted: Vec<String> = records
        .iter()
        .flat_map(|r| group_list(r.node.groups.as_deref()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    wanted.sort();
    let mut groups: HashMap<String, Attrs> = HashMap::new();
    for chunk in wanted.chunks(IN_CHUNK) {
        let rows = nodegroup::Entity::find()
            .filter(nodegroup::Column::Name.is_in(chunk.iter().cloned()))
            .all(db.conn())
            .await?;
        for g in rows {
            let g = opened(db, g)?;
            groups.insert(g.name.clone(), Attrs::of(g));
        }
    }
    for r in records.iter_mut() {
        apply(r, &groups);
    }
    Ok(())
}

/// A group's attributes with its info documents parsed once.
struct Attrs {
    scalars: [Option<String>; 4],
    infos: [Map<String, Value>; 2],
}

impl Attrs {
    fn of(g: nodegroup::Model) -> Attrs {
        Attrs {
            scalars: [g.mgt, g.netboot, g.arch, g.node_type],
            infos: [parse_map(&g.control_info), parse_map(&g.console_info)],
        }
    }
}

fn apply(r: &mut NodeRecord, groups: &HashMap<String, Attrs>) {
    let names = group_list(r.node.groups.as_deref());
    let mine: Vec<GroupAttrs<'_>> = names
        .iter()
        .filter_map(|g| groups.get(g).map(|a| (g.as_str(), a)))
        .map(|(name, a)| GroupAttrs {
            name,
            scalars: [
                a.scalars[0].as_deref(),
                a.scalars[1].as_deref(),
                a.scalars[2].as_deref(),
                a.scalars[3].as_deref(),
            ],
            infos: [&a.infos[0], &a.infos[1]],
        })
        .collect();
    if mine.is_empty() {
        return;
    }
    let n = &mut r.node;
    let mut control = parse_map(&n.control_info);
    let mut console = parse_map(&n.console_info);
    let from = inherit(
        &mut [&mut n.mgt, &mut n.netboot, &mut n.arch, &mut n.node_type],
        &mut [
            ("control_info", &mut control),
            ("console_info", &mut console),
        ],
        &mine,
    );
    if from
        .0
        .iter()
        .any(|(path, _)| path.starts_with("control_info."))
    {
        n.control_info = Value::Object(control).to_string();
    }
    if from
        .0
        .iter()
        .any(|(path, _)| path.starts_with("console_info."))
    {
        n.console_info = Value::Object(console).to_string();
    }
    r.inherited = from;
}
