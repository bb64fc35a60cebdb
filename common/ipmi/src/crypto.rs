//! Cipher suites and the session keys of RMCP+ (IPMI v2.0 §13.28–13.29).
//!
//! A suite names three algorithms: authentication (RAKP HMAC), integrity
//! (the AuthCode trailer of every session packet) and confidentiality
//! (payload encryption). Suites 1, 2, 3 (SHA-1) and 17 (SHA-256) are
//! supported; suite 0 (no authentication at all) is refused by design.

use aes::Aes128;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::IpmiError;

/// RAKP key-exchange authentication algorithm (Open Session payload type 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthAlg {
    HmacSha1 = 0x01,
    HmacSha256 = 0x03,
}

/// Integrity algorithm (payload type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityAlg {
    None = 0x00,
    HmacSha1_96 = 0x01,
    HmacSha256_128 = 0x04,
}

/// Confidentiality algorithm (payload type 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfAlg {
    None = 0x00,
    AesCbc128 = 0x01,
}

/// One cipher suite: the three algorithms a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherSuite {
    pub id: u8,
    pub auth: AuthAlg,
    pub integrity: IntegrityAlg,
    pub conf: ConfAlg,
}

impl CipherSuite {
    /// Suites this codec speaks, most preferred first.
    pub const SUPPORTED: &'static [u8] = &[3, 17, 2, 1];

    pub fn from_id(id: u8) -> Option<CipherSuite> {
        let (auth, integrity, conf) = match id {
            1 => (AuthAlg::HmacSha1, IntegrityAlg::None, ConfAlg::None),
            2 => (AuthAlg::HmacSha1, IntegrityAlg::HmacSha1_96, ConfAlg::None),
            3 => (
                AuthAlg::HmacSha1,
                IntegrityAlg::HmacSha1_96,
                ConfAlg::AesCbc128,
            ),
            17 => (
                AuthAlg::HmacSha256,
                IntegrityAlg::HmacSha256_128,
                ConfAlg::AesCbc128,
            ),
            _ => return None,
        };
        Some(CipherSuite {
            id,
            auth,
            integrity,
            conf,
        })
    }

    /// The suite whose algorithms are these, if we speak it.
    pub fn from_algorithms(auth: u8, integrity: u8, conf: u8) -> Option<CipherSuite> {
        CipherSuite::SUPPORTED
            .iter()
            .filter_map(|&id| CipherSuite::from_id(id))
            .find(|s| {
                s.auth as u8 == auth && s.integrity as u8 == integrity && s.conf as u8 == conf
            })
    }
}

/// HMAC with the suite's authentication hash; full-length output.
pub fn auth_hmac(alg: AuthAlg, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        AuthAlg::HmacSha1 => hmac::<Hmac<Sha1>>(key, parts),
        AuthAlg::HmacSha256 => hmac::<Hmac<Sha256>>(key, parts),
    }
}

fn hmac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length; this cannot fail.
    let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// Length of the RAKP 4 integrity check value for `alg` (HMAC truncated).
pub fn rakp4_icv_len(alg: AuthAlg) -> usize {
    match alg {
        AuthAlg::HmacSha1 => 12,
        AuthAlg::HmacSha256 => 16,
    }
}

/// Constant-time comparison of two authentication codes.
pub fn codes_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The keys of an established session: SIK and the two derived keys
/// (K1 for integrity, K2 for confidentiality).
#[derive(Clone)]
pub struct SessionKeys {
    pub suite: CipherSuite,
    pub sik: Vec<u8>,
    k1: Vec<u8>,
    aes: Option<Aes128>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are secrets: never printed.
        f.debug_struct("SessionKeys")
            .field("suite", &self.suite.id)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Derives K1 = HMAC(SIK, 0x01 × 20) and K2 = HMAC(SIK, 0x02 × 20).
    /// The constants are 20 bytes for SHA-256 suites too (as ipmitool
    /// and BMCs compute them), not one hash length.
    pub fn from_sik(suite: CipherSuite, sik: Vec<u8>) -> SessionKeys {
        let k1 = auth_hmac(suite.auth, &sik, &[&[0x01; 20]]);
        let k2 = auth_hmac(suite.auth, &sik, &[&[0x02; 20]]);
        let aes = (suite.conf == ConfAlg::AesCbc128).then(|| {
            let key: [u8; 16] = k2[..16].try_into().expect("K2 is at least 16 bytes");
            Aes128::new(&Array::from(key))
        });
        SessionKeys {
            suite,
            sik,
            k1,
            aes,
        }
    }

    /// The AuthCode of a packet: HMAC(K1, data) truncated to the
    /// integrity algorithm's length; empty when the suite has none.
    pub fn integrity_code(&self, data: &[u8]) -> Vec<u8> {
        match self.suite.integrity {
            IntegrityAlg::None => Vec::new(),
            IntegrityAlg::HmacSha1_96 => {
                let mut c = hmac::<Hmac<Sha1>>(&self.k1, &[data]);
                c.truncate(12);
                c
            }
            IntegrityAlg::HmacSha256_128 => {
                let mut c = hmac::<Hmac<Sha256>>(&self.k1, &[data]);
                c.truncate(16);
                c
            }
        }
    }

