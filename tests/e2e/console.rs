//! Serial consoles against real peers: ipmitool's `sol activate` against
//! `xcat3-sim` (the simulator is right), our SOL client against OpenIPMI's
//! `ipmi_sim` with its serial line held by the test, websocket viewers
//! through the API (two at once, one read-only), the CLI in a terminal,
//! and a console taken over when its conductor is killed.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use xcat3_tests::{Api, IpmiSim, Sim, TempDir, Viewer, free_tcp_port, wait_until};

/// Runs `shell` under `script` (a pseudo-terminal, as an admin's), feeding
/// it `input` step by step: (delay, bytes).
fn in_terminal(shell: &str, input: &[(u64, &[u8])], env: &[(&str, &str)]) -> (String, bool) {
    let mut child = Command::new("script")
        .args(["-qefc", shell, "/dev/null"])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().expect("stdin");
    for (ms, bytes) in input {
        std::thread::sleep(Duration::from_millis(*ms));
        let _ = stdin.write_all(bytes);
        let _ = stdin.flush();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "{shell}: did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    (out + &err, status.success())
}

/// Waits until `console-list NODE` shows it connected with `viewers`
/// viewers (any number when None); on timeout, the last listing and the
/// node's console log say why.
fn wait_connected(api: &Api, node: &str, viewers: Option<u32>, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = api.xcat3(&["console-list", node]).stdout();
        let connected = out.contains(&format!("{node}: connected"));
        let counted = viewers.is_none_or(|n| out.contains(&format!("viewers={n}")));
        if connected && counted {
            return;
        }
        if Instant::now() >= deadline {
            let log = api.xcat3(&["console", node, "--log"]).stdout();
            panic!(
                "{node}'s console not connected (viewers {viewers:?}) after {secs} s:\n{out}\nlog:\n{log}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ipmitool_args(port: u16, ip: &str) -> String {
    format!("ipmitool -I lanplus -C 3 -H {ip} -p {port} -U admin -P secret")
}

/// ipmitool's own SOL client against our simulated BMC: it activates the
/// payload, sees the boot log a power cycle (from a second session)
/// prints, types at the getty, and leaves with its escape.
#[cfg(feature = "servers")]
#[test]
fn ipmitool_sol_activate_works_against_the_simulator() {
    let dir = TempDir::new("sol-ipmitool");
    let sim = Sim::start(dir.path(), "127.41.0.1", 1, &[]);
    let ipmi = ipmitool_args(sim.port, "127.41.0.1");
    let power_on = Command::new("sh")
        .args(["-c", &format!("{ipmi} power on")])
        .output()
        .expect("ipmitool");
    assert!(power_on.status.success(), "{power_on:?}");
    let cycle = format!("{ipmi} power cycle");
    // Cycle from another session while SOL is active.
    let cycler = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        Command::new("sh")
            .args(["-c", &cycle])
            .output()
            .expect("ipmitool")
    });
    let (out, ok) = in_terminal(
        &format!("{ipmi} sol activate"),
        &[(3000, b"root\r"), (1500, b"~.")],
        &[],
    );
    let cycled = cycler.join().unwrap();
    assert!(cycled.status.success(), "{cycled:?}");
    assert!(ok, "ipmitool sol activate failed: {out}");
    assert!(out.contains("SOL Session operational"), "{out}");
    assert!(
        out.contains("xcat3-sim BIOS 1.0: booting sim00001"),
        "{out}"
    );
    assert!(out.contains("sim00001 login: root"), "{out}");
    let bmc = sim.wait_bmc("127.41.0.1", "the typed keys counted", |b| {
        b["sol"]["typed"].as_u64() >= Some(5)
    });
    assert_eq!(bmc["sol"]["activations"], 1, "{bmc}");
    assert_eq!(bmc["sol"]["lost"], 0, "{bmc}");
}

/// Our SOL client against OpenIPMI's ipmi_sim, whose serial line is a
/// socket this test holds: what the "machine" prints reaches the log and
/// the websocket, what the viewer types reaches the machine; power
/// actions run in sessions of their own beside the console.
#[cfg(feature = "servers")]
#[test]
fn our_sol_client_against_openipmi_ipmi_sim() {
    let dir = TempDir::new("sol-openipmi");
    let serial_port = free_tcp_port();
    let listener = std::net::TcpListener::bind(("127.0.0.1", serial_port)).expect("bind");
    let bmc = IpmiSim::start_with_sol(dir.path(), serial_port);
    // ipmi_sim connects to its serial line at start.
    let (mut serial, _) = listener.accept().expect("ipmi_sim connects its SOL line");
    serial
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let api = Api::standalone(&dir.path().join("data"));
    api.xcat3(&[
        "create",
        "bmc1",
        "mgt=ipmi",
        "-c",
        &format!(
            "bmc_address=127.0.0.1,bmc_port={},bmc_username=admin,bmc_password=secret",
            bmc.port
        ),
    ])
    .ok();

    let mut viewer = Viewer::connect(&api.url, "bmc1", "", None).expect("attach");
    // Connected when the log says so (on_demand: the viewer made it).
    wait_connected(&api, "bmc1", None, 60);
    let banner = "[    0.000000] Linux version 6.1.0-openipmi-test\r\n";
    serial.write_all(banner.as_bytes()).unwrap();
    viewer.expect("Linux version 6.1.0-openipmi-test", 15);

    // Keys typed reach the machine (ipmi_sim speaks telnet on its line:
    // its option negotiation is skipped).
    viewer.send(b"uname -a\r");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !String::from_utf8_lossy(&got).contains("uname -a\r") {
        assert!(
            Instant::now() < deadline,
            "typed keys never reached the serial line: {got:?}"
        );
        let mut buf = [0u8; 256];
        if let Ok(n) = serial.read(&mut buf) {
            got.extend(buf[..n].iter().filter(|&&b| b < 0xf0));
        }
    }

    // A power action beside the console (its own session).
    let status = api.xcat3(&["power", "bmc1", "status"]).ok();
    assert!(status.contains("bmc1: "), "{status}");
    serial.write_all(b"after the power status\r\n").unwrap();
    viewer.expect("after the power status", 15);

    // The log holds the banner, stamped.
    let log = wait_until(10, "the log to hold the banner", || {
        let out = api.xcat3(&["console", "bmc1", "--log", "-n", "20"]).ok();
        out.contains("Linux version 6.1.0-openipmi-test")
            .then_some(out)
    });
    let line = log
        .lines()
        .find(|l| l.contains("Linux version 6.1.0-openipmi-test"))
        .unwrap();
    assert!(line.starts_with("[20"), "a timestamped line: {line:?}");
    assert!(log.contains("[-- xcat3: connected"), "{log}");
}

/// Two websocket viewers through the API, one read-only, on a simulated
/// BMC: both see the boot log a power cycle (through our IPMI driver, in
/// a session beside the console's) prints; only the writer's keys reach
/// the machine; a late joiner gets the recent screen first; the CLI in a
/// terminal types and leaves with Ctrl-E c .
#[test]
fn two_viewers_one_read_only_and_the_cli_in_a_terminal() {
    let dir = TempDir::new("console-viewers");
    let sim = Sim::start(dir.path(), "127.42.0.1", 2, &[]);
    let api = Api::standalone_with(
        &dir.path().join("data"),
        &[("XCAT3_CONSOLE_RECONCILE_INTERVAL", "1")],
    );
    api.xcat3(&["import", sim.export.to_str().unwrap()]).ok();
    api.xcat3(&["power", "sim00001", "on"]).ok();

    let mut writer = Viewer::connect(&api.url, "sim00001", "", None).expect("writer");
    let mut reader = Viewer::connect(&api.url, "sim00001", "read_only=true", None).expect("reader");
    wait_connected(&api, "sim00001", Some(2), 60);
    api.xcat3(&["power", "sim00001", "cycle"]).ok();
    for v in [&mut writer, &mut reader] {
        v.expect("xcat3-sim BIOS 1.0: booting sim00001", 15);
        v.expect("sim00001 login: ", 15);
    }
    assert!(
        reader.notices.iter().any(|n| n.contains("read-only")),
        "{:?}",
        reader.notices
    );
    let typed_before = sim.bmc("127.42.0.1")["sol"]["typed"].as_u64().unwrap();
    reader.send(b"ignored");
    writer.send(b"root\r");
    for v in [&mut writer, &mut reader] {
        v.expect("sim00001 login: root", 15);
    }
    let bmc = sim.wait_bmc("127.42.0.1", "the writer's keys", |b| {
        b["sol"]["typed"].as_u64() >= Some(typed_before + 5)
    });
    assert_eq!(
        bmc["sol"]["typed"].as_u64().unwrap(),
        typed_before + 5,
        "only the writer's 5 keys were typed: {bmc}"
    );
    assert!(!writer.seen.contains("ignored") && !reader.seen.contains("ignored"));

    // A late joiner sees the recent screen before anything new.
    let mut late = Viewer::connect(&api.url, "sim00001", "read_only=true", None).expect("late");
    late.expect("booting sim00001", 10);

    // The CLI in a terminal: type, see the echo, leave with Ctrl-E c .
    let cli = xcat3_tests::bin_dir().join("xcat3");
    let (out, ok) = in_terminal(
        &format!("{} console sim00001", cli.display()),
        &[(1500, b"admin\r"), (1500, b"\x05c.")],
        &[("XCAT3_URL", api.url.as_str())],
    );
    assert!(ok, "xcat3 console: {out}");
    assert!(out.contains("sim00001 login: admin"), "{out}");
    assert!(out.contains("left the console"), "{out}");
    writer.expect("sim00001 login: admin", 10);

    // Refusals name the node and the reason.
    match Viewer::connect(&api.url, "nosuchnode", "", None) {
        Err((404, body)) => assert!(body.contains("nosuchnode"), "{body}"),
        other => panic!("unknown node: {:?}", other.err()),
    }
    let list = api.xcat3(&["console-list", "sim0000[1-2]"]).ok();
    assert!(list.contains("sim00002: idle logging=on_demand"), "{list}");
    assert!(list.contains("Success: 2  Total: 2"), "{list}");
}

/// The console server of a killed conductor is replaced: another takes
/// the `always` consoles within heartbeat timeout + 10 s, and the node's
/// log goes on (both boots in it).
#[cfg(feature = "servers")]
#[test]
fn always_on_consoles_move_when_their_conductor_is_killed() {
    use crate::conductors::{cluster_env, env_refs};
    use xcat3_tests::{Conductor, TestDb, unique};

    let db = TestDb::create();
    let amqp = std::env::var("XCAT3_TEST_AMQP_URL").expect("XCAT3_TEST_AMQP_URL");
    let dir = TempDir::new("console-takeover");
    let logs = dir.path().join("consoles");
    let mut env = cluster_env(&db.url, &amqp, 30);
    env.push(("XCAT3_CONSOLE_RECONCILE_INTERVAL", "1".into()));
    env.push(("XCAT3_CONSOLE_LOG_DIR", logs.display().to_string()));
    let api = Api::start(&["--listen", "127.0.0.1:0"], &env_refs(&env));
    let prefix = unique("con");
    let conductors: Vec<Conductor> = (1..=2)
        .map(|i| Conductor::start(&format!("{prefix}-{i}"), dir.path(), &env_refs(&env)))
        .collect();
    let sim = Sim::start(dir.path(), "127.43.0.1", 6, &[]);
    // Every node's console always on.
    let mut nodes: Value =
        serde_json::from_str(&std::fs::read_to_string(&sim.export).unwrap()).unwrap();
    for n in nodes["nodes"].as_array_mut().unwrap() {
        n["console_info"] = serde_json::json!({"logging": "always"});
    }
    let file = dir.path().join("always.json");
    std::fs::write(&file, nodes.to_string()).unwrap();
    api.xcat3(&["import", file.to_str().unwrap()]).ok();
    // Both conductors consuming: a power action answers everywhere.
    wait_until(60, "the conductors to consume", || {
        (api.xcat3(&["power", "sim0000[1-6]", "on"]).code() == 0).then_some(())
    });
    let states = |api: &Api| -> Value {
        // Nodes of a dead conductor fail until the ring moves them.
        let out = api
            .xcat3(&["--json", "console-list", "sim0000[1-6]"])
            .stdout();
        serde_json::from_str::<Value>(&out).unwrap_or_default()["nodes"].clone()
    };
    let all_connected = |v: &Value| {
        v.as_object()
            .is_some_and(|m| m.values().all(|s| s["state"] == "connected"))
    };
    let before = wait_until(30, "every console connected", || {
        let v = states(&api);
        all_connected(&v).then_some(v)
    });
    // Kill the conductor holding sim00001, after its boot is logged.
    let owner = before["sim00001"]["conductor"]
        .as_str()
        .unwrap()
        .to_string();
    api.xcat3(&["power", "sim00001", "cycle"]).ok();
    wait_until(15, "the first boot in the log", || {
        let out = api.xcat3(&["console", "sim00001", "--log"]).ok();
        out.contains("booting sim00001").then_some(())
    });
    let victim = conductors.iter().find(|c| c.host == owner).unwrap();
    let killed = Instant::now();
    victim.kill9();
    let after = wait_until(40, "the consoles to move", || {
        let v = states(&api);
        (all_connected(&v)
            && v.as_object()
                .unwrap()
                .values()
                .all(|s| s["conductor"] != owner.as_str()))
        .then_some(v)
    });
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(4 + 10),
        "takeover took {took:?} (heartbeat timeout 4 s + 10 s): {after}"
    );
    // The log goes on: the second boot is logged after the first.
    api.xcat3(&["power", "sim00001", "cycle"]).ok();
    let log = wait_until(15, "the second boot in the log", || {
        let out = api
            .xcat3(&["console", "sim00001", "--log", "-n", "200"])
            .ok();
        (out.matches("booting sim00001").count() >= 2).then_some(out)
    });
    assert!(log.contains("took the console over"), "{log}");
    println!(
        "console takeover after SIGKILL: {:.1} s",
        took.as_secs_f64()
    );
}

