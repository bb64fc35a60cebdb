//! Request history: every bulk action's id, what it was, who asked, and
//! each node's result, kept after the reply so `xcat3 history` can show
//! it and `--retry-failed` can run the failed nodes again.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};
use xcat3_common::rpc::ErrorKind;

use super::{Db, DbError, placeholders, quote, retrying, rows_per_chunk};

/// One request as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRow {
    pub id: String,
    /// The action as the API names it, e.g. `power on`.
    pub action: String,
    /// The token's name, or none without authentication.
    pub requested_by: Option<String>,
    pub node_count: i32,
    /// Nodes whose result was an error; none while running.
    pub failed: Option<i32>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One node's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeOutcome {
    pub node: String,
    pub ok: bool,
    pub result: String,
    /// For a failure, its kind (none for rows from before kinds existed).
    pub kind: Option<ErrorKind>,
}

const COLUMNS: &str = "id, action, requested_by, node_count, failed, started_at, finished_at";

fn outcome(r: &QueryResult) -> Result<NodeOutcome, DbError> {
    Ok(NodeOutcome {
        node: r.try_get("", "node")?,
        ok: r.try_get("", "ok")?,
        result: r.try_get("", "result")?,
        kind: r
            .try_get::<Option<String>>("", "error_kind")?
            .as_deref()
            .and_then(ErrorKind::parse),
    })
}

fn request(r: &QueryResult) -> Result<RequestRow, DbError> {
    Ok(RequestRow {
        id: r.try_get("", "id")?,
        action: r.try_get("", "action")?,
        requested_by: r.try_get("", "requested_by")?,
        node_count: r.try_get("", "node_count")?,
        failed: r.try_get("", "failed")?,
        started_at: r.try_get("", "started_at")?,
        finished_at: r.try_get("", "finished_at")?,
    })
}

/// Records that request `id` started.
pub async fn start(
    db: &Db,
    id: &str,
    action: &str,
    requested_by: Option<&str>,
    node_count: usize,
) -> Result<(), DbError> {
    let sql = format!(
        "INSERT INTO {} (id, action, requested_by, node_count, started_at) VALUES (?, ?, ?, ?, ?)",
        quote(db.backend(), "requests")
    );
    let values: Vec<Value> = vec![
        id.into(),
        action.into(),
        requested_by.map(str::to_string).into(),
        (node_count as i32).into(),
        Utc::now().into(),
    ];
    let stmt = Statement::from_sql_and_values(db.backend(), sql, values);
    retrying(|_| db.conn().execute_raw(stmt.clone())).await?;
    Ok(())
}

/// The statements that insert `outcomes` of request `id`, keeping a row
/// already there (the first result recorded for a node is its result: a
/// conductor's, or the API's timeout when the conductor came too late).
fn insert_results(db: &Db, id: &str, outcomes: &[NodeOutcome]) -> Vec<Statement> {
    let backend = db.backend();
    // Only a duplicate key is passed over (MySQL's INSERT IGNORE would
    // pass over bad data too).
    let conflict = match backend {
        sea_orm::DbBackend::MySql => " ON DUPLICATE KEY UPDATE request_id = request_id",
        _ => " ON CONFLICT DO NOTHING",
    };
    let row = format!("({})", placeholders(5));
    outcomes
        .chunks(rows_per_chunk(5))
        .map(|chunk| {
            let sql = format!(
                "INSERT INTO {} (request_id, node, ok, result, error_kind) VALUES {}{conflict}",
                quote(backend, "request_results"),
                vec![row.as_str(); chunk.len()].join(", ")
            );
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
            for o in chunk {
                values.extend([
                    id.into(),
                    o.node.clone().into(),
                    o.ok.into(),
                    o.result.clone().into(),
                    o.kind.map(|k| k.as_str().to_string()).into(),
                ]);
            }
            Statement::from_sql_and_values(backend, sql, values)
        })
        .collect()
}

/// Records results of request `id` as a conductor has them (one reply
/// batch: a statement per 6,000 nodes), before it sends them.
pub async fn record(db: &Db, id: &str, outcomes: &[NodeOutcome]) -> Result<(), DbError> {
    for stmt in insert_results(db, id, outcomes) {
        retrying(|_| db.conn().execute_raw(stmt.clone())).await?;
    }
    Ok(())
}

/// The recorded results of `nodes` in request `id` (what conductors wrote
/// while the reply path was down).
pub async fn results_of(db: &Db, id: &str, nodes: &[String]) -> Result<Vec<NodeOutcome>, DbError> {
    let backend = db.backend();
    let mut out = Vec::new();
    for chunk in nodes.chunks(super::IN_CHUNK) {
        let sql = format!(
            "SELECT node, ok, result, error_kind FROM {} WHERE request_id = ? AND node IN ({})",
            quote(backend, "request_results"),
            placeholders(chunk.len())
        );
        let mut values: Vec<Value> = vec![id.into()];
        values.extend(chunk.iter().map(|n| Value::from(n.clone())));
        let rows = db
            .conn()
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        for r in &rows {
            out.push(outcome(r)?);
        }
    }
    Ok(out)
}

