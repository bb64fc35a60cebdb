//! Simulated nodes' SSH servers (`xcat3-sim ssh`): one listener per node on
//! its own loopback address, so `xcat3 exec` and `copy` can be tested and
//! measured at thousands of nodes without thousands of sshd.
//!
//! Each node runs a few commands with deterministic output (`hostname`,
//! `echo`, `true`, `false`, `exit N`, `sleep N`, `seq N`, `cat`,
//! `sha256sum`, `uname`, `hang`), anything else is `command not found`
//! (127); `scp -t` receives files into the node's in-memory file system.
//! Keys or a password log in; one host key serves every node (its public
//! half goes into the exported nodes' `os_ssh_host_keys`). Latency and
//! nodes that hang forever are injected to order.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId};
use sha2::{Digest, Sha256};

/// What every simulated node shares.
pub struct SshConfig {
    pub count: u32,
    pub first_ip: Ipv4Addr,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub authorized: Vec<PublicKey>,
    pub host_key: PrivateKey,
    pub latency: Duration,
    /// Share (0-1) of nodes whose commands never end.
    pub hang_rate: f64,
    pub seed: u64,
}

/// One simulated node: its name and files.
pub struct Node {
    pub name: String,
    pub hangs: bool,
    files: Mutex<HashMap<String, Vec<u8>>>,
}

/// Directories every node has (a copy's destination may be one).
const DIRS: &[&str] = &["/", "/tmp", "/etc", "/root", "/var", "/var/tmp", "/opt"];

/// Starts every node's listener.
pub async fn start(cfg: SshConfig) -> anyhow::Result<Vec<Arc<Node>>> {
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let config = Arc::new(russh::server::Config {
        keys: vec![cfg.host_key.clone()],
        auth_rejection_time: Duration::from_millis(0),
        auth_rejection_time_initial: Some(Duration::from_millis(0)),
        inactivity_timeout: Some(Duration::from_secs(3600)),
        nodelay: true,
        ..Default::default()
    });
    let shared = Arc::new(Shared {
        user: cfg.user.clone(),
        password: cfg.password.clone(),
        authorized: cfg.authorized.clone(),
        latency: cfg.latency,
    });
    let mut nodes = Vec::with_capacity(cfg.count as usize);
    for i in 0..cfg.count {
        let ip = crate::fleet::nth_loopback(cfg.first_ip, i)?;
        let node = Arc::new(Node {
            name: crate::fleet::node_name(i, cfg.count),
            hangs: rng.f64() < cfg.hang_rate,
            files: Mutex::new(HashMap::new()),
        });
        let listener = tokio::net::TcpListener::bind((ip, cfg.port))
            .await
            .with_context(|| format!("listening on {ip}:{}", cfg.port))?;
        let (config, shared, n) = (config.clone(), shared.clone(), node.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let conn = Conn {
                    node: n.clone(),
                    shared: shared.clone(),
                    sinks: HashMap::new(),
                };
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(running) = russh::server::run_stream(config, stream, conn).await {
                        let _ = running.await;
                    }
                });
            }
        });
        nodes.push(node);
    }
    Ok(nodes)
}

struct Shared {
    user: String,
    password: Option<String>,
    authorized: Vec<PublicKey>,
    latency: Duration,
}

/// One client connection.
struct Conn {
    node: Arc<Node>,
    shared: Arc<Shared>,
    /// Channels running `scp -t`.
    sinks: HashMap<ChannelId, Sink>,
}

