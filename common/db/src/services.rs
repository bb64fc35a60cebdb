//! Conductor membership: registration, heartbeats, liveness.
//!
//! Liveness compares heartbeat times written by each conductor's clock with
//! the reader's clock, so hosts must keep time (NTP), as with Ironic.

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};

use super::entity::service;
use super::{Db, DbError};

/// The `type` of conductor rows.
pub const CONDUCTOR: &str = "conductor";

/// A conductor's console server: where the API reaches it, and the token
/// it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleEndpoint {
    pub url: String,
    pub token: String,
}

/// Registers (or re-registers) conductor `host` as online.
pub async fn register(
    db: &Db,
    host: &str,
    workers: i32,
    console: Option<&ConsoleEndpoint>,
) -> Result<(), DbError> {
    let url = console.map(|c| c.url.clone());
    let token = console.map(|c| c.token.clone());
    let now = Utc::now();
    let existing = service::Entity::find()
        .filter(service::Column::Hostname.eq(host))
        .filter(service::Column::ServiceType.eq(CONDUCTOR))
        .one(db.conn())
        .await?;
    match existing {
        Some(row) => {
            let mut am = row.into_active_model();
            am.online = Set(true);
            am.workers = Set(Some(workers));
            am.in_flight = Set(0);
            am.updated_at = Set(now);
            am.console_url = Set(url);
            am.console_token = Set(token);
            am.update(db.conn()).await?;
        }
        None => {
            service::ActiveModel {
                id: NotSet,
                hostname: Set(host.to_string()),
                service_type: Set(CONDUCTOR.to_string()),
                workers: Set(Some(workers)),
                online: Set(true),
                in_flight: Set(0),
                created_at: Set(now),
                updated_at: Set(now),
                console_url: Set(url),
                console_token: Set(token),
            }
            .insert(db.conn())
            .await?;
        }
    }
    Ok(())
}

/// Records that `host` is alive and how many nodes it is working on.
pub async fn heartbeat(db: &Db, host: &str, in_flight: i64) -> Result<(), DbError> {
    service::Entity::update_many()
        .col_expr(service::Column::UpdatedAt, Utc::now().into())
        .col_expr(service::Column::Online, true.into())
        .col_expr(service::Column::InFlight, in_flight.into())
        .filter(service::Column::Hostname.eq(host))
        .filter(service::Column::ServiceType.eq(CONDUCTOR))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Marks `host` offline (clean shutdown).
pub async fn deregister(db: &Db, host: &str) -> Result<(), DbError> {
    service::Entity::update_many()
        .col_expr(service::Column::Online, false.into())
        .col_expr(service::Column::InFlight, 0i64.into())
        .filter(service::Column::Hostname.eq(host))
        .filter(service::Column::ServiceType.eq(CONDUCTOR))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Host names of conductors that are online and heartbeated within
/// `timeout_s` seconds, sorted.
pub async fn live_conductors(db: &Db, timeout_s: u64) -> Result<Vec<String>, DbError> {
    let since = Utc::now() - Duration::seconds(timeout_s as i64);
    Ok(service::Entity::find()
        .select_only()
        .column(service::Column::Hostname)
        .filter(service::Column::ServiceType.eq(CONDUCTOR))
        .filter(service::Column::Online.eq(true))
        .filter(service::Column::UpdatedAt.gt(since))
        .order_by_asc(service::Column::Hostname)
        .into_tuple()
        .all(db.conn())
        .await?)
}

/// The console server of conductor `host`, if it registered one.
pub async fn console_endpoint(db: &Db, host: &str) -> Result<Option<ConsoleEndpoint>, DbError> {
    let row: Option<(Option<String>, Option<String>)> = service::Entity::find()
        .select_only()
        .column(service::Column::ConsoleUrl)
        .column(service::Column::ConsoleToken)
        .filter(service::Column::Hostname.eq(host))
        .filter(service::Column::ServiceType.eq(CONDUCTOR))
        .into_tuple()
        .one(db.conn())
        .await?;
    Ok(match row {
        Some((Some(url), Some(token))) => Some(ConsoleEndpoint { url, token }),
        _ => None,
    })
}