/// A `newc` cpio archive (what the kernel unpacks as its initramfs) of
/// `files`: (path, mode, contents); directories have no contents.
fn newc(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |name: &str, mode: u32, data: &[u8], ino: u32| {
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (i, (name, mode, data)) in files.iter().enumerate() {
        entry(name, *mode, data, i as u32 + 1);
    }
    entry("TRAILER!!!", 0, &[], 0);
    out
}

/// An initramfs whose init mounts /proc and /dev and runs a busybox
/// shell on the serial console (Debian's busybox and the libraries it
/// links).
fn shell_initramfs() -> Vec<u8> {
    let ldd = Command::new("ldd")
        .arg("/bin/busybox")
        .output()
        .expect("ldd");
    let libs: Vec<String> = String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(str::to_string)
        .collect();
    assert!(!libs.is_empty(), "busybox's libraries: {ldd:?}");
    let init = b"#!/bin/busybox sh\n\
        /bin/busybox mount -t proc proc /proc\n\
        /bin/busybox mount -t devtmpfs dev /dev\n\
        echo xcat3 test guest up\n\
        exec /bin/busybox sh\n";
    let busybox = std::fs::read("/bin/busybox").expect("busybox");
    let contents: Vec<(String, Vec<u8>)> = libs
        .iter()
        .map(|l| {
            (
                l.trim_start_matches('/').to_string(),
                std::fs::read(l).expect("library"),
            )
        })
        .collect();
    let mut dirs: Vec<String> = vec!["bin".into(), "proc".into(), "dev".into()];
    for (path, _) in &contents {
        let mut d = Path::new(path).parent();
        while let Some(p) = d.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(p.display().to_string());
            d = p.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    let mut files: Vec<(&str, u32, &[u8])> = dirs
        .iter()
        .map(|d| (d.as_str(), 0o040755, &[][..]))
        .collect();
    files.push(("init", 0o100755, init));
    files.push(("bin/busybox", 0o100755, &busybox));
    for (path, data) in &contents {
        files.push((path.as_str(), 0o100755, data));
    }
    newc(&files)
}

/// A KVM guest's console through libvirt (`virDomainOpenConsole`): a tiny
/// guest on the machine's libvirtd booting Debian's kernel with
/// `console=ttyS0` and a busybox initramfs; its kernel banner reaches the
/// node's log, typing reaches its shell, and the log goes on across a
/// power cycle.
#[cfg(feature = "servers")]
#[test]
fn kvm_guest_console_through_libvirt() {
    use std::os::unix::fs::PermissionsExt as _;
    let kernel = std::env::var("XCAT3_TEST_KERNEL").expect(
        "XCAT3_TEST_KERNEL is not set: scripts/test fetches Debian's kernel for the console test",
    );
    let dir = TempDir::new("kvm-console");
    // libvirt's qemu runs as its own user: the files must be readable
    // (the temporary directory's parent, /tmp, is traversable already).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let vmlinuz = dir.path().join("vmlinuz");
    std::fs::copy(&kernel, &vmlinuz).expect("copy the kernel");
    let initrd = dir.path().join("initrd.cpio");
    std::fs::write(&initrd, shell_initramfs()).unwrap();
    for f in [&vmlinuz, &initrd] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let name = xcat3_tests::unique("xc3con");
    let xml = format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{}</kernel><initrd>{}</initrd>\
         <cmdline>console=ttyS0 panic=-1</cmdline></os>\
         <devices><serial type='pty'/><console type='pty'/></devices></domain>",
        vmlinuz.display(),
        initrd.display()
    );
    let xml_file = dir.path().join("guest.xml");
    std::fs::write(&xml_file, xml).unwrap();
    let virsh = |args: &[&str]| {
        Command::new("virsh")
            .args(["-c", "qemu:///system"])
            .args(args)
            .output()
            .expect("virsh")
    };
    let defined = virsh(&["define", xml_file.to_str().unwrap()]);
    assert!(defined.status.success(), "{defined:?}");
    struct Undefine<'a>(&'a dyn Fn(&[&str]) -> std::process::Output, String);
    impl Drop for Undefine<'_> {
        fn drop(&mut self) {
            (self.0)(&["destroy", &self.1]);
            (self.0)(&["undefine", &self.1]);
        }
    }
    let _guard = Undefine(&virsh, name.clone());

    let api = Api::standalone_with(
        &dir.path().join("data"),
        &[("XCAT3_CONSOLE_RECONCILE_INTERVAL", "1")],
    );
    api.xcat3(&[
        "create",
        "guest1",
        "mgt=kvm",
        "-c",
        &format!("libvirt_uri=qemu:///system,domain={name}"),
    ])
    .ok();
    api.xcat3(&["update", "guest1", "console_info/logging=always"])
        .ok();
    api.xcat3(&["power", "guest1", "on"]).ok();
    let log = wait_until(90, "the kernel banner in the console log", || {
        let out = api.xcat3(&["console", "guest1", "--log", "-n", "400"]).ok();
        out.contains("Linux version 6.").then_some(out)
    });
    assert!(
        log.contains("console [ttyS0] enabled") || log.contains("ttyS0"),
        "{log}"
    );
    let mut viewer = Viewer::connect(&api.url, "guest1", "", None).expect("attach");
    viewer.expect("xcat3 test guest up", 90);
    viewer.send(b"echo xcat3-$((6*7))\r");
    viewer.expect("xcat3-42", 30);

    // A power cycle restarts qemu: the console reconnects and the log
    // holds both boots.
    api.xcat3(&["power", "guest1", "cycle"]).ok();
    wait_until(90, "the second boot in the log", || {
        let out = api
            .xcat3(&["console", "guest1", "--log", "-n", "2000"])
            .ok();
        (out.matches("Linux version 6.").count() >= 2).then_some(())
    });
}

