//! Secrets at rest: every secret value in a node's or a group's
//! `control_info` / `console_info` (any key [`is_secret_key`] names, at any
//! depth) is stored as `enc:v1:<hex>`: AES-256-GCM with a random 96-bit
//! nonce and the key's name as associated data (a value cannot be moved to
//! another key). The 256-bit key comes from the file `[secrets] key_file`
//! names; API and conductors read the same file. Reads decrypt in
//! [`crate::nodes::load`] and group resolution, writes encrypt, so
//! nothing above the store sees ciphertext and nothing below it plain
//! text.
//!
//! A database dump therefore holds no BMC password; the key file does.

use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect, Statement};
use serde_json::{Map, Value};
use xcat3_common::model::is_secret_key;

use super::entity::{node, nodegroup};
use super::{Db, DbError, quote};

/// What marks an encrypted value.
const PREFIX: &str = "enc:v1:";

/// A data key: encrypts and decrypts secret values.
#[derive(Clone)]
pub struct Cipher {
    key: std::sync::Arc<LessSafeKey>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

/// Why secrets could not be sealed or opened. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("[secrets] key_file {path}: {why}")]
    KeyFile { path: String, why: String },
    #[error("{0}")]
    Undecryptable(String),
}

impl Cipher {
    /// From 32 key bytes.
    pub fn new(key: &[u8; 32]) -> Cipher {
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key");
        Cipher {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
        }
    }

    /// Reads a key file: 64 hex digits (whitespace around them ignored).
    pub fn from_file(path: &Path) -> Result<Cipher, SecretsError> {
        let err = |why: String| SecretsError::KeyFile {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let bytes = from_hex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(
                || err("must hold 64 hex digits (xcat3-api secrets new-key FILE)".into()),
            )?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(Cipher::new(&key))
    }

    /// Writes a new random key file, readable by its owner only; refuses
    /// to overwrite one.
    pub fn create_file(path: &Path) -> Result<(), SecretsError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let err = |why: String| SecretsError::KeyFile {
            path: path.display().to_string(),
            why,
        };
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| err("no random source".into()))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| err(e.to_string()))?;
        writeln!(f, "{}", to_hex(&key)).map_err(|e| err(e.to_string()))
    }

    /// Encrypts one value (its JSON text) bound to `key_name`.
    fn seal_value(&self, key_name: &str, v: &Value) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the OS random source");
        let mut data = v.to_string().into_bytes();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key_name.as_bytes()),
                &mut data,
            )
            .expect("AES-GCM sealing cannot fail for small inputs");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!("{PREFIX}{}", to_hex(&out))
    }

    fn open_value(&self, key_name: &str, text: &str) -> Option<Value> {
        let bytes = from_hex(text.strip_prefix(PREFIX)?)?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let mut sealed = sealed.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(key_name.as_bytes()), &mut sealed)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Encrypts every secret value in `map` (any depth, lists too). `map` is
/// always plain text (opened, or a client's): a value that merely looks
/// sealed (`enc:v1:...` sent by a client) is sealed like any other, so it
/// can never make a later read fail.
pub fn seal(cipher: &Cipher, map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if is_secret_key(k) && !v.is_null() {
            *v = Value::String(cipher.seal_value(k, v));
        } else {
            walk(v, &mut |m| seal(cipher, m));
        }
    }
}

/// Decrypts every encrypted value in `map`; names the first it cannot.
pub fn open(cipher: Option<&Cipher>, map: &mut Map<String, Value>) -> Result<(), String> {
    for (k, v) in map.iter_mut() {
        if let Some(text) = v.as_str().filter(|t| t.starts_with(PREFIX)) {
            let Some(c) = cipher else {
                return Err(format!(
                    "{k}: stored encrypted, and no [secrets] key_file is set"
                ));
            };
            *v = c.open_value(k, text).ok_or_else(|| {
                format!("{k}: cannot be decrypted with [secrets] key_file (wrong key?)")
            })?;
        } else {
            let mut r = Ok(());
            walk(v, &mut |m| {
                if r.is_ok() {
                    r = open(cipher, m);
                }
            });
            r?;
        }
    }
    Ok(())
}

fn walk(v: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match v {
        Value::Object(m) => f(m),
        Value::Array(items) => items.iter_mut().for_each(|i| walk(i, f)),
        _ => {}
    }
}

/// A stored info column (JSON text) with its secrets sealed, when a key
/// is set; as given otherwise.
pub(crate) fn seal_text(db: &Db, map: &Map<String, Value>) -> String {
    match db.cipher() {
        Some(c) if secret_count(map) > 0 => {
            let mut m = map.clone();
            seal(c, &mut m);
            Value::Object(m).to_string()
        }
        _ => Value::Object(map.clone()).to_string(),
    }
}

