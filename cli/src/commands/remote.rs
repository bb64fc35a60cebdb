//! `exec`, `copy` and `ssh-key`: commands and files on nodes' running
//! operating systems, over SSH from each node's conductor.
//!
//! Output is printed as nodes finish, each line prefixed by its node (as
//! `xdsh` and `pdsh` do), so two nodes' lines never mix; `--collapse`
//! waits for all and prints each distinct output once under the folded
//! noderange of the nodes that gave it (`xdshbak -c`). A node that failed
//! (non-zero exit, unreachable, timeout) makes the command exit non-zero.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Map, Value, json};
use xcat3_common::exec::{CopyFile, Outcome};
use xcat3_common::noderange::{fold, natural_cmp};

use super::nodes::range_q;
use crate::client::Client;
use crate::output;

/// How the sessions run, as given on the command line.
pub struct Options {
    pub user: Option<String>,
    pub timeout: Option<u32>,
    pub fanout: Option<u32>,
    pub collapse: bool,
}

impl Options {
    fn add_to(&self, body: &mut Value) {
        if let Some(u) = &self.user {
            body["user"] = json!(u);
        }
        if let Some(t) = self.timeout {
            body["timeout"] = json!(t);
        }
        if let Some(f) = self.fanout {
            body["fanout"] = json!(f);
        }
    }
}

/// `exec NODERANGE [--user U] [--timeout S] [--fanout N] [--collapse] --
/// COMMAND...`.
pub async fn exec(
    c: &Client,
    range: &str,
    command: &[String],
    o: &Options,
    json: bool,
) -> anyhow::Result<bool> {
    let mut body = json!({ "command": command.join(" ") });
    o.add_to(&mut body);
    run(
        c,
        Method::POST,
        &format!("/nodes/exec?{}", range_q(range)),
        Some(&body),
        o,
        json,
    )
    .await
}

/// `copy NODERANGE SRC... DEST`: the files travel once to the API, once to
/// each conductor, then to each node.
pub async fn copy(
    c: &Client,
    range: &str,
    paths: &[String],
    o: &Options,
    json: bool,
) -> anyhow::Result<bool> {
    let Some((dest, sources)) = paths.split_last().filter(|(_, s)| !s.is_empty()) else {
        anyhow::bail!("copy needs at least one file and a destination: copy NODERANGE SRC... DEST");
    };
    let mut files = Vec::new();
    for src in sources {
        use std::os::unix::fs::PermissionsExt;
        let path = std::path::Path::new(src);
        let meta = std::fs::metadata(path).with_context(|| src.to_string())?;
        if !meta.is_file() {
            anyhow::bail!("{src}: not a regular file (copy sends files, not directories)");
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{src}: no file name"))?
            .to_string();
        let data = std::fs::read(path).with_context(|| format!("reading {src}"))?;
        files.push(CopyFile {
            name,
            mode: meta.permissions().mode() & 0o7777,
            data,
        });
    }
    let mut body = json!({ "dest": dest, "files": files });
    o.add_to(&mut body);
    run(
        c,
        Method::POST,
        &format!("/nodes/copy?{}", range_q(range)),
        Some(&body),
        o,
        json,
    )
    .await
}

/// `ssh-key`: the cluster's public key, for the `authorized_keys` of nodes
/// xcat3 does not boot.
pub async fn ssh_key(c: &Client) -> anyhow::Result<bool> {
    let v = c.get("/ssh-key").await?;
    let key = v
        .get("public_key")
        .and_then(Value::as_str)
        .context("no public_key in the reply")?;
    println!("{key}");
    Ok(true)
}

/// `script-create NAME FILE` (or replace).
pub async fn script_put(c: &Client, name: &str, file: &str) -> anyhow::Result<bool> {
    let content = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let path = format!("/scripts/{}", crate::client::encode(name));
    c.call(Method::PUT, &path, Some(&json!({ "content": content })))
        .await?;
    println!("{name}: stored ({} bytes)", content.len());
    Ok(true)
}

/// `script-list`.
pub async fn script_list(c: &Client, json: bool) -> anyhow::Result<bool> {
    let v = c.get("/scripts").await?;
    if json {
        output::print_json(&v);
        return Ok(true);
    }
    let rows: Vec<[String; 3]> = v["scripts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            [
                s["name"].as_str().unwrap_or("").to_string(),
                s["size"].to_string(),
                s["updated_at"].as_str().unwrap_or("").to_string(),
            ]
        })
        .collect();
    output::table(&["name", "bytes", "updated_at"], &rows);
    Ok(true)
}

/// `script-show NAME`: the script's text.
pub async fn script_show(c: &Client, name: &str) -> anyhow::Result<bool> {
    let v = c
        .get(&format!("/scripts/{}", crate::client::encode(name)))
        .await?;
    print!("{}", v["content"].as_str().unwrap_or(""));
    Ok(true)
}

/// `script-delete NAME`.
pub async fn script_delete(c: &Client, name: &str) -> anyhow::Result<bool> {
    let path = format!("/scripts/{}", crate::client::encode(name));
    c.call(Method::DELETE, &path, None).await?;
    println!("{name}: deleted");
    Ok(true)
}

