//! One node's console on this conductor: at most one link to the node,
//! shared by any number of viewers.
//!
//! A task per node connects while the console is wanted (`always`, or a
//! viewer is attached, or one left less than `linger` ago), writes what the
//! node prints to its log and to a replay buffer, and fans it out to the
//! viewers. Each viewer has a bounded queue: one that falls behind is
//! dropped (and told why by its handler), so it never holds up the others
//! or the log. A lost link is retried with jittered backoff that grows
//! with the number of consoles this conductor holds, so a BMC network
//! coming back is not hit by every console at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use xcat3_common::console::{Connection, ConsoleState, Logging};

use super::ConsoleServer;
use super::log::LogFile;
use crate::drivers::{LinkEvent, LinkInput, NodeInfo};

/// Chunks a viewer may have queued before it counts as stalled.
const VIEWER_QUEUE: usize = 1024;
/// Keys queued from viewers while the link is busy or reconnecting.
const INPUT_QUEUE: usize = 256;
/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a viewer receives.
pub type Chunk = Arc<[u8]>;

struct Viewer {
    id: u64,
    tx: mpsc::Sender<Chunk>,
    dropped: Arc<AtomicBool>,
}

struct Inner {
    info: NodeInfo,
    logging: Logging,
    state: Connection,
    replay: VecDeque<u8>,
    viewers: Vec<Viewer>,
    bytes: u64,
    last_output: Option<DateTime<Utc>>,
    last_error: Option<String>,
    /// Take the console over from another holder at the next attempt.
    force_next: bool,
    /// Retry now rather than at the end of the backoff (the node was
    /// just started).
    retry_now: bool,
    /// When the last viewer left (for `linger`).
    left_at: Option<Instant>,
    stop: bool,
}

pub struct NodeConsole {
    pub name: String,
    inner: Mutex<Inner>,
    wake: Notify,
    input: mpsc::Sender<LinkInput>,
    next_viewer: AtomicU64,
}

/// A viewer's end: output (the replay first, then live), input unless
/// read-only. Dropping it detaches the viewer.
pub struct Attachment {
    pub output: mpsc::Receiver<Chunk>,
    pub input: Option<mpsc::Sender<LinkInput>>,
    /// Set when the viewer was dropped for falling behind.
    pub dropped: Arc<AtomicBool>,
    _detach: Detach,
}

struct Detach {
    console: Arc<NodeConsole>,
    id: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        let mut i = self.console.lock();
        i.viewers.retain(|v| v.id != self.id);
        if i.viewers.is_empty() {
            i.left_at = Some(Instant::now());
        }
        drop(i);
        self.console.wake.notify_one();
    }
}

