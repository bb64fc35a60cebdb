//! Running it for real, through the binaries: API tokens made with
//! `xcat3-api token`, used by the `xcat3` CLI, refused once revoked; the
//! request history and `power --retry-failed`.

use std::process::Command;

use xcat3_tests::{Api, TempDir, bin_dir, node_results};

/// `xcat3-api --standalone --data-dir DIR token ARGS` (the API's own
/// database, no running API needed).
fn token_cmd(dir: &TempDir, args: &[&str]) -> std::process::Output {
    Command::new(bin_dir().join("xcat3-api"))
        .args([
            "--standalone",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "token",
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run xcat3-api token")
}

fn create_token(dir: &TempDir, name: &str, role: &str) -> String {
    let out = token_cmd(dir, &["create", name, "--role", role]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(text.starts_with("xc3_"), "{text}");
    text
}

#[test]
fn tokens_with_roles_through_the_cli() {
    let dir = TempDir::new("auth");
    let admin = create_token(&dir, "ann", "admin");
    let operator = create_token(&dir, "otto", "operator");
    let reader = create_token(&dir, "rita", "reader");
    let bad = token_cmd(&dir, &["create", "x", "--role", "root"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--role: `root` is not one of"));
    let dup = token_cmd(&dir, &["create", "ann", "--role", "reader"]);
    assert!(String::from_utf8_lossy(&dup.stderr).contains("\"ann\" exists"));

    let api = Api::standalone_with(dir.path(), &[("XCAT3_API_AUTH", "token")]);
    let run = api.xcat3(&["list"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains("authentication required"),
        "{}",
        run.stderr()
    );

    let run = api.xcat3_as(Some(&reader), &["create", "n[1-5]", "mgt=fake"]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("has role reader"), "{}", run.stderr());
    api.xcat3_as(Some(&admin), &["create", "n[1-5]", "mgt=fake"])
        .ok();
    assert_eq!(
        api.xcat3_as(Some(&reader), &["list"]).ok().lines().count(),
        5
    );

    let run = api.xcat3_as(Some(&reader), &["power", "n[1-5]", "on"]);
    assert!(run.stderr().contains("needs operator"), "{}", run.stderr());
    let out = api
        .xcat3_as(Some(&operator), &["power", "n[1-5]", "on"])
        .ok();
    assert_eq!(
        node_results(&out).values().filter(|r| *r == "ok").count(),
        5
    );
    let run = api.xcat3_as(Some(&operator), &["delete", "n1"]);
    assert!(run.stderr().contains("needs admin"), "{}", run.stderr());

    // The history names who asked.
    let out = api.xcat3_as(Some(&reader), &["history"]).ok();
    assert!(out.contains("power on: 5 nodes, all ok by otto"), "{out}");

    let list = token_cmd(&dir, &["list"]);
    let list = String::from_utf8(list.stdout).unwrap();
    for (name, role) in [("ann", "admin"), ("otto", "operator"), ("rita", "reader")] {
        assert!(list.contains(&format!("{name}: {role}")), "{list}");
    }
    for secret in [&admin, &operator, &reader] {
        let tail = secret.rsplit('_').next().unwrap();
        assert!(!list.contains(tail), "token list shows a secret");
    }
    // Revoked while the API runs: refused on the next request.
    let out = token_cmd(&dir, &["revoke", "otto"]);
    assert!(out.status.success());
    let run = api.xcat3_as(Some(&operator), &["power", "n[1-5]", "off"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr().contains("unknown or revoked"),
        "{}",
        run.stderr()
    );
    let again = token_cmd(&dir, &["revoke", "otto"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("no token is named"));
}

#[test]
fn history_and_retry_of_failed_nodes() {
    let dir = TempDir::new("history");
    let api = Api::standalone(dir.path());
    api.xcat3(&["create", "h[1-20]", "mgt=fake"]).ok();
    api.xcat3(&["update", "h[3,7,11]", "control/fake_fail_rate=1"])
        .ok();
    let run = api.xcat3(&["power", "h[1-20]", "on"]);
    assert_eq!(run.code(), 1);
    assert_eq!(run.summary(), (17, 20));
    let id = run.retry_hint();

    let out = api.xcat3(&["history", &id]).ok_or_code(1);
    let results = node_results(&out);
    assert_eq!(results.len(), 20);
    assert_eq!(results["h3"], "fake: injected failure");

    // The nodes are fixed; only they run again.
    api.xcat3(&["update", "h[3,7,11]", "control/fake_fail_rate=0"])
        .ok();
    let run = api.xcat3(&["power", "--retry-failed", &id]);
    let out = run.ok();
    let again = node_results(&out);
    assert_eq!(
        again.keys().cloned().collect::<Vec<_>>(),
        ["h11", "h3", "h7"]
    );
    assert!(again.values().all(|r| r == "ok"), "{again:?}");
    assert!(
        run.stderr().contains("retrying 3 failed nodes"),
        "{}",
        run.stderr()
    );

    let out = api.xcat3(&["history", "--limit", "5"]).ok();
    assert!(out.contains("power on: 20 nodes, 3 failed"), "{out}");
    assert!(out.contains("power on: 3 nodes, all ok"), "{out}");
    let run = api.xcat3(&["power", "--retry-failed", "req-unknown"]);
    assert!(
        run.stderr().contains("could not be found"),
        "{}",
        run.stderr()
    );
    // Not a power request.
    let run = api.xcat3(&["bootdev", "h1", "net"]);
    run.ok();
    let last = api.xcat3(&["history", "--limit", "1"]).ok();
    let last_id = last.split_whitespace().next().unwrap();
    let run = api.xcat3(&["power", "--retry-failed", last_id]);
    assert!(
        run.stderr().contains("not a power request"),
        "{}",
        run.stderr()
    );
}
