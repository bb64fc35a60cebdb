//! The console endpoint: how the API attaches viewers to this conductor's
//! consoles, and the API's side of it ([`dial`], [`splice`]).
//!
//! `GET /console/{node}?read_only=&force=` with `Authorization: Bearer
//! <token>` (the token this conductor registered in `services` at start)
//! upgrades to a websocket. Binary frames carry the console's bytes both
//! ways; a text frame `break` sends a serial break; text frames from here
//! are notices for the person watching. A node this conductor does not
//! own, or cannot connect, is refused before the upgrade with a status and
//! a message the API passes on.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use tokio_tungstenite::tungstenite;
use xcat3_db::services::ConsoleEndpoint;

use super::{AttachError, Attachment, ConsoleServer};
use crate::drivers::LinkInput;
use crate::listener::Limits;

/// What the console endpoint accepts: the API is its only client, but it
/// may hold thousands of viewers.
const LIMITS: Limits = Limits {
    max_connections: 16384,
    max_connections_per_ip: 16384,
    header_timeout: std::time::Duration::from_secs(10),
};

#[derive(Clone)]
struct Endpoint {
    server: Arc<ConsoleServer>,
    token: Arc<str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AttachQuery {
    pub read_only: bool,
    pub force: bool,
}

/// Serves the console endpoint on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Arc<ConsoleServer>,
    token: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/console/{node}", get(attach))
        .with_state(Endpoint {
            server,
            token: token.into(),
        });
    crate::listener::serve(listener, app, LIMITS, shutdown).await
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Constant time in the token's length.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn attach(
    State(ep): State<Endpoint>,
    Path(node): Path<String>,
    Query(q): Query<AttachQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !authorized(&headers, &ep.token) {
        return (StatusCode::UNAUTHORIZED, "console token refused").into_response();
    }
    match ep.server.attach(&node, q.read_only, q.force).await {
        Ok(att) => {
            let host = ep.server.host().to_string();
            ws.on_upgrade(move |socket| viewer(socket, att, node, host, q.read_only))
        }
        Err(e) => {
            let status = match &e {
                AttachError::NotFound(_) => StatusCode::NOT_FOUND,
                AttachError::NotOwner { .. } => StatusCode::CONFLICT,
                // The record does not allow a console now (no console
                // interface, logging off): the node's state, not the
                // request, is what is wrong.
                AttachError::Invalid(..) => StatusCode::CONFLICT,
                AttachError::Store(..) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, e.to_string()).into_response()
        }
    }
}

/// One viewer's websocket: console output out, keys in.
async fn viewer(socket: WebSocket, mut att: Attachment, node: String, host: String, ro: bool) {
    let (mut tx, mut rx) = socket.split();
    let hello = format!(
        "console of {node} on conductor {host}{}",
        if ro { " (read-only)" } else { "" }
    );
    if tx.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            chunk = att.output.recv() => match chunk {
                Some(c) => {
                    if tx.send(Message::Binary(c.to_vec().into())).await.is_err() {
                        return;
                    }
                }
                None => {
                    let why = if att.dropped.load(Ordering::Relaxed) {
                        "this viewer fell behind the console's output and was disconnected"
                    } else {
                        "the console was closed on the conductor"
                    };
                    let _ = tx.send(Message::Text(why.into())).await;
                    let _ = tx.send(Message::Close(None)).await;
                    return;
                }
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if let Some(input) = &att.input {
                        // A full queue means the node is not taking keys:
                        // they are dropped, not queued without bound.
                        let _ = input.try_send(LinkInput::Data(b.to_vec()));
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    if t.as_str() == "break"
                        && let Some(input) = &att.input
                    {
                        let _ = input.try_send(LinkInput::Break);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// A console on a conductor, as the API holds it before upgrading its
/// client.
pub struct Dialed(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

/// Why the conductor did not give us the console: its status and message
/// (to pass on), or that it could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("conductor console endpoint {url}: {why}")]
    Unreachable { url: String, why: String },
}

/// Connects to `node`'s console on the conductor at `endpoint`.
pub async fn dial(
    endpoint: &ConsoleEndpoint,
    node: &str,
    read_only: bool,
    force: bool,
) -> Result<Dialed, DialError> {
    use tungstenite::client::IntoClientRequest as _;
    let url = format!(
        "{}/console/{}?read_only={read_only}&force={force}",
        endpoint.url.trim_end_matches('/'),
        xcat3_common::percent_encode(node, b""),
    );
    let unreachable = |why: String| DialError::Unreachable {
        url: endpoint.url.clone(),
        why,
    };
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| unreachable(e.to_string()))?;
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {}", endpoint.token)
            .parse()
            .map_err(|_| unreachable("the registered token is not a header value".into()))?,
    );
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(Dialed(ws)),
        Err(tungstenite::Error::Http(resp)) => Err(DialError::Refused {
            status: resp.status().as_u16(),
            message: resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| resp.status().to_string()),
        }),
        Err(e) => Err(unreachable(e.to_string())),
    }
}

/// Joins the API's client websocket to a dialed conductor console until
/// either side closes.
pub async fn splice(client: WebSocket, conductor: Dialed) {
    let (mut c_tx, mut c_rx) = client.split();
    let (mut d_tx, mut d_rx) = conductor.0.split();
    loop {
        tokio::select! {
            m = d_rx.next() => {
                let out = match m {
                    Some(Ok(tungstenite::Message::Binary(b))) => Message::Binary(b),
                    Some(Ok(tungstenite::Message::Text(t))) => Message::Text(t.as_str().into()),
                    Some(Ok(tungstenite::Message::Close(_))) | Some(Err(_)) | None => {
                        let _ = c_tx.send(Message::Close(None)).await;
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                if c_tx.send(out).await.is_err() {
                    let _ = d_tx.send(tungstenite::Message::Close(None)).await;
                    return;
                }
            }
            m = c_rx.next() => {
                let out = match m {
                    Some(Ok(Message::Binary(b))) => tungstenite::Message::Binary(b),
                    Some(Ok(Message::Text(t))) => tungstenite::Message::Text(t.as_str().into()),
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        let _ = d_tx.send(tungstenite::Message::Close(None)).await;
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                if d_tx.send(out).await.is_err() {
                    let _ = c_tx.send(Message::Close(None)).await;
                    return;
                }
            }
        }
    }
}