impl NodeConsole {
    /// A console for `info`, and the receiving end of its viewers' input
    /// (for [`run`](Self::run)).
    pub fn new(info: NodeInfo, logging: Logging) -> (Arc<NodeConsole>, mpsc::Receiver<LinkInput>) {
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let c = Arc::new(NodeConsole {
            name: info.name.clone(),
            inner: Mutex::new(Inner {
                info,
                logging,
                state: Connection::Idle,
                replay: VecDeque::new(),
                viewers: Vec::new(),
                bytes: 0,
                last_output: None,
                last_error: None,
                force_next: false,
                retry_now: false,
                left_at: None,
                stop: false,
            }),
            wake: Notify::new(),
            input: tx,
            next_viewer: AtomicU64::new(1),
        });
        (c, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("console lock")
    }

    /// New node data from a reconcile (used at the next connection).
    pub fn update(&self, info: NodeInfo, logging: Logging) {
        let mut i = self.lock();
        i.info = info;
        i.logging = logging;
        drop(i);
        self.wake.notify_one();
    }

    /// Cuts a reconnect backoff short.
    pub fn nudge(&self) {
        self.lock().retry_now = true;
        self.wake.notify_one();
    }

    /// Lets go of the node (ring change, node deleted, shutdown).
    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    /// Adds a viewer; `force` takes the console over from another holder
    /// if that is what keeps it from connecting.
    pub fn attach(self: &Arc<Self>, read_only: bool, force: bool) -> Attachment {
        let id = self.next_viewer.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(VIEWER_QUEUE);
        let dropped = Arc::new(AtomicBool::new(false));
        let mut i = self.lock();
        if !i.replay.is_empty() {
            let replay: Vec<u8> = i.replay.iter().copied().collect();
            let _ = tx.try_send(replay.into());
        }
        i.viewers.push(Viewer {
            id,
            tx,
            dropped: dropped.clone(),
        });
        i.left_at = None;
        i.force_next |= force;
        drop(i);
        self.wake.notify_one();
        Attachment {
            output: rx,
            input: (!read_only).then(|| self.input.clone()),
            dropped,
            _detach: Detach {
                console: self.clone(),
                id,
            },
        }
    }

    pub fn state(&self, conductor: &str) -> ConsoleState {
        let i = self.lock();
        ConsoleState {
            logging: i.logging,
            state: i.state,
            conductor: conductor.to_string(),
            viewers: i.viewers.len() as u32,
            bytes: i.bytes,
            last_output: i
                .last_output
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            last_error: i.last_error.clone(),
        }
    }

    /// Whether the console should be connected now.
    fn wanted(i: &Inner, linger: Duration) -> bool {
        !i.stop
            && (i.logging == Logging::Always
                || !i.viewers.is_empty()
                || i.left_at.is_some_and(|t| t.elapsed() < linger))
    }

    /// What the node printed: to the log, the replay buffer and viewers.
    fn output(&self, data: Vec<u8>, log: &mut Option<LogFile>, replay_cap: usize) {
        let now = Utc::now();
        if let Some(l) = log.as_mut()
            && let Err(e) = l.write(&data, now)
        {
            tracing::warn!(node = %self.name, error = %e, "console log write failed");
        }
        let chunk: Chunk = data.into();
        let mut i = self.lock();
        i.bytes += chunk.len() as u64;
        i.last_output = Some(now);
        i.replay.extend(chunk.iter());
        let over = i.replay.len().saturating_sub(replay_cap);
        i.replay.drain(..over);
        i.viewers.retain(|v| match v.tx.try_send(chunk.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                v.dropped.store(true, Ordering::Relaxed);
                tracing::info!(node = %self.name, "console viewer dropped: too slow");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    fn mark(&self, log: &mut Option<LogFile>, text: &str) {
        if let Some(l) = log.as_mut()
            && let Err(e) = l.mark(text, Utc::now())
        {
            tracing::warn!(node = %self.name, error = %e, "console log write failed");
        }
    }

    /// The node's task: connect while wanted, until stopped or retired.
    pub async fn run(
        self: Arc<Self>,
        server: Arc<ConsoleServer>,
        mut input: mpsc::Receiver<LinkInput>,
    ) {
        let cfg = server.config().clone();
        let linger = Duration::from_secs(cfg.linger);
        let mut log = match LogFile::new(
            std::path::Path::new(&cfg.log_dir),
            &self.name,
            cfg.log_max_bytes,
            cfg.log_keep,
        ) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(node = %self.name, error = %e, "console not logged");
                None
            }
        };
        let mut failures: u32 = 0;
        // An `always` console takes the console over from a stale holder
        // (a dead conductor's session), but not right after someone took
        // it from us: two holders would steal it back and forth.
        let mut may_force = true;
        loop {
            // Wait until wanted; retire when nobody needs this console.
            loop {
                let notified = self.wake.notified();
                let (stop, wanted) = {
                    let i = self.lock();
                    (i.stop, Self::wanted(&i, linger))
                };
                if stop {
                    server.retire(&self);
                    return;
                }
                if wanted {
                    break;
                }
                if server.retire_if_idle(&self) {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
            }
            let (info, force) = {
                let mut i = self.lock();
                i.state = Connection::Connecting;
                i.retry_now = false;
                let force = std::mem::take(&mut i.force_next)
                    || (i.logging == Logging::Always && may_force);
                (i.info.clone(), force)
            };
            let attempt = async {
                let _permit = server.connect_permit().await;
                let driver = server.drivers().console(&info)?;
                driver.validate(&info)?;
                driver.connect(&info, force).await
            };
            let link = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(r) => r.map_err(|e| e.message),
                Err(_) => Err(format!(
                    "connecting took over {}s",
                    CONNECT_TIMEOUT.as_secs()
                )),
            };
            let why = match link {
                Ok(mut link) => {
                    failures = 0;
                    may_force = true;
                    {
                        let mut i = self.lock();
                        i.state = Connection::Connected;
                        i.last_error = None;
                    }
                    self.mark(
                        &mut log,
                        if link.took_over {
                            "connected (took the console over from another session)"
                        } else {
                            "connected"
                        },
                    );
                    // Keys typed while we were away are stale.
                    while input.try_recv().is_ok() {}
                    let why = self
                        .pump(&mut link, &mut input, &mut log, cfg.replay_bytes, linger)
                        .await;
                    match &why {
                        Some(w) => self.mark(&mut log, &format!("disconnected: {w}")),
                        None => self.mark(&mut log, "closed"),
                    }
                    why
                }
                Err(e) => {
                    failures += 1;
                    Some(e)
                }
            };
            let Some(why) = why else {
                self.lock().state = Connection::Idle;
                continue;
            };
            let taken_over = why.contains("taken over") || why.contains("deactivated");
            if taken_over {
                may_force = false;
            }
            {
                let mut i = self.lock();
                i.state = Connection::Connecting;
                i.last_error = Some(why);
            }
            // Someone took it: do not take it straight back.
            let pause = backoff(failures.max(1) + u32::from(taken_over) * 3, server.held());
            let notified = self.wake.notified();
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = notified => {
                    // A viewer asking for --force, the node just started,
                    // or a stop cuts it short.
                    let cut = {
                        let mut i = self.lock();
                        std::mem::take(&mut i.retry_now) || i.force_next || i.stop
                    };
                    if !cut {
                        tokio::time::sleep(pause / 2).await;
                    }
                }
            }
        }
    }

    /// Moves bytes until the link ends (its reason) or the console is no
    /// longer wanted (None).
    async fn pump(
        &self,
        link: &mut crate::drivers::ConsoleLink,
        input: &mut mpsc::Receiver<LinkInput>,
        log: &mut Option<LogFile>,
        replay_cap: usize,
        linger: Duration,
    ) -> Option<String> {
        loop {
            let notified = self.wake.notified();
            tokio::select! {
                ev = link.output.recv() => match ev {
                    Some(LinkEvent::Data(d)) => self.output(d, log, replay_cap),
                    Some(LinkEvent::Closed(why)) => return Some(why),
                    None => return Some("the link ended".into()),
                },
                i = input.recv() => {
                    if let Some(i) = i
                        && link.input.send(i).await.is_err()
                    {
                        return Some("the link ended".into());
                    }
                }
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if !Self::wanted(&self.lock(), linger) {
                return None;
            }
        }
    }

    /// Whether nothing needs this console any more (for retiring it).
    pub(super) fn idle(&self, linger: Duration) -> bool {
        !Self::wanted(&self.lock(), linger)
    }
}

/// How long to wait after `failures` failures in a row, with `held`
/// consoles on this conductor: doubling from 1 s, capped at a ceiling
/// that grows with `held` (10 s, plus 1 s per 500 consoles, at most 5
/// minutes), and spread over its second half.
pub fn backoff(failures: u32, held: usize) -> Duration {
    let ceiling = (10 + held as u64 / 500).min(300) * 1000;
    let ms = 1000u64
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(ceiling);
    Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            mgt: None,
            control_info: serde_json::Map::new(),
            console_info: serde_json::Map::new(),
            power_state: None,
            boot_device: None,
            primary_mac: None,
            nic_macs: vec![],
            vm_host: None,
        }
    }

