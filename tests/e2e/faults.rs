//! The fault suite: a real RabbitMQ and MariaDB of the test's own (so it
//! may restart them), 3 conductors, and fleets of `xcat3-sim` IPMI BMCs.
//! Each fault is injected during a bulk power request; for each, asserted:
//! every node gets exactly one result, no node stays locked, no BMC runs
//! an action twice or after the reply, and the next request works without
//! restarting any xcat3 process. A table of faults and outcomes is
//! printed (`cargo nextest run faults --no-capture`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;
use xcat3_tests::{Broker, Conductor, MariaDb, Sim, TempDir, unique};

use super::conductors::{Cluster, cluster_env, cluster_on, env_refs};

/// Seconds a request may take (its deadline).
const REQUEST_TIMEOUT: u64 = 30;

/// One fault's observed outcome, a row of the table.
#[derive(Debug)]
struct Outcome {
    fault: &'static str,
    nodes: usize,
    /// The request was refused as a whole (nothing may then have acted).
    refused: Option<String>,
    /// Nodes with a result, and results beyond the first for a node.
    answered: usize,
    duplicates: usize,
    ok: usize,
    errors: BTreeMap<String, usize>,
    /// BMCs that ran the action (also some whose result was an error:
    /// the reply, not the action, was lost).
    acted: usize,
    /// Nodes still locked once the dust settled.
    locked: usize,
    /// BMCs that ran the action more than once.
    twice: usize,
    /// BMCs that acted after the reply had ended.
    late: usize,
    /// Seconds until the next request answered every node cleanly.
    recovered_s: Option<f64>,
    took_s: f64,
}

impl Outcome {
    fn passed(&self) -> bool {
        // Every node answered once, or the request refused as a whole with
        // nothing done.
        let answered = match self.refused {
            None => self.answered == self.nodes,
            Some(_) => self.answered == 0 && self.acted == 0,
        };
        answered
            && self.duplicates == 0
            && self.locked == 0
            && self.twice == 0
            && self.late == 0
            && self.recovered_s.is_some()
    }
}

/// An error text without conductor names and addresses, shortened, for
/// counting kinds.
fn kind(result: &str) -> String {
    let words: Vec<&str> = result
        .split_whitespace()
        .filter(|w| !w.starts_with("c-") && !w.starts_with("127."))
        .collect();
    words.join(" ").chars().take(48).collect()
}

/// What one streamed request got back.
struct Streamed {
    /// Every result line as it came, by node (a node answered twice is
    /// seen).
    seen: HashMap<String, Vec<String>>,
    id: String,
    /// The whole request was refused (status line and fault), e.g. a 503
    /// when the database was down as it arrived.
    refused: Option<String>,
}

/// `PUT /v1/nodes/power?target=T` streamed (ndjson) with curl.
fn stream_power(api: &str, range: &str, target: &str) -> Streamed {
    let url = format!(
        "{api}/v1/nodes/power?target={target}&noderange={}",
        range
            .replace('[', "%5B")
            .replace(']', "%5D")
            .replace(',', "%2C")
    );
    let header_file = std::env::temp_dir().join(format!("{}.headers", xcat3_tests::unique("curl")));
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-N",
            "-X",
            "PUT",
            "-H",
            "Accept: application/x-ndjson",
        ])
        .args(["--max-time", &(REQUEST_TIMEOUT + 60).to_string()])
        .arg("-D")
        .arg(&header_file)
        .arg(&url)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headers = std::fs::read_to_string(&header_file).unwrap_or_default();
    let _ = std::fs::remove_file(&header_file);
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = headers
        .lines()
        .find_map(|l| l.strip_prefix("xcat3-request-id: "))
        .unwrap_or_else(|| panic!("no request id in the headers: {headers:?}"))
        .trim()
        .to_string();
    let status = headers.lines().next().unwrap_or("").trim().to_string();
    if !status.contains(" 202") {
        return Streamed {
            seen: HashMap::new(),
            id,
            refused: Some(format!("{status}: {}", body.trim())),
        };
    }
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for line in body.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for (n, r) in v["nodes"].as_object().expect("nodes") {
            seen.entry(n.clone())
                .or_default()
                .push(r.as_str().unwrap_or_default().to_string());
        }
    }
    Streamed {
        seen,
        id,
        refused: None,
    }
}

