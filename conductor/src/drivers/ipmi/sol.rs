//! Serial over LAN on our RMCP+ session: activate the SOL payload (taking
//! it over with `force`), then one task that moves bytes both ways with
//! SOL's own sequence numbers, acknowledgements, accepted-character counts
//! and retransmits, sends a break on request, and keeps the session alive.
//!
//! The keepalive (after `[ipmi] sol_keepalive` seconds of quiet) asks
//! the BMC which session holds SOL instance 1 (Get Payload Instance Info):
//! a console whose payload was taken by another session learns it then
//! instead of waiting for output that never comes. BMCs without that command get Get Device ID, which
//! at least proves the session lives.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use xcat3_ipmi::cmd::{self, Privilege};
use xcat3_ipmi::sol::{self, Activated, Packet};
use xcat3_ipmi::wire::{PayloadType, Response};

use super::session::{Retry, Session, SessionError};
use crate::drivers::{LinkEvent, LinkInput};

/// Most characters per SOL packet (the accepted count is one byte).
const MAX_CHUNK: usize = 200;

/// Activates SOL instance 1 in `s`; with `force`, a payload active in
/// another session is deactivated first (then the flag is true).
pub(super) async fn activate(
    s: &mut Session,
    force: bool,
) -> Result<(Activated, bool), SessionError> {
    let mut took_over = false;
    let (encrypt, authenticate) = s.sealing();
    let req = sol::activate_request(encrypt, authenticate);
    let first = s
        .command(
            "Activate Payload (SOL)",
            cmd::NETFN_APP,
            sol::ACTIVATE_PAYLOAD,
            &req,
        )
        .await;
    let data = match first {
        Err(SessionError::Completion { code, .. })
            if force && code == sol::activate_cc::ALREADY_ACTIVE =>
        {
            took_over = true;
            s.command(
                "Deactivate Payload (SOL, --force)",
                cmd::NETFN_APP,
                sol::DEACTIVATE_PAYLOAD,
                &sol::deactivate_request(),
            )
            .await?;
            s.command(
                "Activate Payload (SOL)",
                cmd::NETFN_APP,
                sol::ACTIVATE_PAYLOAD,
                &req,
            )
            .await
        }
        other => other,
    }
    .map_err(|e| match e {
        SessionError::Completion { code, bmc, .. } if sol::activate_text(code).is_some() => {
            SessionError::Refused {
                bmc,
                step: "Activate Payload (SOL)",
                why: sol::activate_text(code).unwrap_or_default(),
            }
        }
        e => e,
    })?;
    let act = Activated::decode(&data).map_err(|e| s.bad_answer("Activate Payload (SOL)", e))?;
    if act.port != s.bmc().port() {
        return Err(s.bad_answer(
            "Activate Payload (SOL)",
            format!(
                "the BMC serves SOL on UDP port {}, not the session's {}",
                act.port,
                s.bmc().port()
            ),
        ));
    }
    Ok((act, took_over))
}

/// The packet we sent and wait to see acknowledged.
struct InFlight {
    packet: Packet,
    sent: Instant,
    tries: u32,
}

enum Event {
    Datagram(Option<Vec<u8>>),
    Input(Option<LinkInput>),
}

/// A keepalive command waiting for its answer.
struct Probe {
    rq_seq: u8,
    command: u8,
    sent: Instant,
    tries: u32,
}

