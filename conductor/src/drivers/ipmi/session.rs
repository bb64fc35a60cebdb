//! The console side of one RMCP+ session: Open Session, RAKP 1–4, Set
//! Session Privilege Level, commands, Close Session, with retransmits.
//!
//! Errors say what failed at which step and never carry a credential.

use std::net::SocketAddr;
use std::time::Duration;

use xcat3_common::rpc::ErrorKind;
use xcat3_ipmi::cmd::{self, Privilege};
use xcat3_ipmi::crypto::{CipherSuite, SessionKeys, codes_equal};
use xcat3_ipmi::rakp::{
    self, Exchange, NAME_ONLY_LOOKUP, OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp2, Rakp3,
    Rakp4,
};
use xcat3_ipmi::random_bytes;
use xcat3_ipmi::wire::{self, Frame, PayloadType, Request, Response};

use super::transport::Channel;

/// How hard to try before a BMC counts as not answering.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Wait for an answer this long before sending again.
    pub interval: Duration,
    /// Sends after the first one.
    pub retries: u32,
}

/// Who to talk to, as whom.
pub struct Target<'a> {
    pub username: &'a [u8],
    pub password: &'a [u8],
    pub suite: CipherSuite,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("BMC {bmc} did not answer {step} ({tries} tries in {ms} ms)")]
    NoAnswer {
        bmc: SocketAddr,
        step: &'static str,
        tries: u32,
        ms: u128,
    },
    #[error("BMC {bmc} refused {step}: {why}")]
    Refused {
        bmc: SocketAddr,
        step: &'static str,
        why: &'static str,
    },
    #[error("BMC {bmc}: authentication failed in RAKP {rakp} (wrong bmc_password or BMC key?)")]
    BadAuthCode { bmc: SocketAddr, rakp: u8 },
    #[error("BMC {bmc}: {command} failed: {why} (completion code {code:#04x})")]
    Completion {
        bmc: SocketAddr,
        command: &'static str,
        code: u8,
        why: &'static str,
    },
    #[error("BMC {bmc}: {0}", bmc = .1)]
    Io(std::io::Error, SocketAddr),
    #[error("BMC {bmc}: {command}: {why}")]
    BadAnswer {
        bmc: SocketAddr,
        command: &'static str,
        why: String,
    },
}

impl SessionError {
    /// What kind of failure this is, for the history and `--kind`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::NoAnswer { .. } | SessionError::Io(..) => ErrorKind::Unreachable,
            SessionError::BadAuthCode { .. } => ErrorKind::Authentication,
            SessionError::Refused { why, .. } => {
                if [
                    "unauthorized",
                    "integrity check value",
                    "invalid role",
                    "invalid name",
                ]
                .iter()
                .any(|w| why.contains(w))
                {
                    ErrorKind::Authentication
                } else if ["algorithm", "cipher suite", "no matching"]
                    .iter()
                    .any(|w| why.contains(w))
                {
                    ErrorKind::Unsupported
                } else {
                    ErrorKind::BmcError
                }
            }
            SessionError::BadAnswer { .. } => ErrorKind::BmcError,
            SessionError::Completion { code, .. } => match *code {
                // Invalid command; parameter not supported.
                0xc1 | 0x80 => ErrorKind::Unsupported,
                // Insufficient privilege level.
                0xd4 => ErrorKind::Authentication,
                _ => ErrorKind::BmcError,
            },
        }
    }
}

/// An established session. Call [`close`](Session::close) when done: a
/// BMC holds only a few sessions at once.
pub struct Session {
    ch: Channel,
    retry: Retry,
    console_sid: u32,
    bmc_sid: u32,
    keys: SessionKeys,
    out_seq: u32,
    rq_seq: u8,
}

/// Sends what `packet` builds until `accept` takes an answer or the tries
/// run out. `packet` is called per try (session packets get a new
/// sequence number per send; RAKP packets are resent as they were).
async fn exchange<T>(
    ch: &mut Channel,
    retry: Retry,
    step: &'static str,
    mut packet: impl FnMut() -> Vec<u8>,
    mut accept: impl FnMut(&[u8]) -> Option<T>,
) -> Result<T, SessionError> {
    let start = tokio::time::Instant::now();
    let tries = retry.retries + 1;
    for _ in 0..tries {
        ch.send(&packet())
            .await
            .map_err(|e| SessionError::Io(e, ch.bmc()))?;
        let until = tokio::time::Instant::now() + retry.interval;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match ch.recv(left).await {
                Some(d) => {
                    if let Some(v) = accept(&d) {
                        return Ok(v);
                    }
                    // Stale or foreign: keep waiting for ours.
                }
                None => break,
            }
        }
    }
    Err(SessionError::NoAnswer {
        bmc: ch.bmc(),
        step,
        tries,
        ms: start.elapsed().as_millis(),
    })
}