/// A stored row's two info columns opened: their secrets decrypted.
/// `row` (`node n1`) only names the row in an error, so the common case,
/// nothing sealed, costs a substring search per column and nothing else.
pub(crate) fn open_infos(
    db: &Db,
    row: (&str, &str),
    control_info: &mut String,
    console_info: &mut String,
) -> Result<(), DbError> {
    for (field, text) in [
        ("control_info", control_info),
        ("console_info", console_info),
    ] {
        if !text.contains(PREFIX) {
            continue;
        }
        let mut m = super::nodes::parse_map(text);
        open(db.cipher(), &mut m)
            .map_err(|e| DbError::Invalid(format!("{} {}: {field}.{e}", row.0, row.1)))?;
        *text = Value::Object(m).to_string();
    }
    Ok(())
}

/// How many secret values `map` holds (any depth, lists too).
fn secret_count(m: &Map<String, Value>) -> usize {
    m.iter()
        .map(|(k, v)| {
            if is_secret_key(k) && !v.is_null() {
                1
            } else {
                match v {
                    Value::Object(m) => secret_count(m),
                    Value::Array(a) => a
                        .iter()
                        .filter_map(Value::as_object)
                        .map(secret_count)
                        .sum(),
                    _ => 0,
                }
            }
        })
        .sum()
}

/// The cipher `[secrets] key_file` names (none when it is empty).
pub fn from_config(key_file: &str) -> Result<Option<Cipher>, SecretsError> {
    if key_file.is_empty() {
        return Ok(None);
    }
    Cipher::from_file(Path::new(key_file)).map(Some)
}

/// At start: an error naming a row if the stored secrets cannot be opened
/// with this handle's key (a wrong key, or none while some are sealed).
/// Reads one sealed row per table.
pub async fn verify(db: &Db) -> Result<(), DbError> {
    use sea_orm::ColumnTrait;
    use sea_orm::Condition;
    use sea_orm::QueryFilter;
    let pattern = format!("%{PREFIX}%");
    let node: Option<(String, String, String)> = node::Entity::find()
        .select_only()
        .columns([
            node::Column::Name,
            node::Column::ControlInfo,
            node::Column::ConsoleInfo,
        ])
        .filter(
            Condition::any()
                .add(node::Column::ControlInfo.like(pattern.clone()))
                .add(node::Column::ConsoleInfo.like(pattern.clone())),
        )
        .into_tuple()
        .one(db.conn())
        .await?;
    let group: Option<(String, String, String)> = nodegroup::Entity::find()
        .select_only()
        .columns([
            nodegroup::Column::Name,
            nodegroup::Column::ControlInfo,
            nodegroup::Column::ConsoleInfo,
        ])
        .filter(
            Condition::any()
                .add(nodegroup::Column::ControlInfo.like(pattern.clone()))
                .add(nodegroup::Column::ConsoleInfo.like(pattern)),
        )
        .into_tuple()
        .one(db.conn())
        .await?;
    for (what, row) in [("node", node), ("group", group)] {
        if let Some((name, mut control, mut console)) = row {
            open_infos(db, (what, &name), &mut control, &mut console)?;
        }
    }
    Ok(())
}

/// Rows whose info columns were rewritten by [`seal_stored`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sealed {
    pub nodes: u64,
    pub groups: u64,
}

