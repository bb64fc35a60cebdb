//! A simulated node's serial port and the BMC's SOL payload on it.
//!
//! The "host" prints a boot log naming its node when powered on, cycled or
//! reset, echoes what is typed, answers Enter with a login prompt, and
//! with `--sol-line-ms` prints a numbered line at that interval while on
//! (for console benchmarks, which count lines to prove none was lost).
//! Like a real UART with nobody listening, what it prints while no SOL
//! session is active is gone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;
use xcat3_ipmi::sol::{self, Packet};

/// Unacknowledged SOL data is sent again after this long...
const RETRANSMIT: Duration = Duration::from_millis(500);
/// ...this many times, then dropped (counted as lost).
const TRIES: u32 = 8;
/// Characters per SOL packet we send.
const CHUNK: usize = 200;
/// What the UART buffers for a slow console before dropping the oldest.
const QUEUE_CAP: usize = 64 << 10;

/// SOL counters a test or benchmark reads.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SolStats {
    pub activations: u64,
    /// Bytes the host printed while SOL was active.
    pub printed: u64,
    /// Bytes the console acknowledged.
    pub delivered: u64,
    /// Bytes dropped: queue overflow or retransmits exhausted.
    pub lost: u64,
    /// Bytes typed by the console (after duplicates were dropped).
    pub typed: u64,
    /// Numbered lines printed (`--sol-line-ms`).
    pub lines: u64,
}

/// The active SOL payload: which session holds it and our side of its
/// packet exchange.
struct Link {
    bmc_sid: u32,
    out_seq: u8,
    in_flight: Option<(Packet, Instant, u32)>,
    last_in: Option<(u8, usize)>,
}

pub struct Serial {
    name: String,
    line: Vec<u8>,
    queue: VecDeque<u8>,
    link: Option<Link>,
    every: Option<Duration>,
    next_line: Option<Instant>,
    pub stats: SolStats,
}

impl Serial {
    pub fn new(name: String, every: Option<Duration>) -> Serial {
        Serial {
            name,
            line: Vec::new(),
            queue: VecDeque::new(),
            link: None,
            every,
            next_line: None,
            stats: SolStats::default(),
        }
    }

    /// The session holding SOL, if any.
    pub fn holder(&self) -> Option<u32> {
        self.link.as_ref().map(|l| l.bmc_sid)
    }

    pub fn activate(&mut self, bmc_sid: u32) {
        self.link = Some(Link {
            bmc_sid,
            out_seq: 0,
            in_flight: None,
            last_in: None,
        });
        self.stats.activations += 1;
    }

    pub fn deactivate(&mut self) {
        if let Some(l) = self.link.take()
            && let Some((p, ..)) = l.in_flight
        {
            self.stats.lost += p.data.len() as u64;
        }
        self.stats.lost += self.queue.len() as u64;
        self.queue.clear();
    }

    /// The host prints `bytes`.
    fn print(&mut self, bytes: &[u8]) {
        if self.link.is_none() {
            return;
        }
        self.stats.printed += bytes.len() as u64;
        self.queue.extend(bytes);
        let over = self.queue.len().saturating_sub(QUEUE_CAP);
        if over > 0 {
            self.queue.drain(..over);
            self.stats.lost += over as u64;
        }
    }

    /// Power changed: `on` after a power-up, cycle or reset.
    pub fn power(&mut self, on: bool, now: Instant) {
        if !on {
            self.print(b"\r\n[  120.000001] reboot: Power down\r\n");
            self.next_line = None;
            return;
        }
        let n = self.name.clone();
        self.print(
            format!(
                "\r\nxcat3-sim BIOS 1.0: booting {n}\r\n\
                 [    0.000000] Linux version 6.1.0-sim (xcat3-sim) #1 SMP\r\n\
                 [    0.000000] Command line: console=ttyS0,115200n8\r\n\
                 [    1.204711] systemd[1]: Hostname set to <{n}>.\r\n\
                 \r\nDebian GNU/Linux 12 {n} ttyS0\r\n\r\n{n} login: "
            )
            .as_bytes(),
        );
        self.next_line = self.every.map(|e| now + e);
    }

    /// A SOL packet from the holder; returns the acknowledgement to send.
    pub fn receive(&mut self, p: &Packet) -> Option<Packet> {
        let link = self.link.as_mut()?;
        if p.ack_seq != 0
            && let Some((f, ..)) = &link.in_flight
            && f.seq == p.ack_seq
            && p.flags & sol::op::NACK == 0
        {
            let taken = usize::from(p.accepted).min(f.data.len());
            self.stats.delivered += taken as u64;
            for b in f.data[taken..].iter().rev() {
                self.queue.push_front(*b);
            }
            link.in_flight = None;
        }
        if p.seq == 0 {
            return None;
        }
        let ack = Packet::ack(p);
        if link.last_in == Some((p.seq, p.data.len())) {
            return Some(ack);
        }
        link.last_in = Some((p.seq, p.data.len()));
        self.stats.typed += p.data.len() as u64;
        if p.flags & sol::op::BREAK != 0 {
            self.print(b"\r\n[break]\r\n");
        }
        for &b in &p.data {
            self.key(b);
        }
        Some(ack)
    }

