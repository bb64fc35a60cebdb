//! Whole-stack benchmarks on the end-to-end harness (`tests/lib.rs`): the
//! release binaries, the real CLI, MariaDB and RabbitMQ. Timings are
//! printed as tables, never asserted; every node's result is checked.
//!
//!   cargo bench -p xcat3-tests --bench stack -- NAME [ROUNDS]
//!
//! `scripts/bench NAME [ROUNDS]` is the entry point: it provides the
//! servers (`XCAT3_BENCH_DB_URL`, `XCAT3_BENCH_AMQP_URL`) and runs this
//! for `seed-table`, `inventory`, `power`, `power-sync`, `groups`,
//! `inspect`, `console`, `images` and `exec`.

use std::time::{Duration, Instant};

use xcat3_tests::{
    Api, Conductor, Run, Sim, TempDir, TestDb, proc_cpu_seconds, proc_status_kib, unique,
    wait_until, write_import_file,
};

/// Nodes per benchmark.
const N: usize = 10_000;

fn main() {
    // `cargo bench` passes `--bench`; anything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rounds: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    match args.first().map(String::as_str) {
        Some("seed-table") => seed_table(rounds),
        Some("inventory") => inventory(rounds),
        Some("power") => power(rounds),
        Some("power-sync") => power_sync(rounds),
        Some("groups") => groups(rounds),
        Some("inspect") => inspect(rounds),
        Some("console") => console(rounds),
        Some("images") => images(rounds),
        Some("exec") => exec(rounds),
        _ => {
            eprintln!(
                "usage: cargo bench -p xcat3-tests --bench stack -- seed-table|inventory|power|power-sync|groups|inspect|console|images|exec [ROUNDS]"
            );
            std::process::exit(2);
        }
    }
}

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench, which provides it"))
}

/// The API and two conductors on a fresh database of the bench server and
/// the bench broker.
struct Cluster {
    api: Api,
    conductors: Vec<Conductor>,
    db: TestDb,
    dir: TempDir,
}

impl Cluster {
    fn start(conductor_env: &[(&str, &str)], api_log: Option<&str>) -> Cluster {
        let db = TestDb::create_on(&env("XCAT3_BENCH_DB_URL"));
        let amqp = env("XCAT3_BENCH_AMQP_URL");
        let dir = TempDir::new("bench");
        let servers = [
            ("XCAT3_DATABASE_URL", db.url.as_str()),
            ("XCAT3_BUS_URL", amqp.as_str()),
        ];
        // Liveness settings are read by the API and the conductors alike.
        let mut api_env = servers.to_vec();
        api_env.extend(
            conductor_env
                .iter()
                .filter(|(k, _)| k.starts_with("XCAT3_CONDUCTOR_HEARTBEAT")),
        );
        let api = match api_log {
            Some(file) => Api::start_logged(
                None,
                &["--listen", "127.0.0.1:0"],
                &api_env,
                &dir.path().join(file),
            ),
            None => Api::start(&["--listen", "127.0.0.1:0"], &api_env),
        };
        let mut cenv = servers.to_vec();
        cenv.extend_from_slice(conductor_env);
        let conductors: Vec<Conductor> = ["bench-c1", "bench-c2"]
            .iter()
            .map(|h| Conductor::start(&unique(h), dir.path(), &cenv))
            .collect();
        wait_until(60, "both conductors online", || {
            let out = api.xcat3(&["service-list"]).stdout();
            (out.matches(": online").count() == 2).then_some(())
        });
        Cluster {
            api,
            conductors,
            db,
            dir,
        }
    }
}

/// Seconds of one CLI call, after checking every one of `n` nodes
/// succeeded (`export` prints no per-node lines).
fn timed(api: &Api, n: usize, args: &[&str]) -> f64 {
    let t0 = Instant::now();
    let run = api.xcat3(args);
    let secs = t0.elapsed().as_secs_f64();
    check(&run, n, args);
    secs
}

