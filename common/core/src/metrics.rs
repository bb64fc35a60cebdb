//! Process-wide metrics in the Prometheus text format (0.0.4), without a
//! metrics crate: counters, gauges and latency histograms keyed by name
//! and labels, rendered on `/metrics`.
//!
//! One registry per process; in standalone mode API and conductor share
//! it, so one `/metrics` shows both.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// Upper bounds (seconds) of the latency histograms' buckets: from a fast
/// BMC answer to a slow hypervisor.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<Key, u64>,
    gauges: BTreeMap<Key, f64>,
    histograms: BTreeMap<Key, Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    (
        name,
        labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    )
}

fn with<T>(
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    f: impl FnOnce(&mut Registry) -> T,
) -> T {
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.help.entry(name).or_insert((kind, help));
    f(&mut r)
}

/// Adds `by` to a counter.
pub fn count(name: &'static str, help: &'static str, labels: &[(&'static str, &str)], by: u64) {
    with(name, "counter", help, |r| {
        *r.counters.entry(key(name, labels)).or_default() += by;
    });
}

/// Sets a gauge.
pub fn gauge(name: &'static str, help: &'static str, labels: &[(&'static str, &str)], value: f64) {
    with(name, "gauge", help, |r| {
        r.gauges.insert(key(name, labels), value);
    });
}

/// Records one duration (seconds) in a histogram.
pub fn observe(
    name: &'static str,
    help: &'static str,
    labels: &[(&'static str, &str)],
    seconds: f64,
) {
    with(name, "histogram", help, |r| {
        let h = r.histograms.entry(key(name, labels)).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    });
}

/// Counts one failure talking to the bus (`kind`: reconnect, publish,
/// consume, reply), in whichever process it happened.
pub fn bus_error(kind: &'static str) {
    count(
        "xcat3_bus_errors_total",
        "Failures talking to the message bus, by kind (reconnect, publish, consume, reply).",
        &[("kind", kind)],
        1,
    );
}

/// Counts one failed database operation (`op` names it).
pub fn db_error(op: &'static str) {
    count(
        "xcat3_db_errors_total",
        "Database operations that failed, by operation.",
        &[("op", op)],
        1,
    );
}

/// A label value escaped as the text format asks.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(l: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Everything recorded so far, in the Prometheus text format.
pub fn render() -> String {
    let r = registry().lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::new();
    for (name, (kind, help)) in &r.help {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for ((n, l), v) in r.counters.iter().filter(|((n, _), _)| n == name) {
            let _ = writeln!(out, "{n}{} {v}", labels(l, None));
        }
        for ((n, l), v) in r.gauges.iter().filter(|((n, _), _)| n == name) {
            let _ = writeln!(out, "{n}{} {v}", labels(l, None));
        }
        for ((n, l), h) in r.histograms.iter().filter(|((n, _), _)| n == name) {
            for (le, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    out,
                    "{n}_bucket{} {c}",
                    labels(l, Some(("le", le.to_string())))
                );
            }
            let _ = writeln!(
                out,
                "{n}_bucket{} {}",
                labels(l, Some(("le", "+Inf".into()))),
                h.count
            );
            let _ = writeln!(out, "{n}_sum{} {}", labels(l, None), h.sum);
            let _ = writeln!(out, "{n}_count{} {}", labels(l, None), h.count);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        count(
            "t_requests_total",
            "Requests.",
            &[("route", "/v1/\"x\"")],
            2,
        );
        count(
            "t_requests_total",
            "Requests.",
            &[("route", "/v1/\"x\"")],
            1,
        );
        gauge("t_ring_size", "Conductors.", &[], 3.0);
        observe("t_seconds", "Latency.", &[("mgt", "ipmi")], 0.03);
        observe("t_seconds", "Latency.", &[("mgt", "ipmi")], 7.0);
        let text = render();
        for line in [
            "# TYPE t_requests_total counter",
            "t_requests_total{route=\"/v1/\\\"x\\\"\"} 3",
            "# TYPE t_ring_size gauge",
            "t_ring_size 3",
            "# TYPE t_seconds histogram",
            "t_seconds_bucket{mgt=\"ipmi\",le=\"0.025\"} 0",
            "t_seconds_bucket{mgt=\"ipmi\",le=\"0.05\"} 1",
            "t_seconds_bucket{mgt=\"ipmi\",le=\"10\"} 2",
            "t_seconds_bucket{mgt=\"ipmi\",le=\"+Inf\"} 2",
            "t_seconds_sum{mgt=\"ipmi\"} 7.03",
            "t_seconds_count{mgt=\"ipmi\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
