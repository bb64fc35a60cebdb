//! TFTP (read-only) from the TFTP root, for iPXE and per-MAC loader files.

use std::net::SocketAddr;
use std::path::Path;

use async_tftp::server::TftpServerBuilder;

/// Serves `root` on `listen` until the task is dropped.
pub async fn serve(listen: SocketAddr, root: &Path) -> anyhow::Result<()> {
    let server = TftpServerBuilder::with_dir_ro(root)?
        .bind(listen)
        .build()
        .await?;
    tracing::info!(%listen, root = %root.display(), "TFTP serving boot files");
    server.serve().await?;
    Ok(())
}
