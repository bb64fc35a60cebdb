//! Conductors over real RabbitMQ and MariaDB: placement by the ring,
//! exactly one result per node, a conductor killed mid-request, a broker
//! restarted, and a request that expires before a frozen conductor thaws.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use xcat3_tests::{Api, Broker, Conductor, TempDir, TestDb, unique, wait_until};

/// XCAT3_* settings shared by the API and conductors of one test cluster:
/// fast heartbeats so liveness changes within seconds.
pub(crate) fn cluster_env(
    db: &str,
    amqp: &str,
    request_timeout: u64,
) -> Vec<(&'static str, String)> {
    vec![
        ("XCAT3_DATABASE_URL", db.to_string()),
        ("XCAT3_BUS_URL", amqp.to_string()),
        ("XCAT3_CONDUCTOR_HEARTBEAT_INTERVAL", "1".into()),
        ("XCAT3_CONDUCTOR_HEARTBEAT_TIMEOUT", "4".into()),
        ("XCAT3_API_REQUEST_TIMEOUT", request_timeout.to_string()),
    ]
}

pub(crate) fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn shared_amqp() -> String {
    std::env::var("XCAT3_TEST_AMQP_URL").expect(
        "XCAT3_TEST_AMQP_URL is not set: run scripts/test, which starts a throwaway RabbitMQ",
    )
}

pub(crate) struct Cluster {
    pub(crate) api: Api,
    pub(crate) conductors: Vec<Conductor>,
    pub(crate) dir: TempDir,
}

/// An API, then `hosts` conductors (unique names: tests share a broker).
fn cluster(db: &TestDb, amqp: &str, hosts: usize, request_timeout: u64) -> Cluster {
    cluster_on(&db.url, amqp, hosts, request_timeout)
}

/// [`cluster`] on any database URL.
pub(crate) fn cluster_on(db: &str, amqp: &str, hosts: usize, request_timeout: u64) -> Cluster {
    let env = cluster_env(db, amqp, request_timeout);
    let api = Api::start(&["--listen", "127.0.0.1:0"], &env_refs(&env));
    let dir = TempDir::new("conductors");
    let prefix = unique("c");
    let conductors: Vec<Conductor> = (1..=hosts)
        .map(|i| Conductor::start(&format!("{prefix}-{i}"), dir.path(), &env_refs(&env)))
        .collect();
    let c = Cluster {
        api,
        conductors,
        dir,
    };
    c.wait_online(hosts);
    c
}

impl Cluster {
    pub(crate) fn wait_online(&self, n: usize) {
        wait_until(60, "conductors to come online", || {
            let out = self.api.xcat3(&["service-list"]).stdout();
            (out.matches(": online").count() == n).then_some(())
        });
    }

    /// `xcat3 ring RANGE` as a map node → host.
    fn ring(&self, range: &str) -> HashMap<String, String> {
        self.api
            .xcat3(&["ring", range])
            .ok()
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(n, h)| (n.to_string(), h.to_string()))
            .collect()
    }

    /// `xcat3 --json power RANGE STATE` as a map node → result.
    pub(crate) fn power(&self, range: &str, state: &str) -> HashMap<String, String> {
        let run = self.api.xcat3(&["--json", "power", range, state]);
        let v: Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("{e}: {} {}", run.stdout(), run.stderr()));
        v["nodes"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    }
}

fn create_fake_nodes(api: &Api, range: &str, delay_ms: u64) {
    let ctl = format!("fake_delay_ms={delay_ms}");
    let run = api.xcat3(&["create", range, "mgt=fake", "-c", &ctl]);
    assert_eq!(run.summary().0, run.summary().1, "{}", run.stdout());
}