    pub fn integrity_len(&self) -> usize {
        match self.suite.integrity {
            IntegrityAlg::None => 0,
            IntegrityAlg::HmacSha1_96 => 12,
            IntegrityAlg::HmacSha256_128 => 16,
        }
    }

    pub fn encrypts(&self) -> bool {
        self.aes.is_some()
    }

    /// AES-CBC-128 payload: a fresh IV, then the ciphertext of
    /// `plain ‖ 1 2 3 … n ‖ n` padded to whole blocks (§13.29).
    pub fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        let Some(aes) = &self.aes else {
            return plain.to_vec();
        };
        let mut iv = [0u8; 16];
        super::random_bytes(&mut iv);
        let pad = (16 - (plain.len() + 1) % 16) % 16;
        let mut data = Vec::with_capacity(16 + plain.len() + pad + 1);
        data.extend_from_slice(&iv);
        data.extend_from_slice(plain);
        data.extend((1..=pad).map(|i| i as u8));
        data.push(pad as u8);
        let mut prev = iv;
        for chunk in data[16..].chunks_mut(16) {
            for (b, p) in chunk.iter_mut().zip(prev) {
                *b ^= p;
            }
            let mut block = Array::from(<[u8; 16]>::try_from(&*chunk).expect("whole block"));
            aes.encrypt_block(&mut block);
            chunk.copy_from_slice(&block);
            prev.copy_from_slice(&block);
        }
        data
    }

    /// Reverses [`encrypt`](Self::encrypt); checks the pad bytes.
    pub fn decrypt(&self, payload: &[u8]) -> Result<Vec<u8>, IpmiError> {
        let Some(aes) = &self.aes else {
            return Ok(payload.to_vec());
        };
        if payload.len() < 32 || !payload.len().is_multiple_of(16) {
            return Err(IpmiError::Malformed("encrypted payload length"));
        }
        let mut prev: [u8; 16] = payload[..16].try_into().expect("16 bytes");
        let mut out = Vec::with_capacity(payload.len() - 16);
        for chunk in payload[16..].chunks(16) {
            let mut block = Array::from(<[u8; 16]>::try_from(chunk).expect("whole block"));
            aes.decrypt_block(&mut block);
            for (b, p) in block.iter_mut().zip(prev) {
                *b ^= p;
            }
            out.extend_from_slice(&block);
            prev.copy_from_slice(chunk);
        }
        let pad = *out.last().expect("non-empty") as usize;
        if pad >= 16 || pad + 1 > out.len() {
            return Err(IpmiError::Malformed("confidentiality pad"));
        }
        let body = out.len() - pad - 1;
        if out[body..body + pad]
            .iter()
            .enumerate()
            .any(|(i, &b)| b != (i + 1) as u8)
        {
            return Err(IpmiError::Malformed("confidentiality pad"));
        }
        out.truncate(body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_map_to_algorithms() {
        let s3 = CipherSuite::from_id(3).unwrap();
        assert_eq!(
            (s3.auth, s3.integrity, s3.conf),
            (
                AuthAlg::HmacSha1,
                IntegrityAlg::HmacSha1_96,
                ConfAlg::AesCbc128
            )
        );
        assert_eq!(CipherSuite::from_algorithms(3, 4, 1).unwrap().id, 17);
        assert!(CipherSuite::from_id(0).is_none(), "suite 0 is refused");
    }

    /// RFC 2202 test case 2 and RFC 4231 test case 2 ("Jefe").
    #[test]
    fn hmacs_match_the_rfc_vectors() {
        let hex = |v: Vec<u8>| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let data: &[u8] = b"what do ya want for nothing?";
        assert_eq!(
            hex(auth_hmac(
                AuthAlg::HmacSha1,
                b"Jefe",
                &[&data[..10], &data[10..]]
            )),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(auth_hmac(AuthAlg::HmacSha256, b"Jefe", &[data])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn aes_cbc_round_trips_every_length() {
        let keys = SessionKeys::from_sik(CipherSuite::from_id(3).unwrap(), vec![7; 20]);
        for len in 0..50 {
            let plain: Vec<u8> = (0..len as u8).collect();
            let enc = keys.encrypt(&plain);
            assert_eq!(enc.len() % 16, 0);
            assert!(enc.len() >= 32);
            assert_eq!(keys.decrypt(&enc).unwrap(), plain, "length {len}");
        }
        let mut enc = keys.encrypt(b"hello");
        let last = enc.len() - 1;
        enc[last] ^= 0x55;
        assert!(keys.decrypt(&enc).is_err(), "a damaged pad is refused");
    }
}
