//! Packing a root: its kernel, and the whole tree as one `newc` archive
//! compressed by `zstd` (Debian's kernels unpack zstd initramfs), padded
//! to 4 bytes so an overlay archive appended after it is read too.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use xcat3_common::cpio::{self, Entry};
use xcat3_common::model::{ImageKind, ROOT_ARCHIVE};

use super::Progress;
use crate::error::ApiError;

/// The kernel's name inside the image tree.
pub const KERNEL: &str = "vmlinuz";

pub struct Packed {
    pub kernel_bytes: u64,
    pub root_bytes: u64,
    pub tree_bytes: u64,
}

/// Writes `out/vmlinuz` and `out/root.cpio.zst` from `tree`. A stateless
/// image leaves `/boot` out (the kernel is fetched beside it); an image
/// for disks keeps it (the disk boots that kernel and initrd).
pub fn pack(
    tree: &Path,
    out: &Path,
    kind: ImageKind,
    progress: &Progress,
) -> Result<Packed, ApiError> {
    let err = |what: &str, e: std::io::Error| ApiError::internal(format!("pack: {what}: {e}"));
    let kernel = newest_kernel(tree)?;
    let kernel_bytes =
        std::fs::copy(&kernel, out.join(KERNEL)).map_err(|e| err("copying the kernel", e))?;
    progress.say_blocking(
        "pack",
        format!(
            "kernel {} ({} MiB)",
            kernel.file_name().unwrap_or_default().to_string_lossy(),
            kernel_bytes >> 20
        ),
    );
    let archive = out.join(ROOT_ARCHIVE);
    let file = std::fs::File::create(&archive).map_err(|e| err("creating the archive", e))?;
    let mut zstd = Command::new("zstd")
        .args(["-q", "-T0", "-3", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err("running zstd (apt install zstd)", e))?;
    let stdin = zstd.stdin.take().expect("piped");
    let mut w = cpio::Writer::new(std::io::BufWriter::with_capacity(1 << 20, stdin));
    let mut tree_bytes = 0u64;
    let mut files = 0u64;
    let mut stack = vec![String::new()];
    let skip_boot = kind == ImageKind::Stateless;
    while let Some(rel) = stack.pop() {
        if progress.cancelled() {
            let _ = zstd.kill();
            return Err(ApiError::bad_request(
                "genimage: cancelled (the client went away)",
            ));
        }
        let dir = tree.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| err(&dir.display().to_string(), e))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        // Reverse so the stack pops them in name order.
        let mut subdirs = Vec::new();
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(e.path()).map_err(|er| err(&path_rel, er))?;
            let entry = Entry {
                name: path_rel.clone(),
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: meta.mtime().clamp(0, u32::MAX as i64) as u32,
                rdev_major: libc::major(meta.rdev()),
                rdev_minor: libc::minor(meta.rdev()),
                ino: 0,
            };
            let ft = meta.file_type();
            if ft.is_dir() {
                w.add(&entry, &[]).map_err(|er| err(&path_rel, er))?;
                if !(skip_boot && path_rel == "boot") {
                    subdirs.push(path_rel);
                }
            } else if ft.is_symlink() {
                let target = std::fs::read_link(e.path()).map_err(|er| err(&path_rel, er))?;
                w.add(&entry, target.as_os_str().as_encoded_bytes())
                    .map_err(|er| err(&path_rel, er))?;
            } else if ft.is_file() {
                let mut f = std::fs::File::open(e.path()).map_err(|er| err(&path_rel, er))?;
                w.add_streamed(&entry, meta.len(), &mut f)
                    .map_err(|er| err(&path_rel, er))?;
                tree_bytes += meta.len();
            } else {
                // Devices, FIFOs, sockets: header only.
                w.add(&entry, &[]).map_err(|er| err(&path_rel, er))?;
            }
            files += 1;
            if files.is_multiple_of(20_000) {
                progress.say_blocking("pack", format!("{files} files, {} MiB", tree_bytes >> 20));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    let mut buf = w.finish().map_err(|e| err("finishing the archive", e))?;
    buf.flush().map_err(|e| err("writing to zstd", e))?;
    drop(buf);
    let out_z = zstd.wait_with_output().map_err(|e| err("zstd", e))?;
    if !out_z.status.success() {
        return Err(ApiError::internal(format!(
            "pack: zstd failed: {}",
            String::from_utf8_lossy(&out_z.stderr).trim()
        )));
    }
    // Pad with zero bytes to a multiple of 4: the kernel looks for the
    // next archive (the node's overlay) on a 4-byte boundary.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&archive)
        .map_err(|e| err("padding", e))?;
    let len = f.metadata().map_err(|e| err("padding", e))?.len();
    let pad = (4 - len % 4) % 4;
    f.write_all(&[0u8; 3][..pad as usize])
        .map_err(|e| err("padding", e))?;
    let root_bytes = len + pad;
    progress.say_blocking(
        "pack",
        format!(
            "{files} files, {} MiB unpacked, {} MiB compressed",
            tree_bytes >> 20,
            root_bytes >> 20
        ),
    );
    Ok(Packed {
        kernel_bytes,
        root_bytes,
        tree_bytes,
    })
}

/// `boot/vmlinuz-*` with the highest version.
fn newest_kernel(tree: &Path) -> Result<std::path::PathBuf, ApiError> {
    let mut kernels: Vec<_> = std::fs::read_dir(tree.join("boot"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels.pop().ok_or_else(|| {
        ApiError::internal("pack: no kernel in the root's /boot (linux-image-amd64 missing?)")
    })
}
