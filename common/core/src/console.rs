//! Serial consoles as the API, the conductors and the CLI share them: how a
//! node's console is held (`console_info.logging`), what a console server
//! reports per node, and the escape sequence the CLI leaves by.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::FieldError;

/// `console_info.logging`: when the owning conductor holds the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Logging {
    /// Connected all the time, everything logged (takes the console over
    /// from a stale holder).
    Always,
    /// Connected while someone watches (the default), logged meanwhile.
    OnDemand,
    /// Never connected.
    Off,
}

impl Logging {
    pub fn as_str(self) -> &'static str {
        match self {
            Logging::Always => "always",
            Logging::OnDemand => "on_demand",
            Logging::Off => "off",
        }
    }

    /// The mode `console_info` asks for (`on_demand` when unset).
    pub fn of(console_info: &Map<String, Value>) -> Result<Logging, FieldError> {
        match console_info.get("logging") {
            None | Some(Value::Null) => Ok(Logging::OnDemand),
            Some(Value::String(s)) => match s.as_str() {
                "always" => Ok(Logging::Always),
                "on_demand" => Ok(Logging::OnDemand),
                "off" => Ok(Logging::Off),
                other => Err(FieldError::new(
                    "console_info.logging",
                    format!("`{other}` is not one of always, on_demand, off"),
                )),
            },
            Some(_) => Err(FieldError::new(
                "console_info.logging",
                "must be a string: always, on_demand or off",
            )),
        }
    }
}

/// `console_info.method`: how the console is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The node's `mgt`'s own console (IPMI SOL, the KVM guest's serial).
    Native,
    /// Over SSH (a terminal server, a BMC's SSH console): `ssh_*` keys.
    Ssh,
}

impl Method {
    pub fn of(console_info: &Map<String, Value>) -> Result<Method, FieldError> {
        match console_info.get("method") {
            None | Some(Value::Null) => Ok(Method::Native),
            Some(Value::String(s)) if s == "ssh" => Ok(Method::Ssh),
            Some(Value::String(s)) if s == "native" => Ok(Method::Native),
            Some(v) => Err(FieldError::new(
                "console_info.method",
                format!("{v} is not one of ssh, native"),
            )),
        }
    }
}

/// Checks what a node's `console_info` says when it is written: the
/// logging mode and the method (the SSH keys are the driver's to check
/// when it connects, as `control_info`'s are).
pub fn check(console_info: &Map<String, Value>) -> Result<(), FieldError> {
    Logging::of(console_info)?;
    Method::of(console_info)?;
    Ok(())
}

/// Where a console stands on its conductor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// Connected to the BMC or hypervisor.
    Connected,
    /// Connecting, or waiting to retry after a failure (see `last_error`).
    Connecting,
    /// Not held: `on_demand` with nobody watching, or `off`.
    Idle,
}

/// One node's console, as `GET /v1/consoles` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsoleState {
    pub logging: Logging,
    pub state: Connection,
    /// The conductor holding it (or that would).
    pub conductor: String,
    /// Viewers attached now.
    pub viewers: u32,
    /// Bytes received from the node since this conductor took it.
    pub bytes: u64,
    /// When the node last printed something (RFC 3339), if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_output: Option<String>,
    /// Why the last connection attempt or link failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The CLI's escape character: Ctrl-E (conserver's, and not ssh's `~`).
pub const ESCAPE: u8 = 0x05;

/// What follows `Ctrl-E c` in the CLI.
pub const ESCAPE_HELP: &str = "\
Ctrl-E c .  leave the console
Ctrl-E c b  send a serial break
Ctrl-E c ?  this list
Ctrl-E c e  send Ctrl-E itself\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn logging_defaults_to_on_demand_and_names_the_field() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(Logging::of(&m(json!({}))).unwrap(), Logging::OnDemand);
        assert_eq!(
            Logging::of(&m(json!({"logging": "always"}))).unwrap(),
            Logging::Always
        );
        let e = Logging::of(&m(json!({"logging": "sometimes"}))).unwrap_err();
        assert_eq!(e.field, "console_info.logging");
        assert!(e.message.contains("sometimes"));
        assert!(Logging::of(&m(json!({"logging": 1}))).is_err());
    }
}
