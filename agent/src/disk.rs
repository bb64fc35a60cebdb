//! Writing the running root to the node's disk: a GPT with a BIOS boot
//! partition, an EFI system partition and the root; the root copied from
//! RAM; GRUB installed for both BIOS and EFI (removable path, no NVRAM
//! entry), so the disk boots whichever firmware the node has.
//!
//! Each step's error says what failed and on which device.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where the new root is mounted while it is written.
const TARGET: &str = "/mnt/xcat3-root";

/// GPT layout for `sfdisk`: BIOS boot (1 MiB), EFI (255 MiB), root.
const LAYOUT: &str = "label: gpt
size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=bios
size=255MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=efi
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
";

/// How long a disk may take to appear (its driver loads, udev names it).
const DISK_WAIT: Duration = Duration::from_secs(30);

/// Partitions `disk` (empty: the first whole disk), writes the root and
/// the boot loader, then calls `then` with the new root while it is still
/// mounted (with `/dev`, `/proc` and `/sys` bound into it).
pub fn write_root(
    disk: &str,
    then: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let disk = find_disk(disk)?;
    let d = disk.display().to_string();
    println!("xcat3-agent: writing the image to {d}");
    run(
        Command::new("sfdisk")
            .args(["--quiet", "--wipe", "always", "--wipe-partitions", "always"])
            .arg(&disk),
        Some(LAYOUT),
        &format!("partitioning {d}"),
    )?;
    let _ = run(
        Command::new("udevadm").arg("settle"),
        None,
        "udevadm settle",
    );
    let efi = wait_for(&partition(&disk, 2), DISK_WAIT)?;
    let root = wait_for(&partition(&disk, 3), DISK_WAIT)?;
    run(
        Command::new("mkfs.vfat")
            .args(["-F", "32", "-n", "EFI"])
            .arg(&efi),
        None,
        &format!("formatting {}", efi.display()),
    )?;
    run(
        Command::new("mkfs.ext4")
            .args(["-F", "-q", "-L", "root"])
            .arg(&root),
        None,
        &format!("formatting {}", root.display()),
    )?;
    std::fs::create_dir_all(TARGET)?;
    mount(&root, TARGET, None)?;
    let result = fill(&disk, &efi, &root).and_then(|()| then(Path::new(TARGET)));
    // Unmount whatever the steps mounted, deepest first, even on failure.
    for m in ["dev", "proc", "sys", "boot/efi"] {
        let _ = Command::new("umount").arg(format!("{TARGET}/{m}")).status();
    }
    let _ = Command::new("sync").status();
    let unmounted = Command::new("umount").arg(TARGET).status();
    result?;
    if !unmounted.is_ok_and(|s| s.success()) {
        bail!("unmounting {TARGET} failed");
    }
    Ok(())
}

