//! Post-boot scripts: what a node runs, in order, after xcat3 booted or
//! installed it (xCAT's postscripts). Scripts are stored by name in the
//! inventory (`/v1/scripts`); a node or its group lists them in
//! `control_info.postscripts` (`a,b,c`). The node's agent runs them at
//! boot; `xcat3 postscripts --rerun` runs them again over SSH. Each run's
//! exit status and output tail is kept per node, and a script that fails
//! makes the node `deploy failed` naming it: never `booted` with a silent
//! failure.

use serde::{Deserialize, Serialize};

/// The `control_info` key listing a node's scripts.
pub const KEY: &str = "postscripts";
/// Bytes of one script.
pub const MAX_SCRIPT: usize = 1024 * 1024;
/// Scripts one node may list.
pub const MAX_PER_NODE: usize = 64;
/// Seconds one script may run, unless told.
pub const DEFAULT_TIMEOUT_S: u32 = 1800;
/// Output kept of each run: its last bytes.
pub const TAIL: usize = 1024;

/// Checks a script's name: it becomes a file name on the node.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a script name (letters, digits, `.`, `_`, `-`; at most 64; not starting with `.`)",
            name.escape_debug()
        ))
    }
}

/// The names `control_info.postscripts` lists, checked.
pub fn parse_list(value: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() > MAX_PER_NODE {
        return Err(format!("at most {MAX_PER_NODE} scripts"));
    }
    for n in &names {
        check_name(n)?;
    }
    Ok(names)
}

/// The scripts `names` lists, in its order, from `stored` (name →
/// content); an error names the first one not stored.
pub fn in_order(
    names: &[String],
    stored: &std::collections::HashMap<String, String>,
) -> Result<Vec<Script>, String> {
    names
        .iter()
        .map(|n| match stored.get(n) {
            Some(c) => Ok(Script {
                name: n.clone(),
                content: c.clone(),
            }),
            None => Err(format!(
                "control_info.postscripts: no script `{n}` (xcat3 script-create {n} FILE)"
            )),
        })
        .collect()
}

/// A script as a node fetches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Script {
    pub name: String,
    pub content: String,
}

/// One script's run on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ran {
    pub name: String,
    /// None: killed by a signal, or never ended.
    pub exit_status: Option<u32>,
    /// The last [`TAIL`] bytes of its output.
    pub output: String,
}

impl Ran {
    pub fn succeeded(&self) -> bool {
        self.exit_status == Some(0)
    }
}

/// The last `TAIL` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str) -> String {
    if text.len() <= TAIL {
        return text.to_string();
    }
    let mut start = text.len() - TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Why a run failed, for the node's `last_error`: the first failed
/// script, how it ended and the end of its output.
pub fn failure(runs: &[Ran]) -> Option<String> {
    let r = runs.iter().find(|r| !r.succeeded())?;
    let ended = match r.exit_status {
        Some(s) => format!("exited {s}"),
        None => "did not finish".into(),
    };
    let last = r.output.trim_end().lines().last().unwrap_or("").trim();
    Some(if last.is_empty() {
        format!("postscript `{}` {ended}", r.name)
    } else {
        format!("postscript `{}` {ended}: {last}", r.name)
    })
}

/// A run as the text of an `exec`-shaped outcome: each script's header
/// and output tail, the exit status of the last script run.
pub fn as_outcome(runs: &[Ran]) -> crate::exec::Outcome {
    let mut output = String::new();
    for r in runs {
        let ended = match r.exit_status {
            Some(s) => format!("exit {s}"),
            None => "did not finish".into(),
        };
        output.push_str(&format!("[{}: {ended}]\n", r.name));
        output.push_str(&r.output);
        if !r.output.is_empty() && !r.output.ends_with('\n') {
            output.push('\n');
        }
    }
    crate::exec::Outcome {
        exit_status: match runs.iter().find(|r| !r.succeeded()) {
            Some(r) => r.exit_status.or(Some(255)),
            None => Some(0),
        },
        signal: None,
        output,
        dropped_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lists_are_checked() {
        assert_eq!(parse_list(" a, b.sh ,,c-1 ").unwrap(), ["a", "b.sh", "c-1"]);
        for bad in ["../x", ".hidden", "a b", "a/b", ""] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(parse_list("a,../etc/passwd").is_err());
    }

    #[test]
    fn a_failure_names_the_first_failed_script_and_its_last_line() {
        let runs = [
            Ran {
                name: "one".into(),
                exit_status: Some(0),
                output: "fine\n".into(),
            },
            Ran {
                name: "two".into(),
                exit_status: Some(3),
                output: "working\nno disk\n".into(),
            },
        ];
        assert_eq!(
            failure(&runs).unwrap(),
            "postscript `two` exited 3: no disk"
        );
        assert!(failure(&runs[..1]).is_none());
        let o = as_outcome(&runs);
        assert_eq!(o.exit_status, Some(3));
        assert_eq!(
            o.output,
            "[one: exit 0]\nfine\n[two: exit 3]\nworking\nno disk\n"
        );
        assert_eq!(tail(&"é".repeat(600)).len(), 1024);
    }
}
