//! OS deployment end to end on loopback: ISOs built in the test imported
//! with copycds, `deploy --osimage` through the real CLI, the conductor's
//! HTTP server handing out iPXE scripts, kernels and rendered answer
//! files, the one-time boot device set on a simulated BMC, the install
//! callback run exactly as the answer file spells it (with `sh` and
//! `curl`), tokens refused when wrong, missing or reused, the state
//! machine, and the deploy timeout.

use std::process::Command;

use serde_json::{Value, json};
use xcat3_tests::{Api, Sim, TempDir, free_tcp_port, make_iso, node_results, wait_until};

const MAC1: &str = "02:00:5e:00:07:01";
const MAC2: &str = "02:00:5e:00:07:02";
const MAC3: &str = "02:00:5e:00:07:03";

/// Node addresses: on loopback, so curl can call from a node's own
/// address (answer files and the callback are served to it alone).
const IP1: &str = "127.0.2.21";
const IP2: &str = "127.0.2.22";
const IP3: &str = "127.0.2.23";

/// `curl` with `args`: (HTTP status, body).
fn curl(args: &[&str]) -> (u16, String) {
    curl_from("127.0.0.1", args)
}

/// `curl` from source address `from`: (HTTP status, body).
pub(crate) fn curl_from(from: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "--interface",
            from,
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl (Debian package curl) is required; scripts/test installs it");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn get(url: &str) -> String {
    get_from("127.0.0.1", url)
}

fn get_from(from: &str, url: &str) -> String {
    let (code, body) = curl_from(from, &[url]);
    assert_eq!(code, 200, "GET {url} from {from}: {body}");
    body
}

/// PUT the callback for `node` with `body` from address `from`: (status,
/// reply).
pub(crate) fn callback(api: &Api, from: &str, node: &str, body: &str) -> (u16, String) {
    let url = format!("{}/v1/nodes/provision/callback?name={node}", api.url);
    curl_from(
        from,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            &url,
        ],
    )
}

/// The value of `key=` in a kernel command line.
pub(crate) fn arg<'a>(script: &'a str, key: &str) -> &'a str {
    script
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {script}"))
}

/// A standalone API whose conductor serves boot files on `http_port`.
fn api(dir: &TempDir, http_port: u16, deploy_timeout: &str) -> Api {
    let http = format!("127.0.0.1:{http_port}");
    Api::standalone_boot(
        &dir.path().join("data"),
        &http,
        &[
            ("XCAT3_BOOT_DEPLOY_TIMEOUT", deploy_timeout),
            ("XCAT3_CONDUCTOR_HEARTBEAT_INTERVAL", "1"),
        ],
    )
}

/// The lab network and the root password every deploy needs.
fn lab(api: &Api) {
    api.create_lab(
        None,
        &[
            "subnet=127.0.2.0",
            "netmask=255.255.255.0",
            "domain=lab.example",
        ],
    );
}

fn import(api: &Api, dir: &TempDir, nodes: Value) {
    let f = dir.path().join("nodes.json");
    std::fs::write(&f, json!({ "nodes": nodes }).to_string()).unwrap();
    api.xcat3(&["import", f.to_str().unwrap()]).ok();
}

/// `deploy NODE --osimage IMAGE`, which must succeed.
fn deploy_ok(api: &Api, node: &str, osimage: &str) {
    let out = api.xcat3(&["deploy", node, "--osimage", osimage]).ok();
    assert_eq!(node_results(&out)[node], "ok", "{out}");
}

pub(crate) fn state(api: &Api, node: &str) -> Value {
    let out = api.xcat3(&["show", node]).ok();
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"));
    v[0]["attr"].clone()
}

fn listed(api: &Api, state: &str) -> Vec<String> {
    api.xcat3(&["list", "--state", state])
        .ok()
        .lines()
        .filter_map(|l| l.strip_suffix(" (node)").map(str::to_string))
        .collect()
}

