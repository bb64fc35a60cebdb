//! `mgt=redfish`: power, boot override and inspection (`inspect.rs`)
//! through a Redfish BMC.
//!
//! `control_info`: `bmc_address` (host, `host:port`, or a full
//! `https://…`/`http://…` base URL), `bmc_username`, `bmc_password`,
//! optional `system_id` (default: the first member of
//! `/redfish/v1/Systems`), `verify_tls` (default true) and `boot_mode`
//! (`uefi`/`bios`). One HTTP client (connection pool) for the conductor;
//! a session token per BMC and user, created once and reused (re-created
//! on 401); BMCs without a session service get HTTP basic auth. The reset
//! type is chosen from what the BMC advertises.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use xcat3_common::rpc::{BootDevice, ErrorKind, PowerTarget};

use super::{
    DriverError, Management, NodeInfo, Power, PowerState, Properties, control_str, uefi_boot,
};
use xcat3_common::hardware;

mod inspect;

/// How long one HTTP exchange with a BMC may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// What a node's `control_info` says, checked.
struct Target {
    base: String,
    username: String,
    password: String,
    system_id: Option<String>,
    verify_tls: bool,
    uefi: bool,
}

/// How we authenticate to one BMC.
#[derive(Clone)]
enum Auth {
    Token(String),
    Basic,
}

pub struct Redfish {
    verified: reqwest::Client,
    unverified: reqwest::Client,
    /// By (base URL, user, password): the session token or basic auth.
    /// The password is part of the key so a node with wrong credentials
    /// never rides on another node's session (memory only, never logged).
    auth: Mutex<HashMap<(String, String, String), Auth>>,
    /// By (base URL, system id or ""): the system's path.
    systems: Mutex<HashMap<(String, String), String>>,
}

impl Target {
    fn auth_key(&self) -> (String, String, String) {
        (
            self.base.clone(),
            self.username.clone(),
            self.password.clone(),
        )
    }

    fn of(node: &NodeInfo) -> Result<Target, DriverError> {
        let missing =
            |k: &str| DriverError::invalid(format!("control_info.{k}: required for mgt=redfish"));
        let address = control_str(node, "bmc_address")?.ok_or_else(|| missing("bmc_address"))?;
        let base = if address.starts_with("https://") || address.starts_with("http://") {
            address.trim_end_matches('/').to_string()
        } else {
            format!("https://{address}")
        };
        let verify_tls = match node.control_info.get("verify_tls") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(_) => {
                return Err(DriverError::invalid(
                    "control_info.verify_tls: must be true or false".into(),
                ));
            }
        };
        let uefi = uefi_boot(node)?;
        Ok(Target {
            base,
            username: control_str(node, "bmc_username")?.unwrap_or("").to_string(),
            password: control_str(node, "bmc_password")?
                .ok_or_else(|| missing("bmc_password"))?
                .to_string(),
            system_id: control_str(node, "system_id")?.map(str::to_string),
            verify_tls,
            uefi,
        })
    }
}

/// Redfish `PowerState` as ours (`PoweringOn` counts as on).
fn power_state(system: &Value) -> Result<PowerState, DriverError> {
    match system.get("PowerState").and_then(Value::as_str) {
        Some("On") | Some("PoweringOn") => Ok(PowerState::On),
        Some("Off") | Some("PoweringOff") => Ok(PowerState::Off),
        other => Err(DriverError::bmc(format!(
            "Redfish: unexpected PowerState {other:?}"
        ))),
    }
}

