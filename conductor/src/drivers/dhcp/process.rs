//! A DHCP server we run ourselves (`[dhcp] manage = true`): started on
//! demand, restarted when it died or when its configuration changed,
//! stopped with the conductor, and cleaned up after a conductor that was
//! killed without a chance to stop it.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

pub struct Supervised {
    program: &'static str,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// Appended to across restarts.
    log: PathBuf,
    /// Where the server writes its pid, to find one left by an earlier run.
    pid_file: PathBuf,
    /// An argument only our instance has (its config path).
    marker: String,
    /// What the server logs once it serves (it may take seconds to open
    /// its sockets and databases); callers wait for it.
    ready: &'static str,
    child: Mutex<Option<Child>>,
}

/// How long a (re)started server may take to say it serves.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl Supervised {
    pub fn new(
        program: &'static str,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        log: PathBuf,
        pid_file: PathBuf,
        marker: String,
        ready: &'static str,
    ) -> Supervised {
        Supervised {
            program,
            args,
            envs,
            log,
            pid_file,
            marker,
            ready,
            child: Mutex::new(None),
        }
    }

    /// Starts the server if it is not running, or restarts it.
    pub async fn ensure_running(&self, restart: bool) -> Result<(), String> {
        let mut child = self.child.lock().await;
        match child.as_mut() {
            Some(c) => {
                let exited = c.try_wait().map_err(|e| e.to_string())?;
                if exited.is_none() && !restart {
                    return Ok(());
                }
                if let Some(status) = exited {
                    tracing::warn!(program = self.program, %status, "exited; restarting it");
                }
                let _ = c.kill().await;
                // Its sockets must be free before the next one binds.
                let _ = c.wait().await;
            }
            None => self.stop_stale(),
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let err_log = log.try_clone().map_err(|e| e.to_string())?;
        let c = Command::new(self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.program))?;
        tracing::info!(program = self.program, pid = c.id(), "started");
        *child = Some(c);
        let c = child.as_mut().expect("just set");
        // Wait until it serves, so that what the caller reports as done is.
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            let said = read_from(&self.log, offset);
            if said.contains(self.ready) {
                return Ok(());
            }
            if let Ok(Some(status)) = c.try_wait() {
                let tail: Vec<&str> = said.lines().rev().take(3).collect();
                return Err(format!(
                    "{} exited ({status}) at start: {}",
                    self.program,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{} did not report ready within {} s (see {})",
                    self.program,
                    READY_TIMEOUT.as_secs(),
                    self.log.display()
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops an instance an earlier run of ours left behind (a conductor
    /// killed with SIGKILL; servers that drop privileges lose the
    /// parent-death signal), found by its pid file and our marker.
    fn stop_stale(&self) {
        let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(&self.marker) {
            return;
        }
        tracing::warn!(
            program = self.program,
            pid,
            "stopping an instance left by an earlier run"
        );
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..50 {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// What `path` holds past `offset` (what a process wrote since).
fn read_from(path: &std::path::Path, offset: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}
