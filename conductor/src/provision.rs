//! `deploy` for the nodes of one request, in bulk with a result per node:
//! `--state dhcp` (a reservation that boots the disk), `--osimage`
//! (`nodeset`: reservation, install entry, answer files, callback token),
//! the switch to local boot after the install callback, and `deploy -d`.
//! Also the periodic work on `deploying` nodes: deploy timeouts, takeover
//! of nodes whose conductor changed, and local boot for nodes that are no
//! longer deploying.
//!
//! Every state change is checked against
//! [`ProvisionState::next`](xcat3_common::model::ProvisionState::next) on
//! the record loaded under the node's lock, and written in bulk.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use chrono::Utc;
use sea_orm::Value;
use xcat3_common::config::{BootConfig, DhcpConfig};
use xcat3_common::crypt::crypt_password;
use xcat3_common::model::{
    ImageKind, Netboot, ProvisionEvent, ProvisionState, check_install_value,
};
use xcat3_common::ring::HashRing;
use xcat3_common::rpc::{NodeError, ProvisionTarget};
use xcat3_db::nodes::{self as node_db, NodeRecord, parse_map};
use xcat3_db::{Db, DbError, resources};

use crate::answers::{Answers, ImageContext, NodeContext};
use crate::boot::{BootEntry, BootFiles, Install};
use crate::drivers::dhcp::{self, BootLoader, DhcpBackend, Reservation, Subnet, Unserved};
use crate::images::{Image, Images};

/// The `passwds` entry whose password becomes the installed root password.
pub const ROOT_PASSWD_KEY: &str = "system";

pub struct Provisioner {
    db: Db,
    host: String,
    dhcp: Arc<dyn DhcpBackend>,
    files: BootFiles,
    images: Images,
    boot: BootConfig,
}

/// One node's outcome: `Ok` or an error naming the field.
pub type Outcome = (String, Result<(), NodeError>);

/// A node whose install is prepared: files and reservation written.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub name: String,
    pub token: String,
    pub osimage_id: i64,
    /// A stateless image: the node boots from the network at every start.
    pub stateless: bool,
}

/// The columns a state change writes, in this order (see [`state_values`]).
const STATE_COLUMNS: &[&str] = &["state", "state_changed_at", "deploy_token", "last_error"];

/// The values of [`STATE_COLUMNS`] for one node.
fn state_values(
    state: ProvisionState,
    at: chrono::DateTime<Utc>,
    token: Option<String>,
    error: Option<String>,
) -> Vec<Value> {
    vec![
        state.column().into(),
        Some(at).into(),
        token.into(),
        error.into(),
    ]
}

impl Provisioner {
    pub fn new(
        db: Db,
        host: &str,
        dhcp: &DhcpConfig,
        boot: &BootConfig,
    ) -> anyhow::Result<Provisioner> {
        let files = BootFiles::prepare(boot)?;
        Ok(Provisioner {
            db,
            host: host.to_string(),
            dhcp: dhcp::from_config(dhcp, boot)?,
            images: Images::new(&boot.api_url, files.http_root()),
            files,
            boot: boot.clone(),
        })
    }

    pub fn files(&self) -> &BootFiles {
        &self.files
    }

    /// Brings the DHCP server up to date with the networks table (at start,
    /// so a managed dnsmasq serves existing reservations at once).
    pub async fn sync_subnets(&self) -> Result<(Vec<Subnet>, Vec<Unserved>), String> {
        let rows = resources::networks(&self.db)
            .await
            .map_err(|e| format!("reading networks: {e}"))?;
        let own = crate::local_addrs::ipv4_addresses();
        let (subnets, unserved) = Subnet::from_rows(&rows, &self.boot, &own);
        self.dhcp
            .sync_subnets(&subnets)
            .await
            .map_err(|e| e.to_string())?;
        Ok((subnets, unserved))
    }

