//! xcat3-common: the pure core every xcat3 process shares. No database and
//! no broker: the CLI and the simulator link this alone.
//!
//! - [`model`]: validated inventory specs built from untrusted JSON;
//! - [`hardware`]: hardware types, their interfaces and the keys they read;
//! - [`noderange`]: expand and fold xCAT noderanges;
//! - [`console`]: serial consoles: logging modes, per-node state, the CLI's escape;
//! - [`config`]: the TOML configuration with `XCAT3_<SECTION>_<KEY>` overrides;
//! - [`ring`]: the tooz-compatible consistent hash ring;
//! - [`rpc`]: the messages between API and conductors;
//! - [`metrics`]: the process's Prometheus registry.
//!
//! Beside it in `common/`: `xcat3-db` (the store), `xcat3-bus` (RabbitMQ or
//! in-process), `xcat3-ipmi` (the RMCP+ codec).

pub mod agent;
pub mod config;
pub mod console;
pub mod cpio;
pub mod crypt;
pub mod exec;
pub mod hardware;
pub mod inspect;
pub mod metrics;
pub mod model;
pub mod noderange;
pub mod postscripts;
pub mod process;
pub mod ring;
pub mod rpc;
pub mod schema;

/// `s` percent-encoded for a URL query value: unreserved characters and
/// those in `also_safe` stay as they are.
pub fn percent_encode(s: &str, also_safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || also_safe.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `s` with `%XX` escapes decoded; an error for a bad escape or text that
/// is not UTF-8 once decoded.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{s}` has a bad percent escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` is not UTF-8 once decoded"))
}

/// `n` random bytes from the OS source as lower-case hex (tokens, ids).
/// The OS source does not fail on Linux after boot; a failure would mean
/// guessable tokens, so it is not papered over.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the OS random source failed");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Resolves on SIGTERM or Ctrl-C: every binary's shutdown trigger.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
