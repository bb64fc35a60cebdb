//! libvirt connection URIs, parsed and rebuilt from parts we allow.
//!
//! A libvirt URI is a program launcher: `qemu+ext:///system?command=/x`
//! runs `/x`, `?socket=`/`?netcat=`/`?proxy=` pick what libvirt executes or
//! opens, and `test:///path` reads a file. A node record must never make a
//! conductor do either (SECURITY.md, trust model), so a URI is accepted only when every
//! part is known: driver `qemu` (or `test:///default` for tests), a
//! transport from [`Transport`], a checked user and host, the path
//! `/system` or `/session`, and a few parameters with checked values. The
//! conductor connects with [`LibvirtUri`]'s `Display`, never with the text
//! it was given, so what was checked is what runs.

use std::fmt;

use super::fields::{check_hostname, parse_ip};
use crate::{percent_decode, percent_encode};

/// How libvirt reaches the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The local UNIX socket (`qemu:///system`).
    Local,
    /// OpenSSH (`qemu+ssh://`).
    Ssh,
    /// libssh2 (`qemu+libssh2://`): password authentication through our
    /// credential callback.
    Libssh2,
    /// libssh (`qemu+libssh://`).
    Libssh,
    /// TLS (`qemu+tls://`).
    Tls,
    /// Plain TCP (`qemu+tcp://`).
    Tcp,
}

impl Transport {
    fn parse(s: Option<&str>) -> Result<Transport, String> {
        Ok(match s {
            None | Some("unix") => Transport::Local,
            Some("ssh") => Transport::Ssh,
            Some("libssh2") => Transport::Libssh2,
            Some("libssh") => Transport::Libssh,
            Some("tls") => Transport::Tls,
            Some("tcp") => Transport::Tcp,
            Some(other) => {
                return Err(format!(
                    "transport `{other}` is not allowed (use ssh, libssh2, libssh, tls, tcp or none)"
                ));
            }
        })
    }

    fn suffix(self) -> &'static str {
        match self {
            Transport::Local => "",
            Transport::Ssh => "+ssh",
            Transport::Libssh2 => "+libssh2",
            Transport::Libssh => "+libssh",
            Transport::Tls => "+tls",
            Transport::Tcp => "+tcp",
        }
    }

    fn is_ssh(self) -> bool {
        matches!(
            self,
            Transport::Ssh | Transport::Libssh2 | Transport::Libssh
        )
    }

    /// The parameters this transport may carry.
    fn allows(self, key: &str) -> bool {
        match self {
            Transport::Ssh => matches!(key, "keyfile" | "no_verify" | "no_tty"),
            Transport::Libssh2 | Transport::Libssh => {
                matches!(key, "keyfile" | "sshauth" | "known_hosts_verify")
            }
            Transport::Tls => key == "no_verify",
            Transport::Local | Transport::Tcp => false,
        }
    }
}

/// Parameters that make libvirt run a program, open a socket or file of
/// the URI's choosing, or forward the URI to another driver.
const DANGEROUS: &[&str] = &[
    "command",
    "socket",
    "netcat",
    "proxy",
    "mode",
    "name",
    "known_hosts",
    "pkipath",
    "tls_priority",
];

/// A checked libvirt URI; `to_string()` gives the URI to connect with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibvirtUri {
    driver: &'static str,
    pub transport: Transport,
    user: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    path: &'static str,
    params: Vec<(String, String)>,
}

/// A user name for SSH: letters, digits, `.`, `_`, `-`, not starting with
/// `-` (it would become an option of `ssh`), at most 32 characters.
pub fn check_user(user: &str) -> Result<(), String> {
    let ok = !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{user}` is not a user name (letters, digits, `.`, `_`, `-`; not starting with `-`; at most 32)"
        ))
    }
}

/// A host: an IP address or a DNS name (never an option such as `-oX`).
fn check_host(host: &str) -> Result<(), String> {
    if parse_ip("host", host).is_ok() || check_hostname("host", host).is_ok() {
        Ok(())
    } else {
        Err(format!("`{host}` is not an IP address or host name"))
    }
}

/// An SSH key file: an absolute path without `..` or control characters.
pub fn check_key_file(path: &str) -> Result<(), String> {
    let ok = path.starts_with('/')
        && !path.split('/').any(|c| c == "..")
        && !path.chars().any(char::is_control)
        && path.len() <= 4096;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{path}` is not an absolute file path (no `..`, no control characters)"
        ))
    }
}

