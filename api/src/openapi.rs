//! The OpenAPI 3.1 document served at `/v1/openapi.json`, derived from the
//! handlers' `#[utoipa::path]` annotations and the typed shapes in
//! `wire`. What every operation shares is added here, in one place, from
//! the rules the server itself runs: the fault replies each kind of
//! operation can give, the bearer scheme and the role each route needs
//! (`auth::required_role`), and links from creates to the reads of what
//! they made.

use std::sync::OnceLock;

use axum::http::Method;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::auth::{self, Role};
use crate::routes;
use crate::wire;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "xcat3 API",
        version = "1.1",
        description = "Wire-compatible with xcat3 v1. Multi-node requests name their nodes with ?noderange= (v1 clients may send {\"nodes\": [{\"name\": ...}]} in the body instead) and answer one result per node. Errors are {faultcode, faultstring, debuginfo}; faultstring names the node and the field."
    ),
    components(schemas(
        crate::wire::Fault,
        xcat3_common::rpc::ErrorKind,
        // Query parameter types (parameters are not collected on their own).
        xcat3_common::rpc::PowerTarget,
        xcat3_common::rpc::BootDevice,
        xcat3_common::inspect::Beacon,
        wire::NodeRange,
        wire::Mac,
        wire::ProvisionWord,
        wire::SensorWord,
        wire::StateWord,
        wire::PowerStateWord,
        wire::HealthWord,
        wire::NodeFields,
        wire::GroupFields,
        wire::NicFields,
        wire::NetworkFields,
        wire::OsImageFields,
        wire::PasswdFields,
    ))
)]
struct Root;

/// The document as served (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    let mut doc = Root::openapi();
    for part in [
        routes::root::Doc::openapi(),
        routes::nodes::Doc::openapi(),
        routes::actions::Doc::openapi(),
        routes::inspect::Doc::openapi(),
        routes::console::Doc::openapi(),
        routes::groups::Doc::openapi(),
        routes::nics::Doc::openapi(),
        routes::networks::Doc::openapi(),
        routes::passwds::Doc::openapi(),
        routes::osimages::Doc::openapi(),
        routes::services::Doc::openapi(),
        routes::drivers::Doc::openapi(),
        routes::requests::Doc::openapi(),
        routes::vms::Doc::openapi(),
        routes::remote::Doc::openapi(),
        routes::scripts::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    let mut doc = serde_json::to_value(doc).expect("the document serializes");
    doc["security"] = json!([{}, {"bearer": []}]);
    doc["components"]["securitySchemes"] = json!({"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "With [api] auth = \"token\": a token from `xcat3-api token create`. Readers may read; operators also change power, boot device, provisioning, the beacon and clear event logs; admins everything. Each operation's x-xcat3-role names the least role it needs."}});
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(ops) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in ops.iter_mut() {
                let Ok(m) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                faults(path, &m, op);
            }
        }
    }
    links(&mut doc);
    binary_upload(&mut doc);
    path_words(&mut doc);
    websocket(&mut doc);
    doc
}

/// The console is a websocket: its GET carries the upgrade headers
/// (RFC 6455), and answers 101 when they are right.
fn websocket(doc: &mut Value) {
    let Some(op) = doc["paths"]["/v1/nodes/{name}/console"]["get"].as_object_mut() else {
        return;
    };
    let header = |name: &str, schema: Value| json!({"name": name, "in": "header", "required": true, "schema": schema});
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        params.push(header(
            "Upgrade",
            json!({"type": "string", "enum": ["websocket"]}),
        ));
        params.push(header(
            "Connection",
            json!({"type": "string", "enum": ["Upgrade"]}),
        ));
        params.push(header(
            "Sec-WebSocket-Version",
            json!({"type": "string", "enum": ["13"]}),
        ));
        params.push(header(
            "Sec-WebSocket-Key",
            json!({"type": "string", "pattern": "^[A-Za-z0-9+/]{21}[AQgw]==$"}),
        ));
    }
}

/// The path parameter of `path` and the sibling routes' words it cannot be.
fn path_words_of(path: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match path {
        "/v1/nodes/{name}" => ("name", xcat3_common::model::RESERVED_NODE_NAMES),
        "/v1/nics/{uuid}" => ("uuid", &["address", "node"]),
        "/v1/passwds/{key}" => ("key", &["get_by_id"]),
        "/v1/osimages/{name}" => ("name", &["get_by_id"]),
        _ => return None,
    })
}

/// A path parameter never takes the word of a sibling route
/// (`/v1/nodes/power` is not the node `power`): the document says so.
fn path_words(doc: &mut Value) {
    for path in [
        "/v1/nodes/{name}",
        "/v1/nics/{uuid}",
        "/v1/passwds/{key}",
        "/v1/osimages/{name}",
    ] {
        let (param, words) = path_words_of(path).expect("listed");
        let Some(item) = doc["paths"][path].as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            for p in op["parameters"].as_array_mut().into_iter().flatten() {
                if p["name"] == param && p["in"] == "path" {
                    p["schema"] = json!({"type": "string", "minLength": 1, "not": {"enum": words}});
                }
            }
        }
    }
}

