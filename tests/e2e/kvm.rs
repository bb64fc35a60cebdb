//! KVM end to end: `xcat3` against the machine's real libvirtd with tiny
//! qemu guests (64 MiB, no disk, a user-mode nic without a boot ROM, so a
//! guest never touches a network), checked with `virsh`, not our code.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use xcat3_tests::{Api, Sshd, TempDir, node_results, unique, wait_until};

const URI: &str = "qemu:///system";

fn virsh(args: &[&str]) -> std::process::Output {
    Command::new("virsh")
        .arg("-c")
        .arg(URI)
        .args(args)
        .output()
        .expect("virsh (libvirt-clients) is required; scripts/test installs it")
}

fn virsh_ok(args: &[&str]) -> String {
    let out = virsh(args);
    assert!(
        out.status.success(),
        "virsh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Tiny guests defined for one test, destroyed and undefined on drop.
struct Guests(Vec<String>);

impl Guests {
    fn define(dir: &Path, names: &[String], macs: &[String]) -> Guests {
        let version = virsh(&["version"]);
        assert!(
            version.status.success(),
            "libvirtd must run for the KVM tests (scripts/test starts it): {}",
            String::from_utf8_lossy(&version.stderr)
        );
        let kind = if Path::new("/dev/kvm").exists() {
            "kvm"
        } else {
            "qemu"
        };
        for (name, mac) in names.iter().zip(macs) {
            let xml = format!(
                "<domain type='{kind}'><name>{name}</name><memory unit='MiB'>64</memory>\
                 <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type>\
                 <boot dev='hd'/></os><devices><interface type='user'>\
                 <mac address='{mac}'/><model type='e1000'/><rom enabled='no'/>\
                 </interface></devices></domain>"
            );
            let f = dir.join(format!("{name}.xml"));
            std::fs::write(&f, xml).unwrap();
            virsh_ok(&["define", f.to_str().unwrap()]);
        }
        Guests(names.to_vec())
    }
}

impl Drop for Guests {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = virsh(&["destroy", n]);
            let _ = virsh(&["undefine", n]);
        }
    }
}

/// MACs for a test's guests, distinct between concurrent test processes.
fn test_macs(n: usize, salt: u8) -> Vec<String> {
    let pid = std::process::id();
    (1..=n)
        .map(|i| format!("52:54:00:{salt:02x}:{:02x}:{i:02x}", pid % 251))
        .collect()
}

fn domstate(name: &str) -> String {
    virsh_ok(&["domstate", name])
}

