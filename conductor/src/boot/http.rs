//! HTTP for iPXE scripts (and, with OS deployment, kernels and install
//! trees): a read-only file server on the HTTP root, with request logs
//! that name the client, so a boot can be followed in the conductor log.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::services::ServeDir;

async fn log_fetch(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    tracing::info!(%peer, path, status = resp.status().as_u16(), "boot file fetched over HTTP");
    resp
}

/// Serves `root` on `listen` until the task is dropped.
pub async fn serve(listen: SocketAddr, root: &Path) -> anyhow::Result<()> {
    let app = Router::new()
        .fallback_service(ServeDir::new(root))
        .layer(middleware::from_fn(log_fetch));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(%listen, root = %root.display(), "HTTP serving boot files");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