#[test]
fn three_conductors_split_3000_nodes_by_the_ring() {
    let db = TestDb::create();
    let c = cluster(&db, &shared_amqp(), 3, 60);
    create_fake_nodes(&c.api, "node[1-3000]", 0);

    let results = c.power("node[1-3000]", "status");
    assert_eq!(results.len(), 3000, "exactly one result per node");
    assert!(
        results.values().all(|r| r == "off"),
        "{:?}",
        results.values().find(|r| *r != "off")
    );

    // Each conductor acted on exactly the nodes the ring gives it.
    let ring = c.ring("node[1-3000]");
    assert_eq!(ring.len(), 3000);
    for cond in &c.conductors {
        let owned = ring.values().filter(|h| **h == cond.host).count();
        assert!(owned > 500, "{} owns only {owned}", cond.host);
        let handled = wait_until(10, "the conductor's log", || {
            let h = cond.handled();
            (h > 0).then_some(h)
        });
        assert_eq!(
            handled, owned,
            "{} handled {handled}, ring gives it {owned}",
            cond.host
        );
    }

    let results = c.power("node[1-3000]", "on");
    assert_eq!(results.len(), 3000);
    assert!(results.values().all(|r| r == "ok"));
    let results = c.power("node[1-3000]", "status");
    let bad: Vec<_> = results.iter().filter(|(_, r)| *r != "on").take(3).collect();
    let logs: Vec<String> = c
        .conductors
        .iter()
        .flat_map(|k| {
            k.log_text()
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", logs.join("\n"));
}

#[test]
fn a_killed_conductor_reports_errors_then_its_nodes_move() {
    let db = TestDb::create();
    let c = cluster(&db, &shared_amqp(), 3, 8);
    // 3 s per node keeps every conductor busy when one is killed.
    create_fake_nodes(&c.api, "node[1-3000]", 3000);
    let ring = c.ring("node[1-3000]");
    let victim = c.conductors[2].host.clone();

    let results = std::thread::scope(|s| {
        let run = s.spawn(|| c.power("node[1-3000]", "on"));
        std::thread::sleep(Duration::from_millis(1500));
        c.conductors[2].kill9();
        run.join().unwrap()
    });
    assert_eq!(
        results.len(),
        3000,
        "every node gets a result, dead owner or not"
    );
    for (node, r) in &results {
        if ring[node] == victim {
            // Failed once its heartbeats stop (about 4 s after the kill),
            // or at the 8 s deadline should that check come late.
            assert!(
                r == &format!("timeout: conductor {victim} did not answer")
                    || r.starts_with(&format!("conductor {victim} stopped heartbeating")),
                "{node}: {r}"
            );
        } else {
            assert_eq!(r, "ok", "{node}");
        }
    }

    // After the liveness timeout the ring drops it and its locks are freed.
    wait_until(30, "the ring to drop the dead conductor", || {
        (!c.ring("node[1-3000]").values().any(|h| *h == victim)).then_some(())
    });
    wait_until(30, "the dead conductor's locks to be released", || {
        let shown = c
            .api
            .xcat3(&["--json", "show", "node[1-3000]", "-i", "reservation"])
            .stdout();
        (!shown.contains(&victim)).then_some(())
    });
    let run = c
        .api
        .xcat3(&["update", "node[1-3000]", "control/fake_delay_ms=0"]);
    assert_eq!(run.summary(), (3000, 3000));
    let results = c.power("node[1-3000]", "on");
    assert_eq!(results.len(), 3000);
    let bad: Vec<_> = results.iter().filter(|(_, r)| *r != "ok").take(3).collect();
    assert!(bad.is_empty(), "the two survivors take all nodes: {bad:?}");
    drop(c.dir);
}

#[test]
fn api_and_conductors_recover_from_a_broker_restart() {
    let db = TestDb::create();
    let broker = Broker::start();
    let c = cluster(&db, &broker.url(), 2, 10);
    create_fake_nodes(&c.api, "node[1-200]", 0);
    assert!(
        c.power("node[1-200]", "status")
            .values()
            .all(|r| r == "off")
    );

    broker.restart();
    // No process is restarted: lapin reconnects and replays the topology.
    wait_until(60, "actions to work again after the broker restart", || {
        let r = c.power("node[1-200]", "status");
        (r.len() == 200 && r.values().all(|v| v == "off")).then_some(())
    });
    let r = c.power("node[1-200]", "on");
    assert_eq!(r.len(), 200);
    assert!(r.values().all(|v| v == "ok"), "{r:?}");
}

#[test]
fn an_expired_request_is_not_run_by_a_conductor_that_comes_back_late() {
    let db = TestDb::create();
    let c = cluster(&db, &shared_amqp(), 1, 2);
    create_fake_nodes(&c.api, "node[1-50]", 0);
    let frozen = &c.conductors[0];
    frozen.pause();
    let r = c.power("node[1-50]", "on");
    assert_eq!(r.len(), 50);
    assert!(
        r.values().all(|v| v.starts_with("timeout: conductor")),
        "{r:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    frozen.resume();
    // It is back (heartbeats again) but must not have powered anything on.
    c.wait_online(1);
    std::thread::sleep(Duration::from_secs(1));
    let r = c.power("node[1-50]", "status");
    assert_eq!(r.len(), 50);
    assert!(
        r.values().all(|v| v == "off"),
        "an expired power-on ran late: {r:?}"
    );
    // Only the status request ran; the expired one was dropped (by the
    // conductor, or by RabbitMQ's per-message expiration).
    let log = frozen.log_text();
    assert_eq!(log.matches("request done").count(), 1, "{log}");
}

/// Takeover: nodes deploying on a conductor that is SIGKILLed are re-created
/// by their new owner in the ring (reservation, install entry, answer files,
/// same one-time token, kernel fetched from the API host over HTTP), and
/// their installers' callbacks still work. So are nodes `booted` from a
/// stateless image (they boot it again at their next start).
#[test]
fn deploying_nodes_of_a_killed_conductor_are_taken_over() {
    let db = TestDb::create();
    let dir = TempDir::new("takeover");
    let mut env = cluster_env(&db.url, &shared_amqp(), 20);
    env.push((
        "XCAT3_API_INSTALL_DIR",
        dir.path().join("install").display().to_string(),
    ));
    env.push((
        "XCAT3_GENIMAGE_CACHE_DIR",
        xcat3_tests::genimage_cache_dir(),
    ));
    let api = Api::start(&["--listen", "127.0.0.1:0"], &env_refs(&env));
    env.extend([
        ("XCAT3_BOOT_API_URL", api.url.clone()),
        ("XCAT3_BOOT_SERVER_ADDRESS", "127.0.0.1".to_string()),
        ("XCAT3_DHCP_BACKEND", "none".to_string()),
    ]);
    let prefix = unique("t");
    let ports = [xcat3_tests::free_tcp_port(), xcat3_tests::free_tcp_port()];
    let conductors: Vec<Conductor> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let mut e = env.clone();
            e.push(("XCAT3_BOOT_HTTP_LISTEN", format!("127.0.0.1:{port}")));
            Conductor::start(&format!("{prefix}-{i}"), dir.path(), &env_refs(&e))
        })
        .collect();
    let c = Cluster {
        api,
        conductors,
        dir,
    };
    c.wait_online(2);
    let kernel = vec![3u8; 8192];
    let iso = xcat3_tests::make_rocky_iso(c.dir.path(), &kernel, &kernel);
    c.api.xcat3(&["copycds", iso.to_str().unwrap()]).ok();
    c.api
        .xcat3(&[
            "network-create",
            "lab",
            "subnet=127.0.9.0",
            "netmask=255.255.255.0",
        ])
        .ok();
    c.api
        .xcat3(&["passwd-create", "system", "password=cluster"])
        .ok();
    // Node addresses on loopback: the callback is taken only from the
    // node's own address, and curl can call from there.
    let nodes: Vec<Value> = (1..=30)
        .map(|i| {
            serde_json::json!({"name": format!("d{i}"), "mgt": "fake", "nics_info": {"nics": [
                {"mac": format!("02:00:5e:00:09:{i:02x}"), "ip": format!("127.0.9.{}", 100 + i), "primary": true}]}})
        })
        .collect();
    let f = c.dir.path().join("nodes.json");
    std::fs::write(&f, serde_json::json!({ "nodes": nodes }).to_string()).unwrap();
    c.api.xcat3(&["import", f.to_str().unwrap()]).ok();
    let run = c
        .api
        .xcat3(&["deploy", "d[1-20]", "--osimage", "rocky9.3-x86_64"]);
    assert_eq!(run.summary(), (20, 20), "{}", run.stdout());
    // d21-d30 boot a stateless image and are booted.
    let built = c
        .api
        .xcat3(&["genimage", "st", "--distro", "debian12"])
        .ok();
    assert!(built.contains("st: created"), "{built}");
    let run = c.api.xcat3(&["deploy", "d[21-30]", "--osimage", "st"]);
    assert_eq!(run.summary(), (10, 10), "{}", run.stdout());

    let ring = c.ring("d[1-30]");
    let victim = c.conductors[0].host.clone();
    let on_victim = |range: std::ops::RangeInclusive<u32>| -> Vec<u32> {
        range.filter(|i| ring[&format!("d{i}")] == victim).collect()
    };
    let (moved, moved_booted) = (on_victim(1..=20), on_victim(21..=30));
    assert!(
        !moved.is_empty() && !moved_booted.is_empty(),
        "the ring gives the first conductor some nodes of each kind"
    );
    let script = |port: u16, i: u32| -> Option<String> {
        let out = std::process::Command::new("curl")
            .args([
                "-sf",
                &format!("http://127.0.0.1:{port}/ipxe/02-00-5e-00-09-{i:02x}"),
            ])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let token = |s: &str| {
        s.split_whitespace()
            .find_map(|w| w.strip_prefix("xcat3.token="))
            .unwrap()
            .to_string()
    };
    let before: Vec<(u32, String)> = moved
        .iter()
        .map(|i| {
            (
                *i,
                token(&script(ports[0], *i).expect("served by its owner")),
            )
        })
        .collect();
    assert!(
        script(ports[1], moved[0]).is_none(),
        "not yet on the other conductor"
    );
    let booted: Vec<(u32, String)> = moved_booted
        .iter()
        .map(|i| {
            let t = token(&script(ports[0], *i).expect("served by its owner"));
            let (code, reply) = super::deploy::callback(
                &c.api,
                &format!("127.0.9.{}", 100 + i),
                &format!("d{i}"),
                &format!(r#"{{"token":"{t}","step":"done"}}"#),
            );
            assert_eq!(code, 200, "{reply}");
            assert!(reply.contains("booted"), "{reply}");
            (*i, t)
        })
        .collect();

    c.conductors[0].kill9();
    // The survivor owns them once the victim's heartbeat is stale, and its
    // periodic pass re-creates their boot files with the same tokens.
    for (i, t) in &before {
        let s = wait_until(40, "the survivor to take the node over", || {
            script(ports[1], *i)
        });
        assert!(
            s.contains(&format!(
                "http://127.0.0.1:{}/images/rocky9.3-x86_64/kernel",
                ports[1]
            )),
            "{s}"
        );
        assert_eq!(&token(&s), t, "d{i} keeps its token");
    }
    for (i, t) in &booted {
        let s = wait_until(40, "the survivor to take the booted node over", || {
            script(ports[1], *i)
        });
        assert!(s.contains("boot image st"), "{s}");
        assert_eq!(&token(&s), t, "d{i} keeps its token");
        let shown = c.api.xcat3(&["show", &format!("d{i}"), "-i", "state"]).ok();
        assert!(shown.contains("\"booted\""), "{shown}");
    }
    assert!(
        std::fs::read_to_string(&c.conductors[1].log)
            .unwrap()
            .contains("image fetched from the API host")
    );
    let shown = c
        .api
        .xcat3(&[
            "show",
            &format!("d{}", before[0].0),
            "-i",
            "state,conductor",
        ])
        .ok();
    assert!(
        shown.contains("deploying") && shown.contains(&c.conductors[1].host),
        "{shown}"
    );
    // The installer's callback with its original token still completes it.
    let (i, t) = &before[0];
    let out = std::process::Command::new("curl")
        .args(["--interface", &format!("127.0.9.{}", 100 + i)])
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
        ])
        .arg(format!("{{\"token\":\"{t}\"}}"))
        .arg(format!(
            "{}/v1/nodes/provision/callback?name=d{i}",
            c.api.url
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = script(ports[1], *i).unwrap();
    assert!(s.contains("boots from its disk"), "{s}");
}

/// The API that took a request is SIGKILLed while the conductors work:
/// they record every node's result in the history as they reply, so
/// another API's `xcat3 history ID` shows the true results.
#[test]
fn another_api_shows_the_results_when_the_first_dies() {
    let db = TestDb::create();
    let amqp = shared_amqp();
    let c = cluster(&db, &amqp, 2, 30);
    let env = cluster_env(&db.url, &amqp, 30);
    let other = Api::start(&["--listen", "127.0.0.1:0"], &env_refs(&env));
    create_fake_nodes(&c.api, "d[1-40]", 1500);
    let mut cli = std::process::Command::new(xcat3_tests::bin_dir().join("xcat3"))
        .args(["power", "d[1-40]", "on"])
        .env("XCAT3_URL", &c.api.url)
        .env("XCAT3_MAX_RETRIES", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    c.api.kill9();
    let _ = cli.wait();
    let id = wait_until(10, "the request in the history", || {
        let out = other.xcat3(&["history", "--limit", "1"]).stdout();
        out.contains("power on")
            .then(|| out.split_whitespace().next().unwrap().to_string())
    });
    let results = wait_until(20, "every node's result in the history", || {
        let out = other.xcat3(&["history", &id]).stdout();
        let r = xcat3_tests::node_results(&out);
        let nodes: HashMap<&String, &String> =
            r.iter().filter(|(n, _)| n.starts_with('d')).collect();
        (nodes.len() == 40).then_some(r)
    });
    let ok = results
        .iter()
        .filter(|(n, r)| n.starts_with('d') && *r == "ok")
        .count();
    assert_eq!(ok, 40, "{results:?}");
    // The nodes really are on (the conductors recorded their states too).
    let status = other.xcat3(&["power", "d[1-40]", "status"]).stdout();
    assert_eq!(
        xcat3_tests::node_results(&status)
            .values()
            .filter(|v| *v == "on")
            .count(),
        40,
        "{status}"
    );
}
