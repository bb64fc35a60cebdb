//! Post-boot scripts (`scripts`: name → content) and each node's last run
//! of them (`node_postscripts`: the `postscripts::Ran` list as JSON,
//! deleted with the node). See `xcat3_common::postscripts`.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, Statement, Value};
use xcat3_common::postscripts::Ran;

use super::{Db, DbError, IN_CHUNK, placeholders, quote};

/// Creates or replaces script `name`.
pub async fn put(db: &Db, name: &str, content: &str) -> Result<(), DbError> {
    let backend = db.backend();
    let sql = super::upsert_sql(backend, "scripts", &["name", "content", "updated_at"]);
    let values: Vec<Value> = vec![
        name.into(),
        content.into(),
        chrono::Utc::now().timestamp().into(),
    ];
    db.conn()
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Every script's name, size and update time (Unix seconds).
pub async fn list(db: &Db) -> Result<Vec<(String, i64, i64)>, DbError> {
    let backend = db.backend();
    let sql = format!(
        "SELECT name, LENGTH(content), updated_at FROM {} ORDER BY name",
        quote(backend, "scripts")
    );
    let rows = db
        .conn()
        .query_all_raw(Statement::from_string(backend, sql))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get_by_index(0)?,
                r.try_get_by_index::<i64>(1)?,
                r.try_get_by_index(2)?,
            ))
        })
        .collect()
}

/// The scripts with these names that exist, by name.
pub async fn get(db: &Db, names: &[String]) -> Result<HashMap<String, String>, DbError> {
    let backend = db.backend();
    let mut out = HashMap::new();
    for chunk in names.chunks(IN_CHUNK) {
        if chunk.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT name, content FROM {} WHERE name IN ({})",
            quote(backend, "scripts"),
            placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|n| n.clone().into()).collect();
        for r in db
            .conn()
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            out.insert(r.try_get_by_index(0)?, r.try_get_by_index(1)?);
        }
    }
    Ok(out)
}

/// Deletes script `name`; false if there was none.
pub async fn delete(db: &Db, name: &str) -> Result<bool, DbError> {
    let backend = db.backend();
    let sql = format!("DELETE FROM {} WHERE name = ?", quote(backend, "scripts"));
    let r = db
        .conn()
        .execute_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Records node `node_id`'s run of its scripts.
pub async fn record_run(db: &Db, node_id: i64, runs: &[Ran]) -> Result<(), DbError> {
    let backend = db.backend();
    let sql = super::upsert_sql(backend, "node_postscripts", &["node_id", "runs", "ran_at"]);
    let text = serde_json::to_string(runs).map_err(|e| DbError::Invalid(e.to_string()))?;
    let values: Vec<Value> = vec![
        node_id.into(),
        text.into(),
        chrono::Utc::now().timestamp().into(),
    ];
    db.conn()
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// The last run of the nodes with these ids: (runs, Unix time), by id.
pub async fn runs(db: &Db, ids: &[i64]) -> Result<HashMap<i64, (Vec<Ran>, i64)>, DbError> {
    let backend = db.backend();
    let mut out = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT node_id, runs, ran_at FROM {} WHERE node_id IN ({})",
            quote(backend, "node_postscripts"),
            placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|&i| i.into()).collect();
        for r in db
            .conn()
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let text: String = r.try_get_by_index(1)?;
            let runs: Vec<Ran> = serde_json::from_str(&text).unwrap_or_default();
            out.insert(r.try_get_by_index(0)?, (runs, r.try_get_by_index(2)?));
        }
    }
    Ok(out)
}