fn check(run: &Run, n: usize, args: &[&str]) {
    if args[0] == "export" {
        run.ok();
        return;
    }
    let (ok, total) = run.summary();
    assert!(
        ok == n && total == n,
        "xcat3 {}: {ok} of {total} succeeded, {n} expected\n{}",
        args.join(" "),
        run.stdout()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// Lets InnoDB purge the previous round's deleted rows first: an admin's
/// import does not start the second after a mass delete.
fn settle() {
    std::thread::sleep(Duration::from_secs(2));
}

/// The prototype's published sequence on 10,000 of its example nodes,
/// then power through xcat3-sim BMCs; beside the prototype's figures.
fn seed_table(rounds: usize) {
    let c = Cluster::start(
        &[
            ("XCAT3_DHCP_BACKEND", "dnsmasq"),
            ("XCAT3_DHCP_MANAGE", "false"),
        ],
        None,
    );
    let (api, dir) = (&c.api, c.dir.path());
    let nodes = write_import_file(dir, 1..=N);
    let nodes = nodes.to_str().expect("utf-8 path");
    // The example nodes' nics are on 12.0.0.0/16 and 13.0.0.0/16.
    for net in [
        &[
            "network-create",
            "net12",
            "subnet=12.0.0.0",
            "netmask=255.255.0.0",
            "next_server=12.0.0.1",
        ][..],
        &[
            "network-create",
            "net13",
            "subnet=13.0.0.0",
            "netmask=255.255.0.0",
        ][..],
    ] {
        api.xcat3(net).ok();
    }
    let export = dir.join("export.json");
    let export = export.to_str().expect("utf-8 path");
    let range = format!("node[1-{N}]");
    let steps: [(&str, Vec<&str>); 6] = [
        ("import", vec!["import", nodes]),
        (
            "update",
            vec![
                "update",
                &range,
                "arch=ppc64le",
                "type=compute",
                "control/bmc_username=root",
            ],
        ),
        ("export", vec!["export", &range, "-o", export]),
        ("dhcp", vec!["deploy", &range, "--state", "dhcp"]),
        ("undhcp", vec!["deploy", &range, "-d"]),
        ("delete", vec!["delete", &range]),
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); steps.len() + 3];
    for r in 1..=rounds {
        settle();
        for (i, (_, args)) in steps.iter().enumerate() {
            t[i].push(timed(api, N, args));
        }
        eprintln!("round {r} done");
    }
    let fleet = Sim::start_without_state(dir, "127.1.0.1", N as u32);
    api.xcat3(&["import", fleet.export.to_str().expect("utf-8 path")])
        .ok();
    let sims = format!("sim[00001-{N}]");
    for _ in 0..rounds {
        for (i, state) in ["on", "status", "off"].iter().enumerate() {
            t[steps.len() + i].push(timed(api, N, &["power", &sims, state]));
        }
    }
    let rows: [(&str, Option<f64>); 9] = [
        ("import (2 nics each)", Some(11.4)),
        ("update (3 attributes)", Some(8.3)),
        ("export", Some(4.2)),
        ("deploy --state dhcp (dnsmasq host files)", Some(19.5)),
        ("deploy -d", Some(13.2)),
        ("delete", Some(3.3)),
        ("power on, xcat3-sim IPMI BMCs", None),
        ("power status, xcat3-sim IPMI BMCs", None),
        ("power off, xcat3-sim IPMI BMCs", None),
    ];
    println!();
    println!(
        "The prototype's sequence, {N} nodes, MariaDB + RabbitMQ + 2 conductors, through the CLI (median of {rounds}, seconds)"
    );
    println!(
        "{:<44} {:>10} {:>8} {:>8}",
        "step", "prototype", "xcat3", "ratio"
    );
    for ((label, proto), times) in rows.iter().zip(t) {
        let ours = median(times);
        match proto {
            Some(p) => println!("{label:<44} {p:>10} {ours:>8.3} {:>7.0}x", p / ours),
            None => println!("{label:<44} {:>10} {ours:>8.3} {:>8}", "-", "-"),
        }
    }
    println!(
        "(the prototype published no power figure; scripts/bench ipmi compares with ipmitool fanned out)"
    );
}

/// Import, update, export and delete of 10,000 nodes with two nics each,
/// on MariaDB and on SQLite (standalone); the API's peak RSS.
fn inventory(rounds: usize) {
    let dir = TempDir::new("bench-inventory");
    let nodes = write_import_file(dir.path(), 1..=N);
    let nodes = nodes.to_str().expect("utf-8 path").to_string();
    let export = dir.path().join("export.json");
    let export = export.to_str().expect("utf-8 path").to_string();
    let range = format!("node[1-{N}]");
    let steps: [Vec<&str>; 4] = [
        vec!["import", &nodes],
        vec![
            "update",
            &range,
            "arch=ppc64le",
            "type=compute",
            "control/bmc_username=root",
        ],
        vec!["export", &range, "-o", &export],
        vec!["delete", &range],
    ];
    let backend = |name: &str, api: Api| -> (String, [f64; 4], u64) {
        let mut t: Vec<Vec<f64>> = vec![Vec::new(); 4];
        for r in 1..=rounds {
            settle();
            for (i, args) in steps.iter().enumerate() {
                t[i].push(timed(&api, N, args));
            }
            eprintln!("{name} round {r} done");
        }
        let rss = api.peak_rss_mib();
        let m = |i: usize| median(t[i].clone());
        (name.to_string(), [m(0), m(1), m(2), m(3)], rss)
    };
    let db = TestDb::create_on(&env("XCAT3_BENCH_DB_URL"));
    let mariadb = backend("MariaDB", Api::with_db(&db.url));
    let data = dir.path().join("standalone");
    let sqlite = backend("SQLite", Api::standalone(&data));
    println!();
    println!(
        "xcat3 inventory, {N} nodes with 2 nics each, through the CLI (median of {rounds} rounds, seconds)"
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>14}",
        "backend", "import", "update", "export", "delete", "API peak RSS"
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>14}",
        "prototype (MySQL)", 11.4, 8.3, 4.2, 3.3, "-"
    );
    for (name, [i, u, e, d], rss) in [&mariadb, &sqlite] {
        println!("{name:<22} {i:>8.3} {u:>8.3} {e:>8.3} {d:>8.3} {rss:>11} MB");
    }
    let [i, u, e, d] = mariadb.1;
    println!(
        "speed-up vs prototype on MariaDB: import {:.0}x, update {:.0}x, export {:.0}x, delete {:.0}x",
        11.4 / i,
        8.3 / u,
        4.2 / e,
        3.3 / d
    );
    println!(
        "(target on MariaDB: import <= 1 s, update <= 1 s, export <= 0.5 s, delete <= 0.5 s, RSS < 150 MB)"
    );
}

