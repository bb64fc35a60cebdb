//! Session establishment: Open Session and RAKP messages 1–4 (§13.17–13.23),
//! and the HMAC inputs both sides compute from them.
//!
//! Naming follows ipmitool: the console's session id and random number
//! are `console_sid`/`rm`, the BMC's are `bmc_sid`/`rc`.

use super::IpmiError;
use super::crypto::{AuthAlg, CipherSuite, auth_hmac, rakp4_icv_len};

/// RMCP+ status codes used here (§13.24).
pub mod status {
    pub const OK: u8 = 0x00;
    pub const NO_RESOURCES: u8 = 0x01;
    pub const INVALID_SESSION_ID: u8 = 0x02;
    pub const INVALID_ROLE: u8 = 0x09;
    pub const UNAUTHORIZED_ROLE: u8 = 0x0a;
    pub const UNAUTHORIZED_NAME: u8 = 0x0d;
    pub const INVALID_INTEGRITY_VALUE: u8 = 0x0f;
    pub const NO_CIPHER_SUITE_MATCH: u8 = 0x11;

    /// What the code means, for error messages.
    pub fn text(code: u8) -> &'static str {
        match code {
            0x00 => "no errors",
            0x01 => "insufficient resources to create a session",
            0x02 => "invalid session id",
            0x03 => "invalid payload type",
            0x04 => "invalid authentication algorithm",
            0x05 => "invalid integrity algorithm",
            0x06 => "no matching authentication payload",
            0x07 => "no matching integrity payload",
            0x08 => "inactive session id",
            0x09 => "invalid role",
            0x0a => "unauthorized role or privilege level requested",
            0x0b => "insufficient resources to create a session at the requested role",
            0x0c => "invalid name length",
            0x0d => "unauthorized name (unknown user)",
            0x0e => "unauthorized GUID",
            0x0f => "invalid integrity check value (wrong password?)",
            0x10 => "invalid confidentiality algorithm",
            0x11 => "no cipher suite match with proposed security algorithms",
            0x12 => "illegal or unrecognized parameter",
            _ => "unknown RMCP+ status",
        }
    }
}

/// Name-only user lookup bit of the RAKP 1 role byte (ipmitool sets it).
pub const NAME_ONLY_LOOKUP: u8 = 0x10;
/// Longest IPMI v2.0 user name.
pub const MAX_USERNAME: usize = 16;

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn need(b: &[u8], n: usize, what: &'static str) -> Result<(), IpmiError> {
    if b.len() < n {
        Err(IpmiError::Malformed(what))
    } else {
        Ok(())
    }
}

/// Three 8-byte algorithm records: payload type 0/1/2, length 8, algorithm.
fn algorithm_records((auth, integrity, conf): (u8, u8, u8)) -> [u8; 24] {
    let mut r = [0u8; 24];
    for (i, alg) in [auth, integrity, conf].into_iter().enumerate() {
        r[i * 8] = i as u8;
        r[i * 8 + 3] = 8;
        r[i * 8 + 4] = alg;
    }
    r
}

fn suite_algorithms(suite: CipherSuite) -> (u8, u8, u8) {
    (suite.auth as u8, suite.integrity as u8, suite.conf as u8)
}

