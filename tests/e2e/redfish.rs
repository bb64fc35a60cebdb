//! Redfish end to end: the conductor's driver against `xcat3-sim redfish`
//! and against DMTF's sushy-emulator (`--fake`, from PyPI).

use serde_json::{Value, json};
use xcat3_tests::{Api, TempDir, node_results, redfish_sim, wait_until};

fn state(path: &std::path::Path, ip: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)[ip]["chassis"].clone()
}

#[test]
fn redfish_power_and_boot_override_on_simulated_bmcs() {
    let dir = TempDir::new("redfish-sim");
    let (_sim, port, export, state_file) = redfish_sim(dir.path(), "127.24.0.1", 20);
    let api = Api::standalone(&dir.path().join("data"));
    api.xcat3(&["import", export.to_str().unwrap()]).ok();
    let nodes = "sim[00001-00020]";
    let r = node_results(&api.xcat3(&["power", nodes, "status"]).ok());
    assert!(r.len() == 20 && r.values().all(|v| v == "off"), "{r:?}");
    assert_eq!(api.xcat3(&["power", nodes, "on"]).summary(), (20, 20));
    let r = node_results(&api.xcat3(&["power", nodes, "status"]).ok());
    assert!(r.values().all(|v| v == "on"), "{r:?}");
    assert_eq!(api.xcat3(&["bootdev", nodes, "net"]).summary(), (20, 20));
    let b = wait_until(10, "boot override", || {
        let c = state(&state_file, "127.24.0.20");
        (c["boot_target"] == "Pxe").then_some(c)
    });
    assert_eq!(b["boot_enabled"], "Once");
    assert_eq!(b["boot_mode"], "Legacy");
    assert_eq!(
        node_results(&api.xcat3(&["bootdev", "sim00020", "status"]).ok())["sim00020"],
        "net"
    );
    // cycle: the BMC advertises PowerCycle; the one-time override is used up.
    assert_eq!(api.xcat3(&["power", "sim00001", "cycle"]).summary(), (1, 1));
    let c = wait_until(10, "the cycle", || {
        let c = state(&state_file, "127.24.0.1");
        (c["history"] == json!(["On", "PowerCycle"])).then_some(c)
    });
    assert_eq!(c["boot_target"], "None");
    assert_eq!(api.xcat3(&["power", nodes, "soft"]).summary(), (20, 20));
    wait_until(10, "graceful shutdown", || {
        (state(&state_file, "127.24.0.7")["history"] == json!(["On", "GracefulShutdown"]))
            .then_some(())
    });

    // Wrong password (even on a BMC another node has a session with), no
    // BMC at the address, missing password: per-node errors, others fine.
    let bad = json!({"nodes": [
        {"name": "badpw", "mgt": "redfish", "control_info": {
            "bmc_address": format!("http://127.24.0.1:{port}"), "bmc_username": "admin", "bmc_password": "Wr0ngPw!"}},
        {"name": "nobmc", "mgt": "redfish", "control_info": {
            "bmc_address": format!("http://127.24.9.9:{port}"), "bmc_username": "admin", "bmc_password": "x"}},
        {"name": "nopw", "mgt": "redfish", "control_info": {"bmc_address": "https://bmc.example"}},
    ]});
    let f = dir.path().join("bad.json");
    std::fs::write(&f, bad.to_string()).unwrap();
    api.xcat3(&["import", f.to_str().unwrap()]).ok();
    let run = api.xcat3(&["power", "sim00002,badpw,nobmc,nopw", "status"]);
    assert_eq!(run.summary(), (1, 4), "{}", run.stdout());
    let r = node_results(&run.stdout());
    assert_eq!(r["sim00002"], "off");
    assert_eq!(
        r["badpw"],
        format!(
            "BMC http://127.24.0.1:{port}: login refused for user `admin` (wrong bmc_username or bmc_password?)"
        )
    );
    assert_eq!(
        r["nobmc"],
        format!("BMC http://127.24.9.9:{port}: cannot connect")
    );
    assert_eq!(
        r["nopw"],
        "control_info.bmc_password: required for mgt=redfish"
    );
    assert!(!run.stdout().contains("Wr0ngPw!"));
}