/// The payload of a pre-session packet of type `want`.
fn pre_session(d: &[u8], want: PayloadType) -> Option<Vec<u8>> {
    match wire::parse(d).ok()? {
        Frame::V20(f) if f.payload_type == want && f.session_id == 0 => f.open(None).ok(),
        _ => None,
    }
}

impl Session {
    /// Opens a session and raises it to `privilege`.
    pub async fn open(
        mut ch: Channel,
        target: &Target<'_>,
        privilege: Privilege,
        retry: Retry,
    ) -> Result<Session, SessionError> {
        let bmc = ch.bmc();
        let suite = target.suite;
        let console_sid = ch.sid();

        let open = wire::seal_v20(
            PayloadType::OpenSessionRequest,
            0,
            0,
            &OpenSessionRequest::new(0, console_sid, suite).encode(),
            None,
        );
        let resp = exchange(
            &mut ch,
            retry,
            "Open Session",
            || open.clone(),
            |d| {
                let r =
                    OpenSessionResponse::decode(&pre_session(d, PayloadType::OpenSessionResponse)?)
                        .ok()?;
                (r.console_sid == console_sid || r.status != rakp::status::OK).then_some(r)
            },
        )
        .await?;
        if resp.status != rakp::status::OK {
            return Err(SessionError::Refused {
                bmc,
                step: "Open Session",
                why: rakp::status::text(resp.status),
            });
        }
        if resp.suite != Some(suite) {
            return Err(SessionError::Refused {
                bmc,
                step: "Open Session",
                why: "the BMC answered with other algorithms than cipher suite asked",
            });
        }

        let mut rm = [0u8; 16];
        random_bytes(&mut rm);
        let role = privilege as u8 | NAME_ONLY_LOOKUP;
        let r1 = wire::seal_v20(
            PayloadType::Rakp1,
            0,
            0,
            &Rakp1 {
                tag: 1,
                bmc_sid: resp.bmc_sid,
                rm,
                role,
                username: target.username.to_vec(),
            }
            .encode(),
            None,
        );
        let r2 = exchange(
            &mut ch,
            retry,
            "RAKP 1",
            || r1.clone(),
            |d| {
                let r = Rakp2::decode(&pre_session(d, PayloadType::Rakp2)?).ok()?;
                (r.tag == 1 && (r.console_sid == console_sid || r.status != rakp::status::OK))
                    .then_some(r)
            },
        )
        .await?;
        if r2.status != rakp::status::OK {
            return Err(SessionError::Refused {
                bmc,
                step: "RAKP 1 (user name and role)",
                why: rakp::status::text(r2.status),
            });
        }
        let x = Exchange {
            suite,
            console_sid,
            bmc_sid: resp.bmc_sid,
            rm,
            rc: r2.rc,
            guid: r2.guid,
            role,
            username: target.username.to_vec(),
        };
        if !codes_equal(&r2.auth_code, &x.rakp2_code(target.password)) {
            // Tell the BMC (as ipmitool does) so it frees the session now
            // rather than at its idle timeout.
            let refusal = Rakp3 {
                tag: 2,
                status: rakp::status::INVALID_INTEGRITY_VALUE,
                bmc_sid: resp.bmc_sid,
                auth_code: vec![],
            };
            let _ = ch
                .send(&wire::seal_v20(
                    PayloadType::Rakp3,
                    0,
                    0,
                    &refusal.encode(),
                    None,
                ))
                .await;
            return Err(SessionError::BadAuthCode { bmc, rakp: 2 });
        }

        let r3 = wire::seal_v20(
            PayloadType::Rakp3,
            0,
            0,
            &Rakp3 {
                tag: 2,
                status: rakp::status::OK,
                bmc_sid: resp.bmc_sid,
                auth_code: x.rakp3_code(target.password),
            }
            .encode(),
            None,
        );
        let r4 = exchange(
            &mut ch,
            retry,
            "RAKP 3",
            || r3.clone(),
            |d| {
                let r = Rakp4::decode(&pre_session(d, PayloadType::Rakp4)?).ok()?;
                (r.tag == 2).then_some(r)
            },
        )
        .await?;
        if r4.status != rakp::status::OK {
            return Err(SessionError::Refused {
                bmc,
                step: "RAKP 3",
                why: rakp::status::text(r4.status),
            });
        }
        let sik = x.sik(target.password);
        if !codes_equal(&r4.icv, &x.rakp4_icv(&sik)) {
            return Err(SessionError::BadAuthCode { bmc, rakp: 4 });
        }

        let mut s = Session {
            ch,
            retry,
            console_sid,
            bmc_sid: resp.bmc_sid,
            keys: SessionKeys::from_sik(suite, sik),
            out_seq: 0,
            rq_seq: 0,
        };
        // RMCP+ sessions start at User; chassis control needs more.
        if privilege > Privilege::User {
            s.command(
                "Set Session Privilege Level",
                cmd::NETFN_APP,
                cmd::SET_SESSION_PRIVILEGE,
                &[privilege as u8],
            )
            .await?;
        }
        Ok(s)
    }

