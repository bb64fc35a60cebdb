//! One TOML file (`etc/xcat3/xcat3.toml.sample` documents every key),
//! overridden by `XCAT3_<SECTION>_<KEY>` environment variables, then by
//! command-line flags in each binary. Unknown keys are errors, so a typo in
//! a config file is reported instead of silently ignored.

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub bus: BusConfig,
    pub api: ApiConfig,
    pub conductor: ConductorConfig,
    pub power: PowerConfig,
    pub ipmi: IpmiConfig,
    pub kvm: KvmConfig,
    pub dhcp: DhcpConfig,
    pub boot: BootConfig,
    pub secrets: SecretsConfig,
    pub console: ConsoleConfig,
    pub genimage: GenimageConfig,
}

/// `genimage`: node images built on the API host from Debian's packages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GenimageConfig {
    /// The package mirror; empty: the first Debian URI of this host's apt
    /// sources, else http://deb.debian.org/debian.
    pub mirror: String,
    /// The `xcat3-agent` binary put into images; empty: the one beside
    /// `xcat3-api`.
    pub agent: String,
    /// Bootstrapped roots kept per distro, arch and package set, so a
    /// second image of the same set skips the download (minutes).
    pub cache_dir: String,
}

impl Default for GenimageConfig {
    fn default() -> Self {
        GenimageConfig {
            mirror: String::new(),
            agent: String::new(),
            cache_dir: "/var/cache/xcat3/genimage".into(),
        }
    }
}

/// The console server in every conductor: serial consoles held by the
/// node's owner, logged, shared by viewers who reach it through the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where the API reaches this conductor's console endpoint (websocket,
    /// with a token the conductor registers); empty disables consoles here.
    pub listen: String,
    /// The address the API connects to, when `listen` is not it (a
    /// wildcard address, NAT); empty: `listen`, with a wildcard replaced by
    /// `[conductor] host`.
    pub advertise: String,
    /// One log file per node (`<node>.log`), rotated.
    pub log_dir: String,
    /// Bytes a node's log grows to before it is rotated to `<node>.log.1`.
    pub log_max_bytes: u64,
    /// Rotated logs kept per node.
    pub log_keep: u32,
    /// Bytes of recent output a viewer gets before live output.
    pub replay_bytes: usize,
    /// Seconds between checks of which consoles this conductor must hold
    /// (a ring change is noticed within 2 s regardless).
    pub reconcile_interval: u64,
    /// Seconds an `on_demand` console stays connected after its last
    /// viewer leaves.
    pub linger: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            listen: "127.0.0.1:0".into(),
            advertise: String::new(),
            log_dir: "/var/log/xcat3/consoles".into(),
            log_max_bytes: 16 << 20,
            log_keep: 3,
            replay_bytes: 16 << 10,
            reconcile_interval: 30,
            linger: 30,
        }
    }
}