    /// `dhcp`, `un_dhcp`/`un_nodeset` and the local boot after a callback.
    /// (`nodeset` goes through [`prepare_deploy`](Self::prepare_deploy) and
    /// [`record_deploy`](Self::record_deploy): the runner sets the boot
    /// device between the two.)
    pub async fn run(&self, records: &[NodeRecord], target: &ProvisionTarget) -> Vec<Outcome> {
        match target {
            ProvisionTarget::Dhcp => self.reserve(records).await,
            ProvisionTarget::Clean => self.clean(records).await,
            ProvisionTarget::LocalBoot => self.local_boot(records).await,
            ProvisionTarget::Nodeset { .. } | ProvisionTarget::Takeover => {
                fail_all(records, "internal error: deploys go through prepare_deploy")
            }
        }
    }

    async fn reserve(&self, records: &[NodeRecord]) -> Vec<Outcome> {
        let (allowed, refused) = check_transition(records, ProvisionEvent::Dhcp);
        let mut out: Vec<Outcome> = refused
            .into_iter()
            .map(|(n, e)| (n, Err(NodeError::invalid(e))))
            .collect();
        let written = self
            .write_reservations(&allowed, |_, _| Ok(BootEntry::LocalDisk))
            .await;
        let mut ok = Vec::new();
        for (name, r) in written {
            match r {
                Ok(_) => ok.push(name),
                Err(e) => out.push((name, Err(e))),
            }
        }
        out.extend(self.record_state(&ok, ProvisionState::Dhcp, None).await);
        out
    }

    /// Reservations and boot files for `records` in one backend call and
    /// one blocking task; `entry` gives each node's boot entry (or its
    /// error). Returns each node's entry.
    async fn write_reservations(
        &self,
        records: &[&NodeRecord],
        entry: impl Fn(&NodeRecord, &Reservation) -> Result<BootEntry, String>,
    ) -> Vec<(String, Result<BootEntry, NodeError>)> {
        if records.is_empty() {
            return Vec::new();
        }
        let start = std::time::Instant::now();
        let subnets = match self.sync_subnets().await {
            Ok(s) => s,
            Err(e) => {
                return records
                    .iter()
                    .map(|r| (r.node.name.clone(), Err(NodeError::internal(e.clone()))))
                    .collect();
            }
        };
        let mut out = Vec::with_capacity(records.len());
        let mut hosts = Vec::with_capacity(records.len());
        for r in records {
            match reservation(r, &subnets).and_then(|h| Ok((entry(r, &h)?, h))) {
                Ok((e, h)) => hosts.push((h, e)),
                Err(e) => out.push((r.node.name.clone(), Err(NodeError::invalid(e)))),
            }
        }
        let synced = start.elapsed();
        let reservations: Vec<Reservation> = hosts.iter().map(|(h, _)| h.clone()).collect();
        let added = self.dhcp.add(&reservations).await;
        let reserved = start.elapsed();
        let mut ok = Vec::with_capacity(hosts.len());
        for ((h, e), r) in hosts.into_iter().zip(added) {
            match r {
                Ok(()) => ok.push((h, e)),
                Err(err) => out.push((h.name.clone(), Err(NodeError::internal(err)))),
            }
        }
        let files = self.files.clone();
        let (ok, written) = tokio::task::spawn_blocking(move || {
            let w = files.write(ok.iter().map(|(h, e)| (h, e.clone())));
            (ok, w)
        })
        .await
        .unwrap_or_else(|e| (Vec::new(), Err(format!("boot: {e}"))));
        for (h, e) in ok {
            out.push((
                h.name,
                written.clone().map(|()| e).map_err(NodeError::internal),
            ));
        }
        tracing::info!(
            nodes = records.len(),
            backend = self.dhcp.name(),
            subnets_ms = synced.as_millis() as u64,
            dhcp_ms = (reserved - synced).as_millis() as u64,
            files_ms = (start.elapsed() - reserved).as_millis() as u64,
            "reservations and boot files written"
        );
        out
    }

