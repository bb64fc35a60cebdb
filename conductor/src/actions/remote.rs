//! `exec`, `copy` and `postscripts --rerun`: one SSH session per node to
//! its running OS, from the conductor that owns the node (see `shell/`).
//! At most `fanout` sessions at once per conductor for the request; each
//! node's command has its own timeout, so a node that hangs gets
//! `timeout` and never holds the others.
//! Results stream back as each node ends. Neither locks the node: they
//! change the OS, not the node's record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use xcat3_common::exec::{self, CopyFile, Outcome, shell_quote};
use xcat3_common::metrics;
use xcat3_common::postscripts::{self, Ran, Script};
use xcat3_common::rpc::{ErrorKind, NodeResult, now_ms};

use super::{ActionModule, Batch, Results};
use crate::drivers::DriverError;
use crate::runner::Runner;
use crate::shell::{HostKeys, Login, Shell, Target, session};

/// What each node's session does.
#[derive(Clone)]
pub enum Work {
    Command(String),
    Copy {
        files: Arc<Vec<CopyFile>>,
        dest: String,
    },
    /// The node's own scripts (`control_info.postscripts`), in order.
    Postscripts,
}

/// One node's session: what it runs.
enum Job {
    Command(String),
    Copy {
        files: Arc<Vec<CopyFile>>,
        dest: String,
    },
    Scripts {
        node_id: i64,
        scripts: Vec<Script>,
    },
}

/// Runs a script given on standard input with its own `#!` (or `sh`),
/// output and errors together, then removes it.
const RUN_STDIN_SCRIPT: &str = "f=$(mktemp) && cat > \"$f\" && chmod 700 \"$f\" && { \"$f\" < /dev/null 2>&1; rc=$?; rm -f \"$f\"; exit $rc; }";

pub struct Remote {
    pub work: Work,
    pub user: String,
    pub timeout: Duration,
    pub fanout: usize,
}

#[async_trait]
impl ActionModule for Remote {
    fn locks(&self) -> bool {
        false
    }

    /// The primary nic's IP is where the OS is reached.
    fn needs_nics(&self) -> bool {
        true
    }

