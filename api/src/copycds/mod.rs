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
use xcat3_common::db::{Db, DbError, resources};

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

/// Runs bsdtar with `args`; its stdout, or its stderr as the error.
async fn bsdtar(args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, String> {
    let out = Command::new("bsdtar")
        .args(args)
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
/// modes are read-only), so it can be replaced or deleted later, and
/// removes symbolic links that lead out of the tree: `/install/` serves
/// it, and a medium must not publish the host's files (Ubuntu's own
/// `ubuntu -> .` stays).
fn writable_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let root = dir.canonicalize()?;
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
                let inside = entry
                    .path()
                    .canonicalize()
                    .is_ok_and(|target| target.starts_with(&root));
                if !inside {
                    tracing::warn!(link = %entry.path().display(), "copycds: dropping a link that leaves the tree");
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path) {
    if dir.exists() {
        let _ = writable_dirs(dir);
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
    };

    let target = install_dir.join(&name);
    let existing_row = match resources::osimage(db, &name).await {
        Ok(row) => Some(row),
        Err(DbError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let existing_manifest: Option<Manifest> = std::fs::read(target.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
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
        writable_dirs(&tmp).map_err(|e| ApiError::internal(format!("unpacked tree: {e}")))?;
        // Subiquity fetches the whole medium (`url=`): keep it in the tree
        // (a hard link: the upload lies in the same file system).
        if let Some(keep) = &manifest.iso {
            let to = tmp.join(keep);
            std::fs::hard_link(iso, &to)
                .or_else(|_| std::fs::copy(iso, &to).map(|_| ()))
                .map_err(|e| ApiError::internal(format!("keeping the ISO in the tree: {e}")))?;
        }
        let json =
            serde_json::to_vec_pretty(&manifest).map_err(|e| ApiError::internal(e.to_string()))?;
        std::fs::write(tmp.join(MANIFEST), json)
            .map_err(|e| ApiError::internal(format!("writing the manifest: {e}")))?;
        // A tree left by an import that never registered is replaced.
        remove_tree(&target);
        std::fs::rename(&tmp, &target)
            .map_err(|e| ApiError::internal(format!("moving the tree into place: {e}")))?;
        resources::create_osimage(
            db,
            &name,
            &manifest.media.distro,
            &manifest.media.version,
            &manifest.media.arch,
            orig_name,
        )
        .await
        .map_err(ApiError::from)
    }
    .await;
    if let Err(e) = unpacked {
        remove_tree(&tmp);
        remove_tree(&target);
        return Err(e);
    }
    tracing::info!(osimage = %name, distro = %manifest.media.distro, version = %manifest.media.version, arch = %manifest.media.arch, "copycds imported");
    Ok(Imported {
        manifest,
        result: "created",
    })
}
