//! The OpenAPI document checked from outside: Schemathesis (PyPI) runs
//! every check it has, stateful phase included, against a standalone API
//! seeded with nodes, networks, nics, passwords, a group and an osimage;
//! once as an admin, once with a reader token (writes must be the 403s
//! the document lists). And a Python client generated from the document
//! by openapi-python-client creates, lists and powers nodes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use xcat3_tests::{Api, TempDir, bin_dir, make_iso};

/// The venv `scripts/test` makes with schemathesis and
/// openapi-python-client.
fn venv() -> PathBuf {
    PathBuf::from(std::env::var("XCAT3_TEST_OPENAPI_VENV").expect(
        "XCAT3_TEST_OPENAPI_VENV is not set: run scripts/test, which makes the venv with schemathesis and openapi-python-client",
    ))
}

/// `curl -X METHOD URL` with a JSON body; (status, parsed reply).
fn http(api: &Api, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"])
        .arg(format!("{}{path}", api.url));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(b.to_string());
    }
    let out = cmd
        .output()
        .expect("curl (Debian package curl) is required; scripts/test installs it");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (reply, code) = text.rsplit_once('\n').expect("status line");
    (
        code.trim().parse().expect("status"),
        serde_json::from_str(reply).unwrap_or(Value::Null),
    )
}

fn created(api: &Api, path: &str, body: Value) {
    let (s, v) = http(api, "POST", path, Some(&body));
    assert_eq!(s, 201, "POST {path}: {v}");
}

/// What a site holds on its first day: fake-managed nodes with nics, a
/// network holding their addresses, a password, a group, an osimage.
fn seed(api: &Api, dir: &Path) {
    created(
        api,
        "/v1/networks",
        json!({"name": "mgmt", "subnet": "10.20.0.0", "netmask": "255.255.0.0",
               "gateway": "10.20.0.1", "dynamic_range": "10.20.200.1-10.20.200.100"}),
    );
    created(
        api,
        "/v1/passwds",
        json!({"key": "system", "username": "root", "password": "cluster", "crypt_method": "sha512"}),
    );
    created(
        api,
        "/v1/groups",
        json!({"name": "compute", "mgt": "fake", "arch": "x86_64"}),
    );
    let nodes: Vec<Value> = (1..=20)
        .map(|i| {
            json!({"name": format!("n{i}"), "mgt": "fake", "groups": ["compute"],
                   "nics_info": {"nics": [{"mac": format!("52:54:00:20:00:{i:02x}"),
                                           "ip": format!("10.20.0.{}", 10 + i), "primary": true}]}})
        })
        .collect();
    let (s, v) = http(api, "POST", "/v1/nodes", Some(&json!({ "nodes": nodes })));
    assert_eq!(s, 201, "{v}");
    assert!(
        v["nodes"].as_object().unwrap().values().all(|r| r == "ok"),
        "{v}"
    );
    let kernel = vec![7u8; 4096];
    let iso = make_iso(
        dir,
        "debian-12.5.0-amd64-netinst",
        &[
            (".disk/info", b"Debian GNU/Linux 12.5.0 \"Bookworm\" - Official amd64 NETINST with firmware 20240210-11:27"),
            ("install.amd/vmlinuz", &kernel),
            ("install.amd/initrd.gz", &kernel),
        ],
    );
    let run = api.xcat3(&["copycds", iso.to_str().unwrap()]);
    run.ok();
}

/// Runs `st run` on the API's document with every check and phase;
/// returns its output, asserting it found nothing.
fn schemathesis(api: &Api, dir: &Path, token: Option<&str>) -> String {
    let seed = std::env::var("XCAT3_TEST_ST_SEED").unwrap_or_else(|_| "1".to_string());
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schemathesis.toml");
    let mut cmd = Command::new(venv().join("bin/st"));
    cmd.arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/v1/openapi.json", api.url)])
        .args([
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
        ])
        .args(["--max-examples", "30", "--seed", &seed, "--workers", "1"])
        .args(["--no-color", "--suppress-health-check", "all"])
        .arg("--report-dir")
        .arg(dir.join("st-report"))
        .current_dir(dir);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.output().expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("schemathesis seed {seed}:\n{text}");
    assert!(
        out.status.success(),
        "schemathesis (seed {seed}) found failures:\n{text}"
    );
    text
}

