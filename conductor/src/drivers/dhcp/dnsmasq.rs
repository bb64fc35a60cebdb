//! dnsmasq: `DIR/xcat3.conf` holds the subnets and boot-file rules,
//! `DIR/hosts/<node>` one reservation each (`--dhcp-hostsdir`, read by
//! dnsmasq as files appear). A changed or deleted host file is only
//! forgotten after a reload, done once per batch.
//!
//! The reload: dnsmasq 2.90 (Debian 12) aborts on SIGHUP when a lease
//! exists and host lines carry `set:` tags (seen in our netns test: exit
//! 134; the same `dhcp_netid_free` bug is reported against 2.86). So with
//! `manage = true`, where we run dnsmasq ourselves, the reload is a restart
//! (about 10 ms; leases survive in the lease file). A dnsmasq run by
//! someone else gets the SIGHUP the man page prescribes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use xcat3_common::config::{BootConfig, DhcpConfig};

use super::process::Supervised;
use super::{BootLoader, DhcpBackend, DhcpError, Reservation, Subnet, for_each_host};

pub struct Dnsmasq {
    dir: PathBuf,
    /// Serve only this interface (when we run dnsmasq).
    interface: Option<String>,
    /// Port of the boot HTTP server (iPXE scripts), if any.
    http_port: Option<u16>,
    /// dnsmasq itself, when we run it (`manage = true`).
    process: Option<Supervised>,
}

fn err(message: impl std::fmt::Display) -> DhcpError {
    DhcpError {
        backend: "dnsmasq",
        message: message.to_string(),
    }
}