    async fn clean(&self, records: &[NodeRecord]) -> Vec<Outcome> {
        let hosts: Vec<(String, String)> = records
            .iter()
            .flat_map(|r| r.nics.iter().map(|n| (r.node.name.clone(), n.mac.clone())))
            .collect();
        let removed = self.dhcp.remove(&hosts).await;
        let macs: Vec<String> = hosts.iter().map(|(_, m)| m.clone()).collect();
        let files = self.files.clone();
        let gone = tokio::task::spawn_blocking(move || files.remove(&macs))
            .await
            .unwrap_or_else(|e| Err(format!("boot: {e}")));
        // A node is clean when every step for every one of its nics was.
        let mut errors: HashMap<&str, String> = Default::default();
        for ((name, _), r) in hosts.iter().zip(&removed) {
            if let Some(e) = r.as_ref().err().or(gone.as_ref().err()) {
                errors.entry(name).or_insert_with(|| e.clone());
            }
        }
        let mut out = Vec::with_capacity(records.len());
        let mut ok = Vec::with_capacity(records.len());
        for r in records {
            let name = r.node.name.clone();
            match errors.get(name.as_str()) {
                Some(e) => out.push((name, Err(NodeError::internal(e.clone())))),
                None => ok.push(name),
            }
        }
        out.extend(
            self.record_state(&ok, ProvisionState::Available, None)
                .await,
        );
        out
    }

    /// After the install callback (the API already recorded `deployed`):
    /// the nodes boot from their disks from now on.
    async fn local_boot(&self, records: &[NodeRecord]) -> Vec<Outcome> {
        let macs: Vec<String> = records
            .iter()
            .flat_map(|r| r.nics.iter().map(|n| n.mac.clone()))
            .collect();
        let files = self.files.clone();
        let done = tokio::task::spawn_blocking(move || files.set_local_boot(&macs))
            .await
            .unwrap_or_else(|e| Err(format!("boot: {e}")));
        records
            .iter()
            .map(|r| {
                (
                    r.node.name.clone(),
                    done.clone().map_err(NodeError::internal),
                )
            })
            .collect()
    }

    /// Writes `state` (and its time, no token, `error`) for `names`: one
    /// result per name.
    async fn record_state(
        &self,
        names: &[String],
        state: ProvisionState,
        error: Option<&str>,
    ) -> Vec<Outcome> {
        let now = Utc::now();
        let rows: Vec<(String, Vec<Value>)> = names
            .iter()
            .map(|n| {
                let values = state_values(state, now, None, error.map(str::to_string));
                (n.clone(), values)
            })
            .collect();
        let r = node_db::set_columns(&self.db, STATE_COLUMNS, &rows, None)
            .await
            .map(|_| ())
            .map_err(|e| {
                NodeError::internal(format!("conductor {}: recording the state: {e}", self.host))
            });
        names.iter().map(|n| (n.clone(), r.clone())).collect()
    }

