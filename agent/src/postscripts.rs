//! Runs the node's post-boot scripts (fetched from the API with the
//! node's token), in order, each with its own `#!` (else `/bin/sh`), its
//! output and errors together, for at most 30 minutes; stops at the first
//! that fails. On a stateless node they run on the live system; for an
//! image written to disk, chrooted into the new root before it is
//! unmounted, so they configure the system that will boot.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;
use xcat3_common::postscripts::{self, Ran, Script};

/// Where the scripts are written, under the root they run in.
pub const DIR: &str = "/var/lib/xcat3/postscripts";

/// Where scripts run.
#[derive(Clone, Copy)]
pub enum Place<'a> {
    /// On this system, written into this directory.
    Here(&'a Path),
    /// Chrooted into this root, written into its [`DIR`].
    Chroot(&'a Path),
}

/// Runs `scripts` as node `node` at `place`, in order, stopping at the
/// first that fails.
pub fn run_all(scripts: &[Script], node: &str, place: Place<'_>) -> Vec<Ran> {
    let mut runs = Vec::new();
    for s in scripts {
        println!("xcat3-agent: running postscript {}", s.name);
        let ran = run_one(s, node, place).unwrap_or_else(|e| Ran {
            name: s.name.clone(),
            exit_status: None,
            output: format!("{e:#}\n"),
        });
        println!(
            "xcat3-agent: postscript {} ended: {:?}",
            s.name, ran.exit_status
        );
        let failed = !ran.succeeded();
        runs.push(ran);
        if failed {
            break;
        }
    }
    runs
}

fn run_one(s: &Script, node: &str, place: Place<'_>) -> anyhow::Result<Ran> {
    use std::os::unix::fs::PermissionsExt;
    let (dir, inside) = match place {
        Place::Here(d) => (d.to_path_buf(), d.join(&s.name)),
        Place::Chroot(r) => (
            r.join(DIR.trim_start_matches('/')),
            Path::new(DIR).join(&s.name),
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(&s.name);
    std::fs::write(&file, &s.content).with_context(|| format!("writing {}", file.display()))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o700))?;
    // `timeout` (coreutils) bounds it; `sh -c` joins its output streams.
    let line = "exec timeout 1800 \"$0\" 2>&1";
    let inside = inside.display().to_string();
    let mut cmd = match place {
        Place::Chroot(r) => {
            let mut c = Command::new("chroot");
            c.arg(r).args(["sh", "-c", line, &inside]);
            c
        }
        Place::Here(_) => {
            let mut c = Command::new("sh");
            c.args(["-c", line, &inside]);
            c
        }
    };
    let out = cmd
        .env("NODE", node)
        .env("XCAT3_NODE", node)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting postscript {}", s.name))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(Ran {
        name: s.name.clone(),
        exit_status: out.status.code().map(|c| c as u32),
        output: postscripts::tail(&text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_run_in_order_with_the_node_name_and_stop_at_a_failure() {
        let dir = std::env::temp_dir().join(format!("xcat3-agent-ps-{}", std::process::id()));
        let script = |name: &str, content: &str| Script {
            name: name.into(),
            content: content.into(),
        };
        let scripts = [
            script("one", "#!/bin/sh\necho \"one on $NODE\"\necho err >&2\n"),
            script("two", "echo two; exit 4\n"),
            script("three", "echo never\n"),
        ];
        let runs = run_all(&scripts, "n7", Place::Here(&dir));
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(runs[0].output, "one on n7\nerr\n");
        assert!(runs[0].succeeded());
        assert_eq!(runs[1].exit_status, Some(4));
        assert_eq!(runs[1].output, "two\n");
        assert!(!dir.join("three").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