/// DMTF's sushy-emulator (`--fake`): power on/off/status and the boot
/// override, polled until the emulator reports the new state (it changes
/// power state after a delay). Its venv is made by `scripts/test`
/// (`XCAT3_TEST_SUSHY`, the emulator's path).
#[cfg(feature = "servers")]
#[test]
fn redfish_driver_against_sushy_emulator() {
    let sushy = std::env::var("XCAT3_TEST_SUSHY").expect(
        "XCAT3_TEST_SUSHY names sushy-emulator (scripts/test makes a venv with sushy-tools)",
    );
    let dir = TempDir::new("redfish-sushy");
    let port = xcat3_tests::free_tcp_port();
    let log = std::fs::File::create(dir.path().join("sushy.log")).unwrap();
    let _emulator = xcat3_tests::Daemon(
        std::process::Command::new(&sushy)
            .args(["--fake", "-i", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sushy-emulator"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_until(30, "sushy-emulator", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let api = Api::standalone(&dir.path().join("data"));
    let node = json!({"nodes": [{"name": "fake1", "mgt": "redfish",
        "control_info": {"bmc_address": url, "bmc_username": "admin", "bmc_password": "password", "boot_mode": "uefi"}}]});
    let f = dir.path().join("n.json");
    std::fs::write(&f, node.to_string()).unwrap();
    api.xcat3(&["import", f.to_str().unwrap()]).ok();
    let one = |args: &[&str]| -> String {
        let run = api.xcat3(args);
        assert_eq!(run.code(), 0, "{args:?}: {}", run.stdout());
        node_results(&run.stdout())["fake1"].clone()
    };
    // What the emulator itself says, not through our driver.
    let system = || -> Value {
        let get = |path: &str| -> Value {
            let out = std::process::Command::new("curl")
                .args(["-sf", &format!("{url}{path}")])
                .output()
                .expect("curl");
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
        };
        let path = get("/redfish/v1/Systems")["Members"][0]["@odata.id"]
            .as_str()
            .unwrap_or("")
            .to_string();
        get(&path)
    };
    // The fake system may start either way: begin from off.
    assert_eq!(one(&["power", "fake1", "off"]), "ok");
    wait_until(30, "the emulator powered off", || {
        (system()["PowerState"] == "Off").then_some(())
    });
    assert_eq!(one(&["power", "fake1", "status"]), "off");
    assert_eq!(one(&["power", "fake1", "on"]), "ok");
    wait_until(30, "the emulator powered on", || {
        (system()["PowerState"] == "On").then_some(())
    });
    assert_eq!(one(&["power", "fake1", "status"]), "on");
    // (The emulator's fake system keeps only Continuous overrides; Once is
    // checked against xcat3-sim above.)
    assert_eq!(one(&["bootdev", "fake1", "net", "--persistent"]), "ok");
    let boot = system()["Boot"].clone();
    assert_eq!(boot["BootSourceOverrideTarget"], "Pxe", "{boot}");
    assert_eq!(boot["BootSourceOverrideEnabled"], "Continuous", "{boot}");
    assert_eq!(boot["BootSourceOverrideMode"], "UEFI", "{boot}");
    assert_eq!(one(&["bootdev", "fake1", "status"]), "net");
    assert_eq!(one(&["power", "fake1", "off"]), "ok");
    wait_until(30, "the emulator powered off", || {
        (system()["PowerState"] == "Off").then_some(())
    });
    assert_eq!(one(&["power", "fake1", "status"]), "off");
}

/// HTTPS with a self-signed certificate (sushy-emulator with TLS): refused
/// with a clear error unless the node says `verify_tls=false`.
#[cfg(feature = "servers")]
#[test]
fn redfish_tls_verification_against_sushy_emulator() {
    let sushy = std::env::var("XCAT3_TEST_SUSHY").expect("XCAT3_TEST_SUSHY names sushy-emulator");
    let dir = TempDir::new("redfish-tls");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bmc",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = xcat3_tests::free_tcp_port();
    let log = std::fs::File::create(dir.path().join("sushy.log")).unwrap();
    let _emulator = xcat3_tests::Daemon(
        std::process::Command::new(&sushy)
            .args(["--fake", "-i", "127.0.0.1", "-p", &port.to_string()])
            .arg("--ssl-certificate")
            .arg(&cert)
            .arg("--ssl-key")
            .arg(&key)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sushy-emulator"),
    );
    wait_until(30, "sushy-emulator", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let api = Api::standalone(&dir.path().join("data"));
    let url = format!("https://127.0.0.1:{port}");
    let nodes = json!({"nodes": [
        {"name": "strict", "mgt": "redfish", "control_info": {"bmc_address": url, "bmc_username": "a", "bmc_password": "b"}},
        {"name": "lenient", "mgt": "redfish", "control_info": {"bmc_address": url, "bmc_username": "a", "bmc_password": "b", "verify_tls": false}},
    ]});
    let f = dir.path().join("n.json");
    std::fs::write(&f, nodes.to_string()).unwrap();
    api.xcat3(&["import", f.to_str().unwrap()]).ok();
    let run = api.xcat3(&["power", "strict,lenient", "status"]);
    let r = node_results(&run.stdout());
    assert!(r["lenient"] == "on" || r["lenient"] == "off", "{r:?}");
    assert!(
        r["strict"].starts_with(&format!("BMC {url}: TLS: invalid peer certificate"))
            && r["strict"]
                .ends_with("(set control_info.verify_tls=false for a self-signed BMC certificate)"),
        "{}",
        r["strict"]
    );
}
