//! TFTP (read-only): per-node files from memory, everything else (iPXE
//! binaries, `boot.ipxe`) from the TFTP root. Every read is logged with the
//! client, so a PXE boot can be followed in the conductor log.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use async_tftp::packet;
use async_tftp::server::{Handler, TftpServerBuilder};
use futures_lite::io::Cursor;

use super::BootFiles;

struct BootHandler {
    files: BootFiles,
    root: PathBuf,
}

/// `path` as a relative path inside the root, or None if it tries to leave it.
fn inside(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The contents of `path` if it is a regular file (links followed).
async fn regular_file(path: &Path) -> Option<Vec<u8>> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    if !meta.is_file() {
        return None;
    }
    tokio::fs::read(path).await.ok()
}

impl Handler for BootHandler {
    type Reader = Cursor<Vec<u8>>;
    type Writer = futures_lite::io::Sink;

    async fn read_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
    ) -> Result<(Self::Reader, Option<u64>), packet::Error> {
        let Some(rel) = inside(path) else {
            tracing::warn!(%client, path = %path.display(), "TFTP request outside the root refused");
            return Err(packet::Error::PermissionDenied);
        };
        let data = match self.files.tftp_file(&rel) {
            Some(text) => text.as_bytes().to_vec(),
            // Boot binaries are at most a few MB; regular files only (a
            // FIFO would hang the read).
            None => match regular_file(&self.root.join(&rel)).await {
                Some(d) => d,
                None => {
                    tracing::info!(%client, path = rel, "TFTP file not found");
                    return Err(packet::Error::FileNotFound);
                }
            },
        };
        tracing::info!(%client, path = rel, bytes = data.len(), "boot file fetched over TFTP");
        let len = data.len() as u64;
        Ok((Cursor::new(data), Some(len)))
    }

    async fn write_req_open(
        &mut self,
        _client: &SocketAddr,
        _path: &Path,
        _size: Option<u64>,
    ) -> Result<Self::Writer, packet::Error> {
        Err(packet::Error::IllegalOperation)
    }
}

/// Serves the boot files on `listen` until the task is dropped.
pub async fn serve(listen: SocketAddr, files: BootFiles) -> anyhow::Result<()> {
    let root = files.tftp_root().to_path_buf();
    let server = TftpServerBuilder::with_handler(BootHandler {
        files,
        root: root.clone(),
    })
    .bind(listen)
    .build()
    .await?;
    tracing::info!(%listen, root = %root.display(), "TFTP serving boot files");
    server.serve().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(inside(Path::new("/grub/x")).as_deref(), Some("grub/x"));
        assert_eq!(
            inside(Path::new("undionly.kpxe")).as_deref(),
            Some("undionly.kpxe")
        );
        assert_eq!(inside(Path::new("../etc/passwd")), None);
        assert_eq!(inside(Path::new("grub/../../x")), None);
        assert_eq!(inside(Path::new("/")), None);
    }
}