/// `power status` / `on` of 10,000 fake nodes (0 and 50 ms per call); bus
/// messages and reply batches per request from the API's log.
fn power(rounds: usize) {
    let c = Cluster::start(&[], Some("api.log"));
    let api = &c.api;
    let range = format!("node[1-{N}]");
    api.xcat3(&["create", &range, "mgt=fake"]).ok();
    // Statements of the last run, from the server's counter (less the two
    // SHOW STATUS of the measurement; background heartbeats included).
    let questions = std::cell::Cell::new(0);
    let time_power = |expect: &str, state: &str| -> f64 {
        let mut t = Vec::new();
        for _ in 0..rounds {
            let q0 = c.db.global_status("Questions");
            let t0 = Instant::now();
            let run = api.xcat3(&["power", &range, state]);
            t.push(t0.elapsed().as_secs_f64());
            questions.set(c.db.global_status("Questions").saturating_sub(q0 + 2));
            check(&run, N, &["power"]);
            let right = xcat3_tests::node_results(&run.stdout())
                .values()
                .filter(|v| *v == expect)
                .count();
            assert_eq!(right, N, "power {state}: not every node {expect}");
        }
        median(t)
    };
    let st0 = time_power("off", "status");
    let q_status = questions.get();
    api.xcat3(&["update", &range, "control/fake_delay_ms=50"])
        .ok();
    let on50 = time_power("ok", "on");
    let q_on = questions.get();
    let st50 = time_power("on", "status");
    let log = std::fs::read_to_string(c.dir.path().join("api.log")).unwrap_or_default();
    let batches: Vec<String> = log
        .lines()
        .filter(|l| l.contains("conductor call finished"))
        .rev()
        .take(c.conductors.len())
        .filter_map(|l| {
            let field = |k: &str| l.split(&format!("{k}=")).nth(1)?.split_whitespace().next();
            Some(format!(
                "{} nodes: {} reply batches",
                field("nodes")?,
                field("replies")?
            ))
        })
        .collect();
    println!();
    println!(
        "xcat3 power, {N} fake nodes, 2 conductors, RabbitMQ + MariaDB, through the CLI (median of {rounds}, seconds)"
    );
    println!("{:<40} {st0:>8.3}", "power status, 0 ms per node");
    println!("{:<40} {on50:>8.3}", "power on, 50 ms per node");
    println!("{:<40} {st50:>8.3}", "power status, 50 ms per node");
    println!("(target: status <= 1 s at 0 ms; <= 3 s at 50 ms per node)");
    println!(
        "bus messages per request: 2 requests (one per conductor) + reply batches; last request: {}",
        batches.join("; ")
    );
    println!(
        "DB statements per request (MariaDB Questions, incl. background heartbeats): status {q_status}, power on {q_on}"
    );
}

