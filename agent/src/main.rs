//! `xcat3-agent`: started by systemd inside images `genimage` built. It
//! reads its node's name, token and API from the kernel command line and
//! its settings from the overlay the conductor made for the node, then
//! reports each step of the boot to `PUT /v1/nodes/provision/callback`:
//! `root mounted`, `agent up`, and for a stateless image `done` (the node
//! is `booted`). For an image of kind `image` it writes the image to the
//! node's disk (`installing`), reports `done` and reboots into it. A step
//! that fails is reported with its error, so the node is `deploy failed`
//! with the reason instead of hanging in `deploying`.
//!
//! On a system booted from its disk there is no token on the command line
//! and the agent does nothing.

mod disk;
mod postscripts;
mod report;

use std::time::Instant;

use anyhow::{Context, bail};
use xcat3_common::agent::{self, Step};

use report::Reporter;

/// What the kernel command line and the overlay say about this boot.
#[derive(Debug)]
pub struct Boot {
    pub node: String,
    pub token: String,
    pub api: String,
    /// `image`: write the disk; otherwise stateless.
    pub write_disk: bool,
    /// `control_info.install_disk` (empty: the first disk found).
    pub install_disk: String,
    /// The crypted root password (`passwd system`).
    pub root_password: String,
}

impl Boot {
    fn read(cmdline: &str, conf: &str) -> anyhow::Result<Option<Boot>> {
        let Some(token) = agent::cmdline_value(cmdline, agent::CMDLINE_TOKEN) else {
            return Ok(None);
        };
        let node = agent::cmdline_value(cmdline, agent::CMDLINE_NODE)
            .context("xcat3.node is missing from the kernel command line")?;
        let api = agent::cmdline_value(cmdline, agent::CMDLINE_API)
            .context("xcat3.api is missing from the kernel command line")?;
        let kind = agent::cmdline_value(cmdline, agent::CMDLINE_KIND).unwrap_or("stateless");
        let conf = agent::parse_conf(conf);
        let get = |k: &str| {
            conf.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        Ok(Some(Boot {
            node: node.to_string(),
            token: token.to_string(),
            api: api.trim_end_matches('/').to_string(),
            write_disk: kind == "image",
            install_disk: get("install_disk"),
            root_password: get("root_password"),
        }))
    }
}

fn main() -> std::process::ExitCode {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(started)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xcat3-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(started: Instant) -> anyhow::Result<()> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    let conf = std::fs::read_to_string(format!("/{}", agent::NODE_CONF)).unwrap_or_default();
    let Some(boot) = Boot::read(&cmdline, &conf)? else {
        println!("xcat3-agent: not an xcat3 network boot (no xcat3.token); nothing to do");
        return Ok(());
    };
    println!(
        "xcat3-agent: node {} ({}), reporting to {}",
        boot.node,
        if boot.write_disk {
            "image for disk"
        } else {
            "stateless"
        },
        boot.api
    );
    let reporter = Reporter::new(&boot)?;
    // The root is the archive the kernel unpacked: we run from it.
    reporter.step(Step::RootMounted).await?;
    if let Err(e) = set_root_password(&boot.root_password) {
        // Not worth failing a boot for; the admin sees it on the console.
        eprintln!("xcat3-agent: root password not set: {e:#}");
    }
    reporter.step(Step::AgentUp).await?;
    let scripts = match reporter.postscripts().await {
        Ok(s) => s,
        Err(e) => {
            reporter
                .failed(Step::Postscripts, &format!("{e:#}"), &[])
                .await?;
            bail!("{e:#}");
        }
    };
    let node = boot.node.clone();
    let runs = if boot.write_disk {
        reporter.step(Step::Installing).await?;
        let disk = boot.install_disk.clone();
        // The scripts configure the written system: chrooted into it
        // before it is unmounted.
        let written = tokio::task::spawn_blocking(move || {
            let mut runs = Vec::new();
            disk::write_root(&disk, |root| {
                runs = postscripts::run_all(&scripts, &node, postscripts::Place::Chroot(root));
                Ok(())
            })
            .map(|()| runs)
        })
        .await
        .context("the disk writer panicked")?;
        match written {
            Ok(runs) => runs,
            Err(e) => {
                reporter
                    .failed(Step::Installing, &format!("{e:#}"), &[])
                    .await?;
                bail!("installing: {e:#}");
            }
        }
    } else if scripts.is_empty() {
        Vec::new()
    } else {
        reporter.step(Step::Postscripts).await?;
        tokio::task::spawn_blocking(move || {
            let dir = std::path::Path::new(postscripts::DIR);
            postscripts::run_all(&scripts, &node, postscripts::Place::Here(dir))
        })
        .await
        .context("the postscripts runner panicked")?
    };
    // Never `done` with a silent failure: the node is `deploy failed`,
    // naming the script.
    if let Some(why) = xcat3_common::postscripts::failure(&runs) {
        reporter.failed(Step::Postscripts, &why, &runs).await?;
        bail!("{why}");
    }
    reporter
        .done(&host_keys(std::path::Path::new("/etc/ssh")), &runs)
        .await?;
    println!(
        "xcat3-agent: done {:.1} s after start",
        started.elapsed().as_secs_f64()
    );
    if boot.write_disk {
        println!("xcat3-agent: rebooting from the disk");
        let _ = std::process::Command::new("systemctl")
            .arg("reboot")
            .status();
    }
    Ok(())
}

/// The public halves of this node's SSH host keys (`ssh_host_*_key.pub`),
/// made at this boot by `xcat3-hostkeys.service`; none without sshd.
fn host_keys(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut keys: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let public = name.starts_with("ssh_host_") && name.ends_with("_key.pub");
            let text = std::fs::read_to_string(e.path()).ok().filter(|_| public)?;
            Some((name, text.trim().to_string()))
        })
        .filter(|(_, t)| !t.is_empty())
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, t)| t).take(8).collect()
}