/// The admin's API: a `genimage` that passes validation fails fast at
/// its mirror (a closed port) instead of bootstrapping Debian once per
/// generated name; real builds are `tests/e2e/images.rs`'.
fn admin_api(data: &Path) -> Api {
    let cache = data.join("genimage-cache");
    Api::standalone_with(
        data,
        &[
            ("XCAT3_GENIMAGE_MIRROR", "http://127.0.0.1:1/debian"),
            ("XCAT3_GENIMAGE_CACHE_DIR", cache.to_str().unwrap()),
        ],
    )
}

#[test]
fn schemathesis_finds_no_failure_as_admin() {
    let dir = TempDir::new("openapi-st");
    let api = admin_api(&dir.path().join("data"));
    seed(&api, dir.path());
    let text = schemathesis(&api, dir.path(), None);
    // Every operation was exercised, and the stateful phase ran links.
    assert!(text.contains("Stateful"), "{text}");
    assert!(!text.contains("Skipped:"), "{text}");
}

#[test]
fn schemathesis_finds_no_failure_as_a_reader() {
    let dir = TempDir::new("openapi-reader");
    let data = dir.path().join("data");
    // Seeded before tokens are required, as an admin would.
    let api = Api::standalone(&data);
    seed(&api, dir.path());
    api.stop();
    let out = Command::new(bin_dir().join("xcat3-api"))
        .args(["--standalone", "--data-dir", data.to_str().unwrap()])
        .args(["token", "create", "rita", "--role", "reader"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("xcat3-api token create");
    assert!(out.status.success(), "{out:?}");
    let reader = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let api = Api::standalone_with(&data, &[("XCAT3_API_AUTH", "token")]);
    let (s, _) = http(&api, "GET", "/v1/nodes", None);
    assert_eq!(s, 401, "auth = token refuses a request without one");
    let text = schemathesis(&api, dir.path(), Some(&reader));
    assert!(!text.contains("Skipped:"), "{text}");
}

#[test]
fn a_generated_python_client_creates_lists_and_powers_nodes() {
    let dir = TempDir::new("openapi-client");
    let api = Api::standalone(&dir.path().join("data"));
    let (s, doc) = http(&api, "GET", "/v1/openapi.json", None);
    assert_eq!(s, 200);
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, doc.to_string()).unwrap();
    let out = Command::new(venv().join("bin/openapi-python-client"))
        .args(["generate", "--meta", "none", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/openapi-python-client.yaml"))
        .arg("--path")
        .arg(&spec)
        .arg("--output-path")
        .arg(dir.path().join("xcat3_api_client"))
        .current_dir(dir.path())
        .output()
        .expect("run openapi-python-client");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains("Warning"),
        "the generator understood every part of the document:\n{log}"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/generated_client.py");
    let out = Command::new(venv().join("bin/python"))
        .arg(&script)
        .arg(&api.url)
        .env("PYTHONPATH", dir.path())
        .output()
        .expect("run the generated client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("created 3 nodes"), "{text}");
    assert!(text.contains("listed: c1,c2,c3"), "{text}");
    assert!(
        text.contains("refused: Node no-such-node could not be found."),
        "{text}"
    );
    assert!(text.contains("power on: c1=ok c2=ok c3=ok"), "{text}");
    assert!(text.contains("power status: c1=on c2=on c3=on"), "{text}");
    // What the client said matches what the API holds.
    let (_, v) = http(&api, "GET", "/v1/nodes?noderange=c%5B1-3%5D", None);
    assert_eq!(v["nodes"], json!(["c1", "c2", "c3"]));
}
