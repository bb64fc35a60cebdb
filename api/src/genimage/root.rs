//! The image's root file system: bootstrapped from the mirror (or taken
//! from the cache), copied, and given the agent.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncBufReadExt;
use xcat3_common::agent::AGENT_PATH;

use super::Progress;
use crate::error::ApiError;

/// What every image holds besides minbase: an init, the kernel, the
/// network, and what the agent uses to write a disk (sfdisk, mkfs,
/// GRUB for BIOS and EFI).
const BASE_PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "kmod",
    "linux-image-amd64",
    "iproute2",
    "ca-certificates",
    "fdisk",
    "e2fsprogs",
    "dosfstools",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "grub2-common",
    "openssh-server",
];

/// Trees a node never needs: documentation, translations, and kernel
/// drivers for hardware a cluster node does not have (they are half the
/// root's size).
const TRIM: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "var/cache/debconf/templates.dat-old",
];

/// Module trees under `lib/modules/<version>/kernel/`.
const TRIM_MODULES: &[&str] = &[
    "sound",
    "drivers/gpu",
    "drivers/media",
    "drivers/staging",
    "drivers/net/wireless",
    "drivers/infiniband",
    "drivers/bluetooth",
    "drivers/isdn",
    "drivers/iio",
    "net/wireless",
    "net/mac80211",
    "net/bluetooth",
];

/// The systemd unit that starts the agent once the network is up.
const AGENT_UNIT: &str = "[Unit]
Description=xcat3 agent: reports this node's boot and writes its disk
Wants=network-online.target
After=network-online.target systemd-networkd.service

[Service]
Type=exec
ExecStart=/usr/local/sbin/xcat3-agent
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
";

/// Makes the node's own SSH host keys at its first boot: the image carries
/// none, or every node booted from it would share them. The agent reports
/// the public halves; conductors check the node against them.
const HOSTKEYS_UNIT: &str = "[Unit]
Description=xcat3: this node's own SSH host keys
Before=ssh.service xcat3-agent.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
";

/// The agent binary: `[genimage] agent`, else `xcat3-agent` beside us.
pub fn agent_binary(configured: &str) -> Result<PathBuf, ApiError> {
    let path = if configured.is_empty() {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("xcat3-agent")))
            .unwrap_or_else(|| PathBuf::from("xcat3-agent"))
    } else {
        PathBuf::from(configured)
    };
    if !path.is_file() {
        return Err(ApiError::internal(format!(
            "genimage: the agent binary {} is missing (install xcat3-agent beside xcat3-api, or set [genimage] agent)",
            path.display()
        )));
    }
    Ok(path)
}

/// The mirror: configured, else the first Debian URI of this host's apt
/// sources (deb822 or one-line format), else Debian's CDN.
pub fn mirror(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.trim_end_matches('/').to_string();
    }
    let mut texts = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        texts.extend(files.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    texts.extend(std::fs::read_to_string("/etc/apt/sources.list").ok());
    texts
        .iter()
        .find_map(|t| mirror_in(t))
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// The first `http(s)` URI of a Debian archive (not its security one).
fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| {
            l.strip_prefix("URIs:")
                .map(|u| u.split_whitespace().collect::<Vec<_>>())
                .or_else(|| {
                    l.strip_prefix("deb ").map(|r| {
                        r.split_whitespace()
                            .filter(|w| !w.starts_with('['))
                            .take(1)
                            .collect()
                    })
                })
                .unwrap_or_default()
        })
        .find(|u| u.starts_with("http") && !u.contains("security"))
        .map(|u| u.trim_end_matches('/').to_string())
}

