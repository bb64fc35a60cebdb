//! How results are printed: `name: value` lines and a summary for node
//! commands (the v1 client's format), JSON with `--json`.

use std::io::Write;

use serde_json::Value;
use xcat3_common::noderange::natural_cmp;

/// Tokens the v1 client counted as success.
const SUCCESS: &[&str] = &[
    "ok",
    "updated",
    "deleted",
    "on",
    "off",
    "net",
    "cdrom",
    "disk",
    "provision",
    "created",
    "exists",
    "removed",
    "absent",
];

/// Prints `{"nodes": {name: result}}` as `name: result` lines sorted by name,
/// then `Success: S  Total: T`. Returns whether every node succeeded.
pub fn node_results(reply: &Value, json: bool) -> bool {
    let empty = serde_json::Map::new();
    let map = reply
        .get("nodes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut rows: Vec<(&String, String)> = map
        .iter()
        .map(|(k, v)| {
            (
                k,
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    rows.sort_by(|a, b| natural_cmp(a.0, b.0));
    let success = rows
        .iter()
        .filter(|(_, v)| SUCCESS.contains(&v.as_str()))
        .count();
    if json {
        print_json(reply);
    } else {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for (k, v) in &rows {
            let _ = writeln!(out, "{k}: {v}");
        }
        let _ = writeln!(out, "\nSuccess: {success}  Total: {}", rows.len());
    }
    success == rows.len()
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// One line per item.
pub fn lines<I: IntoIterator<Item = String>>(items: I) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for l in items {
        let _ = writeln!(out, "{l}");
    }
}

/// Rows under a header, each column as wide as its widest cell (the last
/// column is not padded).
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.to_vec()).collect();
    table_dyn(&header, &rows);
}

/// [`table`] with columns chosen at run time.
pub fn table_dyn(header: &[String], rows: &[Vec<String>]) {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == n {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        l.trim_end().to_string()
    };
    let mut out = vec![line(header)];
    out.extend(rows.iter().map(|r| line(r)));
    lines(out);
}