/// An `scp -t` receiving files.
struct Sink {
    dest: String,
    /// `-d`: the destination must be a directory.
    into_dir: bool,
    buf: Vec<u8>,
    /// The file being received: its path and size, once its header came.
    current: Option<(String, usize)>,
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = user == self.shared.user && self.shared.password.as_deref() == Some(password);
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let ok = user == self.shared.user
            && self
                .shared
                .authorized
                .iter()
                .any(|k| k.key_data() == key.public_key.key_data());
        Ok(if ok { Auth::Accept } else { Auth::reject() })
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let command = String::from_utf8_lossy(data).into_owned();
        let words = split_words(&command);
        if words.first().map(String::as_str) == Some("scp") && words.iter().any(|w| w == "-t") {
            let dest = words.last().cloned().unwrap_or_default();
            self.sinks.insert(
                channel,
                Sink {
                    dest,
                    into_dir: words.iter().any(|w| w == "-d"),
                    buf: Vec::new(),
                    current: None,
                },
            );
            session.data(channel, vec![0u8])?;
            return Ok(());
        }
        if self.node.hangs {
            return Ok(());
        }
        let handle = session.handle();
        let (node, latency) = (self.node.clone(), self.shared.latency);
        tokio::spawn(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let Some(run) = run_command(&node, &words).await else {
                return; // `hang`
            };
            if !run.stdout.is_empty() {
                let _ = handle.data(channel, run.stdout).await;
            }
            if !run.stderr.is_empty() {
                let _ = handle.extended_data(channel, 1, run.stderr).await;
            }
            let _ = handle.exit_status_request(channel, run.status).await;
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        });
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(sink) = self.sinks.get_mut(&channel) else {
            return Ok(());
        };
        sink.buf.extend_from_slice(data);
        loop {
            match receive(sink, &self.node) {
                Step::More => return Ok(()),
                Step::Ack => session.data(channel, vec![0u8])?,
                Step::Refuse(why) => {
                    let mut msg = vec![1u8];
                    msg.extend_from_slice(format!("scp: {why}\n").as_bytes());
                    session.data(channel, msg)?;
                    session.exit_status_request(channel, 1)?;
                    session.eof(channel)?;
                    session.close(channel)?;
                    self.sinks.remove(&channel);
                    return Ok(());
                }
            }
        }
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.sinks.remove(&channel).is_some() {
            session.exit_status_request(channel, 0)?;
            session.eof(channel)?;
            session.close(channel)?;
        }
        Ok(())
    }
}

enum Step {
    More,
    Ack,
    Refuse(String),
}

/// Consumes what `sink.buf` holds of the SCP stream: a `C` header line, or
/// a file's bytes and the `\0` after them.
fn receive(sink: &mut Sink, node: &Node) -> Step {
    match sink.current.take() {
        None => {
            let Some(end) = sink.buf.iter().position(|&b| b == b'\n') else {
                return Step::More;
            };
            let line: Vec<u8> = sink.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let mut parts = line.splitn(3, ' ');
            let (Some(mode), Some(size), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                return Step::Refuse(format!("protocol error: `{line}`"));
            };
            if !mode.starts_with('C') {
                return Step::Refuse(format!("{mode}: only files are received here"));
            }
            let Ok(size) = size.parse::<usize>() else {
                return Step::Refuse(format!("protocol error: size `{size}`"));
            };
            let is_dir = DIRS.contains(&sink.dest.trim_end_matches('/'))
                || sink.dest == "/"
                || sink.dest.ends_with('/');
            let path = if is_dir {
                format!("{}/{name}", sink.dest.trim_end_matches('/'))
            } else if sink.into_dir {
                return Step::Refuse(format!("{}: No such file or directory", sink.dest));
            } else {
                sink.dest.clone()
            };
            sink.current = Some((path, size));
            Step::Ack
        }
        Some((path, size)) => {
            if sink.buf.len() < size + 1 {
                sink.current = Some((path, size));
                return Step::More;
            }
            let data: Vec<u8> = sink.buf.drain(..size).collect();
            sink.buf.remove(0); // the \0 after the file
            node.files.lock().expect("files lock").insert(path, data);
            Step::Ack
        }
    }
}

/// A command's output and exit status.
struct Run {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: u32,
}

fn ok(stdout: String) -> Run {
    Run {
        stdout: stdout.into_bytes(),
        stderr: Vec::new(),
        status: 0,
    }
}

fn failed(stderr: String, status: u32) -> Run {
    Run {
        stdout: Vec::new(),
        stderr: stderr.into_bytes(),
        status,
    }
}

