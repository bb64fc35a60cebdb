//! IPMI v2.0 RMCP+ ("lanplus") wire codec, shared by the conductor's
//! `ipmi` driver (the console side) and `xcat3-sim` (the BMC side).
//!
//! Pure: bytes in, bytes out, no IO and no clock. The session flow
//! (Open Session, RAKP 1–4, Set Session Privilege, commands, Close
//! Session) lives with each side; this module only knows the messages and
//! the cryptography.
//!
//! - [`wire`]: RMCP/ASF, v1.5 and v2.0 session framing, LAN messages;
//! - [`rakp`]: Open Session and RAKP 1–4, and the codes computed over them;
//! - [`crypto`]: cipher suites (1, 2, 3, 17), HMAC, session keys, AES-CBC;
//! - [`cmd`]: command numbers, completion codes, chassis and boot flags;
//! - [`fru`], [`sdr`], [`sel`]: FRU inventory, sensor records and readings,
//!   event log entries;
//! - [`sol`]: Serial over LAN: payload activation and SOL packets.

pub mod cmd;
pub mod crypto;
pub mod fru;
pub mod rakp;
pub mod sdr;
pub mod sel;
pub mod sol;
pub mod wire;

/// A datagram we cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpmiError {
    #[error("malformed IPMI packet: {0}")]
    Malformed(&'static str),
    #[error("packet failed its integrity check")]
    Integrity,
}

/// Fills `buf` from the OS's random source (session ids, RAKP randoms, IVs).
pub fn random_bytes(buf: &mut [u8]) {
    // The OS source does not fail on Linux after boot; a failure here
    // would mean predictable keys, so it is not papered over.
    getrandom::fill(buf).expect("the OS random number source failed");
}

/// A random non-zero session id (zero means "no session").
pub fn random_session_id() -> u32 {
    loop {
        let mut b = [0u8; 4];
        random_bytes(&mut b);
        let id = u32::from_le_bytes(b);
        if id != 0 {
            return id;
        }
    }
}