/// The qemu process of a running guest (changes when it is restarted).
fn qemu_pid(name: &str) -> String {
    std::fs::read_to_string(format!("/run/libvirt/qemu/{name}.pid"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The `dev`s of `<os><boot>` in the guest's persistent definition.
fn boot_order(name: &str, inactive: bool) -> Vec<String> {
    let mut args = vec!["dumpxml", name];
    if inactive {
        args.push("--inactive");
    }
    let xml = virsh_ok(&args);
    xml.split("<boot dev='")
        .skip(1)
        .map(|s| s.split('\'').next().unwrap().to_string())
        .collect()
}

#[test]
fn kvm_power_and_boot_order_on_real_libvirt_guests() {
    let dir = TempDir::new("kvm");
    let tag = unique("x3").replace('-', "");
    let names: Vec<String> = (1..=3).map(|i| format!("{tag}g{i}")).collect();
    let macs: Vec<String> = (1..=3)
        .map(|i| {
            format!(
                "52:54:00:{:02x}:{:02x}:{i:02x}",
                std::process::id() % 251,
                std::process::id() / 251 % 251
            )
        })
        .collect();
    let _guests = Guests::define(dir.path(), &names, &macs);

    // kvm1/kvm2 name their domain; kvm3's domain has another name and is
    // found by the node's primary MAC.
    let nodes = json!({"nodes": [
        {"name": "kvm1", "mgt": "kvm", "control_info": {"libvirt_uri": URI, "domain": names[0]}},
        {"name": "kvm2", "mgt": "kvm", "control_info": {"libvirt_uri": URI, "domain": names[1]}},
        {"name": "kvm3", "mgt": "kvm", "control_info": {"libvirt_uri": URI},
         "nics_info": {"nics": [{"mac": macs[2], "primary": true}]}},
        {"name": "nodomain", "mgt": "kvm", "control_info": {"libvirt_uri": URI, "domain": format!("{tag}none")}},
        {"name": "nohv", "mgt": "kvm", "control_info": {"libvirt_uri": "qemu+tcp://127.0.0.1:1/system", "domain": "x"}},
        {"name": "nouri", "mgt": "kvm", "control_info": {"ssh_virt_type": "virsh"}},
    ]});
    let f = dir.path().join("nodes.json");
    std::fs::write(&f, nodes.to_string()).unwrap();
    let api = Api::standalone(&dir.path().join("data"));
    api.xcat3(&["import", f.to_str().unwrap()]).ok();
    let guests = "kvm[1-3]";

    let r = node_results(&api.xcat3(&["power", guests, "status"]).ok());
    assert!(r.len() == 3 && r.values().all(|v| v == "off"), "{r:?}");

    assert_eq!(api.xcat3(&["power", guests, "on"]).summary(), (3, 3));
    for n in &names {
        assert_eq!(domstate(n), "running", "{n}");
    }
    let pids: Vec<String> = names.iter().map(|n| qemu_pid(n)).collect();
    assert!(pids.iter().all(|p| !p.is_empty()), "{pids:?}");
    // `on` of a running guest leaves it alone (the prototype restarted it).
    assert_eq!(api.xcat3(&["power", guests, "on"]).summary(), (3, 3));
    let again: Vec<String> = names.iter().map(|n| qemu_pid(n)).collect();
    assert_eq!(pids, again);
    let r = node_results(&api.xcat3(&["power", guests, "status"]).ok());
    assert!(r.values().all(|v| v == "on"), "{r:?}");

    // Boot order: network first in the persistent definition.
    assert_eq!(api.xcat3(&["bootdev", guests, "net"]).summary(), (3, 3));
    for n in &names {
        assert_eq!(boot_order(n, true), ["network", "hd"], "{n}");
    }
    let r = node_results(&api.xcat3(&["bootdev", guests, "status"]).ok());
    assert!(r.values().all(|v| v == "net"), "{r:?}");
    // `boot` starts a new qemu process, which runs the new order.
    let boot = api.xcat3(&["power", "kvm3", "boot"]);
    assert_eq!(boot.summary(), (1, 1), "{}", boot.stdout());
    assert_eq!(domstate(&names[2]), "running");
    assert_ne!(qemu_pid(&names[2]), pids[2]);
    assert_eq!(boot_order(&names[2], false), ["network", "hd"]);
    // `reset` keeps the process; `cycle` replaces it.
    assert_eq!(api.xcat3(&["power", "kvm1", "reset"]).summary(), (1, 1));
    assert_eq!(qemu_pid(&names[0]), pids[0]);
    assert_eq!(api.xcat3(&["power", "kvm1", "cycle"]).summary(), (1, 1));
    assert_eq!(domstate(&names[0]), "running");
    assert_ne!(qemu_pid(&names[0]), pids[0]);
    assert_eq!(api.xcat3(&["bootdev", "kvm1", "disk"]).summary(), (1, 1));
    assert_eq!(boot_order(&names[0], true), ["hd", "network"]);

    assert_eq!(api.xcat3(&["power", guests, "off"]).summary(), (3, 3));
    for n in &names {
        assert_eq!(domstate(n), "shut off", "{n}");
    }

    // Per-node errors beside a node that works.
    let run = api.xcat3(&["power", "kvm2,nodomain,nohv,nouri", "status"]);
    assert_eq!(run.summary(), (1, 4), "{}", run.stdout());
    let r = node_results(&run.stdout());
    assert_eq!(r["kvm2"], "off");
    assert_eq!(
        r["nodomain"],
        format!("hypervisor {URI}: no domain named `{tag}none`")
    );
    assert!(
        r["nohv"].starts_with("hypervisor qemu+tcp://127.0.0.1:1/system: cannot connect: "),
        "{}",
        r["nohv"]
    );
    assert_eq!(
        r["nouri"],
        "control_info.ssh_address or control_info.libvirt_uri: one is required for mgt=kvm"
    );
    let run = api.xcat3(&["power", "kvm2", "reset"]);
    assert_eq!(run.summary(), (0, 1));
    assert!(
        node_results(&run.stdout())["kvm2"]
            .ends_with("is off; reset needs a running guest (use on or boot)"),
        "{}",
        run.stdout()
    );
    assert_eq!(
        node_results(&api.xcat3(&["bootdev", "kvm2", "bios"]).stdout())["kvm2"],
        "a KVM guest has no BIOS setup to boot into"
    );
    wait_until(5, "guests off", || {
        names
            .iter()
            .all(|n| domstate(n) == "shut off")
            .then_some(())
    });
}

/// The prototype's `ssh_*` keys, through a real sshd: by key (OpenSSH,
/// libvirt's `qemu+ssh`) and by password (libvirt's libssh2 transport and
/// our credential callback). One connection per hypervisor, reused.
#[test]
fn kvm_over_ssh_with_the_prototypes_keys() {
    let dir = TempDir::new("kvm-ssh");
    let sshd = Sshd::start(dir.path());
    let tag = unique("x3s").replace('-', "");
    let names = vec![format!("{tag}g1"), format!("{tag}g2")];
    let _guests = Guests::define(dir.path(), &names, &test_macs(2, 0xb2));
    let ssh = |extra: serde_json::Value, domain: &str| {
        let mut c = json!({"ssh_address": "127.0.0.1", "ssh_port": sshd.port,
                           "ssh_virt_type": "virsh", "ssh_verify_host": false, "domain": domain});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let key = sshd.key.to_str().unwrap();
    let nodes = json!({"nodes": [
        {"name": "bykey1", "mgt": "kvm", "control_info": ssh(json!({"ssh_key_filename": key}), &names[0])},
        {"name": "bykey2", "mgt": "kvm", "control_info": ssh(json!({"ssh_key_filename": key}), &names[1])},
        {"name": "bypw", "mgt": "kvm", "control_info": ssh(json!({"ssh_password": "s3cret"}), &names[1])},
        {"name": "wrongkey", "mgt": "kvm", "control_info":
            ssh(json!({"ssh_key_filename": sshd.wrong_key.to_str().unwrap()}), &names[0])},
        {"name": "wrongpw", "mgt": "kvm", "control_info": ssh(json!({"ssh_password": "N0tIt!"}), &names[0])},
    ]});
    let f = dir.path().join("nodes.json");
    std::fs::write(&f, nodes.to_string()).unwrap();
    let api = Api::standalone(&dir.path().join("data"));
    api.xcat3(&["import", f.to_str().unwrap()]).ok();

    assert_eq!(api.xcat3(&["power", "bykey[1-2]", "on"]).summary(), (2, 2));
    assert_eq!(domstate(&names[0]), "running");
    assert_eq!(domstate(&names[1]), "running");
    let r = node_results(&api.xcat3(&["power", "bykey[1-2],bypw", "status"]).ok());
    assert!(r.len() == 3 && r.values().all(|v| v == "on"), "{r:?}");
    assert_eq!(api.xcat3(&["bootdev", "bypw", "net"]).summary(), (1, 1));
    assert_eq!(boot_order(&names[1], true), ["network", "hd"]);
    assert_eq!(api.xcat3(&["power", "bykey[1-2]", "off"]).summary(), (2, 2));
    assert_eq!(domstate(&names[0]), "shut off");
    // Five requests, two guests on one hypervisor: one SSH login per
    // credential, not one per node and action as in the prototype.
    assert_eq!(sshd.accepted("publickey"), 1);
    assert_eq!(sshd.accepted("password"), 1);

    let run = api.xcat3(&["power", "wrongkey,wrongpw", "status"]);
    assert_eq!(run.summary(), (0, 2), "{}", run.stdout());
    let r = node_results(&run.stdout());
    let prefix = format!("hypervisor qemu+ssh://root@127.0.0.1:{}/system?", sshd.port);
    assert!(
        r["wrongkey"].starts_with(&prefix) && r["wrongkey"].contains("Permission denied"),
        "{}",
        r["wrongkey"]
    );
    let prefix = format!(
        "hypervisor qemu+libssh2://root@127.0.0.1:{}/system?",
        sshd.port
    );
    assert!(
        r["wrongpw"].starts_with(&prefix) && r["wrongpw"].contains("cannot connect"),
        "{}",
        r["wrongpw"]
    );
    assert!(!run.stdout().contains("N0tIt!") && !run.stderr().contains("N0tIt!"));
}

/// Storage pools, bridges and bridge-mode libvirt networks made for one
/// test (no addresses, no DHCP, no firewall rules), removed on drop.
struct Infra {
    pools: Vec<String>,
    networks: Vec<String>,
    bridges: Vec<String>,
}

impl Infra {
    fn new() -> Infra {
        Infra {
            pools: Vec::new(),
            networks: Vec::new(),
            bridges: Vec::new(),
        }
    }

    fn pool(&mut self, name: &str, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        virsh_ok(&[
            "pool-define-as",
            name,
            "dir",
            "--target",
            dir.to_str().unwrap(),
        ]);
        self.pools.push(name.to_string());
        virsh_ok(&["pool-start", name]);
    }

    fn bridge(&mut self, name: &str) {
        for args in [
            vec!["link", "add", name, "type", "bridge"],
            vec!["link", "set", name, "up"],
        ] {
            let ok = Command::new("ip").args(&args).status().expect("ip");
            assert!(ok.success(), "ip {args:?}");
        }
        self.bridges.push(name.to_string());
    }

    /// A libvirt network that hands guests to `bridge`.
    fn network(&mut self, name: &str, bridge: &str, dir: &Path) {
        let f = dir.join(format!("{name}.xml"));
        std::fs::write(
            &f,
            format!("<network><name>{name}</name><forward mode='bridge'/><bridge name='{bridge}'/></network>"),
        )
        .unwrap();
        virsh_ok(&["net-define", f.to_str().unwrap()]);
        self.networks.push(name.to_string());
        virsh_ok(&["net-start", name]);
    }
}

impl Drop for Infra {
    fn drop(&mut self) {
        for n in &self.networks {
            let _ = virsh(&["net-destroy", n]);
            let _ = virsh(&["net-undefine", n]);
        }
        for p in &self.pools {
            let _ = virsh(&["pool-destroy", p]);
            let _ = virsh(&["pool-undefine", p]);
        }
        for b in &self.bridges {
            let _ = Command::new("ip").args(["link", "del", b]).status();
        }
    }
}

/// The MAC the inventory gave `node` is the one in its domain `xml`.
fn assert_guest_mac(api: &Api, node: &str, xml: &str) {
    let shown = api.xcat3(&["show", node, "-i", "nics"]).ok();
    let mac = shown
        .split("\"mac\": \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no MAC in {shown}"));
    assert!(
        xml.contains(&format!("<mac address='{mac}'/>")),
        "{mac} not in {xml}"
    );
}

/// Removes every domain whose name starts with the test's tag on drop, so
/// a failing mkvm test leaves no guest behind on the shared libvirtd.
struct Sweep(String);

impl Drop for Sweep {
    fn drop(&mut self) {
        // No panicking helpers here: this may run while a test unwinds.
        let list = virsh(&["list", "--all", "--name"]);
        for d in String::from_utf8_lossy(&list.stdout)
            .lines()
            .filter(|l| l.starts_with(&self.0))
        {
            let _ = virsh(&["destroy", d]);
            let _ = virsh(&["undefine", d]);
        }
    }
}

fn volumes(pool: &str) -> Vec<String> {
    virsh_ok(&["vol-list", pool, "--details"])
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn domains_named(prefix: &str) -> Vec<String> {
    virsh_ok(&["list", "--all", "--name"])
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// A standalone API with hypervisor node `hv` (the local libvirtd). Other
/// tests' guests count against the same hypervisor's vCPU allowance, so
/// the overcommit is raised.
fn api_with_hypervisor(dir: &Path) -> Api {
    let api = Api::standalone_with(&dir.join("data"), &[("XCAT3_KVM_CPU_OVERCOMMIT", "64")]);
    api.xcat3(&[
        "create",
        "hv",
        "type=hypervisor",
        "-c",
        &format!("libvirt_uri={URI}"),
    ])
    .ok();
    api
}

/// `mkvm` of 20 guests over two pools and two kinds of network, power
/// through the registered nodes, `rmvm --purge`; all checked with virsh.
#[test]
fn mkvm_power_and_rmvm_purge_leave_nothing_behind() {
    let dir = TempDir::new("mkvm");
    let tag = unique("x3m").replace('-', "");
    let pid = std::process::id();
    let mut infra = Infra::new();
    // Declared after `infra`, so dropped first: guests go before their pools.
    let _sweep = Sweep(tag.clone());
    let (pool_a, pool_b) = (format!("{tag}pa"), format!("{tag}pb"));
    infra.pool(&pool_a, &dir.path().join("pool-a"));
    infra.pool(&pool_b, &dir.path().join("pool-b"));
    let (br_a, br_b) = (format!("x3a{pid}"), format!("x3b{pid}"));
    infra.bridge(&br_a);
    infra.bridge(&br_b);
    let net_a = format!("{tag}na");
    infra.network(&net_a, &br_a, dir.path());

    // 30 vCPUs on a 2-core test machine.
    let api = api_with_hypervisor(dir.path());
    let first = format!("{tag}v[01-10]");
    let second = format!("{tag}v[11-20]");
    let all = format!("{tag}v[01-20]");
    let run = api.xcat3(&[
        "mkvm",
        &first,
        "--host",
        "hv",
        "--memory",
        "64",
        "--disk",
        "64M",
        "--pool",
        &pool_a,
        "--network",
        &net_a,
    ]);
    assert_eq!(run.summary(), (10, 10), "{}", run.stdout());
    assert!(node_results(&run.stdout()).values().all(|v| v == "created"));
    let run = api.xcat3(&[
        "mkvm",
        &second,
        "--host",
        "hv",
        "--memory",
        "64",
        "--cpus",
        "2",
        "--disk",
        "64M",
        "--pool",
        &pool_b,
        "--network",
        &format!("bridge:{br_b}"),
        "--boot",
        "hd,network",
    ]);
    assert_eq!(run.summary(), (10, 10), "{}", run.stdout());
    assert_eq!(domains_named(&format!("{tag}v")).len(), 20);
    assert_eq!(volumes(&pool_a).len(), 10);
    assert_eq!(volumes(&pool_b).len(), 10);
    // Again: nothing new, every guest `exists`.
    let run = api.xcat3(&[
        "mkvm", &first, "--host", "hv", "--memory", "64", "--pool", &pool_a,
    ]);
    assert!(
        node_results(&run.stdout()).values().all(|v| v == "exists"),
        "{}",
        run.stdout()
    );

    // The guests as virsh sees them match the inventory.
    let g11 = format!("{tag}v11");
    let xml = virsh_ok(&["dumpxml", &g11, "--inactive"]);
    assert!(xml.contains(&format!("<source bridge='{br_b}'/>")), "{xml}");
    assert!(xml.contains("<vcpu placement='static'>2</vcpu>"), "{xml}");
    assert_eq!(boot_order(&g11, true), ["hd", "network"]);
    assert_guest_mac(&api, &g11, &xml);
    let shown = api.xcat3(&["show", &g11, "-i", "control"]).ok();
    assert!(
        shown.contains(&format!("\"vm_pool\": \"{pool_b}\"")),
        "{shown}"
    );
    let g01 = format!("{tag}v01");
    let xml = virsh_ok(&["dumpxml", &g01, "--inactive"]);
    assert!(
        xml.contains(&format!("<source network='{net_a}'/>")),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("{}/pool-a/{g01}.qcow2", dir.path().display())),
        "{xml}"
    );

    assert_eq!(api.xcat3(&["power", &all, "on"]).summary(), (20, 20));
    let running: Vec<String> = virsh_ok(&["list", "--name"])
        .lines()
        .filter(|l| l.starts_with(&format!("{tag}v")))
        .map(str::to_string)
        .collect();
    assert_eq!(running.len(), 20, "{running:?}");
    assert_eq!(api.xcat3(&["power", &all, "off"]).summary(), (20, 20));
    assert!(
        virsh_ok(&["list", "--name"])
            .lines()
            .all(|l| !l.starts_with(&format!("{tag}v")))
    );

    // Linked clones of a shut-off guest: overlays backed by its disk.
    let clones = format!("{tag}c[1-3]");
    let run = api.xcat3(&["clonevm", &clones, "--source", &g01]);
    assert_eq!(run.summary(), (3, 3), "{}", run.stdout());
    let c1 = format!("{tag}c1");
    let xml = virsh_ok(&["dumpxml", &c1, "--inactive"]);
    let overlay = format!("{}/pool-a/{c1}.qcow2", dir.path().display());
    assert!(xml.contains(&overlay), "{xml}");
    assert!(
        xml.contains(&format!("<source network='{net_a}'/>")),
        "{xml}"
    );
    let info = Command::new("qemu-img")
        .args(["info", "-U", &overlay])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains(&format!(
            "backing file: {}/pool-a/{g01}.qcow2",
            dir.path().display()
        )),
        "{info}"
    );
    assert_guest_mac(&api, &c1, &xml);
    assert_eq!(api.xcat3(&["power", &c1, "on"]).summary(), (1, 1));
    assert_eq!(domstate(&c1), "running");
    // While a clone runs, qemu's image locking keeps the source off.
    let run = api.xcat3(&["power", &g01, "on"]);
    assert!(run.stdout().contains("lock"), "{}", run.stdout());
    assert_eq!(api.xcat3(&["power", &c1, "off"]).summary(), (1, 1));
    // The source must be off to be cloned: its disk backs the clones.
    assert_eq!(api.xcat3(&["power", &g01, "on"]).summary(), (1, 1));
    let run = api.xcat3(&["clonevm", &format!("{tag}c4"), "--source", &g01]);
    assert_eq!(run.summary(), (0, 1));
    assert!(
        run.stdout()
            .contains("is running; shut it down before cloning"),
        "{}",
        run.stdout()
    );
    assert_ne!(api.xcat3(&["show", &format!("{tag}c4")]).code(), 0);
    assert_eq!(
        api.xcat3(&["power", &format!("{g01},{c1}"), "off"])
            .summary(),
        (2, 2)
    );
    let run = api.xcat3(&["rmvm", &clones, "--purge"]);
    assert_eq!(run.summary(), (3, 3), "{}", run.stdout());
    // --disk-image: an overlay on any image, in the guest's own pool.
    let golden = format!("{}/pool-a/{g01}.qcow2", dir.path().display());
    let o1 = format!("{tag}o1");
    let run = api.xcat3(&[
        "mkvm",
        &o1,
        "--host",
        "hv",
        "--memory",
        "64",
        "--disk-image",
        &golden,
        "--pool",
        &pool_b,
    ]);
    assert_eq!(run.summary(), (1, 1), "{}", run.stdout());
    let overlay = format!("{}/pool-b/{o1}.qcow2", dir.path().display());
    let info = Command::new("qemu-img")
        .args(["info", "-U", &overlay])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains(&format!("backing file: {golden}")), "{info}");
    assert_eq!(api.xcat3(&["rmvm", &o1, "--purge"]).summary(), (1, 1));
    assert!(!Path::new(&overlay).exists() && Path::new(&golden).exists());
    assert_eq!(volumes(&pool_a).len(), 10, "the source's disk stays");

    let run = api.xcat3(&["rmvm", &all, "--purge"]);
    assert_eq!(run.summary(), (20, 20), "{}", run.stdout());
    assert!(node_results(&run.stdout()).values().all(|v| v == "removed"));
    assert!(domains_named(&format!("{tag}v")).is_empty());
    assert!(volumes(&pool_a).is_empty() && volumes(&pool_b).is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("pool-a"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("pool-b"))
            .unwrap()
            .count(),
        0
    );
    // rmvm again: nothing to remove.
    let run = api.xcat3(&["rmvm", &all, "--purge"]);
    assert!(node_results(&run.stdout()).values().all(|v| v == "absent"));
}

/// Temporary guests: `mkvm --expire-after` marks them (`list` shows
/// when); once past it their conductor removes them as `rmvm --purge`
/// does (domain and disk) and deletes their nodes, recorded in the
/// history; guests without an expiry stay.
#[test]
fn temporary_guests_are_removed_when_they_expire() {
    let dir = TempDir::new("mkvm-expire");
    let tag = unique("x3e").replace('-', "");
    let mut infra = Infra::new();
    let _sweep = Sweep(tag.clone());
    let pool = format!("{tag}p");
    infra.pool(&pool, &dir.path().join("pool"));
    let api = Api::standalone_with(
        &dir.path().join("data"),
        &[
            ("XCAT3_KVM_CPU_OVERCOMMIT", "64"),
            ("XCAT3_CONDUCTOR_EXPIRY_INTERVAL", "1"),
        ],
    );
    api.xcat3(&[
        "create",
        "hv",
        "type=hypervisor",
        "-c",
        &format!("libvirt_uri={URI}"),
    ])
    .ok();
    let (temp, keep) = (format!("{tag}t[1-2]"), format!("{tag}k1"));
    let mk = |range: &str, extra: &[&str]| {
        let mut args = vec![
            "mkvm", range, "--host", "hv", "--memory", "64", "--disk", "64M", "--pool", &pool,
        ];
        args.extend_from_slice(extra);
        let run = api.xcat3(&args);
        assert!(run.summary().0 == run.summary().1, "{}", run.stdout());
    };
    // A bad duration is refused whole.
    let run = api.xcat3(&["mkvm", &temp, "--host", "hv", "--expire-after", "soon"]);
    assert!(run.stderr().contains("expire_after"), "{}", run.stderr());
    mk(&temp, &["--expire-after", "4s"]);
    mk(&keep, &[]);
    let listed = api.xcat3(&["list", "-o", "name,expires"]).ok();
    let t1 = format!("{tag}t1");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&t1) && l.contains('T') && l.contains('Z')),
        "{listed}"
    );
    assert_eq!(volumes(&pool).len(), 3);
    wait_until(90, "the expired guests to be removed", || {
        let out = api.xcat3(&["list"]).stdout();
        (!out.contains(&t1) && !out.contains(&format!("{tag}t2"))).then_some(())
    });
    assert_eq!(domains_named(&format!("{tag}t")), Vec::<String>::new());
    assert_eq!(volumes(&pool).len(), 1, "only the kept guest's disk");
    assert!(api.xcat3(&["list"]).stdout().contains(&keep));
    let history = api.xcat3(&["history"]).ok();
    assert!(
        history.contains("rmvm --purge (expired): 2 nodes, all ok by conductor local"),
        "{history}"
    );
    api.xcat3(&["rmvm", &keep, "--purge"]).ok();
}

