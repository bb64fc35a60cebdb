//! The contract between `xcat3-agent` (on a node, inside an image xcat3
//! built) and the API: where it finds its node's name, token and API on
//! the kernel command line, what its per-node config file holds, and the
//! boot steps it reports to `PUT /v1/nodes/provision/callback`.

use std::fmt;

/// Kernel command-line keys the conductor writes and the agent reads.
pub const CMDLINE_NODE: &str = "xcat3.node";
pub const CMDLINE_TOKEN: &str = "xcat3.token";
pub const CMDLINE_API: &str = "xcat3.api";
/// `stateless` or `image` (see `model::ImageKind`).
pub const CMDLINE_KIND: &str = "xcat3.kind";

/// The per-node config the overlay carries (`key=value` lines).
pub const NODE_CONF: &str = "etc/xcat3/node.conf";

/// Where the image builder puts the agent.
pub const AGENT_PATH: &str = "usr/local/sbin/xcat3-agent";

/// A step of a node's boot or image write, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// The conductor served the node its last boot archive: kernel, root
    /// image and overlay are in the node's memory.
    ImageFetched,
    /// The kernel unpacked the root into RAM and started its init: the
    /// agent runs from it.
    RootMounted,
    /// The agent's network is up and it reached the API.
    AgentUp,
    /// Partitioning the install disk and writing the root to it (images
    /// of kind `image`).
    Installing,
    /// Running the node's post-boot scripts (`control_info.postscripts`),
    /// in order; a script that fails fails the boot, naming it.
    Postscripts,
    /// Finished: a stateless node is `booted`; a written disk makes the
    /// node `deployed` and boot from its disk.
    Done,
}

impl Step {
    /// Every step's wire name, in order (the OpenAPI document's enum).
    pub const NAMES: &'static [&'static str] = &[
        "image fetched",
        "root mounted",
        "agent up",
        "installing",
        "postscripts",
        "done",
    ];

    pub const ALL: &'static [Step] = &[
        Step::ImageFetched,
        Step::RootMounted,
        Step::AgentUp,
        Step::Installing,
        Step::Postscripts,
        Step::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::ImageFetched => "image fetched",
            Step::RootMounted => "root mounted",
            Step::AgentUp => "agent up",
            Step::Installing => "installing",
            Step::Postscripts => "postscripts",
            Step::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.iter().copied().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest failure text a report may carry (it is stored and shown).
pub const MAX_ERROR_LEN: usize = 1024;

/// What a failure report's text becomes: control characters replaced, cut
/// at [`MAX_ERROR_LEN`] on a character boundary.
pub fn clean_error(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out.trim().to_string()
}

/// The value of `key` on a kernel command line (`key=value` words).
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_whitespace().find_map(|w| {
        w.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
            .filter(|v| !v.is_empty())
    })
}

/// Parses `key=value` lines (blank lines and `#` comments skipped).
pub fn parse_conf(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip() {
        for s in Step::ALL {
            assert_eq!(Step::parse(s.as_str()), Some(*s));
        }
        let names: Vec<&str> = Step::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, Step::NAMES);
        assert_eq!(Step::parse("deploying"), None);
    }

    #[test]
    fn cmdline_values_are_whole_words() {
        let c = "console=ttyS0 xcat3.node=n1 xcat3.nodes=x xcat3.token=abc xcat3.api=";
        assert_eq!(cmdline_value(c, CMDLINE_NODE), Some("n1"));
        assert_eq!(cmdline_value(c, CMDLINE_TOKEN), Some("abc"));
        assert_eq!(cmdline_value(c, CMDLINE_API), None);
    }

    #[test]
    fn errors_are_one_bounded_line() {
        let e = clean_error(&format!("disk\n/dev/vda: {}é", "x".repeat(2000)));
        assert!(e.len() <= MAX_ERROR_LEN);
        assert!(e.starts_with("disk /dev/vda: xx"));
    }

    #[test]
    fn conf_lines() {
        let c = "# x\nnode=n1\n\ninstall_disk = /dev/vda\nbad line\n";
        assert_eq!(
            parse_conf(c),
            [("node", "n1"), ("install_disk", "/dev/vda")]
        );
    }
}