/// `postscripts NODERANGE [--rerun]`: each node's last run (or a new run,
/// over SSH), one line per output line, each script's header first.
pub async fn postscripts(
    c: &Client,
    range: &str,
    rerun: bool,
    o: &Options,
    json: bool,
) -> anyhow::Result<bool> {
    if rerun {
        let mut q = format!("/nodes/postscripts?{}", range_q(range));
        if let Some(t) = o.timeout {
            q.push_str(&format!("&timeout={t}"));
        }
        if let Some(f) = o.fanout {
            q.push_str(&format!("&fanout={f}"));
        }
        return run(c, Method::PUT, &q, None, o, json).await;
    }
    run(
        c,
        Method::GET,
        &format!("/nodes/postscripts?{}", range_q(range)),
        None,
        o,
        json,
    )
    .await
}

/// One node's value: its outcome, or the text of an error that kept it
/// from running.
enum NodeValue {
    Ran(Outcome),
    Error(String),
}

fn node_value(v: &Value) -> NodeValue {
    match v {
        Value::String(s) => NodeValue::Error(s.clone()),
        other => match serde_json::from_value::<Outcome>(other.clone()) {
            Ok(o) => NodeValue::Ran(o),
            Err(_) => NodeValue::Error(other.to_string()),
        },
    }
}

/// Streams the request, printing as nodes finish (or gathering for
/// `--collapse` and `--json`); true when every node succeeded.
async fn run(
    c: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
    o: &Options,
    json: bool,
) -> anyhow::Result<bool> {
    let (mut all, mut kinds) = (Map::new(), Map::new());
    let (mut ok, mut total) = (0usize, 0usize);
    let mut out = std::io::stdout().lock();
    let id = c
        .stream(method, path, body, |line| {
            let Value::Object(mut line) = line else {
                return;
            };
            let nodes = match line.remove("nodes") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            let line_kinds = match line.remove("error_kinds") {
                Some(Value::Object(k)) => k,
                _ => Map::new(),
            };
            total += nodes.len();
            ok += nodes
                .keys()
                .filter(|n| !line_kinds.contains_key(*n))
                .count();
            if json || o.collapse {
                all.extend(nodes);
                kinds.extend(line_kinds);
                return;
            }
            let mut names: Vec<&String> = nodes.keys().collect();
            names.sort_by(|a, b| natural_cmp(a, b));
            for n in names {
                let _ = out.write_all(node_lines(n, &nodes[n.as_str()]).as_bytes());
            }
            let _ = out.flush();
        })
        .await?;
    drop(out);
    if json {
        let mut reply = json!({ "nodes": all });
        if !kinds.is_empty() {
            reply["error_kinds"] = Value::Object(kinds);
        }
        output::print_json(&reply);
        return Ok(ok == total);
    }
    if o.collapse {
        print_collapsed(&all);
    }
    println!("\nSuccess: {ok}  Total: {total}");
    if ok < total
        && let Some(id) = id
    {
        println!("(every node's status: xcat3 history {id})");
    }
    Ok(ok == total)
}

/// `node: line` for each output line, then how a failure ended.
fn node_lines(node: &str, v: &Value) -> String {
    let mut s = String::new();
    match node_value(v) {
        NodeValue::Ran(o) => {
            for l in o.output.lines() {
                s.push_str(&format!("{node}: {l}\n"));
            }
            if o.dropped_bytes > 0 {
                s.push_str(&format!(
                    "{node}: [{} more bytes not kept]\n",
                    o.dropped_bytes
                ));
            }
            if !o.succeeded() {
                s.push_str(&format!("{node}: [{}]\n", o.ending()));
            }
        }
        NodeValue::Error(e) => s.push_str(&format!("{node}: error: {e}\n")),
    }
    s
}

/// Each distinct result once, under the folded names of its nodes.
fn print_collapsed(all: &Map<String, Value>) {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (n, v) in all {
        let text = match node_value(v) {
            NodeValue::Ran(o) if o.succeeded() => o.output,
            NodeValue::Ran(o) => format!("{}[{}]\n", o.output, o.ending()),
            NodeValue::Error(e) => format!("error: {e}\n"),
        };
        groups.entry(text).or_default().push(n);
    }
    // Largest group first, as xdshbak lists the common case first.
    let mut groups: Vec<(String, Vec<&str>)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let rule = "=".repeat(40);
    for (text, mut names) in groups {
        names.sort_by(|a, b| natural_cmp(a, b));
        let count = match names.len() {
            1 => "1 node".to_string(),
            n => format!("{n} nodes"),
        };
        println!("{rule}\n{} ({count})\n{rule}", fold(&names));
        print!("{text}");
        if !text.ends_with('\n') && !text.is_empty() {
            println!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_prefixed_and_failures_say_how_they_ended() {
        let ok = json!({"exit_status": 0, "output": "a\nb\n"});
        assert_eq!(node_lines("n1", &ok), "n1: a\nn1: b\n");
        let failed = json!({"exit_status": 3, "output": "oops\n"});
        assert_eq!(node_lines("n2", &failed), "n2: oops\nn2: [exit status 3]\n");
        let err = json!("SSH 10.0.0.3:22: connection refused");
        assert_eq!(
            node_lines("n3", &err),
            "n3: error: SSH 10.0.0.3:22: connection refused\n"
        );
    }
}
