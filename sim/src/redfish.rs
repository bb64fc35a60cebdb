//! The Redfish fleet: N BMCs, each an HTTP server on its own loopback
//! address, with one ComputerSystem (`/redfish/v1/Systems/1`): power
//! state, reset actions (advertised in `ResetType@Redfish.AllowableValues`),
//! boot override, the indicator LED, sessions (`X-Auth-Token`) and HTTP
//! basic auth; for inspection its Processors, Memory, Storage and
//! EthernetInterfaces, a chassis with Thermal and Power, a manager, a
//! firmware inventory, and a log service that resets write to.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

const SYSTEM: &str = "/redfish/v1/Systems/1";
const RESETS: &[&str] = &[
    "On",
    "ForceOff",
    "GracefulShutdown",
    "GracefulRestart",
    "ForceRestart",
    "PowerCycle",
];

#[derive(Debug, Clone, Serialize)]
pub struct Chassis {
    pub power_on: bool,
    pub boot_target: String,
    pub boot_enabled: String,
    pub boot_mode: String,
    /// Reset types applied, in order (last 16).
    pub history: Vec<String>,
    /// `Off`, `Lit` or `Blinking`.
    pub indicator_led: String,
    /// Log entries (Id, Created, Severity, Message), oldest first.
    #[serde(skip)]
    pub log: Vec<Value>,
    pub log_entries: usize,
    #[serde(skip)]
    next_log_id: u64,
}