/// Secrets at rest (BMC and other passwords in `control_info`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// A file of 64 hex digits (`xcat3-api secrets new-key FILE`): the
    /// AES-256 key secrets are stored encrypted with. API and conductors
    /// read the same file. Empty: secrets are stored as given (standalone
    /// makes `<data-dir>/secrets.key` itself).
    pub key_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH?mode=rwc` or `mysql://USER:PASS@HOST:PORT/DB`.
    pub url: String,
    /// Run pending migrations when a service starts.
    pub auto_migrate: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite:///var/lib/xcat3/xcat3.db?mode=rwc".into(),
            auto_migrate: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `amqp://USER:PASS@HOST:PORT/VHOST` or `memory` (standalone only).
    pub url: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            url: "memory".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// `none` (loopback only) or `token`.
    pub auth: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Most nodes one request may name.
    pub max_nodes_per_request: usize,
    /// Seconds an action (power, boot device) may take before nodes that
    /// have not answered get a timeout result.
    pub request_timeout: u64,
    /// Where `copycds` puts OS install trees (`<osimage>/…`), served by
    /// the API under `/install/` for conductors and installers.
    pub install_dir: String,
    /// Days bulk requests and their per-node results are kept for
    /// `xcat3 history`; 0 keeps them forever.
    pub history_days: u64,
    /// Open connections at once (lowered to fit the process's file
    /// descriptor limit); more are closed at accept.
    pub max_connections: usize,
    /// Open connections at once from one client address.
    pub max_connections_per_ip: usize,
    /// Seconds a client may take to send a request's head (and to start
    /// the next one on a kept-alive connection).
    pub header_timeout: u64,
    /// Seconds a request body may pause between two chunks.
    pub body_timeout: u64,
    /// Addresses of reverse proxies whose `X-Forwarded-For` names the
    /// client (the install callback checks the node's address).
    pub trusted_proxies: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:3010".into(),
            auth: "none".into(),
            max_body_bytes: 64 * 1024 * 1024,
            max_nodes_per_request: 100_000,
            request_timeout: 300,
            install_dir: "/var/lib/xcat3/install".into(),
            history_days: 30,
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_timeout: 10,
            body_timeout: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConductorConfig {
    /// This conductor's name in the ring; empty means the machine's hostname.
    pub host: String,
    /// Seconds between heartbeats.
    pub heartbeat_interval: u64,
    /// Seconds after the last heartbeat at which a conductor counts as dead.
    pub heartbeat_timeout: u64,
    /// Driver calls in flight at once on this conductor.
    pub workers: usize,
    /// Requests taken from the bus before earlier ones are acknowledged.
    pub prefetch: u16,
    /// Seconds one driver call may take.
    pub call_timeout: u64,
    /// Seconds between looks for expired temporary guests.
    pub expiry_interval: u64,
}

impl Default for ConductorConfig {
    fn default() -> Self {
        ConductorConfig {
            host: String::new(),
            heartbeat_interval: 10,
            heartbeat_timeout: 30,
            workers: 1000,
            prefetch: 16,
            call_timeout: 60,
            expiry_interval: 30,
        }
    }
}

/// Limits on powering nodes on, so that a site's breakers survive
/// `xcat3 power <10,000 nodes> on` (xCAT's `syspowermaxnodes` /
/// `syspowerinterval`). Per conductor; they apply to `on`, `boot` and
/// `cycle`, the actions that can start a machine. And the periodic
/// power-state sync (Ironic's `sync_power_state_interval`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PowerConfig {
    /// Power-on actions in flight at once; 0 means no limit beyond `workers`.
    pub max_concurrent: usize,
    /// Milliseconds between the starts of two power-on actions; 0 means none.
    pub stagger_ms: u64,
    /// Seconds between two reads of the power state of every node a
    /// conductor owns (a node switched off by hand shows `off`); 0 = never.
    pub sync_interval: u64,
    /// Power-state reads of one sync in flight at once. They use none of
    /// the `workers` that serve requests, and pause while a request runs.
    pub sync_workers: usize,
}

impl Default for PowerConfig {
    fn default() -> Self {
        PowerConfig {
            max_concurrent: 0,
            stagger_ms: 0,
            sync_interval: 60,
            sync_workers: 16,
        }
    }
}

/// The IPMI (lanplus) client's retransmission schedule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IpmiConfig {
    /// Milliseconds to wait for a BMC's answer before sending again.
    pub retry_interval_ms: u64,
    /// Sends after the first; a BMC that answers none of them is reported
    /// unreachable after `retry_interval_ms * (retries + 1)`.
    pub retries: u32,
    /// Seconds of quiet after which a serial console (SOL) checks that its
    /// session still holds the payload (a stolen or dead session is noticed
    /// within this plus the retries).
    pub sol_keepalive: u64,
}

impl Default for IpmiConfig {
    fn default() -> Self {
        IpmiConfig {
            retry_interval_ms: 500,
            retries: 4,
            sol_keepalive: 15,
        }
    }
}

