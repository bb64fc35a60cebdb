//! KVM end to end: `xcat3` against the machine's real libvirtd with tiny
//! qemu guests (64 MiB, no disk, a user-mode nic without a boot ROM, so a
//! guest never touches a network), checked with `virsh`, not our code.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use xcat3_tests::{Api, TempDir, node_results, unique, wait_until};

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
    assert_eq!(api.xcat3(&["power", "kvm3", "boot"]).summary(), (1, 1));
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
