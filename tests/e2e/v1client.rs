//! The prototype's own Python client (`tests/peers/python-xcat3client`)
//! against xcat3: its export → delete → import recreates every node, and
//! the `xcat3` CLI's `export --with-secrets` is a backup that loses
//! nothing.

use serde_json::Value;
use xcat3_tests::{Api, TempDir, v1_client_port, write_import_file};

fn api(dir: &TempDir) -> Api {
    let listen = format!("127.0.0.1:{}", v1_client_port());
    let data = dir.path().join("data");
    Api::start(
        &[
            "--standalone",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &listen,
        ],
        &[],
    )
}

#[test]
fn the_v1_clients_export_delete_import_recreates_every_node() {
    let dir = TempDir::new("v1-export");
    let api = api(&dir);
    let file = write_import_file(dir.path(), 1..=50);
    assert_eq!(
        api.xcat3(&["import", file.to_str().unwrap()]).summary(),
        (50, 50)
    );

    let out = dir.path().join("v1-export.json");
    let run = api.v1_client(&["export", "node[1-50]", "-o", out.to_str().unwrap()]);
    assert!(run.0.status.success(), "{}{}", run.stdout(), run.stderr());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("******"),
        "the v1 client writes the masks it is shown"
    );

    let run = api.v1_client(&["delete", "node[1-50]"]);
    assert!(
        run.stdout().contains("Success: 50  Total: 50"),
        "{}",
        run.stdout()
    );
    let run = api.v1_client(&["import", out.to_str().unwrap()]);
    assert!(
        run.0.status.success() && run.stdout().contains("Success: 50  Total: 50"),
        "{}{}",
        run.stdout(),
        run.stderr()
    );
    // Everything but the secrets came back; the secrets are unset, not
    // the mask stored as a password.
    let shown: Value = serde_json::from_str(&api.xcat3(&["show", "node42"]).ok()).unwrap();
    let attr = &shown[0]["attr"];
    assert_eq!(attr["control_info"]["bmc_address"], "11.0.0.42");
    assert!(attr["control_info"].get("bmc_password").is_none(), "{attr}");
    assert_eq!(attr["nics_info"]["nics"].as_array().unwrap().len(), 2);
    // Our CLI says what the file left out, per node.
    let run = api.xcat3(&["delete", "node[1-50]"]);
    assert_eq!(run.summary(), (50, 50));
    let run = api.xcat3(&["import", out.to_str().unwrap()]);
    assert_eq!(run.summary(), (50, 50));
    assert!(
        run.stderr().contains(
            "node7: left unset: control_info.bmc_password (the file held the mask ******, not the secret)"
        ),
        "{}",
        run.stderr()
    );
}

#[test]
fn export_with_secrets_is_a_lossless_backup() {
    let dir = TempDir::new("secrets-export");
    let api = api(&dir);
    let file = write_import_file(dir.path(), 1..=20);
    assert_eq!(
        api.xcat3(&["import", file.to_str().unwrap()]).summary(),
        (20, 20)
    );
    // A group with a secret of its own, listed by five nodes.
    api.xcat3(&["group-create", "lab", "-c", "ssh_password=Group-Secret"])
        .ok();
    assert_eq!(
        api.xcat3(&["update", "node[1-5]", "groups=lab"]).summary(),
        (5, 5)
    );
    let first = dir.path().join("backup.json");
    api.xcat3(&[
        "export",
        "node[1-20]",
        "-o",
        first.to_str().unwrap(),
        "--with-secrets",
    ])
    .ok();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&first).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a file with secrets is private");
    let backup: Value = serde_json::from_str(&std::fs::read_to_string(&first).unwrap()).unwrap();
    let n3 = backup["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node3")
        .unwrap();
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let want = &original["nodes"][2]["control_info"]["bmc_password"];
    assert!(want.is_string());
    assert_eq!(&n3["control_info"]["bmc_password"], want);

    assert_eq!(backup["groups"][0]["name"], "lab");
    assert_eq!(
        backup["groups"][0]["control_info"]["ssh_password"],
        "Group-Secret"
    );
    assert_eq!(api.xcat3(&["delete", "node[1-20]"]).summary(), (20, 20));
    api.xcat3(&["group-delete", "lab"]).ok();
    assert_eq!(
        api.xcat3(&["import", first.to_str().unwrap()]).summary(),
        (20, 20)
    );
    let second = dir.path().join("again.json");
    api.xcat3(&[
        "export",
        "node[1-20]",
        "-o",
        second.to_str().unwrap(),
        "--with-secrets",
    ])
    .ok();
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&second).unwrap()).unwrap();
    assert_eq!(
        backup, again,
        "export → delete → import → export is the identity"
    );

    // The export is in the request history.
    let history = api.xcat3(&["history"]).ok();
    assert_eq!(
        history.matches("export --with-secrets").count(),
        2,
        "{history}"
    );
}