    /// One key typed at the host's getty.
    fn key(&mut self, b: u8) {
        match b {
            b'\r' | b'\n' => {
                self.line.clear();
                let prompt = format!("\r\n{} login: ", self.name);
                self.print(prompt.as_bytes());
            }
            0x7f | 0x08 => {
                if self.line.pop().is_some() {
                    self.print(b"\x08 \x08");
                }
            }
            _ => {
                self.line.push(b);
                self.print(&[b]);
            }
        }
    }

    /// The SOL packet to send now, if any (new data, or a retransmit),
    /// with the session that holds SOL.
    pub fn poll(&mut self, now: Instant, powered: bool) -> Option<(u32, Packet)> {
        if powered
            && let (Some(at), Some(every)) = (self.next_line, self.every)
            && now >= at
        {
            self.stats.lines += 1;
            let line = format!("{} console line {}\r\n", self.name, self.stats.lines);
            self.print(line.as_bytes());
            self.next_line = Some(at + every);
        }
        let link = self.link.as_mut()?;
        match &mut link.in_flight {
            Some((p, sent, tries)) => {
                if now < *sent + RETRANSMIT {
                    return None;
                }
                if *tries >= TRIES {
                    self.stats.lost += p.data.len() as u64;
                    link.in_flight = None;
                    return None;
                }
                *tries += 1;
                *sent = now;
                Some((link.bmc_sid, p.clone()))
            }
            None if !self.queue.is_empty() => {
                link.out_seq = sol::next_seq(link.out_seq);
                let n = self.queue.len().min(CHUNK);
                let p = Packet {
                    seq: link.out_seq,
                    data: self.queue.drain(..n).collect(),
                    ..Packet::default()
                };
                link.in_flight = Some((p.clone(), now, 1));
                Some((link.bmc_sid, p))
            }
            None => None,
        }
    }

    /// When [`poll`](Self::poll) next has something to do.
    pub fn next_wakeup(&self, powered: bool) -> Option<Instant> {
        let line = self.next_line.filter(|_| powered);
        let link = match &self.link {
            Some(l) => match &l.in_flight {
                Some((_, sent, _)) => Some(*sent + RETRANSMIT),
                None if !self.queue.is_empty() => Some(Instant::now()),
                None => None,
            },
            None => None,
        };
        match (line, link) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_log_names_the_node_and_typing_echoes() {
        let now = Instant::now();
        let mut s = Serial::new("sim00007".into(), None);
        s.power(true, now);
        assert!(
            s.poll(now, true).is_none(),
            "nobody listening: nothing kept"
        );
        s.activate(9);
        s.power(true, now);
        let (sid, p) = s.poll(now, true).unwrap();
        assert_eq!(sid, 9);
        assert!(String::from_utf8_lossy(&p.data).contains("booting sim00007"));
        // Unacknowledged: nothing new until the retransmit time.
        assert!(s.poll(now, true).is_none());
        let (_, again) = s.poll(now + RETRANSMIT, true).unwrap();
        assert_eq!(again, p);
        // Acknowledge all, type "ab": the ack comes back and "ab" is echoed
        // after the rest of the boot log.
        let typed = Packet {
            seq: 1,
            ack_seq: p.seq,
            accepted: p.data.len() as u8,
            data: b"ab".to_vec(),
            ..Packet::default()
        };
        let ack = s.receive(&typed).unwrap();
        assert_eq!((ack.ack_seq, ack.accepted), (1, 2));
        // A repeated packet is acknowledged, not typed twice.
        assert_eq!(s.receive(&typed).unwrap().ack_seq, 1);
        assert_eq!(s.stats.typed, 2);
        let mut out = Vec::new();
        let mut t = now;
        while let Some((_, p)) = s.poll(t, true) {
            out.extend_from_slice(&p.data);
            s.receive(&Packet {
                ack_seq: p.seq,
                accepted: p.data.len() as u8,
                ..Packet::default()
            });
            t += Duration::from_millis(1);
        }
        assert!(String::from_utf8_lossy(&out).ends_with("sim00007 login: ab"));
        assert_eq!(s.stats.lost, 0);
        assert_eq!(s.stats.delivered, s.stats.printed);
    }
}
