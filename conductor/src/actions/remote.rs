//! `exec` and `copy`: one SSH session per node to its running OS, from the
//! conductor that owns the node (see `shell/`). At most `fanout` sessions
//! at once per conductor for the request; each node's command has its own
//! timeout, so a node that hangs gets `timeout` and never holds the others.
//! Results stream back as each node ends. Neither locks the node: they
//! change the OS, not the node's record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use xcat3_common::exec::{self, CopyFile, Outcome};
use xcat3_common::metrics;
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
}

impl Work {
    fn name(&self) -> &'static str {
        match self {
            Work::Command(_) => "exec",
            Work::Copy { .. } => "copy",
        }
    }
}

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
        let login = Arc::new(Login::Key(key.private.clone()));
        let config = Shell::client_config();
        let gate = Arc::new(Semaphore::new(self.fanout.max(1)));
        let deadline_ms = batch.request.deadline_ms;
        let mut tasks = tokio::task::JoinSet::new();
        for rec in &batch.records {
            let name = rec.node.name.clone();
            let keys = reported.get(&rec.node.id).map(Vec::as_slice).unwrap_or(&[]);
            let target = match Target::of(rec, keys) {
                Ok(t) => t,
                Err(e) => {
                    let _ = out.send((name, e.into(), None));
                    continue;
                }
            };
            let (gate, login, config, out) =
                (gate.clone(), login.clone(), config.clone(), out.clone());
            let (work, user, timeout) = (self.work.clone(), self.user.clone(), self.timeout);
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
                    one(&target, &user, &login, config, &work, limits).await
                };
                let _ = out.send((name, result, None));
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// One node: log in, run, log out.
async fn one(
    target: &Target,
    user: &str,
    login: &Login,
    config: Arc<russh::client::Config>,
    work: &Work,
    (login_limit, limit): (Duration, Duration),
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
        let r = match work {
            Work::Command(c) => session::run(&s, &label, c, limit).await,
            Work::Copy { files, dest } => session::send_files(&s, &label, files, dest, limit).await,
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
        &[("action", work.name()), ("outcome", outcome)],
        started.elapsed().as_secs_f64(),
    );
    result
}