fn fault(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Fault"}}}})
}

/// Query-parameter lookups of one resource (404 when there is none).
const LOOKUPS: &[&str] = &[
    "/v1/nics/address",
    "/v1/nics/node",
    "/v1/passwds/get_by_id",
    "/v1/osimages/get_by_id",
    "/v1/services/hostname",
];

/// Adds the fault replies `op` can give, and its security, from what it
/// takes and the role `auth` requires for it.
fn faults(path: &str, method: &Method, op: &mut Value) {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let has_body = op.get("requestBody").is_some();
    let json_body = op["requestBody"]["content"]
        .get("application/json")
        .is_some();
    let in_path = params.iter().any(|p| p["in"] == "path");
    let multi_node = params.iter().any(|p| p["name"] == "noderange");
    if multi_node {
        // Names the operations that take a noderange, for tools that
        // treat them alike (the conformance test's configuration).
        op["x-xcat3-noderange"] = json!(true);
    }
    let responses = op["responses"].as_object_mut().expect("responses");
    let mut add = |code: &str, text: &str| {
        responses
            .entry(code.to_string())
            .or_insert_with(|| fault(text));
    };
    if !params.is_empty() || has_body {
        add(
            "400",
            "bad input: the message names the node (when there is one) and the field",
        );
    }
    // A nic is created on a node named by name or id.
    let creates_on_node = path == "/v1/nics" && *method == Method::POST;
    if in_path || creates_on_node || LOOKUPS.contains(&path) {
        add("404", "no such resource");
    }
    if path_words_of(path).is_some() {
        // A sibling route's word in the path is that route, with its own
        // methods and role.
        add(
            "405",
            "the path parameter is the word of a sibling route, which does not take this method",
        );
        if auth::required_role(method, path).is_some() {
            add(
                "403",
                "the path parameter is the word of a sibling route the token's role may not use",
            );
        }
    }
    if matches!(*method, Method::POST | Method::PATCH | Method::DELETE) {
        add(
            "409",
            "conflicts with what is stored (the name or MAC is taken, the resource is in use)",
        );
    }
    if json_body {
        add(
            "415",
            "the body is not declared as JSON (Content-Type: application/json)",
        );
    }
    if json_body || multi_node {
        add(
            "413",
            "too large: more nodes than [api] max_nodes_per_request, or too big a body",
        );
    }
    add(
        "503",
        "the database or the message bus is unavailable; retry",
    );
    match auth::required_role(method, path) {
        None => {
            op["security"] = json!([]);
        }
        Some(role) => {
            op["x-xcat3-role"] = json!(role.as_str());
            let responses = op["responses"].as_object_mut().expect("responses");
            responses.entry("401").or_insert_with(|| {
                fault("with [api] auth = \"token\": no token, or one that is unknown, revoked or expired")
            });
            if role > Role::Reader || path == "/v1/nodes/export" {
                responses.entry("403").or_insert_with(|| {
                    fault(&format!("the token's role is below {}", role.as_str()))
                });
            }
        }
    }
}

/// Links from each create to reading and deleting what it made (what a
/// client, or a stateful test, does next).
fn links(doc: &mut Value) {
    let table: &[(&str, &str, &str, &str, &[&str])] = &[
        // (path, method, status, parameter <- expression, linked operations)
        (
            "/v1/nodes",
            "post",
            "201",
            "name=$request.body#/nodes/0/name",
            &["show_node"],
        ),
        (
            "/v1/networks",
            "post",
            "201",
            "name=$request.body#/name",
            &["show_network", "update_network", "delete_network"],
        ),
        (
            "/v1/passwds",
            "post",
            "201",
            "key=$request.body#/key",
            &["show_passwd", "update_passwd", "delete_passwd"],
        ),
        (
            "/v1/groups",
            "post",
            "201",
            "name=$request.body#/name",
            &["show_group", "update_group", "delete_group"],
        ),
        (
            "/v1/nics",
            "post",
            "201",
            "mac=$request.body#/mac",
            &["show_nic_by_mac"],
        ),
        (
            "/v1/osimages",
            "post",
            "201",
            "name=$response.body#/name",
            &["show_osimage", "update_osimage", "delete_osimage"],
        ),
    ];
    for (path, method, status, param, targets) in table {
        let (name, expr) = param.split_once('=').expect("name=expression");
        let mut links = Map::new();
        for t in *targets {
            links.insert(
                t.to_string(),
                json!({"operationId": t, "parameters": {name: expr}}),
            );
        }
        let response = &mut doc["paths"][path][method]["responses"][status];
        if response.is_object() {
            response["links"] = Value::Object(links);
        }
    }
}

/// copycds takes the ISO as raw bytes.
fn binary_upload(doc: &mut Value) {
    let body = &mut doc["paths"]["/v1/osimages"]["post"]["requestBody"]["content"]["application/octet-stream"];
    if body.is_object() {
        *body =
            json!({"schema": {"type": "string", "contentMediaType": "application/octet-stream"}});
    }
}