/// How conductors talk to libvirt for `mgt=kvm` guests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KvmConfig {
    /// libvirt calls in flight at once on one hypervisor's connection.
    pub max_per_hypervisor: usize,
    /// `mkvm`: the libvirt domain type of new guests (`kvm`, or `qemu`
    /// for hypervisors without hardware virtualization).
    pub domain_type: String,
    /// `mkvm`: guests may be given host memory times this in all.
    pub memory_overcommit: f64,
    /// `mkvm`: guests may be given host CPUs times this in all.
    pub cpu_overcommit: f64,
}

impl Default for KvmConfig {
    fn default() -> Self {
        KvmConfig {
            max_per_hypervisor: 16,
            domain_type: "kvm".into(),
            memory_overcommit: 1.0,
            cpu_overcommit: 16.0,
        }
    }
}

/// Where DHCP reservations go (ARCHITECTURE.md, DHCP drivers).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DhcpConfig {
    /// `dnsmasq`, `kea` or `none`.
    pub backend: String,
    /// dnsmasq: the directory of `xcat3.conf` (subnets, boot-file rules)
    /// and `hosts/` (one file per reservation, read by dnsmasq on the fly).
    pub dir: String,
    /// dnsmasq: start and supervise `dnsmasq` with that configuration.
    pub manage: bool,
    /// dnsmasq with `manage`: the interface to serve (empty: all).
    pub interface: String,
    /// kea: the `mysql://` URL of Kea's hosts database (made with
    /// `kea-admin db-init mysql`).
    pub kea_database_url: String,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        DhcpConfig {
            backend: "none".into(),
            dir: "/var/lib/xcat3/dhcp".into(),
            manage: false,
            interface: String::new(),
            kea_database_url: String::new(),
        }
    }
}

/// Network boot files served by each conductor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BootConfig {
    /// The address nodes reach this conductor at (DHCP next-server and the
    /// host of boot URLs), unless the node's network names a next_server.
    pub server_address: String,
    /// TFTP listen address; empty disables TFTP.
    pub tftp_listen: String,
    /// HTTP listen address for iPXE scripts, kernels and initrds; empty
    /// disables it.
    pub http_listen: String,
    /// Root of the TFTP tree (iPXE binaries, pxelinux.cfg/, grub/).
    pub tftp_root: String,
    /// Root of the HTTP tree (ipxe/ scripts; install trees later).
    pub http_root: String,
    /// Where the iPXE binaries come from (Debian's `ipxe` package).
    pub ipxe_dir: String,
    /// The API's URL as conductors and installing nodes reach it (images,
    /// package repository, install callback).
    pub api_url: String,
    /// Seconds a node may stay `deploying` before it fails.
    pub deploy_timeout: u64,
    /// Where the conductor keeps its boot state (install entries with
    /// their tokens); never inside a served tree. Empty: `<tftp_root>.state`.
    pub state_dir: String,
    /// Serve a node's answer files and accept its install callback only
    /// from one of the node's own addresses (its nics' IPs).
    pub check_node_address: bool,
}

impl Default for BootConfig {
    fn default() -> Self {
        BootConfig {
            server_address: String::new(),
            tftp_listen: String::new(),
            http_listen: String::new(),
            tftp_root: "/var/lib/xcat3/tftpboot".into(),
            http_root: "/var/lib/xcat3/httpboot".into(),
            ipxe_dir: "/usr/lib/ipxe".into(),
            api_url: String::new(),
            deploy_timeout: 3600,
            state_dir: String::new(),
            check_node_address: true,
        }
    }
}

impl BootConfig {
    /// The boot state directory: `state_dir`, or `<tftp_root>.state`
    /// beside (never inside) the TFTP root.
    pub fn state_dir(&self) -> std::path::PathBuf {
        if self.state_dir.is_empty() {
            format!("{}.state", self.tftp_root.trim_end_matches('/')).into()
        } else {
            self.state_dir.clone().into()
        }
    }
}

/// The sections `XCAT3_<SECTION>_<KEY>` variables may name: every field
/// of [`Config`] (a test holds the two together).
const SECTIONS: &[&str] = &[
    "database",
    "bus",
    "api",
    "conductor",
    "power",
    "ipmi",
    "kvm",
    "dhcp",
    "boot",
    "secrets",
    "console",
    "genimage",
];