/// The algorithms named in 24 bytes of payload records.
fn parse_algorithms(r: &[u8]) -> (u8, u8, u8) {
    (r[4] & 0x3f, r[12] & 0x3f, r[20] & 0x3f)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionRequest {
    pub tag: u8,
    /// 0: the highest the proposed algorithms allow.
    pub max_privilege: u8,
    pub console_sid: u32,
    /// Raw algorithm numbers (auth, integrity, confidentiality).
    pub algorithms: (u8, u8, u8),
}

impl OpenSessionRequest {
    pub fn new(tag: u8, console_sid: u32, suite: CipherSuite) -> Self {
        OpenSessionRequest {
            tag,
            max_privilege: 0,
            console_sid,
            algorithms: suite_algorithms(suite),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![self.tag, self.max_privilege, 0, 0];
        m.extend_from_slice(&self.console_sid.to_le_bytes());
        m.extend_from_slice(&algorithm_records(self.algorithms));
        m
    }

    pub fn decode(b: &[u8]) -> Result<Self, IpmiError> {
        need(b, 32, "Open Session Request")?;
        Ok(OpenSessionRequest {
            tag: b[0],
            max_privilege: b[1] & 0x0f,
            console_sid: le32(&b[4..8]),
            algorithms: parse_algorithms(&b[8..32]),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    pub tag: u8,
    pub status: u8,
    pub max_privilege: u8,
    pub console_sid: u32,
    pub bmc_sid: u32,
    /// The suite the BMC accepted (None when `status` is an error).
    pub suite: Option<CipherSuite>,
}

impl OpenSessionResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![self.tag, self.status, self.max_privilege, 0];
        m.extend_from_slice(&self.console_sid.to_le_bytes());
        if let (status::OK, Some(suite)) = (self.status, self.suite) {
            m.extend_from_slice(&self.bmc_sid.to_le_bytes());
            m.extend_from_slice(&algorithm_records(suite_algorithms(suite)));
        }
        m
    }

    pub fn decode(b: &[u8]) -> Result<Self, IpmiError> {
        need(b, 2, "Open Session Response")?;
        if b[1] != status::OK {
            return Ok(OpenSessionResponse {
                tag: b[0],
                status: b[1],
                max_privilege: 0,
                console_sid: if b.len() >= 8 { le32(&b[4..8]) } else { 0 },
                bmc_sid: 0,
                suite: None,
            });
        }
        need(b, 36, "Open Session Response")?;
        let (a, i, c) = parse_algorithms(&b[12..36]);
        Ok(OpenSessionResponse {
            tag: b[0],
            status: b[1],
            max_privilege: b[2],
            console_sid: le32(&b[4..8]),
            bmc_sid: le32(&b[8..12]),
            suite: Some(
                CipherSuite::from_algorithms(a, i, c).ok_or(IpmiError::Malformed(
                    "BMC chose algorithms we did not offer",
                ))?,
            ),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp1 {
    pub tag: u8,
    pub bmc_sid: u32,
    pub rm: [u8; 16],
    /// Requested privilege (low nibble) and the name-only lookup bit.
    pub role: u8,
    pub username: Vec<u8>,
}

impl Rakp1 {
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![self.tag, 0, 0, 0];
        m.extend_from_slice(&self.bmc_sid.to_le_bytes());
        m.extend_from_slice(&self.rm);
        m.extend_from_slice(&[self.role, 0, 0, self.username.len() as u8]);
        m.extend_from_slice(&self.username);
        m
    }

    pub fn decode(b: &[u8]) -> Result<Self, IpmiError> {
        need(b, 28, "RAKP 1")?;
        let len = b[27] as usize;
        if len > MAX_USERNAME {
            return Err(IpmiError::Malformed("RAKP 1 user name length"));
        }
        need(b, 28 + len, "RAKP 1 user name")?;
        Ok(Rakp1 {
            tag: b[0],
            bmc_sid: le32(&b[4..8]),
            rm: b[8..24].try_into().expect("16 bytes"),
            role: b[24],
            username: b[28..28 + len].to_vec(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp2 {
    pub tag: u8,
    pub status: u8,
    pub console_sid: u32,
    pub rc: [u8; 16],
    pub guid: [u8; 16],
    /// HMAC(Kuid, [`rakp2_input`]).
    pub auth_code: Vec<u8>,
}

impl Rakp2 {
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![self.tag, self.status, 0, 0];
        m.extend_from_slice(&self.console_sid.to_le_bytes());
        if self.status == status::OK {
            m.extend_from_slice(&self.rc);
            m.extend_from_slice(&self.guid);
            m.extend_from_slice(&self.auth_code);
        }
        m
    }

    pub fn decode(b: &[u8]) -> Result<Self, IpmiError> {
        need(b, 2, "RAKP 2")?;
        if b[1] != status::OK {
            return Ok(Rakp2 {
                tag: b[0],
                status: b[1],
                console_sid: if b.len() >= 8 { le32(&b[4..8]) } else { 0 },
                rc: [0; 16],
                guid: [0; 16],
                auth_code: Vec::new(),
            });
        }
        need(b, 40, "RAKP 2")?;
        Ok(Rakp2 {
            tag: b[0],
            status: b[1],
            console_sid: le32(&b[4..8]),
            rc: b[8..24].try_into().expect("16 bytes"),
            guid: b[24..40].try_into().expect("16 bytes"),
            auth_code: b[40..].to_vec(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp3 {
    pub tag: u8,
    pub status: u8,
    pub bmc_sid: u32,
    /// HMAC(Kuid, [`rakp3_input`]).
    pub auth_code: Vec<u8>,
}

impl Rakp3 {
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![self.tag, self.status, 0, 0];
        m.extend_from_slice(&self.bmc_sid.to_le_bytes());
        m.extend_from_slice(&self.auth_code);
        m
    }

    pub fn decode(b: &[u8]) -> Result<Self, IpmiError> {
        need(b, 8, "RAKP 3")?;
        Ok(Rakp3 {
            tag: b[0],
            status: b[1],
            bmc_sid: le32(&b[4..8]),
            auth_code: b[8..].to_vec(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp4 {
    pub tag: u8,
    pub status: u8,
    pub console_sid: u32,
    /// HMAC(SIK, [`rakp4_input`]) truncated.
    pub icv: Vec<u8>,
}

impl Rakp4 {
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![self.tag, self.status, 0, 0];
        m.extend_from_slice(&self.console_sid.to_le_bytes());
        m.extend_from_slice(&self.icv);
        m
    }

    pub fn decode(b: &[u8]) -> Result<Self, IpmiError> {
        need(b, 2, "RAKP 4")?;
        Ok(Rakp4 {
            tag: b[0],
            status: b[1],
            console_sid: if b.len() >= 8 { le32(&b[4..8]) } else { 0 },
            icv: b.get(8..).unwrap_or_default().to_vec(),
        })
    }
}

/// What both sides know once RAKP 1 and 2 have crossed; every code of the
/// exchange is computed from it.
#[derive(Clone)]
pub struct Exchange {
    pub suite: CipherSuite,
    pub console_sid: u32,
    pub bmc_sid: u32,
    pub rm: [u8; 16],
    pub rc: [u8; 16],
    pub guid: [u8; 16],
    /// The RAKP 1 role byte as sent (privilege and lookup bit).
    pub role: u8,
    pub username: Vec<u8>,
}

impl Exchange {
    fn alg(&self) -> AuthAlg {
        self.suite.auth
    }

    /// RAKP 2 key exchange code: HMAC(Kuid, SIDm SIDc Rm Rc GUIDc ROLEm ULENm UNAMEm).
    pub fn rakp2_code(&self, kuid: &[u8]) -> Vec<u8> {
        auth_hmac(
            self.alg(),
            kuid,
            &[
                &self.console_sid.to_le_bytes(),
                &self.bmc_sid.to_le_bytes(),
                &self.rm,
                &self.rc,
                &self.guid,
                &[self.role, self.username.len() as u8],
                &self.username,
            ],
        )
    }

    /// RAKP 3 key exchange code: HMAC(Kuid, Rc SIDm ROLEm ULENm UNAMEm).
    pub fn rakp3_code(&self, kuid: &[u8]) -> Vec<u8> {
        auth_hmac(
            self.alg(),
            kuid,
            &[
                &self.rc,
                &self.console_sid.to_le_bytes(),
                &[self.role, self.username.len() as u8],
                &self.username,
            ],
        )
    }

    /// Session integrity key: HMAC(Kg, Rm Rc ROLEm ULENm UNAMEm); Kg is
    /// the BMC key, or Kuid when the BMC has none (the usual case).
    pub fn sik(&self, kg: &[u8]) -> Vec<u8> {
        auth_hmac(
            self.alg(),
            kg,
            &[
                &self.rm,
                &self.rc,
                &[self.role, self.username.len() as u8],
                &self.username,
            ],
        )
    }

    /// RAKP 4 integrity check value: HMAC(SIK, Rm SIDc GUIDc), truncated.
    pub fn rakp4_icv(&self, sik: &[u8]) -> Vec<u8> {
        let mut v = auth_hmac(
            self.alg(),
            sik,
            &[&self.rm, &self.bmc_sid.to_le_bytes(), &self.guid],
        );
        v.truncate(rakp4_icv_len(self.alg()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let suite = CipherSuite::from_id(3).unwrap();
        let o = OpenSessionRequest::new(1, 0xa0a1a2a3, suite);
        assert_eq!(o.encode().len(), 32);
        assert_eq!(OpenSessionRequest::decode(&o.encode()).unwrap(), o);
        let r = OpenSessionResponse {
            tag: 1,
            status: 0,
            max_privilege: 4,
            console_sid: 5,
            bmc_sid: 6,
            suite: Some(suite),
        };
        assert_eq!(OpenSessionResponse::decode(&r.encode()).unwrap(), r);
        let r1 = Rakp1 {
            tag: 2,
            bmc_sid: 6,
            rm: [3; 16],
            role: 0x14,
            username: b"admin".to_vec(),
        };
        assert_eq!(r1.encode().len(), 33);
        assert_eq!(Rakp1::decode(&r1.encode()).unwrap(), r1);
        let r2 = Rakp2 {
            tag: 2,
            status: 0,
            console_sid: 5,
            rc: [4; 16],
            guid: [5; 16],
            auth_code: vec![1; 20],
        };
        assert_eq!(Rakp2::decode(&r2.encode()).unwrap(), r2);
        let refused = Rakp2 {
            status: status::UNAUTHORIZED_NAME,
            auth_code: vec![],
            rc: [0; 16],
            guid: [0; 16],
            ..r2
        };
        assert_eq!(Rakp2::decode(&refused.encode()).unwrap(), refused);
    }

    /// Both sides derive the same codes; a different password does not.
    #[test]
    fn codes_depend_on_the_password() {
        for id in [3, 17] {
            let x = Exchange {
                suite: CipherSuite::from_id(id).unwrap(),
                console_sid: 1,
                bmc_sid: 2,
                rm: [1; 16],
                rc: [2; 16],
                guid: [3; 16],
                role: 0x14,
                username: b"admin".to_vec(),
            };
            assert_eq!(x.rakp2_code(b"secret"), x.rakp2_code(b"secret"));
            assert_ne!(x.rakp2_code(b"secret"), x.rakp2_code(b"wrong"));
            assert_ne!(x.rakp2_code(b"secret"), x.rakp3_code(b"secret"));
            let sik = x.sik(b"secret");
            assert_eq!(sik.len(), if id == 3 { 20 } else { 32 });
            assert_eq!(x.rakp4_icv(&sik).len(), if id == 3 { 12 } else { 16 });
        }
    }
}
