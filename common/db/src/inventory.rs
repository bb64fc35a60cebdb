//! Stored hardware inventories (`node_inventory`, one row per node) and
//! the per-state health counts `/metrics` serves.

use std::collections::HashMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::entity::{node, node_inventory};
use super::{Db, DbError, IN_CHUNK, rows_per_chunk};

/// Stores each node's inventory (JSON) as read now, replacing the last
/// one; nodes deleted meanwhile are skipped.
pub async fn store(db: &Db, values: &[(String, Option<String>)]) -> Result<(), DbError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut ids: HashMap<String, i64> = HashMap::with_capacity(values.len());
    let names: Vec<String> = values.iter().map(|(n, _)| n.clone()).collect();
    for chunk in names.chunks(IN_CHUNK) {
        let rows: Vec<(i64, String)> = node::Entity::find()
            .select_only()
            .column(node::Column::Id)
            .column(node::Column::Name)
            .filter(node::Column::Name.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db.conn())
            .await?;
        ids.extend(rows.into_iter().map(|(id, n)| (n, id)));
    }
    let rows: Vec<node_inventory::ActiveModel> = values
        .iter()
        .filter_map(|(n, data)| {
            Some(node_inventory::ActiveModel {
                node_id: sea_orm::ActiveValue::Set(*ids.get(n)?),
                data: sea_orm::ActiveValue::Set(data.clone()?),
                read_at: sea_orm::ActiveValue::Set(now),
            })
        })
        .collect();
    for chunk in by_size(&rows, rows_per_chunk(3)) {
        node_inventory::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::column(node_inventory::Column::NodeId)
                    .update_columns([node_inventory::Column::Data, node_inventory::Column::ReadAt])
                    .to_owned(),
            )
            .exec(db.conn())
            .await?;
    }
    Ok(())
}

/// Bytes of inventory text per statement: well under MySQL's and
/// MariaDB's default `max_allowed_packet` (16 MiB), whatever the size of
/// each node's inventory.
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// `rows` in runs of at most `max_rows` rows and about
/// [`MAX_STATEMENT_BYTES`] of data each (a run holds at least one row).
fn by_size(
    rows: &[node_inventory::ActiveModel],
    max_rows: usize,
) -> Vec<&[node_inventory::ActiveModel]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in rows.iter().enumerate() {
        let len = match &r.data {
            sea_orm::ActiveValue::Set(d) => d.len(),
            _ => 0,
        };
        if i > start && (bytes + len > MAX_STATEMENT_BYTES || i - start == max_rows) {
            out.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// The stored inventory of each of `names` that has one: JSON and when
/// it was read (Unix milliseconds).
pub async fn load(db: &Db, names: &[String]) -> Result<HashMap<String, (String, i64)>, DbError> {
    let mut out = HashMap::with_capacity(names.len());
    for chunk in names.chunks(IN_CHUNK) {
        let ids: Vec<(i64, String)> = node::Entity::find()
            .select_only()
            .column(node::Column::Id)
            .column(node::Column::Name)
            .filter(node::Column::Name.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db.conn())
            .await?;
        let by_id: HashMap<i64, String> = ids.into_iter().collect();
        let rows = node_inventory::Entity::find()
            .filter(node_inventory::Column::NodeId.is_in(by_id.keys().copied()))
            .all(db.conn())
            .await?;
        for r in rows {
            if let Some(name) = by_id.get(&r.node_id) {
                out.insert(name.clone(), (r.data, r.read_at));
            }
        }
    }
    Ok(out)
}

/// Nodes per last health verdict (`ok`, `warning`, `critical`; nodes
/// never judged are not counted).
pub async fn health_counts(db: &Db) -> Result<Vec<(String, i64)>, DbError> {
    Ok(node::Entity::find()
        .select_only()
        .column(node::Column::Health)
        .column_as(node::Column::Id.count(), "n")
        .filter(node::Column::Health.is_not_null())
        .group_by(node::Column::Health)
        .into_tuple::<(String, i64)>()
        .all(db.conn())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(len: usize) -> node_inventory::ActiveModel {
        node_inventory::ActiveModel {
            node_id: sea_orm::ActiveValue::Set(1),
            data: sea_orm::ActiveValue::Set("x".repeat(len)),
            read_at: sea_orm::ActiveValue::Set(0),
        }
    }

    #[test]
    fn statements_stay_under_the_packet_limit() {
        let rows: Vec<_> = (0..10).map(|_| row(1 << 20)).collect();
        let runs = by_size(&rows, 1000);
        assert_eq!(runs.iter().map(|r| r.len()).collect::<Vec<_>>(), [4, 4, 2]);
        let small: Vec<_> = (0..5).map(|_| row(10)).collect();
        assert_eq!(by_size(&small, 2).len(), 3);
        let huge = vec![row(8 << 20)];
        assert_eq!(by_size(&huge, 10).len(), 1);
    }
}