/// `chpasswd -e` with the crypted password the overlay carries.
fn set_root_password(crypted: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if crypted.is_empty() {
        return Ok(());
    }
    let mut child = std::process::Command::new("chpasswd")
        .arg("-e")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("running chpasswd")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(format!("root:{crypted}\n").as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("chpasswd: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_is_read_from_the_command_line_and_the_overlay() {
        let cmdline = "rdinit=/sbin/init console=ttyS0 xcat3.api=http://192.0.2.1:3010/ xcat3.kind=image xcat3.node=n1 xcat3.token=abc\n";
        let conf = "# x\nnode=n1\ninstall_disk=/dev/vda\nroot_password=$6$salt$hash\n";
        let b = Boot::read(cmdline, conf).unwrap().unwrap();
        assert_eq!(b.node, "n1");
        assert_eq!(b.token, "abc");
        assert_eq!(b.api, "http://192.0.2.1:3010");
        assert!(b.write_disk);
        assert_eq!(b.install_disk, "/dev/vda");
        assert_eq!(b.root_password, "$6$salt$hash");
    }

    #[test]
    fn host_keys_are_the_public_halves_only() {
        let dir = std::env::temp_dir().join(format!("xcat3-agent-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("ssh_host_ed25519_key.pub"),
            "ssh-ed25519 AAAA root@x\n",
        )
        .unwrap();
        std::fs::write(dir.join("ssh_host_ed25519_key"), "PRIVATE").unwrap();
        std::fs::write(dir.join("sshd_config"), "Port 22").unwrap();
        assert_eq!(host_keys(&dir), vec!["ssh-ed25519 AAAA root@x".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(host_keys(&dir).is_empty());
    }

    #[test]
    fn a_disk_boot_has_nothing_to_do() {
        assert!(Boot::read("root=UUID=x ro quiet", "").unwrap().is_none());
        let e = Boot::read("xcat3.token=abc", "").unwrap_err();
        assert!(e.to_string().contains("xcat3.node"), "{e}");
    }
}