/// The periodic power-state sync of 10,000 simulated IPMI BMCs (xcat3-sim
/// on loopback) by two conductors: how long one sync takes and what it
/// costs in CPU, against the same reads asked for by a user (`power
/// status`), and how much a user's request is slowed while a sync runs.
fn power_sync(rounds: usize) {
    const INTERVAL: u64 = 20;
    let interval = INTERVAL.to_string();
    let c = Cluster::start(
        &[
            ("XCAT3_POWER_SYNC_INTERVAL", interval.as_str()),
            ("XCAT3_CONDUCTOR_CALL_TIMEOUT", "30"),
        ],
        None,
    );
    let api = &c.api;
    let fleet = Sim::start_without_state(c.dir.path(), "127.34.0.1", N as u32);
    api.xcat3(&["import", fleet.export.to_str().expect("utf-8 path")])
        .ok();
    let all = format!("sim[00001-{N:05}]");
    let some = "sim[00001-00100]";
    // A user's request on an idle conductor pair, for the comparison below.
    let idle: Vec<f64> = (0..rounds.max(3))
        .map(|_| timed(api, 100, &["power", some, "status"]))
        .collect();
    let user_all = median(
        (0..rounds)
            .map(|_| timed(api, N, &["power", &all, "status"]))
            .collect(),
    );
    // Syncs: wait for `rounds` more on each conductor, timing small user
    // requests meanwhile (some of them land inside a sync).
    let done = |c: &Conductor| c.log_text().matches("power sync done").count();
    let start: Vec<usize> = c.conductors.iter().map(done).collect();
    let cpu0: Vec<f64> = c.conductors.iter().map(Conductor::cpu_seconds).collect();
    let mut during = Vec::new();
    wait_until(INTERVAL * (rounds as u64 + 2) + 60, "the syncs", || {
        during.push(timed(api, 100, &["power", some, "status"]));
        std::thread::sleep(Duration::from_millis(300));
        c.conductors
            .iter()
            .zip(&start)
            .all(|(c, s)| done(c) >= s + rounds)
            .then_some(())
    });
    let cpu: f64 = c
        .conductors
        .iter()
        .zip(&cpu0)
        .map(|(c, t0)| c.cpu_seconds() - t0)
        .sum();
    let mut lines = Vec::new();
    for c in &c.conductors {
        let log = c.log_text();
        for l in log
            .lines()
            .filter(|l| l.contains("power sync done"))
            .skip(1)
        {
            let field = |k: &str| -> u64 {
                l.split(&format!("{k}="))
                    .nth(1)
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            lines.push((field("read"), field("failed"), field("ms")));
        }
    }
    let read: u64 = lines.iter().map(|l| l.0).sum();
    let failed: u64 = lines.iter().map(|l| l.1).sum();
    let sync_ms: Vec<f64> = lines.iter().map(|l| l.2 as f64).collect();
    let syncs = sync_ms.len().max(1) as f64;
    println!();
    println!(
        "power-state sync, {N} xcat3-sim IPMI BMCs, 2 conductors, sync_workers 16, interval {INTERVAL} s"
    );
    println!(
        "{:<52} {:>8.3}",
        "one sync per conductor (median, s)",
        median(sync_ms) / 1000.0
    );
    println!(
        "{:<52} {:>8}",
        "BMCs read per sync (both conductors, failed)",
        format!("{} ({})", read as f64 / syncs * 2.0, failed)
    );
    println!(
        "{:<52} {:>8.2}",
        "conductor CPU per sync of 10,000 (s)",
        cpu / syncs * 2.0
    );
    println!(
        "{:<52} {user_all:>8.3}",
        "user `power status` of all 10,000 (median, s)"
    );
    println!(
        "{:<52} {:>8.3} / {:>6.3} / {:>6.3}",
        "user status of 100: idle median / during median / max",
        median(idle),
        median(during.clone()),
        during.iter().cloned().fold(0.0, f64::max)
    );
}

/// Seeing 10,000 xcat3-sim BMCs (34 sensors, FRU, SEL each) through 2
/// conductors: `vitals all` with an empty SDR cache (each conductor reads
/// the model's SDR once) and cached, `inventory --refresh` and `eventlog
/// -n 20`; beside `ipmitool sdr list` fanned out with `xargs -P 64` over
/// 1,000 of the same BMCs, and our cached `vitals` of those 1,000.
fn inspect(rounds: usize) {
    let c = Cluster::start(&[("XCAT3_CONDUCTOR_CALL_TIMEOUT", "60")], None);
    let api = &c.api;
    let fleet = Sim::start_without_state(c.dir.path(), "127.35.0.1", N as u32);
    api.xcat3(&["import", fleet.export.to_str().expect("utf-8 path")])
        .ok();
    let all = format!("sim[00001-{N:05}]");
    let some = "sim[00001-01000]";
    // Powered on, every sensor has a reading.
    check(&api.xcat3(&["power", &all, "on"]), N, &["power"]);
    let cpu = |c: &Cluster| -> f64 { c.conductors.iter().map(Conductor::cpu_seconds).sum() };
    let cpu0 = cpu(&c);
    let first = timed(api, N, &["vitals", &all]);
    let first_cpu = cpu(&c) - cpu0;
    let cpu0 = cpu(&c);
    let cached = median(
        (0..rounds)
            .map(|_| timed(api, N, &["vitals", &all]))
            .collect(),
    );
    let cached_cpu = (cpu(&c) - cpu0) / rounds as f64;
    let lines = api.xcat3(&["vitals", &all]).stdout().lines().count();
    let temp = median(
        (0..rounds)
            .map(|_| timed(api, N, &["vitals", &all, "temp"]))
            .collect(),
    );
    let inventory = median(
        (0..rounds)
            .map(|_| timed(api, N, &["inventory", &all, "--refresh"]))
            .collect(),
    );
    let stored = median(
        (0..rounds)
            .map(|_| timed(api, N, &["inventory", &all]))
            .collect(),
    );
    let events = median(
        (0..rounds)
            .map(|_| timed(api, N, &["eventlog", &all, "-n", "20"]))
            .collect(),
    );
    let ours_1000 = median(
        (0..rounds)
            .map(|_| timed(api, 1000, &["vitals", some]))
            .collect(),
    );
    // ipmitool, one process per BMC, 64 at a time, over the same 1,000.
    let first_ip: std::net::Ipv4Addr = "127.35.0.1".parse().expect("address");
    let ips: Vec<String> = (0..1000u32)
        .map(|i| std::net::Ipv4Addr::from(u32::from(first_ip) + i).to_string())
        .collect();
    let list = c.dir.path().join("bmcs.txt");
    std::fs::write(&list, ips.join("\n")).expect("write the BMC list");
    let ipmitool = median(
        (0..rounds)
            .map(|_| {
                let t0 = Instant::now();
                let status = std::process::Command::new("xargs")
                    .args(["-P", "64", "-I", "{}", "-a"])
                    .arg(&list)
                    .args(["ipmitool", "-I", "lanplus", "-C", "3", "-H", "{}", "-p"])
                    .arg(fleet.port.to_string())
                    .args(["-U", "admin", "-P", "secret", "sdr", "list"])
                    .stdout(std::process::Stdio::null())
                    .status()
                    .expect("run xargs ipmitool (scripts/test installs ipmitool)");
                assert!(status.success(), "some ipmitool sdr list failed");
                t0.elapsed().as_secs_f64()
            })
            .collect(),
    );
    println!();
    println!(
        "inspection, {N} xcat3-sim IPMI BMCs (34 sensors each), 2 conductors, MariaDB, RabbitMQ"
    );
    println!("{:<56} {:>8.3}", "vitals all, empty SDR cache (s)", first);
    println!("{:<56} {:>8.2}", "  conductor CPU (s)", first_cpu);
    println!(
        "{:<56} {:>8.3}",
        "vitals all, cached SDR (median, s)", cached
    );
    println!("{:<56} {:>8.2}", "  conductor CPU (s)", cached_cpu);
    println!("{:<56} {:>8}", "  lines printed", lines);
    println!("{:<56} {:>8.3}", "vitals temp, cached (median, s)", temp);
    println!(
        "{:<56} {:>8.3}",
        "inventory --refresh (median, s)", inventory
    );
    println!("{:<56} {:>8.3}", "inventory, stored (median, s)", stored);
    println!("{:<56} {:>8.3}", "eventlog -n 20 (median, s)", events);
    println!();
    println!("1,000 of the same BMCs");
    println!(
        "{:<56} {:>8.3}",
        "xcat3 vitals all, cached (median, s)", ours_1000
    );
    println!(
        "{:<56} {:>8.3}",
        "ipmitool sdr list, xargs -P 64 (median, s)", ipmitool
    );
    println!("{:<56} {:>7.1}x", "ratio", ipmitool / ours_1000);
}

/// Groups at 100,000 nodes (API only, MariaDB and standalone SQLite):
/// each node in `compute` (mgt, arch and a BMC user and password) and one
/// of 100 racks of 1,000 (netboot). Times the import, noderanges that
/// name groups (membership: one query), and listing every node with the
/// values it inherits (resolution: one group query per 5,000 nodes).
fn groups(rounds: usize) {
    const NODES: usize = 100_000;
    const RACKS: usize = 100;
    let dir = TempDir::new("bench-groups");
    let file = dir.path().join("nodes.json");
    let nodes: Vec<serde_json::Value> = (1..=NODES)
        .map(|i| {
            let rack = (i - 1) / (NODES / RACKS) + 1;
            serde_json::json!({"name": format!("n{i:06}"), "groups": format!("rack{rack},compute")})
        })
        .collect();
    std::fs::write(&file, serde_json::json!({ "nodes": nodes }).to_string()).unwrap();
    let file = file.to_str().expect("utf-8 path").to_string();
    let run = |name: &str, api: Api| {
        api.xcat3(&[
            "group-create",
            "compute",
            "mgt=ipmi",
            "arch=x86_64",
            "-c",
            "bmc_username=admin,bmc_password=pw",
        ])
        .ok();
        for r in 1..=RACKS {
            api.xcat3(&["group-create", &format!("rack{r}"), "netboot=pxe"])
                .ok();
        }
        let import = timed(&api, NODES, &["import", &file]);
        let lines = |args: &[&str], n: usize| -> f64 {
            let mut t = Vec::new();
            for _ in 0..rounds {
                let t0 = Instant::now();
                let out = api.xcat3(args).ok();
                t.push(t0.elapsed().as_secs_f64());
                assert_eq!(out.lines().count(), n, "xcat3 {}", args.join(" "));
            }
            median(t)
        };
        let minus = lines(&["list", "compute,-rack1"], NODES - NODES / RACKS);
        let at = lines(&["list", "compute@rack7"], NODES / RACKS);
        let all = lines(
            &["list", "compute", "-o", "name,mgt,arch,netboot"],
            NODES + 1,
        );
        println!("{name:<10} {import:>8.3} {minus:>10.3} {at:>10.3} {all:>12.3}");
    };
    println!();
    println!(
        "groups, {NODES} nodes in `compute` and 100 racks, through the CLI (median of {rounds}, seconds)"
    );
    println!(
        "{:<10} {:>8} {:>10} {:>10} {:>12}",
        "backend", "import", "c,-rack1", "c@rack7", "list -o all"
    );
    let db = TestDb::create_on(&env("XCAT3_BENCH_DB_URL"));
    run("MariaDB", Api::with_db(&db.url));
    run("SQLite", Api::standalone(&dir.path().join("standalone")));
    println!("(list -o reads every node's inherited values: 20 /nodes/info calls of 5,000)");
}

/// 10,000 always-on SOL consoles on xcat3-sim, 2 conductors: the time
/// until all are connected; each conductor's CPU and memory while every
/// BMC prints a line a second; bytes lost; then one conductor SIGKILLed:
/// the time until the other holds all 10,000, and its CPU and memory
/// then. Beside it, 100 `ipmitool sol activate` processes on 100 more
/// BMCs of the same simulator.
fn console(rounds: usize) {
    let dir_logs = TempDir::new("bench-console-logs");
    let logs = dir_logs.path().display().to_string();
    let c = Cluster::start(
        &[
            ("XCAT3_CONSOLE_RECONCILE_INTERVAL", "2"),
            ("XCAT3_CONSOLE_LOG_DIR", logs.as_str()),
            // A death noticed in 6 s, so the takeover figure is mostly
            // the consoles' own.
            ("XCAT3_CONDUCTOR_HEARTBEAT_INTERVAL", "2"),
            ("XCAT3_CONDUCTOR_HEARTBEAT_TIMEOUT", "6"),
        ],
        None,
    );
    let api = &c.api;
    const IPMITOOLS: usize = 100;
    let fleet = Sim::start(
        c.dir.path(),
        "127.36.0.1",
        (N + IPMITOOLS) as u32,
        &["--sol-line-ms", "1000"],
    );
    // The first N nodes, consoles always on.
    let mut nodes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fleet.export).expect("export"))
            .expect("export is JSON");
    let list = nodes["nodes"].as_array_mut().expect("nodes");
    list.truncate(N);
    for n in list.iter_mut() {
        n["console_info"] = serde_json::json!({"logging": "always"});
    }
    let file = c.dir.path().join("consoles.json");
    std::fs::write(&file, nodes.to_string()).expect("write");
    let all = format!("sim[00001-{N:05}]");
    let states = || -> serde_json::Value {
        let out = api.xcat3(&["--json", "console-list", &all]).stdout();
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_default()["nodes"].take()
    };
    let connected = |v: &serde_json::Value| {
        v.as_object().map_or(0, |m| {
            m.values().filter(|s| s["state"] == "connected").count()
        })
    };
    let t0 = Instant::now();
    api.xcat3(&["import", file.to_str().expect("utf-8")]).ok();
    wait_until(600, "every console connected", || {
        (connected(&states()) == N).then_some(())
    });
    let connect_all = t0.elapsed().as_secs_f64();
    check(&api.xcat3(&["power", &all, "on"]), N, &["power"]);
    // Steady state: every BMC prints a line a second.
    std::thread::sleep(Duration::from_secs(5));
    let window = Duration::from_secs(20 * rounds.max(1) as u64);
    let cpu0: Vec<f64> = c.conductors.iter().map(Conductor::cpu_seconds).collect();
    std::thread::sleep(window);
    let cpu: Vec<f64> = c
        .conductors
        .iter()
        .zip(&cpu0)
        .map(|(k, c0)| (k.cpu_seconds() - c0) / window.as_secs_f64())
        .collect();
    let rss: Vec<u64> = c.conductors.iter().map(Conductor::rss_mib).collect();
    let held: Vec<usize> = {
        let v = states();
        c.conductors
            .iter()
            .map(|k| {
                v.as_object().map_or(0, |m| {
                    m.values()
                        .filter(|s| s["conductor"] == k.host.as_str())
                        .count()
                })
            })
            .collect()
    };

    // 100 ipmitool SOL sessions on the other BMCs, for 20 s.
    let first: std::net::Ipv4Addr = "127.36.0.1".parse().expect("address");
    let mut tools = Vec::new();
    for i in 0..IPMITOOLS {
        let ip = std::net::Ipv4Addr::from(u32::from(first) + (N + i) as u32);
        let ipmi = format!(
            "ipmitool -I lanplus -C 3 -H {ip} -p {} -U admin -P secret",
            fleet.port
        );
        let on = std::process::Command::new("sh")
            .args(["-c", &format!("{ipmi} power on")])
            .output()
            .expect("ipmitool");
        assert!(on.status.success(), "{on:?}");
        tools.push(
            std::process::Command::new("script")
                .args(["-qfc", &format!("exec {ipmi} sol activate"), "/dev/null"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("script + ipmitool"),
        );
    }
    std::thread::sleep(Duration::from_secs(5));
    let ipmitool_pids = || -> Vec<u32> {
        let out = std::process::Command::new("pgrep")
            .args(["-f", "^ipmitool .* sol activate"])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let pids = ipmitool_pids();
    let t_cpu0: f64 = pids.iter().map(|p| proc_cpu_seconds(*p)).sum();
    let tool_window = Duration::from_secs(20);
    std::thread::sleep(tool_window);
    let tool_cpu = (pids.iter().map(|p| proc_cpu_seconds(*p)).sum::<f64>() - t_cpu0)
        / tool_window.as_secs_f64();
    let tool_rss_kib: u64 = pids.iter().map(|p| proc_status_kib(*p, "VmRSS:")).sum();
    for mut t in tools {
        let _ = t.kill();
        let _ = t.wait();
    }
    let _ = std::process::Command::new("pkill")
        .args(["-f", "^ipmitool .* sol activate"])
        .status();

    // Stop the output, let the last lines arrive, then count.
    check(&api.xcat3(&["power", &all, "off"]), N, &["power"]);
    std::thread::sleep(Duration::from_secs(5));
    let v = states();
    let received: u64 = v
        .as_object()
        .map_or(0, |m| m.values().filter_map(|s| s["bytes"].as_u64()).sum());
    let sim_state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fleet.state_file).expect("state"))
            .expect("state JSON");
    let sol_sum = |state: &serde_json::Value, key: &str| -> u64 {
        (0..N)
            .map(|i| {
                let ip = std::net::Ipv4Addr::from(u32::from(first) + i as u32).to_string();
                state[&ip]["sol"][key].as_u64().unwrap_or(0)
            })
            .sum()
    };
    let (printed, lost, lines) = (
        sol_sum(&sim_state, "printed"),
        sol_sum(&sim_state, "lost"),
        sol_sum(&sim_state, "lines"),
    );

    // One conductor dies (SIGKILL): the other takes every console.
    check(&api.xcat3(&["power", &all, "on"]), N, &["power"]);
    std::thread::sleep(Duration::from_secs(5));
    c.conductors[1].kill9();
    let killed = Instant::now();
    let survivor = c.conductors[0].host.clone();
    wait_until(600, "every console on the surviving conductor", || {
        let v = states();
        let on_survivor = v.as_object().map_or(0, |m| {
            m.values()
                .filter(|s| s["state"] == "connected" && s["conductor"] == survivor.as_str())
                .count()
        });
        (on_survivor == N).then_some(())
    });
    let takeover = killed.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(5));
    let cpu0 = c.conductors[0].cpu_seconds();
    std::thread::sleep(window);
    let one_cpu = (c.conductors[0].cpu_seconds() - cpu0) / window.as_secs_f64();
    let one_rss = c.conductors[0].rss_mib();
    println!();
    println!(
        "consoles, {N} always-on IPMI SOL consoles on xcat3-sim, 2 conductors, MariaDB, RabbitMQ"
    );
    println!(
        "{:<60} {:>10.2}",
        "import to every console connected (s)", connect_all
    );
    for (i, ((held, cpu), rss)) in held.iter().zip(&cpu).zip(&rss).enumerate() {
        println!(
            "{:<60} {:>10}",
            format!("conductor {} consoles held", i + 1),
            held
        );
        println!(
            "{:<60} {:>10.3}",
            "  CPU, every BMC printing a line/s (cores)", cpu
        );
        println!("{:<60} {:>10}", "  RSS (MiB)", rss);
    }
    println!("{:<60} {:>10}", "numbered lines the BMCs printed", lines);
    println!(
        "{:<60} {:>10}",
        "bytes printed while connected (simulator)", printed
    );
    println!("{:<60} {:>10}", "bytes received (conductors)", received);
    println!("{:<60} {:>10}", "bytes lost (simulator: dropped)", lost);
    println!(
        "{:<60} {:>10}",
        "bytes lost (printed - received)",
        printed as i64 - received as i64
    );
    println!(
        "{:<60} {:>10.2}",
        "conductor 2 SIGKILLed (heartbeat timeout 6 s): all on conductor 1 after (s)", takeover
    );
    println!(
        "{:<60} {:>10.3}",
        "conductor 1 holding all 10,000: CPU at a line/s (cores)", one_cpu
    );
    println!("{:<60} {:>10}", "  RSS (MiB)", one_rss);
    println!();
    println!("{IPMITOOLS} ipmitool sol activate processes on the same simulator");
    println!("{:<60} {:>10}", "processes measured", pids.len());
    println!("{:<60} {:>10.3}", "CPU, all of them (cores)", tool_cpu);
    println!(
        "{:<60} {:>10.1}",
        "RSS per console (KiB)",
        tool_rss_kib as f64 / pids.len().max(1) as f64
    );
    let ours_kib = rss.iter().sum::<u64>() as f64 * 1024.0 / N as f64;
    println!("{:<60} {:>10.1}", "xcat3: RSS per console (KiB)", ours_kib);
    println!(
        "{:<60} {:>10.4}",
        "xcat3: CPU per console (ms per s)",
        cpu.iter().sum::<f64>() * 1000.0 / N as f64
    );
    println!(
        "{:<60} {:>10.4}",
        "ipmitool: CPU per console (ms per s)",
        tool_cpu * 1000.0 / pids.len().max(1) as f64
    );
}