    /// A viewer that stops reading is dropped once its queue is full (and
    /// told so through `dropped`); the others get every byte; a late
    /// joiner gets the replay, capped, first.
    #[tokio::test]
    async fn a_stalled_viewer_is_dropped_and_the_others_keep_up() {
        let (c, _input) = NodeConsole::new(node(), Logging::OnDemand);
        let mut stalled = c.attach(true, false);
        let mut live = c.attach(false, false);
        assert!(stalled.input.is_none() && live.input.is_some());
        let (mut sent, mut got) = (0usize, 0usize);
        for i in 0..VIEWER_QUEUE * 2 {
            let line = format!("line {i}\r\n").into_bytes();
            sent += line.len();
            c.output(line, &mut None, 4096);
            while let Ok(chunk) = live.output.try_recv() {
                got += chunk.len();
            }
        }
        assert_eq!(got, sent, "the live viewer got every byte");
        assert!(stalled.dropped.load(Ordering::Relaxed));
        let mut queued = 0;
        while stalled.output.recv().await.is_some() {
            queued += 1;
        }
        assert_eq!(queued, VIEWER_QUEUE, "then its channel ends");
        assert_eq!(c.state("h").viewers, 1);
        assert_eq!(c.state("h").bytes, sent as u64);

        let mut late = c.attach(true, false);
        let replay = late.output.recv().await.unwrap();
        assert_eq!(replay.len(), 4096);
        assert!(
            String::from_utf8_lossy(&replay)
                .ends_with(&format!("line {}\r\n", VIEWER_QUEUE * 2 - 1))
        );
    }

    #[test]
    fn backoff_doubles_is_capped_by_fleet_size_and_jittered() {
        for _ in 0..100 {
            let first = backoff(1, 10);
            assert!((500..=1000).contains(&(first.as_millis() as u64)));
            let late = backoff(30, 10);
            assert!((5000..=10000).contains(&(late.as_millis() as u64)));
            let big = backoff(30, 20_000);
            assert!((25_000..=50_000).contains(&(big.as_millis() as u64)));
        }
    }
}
