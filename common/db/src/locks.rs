//! Node locks: `nodes.reservation` holds the host of the conductor working
//! on a node. Taken and released in bulk, one statement per chunk.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::entity::node;
use super::{Db, DbError, IN_CHUNK, retrying};

/// Locks the unlocked nodes among `names` for `host`. Returns, for each
/// name that exists, `Ok(())` if `host` now holds it or `Err(holder)`.
pub async fn acquire(
    db: &Db,
    host: &str,
    names: &[String],
) -> Result<Vec<(String, Result<(), String>)>, DbError> {
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(IN_CHUNK) {
        retrying(|_| {
            node::Entity::update_many()
                .col_expr(node::Column::Reservation, Expr::value(host))
                .filter(node::Column::Name.is_in(chunk.iter().cloned()))
                .filter(node::Column::Reservation.is_null())
                .exec(db.conn())
        })
        .await?;
        let rows: Vec<(String, Option<String>)> = node::Entity::find()
            .select_only()
            .column(node::Column::Name)
            .column(node::Column::Reservation)
            .filter(node::Column::Name.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db.conn())
            .await?;
        for (name, holder) in rows {
            let r = match holder {
                Some(h) if h == host => Ok(()),
                Some(h) => Err(h),
                None => Err("nobody (the node was unlocked meanwhile)".to_string()),
            };
            out.push((name, r));
        }
    }
    Ok(out)
}

/// Releases `host`'s locks on `names`.
pub async fn release(db: &Db, host: &str, names: &[String]) -> Result<(), DbError> {
    for chunk in names.chunks(IN_CHUNK) {
        node::Entity::update_many()
            .col_expr(
                node::Column::Reservation,
                Expr::value(Option::<String>::None),
            )
            .filter(node::Column::Name.is_in(chunk.iter().cloned()))
            .filter(node::Column::Reservation.eq(host))
            .exec(db.conn())
            .await?;
    }
    Ok(())
}

/// Releases every lock `host` holds (a conductor starting up clears what a
/// previous life of it left behind). Returns how many.
pub async fn release_all(db: &Db, host: &str) -> Result<u64, DbError> {
    Ok(node::Entity::update_many()
        .col_expr(
            node::Column::Reservation,
            Expr::value(Option::<String>::None),
        )
        .filter(node::Column::Reservation.eq(host))
        .exec(db.conn())
        .await?
        .rows_affected)
}

/// Releases locks held by conductors not in `live`. Returns how many.
/// (`deploying` nodes keep their state: their new owner in the ring takes
/// them over, and the deploy timeout fails them if no callback comes.)
pub async fn release_dead(db: &Db, live: &[String]) -> Result<u64, DbError> {
    let mut q = node::Entity::update_many()
        .col_expr(
            node::Column::Reservation,
            Expr::value(Option::<String>::None),
        )
        .filter(node::Column::Reservation.is_not_null());
    if !live.is_empty() {
        q = q.filter(node::Column::Reservation.is_not_in(live.iter().cloned()));
    }
    Ok(q.exec(db.conn()).await?.rows_affected)
}