/// One node's fetch from `server`, from its own address `from` (the
/// overlay goes to the node's reserved address only): HTTP/1.1 GET, the
/// body counted and dropped. (status, body bytes).
async fn fetch_from(
    from: std::net::Ipv4Addr,
    server: std::net::SocketAddr,
    path: &str,
) -> (u16, u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(std::net::SocketAddr::from((from, 0)))
        .expect("bind the node's address");
    let Ok(mut s) = sock.connect(server).await else {
        return (0, 0);
    };
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, 0);
    }
    let mut buf = vec![0u8; 1 << 16];
    let mut head = Vec::new();
    let mut body = 0u64;
    let mut in_body = false;
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if in_body {
            body += n as u64;
            continue;
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            body += (head.len() - i - 4) as u64;
            head.truncate(i);
            in_body = true;
        }
    }
    let status = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body)
}

/// Every node fetches `paths(i)` at once; (seconds, bytes, failures).
fn fetch_all(
    server: std::net::SocketAddr,
    nodes: &[std::net::Ipv4Addr],
    paths: impl Fn(usize) -> Vec<String>,
    sizes: impl Fn(&str) -> u64,
) -> (f64, u64, usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let jobs: Vec<(std::net::Ipv4Addr, Vec<String>)> = nodes
        .iter()
        .enumerate()
        .map(|(i, ip)| (*ip, paths(i)))
        .collect();
    let expected: Vec<Vec<u64>> = jobs
        .iter()
        .map(|(_, ps)| ps.iter().map(|p| sizes(p)).collect())
        .collect();
    let t0 = Instant::now();
    let results: Vec<Vec<(u16, u64)>> = rt.block_on(async {
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|(ip, ps)| {
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for p in ps {
                        out.push(fetch_from(ip, server, &p).await);
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.expect("fetch task"));
        }
        all
    });
    let secs = t0.elapsed().as_secs_f64();
    let mut bytes = 0;
    let mut failed = 0;
    for (got, want) in results.iter().zip(&expected) {
        for ((status, n), w) in got.iter().zip(want) {
            bytes += n;
            if *status != 200 || (*w > 0 && n != w) {
                failed += 1;
            }
        }
    }
    (secs, bytes, failed)
}

