//! Reaching nodes' operating systems over SSH: `exec` and `copy` run here,
//! on the conductor that owns each node in the ring, so a 10,000-node
//! command spreads over the conductors and no host opens every session.
//!
//! Trust, both ways, is explicit:
//! - **We are** the cluster's own key pair ([`ClusterKey`]), made once per
//!   cluster and kept in the database (private half sealed). Its public
//!   half goes into what xcat3 boots (the agent overlay's
//!   `authorized_keys`) and is served to admins (`xcat3 ssh-key`) for
//!   other nodes.
//! - **They are** the host keys the node's own agent reported at boot
//!   (`node_host_keys`), or that the admin declared for nodes xcat3 did not
//!   boot (`control_info.os_ssh_host_keys`). A node with neither is not
//!   connected to at all: no trust on first use.

pub mod session;

use std::sync::Arc;

use russh::keys::{PrivateKey, PublicKey};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use xcat3_db::Db;
use xcat3_db::nodes::NodeRecord;

use crate::drivers::DriverError;
pub use session::{HostKeys, Login};

/// The cluster's SSH identity, loaded (or made) once per process.
pub struct ClusterKey {
    pub private: Arc<PrivateKey>,
    /// `ssh-ed25519 AAAA... xcat3`.
    pub public: String,
}

/// The comment on the cluster's public key.
const KEY_COMMENT: &str = "xcat3";

/// Reads the cluster's key pair, making and storing one if the cluster
/// has none yet (any process may be first; all end with the same pair).
pub async fn cluster_key(db: &Db) -> Result<ClusterKey, String> {
    let id = xcat3_db::shell::identity(db, make_identity)
        .await
        .map_err(|e| format!("the cluster's SSH key: {e}"))?;
    let private = PrivateKey::from_openssh(id.private.as_bytes())
        .map_err(|e| format!("the cluster's SSH key is stored but unreadable: {e}"))?;
    Ok(ClusterKey {
        private: Arc::new(private),
        public: id.public,
    })
}

/// A new Ed25519 pair from the OS's random source.
fn make_identity() -> Result<xcat3_db::shell::Identity, String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let mut key = PrivateKey::from(pair);
    key.set_comment(KEY_COMMENT);
    let private = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| format!("encoding the key: {e}"))?
        .to_string();
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| format!("encoding the key: {e}"))?;
    Ok(xcat3_db::shell::Identity { public, private })
}

/// Host keys one node may report.
pub const MAX_HOST_KEYS: usize = 8;

/// The host keys a node reported, checked and written as `type base64`
/// (comments dropped: they are the node's to choose).
pub fn checked_host_keys(lines: &[String]) -> Result<Vec<String>, String> {
    if lines.len() > MAX_HOST_KEYS {
        return Err(format!("host_keys: at most {MAX_HOST_KEYS}"));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut key = PublicKey::from_openssh(l.trim())
                .map_err(|e| format!("host_keys[{i}]: not an OpenSSH public key ({e})"))?;
            key.set_comment("");
            key.to_openssh()
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("host_keys[{i}]: {e}"))
        })
        .collect()
}

/// What every `exec`, `copy` and deploy of this conductor shares: the
/// cluster's key, read (or made) once.
#[derive(Default)]
pub struct Shell {
    key: OnceCell<Arc<ClusterKey>>,
}

impl Shell {
    /// The cluster's key, read (or made) on first use.
    pub async fn key(&self, db: &Db) -> Result<Arc<ClusterKey>, String> {
        self.key
            .get_or_try_init(|| async { cluster_key(db).await.map(Arc::new) })
            .await
            .cloned()
    }

    /// The client settings of one request's sessions.
    pub fn client_config() -> Arc<russh::client::Config> {
        Arc::new(russh::client::Config {
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        })
    }
}

/// Where one node's OS is reached and how it is recognised.
#[derive(Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub host_keys: Vec<PublicKey>,
}

impl Target {
    /// From the node's record (`control_info.os_*`, its primary nic's IP)
    /// and the host keys its agent reported (`reported`).
    pub fn of(rec: &NodeRecord, reported: &[String]) -> Result<Target, DriverError> {
        let info: Map<String, Value> = xcat3_db::nodes::parse_map(&rec.node.control_info);
        let text = |k: &str| -> Result<Option<String>, DriverError> {
            match info.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(Value::String(_)) => Ok(None),
                Some(_) => Err(DriverError::invalid(format!(
                    "control_info.{k}: must be a string"
                ))),
            }
        };
        let host = match text("os_address")? {
            Some(h) => h,
            None => rec
                .primary_nic()
                .and_then(|n| n.ip.clone())
                .filter(|ip| !ip.is_empty())
                .ok_or_else(|| {
                    DriverError::invalid(
                        "no address to reach its OS at: give its primary nic an ip, or set control_info.os_address".into(),
                    )
                })?,
        };
        let port = ssh_port(info.get("os_ssh_port"), "control_info.os_ssh_port")?;
        let mut host_keys = Vec::new();
        for (i, line) in text("os_ssh_host_keys")?
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .enumerate()
        {
            host_keys.push(PublicKey::from_openssh(line).map_err(|e| {
                DriverError::invalid(format!(
                    "control_info.os_ssh_host_keys: line {} is not an OpenSSH public key ({e})",
                    i + 1
                ))
            })?);
        }
        // What the node reported was checked when it was stored.
        host_keys.extend(
            reported
                .iter()
                .filter_map(|l| PublicKey::from_openssh(l).ok()),
        );
        if host_keys.is_empty() {
            return Err(DriverError::invalid(
                "no SSH host key is known for its OS: boot it with xcat3 (its agent reports them) \
                 or set control_info.os_ssh_host_keys (ssh-keyscan from a host you trust)"
                    .into(),
            ));
        }
        Ok(Target {
            host,
            port,
            host_keys,
        })
    }

    /// `SSH 10.0.0.7:22`, the start of every error about this node.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("SSH [{}]:{}", self.host, self.port)
        } else {
            format!("SSH {}:{}", self.host, self.port)
        }
    }
}

/// An SSH port from a record (a number or its text; 22 when unset).
pub fn ssh_port(value: Option<&Value>, field: &str) -> Result<u16, DriverError> {
    match value {
        None | Some(Value::Null) => Ok(22),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|p| (1..=65535).contains(p))
            .map(|p| p as u16)
            .ok_or_else(|| DriverError::invalid(format!("{field}: must be 1-65535"))),
    }
}