fn fill(disk: &Path, efi: &Path, root: &Path) -> anyhow::Result<()> {
    let t = Path::new(TARGET);
    let started = Instant::now();
    // `-x`: the RAM root only, not /proc, /sys, /dev, /run or the target.
    run(
        Command::new("cp").args(["-ax", "/.", TARGET]),
        None,
        "copying the root to the disk",
    )?;
    for d in ["proc", "sys", "dev", "run", "tmp", "boot/efi", "mnt"] {
        std::fs::create_dir_all(t.join(d))?;
    }
    let _ = std::fs::remove_dir_all(t.join(TARGET.trim_start_matches('/')));
    println!(
        "xcat3-agent: root copied in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    mount(efi, &format!("{TARGET}/boot/efi"), None)?;
    let fstab = format!(
        "# written by xcat3-agent\nUUID={} / ext4 errors=remount-ro 0 1\nUUID={} /boot/efi vfat umask=0077 0 1\n",
        uuid(root)?,
        uuid(efi)?
    );
    std::fs::write(t.join("etc/fstab"), fstab)?;
    // GRUB on the serial console and the screen, as the network boot was.
    let grub = "GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_DISTRIBUTOR=Debian\nGRUB_CMDLINE_LINUX_DEFAULT=\"\"\nGRUB_CMDLINE_LINUX=\"console=tty0 console=ttyS0,115200n8\"\nGRUB_TERMINAL=\"console serial\"\nGRUB_SERIAL_COMMAND=\"serial --speed=115200\"\n";
    std::fs::write(t.join("etc/default/grub"), grub)?;
    for (fs, m) in [("/dev", "dev"), ("/proc", "proc"), ("/sys", "sys")] {
        mount(Path::new(fs), &format!("{TARGET}/{m}"), Some("--bind"))?;
    }
    let d = disk.display().to_string();
    run(
        Command::new("chroot")
            .arg(TARGET)
            .args(["grub-install", "--target=i386-pc"])
            .arg(disk),
        None,
        &format!("installing GRUB (BIOS) on {d}"),
    )?;
    run(
        Command::new("chroot").arg(TARGET).args([
            "grub-install",
            "--target=x86_64-efi",
            "--efi-directory=/boot/efi",
            "--removable",
            "--no-nvram",
        ]),
        None,
        "installing GRUB (EFI)",
    )?;
    run(
        Command::new("chroot")
            .arg(TARGET)
            .args(["grub-mkconfig", "-o", "/boot/grub/grub.cfg"]),
        None,
        "writing grub.cfg",
    )?;
    Ok(())
}

/// The disk to write: the configured one, or the first whole disk the
/// kernel lists (virtio, SCSI/SATA, NVMe), waiting for it to appear.
fn find_disk(configured: &str) -> anyhow::Result<PathBuf> {
    if !configured.is_empty() {
        return wait_for(Path::new(configured), DISK_WAIT).with_context(|| {
            format!("install_disk {configured}: no such disk (is its driver in the image?)")
        });
    }
    let deadline = Instant::now() + DISK_WAIT;
    loop {
        let mut names: Vec<String> = std::fs::read_dir("/sys/block")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                ["vd", "sd", "nvme", "xvd", "hd"]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
            .collect();
        names.sort();
        if let Some(n) = names.first() {
            return Ok(PathBuf::from(format!("/dev/{n}")));
        }
        if Instant::now() > deadline {
            bail!(
                "no disk found in {} s (none in /sys/block: no disk, or its driver is not in the image); set control_info.install_disk",
                DISK_WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `/dev/vda` → `/dev/vda3`; `/dev/nvme0n1` → `/dev/nvme0n1p3`.
fn partition(disk: &Path, n: u32) -> PathBuf {
    let d = disk.display().to_string();
    if d.ends_with(|c: char| c.is_ascii_digit()) {
        PathBuf::from(format!("{d}p{n}"))
    } else {
        PathBuf::from(format!("{d}{n}"))
    }
}

fn wait_for(path: &Path, limit: Duration) -> anyhow::Result<PathBuf> {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        if Instant::now() > deadline {
            bail!("{} did not appear in {} s", path.display(), limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(path.to_path_buf())
}

fn mount(what: &Path, on: &str, flag: Option<&str>) -> anyhow::Result<()> {
    let mut c = Command::new("mount");
    if let Some(f) = flag {
        c.arg(f);
    }
    run(
        c.arg(what).arg(on),
        None,
        &format!("mounting {} on {on}", what.display()),
    )
}

fn uuid(dev: &Path) -> anyhow::Result<String> {
    let out = Command::new("blkid")
        .args(["-s", "UUID", "-o", "value"])
        .arg(dev)
        .output()
        .context("running blkid")?;
    let u = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if u.is_empty() {
        bail!("{}: no file system UUID", dev.display());
    }
    Ok(u)
}

/// Runs a command (with `input` on stdin); its stderr is the error.
fn run(cmd: &mut Command, input: Option<&str>, what: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{what}: cannot run {:?}", cmd.get_program()))?;
    if let Some(text) = input {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = err.lines().rev().take(3).collect();
        bail!(
            "{what}: {} ({})",
            last.into_iter().rev().collect::<Vec<_>>().join(" / "),
            out.status
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names() {
        assert_eq!(partition(Path::new("/dev/vda"), 3), Path::new("/dev/vda3"));
        assert_eq!(
            partition(Path::new("/dev/nvme0n1"), 2),
            Path::new("/dev/nvme0n1p2")
        );
    }
}