    /// The BMC's address, for error messages.
    pub fn bmc(&self) -> SocketAddr {
        self.ch.bmc()
    }

    /// An answer we cannot use, as an error naming the command.
    pub fn bad_answer(&self, command: &'static str, why: impl std::fmt::Display) -> SessionError {
        SessionError::BadAnswer {
            bmc: self.bmc(),
            command,
            why: why.to_string(),
        }
    }

    /// Runs one command; returns its response data (completion code 0).
    pub async fn command(
        &mut self,
        name: &'static str,
        netfn: u8,
        command: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, SessionError> {
        let (rq_seq, req) = self.next_request(netfn, command, data);
        let (bmc_sid, console_sid, keys) = (self.bmc_sid, self.console_sid, &self.keys);
        let mut seq = self.out_seq;
        let resp = exchange(
            &mut self.ch,
            self.retry,
            name,
            || {
                seq = seq.wrapping_add(1).max(1);
                wire::seal_v20(PayloadType::Ipmi, bmc_sid, seq, &req, Some(keys))
            },
            |d| {
                let Frame::V20(f) = wire::parse(d).ok()? else {
                    return None;
                };
                if f.payload_type != PayloadType::Ipmi || f.session_id != console_sid {
                    return None;
                }
                let r = Response::decode(&f.open(Some(keys)).ok()?).ok()?;
                (r.rq_seq == rq_seq && r.cmd == command && r.netfn == netfn).then_some(r)
            },
        )
        .await;
        self.out_seq = seq;
        let resp = resp?;
        if resp.cc != cmd::cc::OK {
            return Err(SessionError::Completion {
                bmc: self.ch.bmc(),
                command: name,
                code: resp.cc,
                why: cmd::completion_text(resp.cc),
            });
        }
        Ok(resp.data)
    }

    /// Whether the session's suite encrypts payloads, and whether it
    /// authenticates them (SOL is activated to match).
    pub fn sealing(&self) -> (bool, bool) {
        (self.keys.encrypts(), self.keys.integrity_len() > 0)
    }

    /// Our session id, and the BMC's.
    pub fn ids(&self) -> (u32, u32) {
        (self.console_sid, self.bmc_sid)
    }

    /// A session packet of `payload_type`, sealed, with the next session
    /// sequence number: for a caller that runs its own exchange (the SOL
    /// loop, which must not drop console output while it waits).
    pub fn seal(&mut self, payload_type: PayloadType, payload: &[u8]) -> Vec<u8> {
        self.out_seq = self.out_seq.wrapping_add(1).max(1);
        wire::seal_v20(
            payload_type,
            self.bmc_sid,
            self.out_seq,
            payload,
            Some(&self.keys),
        )
    }

    /// A command request with the next rqSeq, sealed; returns the rqSeq to
    /// match the answer by.
    pub fn seal_command(&mut self, netfn: u8, command: u8, data: &[u8]) -> (u8, Vec<u8>) {
        let (rq_seq, req) = self.next_request(netfn, command, data);
        (rq_seq, self.seal(PayloadType::Ipmi, &req))
    }

    /// A command request with the next rqSeq, encoded (not yet sealed: a
    /// retransmit seals it again with a new session sequence number).
    fn next_request(&mut self, netfn: u8, command: u8, data: &[u8]) -> (u8, Vec<u8>) {
        self.rq_seq = (self.rq_seq + 1) & 0x3f;
        let req = Request {
            netfn,
            cmd: command,
            rq_seq: self.rq_seq,
            data: data.to_vec(),
        }
        .encode();
        (self.rq_seq, req)
    }

    /// The payload of a datagram of this session, checked and decrypted.
    pub fn unseal(&self, d: &[u8]) -> Option<(PayloadType, Vec<u8>)> {
        let Frame::V20(f) = wire::parse(d).ok()? else {
            return None;
        };
        if f.session_id != self.console_sid {
            return None;
        }
        Some((f.payload_type, f.open(Some(&self.keys)).ok()?))
    }

    /// The line to the BMC, for a caller running its own exchange.
    pub fn channel(&mut self) -> &mut Channel {
        &mut self.ch
    }

    /// Closes the session (one quick try; a lost close only leaves the
    /// session to the BMC's idle timeout).
    pub async fn close(mut self) {
        self.retry = Retry {
            interval: self.retry.interval,
            retries: 0,
        };
        let sid = self.bmc_sid.to_le_bytes();
        if let Err(e) = self
            .command("Close Session", cmd::NETFN_APP, cmd::CLOSE_SESSION, &sid)
            .await
        {
            tracing::debug!(error = %e, "closing IPMI session");
        }
    }
}
