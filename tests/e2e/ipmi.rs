//! IPMI end to end: the real `xcat3` CLI and API, the conductor's IPMI
//! driver, and real BMC peers: `xcat3-sim` (checked against ipmitool) and
//! OpenIPMI's `ipmi_sim`. Every test has its own 127.x block and UDP port.

use serde_json::{Value, json};
use xcat3_tests::{Api, Sim, TempDir, node_results};

/// A standalone API whose IPMI client retransmits every `interval_ms`,
/// `retries` times.
fn api(dir: &TempDir, interval_ms: u32, retries: u32) -> Api {
    let data = dir.path().join("data");
    Api::start(
        &[
            "--standalone",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("XCAT3_CONDUCTOR_HOST", "local"),
            ("XCAT3_IPMI_RETRY_INTERVAL_MS", &interval_ms.to_string()),
            ("XCAT3_IPMI_RETRIES", &retries.to_string()),
        ],
    )
}

fn create(api: &Api, nodes: Vec<Value>) {
    let dir = TempDir::new("ipmi-nodes");
    let f = dir.path().join("nodes.json");
    std::fs::write(&f, json!({ "nodes": nodes }).to_string()).unwrap();
    api.xcat3(&["import", f.to_str().unwrap()]).ok();
}

fn ipmi_node(name: &str, ip: &str, port: u16, user: &str, password: &str) -> Value {
    json!({"name": name, "mgt": "ipmi", "control_info": {
        "bmc_address": ip, "bmc_port": port, "bmc_username": user, "bmc_password": password}})
}

/// The promise: `xcat3-sim --export-nodes`, `xcat3 import`, and
/// `xcat3 power sim[...] on` works out of the box; every BMC's state
/// changes, and no BMC ever saw two sessions at once or keeps one open.
#[test]
fn simulated_fleet_imports_and_powers_on() {
    let dir = TempDir::new("ipmi-fleet");
    let sim = Sim::start(dir.path(), "127.20.0.1", 300, &[]);
    let api = api(&dir, 500, 4);
    let imported = api.xcat3(&["import", sim.export.to_str().unwrap()]);
    assert_eq!(imported.summary(), (300, 300));

    let on = api.xcat3(&["power", "sim[00001-00300]", "on"]);
    assert_eq!(on.summary(), (300, 300), "{}", on.stdout());
    let status = api.xcat3(&["power", "sim[00001-00300]", "status"]).ok();
    let r = node_results(&status);
    assert_eq!(r.len(), 300);
    assert!(r.values().all(|v| v == "on"), "{status}");

    let boot = api.xcat3(&["bootdev", "sim[00001-00300]", "net"]);
    assert_eq!(boot.summary(), (300, 300));
    let shown = node_results(&api.xcat3(&["bootdev", "sim00007,sim00300", "status"]).ok());
    assert_eq!(shown["sim00007"], "net");
    assert_eq!(shown["sim00300"], "net");

    for (i, ip) in ["127.20.0.1", "127.20.0.150", "127.20.1.44"]
        .iter()
        .enumerate()
    {
        // The state file lags the BMCs by up to 200 ms.
        let b = sim.wait_bmc(ip, "boot device set, sessions closed", |b| {
            b["chassis"]["boot_device"] == "net" && b["stats"]["sessions_now"] == 0
        });
        assert_eq!(b["chassis"]["power_on"], true, "BMC {i}: {b}");
        assert_eq!(b["chassis"]["boot_device"], "net", "BMC {i}: {b}");
        assert_eq!(b["chassis"]["history"], json!(["on"]), "BMC {i}: {b}");
        assert_eq!(b["stats"]["sessions_max"], 1, "BMC {i}: {b}");
        // on, status, set boot device, get boot device (two nodes only).
        assert!(b["stats"]["sessions_opened"].as_u64().unwrap() >= 3);
    }

    // A one-time override is used up by the next boot.
    let cycle = api.xcat3(&["power", "sim00001", "cycle"]);
    assert_eq!(cycle.summary(), (1, 1));
    let b = sim.wait_bmc("127.20.0.1", "the cycle", |b| {
        b["chassis"]["history"] == json!(["on", "cycle"])
    });
    assert_eq!(b["chassis"]["boot_device"], Value::Null, "{b}");
    let off = api.xcat3(&["power", "sim[00001-00300]", "off"]);
    assert_eq!(off.summary(), (300, 300));
    sim.wait_bmc("127.20.1.44", "power off", |b| {
        b["chassis"]["power_on"] == false
    });
}