/// Runs one of the known commands; `None` for `hang`.
async fn run_command(node: &Node, words: &[String]) -> Option<Run> {
    let args = &words[1.min(words.len())..];
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let files = || node.files.lock().expect("files lock");
    Some(match words.first().map(String::as_str).unwrap_or("") {
        "" | "true" => ok(String::new()),
        "false" => failed(String::new(), 1),
        "hostname" => ok(format!("{}\n", node.name)),
        "uname" if arg(0) == "-n" => ok(format!("{}\n", node.name)),
        "uname" => ok("Linux\n".into()),
        "echo" => ok(format!("{}\n", args.join(" "))),
        "exit" => failed(String::new(), arg(0).parse().unwrap_or(0)),
        "seq" => {
            let n: u64 = arg(0).parse().unwrap_or(0).min(10_000_000);
            ok((1..=n).map(|i| format!("{i}\n")).collect())
        }
        "sleep" => {
            let s: f64 = arg(0).parse().unwrap_or(0.0);
            tokio::time::sleep(Duration::from_secs_f64(s.clamp(0.0, 86_400.0))).await;
            ok(String::new())
        }
        "hang" => return None,
        "cat" => match files().get(arg(0)) {
            Some(d) => Run {
                stdout: d.clone(),
                stderr: Vec::new(),
                status: 0,
            },
            None => failed(format!("cat: {}: No such file or directory\n", arg(0)), 1),
        },
        "sha256sum" => {
            let (mut out, mut err) = (String::new(), String::new());
            for a in args {
                match files().get(a.as_str()) {
                    Some(d) => {
                        let hex: String = Sha256::digest(d)
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        out.push_str(&format!("{hex}  {a}\n"))
                    }
                    None => err.push_str(&format!("sha256sum: {a}: No such file or directory\n")),
                }
            }
            Run {
                status: u32::from(!err.is_empty()),
                stdout: out.into_bytes(),
                stderr: err.into_bytes(),
            }
        }
        other => failed(format!("sh: 1: {other}: not found\n"), 127),
    })
}

/// Words as a shell would split a simple command: on blanks, with single
/// and double quotes grouping (no expansion).
fn split_words(s: &str) -> Vec<String> {
    let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// A host key for the fleet: from `path` (an OpenSSH private key), or a
/// new Ed25519 key.
pub fn host_key(path: Option<&std::path::Path>, seed: u64) -> anyhow::Result<PrivateKey> {
    if let Some(p) = path {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        return PrivateKey::from_openssh(text.as_bytes())
            .with_context(|| format!("{}: not an OpenSSH private key", p.display()));
    }
    // Derived from the seed: the same fleet has the same key across runs.
    let mut s = [0u8; 32];
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x55aa_55aa);
    rng.fill(&mut s);
    Ok(PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&s),
    ))
}

/// Public keys, one OpenSSH line each (`#` comments and blanks skipped).
pub fn read_authorized(path: &std::path::Path) -> anyhow::Result<Vec<PublicKey>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            PublicKey::from_openssh(l)
                .with_context(|| format!("{}: not an OpenSSH public key: {l}", path.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_simple_shell_command() {
        assert_eq!(
            split_words("echo  'a b' \"c\" d"),
            ["echo", "a b", "c", "d"]
        );
        assert_eq!(split_words("scp -d -t '/tmp'"), ["scp", "-d", "-t", "/tmp"]);
        assert_eq!(split_words("echo ''"), ["echo", ""]);
    }

    #[test]
    fn scp_files_land_in_the_destination_directory() {
        let node = Node {
            name: "sim1".into(),
            hangs: false,
            files: Mutex::new(HashMap::new()),
        };
        let mut sink = Sink {
            dest: "/tmp".into(),
            into_dir: true,
            buf: b"C0644 3 a.txt\nabc\0C0600 0 b\n\0".to_vec(),
            current: None,
        };
        let steps: Vec<bool> = std::iter::from_fn(|| match receive(&mut sink, &node) {
            Step::Ack => Some(true),
            Step::More => None,
            Step::Refuse(why) => panic!("{why}"),
        })
        .collect();
        assert_eq!(steps.len(), 4);
        let files = node.files.lock().unwrap();
        assert_eq!(files["/tmp/a.txt"], b"abc");
        assert_eq!(files["/tmp/b"], b"");
        drop(files);
        let mut bad = Sink {
            dest: "/nope".into(),
            into_dir: true,
            buf: b"C0644 1 x\n".to_vec(),
            current: None,
        };
        assert!(matches!(receive(&mut bad, &node), Step::Refuse(_)));
    }
}