/// A built image served to 1,000 nodes at once: `genimage` (from the
/// cached root), `deploy --osimage` of 1,000 nodes, then every node
/// fetches its iPXE script, the kernel, the shared root archive and its
/// overlay from its own 127.3.x.y address, as iPXE does in a mass reboot.
/// Throughput and the serving process's CPU, beside busybox httpd serving
/// the same kernel and archive to the same clients.
fn images(rounds: usize) {
    const NODES: usize = 1000;
    let dir = TempDir::new("bench-images");
    let http_port = xcat3_tests::free_tcp_port();
    let http = format!("127.0.0.1:{http_port}");
    let api = Api::standalone_boot(&dir.path().join("data"), &http, &[]);
    let t0 = Instant::now();
    let out = api
        .xcat3(&["genimage", "bench", "--distro", "debian12"])
        .ok();
    let build = t0.elapsed().as_secs_f64();
    println!("{out}");
    api.create_lab(None, &["subnet=127.3.0.0", "netmask=255.255.0.0"]);
    let ips: Vec<std::net::Ipv4Addr> = (0..NODES)
        .map(|i| std::net::Ipv4Addr::new(127, 3, (i / 250) as u8, (i % 250 + 1) as u8))
        .collect();
    let macs: Vec<String> = (0..NODES)
        .map(|i| format!("52:54:03:00:{:02x}:{:02x}", i / 256, i % 256))
        .collect();
    let nodes: Vec<serde_json::Value> = (0..NODES)
        .map(|i| {
            serde_json::json!({"name": format!("img{:04}", i + 1), "netboot": "ipxe",
                "nics_info": {"nics": [{"mac": macs[i], "ip": ips[i].to_string(), "primary": true}]}})
        })
        .collect();
    let file = dir.path().join("nodes.json");
    std::fs::write(&file, serde_json::json!({ "nodes": nodes }).to_string()).expect("write");
    api.xcat3(&["import", file.to_str().unwrap()]).ok();
    let range = format!("img[0001-{NODES:04}]");
    let deploy = timed(&api, NODES, &["deploy", &range, "--osimage", "bench"]);
    let root = dir.path().join("data/httpboot/images/bench");
    let size = |f: &str| std::fs::metadata(root.join(f)).map_or(0, |m| m.len());
    let (kernel_bytes, root_bytes) = (size("kernel"), size("initrd"));
    let server: std::net::SocketAddr = http.parse().unwrap();
    let api_pid = api.pid();

    println!(
        "\nimages: {NODES} nodes fetch kernel ({} MiB) + root archive ({} MiB) + overlay at once",
        kernel_bytes >> 20,
        root_bytes >> 20
    );
    println!(
        "{:<58} {:>12}",
        "genimage from the cached root (s)",
        format!("{build:.1}")
    );
    println!(
        "{:<58} {:>12}",
        "deploy --osimage of 1,000 nodes (s)",
        format!("{deploy:.2}")
    );
    for round in 1..=rounds {
        let (cpu0, all0) = (proc_cpu_seconds(api_pid), machine_cpu_seconds());
        let (secs, bytes, failed) = fetch_all(
            server,
            &ips,
            |i| {
                vec![
                    format!("ipxe/{}", macs[i].replace(':', "-")),
                    "images/bench/kernel".into(),
                    "images/bench/initrd".into(),
                    format!("autoinst/img{:04}/overlay.cpio", i + 1),
                ]
            },
            |p| match p {
                "images/bench/kernel" => kernel_bytes,
                "images/bench/initrd" => root_bytes,
                _ => 0,
            },
        );
        let cpu = proc_cpu_seconds(api_pid) - cpu0;
        let all = machine_cpu_seconds() - all0;
        assert_eq!(failed, 0, "{failed} fetches failed or came short");
        println!(
            "{:<58} {:>12}",
            format!("round {round}: xcat3 boot HTTP, s / GB/s / server CPU s / machine CPU s"),
            format!(
                "{secs:.1} / {:.2} / {cpu:.1} / {all:.1}",
                bytes as f64 / secs / 1e9
            )
        );
    }
    // Every node's overlay fetch was its `image fetched`.
    let fetched = wait_until(30, "image fetched recorded for every node", || {
        let out = api.xcat3(&["list", &range, "-o", "name,step"]).stdout();
        let n = out.matches("image fetched").count();
        (n == NODES).then_some(n)
    });
    println!("{:<58} {:>12}", "nodes recorded `image fetched`", fetched);

    // The same bytes from busybox httpd (a plain static server).
    let bb_port = xcat3_tests::free_tcp_port();
    let httpd = xcat3_tests::Daemon(
        std::process::Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{bb_port}"), "-h"])
            .arg(dir.path().join("data/httpboot"))
            .spawn()
            .expect("busybox httpd (Debian package busybox)"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let bb: std::net::SocketAddr = format!("127.0.0.1:{bb_port}").parse().unwrap();
    for round in 1..=rounds {
        let all0 = machine_cpu_seconds();
        let (secs, bytes, failed) = fetch_all(
            bb,
            &ips,
            |_| vec!["images/bench/kernel".into(), "images/bench/initrd".into()],
            |p| match p {
                "images/bench/kernel" => kernel_bytes,
                _ => root_bytes,
            },
        );
        // A child per request: its CPU is not the parent's to read, so
        // the machine's (server and the same clients) is compared.
        let all = machine_cpu_seconds() - all0;
        println!(
            "{:<58} {:>12}",
            format!("round {round}: busybox httpd (forks per request), s / GB/s / machine CPU s"),
            format!(
                "{secs:.1} / {:.2} / {all:.1}{}",
                bytes as f64 / secs / 1e9,
                if failed > 0 {
                    format!(" ({failed} fetches failed)")
                } else {
                    String::new()
                }
            )
        );
    }
    drop(httpd);
}

/// CPU seconds the whole machine has spent busy (`/proc/stat`: user,
/// nice, system, irq, softirq), at 100 ticks a second.
fn machine_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|i| f.get(*i)).sum();
    busy as f64 / 100.0
}