impl Dnsmasq {
    pub fn new(dhcp: &DhcpConfig, boot: &BootConfig) -> anyhow::Result<Dnsmasq> {
        let dir = PathBuf::from(&dhcp.dir);
        for d in [dir.join("hosts"), dir.join("opts"), dir.join("tmp")] {
            std::fs::create_dir_all(&d)
                .map_err(|e| anyhow::anyhow!("[dhcp] dir: creating {}: {e}", d.display()))?;
        }
        let conf = format!("--conf-file={}", dir.join("xcat3.conf").display());
        let process = dhcp.manage.then(|| {
            Supervised::new(
                "dnsmasq",
                vec![
                    "--keep-in-foreground".into(),
                    conf.clone(),
                    "--log-facility=-".into(),
                ],
                vec![],
                dir.join("dnsmasq.log"),
                dir.join("dnsmasq.pid"),
                conf.clone(),
                "started, version",
            )
        });
        Ok(Dnsmasq {
            interface: (dhcp.manage && !dhcp.interface.is_empty()).then(|| dhcp.interface.clone()),
            process,
            http_port: boot
                .http_listen
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|a| a.port()),
            dir,
        })
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.join("xcat3.conf")
    }

    fn host_path(&self, name: &str) -> PathBuf {
        self.dir.join("hosts").join(name)
    }

    /// The whole configuration for `subnets`.
    fn render(&self, subnets: &[Subnet]) -> String {
        let d = self.dir.display();
        let mut c = format!(
            "# Written by xcat3-conductor from the networks table; rewritten when they change.\n\
             port=0\n\
             dhcp-authoritative\n\
             log-dhcp\n\
             dhcp-leasefile={d}/dnsmasq.leases\n\
             pid-file={d}/dnsmasq.pid\n\
             dhcp-hostsdir={d}/hosts\n\
             dhcp-optsdir={d}/opts\n\
             # iPXE says so in its user class and option 175; UEFI by option 93.\n\
             dhcp-userclass=set:ipxe,iPXE\n\
             dhcp-match=set:ipxe,175\n\
             dhcp-match=set:efi64,option:client-arch,7\n\
             dhcp-match=set:efi64,option:client-arch,9\n"
        );
        if let Some(i) = &self.interface {
            let _ = writeln!(c, "interface={i}\nbind-interfaces");
        }
        for s in subnets {
            let tag = format!("net-{}", s.name);
            match s.dynamic_range {
                Some((a, b)) => {
                    let _ = writeln!(c, "dhcp-range=set:{tag},{a},{b},{},12h", s.netmask);
                }
                None => {
                    let _ = writeln!(
                        c,
                        "dhcp-range=set:{tag},{},static,{},12h",
                        s.network, s.netmask
                    );
                }
            }
            if let Some(g) = s.gateway {
                let _ = writeln!(c, "dhcp-option=tag:{tag},option:router,{g}");
            }
            if !s.nameservers.is_empty() {
                let ns: Vec<String> = s.nameservers.iter().map(|n| n.to_string()).collect();
                let _ = writeln!(
                    c,
                    "dhcp-option=tag:{tag},option:dns-server,{}",
                    ns.join(",")
                );
            }
            if let Some(dom) = &s.domain {
                let _ = writeln!(c, "dhcp-option=tag:{tag},option:domain-name,{dom}");
            }
            // Boot files, only for our reservations (tagged per loader).
            let ns = s.next_server;
            let mut boot = |tags: &str, file: String| {
                let _ = writeln!(c, "dhcp-boot=tag:{tag},{tags},{file},,{ns}");
            };
            boot(
                "tag:xcat3-ipxe,tag:ipxe",
                match self.http_port {
                    Some(p) => format!("http://{ns}:{p}/boot.ipxe"),
                    None => "boot.ipxe".into(),
                },
            );
            boot("tag:xcat3-ipxe,tag:!ipxe,tag:efi64", "ipxe.efi".into());
            boot(
                "tag:xcat3-ipxe,tag:!ipxe,tag:!efi64",
                "undionly.kpxe".into(),
            );
            boot("tag:xcat3-pxelinux", "pxelinux.0".into());
            boot("tag:xcat3-grub2", "grub/grubx64.efi".into());
            boot("tag:xcat3-petitboot", "pxelinux.0".into());
        }
        c
    }

    /// One line in dnsmasq's `dhcp-host` syntax. Petitboot hosts also get
    /// a tag of their own, which their option-209 file matches.
    fn host_line(h: &Reservation) -> String {
        let loader = match h.loader {
            BootLoader::Ipxe => "ipxe",
            BootLoader::Grub2 => "grub2",
            BootLoader::Pxelinux => "pxelinux",
            BootLoader::Petitboot => "petitboot",
        };
        let own = match h.loader {
            BootLoader::Petitboot => format!(",set:xn-{}", h.name),
            _ => String::new(),
        };
        format!(
            "{},set:xcat3-{loader}{own},{},{},infinite\n",
            h.mac, h.ip, h.name
        )
    }

    /// Starts dnsmasq if we manage it and it is not running.
    async fn ensure_running(&self, restart: bool) -> Result<(), DhcpError> {
        match &self.process {
            Some(p) => p.ensure_running(restart).await.map_err(err),
            None => Ok(()),
        }
    }

    /// Makes dnsmasq forget deleted or changed host files.
    async fn reload(&self) -> Result<(), DhcpError> {
        if self.process.is_some() {
            return self.ensure_running(true).await;
        }
        let pid: Option<i32> = std::fs::read_to_string(self.dir.join("dnsmasq.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        match pid {
            // SAFETY: kill(2) with a pid and a signal number has no memory effects.
            Some(pid) if unsafe { libc::kill(pid, libc::SIGHUP) } == 0 => Ok(()),
            Some(pid) => Err(err(format!(
                "SIGHUP to dnsmasq (pid {pid}): {}",
                std::io::Error::last_os_error()
            ))),
            // Nobody runs it yet: it reads the directory when it starts.
            None => Ok(()),
        }
    }
}

