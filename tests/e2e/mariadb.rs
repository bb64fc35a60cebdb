//! The same round trip on a real MariaDB (`XCAT3_TEST_DB_URL`).

use xcat3_tests::{Api, TempDir, TestDb};

#[test]
fn cli_round_trip_of_10k_nodes_on_mariadb() {
    let db = TestDb::create();
    let dir = TempDir::new("rt-mariadb");
    let api = Api::with_db(&db.url);
    super::inventory::round_trip(&api, &dir);
}

#[test]
fn concurrent_imports_never_half_write_a_node() {
    // Two imports racing for the same names and MACs: every node ends up
    // stored once, whole (with both nics), and each request reports every
    // node it sent.
    let db = TestDb::create();
    let dir = TempDir::new("race");
    let api = Api::with_db(&db.url);
    let file = xcat3_tests::write_import_file(dir.path(), 1..=3000);
    let f = file.to_str().unwrap().to_string();
    let (a, b) = std::thread::scope(|s| {
        let t1 = s.spawn(|| api.xcat3(&["import", &f]));
        let t2 = s.spawn(|| api.xcat3(&["import", &f]));
        (t1.join().unwrap(), t2.join().unwrap())
    });
    let (sa, ta) = a.summary();
    let (sb, tb) = b.summary();
    assert_eq!((ta, tb), (3000, 3000));
    assert_eq!(sa + sb, 3000, "each node created exactly once");
    let out = dir.path().join("e.json");
    api.xcat3(&["export", "node[1-3000]", "-o", out.to_str().unwrap()])
        .ok();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3000);
    assert!(
        nodes
            .iter()
            .all(|n| n["nics_info"]["nics"].as_array().unwrap().len() == 2)
    );
}

#[test]
fn db_upgrade_is_idempotent() {
    let db = TestDb::create();
    for _ in 0..2 {
        let out = std::process::Command::new(xcat3_tests::bin_dir().join("xcat3-api"))
            .args(["db", "upgrade"])
            .env("XCAT3_DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "database is up to date\n"
        );
    }
}