/// Moves bytes until `input` is dropped (then deactivates SOL and closes
/// the session) or the line is lost (then says why on `output`).
pub(super) async fn run(
    mut s: Session,
    act: Activated,
    retry: Retry,
    keepalive: Duration,
    mut input: mpsc::Receiver<LinkInput>,
    output: mpsc::Sender<LinkEvent>,
) {
    let why = pump(&mut s, act, retry, keepalive, &mut input, &output).await;
    // The payload is ours to deactivate unless another session has it (or
    // the BMC already dropped it): deactivating instance 1 then would cut
    // off whoever took it.
    let ours = match &why {
        Some(Ended::Elsewhere(_)) => false,
        Some(Ended::Lost(_)) | None => true,
    };
    if let Some(Ended::Elsewhere(why) | Ended::Lost(why)) = why {
        let _ = output.send(LinkEvent::Closed(why)).await;
    }
    if ours {
        // Best effort: a lost session ends at the BMC's timeout.
        let _ = tokio::time::timeout(
            retry.interval * 2,
            s.command(
                "Deactivate Payload (SOL)",
                cmd::NETFN_APP,
                sol::DEACTIVATE_PAYLOAD,
                &sol::deactivate_request(),
            ),
        )
        .await;
    }
    s.close().await;
}

/// Why the line ended, when our side did not end it.
enum Ended {
    /// The payload is no longer ours (taken, or deactivated by the BMC).
    Elsewhere(String),
    /// The BMC or the network failed.
    Lost(String),
}