#[test]
fn deploy_serves_installers_and_takes_each_callback_once() {
    let dir = TempDir::new("deploy");
    let kernel: Vec<u8> = (0..150_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let initrd: Vec<u8> = (0..250_000u32).map(|i| (i * 13 % 241) as u8).collect();
    let ubuntu = make_iso(
        dir.path(),
        "ubuntu-24.04-live-server-amd64",
        &[
            (
                ".disk/info",
                b"Ubuntu-Server 24.04 LTS \"Noble Numbat\" - Release amd64 (20240423)",
            ),
            ("casper/vmlinuz", &kernel),
            ("casper/initrd", &initrd),
        ],
    );
    let rocky = xcat3_tests::make_rocky_iso(dir.path(), &kernel, &initrd);
    let debian = make_iso(
        dir.path(),
        "debian-12.5.0-amd64-netinst",
        &[
            (
                ".disk/info",
                b"Debian GNU/Linux 12.5.0 \"Bookworm\" - Official amd64 NETINST 20240210-11:27",
            ),
            ("install.amd/vmlinuz", &kernel),
            ("install.amd/initrd.gz", &initrd),
        ],
    );
    let port = free_tcp_port();
    let boot = format!("http://127.0.0.1:{port}");
    let api = api(&dir, port, "3600");
    for iso in [&ubuntu, &rocky, &debian] {
        api.xcat3(&["copycds", iso.to_str().unwrap()]).ok();
    }
    lab(&api);
    // n1's BMC is simulated: the deploy must set its next boot to the
    // network, once.
    let sim = Sim::start(dir.path(), "127.21.0.1", 1, &[]);
    let nic = |mac: &str, ip: &str| json!({"nics": [{"mac": mac, "ip": ip, "primary": true}]});
    let (ip1, ip2, ip3) = (IP1, IP2, IP3);
    import(
        &api,
        &dir,
        json!([
            {"name": "n1", "mgt": "ipmi", "arch": "x86_64", "netboot": "ipxe", "nics_info": nic(MAC1, ip1),
             "control_info": {"bmc_address": "127.21.0.1", "bmc_port": sim.port, "bmc_username": "admin", "bmc_password": "secret",
                              "install_args": "console=ttyS0,115200"}},
            {"name": "n2", "mgt": "fake", "netboot": "grub2", "nics_info": nic(MAC2, ip2),
             "control_info": {"install_disk": "/dev/vda", "install_packages": "vim tmux"}},
            {"name": "n3", "netboot": "pxe", "nics_info": nic(MAC3, ip3)},
            {"name": "p1", "mgt": "fake", "arch": "ppc64le", "nics_info": nic("02:00:5e:00:07:04", "127.0.2.24")},
            {"name": "bare", "mgt": "fake"},
        ]),
    );

    // Refusals name the node's field; the others deploy.
    let r = node_results(
        &api.xcat3(&["deploy", "n1,p1,bare", "--osimage", "ubuntu24.04-x86_64"])
            .stdout(),
    );
    assert_eq!(r["n1"], "ok", "{r:?}");
    assert!(r["p1"].contains("arch: the node is ppc64le"), "{r:?}");
    assert!(r["bare"].contains("nics_info"), "{r:?}");
    let bad = api.xcat3(&["deploy", "n2", "--osimage", "nope"]);
    assert!(
        bad.stderr().contains("osimage: `nope` does not exist"),
        "{}",
        bad.stderr()
    );
    deploy_ok(&api, "n2", "rocky9.3-x86_64");
    deploy_ok(&api, "n3", "debian12.5.0-x86_64");
    let mut deploying = listed(&api, "deploying");
    deploying.sort();
    assert_eq!(deploying, ["n1", "n2", "n3"]);
    assert_eq!(state(&api, "n1")["osimage"], "ubuntu24.04-x86_64");
    // Twice is refused while deploying.
    let again = node_results(
        &api.xcat3(&["deploy", "n1", "--osimage", "rocky9.3-x86_64"])
            .stdout(),
    );
    assert!(again["n1"].contains("state: deploying"), "{again:?}");

    // The BMC was told: network, next boot only.
    let b = sim.wait_bmc("127.21.0.1", "boot device net", |b| {
        b["chassis"]["boot_device"] == "net"
    });
    assert_eq!(b["chassis"]["boot_persistent"], false, "{b}");

    // n1: the iPXE script boots subiquity with nocloud over HTTP.
    let script = get(&format!("{boot}/ipxe/{}", MAC1.replace(':', "-")));
    assert!(script.starts_with("#!ipxe\n"), "{script}");
    assert!(
        script.contains(&format!(
            "kernel {boot}/images/ubuntu24.04-x86_64/kernel initrd=initrd "
        )),
        "{script}"
    );
    assert!(script.contains(&format!(
        "initrd --name initrd {boot}/images/ubuntu24.04-x86_64/initrd"
    )));
    assert!(script.contains(" console=ttyS0,115200"), "{script}");
    let token1 = arg(&script, "xcat3.token").to_string();
    assert_eq!(token1.len(), 32);
    // The conductor fetched kernel and initrd from the API host over HTTP.
    let fetched = Command::new("curl")
        .args(["-sSf", &format!("{boot}/images/ubuntu24.04-x86_64/kernel")])
        .output()
        .unwrap();
    assert!(fetched.stdout == kernel, "the kernel served is the ISO's");
    let iso_url = arg(&script, "url");
    assert_eq!(
        iso_url,
        format!(
            "{}/install/ubuntu24.04-x86_64/ubuntu24.04-x86_64.iso",
            api.url
        )
    );
    let (code, _) = curl(&["-I", iso_url]);
    assert_eq!(code, 200, "the ISO subiquity fetches is served");
    let seed = arg(&script, "ds")
        .strip_prefix("nocloud-net;s=")
        .unwrap()
        .to_string();
    assert_eq!(seed, format!("{boot}/autoinst/n1/"));
    // Answer files (root hash, token) go to the node's address alone.
    for other in ["127.0.0.1", IP2] {
        let (code, body) = curl_from(other, &[&format!("{seed}user-data")]);
        assert_eq!(code, 403, "n1's answers from {other}: {body}");
        assert!(!body.contains("#cloud-config"), "{body}");
    }
    let user_data = get_from(IP1, &format!("{seed}user-data"));
    assert!(user_data.starts_with("#cloud-config\n"), "{user_data}");
    assert!(user_data.contains(&format!("macaddress: \"{MAC1}\"")));
    assert!(get_from(IP1, &format!("{seed}meta-data")).contains("local-hostname: n1"));
    let (code, _) = curl_from(IP1, &[&format!("{seed}vendor-data")]);
    assert_eq!(code, 200);
    // The root password is SHA-512 crypt of `cluster` (checked by openssl).
    let crypted = user_data
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("root password in user-data");
    let salt = crypted.split('$').nth(2).unwrap();
    let openssl = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, "cluster"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&openssl.stdout).trim(), crypted);

    // n2: GRUB firmware still gets an iPXE script; kickstart with its disk
    // and packages.
    let script2 = get(&format!("{boot}/ipxe/{}", MAC2.replace(':', "-")));
    let ks_url = arg(&script2, "inst.ks");
    assert_eq!(
        arg(&script2, "inst.repo"),
        format!("{}/install/rocky9.3-x86_64/", api.url)
    );
    let ks = get_from(IP2, ks_url);
    assert!(ks.contains("ignoredisk --only-use=vda"), "{ks}");
    assert!(ks.contains("\nvim\ntmux\n"), "{ks}");
    assert!(ks.contains(&format!("network --bootproto=dhcp --device={MAC2}")));
    // n3: preseed pointing at the tree on the API host.
    let script3 = get(&format!("{boot}/ipxe/{}", MAC3.replace(':', "-")));
    let preseed = get_from(IP3, arg(&script3, "url"));
    let api_host = api.url.trim_start_matches("http://");
    assert!(
        preseed.contains(&format!("d-i mirror/http/hostname string {api_host}\n")),
        "{preseed}"
    );
    assert!(preseed.contains("d-i mirror/http/directory string /install/debian12.5.0-x86_64\n"));
    let token3 = arg(&script3, "xcat3.token").to_string();

    // Callbacks: missing, wrong, and another node's token are refused,
    // and so is n1's own token from anywhere but n1's address; every
    // refusal reads the same (nothing to learn about nodes or states).
    let (code, body) = callback(&api, IP1, "n1", "{}");
    assert_eq!(code, 401, "{body}");
    let (code, refused) = callback(&api, IP1, "n1", r#"{"token":"0000"}"#);
    assert_eq!(code, 403, "{refused}");
    assert!(refused.contains("install callback refused"), "{refused}");
    let (code, _) = callback(&api, IP1, "n1", &json!({ "token": token3 }).to_string());
    assert_eq!(code, 403, "n3's token does not deploy n1");
    for other in ["127.0.0.1", IP3] {
        let (code, body) = callback(&api, other, "n1", &json!({ "token": token1 }).to_string());
        assert_eq!((code, &body), (403, &refused), "n1's token from {other}");
    }
    let (code, body) = callback(
        &api,
        IP1,
        "nosuchnode",
        &json!({ "token": token1 }).to_string(),
    );
    assert_eq!(
        (code, &body),
        (403, &refused),
        "an unknown node reads the same"
    );
    assert_eq!(state(&api, "n1")["state"], "deploying");

    // n2's installer runs its %post line as rendered: the node is deployed.
    let section = ks.split("%post").nth(1).expect("a %post section");
    // Root's authorized_keys gets the cluster's key (exec, copy), then
    // the callback.
    let key = api.xcat3(&["ssh-key"]).ok();
    assert!(
        section.contains(&format!(
            "echo \"{}\" >> /root/.ssh/authorized_keys",
            key.trim()
        )),
        "{section}"
    );
    let post = section
        .lines()
        .find(|l| l.starts_with("curl "))
        .expect("a %post callback");
    // From n2's address, as the installer would run it.
    let post = post.replacen("curl ", &format!("curl --interface {IP2} "), 1);
    let run = Command::new("sh").arg("-c").arg(&post).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(state(&api, "n2")["state"], "deployed");
    // ... and boots from its disk from now on; its token is used up.
    let local = get(&format!("{boot}/ipxe/{}", MAC2.replace(':', "-")));
    assert!(local.contains("boots from its disk"), "{local}");
    let (code, _) = curl_from(IP2, &[ks_url]);
    assert_eq!(code, 404, "answer files go with the install entry");
    let run = Command::new("sh").arg("-c").arg(&post).output().unwrap();
    assert!(!run.status.success(), "a reused token is refused");
    let token2 = arg(&script2, "xcat3.token");
    let (code, body) = callback(&api, IP2, "n2", &json!({ "token": token2 }).to_string());
    assert_eq!(
        (code, &body),
        (403, &refused),
        "n2 is deployed: the same refusal"
    );

    // n1's own token, from n1, works once.
    let (code, body) = callback(&api, IP1, "n1", &json!({ "token": token1 }).to_string());
    assert_eq!((code, body.contains("deployed")), (200, true), "{body}");
    let (code, _) = callback(&api, IP1, "n1", &json!({ "token": token1 }).to_string());
    assert_eq!(code, 403);

    // deployed → deploying is refused; -d releases; then it may deploy.
    let again = node_results(
        &api.xcat3(&["deploy", "n1", "--osimage", "rocky9.3-x86_64"])
            .stdout(),
    );
    assert!(again["n1"].contains("release the node first"), "{again:?}");
    assert_eq!(
        node_results(&api.xcat3(&["deploy", "n1,n2", "-d"]).ok())["n1"],
        "ok"
    );
    let available = listed(&api, "available");
    assert!(
        available.contains(&"n1".to_string()) && available.contains(&"n2".to_string()),
        "{available:?}"
    );
    assert_eq!(state(&api, "n1")["state"], Value::Null);
    let (code, _) = curl(&[&format!("{boot}/ipxe/{}", MAC1.replace(':', "-"))]);
    assert_eq!(code, 404, "released: no boot files");
    assert_eq!(listed(&api, "deploying"), ["n3"]);
}

