//! `copycds`: an OS install ISO, uploaded to the API, unpacked into
//! `[api] install_dir/<osimage>/` without mounting it, recognized, and
//! registered as an osimage.
//!
//! libarchive's `bsdtar` reads ISO 9660 with Rock Ridge and Joliet as an
//! ordinary file, so no root, loop device or mount is involved (the
//! prototype mounted through a sudo wrapper). The tree is unpacked into a
//! temporary directory and renamed into place only once complete, with a
//! `.xcat3-image.json` manifest; a failed import leaves nothing behind,
//! and importing the same medium again is recognized from the manifest.

pub mod detect;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tokio::process::Command;
use xcat3_db::{Db, DbError, resources};

use crate::error::{ApiError, ApiResult};
use detect::Detected;

pub use xcat3_common::model::{Installer, MANIFEST, Manifest};

/// The outcome of one import.
#[derive(Debug)]
pub struct Imported {
    pub manifest: Manifest,
    /// `created`, or `exists` when this medium was imported before.
    pub result: &'static str,
}

/// Marker files detection reads.
const MARKERS: &[&str] = &[".disk/info", ".treeinfo", ".discinfo"];

/// One import at a time per API process: names and directories do not race.
static IMPORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// ISO 9660 puts `CD001` at byte 32769 (the first volume descriptor).
fn is_iso9660(path: &Path) -> std::io::Result<bool> {
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 5];
    f.seek(SeekFrom::Start(32769))?;
    Ok(f.read_exact(&mut magic).is_ok() && &magic == b"CD001")
}

/// Runs bsdtar with `args`; its stdout, or its stderr as the error. The
/// process dies with the request (a client that goes away mid-import).
async fn bsdtar(args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, String> {
    let out = Command::new("bsdtar")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run bsdtar (Debian package libarchive-tools): {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(out.stdout)
}

/// A path as bsdtar lists it, without `./` or `/` in front.
fn normalize(entry: &str) -> &str {
    entry.trim_start_matches("./").trim_start_matches('/')
}

/// Makes every directory of the unpacked tree writable by its owner (ISO
/// modes are read-only), so it can be replaced or deleted later, and keeps
/// only regular files, directories and symbolic links to those inside the
/// tree (Ubuntu's own `ubuntu -> .` stays). `/install/` serves the tree:
/// a link out of it would publish the host's files, and a FIFO, socket or
/// device would hang or worse whoever opens it (a FIFO manifest once hung
/// copycds, and FIFOs pinned every blocking thread of the API).
fn sanitize_tree(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let root = dir.canonicalize()?;
    let mut links = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut perms = std::fs::metadata(&d)?.permissions();
        perms.set_mode(perms.mode() | 0o700);
        std::fs::set_permissions(&d, perms)?;
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_symlink() {
                links.push(entry.path());
            } else if !kind.is_file() {
                tracing::warn!(path = %entry.path().display(), "copycds: dropping a special file (FIFO, socket or device)");
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    // Links last: what they point at has been judged by now.
    for link in links {
        let keep = link.canonicalize().is_ok_and(|target| {
            target.starts_with(&root)
                && std::fs::metadata(&target).is_ok_and(|m| m.is_file() || m.is_dir())
        });
        if !keep {
            tracing::warn!(link = %link.display(), "copycds: dropping a link that leaves the tree or leads nowhere");
            std::fs::remove_file(&link)?;
        }
    }
    Ok(())
}

/// Writes `bytes` as a new regular file at `path`: whatever the medium
/// put there (a FIFO, a link) is removed first, and the file is created
/// exclusively without following links.
fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path)?,
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(bytes)
}

/// Reads `path` only if it is a regular file (never blocks on a FIFO).
pub(crate) fn read_regular(path: &Path) -> Option<Vec<u8>> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .and_then(|_| std::fs::read(path).ok())
}

