//! HTTP for iPXE scripts, answer files, kernels and initrds: per-node
//! files from memory, everything else (iPXE's `boot.ipxe`, images fetched
//! from the API host) from the HTTP root; one log line per fetch naming the
//! client.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

use super::BootFiles;
use super::files::Answer;
use super::steps::FetchedImages;

#[derive(Clone)]
struct Served {
    files: BootFiles,
    fetched: FetchedImages,
}

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

/// `GET /ipxe/<mac-with-dashes>`: the node's iPXE script, from memory
/// (it carries no secret: the token is in the answer files too, but those
/// go to the node alone).
async fn node_file(State(st): State<Served>, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match st.files.http_file(path) {
        Some(text) => text_reply(&text),
        None => not_found(),
    }
}

/// `GET /autoinst/<node>/<file>`: its answer files (root password hash,
/// callback token) and a built image's overlay, only to the node's
/// reserved address. A served overlay is the node's `image fetched`.
async fn answer_file(
    State(st): State<Served>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
) -> Response {
    let path = uri.path().trim_start_matches('/');
    match st.files.answer_file(path, peer.ip()) {
        Answer::File(text) if path.ends_with(&format!("/{}", crate::answers::OVERLAY)) => {
            if let Some(node) = path.split('/').nth(1) {
                st.fetched.fetched(node);
            }
            (
                [(header::CONTENT_TYPE, "application/octet-stream")],
                text.to_string(),
            )
                .into_response()
        }
        Answer::File(text) => text_reply(&text),
        Answer::Missing => not_found(),
        Answer::Refused => {
            tracing::warn!(%peer, path, "answer file refused: not the node's reserved address");
            (
                StatusCode::FORBIDDEN,
                "answer files are served to the node's own address only\n",
            )
                .into_response()
        }
    }
}

fn text_reply(text: &str) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], text.to_string()).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such file for this node\n").into_response()
}

/// Serves the boot files on `listen` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    files: BootFiles,
    fetched: FetchedImages,
) -> anyhow::Result<()> {
    let listen = listener.local_addr()?;
    let root = files.http_root().to_path_buf();
    let app = Router::new()
        .route("/ipxe/{name}", get(node_file))
        .route("/autoinst/{node}/{file}", get(answer_file))
        // This conductor's metrics (driver latencies), for Prometheus.
        .route(
            "/metrics",
            get(|| async { xcat3_common::metrics::render() }),
        )
        .with_state(Served { files, fetched })
        // Root archives are 100+ MiB and a mass reboot reads one per node:
        // 256 KiB reads instead of the default 64 KiB took serving 1,000
        // nodes from 92 to 65 CPU-seconds (scripts/bench images).
        .fallback_service(ServeDir::new(&root).with_buf_chunk_size(256 << 10))
        .layer(middleware::from_fn(log_fetch));
    tracing::info!(%listen, root = %root.display(), "HTTP serving boot files");
    // The provisioning network is hostile: timeouts and connection caps.
    crate::listener::serve(
        listener,
        app,
        crate::listener::Limits::BOOT,
        std::future::pending(),
    )
    .await?;
    Ok(())
}