/// Refusals: no room on the hypervisor, a name a foreign domain holds, a
/// hypervisor that is not one or does not exist. Each leaves no domain,
/// no disk and no node behind.
#[test]
fn mkvm_refusals_leave_nothing_half_created() {
    let dir = TempDir::new("mkvm-bad");
    let tag = unique("x3r").replace('-', "");
    let mut infra = Infra::new();
    // Declared after `infra`, so dropped first: guests go before their pools.
    let _sweep = Sweep(tag.clone());
    let pool = format!("{tag}p");
    infra.pool(&pool, &dir.path().join("pool"));
    let foreign = format!("{tag}foreign");
    let _guests = Guests::define(
        dir.path(),
        std::slice::from_ref(&foreign),
        &test_macs(1, 0xc3),
    );
    let api = api_with_hypervisor(dir.path());
    api.xcat3(&["create", "plain", "mgt=fake"]).ok();

    let big = format!("{tag}big");
    let run = api.xcat3(&[
        "mkvm", &big, "--host", "hv", "--memory", "16000000", "--disk", "64M", "--pool", &pool,
    ]);
    assert_eq!(run.summary(), (0, 1));
    let why = &node_results(&run.stdout())[&big];
    assert!(
        why.starts_with("vm_memory: no hypervisor has 16000000 MiB free (most: ")
            && why.ends_with(" MiB on hv)"),
        "{why}"
    );
    let run = api.xcat3(&[
        "mkvm", &foreign, "--host", "hv", "--disk", "64M", "--pool", &pool,
    ]);
    assert_eq!(run.summary(), (0, 1));
    let why = &node_results(&run.stdout())[&foreign];
    assert!(
        why.contains("already exists and is not this node's"),
        "{why}"
    );
    // The foreign guest is untouched, and nothing of ours exists.
    assert_eq!(domstate(&foreign), "shut off");
    assert!(volumes(&pool).is_empty(), "{:?}", volumes(&pool));
    assert!(domains_named(&big).is_empty());
    for n in [&big, &foreign] {
        assert_ne!(
            api.xcat3(&["show", n]).code(),
            0,
            "{n} was left in the inventory"
        );
    }

    let run = api.xcat3(&["mkvm", "x1", "--host", "nosuchhv"]);
    assert_ne!(run.code(), 0);
    assert!(
        run.stderr().contains("hosts: no node `nosuchhv`"),
        "{}",
        run.stderr()
    );
    let run = api.xcat3(&["mkvm", "x1", "--host", "plain"]);
    assert!(
        run.stderr().contains("hosts: `plain` is not a hypervisor"),
        "{}",
        run.stderr()
    );
    let run = api.xcat3(&["mkvm", "x1", "--host", "hv", "--memory", "8"]);
    assert!(
        run.stderr().contains("memory: 8 MiB is not between"),
        "{}",
        run.stderr()
    );
    let run = api.xcat3(&["mkvm", "plain", "--host", "hv"]);
    assert_eq!(
        node_results(&run.stdout())["plain"],
        "mgt: `fake`; mkvm makes KVM guests (mgt=kvm)"
    );
    assert_ne!(api.xcat3(&["show", "x1"]).code(), 0);
}
