//! `genimage`: node images built on the API host from Debian's packages.
//!
//! A build is a few named steps, each reported as a progress line:
//!
//! 1. **bootstrap**: `debootstrap --variant=minbase` with the kernel, the
//!    tools the agent needs to write a disk, and the admin's packages,
//!    then trimmed (docs, locales, module trees no node needs). The result
//!    is kept in `[genimage] cache_dir` per (suite, arch, mirror,
//!    packages), so the next build of the same set skips the download.
//! 2. **customize**: a copy of that root gets the agent (`xcat3-agent`,
//!    started by systemd), systemd-networkd, an empty machine id.
//! 3. **pack**: the kernel, and the root as one zstd-compressed `newc`
//!    archive (without `/boot` for stateless images), padded to 4 bytes so
//!    a node's overlay archive can follow it.
//! 4. **register**: the manifest, one rename into `install_dir/NAME`, the
//!    osimage row (`provmethod` = the kind).
//!
//! Everything happens under `install_dir/.tmp-UUID`, removed on any
//! failure or when the client goes away: a failed build leaves nothing.

mod pack;
mod root;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use xcat3_common::model::{
    Build, Detected, ImageKind, MANIFEST, Manifest, OsImageSpec, ROOT_ARCHIVE,
};
use xcat3_db::{Db, DbError, nodes as node_db, resources};

use crate::copycds::RemoveOnDrop;
use crate::error::ApiError;

/// What the admin asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    pub distro: String,
    pub arch: String,
    pub kind: ImageKind,
    pub packages: Vec<String>,
    /// Largest unpacked root, in bytes (it all sits in a node's RAM).
    pub size_limit: Option<u64>,
    pub force: bool,
}

/// The distros `genimage` builds.
pub const DISTROS: &[&str] = &["debian12", "debian13"];

/// A Debian release we build from: `debian12` → bookworm.
fn suite(distro: &str) -> Option<(&'static str, &'static str)> {
    match distro {
        "debian12" => Some(("bookworm", "12")),
        "debian13" => Some(("trixie", "13")),
        _ => None,
    }
}

/// A Debian package name (policy §5.6.1), so nothing else reaches
/// debootstrap's command line.
fn check_package(p: &str) -> bool {
    p.len() >= 2
        && p.len() <= 128
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

impl Request {
    /// Checks everything that needs no IO; errors name the field.
    pub fn check(&self) -> Result<(), ApiError> {
        OsImageSpec::check_name(&self.name)
            .map_err(|e| ApiError::bad_request(format!("osimage {}: {e}", self.name)))?;
        if suite(&self.distro).is_none() {
            return Err(ApiError::bad_request(format!(
                "distro: `{}` is not one of {}",
                self.distro,
                DISTROS.join(", ")
            )));
        }
        if self.arch != std::env::consts::ARCH {
            return Err(ApiError::bad_request(format!(
                "arch: `{}`: this API host builds {} images only (its own architecture)",
                self.arch,
                std::env::consts::ARCH
            )));
        }
        if let Some(bad) = self.packages.iter().find(|p| !check_package(p)) {
            return Err(ApiError::bad_request(format!(
                "packages: `{bad}` is not a Debian package name"
            )));
        }
        Ok(())
    }
}

/// Where a build's progress goes: to a streaming client, or nowhere.
/// A streaming client that went away cancels the build.
#[derive(Clone)]
pub struct Progress {
    tx: Option<mpsc::Sender<Value>>,
    cancelled: Arc<AtomicBool>,
}

impl Progress {
    fn line(step: &str, message: impl Into<String>) -> Value {
        json!({ "step": step, "message": message.into() })
    }

    pub async fn say(&self, step: &str, message: impl Into<String>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Self::line(step, message)).await;
        }
    }

    /// From blocking threads.
    pub fn say_blocking(&self, step: &str, message: impl Into<String>) {
        if let Some(tx) = &self.tx {
            let _ = tx.blocking_send(Self::line(step, message));
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.tx.as_ref().is_some_and(|t| t.is_closed())
    }
}

/// A build in a task of its own; dropped, it cancels the build (the
/// client went away): the task is aborted, which kills debootstrap, and
/// packing stops at its next file.
pub struct Running {
    task: Option<tokio::task::JoinHandle<Result<Value, ApiError>>>,
    cancelled: Arc<AtomicBool>,
}