/// Writes `text` to `path` through a file in `tmp` and a rename, so dnsmasq
/// never reads half a line. Returns whether a different file was replaced.
fn replace_file(tmp: &Path, path: &Path, text: &str) -> std::io::Result<bool> {
    let old = std::fs::read_to_string(path).ok();
    if old.as_deref() == Some(text) {
        return Ok(false);
    }
    std::fs::write(tmp, text)?;
    std::fs::rename(tmp, path)?;
    Ok(old.is_some())
}

#[async_trait]
impl DhcpBackend for Dnsmasq {
    fn name(&self) -> &'static str {
        "dnsmasq"
    }

    async fn sync_subnets(&self, subnets: &[Subnet]) -> Result<(), DhcpError> {
        let text = self.render(subnets);
        let path = self.conf_path();
        let changed = std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str());
        if changed {
            std::fs::write(&path, &text).map_err(|e| err(format!("{}: {e}", path.display())))?;
        }
        self.ensure_running(changed).await
    }

    async fn add(&self, hosts: &[Reservation]) -> Vec<Result<(), String>> {
        // The option file first: dnsmasq must know it when the host appears.
        let jobs: Vec<(PathBuf, String)> = hosts
            .iter()
            .flat_map(|h| {
                let opts = h.petitboot_config().map(|conf| {
                    (
                        self.dir.join("opts").join(&h.name),
                        format!("tag:xn-{},209,{conf}\n", h.name),
                    )
                });
                opts.into_iter()
                    .chain([(self.host_path(&h.name), Dnsmasq::host_line(h))])
                    .collect::<Vec<_>>()
            })
            .collect();
        let per_host: Vec<usize> = hosts
            .iter()
            .map(|h| 1 + usize::from(h.petitboot_config().is_some()))
            .collect();
        let tmp = self.dir.join("tmp").join("host");
        let written = tokio::task::spawn_blocking(move || {
            let mut replaced = false;
            let mut files = jobs
                .iter()
                .map(|(path, line)| match replace_file(&tmp, path, line) {
                    Ok(r) => {
                        replaced |= r;
                        Ok(())
                    }
                    Err(e) => Err(format!("dhcp (dnsmasq): writing {}: {e}", path.display())),
                });
            // A host's result: its first failed file, if any.
            let results: Vec<Result<(), String>> = per_host
                .iter()
                .map(|&n| {
                    files
                        .by_ref()
                        .take(n)
                        .collect::<Result<Vec<()>, String>>()
                        .map(drop)
                })
                .collect();
            (results, replaced)
        })
        .await;
        let (results, replaced) = match written {
            Ok(r) => r,
            Err(e) => return for_each_host(hosts.len(), Err(format!("dhcp: {e}"))),
        };
        if replaced && let Err(e) = self.reload().await {
            return for_each_host(hosts.len(), Err(e.to_string()));
        }
        results
    }

    async fn remove(&self, hosts: &[(String, String)]) -> Vec<Result<(), String>> {
        let paths: Vec<PathBuf> = hosts.iter().map(|(n, _)| self.host_path(n)).collect();
        let opts: Vec<PathBuf> = hosts
            .iter()
            .map(|(n, _)| self.dir.join("opts").join(n))
            .collect();
        let removed = tokio::task::spawn_blocking(move || {
            for o in &opts {
                let _ = std::fs::remove_file(o);
            }
            let mut any = false;
            let results: Vec<Result<(), String>> = paths
                .iter()
                .map(|p| match std::fs::remove_file(p) {
                    Ok(()) => {
                        any = true;
                        Ok(())
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(format!("dhcp (dnsmasq): removing {}: {e}", p.display())),
                })
                .collect();
            (results, any)
        })
        .await;
        let (results, any) = match removed {
            Ok(r) => r,
            Err(e) => return for_each_host(hosts.len(), Err(format!("dhcp: {e}"))),
        };
        if any && let Err(e) = self.reload().await {
            return for_each_host(hosts.len(), Err(e.to_string()));
        }
        results
    }
}
