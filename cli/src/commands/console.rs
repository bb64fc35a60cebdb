//! `console NODE`: the node's serial console in this terminal, through the
//! API's websocket; `console NODE --log [-n N] [-f]`: its log; and
//! `console-list NODERANGE`: each console's state.
//!
//! The terminal is put in raw mode (every key goes to the node, Ctrl-C
//! included) and restored on every way out: the escape sequence, the
//! server closing, an error, a signal, a panic. The escape is conserver's
//! `Ctrl-E c .`, which does not clash with ssh's `~.`.

use std::io::{IsTerminal, Write};

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use xcat3_common::console::{ConsoleState, ESCAPE, ESCAPE_HELP};

use super::nodes::{gather, range_q};
use crate::client::{Client, encode};
use crate::output;

/// The terminal in raw mode until dropped.
struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    fn enter() -> anyhow::Result<RawMode> {
        // SAFETY: tcgetattr/tcsetattr read and write the termios we pass,
        // on stdin, which is a terminal (checked by the caller).
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            Ok(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enter`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}

/// What a run of typed bytes means once the escape sequence is read.
#[derive(Debug, PartialEq, Eq)]
enum Key {
    Send(Vec<u8>),
    Break,
    Help,
    Quit,
}

/// The `Ctrl-E c <x>` reader: bytes pass through unless they start the
/// escape; an unknown sequence is sent as typed.
#[derive(Default)]
struct Escape {
    /// 0: normal; 1: after Ctrl-E; 2: after Ctrl-E c.
    state: u8,
}

impl Escape {
    fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut out = Vec::new();
        let mut plain = Vec::new();
        for &b in bytes {
            match (self.state, b) {
                (0, ESCAPE) => self.state = 1,
                (0, _) => plain.push(b),
                (1, b'c') => self.state = 2,
                (1, _) => {
                    plain.extend_from_slice(&[ESCAPE, b]);
                    self.state = 0;
                }
                (_, cmd) => {
                    self.state = 0;
                    let key = match cmd {
                        b'.' => Key::Quit,
                        b'b' => Key::Break,
                        b'?' => Key::Help,
                        b'e' => {
                            plain.push(ESCAPE);
                            continue;
                        }
                        other => {
                            plain.extend_from_slice(&[ESCAPE, b'c', other]);
                            continue;
                        }
                    };
                    if !plain.is_empty() {
                        out.push(Key::Send(std::mem::take(&mut plain)));
                    }
                    out.push(key);
                }
            }
        }
        if !plain.is_empty() {
            out.push(Key::Send(plain));
        }
        out
    }
}

/// Stdin on a thread of its own: a blocked read must not keep the process
/// from exiting.
fn stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

fn notice(text: &str) {
    let mut e = std::io::stderr();
    let _ = write!(e, "\r\n[xcat3: {text}]\r\n");
    let _ = e.flush();
}

/// `console NODE`: attach until `Ctrl-E c .`, the server closing, or (for
/// piped input) the end of the input and a second of quiet.
pub async fn attach(c: &Client, node: &str, read_only: bool, force: bool) -> anyhow::Result<bool> {
    let path = format!(
        "/nodes/{}/console?read_only={read_only}&force={force}",
        encode(node)
    );
    let ws = c.websocket(&path).await?;
    let tty = std::io::stdin().is_terminal();
    let _raw = if tty && !read_only {
        Some(RawMode::enter()?)
    } else {
        None
    };
    if tty {
        notice(&format!(
            "{node}: {}leave with Ctrl-E c ., Ctrl-E c ? for help",
            if read_only { "read-only; " } else { "" }
        ));
    }
    let (mut tx, mut rx) = ws.split();
    let mut keys = if read_only {
        None
    } else {
        Some(stdin_reader())
    };
    let mut esc = Escape::default();
    let mut stdout = std::io::stdout();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut drain: Option<tokio::time::Instant> = None;
    let ok = loop {
        let quiet = async {
            match drain {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            m = rx.next() => match m {
                Some(Ok(Message::Binary(b))) => {
                    let _ = stdout.write_all(&b);
                    let _ = stdout.flush();
                    if drain.is_some() {
                        drain = Some(tokio::time::Instant::now() + std::time::Duration::from_secs(1));
                    }
                }
                Some(Ok(Message::Text(t))) => {
                    if tty || t.as_str().contains("disconnected") || t.as_str().contains("closed") {
                        notice(t.as_str());
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    notice("the console was closed");
                    break true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    notice(&format!("connection lost: {e}"));
                    break false;
                }
            },
            k = async { keys.as_mut().expect("guarded").recv().await }, if keys.is_some() => match k {
                None => {
                    // Piped input ended: show what it caused, then leave.
                    keys = None;
                    drain = Some(tokio::time::Instant::now() + std::time::Duration::from_secs(1));
                }
                Some(bytes) => {
                    for key in esc.feed(&bytes) {
                        let sent = match key {
                            Key::Send(b) => tx.send(Message::Binary(b.into())).await,
                            Key::Break => tx.send(Message::Text("break".into())).await,
                            Key::Help => {
                                let _ = std::io::stderr().write_all(ESCAPE_HELP.replace('\n', "\r\n").as_bytes());
                                Ok(())
                            }
                            Key::Quit => {
                                let _ = tx.send(Message::Close(None)).await;
                                notice("left the console");
                                return Ok(true);
                            }
                        };
                        if sent.is_err() {
                            notice("connection lost");
                            return Ok(false);
                        }
                    }
                }
            },
            _ = quiet => break true,
            _ = term.recv() => break true,
            _ = hangup.recv() => break true,
            _ = interrupt.recv() => break true,
        }
    };
    let _ = tx.send(Message::Close(None)).await;
    Ok(ok)
}

/// `console NODE --log [-n N] [-f]`: the end of the log; with `-f`, then
/// the live output (read-only) until interrupted.
pub async fn log(c: &Client, node: &str, lines: u32, follow: bool) -> anyhow::Result<bool> {
    let reply = c
        .get(&format!(
            "/nodes/{}/console/log?lines={lines}",
            encode(node)
        ))
        .await?;
    let text = reply
        .pointer(&format!(
            "/nodes/{}",
            node.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let failed = reply
        .pointer("/error_kinds")
        .is_some_and(|k| k.get(node).is_some());
    if failed {
        anyhow::bail!("{node}: {text}");
    }
    let mut out = std::io::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if !follow {
        return Ok(true);
    }
    attach(c, node, true, false).await
}

/// `console-list NODERANGE`: `node: state conductor viewers bytes ...`.
pub async fn list(c: &Client, range: &str, json: bool) -> anyhow::Result<bool> {
    let path = format!("/consoles?{}", range_q(range));
    let (reply, _) = gather(c, Method::GET, &path, None).await?;
    let failed = reply
        .get("error_kinds")
        .and_then(Value::as_object)
        .is_some_and(|k| !k.is_empty());
    if json {
        output::print_json(&reply);
        return Ok(!failed);
    }
    let Some(nodes) = reply.get("nodes").and_then(Value::as_object) else {
        anyhow::bail!("the API answered without nodes");
    };
    let mut names: Vec<&String> = nodes.keys().collect();
    names.sort_by(|a, b| xcat3_common::noderange::natural_cmp(a, b));
    let mut ok = 0;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for n in &names {
        let v = &nodes[n.as_str()];
        match ConsoleState::deserialize(v) {
            Ok(s) => {
                ok += 1;
                let mut line = format!(
                    "{n}: {} logging={} conductor={} viewers={} bytes={}",
                    serde_json::to_value(s.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    s.logging.as_str(),
                    s.conductor,
                    s.viewers,
                    s.bytes
                );
                if let Some(t) = &s.last_output {
                    line.push_str(&format!(" last_output={t}"));
                }
                if let Some(e) = &s.last_error {
                    line.push_str(&format!(" last_error={e:?}"));
                }
                let _ = writeln!(out, "{line}");
            }
            Err(_) => {
                let _ = writeln!(out, "{n}: {}", v.as_str().unwrap_or(&v.to_string()));
            }
        }
    }
    let _ = writeln!(out, "\nSuccess: {ok}  Total: {}", names.len());
    Ok(ok == names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequence_leaves_breaks_and_passes_everything_else() {
        let mut e = Escape::default();
        assert_eq!(e.feed(b"ls\r"), vec![Key::Send(b"ls\r".to_vec())]);
        assert_eq!(
            e.feed(b"x\x05c."),
            vec![Key::Send(b"x".to_vec()), Key::Quit]
        );
        assert_eq!(e.feed(b"\x05cb"), vec![Key::Break]);
        assert_eq!(e.feed(b"\x05c?"), vec![Key::Help]);
        // Split across reads.
        assert!(e.feed(b"\x05").is_empty());
        assert!(e.feed(b"c").is_empty());
        assert_eq!(e.feed(b"."), vec![Key::Quit]);
        // Not an escape: sent as typed; Ctrl-E c e sends Ctrl-E.
        assert_eq!(e.feed(b"\x05x"), vec![Key::Send(b"\x05x".to_vec())]);
        assert_eq!(e.feed(b"\x05ce"), vec![Key::Send(vec![0x05])]);
        assert_eq!(e.feed(b"\x05cz"), vec![Key::Send(b"\x05cz".to_vec())]);
        // ssh's escape is just text here.
        assert_eq!(e.feed(b"~."), vec![Key::Send(b"~.".to_vec())]);
    }
}