impl Running {
    /// The image built, or why not.
    pub async fn finish(&mut self) -> Result<Value, ApiError> {
        match self.task.take() {
            Some(t) => t
                .await
                .unwrap_or_else(|e| Err(ApiError::internal(format!("genimage: {e}")))),
            None => Err(ApiError::internal("genimage: already finished")),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Starts a build of `req`; with `stream`, its progress lines come on the
/// receiver, which ends when the build does.
pub fn start(
    st: crate::AppState,
    req: Request,
    stream: bool,
) -> (Running, Option<mpsc::Receiver<Value>>) {
    let (tx, rx) = match stream {
        true => {
            let (tx, rx) = mpsc::channel(256);
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    let progress = Progress {
        tx,
        cancelled: cancelled.clone(),
    };
    let task = tokio::spawn(async move { build(&st.db, &st.config, req, progress).await });
    (
        Running {
            task: Some(task),
            cancelled,
        },
        rx,
    )
}

/// One build at a time per API process: two would fight over the cache
/// and the machine's two cores.
static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs a build: the image's summary, or the error.
async fn build(
    db: &Db,
    config: &xcat3_common::config::Config,
    req: Request,
    progress: Progress,
) -> Result<Value, ApiError> {
    let started = Instant::now();
    let _one = match BUILDING.try_lock() {
        Ok(g) => g,
        Err(_) => {
            progress
                .say("wait", "another image is being built on this API host")
                .await;
            BUILDING.lock().await
        }
    };
    let install_dir = PathBuf::from(&config.api.install_dir);
    let existing = match resources::osimage(db, &req.name).await {
        Ok(row) => Some(row),
        Err(DbError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(row) = &existing {
        if !req.force {
            return Err(ApiError::with_status(
                axum::http::StatusCode::CONFLICT,
                format!("osimage {}: exists; build it again with --force", req.name),
            ));
        }
        if row
            .provmethod
            .as_deref()
            .and_then(ImageKind::parse)
            .is_none()
        {
            return Err(ApiError::bad_request(format!(
                "osimage {}: an imported installer medium, not a built image; choose another name",
                req.name
            )));
        }
        let users = node_db::nodes_using_image(db, row.id).await?;
        if users > 0 {
            return Err(ApiError::with_status(
                axum::http::StatusCode::CONFLICT,
                format!(
                    "osimage {}: {users} nodes are deploying or booted from it; release them first (deploy -d)",
                    req.name
                ),
            ));
        }
    }
    let agent = root::agent_binary(&config.genimage.agent)?;
    let (suite, version) = suite(&req.distro).expect("checked");
    let mirror = root::mirror(&config.genimage.mirror);
    std::fs::create_dir_all(&install_dir)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", install_dir.display())))?;
    let tmp = install_dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&tmp)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", tmp.display())))?;
    let guard = RemoveOnDrop::new(tmp.clone());
    let built: Result<Value, ApiError> = async {
        // 1. bootstrap (or the cached root)
        let base = root::bootstrap(
            Path::new(&config.genimage.cache_dir),
            suite,
            &mirror,
            &req.packages,
            &progress,
        )
        .await?;
        // 2. customize a copy
        let tree = tmp.join("root");
        progress
            .say("customize", "copying the root and adding the agent")
            .await;
        root::copy_tree(&base, &tree).await?;
        root::customize(&tree, &agent).await?;
        // 3. pack
        let out = tmp.join("image");
        std::fs::create_dir(&out).map_err(|e| ApiError::internal(e.to_string()))?;
        let packed = {
            let (tree, out, p, kind) = (tree.clone(), out.clone(), progress.clone(), req.kind);
            tokio::task::spawn_blocking(move || pack::pack(&tree, &out, kind, &p))
                .await
                .map_err(|e| ApiError::internal(format!("packing: {e}")))??
        };
        if let Some(limit) = req.size_limit
            && packed.tree_bytes > limit
        {
            return Err(ApiError::bad_request(format!(
                "size_limit: the root is {} MiB unpacked, over the limit of {} MiB (drop packages, or raise --size-limit)",
                packed.tree_bytes >> 20,
                limit >> 20
            )));
        }
        // 4. register
        let manifest = Manifest {
            name: req.name.clone(),
            media: Detected {
                distro: "debian".into(),
                version: version.into(),
                arch: req.arch.clone(),
                flavor: req.kind.as_str().into(),
                kernel: pack::KERNEL.into(),
                initrd: ROOT_ARCHIVE.into(),
            },
            orig_name: format!("genimage {} {suite}", req.kind.as_str()),
            iso_bytes: 0,
            marker: String::new(),
            iso: None,
            build: Some(Build {
                kind: req.kind,
                suite: suite.into(),
                mirror: mirror.clone(),
                packages: req.packages.clone(),
                kernel_bytes: packed.kernel_bytes,
                root_bytes: packed.root_bytes,
                tree_bytes: packed.tree_bytes,
                built_at: chrono::Utc::now().to_rfc3339(),
                build_seconds: started.elapsed().as_secs(),
            }),
        };
        let json_bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|e| ApiError::internal(e.to_string()))?;
        std::fs::write(out.join(MANIFEST), json_bytes)
            .map_err(|e| ApiError::internal(format!("writing the manifest: {e}")))?;
        let target = install_dir.join(&req.name);
        let old = install_dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let had_old = target.exists();
        if had_old {
            std::fs::rename(&target, &old)
                .map_err(|e| ApiError::internal(format!("moving the old tree aside: {e}")))?;
        }
        std::fs::rename(&out, &target)
            .map_err(|e| ApiError::internal(format!("moving the image into place: {e}")))?;
        let registered = match existing {
            Some(row) => resources::rebuilt_osimage(db, row, version, req.kind.as_str()).await,
            None => {
                resources::create_osimage(
                    db,
                    &req.name,
                    "debian",
                    version,
                    &req.arch,
                    &manifest.orig_name,
                    req.kind.as_str(),
                )
                .await
            }
        };
        if let Err(e) = registered {
            // Nothing half-made: the new tree goes, the old one comes back.
            let _ = std::fs::remove_dir_all(&target);
            if had_old {
                let _ = std::fs::rename(&old, &target);
            }
            return Err(e.into());
        }
        if had_old {
            drop(RemoveOnDrop::new(old));
        }
        tracing::info!(osimage = %req.name, kind = req.kind.as_str(), root_mib = packed.root_bytes >> 20, seconds = started.elapsed().as_secs(), "genimage built");
        Ok(image_summary(&manifest))
    }
    .await;
    // Removed before the reply (a client going away drops the guard
    // instead): once the result is out, nothing of the build is left.
    guard.disarm();
    let _ = tokio::task::spawn_blocking(move || crate::copycds::remove_tree(&tmp)).await;
    built
}

/// What `osimage-show` adds for a built image.
pub fn image_summary(m: &Manifest) -> Value {
    let mut v = json!({ "name": m.name, "distro": m.media.distro, "ver": m.media.version, "arch": m.media.arch });
    if let Some(b) = &m.build {
        v["kind"] = b.kind.as_str().into();
        v["suite"] = b.suite.clone().into();
        v["packages"] = b.packages.clone().into();
        v["kernel_bytes"] = b.kernel_bytes.into();
        v["root_bytes"] = b.root_bytes.into();
        v["tree_bytes"] = b.tree_bytes.into();
        v["built_at"] = b.built_at.clone().into();
        v["build_seconds"] = b.build_seconds.into();
    }
    v
}

/// The manifest beside an image's tree, if it is a regular file there.
pub fn read_manifest(install_dir: &Path, name: &str) -> Option<Manifest> {
    crate::copycds::read_regular(&install_dir.join(name).join(MANIFEST))
        .and_then(|b| serde_json::from_slice(&b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Request {
        Request {
            name: "compute".into(),
            distro: "debian12".into(),
            arch: std::env::consts::ARCH.into(),
            kind: ImageKind::Stateless,
            packages: vec!["openssh-server".into(), "libc6-dev".into()],
            size_limit: None,
            force: false,
        }
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        assert!(req().check().is_ok());
        for (r, field) in [
            (
                Request {
                    distro: "debian9".into(),
                    ..req()
                },
                "distro",
            ),
            (
                Request {
                    arch: "s390x".into(),
                    ..req()
                },
                "arch",
            ),
            (
                Request {
                    packages: vec!["a; rm -rf /".into()],
                    ..req()
                },
                "packages",
            ),
            (
                Request {
                    packages: vec!["--include=x".into()],
                    ..req()
                },
                "packages",
            ),
            (
                Request {
                    name: "../x".into(),
                    ..req()
                },
                "osimage",
            ),
        ] {
            let e = r.check().unwrap_err();
            assert!(e.message.contains(field), "{field}: {}", e.message);
        }
    }
}
