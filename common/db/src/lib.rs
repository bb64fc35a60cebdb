//! State in SQLite (one machine) or MariaDB/MySQL (many), chosen by URL.
//!
//! Bulk work is bulk SQL: `IN` queries and multi-row statements in chunks
//! sized below each backend's placeholder limit, one transaction per bulk
//! write. Per-node outcomes are values in the returned map; `Err` means the
//! database itself failed.

pub mod entity;
pub mod groups;
pub mod history;
pub mod inventory;
pub mod locks;
mod migration;
pub mod nodes;
pub mod resources;
pub mod scripts;
pub mod secrets;
pub mod services;
pub mod shell;
pub mod tokens;

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;

pub use migration::Migrator;

/// A database failure, or a client mistake detected by the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

/// Placeholders per statement we allow ourselves (SQLite's limit is 32,766,
/// MySQL's 65,535).
const MAX_PARAMS: usize = 30_000;

/// Rows per statement for a table with `columns` columns.
pub(crate) fn rows_per_chunk(columns: usize) -> usize {
    (MAX_PARAMS / columns.max(1)).max(1)
}

/// Names per `IN (...)` list.
pub(crate) const IN_CHUNK: usize = 5_000;

/// A connection pool plus what we know about the backend.
#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    /// Encrypts secrets at rest (`[secrets] key_file`); none: stored as given.
    cipher: Option<secrets::Cipher>,
}

impl Db {
    /// Connects to `url` (`sqlite://PATH?mode=rwc`, `sqlite::memory:`,
    /// `mysql://user:pass@host/db`).
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let mut opts = ConnectOptions::new(url.to_string());
        opts.sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30));
        if url.starts_with("sqlite:") {
            // One writer at a time is SQLite's model; a single connection
            // avoids SQLITE_BUSY on read-then-write transactions, and
            // `sqlite::memory:` needs it to be one database at all.
            opts.max_connections(1).min_connections(1);
        } else {
            opts.max_connections(16).min_connections(1);
        }
        let conn = Database::connect(opts).await?;
        if conn.get_database_backend() == DbBackend::Sqlite {
            for pragma in [
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=NORMAL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=10000",
            ] {
                conn.execute_unprepared(pragma).await?;
            }
        }
        Ok(Db { conn, cipher: None })
    }

    /// Applies pending migrations; a no-op when the schema is current.
    pub async fn migrate(&self) -> Result<(), DbError> {
        Migrator::up(&self.conn, None).await?;
        Ok(())
    }

    /// Names of pending migrations (empty when current).
    pub async fn pending_migrations(&self) -> Result<Vec<String>, DbError> {
        Ok(Migrator::get_pending_migrations(&self.conn)
            .await?
            .iter()
            .map(|m| m.name().to_string())
            .collect())
    }

    /// This handle with secrets sealed and opened by `cipher`.
    pub fn with_cipher(mut self, cipher: Option<secrets::Cipher>) -> Db {
        self.cipher = cipher;
        self
    }

    pub fn cipher(&self) -> Option<&secrets::Cipher> {
        self.cipher.as_ref()
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }
}

/// Quotes an identifier for `backend`.
pub(crate) fn quote(backend: DbBackend, ident: &str) -> String {
    match backend {
        DbBackend::MySql => format!("`{ident}`"),
        _ => format!("\"{ident}\""),
    }
}

/// One row's insert-or-replace for `backend`: `columns[0]` is the key,
/// the others are replaced when the key is taken.
pub(crate) fn upsert_sql(backend: DbBackend, table: &str, columns: &[&str]) -> String {
    let table = quote(backend, table);
    let cols = columns.join(", ");
    let values = placeholders(columns.len());
    let rest = &columns[1..];
    match backend {
        DbBackend::MySql => {
            let set: Vec<String> = rest.iter().map(|c| format!("{c} = VALUES({c})")).collect();
            format!(
                "INSERT INTO {table} ({cols}) VALUES ({values}) ON DUPLICATE KEY UPDATE {}",
                set.join(", ")
            )
        }
        _ => {
            let set: Vec<String> = rest.iter().map(|c| format!("{c} = excluded.{c}")).collect();
            format!(
                "INSERT INTO {table} ({cols}) VALUES ({values}) ON CONFLICT ({}) DO UPDATE SET {}",
                columns[0],
                set.join(", ")
            )
        }
    }
}

/// Deletes what `table` keeps per node (a `node_id` column) for the nodes
/// with these ids: they are being deleted.
pub(crate) async fn delete_node_rows<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    ids: &[i64],
) -> Result<(), DbError> {
    let backend = conn.get_database_backend();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "DELETE FROM {} WHERE node_id IN ({})",
            quote(backend, table),
            placeholders(chunk.len())
        );
        let values: Vec<sea_orm::Value> = chunk.iter().map(|&i| i.into()).collect();
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(
            backend, sql, values,
        ))
        .await?;
    }
    Ok(())
}

/// `?, ?, ?` for `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// True if `e` is a unique-key violation (a concurrent writer got there first).
pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// An error that may go away if the statement or transaction is re-run.
pub(crate) trait Retryable: std::fmt::Display {
    fn retryable(&self) -> bool;
}

impl Retryable for DbErr {
    fn retryable(&self) -> bool {
        is_retryable(self)
    }
}

impl Retryable for DbError {
    fn retryable(&self) -> bool {
        matches!(self, DbError::Db(e) if is_retryable(e))
    }
}

/// Runs `op(attempt)` again (up to 3 more times, 20 ms, 40 ms, 60 ms apart)
/// when it fails with a retryable error: unique-key races, and InnoDB
/// deadlocks, which happen even between conductors' bulk statements on
/// disjoint rows (gap locks on the name index). `attempt` is 0 first.
pub(crate) async fn retrying<T, E, F, Fut>(mut op: F) -> Result<T, E>
where
    E: Retryable,
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match op(attempt).await {
            Err(e) if attempt < 3 && e.retryable() => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "retried");
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// True if re-running the whole transaction may succeed: a unique-key race,
/// an InnoDB deadlock (1213) or lock wait timeout (1205), SQLite busy.
pub(crate) fn is_retryable(e: &DbErr) -> bool {
    if is_unique_violation(e) {
        return true;
    }
    let text = e.to_string();
    ["1213", "1205", "Deadlock found", "database is locked"]
        .iter()
        .any(|m| text.contains(m))
}