/// The first of `wanted` the BMC advertises (all of them when it does
/// not say).
fn pick_reset(system: &Value, wanted: &[&'static str]) -> Result<&'static str, DriverError> {
    let allowed: Option<Vec<&str>> = system
        .pointer("/Actions/#ComputerSystem.Reset/ResetType@Redfish.AllowableValues")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    match allowed {
        None => Ok(wanted[0]),
        Some(allowed) => wanted
            .iter()
            .find(|w| allowed.contains(w))
            .copied()
            .ok_or_else(|| {
                DriverError::unsupported(format!(
                    "Redfish: the BMC offers none of {} (it offers {})",
                    wanted.join(", "),
                    allowed.join(", ")
                ))
            }),
    }
}

fn boot_target(device: BootDevice) -> &'static str {
    match device {
        BootDevice::Net => "Pxe",
        BootDevice::Disk => "Hdd",
        BootDevice::Cdrom => "Cd",
        BootDevice::Bios => "BiosSetup",
    }
}

impl Default for Redfish {
    fn default() -> Self {
        Redfish::new()
    }
}

impl Redfish {
    pub fn new() -> Redfish {
        // reqwest's rustls needs a process-wide crypto provider; ring is
        // the one already in the tree (sqlx). A second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let build = |verify: bool| {
            reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .pool_max_idle_per_host(4)
                // A BMC must not send us, with its session token, anywhere
                // else: a redirect is an error, not a hop.
                .redirect(reqwest::redirect::Policy::none())
                .tls_danger_accept_invalid_certs(!verify)
                .build()
                .expect("building an HTTP client")
        };
        Redfish {
            verified: build(true),
            unverified: build(false),
            auth: Mutex::default(),
            systems: Mutex::default(),
        }
    }

    fn client(&self, t: &Target) -> &reqwest::Client {
        if t.verify_tls {
            &self.verified
        } else {
            &self.unverified
        }
    }

    /// How to authenticate to `t`: a cached session, a new one, or basic.
    async fn auth(&self, t: &Target) -> Result<Auth, DriverError> {
        let key = t.auth_key();
        if let Some(a) = self.auth.lock().expect("auth cache").get(&key) {
            return Ok(a.clone());
        }
        let resp = self
            .client(t)
            .post(format!("{}/redfish/v1/SessionService/Sessions", t.base))
            .json(&json!({"UserName": t.username, "Password": t.password}))
            .send()
            .await
            .map_err(|e| unreachable(t, &e))?;
        let auth = match resp.status() {
            s if s.is_success() => match resp
                .headers()
                .get("X-Auth-Token")
                .and_then(|v| v.to_str().ok())
            {
                Some(token) => Auth::Token(token.to_string()),
                None => Auth::Basic,
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(DriverError::authentication(format!(
                    "BMC {}: login refused for user `{}` (wrong bmc_username or bmc_password?)",
                    t.base, t.username
                )));
            }
            // No session service: basic auth on every request.
            _ => Auth::Basic,
        };
        self.auth
            .lock()
            .expect("auth cache")
            .insert(key, auth.clone());
        Ok(auth)
    }

    /// One request, authenticated; a 401 with a cached session logs in again once.
    async fn call(
        &self,
        t: &Target,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DriverError> {
        self.exchange(t, method, path, body, false)
            .await
            .map(|v| v.unwrap_or(Value::Null))
    }

    /// GET `path`; None when the BMC has no such resource (404, 501):
    /// parts a BMC does not offer are values to report, not failures.
    async fn get_optional(&self, t: &Target, path: &str) -> Result<Option<Value>, DriverError> {
        self.exchange(t, Method::GET, path, None, true).await
    }

    async fn exchange(
        &self,
        t: &Target,
        method: Method,
        path: &str,
        body: Option<Value>,
        missing_ok: bool,
    ) -> Result<Option<Value>, DriverError> {
        let path = bmc_path(t, path)?;
        for attempt in 0..2 {
            let auth = self.auth(t).await?;
            let mut req = self
                .client(t)
                .request(method.clone(), format!("{}{path}", t.base));
            req = match &auth {
                Auth::Token(tok) => req.header("X-Auth-Token", tok),
                Auth::Basic => req.basic_auth(&t.username, Some(&t.password)),
            };
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| unreachable(t, &e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED
                && attempt == 0
                && let Auth::Token(_) = auth
            {
                // The session expired: forget it and log in again.
                self.auth.lock().expect("auth cache").remove(&t.auth_key());
                continue;
            }
            if missing_ok && matches!(status, StatusCode::NOT_FOUND | StatusCode::NOT_IMPLEMENTED) {
                return Ok(None);
            }
            if !status.is_success() {
                let detail = resp.text().await.unwrap_or_default();
                let why = serde_json::from_str::<Value>(&detail)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/error/@Message.ExtendedInfo/0/Message")
                            .or_else(|| v.pointer("/error/message"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                let hint = if status == StatusCode::UNAUTHORIZED {
                    " (wrong bmc_username or bmc_password?)"
                } else {
                    ""
                };
                let kind = match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Authentication,
                    StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                        ErrorKind::Unsupported
                    }
                    _ => ErrorKind::BmcError,
                };
                return Err(DriverError::new(
                    kind,
                    format!(
                        "BMC {}: {method} {path}: HTTP {}{hint}{}{why}",
                        t.base,
                        status.as_u16(),
                        if why.is_empty() { "" } else { ": " }
                    ),
                ));
            }
            let bytes = resp.bytes().await.map_err(|e| unreachable(t, &e))?;
            return Ok(Some(serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
        }
        unreachable!("the loop returns on its second pass")
    }

    /// The path of the node's ComputerSystem (looked up once per BMC).
    async fn system_path(&self, t: &Target) -> Result<String, DriverError> {
        if let Some(id) = &t.system_id {
            return Ok(format!("/redfish/v1/Systems/{id}"));
        }
        let key = (t.base.clone(), String::new());
        if let Some(p) = self.systems.lock().expect("systems cache").get(&key) {
            return Ok(p.clone());
        }
        let list = self
            .call(t, Method::GET, "/redfish/v1/Systems", None)
            .await?;
        let path = list
            .pointer("/Members/0/@odata.id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                DriverError::bmc(format!(
                    "BMC {}: no ComputerSystem in /redfish/v1/Systems",
                    t.base
                ))
            })?
            .to_string();
        self.systems
            .lock()
            .expect("systems cache")
            .insert(key, path.clone());
        Ok(path)
    }

    async fn system(&self, t: &Target) -> Result<(String, Value), DriverError> {
        let path = self.system_path(t).await?;
        let sys = self.call(t, Method::GET, &path, None).await?;
        Ok((path, sys))
    }

    async fn reset(
        &self,
        t: &Target,
        path: &str,
        system: &Value,
        kind: &str,
    ) -> Result<(), DriverError> {
        let target = system
            .pointer("/Actions/#ComputerSystem.Reset/target")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{path}/Actions/ComputerSystem.Reset"));
        self.call(t, Method::POST, &target, Some(json!({"ResetType": kind})))
            .await
            .map(drop)
    }
}

/// `path` (ours, or one the BMC named: `@odata.id`, an action's `target`)
/// as a path on the BMC itself: under `/redfish/v1`, no other origin, no
/// `..`, query, fragment or odd characters. A hostile BMC could otherwise
/// steer the conductor, session token in hand, to another host or port.
fn bmc_path<'a>(t: &Target, path: &'a str) -> Result<&'a str, DriverError> {
    // Some BMCs name their own origin; that is the same place.
    let p = path.strip_prefix(t.base.as_str()).unwrap_or(path);
    let ok = (p == "/redfish/v1" || p.starts_with("/redfish/v1/"))
        && !p.contains("//")
        && !p.split('/').any(|seg| seg == ".." || seg == ".")
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~%:".contains(&b));
    if ok {
        Ok(p)
    } else {
        Err(DriverError::bmc(format!(
            "BMC {}: refused to follow `{}`: not a Redfish path on this BMC",
            t.base,
            path.chars().take(200).collect::<String>()
        )))
    }
}

