//! Messages between the API and conductors. Wire types only: they travel
//! as JSON over the bus, so every field is explicit and versionless changes
//! are additions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::inspect::{Beacon, SensorFilter};

/// What a conductor is asked to do for every node of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Read the power state.
    PowerStatus,
    /// Change the power state.
    Power { target: PowerTarget },
    /// Read the next boot device.
    BootDeviceGet,
    /// Set the next boot device.
    BootDeviceSet {
        device: BootDevice,
        /// Every boot, not only the next one.
        #[serde(default)]
        persistent: bool,
    },
    /// Write (or remove) the nodes' DHCP reservations and boot files.
    Provision { target: ProvisionTarget },
    /// The nodes are hypervisors: report their capacity (a JSON object as
    /// the result text: `memory_mib`, `allocated_mib`, `cpus`,
    /// `allocated_cpus`, `domains`).
    HypervisorInfo,
    /// Define the guests their `control_info.vm_*` describe on their
    /// `vm_host` (sent to the conductor owning the hypervisor); with
    /// `source`, as linked clones of that (shut off) guest.
    VmCreate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// Undefine the guests (and with `purge`, delete their disks).
    VmRemove {
        #[serde(default)]
        purge: bool,
    },
    /// Read the hardware inventory from the BMCs and store it (result: an
    /// `inspect::Inventory` as JSON).
    Inventory,
    /// Read sensors (result: a JSON list of `inspect::Reading`).
    Vitals { sensors: SensorFilter },
    /// Read the newest `count` event-log entries; with `clear`, clear the
    /// log after reading it (result: an `inspect::EventLog` as JSON).
    EventLog {
        count: u32,
        #[serde(default)]
        clear: bool,
    },
    /// Set the identify LED.
    Beacon { state: Beacon },
    /// Sensors and the last day's events → ok / warning / critical,
    /// recorded per node (result: an `inspect::HealthReport` as JSON).
    Health,
    /// Each node's console as its conductor holds it (result: a
    /// `console::ConsoleState` as JSON).
    ConsoleList,
    /// The last `lines` lines of each node's console log (result: the
    /// text).
    ConsoleLog { lines: u32 },
    /// Run `command` on each node's OS over SSH as `user`, at most
    /// `fanout` sessions at once per conductor, each for at most
    /// `timeout_s` (result: an `exec::Outcome` as JSON; a non-zero exit
    /// is a `command_failed` error with the same document).
    Exec {
        command: String,
        user: String,
        timeout_s: u32,
        fanout: u32,
    },
    /// Run each node's post-boot scripts again over SSH, in order, each for
    /// at most `timeout_s` (result as for `Exec`: the scripts' headers and
    /// output tails; the run is kept per node).
    Postscripts { timeout_s: u32, fanout: u32 },
    /// Copy `files` into the directory `dest` on each node over SSH
    /// (SCP), then, with `command`, nothing else (result as for `Exec`).
    Copy {
        files: Vec<crate::exec::CopyFile>,
        dest: String,
        user: String,
        timeout_s: u32,
        fanout: u32,
    },
}

