//! Bearer-token authentication and role checks (`[api] auth = "token"`).
//!
//! A token is `xc3_<id>_<secret>`: the id finds its row (one indexed read
//! per request, so a revoked token is refused at once, on every API host),
//! the secret is checked against the row's argon2 hash. Argon2 is slow on
//! purpose, so a secret that verified once is remembered (as a SHA-256,
//! next to the hash it verified against) and later requests cost one read
//! and one digest.
//!
//! Roles are ordered: `reader` reads, `operator` also runs power, boot
//! device and deploy actions, `admin` does everything else (inventory
//! writes, guests, OS images).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{MatchedPath, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use xcat3_db::tokens::{self, TokenRow};

use crate::AppState;
use crate::error::ApiError;

/// What a token may do; each role includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Reader,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [&'static str; 3] = ["admin", "operator", "reader"];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a request, set on every request by [`authenticate`]: the
/// token's name (none without authentication).
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub name: Option<String>,
    /// The token's role (none without authentication: every right).
    pub role: Option<Role>,
}

/// The role `method` on `route` (a route pattern, as matched) needs, or
/// none for what is open to anyone: health and metrics (probes and
/// Prometheus), the API's version documents, install trees (installers
/// read them) and the install callback (it carries its node's own token).
pub fn required_role(method: &Method, route: &str) -> Option<Role> {
    let route = route.strip_prefix("/v1").unwrap_or(route);
    let public = matches!(
        route,
        "" | "/"
            | "/healthz"
            | "/readyz"
            | "/metrics"
            | "/openapi.json"
            | "/nodes/provision/callback"
            | "/nodes/provision/postscripts"
    ) || route.starts_with("/install");
    if public {
        return None;
    }
    // An export holds every secret in clear.
    if route == "/nodes/export" {
        return Some(Role::Admin);
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(Role::Reader);
    }
    let action = matches!(
        route,
        "/nodes/power" | "/nodes/boot_device" | "/nodes/provision" | "/nodes/beacon"
    );
    // Clearing event logs is an operator's hardware action too.
    let clear_log = route == "/nodes/eventlog" && method == Method::DELETE;
    Some(if (action && method == Method::PUT) || clear_log {
        Role::Operator
    } else {
        Role::Admin
    })
}

/// A new token: its stored row (secret hashed) and the text to hand out,
/// which is never stored.
pub fn new_token(
    name: &str,
    role: Role,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<(TokenRow, String)> {
    let (id, secret) = (xcat3_common::random_hex(8), xcat3_common::random_hex(32));
    let hash = Argon2::default()
        .hash_password(secret.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the token: {e}"))?
        .to_string();
    let row = TokenRow {
        id: id.clone(),
        name: name.to_string(),
        role: role.as_str().to_string(),
        secret_hash: hash,
        created_at: chrono::Utc::now(),
        expires_at,
    };
    Ok((row, format!("xc3_{id}_{secret}")))
}

/// `xc3_<id>_<secret>` split, or none if the text is not shaped so.
fn split_token(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("xc3_")?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// A secret that verified: the hash it matched and the secret's SHA-256.
type Seen = (String, [u8; 32]);

/// Argon2 runs at once (each takes ~19 MiB and tens of ms of one core).
const HASHING_AT_ONCE: usize = 2;
/// How long a request waits for a turn at argon2 before it gets a 503.
const HASHING_WAIT: Duration = Duration::from_secs(5);
/// Wrong secrets per token id and client address per window before argon2
/// is not even tried for them. Per address, so an attacker locks out only
/// itself, not the token's owner calling from elsewhere.
const FAILURES_PER_WINDOW: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// (token id, address) pairs remembered at most (past this the table is
/// emptied of expired windows, then cleared).
const FAILURE_IDS: usize = 10_000;

/// Recent attempts that were not (yet) a valid secret, under one token id
/// from one address (against one hash).
struct Failures {
    hash: String,
    since: Instant,
    /// Argon2 runs started in this window.
    count: u32,
    /// SHA-256 of wrong secrets seen in this window: the same wrong secret
    /// again costs a digest, not an argon2 run.
    digests: Vec<[u8; 32]>,
}

/// The outcome of checking a presented secret.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    Valid,
    Wrong,
    /// Too many attempts for this token id from this address lately.
    Limited,
    /// Argon2 is saturated; try again shortly.
    Busy,
}

/// Secrets already verified, by token id (a row replaced under the same id
/// never matches: its hash differs), and recent failures. Argon2 is an
/// amplifier otherwise: a wrong secret under a real token id would run it
/// on every request until the token's first valid use (1,500 such
/// requests took the API from 2.3 to 6.8 GB).
#[derive(Clone)]
pub struct Verified(Arc<VerifiedInner>);

struct VerifiedInner {
    seen: Mutex<HashMap<String, Seen>>,
    failures: Mutex<HashMap<String, Failures>>,
    hashing: tokio::sync::Semaphore,
}

impl Default for Verified {
    fn default() -> Verified {
        Verified(Arc::new(VerifiedInner {
            seen: Mutex::default(),
            failures: Mutex::default(),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
        }))
    }
}

impl Verified {
    /// Whether `secret` matches `row`'s hash: a remembered answer when
    /// there is one, else argon2 under the bounds above.
    async fn check(&self, row: &TokenRow, secret: &str, client: Option<IpAddr>) -> Check {
        let key = match client {
            Some(ip) => format!("{}@{}", row.id, ip.to_canonical()),
            None => row.id.clone(),
        };
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        {
            let seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((hash, d)) = seen.get(&row.id)
                && *hash == row.secret_hash
            {
                return if *d == digest {
                    Check::Valid
                } else {
                    Check::Wrong
                };
            }
        }
        // Count the attempt before hashing, so concurrent wrong secrets
        // cannot all slip past the limit while the first ones are hashed.
        {
            let mut failures = self.0.failures.lock().unwrap_or_else(|p| p.into_inner());
            if failures
                .get(&key)
                .is_some_and(|f| f.hash != row.secret_hash || f.since.elapsed() > FAILURE_WINDOW)
            {
                failures.remove(&key);
            }
            if failures.len() >= FAILURE_IDS {
                failures.retain(|_, f| f.since.elapsed() <= FAILURE_WINDOW);
                if failures.len() >= FAILURE_IDS {
                    failures.clear();
                }
            }
            let f = failures.entry(key.clone()).or_insert_with(|| Failures {
                hash: row.secret_hash.clone(),
                since: Instant::now(),
                count: 0,
                digests: Vec::new(),
            });
            if f.digests.contains(&digest) {
                return Check::Wrong;
            }
            if f.count >= FAILURES_PER_WINDOW {
                return Check::Limited;
            }
            f.count += 1;
        }
        let Ok(Ok(_turn)) = tokio::time::timeout(HASHING_WAIT, self.0.hashing.acquire()).await
        else {
            return Check::Busy;
        };
        let (hash, owned) = (row.secret_hash.clone(), secret.to_string());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(owned.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        let mut failures = self.0.failures.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            failures.remove(&key);
            drop(failures);
            let mut seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.insert(row.id.clone(), (row.secret_hash.clone(), digest));
            return Check::Valid;
        }
        if let Some(f) = failures.get_mut(&key)
            && f.digests.len() < FAILURES_PER_WINDOW as usize
        {
            f.digests.push(digest);
        }
        Check::Wrong
    }
}

fn unauthorized(message: &str) -> Response {
    let mut resp = ApiError::with_status(StatusCode::UNAUTHORIZED, message).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"xcat3\""),
    );
    resp
}

