//! Serial over LAN (IPMI v2.0 §15 and §24): the payload activation commands
//! and the SOL packet (payload type 1) both sides exchange once the payload
//! is active.
//!
//! A SOL packet carries its own sequence number (1–15; 0 means "only an
//! acknowledgement"), the sequence number it acknowledges with how many of
//! that packet's characters were accepted, and an operation/status byte.
//! Each side retransmits its unacknowledged packet; a receiver acknowledges
//! a repeated packet again without delivering it twice.

use crate::IpmiError;

/// App commands that manage payloads (§24).
pub const ACTIVATE_PAYLOAD: u8 = 0x48;
pub const DEACTIVATE_PAYLOAD: u8 = 0x49;
pub const GET_PAYLOAD_ACTIVATION_STATUS: u8 = 0x4a;
pub const GET_PAYLOAD_INSTANCE_INFO: u8 = 0x4b;

/// The SOL payload type in the activation commands.
pub const PAYLOAD_SOL: u8 = 0x01;
/// Every BMC has SOL instance 1; we use only it.
pub const INSTANCE: u8 = 1;

/// Activate Payload completion codes (§24.1).
pub mod activate_cc {
    pub const ALREADY_ACTIVE: u8 = 0x80;
    pub const DISABLED: u8 = 0x81;
    pub const LIMIT_REACHED: u8 = 0x82;
    pub const NO_ENCRYPTION_ALLOWED: u8 = 0x83;
    pub const ENCRYPTION_REQUIRED: u8 = 0x84;
}

/// What an Activate Payload completion code means, or None when it is a
/// generic one.
pub fn activate_text(code: u8) -> Option<&'static str> {
    Some(match code {
        activate_cc::ALREADY_ACTIVE => {
            "the SOL payload is already active in another session (use --force to take it over)"
        }
        activate_cc::DISABLED => "SOL is disabled on this BMC",
        activate_cc::LIMIT_REACHED => "the BMC's SOL activation limit is reached",
        activate_cc::NO_ENCRYPTION_ALLOWED => "the BMC cannot activate SOL with encryption",
        activate_cc::ENCRYPTION_REQUIRED => "the BMC requires SOL encryption",
        _ => return None,
    })
}

/// Activate Payload's request data: SOL instance 1, with the session's
/// encryption and authentication, serial alerts deferred while active.
pub fn activate_request(encrypt: bool, authenticate: bool) -> Vec<u8> {
    let mut aux = 0x08u8; // serial alerts deferred
    if encrypt {
        aux |= 0x80;
    }
    if authenticate {
        aux |= 0x40;
    }
    vec![PAYLOAD_SOL, INSTANCE, aux, 0, 0, 0]
}

/// Deactivate Payload's request data for SOL instance 1.
pub fn deactivate_request() -> Vec<u8> {
    vec![PAYLOAD_SOL, INSTANCE, 0, 0, 0, 0]
}

/// Activate Payload's response data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activated {
    /// Largest SOL payload the BMC accepts from us.
    pub inbound_max: u16,
    /// Largest SOL payload the BMC sends.
    pub outbound_max: u16,
    /// The UDP port SOL packets use (the session's port on every BMC we
    /// know of).
    pub port: u16,
}

impl Activated {
    pub fn encode(&self) -> Vec<u8> {
        let mut d = vec![0, 0, 0, 0];
        d.extend_from_slice(&self.inbound_max.to_le_bytes());
        d.extend_from_slice(&self.outbound_max.to_le_bytes());
        d.extend_from_slice(&self.port.to_le_bytes());
        d.extend_from_slice(&0xffffu16.to_le_bytes()); // no VLAN
        d
    }

    pub fn decode(d: &[u8]) -> Result<Activated, IpmiError> {
        if d.len() < 10 {
            return Err(IpmiError::Malformed("Activate Payload response length"));
        }
        let le = |i: usize| u16::from_le_bytes([d[i], d[i + 1]]);
        Ok(Activated {
            inbound_max: le(4),
            outbound_max: le(6),
            port: le(8),
        })
    }
}

/// Operation bits a console sets (§15.9, byte 4 console to BMC).
pub mod op {
    pub const NACK: u8 = 0x40;
    pub const RING_WOR: u8 = 0x20;
    pub const BREAK: u8 = 0x10;
    pub const CTS_PAUSE: u8 = 0x08;
    pub const DROP_DCD_DSR: u8 = 0x04;
    pub const FLUSH_INBOUND: u8 = 0x02;
    pub const FLUSH_OUTBOUND: u8 = 0x01;
}

/// Status bits a BMC sets (§15.9, byte 4 BMC to console).
pub mod status {
    pub const NACK: u8 = 0x40;
    pub const TRANSFER_UNAVAILABLE: u8 = 0x20;
    pub const DEACTIVATING: u8 = 0x10;
    pub const OVERRUN: u8 = 0x08;
    pub const BREAK_DETECTED: u8 = 0x04;
}

/// One SOL payload, either way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packet {
    /// 1–15, or 0 for a packet that only acknowledges.
    pub seq: u8,
    /// The sequence number acknowledged (0: none).
    pub ack_seq: u8,
    /// Characters of the acknowledged packet that were accepted.
    pub accepted: u8,
    /// Operation (console) or status (BMC) bits.
    pub flags: u8,
    pub data: Vec<u8>,
}

impl Packet {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.data.len());
        out.extend_from_slice(&[
            self.seq & 0x0f,
            self.ack_seq & 0x0f,
            self.accepted,
            self.flags,
        ]);
        out.extend_from_slice(&self.data);
        out
    }

    pub fn decode(p: &[u8]) -> Result<Packet, IpmiError> {
        if p.len() < 4 {
            return Err(IpmiError::Malformed("SOL packet header"));
        }
        Ok(Packet {
            seq: p[0] & 0x0f,
            ack_seq: p[1] & 0x0f,
            accepted: p[2],
            flags: p[3],
            data: p[4..].to_vec(),
        })
    }

    /// An acknowledgement of `of`, all its characters accepted.
    pub fn ack(of: &Packet) -> Packet {
        Packet {
            ack_seq: of.seq,
            accepted: of.data.len().min(255) as u8,
            ..Packet::default()
        }
    }
}

/// The next packet sequence number after `seq` (1–15, wrapping past 0).
pub fn next_seq(seq: u8) -> u8 {
    if seq >= 15 { 1 } else { seq + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_sequence_numbers_skip_zero() {
        let p = Packet {
            seq: 15,
            ack_seq: 3,
            accepted: 7,
            flags: op::BREAK,
            data: b"login: ".to_vec(),
        };
        assert_eq!(Packet::decode(&p.encode()).unwrap(), p);
        assert_eq!(next_seq(15), 1);
        assert_eq!(next_seq(0), 1);
        assert_eq!(next_seq(7), 8);
        assert_eq!(Packet::ack(&p).accepted, 7);
        assert!(Packet::decode(&[1, 2]).is_err());
    }

    #[test]
    fn activate_response_layout_is_ipmitools() {
        // ipmitool's activate_payload_rsp: 4 aux bytes, then inbound,
        // outbound, port and VLAN, each least significant byte first.
        let a = Activated {
            inbound_max: 0x00ff,
            outbound_max: 0x0100,
            port: 623,
        };
        let d = a.encode();
        assert_eq!(d.len(), 12);
        assert_eq!(&d[4..10], &[0xff, 0x00, 0x00, 0x01, 0x6f, 0x02]);
        assert_eq!(Activated::decode(&d).unwrap(), a);
        assert_eq!(activate_request(true, true)[2], 0xc8);
    }
}
