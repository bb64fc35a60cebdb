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
use std::process::Stdio;

use async_trait::async_trait;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use xcat3_common::config::{BootConfig, DhcpConfig};

use super::{BootLoader, DhcpBackend, DhcpError, Reservation, Subnet};

pub struct Dnsmasq {
    dir: PathBuf,
    manage: bool,
    interface: String,
    /// Port of the boot HTTP server (iPXE scripts), if any.
    http_port: Option<u16>,
    child: Mutex<Option<Child>>,
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
        for d in [dir.join("hosts"), dir.join("tmp")] {
            std::fs::create_dir_all(&d)
                .map_err(|e| anyhow::anyhow!("[dhcp] dir: creating {}: {e}", d.display()))?;
        }
        Ok(Dnsmasq {
            dir,
            manage: dhcp.manage,
            interface: dhcp.interface.clone(),
            http_port: boot
                .http_listen
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|a| a.port()),
            child: Mutex::new(None),
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
             # iPXE says so in its user class and option 175; UEFI by option 93.\n\
             dhcp-userclass=set:ipxe,iPXE\n\
             dhcp-match=set:ipxe,175\n\
             dhcp-match=set:efi64,option:client-arch,7\n\
             dhcp-match=set:efi64,option:client-arch,9\n"
        );
        if self.manage && !self.interface.is_empty() {
            let _ = writeln!(c, "interface={}\nbind-interfaces", self.interface);
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

    /// One line in dnsmasq's `dhcp-host` syntax.
    fn host_line(h: &Reservation) -> String {
        let loader = match h.loader {
            BootLoader::Ipxe => "ipxe",
            BootLoader::Grub2 => "grub2",
            BootLoader::Pxelinux => "pxelinux",
            BootLoader::Petitboot => "petitboot",
        };
        format!(
            "{},set:xcat3-{loader},{},{},infinite\n",
            h.mac, h.ip, h.name
        )
    }

    /// Starts dnsmasq if we manage it and it is not running.
    async fn ensure_running(&self, restart: bool) -> Result<(), DhcpError> {
        if !self.manage {
            return Ok(());
        }
        let mut child = self.child.lock().await;
        if let Some(c) = child.as_mut() {
            let exited = c.try_wait().map_err(err)?.is_some();
            if !exited && !restart {
                return Ok(());
            }
            if exited {
                tracing::warn!("dnsmasq exited; restarting it");
            }
            let _ = c.kill().await;
            // Its socket must be free before the next one binds.
            let _ = c.wait().await;
        }
        if child.is_none() {
            self.stop_stale();
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dnsmasq.log"))
            .map_err(err)?;
        let mut cmd = Command::new("dnsmasq");
        cmd.arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", self.conf_path().display()))
            .arg("--log-facility=-")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(err)?)
            .stderr(log)
            .kill_on_drop(true);
        let c = cmd
            .spawn()
            .map_err(|e| err(format!("starting dnsmasq: {e}")))?;
        tracing::info!(pid = c.id(), "dnsmasq started");
        *child = Some(c);
        Ok(())
    }

    /// Stops a dnsmasq an earlier run of ours left behind (a conductor
    /// killed with SIGKILL: dnsmasq drops privileges, which clears the
    /// parent-death signal), found by its pid file and our config path.
    fn stop_stale(&self) {
        let Some(pid) = std::fs::read_to_string(self.dir.join("dnsmasq.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let conf = format!("--conf-file={}", self.conf_path().display());
        if String::from_utf8_lossy(&cmdline).contains(&conf) {
            tracing::warn!(pid, "stopping a dnsmasq left by an earlier run");
            // SAFETY: kill(2) has no memory effects.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            for _ in 0..50 {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    /// Makes dnsmasq forget deleted or changed host files.
    async fn reload(&self) -> Result<(), DhcpError> {
        if self.manage {
            return self.ensure_running(true).await;
        }
        let pid = match self.child.lock().await.as_ref().and_then(Child::id) {
            Some(p) => Some(p as i32),
            None => std::fs::read_to_string(self.dir.join("dnsmasq.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok()),
        };
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
        let jobs: Vec<(PathBuf, String)> = hosts
            .iter()
            .map(|h| (self.host_path(&h.name), Dnsmasq::host_line(h)))
            .collect();
        let tmp = self.dir.join("tmp").join("host");
        let written = tokio::task::spawn_blocking(move || {
            let mut replaced = false;
            let results: Vec<Result<(), String>> = jobs
                .iter()
                .map(|(path, line)| match replace_file(&tmp, path, line) {
                    Ok(r) => {
                        replaced |= r;
                        Ok(())
                    }
                    Err(e) => Err(format!("dhcp (dnsmasq): writing {}: {e}", path.display())),
                })
                .collect();
            (results, replaced)
        })
        .await;
        let (results, replaced) = match written {
            Ok(r) => r,
            Err(e) => return hosts.iter().map(|_| Err(format!("dhcp: {e}"))).collect(),
        };
        if replaced && let Err(e) = self.reload().await {
            return hosts.iter().map(|_| Err(e.to_string())).collect();
        }
        results
    }

    async fn remove(&self, hosts: &[(String, String)]) -> Vec<Result<(), String>> {
        let paths: Vec<PathBuf> = hosts.iter().map(|(n, _)| self.host_path(n)).collect();
        let removed = tokio::task::spawn_blocking(move || {
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
            Err(e) => return hosts.iter().map(|_| Err(format!("dhcp: {e}"))).collect(),
        };
        if any && let Err(e) = self.reload().await {
            return hosts.iter().map(|_| Err(e.to_string())).collect();
        }
        results
    }
}