/// The bearer token of a request: `Authorization: Bearer T` or, as
/// OpenStack clients send it, `X-Auth-Token: T`.
fn presented(req: &axum::extract::Request) -> Option<&str> {
    let h = req.headers();
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim);
    }
    h.get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Middleware: with `auth = "token"`, refuses requests without a valid
/// token (401) or whose token's role is too low for the route (403), and
/// records the caller for the request history.
pub async fn authenticate(
    State(st): State<AppState>,
    mut req: axum::extract::Request,
    next: Next,
) -> Response {
    if st.config.api.auth != "token" {
        req.extensions_mut().insert(Caller::default());
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let Some(needed) = required_role(req.method(), &route) else {
        req.extensions_mut().insert(Caller::default());
        return next.run(req).await;
    };
    let Some(text) = presented(&req) else {
        return unauthorized("authentication required: send `Authorization: Bearer TOKEN`");
    };
    let Some((id, secret)) = split_token(text) else {
        return unauthorized("the token is not an xcat3 token (xc3_...)");
    };
    let row = match tokens::get(&st.db, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return unauthorized("the token is unknown or revoked"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if row.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
        return unauthorized("the token has expired");
    }
    let client = xcat3_conductor::listener::peer(req.extensions()).map(|a| a.ip());
    match st.verified.check(&row, secret, client).await {
        Check::Valid => {}
        Check::Wrong => {
            tracing::warn!(token = %row.name, "a token with a wrong secret was refused");
            return unauthorized("the token is unknown or revoked");
        }
        Check::Limited => {
            tracing::warn!(token = %row.name, "wrong secrets for this token id: refused without checking");
            let mut resp = ApiError::with_status(
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong secrets for this token from this address lately; retry in a minute",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
            return resp;
        }
        Check::Busy => {
            return ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "token checks are saturated; retry shortly",
            )
            .into_response();
        }
    }
    let role = Role::parse(&row.role).unwrap_or(Role::Reader);
    if role < needed {
        return ApiError::with_status(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} has role {role}; {} {route} needs {needed}",
                row.name,
                req.method()
            ),
        )
        .into_response();
    }
    tracing::debug!(token = %row.name, %role, "authenticated");
    req.extensions_mut().insert(Caller {
        name: Some(row.name),
        role: Some(role),
    });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_route() {
        let cases = [
            (Method::GET, "/healthz", None),
            (Method::GET, "/metrics", None),
            (Method::GET, "/v1", None),
            (Method::GET, "/v1/openapi.json", None),
            (Method::PUT, "/v1/nodes/provision/callback", None),
            (Method::GET, "/install/{*path}", None),
            (Method::GET, "/v1/nodes", Some(Role::Reader)),
            (Method::GET, "/nodes/power", Some(Role::Reader)),
            (Method::GET, "/v1/requests/{id}", Some(Role::Reader)),
            (Method::GET, "/v1/nodes/export", Some(Role::Admin)),
            (Method::PUT, "/v1/nodes/power", Some(Role::Operator)),
            (Method::PUT, "/nodes/boot_device", Some(Role::Operator)),
            (Method::PUT, "/v1/nodes/provision", Some(Role::Operator)),
            (Method::GET, "/v1/nodes/inventory", Some(Role::Reader)),
            (Method::GET, "/v1/nodes/vitals", Some(Role::Reader)),
            (Method::GET, "/v1/nodes/eventlog", Some(Role::Reader)),
            (Method::DELETE, "/v1/nodes/eventlog", Some(Role::Operator)),
            (Method::PUT, "/v1/nodes/beacon", Some(Role::Operator)),
            (Method::GET, "/v1/nodes/health", Some(Role::Reader)),
            (Method::POST, "/v1/nodes", Some(Role::Admin)),
            (Method::PATCH, "/v1/nodes/{name}", Some(Role::Admin)),
            (Method::DELETE, "/v1/nodes", Some(Role::Admin)),
            (Method::POST, "/v1/nodes/vm", Some(Role::Admin)),
            (Method::POST, "/v1/osimages", Some(Role::Admin)),
            (Method::PUT, "/v1/nodes/{name}", Some(Role::Admin)),
        ];
        for (m, route, want) in cases {
            assert_eq!(required_role(&m, route), want, "{m} {route}");
        }
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Reader);
    }

    /// The review's amplifier: wrong secrets under a real, never used
    /// token id ran argon2 on every request. Now a repeated wrong secret
    /// is answered from memory and, past a few distinct ones per minute,
    /// argon2 is not run at all for that id.
    #[tokio::test]
    async fn wrong_secrets_cannot_make_argon2_run_without_bound() {
        let (row, text) = new_token("fresh", Role::Reader, None).unwrap();
        let (_, secret) = split_token(&text).unwrap();
        let v = Verified::default();
        let attacker = Some("10.0.0.66".parse().unwrap());
        for i in 0..FAILURES_PER_WINDOW {
            assert_eq!(
                v.check(&row, &format!("wrong{i}"), attacker).await,
                Check::Wrong
            );
        }
        // The same wrong secret again: remembered, not re-hashed or counted.
        assert_eq!(v.check(&row, "wrong0", attacker).await, Check::Wrong);
        // A new one past the limit: refused before argon2.
        assert_eq!(v.check(&row, "wrong-new", attacker).await, Check::Limited);
        assert_eq!(v.check(&row, secret, attacker).await, Check::Limited);
        {
            let f = v.0.failures.lock().unwrap();
            assert_eq!(
                f[&format!("{}@10.0.0.66", row.id)].count,
                FAILURES_PER_WINDOW
            );
        }
        // The owner, calling from elsewhere, is not locked out; nor are
        // other tokens.
        let owner = Some("10.0.0.5".parse().unwrap());
        assert_eq!(v.check(&row, secret, owner).await, Check::Valid);
        let (other, other_text) = new_token("other", Role::Reader, None).unwrap();
        let (_, other_secret) = split_token(&other_text).unwrap();
        assert_eq!(v.check(&other, other_secret, attacker).await, Check::Valid);
        // At most HASHING_AT_ONCE argon2 runs at once, whatever the load.
        assert_eq!(v.0.hashing.available_permits(), HASHING_AT_ONCE);
    }

    #[tokio::test]
    async fn a_token_verifies_only_with_its_own_secret() {
        let (row, text) = new_token("ops", Role::Operator, None).unwrap();
        let (id, secret) = split_token(&text).unwrap();
        assert_eq!(id, row.id);
        assert!(row.secret_hash.starts_with("$argon2id$"));
        assert!(!row.secret_hash.contains(secret));
        let v = Verified::default();
        assert_eq!(v.check(&row, secret, None).await, Check::Valid);
        // Remembered now; a wrong secret is still refused.
        assert_eq!(v.check(&row, secret, None).await, Check::Valid);
        assert_eq!(v.check(&row, "0000", None).await, Check::Wrong);
        // A row re-made under the same id is checked against its own hash.
        let (other, _) = new_token("ops", Role::Operator, None).unwrap();
        let replaced = TokenRow {
            id: row.id.clone(),
            ..other
        };
        assert_eq!(v.check(&replaced, secret, None).await, Check::Wrong);
        assert_eq!(split_token("xc3__x"), None);
        assert_eq!(split_token("Bearer"), None);
    }
}
