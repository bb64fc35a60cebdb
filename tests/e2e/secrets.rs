//! Secrets at rest: a standalone's database holds no BMC password in
//! clear (read back with SQL, through Python's sqlite3), the key opens
//! them again after a restart, a wrong key stops the API at start with a
//! clear error, rows written in clear are encrypted at the next start,
//! and `secrets rotate` re-encrypts everything under a new key.

use std::path::Path;
use std::process::Command;

use xcat3_tests::{Api, TempDir, bin_dir};

/// Every `control_info` stored for nodes and groups, through SQL.
fn stored(data: &Path) -> String {
    let db = data.join("xcat3.db");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print('\\n'.join(r[0] for r in c.execute('SELECT control_info FROM nodes UNION ALL SELECT control_info FROM nodegroups')))",
        ])
        .arg(&db)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sql(data: &Path, statement: &str) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()",
        ])
        .arg(data.join("xcat3.db"))
        .arg(statement)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `xcat3-api --standalone --data-dir DATA ARGS` to its end.
fn api_cmd(data: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(bin_dir().join("xcat3-api"))
        .args([
            "--standalone",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .envs(env.iter().copied())
        .env("XCAT3_BOOT_HTTP_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run xcat3-api")
}

fn password_of(api: &Api, dir: &TempDir, node: &str) -> String {
    let f = dir.path().join(format!("{node}.json"));
    api.xcat3(&["export", node, "-o", f.to_str().unwrap(), "--with-secrets"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    v["nodes"][0]["control_info"]["bmc_password"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn secrets_are_encrypted_at_rest_and_need_the_key() {
    let dir = TempDir::new("secrets");
    let data = dir.path().join("data");
    let api = Api::standalone(&data);
    api.xcat3(&[
        "create",
        "n1",
        "mgt=ipmi",
        "-c",
        "bmc_address=10.0.0.1,bmc_password=Bmc-Pass-One",
    ])
    .ok();
    api.xcat3(&[
        "group-create",
        "compute",
        "-c",
        "bmc_username=admin,bmc_password=Group-Pass",
    ])
    .ok();
    assert!(api.stop().success());
    let text = stored(&data);
    assert!(
        !text.contains("Bmc-Pass-One") && !text.contains("Group-Pass"),
        "{text}"
    );
    assert!(
        text.contains("\"bmc_password\":\"enc:v1:") && text.contains("10.0.0.1"),
        "{text}"
    );

    // A row written in clear (before a key was set) is encrypted at start.
    sql(
        &data,
        "UPDATE nodes SET control_info = '{\"bmc_address\":\"10.0.0.2\",\"bmc_password\":\"Clear-Pass\"}' WHERE name = 'n1'",
    );
    let api = Api::standalone(&data);
    assert_eq!(
        password_of(&api, &dir, "n1"),
        "Clear-Pass",
        "the key opens them"
    );
    assert!(api.stop().success());
    let text = stored(&data);
    assert!(!text.contains("Clear-Pass"), "{text}");

    // Rotation: everything re-encrypted under the new key; the old one
    // no longer opens them, and the API refuses to start with it.
    let new_key = dir.path().join("new.key");
    let out = api_cmd(
        &data,
        &[],
        &["secrets", "new-key", new_key.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = api_cmd(
        &data,
        &[],
        &[
            "secrets",
            "rotate",
            "--new-key-file",
            new_key.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("re-encrypted the secrets of 1 node(s) and 1 group(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = api_cmd(&data, &[], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("opening the stored secrets with [secrets] key_file")
            && err.contains("cannot be decrypted with [secrets] key_file (wrong key?)"),
        "{err}"
    );
    assert!(!err.contains("Clear-Pass"), "{err}");
    let api = Api::standalone_with(
        &data,
        &[("XCAT3_SECRETS_KEY_FILE", new_key.to_str().unwrap())],
    );
    assert_eq!(password_of(&api, &dir, "n1"), "Clear-Pass");
}