/// Records the results of request `id` no conductor recorded (the API's
/// own: unknown nodes, timeouts, lost replies) and that it finished with
/// `failed` failures, in one transaction.
pub async fn finish(
    db: &Db,
    id: &str,
    outcomes: &[NodeOutcome],
    failed: usize,
) -> Result<(), DbError> {
    use sea_orm::TransactionTrait;
    let backend = db.backend();
    let failed = failed as i32;
    retrying(|_| async {
        let txn = db.conn().begin().await?;
        for stmt in insert_results(db, id, outcomes) {
            txn.execute_raw(stmt).await?;
        }
        let sql = format!(
            "UPDATE {} SET failed = ?, finished_at = ? WHERE id = ?",
            quote(backend, "requests")
        );
        let values: Vec<Value> = vec![failed.into(), Utc::now().into(), id.into()];
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        txn.commit().await
    })
    .await?;
    Ok(())
}

/// Request `id` with its per-node results, by node name.
pub async fn get(db: &Db, id: &str) -> Result<Option<(RequestRow, Vec<NodeOutcome>)>, DbError> {
    let backend = db.backend();
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE id = ?",
        quote(backend, "requests")
    );
    let stmt = Statement::from_sql_and_values(backend, sql, [id.into()]);
    let Some(found) = db.conn().query_one_raw(stmt).await? else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT node, ok, result, error_kind FROM {} WHERE request_id = ? ORDER BY node",
        quote(backend, "request_results")
    );
    let stmt = Statement::from_sql_and_values(backend, sql, [id.into()]);
    let results = db
        .conn()
        .query_all_raw(stmt)
        .await?
        .iter()
        .map(outcome)
        .collect::<Result<_, DbError>>()?;
    Ok(Some((request(&found)?, results)))
}

/// The `limit` most recent requests, newest first.
pub async fn list(db: &Db, limit: u64) -> Result<Vec<RequestRow>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} ORDER BY started_at DESC, id DESC LIMIT {limit}",
        quote(db.backend(), "requests")
    );
    let stmt = Statement::from_string(db.backend(), sql);
    db.conn()
        .query_all_raw(stmt)
        .await?
        .iter()
        .map(request)
        .collect()
}

/// Deletes requests (and their results) started before `before`.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, DbError> {
    let backend = db.backend();
    // Results first: SQLite enforces the cascade only with foreign keys on,
    // and deleting them explicitly is the same on both backends.
    let sql = format!(
        "DELETE FROM {} WHERE request_id IN (SELECT id FROM {} WHERE started_at < ?)",
        quote(backend, "request_results"),
        quote(backend, "requests")
    );
    db.conn()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [before.into()],
        ))
        .await?;
    let sql = format!(
        "DELETE FROM {} WHERE started_at < ?",
        quote(backend, "requests")
    );
    Ok(db
        .conn()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [before.into()],
        ))
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(node: &str, ok: bool, result: &str, kind: Option<ErrorKind>) -> NodeOutcome {
        NodeOutcome {
            node: node.into(),
            ok,
            result: result.into(),
            kind,
        }
    }

    /// What a conductor recorded stays (the first result of a node wins);
    /// the API's finish adds the rest and the count; both can be read
    /// back by node.
    #[tokio::test]
    async fn recorded_results_are_kept_and_read_back() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        db.migrate().await.unwrap();
        start(&db, "r1", "power on", None, 3).await.unwrap();
        let unreachable = Some(ErrorKind::Unreachable);
        record(
            &db,
            "r1",
            &[
                outcome("a", true, "ok", None),
                outcome("b", false, "BMC did not answer", unreachable),
            ],
        )
        .await
        .unwrap();
        // A redelivered batch changes nothing.
        record(&db, "r1", &[outcome("a", false, "late", unreachable)])
            .await
            .unwrap();
        let found = results_of(&db, "r1", &["a".into(), "c".into()])
            .await
            .unwrap();
        assert_eq!(found, [outcome("a", true, "ok", None)]);
        let timeout = Some(ErrorKind::Timeout);
        let not_found = Some(ErrorKind::NotFound);
        finish(
            &db,
            "r1",
            &[
                outcome("b", false, "timeout", timeout),
                outcome("c", false, "Could not be found.", not_found),
            ],
            2,
        )
        .await
        .unwrap();
        let (row, results) = get(&db, "r1").await.unwrap().unwrap();
        assert_eq!(row.failed, Some(2));
        assert!(row.finished_at.is_some());
        assert_eq!(
            results,
            [
                outcome("a", true, "ok", None),
                outcome("b", false, "BMC did not answer", unreachable),
                outcome("c", false, "Could not be found.", not_found),
            ]
        );
    }
}