impl LibvirtUri {
    /// Parses `text`; the error says which part is refused and why.
    pub fn parse(text: &str) -> Result<LibvirtUri, String> {
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("must not contain spaces or control characters".into());
        }
        if text.contains('#') {
            return Err("must not contain a fragment (`#`)".into());
        }
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            format!(
                "`{text}` is not a libvirt URI (e.g. qemu:///system, qemu+ssh://root@hv1/system)"
            )
        })?;
        let (driver, transport) = match scheme.split_once('+') {
            Some((d, t)) => (d, Some(t)),
            None => (scheme, None),
        };
        let transport = Transport::parse(transport)?;
        let (driver, paths): (&'static str, &[&'static str]) = match driver {
            "qemu" => ("qemu", &["/system", "/session"]),
            "test" if transport == Transport::Local => ("test", &["/default"]),
            other => {
                return Err(format!(
                    "driver `{other}` is not allowed (only qemu, or test:///default)"
                ));
            }
        };
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, ""),
        };
        let path = *paths
            .iter()
            .find(|p| **p == path)
            .ok_or_else(|| format!("path `{path}` is not allowed (use {})", paths.join(" or ")))?;

        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(percent_decode(u)?), h),
            None => (None, authority),
        };
        let (host, port) = if hostport.is_empty() {
            (None, None)
        } else if let Some(v6) = hostport.strip_prefix('[') {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("host `{hostport}` has no closing `]`"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').unwrap_or("x")),
            };
            (Some(ip.to_string()), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (Some(h.to_string()), Some(p)),
                None => (Some(hostport.to_string()), None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("port `{p}` is not a port number 1-65535"))
            })
            .transpose()?;
        if let Some(h) = &host {
            check_host(h)?;
        }
        match (transport, &host) {
            (Transport::Local, Some(h)) => {
                return Err(format!(
                    "host `{h}` needs a remote transport (qemu+ssh://, qemu+tls://, ...)"
                ));
            }
            (Transport::Local, None) => {}
            (_, None) => return Err("a remote transport needs a host".into()),
            _ => {}
        }
        if let Some(u) = &user {
            if !transport.is_ssh() {
                return Err("a user name is only allowed with an SSH transport".into());
            }
            check_user(u)?;
        }

        let mut params: Vec<(String, String)> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k)?;
            let value = percent_decode(v)?;
            if DANGEROUS.contains(&key.as_str()) {
                return Err(format!(
                    "parameter `{key}` is not allowed: it would make libvirt run a program or open a path of the URI's choosing"
                ));
            }
            if params.iter().any(|(k, _)| *k == key) {
                return Err(format!("parameter `{key}` is given twice"));
            }
            if driver == "test" {
                // libvirt's in-process test driver ignores its query; tests
                // use one (`test:///default?a`) to get separate instances.
                let word = |t: &str| t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !word(&key) || !word(&value) {
                    return Err(format!(
                        "parameter `{key}`: only word characters are allowed"
                    ));
                }
            } else {
                if !transport.allows(&key) {
                    return Err(format!(
                        "parameter `{key}` is not allowed with this transport"
                    ));
                }
                check_param(&key, &value)?;
            }
            params.push((key, value));
        }
        Ok(LibvirtUri {
            driver,
            transport,
            user,
            host,
            port,
            path,
            params,
        })
    }

    /// The URI of an SSH-reached hypervisor from the prototype's keys
    /// (`ssh_username`, `ssh_address`, `ssh_key_filename`, ...). An error
    /// names the key whose value was refused.
    pub fn ssh(
        transport: Transport,
        user: &str,
        host: &str,
        port: Option<u16>,
        params: Vec<(&'static str, String)>,
    ) -> Result<LibvirtUri, (&'static str, String)> {
        check_user(user).map_err(|e| ("ssh_username", e))?;
        check_host(host).map_err(|e| ("ssh_address", e))?;
        for (k, v) in &params {
            let key = match *k {
                "keyfile" => "ssh_key_filename",
                "no_verify" | "known_hosts_verify" => "ssh_verify_host",
                _ => "ssh_password",
            };
            if !transport.allows(k) {
                return Err((
                    key,
                    format!("parameter `{k}` is not allowed with this transport"),
                ));
            }
            check_param(k, v).map_err(|e| (key, e))?;
        }
        let params = params
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Ok(LibvirtUri {
            driver: "qemu",
            transport,
            user: Some(user.to_string()),
            host: Some(host.to_string()),
            port,
            path: "/system",
            params,
        })
    }
}

