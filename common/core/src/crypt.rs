//! SHA-512 `crypt` (`$6$`, Ulrich Drepper's "Unix crypt using SHA-256 and
//! SHA-512"), for root passwords in answer files: every installer we write
//! for (subiquity, debian-installer, anaconda) takes this form.

use sha2::{Digest, Sha512};

/// The crypt alphabet (not RFC 4648 base64).
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DEFAULT_ROUNDS: u32 = 5000;
const MAX_SALT: usize = 16;

/// `password` as an installer wants it: values already in a crypt form
/// (`$1$`, `$5$`, `$6$`, `$y$`, `$2b$`) are kept, anything else is hashed
/// with SHA-512 and a random salt.
pub fn crypt_password(password: &str) -> String {
    if is_crypted(password) {
        return password.to_string();
    }
    sha512_crypt(password.as_bytes(), &random_salt(), DEFAULT_ROUNDS)
}

/// Whether `value` already is a crypt hash.
pub fn is_crypted(value: &str) -> bool {
    ["$1$", "$5$", "$6$", "$y$", "$2b$", "$2y$"]
        .iter()
        .any(|p| value.starts_with(p))
}

fn random_salt() -> String {
    let mut bytes = [0u8; MAX_SALT];
    getrandom::fill(&mut bytes).expect("the OS random source");
    bytes
        .iter()
        .map(|b| ALPHABET[(b & 0x3f) as usize] as char)
        .collect()
}

/// `$6$[rounds=N$]salt$hash`.
pub fn sha512_crypt(password: &[u8], salt: &str, rounds: u32) -> String {
    let salt = &salt.as_bytes()[..salt.len().min(MAX_SALT)];
    let rounds = rounds.clamp(1000, 999_999_999);
    let p = password;

    let b = Sha512::new()
        .chain_update(p)
        .chain_update(salt)
        .chain_update(p)
        .finalize();
    let mut a = Sha512::new().chain_update(p).chain_update(salt);
    let mut left = p.len();
    while left > 64 {
        a.update(b);
        left -= 64;
    }
    a.update(&b[..left]);
    let mut n = p.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(b);
        } else {
            a.update(p);
        }
        n >>= 1;
    }
    let a = a.finalize();

    let mut dp = Sha512::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let dp = dp.finalize();
    let p_seq: Vec<u8> = dp.iter().cycle().take(p.len()).copied().collect();

    let mut ds = Sha512::new();
    for _ in 0..16 + a[0] as usize {
        ds.update(salt);
    }
    let ds = ds.finalize();
    let s_seq = &ds[..salt.len()];

    let mut c = a;
    for i in 0..rounds {
        let mut h = Sha512::new();
        if i % 2 == 1 {
            h.update(&p_seq);
        } else {
            h.update(c);
        }
        if i % 3 != 0 {
            h.update(s_seq);
        }
        if i % 7 != 0 {
            h.update(&p_seq);
        }
        if i % 2 == 1 {
            h.update(c);
        } else {
            h.update(&p_seq);
        }
        c = h.finalize();
    }

    const ORDER: [(usize, usize, usize); 21] = [
        (0, 21, 42),
        (22, 43, 1),
        (44, 2, 23),
        (3, 24, 45),
        (25, 46, 4),
        (47, 5, 26),
        (6, 27, 48),
        (28, 49, 7),
        (50, 8, 29),
        (9, 30, 51),
        (31, 52, 10),
        (53, 11, 32),
        (12, 33, 54),
        (34, 55, 13),
        (56, 14, 35),
        (15, 36, 57),
        (37, 58, 16),
        (59, 17, 38),
        (18, 39, 60),
        (40, 61, 19),
        (62, 20, 41),
    ];
    let mut out = String::with_capacity(123);
    out.push_str("$6$");
    if rounds != DEFAULT_ROUNDS {
        out.push_str(&format!("rounds={rounds}$"));
    }
    out.push_str(std::str::from_utf8(salt).unwrap_or_default());
    out.push('$');
    let mut push = |b2: u8, b1: u8, b0: u8, n: usize| {
        let mut w = ((b2 as u32) << 16) | ((b1 as u32) << 8) | b0 as u32;
        for _ in 0..n {
            out.push(ALPHABET[(w & 0x3f) as usize] as char);
            w >>= 6;
        }
    };
    for (x, y, z) in ORDER {
        push(c[x], c[y], c[z], 4);
    }
    push(0, 0, c[63], 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vectors of the specification.
    #[test]
    fn specification_vectors() {
        assert_eq!(
            sha512_crypt(b"Hello world!", "saltstring", 5000),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        assert_eq!(
            sha512_crypt(b"Hello world!", "saltstringsaltstring", 10000),
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        );
        // From `openssl passwd -6 -salt xcat3salt` (a password over 64
        // bytes takes the other branch of the first loop).
        assert_eq!(
            sha512_crypt(
                b"a password longer than sixty-four bytes, to take the other branch of the loop!",
                "xcat3salt",
                5000
            ),
            "$6$xcat3salt$XH/tEAxxl4cnwpXOV9s4wmf0bvFe2Y0yr0WNWr7OByUs2STBMRVLqZTvxpJL.H9TAiGWhoPO/YJzmHaSXZ1hc."
        );
    }

    #[test]
    fn crypted_values_are_kept_and_others_hashed() {
        let kept = "$6$abc$def";
        assert_eq!(crypt_password(kept), kept);
        let h = crypt_password("cluster");
        assert!(h.starts_with("$6$") && h.len() == 3 + 16 + 1 + 86, "{h}");
        let salt = &h[3..19];
        assert_eq!(sha512_crypt(b"cluster", salt, 5000), h);
        assert_ne!(crypt_password("cluster"), h, "a new salt each time");
    }
}
