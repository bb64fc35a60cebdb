//! `exec` and `copy` over SSH: against a real OpenSSH server (output and
//! exit status, a failing command, a hang, a refused user, unknown and
//! wrong host keys, files written and read back on disk, the history's
//! first KiB), and against `xcat3-sim ssh` nodes split over two real
//! conductors (every node answered by its ring owner, hangs time out
//! without holding the others).

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};
use xcat3_tests::{Api, Run, SshSim, Sshd, TempDir};

/// `xcat3 --json ARGS` as its reply document.
fn reply(run: &Run) -> Value {
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("{e}: {} / {}", run.stdout(), run.stderr()))
}

fn outcome(v: &Value, node: &str) -> Value {
    v["nodes"][node].clone()
}

fn kind<'a>(v: &'a Value, node: &str) -> Option<&'a str> {
    v["error_kinds"][node].as_str()
}

/// The history's record of the newest request whose action starts so.
fn history_of(api: &Api, action: &str) -> Value {
    let list = reply(&api.xcat3(&["--json", "history"]));
    let id = list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"].as_str().unwrap_or("").starts_with(action))
        .unwrap_or_else(|| panic!("no `{action}` in the history: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    reply(&api.xcat3(&["--json", "history", &id]))
}

fn import(api: &Api, dir: &std::path::Path, nodes: Value) {
    let file = dir.join(format!("import-{}.json", xcat3_tests::unique("n")));
    std::fs::write(&file, json!({ "nodes": nodes }).to_string()).unwrap();
    let run = api.xcat3(&["import", file.to_str().unwrap()]);
    let (ok, total) = run.summary();
    assert_eq!(ok, total, "{}", run.stdout());
}

/// A real sshd on loopback: the cluster's key (from `xcat3 ssh-key`) is
/// put into its authorized_keys by hand, as an admin does for a node
/// xcat3 did not install; its host key is declared in `os_ssh_host_keys`.
#[cfg(feature = "servers")]
#[test]
fn exec_and_copy_against_a_real_sshd() {
    let dir = TempDir::new("exec-sshd");
    let sshd = Sshd::start(dir.path());
    let api = Api::standalone(&dir.path().join("data"));
    let key = api.xcat3(&["ssh-key"]).ok();
    assert!(
        key.starts_with("ssh-ed25519 ") && key.trim_end().ends_with(" xcat3"),
        "{key}"
    );
    // The same key every time: it is the cluster's, made once.
    assert_eq!(api.xcat3(&["ssh-key"]).ok(), key);
    let authorized = dir.path().join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&key);
    std::fs::write(&authorized, keys).unwrap();
    let host_key = std::fs::read_to_string(dir.path().join("ssh_host.pub")).unwrap();
    let other_key = std::fs::read_to_string(dir.path().join("wrong.pub")).unwrap();
    let node = |name: &str, extra: Value| {
        let mut control = json!({"os_address": "127.0.0.1", "os_ssh_port": sshd.port});
        control
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"name": name, "mgt": "fake", "control_info": control})
    };
    let closed = xcat3_tests::free_tcp_port();
    import(
        &api,
        dir.path(),
        json!([
            node("n1", json!({"os_ssh_host_keys": host_key.trim()})),
            node("n2", json!({})),
            node("n3", json!({"os_ssh_host_keys": other_key.trim()})),
            node(
                "n4",
                json!({"os_ssh_host_keys": host_key.trim(), "os_ssh_port": closed})
            ),
            // No address at all: no nic, no os_address.
            json!({"name": "n5", "mgt": "fake"}),
        ]),
    );

    // Output (stdout and stderr) and the exit status, per node; the
    // others fail each with their own reason, before any credential.
    let run = api.xcat3(&[
        "--json",
        "exec",
        "n[1-5]",
        "--",
        "echo out-$((6*7)); echo err >&2; hostname",
    ]);
    assert_ne!(run.code(), 0, "some nodes failed");
    let v = reply(&run);
    let n1 = outcome(&v, "n1");
    assert_eq!(n1["exit_status"], 0, "{v}");
    let out = n1["output"].as_str().unwrap();
    assert!(out.contains("out-42\n") && out.contains("err\n"), "{out}");
    assert!(kind(&v, "n1").is_none(), "{v}");
    assert_eq!(kind(&v, "n2"), Some("invalid"), "{v}");
    assert!(
        v["nodes"]["n2"]
            .as_str()
            .unwrap()
            .contains("no SSH host key is known"),
        "{v}"
    );
    assert_eq!(kind(&v, "n3"), Some("authentication"), "{v}");
    assert!(
        v["nodes"]["n3"]
            .as_str()
            .unwrap()
            .contains("is not one the node reported"),
        "{v}"
    );
    assert_eq!(kind(&v, "n4"), Some("unreachable"), "{v}");
    assert_eq!(kind(&v, "n5"), Some("invalid"), "{v}");
    // Only n1 logged in (the wrong host key was refused before login).
    assert_eq!(sshd.accepted("publickey"), 1);

    // A failing command is the node's failure, with its output.
    let v = reply(&api.xcat3(&["--json", "exec", "n1", "--", "echo bad; exit 3"]));
    assert_eq!(kind(&v, "n1"), Some("command_failed"), "{v}");
    assert_eq!(outcome(&v, "n1")["exit_status"], 3);
    assert_eq!(outcome(&v, "n1")["output"], "bad\n");
    // The plain output: lines prefixed by the node, how it ended, and a
    // non-zero exit.
    let run = api.xcat3(&["exec", "n1", "--", "echo bad; exit 3"]);
    assert_ne!(run.code(), 0);
    assert!(
        run.stdout().contains("n1: bad\nn1: [exit status 3]\n"),
        "{}",
        run.stdout()
    );
    // A command killed by a signal says so.
    let v = reply(&api.xcat3(&["--json", "exec", "n1", "--", "kill -KILL $$"]));
    assert_eq!(kind(&v, "n1"), Some("command_failed"), "{v}");
    assert_eq!(outcome(&v, "n1")["signal"], "KILL", "{v}");

    // A command that outlives its timeout: `timeout`, the request ends.
    let v = reply(&api.xcat3(&["--json", "exec", "n1", "--timeout", "2", "--", "sleep 60"]));
    assert_eq!(kind(&v, "n1"), Some("timeout"), "{v}");

    // Another user: refused by sshd (only root has our key).
    let v = reply(&api.xcat3(&["--json", "exec", "n1", "--user", "nobody", "--", "true"]));
    assert_eq!(kind(&v, "n1"), Some("authentication"), "{v}");
    assert!(
        v["nodes"]["n1"]
            .as_str()
            .unwrap()
            .contains("user nobody was refused"),
        "{v}"
    );

    // Long output: the reply has it all, the history its first KiB.
    let v = reply(&api.xcat3(&["--json", "exec", "n1", "--", "seq 3000"]));
    let full = outcome(&v, "n1")["output"].as_str().unwrap().to_string();
    assert_eq!(full.lines().count(), 3000);
    let h = history_of(&api, "exec -- seq 3000");
    let kept: Value = serde_json::from_str(h["results"]["n1"].as_str().unwrap()).unwrap();
    assert_eq!(kept["output"].as_str().unwrap(), &full[..1024]);
    assert_eq!(kept["dropped_bytes"], full.len() - 1024);

    // Files: two into a directory, modes kept; one to a new path.
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let (a, b) = (dir.path().join("a.conf"), dir.path().join("b.sh"));
    std::fs::write(&a, "alpha\n").unwrap();
    std::fs::write(&b, vec![0u8, 1, 2, 255]).unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = api.xcat3(&[
        "copy",
        "n1",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        dest.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 0, "{} {}", run.stdout(), run.stderr());
    assert_eq!(std::fs::read(dest.join("a.conf")).unwrap(), b"alpha\n");
    assert_eq!(std::fs::read(dest.join("b.sh")).unwrap(), [0u8, 1, 2, 255]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dest.join("a.conf")), 0o640);
    assert_eq!(mode(&dest.join("b.sh")), 0o755);
    let renamed = dest.join("renamed.conf");
    api.xcat3(&["copy", "n1", a.to_str().unwrap(), renamed.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&renamed).unwrap(), b"alpha\n");
    // Into a directory that does not exist: scp's own words, nothing written.
    let v = reply(&api.xcat3(&[
        "--json",
        "copy",
        "n1",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        dir.path().join("missing").to_str().unwrap(),
    ]));
    assert_eq!(kind(&v, "n1"), Some("command_failed"), "{v}");
    assert!(
        outcome(&v, "n1")["output"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{v}"
    );
    assert!(!dir.path().join("missing").exists());

    // Post-boot scripts run again over SSH (`updatenode`): in order, as
    // the node (NODE), stopping at the first failure; the run is kept.
    let script = |name: &str, text: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        api.xcat3(&["script-create", name, f.to_str().unwrap()])
            .ok();
    };
    script("ok1", "#!/bin/sh\necho \"ok1 on $NODE\"\n");
    script("bad", "echo working\necho no disk >&2\nexit 3\n");
    script("never", "echo never\n");
    api.xcat3(&["update", "n1", "control/postscripts=ok1,bad,never"])
        .ok();
    let v = reply(&api.xcat3(&["--json", "postscripts", "n1", "--rerun"]));
    assert_eq!(kind(&v, "n1"), Some("command_failed"), "{v}");
    let ran = outcome(&v, "n1");
    assert_eq!(ran["exit_status"], 3, "{v}");
    assert_eq!(
        ran["output"], "[ok1: exit 0]\nok1 on n1\n[bad: exit 3]\nworking\nno disk\n",
        "{v}"
    );
    let kept = reply(&api.xcat3(&["--json", "postscripts", "n1"]));
    assert_eq!(kept["nodes"]["n1"]["output"], ran["output"], "{kept}");
    assert!(kept["nodes"]["n1"]["ran_at"].is_string(), "{kept}");
    assert_eq!(kind(&kept, "n1"), Some("command_failed"));
    // A listed script that is not stored is the node's error, before any
    // session; a node without scripts says so.
    api.xcat3(&["update", "n1", "control/postscripts=ok1,missing"])
        .ok();
    let v = reply(&api.xcat3(&["--json", "postscripts", "n1", "--rerun"]));
    assert_eq!(kind(&v, "n1"), Some("invalid"), "{v}");
    assert!(
        v["nodes"]["n1"].as_str().unwrap().contains("`missing`"),
        "{v}"
    );
    let v = reply(&api.xcat3(&["--json", "postscripts", "n4"]));
    assert_eq!(kind(&v, "n4"), Some("not_found"), "{v}");
    // Nothing listed: nothing to run, no session (n2 has no known key).
    let v = reply(&api.xcat3(&["--json", "postscripts", "n2", "--rerun"]));
    assert!(kind(&v, "n2").is_none(), "{v}");
    assert!(
        outcome(&v, "n2")["output"]
            .as_str()
            .unwrap()
            .starts_with("no post-boot scripts listed"),
        "{v}"
    );
    // A bad list is refused when written, naming the field.
    let run = api.xcat3(&["update", "n1", "control/postscripts=../etc/passwd"]);
    assert!(run.stdout().contains("postscripts"), "{}", run.stdout());

    // Bad requests are refused whole, naming the field.
    let run = api.xcat3(&["exec", "n1", "--fanout", "0", "--", "true"]);
    assert!(run.stderr().contains("fanout"), "{}", run.stderr());
    let run = api.xcat3(&["copy", "n1", a.to_str().unwrap(), "relative/path"]);
    assert!(run.stderr().contains("dest"), "{}", run.stderr());
}