fn check_param(key: &str, value: &str) -> Result<(), String> {
    let ok = match key {
        "keyfile" => return check_key_file(value).map_err(|e| format!("keyfile: {e}")),
        "no_verify" | "no_tty" => matches!(value, "0" | "1"),
        "known_hosts_verify" => matches!(value, "normal" | "auto" | "ignore"),
        "sshauth" => value
            .split(',')
            .all(|m| matches!(m, "password" | "privkey" | "agent" | "keyboard-interactive")),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "parameter `{key}`: `{value}` is not an allowed value"
        ))
    }
}

impl fmt::Display for LibvirtUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}://", self.driver, self.transport.suffix())?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match &self.host {
            Some(h) if h.contains(':') => write!(f, "[{h}]")?,
            Some(h) => f.write_str(h)?,
            None => {}
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        f.write_str(self.path)?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{k}={}", percent_encode(v, b"/,"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        LibvirtUri::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    #[test]
    fn known_uris_are_rebuilt_as_given() {
        for s in [
            "qemu:///system",
            "qemu:///session",
            "test:///default",
            "qemu+ssh://root@hv1/system",
            "qemu+ssh://root@hv1:2222/system?no_tty=1&keyfile=/root/.ssh/id%20rsa",
            "qemu+libssh2://virt@[fd00::1]/system?sshauth=password&known_hosts_verify=ignore",
            "qemu+tls://hv1.example.com/system?no_verify=1",
            "qemu+tcp://10.0.0.5:16509/system",
        ] {
            assert_eq!(ok(s), s);
        }
        assert_eq!(ok("qemu+unix:///system"), "qemu:///system");
        assert_eq!(ok("test:///default?a"), "test:///default?a=");
        assert!(LibvirtUri::parse("test:///default?command=/x").is_err());
    }

    #[test]
    fn program_launchers_and_file_readers_are_refused() {
        for (s, why) in [
            ("qemu+ext:///system?command=/tmp/prog", "transport `ext`"),
            ("qemu:///system?socket=/tmp/s", "parameter `socket`"),
            (
                "qemu+ssh://root@hv/system?netcat=/tmp/prog",
                "parameter `netcat`",
            ),
            (
                "qemu+ssh://root@hv/system?proxy=netcat",
                "parameter `proxy`",
            ),
            ("qemu+ssh://root@hv/system?mode=legacy", "parameter `mode`"),
            (
                "qemu+ssh://root@hv/system?comm%61nd=/x",
                "parameter `command`",
            ),
            (
                "qemu+ssh://root@hv/system?name=qemu%2Bext:///system",
                "parameter `name`",
            ),
            ("qemu+ssh://root@hv/system?x=1", "parameter `x`"),
            (
                "qemu+ssh://root@hv/system?keyfile=/a&keyfile=/b",
                "given twice",
            ),
            ("qemu+ssh://root@hv/system?keyfile=../k", "keyfile"),
            (
                "qemu+tcp://hv/system?keyfile=/k",
                "not allowed with this transport",
            ),
            ("test:///etc/passwd", "path `/etc/passwd`"),
            ("qemu:///embed?root=/tmp", "path `/embed`"),
            ("xen:///system", "driver `xen`"),
            ("qemu+ssh://-oProxyCommand=x/system", "host"),
            ("qemu+ssh://-oProxyCommand=x@hv/system", "user name"),
            ("qemu+ssh://a%40b@hv/system", "user name"),
            ("qemu+tls://root@hv/system", "only allowed with an SSH"),
            ("qemu+ssh:///system", "needs a host"),
            ("qemu://hv/system", "remote transport"),
            ("qemu+ssh://root@hv:0/system", "port"),
            ("qemu+ssh://root@hv/system#x", "fragment"),
            ("qemu+ssh://root@hv/system?no_verify=yes", "no_verify"),
            ("hv1", "not a libvirt URI"),
        ] {
            let e = LibvirtUri::parse(s).expect_err(s);
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn users_cannot_smuggle_uri_parts() {
        for u in ["root@evil/system?command=/x&x=", "-l", "a b", "", "r;t"] {
            assert!(check_user(u).is_err(), "{u}");
        }
        assert!(check_user("svc-virt.01_x").is_ok());
        let uri = LibvirtUri::ssh(Transport::Ssh, "root", "hv1", Some(22), vec![]).unwrap();
        assert_eq!(uri.to_string(), "qemu+ssh://root@hv1:22/system");
    }
}
