//! Framing: RMCP, ASF presence ping, the IPMI v1.5 and v2.0 (RMCP+)
//! session wrappers, and IPMI LAN messages inside them.
//!
//! ```text
//! RMCP   06 00 ff 07
//! v2.0   06 | payload type (bit 7 encrypted, bit 6 authenticated)
//!        | session id (LE32) | session seq (LE32) | payload length (LE16)
//!        | payload | [integrity pad ff… | pad length | 07 | AuthCode]
//! v1.5   00 | session seq (LE32) | session id (LE32) | length | message
//! LAN    rsSA netFn/LUN chk1 | rqSA rqSeq/LUN cmd [cc] data… chk2
//! ```

use super::IpmiError;
use super::crypto::SessionKeys;

const RMCP_VERSION: u8 = 0x06;
const RMCP_NO_ACK: u8 = 0xff;
const CLASS_ASF: u8 = 0x06;
const CLASS_IPMI: u8 = 0x07;
const ASF_IANA: [u8; 4] = [0x00, 0x00, 0x11, 0xbe];
const ASF_PING: u8 = 0x80;
const ASF_PONG: u8 = 0x40;
const AUTH_NONE: u8 = 0x00;
const AUTH_RMCP_PLUS: u8 = 0x06;
const NEXT_HEADER: u8 = 0x07;

/// The slave address of the BMC and the software id we use as requester.
pub const BMC_SA: u8 = 0x20;
pub const CONSOLE_SWID: u8 = 0x81;

/// RMCP+ payload types (§13.27.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadType {
    Ipmi = 0x00,
    Sol = 0x01,
    OpenSessionRequest = 0x10,
    OpenSessionResponse = 0x11,
    Rakp1 = 0x12,
    Rakp2 = 0x13,
    Rakp3 = 0x14,
    Rakp4 = 0x15,
}

impl PayloadType {
    fn from_u8(b: u8) -> Option<PayloadType> {
        Some(match b {
            0x00 => PayloadType::Ipmi,
            0x01 => PayloadType::Sol,
            0x10 => PayloadType::OpenSessionRequest,
            0x11 => PayloadType::OpenSessionResponse,
            0x12 => PayloadType::Rakp1,
            0x13 => PayloadType::Rakp2,
            0x14 => PayloadType::Rakp3,
            0x15 => PayloadType::Rakp4,
            _ => return None,
        })
    }
}

/// A datagram, classified. Session payloads are still sealed: call
/// [`V20Frame::open`] with the session's keys.
#[derive(Debug)]
pub enum Frame<'a> {
    AsfPing {
        tag: u8,
    },
    AsfPong {
        tag: u8,
    },
    /// IPMI v1.5 session, only used here without authentication (Get
    /// Channel Authentication Capabilities before RMCP+ starts).
    V15 {
        session_id: u32,
        message: &'a [u8],
    },
    V20(V20Frame<'a>),
}

#[derive(Debug)]
pub struct V20Frame<'a> {
    pub payload_type: PayloadType,
    pub encrypted: bool,
    pub authenticated: bool,
    pub session_id: u32,
    pub seq: u32,
    /// From the auth type byte to the end of the datagram.
    session: &'a [u8],
    payload_len: usize,
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Classifies a datagram; checks lengths, not authentication.
pub fn parse(buf: &[u8]) -> Result<Frame<'_>, IpmiError> {
    if buf.len() < 5 || buf[0] != RMCP_VERSION {
        return Err(IpmiError::Malformed("not an RMCP packet"));
    }
    match buf[3] {
        CLASS_ASF => {
            if buf.len() < 12 || buf[4..8] != ASF_IANA {
                return Err(IpmiError::Malformed("ASF message"));
            }
            match buf[8] {
                ASF_PING => Ok(Frame::AsfPing { tag: buf[9] }),
                ASF_PONG => Ok(Frame::AsfPong { tag: buf[9] }),
                _ => Err(IpmiError::Malformed("ASF message type")),
            }
        }
        CLASS_IPMI => {
            let s = &buf[4..];
            match s[0] {
                AUTH_NONE => {
                    if s.len() < 10 || s.len() < 10 + s[9] as usize {
                        return Err(IpmiError::Malformed("IPMI v1.5 session length"));
                    }
                    Ok(Frame::V15 {
                        session_id: le32(&s[5..9]),
                        message: &s[10..10 + s[9] as usize],
                    })
                }
                AUTH_RMCP_PLUS => {
                    if s.len() < 12 {
                        return Err(IpmiError::Malformed("RMCP+ session header"));
                    }
                    let pt = s[1];
                    let payload_type = PayloadType::from_u8(pt & 0x3f)
                        .ok_or(IpmiError::Malformed("RMCP+ payload type"))?;
                    let payload_len = u16::from_le_bytes([s[10], s[11]]) as usize;
                    if s.len() < 12 + payload_len {
                        return Err(IpmiError::Malformed("RMCP+ payload length"));
                    }
                    Ok(Frame::V20(V20Frame {
                        payload_type,
                        encrypted: pt & 0x80 != 0,
                        authenticated: pt & 0x40 != 0,
                        session_id: le32(&s[2..6]),
                        seq: le32(&s[6..10]),
                        session: s,
                        payload_len,
                    }))
                }
                _ => Err(IpmiError::Malformed("unsupported IPMI auth type")),
            }
        }
        _ => Err(IpmiError::Malformed("RMCP class")),
    }
}