/// A console over SSH (a terminal server's, a BMC's SSH console): a
/// throwaway sshd whose forced command is a shell; by password, then by
/// key; the host key is checked against `ssh_host_fingerprint` first.
#[cfg(feature = "servers")]
#[test]
fn ssh_console_against_a_real_sshd() {
    let dir = TempDir::new("ssh-console");
    let sshd = xcat3_tests::Sshd::start_with(dir.path(), "ForceCommand /bin/sh -i\n");
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(dir.path().join("ssh_host.pub"))
        .output()
        .expect("ssh-keygen");
    let fingerprint = String::from_utf8_lossy(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    let api = Api::standalone(&dir.path().join("data"));
    let node = |name: &str, console: Value| {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(
            &file,
            serde_json::json!({"nodes": [{"name": name, "mgt": "fake", "console_info": console}]})
                .to_string(),
        )
        .unwrap();
        api.xcat3(&["import", file.to_str().unwrap()]).ok();
    };
    let base = serde_json::json!({"method": "ssh", "ssh_host": "127.0.0.1",
        "ssh_port": sshd.port, "ssh_username": "root"});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    node(
        "term1",
        with(serde_json::json!({"ssh_password": "s3cret", "ssh_host_fingerprint": fingerprint})),
    );
    let key = std::fs::read_to_string(&sshd.key).unwrap();
    node(
        "term2",
        with(serde_json::json!({"ssh_key": key, "ssh_host_fingerprint": fingerprint})),
    );
    node("term3", with(serde_json::json!({"ssh_password": "s3cret"})));

    // Secrets are write-only.
    let shown = api.xcat3(&["show", "term1"]).ok();
    assert!(
        !shown.contains("s3cret") && shown.contains("******"),
        "{shown}"
    );

    for n in ["term1", "term2"] {
        let mut v = Viewer::connect(&api.url, n, "", None).expect("attach");
        v.expect("# ", 20);
        v.send(b"echo ssh-$((6*7))\r");
        v.expect("ssh-42", 20);
    }
    assert!(sshd.accepted("password") >= 1 && sshd.accepted("publickey") >= 1);

    // No fingerprint: refused, and the error names the server's key.
    let _v = Viewer::connect(&api.url, "term3", "read_only=true", None).expect("attach");
    let list = wait_until(20, "the refusal in console-list", || {
        let out = api.xcat3(&["console-list", "term3"]).stdout();
        out.contains("last_error").then_some(out)
    });
    assert!(list.contains(&fingerprint), "{list}");
    assert!(list.contains("ssh_host_fingerprint"), "{list}");
    // A bad method is refused when written, naming the field.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        serde_json::json!({"nodes": [{"name": "term4", "mgt": "fake", "console_info": {"method": "telnet"}}]}).to_string(),
    )
    .unwrap();
    let out = api.xcat3(&["import", bad.to_str().unwrap()]);
    assert!(
        out.stdout().contains("console_info.method"),
        "{}",
        out.stdout()
    );
}