/// `xcat3 exec NODES -- hostname` on xcat3-sim SSH nodes, 2 conductors,
/// RabbitMQ and MariaDB; beside `pdsh -R ssh -f 64` (OpenSSH's client,
/// host keys checked from a known_hosts file, as ours are) on the same
/// first 1,000 nodes, in the same run.
fn exec(rounds: usize) {
    let c = Cluster::start(&[], None);
    let dir = c.dir.path();
    let key = c.api.xcat3(&["ssh-key"]).ok();
    // pdsh logs in with a key of its own.
    let pdsh_key = dir.join("pdsh_key");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&pdsh_key)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
    let pdsh_pub = std::fs::read_to_string(dir.join("pdsh_key.pub")).expect("pdsh key");
    let authorized = dir.join("authorized");
    std::fs::write(&authorized, format!("{key}{pdsh_pub}")).expect("write keys");
    let sizes: &[u32] = &[1_000, 10_000];
    let count = *sizes.iter().max().unwrap();
    let sim = xcat3_tests::SshSim::start(dir, "127.5.0.1", count, &authorized, &[]);
    c.api.xcat3(&["import", sim.export.to_str().unwrap()]).ok();
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sim.export).unwrap()).unwrap();
    let first = &export["nodes"][0]["control_info"];
    let host_key = first["os_ssh_host_keys"].as_str().unwrap().to_string();
    let known = dir.join("known_hosts");
    std::fs::write(&known, format!("* {host_key}\n")).expect("known_hosts");
    let hosts: Vec<String> = export["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .take(1_000)
        .map(|n| {
            n["control_info"]["os_address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let hostfile = dir.join("hosts");
    std::fs::write(&hostfile, hosts.join("\n")).expect("hosts");
    let cpu = |c: &Cluster| c.conductors.iter().map(|x| x.cpu_seconds()).sum::<f64>();
    let mut rows = Vec::new();
    for &n in sizes {
        let range = format!("sim[00001-{n:05}]");
        let (mut t, mut cpus) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let c0 = cpu(&c);
            t.push(timed(
                &c.api,
                n as usize,
                &["exec", &range, "--", "hostname"],
            ));
            cpus.push(cpu(&c) - c0);
        }
        rows.push((format!("xcat3 exec, {n} nodes"), median(t), median(cpus)));
    }
    let mut t = Vec::new();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let out = std::process::Command::new("pdsh")
            .args(["-R", "ssh", "-f", "64", "-l", "root", "-w"])
            .arg(format!("^{}", hostfile.display()))
            .arg("hostname")
            .env(
                "PDSH_SSH_ARGS",
                format!(
                    "-p {} -i {} -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o LogLevel=ERROR -l%u %h",
                    sim.port,
                    pdsh_key.display(),
                    known.display()
                ),
            )
            .output()
            .expect("pdsh (Debian's pdsh)");
        t.push(t0.elapsed().as_secs_f64());
        let text = String::from_utf8_lossy(&out.stdout);
        let answered = text.lines().filter(|l| l.contains(": sim")).count();
        assert_eq!(
            answered,
            hosts.len(),
            "pdsh: {answered} of {} answered\n{}",
            hosts.len(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    rows.push(("pdsh -R ssh -f 64, 1000 nodes".into(), median(t), f64::NAN));
    println!("\nexec `hostname`, xcat3-sim SSH nodes, 2 conductors, median of {rounds}:");
    println!("{:<34} {:>9} {:>16}", "", "seconds", "conductor CPU s");
    for (what, secs, cpu) in &rows {
        println!("{what:<34} {secs:>9.2} {cpu:>16.1}");
    }
    let ratio = rows[2].1 / rows[0].1;
    println!("pdsh / xcat3 on 1,000 nodes: {ratio:.1}x");
}
