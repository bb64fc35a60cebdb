//! xcat3-api: the REST service. Validates input, expands noderanges, reads
//! and writes the inventory, and (with a conductor) dispatches actions.
//!
//! `app(state)` builds the whole router; `serve` runs it until `shutdown`.
//! Handlers live in `routes/`, one file per resource.

pub mod auth;
pub mod browser;
pub mod copycds;
pub mod dispatch;
pub mod error;
pub mod extract;
pub mod genimage;
pub mod openapi;
pub mod routes;
pub mod view;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use xcat3_common::config::Config;
use xcat3_db::Db;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    /// Where actions go: RabbitMQ, or the in-process bus in standalone mode.
    pub bus: Arc<dyn xcat3_bus::Bus>,
    /// Token secrets already verified (see `auth`).
    pub verified: auth::Verified,
}

impl AppState {
    pub fn new(db: Db, config: Config, bus: Arc<dyn xcat3_bus::Bus>) -> AppState {
        AppState {
            db,
            config: Arc::new(config),
            bus,
            verified: auth::Verified::default(),
        }
    }
}

/// The header carrying each request's id (the v1 server sent it too).
pub const REQUEST_ID_HEADER: &str = "xcat3-request-id";

#[derive(Clone, Default)]
struct MakeReqId;

impl MakeRequestId for MakeReqId {
    fn make_request_id<B>(&mut self, _req: &Request<B>) -> Option<RequestId> {
        let id = format!("req-{}", uuid::Uuid::new_v4());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Drops a request id sent by the client: ids key the request history, so
/// the API makes every one itself.
async fn fresh_request_id(mut req: axum::extract::Request, next: Next) -> Response {
    req.headers_mut().remove(REQUEST_ID_HEADER);
    next.run(req).await
}

/// `/install/` serves osimage trees, not what sits beside them: ISOs
/// being uploaded (`.incoming/`) and any other dot-entry at the top; and
/// only regular files and directories (listings): opening a FIFO would
/// pin a blocking thread for good. copycds keeps nothing else in a tree;
/// this holds for trees placed there by hand too.
async fn install_guard(
    axum::extract::State(root): axum::extract::State<Arc<std::path::PathBuf>>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let decoded = xcat3_common::percent_decode(path);
    let rel = decoded.as_deref().unwrap_or("").trim_start_matches('/');
    let hidden = decoded.is_err() || rel.starts_with('.') || rel.split('/').any(|seg| seg == "..");
    let special = !hidden
        && match tokio::fs::metadata(root.join(rel)).await {
            Ok(m) => !(m.is_file() || m.is_dir()),
            Err(_) => false,
        };
    if hidden || special {
        return routes::root::not_found(req.uri().clone())
            .await
            .into_response();
    }
    next.run(req).await
}

/// Counts every routed request by method, route pattern and status.
async fn count_request(req: axum::extract::Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [
        ("method", method.as_str()),
        ("route", route.as_str()),
        ("status", status.as_str()),
    ];
    xcat3_common::metrics::count(
        "xcat3_api_requests_total",
        "HTTP requests by method, route and status.",
        &labels,
        1,
    );
    xcat3_common::metrics::observe(
        "xcat3_api_request_seconds",
        "HTTP request latency by method and route.",
        &labels[..2],
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`: Prometheus text format. Node counts per health verdict
/// are read from the database at each scrape (one grouped count), so every
/// API serves the same figures; no per-node labels.
async fn metrics(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    match xcat3_db::inventory::health_counts(&st.db).await {
        Ok(counts) => {
            for h in xcat3_common::inspect::Health::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == h.as_str())
                    .map_or(0, |(_, n)| *n);
                xcat3_common::metrics::gauge(
                    "xcat3_nodes_health",
                    "Nodes by their last health verdict (xcat3 health).",
                    &[("health", h.as_str())],
                    n as f64,
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "counting node health for /metrics");
            xcat3_common::metrics::db_error("health_counts");
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        xcat3_common::metrics::render(),
    )
}

/// The v1 version headers, sent on every reply.
async fn version_headers(req: axum::extract::Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "x-xcat3-api-minimum-version",
        HeaderValue::from_static("1.1"),
    );
    h.insert(
        "x-xcat3-api-maximum-version",
        HeaderValue::from_static("1.31"),
    );
    h.insert("x-xcat3-api-version", HeaderValue::from_static("1.1"));
    resp
}

/// The whole application. `/nodes` and `/v1/nodes` are the same routes, as
/// in v1 (whose root prepended `v1`).
pub fn app(state: AppState) -> Router {
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    let limit = state.config.api.max_body_bytes;
    let v1 = routes::v1();
    Router::new()
        .route("/", axum::routing::get(routes::root::root))
        .route("/healthz", axum::routing::get(routes::root::healthz))
        .route("/metrics", axum::routing::get(metrics))
        .route("/readyz", axum::routing::get(routes::root::readyz))
        .route("/v1", axum::routing::get(routes::root::v1))
        .route("/v1/", axum::routing::get(routes::root::v1))
        .nest("/v1", v1.clone())
        .merge(v1)
        // Install trees (copycds) for conductors and installers.
        .nest_service(
            "/install",
            Router::new()
                .fallback_service(tower_http::services::ServeDir::new(
                    &state.config.api.install_dir,
                ))
                .layer(middleware::from_fn_with_state(
                    Arc::new(std::path::PathBuf::from(&state.config.api.install_dir)),
                    install_guard,
                )),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .route_layer(middleware::from_fn(count_request))
        .fallback(routes::root::not_found)
        .method_not_allowed_fallback(routes::root::method_not_allowed)
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(state.clone(), browser::guard))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            state.config.api.body_timeout.max(1),
        )))
        .layer(middleware::from_fn(version_headers))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(SetRequestIdLayer::new(header, MakeReqId))
        .layer(middleware::from_fn(fresh_request_id))
}

/// Serves `app(state)` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = xcat3_conductor::listener::Limits::of_api(&state.config.api);
    xcat3_conductor::listener::serve(listener, app(state), limits, shutdown).await
}