/// Every BMC's chassis history (executed commands), by address.
fn histories(sim: &Sim) -> HashMap<String, Vec<String>> {
    // The state file is rewritten every 200 ms: wait for a fresh one.
    std::thread::sleep(Duration::from_millis(450));
    let text = std::fs::read_to_string(&sim.state_file).expect("sim state file");
    let all: Value = serde_json::from_str(&text).expect("state JSON");
    all.as_object()
        .unwrap()
        .iter()
        .map(|(ip, b)| {
            let h = b["chassis"]["history"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            (ip.clone(), h)
        })
        .collect()
}

/// Node name → BMC address, from a fleet's import file.
fn bmc_of(export: &std::path::Path) -> HashMap<String, String> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(export).unwrap()).unwrap();
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["control_info"]["bmc_address"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

/// The same fleet's import file with nodes named `prefix00001`… and no
/// nics (fleets' MACs and IPs repeat; power needs neither).
fn renamed(export: &std::path::Path, prefix: &str) -> std::path::PathBuf {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(export).unwrap()).unwrap();
    for n in v["nodes"].as_array_mut().unwrap() {
        let name = n["name"].as_str().unwrap().replacen("sim", prefix, 1);
        n["name"] = Value::String(name);
        n.as_object_mut().unwrap().remove("nics_info");
    }
    let path = export.with_extension(format!("{prefix}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

/// A fleet of simulated BMCs as the suite drives it.
struct Fleet {
    sim: Sim,
    /// Node name → BMC address.
    bmcs: HashMap<String, String>,
    /// The noderange of all its nodes.
    range: &'static str,
    /// Loses packets: its nodes cannot all answer cleanly, even when
    /// nothing else is wrong.
    lossy: bool,
}

struct Bench<'a> {
    cluster: &'a Cluster,
    db: &'a MariaDb,
}

impl Bench<'_> {
    fn locked(&self) -> usize {
        let out = self
            .db
            .sql("SELECT COUNT(*) FROM faults.nodes WHERE reservation IS NOT NULL");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(usize::MAX)
    }

    /// Runs `power` `target` on the whole `fleet` while `fault` runs on
    /// another thread, then checks everything the suite promises.
    fn run(
        &self,
        name: &'static str,
        fleet: &Fleet,
        target: &str,
        fault: impl FnOnce() + Send,
    ) -> (Outcome, String) {
        let Fleet {
            sim,
            bmcs,
            range,
            lossy,
        } = fleet;
        let before = histories(sim);
        let started = Instant::now();
        let api = self.cluster.api.url.clone();
        let Streamed {
            seen,
            id: request_id,
            refused,
        } = std::thread::scope(|s| {
            let request = s.spawn(|| stream_power(&api, range, target));
            fault();
            request.join().expect("request thread")
        });
        let took_s = started.elapsed().as_secs_f64();
        let after = histories(sim);
        std::thread::sleep(Duration::from_secs(3));
        let later = histories(sim);

        let mut o = Outcome {
            fault: name,
            nodes: bmcs.len(),
            answered: seen.len(),
            refused,
            duplicates: seen.values().map(|r| r.len() - 1).sum(),
            ok: 0,
            errors: BTreeMap::new(),
            acted: 0,
            locked: 0,
            twice: 0,
            late: 0,
            recovered_s: None,
            took_s,
        };
        // Every BMC of the fleet: acted at all, or after the reply.
        for ip in bmcs.values() {
            if after[ip].len() > before[ip].len() {
                o.acted += 1;
            }
            if later[ip] != after[ip] {
                o.late += 1;
            }
        }
        for (node, results) in &seen {
            let ip = &bmcs[node];
            let new = after[ip].len() - before[ip].len();
            if results[0] == "ok" {
                o.ok += 1;
                // Reported done: done exactly once.
                if new != 1 {
                    o.twice += 1;
                }
            } else {
                *o.errors.entry(kind(&results[0])).or_default() += 1;
                if new > 1 {
                    o.twice += 1;
                }
            }
        }
        // Locks: a conductor releases its own at once; a dead one's are
        // freed by the survivors once it counts as dead.
        let deadline = Instant::now() + Duration::from_secs(30);
        o.locked = loop {
            let n = self.locked();
            if n == 0 || Instant::now() > deadline {
                break n;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        // The next request, without restarting anything.
        let t = Instant::now();
        let deadline = t + Duration::from_secs(90);
        while Instant::now() < deadline {
            let r = self.cluster.power(range, "status");
            // A lossy fleet cannot answer cleanly; every node answering
            // (each with one result) is what "working" means there.
            let clean = r.values().all(|v| v == "on" || v == "off");
            if r.len() == bmcs.len() && (clean || *lossy) {
                o.recovered_s = Some(t.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        eprintln!("{o:?}");
        (o, request_id)
    }
}

fn table(rows: &[Outcome]) -> String {
    let mut s = String::from(
        "\n| fault | nodes | answered | more than once | ok | errors | BMCs acted | locked after | acted twice | acted after reply | next request | took |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in rows {
        let errors = if let Some(r) = &o.refused {
            format!(
                "request refused: {}",
                r.chars().take(80).collect::<String>()
            )
        } else if o.errors.is_empty() {
            "-".to_string()
        } else {
            o.errors
                .iter()
                .map(|(k, n)| format!("{n}× {k}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |\n",
            o.fault,
            o.nodes,
            o.answered,
            o.duplicates,
            o.ok,
            errors,
            o.acted,
            o.locked,
            o.twice,
            o.late,
            o.recovered_s
                .map(|s| format!("ok after {s:.1} s"))
                .unwrap_or_else(|| "FAILED".into()),
            o.took_s
        ));
    }
    s
}

#[test]
fn faults_during_bulk_power_requests() {
    let dir = TempDir::new("faults");
    let db = MariaDb::start(dir.path());
    let url = db.url("faults");
    let broker = Broker::start();
    let cluster = cluster_on(&url, &broker.url(), 3, REQUEST_TIMEOUT);
    let sim = Sim::start(dir.path(), "127.30.0.1", 5000, &["--latency-ms", "2"]);
    let lossy_sim = Sim::start(dir.path(), "127.31.0.1", 300, &["--drop-rate", "0.3"]);
    let lossy_file = renamed(&lossy_sim.export, "lossy");
    for f in [&sim.export, &lossy_file] {
        cluster.api.xcat3(&["import", f.to_str().unwrap()]).ok();
    }
    let fleet = Fleet {
        bmcs: bmc_of(&sim.export),
        sim,
        range: "sim[00001-05000]",
        lossy: false,
    };
    let lossy = Fleet {
        bmcs: bmc_of(&lossy_file),
        sim: lossy_sim,
        range: "lossy[00001-00300]",
        lossy: true,
    };
    let bench = Bench {
        cluster: &cluster,
        db: &db,
    };
    let mut rows = Vec::new();

    // 1. RabbitMQ restarted mid-request.
    let (row, request_id) = bench.run("RabbitMQ restarted", &fleet, "on", || {
        std::thread::sleep(Duration::from_millis(300));
        broker.restart();
    });
    // The reply path died with the broker, not the work: conductors had
    // recorded each result before sending it, so every node whose BMC
    // acted is reported ok, and none that acted is reported lost.
    assert_eq!(row.ok, row.acted, "{row:?}");
    rows.push(row);
    let shown = cluster.api.xcat3(&["history", &request_id]);
    let history = xcat3_tests::node_results(&shown.stdout());
    assert_eq!(
        history.values().filter(|r| *r == "ok").count(),
        rows[0].acted,
        "the history holds the true results"
    );
    // The API's request id is in the conductors' log lines for the work.
    assert!(
        cluster
            .conductors
            .iter()
            .all(|c| c.log_text().contains(&format!("request_id={request_id}"))),
        "{request_id} not in every conductor's log"
    );

    // 2. MariaDB killed mid-request, back 3 s later.
    rows.push(
        bench
            .run("MariaDB killed, back in 3 s", &fleet, "off", || {
                std::thread::sleep(Duration::from_millis(300));
                db.restart(Duration::from_secs(3));
            })
            .0,
    );

    // 3. A conductor SIGKILLed and another added mid-request.
    let env = cluster_env(&url, &broker.url(), REQUEST_TIMEOUT);
    let extra_name = unique("c-added");
    let mut added: Option<Conductor> = None;
    rows.push(
        bench
            .run("conductor SIGKILLed + one added", &fleet, "on", || {
                std::thread::sleep(Duration::from_millis(200));
                cluster.conductors[1].kill9();
                added = Some(Conductor::start(
                    &extra_name,
                    cluster.dir.path(),
                    &env_refs(&env),
                ));
            })
            .0,
    );
    assert!(added.is_some());
    // The dead conductor's nodes fail when its heartbeats stop, well
    // before the 30 s deadline, saying so.
    let killed = rows.last().unwrap();
    assert!(
        killed
            .errors
            .keys()
            .all(|k| k.starts_with("conductor stopped heartbeating")),
        "{:?}",
        killed.errors
    );

    // 4. A fleet losing 30% of the packets each way: some nodes fail
    // (every exchange of a session must get through); retrying the failed
    // ones converges.
    let (row, mut id) = bench.run("30% packet loss (300 BMCs)", &lossy, "on", || {});
    let mut failed = row.nodes - row.ok;
    rows.push(row);
    // A BMC whose Close Session replies were lost keeps those sessions
    // (4 at most, as on real BMCs) until they idle out after 60 s, and
    // refuses new ones meanwhile: rounds go on for up to 90 s.
    let mut rounds = Vec::new();
    let retrying_since = Instant::now();
    while failed > 0 && retrying_since.elapsed() < Duration::from_secs(90) {
        if !rounds.is_empty() {
            std::thread::sleep(Duration::from_secs(5));
        }
        let run = cluster.api.xcat3(&["power", "--retry-failed", &id]);
        let (ok, total) = run.summary();
        rounds.push(format!("{ok}/{total}"));
        failed = total - ok;
        for line in run
            .stdout()
            .lines()
            .filter(|l| l.contains(": ") && !l.ends_with(": ok"))
        {
            eprintln!("retry round {}: {line}", rounds.len());
        }
        if failed > 0 {
            id = run.retry_hint();
        }
    }
    let converged = format!(
        "30% loss: `power --retry-failed` rounds (ok/retried): {}",
        rounds.join(", ")
    );

    let text = format!("{}\n{converged}\n", table(&rows));
    println!("{text}");
    eprintln!("{text}");
    let failed_after_retries = failed;
    let failed: Vec<&Outcome> = rows.iter().filter(|o| !o.passed()).collect();
    assert!(failed.is_empty(), "faults not survived:{text}");
    assert_eq!(failed_after_retries, 0, "retries did not converge: {text}");
}
