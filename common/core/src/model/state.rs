//! A node's provisioning state and the transitions `deploy` may make.
//!
//! ```text
//!  available ──deploy --state dhcp──▶ dhcp
//!  available/dhcp/deploy failed ──deploy --osimage──▶ deploying
//!  deploying ──install callback──▶ deployed
//!  deploying ──agent: done (stateless image)──▶ booted
//!  booted / deploy failed ──agent: a boot step (stateless reboot)──▶ deploying
//!  deploying ──timeout, or a step the agent reports failed──▶ deploy failed
//!  any ──deploy -d──▶ available
//! ```
//!
//! A deployed node is not re-installed by a second `deploy --osimage`: it
//! has to be released (`deploy -d`) first, so a running system is never
//! wiped by a mistyped noderange. Stored as the v1 strings; `available` is
//! stored as NULL (v1's "no state").

use std::fmt;

/// Provisioning state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProvisionState {
    Available,
    /// A DHCP reservation that boots the node from its disk.
    Dhcp,
    Deploying,
    Deployed,
    DeployFailed,
    /// A stateless node whose agent said `done`: it runs from its image in
    /// RAM and network-boots again on every start.
    Booted,
}

/// What asks for a change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionEvent {
    /// `deploy --state dhcp`.
    Dhcp,
    /// `deploy --osimage` (`nodeset`).
    Deploy,
    /// The installer called back with the node's token.
    Callback,
    /// The agent of a stateless image said `done`.
    Booted,
    /// The agent of a stateless image reports a step of a new boot.
    Rebooting,
    /// The deploy timed out or failed.
    Fail,
    /// `deploy -d`.
    Release,
}

impl ProvisionState {
    pub const ALL: &'static [&'static str] = &[
        "available",
        "dhcp",
        "deploying",
        "deployed",
        "deploy failed",
        "booted",
    ];

    /// The stored column (NULL = available); an unknown stored value reads
    /// as available, which `deploy -d` can always leave.
    pub fn from_column(v: Option<&str>) -> ProvisionState {
        v.and_then(ProvisionState::parse)
            .unwrap_or(ProvisionState::Available)
    }

    pub fn parse(s: &str) -> Option<ProvisionState> {
        Some(match s {
            "available" => ProvisionState::Available,
            "dhcp" => ProvisionState::Dhcp,
            "deploying" => ProvisionState::Deploying,
            "deployed" => ProvisionState::Deployed,
            "deploy failed" | "deploy_failed" => ProvisionState::DeployFailed,
            "booted" => ProvisionState::Booted,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionState::Available => "available",
            ProvisionState::Dhcp => "dhcp",
            ProvisionState::Deploying => "deploying",
            ProvisionState::Deployed => "deployed",
            ProvisionState::DeployFailed => "deploy failed",
            ProvisionState::Booted => "booted",
        }
    }

    /// The value stored in `nodes.state`.
    pub fn column(self) -> Option<String> {
        match self {
            ProvisionState::Available => None,
            s => Some(s.as_str().to_string()),
        }
    }

    /// The state `event` leads to, or why it may not happen now.
    pub fn next(self, event: ProvisionEvent) -> Result<ProvisionState, String> {
        use ProvisionEvent as E;
        use ProvisionState as S;
        match (self, event) {
            (_, E::Release) => Ok(S::Available),
            (S::Available | S::Dhcp | S::DeployFailed, E::Dhcp) => Ok(S::Dhcp),
            (S::Available | S::Dhcp | S::DeployFailed, E::Deploy) => Ok(S::Deploying),
            (S::Deploying, E::Callback) => Ok(S::Deployed),
            (S::Deploying, E::Booted) => Ok(S::Booted),
            (S::Deploying | S::Booted | S::DeployFailed, E::Rebooting) => Ok(S::Deploying),
            (S::Deploying, E::Fail) => Ok(S::DeployFailed),
            (S::Deploying, E::Dhcp | E::Deploy) => Err(
                "state: deploying; wait for it to finish or release it first (deploy -d)".into(),
            ),
            (S::Deployed | S::Booted, E::Dhcp | E::Deploy) => {
                Err(format!("state: {self}; release the node first (deploy -d)"))
            }
            (s, E::Callback | E::Booted | E::Rebooting) => Err(format!(
                "state: {s}, not deploying; the install callback is refused"
            )),
            (s, E::Fail) => Err(format!("state: {s}, not deploying")),
        }
    }
}

impl fmt::Display for ProvisionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ProvisionEvent as E;
    use super::ProvisionState as S;
    use super::*;

    #[test]
    fn allowed_transitions() {
        let table = [
            (S::Available, E::Deploy, S::Deploying),
            (S::Dhcp, E::Deploy, S::Deploying),
            (S::DeployFailed, E::Deploy, S::Deploying),
            (S::Deploying, E::Callback, S::Deployed),
            (S::Deploying, E::Fail, S::DeployFailed),
            (S::Deployed, E::Release, S::Available),
            (S::DeployFailed, E::Release, S::Available),
            (S::Deploying, E::Release, S::Available),
            (S::Available, E::Dhcp, S::Dhcp),
            (S::Dhcp, E::Dhcp, S::Dhcp),
            (S::Deploying, E::Booted, S::Booted),
            (S::Booted, E::Rebooting, S::Deploying),
            (S::DeployFailed, E::Rebooting, S::Deploying),
            (S::Booted, E::Release, S::Available),
        ];
        for (from, ev, to) in table {
            assert_eq!(from.next(ev), Ok(to), "{from} {ev:?}");
        }
    }

    #[test]
    fn refused_transitions_say_why() {
        for (from, ev, why) in [
            (S::Deploying, E::Deploy, "deploying"),
            (S::Deployed, E::Deploy, "release the node first"),
            (S::Deployed, E::Dhcp, "deploy -d"),
            (S::Deployed, E::Callback, "not deploying"),
            (S::Available, E::Callback, "not deploying"),
            (S::DeployFailed, E::Callback, "refused"),
            (S::Available, E::Fail, "not deploying"),
            (S::Booted, E::Deploy, "release the node first"),
            (S::Deployed, E::Rebooting, "not deploying"),
            (S::Booted, E::Booted, "not deploying"),
        ] {
            let e = from.next(ev).unwrap_err();
            assert!(e.contains(why), "{from} {ev:?}: {e}");
            assert!(e.starts_with("state: "), "{e}");
        }
    }

    #[test]
    fn column_round_trip() {
        for s in ProvisionState::ALL {
            let st = ProvisionState::parse(s).unwrap();
            assert_eq!(ProvisionState::from_column(st.column().as_deref()), st);
        }
        assert_eq!(ProvisionState::Available.column(), None);
        assert_eq!(ProvisionState::from_column(Some("weird")), S::Available);
    }
}
