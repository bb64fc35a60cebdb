//! The Redfish fleet: N BMCs, each an HTTP server on its own loopback
//! address, with one ComputerSystem (`/redfish/v1/Systems/1`): power
//! state, reset actions (advertised in `ResetType@Redfish.AllowableValues`),
//! boot override, sessions (`X-Auth-Token`) and HTTP basic auth.

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
}

struct Bmc {
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

async fn system(State(bmc): State<Shared>) -> Json<Value> {
    let c = bmc.chassis.lock().expect("chassis").clone();
    Json(json!({
        "@odata.id": SYSTEM, "Id": "1", "Name": "xcat3-sim",
        "PowerState": if c.power_on { "On" } else { "Off" },
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
    StatusCode::NO_CONTENT.into_response()
}

async fn patch_system(State(bmc): State<Shared>, Json(body): Json<Value>) -> Response {
    let Some(boot) = body.get("Boot") else {
        return (
            StatusCode::BAD_REQUEST,
            Json(error("only Boot can be changed")),
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
    for i in 0..count {
        let ip = crate::fleet::nth_loopback(first, i)?;
        let addr = SocketAddr::new(ip.into(), port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let bmc = Arc::new(Bmc {
            user: user.to_string(),
            password: password.to_string(),
            latency,
            chassis: Mutex::new(Chassis {
                power_on: false,
                boot_target: "None".into(),
                boot_enabled: "Disabled".into(),
                boot_mode: "UEFI".into(),
                history: vec![],
            }),
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
