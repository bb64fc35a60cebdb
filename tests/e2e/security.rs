//! The security review's findings that need a real socket or a real
//! medium, against the release-shaped binary: slow and many clients, a
//! hostile ISO, an upload cut off mid-way. (Router-level findings are in
//! api/tests/api.rs and api/tests/bounds.rs; libvirt URIs, Redfish paths,
//! answer-file values and the boot state have unit tests beside the code;
//! the callback and answer files from the node's address are in deploy.rs.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use xcat3_tests::{Api, TempDir, make_iso_of, wait_until};

fn api_addr(api: &Api) -> SocketAddr {
    api.url.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::new(from.parse().unwrap(), 0).into())?;
    s.connect(&to.into())?;
    Ok(s.into())
}

/// `GET /healthz` with curl, giving up after `secs`: the status.
fn healthz(api: &Api, secs: u64) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time"])
        .arg(secs.to_string())
        .arg(format!("{}/healthz", api.url))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lets this test process hold a few thousand sockets.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

/// True once the server closed `s` (EOF or reset), waiting up to `secs`.
fn closed_by_server(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or similar before the close is fine; keep reading.
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Finding 6: 1,100 half-sent requests made `/healthz` time out for as
/// long as they stayed open. Now: they are cut at the header timeout, one
/// address cannot take more than its share, and `/healthz` answers
/// throughout.
#[test]
fn slow_and_many_clients_cannot_hold_the_api() {
    let dir = TempDir::new("slowloris");
    let boot_port = xcat3_tests::free_tcp_port();
    let boot_listen = format!("127.0.0.1:{boot_port}");
    let api = Api::standalone_with(
        &dir.path().join("data"),
        &[
            ("XCAT3_API_HEADER_TIMEOUT", "3"),
            ("XCAT3_API_MAX_CONNECTIONS_PER_IP", "150"),
            ("XCAT3_BOOT_HTTP_LISTEN", &boot_listen),
        ],
    );
    // Raised for this process only after the API started: the API gets
    // the usual soft limit (1,024) and must cope with it itself.
    raise_fd_limit();
    let to = api_addr(&api);
    // 1,100 half-sent requests from ten addresses (110 each).
    let mut slow = Vec::new();
    for i in 0..1100 {
        let mut s = connect_from(&format!("127.0.5.{}", i % 10 + 1), to).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .unwrap();
        slow.push(s);
    }
    assert_eq!(
        healthz(&api, 10),
        "200",
        "/healthz with 1,100 half-sent requests open"
    );
    // One address past its share: the extra connections are closed at once.
    let mut greedy = Vec::new();
    for _ in 0..200 {
        greedy.push(connect_from("127.0.6.1", to).expect("connect"));
    }
    std::thread::sleep(Duration::from_millis(500));
    let refused = greedy
        .iter_mut()
        .map(|s| {
            s.set_nonblocking(true).unwrap();
            !matches!(s.read(&mut [0u8; 64]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .filter(|closed| *closed)
        .count();
    assert_eq!(
        refused, 50,
        "connections from one address closed at accept (cap 150 of 200)"
    );
    assert_eq!(healthz(&api, 10), "200");
    // The half-sent requests are cut once the header timeout passes.
    let cut = slow
        .iter_mut()
        .take(20)
        .map(|s| closed_by_server(s, 15))
        .filter(|closed| *closed)
        .count();
    assert_eq!(
        cut, 20,
        "half-sent requests are disconnected after the header timeout"
    );
    assert_eq!(healthz(&api, 10), "200");
    // The conductor's boot HTTP server faces the provisioning network:
    // the same treatment (its header timeout is 10 s).
    let mut boot = connect_from("127.0.5.1", boot_listen.parse().unwrap()).unwrap();
    boot.write_all(b"GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(
        closed_by_server(&mut boot, 30),
        "boot HTTP keeps half-sent requests"
    );
}

/// A minimal Rocky 9.3 install tree at `root` (copycds names it
/// `rocky9.3-x86_64`), to which a test adds what it needs before making
/// the ISO.
fn rocky_tree(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("images/pxeboot")).unwrap();
    std::fs::write(
        root.join(".treeinfo"),
        "[release]\nname = Rocky Linux\nshort = Rocky\nversion = 9.3\n[tree]\narch = x86_64\n",
    )
    .unwrap();
    std::fs::write(root.join("images/pxeboot/vmlinuz"), vec![1u8; 4096]).unwrap();
    std::fs::write(root.join("images/pxeboot/initrd.img"), vec![2u8; 4096]).unwrap();
}

/// Finding 5: an ISO carrying FIFOs (one named like the manifest) and a
/// link out of the tree. copycds imports it without hanging, keeps none of
/// them, and `/install/` serves only regular files.
#[test]
fn a_hostile_iso_publishes_no_special_files() {
    let dir = TempDir::new("hostile-iso");
    let root = dir.path().join("tree");
    rocky_tree(&root);
    for fifo in [".xcat3-image.json", "images/pipe"] {
        let p = root.join(fifo);
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }
    std::os::unix::fs::symlink("/etc/shadow", root.join("shadow")).unwrap();
    let iso = make_iso_of(dir.path(), "hostile", &root);
    let api = Api::standalone(&dir.path().join("data"));
    let out = api.xcat3(&["copycds", iso.to_str().unwrap()]).ok();
    assert!(out.contains("rocky9.3-x86_64"), "{out}");
    let tree = dir.path().join("data/install/rocky9.3-x86_64");
    let manifest = std::fs::symlink_metadata(tree.join(".xcat3-image.json")).unwrap();
    assert!(manifest.is_file(), "the manifest is a regular file");
    assert!(
        !tree.join("images/pipe").exists()
            && std::fs::symlink_metadata(tree.join("images/pipe")).is_err()
    );
    assert!(std::fs::symlink_metadata(tree.join("shadow")).is_err());
    for path in ["images/pipe", "shadow"] {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .arg(format!("{}/install/rocky9.3-x86_64/{path}", api.url))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "404", "{path}");
    }
    assert_eq!(healthz(&api, 10), "200");
}

/// Finding 13: a client that goes away in the middle of an upload, or
/// while its ISO is being unpacked, leaves no file, directory or `bsdtar`
/// behind.
#[test]
fn an_interrupted_import_leaves_nothing() {
    let dir = TempDir::new("cut-upload");
    let api = Api::standalone(&dir.path().join("data"));
    let install = dir.path().join("data/install");
    let incoming = install.join(".incoming");
    let leftovers = || -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(&incoming)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().display().to_string())
            .collect();
        found.extend(
            std::fs::read_dir(&install)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                .map(|e| e.path().display().to_string()),
        );
        found
    };
    let bsdtar_running = || {
        Command::new("pgrep")
            .args(["-f", &format!("bsdtar -xf {}", incoming.display())])
            .output()
            .is_ok_and(|o| o.status.success())
    };

    // Cut mid-upload.
    let mut s = TcpStream::connect(api_addr(&api)).unwrap();
    s.write_all(
        b"POST /v1/osimages?filename=big.iso HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 104857600\r\n\r\n",
    )
    .unwrap();
    s.write_all(&vec![0u8; 4 * 1024 * 1024]).unwrap();
    wait_until(20, "the upload to start", || {
        (!leftovers().is_empty()).then_some(())
    });
    drop(s);
    wait_until(20, "the partial upload to be removed", || {
        leftovers().is_empty().then_some(())
    });

    // Cut while the ISO is being unpacked: a medium big enough that
    // bsdtar runs for a while.
    let root = dir.path().join("tree");
    rocky_tree(&root);
    for i in 0..6 {
        let bulk: Vec<u8> = (0..64 * 1024 * 1024u32)
            .map(|b| (b * 7 + i) as u8)
            .collect();
        std::fs::write(root.join(format!("Packages-{i}.bin")), bulk).unwrap();
    }
    let iso = make_iso_of(dir.path(), "big", &root);
    let bytes = std::fs::read(&iso).unwrap();
    let mut s = TcpStream::connect(api_addr(&api)).unwrap();
    write!(
        s,
        "POST /v1/osimages?filename=big.iso HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    s.write_all(&bytes).unwrap();
    let unpacking = || {
        std::fs::read_dir(&install)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
    };
    let t0 = std::time::Instant::now();
    while !unpacking() {
        if t0.elapsed() > Duration::from_secs(60) {
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut reply = vec![0u8; 4096];
            let n = s.read(&mut reply).unwrap_or(0);
            panic!(
                "bsdtar did not start unpacking in 60 s; the API answered: {}; install dir: {:?}",
                String::from_utf8_lossy(&reply[..n]),
                std::fs::read_dir(&install)
                    .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            );
        }
        // The unpack of this medium can take well under a second when
        // the page cache is warm: look often, or it is missed.
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(s);
    wait_until(
        30,
        "the upload, the half-unpacked tree and bsdtar to go",
        || (leftovers().is_empty() && !bsdtar_running()).then_some(()),
    );
    assert!(
        !install.join("rocky9.3-x86_64").exists(),
        "no osimage from a cut request"
    );
}

/// Finding 1 against the real libvirt client library: node records that
/// predate the write-time check (put straight into the database) naming
/// `qemu+ext:///system?command=PROG`, or smuggling `command=` through
/// `ssh_username`. A reader's `power status` must not run PROG: the
/// conductor connects only with the URI it rebuilt from checked parts.
#[test]
fn a_node_record_cannot_make_the_conductor_run_a_program() {
    let dir = TempDir::new("libvirt-ext");
    let api = Api::standalone(&dir.path().join("data"));
    let marker = dir.path().join("ran");
    let prog = dir.path().join("prog");
    std::fs::write(&prog, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let nodes = dir.path().join("nodes.json");
    std::fs::write(
        &nodes,
        serde_json::json!({"nodes": [
            {"name": "ext1", "mgt": "kvm", "control_info": {"libvirt_uri": "qemu:///system"}},
            {"name": "smuggle1", "mgt": "kvm", "control_info": {"ssh_address": "localhost"}},
        ]})
        .to_string(),
    )
    .unwrap();
    api.xcat3(&["import", nodes.to_str().unwrap()]).ok();
    let evil = [
        (
            "ext1",
            serde_json::json!({"libvirt_uri": format!("qemu+ext:///system?command={}", prog.display())}),
        ),
        (
            "smuggle1",
            serde_json::json!({"ssh_address": "localhost",
                               "ssh_username": format!("root@x/system?command={}&x=", prog.display())}),
        ),
    ];
    let db = dir.path().join("data/xcat3.db");
    for (name, info) in evil {
        let out = Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
                 c.execute('UPDATE nodes SET control_info = ? WHERE name = ?', (sys.argv[2], sys.argv[3])); c.commit()",
            ])
            .arg(&db)
            .arg(info.to_string())
            .arg(name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r = xcat3_tests::node_results(&api.xcat3(&["power", "ext1,smuggle1", "status"]).stdout());
    assert!(
        !marker.exists(),
        "a node record ran a program on the conductor: {r:?}"
    );
    assert!(
        r["ext1"].starts_with("control_info.libvirt_uri: transport `ext`"),
        "{r:?}"
    );
    assert!(
        r["smuggle1"].starts_with("control_info.ssh_username:"),
        "{r:?}"
    );
}