/// 300 simulated nodes, two conductors over RabbitMQ and MariaDB: each
/// conductor runs its own nodes' sessions; every node gets its own
/// output; hung nodes time out and the others finish regardless.
#[cfg(feature = "servers")]
#[test]
fn exec_spreads_over_the_ring_and_hangs_hold_no_one() {
    let db = xcat3_tests::TestDb::create();
    let amqp = std::env::var("XCAT3_TEST_AMQP_URL").expect("XCAT3_TEST_AMQP_URL (scripts/test)");
    let c = crate::conductors::cluster_on(&db.url, &amqp, 2, 60);
    let key = c.api.xcat3(&["ssh-key"]).ok();
    let keyfile = c.dir.path().join("cluster.pub");
    std::fs::write(&keyfile, &key).unwrap();
    let sim = SshSim::start(
        c.dir.path(),
        "127.4.7.1",
        300,
        &keyfile,
        &["--hang-rate", "0.02", "--seed", "7", "--latency-ms", "20"],
    );
    let run = c.api.xcat3(&["import", sim.export.to_str().unwrap()]);
    assert_eq!(run.summary(), (300, 300), "{}", run.stdout());

    let run = c.api.xcat3(&[
        "--json",
        "exec",
        "sim[00001-00300]",
        "--timeout",
        "3",
        "--",
        "hostname",
    ]);
    let v = reply(&run);
    let nodes = v["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), 300);
    let (mut ok, mut hung) = (0, 0);
    for (name, r) in nodes {
        match kind(&v, name) {
            None => {
                assert_eq!(r["output"], format!("{name}\n"), "{name}: {r}");
                ok += 1;
            }
            Some("timeout") => hung += 1,
            Some(k) => panic!("{name}: {k}: {r}"),
        }
    }
    assert!(hung > 0 && ok + hung == 300, "ok {ok}, hung {hung}");
    // Both conductors ran sessions: the work follows the ring.
    for cond in &c.conductors {
        assert!(
            cond.handled() > 0,
            "a conductor ran nothing:\n{}",
            cond.log_text()
        );
    }
    // --collapse: one block for the hung nodes' shared error text is
    // impossible (each names its address); `echo` gives one block.
    let run = c.api.xcat3(&[
        "exec",
        "sim[00001-00300]",
        "--timeout",
        "3",
        "--collapse",
        "--",
        "echo same",
    ]);
    let text = run.stdout();
    assert!(
        text.contains(&format!(
            "({ok} nodes)\n========================================\nsame\n"
        )),
        "{text}"
    );
    assert_ne!(run.code(), 0, "hung nodes failed");
    // The history has every node's status.
    let h = history_of(&c.api, "exec -- echo same");
    assert_eq!(h["results"].as_object().unwrap().len(), 300);
    assert_eq!(h["failed_nodes"].as_array().unwrap().len(), hung);
}