fn unreachable(t: &Target, e: &reqwest::Error) -> DriverError {
    // The innermost cause says what went wrong (refused, certificate...).
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let cause = root.to_string();
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else if cause.contains("certificate") {
        format!(
            "TLS: {cause} (set control_info.verify_tls=false for a self-signed BMC certificate)"
        )
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        cause
    };
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unreachable
    };
    DriverError::new(kind, format!("BMC {}: {why}", t.base))
}

#[async_trait]
impl Power for Redfish {
    fn properties(&self) -> Properties {
        &[hardware::REDFISH]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Target::of(node).map(drop)
    }

    async fn get_power(&self, node: &NodeInfo) -> Result<PowerState, DriverError> {
        let t = Target::of(node)?;
        let (_, sys) = self.system(&t).await?;
        power_state(&sys)
    }

    async fn set_power(
        &self,
        node: &NodeInfo,
        target: PowerTarget,
    ) -> Result<PowerState, DriverError> {
        let t = Target::of(node)?;
        let (path, sys) = self.system(&t).await?;
        let on = power_state(&sys)? == PowerState::On;
        let (kind, after) = match (target, on) {
            // Already there: a Redfish On/ForceOff of a system in that
            // state is refused by some BMCs, and is a no-op anyway.
            (PowerTarget::On, true) => return Ok(PowerState::On),
            (PowerTarget::Off | PowerTarget::Soft, false) => return Ok(PowerState::Off),
            (PowerTarget::On, false)
            | (PowerTarget::Boot | PowerTarget::Cycle | PowerTarget::Reset, false) => {
                (pick_reset(&sys, &["On", "ForceOn"])?, PowerState::On)
            }
            (PowerTarget::Off, true) => (pick_reset(&sys, &["ForceOff"])?, PowerState::Off),
            (PowerTarget::Soft, true) => {
                (pick_reset(&sys, &["GracefulShutdown"])?, PowerState::Off)
            }
            (PowerTarget::Reset | PowerTarget::Boot, true) => (
                pick_reset(&sys, &["ForceRestart", "GracefulRestart"])?,
                PowerState::On,
            ),
            (PowerTarget::Cycle, true) => (
                pick_reset(&sys, &["PowerCycle", "ForceRestart"])?,
                PowerState::On,
            ),
        };
        self.reset(&t, &path, &sys, kind).await?;
        Ok(after)
    }
}