impl Config {
    /// Reads `path` (if given), then applies `XCAT3_*` variables from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut table: toml::Table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("XCAT3_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, name)) = rest.split_once('_') else {
                continue;
            };
            if !SECTIONS.contains(&section) {
                continue;
            }
            // Typed where TOML can read the text (numbers, booleans),
            // otherwise a string.
            let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value.clone()));
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(t) = entry.as_table_mut() else {
                bail!("config section [{section}] is not a table");
            };
            t.insert(name.to_string(), parsed);
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        Ok(config)
    }
}

/// A URL with its password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A section added to `Config` but not to `SECTIONS` would ignore its
    /// environment variables (`[genimage]` once did).
    #[test]
    fn every_section_takes_environment_overrides() {
        let toml::Value::Table(t) = toml::Value::try_from(Config::default()).unwrap() else {
            panic!("a config is a table");
        };
        let mut fields: Vec<&str> = t.keys().map(String::as_str).collect();
        let mut sections = SECTIONS.to_vec();
        fields.sort_unstable();
        sections.sort_unstable();
        assert_eq!(fields, sections);
    }

    /// The sample documents every option with its default: it parses (no
    /// unknown key) and equals `Config::default()` (no stale value), and
    /// every field appears in it.
    #[test]
    fn sample_config_is_complete_and_current() {
        let text = include_str!("../../../etc/xcat3/xcat3.toml.sample");
        let parsed: Config = toml::from_str(text).expect("sample parses");
        assert_eq!(parsed, Config::default());
        let table: toml::Table = toml::from_str(text).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for (section, keys) in &defaults {
            for key in keys.as_table().unwrap().keys() {
                assert!(
                    table.get(section).and_then(|s| s.get(key)).is_some(),
                    "[{section}] {key} is not in the sample"
                );
            }
        }
    }

    /// Every `XCAT3_<SECTION>_<KEY>` the compose file sets is an option
    /// the code knows, and together they load.
    #[test]
    fn compose_settings_are_known_options() {
        let text = include_str!("../../../deploy/docker-compose.yml");
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let mut env = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once(": ") else {
                continue;
            };
            let Some(rest) = key.strip_prefix("XCAT3_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let (section, name) = rest.split_once('_').unwrap();
            assert!(
                defaults.get(section).and_then(|s| s.get(name)).is_some(),
                "compose sets {key}, which is no option ([{section}] {name})"
            );
            env.push((key.to_string(), value.trim_matches('"').to_string()));
        }
        assert!(env.len() >= 8, "too few settings found: {env:?}");
        Config::load(None, env).expect("the compose settings load");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact_url("mysql://x:pw@db/x"), "mysql://x:***@db/x");
        assert_eq!(redact_url("amqp://guest@mq/%2f"), "amqp://guest@mq/%2f");
        assert_eq!(redact_url("sqlite:///a.db"), "sqlite:///a.db");
    }

    #[test]
    fn env_overrides_file_and_unknown_keys_fail() {
        let dir = std::env::temp_dir().join(format!("xcat3-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.toml");
        std::fs::write(
            &f,
            "[api]\nlisten = \"127.0.0.1:1\"\n[database]\nurl = \"sqlite::memory:\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&f),
            [
                ("XCAT3_API_LISTEN".to_string(), "127.0.0.1:2".to_string()),
                (
                    "XCAT3_CONDUCTOR_HEARTBEAT_TIMEOUT".to_string(),
                    "45".to_string(),
                ),
                ("PATH".to_string(), "/bin".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(c.api.listen, "127.0.0.1:2");
        assert_eq!(c.conductor.heartbeat_timeout, 45);
        assert_eq!(c.database.url, "sqlite::memory:");
        std::fs::write(&f, "[api]\nlisen = \"x\"\n").unwrap();
        let e = Config::load(Some(&f), []).unwrap_err();
        assert!(format!("{e:#}").contains("lisen"), "{e:#}");
    }
}