/// The loop; returns why the line ended, or None when our side closed it.
async fn pump(
    s: &mut Session,
    act: Activated,
    retry: Retry,
    keepalive: Duration,
    input: &mut mpsc::Receiver<LinkInput>,
    output: &mpsc::Sender<LinkEvent>,
) -> Option<Ended> {
    let chunk = usize::from(act.inbound_max)
        .saturating_sub(4)
        .clamp(1, MAX_CHUNK);
    let (_, bmc_sid) = s.ids();
    let mut seq = 0u8;
    let mut pending: VecDeque<u8> = VecDeque::new();
    let mut send_break = false;
    let mut in_flight: Option<InFlight> = None;
    // The last data packet delivered (seq, length): a repeat is only
    // acknowledged again.
    let mut last_in: Option<(u8, usize)> = None;
    let mut probe: Option<Probe> = None;
    let mut probe_command = sol::GET_PAYLOAD_INSTANCE_INFO;
    let mut last_heard = Instant::now();
    let mut input_open = true;

    loop {
        // Send what waits, one packet at a time.
        if in_flight.is_none() && (!pending.is_empty() || send_break) {
            seq = sol::next_seq(seq);
            let n = pending.len().min(chunk);
            let packet = Packet {
                seq,
                flags: if send_break { sol::op::BREAK } else { 0 },
                data: pending.drain(..n).collect(),
                ..Packet::default()
            };
            send_break = false;
            let d = s.seal(PayloadType::Sol, &packet.encode());
            if let Err(e) = s.channel().send(&d).await {
                return Some(Ended::Lost(format!("BMC {}: {e}", s.bmc())));
            }
            in_flight = Some(InFlight {
                packet,
                sent: Instant::now(),
                tries: 1,
            });
        }
        if !input_open && in_flight.is_none() && pending.is_empty() {
            return None;
        }

        let now = Instant::now();
        let mut wake = match &probe {
            Some(p) => p.sent + retry.interval,
            None => last_heard + keepalive,
        };
        if let Some(f) = &in_flight {
            wake = wake.min(f.sent + retry.interval);
        }

        let event = tokio::select! {
            d = s.channel().recv(wake.saturating_duration_since(now)) => Event::Datagram(d),
            i = input.recv(), if input_open => Event::Input(i),
        };
        match event {
            Event::Datagram(None) => {}
            Event::Datagram(Some(d)) => {
                let Some((pt, payload)) = s.unseal(&d) else {
                    continue;
                };
                last_heard = Instant::now();
                match pt {
                    PayloadType::Sol => {
                        let Ok(p) = Packet::decode(&payload) else {
                            continue;
                        };
                        if p.ack_seq != 0
                            && let Some(f) = &in_flight
                            && f.packet.seq == p.ack_seq
                            && p.flags & sol::status::NACK == 0
                        {
                            // Characters the BMC did not take go again, first.
                            let taken = usize::from(p.accepted).min(f.packet.data.len());
                            for b in f.packet.data[taken..].iter().rev() {
                                pending.push_front(*b);
                            }
                            in_flight = None;
                        }
                        if p.seq != 0 {
                            let ack = s.seal(PayloadType::Sol, &Packet::ack(&p).encode());
                            let _ = s.channel().send(&ack).await;
                            if last_in != Some((p.seq, p.data.len())) {
                                last_in = Some((p.seq, p.data.len()));
                                if !p.data.is_empty()
                                    && output.send(LinkEvent::Data(p.data)).await.is_err()
                                {
                                    input_open = false;
                                }
                            }
                        }
                        if p.flags & sol::status::DEACTIVATING != 0 {
                            return Some(Ended::Elsewhere(
                                "the BMC deactivated SOL (another session took it?)".into(),
                            ));
                        }
                    }
                    PayloadType::Ipmi => {
                        let Ok(r) = Response::decode(&payload) else {
                            continue;
                        };
                        let Some(pr) = &probe else {
                            continue;
                        };
                        if r.rq_seq != pr.rq_seq || r.cmd != pr.command {
                            continue;
                        }
                        probe = None;
                        if r.cmd == sol::GET_PAYLOAD_INSTANCE_INFO {
                            if r.cc != cmd::cc::OK {
                                probe_command = cmd::GET_DEVICE_ID;
                            } else if let Some(owner) = r.data.get(0..4) {
                                let owner = u32::from_le_bytes(owner.try_into().expect("4 bytes"));
                                if owner == 0 {
                                    return Some(Ended::Elsewhere(
                                        "the BMC deactivated SOL".into(),
                                    ));
                                }
                                if owner != bmc_sid {
                                    return Some(Ended::Elsewhere(
                                        "SOL was taken over by another session".into(),
                                    ));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::Input(Some(LinkInput::Data(b))) => pending.extend(b),
            Event::Input(Some(LinkInput::Break)) => send_break = true,
            Event::Input(None) => input_open = false,
        }

        let now = Instant::now();
        if let Some(f) = &mut in_flight
            && now >= f.sent + retry.interval
        {
            if f.tries > retry.retries {
                return Some(Ended::Lost(format!(
                    "BMC {} did not acknowledge SOL data ({} tries)",
                    s.bmc(),
                    f.tries
                )));
            }
            f.tries += 1;
            f.sent = now;
            let d = s.seal(PayloadType::Sol, &f.packet.encode());
            let _ = s.channel().send(&d).await;
        }
        match &mut probe {
            Some(p) if now >= p.sent + retry.interval => {
                if p.tries > retry.retries {
                    return Some(Ended::Lost(format!(
                        "BMC {} stopped answering the session ({} keepalive tries)",
                        s.bmc(),
                        p.tries
                    )));
                }
                p.tries += 1;
                p.sent = now;
                let (rq_seq, d) = s.seal_command(cmd::NETFN_APP, p.command, &probe_data(p.command));
                p.rq_seq = rq_seq;
                let _ = s.channel().send(&d).await;
            }
            None if now >= last_heard + keepalive => {
                let (rq_seq, d) =
                    s.seal_command(cmd::NETFN_APP, probe_command, &probe_data(probe_command));
                let _ = s.channel().send(&d).await;
                probe = Some(Probe {
                    rq_seq,
                    command: probe_command,
                    sent: now,
                    tries: 1,
                });
            }
            _ => {}
        }
    }
}

fn probe_data(command: u8) -> Vec<u8> {
    if command == sol::GET_PAYLOAD_INSTANCE_INFO {
        vec![sol::PAYLOAD_SOL, sol::INSTANCE]
    } else {
        vec![]
    }
}

/// The privilege a console session asks for: Activate Payload needs User,
/// but taking a payload over from another session needs Administrator.
pub(super) const PRIVILEGE: Privilege = Privilege::Administrator;
