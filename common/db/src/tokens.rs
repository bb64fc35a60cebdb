//! API tokens: who may call the API and with which role. Only a hash of
//! each token's secret is stored; the API checks the row on every request,
//! so deleting it (revoke) refuses the token at once on every API host.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};

use super::{Db, DbError, is_unique_violation, quote, retrying};

/// One token as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRow {
    /// Public part of the token, its key here.
    pub id: String,
    /// Who or what holds it (unique), shown in logs and request history.
    pub name: String,
    pub role: String,
    /// PHC string of the secret's hash.
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, role, secret_hash, created_at, expires_at";

fn row(r: &QueryResult) -> Result<TokenRow, DbError> {
    Ok(TokenRow {
        id: r.try_get("", "id")?,
        name: r.try_get("", "name")?,
        role: r.try_get("", "role")?,
        secret_hash: r.try_get("", "secret_hash")?,
        created_at: r.try_get("", "created_at")?,
        expires_at: r.try_get("", "expires_at")?,
    })
}

/// Stores a new token; a taken name is a `Conflict` naming it.
pub async fn insert(db: &Db, t: &TokenRow) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO {} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        quote(db.backend(), "api_tokens")
    );
    let values: Vec<Value> = vec![
        t.id.clone().into(),
        t.name.clone().into(),
        t.role.clone().into(),
        t.secret_hash.clone().into(),
        t.created_at.into(),
        t.expires_at.into(),
    ];
    match db
        .conn()
        .execute_raw(Statement::from_sql_and_values(db.backend(), sql, values))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(DbError::Conflict(format!(
            "name: a token named {:?} exists; revoke it first or pick another name",
            t.name
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The token with public id `id`.
pub async fn get(db: &Db, id: &str) -> Result<Option<TokenRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE id = ?",
        quote(db.backend(), "api_tokens")
    );
    let stmt = Statement::from_sql_and_values(db.backend(), sql, [id.into()]);
    let found = retrying(|_| db.conn().query_one_raw(stmt.clone())).await?;
    found.as_ref().map(row).transpose()
}

/// Every token, by name.
pub async fn list(db: &Db) -> Result<Vec<TokenRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} ORDER BY name",
        quote(db.backend(), "api_tokens")
    );
    let stmt = Statement::from_string(db.backend(), sql);
    db.conn()
        .query_all_raw(stmt)
        .await?
        .iter()
        .map(row)
        .collect()
}

/// Deletes the token named `name`; false if there was none.
pub async fn revoke(db: &Db, name: &str) -> Result<bool, DbError> {
    let sql = format!(
        "DELETE FROM {} WHERE name = ?",
        quote(db.backend(), "api_tokens")
    );
    let stmt = Statement::from_sql_and_values(db.backend(), sql, [name.into()]);
    Ok(db.conn().execute_raw(stmt).await?.rows_affected() > 0)
}