/// Wrong password, unknown user, nothing at the address, a BMC that drops
/// every packet, and bad control_info: each node gets its own clear error
/// within the retransmit schedule, and the good nodes are unaffected.
#[test]
fn ipmi_failures_are_per_node_and_name_the_cause() {
    let dir = TempDir::new("ipmi-errors");
    let good = Sim::start(dir.path(), "127.21.0.1", 2, &[]);
    let dropper = Sim::start(dir.path(), "127.21.1.1", 1, &["--drop-rate", "1"]);
    let api = api(&dir, 200, 2);
    let p = good.port;
    create(
        &api,
        vec![
            ipmi_node("good1", "127.21.0.1", p, "admin", "secret"),
            ipmi_node("good2", "127.21.0.2", p, "admin", "secret"),
            ipmi_node("badpass", "127.21.0.1", p, "admin", "Wr0ngPw!"),
            ipmi_node("baduser", "127.21.0.2", p, "bob", "secret"),
            ipmi_node("nothing", "127.21.2.1", p, "admin", "secret"),
            ipmi_node("dropper", "127.21.1.1", dropper.port, "admin", "secret"),
            json!({"name": "nopass", "mgt": "ipmi", "control_info": {"bmc_address": "127.21.0.1"}}),
            json!({"name": "badsuite", "mgt": "ipmi", "control_info": {
                "bmc_address": "127.21.0.1", "bmc_password": "x", "cipher_suite": 5}}),
        ],
    );
    let run = api.xcat3(&[
        "power",
        "good1,good2,badpass,baduser,nothing,dropper,nopass,badsuite",
        "on",
    ]);
    assert_eq!(run.code(), 1);
    assert_eq!(run.summary(), (2, 8), "{}", run.stdout());
    let r = node_results(&run.stdout());
    assert_eq!(r["good1"], "ok");
    assert_eq!(r["good2"], "ok");
    assert_eq!(
        r["badpass"],
        "BMC 127.21.0.1:".to_string()
            + &p.to_string()
            + ": authentication failed in RAKP 2 (wrong bmc_password or BMC key?)"
    );
    assert!(
        r["baduser"].contains("refused RAKP 1 (user name and role): unauthorized name"),
        "{}",
        r["baduser"]
    );
    for n in ["nothing", "dropper"] {
        assert!(
            r[n].contains("did not answer Open Session (3 tries in"),
            "{n}: {}",
            r[n]
        );
    }
    assert_eq!(
        r["nopass"],
        "control_info.bmc_password: required for mgt=ipmi"
    );
    assert!(r["badsuite"].starts_with("control_info.cipher_suite: 5 is not supported"));
    // No password in any answer.
    assert!(!run.stdout().contains("secret") && !run.stdout().contains("Wr0ngPw!"));

    // The BMC behind the failed logins still serves the good node, and the
    // refused sessions were freed at once (RAKP 3 refusal), not left open.
    let b = good.wait_bmc("127.21.0.1", "power on", |b| {
        b["chassis"]["power_on"] == true
    });
    assert_eq!(b["stats"]["auth_failures"], 1, "{b}");
    assert_eq!(b["stats"]["sessions_now"], 0, "{b}");
    let b2 = good.bmc("127.21.0.2");
    assert_eq!(b2["stats"]["auth_failures"], 1, "{b2}");
}