    /// `nodeset`: for each node, its image (`osimage`, or the node's own),
    /// the DHCP reservation, the install boot entry with a one-time
    /// callback token in the kernel command line, and the rendered answer
    /// files. With `takeover` the node is already `deploying` and keeps
    /// its stored token (its installer may be running with it).
    /// `cluster_key` (the cluster's SSH public key) goes into root's
    /// `authorized_keys` through the answer files and overlays.
    pub async fn prepare_deploy(
        &self,
        records: &[NodeRecord],
        osimage: Option<&str>,
        takeover: bool,
        cluster_key: Option<&str>,
    ) -> Vec<(String, Result<Prepared, NodeError>)> {
        let mut out: Vec<(String, Result<Prepared, NodeError>)> = Vec::new();
        let allowed: Vec<&NodeRecord> = if takeover {
            let (deploying, done): (Vec<&NodeRecord>, Vec<&NodeRecord>) =
                records.iter().partition(|r| {
                    matches!(
                        ProvisionState::from_column(r.node.state.as_deref()),
                        ProvisionState::Deploying | ProvisionState::Booted
                    )
                });
            out.extend(done.into_iter().map(|r| {
                (
                    r.node.name.clone(),
                    Err(NodeError::invalid("no longer deploying".into())),
                )
            }));
            deploying
        } else {
            let (allowed, refused) = check_transition(records, ProvisionEvent::Deploy);
            out.extend(
                refused
                    .into_iter()
                    .map(|(n, e)| (n, Err(NodeError::invalid(e)))),
            );
            allowed
        };
        // The images of this request, each fetched and parsed once.
        let images = match self.request_images(&allowed, osimage).await {
            Ok(i) => i,
            Err(e) => {
                out.extend(
                    allowed
                        .iter()
                        .map(|r| (r.node.name.clone(), Err(e.clone()))),
                );
                return out;
            }
        };
        let http_port = self
            .boot
            .http_listen
            .parse::<std::net::SocketAddr>()
            .map(|a| a.port())
            .ok();
        let tokens: HashMap<String, String> = allowed
            .iter()
            .map(|r| {
                let token = match (&r.node.deploy_token, takeover) {
                    (Some(t), true) => t.clone(),
                    _ => new_token(),
                };
                (r.node.name.clone(), token)
            })
            .collect();
        let image_of = |r: &NodeRecord| -> Result<&LoadedImage, NodeError> {
            let key = osimage
                .map(|o| ImageKey::Name(o.to_string()))
                .or(r.node.osimage_id.map(ImageKey::Id))
                .ok_or_else(|| {
                    NodeError::invalid(
                        "osimage: the node has none; give one (deploy --osimage NAME)".into(),
                    )
                })?;
            match images.get(&key) {
                Some(Ok(i)) => Ok(i),
                Some(Err(e)) => Err(e.clone()),
                None => Err(NodeError::internal("osimage: not loaded".into())),
            }
        };
        let written = self
            .write_reservations(&allowed, |r, h| {
                let (_, answers, image) = image_of(r).map_err(|e| e.message)?;
                let ctx = answers.image();
                if let Some(arch) = &r.node.arch
                    && *arch != ctx.arch
                {
                    return Err(format!(
                        "arch: the node is {arch}, osimage {} is {}",
                        ctx.osimage, ctx.arch
                    ));
                }
                let port = http_port.ok_or(
                    "[boot] http_listen is not set on this conductor: nodes cannot fetch kernels",
                )?;
                let server = format!("{}:{port}", h.subnet.next_server);
                let info = parse_map(&r.node.control_info);
                let text = |k: &str| info.get(k).and_then(|v| v.as_str());
                // Again here: a record stored before the write-time check
                // must not put shell into an answer file either.
                for key in [
                    "install_disk",
                    "install_packages",
                    "install_args",
                    "ssh_authorized_keys",
                ] {
                    if let Some(v) = text(key) {
                        check_install_value(key, v).map_err(|e| e.to_string())?;
                    }
                }
                let words = |k: &str| {
                    text(k)
                        .map(|v| v.split_whitespace().collect())
                        .unwrap_or_default()
                };
                let node = NodeContext {
                    node: &r.node.name,
                    mac: &h.mac,
                    domain: h.subnet.domain.as_deref().unwrap_or(""),
                    disk: text("install_disk"),
                    packages: words("install_packages"),
                    extra_args: words("install_args"),
                    authorized_keys: text("ssh_authorized_keys"),
                    cluster_key,
                    token: &tokens[&r.node.name],
                    answers_url: format!("http://{server}/autoinst/{}", r.node.name),
                };
                let built = image.manifest.kind();
                Ok(BootEntry::Install(Arc::new(Install {
                    osimage: ctx.osimage.clone(),
                    server,
                    kernel: image.kernel_path.clone(),
                    initrd: image.initrd_path.clone(),
                    args: answers.kernel_args(&node),
                    answers: answers.render(&node),
                    overlay: built.map(|_| crate::answers::OVERLAY.to_string()),
                    stateless: built == Some(ImageKind::Stateless),
                })))
            })
            .await;
        let by_name: HashMap<&str, &NodeRecord> =
            allowed.iter().map(|r| (r.node.name.as_str(), *r)).collect();
        for (name, r) in written {
            let prepared = r.and_then(|_| {
                let (id, _, image) = image_of(by_name[name.as_str()])?;
                Ok(Prepared {
                    token: tokens[&name].clone(),
                    osimage_id: *id,
                    name: name.clone(),
                    stateless: image.manifest.kind() == Some(ImageKind::Stateless),
                })
            });
            out.push((name, prepared));
        }
        out
    }