impl V20Frame<'_> {
    /// The payload, after checking the AuthCode and decrypting with `keys`
    /// (None before the session is active: such packets must be plain).
    pub fn open(&self, keys: Option<&SessionKeys>) -> Result<Vec<u8>, IpmiError> {
        let payload = &self.session[12..12 + self.payload_len];
        let Some(keys) = keys else {
            if self.encrypted || self.authenticated {
                return Err(IpmiError::Malformed("sealed packet outside a session"));
            }
            return Ok(payload.to_vec());
        };
        let want_auth = keys.integrity_len() > 0;
        if self.authenticated != want_auth || self.encrypted != keys.encrypts() {
            return Err(IpmiError::Malformed("packet not sealed as negotiated"));
        }
        if want_auth {
            let code_len = keys.integrity_len();
            if self.session.len() < 12 + self.payload_len + 2 + code_len {
                return Err(IpmiError::Malformed("integrity trailer"));
            }
            let covered = self.session.len() - code_len;
            if self.session[covered - 1] != NEXT_HEADER {
                return Err(IpmiError::Malformed("next header"));
            }
            let code = keys.integrity_code(&self.session[..covered]);
            if !super::crypto::codes_equal(&code, &self.session[covered..]) {
                return Err(IpmiError::Integrity);
            }
        }
        keys.decrypt(payload)
    }
}

/// An RMCP+ packet: the payload is encrypted and authenticated as the
/// session's suite says (`keys` None: a pre-session packet, sent plain).
pub fn seal_v20(
    payload_type: PayloadType,
    session_id: u32,
    seq: u32,
    payload: &[u8],
    keys: Option<&SessionKeys>,
) -> Vec<u8> {
    let body = match keys {
        Some(k) if k.encrypts() => k.encrypt(payload),
        _ => payload.to_vec(),
    };
    let auth_len = keys.map_or(0, SessionKeys::integrity_len);
    let mut pt = payload_type as u8;
    if keys.is_some_and(SessionKeys::encrypts) {
        pt |= 0x80;
    }
    if auth_len > 0 {
        pt |= 0x40;
    }
    let mut out = Vec::with_capacity(4 + 12 + body.len() + 4 + 2 + auth_len);
    out.extend_from_slice(&[RMCP_VERSION, 0, RMCP_NO_ACK, CLASS_IPMI]);
    out.push(AUTH_RMCP_PLUS);
    out.push(pt);
    out.extend_from_slice(&session_id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(body.len() as u16).to_le_bytes());
    out.extend_from_slice(&body);
    if let Some(k) = keys.filter(|_| auth_len > 0) {
        // Pad so that auth type … next header is a whole number of DWORDs.
        let covered = 12 + body.len() + 2;
        let pad = (4 - covered % 4) % 4;
        out.extend(std::iter::repeat_n(0xff, pad));
        out.push(pad as u8);
        out.push(NEXT_HEADER);
        let code = k.integrity_code(&out[4..]);
        out.extend_from_slice(&code);
    }
    out
}

/// An IPMI v1.5 packet without authentication.
pub fn seal_v15(session_id: u32, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + message.len());
    out.extend_from_slice(&[RMCP_VERSION, 0, RMCP_NO_ACK, CLASS_IPMI, AUTH_NONE]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&session_id.to_le_bytes());
    out.push(message.len() as u8);
    out.extend_from_slice(message);
    out
}

pub fn asf_ping(tag: u8) -> Vec<u8> {
    let mut out = vec![RMCP_VERSION, 0, RMCP_NO_ACK, CLASS_ASF];
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[ASF_PING, tag, 0, 0]);
    out
}

/// The pong a BMC sends: IPMI supported, no ASF interactions.
pub fn asf_pong(tag: u8) -> Vec<u8> {
    let mut out = vec![RMCP_VERSION, 0, RMCP_NO_ACK, CLASS_ASF];
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[ASF_PONG, tag, 0, 0x10]);
    out.extend_from_slice(&ASF_IANA);
    out.extend_from_slice(&[0, 0, 0, 0, 0x81, 0, 0, 0, 0, 0, 0, 0]);
    out
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub netfn: u8,
    pub cmd: u8,
    /// 6-bit sequence number matching the response to the request.
    pub rq_seq: u8,
    pub data: Vec<u8>,
}