#[test]
fn a_deploy_without_callback_times_out_and_boots_the_disk() {
    let dir = TempDir::new("deploy-timeout");
    let kernel = vec![7u8; 4096];
    let iso = xcat3_tests::make_rocky_iso(dir.path(), &kernel, &kernel);
    let port = free_tcp_port();
    let api = api(&dir, port, "2");
    api.xcat3(&["copycds", iso.to_str().unwrap()]).ok();
    lab(&api);
    import(
        &api,
        &dir,
        json!([{"name": "t1", "mgt": "fake", "nics_info": {"nics": [{"mac": MAC1, "ip": "127.0.2.31", "primary": true}]}}]),
    );
    deploy_ok(&api, "t1", "rocky9.3-x86_64");
    let script_url = format!("http://127.0.0.1:{port}/ipxe/{}", MAC1.replace(':', "-"));
    assert!(get(&script_url).contains("inst.ks="));
    let failed = wait_until(20, "deploy failed", || {
        let s = state(&api, "t1");
        (s["state"] == "deploy failed").then_some(s)
    });
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("deploy timed out"),
        "{failed}"
    );
    assert_eq!(listed(&api, "deploy failed"), ["t1"]);
    wait_until(10, "local boot after the timeout", || {
        get(&script_url)
            .contains("boots from its disk")
            .then_some(())
    });
    // A late callback is refused; a failed deploy may be retried.
    let token = "whatever";
    let (code, _) = callback(
        &api,
        "127.0.2.31",
        "t1",
        &json!({ "token": token }).to_string(),
    );
    assert_eq!(code, 403);
    deploy_ok(&api, "t1", "rocky9.3-x86_64");
    assert_eq!(state(&api, "t1")["state"], "deploying");
}