#[async_trait]
impl Management for Redfish {
    fn properties(&self) -> Properties {
        &[hardware::REDFISH]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Target::of(node).map(drop)
    }

    async fn get_boot_device(&self, node: &NodeInfo) -> Result<BootDevice, DriverError> {
        let t = Target::of(node)?;
        let (_, sys) = self.system(&t).await?;
        let enabled = sys
            .pointer("/Boot/BootSourceOverrideEnabled")
            .and_then(Value::as_str);
        let target = sys
            .pointer("/Boot/BootSourceOverrideTarget")
            .and_then(Value::as_str);
        Ok(match (enabled, target) {
            (Some("Disabled"), _) | (_, None | Some("None")) => BootDevice::Disk,
            (_, Some("Pxe" | "UefiHttp")) => BootDevice::Net,
            (_, Some("Cd")) => BootDevice::Cdrom,
            (_, Some("BiosSetup")) => BootDevice::Bios,
            (_, Some(_)) => BootDevice::Disk,
        })
    }

    async fn set_boot_device(
        &self,
        node: &NodeInfo,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError> {
        let t = Target::of(node)?;
        let path = self.system_path(&t).await?;
        let boot = json!({"Boot": {
            "BootSourceOverrideTarget": boot_target(device),
            "BootSourceOverrideEnabled": if persistent { "Continuous" } else { "Once" },
            "BootSourceOverrideMode": if t.uefi { "UEFI" } else { "Legacy" },
        }});
        self.call(&t, Method::PATCH, &path, Some(boot))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_redfish_paths_on_the_same_bmc_are_followed() {
        let t = Target {
            base: "https://10.0.0.9".into(),
            ..Target::of(&NodeInfo {
                name: "n1".into(),
                mgt: Some(xcat3_common::model::Mgt::Redfish),
                control_info:
                    json!({"bmc_address": "10.0.0.9", "bmc_username": "u", "bmc_password": "p"})
                        .as_object()
                        .unwrap()
                        .clone(),
                console_info: Default::default(),
                power_state: None,
                boot_device: None,
                primary_mac: None,
                nic_macs: vec![],
                vm_host: None,
            })
            .unwrap()
        };
        for ok in [
            "/redfish/v1/Systems",
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            "https://10.0.0.9/redfish/v1/Systems/System.Embedded.1",
        ] {
            assert!(bmc_path(&t, ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:3010/v1/nodes",
            "//127.0.0.1:3010/redfish/v1/",
            "https://10.0.0.9.evil/redfish/v1/Systems",
            "https://10.0.0.9:8443/redfish/v1/Systems",
            "/redfish/v1/../../v1/nodes",
            "/redfish/v1/Systems?x=1",
            "/redfish/v1/Systems#x",
            "/metrics",
            "/redfish/v1/Systems/1\\..",
            "redfish/v1/Systems",
        ] {
            let e = bmc_path(&t, bad).unwrap_err().message;
            assert!(e.contains("not a Redfish path on this BMC"), "{bad}: {e}");
        }
    }

    #[test]
    fn reset_types_come_from_what_the_bmc_offers() {
        let sys = json!({"Actions": {"#ComputerSystem.Reset": {
            "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulRestart"]}}});
        assert_eq!(
            pick_reset(&sys, &["ForceRestart", "GracefulRestart"]).unwrap(),
            "GracefulRestart"
        );
        let e = pick_reset(&sys, &["PowerCycle"]).unwrap_err();
        assert_eq!(
            e.message,
            "Redfish: the BMC offers none of PowerCycle (it offers On, ForceOff, GracefulRestart)"
        );
        assert_eq!(
            pick_reset(&json!({}), &["PowerCycle"]).unwrap(),
            "PowerCycle"
        );
    }

    #[test]
    fn power_states_map() {
        assert_eq!(
            power_state(&json!({"PowerState": "PoweringOn"})).unwrap(),
            PowerState::On
        );
        assert_eq!(
            power_state(&json!({"PowerState": "Off"})).unwrap(),
            PowerState::Off
        );
        assert!(power_state(&json!({})).is_err());
    }
}
