//! What reaching nodes' operating systems over SSH keeps: the cluster's
//! SSH identity (`ssh_identity`, made once by whichever process needs it
//! first; the private half sealed under `[secrets] key_file` like any
//! secret) and the host keys each node's agent reported
//! (`node_host_keys`, deleted with the node).

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, Statement, Value};
use serde_json::{Map, Value as Json};

use super::{Db, DbError, IN_CHUNK, placeholders, quote};

/// The cluster's key pair, as OpenSSH text.
#[derive(Clone)]
pub struct Identity {
    /// `ssh-ed25519 AAAA... xcat3`.
    pub public: String,
    /// The OpenSSH private key (PEM). Never logged, never served.
    pub private: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The row's name: one identity per cluster.
const CLUSTER: &str = "cluster";
/// The key the private half is sealed under (a secret's name, so
/// `secrets::seal` encrypts it).
const SEALED_AS: &str = "ssh_key";

/// The cluster's identity; when there is none yet, `make` is called and
/// its pair stored, unless another process stored one first (then that
/// one is returned: every process ends up with the same pair).
pub async fn identity(
    db: &Db,
    make: impl FnOnce() -> Result<Identity, String>,
) -> Result<Identity, DbError> {
    if let Some(found) = read_identity(db).await? {
        return Ok(found);
    }
    let fresh = make().map_err(DbError::Invalid)?;
    let mut sealed = Map::new();
    sealed.insert(SEALED_AS.into(), Json::String(fresh.private.clone()));
    let backend = db.backend();
    let ignore = match backend {
        sea_orm::DbBackend::MySql => "INSERT IGNORE",
        _ => "INSERT OR IGNORE",
    };
    let sql = format!(
        "{ignore} INTO {} (name, public_key, private_key, created_at) VALUES (?, ?, ?, ?)",
        quote(backend, "ssh_identity")
    );
    let values: Vec<Value> = vec![
        CLUSTER.into(),
        fresh.public.clone().into(),
        super::secrets::seal_text(db, &sealed).into(),
        chrono::Utc::now().timestamp().into(),
    ];
    db.conn()
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    read_identity(db)
        .await?
        .ok_or_else(|| DbError::Invalid("ssh_identity: stored, then not found".into()))
}

async fn read_identity(db: &Db) -> Result<Option<Identity>, DbError> {
    let backend = db.backend();
    let sql = format!(
        "SELECT public_key, private_key FROM {} WHERE name = ?",
        quote(backend, "ssh_identity")
    );
    let row = db
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [CLUSTER.into()],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let public: String = row.try_get_by_index(0)?;
    let mut stored: String = row.try_get_by_index(1)?;
    let mut unused = String::from("{}");
    super::secrets::open_infos(db, ("ssh_identity", CLUSTER), &mut stored, &mut unused)?;
    let private = super::nodes::parse_map(&stored)
        .get(SEALED_AS)
        .and_then(Json::as_str)
        .map(str::to_string)
        .ok_or_else(|| DbError::Invalid("ssh_identity: the private key is missing".into()))?;
    Ok(Some(Identity { public, private }))
}

/// Stores the host keys `node_id` reported (OpenSSH public key lines),
/// replacing what it reported before.
pub async fn store_host_keys(db: &Db, node_id: i64, keys: &[String]) -> Result<(), DbError> {
    let backend = db.backend();
    let sql = super::upsert_sql(
        backend,
        "node_host_keys",
        &["node_id", "host_keys", "reported_at"],
    );
    let values: Vec<Value> = vec![
        node_id.into(),
        keys.join("\n").into(),
        chrono::Utc::now().timestamp().into(),
    ];
    db.conn()
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// The host keys the nodes with these ids reported, by id.
pub async fn host_keys(db: &Db, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, DbError> {
    let backend = db.backend();
    let mut out = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT node_id, host_keys FROM {} WHERE node_id IN ({})",
            quote(backend, "node_host_keys"),
            placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|&i| i.into()).collect();
        for row in db
            .conn()
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            let id: i64 = row.try_get_by_index(0)?;
            let keys: String = row.try_get_by_index(1)?;
            out.insert(id, keys.lines().map(str::to_string).collect());
        }
    }
    Ok(out)
}