/// At start: checks that the key opens what is stored (a wrong or missing
/// key is an error naming the row), then seals every secret still stored
/// in clear (rows written before a key was set), and with `reseal_with`
/// re-encrypts everything under that new key (rotation). Bulk: one read
/// per table, one `UPDATE ... CASE` per 1,000 changed rows.
pub async fn seal_stored(db: &Db, reseal_with: Option<&Cipher>) -> Result<Sealed, DbError> {
    let Some(target) = reseal_with.or(db.cipher()) else {
        // No key: nothing to seal; only sealed rows could fail, and one
        // of them says so as well as all of them.
        verify(db).await?;
        return Ok(Sealed::default());
    };
    let mut out = Sealed::default();
    for table in ["nodes", "nodegroups"] {
        let rows: Vec<(i64, String, String, String)> = if table == "nodes" {
            node::Entity::find()
                .select_only()
                .columns([
                    node::Column::Id,
                    node::Column::Name,
                    node::Column::ControlInfo,
                    node::Column::ConsoleInfo,
                ])
                .into_tuple()
                .all(db.conn())
                .await?
        } else {
            nodegroup::Entity::find()
                .select_only()
                .columns([
                    nodegroup::Column::Id,
                    nodegroup::Column::Name,
                    nodegroup::Column::ControlInfo,
                    nodegroup::Column::ConsoleInfo,
                ])
                .into_tuple()
                .all(db.conn())
                .await?
        };
        let mut changed: Vec<(i64, String, String)> = Vec::new();
        for (id, name, control, console) in rows {
            let mut cols = [control, console];
            let mut dirty = false;
            for (i, text) in cols.iter_mut().enumerate() {
                let field = ["control_info", "console_info"][i];
                let mut m = super::nodes::parse_map(text);
                open(db.cipher(), &mut m).map_err(|e| {
                    DbError::Invalid(format!("{} {name}: {field}.{e}", &table[..table.len() - 1]))
                })?;
                if secret_count(&m) > 0 && (reseal_with.is_some() || !all_sealed(text, &m)) {
                    seal(target, &mut m);
                    *text = Value::Object(m).to_string();
                    dirty = true;
                }
            }
            if dirty {
                let [a, b] = cols;
                changed.push((id, a, b));
            }
        }
        for chunk in changed.chunks(1_000) {
            let backend = db.backend();
            let (idq, ci, co) = (
                quote(backend, "id"),
                quote(backend, "control_info"),
                quote(backend, "console_info"),
            );
            let mut params: Vec<sea_orm::Value> = Vec::new();
            let mut case_ci = format!("CASE {idq}");
            for (id, a, _) in chunk {
                case_ci.push_str(" WHEN ? THEN ?");
                params.push((*id).into());
                params.push(a.clone().into());
            }
            let mut case_co = format!("CASE {idq}");
            for (id, _, b) in chunk {
                case_co.push_str(" WHEN ? THEN ?");
                params.push((*id).into());
                params.push(b.clone().into());
            }
            params.extend(chunk.iter().map(|(id, _, _)| sea_orm::Value::from(*id)));
            let sql = format!(
                "UPDATE {} SET {ci} = {case_ci} ELSE {ci} END, {co} = {case_co} ELSE {co} END WHERE {idq} IN ({})",
                quote(backend, table),
                super::placeholders(chunk.len())
            );
            db.conn()
                .execute_raw(Statement::from_sql_and_values(backend, sql, params))
                .await?;
        }
        let n = changed.len() as u64;
        if table == "nodes" {
            out.nodes = n;
        } else {
            out.groups = n;
        }
    }
    Ok(out)
}

/// Whether every secret of the stored `text` was already sealed (`open`
/// is its decrypted map): the count of sealed values equals the count of
/// secrets.
fn all_sealed(text: &str, open: &Map<String, Value>) -> bool {
    text.matches(PREFIX).count() == secret_count(open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seal_then_open_round_trips_and_binds_the_key_name() {
        let c = Cipher::new(&[7u8; 32]);
        let mut m = json!({"bmc_address": "10.0.0.1", "bmc_password": "s3cret",
                           "nested": {"api_key": 42}})
        .as_object()
        .unwrap()
        .clone();
        let plain = m.clone();
        seal(&c, &mut m);
        let text = Value::Object(m.clone()).to_string();
        assert!(
            !text.contains("s3cret") && text.contains("10.0.0.1"),
            "{text}"
        );
        assert!(m["bmc_password"].as_str().unwrap().starts_with(PREFIX));
        let mut opened = m.clone();
        open(Some(&c), &mut opened).unwrap();
        assert_eq!(opened, plain);
        // Another key cannot open it; nor can no key; nor a moved value.
        let mut other = m.clone();
        let e = open(Some(&Cipher::new(&[8u8; 32])), &mut other).unwrap_err();
        assert!(e.starts_with("bmc_password: cannot be decrypted"), "{e}");
        assert!(
            open(None, &mut m.clone())
                .unwrap_err()
                .contains("no [secrets] key_file")
        );
        // A client's value that looks sealed is sealed again and reads
        // back as the text it was.
        let mut fake = json!({"bmc_password": "enc:v1:00ff"})
            .as_object()
            .unwrap()
            .clone();
        seal(&c, &mut fake);
        open(Some(&c), &mut fake).unwrap();
        assert_eq!(fake["bmc_password"], "enc:v1:00ff");
        let mut moved = m.clone();
        let v = moved.remove("bmc_password").unwrap();
        moved.insert("ssh_password".into(), v);
        assert!(open(Some(&c), &mut moved).is_err());
    }

    #[test]
    fn key_files_are_64_hex_digits_and_private() {
        let dir = std::env::temp_dir().join(format!("xcat3-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("k");
        let _ = std::fs::remove_file(&f);
        Cipher::create_file(&f).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(Cipher::from_file(&f).is_ok());
        assert!(Cipher::create_file(&f).is_err(), "never overwrites a key");
        std::fs::write(&f, "abc").unwrap();
        let e = Cipher::from_file(&f).unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