    /// Records the prepared nodes as `deploying` (with their token, image
    /// and this conductor as affinity) and the failed ones as `deploy
    /// failed` with their error.
    pub async fn record_deploy(
        &self,
        prepared: &[Prepared],
        failed: &[(String, String)],
    ) -> Result<(), DbError> {
        let now = Utc::now();
        let mut columns = STATE_COLUMNS.to_vec();
        columns.extend(["osimage_id", "conductor_affinity", "deploy_step"]);
        let rows: Vec<(String, Vec<Value>)> = prepared
            .iter()
            .map(|p| {
                let mut values =
                    state_values(ProvisionState::Deploying, now, Some(p.token.clone()), None);
                values.extend([
                    Some(p.osimage_id).into(),
                    Some(self.host.clone()).into(),
                    Option::<String>::None.into(),
                ]);
                (p.name.clone(), values)
            })
            .collect();
        node_db::set_columns(&self.db, &columns, &rows, None).await?;
        let failed_rows: Vec<(String, Vec<Value>)> = failed
            .iter()
            .map(|(n, e)| {
                let values = state_values(ProvisionState::DeployFailed, now, None, Some(e.clone()));
                (n.clone(), values)
            })
            .collect();
        node_db::set_columns(&self.db, STATE_COLUMNS, &failed_rows, None).await?;
        Ok(())
    }

    /// After a takeover: this conductor holds the nodes' boot files now.
    /// Their state, token and timeout clock are left as they were.
    pub async fn record_takeover(&self, prepared: &[Prepared]) -> Result<(), DbError> {
        let rows: Vec<(String, Vec<Value>)> = prepared
            .iter()
            .map(|p| (p.name.clone(), vec![Some(self.host.clone()).into()]))
            .collect();
        for state in [ProvisionState::Deploying, ProvisionState::Booted] {
            node_db::set_columns(
                &self.db,
                &["conductor_affinity"],
                &rows,
                Some(("state", state.as_str().into())),
            )
            .await?;
        }
        Ok(())
    }

    /// Loads, fetches and parses every image the request needs, keyed by
    /// how nodes name them; an image that cannot be used is that key's
    /// error (its nodes fail, the others go on).
    async fn request_images(
        &self,
        records: &[&NodeRecord],
        osimage: Option<&str>,
    ) -> Result<HashMap<ImageKey, Result<LoadedImage, NodeError>>, NodeError> {
        let mut keys: HashSet<ImageKey> = HashSet::new();
        match osimage {
            Some(o) => {
                keys.insert(ImageKey::Name(o.to_string()));
            }
            None => keys.extend(
                records
                    .iter()
                    .filter_map(|r| r.node.osimage_id.map(ImageKey::Id)),
            ),
        }
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        // One crypt per request: the same for every node (and image).
        let root_password = match resources::passwd(&self.db, ROOT_PASSWD_KEY).await {
            Ok(p) => match p.password.filter(|p| !p.is_empty()) {
                Some(pw) => crypt_password(&pw),
                None => {
                    return Err(NodeError::invalid(format!(
                        "passwd {ROOT_PASSWD_KEY}: has no password (the installed root password)"
                    )));
                }
            },
            Err(DbError::NotFound(_)) => {
                return Err(NodeError::invalid(format!(
                    "passwd: no `{ROOT_PASSWD_KEY}` entry for the installed root password (xcat3 passwd-create {ROOT_PASSWD_KEY} username=root password=...)"
                )));
            }
            Err(e) => return Err(NodeError::internal(format!("conductor {}: {e}", self.host))),
        };
        let mut out = HashMap::new();
        for key in keys {
            let row = match &key {
                ImageKey::Name(n) => resources::osimage(&self.db, n).await,
                ImageKey::Id(id) => resources::osimage_by_id(&self.db, *id).await,
            };
            let loaded = match row {
                Ok(row) => match self.images.get(&row).await {
                    Ok(image) => {
                        let m = &image.manifest.media;
                        Answers::new(
                            ImageContext {
                                osimage: row.name.clone(),
                                distro: m.distro.clone(),
                                version: m.version.clone(),
                                arch: m.arch.clone(),
                                installer: m.installer(),
                                iso: image.manifest.iso.clone(),
                                api_url: self.images.api_url().to_string(),
                                root_password: root_password.clone(),
                                timezone: "UTC".into(),
                                kind: image.manifest.kind(),
                            },
                            image.template.as_deref(),
                        )
                        .map(|a| (row.id, a, image))
                        .map_err(NodeError::invalid)
                    }
                    Err(e) => Err(NodeError::internal(e)),
                },
                Err(DbError::NotFound(_)) => Err(NodeError::invalid(match &key {
                    ImageKey::Name(n) => {
                        format!("osimage: `{n}` does not exist (xcat3 osimage-list)")
                    }
                    ImageKey::Id(id) => {
                        format!("osimage: the node's image (id {id}) no longer exists")
                    }
                })),
                Err(e) => Err(NodeError::internal(format!("conductor {}: {e}", self.host))),
            };
            out.insert(key, loaded);
        }
        Ok(out)
    }