impl Chassis {
    fn log(&mut self, severity: &str, message: &str) {
        if self.log.len() == 512 {
            self.log.remove(0);
        }
        self.next_log_id += 1;
        let id = self.next_log_id;
        self.log.push(json!({
            "@odata.id": format!("{SYSTEM}/LogServices/Log/Entries/{id}"),
            "Id": id.to_string(), "Name": format!("Log Entry {id}"),
            "EntryType": "Event", "Severity": severity, "Message": message,
            "Created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }));
        self.log_entries = self.log.len();
    }
}

struct Bmc {
    /// Its place in the fleet (serials, MACs).
    index: u32,
    user: String,
    password: String,
    latency: Duration,
    chassis: Mutex<Chassis>,
    tokens: Mutex<HashSet<String>>,
}

type Shared = Arc<Bmc>;

/// A member: its address and BMC.
pub struct Member {
    pub addr: SocketAddr,
    bmc: Shared,
}

impl Member {
    pub fn chassis(&self) -> Chassis {
        self.bmc.chassis.lock().expect("chassis").clone()
    }
}

fn random_token() -> String {
    xcat3_common::random_hex(16)
}

/// Answers after the configured latency; refuses what is not authenticated.
async fn gate(State(bmc): State<Shared>, req: Request, next: Next) -> Response {
    if !bmc.latency.is_zero() {
        tokio::time::sleep(bmc.latency).await;
    }
    let open = req.uri().path() == "/redfish/v1"
        || (req.method() == axum::http::Method::POST
            && req.uri().path() == "/redfish/v1/SessionService/Sessions");
    if open || authorized(&bmc, req.headers()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(error("Authentication required")),
        )
            .into_response()
    }
}

fn authorized(bmc: &Bmc, h: &HeaderMap) -> bool {
    if let Some(t) = h.get("X-Auth-Token").and_then(|v| v.to_str().ok()) {
        return bmc.tokens.lock().expect("tokens").contains(t);
    }
    let Some(basic) = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    decoded.as_deref() == Some(&format!("{}:{}", bmc.user, bmc.password))
}

fn error(message: &str) -> Value {
    json!({"error": {"code": "Base.1.0.GeneralError", "message": message,
        "@Message.ExtendedInfo": [{"Message": message}]}})
}

async fn root() -> Json<Value> {
    Json(
        json!({"@odata.id": "/redfish/v1", "RedfishVersion": "1.6.0",
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Chassis": {"@odata.id": "/redfish/v1/Chassis"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "UpdateService": {"@odata.id": "/redfish/v1/UpdateService"},
        "SessionService": {"@odata.id": "/redfish/v1/SessionService"}}),
    )
}

async fn login(State(bmc): State<Shared>, Json(body): Json<Value>) -> Response {
    let user = body.get("UserName").and_then(Value::as_str).unwrap_or("");
    let password = body.get("Password").and_then(Value::as_str).unwrap_or("");
    if user != bmc.user || password != bmc.password {
        return (StatusCode::UNAUTHORIZED, Json(error("Invalid credentials"))).into_response();
    }
    let token = random_token();
    bmc.tokens.lock().expect("tokens").insert(token.clone());
    let location = format!("/redfish/v1/SessionService/Sessions/{token}");
    (
        StatusCode::CREATED,
        [
            ("X-Auth-Token", token.clone()),
            (header::LOCATION.as_str(), location.clone()),
        ],
        Json(json!({"@odata.id": location, "Id": token, "UserName": user})),
    )
        .into_response()
}

async fn logout(
    State(bmc): State<Shared>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> StatusCode {
    bmc.tokens.lock().expect("tokens").remove(&id);
    StatusCode::NO_CONTENT
}

async fn systems() -> Json<Value> {
    Json(
        json!({"@odata.id": "/redfish/v1/Systems", "Members@odata.count": 1,
        "Members": [{"@odata.id": SYSTEM}]}),
    )
}

/// The MAC of the node's first nic as `xcat3-sim --export-nodes` writes it.
fn nic_mac(index: u32, second: bool) -> String {
    let n = index + 1;
    format!(
        "02:{:02x}:5e:{:02x}:{:02x}:{:02x}",
        u8::from(second),
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

async fn system(State(bmc): State<Shared>) -> Json<Value> {
    let c = bmc.chassis.lock().expect("chassis").clone();
    let link = |p: &str| json!({"@odata.id": format!("{SYSTEM}/{p}")});
    Json(json!({
        "@odata.id": SYSTEM, "Id": "1", "Name": "xcat3-sim",
        "Manufacturer": "xCAT3 Sim", "Model": "SimServer 2000",
        "SerialNumber": format!("RF{:06}", bmc.index + 1),
        "PartNumber": "XS-2000-01",
        "UUID": format!("5a1e0000-0000-4000-8000-{:012x}", bmc.index + 1),
        "BiosVersion": "2.4.1",
        "PowerState": if c.power_on { "On" } else { "Off" },
        "IndicatorLED": c.indicator_led,
        "ProcessorSummary": {"Count": 2, "Model": "Sim Xeon 6430"},
        "MemorySummary": {"TotalSystemMemoryGiB": 128},
        "Processors": link("Processors"), "Memory": link("Memory"),
        "Storage": link("Storage"), "EthernetInterfaces": link("EthernetInterfaces"),
        "LogServices": link("LogServices"),
        "Links": {"Chassis": [{"@odata.id": CHASSIS}], "ManagedBy": [{"@odata.id": MANAGER}]},
        "Boot": {
            "BootSourceOverrideTarget": c.boot_target,
            "BootSourceOverrideEnabled": c.boot_enabled,
            "BootSourceOverrideMode": c.boot_mode,
            "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Hdd", "Cd", "BiosSetup"],
        },
        "Actions": {"#ComputerSystem.Reset": {
            "target": format!("{SYSTEM}/Actions/ComputerSystem.Reset"),
            "ResetType@Redfish.AllowableValues": RESETS,
        }},
    }))
}

const CHASSIS: &str = "/redfish/v1/Chassis/1";
const MANAGER: &str = "/redfish/v1/Managers/1";

fn collection(path: &str, members: &[String]) -> Json<Value> {
    Json(json!({
        "@odata.id": path, "Members@odata.count": members.len(),
        "Members": members.iter().map(|m| json!({"@odata.id": m})).collect::<Vec<_>>(),
    }))
}

/// `/redfish/v1/...` resources for inspection, by path under the system,
/// chassis, manager and update service.
async fn resource(
    State(bmc): State<Shared>,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Response {
    let path = format!("/redfish/v1/{rest}");
    let on = bmc.chassis.lock().expect("chassis").power_on;
    let i = bmc.index;
    let members = |base: &str, ids: &[&str]| -> Vec<String> {
        ids.iter().map(|id| format!("{base}/{id}")).collect()
    };
    let v = match rest.as_str() {
        "Chassis" => return collection(&path, &[CHASSIS.to_string()]).into_response(),
        "Managers" => return collection(&path, &[MANAGER.to_string()]).into_response(),
        "Systems/1/Processors" => {
            return collection(&path, &members(&path, &["CPU1", "CPU2"])).into_response();
        }
        "Systems/1/Memory" => {
            return collection(
                &path,
                &members(&path, &["DIMM_A1", "DIMM_B1", "DIMM_C1", "DIMM_D1"]),
            )
            .into_response();
        }
        "Systems/1/Storage" => return collection(&path, &members(&path, &["1"])).into_response(),
        "Systems/1/EthernetInterfaces" => {
            return collection(&path, &members(&path, &["1", "2"])).into_response();
        }
        "Systems/1/LogServices" => {
            return collection(&path, &members(&path, &["Log"])).into_response();
        }
        "UpdateService/FirmwareInventory" => {
            return collection(&path, &members(&path, &["BMC", "BIOS"])).into_response();
        }
        "Systems/1/Processors/CPU1" | "Systems/1/Processors/CPU2" => json!({
            "Id": &rest[rest.len() - 4..], "Socket": &rest[rest.len() - 4..],
            "Manufacturer": "Sim", "Model": "Sim Xeon 6430", "TotalCores": 32,
            "TotalThreads": 64, "MaxSpeedMHz": 4000, "Status": {"State": "Enabled", "Health": "OK"},
        }),
        r if r.starts_with("Systems/1/Memory/DIMM_") => {
            let id = &r["Systems/1/Memory/".len()..];
            // One slot is empty, as in most servers.
            if id == "DIMM_D1" {
                json!({"Id": id, "Status": {"State": "Absent"}})
            } else {
                json!({"Id": id, "CapacityMiB": 32768, "MemoryDeviceType": "DDR5",
                    "OperatingSpeedMhz": 4800, "Manufacturer": "Sim",
                    "SerialNumber": format!("M{i:06}{id}"), "Status": {"State": "Enabled", "Health": "OK"}})
            }
        }
        "Systems/1/Storage/1" => json!({
            "Id": "1", "Name": "Sim RAID",
            "Drives": [{"@odata.id": format!("{path}/Drives/0")}, {"@odata.id": format!("{path}/Drives/1")}],
        }),
        "Systems/1/Storage/1/Drives/0" | "Systems/1/Storage/1/Drives/1" => json!({
            "Id": &rest[rest.len() - 1..], "Model": "Sim NVMe 1.92TB", "CapacityBytes": 1_920_383_410_176u64,
            "MediaType": "SSD", "Protocol": "NVMe", "SerialNumber": format!("D{i:06}{}", &rest[rest.len() - 1..]),
        }),
        "Systems/1/EthernetInterfaces/1" | "Systems/1/EthernetInterfaces/2" => {
            let second = rest.ends_with('2');
            json!({"Id": &rest[rest.len() - 1..], "MACAddress": nic_mac(i, second).to_uppercase(),
                "Status": {"State": "Enabled"}})
        }
        "Systems/1/LogServices/Log" => json!({
            "Id": "Log", "Name": "System Event Log",
            "Entries": {"@odata.id": format!("{path}/Entries")},
            "Actions": {"#LogService.ClearLog": {"target": format!("{path}/Actions/LogService.ClearLog")}},
        }),
        "Systems/1/LogServices/Log/Entries" => {
            let log = bmc.chassis.lock().expect("chassis").log.clone();
            json!({"@odata.id": path, "Members@odata.count": log.len(), "Members": log})
        }
        "Chassis/1" => json!({
            "Id": "1", "Name": "Sim Chassis", "ChassisType": "RackMount",
            "Thermal": {"@odata.id": format!("{CHASSIS}/Thermal")},
            "Power": {"@odata.id": format!("{CHASSIS}/Power")},
        }),
        "Chassis/1/Thermal" => {
            let t = |name: &str, c: u32, nc: u32, cr: u32| {
                json!({"Name": name,
                "ReadingCelsius": if on { Some(c + i % 4) } else { None },
                "UpperThresholdNonCritical": nc, "UpperThresholdCritical": cr,
                "Status": {"State": if on { "Enabled" } else { "StandbyOffline" }, "Health": "OK"}})
            };
            let fan = |name: &str, rpm: u32| {
                json!({"Name": name,
                "Reading": if on { Some(rpm + 40 * (i % 5)) } else { None }, "ReadingUnits": "RPM",
                "LowerThresholdCritical": 800,
                "Status": {"State": if on { "Enabled" } else { "StandbyOffline" }, "Health": "OK"}})
            };
            json!({"Temperatures": [t("CPU1 Temp", 47, 85, 95), t("CPU2 Temp", 49, 85, 95),
                    json!({"Name": "Inlet Temp", "ReadingCelsius": 23 + i % 3,
                        "UpperThresholdNonCritical": 40, "UpperThresholdCritical": 45,
                        "Status": {"State": "Enabled", "Health": "OK"}})],
                "Fans": [fan("FAN1", 5400), fan("FAN2", 5480)]})
        }
        "Chassis/1/Power" => json!({
            "Voltages": [{"Name": "12V", "ReadingVolts": 12.06, "LowerThresholdCritical": 10.8,
                "UpperThresholdCritical": 13.2, "Status": {"State": "Enabled", "Health": "OK"}}],
            "PowerControl": [{"Name": "System Power", "PowerConsumedWatts": if on { 410 + i % 20 } else { 12 }}],
            "PowerSupplies": [{"Name": "PSU1", "PowerInputWatts": if on { 215 } else { 8 },
                "Status": {"State": "Enabled", "Health": "OK"}},
                {"Name": "PSU2", "Status": {"State": "Absent"}}],
        }),
        "Managers/1" => json!({"Id": "1", "Model": "Sim BMC", "FirmwareVersion": "5.10.2"}),
        "UpdateService" => {
            json!({"FirmwareInventory": {"@odata.id": "/redfish/v1/UpdateService/FirmwareInventory"}})
        }
        "UpdateService/FirmwareInventory/BMC" => {
            json!({"Id": "BMC", "Name": "BMC", "Version": "5.10.2"})
        }
        "UpdateService/FirmwareInventory/BIOS" => {
            json!({"Id": "BIOS", "Name": "BIOS", "Version": "2.4.1"})
        }
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(error(&format!("{path} not found"))),
            )
                .into_response();
        }
    };
    let mut v = v;
    v["@odata.id"] = json!(path);
    Json(v).into_response()
}

async fn clear_log(State(bmc): State<Shared>) -> StatusCode {
    let mut c = bmc.chassis.lock().expect("chassis");
    c.log.clear();
    c.log("OK", "Log cleared");
    StatusCode::NO_CONTENT
}

async fn reset(State(bmc): State<Shared>, Json(body): Json<Value>) -> Response {
    let kind = body.get("ResetType").and_then(Value::as_str).unwrap_or("");
    if !RESETS.contains(&kind) {
        return (
            StatusCode::BAD_REQUEST,
            Json(error(&format!("ResetType {kind} is not supported"))),
        )
            .into_response();
    }
    let mut c = bmc.chassis.lock().expect("chassis");
    c.power_on = !matches!(kind, "ForceOff" | "GracefulShutdown");
    // A one-time override is used up by the boot it applied to.
    let boots = matches!(
        kind,
        "On" | "ForceRestart" | "GracefulRestart" | "PowerCycle"
    );
    if boots && c.boot_enabled == "Once" {
        c.boot_enabled = "Disabled".into();
        c.boot_target = "None".into();
    }
    if c.history.len() == 16 {
        c.history.remove(0);
    }
    c.history.push(kind.to_string());
    c.log("OK", &format!("System reset: {kind}"));
    StatusCode::NO_CONTENT.into_response()
}

async fn patch_system(State(bmc): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Some(led) = body.get("IndicatorLED") {
        return match led.as_str() {
            Some(v @ ("Off" | "Lit" | "Blinking")) => {
                bmc.chassis.lock().expect("chassis").indicator_led = v.to_string();
                StatusCode::NO_CONTENT.into_response()
            }
            _ => (
                StatusCode::BAD_REQUEST,
                Json(error("IndicatorLED: one of Off, Lit, Blinking")),
            )
                .into_response(),
        };
    }
    let Some(boot) = body.get("Boot") else {
        return (
            StatusCode::BAD_REQUEST,
            Json(error("only Boot and IndicatorLED can be changed")),
        )
            .into_response();
    };
    let field = |k: &str, allowed: &[&str]| -> Result<Option<String>, String> {
        match boot.get(k).and_then(Value::as_str) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
            Some(v) => Err(format!("{k}: {v} is not allowed")),
        }
    };
    let parsed = (|| -> Result<_, String> {
        Ok((
            field(
                "BootSourceOverrideTarget",
                &["None", "Pxe", "Hdd", "Cd", "BiosSetup"],
            )?,
            field(
                "BootSourceOverrideEnabled",
                &["Disabled", "Once", "Continuous"],
            )?,
            field("BootSourceOverrideMode", &["UEFI", "Legacy"])?,
        ))
    })();
    match parsed {
        Ok((target, enabled, mode)) => {
            let mut c = bmc.chassis.lock().expect("chassis");
            if let Some(t) = target {
                c.boot_target = t;
            }
            if let Some(e) = enabled {
                c.boot_enabled = e;
            }
            if let Some(m) = mode {
                c.boot_mode = m;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, Json(error(&e))).into_response(),
    }
}

fn app(bmc: Shared) -> Router {
    Router::new()
        .route("/redfish/v1", get(root))
        .route("/redfish/v1/SessionService/Sessions", post(login))
        .route("/redfish/v1/SessionService/Sessions/{id}", delete(logout))
        .route("/redfish/v1/Systems", get(systems))
        .route(SYSTEM, get(system).patch(patch_system))
        .route(
            &format!("{SYSTEM}/Actions/ComputerSystem.Reset"),
            post(reset),
        )
        .route(
            &format!("{SYSTEM}/LogServices/Log/Actions/LogService.ClearLog"),
            post(clear_log),
        )
        .route("/redfish/v1/{*rest}", get(resource))
        .layer(middleware::from_fn_with_state(bmc.clone(), gate))
        .with_state(bmc)
}

/// Starts `count` BMCs from `first` on `port`.
pub async fn start(
    count: u32,
    first: Ipv4Addr,
    port: u16,
    user: &str,
    password: &str,
    latency: Duration,
) -> anyhow::Result<Vec<Member>> {
    let mut members = Vec::with_capacity(count as usize);
    for index in 0..count {
        let ip = crate::fleet::nth_loopback(first, index)?;
        let addr = SocketAddr::new(ip.into(), port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let mut chassis = Chassis {
            power_on: false,
            boot_target: "None".into(),
            boot_enabled: "Disabled".into(),
            boot_mode: "UEFI".into(),
            history: vec![],
            indicator_led: "Off".into(),
            log: vec![],
            log_entries: 0,
            next_log_id: 0,
        };
        chassis.log("OK", "Log cleared");
        let bmc = Arc::new(Bmc {
            index,
            user: user.to_string(),
            password: password.to_string(),
            latency,
            chassis: Mutex::new(chassis),
            tokens: Mutex::default(),
        });
        let router = app(bmc.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        members.push(Member { addr, bmc });
    }
    Ok(members)
}

/// Writes `{"ADDR": {"chassis": ...}}` for every member.
pub fn write_state(members: &[Member], path: &Path) -> anyhow::Result<()> {
    let all: serde_json::Map<String, Value> = members
        .iter()
        .map(|m| (m.addr.ip().to_string(), json!({"chassis": m.chassis()})))
        .collect();
    crate::fleet::write_json(path, &Value::Object(all))
}
