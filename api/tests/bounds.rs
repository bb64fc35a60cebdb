//! Resource bounds: no request, however shaped, makes the API exceed its
//! budget. The budget, per request: at most [`MEMORY_BUDGET`] bytes
//! allocated at its peak (counted by this binary's allocator, so the
//! figure is exact and not a timing), and an answer at all within
//! [`HANG_BUDGET`] (a hang detector: measured requests take well under a
//! second).
//!
//! The shapes are the review's: noderanges whose parts are each small but
//! whose whole is huge (`n[1-999999,1-999999,...]`, repeated exclusions,
//! intersections, thousands of regexes over 5,000 stored names), and JSON
//! bodies that cost many times their size once parsed (`[0,0,...]`), on
//! every route that takes them, read or write.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use tower::ServiceExt;
use xcat3_api::{AppState, app};

mod support;

/// Peak bytes allocated while one request runs, above what was live
/// before it.
const MEMORY_BUDGET: usize = 512 * 1024 * 1024;
const HANG_BUDGET: Duration = Duration::from_secs(20);

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// 5,000 stored nodes (so regexes have names to run over) and no
/// conductor.
fn harness() -> &'static (tokio::runtime::Runtime, AppState) {
    static H: OnceLock<(tokio::runtime::Runtime, AppState)> = OnceLock::new();
    H.get_or_init(|| {
        let nodes: Vec<_> = (0..5000)
            .map(|i| serde_json::json!({"name": format!("n{i}"), "mgt": "fake"}))
            .collect();
        support::runtime_with_nodes(serde_json::json!({ "nodes": nodes }))
    })
}

/// Sends one request; returns its status and the peak bytes it added.
fn measure(method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, usize) {
    let (rt, st) = harness();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let status = rt.block_on(async {
        let fut = app(st.clone()).oneshot(req);
        let resp = tokio::time::timeout(HANG_BUDGET, fut)
            .await
            .unwrap_or_else(|_| panic!("{method} {uri}: no answer within {HANG_BUDGET:?}"))
            .unwrap();
        let status = resp.status();
        let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
        status
    });
    (status, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

/// A noderange made of `count` copies of one expensive atom.
fn hostile_range() -> impl Strategy<Value = String> {
    let atom = prop::sample::select(vec![
        "n[1-999999]",
        "-n[1-999999]",
        "n[1-999999]@n[1-999999]",
        "a[1-999]b[1-999]",
        "/n1",
        "/^n[0-9]+$",
        "n000001-n999999",
    ]);
    (atom, 1usize..3000).prop_map(|(a, count)| {
        // As many as a URI holds (http refuses those above 64 KiB).
        let count = count.min(40_000 / (a.len() * 2));
        let text = if let Some(body) = a.strip_prefix("n[").and_then(|b| b.strip_suffix(']')) {
            // Many parts inside one bracket: each under the old per-part
            // limit, the whole far above it.
            format!("n[{}]", vec![body; count].join(","))
        } else {
            vec![a; count].join(",")
        };
        text.replace('[', "%5B")
            .replace(']', "%5D")
            .replace('^', "%5E")
            .replace('@', "%40")
            .replace('/', "%2F")
            .replace('$', "%24")
            .replace('+', "%2B")
    })
}

/// JSON that costs many times its size once parsed.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    (0usize..3, 1usize..(12 * 1024 * 1024)).prop_map(|(shape, n)| match shape {
        0 => format!("[{}0]", "0,".repeat(n / 2)).into_bytes(),
        1 => format!("{{\"nodes\": [{}{{}}]}}", "{},".repeat(n / 3)).into_bytes(),
        _ => format!(
            "{}{}",
            "[".repeat(n.min(100_000)),
            "]".repeat(n.min(100_000))
        )
        .into_bytes(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn noderanges_stay_within_budget(
        range in hostile_range(),
        path in prop::sample::select(vec!["/v1/nodes", "/v1/nodes/info", "/v1/nodes/power", "/v1/nodes/inventory", "/v1/ring"]),
    ) {
        let uri = format!("{path}?noderange={range}");
        let (status, peak) = measure("GET", &uri, Vec::new());
        prop_assert!(!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE, "{uri} -> {status}");
        prop_assert!(peak <= MEMORY_BUDGET, "{} -> {status}: {peak} bytes at peak", &uri[..uri.len().min(120)]);
    }

    #[test]
    fn bodies_stay_within_budget(
        body in hostile_body(),
        (method, path) in prop::sample::select(vec![
            ("POST", "/v1/nodes"),
            ("GET", "/v1/nodes/info"),
            ("DELETE", "/v1/nodes"),
            ("PUT", "/v1/nodes/provision/callback?name=n1"),
        ]),
    ) {
        let len = body.len();
        let (status, peak) = measure(method, path, body);
        prop_assert!(!status.is_server_error(), "{method} {path} with {len} bytes -> {status}");
        prop_assert!(peak <= MEMORY_BUDGET, "{method} {path} with {len} bytes -> {status}: {peak} bytes at peak");
    }
}

/// The review's exact shapes, each measured once (their figures go in the
/// issue note): a 1.8 KB bracket list, ten exclusions of a huge range,
/// 2,000 regexes over 5,000 names, 60 MB of `[0,0,...]`.
#[test]
fn the_reviews_requests_are_refused_within_budget() {
    let parts = vec!["1-999999"; 200].join(",");
    let mut excl = "a%5B1-999999%5D".to_string();
    for _ in 0..10 {
        excl.push_str(",-a%5B1-999999%5D");
    }
    let regexes = vec!["%2Fn1"; 2000].join(",");
    for uri in [
        format!("/v1/nodes/info?noderange=n%5B{parts}%5D"),
        format!("/v1/nodes/info?noderange={excl}"),
        format!("/v1/nodes/info?noderange={regexes}"),
    ] {
        let (status, peak) = measure("GET", &uri, Vec::new());
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", &uri[..80]);
        assert!(peak <= MEMORY_BUDGET, "{peak}");
        eprintln!("{}...: {status}, {} KiB at peak", &uri[..60], peak / 1024);
    }
    let body = format!("[{}0]", "0,".repeat(30_000_000)).into_bytes();
    let (status, peak) = measure("PUT", "/v1/nodes/provision/callback?name=n1", body.clone());
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    eprintln!("callback with 60 MB: {status}, {} KiB at peak", peak / 1024);
    let (status, peak) = measure("POST", "/v1/nodes", body);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(peak <= MEMORY_BUDGET, "{peak}");
    eprintln!(
        "POST /v1/nodes with 60 MB: {status}, {} KiB at peak",
        peak / 1024
    );
}