/// An IPMI response message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The request's netFn (the response carries netFn + 1).
    pub netfn: u8,
    pub cmd: u8,
    pub rq_seq: u8,
    /// Completion code: 0 is success.
    pub cc: u8,
    pub data: Vec<u8>,
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![BMC_SA, self.netfn << 2, 0];
        m[2] = checksum(&m[..2]);
        let start = m.len();
        m.extend_from_slice(&[CONSOLE_SWID, (self.rq_seq & 0x3f) << 2, self.cmd]);
        m.extend_from_slice(&self.data);
        m.push(checksum(&m[start..]));
        m
    }

    pub fn decode(m: &[u8]) -> Result<Request, IpmiError> {
        let (netfn, rq_seq, cmd, rest) = decode_common(m)?;
        Ok(Request {
            netfn,
            cmd,
            rq_seq,
            data: rest.to_vec(),
        })
    }
}

impl Response {
    /// The response to `req` with completion code `cc` and `data`.
    pub fn to(req: &Request, cc: u8, data: Vec<u8>) -> Response {
        Response {
            netfn: req.netfn,
            cmd: req.cmd,
            rq_seq: req.rq_seq,
            cc,
            data,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![CONSOLE_SWID, (self.netfn | 1) << 2, 0];
        m[2] = checksum(&m[..2]);
        let start = m.len();
        m.extend_from_slice(&[BMC_SA, (self.rq_seq & 0x3f) << 2, self.cmd, self.cc]);
        m.extend_from_slice(&self.data);
        m.push(checksum(&m[start..]));
        m
    }

    pub fn decode(m: &[u8]) -> Result<Response, IpmiError> {
        let (netfn, rq_seq, cmd, rest) = decode_common(m)?;
        if netfn & 1 == 0 {
            return Err(IpmiError::Malformed("response with a request netFn"));
        }
        let (&cc, data) = rest
            .split_first()
            .ok_or(IpmiError::Malformed("response without completion code"))?;
        Ok(Response {
            netfn: netfn & !1,
            cmd,
            rq_seq,
            cc,
            data: data.to_vec(),
        })
    }
}

/// netFn, rqSeq, cmd and the bytes between cmd and the last checksum.
fn decode_common(m: &[u8]) -> Result<(u8, u8, u8, &[u8]), IpmiError> {
    if m.len() < 7 {
        return Err(IpmiError::Malformed("IPMI message too short"));
    }
    if checksum(&m[..2]) != m[2] || checksum(&m[3..m.len() - 1]) != m[m.len() - 1] {
        return Err(IpmiError::Malformed("IPMI message checksum"));
    }
    Ok((m[1] >> 2, m[4] >> 2, m[5], &m[6..m.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CipherSuite;

    #[test]
    fn lan_messages_round_trip_with_checksums() {
        let req = Request {
            netfn: 0x00,
            cmd: 0x02,
            rq_seq: 5,
            data: vec![1],
        };
        let bytes = req.encode();
        // Chassis Control "power up" as ipmitool frames it.
        assert_eq!(bytes, [0x20, 0x00, 0xe0, 0x81, 0x14, 0x02, 0x01, 0x68]);
        assert_eq!(Request::decode(&bytes).unwrap(), req);
        let resp = Response::to(&req, 0, vec![]);
        assert_eq!(Response::decode(&resp.encode()).unwrap(), resp);
        let mut bad = bytes.clone();
        bad[6] = 2;
        assert!(Request::decode(&bad).is_err());
    }

    #[test]
    fn sealed_packets_open_only_with_the_right_keys() {
        for suite in [1, 2, 3, 17] {
            let suite = CipherSuite::from_id(suite).unwrap();
            let keys = SessionKeys::from_sik(suite, vec![9; 20]);
            let other = SessionKeys::from_sik(suite, vec![8; 20]);
            let pkt = seal_v20(PayloadType::Ipmi, 0x1234, 7, b"payload!", Some(&keys));
            let Frame::V20(f) = parse(&pkt).unwrap() else {
                panic!("not v2.0")
            };
            assert_eq!((f.session_id, f.seq), (0x1234, 7));
            assert_eq!(f.open(Some(&keys)).unwrap(), b"payload!");
            if keys.integrity_len() > 0 {
                assert!(f.open(Some(&other)).is_err(), "suite {}", suite.id);
                // Integrity covers whole DWORDs from the auth type byte.
                assert_eq!((pkt.len() - 4 - keys.integrity_len()) % 4, 0);
            }
        }
    }

    #[test]
    fn v15_and_asf_frames_parse() {
        let p = seal_v15(0, &[1, 2, 3, 4, 5, 6, 7]);
        assert!(matches!(parse(&p).unwrap(), Frame::V15 { message, .. } if message.len() == 7));
        assert!(matches!(
            parse(&asf_ping(9)).unwrap(),
            Frame::AsfPing { tag: 9 }
        ));
        assert!(matches!(
            parse(&asf_pong(9)).unwrap(),
            Frame::AsfPong { tag: 9 }
        ));
        assert!(parse(&[1, 2, 3]).is_err());
    }
}