/// Roles on consoles: without a token, refused; a reader watches but
/// cannot type (whatever the client asks) nor force; an operator types.
#[test]
fn a_readers_console_is_read_only_and_an_operator_types() {
    let dir = TempDir::new("console-roles");
    let token = |name: &str, role: &str| {
        let out = Command::new(xcat3_tests::bin_dir().join("xcat3-api"))
            .args(["--standalone", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["token", "create", name, "--role", role])
            .env("RUST_LOG", "warn")
            .output()
            .expect("xcat3-api token create");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (admin, operator, reader) = (
        token("ann", "admin"),
        token("otto", "operator"),
        token("rita", "reader"),
    );
    let sim = Sim::start(dir.path(), "127.44.0.1", 1, &[]);
    let api = Api::standalone_with(&dir.path().join("data"), &[("XCAT3_API_AUTH", "token")]);
    api.xcat3_as(Some(&admin), &["import", sim.export.to_str().unwrap()])
        .ok();
    api.xcat3_as(Some(&operator), &["power", "sim00001", "on"])
        .ok();

    match Viewer::connect(&api.url, "sim00001", "", None) {
        Err((401, _)) => {}
        other => panic!("no token: {:?}", other.err()),
    }
    match Viewer::connect(&api.url, "sim00001", "force=true", Some(&reader)) {
        Err((403, body)) => assert!(body.contains("operator"), "{body}"),
        other => panic!("a reader's force: {:?}", other.err()),
    }
    let mut watching = Viewer::connect(&api.url, "sim00001", "", Some(&reader)).expect("reader");
    let mut typing = Viewer::connect(&api.url, "sim00001", "", Some(&operator)).expect("operator");
    assert!(
        watching.notices.is_empty() || watching.notices.iter().any(|n| n.contains("read-only"))
    );
    watching.drain(1);
    assert!(
        watching.notices.iter().any(|n| n.contains("read-only")),
        "{:?}",
        watching.notices
    );
    api.xcat3_as(Some(&operator), &["power", "sim00001", "cycle"])
        .ok();
    typing.expect("sim00001 login: ", 15);
    let before = sim.bmc("127.44.0.1")["sol"]["typed"].as_u64().unwrap();
    watching.send(b"reader\r");
    typing.send(b"otto\r");
    let end = watching.expect("sim00001 login: otto", 15);
    assert!(
        !watching.seen[..end].contains("reader"),
        "{}",
        watching.seen
    );
    let bmc = sim.wait_bmc("127.44.0.1", "the operator's keys", |b| {
        b["sol"]["typed"].as_u64() >= Some(before + 5)
    });
    assert_eq!(bmc["sol"]["typed"].as_u64().unwrap(), before + 5, "{bmc}");
}

/// A viewer that stops reading does not hold up the others: while the
/// node echoes megabytes, the reading viewer gets every byte and the
/// stalled one, once the buffers on its way are full (its socket's, the
/// API's and the conductor's, a few MiB), is dropped with a message.
#[test]
fn a_stalled_viewer_is_dropped_and_the_other_gets_everything() {
    let dir = TempDir::new("console-stall");
    let sim = Sim::start(dir.path(), "127.45.0.1", 1, &[]);
    let api = Api::standalone(&dir.path().join("data"));
    api.xcat3(&["import", sim.export.to_str().unwrap()]).ok();
    api.xcat3(&["power", "sim00001", "on"]).ok();
    // Its socket takes 4 KiB and no more: the rest is up to our buffers.
    let mut stalled =
        Viewer::connect_with(&api.url, "sim00001", "read_only=true", None, Some(4096))
            .expect("stalled");
    let mut live = Viewer::connect(&api.url, "sim00001", "", None).expect("live");
    wait_connected(&api, "sim00001", Some(2), 60);
    // The getty echoes what is typed: 4 MiB of keys, paced so the input
    // queue keeps them all.
    const TOTAL: usize = 8 << 20;
    let chunk = vec![b'x'; 64 << 10];
    // The boot log in the replay has x's of its own.
    live.drain(1);
    let base = live.seen.matches('x').count();
    let mut sent = 0;
    let mut echoed = 0;
    let t0 = Instant::now();
    while sent < TOTAL {
        live.send(&chunk);
        sent += chunk.len();
        // Read what came back meanwhile, as a live viewer does.
        live.drain_for(Duration::from_millis(100));
        echoed = live.seen.matches('x').count() - base;
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "typing took too long"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while echoed < TOTAL {
        assert!(
            Instant::now() < deadline,
            "the live viewer got {echoed} of {TOTAL} echoed bytes"
        );
        live.drain_for(Duration::from_millis(500));
        echoed = live.seen.matches('x').count() - base;
    }
    assert_eq!(echoed, TOTAL, "every echoed byte reached the live viewer");
    // The stalled one was cut off: what it has ends with the notice.
    stalled.drain(10);
    assert!(
        stalled
            .notices
            .iter()
            .any(|n| n.contains("fell behind the console's output")),
        "notices {:?}, {} bytes seen",
        stalled.notices,
        stalled.seen.len()
    );
    assert!(stalled.seen.matches('x').count() < TOTAL);
    let list = api.xcat3(&["console-list", "sim00001"]).ok();
    assert!(list.contains("viewers=1"), "{list}");
}

/// A console whose SOL is taken by someone else (an admin's `ipmitool sol
/// deactivate` then `sol activate`) notices at its next keepalive, says
/// so in `console-list`, does not take it back while the other holds it,
/// and reconnects once it is free again.
#[cfg(feature = "servers")]
#[test]
fn a_stolen_sol_session_is_noticed_and_not_fought_over() {
    let dir = TempDir::new("sol-stolen");
    let sim = Sim::start(dir.path(), "127.46.0.1", 1, &[]);
    let api = Api::standalone_with(
        &dir.path().join("data"),
        &[
            ("XCAT3_CONSOLE_RECONCILE_INTERVAL", "1"),
            ("XCAT3_IPMI_SOL_KEEPALIVE", "2"),
        ],
    );
    api.xcat3(&["import", sim.export.to_str().unwrap()]).ok();
    api.xcat3(&["update", "sim00001", "console_info/logging=always"])
        .ok();
    wait_connected(&api, "sim00001", None, 60);
    let activations = |sim: &Sim| {
        sim.bmc("127.46.0.1")["sol"]["activations"]
            .as_u64()
            .unwrap()
    };
    // The state file lags the BMC by up to 200 ms.
    let ours = sim.wait_bmc("127.46.0.1", "our activation", |b| {
        b["sol"]["activations"].as_u64() >= Some(1)
    })["sol"]["activations"]
        .as_u64()
        .unwrap();
    // An admin takes SOL over with ipmitool and keeps it.
    let ipmi = ipmitool_args(sim.port, "127.46.0.1");
    let off = Command::new("sh")
        .args(["-c", &format!("{ipmi} sol deactivate")])
        .output()
        .expect("ipmitool");
    assert!(off.status.success(), "{off:?}");
    let mut admin = Command::new("script")
        .args(["-qfc", &format!("exec {ipmi} sol activate"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("script + ipmitool");
    let list = wait_until(20, "the console to notice", || {
        let out = api.xcat3(&["console-list", "sim00001"]).stdout();
        (out.contains("last_error") && !out.contains("sim00001: connected")).then_some(out)
    });
    assert!(
        list.contains("taken over")
            || list.contains("deactivated")
            || list.contains("already active"),
        "{list}"
    );
    // Not taken back while the admin holds it: only the admin's
    // activation was added.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        activations(&sim),
        ours + 1,
        "{}\n{}",
        sim.bmc("127.46.0.1"),
        api.xcat3(&["console", "sim00001", "--log"]).stdout()
    );
    // Free again: the console comes back.
    let _ = admin.kill();
    let _ = admin.wait();
    let _ = Command::new("pkill")
        .args(["-f", "^ipmitool .*127.46.0.1 .* sol activate"])
        .status();
    let off = Command::new("sh")
        .args(["-c", &format!("{ipmi} sol deactivate")])
        .output()
        .expect("ipmitool");
    let _ = off;
    wait_until(40, "the console to reconnect", || {
        let out = api.xcat3(&["console-list", "sim00001"]).ok();
        out.contains("sim00001: connected").then_some(())
    });
}
