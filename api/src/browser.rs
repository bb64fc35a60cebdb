//! Requests a web page made the admin's browser send.
//!
//! With `auth = "none"` the API trusts whoever reaches its loopback
//! address, and a browser on that machine reaches it too: a page could
//! POST a node list as `text/plain` (no CORS preflight for that), or point
//! its own DNS name at 127.0.0.1 (DNS rebinding) and then act as a
//! same-origin page. So, with `auth = "none"`:
//! - the `Host` must be a loopback name (`localhost`, `127.x.x.x`, `[::1]`);
//! - a request carrying an `Origin` other than the API's own is refused.
//!
//! Bodies are JSON only, whatever the auth mode (`extract::JsonBody`).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// True for `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `host[:port]` part of an `Origin` (`http://127.0.0.1:3010`).
fn origin_authority(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))?;
    Some(rest.trim_end_matches('/'))
}

/// Middleware: the checks above, when authentication is off.
pub async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if st.config.api.auth != "none" {
        return next.run(req).await;
    }
    let h = req.headers();
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(host) = host
        && !is_loopback_host(host)
    {
        return refuse(format!(
            "Host `{host}` refused: with [api] auth = \"none\" only loopback names are accepted (a DNS name pointing here may be a rebinding attack); use auth = \"token\" to serve other names"
        ));
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let same = origin
            .to_str()
            .ok()
            .and_then(origin_authority)
            .is_some_and(|o| host.is_some_and(|h| o.eq_ignore_ascii_case(h)));
        if !same {
            return refuse(format!(
                "cross-site request refused (Origin {:?}): with [api] auth = \"none\" only the API's own pages may call it",
                origin
            ));
        }
    }
    next.run(req).await
}

fn refuse(message: String) -> Response {
    tracing::warn!("{message}");
    ApiError::with_status(StatusCode::FORBIDDEN, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:3010",
            "127.0.0.1",
            "127.9.0.1:80",
            "[::1]:3010",
            "LOCALHOST.",
            "api.localhost:1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:3010",
            "127.0.0.1.evil.example",
            "10.0.0.1",
            "[fd00::1]:3010",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