    async fn run(&self, runner: &Arc<Runner>, batch: Batch<'_>, out: &Results) {
        let fail_all = |why: String| {
            for rec in &batch.records {
                let e = runner.internal(&why);
                let _ = out.send((rec.node.name.clone(), e.into(), None));
            }
        };
        let key = match runner.shell().key(&runner.db).await {
            Ok(k) => k,
            Err(e) => return fail_all(e),
        };
        let ids: Vec<i64> = batch.records.iter().map(|r| r.node.id).collect();
        let reported = match xcat3_db::shell::host_keys(&runner.db, &ids).await {
            Ok(r) => r,
            Err(e) => return fail_all(format!("reading the nodes' host keys: {e}")),
        };
        let scripts = match &self.work {
            Work::Postscripts => match node_scripts(runner, &batch).await {
                Ok(s) => s,
                Err(e) => return fail_all(e),
            },
            _ => HashMap::new(),
        };
        let login = Arc::new(Login::Key(key.private.clone()));
        let config = Shell::client_config();
        let gate = Arc::new(Semaphore::new(self.fanout.max(1)));
        let deadline_ms = batch.request.deadline_ms;
        let mut tasks = tokio::task::JoinSet::new();
        for rec in &batch.records {
            let name = rec.node.name.clone();
            let keys = reported.get(&rec.node.id).map(Vec::as_slice).unwrap_or(&[]);
            let job = match &self.work {
                Work::Command(c) => Ok(Job::Command(c.clone())),
                Work::Copy { files, dest } => Ok(Job::Copy {
                    files: files.clone(),
                    dest: dest.clone(),
                }),
                Work::Postscripts => scripts
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| Ok(Vec::new()))
                    .map(|scripts| Job::Scripts {
                        node_id: rec.node.id,
                        scripts,
                    }),
            };
            // Nothing to run: no session.
            if let Ok(Job::Scripts { scripts, .. }) = &job
                && scripts.is_empty()
            {
                let none = no_scripts();
                let _ = out.send((name, NodeResult::Ok(none.to_text()), None));
                continue;
            }
            let target = Target::of(rec, keys);
            let (job, target) = match (job, target) {
                (Ok(j), Ok(t)) => (j, t),
                (Err(e), _) | (_, Err(e)) => {
                    let _ = out.send((name, e.into(), None));
                    continue;
                }
            };
            let (gate, login, config, out) =
                (gate.clone(), login.clone(), config.clone(), out.clone());
            let (user, timeout, db) = (self.user.clone(), self.timeout, runner.db.clone());
            tasks.spawn(async move {
                let Ok(_permit) = gate.acquire_owned().await else {
                    return;
                };
                let left = Duration::from_millis((deadline_ms - now_ms()).max(0) as u64);
                let result = if left.is_zero() {
                    NodeResult::error(
                        ErrorKind::Timeout,
                        "deadline passed before its turn came (raise --fanout or --timeout)",
                    )
                } else {
                    let limits = (
                        Duration::from_secs(exec::LOGIN_TIMEOUT_S).min(left),
                        timeout.min(left),
                    );
                    one(&target, &user, &login, config, &job, &name, limits, &db).await
                };
                let _ = out.send((name, result, None));
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Each node's scripts, read once for the request: a node whose list
/// names a script that is not stored gets that error.
async fn node_scripts(
    runner: &Runner,
    batch: &Batch<'_>,
) -> Result<HashMap<String, Result<Vec<Script>, DriverError>>, String> {
    let mut lists = HashMap::new();
    let mut all = std::collections::BTreeSet::new();
    for rec in &batch.records {
        let info = xcat3_db::nodes::parse_map(&rec.node.control_info);
        let listed = info
            .get(postscripts::KEY)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let names = postscripts::parse_list(listed)
            .map_err(|e| DriverError::invalid(format!("control_info.postscripts: {e}")));
        if let Ok(n) = &names {
            all.extend(n.iter().cloned());
        }
        lists.insert(rec.node.name.clone(), names);
    }
    let all: Vec<String> = all.into_iter().collect();
    let stored = xcat3_db::scripts::get(&runner.db, &all)
        .await
        .map_err(|e| format!("reading the scripts: {e}"))?;
    Ok(lists
        .into_iter()
        .map(|(node, names)| {
            let scripts = names.and_then(|names| {
                postscripts::in_order(&names, &stored).map_err(DriverError::invalid)
            });
            (node, scripts)
        })
        .collect())
}

/// The outcome of a node that lists no scripts.
fn no_scripts() -> Outcome {
    Outcome {
        exit_status: Some(0),
        signal: None,
        output: "no post-boot scripts listed (control_info.postscripts)\n".into(),
        dropped_bytes: 0,
    }
}

/// A node's scripts, in order, on one session; stops at the first that
/// fails. The run is recorded as the node's last.
async fn run_scripts(
    s: &session::Session,
    label: &str,
    node: &str,
    (node_id, scripts): (i64, &[Script]),
    limit: Duration,
    db: &xcat3_db::Db,
) -> Result<Outcome, DriverError> {
    let mut runs = Vec::new();
    for script in scripts {
        let command = format!(
            "NODE={} XCAT3_NODE={} sh -c {}",
            shell_quote(node),
            shell_quote(node),
            shell_quote(RUN_STDIN_SCRIPT)
        );
        let ran =
            match session::run(s, label, &command, Some(script.content.as_bytes()), limit).await {
                Ok(o) => Ran {
                    name: script.name.clone(),
                    exit_status: o.exit_status,
                    output: postscripts::tail(&o.output),
                },
                Err(e) if e.kind == ErrorKind::Timeout => Ran {
                    name: script.name.clone(),
                    exit_status: None,
                    output: format!("{}\n", e.message),
                },
                Err(e) => return Err(e),
            };
        let failed = !ran.succeeded();
        runs.push(ran);
        if failed {
            break;
        }
    }
    if let Err(e) = xcat3_db::scripts::record_run(db, node_id, &runs).await {
        tracing::warn!(node, error = %e, "recording the postscripts run failed");
    }
    Ok(postscripts::as_outcome(&runs))
}

impl Job {
    fn name(&self) -> &'static str {
        match self {
            Job::Command(_) => "exec",
            Job::Copy { .. } => "copy",
            Job::Scripts { .. } => "postscripts",
        }
    }
}

/// One node: log in, run, log out.
#[allow(clippy::too_many_arguments)]
async fn one(
    target: &Target,
    user: &str,
    login: &Login,
    config: Arc<russh::client::Config>,
    job: &Job,
    node: &str,
    (login_limit, limit): (Duration, Duration),
    db: &xcat3_db::Db,
) -> NodeResult {
    let started = Instant::now();
    let label = target.label();
    let host_keys = HostKeys::Known(Arc::new(target.host_keys.clone()));
    let ep = session::Endpoint {
        label: &label,
        host: &target.host,
        port: target.port,
        user,
        login,
        host_keys: &host_keys,
    };
    let ran: Result<Outcome, DriverError> = async {
        let s = session::open(&ep, config, login_limit).await?;
        let r = match job {
            Job::Command(c) => session::run(&s, &label, c, None, limit).await,
            Job::Copy { files, dest } => session::send_files(&s, &label, files, dest, limit).await,
            Job::Scripts { node_id, scripts } => {
                run_scripts(&s, &label, node, (*node_id, scripts), limit, db).await
            }
        };
        let _ = s
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        r
    }
    .await;
    let result = match ran {
        Ok(o) if o.succeeded() => NodeResult::Ok(o.to_text()),
        Ok(o) => NodeResult::error(ErrorKind::CommandFailed, o.to_text()),
        Err(e) => e.into(),
    };
    let outcome = match result.kind() {
        None => "ok",
        Some(ErrorKind::CommandFailed) => "failed",
        Some(ErrorKind::Timeout) => "timeout",
        Some(_) => "error",
    };
    metrics::observe(
        "xcat3_conductor_ssh_seconds",
        "Per-node SSH sessions (exec, copy): login to logout, by action and outcome.",
        &[("action", job.name()), ("outcome", outcome)],
        started.elapsed().as_secs_f64(),
    );
    result
}