impl Action {
    /// A short label for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Action::PowerStatus => "power_status",
            Action::Power { .. } => "power",
            Action::BootDeviceGet => "boot_device_get",
            Action::BootDeviceSet { .. } => "boot_device_set",
            Action::Provision { .. } => "provision",
            Action::HypervisorInfo => "hypervisor_info",
            Action::VmCreate { .. } => "vm_create",
            Action::VmRemove { .. } => "vm_remove",
            Action::Inventory => "inventory",
            Action::Vitals { .. } => "vitals",
            Action::EventLog { clear: false, .. } => "eventlog",
            Action::EventLog { clear: true, .. } => "eventlog_clear",
            Action::Beacon { .. } => "beacon",
            Action::Health => "health",
            Action::ConsoleList => "console_list",
            Action::ConsoleLog { .. } => "console_log",
            Action::Exec { .. } => "exec",
            Action::Copy { .. } => "copy",
            Action::Postscripts { .. } => "postscripts",
        }
    }

    /// A node's result text as the request history keeps it: a command's
    /// output is cut to its first [`crate::exec::HISTORY_OUTPUT`] bytes.
    pub fn history_text(&self, text: &str) -> String {
        match self {
            Action::Exec { .. } | Action::Copy { .. } => {
                match crate::exec::Outcome::from_text(text) {
                    Some(o) => o.truncated(crate::exec::HISTORY_OUTPUT).to_text(),
                    None => text.to_string(),
                }
            }
            _ => text.to_string(),
        }
    }

    /// How long a conductor may take with `nodes` nodes of this action,
    /// when that is longer than any request's: commands run for their own
    /// timeout, `fanout` at a time.
    pub fn time_needed(&self, nodes: usize) -> Option<std::time::Duration> {
        match self {
            Action::Exec {
                timeout_s, fanout, ..
            }
            | Action::Copy {
                timeout_s, fanout, ..
            }
            | Action::Postscripts { timeout_s, fanout } => {
                let rounds = nodes.div_ceil((*fanout).max(1) as usize).max(1) as u64;
                // Connecting and logging in come on top of the command.
                let per_round = *timeout_s as u64 + crate::exec::LOGIN_TIMEOUT_S;
                Some(std::time::Duration::from_secs(rounds * per_round + 10))
            }
            _ => None,
        }
    }

    /// The action in an operator's words, for the request history
    /// (`power on`, `deploy --osimage rocky9`, `rmvm --purge`).
    pub fn describe(&self) -> String {
        match self {
            Action::PowerStatus => "power status".into(),
            Action::Power { target } => format!("power {}", target.as_str()),
            Action::BootDeviceGet => "bootdev status".into(),
            Action::BootDeviceSet { device, persistent } => format!(
                "bootdev {}{}",
                device.as_str(),
                if *persistent { " --persistent" } else { "" }
            ),
            Action::Provision { target } => match target {
                ProvisionTarget::Dhcp => "deploy --state dhcp".into(),
                ProvisionTarget::Nodeset { osimage: Some(i) } => format!("deploy --osimage {i}"),
                ProvisionTarget::Nodeset { osimage: None } => "deploy".into(),
                ProvisionTarget::LocalBoot => "deploy localboot".into(),
                ProvisionTarget::Takeover => "deploy takeover".into(),
                ProvisionTarget::Clean => "deploy -d".into(),
            },
            Action::HypervisorInfo => "hypervisor info".into(),
            Action::VmCreate { source: None } => "mkvm".into(),
            Action::VmCreate { source: Some(s) } => format!("clonevm --source {s}"),
            Action::VmRemove { purge } => {
                format!("rmvm{}", if *purge { " --purge" } else { "" })
            }
            Action::Inventory => "inventory --refresh".into(),
            Action::Vitals { sensors } => format!("vitals {}", sensors.as_str()),
            Action::EventLog { count, clear } => {
                format!(
                    "eventlog -n {count}{}",
                    if *clear { " --clear" } else { "" }
                )
            }
            Action::Beacon { state } => format!("beacon {}", state.as_str()),
            Action::Health => "health".into(),
            Action::ConsoleList => "console-list".into(),
            Action::ConsoleLog { lines } => format!("console --log -n {lines}"),
            Action::Exec { command, user, .. } => {
                let shown: String = command.chars().take(200).collect();
                let more = if shown.len() < command.len() {
                    "..."
                } else {
                    ""
                };
                let as_user = if user == crate::exec::DEFAULT_USER {
                    String::new()
                } else {
                    format!("--user {user} ")
                };
                format!("exec {as_user}-- {shown}{more}")
            }
            Action::Postscripts { .. } => "postscripts --rerun".into(),
            Action::Copy { files, dest, .. } => {
                let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
                format!("copy {} {dest}", names.join(" "))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerTarget {
    On,
    Off,
    /// ACPI shutdown.
    Soft,
    /// Hard reset (warm).
    Reset,
    /// Off, then on.
    Cycle,
    /// On if off, reset if on (xCAT's `boot`).
    Boot,
}

impl PowerTarget {
    pub const ALL: &'static [&'static str] = &["on", "off", "soft", "reset", "cycle", "boot"];

    pub fn parse(s: &str) -> Option<PowerTarget> {
        Some(match s {
            "on" => PowerTarget::On,
            "off" => PowerTarget::Off,
            "soft" => PowerTarget::Soft,
            "reset" => PowerTarget::Reset,
            "cycle" => PowerTarget::Cycle,
            "boot" => PowerTarget::Boot,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PowerTarget::On => "on",
            PowerTarget::Off => "off",
            PowerTarget::Soft => "soft",
            PowerTarget::Reset => "reset",
            PowerTarget::Cycle => "cycle",
            PowerTarget::Boot => "boot",
        }
    }
}

/// What `deploy` asks of a node's network boot (v1 `provision?target=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionTarget {
    /// A DHCP reservation and boot files that boot the node from its disk
    /// (state `dhcp`).
    Dhcp,
    /// Install an OS (v1 `nodeset`): reservation, install boot entry,
    /// answer file, one-time callback token, network boot next time
    /// (state `deploying`). `osimage` names the image; without it each
    /// node's own `osimage` is used.
    Nodeset {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        osimage: Option<String>,
    },
    /// The node called back: its boot entry becomes local disk (sent by
    /// the API after it accepted the node's token; the state is already
    /// `deployed`).
    LocalBoot,
    /// A conductor's own request for `deploying` nodes it now owns but
    /// another conductor prepared: re-create their reservations and files
    /// with their stored tokens (never sent by the API).
    Takeover,
    /// Remove the reservation and boot files (v1 `un_dhcp` / `un_nodeset`);
    /// the node becomes `available`.
    Clean,
}

impl ProvisionTarget {
    pub const ALL: &'static [&'static str] = &["dhcp", "nodeset", "un_dhcp", "un_nodeset"];

    /// The v1 `target` (with its `osimage` query parameter).
    pub fn parse(s: &str, osimage: Option<&str>) -> Option<ProvisionTarget> {
        Some(match s {
            "dhcp" => ProvisionTarget::Dhcp,
            "nodeset" => ProvisionTarget::Nodeset {
                osimage: osimage.map(str::to_string),
            },
            "un_dhcp" | "un_nodeset" => ProvisionTarget::Clean,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BootDevice {
    Net,
    Disk,
    Cdrom,
    Bios,
}

impl BootDevice {
    pub const ALL: &'static [&'static str] = &["net", "disk", "cdrom", "bios"];

    pub fn parse(s: &str) -> Option<BootDevice> {
        Some(match s {
            "net" => BootDevice::Net,
            "disk" => BootDevice::Disk,
            "cdrom" => BootDevice::Cdrom,
            "bios" => BootDevice::Bios,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BootDevice::Net => "net",
            BootDevice::Disk => "disk",
            BootDevice::Cdrom => "cdrom",
            BootDevice::Bios => "bios",
        }
    }
}

/// One request to one conductor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The API request's id, carried into the conductor's logs.
    pub request_id: String,
    #[serde(flatten)]
    pub action: Action,
    pub nodes: Vec<String>,
    /// Unix time in milliseconds after which the request must not run.
    pub deadline_ms: i64,
    /// Nodes placed in the ring by another name than their own: a KVM
    /// guest's `mkvm`/`rmvm` goes to the owner of its hypervisor.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, String>,
    /// The request is in the history: the conductor writes each reply
    /// batch's results there before sending it, so they outlive the reply
    /// path (a broker restart, a lost API connection).
    #[serde(default)]
    pub record: bool,
}

impl Request {
    /// The name that places `node` in the ring.
    pub fn ring_key<'a>(&'a self, node: &'a str) -> &'a str {
        self.routes.get(node).map(String::as_str).unwrap_or(node)
    }

    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.deadline_ms
    }
}

/// What kind of failure a node's error is: the v1 text says it to a
/// person, the kind to a program (the history, metrics, `--retry-failed
/// --kind`). Added beside the v1 message, never instead of it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The BMC, hypervisor or DHCP server did not answer or could not be
    /// reached (no route, refused, name not resolved).
    Unreachable,
    /// The credentials were refused.
    Authentication,
    /// The driver or the BMC cannot do this.
    Unsupported,
    /// The call or the request ran out of time.
    Timeout,
    /// The node's record is wrong or incomplete (a `control_info` key,
    /// `mgt`, a missing osimage): fix the inventory, not the hardware.
    Invalid,
    /// The BMC or hypervisor answered with an error.
    BmcError,
    /// Another request holds the node.
    Locked,
    /// No node has this name.
    NotFound,
    /// xcat3 itself failed for this node: its database or bus, a
    /// conductor lost mid-way, a ring that moved (run it again).
    Internal,
    /// The node ran what it was asked to and it failed: a command that
    /// exited non-zero, a post-boot script.
    CommandFailed,
}

impl ErrorKind {
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::Unreachable,
        ErrorKind::Authentication,
        ErrorKind::Unsupported,
        ErrorKind::Timeout,
        ErrorKind::Invalid,
        ErrorKind::BmcError,
        ErrorKind::Locked,
        ErrorKind::NotFound,
        ErrorKind::Internal,
        ErrorKind::CommandFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Invalid => "invalid",
            ErrorKind::BmcError => "bmc_error",
            ErrorKind::Locked => "locked",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Internal => "internal",
            ErrorKind::CommandFailed => "command_failed",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's failure: its kind, and the v1 message (which names the field
/// or the BMC and never holds a secret). Drivers return it as their error
/// (`DriverError`), so it travels to the API as they made it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, thiserror::Error,
)]
#[error("{message}")]
pub struct NodeError {
    pub kind: ErrorKind,
    pub message: String,
}

impl NodeError {
    pub fn new(kind: ErrorKind, message: String) -> NodeError {
        NodeError { kind, message }
    }

    /// The node's record is wrong or incomplete.
    pub fn invalid(message: String) -> NodeError {
        NodeError::new(ErrorKind::Invalid, message)
    }

    /// The BMC or hypervisor could not be reached.
    pub fn unreachable(message: String) -> NodeError {
        NodeError::new(ErrorKind::Unreachable, message)
    }

    /// The credentials were refused.
    pub fn authentication(message: String) -> NodeError {
        NodeError::new(ErrorKind::Authentication, message)
    }

    /// The driver or the hardware cannot do this.
    pub fn unsupported(message: String) -> NodeError {
        NodeError::new(ErrorKind::Unsupported, message)
    }

    /// The BMC or hypervisor answered with an error.
    pub fn bmc(message: String) -> NodeError {
        NodeError::new(ErrorKind::BmcError, message)
    }

    /// xcat3 itself failed (a conductor, its database, DHCP server or files).
    pub fn internal(message: String) -> NodeError {
        NodeError::new(ErrorKind::Internal, message)
    }
}

impl From<NodeError> for NodeResult {
    fn from(e: NodeError) -> NodeResult {
        NodeResult::Error(e)
    }
}

/// One node's outcome: a value (`on`, `ok`, `net`) or an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeResult {
    Ok(String),
    Error(NodeError),
}

impl NodeResult {
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> NodeResult {
        NodeResult::Error(NodeError::new(kind, message.into()))
    }

    /// The v1 wire text: the value or the error message.
    pub fn text(&self) -> &str {
        match self {
            NodeResult::Ok(s) => s,
            NodeResult::Error(e) => &e.message,
        }
    }

    /// The v1 wire text, owned.
    pub fn into_text(self) -> String {
        match self {
            NodeResult::Ok(s) => s,
            NodeResult::Error(e) => e.message,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, NodeResult::Ok(_))
    }

    /// The error's kind; `None` for a success.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            NodeResult::Ok(_) => None,
            NodeResult::Error(e) => Some(e.kind),
        }
    }
}

/// A batch of results; the last batch of a request has `done = true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyBatch {
    pub request_id: String,
    /// The conductor that answered.
    pub host: String,
    pub results: BTreeMap<String, NodeResult>,
    pub done: bool,
    /// These results are in the history already (the API need not write
    /// them).
    #[serde(default)]
    pub recorded: bool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