/// Removes `path` (a file or a tree) when dropped unless disarmed: an
/// upload or half-unpacked tree never outlives its request, even when the
/// client goes away and the request's future is dropped mid-way.
pub struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    pub fn new(path: PathBuf) -> RemoveOnDrop {
        RemoveOnDrop(Some(path))
    }

    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let Some(path) = self.0.take() else { return };
        let remove = move || {
            // A bsdtar killed in the same drop may still be writing into
            // the tree for a moment: try again briefly.
            for attempt in 0..20 {
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                match std::fs::symlink_metadata(&path) {
                    Err(_) => return,
                    Ok(m) if m.is_dir() => remove_tree(&path),
                    Ok(_) => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        };
        // A tree can take a while: off the async workers when we can.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// Removes uploads and unpack directories an earlier process left (it was
/// killed mid-import) that nobody has touched for `older_than`.
pub fn sweep_leftovers(install_dir: &Path, older_than: std::time::Duration) {
    let stale = |p: &Path| {
        std::fs::symlink_metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > older_than))
    };
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(install_dir.join(".incoming"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    candidates.extend(
        std::fs::read_dir(install_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .map(|e| e.path()),
    );
    for p in candidates.into_iter().filter(|p| stale(p)) {
        tracing::info!(path = %p.display(), "copycds: removing what an interrupted import left");
        drop(RemoveOnDrop::new(p));
    }
}

pub(crate) fn remove_tree(dir: &Path) {
    // `remove_dir_all` never follows links; a tree it cannot remove (a
    // medium's read-only directories) is made removable first.
    if dir.exists() && std::fs::remove_dir_all(dir).is_err() {
        let _ = sanitize_tree(dir);
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), "could not remove: {e}");
        }
    }
}

