//! Accepting HTTP connections with limits, so slow or many clients cannot
//! hold a server: `axum::serve` has no header-read timer and no connection cap,
//! and 1,100 half-sent requests made `/healthz` time out for as long as
//! they stayed open (the process ran out of file descriptors).
//!
//! Here every connection gets:
//! - a header-read timeout: the whole request head, and the wait for the
//!   next one on a kept-alive connection;
//! - a place under a global cap (lowered to fit the process's
//!   file-descriptor limit) and a per-address cap; a connection over a cap
//!   is closed at once, so one client cannot take every place.
//!
//! Production deployments still put a TLS reverse proxy in front of the
//! API (SECURITY.md); these limits keep it alive when they do not. The
//! conductor's boot HTTP server faces the provisioning network, which is
//! hostile by design (SECURITY.md), so it is served the same way.
//!
//! It lives in the conductor crate because both servers can reach it here
//! (the API depends on the conductor for standalone mode).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;
use xcat3_common::config::ApiConfig;

/// What one server accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_timeout: Duration,
}

impl Limits {
    /// The API's, from `[api]`.
    pub fn of_api(cfg: &ApiConfig) -> Limits {
        Limits {
            max_connections: cfg.max_connections,
            max_connections_per_ip: cfg.max_connections_per_ip,
            header_timeout: Duration::from_secs(cfg.header_timeout.max(1)),
        }
    }

    /// A conductor's boot HTTP server: nodes fetch a script, a kernel and
    /// an initrd each, from their own addresses.
    pub const BOOT: Limits = Limits {
        max_connections: 4096,
        max_connections_per_ip: 64,
        header_timeout: Duration::from_secs(10),
    };
}

/// File descriptors kept free for the database pool, the bus, install
/// files being served and logs.
const RESERVED_FDS: u64 = 256;

/// Open connections per client address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// A connection's places under both caps; released when dropped.
struct Place {
    _global: OwnedSemaphorePermit,
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut m = self.per_ip.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl PerIp {
    fn enter(
        self: &Arc<Self>,
        ip: IpAddr,
        limit: usize,
        global: OwnedSemaphorePermit,
    ) -> Option<Place> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Place {
            _global: global,
            per_ip: self.clone(),
            ip,
        })
    }
}

/// Raises the soft file-descriptor limit to the hard one and returns it.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// The global connection cap: the configured one, lowered to what the
/// file-descriptor limit allows.
fn connection_cap(wanted: usize) -> usize {
    let fds = raise_fd_limit();
    let fit = fds.saturating_sub(RESERVED_FDS).max(16);
    let cap = wanted.min(usize::try_from(fit).unwrap_or(usize::MAX));
    if cap < wanted {
        tracing::warn!(
            configured = wanted,
            cap,
            fds,
            "max_connections lowered to fit the file-descriptor limit"
        );
    }
    cap
}

fn refused(why: &'static str) {
    xcat3_common::metrics::count(
        "xcat3_http_connections_refused_total",
        "HTTP connections closed at accept because a limit was reached.",
        &[("limit", why)],
        1,
    );
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes;
/// then stops accepting and waits for open requests to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let global = Arc::new(Semaphore::new(connection_cap(limits.max_connections)));
    let per_ip = Arc::new(PerIp::default());
    let per_ip_limit = limits.max_connections_per_ip.max(1);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Graceful shutdown by hand: hyper-util's helper does not take
    // connections that may upgrade (websockets).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let Ok(permit) = global.clone().try_acquire_owned() else {
            refused("global");
            continue;
        };
        let Some(place) = per_ip.enter(peer.ip(), per_ip_limit, permit) else {
            refused("per_ip");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = app
            .clone()
            .map_request(move |mut req: axum::extract::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        // With upgrades: consoles are websockets (the API's and the
        // conductor's console endpoint).
        let conn = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
            .with_upgrades();
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _place = place;
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            let result = loop {
                let stop_now = tokio::select! {
                    r = conn.as_mut() => break r,
                    _ = stop.wait_for(|s| *s), if !stopping => true,
                };
                if stop_now {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// The client's address, when the connection recorded one (router tests
/// call the app without a socket).
pub fn peer(req_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    req_extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
