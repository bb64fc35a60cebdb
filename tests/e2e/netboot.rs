//! DHCP and network boot, end to end with real servers and clients, in
//! network namespaces of the test's own (192.0.2.0/24, TEST-NET-1): the
//! conductor (inside `xcat3-api --standalone`) runs dnsmasq and serves
//! TFTP and HTTP in one namespace; busybox `udhcpc`, `tftp` (tftp-hpa) and
//! busybox `wget` are the node in the other.

use std::collections::BTreeMap;

use serde_json::json;
use xcat3_tests::{Api, NetnsPair, TempDir, node_results};

const MAC1: &str = "02:00:5e:00:02:10";
const MAC2: &str = "02:00:5e:00:02:11";
const MAC5: &str = "02:00:5e:00:02:15";
const MAC6: &str = "02:00:5e:00:02:16";

/// A DHCP exchange from the client namespace with `mac`; the variables
/// udhcpc hands its script (`ip`, `boot_file`, `siaddr`, ...), or None
/// when no server answered. `options` are extra udhcpc arguments (`-x
/// OPT:HEX` to send an option, `-O OPT` to ask for one).
fn dhcp(
    net: &NetnsPair,
    dir: &TempDir,
    mac: &str,
    options: &[&str],
) -> Option<BTreeMap<String, String>> {
    net.set_client_mac(mac);
    let out_file = dir.path().join(format!("lease-{}", mac.replace(':', "")));
    let _ = std::fs::remove_file(&out_file);
    let script = dir.path().join("udhcpc.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {}\nexit 0\n",
            out_file.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let mut args = vec![
        "busybox",
        "udhcpc",
        "-f",
        "-q",
        "-n",
        "-t",
        "4",
        "-T",
        "1",
        "-i",
        &net.client_if,
        "-s",
    ];
    let script_s = script.display().to_string();
    args.push(&script_s);
    args.extend_from_slice(options);
    let run = net.client_run(&args);
    if !run.status.success() {
        return None;
    }
    let text = std::fs::read_to_string(&out_file).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// `GET http://192.0.2.1:8080PATH` from the client namespace (busybox wget).
fn http_get(net: &NetnsPair, path: &str) -> std::process::Output {
    let url = format!("http://192.0.2.1:8080{path}");
    net.client_run(&["busybox", "wget", "-q", "-O", "-", &url])
}

/// The server namespace's API (standalone, with `backend_env` for DHCP)
/// and the lab network; nodes n1 (iPXE), n2 (GRUB), n3 (no nic), n4 (IP
/// outside every network) imported.
fn lab(net: &NetnsPair, dir: &TempDir, backend_env: &[(&str, &str)]) -> Api {
    lab_logged(net, dir, backend_env, None)
}

/// [`lab`], with the API's log (at `info`) in `log` when given.
fn lab_logged(
    net: &NetnsPair,
    dir: &TempDir,
    backend_env: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> Api {
    let data = dir.path().join("data");
    let mut env = vec![
        ("XCAT3_CONDUCTOR_HOST", "local"),
        ("XCAT3_DHCP_MANAGE", "true"),
        ("XCAT3_DHCP_INTERFACE", net.server_if.as_str()),
        ("XCAT3_BOOT_SERVER_ADDRESS", "192.0.2.1"),
        ("XCAT3_BOOT_TFTP_LISTEN", "192.0.2.1:69"),
        ("XCAT3_BOOT_HTTP_LISTEN", "192.0.2.1:8080"),
    ];
    env.extend_from_slice(backend_env);
    let args = [
        "--standalone",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let api = match log {
        Some(log) => Api::start_logged(Some(&net.server), &args, &env, log),
        None => Api::start_in(Some(&net.server), &args, &env),
    };
    api.xcat3(&[
        "network-create",
        "lab",
        "subnet=192.0.2.0",
        "netmask=255.255.255.0",
        "gateway=192.0.2.254",
        "nameservers=192.0.2.53",
        "domain=lab.example",
    ])
    .ok();
    let nodes = json!({"nodes": [
        {"name": "n1", "netboot": "ipxe", "nics_info": {"nics": [{"mac": MAC1, "ip": "192.0.2.10", "primary": true}]}},
        {"name": "n2", "netboot": "grub2", "nics_info": {"nics": [{"mac": MAC2, "ip": "192.0.2.11", "primary": true}]}},
        {"name": "n3"},
        {"name": "n4", "nics_info": {"nics": [{"mac": "02:00:5e:00:02:14", "ip": "10.9.9.9", "primary": true}]}},
        {"name": "n5", "nics_info": {"nics": [{"mac": MAC5, "ip": "192.0.2.15", "primary": true}]}},
        {"name": "n6", "arch": "ppc64le", "netboot": "petitboot", "nics_info": {"nics": [{"mac": MAC6, "ip": "192.0.2.16", "primary": true}]}},
    ]});
    let f = dir.path().join("nodes.json");
    std::fs::write(&f, nodes.to_string()).unwrap();
    api.xcat3(&["import", f.to_str().unwrap()]).ok();
    api
}

/// `deploy n[1-4],n6 --state dhcp`: n1, n2, n6 reserved, n3 and n4
/// refused with an error naming the field.
fn reserve_first_four(api: &Api) {
    let run = api.xcat3(&["deploy", "n[1-4],n6", "--state", "dhcp"]);
    let r = node_results(&run.stdout());
    assert_eq!(run.summary(), (3, 5), "{}", run.stdout());
    assert_eq!(r["n1"], "ok");
    assert_eq!(r["n2"], "ok");
    assert_eq!(
        r["n3"],
        "nics_info: no nic (a DHCP reservation needs a MAC and an IP)"
    );
    assert_eq!(
        r["n4"],
        "nics_info.nics[0].ip: 10.9.9.9 is outside every network (see `xcat3 network-list`)"
    );
    let shown = api.xcat3(&["show", "n1", "-i", "state"]).ok();
    assert!(shown.contains("dhcp"), "{shown}");
}

/// What a reserved node's firmware gets: its address, our next-server, and
/// the boot file for its architecture; `ipxe_file` is what iPXE itself gets.
fn check_leases(net: &NetnsPair, dir: &TempDir, ipxe_file: &str) {
    let lease = dhcp(net, dir, MAC1, &[]).expect("n1 got no lease");
    assert_eq!(lease["ip"], "192.0.2.10");
    assert_eq!(lease["siaddr"], "192.0.2.1");
    assert_eq!(lease["boot_file"], "undionly.kpxe");
    assert_eq!(lease["router"], "192.0.2.254");
    assert_eq!(lease["dns"].trim(), "192.0.2.53");
    assert_eq!(lease["domain"], "lab.example");
    // UEFI x86-64 (option 93 = 7): ipxe.efi. iPXE itself (option 175).
    let uefi = dhcp(net, dir, MAC1, &["-x", "0x5d:0007"]).expect("UEFI lease");
    assert_eq!(uefi["boot_file"], "ipxe.efi");
    let ipxe = dhcp(net, dir, MAC1, &["-x", "0xaf:0101"]).expect("iPXE lease");
    assert_eq!(ipxe["boot_file"], ipxe_file);
    let grub = dhcp(net, dir, MAC2, &[]).expect("n2 got no lease");
    assert_eq!(grub["ip"], "192.0.2.11");
    assert_eq!(grub["siaddr"], "192.0.2.1");
    assert_eq!(grub["boot_file"], "grub/grubx64.efi");
    // Petitboot (ppc64le): option 209 names its pxelinux-format file.
    let petitboot = dhcp(net, dir, MAC6, &["-O", "209"]).expect("n6 got no lease");
    assert_eq!(petitboot["ip"], "192.0.2.16");
    // (busybox names option 209 `pxeconffile`.)
    assert_eq!(
        petitboot["pxeconffile"],
        format!("pxelinux.cfg/01-{}", MAC6.replace(':', "-"))
    );
}

#[test]
fn dnsmasq_reservations_tftp_and_http_boot_files() {
    let dir = TempDir::new("netboot-dnsmasq");
    let net = NetnsPair::new("dm");
    let api = lab(&net, &dir, &[("XCAT3_DHCP_BACKEND", "dnsmasq")]);

    // Nothing reserved yet: the static subnet answers nobody.
    assert!(
        dhcp(&net, &dir, MAC1, &[]).is_none(),
        "an unreserved MAC got a lease"
    );
    reserve_first_four(&api);
    check_leases(&net, &dir, "http://192.0.2.1:8080/boot.ipxe");

    // TFTP: iPXE as Debian ships it, and n2's GRUB files under both names
    // (from an address outside the reservations: dnsmasq pings an address
    // before it offers it).
    net.set_client_addr("192.0.2.50/24");
    let fetched = dir.path().join("fetched");
    std::fs::create_dir_all(&fetched).unwrap();
    // `tftp get REMOTE` from the client: its output and the local copy.
    let tftp_get = |remote: &str| {
        let local = fetched.join(remote.replace('/', "_"));
        let out = net.client_run(&[
            "tftp",
            "-m",
            "binary",
            "192.0.2.1",
            "-c",
            "get",
            remote,
            local.to_str().unwrap(),
        ]);
        (out, local)
    };
    let tftp = |remote: &str| -> Vec<u8> {
        let (out, local) = tftp_get(remote);
        assert!(
            out.status.success(),
            "tftp get {remote}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(&local).unwrap_or_else(|_| panic!("tftp fetched nothing for {remote}"))
    };
    assert_eq!(
        tftp("undionly.kpxe"),
        std::fs::read("/usr/lib/ipxe/undionly.kpxe").unwrap()
    );
    let m2 = MAC2.replace(':', "-");
    for name in [
        format!("grub/grub.cfg-01-{m2}"),
        format!("grub/grub.cfg-{m2}"),
    ] {
        let text = String::from_utf8(tftp(&name)).unwrap();
        assert!(
            text.contains("node n2") && text.contains("exit"),
            "{name}: {text}"
        );
    }
    // The conductor's boot state (install tokens, root hashes) is not in
    // the TFTP tree: the review fetched it with `tftp get`.
    let (out, state) = tftp_get("boot-entries.json");
    let got = std::fs::read(&state).unwrap_or_default();
    assert!(
        got.is_empty(),
        "boot-entries.json served over TFTP: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let petitboot =
        String::from_utf8(tftp(&format!("pxelinux.cfg/01-{}", MAC6.replace(':', "-")))).unwrap();
    assert!(
        petitboot.contains("node n6") && petitboot.contains("LOCALBOOT 0"),
        "{petitboot}"
    );
    // HTTP: the chain script and n1's own script.
    let wget = |path: &str| -> String {
        let out = http_get(&net, path);
        assert!(
            out.status.success(),
            "GET {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(wget("/boot.ipxe").contains("chain http://${next-server}:8080/ipxe/${mac:hexhyp}"));
    let script = wget(&format!("/ipxe/{}", MAC1.replace(':', "-")));
    assert!(
        script.starts_with("#!ipxe") && script.contains("node n1"),
        "{script}"
    );

    // Idempotent: again, same answers, nothing restarted.
    let again = api.xcat3(&["deploy", "n1,n2", "--state", "dhcp"]);
    assert_eq!(again.summary(), (2, 2));

    // deploy -d: n1 loses its reservation and files at once; n2 keeps its own.
    let undo = api.xcat3(&["deploy", "n1", "-d"]);
    assert_eq!(undo.summary(), (1, 1), "{}", undo.stdout());
    assert!(
        dhcp(&net, &dir, MAC1, &[]).is_none(),
        "n1 still gets a lease after deploy -d"
    );
    let out = http_get(&net, &format!("/ipxe/{}", MAC1.replace(':', "-")));
    assert!(!out.status.success(), "n1's script is still served");
    assert_eq!(
        dhcp(&net, &dir, MAC2, &[]).expect("n2 lost its lease")["ip"],
        "192.0.2.11"
    );
    let shown = api.xcat3(&["show", "n1", "-i", "state"]).ok();
    assert!(!shown.contains("dhcp"), "{shown}");
}

/// Kea with its MySQL hosts database (made by `kea-admin db-init`, on a
/// MariaDB in the server namespace): rows written in bulk, served at once.
#[test]
fn kea_reservations_from_its_mysql_hosts_table() {
    let dir = TempDir::new("netboot-kea");
    let net = NetnsPair::new("ka");
    let db = xcat3_tests::MariaDb::start_in(&net.server, dir.path());
    let made = db.sql(
        "CREATE DATABASE kea; CREATE USER 'kea'@'127.0.0.1' IDENTIFIED BY 'keapw'; \
         GRANT ALL ON kea.* TO 'kea'@'127.0.0.1'",
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let init = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.server,
            "kea-admin",
            "db-init",
            "mysql",
        ])
        .args([
            "-u",
            "kea",
            "-p",
            "keapw",
            "-n",
            "kea",
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
        ])
        .output()
        .expect("run kea-admin (package kea-admin)");
    assert!(
        init.status.success(),
        "kea-admin: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let api = lab(
        &net,
        &dir,
        &[
            ("XCAT3_DHCP_BACKEND", "kea"),
            (
                "XCAT3_DHCP_KEA_DATABASE_URL",
                "mysql://kea:keapw@127.0.0.1:3306/kea",
            ),
        ],
    );
    assert!(
        dhcp(&net, &dir, MAC1, &[]).is_none(),
        "an unreserved MAC got a lease"
    );
    reserve_first_four(&api);
    let rows = db.sql(
        "SELECT hostname, INET_NTOA(ipv4_address), INET_NTOA(dhcp4_next_server), \
         IFNULL(dhcp4_boot_file_name, '-') FROM kea.hosts ORDER BY hostname",
    );
    assert_eq!(
        String::from_utf8_lossy(&rows.stdout),
        "n1\t192.0.2.10\t192.0.2.1\t-\nn2\t192.0.2.11\t192.0.2.1\tgrub/grubx64.efi\nn6\t192.0.2.16\t192.0.2.1\tpxelinux.0\n"
    );
    check_leases(&net, &dir, "boot.ipxe");

    // A new reservation is served by the running Kea: no reload, no restart.
    let kea_pid = || {
        let out = std::process::Command::new("pgrep")
            .args([
                "-f",
                &format!("{}/data/dhcp/kea-dhcp4.conf", dir.path().display()),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = kea_pid();
    assert!(!before.is_empty(), "kea-dhcp4 is not running");
    assert!(dhcp(&net, &dir, MAC5, &[]).is_none());
    let run = api.xcat3(&["deploy", "n5", "--state", "dhcp"]);
    assert_eq!(run.summary(), (1, 1), "{}", run.stdout());
    assert_eq!(
        dhcp(&net, &dir, MAC5, &[]).expect("n5 got no lease")["ip"],
        "192.0.2.15"
    );
    assert_eq!(kea_pid(), before, "kea-dhcp4 was restarted");

    // deploy -d deletes the row; Kea stops answering that MAC at once.
    let undo = api.xcat3(&["deploy", "n1", "-d"]);
    assert_eq!(undo.summary(), (1, 1), "{}", undo.stdout());
    let left = db.sql("SELECT hostname FROM kea.hosts ORDER BY hostname");
    assert_eq!(String::from_utf8_lossy(&left.stdout), "n2\nn5\nn6\n");
    assert!(
        dhcp(&net, &dir, MAC1, &[]).is_none(),
        "n1 still gets a lease after deploy -d"
    );
    assert_eq!(
        dhcp(&net, &dir, MAC2, &[]).expect("n2 lost its lease")["ip"],
        "192.0.2.11"
    );
}

/// A kernel iPXE accepts as a bzImage (the boot protocol header and no
/// code: the guest crashes after iPXE hands over, which is past what this
/// test looks at).
fn fake_bzimage() -> Vec<u8> {
    let mut k = vec![0u8; 64 * 1024];
    k[0x1f1] = 4; // setup sectors
    k[0x1fe] = 0x55; // boot flag 0xaa55
    k[0x1ff] = 0xaa;
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x020cu16.to_le_bytes()); // protocol 2.12
    k[0x211] = 0x01; // loaded high
    k[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes()); // initrd_addr_max
    k
}

/// The real boot path: a qemu guest without a disk PXE-boots with its NIC's
/// own iPXE ROM (Debian's ipxe-qemu) on the lab network, gets its
/// reservation from the dnsmasq we run, `boot.ipxe` and its own script
/// over HTTP, and fetches the installer's kernel and initrd that the
/// conductor took from the API host. The servers' logs prove each step
/// came from the guest's reserved address.
#[test]
fn qemu_guest_pxe_boots_into_its_installer() {
    let dir = TempDir::new("netboot-qemu");
    let net = NetnsPair::new("qm");
    let log = dir.path().join("api.log");
    let api = lab_logged(&net, &dir, &[("XCAT3_DHCP_BACKEND", "dnsmasq")], Some(&log));
    let kernel = fake_bzimage();
    let initrd = vec![0x5au8; 32 * 1024];
    let iso = xcat3_tests::make_rocky_iso(dir.path(), &kernel, &initrd);
    api.xcat3(&["copycds", iso.to_str().unwrap()]).ok();
    api.xcat3(&["passwd-create", "system", "password=cluster"])
        .ok();
    let r = node_results(
        &api.xcat3(&["deploy", "n1", "--osimage", "rocky9.3-x86_64"])
            .ok(),
    );
    assert_eq!(r["n1"], "ok");

    // The guest's NIC: a tap on a bridge with the client end of the link.
    let ns = net.client.as_str();
    for args in [
        vec!["link", "add", "br0", "type", "bridge"],
        vec!["link", "set", &net.client_if, "master", "br0"],
        vec!["tuntap", "add", "dev", "tap0", "mode", "tap"],
        vec!["link", "set", "tap0", "master", "br0"],
        vec!["link", "set", "tap0", "up"],
        vec!["link", "set", "br0", "up"],
    ] {
        let mut full = vec!["-n", ns];
        full.extend(args);
        let out = std::process::Command::new("ip")
            .args(&full)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {full:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // TCG, not KVM: firmware runs the same everywhere (a paravirtualized
    // KVM such as this machine's kvm-pvm triple-faults in the option ROM).
    let accel = "tcg";
    let serial = dir.path().join("serial.log");
    let _guest = xcat3_tests::Daemon(
        std::process::Command::new("ip")
            .args(["netns", "exec", ns, "qemu-system-x86_64"])
            .args(["-machine", &format!("pc,accel={accel}"), "-m", "256"])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .args(["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no"])
            .args(["-device", &format!("virtio-net-pci,netdev=n0,mac={MAC1}")])
            .args(["-boot", "n"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("qemu-system-x86_64 (scripts/test installs qemu-system-x86 and ipxe-qemu)"),
    );

    let fetched = |path: &str| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().any(|l| {
            l.contains("boot file fetched over HTTP")
                && l.contains("peer=192.0.2.10:")
                && l.contains(&format!("path=\"{path}\""))
                && l.contains("status=200")
        })
    };
    let script = format!("/ipxe/{}", MAC1.replace(':', "-"));
    let kernel_path = "/images/rocky9.3-x86_64/kernel";
    let initrd_path = "/images/rocky9.3-x86_64/initrd";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !fetched(initrd_path) {
        if std::time::Instant::now() > deadline {
            panic!(
                "the guest did not fetch its initrd in 120 s\nAPI log:\n{}\ndnsmasq log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default(),
                std::fs::read_to_string(dir.path().join("data/dhcp/dnsmasq.log"))
                    .unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    for path in ["/boot.ipxe", script.as_str(), kernel_path, initrd_path] {
        assert!(
            fetched(path),
            "{path} not fetched by 192.0.2.10; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    // Its reservation: dnsmasq acknowledged the guest's MAC at n1's address.
    let dhcp_log = std::fs::read_to_string(dir.path().join("data/dhcp/dnsmasq.log")).unwrap();
    assert!(
        dhcp_log
            .lines()
            .any(|l| l.contains("DHCPACK") && l.contains("192.0.2.10") && l.contains(MAC1)),
        "{dhcp_log}"
    );
    let shown = api.xcat3(&["show", "n1", "-i", "state"]).ok();
    assert!(shown.contains("deploying"), "{shown}");
}

/// A fresh standalone with nothing set but a network without a
/// next-server: `deploy --state dhcp` and `deploy --osimage` work; the
/// next-server is the conductor's own address on that network, and boot
/// files are served over HTTP on the standalone default port (3080).
#[test]
fn a_fresh_standalone_deploys_with_nothing_set() {
    let net = NetnsPair::new("fresh");
    let dir = TempDir::new("fresh-standalone");
    let data = dir.path().join("data");
    let api = Api::start_in(
        Some(&net.server),
        &[
            "--standalone",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        // What a fresh machine has: no [boot] http_listen (the test
        // harness otherwise picks a free port for parallel tests).
        &[("XCAT3_BOOT_HTTP_LISTEN", "")],
    );
    let kernel = vec![7u8; 4096];
    let iso = xcat3_tests::make_rocky_iso(dir.path(), &kernel, &kernel);
    api.xcat3(&["copycds", iso.to_str().unwrap()]).ok();
    api.create_lab(None, &["subnet=192.0.2.0", "netmask=255.255.255.0"]);
    let nodes = json!({"nodes": [
        {"name": "n1", "mgt": "fake", "nics_info": {"nics": [{"mac": MAC1, "ip": "192.0.2.10", "primary": true}]}},
        {"name": "n2", "mgt": "fake", "nics_info": {"nics": [{"mac": MAC2, "ip": "192.0.2.11", "primary": true}]}},
    ]});
    let f = dir.path().join("nodes.json");
    std::fs::write(&f, nodes.to_string()).unwrap();
    api.xcat3(&["import", f.to_str().unwrap()]).ok();

    let run = api.xcat3(&["deploy", "n1", "--state", "dhcp"]);
    assert_eq!(run.summary(), (1, 1), "{}", run.stdout());
    let run = api.xcat3(&["deploy", "n2", "--osimage", "rocky9.3-x86_64"]);
    assert_eq!(run.summary(), (1, 1), "{}", run.stdout());

    // The node fetches its iPXE script from the default port, and the
    // script names the conductor's own address as the server.
    net.set_client_addr("192.0.2.11/24");
    let url = format!("http://192.0.2.1:3080/ipxe/{}", MAC2.replace(':', "-"));
    let out = net.client_run(&["busybox", "wget", "-q", "-O", "-", &url]);
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(script.contains("http://192.0.2.1:3080/"), "{script}");
}
