//! Built images booted for real: `genimage` makes a Debian image on the
//! API host (debootstrap from the machine's mirror, cached between runs),
//! `mkvm` makes libvirt guests (TCG) whose nic sits on a bridge joined to
//! a network namespace where the standalone API runs with its dnsmasq,
//! TFTP and boot HTTP; `deploy` + `power boot` PXE-boot them. What the
//! guests print is read from their console logs (the console server), and
//! their state from the API, as an admin would.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use xcat3_tests::{Api, TempDir, node_results};

const URI: &str = "qemu:///system";
const SERVER_IP: &str = "192.0.2.1";

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab: a namespace for the API (192.0.2.1), a bridge on the host for
/// the guests' nics, a veth between them, and a storage pool; all removed
/// on drop, guests first.
struct Lab {
    ns: String,
    bridge: String,
    host_if: String,
    /// The veth end inside the namespace (dnsmasq serves on it).
    ns_if: String,
    pool: String,
    tag: String,
}

impl Lab {
    fn new(dir: &Path) -> Lab {
        let id = std::process::id() % 100_000;
        let lab = Lab {
            ns: format!("xi-{id}"),
            bridge: format!("xib{id}"),
            host_if: format!("xih{id}"),
            ns_if: format!("xis{id}"),
            pool: format!("xip{id}"),
            tag: format!("xig{id}"),
        };
        let ns_if = lab.ns_if.as_str();
        run_ok("ip", &["netns", "add", &lab.ns]);
        run_ok("ip", &["link", "add", &lab.bridge, "type", "bridge"]);
        run_ok(
            "ip",
            &[
                "link",
                "add",
                &lab.host_if,
                "type",
                "veth",
                "peer",
                "name",
                ns_if,
            ],
        );
        run_ok("ip", &["link", "set", &lab.host_if, "master", &lab.bridge]);
        run_ok("ip", &["link", "set", ns_if, "netns", &lab.ns]);
        for l in [&lab.bridge, &lab.host_if] {
            run_ok("ip", &["link", "set", l, "up"]);
        }
        run_ok(
            "ip",
            &["-n", &lab.ns, "addr", "add", "192.0.2.1/24", "dev", ns_if],
        );
        run_ok("ip", &["-n", &lab.ns, "link", "set", ns_if, "up"]);
        run_ok("ip", &["-n", &lab.ns, "link", "set", "lo", "up"]);
        let pool_dir = dir.join("pool");
        std::fs::create_dir_all(&pool_dir).unwrap();
        run_ok(
            "virsh",
            &[
                "-c",
                URI,
                "pool-define-as",
                &lab.pool,
                "dir",
                "--target",
                pool_dir.to_str().unwrap(),
            ],
        );
        run_ok("virsh", &["-c", URI, "pool-start", &lab.pool]);
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let virsh = |args: &[&str]| {
            let _ = Command::new("virsh").arg("-c").arg(URI).args(args).output();
        };
        let list = Command::new("virsh")
            .args(["-c", URI, "list", "--all", "--name"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for d in list.lines().filter(|l| l.starts_with(&self.tag)) {
            virsh(&["destroy", d]);
            virsh(&["undefine", d]);
        }
        virsh(&["pool-destroy", &self.pool]);
        virsh(&["pool-undefine", &self.pool]);
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// An admin token made in the data dir before the API starts.
fn admin_token(data: &Path) -> String {
    let out = Command::new(xcat3_tests::bin_dir().join("xcat3-api"))
        .args(["--standalone", "--data-dir"])
        .arg(data)
        .args(["token", "create", "ann", "--role", "admin"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("xcat3-api token create");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

struct Cluster {
    api: Api,
    token: String,
    data: std::path::PathBuf,
}

impl Cluster {
    fn xcat3(&self, args: &[&str]) -> xcat3_tests::Run {
        self.api.xcat3_as(Some(&self.token), args)
    }

    fn field(&self, node: &str, field: &str) -> String {
        let out = self.xcat3(&["--json", "show", node]).ok();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v[0]["attr"][field].as_str().unwrap_or("").to_string()
    }

    /// The node's console log (a guest may print bytes that are not
    /// UTF-8: firmware, a garbled line).
    fn console_log(&self, node: &str) -> String {
        std::fs::read(self.data.join("consoles").join(format!("{node}.log")))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until `node` is in `state`; a `deploy failed` on the way (or
    /// the time running out) fails the test with what the node reported
    /// and its console.
    fn wait_state(&self, node: &str, state: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.field(node, "state");
            if s == state {
                return;
            }
            if (s == "deploy failed" && state != s) || Instant::now() > deadline {
                panic!(
                    "{node}: state `{s}` (step `{}`, error `{}`), waiting for `{state}`\nconsole:\n{}",
                    self.field(node, "deploy_step"),
                    self.field(node, "last_error"),
                    tail(&self.console_log(node), 60)
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Waits until `node`'s console log holds `count` lines containing
    /// `text`.
    fn wait_console(&self, node: &str, text: &str, count: usize, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.console_log(node);
            if log.lines().filter(|l| l.contains(text)).count() >= count {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{node}: `{text}` not seen {count} times on its console in {secs} s:\n{}",
                    tail(&log, 80)
                );
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A guest on the lab bridge: `mkvm`, its nic given a lab address, its
/// console logged.
fn guest(c: &Cluster, lab: &Lab, name: &str, ip: &str, disk: Option<&str>) {
    let bridge = format!("bridge:{}", lab.bridge);
    let mut args = vec![
        "mkvm",
        name,
        "--host",
        "hv",
        "--memory",
        "2560",
        "--cpus",
        "1",
        "--network",
        &bridge,
        "--boot",
        "network,hd",
        "--pool",
        &lab.pool,
    ];
    if let Some(d) = disk {
        args.extend(["--disk", d]);
    }
    let r = node_results(&c.xcat3(&args).ok());
    assert_eq!(r[name], "created");
    let shown = c.xcat3(&["show", name, "-i", "nics"]).ok();
    let mac = shown
        .split("\"mac\": \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no MAC in {shown}"))
        .to_string();
    let nics = c.xcat3(&["nic-show", "--mac", &mac]).ok();
    let uuid = nics
        .split("\"uuid\": \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no uuid in {nics}"))
        .to_string();
    c.xcat3(&["nic-update", &uuid, &format!("ip={ip}"), "primary=true"])
        .ok();
    c.xcat3(&["update", name, "console_info/logging=always"])
        .ok();
}

/// Stateless: `genimage`, `deploy` + `power boot` → `booted`, the console
/// shows the kernel banner and a login prompt with the node's name, and
/// a reboot comes back `booted`. A disk image: `installing` → `deployed`
/// → the guest boots from its disk (GRUB's kernel command line, a login
/// prompt), and the disk holds the GPT we wrote (checked with sfdisk from
/// the host). The same guest told to write a disk it does not have
/// reports the failing step and is `deploy failed` with that reason.
#[test]
fn built_images_boot_stateless_and_from_disk_on_real_guests() {
    let dir = TempDir::new("images");
    let cache = xcat3_tests::genimage_cache_dir();
    // The lab's namespace has no way out: the root is bootstrapped (or
    // found in the cache) by an API on the host first.
    {
        let warm = Api::standalone_with(
            &dir.path().join("warm"),
            &[("XCAT3_GENIMAGE_CACHE_DIR", cache.as_str())],
        );
        let started = Instant::now();
        let out = warm
            .xcat3(&["genimage", "warm", "--distro", "debian12"])
            .ok();
        assert!(out.contains("warm: created (stateless debian12"), "{out}");
        eprintln!(
            "genimage (bootstrap or cache): {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    let lab = Lab::new(dir.path());
    let data = dir.path().join("data");
    let token = admin_token(&data);
    let api = Api::start_in(
        Some(&lab.ns),
        &[
            "--standalone",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "192.0.2.1:0",
        ],
        &[
            ("XCAT3_API_AUTH", "token"),
            ("XCAT3_CONDUCTOR_HOST", "local"),
            ("XCAT3_DHCP_BACKEND", "dnsmasq"),
            ("XCAT3_DHCP_MANAGE", "true"),
            ("XCAT3_DHCP_INTERFACE", lab.ns_if.as_str()),
            ("XCAT3_BOOT_SERVER_ADDRESS", SERVER_IP),
            ("XCAT3_BOOT_TFTP_LISTEN", "192.0.2.1:69"),
            ("XCAT3_BOOT_HTTP_LISTEN", "192.0.2.1:8080"),
            ("XCAT3_BOOT_DEPLOY_TIMEOUT", "1200"),
            ("XCAT3_GENIMAGE_CACHE_DIR", cache.as_str()),
            ("XCAT3_KVM_CPU_OVERCOMMIT", "64"),
            // TCG: this machine's KVM cannot run firmware (see netboot.rs).
            ("XCAT3_KVM_DOMAIN_TYPE", "qemu"),
            ("XCAT3_KVM_MEMORY_OVERCOMMIT", "4"),
            ("XCAT3_CONSOLE_RECONCILE_INTERVAL", "2"),
        ],
    );
    let c = Cluster { api, token, data };
    c.api.create_lab(
        Some(&c.token),
        &[
            "subnet=192.0.2.0",
            "netmask=255.255.255.0",
            "domain=lab.example",
        ],
    );
    c.xcat3(&[
        "create",
        "hv",
        "type=hypervisor",
        "-c",
        &format!("libvirt_uri={URI}"),
    ])
    .ok();

    // Both images from one cached root; the second build only packs.
    let started = Instant::now();
    let out = c.xcat3(&["genimage", "st", "--distro", "debian12"]).ok();
    assert!(out.contains("st: created (stateless debian12"), "{out}");
    eprintln!("genimage st: {:.0} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let out = c
        .xcat3(&[
            "genimage", "disk", "--distro", "debian12", "--kind", "image",
        ])
        .ok();
    assert!(out.contains("disk: created (image debian12"), "{out}");
    eprintln!("genimage disk: {:.0} s", started.elapsed().as_secs_f64());
    // A second build of a name is refused without --force.
    let again = c.xcat3(&["genimage", "st", "--distro", "debian12"]);
    assert_ne!(again.code(), 0);
    assert!(again.stderr().contains("exists"), "{}", again.stderr());
    let shown = c.xcat3(&["osimage-show", "disk"]).ok();
    for k in [
        "\"kind\": \"image\"",
        "\"root_bytes\"",
        "\"built_at\"",
        "\"packages\"",
    ] {
        assert!(shown.contains(k), "{k} in {shown}");
    }

    let (a, b) = (format!("{}a", lab.tag), format!("{}b", lab.tag));
    guest(&c, &lab, &a, "192.0.2.10", None);
    guest(&c, &lab, &b, "192.0.2.11", Some("4G"));
    c.xcat3(&["update", &b, "control_info/install_disk=/dev/vda"])
        .ok();
    // Post-boot scripts: the agent fetches and runs them at boot (on the
    // live system; for the disk image inside the written root).
    let hello = dir.path().join("hello");
    std::fs::write(
        &hello,
        "#!/bin/sh\necho \"$NODE\" > /root/xcat3-hello\necho \"hello from $NODE\"\n",
    )
    .unwrap();
    let fails = dir.path().join("fails");
    std::fs::write(&fails, "echo checking\necho no license >&2\nexit 5\n").unwrap();
    c.xcat3(&["script-create", "hello", hello.to_str().unwrap()])
        .ok();
    c.xcat3(&["script-create", "fails", fails.to_str().unwrap()])
        .ok();
    for n in [&a, &b] {
        c.xcat3(&["update", n, "control_info/postscripts=hello"])
            .ok();
    }
    let r = node_results(&c.xcat3(&["deploy", &a, "--osimage", "st"]).ok());
    assert_eq!(r[&a], "ok");
    let r = node_results(&c.xcat3(&["deploy", &b, "--osimage", "disk"]).ok());
    assert_eq!(r[&b], "ok");
    // An image in use is not deleted.
    let del = c.xcat3(&["osimage-delete", "st"]);
    assert_ne!(del.code(), 0);
    assert!(
        del.stderr().contains("deploying or booted"),
        "{}",
        del.stderr()
    );

    let booted_at = Instant::now();
    c.xcat3(&["power", &format!("{a},{b}"), "boot"]).ok();
    // Stateless: booted, with the banner and the node's login prompt.
    c.wait_state(&a, "booted", 600);
    eprintln!(
        "{a}: power boot → booted in {:.0} s",
        booted_at.elapsed().as_secs_f64()
    );
    assert_eq!(c.field(&a, "deploy_step"), "done");
    c.wait_console(&a, &format!("{a} login:"), 1, 120);
    let log = c.console_log(&a);
    assert!(log.contains("Linux version"), "{}", tail(&log, 40));

    // Its SSH server is the one whose host keys the agent reported (made
    // at this boot), the cluster's key lets the conductor in, and the
    // script ran as the node.
    let exec = |node: &str, cmd: &str| {
        let run = c.xcat3(&["--json", "exec", node, "--", cmd]);
        let v: serde_json::Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("{e}: {} {}", run.stdout(), run.stderr()));
        assert!(v.get("error_kinds").is_none(), "{v}");
        v["nodes"][node]["output"].as_str().unwrap().to_string()
    };
    assert_eq!(
        exec(&a, "cat /root/xcat3-hello; hostname"),
        format!("{a}\n{a}\n")
    );
    let ran = c.xcat3(&["postscripts", &a]).ok();
    assert!(
        ran.contains(&format!("{a}: [hello: exit 0]\n{a}: hello from {a}\n")),
        "{ran}"
    );
    let first_keys = exec(&a, "cat /etc/ssh/ssh_host_ed25519_key.pub");

    // A reboot: network boot again, reports again, booted again, with
    // new host keys (a stateless root keeps none) that it reports again.
    c.xcat3(&["power", &a, "cycle"]).ok();
    c.wait_console(&a, "Linux version", 2, 300);
    c.wait_state(&a, "booted", 600);
    c.wait_console(&a, &format!("{a} login:"), 2, 120);
    assert_ne!(
        exec(&a, "cat /etc/ssh/ssh_host_ed25519_key.pub"),
        first_keys
    );

    // A failing script: never `booted` with a silent failure.
    c.xcat3(&["update", &a, "control_info/postscripts=hello,fails"])
        .ok();
    c.xcat3(&["power", &a, "cycle"]).ok();
    c.wait_state(&a, "deploy failed", 600);
    assert_eq!(c.field(&a, "deploy_step"), "postscripts");
    assert_eq!(
        c.field(&a, "last_error"),
        "postscripts failed: postscript `fails` exited 5: no license"
    );

    // The disk image: written, then booted from the disk.
    c.wait_state(&b, "deployed", 900);
    eprintln!(
        "{b}: power boot → deployed in {:.0} s",
        booted_at.elapsed().as_secs_f64()
    );
    c.wait_console(&b, "root=UUID=", 1, 300);
    c.wait_console(&b, &format!("{b} login:"), 2, 300);
    // The installed system: the script ran inside it before its first
    // boot, and its SSH server has the keys its agent reported.
    assert_eq!(exec(&b, "cat /root/xcat3-hello"), format!("{b}\n"));
    c.xcat3(&["power", &b, "off"]).ok();
    let vol = run_ok("virsh", &["-c", URI, "vol-list", &lab.pool])
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .nth(1)
                .filter(|p| p.starts_with('/'))
                .map(str::to_string)
        })
        .expect("the guest's disk volume");
    let raw = dir.path().join("disk.raw");
    run_ok(
        "qemu-img",
        &["convert", "-O", "raw", &vol, raw.to_str().unwrap()],
    );
    let table = run_ok("sfdisk", &["--dump", raw.to_str().unwrap()]);
    assert!(table.contains("label: gpt"), "{table}");
    for (t, name) in [
        ("21686148-6449-6E6F-744E-656564454649", "bios"),
        ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "efi"),
        ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "root"),
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.contains(t) && l.contains(&format!("name=\"{name}\""))),
            "{name} partition in {table}"
        );
    }

    // A disk it does not have: the agent reports the step and why.
    c.xcat3(&["deploy", &b, "-d"]).ok();
    c.xcat3(&["update", &b, "control_info/install_disk=/dev/vdz"])
        .ok();
    let r = node_results(&c.xcat3(&["deploy", &b, "--osimage", "disk"]).ok());
    assert_eq!(r[&b], "ok");
    c.xcat3(&["power", &b, "boot"]).ok();
    c.wait_state(&b, "deploy failed", 600);
    assert_eq!(c.field(&b, "deploy_step"), "installing");
    let err = c.field(&b, "last_error");
    assert!(
        err.starts_with("installing failed: install_disk /dev/vdz"),
        "{err}"
    );
}

/// The boot protocol of a built image without a guest, as a mass reboot
/// would exercise it: the overlay goes to the node's address only and is
/// its `image fetched`; the agent's reports (curl from the node's
/// address) move a stateless node to `booted`, a new boot back to
/// `deploying`, a failed step to `deploy failed` with the reason; a wrong
/// token is refused; an image in use is not deleted, and a released one
/// is, with its tree.
#[test]
fn stateless_boot_reports_move_the_node_and_keep_its_image() {
    use super::deploy::{arg, callback, curl_from, state};
    let dir = TempDir::new("images-steps");
    let port = xcat3_tests::free_tcp_port();
    let http = format!("127.0.0.1:{port}");
    let api = Api::standalone_boot(&dir.path().join("data"), &http, &[]);
    let out = api.xcat3(&["genimage", "st", "--distro", "debian12"]).ok();
    assert!(out.contains("st: created (stateless"), "{out}");
    // Failed builds leave nothing behind: a root over its size limit, a
    // package the mirror does not have.
    let install = dir.path().join("data/install");
    for (args, why) in [
        (vec!["--size-limit", "64M"], "size_limit: the root is"),
        (
            vec!["--packages", "xcat3-no-such-package"],
            "bootstrap failed",
        ),
    ] {
        let mut cmd = vec!["genimage", "bad", "--distro", "debian12"];
        cmd.extend(args);
        let run = api.xcat3(&cmd);
        assert_eq!(run.code(), 1, "{}", run.stderr());
        assert!(run.stderr().contains(why), "{}", run.stderr());
        assert_ne!(api.xcat3(&["osimage-show", "bad"]).code(), 0);
        let left: Vec<String> = std::fs::read_dir(&install)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "st")
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    api.create_lab(None, &["subnet=127.0.2.0", "netmask=255.255.255.0"]);
    let (mac, ip) = ("02:00:5e:00:22:31", "127.0.2.31");
    api.xcat3(&[
        "create",
        "s1",
        "netboot=ipxe",
        "-i",
        &format!("mac={mac},ip={ip}"),
    ])
    .ok();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr admin@mgmt";
    api.xcat3(&[
        "update",
        "s1",
        &format!("control_info/ssh_authorized_keys={key}"),
    ])
    .ok();
    let r = node_results(&api.xcat3(&["deploy", "s1", "--osimage", "st"]).ok());
    assert_eq!(r["s1"], "ok");

    let (code, script) = curl_from(
        ip,
        &[&format!("http://{http}/ipxe/{}", mac.replace(':', "-"))],
    );
    assert_eq!(code, 200, "{script}");
    let overlay_url = format!("http://{http}/autoinst/s1/overlay.cpio");
    assert!(
        script.contains(&format!("initrd --name overlay {overlay_url}")),
        "{script}"
    );
    assert!(
        script.contains("initrd --name root") && script.contains(":try6"),
        "{script}"
    );
    let token = arg(&script, "xcat3.token").to_string();
    // The overlay carries the node's settings: its address only.
    let (code, _) = curl_from("127.0.0.1", &[&overlay_url]);
    assert_eq!(code, 403);
    assert_eq!(state(&api, "s1")["deploy_step"], serde_json::Value::Null);
    let (code, overlay) = curl_from(ip, &[&overlay_url]);
    assert_eq!(code, 200);
    assert!(overlay.contains("root/.ssh/authorized_keys\0"), "{overlay}");
    assert!(overlay.contains(key), "{overlay}");
    assert!(
        overlay.contains("etc/xcat3/node.conf") && overlay.contains("node=s1"),
        "{overlay}"
    );
    xcat3_tests::wait_until(10, "image fetched recorded", || {
        (state(&api, "s1")["deploy_step"] == "image fetched").then_some(())
    });

    let report = |body: &str| {
        let (code, reply) = callback(&api, ip, "s1", body);
        (code, reply)
    };
    let step = |s: &str| format!(r#"{{"token":"{token}","step":"{s}"}}"#);
    assert_eq!(
        report(&step("root mounted")),
        (200, r#"{"nodes":{"s1":"deploying"}}"#.into())
    );
    assert_eq!(report(&step("agent up")).0, 200);
    assert_eq!(
        report(&step("done")),
        (200, r#"{"nodes":{"s1":"booted"}}"#.into())
    );
    let s = state(&api, "s1");
    assert_eq!(
        (s["state"].as_str(), s["deploy_step"].as_str()),
        (Some("booted"), Some("done"))
    );
    // Booted from it: not deleted.
    let del = api.xcat3(&["osimage-delete", "st"]);
    assert_ne!(del.code(), 0);
    assert!(
        del.stderr().contains("1 nodes are deploying or booted"),
        "{}",
        del.stderr()
    );

    // The next boot: the overlay fetched again makes it deploying.
    assert_eq!(curl_from(ip, &[&overlay_url]).0, 200);
    xcat3_tests::wait_until(10, "a new boot is deploying", || {
        (state(&api, "s1")["state"] == "deploying").then_some(())
    });
    assert_eq!(report(&step("done")).1, r#"{"nodes":{"s1":"booted"}}"#);
    // A step that fails, with control characters in its text.
    let failed =
        format!(r#"{{"token":"{token}","step":"agent up","error":"no address on\nens3\u0007"}}"#);
    assert_eq!(
        report(&failed),
        (200, r#"{"nodes":{"s1":"deploy failed"}}"#.into())
    );
    let s = state(&api, "s1");
    assert_eq!(s["last_error"], "agent up failed: no address on ens3");
    assert_eq!(s["deploy_step"], "agent up");
    // Its next boot reports with the same token and recovers.
    assert_eq!(
        report(&step("root mounted")).1,
        r#"{"nodes":{"s1":"deploying"}}"#
    );
    // Refused: a wrong token, a step we do not know, another address.
    let (code, _) = report(r#"{"token":"0123456789abcdef0123456789abcdef","step":"done"}"#);
    assert_eq!(code, 403);
    assert_eq!(report(&step("rebooting")).0, 400);
    let (code, _) = callback(&api, "127.0.0.1", "s1", &step("done"));
    assert_eq!(code, 403);

    // Released and gone, the image goes, tree and all.
    api.xcat3(&["deploy", "s1", "-d"]).ok();
    api.xcat3(&["delete", "s1"]).ok();
    api.xcat3(&["osimage-delete", "st"]).ok();
    assert!(!dir.path().join("data/install/st").exists());
    assert_ne!(api.xcat3(&["osimage-show", "st"]).code(), 0);
}