    /// The periodic pass over `deploying` (and stateless `booted`) nodes
    /// this conductor owns: fails deploys past `[boot] deploy_timeout`,
    /// takes over those another (dead or former) owner prepared (a booted
    /// stateless node needs its boot files at its next start), and gives
    /// local boot entries to nodes it holds install entries for that are
    /// no longer deploying here (a callback whose notice was lost, a
    /// timeout, a moved node).
    /// Returns the nodes to take over; the caller locks and loads them and
    /// calls [`prepare_deploy`](Self::prepare_deploy) with `takeover`.
    pub async fn sweep_deploying(&self, ring: &HashRing) -> Result<Vec<String>, String> {
        let deploying = node_db::deploying(&self.db)
            .await
            .map_err(|e| format!("reading deploying nodes: {e}"))?;
        let timeout = chrono::Duration::seconds(self.boot.deploy_timeout as i64);
        let now = Utc::now();
        let mut expired = Vec::new();
        let mut takeover = Vec::new();
        let mut mine: HashSet<String> = HashSet::new();
        for d in deploying {
            if ring.owner(&d.name) != Some(self.host.as_str()) {
                continue;
            }
            // A request holds it (the `power boot` right after a deploy):
            // not timed out or taken over now, but its entry is current.
            if d.reservation.is_some() {
                mine.insert(d.name);
                continue;
            }
            let booted = d.state == ProvisionState::Booted.as_str();
            if !booted && d.state_changed_at.is_some_and(|t| now - t > timeout) {
                expired.push((d.name, d.deploy_step));
            } else {
                if d.conductor_affinity.as_deref() != Some(self.host.as_str()) {
                    takeover.push(d.name.clone());
                }
                mine.insert(d.name);
            }
        }
        if !expired.is_empty() {
            let rows: Vec<(String, Vec<Value>)> = expired
                .iter()
                .map(|(n, step)| {
                    let at = step
                        .as_deref()
                        .map(|s| format!(" (last step: {s})"))
                        .unwrap_or_default();
                    let why = format!(
                        "deploy timed out: no install callback within {} s ([boot] deploy_timeout){at}",
                        self.boot.deploy_timeout
                    );
                    let values = vec![
                        ProvisionState::DeployFailed.column().into(),
                        Some(now).into(),
                        Some(why).into(),
                    ];
                    (n.clone(), values)
                })
                .collect();
            // Only while still deploying: a callback may have won the
            // race. The token stays: a stateless node that boots again
            // reports with it.
            let n = node_db::set_columns(
                &self.db,
                &["state", "state_changed_at", "last_error"],
                &rows,
                Some(("state", "deploying".into())),
            )
            .await
            .map_err(|e| format!("failing timed-out deploys: {e}"))?;
            tracing::warn!(
                nodes = n,
                timeout_s = self.boot.deploy_timeout,
                "deploys timed out"
            );
        }
        // Install entries of nodes not deploying here any more boot the disk.
        let stale: Vec<String> = self
            .files
            .installing()
            .into_iter()
            .filter(|(_, name)| !mine.contains(name))
            .map(|(mac, _)| mac)
            .collect();
        if !stale.is_empty() {
            let files = self.files.clone();
            let n = stale.len();
            tokio::task::spawn_blocking(move || files.set_local_boot(&stale))
                .await
                .map_err(|e| e.to_string())??;
            tracing::info!(
                nodes = n,
                "install entries of nodes no longer deploying here now boot the disk"
            );
        }
        Ok(takeover)
    }
}