/// A BMC losing a fifth of the packets each way still gets every action
/// done through retransmits, exactly once per chassis command.
#[test]
fn lossy_bmcs_succeed_through_retransmits() {
    let dir = TempDir::new("ipmi-lossy");
    let sim = Sim::start(dir.path(), "127.23.0.1", 20, &["--drop-rate", "0.2"]);
    let api = api(&dir, 100, 10);
    api.xcat3(&["import", sim.export.to_str().unwrap()]).ok();
    let on = api.xcat3(&["power", "sim[00001-00020]", "on"]);
    assert_eq!(on.summary(), (20, 20), "{}", on.stdout());
    let cycle = api.xcat3(&["power", "sim[00001-00020]", "cycle"]);
    assert_eq!(cycle.summary(), (20, 20), "{}", cycle.stdout());
    for i in [1, 10, 20] {
        let ip = format!("127.23.0.{i}");
        // A retransmitted Chassis Control is answered again, not run twice.
        sim.wait_bmc(&ip, "on then cycle", |b| {
            b["chassis"]["history"] == json!(["on", "cycle"])
        });
    }
}

/// Real ipmitool (lanplus, cipher suites 3 and 17) against xcat3-sim; the
/// simulator's state follows.
#[cfg(feature = "servers")]
#[test]
fn ipmitool_drives_the_simulator() {
    let dir = TempDir::new("ipmitool-sim");
    let sim = Sim::start(dir.path(), "127.22.0.1", 2, &[]);
    let ip = "127.22.0.2";
    let ipmitool = |suite: &str, args: &[&str]| {
        let out = std::process::Command::new("ipmitool")
            .args(["-I", "lanplus", "-C", suite, "-H", ip, "-p"])
            .arg(sim.port.to_string())
            .args(["-U", "admin", "-P", "secret"])
            .args(args)
            .output()
            .expect("run ipmitool (scripts/test installs it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ipmitool {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    assert_eq!(
        ipmitool("3", &["power", "status"]).trim(),
        "Chassis Power is off"
    );
    // A session at User privilege may read, not act (as on real BMCs).
    let refused = std::process::Command::new("ipmitool")
        .args(["-I", "lanplus", "-C", "3", "-L", "USER", "-H", ip, "-p"])
        .arg(sim.port.to_string())
        .args(["-U", "admin", "-P", "secret", "power", "on"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Insufficient privilege"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(sim.bmc(ip)["chassis"]["power_on"], false);
    assert!(ipmitool("3", &["power", "on"]).contains("Up/On"));
    sim.wait_bmc(ip, "power on", |b| b["chassis"]["power_on"] == true);
    assert_eq!(
        ipmitool("17", &["power", "status"]).trim(),
        "Chassis Power is on"
    );
    assert!(ipmitool("3", &["chassis", "bootdev", "pxe"]).contains("Set Boot Device to pxe"));
    sim.wait_bmc(ip, "boot device pxe", |b| {
        b["chassis"]["boot_device"] == "net"
    });
    let param = ipmitool("3", &["chassis", "bootparam", "get", "5"]);
    assert!(param.contains("Force PXE"), "{param}");
    assert!(ipmitool("3", &["power", "cycle"]).contains("Cycle"));
    let b = sim.wait_bmc(ip, "cycle", |b| {
        b["chassis"]["history"] == json!(["on", "cycle"])
    });
    assert_eq!(b["chassis"]["power_on"], true);
    assert!(ipmitool("3", &["power", "off"]).contains("Down/Off"));
    sim.wait_bmc(ip, "power off", |b| b["chassis"]["power_on"] == false);
    ipmitool(
        "17",
        &["chassis", "bootdev", "disk", "options=persistent,efiboot"],
    );
    let b = sim.wait_bmc(ip, "persistent UEFI disk", |b| {
        b["chassis"]["boot_device"] == "disk"
    });
    assert_eq!(b["chassis"]["boot_persistent"], true);
    assert_eq!(b["chassis"]["boot_efi"], true);
    // The other BMC was never touched.
    assert_eq!(sim.bmc("127.22.0.1")["stats"]["sessions_opened"], 0);
    // ipmitool closes its sessions; the simulator saw them close.
    sim.wait_bmc(ip, "sessions closed", |b| b["stats"]["sessions_now"] == 0);
}

/// The conductor's IPMI driver against OpenIPMI's ipmi_sim: power and boot
/// device, checked in the files ipmi_sim's chassis script writes.
#[cfg(feature = "servers")]
#[test]
fn ipmi_driver_against_openipmi_ipmi_sim() {
    let dir = TempDir::new("ipmi-sim-openipmi");
    let bmc_dir = TempDir::new("ipmi-sim-bmc");
    let bmc = xcat3_tests::IpmiSim::start(bmc_dir.path());
    let api = api(&dir, 500, 4);
    create(
        &api,
        vec![ipmi_node("os1", "127.0.0.1", bmc.port, "admin", "secret")],
    );
    let one = |args: &[&str]| -> String {
        let run = api.xcat3(args);
        let r = node_results(&run.stdout());
        assert_eq!(run.code(), 0, "{args:?}: {}", run.stdout());
        r["os1"].clone()
    };
    assert_eq!(one(&["power", "os1", "status"]), "off");
    assert_eq!(one(&["power", "os1", "on"]), "ok");
    assert_eq!(bmc.stored("power").as_deref(), Some("1"));
    assert_eq!(one(&["power", "os1", "status"]), "on");
    assert_eq!(one(&["bootdev", "os1", "net"]), "ok");
    assert_eq!(bmc.stored("boot").as_deref(), Some("pxe"));
    assert_eq!(one(&["bootdev", "os1", "status"]), "net");
    assert_eq!(one(&["bootdev", "os1", "cdrom"]), "ok");
    assert_eq!(bmc.stored("boot").as_deref(), Some("cdrom"));
    assert_eq!(one(&["bootdev", "os1", "status"]), "cdrom");
    assert_eq!(one(&["power", "os1", "off"]), "ok");
    assert_eq!(bmc.stored("power").as_deref(), Some("0"));
    assert_eq!(one(&["power", "os1", "status"]), "off");
    // `boot` of a node that is off powers it on.
    assert_eq!(one(&["power", "os1", "boot"]), "ok");
    assert_eq!(bmc.stored("power").as_deref(), Some("1"));
}

/// Failures against real BMCs carry their kind beside the v1 message: a
/// wrong password is `authentication`, a BMC that never answers is
/// `unreachable`; `power --retry-failed ID --kind unreachable` runs those
/// alone. And `driver-list` / `driver-show` describe what a node may hold.
#[test]
fn error_kinds_tell_unreachable_from_wrong_credentials() {
    let dir = TempDir::new("ipmi-kinds");
    let sim = Sim::start(dir.path(), "127.26.0.1", 2, &[]);
    let api = api(&dir, 100, 2);
    create(
        &api,
        vec![
            ipmi_node("k1", "127.26.0.1", sim.port, "admin", "secret"),
            ipmi_node("k2", "127.26.0.2", sim.port, "admin", "wrong"),
            // No BMC behind these two.
            ipmi_node("k3", "127.26.0.9", sim.port, "admin", "secret"),
            ipmi_node("k4", "127.26.0.10", sim.port, "admin", "secret"),
        ],
    );
    let run = api.xcat3(&["--json", "power", "k[1-4]", "on"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let v: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(v["nodes"]["k1"], "ok");
    assert!(
        v["nodes"]["k2"]
            .as_str()
            .unwrap()
            .contains("authentication failed")
            || v["nodes"]["k2"].as_str().unwrap().contains("unauthorized"),
        "{v}"
    );
    assert_eq!(
        v["error_kinds"],
        json!({"k2": "authentication", "k3": "unreachable", "k4": "unreachable"}),
        "{v}"
    );
    let id = run.retry_hint();

    let run = api.xcat3(&["power", "--retry-failed", &id, "--kind", "unreachable"]);
    assert_eq!(run.code(), 1);
    let again = node_results(&run.stdout());
    assert_eq!(again.keys().cloned().collect::<Vec<_>>(), ["k3", "k4"]);
    assert!(
        run.stderr().contains("retrying 2 failed nodes"),
        "{}",
        run.stderr()
    );
    let run = api.xcat3(&["power", "--retry-failed", &id, "--kind", "locked"]);
    run.ok();
    assert!(
        run.stderr()
            .contains("no nodes that failed with kind locked"),
        "{}",
        run.stderr()
    );
    let run = api.xcat3(&["power", "--retry-failed", &id, "--kind", "gone"]);
    assert_ne!(run.code(), 0);
    assert!(
        run.stderr()
            .contains("`gone` is not one of unreachable, authentication"),
        "{}",
        run.stderr()
    );

    let list = api.xcat3(&["driver-list"]).ok();
    let ipmi = list
        .lines()
        .find(|l| l.starts_with("ipmi "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(ipmi.contains("power,management"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("kvm ") && l.contains("power,management,console,vm")),
        "{list}"
    );
    let show = api.xcat3(&["driver-show", "ipmi"]).ok();
    let pw = show
        .lines()
        .find(|l| l.trim_start().starts_with("bmc_password"))
        .unwrap_or_else(|| panic!("{show}"));
    assert!(pw.contains("required") && pw.contains("(secret)"), "{show}");
    assert!(show.contains("console (ipmi-sol)"), "{show}");
    assert!(show.contains("vm: not offered"), "{show}");
    // A misspelt key is refused when written, naming the valid ones.
    let run = api.xcat3(&["update", "k1", "control/bmc_adress=127.26.0.1"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout()
            .contains("k1: control_info.bmc_adress: unknown key for mgt=ipmi (valid: "),
        "{}",
        run.stdout()
    );
}

/// The periodic power-state sync: BMCs switched off behind xcat3's back
/// (by real ipmitool) show `off` in the inventory within a few sync
/// intervals, without any xcat3 command; the changes are counted in
/// /metrics.
#[cfg(feature = "servers")]
#[test]
fn power_sync_sees_bmcs_switched_off_behind_its_back() {
    let dir = TempDir::new("power-sync");
    let sim = Sim::start(dir.path(), "127.32.0.1", 40, &[]);
    let data = dir.path().join("data");
    let api = Api::start(
        &[
            "--standalone",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("XCAT3_CONDUCTOR_HOST", "local"),
            ("XCAT3_POWER_SYNC_INTERVAL", "1"),
            ("XCAT3_POWER_SYNC_WORKERS", "4"),
        ],
    );
    assert_eq!(
        api.xcat3(&["import", sim.export.to_str().unwrap()])
            .summary(),
        (40, 40)
    );
    assert_eq!(
        api.xcat3(&["power", "sim[00001-00040]", "on"]).summary(),
        (40, 40)
    );
    assert_eq!(api.xcat3(&["list", "--power", "off"]).ok(), "");
    // Five BMCs switched off by someone else.
    for ip in [
        "127.32.0.1",
        "127.32.0.7",
        "127.32.0.8",
        "127.32.0.20",
        "127.32.0.40",
    ] {
        let out = std::process::Command::new("ipmitool")
            .args(["-I", "lanplus", "-C", "3", "-H", ip, "-p"])
            .arg(sim.port.to_string())
            .args(["-U", "admin", "-P", "secret", "chassis", "power", "off"])
            .output()
            .expect("run ipmitool (scripts/test installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let off = xcat3_tests::wait_until(30, "the sync to record 5 nodes off", || {
        let list = api.xcat3(&["list", "--power", "off"]).ok();
        (list.lines().count() == 5).then_some(list)
    });
    assert_eq!(
        off,
        "sim00001 (node)\nsim00007 (node)\nsim00008 (node)\nsim00020 (node)\nsim00040 (node)\n"
    );
    assert_eq!(
        api.xcat3(&["list", "--power", "on"]).ok().lines().count(),
        35
    );
    let metrics = std::process::Command::new("curl")
        .args(["-sf", &format!("{}/metrics", api.url)])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let changes: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("xcat3_conductor_power_sync_changes_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sync counter in /metrics:\n{metrics}"));
    assert!(changes >= 5, "{changes}");
}