/// The bootstrapped, trimmed root for this package set: from the cache,
/// or made now (minutes) and cached.
pub async fn bootstrap(
    cache_dir: &Path,
    suite: &str,
    mirror: &str,
    packages: &[String],
    progress: &Progress,
) -> Result<PathBuf, ApiError> {
    let mut set: Vec<&str> = BASE_PACKAGES.to_vec();
    set.extend(packages.iter().map(String::as_str));
    set.sort_unstable();
    set.dedup();
    let key = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(format!("{suite}\n{mirror}\n{}\n", set.join(",")));
        let d = h.finalize();
        d[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let cached = cache_dir.join(format!("{suite}-{key}"));
    if cached.join(".xcat3-complete").is_file() {
        progress
            .say(
                "bootstrap",
                format!("using the cached root {}", cached.display()),
            )
            .await;
        return Ok(cached);
    }
    which("debootstrap", "debootstrap")?;
    std::fs::create_dir_all(cache_dir)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", cache_dir.display())))?;
    let tmp = cache_dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let guard = crate::copycds::RemoveOnDrop::new(tmp.clone());
    progress
        .say(
            "bootstrap",
            format!("debootstrap {suite} from {mirror} with {}", set.join(",")),
        )
        .await;
    let mut child = tokio::process::Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={}", set.join(",")))
        .arg(suite)
        .arg(&tmp)
        .arg(mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ApiError::internal(format!("running debootstrap: {e}")))?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let stderr = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let mut r = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(l)) = r.next_line().await {
            text.push_str(&l);
            text.push('\n');
        }
        text
    });
    let mut last = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        // "I: Retrieving libc6 2.36-9": one progress line per package.
        if line.starts_with("I: ") || line.starts_with("E: ") || line.starts_with("W: ") {
            progress.say("bootstrap", line.clone()).await;
        }
        last = line;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| ApiError::internal(format!("debootstrap: {e}")))?;
    let errors = errors.await.unwrap_or_default();
    if !status.success() {
        let log =
            std::fs::read_to_string(tmp.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        return Err(ApiError::bad_request(format!(
            "bootstrap failed ({status}): {} {} {}",
            last.trim(),
            errors.trim(),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    progress
        .say("bootstrap", "trimming docs, locales and unneeded drivers")
        .await;
    let t = tmp.clone();
    tokio::task::spawn_blocking(move || trim(&t))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    std::fs::write(tmp.join(".xcat3-complete"), b"")
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // Another API on this host may have cached the same set meanwhile:
    // then its root is used and ours goes with the guard.
    if !cached.join(".xcat3-complete").is_file() {
        let _ = std::fs::remove_dir_all(&cached);
        match std::fs::rename(&tmp, &cached) {
            Ok(()) => guard.disarm(),
            Err(_) if cached.join(".xcat3-complete").is_file() => {}
            Err(e) => return Err(ApiError::internal(format!("caching the root: {e}"))),
        }
    }
    Ok(cached)
}

fn trim(root: &Path) -> Result<(), ApiError> {
    for t in TRIM {
        remove_children(&root.join(t));
    }
    for kernel in std::fs::read_dir(root.join("lib/modules"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for t in TRIM_MODULES {
            let _ = std::fs::remove_dir_all(kernel.path().join("kernel").join(t));
        }
        // The module index must not name what is gone.
        let version = kernel.file_name().to_string_lossy().into_owned();
        run_sync(
            std::process::Command::new("chroot")
                .arg(root)
                .args(["depmod", "-a", &version]),
            "depmod",
        )?;
    }
    Ok(())
}

fn remove_children(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let _ = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

/// `cp -a`: owners, modes, links and device nodes as they are.
pub async fn copy_tree(from: &Path, to: &Path) -> Result<(), ApiError> {
    let out = tokio::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("cp: {e}")))?;
    if !out.status.success() {
        return Err(ApiError::internal(format!(
            "copying the root: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let _ = std::fs::remove_file(to.join(".xcat3-complete"));
    Ok(())
}

/// The agent and its unit, networkd and sshd on, and nothing per-machine
/// left in the image (the node's overlay brings its name; systemd makes a
/// machine id and our unit SSH host keys at first boot).
pub async fn customize(tree: &Path, agent: &Path) -> Result<(), ApiError> {
    let io = |what: &str, e: std::io::Error| ApiError::internal(format!("customize: {what}: {e}"));
    let dest = tree.join(AGENT_PATH);
    std::fs::create_dir_all(dest.parent().expect("has a parent"))
        .map_err(|e| io("agent dir", e))?;
    std::fs::copy(agent, &dest).map_err(|e| io("copying the agent", e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io("agent mode", e))?;
    // A debug build carries ~100 MB of DWARF that every node would load
    // into RAM: strip the image's copy (binutils' strip, when present).
    let _ = tokio::process::Command::new("strip")
        .arg("--strip-debug")
        .arg(&dest)
        .status()
        .await;
    std::fs::write(
        tree.join("etc/systemd/system/xcat3-agent.service"),
        AGENT_UNIT,
    )
    .map_err(|e| io("agent unit", e))?;
    std::fs::write(
        tree.join("etc/systemd/system/xcat3-hostkeys.service"),
        HOSTKEYS_UNIT,
    )
    .map_err(|e| io("host keys unit", e))?;
    // openssh-server's install made keys in the build's chroot.
    if let Ok(entries) = std::fs::read_dir(tree.join("etc/ssh")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("ssh_host_") {
                std::fs::remove_file(e.path()).map_err(|e| io("old host keys", e))?;
            }
        }
    }
    std::fs::write(tree.join("etc/machine-id"), b"").map_err(|e| io("machine-id", e))?;
    let _ = std::fs::remove_file(tree.join("var/lib/dbus/machine-id"));
    std::fs::write(tree.join("etc/hostname"), b"localhost\n").map_err(|e| io("hostname", e))?;
    std::fs::write(
        tree.join("etc/fstab"),
        b"# xcat3: the root is in RAM (stateless) or written by the agent\n",
    )
    .map_err(|e| io("fstab", e))?;
    let t = tree.to_path_buf();
    tokio::task::spawn_blocking(move || {
        run_sync(
            std::process::Command::new("chroot").arg(&t).args([
                "systemctl",
                "enable",
                "systemd-networkd",
                "xcat3-hostkeys",
                "ssh",
                "xcat3-agent",
            ]),
            "systemctl enable",
        )
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

fn run_sync(cmd: &mut std::process::Command, what: &str) -> Result<(), ApiError> {
    let out = cmd
        .output()
        .map_err(|e| ApiError::internal(format!("{what}: {e}")))?;
    if !out.status.success() {
        return Err(ApiError::internal(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn which(cmd: &str, package: &str) -> Result<(), ApiError> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(ApiError::internal(format!(
            "genimage: `{cmd}` is not installed on the API host (apt install {package})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_from_apt_sources() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let one_line =
            "# deb http://old/ x\ndeb [arch=amd64] http://mirror.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_in(one_line).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(mirror_in("deb-src http://x/ y\n"), None);
    }
}
