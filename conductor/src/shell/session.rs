//! One SSH session to a server, as every SSH user in the conductor opens
//! it: connect, check the server's host key *before* any credential is
//! sent, log in, then use channels. Consoles (`drivers/ssh_console.rs`)
//! keep their session open; `exec` and `copy` ([`run`], [`send_files`])
//! open one, use one channel and close it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::ChannelMsg;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use xcat3_common::exec::{CopyFile, Outcome, OutputBuffer, shell_quote};
use xcat3_common::rpc::ErrorKind;

use crate::drivers::DriverError;

/// How the server proves it is the one we mean.
#[derive(Clone)]
pub enum HostKeys {
    /// `SHA256:...` as `ssh-keygen -lf` prints it; `None` is refused
    /// unless `verify` is false (consoles: terminal servers an admin
    /// names).
    Fingerprint {
        expected: Option<String>,
        verify: bool,
    },
    /// Any of these keys (nodes: what their agent reported, or what the
    /// admin declared).
    Known(Arc<Vec<PublicKey>>),
}

/// How we log in.
#[derive(Clone)]
pub enum Login {
    Password(String),
    Key(Arc<PrivateKey>),
}

/// Where, as whom, and how the server is checked. `label` starts every
/// error (`SSH console 10.0.0.1:22`, `SSH 10.1.0.7:22`).
pub struct Endpoint<'a> {
    pub label: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub login: &'a Login,
    pub host_keys: &'a HostKeys,
}

/// A logged-in session.
pub type Session = russh::client::Handle<HostCheck>;

/// Checks the server's key; remembers its fingerprint, and whether it
/// was refused, for the error.
pub struct HostCheck {
    keys: HostKeys,
    seen: Arc<Mutex<Option<(String, bool)>>>,
}

impl russh::client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = key.public_key();
        let fp = key.fingerprint(HashAlg::Sha256).to_string();
        let ok = match &self.keys {
            HostKeys::Fingerprint { expected, verify } => match expected {
                Some(want) => *want == fp,
                None => !verify,
            },
            HostKeys::Known(known) => known.iter().any(|k| k.key_data() == key.key_data()),
        };
        *self.seen.lock().expect("seen lock") = Some((fp, ok));
        Ok(ok)
    }
}

/// Connects, checks the host key and logs in, within `limit`.
pub async fn open(
    ep: &Endpoint<'_>,
    config: Arc<russh::client::Config>,
    limit: Duration,
) -> Result<Session, DriverError> {
    let label = ep.label;
    let seen = Arc::new(Mutex::new(None));
    let check = HostCheck {
        keys: ep.host_keys.clone(),
        seen: seen.clone(),
    };
    let login = async {
        let mut session = russh::client::connect(config, (ep.host, ep.port), check)
            .await
            .map_err(|e| match seen.lock().expect("seen lock").clone() {
                Some((fp, false)) => {
                    DriverError::authentication(format!("{label}: {}", refusal(ep.host_keys, &fp)))
                }
                _ => DriverError::unreachable(format!("{label}: {e}")),
            })?;
        let ok = match ep.login {
            Login::Password(p) => session.authenticate_password(ep.user, p).await,
            Login::Key(k) => {
                let hash = session
                    .best_supported_rsa_hash()
                    .await
                    .ok()
                    .flatten()
                    .flatten();
                session
                    .authenticate_publickey(ep.user, PrivateKeyWithHashAlg::new(k.clone(), hash))
                    .await
            }
        }
        .map_err(|e| DriverError::unreachable(format!("{label}: {e}")))?;
        if !ok.success() {
            let what = match ep.login {
                Login::Password(_) => "the password",
                Login::Key(_) => "the key",
            };
            return Err(DriverError::authentication(format!(
                "{label}: user {} was refused ({what} is not accepted)",
                ep.user
            )));
        }
        Ok(session)
    };
    tokio::time::timeout(limit, login).await.map_err(|_| {
        DriverError::new(
            ErrorKind::Timeout,
            format!("{label}: no login within {} s", limit.as_secs()),
        )
    })?
}

/// Why a server's key `fp` was refused, and what would make it accepted.
fn refusal(keys: &HostKeys, fp: &str) -> String {
    match keys {
        HostKeys::Fingerprint {
            expected: Some(want),
            ..
        } => format!("its host key is {fp}; console_info.ssh_host_fingerprint says {want}"),
        HostKeys::Fingerprint { expected: None, .. } => format!(
            "its host key is {fp}; set console_info.ssh_host_fingerprint to it (or ssh_verify_host=false)"
        ),
        HostKeys::Known(_) => format!(
            "its host key {fp} is not one the node reported or control_info.os_ssh_host_keys lists \
             (another machine at its address, or reinstalled outside xcat3): refused"
        ),
    }
}

