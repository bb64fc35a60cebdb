//! Per-node boot files, kept in memory and served by the TFTP and HTTP
//! servers: writing 10,000 nodes' files is a map update plus one state
//! file, not 10,000 file creations (which cost seconds on a busy disk).
//! The state file (`boot-entries.json` in `[boot] state_dir`, mode 0600 in
//! a 0700 directory) brings them back after a restart; it holds install
//! tokens and crypted root passwords, so it never lies inside a served
//! tree. Static files (iPXE binaries, `boot.ipxe`, later kernels and
//! install trees) stay on disk.
//!
//! Answer files carry the crypted root password and the node's callback
//! token: each is served only to its node's reserved address
//! ([`BootFiles::answer_file`]), unless `[boot] check_node_address` is off.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use xcat3_common::config::BootConfig;

use crate::drivers::dhcp::{BootLoader, Reservation};

/// iPXE binaries copied from `[boot] ipxe_dir` into the TFTP root.
const IPXE_BINARIES: &[&str] = &["undionly.kpxe", "ipxe.efi", "snponly.efi"];
const STATE_FILE: &str = "boot-entries.json";

/// What one node boots into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootEntry {
    /// Boot from the local disk (state `dhcp`, or deployed).
    LocalDisk,
    /// Run an OS installer.
    Install(Arc<Install>),
}

/// An installer to boot: kernel and initrd URLs, its command line, and the
/// node's answer files (served at `/autoinst/<node>/<file>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Install {
    pub osimage: String,
    /// The HTTP server's address as the node reaches it (`IP:PORT`).
    pub server: String,
    /// Paths under the HTTP root.
    pub kernel: String,
    pub initrd: String,
    pub args: Vec<String>,
    pub answers: Vec<(String, String)>,
    /// A built image: the node's overlay archive, loaded after the root
    /// archive (`initrd`), from `/autoinst/<node>/<overlay>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<String>,
    /// A stateless image: the node network-boots it on every start, so
    /// its entry is never turned to local boot by the deploy sweep.
    #[serde(default)]
    pub stateless: bool,
}

/// How often a node's iPXE tries to fetch a built image before it gives
/// up and boots the next device, and the pause between tries: in a mass
/// reboot one failed fetch must not leave a node dead.
const IMAGE_FETCH_TRIES: usize = 6;
const IMAGE_FETCH_PAUSE_S: u32 = 5;

impl Install {
    /// Paths of the archives the kernel gets: the initrd (a built image's
    /// root), then the node's overlay if any.
    fn initrd_paths(&self, name: &str) -> Vec<String> {
        let mut v = vec![self.initrd.clone()];
        if let Some(o) = &self.overlay {
            v.push(format!("autoinst/{name}/{o}"));
        }
        v
    }

    /// The iPXE script of a built image: kernel, root archive and overlay,
    /// all three fetched again on any failure (the tries are unrolled:
    /// Debian's iPXE has no `inc`).
    fn image_script(&self, name: &str, overlay: &str) -> String {
        let mut s = format!(
            "#!ipxe\n# xcat3: node {name}, boot image {os}\necho xcat3: {name} boots {os}\n",
            os = self.osimage
        );
        for t in 1..=IMAGE_FETCH_TRIES {
            s.push_str(&format!(
                ":try{t}\nkernel --name vmlinuz {k} initrd=root initrd=overlay {args} && initrd --name root {r} && initrd --name overlay {o} && boot ||\necho xcat3: fetching the image failed (try {t} of {IMAGE_FETCH_TRIES})\nimgfree\n",
                k = self.url(&self.kernel),
                r = self.url(&self.initrd),
                o = self.url(&format!("autoinst/{name}/{overlay}")),
                args = self.args.join(" "),
            ));
            if t < IMAGE_FETCH_TRIES {
                s.push_str(&format!("sleep {IMAGE_FETCH_PAUSE_S}\n"));
            }
        }
        s.push_str("echo xcat3: giving up on the image; booting the next device\nexit\n");
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.server)
    }
}