/// Imports the ISO at `iso` (its original file name `orig_name`) as
/// osimage `name` (default: `<distro><version>-<arch>`).
pub async fn import(
    db: &Db,
    install_dir: &Path,
    iso: &Path,
    orig_name: &str,
    name: Option<&str>,
) -> ApiResult<Imported> {
    let _one = IMPORTS.lock().await;
    if !is_iso9660(iso).map_err(|e| ApiError::internal(format!("reading the upload: {e}")))? {
        return Err(ApiError::bad_request(format!(
            "{orig_name}: not an ISO 9660 image (no CD001 volume descriptor)"
        )));
    }
    let iso_bytes = std::fs::metadata(iso)
        .map_err(|e| ApiError::internal(format!("reading the upload: {e}")))?
        .len();
    let listing = bsdtar(&["-tf".as_ref(), iso.as_os_str()])
        .await
        .map_err(|e| ApiError::bad_request(format!("{orig_name}: unreadable ISO: {e}")))?;
    let listing = String::from_utf8_lossy(&listing);
    // Normalized path -> the name as the archive spells it.
    let entries: HashMap<String, String> = listing
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(|l| (normalize(l).to_string(), l.to_string()))
        .collect();
    let files: HashSet<String> = entries.keys().cloned().collect();
    let mut markers: HashMap<&str, String> = HashMap::new();
    for m in MARKERS {
        if let Some(raw) = entries.get(*m) {
            let text = bsdtar(&["-xOf".as_ref(), iso.as_os_str(), raw.as_ref()])
                .await
                .map_err(|e| ApiError::bad_request(format!("{orig_name}: cannot read {m}: {e}")))?;
            markers.insert(m, String::from_utf8_lossy(&text).into_owned());
        }
    }
    let detected: Detected = detect::detect(&files, |p| markers.get(p).cloned())
        .map_err(|e| ApiError::bad_request(format!("{orig_name}: {e}")))?;
    let name = name.map(str::to_string).unwrap_or_else(|| detected.name());
    let detected_installer = detected.installer();
    xcat3_common::model::OsImageSpec::check_name(&name)?;
    let marker = MARKERS
        .iter()
        .find_map(|m| markers.get(m).cloned())
        .unwrap_or_default();
    let manifest = Manifest {
        name: name.clone(),
        media: detected,
        orig_name: orig_name.to_string(),
        iso_bytes,
        marker,
        iso: (detected_installer == Installer::Subiquity).then(|| format!("{name}.iso")),
        build: None,
    };

    let target = install_dir.join(&name);
    let existing_row = match resources::osimage(db, &name).await {
        Ok(row) => Some(row),
        Err(DbError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let existing_manifest: Option<Manifest> =
        read_regular(&target.join(MANIFEST)).and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(row) = &existing_row {
        return match existing_manifest {
            Some(m)
                if m.media.distro == manifest.media.distro
                    && m.media.version == manifest.media.version
                    && m.media.arch == manifest.media.arch
                    && m.iso_bytes == manifest.iso_bytes
                    && m.marker == manifest.marker =>
            {
                Ok(Imported {
                    manifest: m,
                    result: "exists",
                })
            }
            _ => Err(ApiError::bad_request(format!(
                "osimage {name} already exists ({} {} {}, from {}); give the new one another name (copycds -n NAME)",
                row.distro,
                row.ver,
                row.arch,
                row.orig_name.as_deref().unwrap_or("an unknown medium")
            ))),
        };
    }

    // Unpack beside the target, then rename into place.
    std::fs::create_dir_all(install_dir)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", install_dir.display())))?;
    let tmp: PathBuf = install_dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&tmp)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", tmp.display())))?;
    let tmp_guard = RemoveOnDrop::new(tmp.clone());
    let unpacked = async {
        bsdtar(&[
            "-xf".as_ref(),
            iso.as_os_str(),
            "--no-same-owner".as_ref(),
            "-C".as_ref(),
            tmp.as_os_str(),
        ])
        .await
        .map_err(|e| ApiError::bad_request(format!("{orig_name}: unpacking failed: {e}")))?;
        let (tmp, iso, target, m) = (
            tmp.clone(),
            iso.to_path_buf(),
            target.clone(),
            manifest.clone(),
        );
        // File work on a blocking thread: a big tree takes a while.
        tokio::task::spawn_blocking(move || place_tree(&tmp, &iso, &target, &m))
            .await
            .map_err(|e| ApiError::internal(format!("placing the tree: {e}")))??;
        resources::create_osimage(
            db,
            &name,
            &manifest.media.distro,
            &manifest.media.version,
            &manifest.media.arch,
            orig_name,
            "install",
        )
        .await
        .map_err(ApiError::from)
    }
    .await;
    if let Err(e) = unpacked {
        // Awaited, not left to a drop: the next import of this name may
        // start as soon as the lock is released.
        tmp_guard.disarm();
        let _ = tokio::task::spawn_blocking(move || {
            remove_tree(&tmp);
            remove_tree(&target);
        })
        .await;
        return Err(e);
    }
    tmp_guard.disarm();
    tracing::info!(osimage = %name, distro = %manifest.media.distro, version = %manifest.media.version, arch = %manifest.media.arch, "copycds imported");
    Ok(Imported {
        manifest,
        result: "created",
    })
}

/// Turns the unpacked `tmp` into the osimage tree at `target`: special
/// files and outward links dropped, the ISO kept when the installer
/// fetches it whole, the manifest written as a new regular file, then one
/// rename into place.
fn place_tree(tmp: &Path, iso: &Path, target: &Path, manifest: &Manifest) -> ApiResult<()> {
    sanitize_tree(tmp).map_err(|e| ApiError::internal(format!("unpacked tree: {e}")))?;
    // Subiquity fetches the whole medium (`url=`): keep it in the tree
    // (a hard link: the upload lies in the same file system).
    if let Some(keep) = &manifest.iso {
        let to = tmp.join(keep);
        let _ = std::fs::remove_file(&to);
        std::fs::hard_link(iso, &to)
            .or_else(|_| std::fs::copy(iso, &to).map(|_| ()))
            .map_err(|e| ApiError::internal(format!("keeping the ISO in the tree: {e}")))?;
    }
    let json =
        serde_json::to_vec_pretty(manifest).map_err(|e| ApiError::internal(e.to_string()))?;
    write_new_file(&tmp.join(MANIFEST), &json)
        .map_err(|e| ApiError::internal(format!("writing the manifest: {e}")))?;
    // A tree left by an import that never registered is replaced.
    remove_tree(target);
    std::fs::rename(tmp, target)
        .map_err(|e| ApiError::internal(format!("moving the tree into place: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a hostile medium can unpack: FIFOs (one named like the
    /// manifest), links out of the tree and to special files. None of it
    /// survives, and writing the manifest does not block.
    #[test]
    fn only_regular_files_directories_and_inner_links_survive() {
        let dir = std::env::temp_dir().join(format!("xcat3-copycds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/kernel"), b"k").unwrap();
        let fifo = |p: &Path| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: mkfifo reads a NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        };
        fifo(&dir.join("pipe"));
        fifo(&dir.join(MANIFEST));
        std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).unwrap();
        std::os::unix::fs::symlink("pipe", dir.join("to-pipe")).unwrap();
        std::os::unix::fs::symlink("sub/kernel", dir.join("vmlinuz")).unwrap();
        std::os::unix::fs::symlink(".", dir.join("ubuntu")).unwrap();
        sanitize_tree(&dir).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["sub", "ubuntu", "vmlinuz"]);
        // A manifest written over whatever sits at its name is a new file.
        fifo(&dir.join(MANIFEST));
        write_new_file(&dir.join(MANIFEST), b"{}").unwrap();
        assert_eq!(read_regular(&dir.join(MANIFEST)).unwrap(), b"{}");
        fifo(&dir.join("pipe"));
        assert_eq!(read_regular(&dir.join("pipe")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