/// Runs `command` on a new channel of `session`, with `input` (then end
/// of file) as its standard input, and collects its output until it
/// exits, at most `limit`. A command still running then is left (its
/// channel closed) and the node gets `timeout`.
pub async fn run(
    session: &Session,
    label: &str,
    command: &str,
    input: Option<&[u8]>,
    limit: Duration,
) -> Result<Outcome, DriverError> {
    let mut channel = start(session, label, command).await?;
    if let Some(bytes) = input {
        channel
            .data(bytes)
            .await
            .map_err(|e| DriverError::bmc(format!("{label}: sending the input: {e}")))?;
        let _ = channel.eof().await;
    }
    let mut out = OutputBuffer::default();
    let collect = async {
        let (mut status, mut signal) = (None, None);
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                    out.push(&data)
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    signal = Some(signal_text(&signal_name))
                }
                ChannelMsg::Failure => {
                    return Err(DriverError::bmc(format!(
                        "{label}: the server refused to run the command"
                    )));
                }
                _ => {}
            }
        }
        Ok((status, signal))
    };
    match tokio::time::timeout(limit, collect).await {
        Ok(Ok((status, signal))) => Ok(out.finish(status, signal)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DriverError::new(
            ErrorKind::Timeout,
            format!(
                "{label}: the command was still running after {} s (left running; its session closed)",
                limit.as_secs()
            ),
        )),
    }
}

/// A new channel of `session` running `command`.
async fn start(
    session: &Session,
    label: &str,
    command: &str,
) -> Result<russh::Channel<russh::client::Msg>, DriverError> {
    let channel = session
        .channel_open_session()
        .await
        .map_err(|e| DriverError::bmc(format!("{label}: opening a session channel: {e}")))?;
    channel
        .exec(true, command)
        .await
        .map_err(|e| DriverError::bmc(format!("{label}: starting `{command}`: {e}")))?;
    Ok(channel)
}

fn signal_text(sig: &russh::Sig) -> String {
    match sig {
        russh::Sig::Custom(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// Sends `files` into `dest` with the SCP protocol (the remote end is
/// `scp -t`, which every OpenSSH server has): for one file `dest` may be
/// the file's new path, for several it must be a directory.
pub async fn send_files(
    session: &Session,
    label: &str,
    files: &[CopyFile],
    dest: &str,
    limit: Duration,
) -> Result<Outcome, DriverError> {
    let command = if files.len() == 1 {
        format!("scp -t {}", shell_quote(dest))
    } else {
        format!("scp -d -t {}", shell_quote(dest))
    };
    let channel = start(session, label, &command).await?;
    let (mut read, write) = channel.split();
    let mut out = OutputBuffer::default();
    let transfer = async {
        let mut scp = Scp {
            read: &mut read,
            pending: Vec::new(),
            label,
            status: None,
        };
        scp.ack("starting").await?;
        for f in files {
            let header = format!("C{:04o} {} {}\n", f.mode & 0o7777, f.data.len(), f.name);
            write
                .data_bytes(header.into_bytes())
                .await
                .map_err(|e| scp.failed(&f.name, e))?;
            scp.ack(&f.name).await?;
            write
                .data(&f.data[..])
                .await
                .map_err(|e| scp.failed(&f.name, e))?;
            write
                .data_bytes(vec![0u8])
                .await
                .map_err(|e| scp.failed(&f.name, e))?;
            scp.ack(&f.name).await?;
        }
        let _ = write.eof().await;
        let mut status = scp.status;
        while status.is_none() {
            match scp.read.wait().await {
                Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    out.push(&data)
                }
                Some(_) => {}
                None => break,
            }
        }
        Ok::<_, DriverError>(status)
    };
    match tokio::time::timeout(limit, transfer).await {
        Ok(Ok(status)) => {
            let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
            let mut o = out.finish(status.or(Some(0)), None);
            if o.output.is_empty() && o.succeeded() {
                o.output = format!("copied {} to {dest}\n", names.join(", "));
            }
            Ok(o)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DriverError::new(
            ErrorKind::Timeout,
            format!(
                "{label}: the copy did not finish within {} s",
                limit.as_secs()
            ),
        )),
    }
}

/// The reading side of an SCP transfer: acknowledgements (`\0`, or
/// `\1`/`\2` and a message line).
struct Scp<'a> {
    read: &'a mut russh::ChannelReadHalf,
    pending: Vec<u8>,
    label: &'a str,
    status: Option<u32>,
}

impl Scp<'_> {
    async fn ack(&mut self, what: &str) -> Result<(), DriverError> {
        loop {
            if let Some(&first) = self.pending.first() {
                if first == 0 {
                    self.pending.remove(0);
                    return Ok(());
                }
                if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                    let msg = String::from_utf8_lossy(&self.pending[1..end])
                        .trim()
                        .to_string();
                    return Err(self.refused(what, &msg));
                }
            }
            match self.read.wait().await {
                Some(ChannelMsg::Data { data }) => self.pending.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    // scp says why on stderr before it exits.
                    let msg = String::from_utf8_lossy(&data).trim().to_string();
                    if !msg.is_empty() {
                        return Err(self.refused(what, &msg));
                    }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => self.status = Some(exit_status),
                Some(_) => {}
                None => {
                    let why = match self.status {
                        Some(s) => format!("scp exited with status {s}"),
                        None => "the channel closed".into(),
                    };
                    return Err(self.refused(what, &why));
                }
            }
        }
    }

    fn refused(&self, what: &str, why: &str) -> DriverError {
        DriverError::new(
            ErrorKind::CommandFailed,
            Outcome {
                exit_status: Some(self.status.unwrap_or(1)),
                signal: None,
                output: format!("{}: {what}: {why}\n", self.label),
                dropped_bytes: 0,
            }
            .to_text(),
        )
    }

    fn failed(&self, what: &str, e: russh::Error) -> DriverError {
        DriverError::bmc(format!("{}: sending {what}: {e}", self.label))
    }
}