/// What a node's files are made from (the persisted form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Node {
    name: String,
    loader: Loader,
    entry: BootEntry,
    /// The node's reserved address: the only client its answer files go
    /// to. Absent in state files of earlier versions (then nobody gets
    /// them while the check is on, until the entry is written again).
    #[serde(default)]
    ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Loader {
    Ipxe,
    Grub2,
    Pxelinux,
    Petitboot,
}

impl From<BootLoader> for Loader {
    fn from(l: BootLoader) -> Loader {
        match l {
            BootLoader::Ipxe => Loader::Ipxe,
            BootLoader::Grub2 => Loader::Grub2,
            BootLoader::Pxelinux => Loader::Pxelinux,
            BootLoader::Petitboot => Loader::Petitboot,
        }
    }
}

#[derive(Default)]
struct Tables {
    /// By MAC (lower-case, colons).
    nodes: HashMap<String, Node>,
    /// Rendered files by path relative to each root.
    tftp: HashMap<String, Arc<str>>,
    http: HashMap<String, Arc<str>>,
    /// Node name → its reserved address, for nodes with answer files: the
    /// only client those files go to (one lookup per fetch, not a scan).
    answer_owner: HashMap<String, Option<Ipv4Addr>>,
}

impl Tables {
    fn insert(&mut self, mac: &str, node: Node) {
        self.drop_files(mac);
        let m = mac.replace(':', "-");
        let name = &node.name;
        // The iPXE script exists for every loader: a node falls back to
        // iPXE when its firmware can.
        let ipxe = match &node.entry {
            BootEntry::LocalDisk => format!(
                "#!ipxe\n# xcat3: node {name}, boot from local disk\necho xcat3: {name} boots from its disk\nexit\n"
            ),
            BootEntry::Install(i) if i.overlay.is_some() => {
                i.image_script(name, i.overlay.as_deref().unwrap_or_default())
            }
            BootEntry::Install(i) => format!(
                "#!ipxe\n# xcat3: node {name}, install {os}\necho xcat3: {name} installs {os}\nkernel {k} initrd=initrd {args}\ninitrd --name initrd {i}\nboot\n",
                os = i.osimage,
                k = i.url(&i.kernel),
                i = i.url(&i.initrd),
                args = i.args.join(" "),
            ),
        };
        self.http.insert(format!("ipxe/{m}"), ipxe.into());
        if let BootEntry::Install(i) = &node.entry {
            for (file, text) in &i.answers {
                self.http
                    .insert(format!("autoinst/{name}/{file}"), text.as_str().into());
            }
            self.answer_owner.insert(name.clone(), node.ip);
        }
        match node.loader {
            Loader::Ipxe => {}
            Loader::Pxelinux | Loader::Petitboot => {
                let body = match &node.entry {
                    BootEntry::LocalDisk => {
                        "DEFAULT local\nLABEL local\n  LOCALBOOT 0\n".to_string()
                    }
                    // lpxelinux and petitboot fetch http:// URLs themselves.
                    BootEntry::Install(i) => format!(
                        "DEFAULT install\nLABEL install\n  KERNEL {}\n  APPEND initrd={} {}\n  IPAPPEND 2\n",
                        i.url(&i.kernel),
                        i.initrd_paths(name)
                            .iter()
                            .map(|p| i.url(p))
                            .collect::<Vec<_>>()
                            .join(","),
                        i.args.join(" ")
                    ),
                };
                self.tftp.insert(
                    format!("pxelinux.cfg/01-{m}"),
                    format!("# xcat3: node {name}\n{body}").into(),
                );
            }
            Loader::Grub2 => {
                let body = match &node.entry {
                    BootEntry::LocalDisk => "set timeout=0\nexit\n".to_string(),
                    // GRUB splits on `;`: every argument is quoted.
                    BootEntry::Install(i) => format!(
                        "set timeout=0\nmenuentry 'install {os}' {{\n  linux (http,{s})/{k} {args}\n  initrd {i}\n}}\n",
                        os = i.osimage,
                        s = i.server,
                        k = i.kernel,
                        i = i
                            .initrd_paths(name)
                            .iter()
                            .map(|p| format!("(http,{})/{p}", i.server))
                            .collect::<Vec<_>>()
                            .join(" "),
                        args = i
                            .args
                            .iter()
                            .map(|a| format!("'{a}'"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                };
                let text: Arc<str> = format!("# xcat3: node {name}\n{body}").into();
                // GRUB upstream looks for grub.cfg-<mac>; Ironic and xCAT
                // write grub.cfg-01-<mac>: serve both.
                self.tftp
                    .insert(format!("grub/grub.cfg-01-{m}"), text.clone());
                self.tftp.insert(format!("grub/grub.cfg-{m}"), text);
            }
        }
        self.nodes.insert(mac.to_string(), node);
    }

    fn drop_files(&mut self, mac: &str) {
        let m = mac.replace(':', "-");
        self.http.remove(&format!("ipxe/{m}"));
        if let Some(Node {
            name,
            entry: BootEntry::Install(i),
            ..
        }) = self.nodes.get(mac)
        {
            for (file, _) in &i.answers {
                self.http.remove(&format!("autoinst/{name}/{file}"));
            }
            self.answer_owner.remove(name);
        }
        for p in [
            format!("pxelinux.cfg/01-{m}"),
            format!("grub/grub.cfg-01-{m}"),
            format!("grub/grub.cfg-{m}"),
        ] {
            self.tftp.remove(&p);
        }
    }
}

/// An answer file as one client may see it.
#[derive(Debug, PartialEq)]
pub enum Answer {
    File(Arc<str>),
    /// No such file.
    Missing,
    /// The file exists, but the client is not the node's reserved address.
    Refused,
}

/// The boot trees: static files on disk, per-node files in memory.
#[derive(Clone)]
pub struct BootFiles {
    tftp_root: PathBuf,
    http_root: PathBuf,
    state_dir: PathBuf,
    check_node_address: bool,
    tables: Arc<RwLock<Tables>>,
    /// One state-file writer at a time.
    saving: Arc<std::sync::Mutex<()>>,
}

impl BootFiles {
    /// Creates the trees, copies the iPXE binaries, writes `boot.ipxe` and
    /// loads the per-node entries an earlier run left.
    pub fn prepare(cfg: &BootConfig) -> anyhow::Result<BootFiles> {
        let tftp_root = PathBuf::from(&cfg.tftp_root);
        let http_root = PathBuf::from(&cfg.http_root);
        for d in [&tftp_root, &http_root] {
            std::fs::create_dir_all(d)
                .map_err(|e| anyhow::anyhow!("[boot]: creating {}: {e}", d.display()))?;
        }
        let mut missing = Vec::new();
        for b in IPXE_BINARIES {
            let from = Path::new(&cfg.ipxe_dir).join(b);
            if std::fs::copy(&from, tftp_root.join(b)).is_err() {
                missing.push(from.display().to_string());
            }
        }
        if !missing.is_empty() {
            tracing::warn!(
                missing = missing.join(", "),
                "iPXE binaries not found (apt install ipxe, or set [boot] ipxe_dir); nodes cannot chain-load iPXE over TFTP"
            );
        }
        let chain = match cfg.http_listen.parse::<std::net::SocketAddr>() {
            Ok(a) => format!(
                "#!ipxe\n\
                 # xcat3: run this node's own script, named by its MAC.\n\
                 chain http://${{next-server}}:{}/ipxe/${{mac:hexhyp}} || goto none\n\
                 :none\n\
                 echo xcat3: no boot script for ${{mac}}; booting the next device\n\
                 exit\n",
                a.port()
            ),
            Err(_) => "#!ipxe\necho xcat3: [boot] http_listen is not set\nexit\n".to_string(),
        };
        std::fs::write(tftp_root.join("boot.ipxe"), &chain)?;
        std::fs::write(http_root.join("boot.ipxe"), &chain)?;
        let state_dir = cfg.state_dir();
        private_dir(&state_dir)?;
        let files = BootFiles {
            tftp_root,
            http_root,
            state_dir,
            check_node_address: cfg.check_node_address,
            tables: Arc::default(),
            saving: Arc::default(),
        };
        // Earlier versions kept the state file in the TFTP root, where
        // anyone could fetch it: move it out (or drop it if both exist).
        let legacy = files.tftp_root.join(STATE_FILE);
        if legacy.exists() {
            if !files.state_path().exists() {
                std::fs::copy(&legacy, files.state_path())?;
            }
            std::fs::remove_file(&legacy)?;
            tracing::warn!(from = %legacy.display(), to = %files.state_path().display(), "boot state moved out of the TFTP root");
        }
        let saved: HashMap<String, Node> = std::fs::read(files.state_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if !saved.is_empty() {
            tracing::info!(nodes = saved.len(), "boot entries restored");
        }
        let mut t = files.tables.write().expect("boot tables lock");
        for (mac, node) in saved {
            t.insert(&mac, node);
        }
        drop(t);
        Ok(files)
    }

    pub fn tftp_root(&self) -> &Path {
        &self.tftp_root
    }

    pub fn http_root(&self) -> &Path {
        &self.http_root
    }

    fn state_path(&self) -> PathBuf {
        self.state_dir.join(STATE_FILE)
    }

    /// An answer file (`autoinst/<node>/<file>`) as `client` may see it.
    pub fn answer_file(&self, path: &str, client: IpAddr) -> Answer {
        let Ok(t) = self.tables.read() else {
            return Answer::Missing;
        };
        let Some(text) = t.http.get(path).cloned() else {
            return Answer::Missing;
        };
        if !self.check_node_address {
            return Answer::File(text);
        }
        let allowed = path
            .strip_prefix("autoinst/")
            .and_then(|r| r.split('/').next())
            .and_then(|node| t.answer_owner.get(node).copied().flatten())
            .is_some_and(|ip| client.to_canonical() == IpAddr::V4(ip));
        if allowed {
            Answer::File(text)
        } else {
            Answer::Refused
        }
    }

    /// A per-node file served over TFTP, by path relative to the root.
    pub fn tftp_file(&self, path: &str) -> Option<Arc<str>> {
        self.tables.read().ok()?.tftp.get(path).cloned()
    }

    /// A per-node file served over HTTP, by path relative to the root.
    pub fn http_file(&self, path: &str) -> Option<Arc<str>> {
        self.tables.read().ok()?.http.get(path).cloned()
    }

    /// Sets every host's files (blocking: writes the state file once).
    pub fn write<'a>(
        &self,
        hosts: impl IntoIterator<Item = (&'a Reservation, BootEntry)>,
    ) -> Result<(), String> {
        {
            let mut t = self.tables.write().map_err(|_| "boot tables poisoned")?;
            for (h, entry) in hosts {
                let node = Node {
                    name: h.name.clone(),
                    loader: h.loader.into(),
                    entry,
                    ip: Some(h.ip),
                };
                t.insert(&h.mac, node);
            }
        }
        self.persist()
    }

    /// Makes the entries of these MACs boot from the local disk (the
    /// install finished or failed); MACs without files are left alone.
    pub fn set_local_boot(&self, macs: &[String]) -> Result<(), String> {
        {
            let mut t = self.tables.write().map_err(|_| "boot tables poisoned")?;
            for mac in macs {
                if let Some(node) = t.nodes.get(mac).cloned()
                    && node.entry != BootEntry::LocalDisk
                {
                    let node = Node {
                        entry: BootEntry::LocalDisk,
                        ..node
                    };
                    t.insert(mac, node);
                }
            }
        }
        self.persist()
    }

    /// Node names with an install entry, by MAC (not stateless images':
    /// those nodes boot them on every start).
    pub fn installing(&self) -> Vec<(String, String)> {
        self.tables
            .read()
            .map(|t| {
                t.nodes
                    .iter()
                    .filter(|(_, n)| matches!(&n.entry, BootEntry::Install(i) if !i.stateless))
                    .map(|(mac, n)| (mac.clone(), n.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes every file these MACs had.
    pub fn remove(&self, macs: &[String]) -> Result<(), String> {
        {
            let mut t = self.tables.write().map_err(|_| "boot tables poisoned")?;
            for mac in macs {
                t.drop_files(mac);
                t.nodes.remove(mac);
            }
        }
        self.persist()
    }

    fn persist(&self) -> Result<(), String> {
        let _one = self.saving.lock().map_err(|_| "boot state lock poisoned")?;
        let text = {
            let t = self.tables.read().map_err(|_| "boot tables poisoned")?;
            serde_json::to_vec(&t.nodes).map_err(|e| e.to_string())?
        };
        let path = self.state_path();
        let tmp = path.with_extension("json.tmp");
        write_private(&tmp, &text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("boot: saving {}: {e}", path.display()))
    }
}

/// Creates `dir` readable by its owner only (or tightens it).
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| anyhow::anyhow!("[boot] state_dir: creating {}: {e}", dir.display()))
}

/// Writes `path` with mode 0600 from the start (never briefly readable).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install() -> BootEntry {
        BootEntry::Install(Arc::new(Install {
            osimage: "img".into(),
            server: "10.0.0.1:8080".into(),
            kernel: "images/img/kernel".into(),
            initrd: "images/img/initrd".into(),
            args: vec!["ip=dhcp".into(), "ds=nocloud-net;s=http://x/".into()],
            answers: vec![("user-data".into(), "#cloud-config\n".into())],
            overlay: None,
            stateless: false,
        }))
    }

    fn image_entry(stateless: bool) -> BootEntry {
        BootEntry::Install(Arc::new(Install {
            osimage: "compute".into(),
            server: "10.0.0.1:8080".into(),
            kernel: "images/compute/kernel".into(),
            initrd: "images/compute/initrd".into(),
            args: vec!["rdinit=/sbin/init".into(), "xcat3.token=t".into()],
            answers: vec![("overlay.cpio".into(), "070701".into())],
            overlay: Some("overlay.cpio".into()),
            stateless,
        }))
    }

    /// A built image: kernel, root archive and the node's overlay, each
    /// try fetching all three again after a pause, and at the end the
    /// next boot device rather than a dead node. A stateless entry is
    /// not an install the sweep would turn to local boot.
    #[test]
    fn image_entries_retry_their_fetches_and_stateless_ones_stay() {
        let dir = std::env::temp_dir().join(format!("xcat3-image-entry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = BootConfig {
            tftp_root: dir.join("tftp").display().to_string(),
            http_root: dir.join("http").display().to_string(),
            state_dir: dir.join("state").display().to_string(),
            http_listen: "10.0.0.1:8080".into(),
            ..BootConfig::default()
        };
        let files = BootFiles::prepare(&cfg).unwrap();
        let mut t = files.tables.write().unwrap();
        t.insert("52:54:00:00:00:01", node(Loader::Ipxe, image_entry(true)));
        t.insert(
            "52:54:00:00:00:02",
            node2(Loader::Grub2, image_entry(false)),
        );
        drop(t);
        let script = files.http_file("ipxe/52-54-00-00-00-01").unwrap();
        assert_eq!(script.matches("kernel --name vmlinuz http://10.0.0.1:8080/images/compute/kernel initrd=root initrd=overlay rdinit=/sbin/init xcat3.token=t && initrd --name root http://10.0.0.1:8080/images/compute/initrd && initrd --name overlay http://10.0.0.1:8080/autoinst/n1/overlay.cpio && boot ||").count(), IMAGE_FETCH_TRIES);
        assert_eq!(script.matches("sleep 5").count(), IMAGE_FETCH_TRIES - 1);
        assert!(script.ends_with("exit\n"), "{script}");
        let grub = files
            .tftp_file("grub/grub.cfg-01-52-54-00-00-00-02")
            .unwrap();
        assert!(
            grub.contains("initrd (http,10.0.0.1:8080)/images/compute/initrd (http,10.0.0.1:8080)/autoinst/n2/overlay.cpio"),
            "{grub}"
        );
        let installing: Vec<String> = files.installing().into_iter().map(|(_, n)| n).collect();
        assert_eq!(installing, ["n2"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn node2(loader: Loader, entry: BootEntry) -> Node {
        Node {
            name: "n2".into(),
            ..node(loader, entry)
        }
    }

    fn node(loader: Loader, entry: BootEntry) -> Node {
        Node {
            name: "n1".into(),
            loader,
            entry,
            ip: Some(Ipv4Addr::new(10, 0, 0, 21)),
        }
    }

    /// The review's finding: `tftp get boot-entries.json` handed out every
    /// installing node's token and root hash, and any client got any
    /// node's answer files.
    #[test]
    fn state_stays_out_of_served_trees_and_answers_go_to_their_node_only() {
        let dir = std::env::temp_dir().join(format!("xcat3-boot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = BootConfig {
            tftp_root: dir.join("tftpboot").display().to_string(),
            http_root: dir.join("httpboot").display().to_string(),
            ipxe_dir: dir.join("none").display().to_string(),
            ..BootConfig::default()
        };
        // A state file an earlier version left in the TFTP root moves out.
        std::fs::create_dir_all(&cfg.tftp_root).unwrap();
        std::fs::write(dir.join("tftpboot").join(STATE_FILE), "{}").unwrap();
        let files = BootFiles::prepare(&cfg).unwrap();
        assert!(!dir.join("tftpboot").join(STATE_FILE).exists());
        let mut t = files.tables.write().unwrap();
        t.insert("52:54:00:00:00:01", node(Loader::Ipxe, install()));
        drop(t);
        files.persist().unwrap();
        let state = cfg.state_dir().join(STATE_FILE);
        assert!(state.exists());
        for served in [&cfg.tftp_root, &cfg.http_root] {
            assert!(!state.starts_with(served), "{served}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o600);
        assert_eq!(mode(&cfg.state_dir()), 0o700);

        let path = "autoinst/n1/user-data";
        let own: IpAddr = "10.0.0.21".parse().unwrap();
        let other: IpAddr = "10.0.0.22".parse().unwrap();
        assert_eq!(
            files.answer_file(path, own),
            Answer::File("#cloud-config\n".into())
        );
        assert_eq!(files.answer_file(path, other), Answer::Refused);
        assert_eq!(
            files.answer_file(path, "127.0.0.1".parse().unwrap()),
            Answer::Refused
        );
        assert_eq!(
            files.answer_file("autoinst/n2/user-data", other),
            Answer::Missing
        );
        let open = BootFiles {
            check_node_address: false,
            ..files.clone()
        };
        assert!(matches!(open.answer_file(path, other), Answer::File(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn install_entries_for_each_loader_and_back_to_local_disk() {
        let mac = "52:54:00:00:00:01";
        let m = "52-54-00-00-00-01";
        let mut t = Tables::default();
        t.insert(mac, node(Loader::Grub2, install()));
        let ipxe = t.http[&format!("ipxe/{m}")].to_string();
        assert!(ipxe.contains(
            "kernel http://10.0.0.1:8080/images/img/kernel initrd=initrd ip=dhcp ds=nocloud-net;s=http://x/\n"
        ), "{ipxe}");
        assert!(
            ipxe.contains("initrd --name initrd http://10.0.0.1:8080/images/img/initrd\nboot\n")
        );
        assert_eq!(&*t.http["autoinst/n1/user-data"], "#cloud-config\n");
        // GRUB: both file names, every argument quoted (`;` splits commands).
        let grub = t.tftp[&format!("grub/grub.cfg-01-{m}")].to_string();
        assert_eq!(grub, t.tftp[&format!("grub/grub.cfg-{m}")].to_string());
        assert!(grub.contains(
            "linux (http,10.0.0.1:8080)/images/img/kernel 'ip=dhcp' 'ds=nocloud-net;s=http://x/'\n"
        ), "{grub}");
        assert!(grub.contains("initrd (http,10.0.0.1:8080)/images/img/initrd\n"));

        t.insert(mac, node(Loader::Pxelinux, install()));
        assert!(
            !t.tftp.contains_key(&format!("grub/grub.cfg-{m}")),
            "old files dropped"
        );
        let pxe = t.tftp[&format!("pxelinux.cfg/01-{m}")].to_string();
        assert!(
            pxe.contains("KERNEL http://10.0.0.1:8080/images/img/kernel\n"),
            "{pxe}"
        );
        assert!(pxe.contains("APPEND initrd=http://10.0.0.1:8080/images/img/initrd ip=dhcp"));

        t.insert(mac, node(Loader::Pxelinux, BootEntry::LocalDisk));
        assert!(t.tftp[&format!("pxelinux.cfg/01-{m}")].contains("LOCALBOOT 0"));
        assert!(
            !t.http.contains_key("autoinst/n1/user-data"),
            "answers go with the entry"
        );
    }
}
