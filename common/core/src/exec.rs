//! Running commands on nodes' operating systems over SSH (`xcat3 exec`,
//! `xcat3 copy`): the limits a request is held to, and each node's result
//! document. The owning conductor of each node opens the SSH session
//! (the work spreads with the ring); the API and the CLI only see these
//! types.

use serde::{Deserialize, Serialize};

/// Sessions one conductor holds at once for one request, unless told.
pub const DEFAULT_FANOUT: u32 = 128;
/// The most sessions one conductor holds at once for one request.
pub const MAX_FANOUT: u32 = 2048;
/// Seconds a node's command may run, unless told.
pub const DEFAULT_TIMEOUT_S: u32 = 60;
/// The longest a node's command may run.
pub const MAX_TIMEOUT_S: u32 = 24 * 3600;
/// Bytes of a command line.
pub const MAX_COMMAND: usize = 64 * 1024;
/// Output kept per node in the reply; the rest is counted, not kept.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// Output kept per node in the request history.
pub const HISTORY_OUTPUT: usize = 1024;
/// Bytes of all files of one `copy` together.
pub const MAX_COPY_BYTES: usize = 32 * 1024 * 1024;
/// Seconds connecting and logging in may take, on top of a command's own
/// timeout.
pub const LOGIN_TIMEOUT_S: u64 = 20;
/// The user commands run as, unless told.
pub const DEFAULT_USER: &str = "root";

/// One node's run: what the CLI prints and the history keeps. A command
/// that ran and exited 0 is a success; one that exited otherwise (or was
/// killed by a signal) is the node's `command_failed` error with this
/// same document as its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outcome {
    /// The exit status; none when a signal ended the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u32>,
    /// The signal that ended it (`KILL`, `SEGV`), as SSH names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Standard output and standard error as they arrived, interleaved
    /// (as a terminal would show them), lossily decoded as UTF-8.
    pub output: String,
    /// Bytes of output that were not kept ([`OUTPUT_LIMIT`], or the
    /// history's [`HISTORY_OUTPUT`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.exit_status == Some(0)
    }

    /// What ended it, in words: `exit status 3`, `killed by signal KILL`.
    pub fn ending(&self) -> String {
        match (&self.exit_status, &self.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "ended without an exit status".into(),
        }
    }

    /// This outcome with at most `limit` bytes of output (cut at a
    /// character boundary; the rest counted in `dropped_bytes`).
    pub fn truncated(&self, limit: usize) -> Outcome {
        let mut out = self.clone();
        if out.output.len() > limit {
            let mut cut = limit;
            while !out.output.is_char_boundary(cut) {
                cut -= 1;
            }
            out.dropped_bytes += (out.output.len() - cut) as u64;
            out.output.truncate(cut);
        }
        out
    }

    /// The document as the node's result text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("an outcome serializes")
    }

    /// A result text read back, if it is an outcome document.
    pub fn from_text(text: &str) -> Option<Outcome> {
        if !text.starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }
}

/// Collects a session's output up to [`OUTPUT_LIMIT`], counting the rest.
#[derive(Debug, Default)]
pub struct OutputBuffer {
    kept: Vec<u8>,
    dropped: u64,
}

impl OutputBuffer {
    pub fn push(&mut self, data: &[u8]) {
        let room = OUTPUT_LIMIT.saturating_sub(self.kept.len());
        let take = room.min(data.len());
        self.kept.extend_from_slice(&data[..take]);
        self.dropped += (data.len() - take) as u64;
    }

    /// The outcome of a session that ended this way.
    pub fn finish(self, exit_status: Option<u32>, signal: Option<String>) -> Outcome {
        Outcome {
            exit_status,
            signal,
            output: String::from_utf8_lossy(&self.kept).into_owned(),
            dropped_bytes: self.dropped,
        }
    }
}

/// One file `copy` sends: its name in the destination directory, its
/// mode and its bytes (base64 on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyFile {
    pub name: String,
    /// Permission bits (`0o644`).
    pub mode: u32,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

impl CopyFile {
    /// Checks a file as a client sent it: a plain name (no `/`, not `.`
    /// or `..`, no control characters: it goes into the SCP header line)
    /// and permission bits only.
    pub fn check(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty() || n == "." || n == ".." || n.len() > 255 {
            return Err(format!("files: `{n}` is not a file name"));
        }
        if n.contains('/') || n.chars().any(char::is_control) {
            return Err(format!(
                "files: `{}` must be a plain file name (no `/` or control characters)",
                n.escape_debug()
            ));
        }
        if self.mode > 0o7777 {
            return Err(format!(
                "files: {n}: mode {:o} is not permission bits",
                self.mode
            ));
        }
        Ok(())
    }
}

/// Checks a destination path: absolute, no control characters (it is an
/// argument of the remote `scp -t`, quoted by the conductor).
pub fn check_dest(dest: &str) -> Result<(), String> {
    if !dest.starts_with('/') {
        return Err(format!("dest: `{dest}` must be an absolute path"));
    }
    if dest.len() > 4096 || dest.chars().any(char::is_control) {
        return Err(
            "dest: must be at most 4096 characters, none of them control characters".into(),
        );
    }
    Ok(())
}

/// Checks a user name as `useradd` would take it.
pub fn check_user(user: &str) -> Result<(), String> {
    let ok = !user.is_empty()
        && user.len() <= 32
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !user.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "user: `{}` is not a user name",
            user.escape_debug()
        ))
    }
}

/// `s` quoted for a POSIX shell: one word, whatever it holds.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_kept_up_to_the_limit_and_the_rest_counted() {
        let mut b = OutputBuffer::default();
        b.push(&vec![b'a'; OUTPUT_LIMIT - 1]);
        b.push(b"bcd");
        let o = b.finish(Some(0), None);
        assert_eq!(o.output.len(), OUTPUT_LIMIT);
        assert!(o.output.ends_with('b'));
        assert_eq!(o.dropped_bytes, 2);
        assert!(o.succeeded());
    }

    #[test]
    fn the_history_copy_is_cut_at_a_character_boundary() {
        let o = Outcome {
            exit_status: Some(3),
            signal: None,
            output: "é".repeat(600),
            dropped_bytes: 5,
        };
        let t = o.truncated(HISTORY_OUTPUT);
        assert_eq!(t.output.len(), 1024);
        assert_eq!(t.dropped_bytes, 5 + 176);
        assert_eq!(Outcome::from_text(&t.to_text()), Some(t));
        assert_eq!(o.ending(), "exit status 3");
        assert!(Outcome::from_text("timeout after 10 s").is_none());
    }

    #[test]
    fn names_destinations_and_users_are_checked() {
        let f = |name: &str, mode| CopyFile {
            name: name.into(),
            mode,
            data: vec![],
        };
        assert!(f("hosts", 0o644).check().is_ok());
        for bad in ["", ".", "..", "a/b", "a\nC0644 1 x"] {
            assert!(f(bad, 0o644).check().is_err(), "{bad:?}");
        }
        assert!(f("x", 0o10000).check().is_err());
        assert!(check_dest("/etc").is_ok());
        assert!(check_dest("etc").is_err());
        assert!(check_dest("/tmp/a\nb").is_err());
        assert!(check_user("root").is_ok());
        assert!(check_user("-oProxyCommand").is_err());
        assert!(check_user("a b").is_err());
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn file_bytes_travel_as_base64() {
        let f = CopyFile {
            name: "a".into(),
            mode: 0o600,
            data: vec![0, 255, 10],
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["data"], "AP8K");
        assert_eq!(serde_json::from_value::<CopyFile>(v).unwrap(), f);
    }
}
