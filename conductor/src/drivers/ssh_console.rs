//! Consoles reached over SSH: terminal servers, and BMCs that serve their
//! console on an SSH port. Chosen by `console_info.method = "ssh"`,
//! whatever the node's `mgt`.
//!
//! `console_info`: `ssh_host`, `ssh_port` (22), `ssh_username`, and
//! `ssh_password` or `ssh_key` (an OpenSSH private key's text; both
//! write-only, kept encrypted at rest, answered from memory, never
//! logged; the record never names a file on the conductor), and
//! `ssh_host_fingerprint` (`SHA256:...`, as `ssh-keygen -lf` prints it),
//! checked before any credential is sent. Without a fingerprint the
//! connection is refused (the error names the server's) unless
//! `ssh_verify_host` is false.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use russh::ChannelMsg;
use serde_json::Value;
use tokio::sync::mpsc;
use xcat3_common::hardware;

use super::{Console, ConsoleLink, DriverError, LinkEvent, LinkInput, NodeInfo, Properties};
use crate::shell::session::{self, Endpoint, HostKeys, Login};

/// How long connecting and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

pub struct SshConsole;

struct Target {
    host: String,
    port: u16,
    user: String,
    login: Login,
    host_keys: HostKeys,
}

fn field<'a>(node: &'a NodeInfo, key: &str) -> Result<Option<&'a str>, DriverError> {
    match node.console_info.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DriverError::invalid(format!(
            "console_info.{key}: must be a string"
        ))),
    }
}

impl Target {
    fn of(node: &NodeInfo) -> Result<Target, DriverError> {
        let missing = |k: &str| {
            DriverError::invalid(format!("console_info.{k}: required for an SSH console"))
        };
        let host = field(node, "ssh_host")?.ok_or_else(|| missing("ssh_host"))?;
        let port =
            crate::shell::ssh_port(node.console_info.get("ssh_port"), "console_info.ssh_port")?;
        let user = field(node, "ssh_username")?.ok_or_else(|| missing("ssh_username"))?;
        let login = match (field(node, "ssh_password")?, field(node, "ssh_key")?) {
            (Some(_), Some(_)) => {
                return Err(DriverError::invalid(
                    "console_info.ssh_key: give ssh_password or ssh_key, not both".into(),
                ));
            }
            (Some(p), None) => Login::Password(p.to_string()),
            (None, Some(k)) => Login::Key(Arc::new(
                russh::keys::decode_secret_key(k, None).map_err(|e| {
                    DriverError::invalid(format!(
                        "console_info.ssh_key: not an unencrypted OpenSSH private key ({e})"
                    ))
                })?,
            )),
            (None, None) => return Err(missing("ssh_password or console_info.ssh_key")),
        };
        let verify = match node.console_info.get("ssh_verify_host") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(_) => {
                return Err(DriverError::invalid(
                    "console_info.ssh_verify_host: must be true or false".into(),
                ));
            }
        };
        Ok(Target {
            host: host.to_string(),
            port,
            user: user.to_string(),
            login,
            host_keys: HostKeys::Fingerprint {
                expected: field(node, "ssh_host_fingerprint")?.map(str::to_string),
                verify,
            },
        })
    }
}

#[async_trait]
impl Console for SshConsole {
    fn properties(&self) -> Properties {
        &[hardware::SSH_CONSOLE]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Target::of(node).map(drop)
    }

    async fn connect(&self, node: &NodeInfo, _force: bool) -> Result<ConsoleLink, DriverError> {
        let t = Target::of(node)?;
        let at = format!("{}:{}", t.host, t.port);
        let label = format!("SSH console {at}");
        let config = Arc::new(russh::client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let ep = Endpoint {
            label: &label,
            host: &t.host,
            port: t.port,
            user: &t.user,
            login: &t.login,
            host_keys: &t.host_keys,
        };
        let session = session::open(&ep, config, CONNECT_TIMEOUT).await?;
        let terminal = async {
            let channel = session
                .channel_open_session()
                .await
                .map_err(|e| DriverError::bmc(format!("{label}: opening a session: {e}")))?;
            channel
                .request_pty(false, "vt100", 80, 24, 0, 0, &[])
                .await
                .map_err(|e| DriverError::bmc(format!("{label}: asking for a terminal: {e}")))?;
            channel
                .request_shell(false)
                .await
                .map_err(|e| DriverError::bmc(format!("{label}: starting the shell: {e}")))?;
            Ok::<_, DriverError>(channel)
        };
        let channel = tokio::time::timeout(CONNECT_TIMEOUT, terminal)
            .await
            .map_err(|_| {
                DriverError::new(
                    xcat3_common::rpc::ErrorKind::Timeout,
                    format!(
                        "{label}: no terminal within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                )
            })??;
        let (out_tx, out_rx) = mpsc::channel(256);
        let (in_tx, mut in_rx) = mpsc::channel::<LinkInput>(64);
        tokio::spawn(async move {
            let (mut read, write) = channel.split();
            let why = loop {
                tokio::select! {
                    m = read.wait() => match m {
                        Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                            if out_tx.send(LinkEvent::Data(data.to_vec())).await.is_err() {
                                break None;
                            }
                        }
                        Some(ChannelMsg::ExitStatus { exit_status }) => {
                            break Some(format!("SSH console {at}: the remote shell exited ({exit_status})"));
                        }
                        Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                            break Some(format!("SSH console {at}: the server closed the session"));
                        }
                        Some(_) => {}
                    },
                    i = in_rx.recv() => match i {
                        Some(LinkInput::Data(b)) => {
                            if write.data_bytes(b).await.is_err() {
                                break Some(format!("SSH console {at}: the session failed"));
                            }
                        }
                        // SSH's break request (RFC 4335) is not offered by
                        // the client library: ignored.
                        Some(LinkInput::Break) => {}
                        None => break None,
                    },
                }
            };
            if let Some(why) = why {
                let _ = out_tx.send(LinkEvent::Closed(why)).await;
            }
            let _ = write.close().await;
            let _ = session
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        });
        Ok(ConsoleLink {
            output: out_rx,
            input: in_tx,
            took_over: false,
        })
    }
}