/// An image ready for a request: its row id, parsed answers, fetched files.
type LoadedImage = (i64, Answers, Arc<Image>);

/// How a request names an image: by `--osimage`, or by a node's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ImageKey {
    Name(String),
    Id(i64),
}

/// A fresh one-time token: 128 random bits as hex.
fn new_token() -> String {
    xcat3_common::random_hex(16)
}

/// Splits `records` into those `event` may move on and the refused ones
/// with the reason.
fn check_transition(
    records: &[NodeRecord],
    event: ProvisionEvent,
) -> (Vec<&NodeRecord>, Vec<(String, String)>) {
    let mut allowed = Vec::with_capacity(records.len());
    let mut refused = Vec::new();
    for r in records {
        match ProvisionState::from_column(r.node.state.as_deref()).next(event) {
            Ok(_) => allowed.push(r),
            Err(e) => refused.push((r.node.name.clone(), e)),
        }
    }
    (allowed, refused)
}

fn fail_all(records: &[NodeRecord], why: &str) -> Vec<Outcome> {
    records
        .iter()
        .map(|r| {
            (
                r.node.name.clone(),
                Err(NodeError::internal(why.to_string())),
            )
        })
        .collect()
}

/// The node's reservation: its primary nic (or its only one) with a MAC
/// and an IPv4 address inside a known network.
fn reservation(
    r: &NodeRecord,
    (subnets, unserved): &(Vec<Subnet>, Vec<Unserved>),
) -> Result<Reservation, String> {
    let (i, nic) = r
        .nics
        .iter()
        .enumerate()
        .find(|(_, n)| n.primary)
        .or_else(|| (r.nics.len() == 1).then(|| (0, &r.nics[0])))
        .ok_or_else(|| {
            if r.nics.is_empty() {
                "nics_info: no nic (a DHCP reservation needs a MAC and an IP)".to_string()
            } else {
                "nics_info: no nic is primary (set \"primary\": true on the boot nic)".to_string()
            }
        })?;
    let field = format!("nics_info.nics[{i}].ip");
    let ip: Ipv4Addr = nic
        .ip
        .as_deref()
        .ok_or_else(|| format!("{field}: not set (a DHCP reservation needs one)"))?
        .parse()
        .map_err(|_| format!("{field}: only IPv4 addresses can be reserved"))?;
    let subnet = subnets
        .iter()
        .find(|s| s.contains(ip))
        .ok_or_else(|| match unserved.iter().find(|u| u.contains(ip)) {
            Some(u) => format!(
                "{field}: {ip} is in network {}, which has no next_server, and this conductor has \
                 no address in {}/{}: set one (`xcat3 network-update {} next_server=IP`) or \
                 [boot] server_address",
                u.name, u.network, u.netmask, u.name
            ),
            None => format!("{field}: {ip} is outside every network (see `xcat3 network-list`)"),
        })?
        .clone();
    let loader = match r
        .node
        .netboot
        .as_deref()
        .and_then(|v| Netboot::parse("netboot", v).ok())
    {
        None | Some(Netboot::Ipxe) => BootLoader::Ipxe,
        Some(Netboot::Pxe) => BootLoader::Pxelinux,
        Some(Netboot::Grub2) => BootLoader::Grub2,
        Some(Netboot::Petitboot) => BootLoader::Petitboot,
    };
    Ok(Reservation {
        name: r.node.name.clone(),
        mac: nic.mac.clone(),
        ip,
        subnet,
        loader,
    })
}
