//! The inventory round trip through the CLI on the embedded default
//! (standalone, SQLite).

use serde_json::Value;
use xcat3_tests::{Api, TempDir, write_import_file};

/// import → show → update → export → delete of node[1-10000] through the
/// CLI; every node gets exactly one result at each step.
pub fn round_trip(api: &Api, dir: &TempDir) {
    let file = write_import_file(dir.path(), 1..=10_000);
    let run = api.xcat3(&["import", file.to_str().unwrap()]);
    assert_eq!(run.summary(), (10_000, 10_000), "{}", run.stderr());

    let shown: Value = serde_json::from_str(&api.xcat3(&["show", "node4242"]).ok()).unwrap();
    let attr = &shown[0]["attr"];
    assert_eq!(attr["control_info"]["bmc_address"], "11.0.16.146");
    assert_eq!(attr["control_info"]["bmc_password"], "******");
    assert_eq!(attr["nics_info"]["nics"][1]["mac"], "43:87:0a:05:10:92");

    let run = api.xcat3(&[
        "update",
        "node[1-10000]",
        "arch=aarch64",
        "type=compute",
        "control/bmc_username=root",
    ]);
    assert_eq!(run.summary(), (10_000, 10_000));

    let out = dir.path().join("export.json");
    api.xcat3(&["export", "node[1-10000]", "-o", out.to_str().unwrap()])
        .ok();
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let nodes = exported["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 10_000);
    let n = nodes.iter().find(|n| n["name"] == "node4242").unwrap();
    assert_eq!(n["arch"], "aarch64");
    assert_eq!(n["type"], "compute");
    assert_eq!(n["control_info"]["bmc_username"], "root");
    assert!(
        n["control_info"].get("bmc_password").is_none(),
        "secrets are not exported"
    );
    assert_eq!(n["nics_info"]["nics"].as_array().unwrap().len(), 2);

    let run = api.xcat3(&["delete", "node[1-10000]"]);
    assert_eq!(run.summary(), (10_000, 10_000));
    assert_eq!(api.xcat3(&["list"]).ok().trim(), "");
}

#[test]
fn cli_round_trip_of_10k_nodes_on_sqlite() {
    let dir = TempDir::new("rt-sqlite");
    let api = Api::standalone(&dir.path().join("data"));
    round_trip(&api, &dir);
}

#[test]
fn standalone_keeps_its_data_across_restarts() {
    let dir = TempDir::new("restart");
    let data = dir.path().join("data");
    let api = Api::standalone(&data);
    assert_eq!(
        api.xcat3(&["create", "n[1-3]", "mgt=ipmi", "-c", "bmc_address=10.0.0.1"])
            .summary(),
        (3, 3)
    );
    assert!(api.stop().success(), "graceful stop on SIGTERM");
    assert!(data.join("xcat3.db").exists());
    let api = Api::standalone(&data);
    assert_eq!(
        api.xcat3(&["list"]).ok(),
        "n1 (node)\nn2 (node)\nn3 (node)\n"
    );
}

#[test]
fn bad_input_gets_per_node_errors_and_exit_1() {
    let dir = TempDir::new("bad");
    let api = Api::standalone(&dir.path().join("data"));
    api.xcat3(&["create", "good1", "mgt=ipmi", "-i", "mac=aa:bb:cc:dd:ee:01"])
        .ok();
    let run = api.xcat3(&[
        "create",
        "n[1-2]",
        "mgt=ipmi",
        "-i",
        "mac=AA-BB-CC-DD-EE-01",
    ]);
    assert_eq!(run.code(), 1);
    assert_eq!(run.summary(), (0, 2));
    assert!(
        run.stdout()
            .contains("n1: nics_info.nics[0].mac: aa:bb:cc:dd:ee:01 is already used by node good1"),
        "{}",
        run.stdout()
    );

    let run = api.xcat3(&["update", "good1,ghost", "mgt=ipmx"]);
    assert_eq!(run.code(), 1);
    let out = run.stdout();
    assert!(out.contains("ghost: Could not be found."), "{out}");
    assert!(
        out.contains("good1: mgt: `ipmx` is not one of ipmi, kvm, redfish, fake"),
        "{out}"
    );

    let run = api.xcat3(&["list", "good1,ghost[1-3]"]);
    assert_eq!(run.code(), 1);
    assert_eq!(run.stdout(), "good1 (node)\n");
    assert!(
        run.stderr().contains("not found: ghost[1-3]"),
        "{}",
        run.stderr()
    );

    let run = api.xcat3(&["show", "node[1-"]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("node[1-"), "{}", run.stderr());

    let run = api.xcat3(&[
        "network-create",
        "mgmt",
        "subnet=10.0.0.0",
        "netmask=24",
        "gateway=10.9.0.1",
    ]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("network mgmt: gateway: 10.9.0.1 is outside 10.0.0.0/255.255.255.0"),
        "{}",
        run.stderr()
    );
}

#[test]
fn resource_commands() {
    let dir = TempDir::new("res");
    let api = Api::standalone(&dir.path().join("data"));
    api.xcat3(&[
        "network-create",
        "mgmt",
        "subnet=10.0.0.0",
        "netmask=255.255.255.0",
        "nameservers=10.0.0.2",
    ])
    .ok();
    assert_eq!(api.xcat3(&["network-list"]).ok(), "mgmt (network)\n");
    api.xcat3(&[
        "network-update",
        "mgmt",
        "dynamic_range=10.0.0.100-10.0.0.200",
    ])
    .ok();
    let net: Value = serde_json::from_str(&api.xcat3(&["network-show", "mgmt"]).ok()).unwrap();
    assert_eq!(net["dynamic_range"], "10.0.0.100-10.0.0.200");
    assert_eq!(
        api.xcat3(&["network-delete", "mgmt"]).ok(),
        "mgmt deleted\n"
    );

    api.xcat3(&[
        "passwd-create",
        "system",
        "password=cluster",
        "crypt_method=sha512",
    ])
    .ok();
    let shown = api.xcat3(&["passwd-show", "system"]).ok();
    assert!(
        shown.contains("******") && !shown.contains("cluster"),
        "{shown}"
    );

    api.xcat3(&["create", "n1"]).ok();
    api.xcat3(&[
        "nic-create",
        "mac=aa:bb:cc:00:00:09",
        "node=n1",
        "ip=10.0.0.9",
    ])
    .ok();
    let listed = api.xcat3(&["nic-list"]).ok();
    assert!(
        listed.ends_with(" (uuid) aa:bb:cc:00:00:09 (mac)\n"),
        "{listed}"
    );
    let nic: Value =
        serde_json::from_str(&api.xcat3(&["nic-show", "--mac", "AA:BB:CC:00:00:09"]).ok()).unwrap();
    assert_eq!(nic["node"], "n1");

    assert_eq!(
        api.xcat3(&["osimage-list"]).ok(),
        "Could not find any resource.\n"
    );
    // Standalone runs its conductor in-process.
    assert_eq!(
        api.xcat3(&["service-list"]).ok(),
        "local(conductor): online workers: 1000 nodes: 1 in-flight: 0\n"
    );
}

/// Groups through the CLI: a group's attributes reach its members, group
/// names work in noderanges, `list -o` prints a sorted table, and an
/// export keeps each node's own values and its groups (not the inherited
/// ones), so an import restores the inheritance.
#[test]
fn groups_and_tables_through_the_cli() {
    let dir = TempDir::new("groups");
    let api = Api::standalone(&dir.path().join("data"));
    api.xcat3(&[
        "group-create",
        "compute",
        "mgt=ipmi",
        "arch=x86_64",
        "-c",
        "bmc_username=admin,bmc_password=s3cret",
    ])
    .ok();
    api.xcat3(&["group-create", "rack1", "netboot=ipxe"]).ok();
    assert_eq!(
        api.xcat3(&["group-list"]).ok(),
        "compute (group)\nrack1 (group)\n"
    );
    let run = api.xcat3(&[
        "create",
        "n[1-12]",
        "groups=compute",
        "-c",
        "bmc_address=10.0.0.1",
    ]);
    assert_eq!(run.summary(), (12, 12), "{}", run.stderr());
    let run = api.xcat3(&["update", "n[1-3]", "groups=rack1,compute", "arch=ppc64le"]);
    assert_eq!(run.summary(), (3, 3), "{}", run.stderr());

    assert_eq!(
        api.xcat3(&[
            "list",
            "compute,-rack1",
            "-o",
            "name,arch,netboot,groups",
            "--sort",
            "name"
        ])
        .ok()
        .lines()
        .take(3)
        .collect::<Vec<_>>(),
        [
            "NAME  ARCH    NETBOOT  GROUPS",
            "n4    x86_64           compute",
            "n5    x86_64           compute",
        ]
    );
    assert_eq!(
        api.xcat3(&[
            "list",
            "rack1@compute",
            "-o",
            "name,mgt,arch,netboot,groups"
        ])
        .ok(),
        "NAME  MGT   ARCH     NETBOOT  GROUPS\n\
         n1    ipmi  ppc64le  ipxe     rack1,compute\n\
         n2    ipmi  ppc64le  ipxe     rack1,compute\n\
         n3    ipmi  ppc64le  ipxe     rack1,compute\n"
    );
    let shown: Value = serde_json::from_str(&api.xcat3(&["show", "n1"]).ok()).unwrap();
    let attr = &shown[0]["attr"];
    assert_eq!(
        attr["control_info"]["bmc_password"], "******",
        "inherited secrets are masked"
    );
    assert_eq!(attr["inherited"]["control_info.bmc_username"], "compute");
    assert_eq!(attr["inherited"]["netboot"], "rack1");
    let group: Value = serde_json::from_str(&api.xcat3(&["group-show", "compute"]).ok()).unwrap();
    assert_eq!(group["members"], "n[1-12]");
    assert_eq!(group["control_info"]["bmc_password"], "******");

    let out = dir.path().join("export.json");
    api.xcat3(&["export", "compute", "-o", out.to_str().unwrap()])
        .ok();
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let n1 = exported["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "n1")
        .unwrap();
    assert_eq!(n1["arch"], "ppc64le", "own values are exported");
    assert_eq!(n1["groups"], serde_json::json!(["rack1", "compute"]));
    assert!(n1["mgt"].is_null() && n1.get("inherited").is_none(), "{n1}");
    assert!(n1["control_info"].get("bmc_username").is_none(), "{n1}");
    assert_eq!(
        exported["groups"].as_array().unwrap().len(),
        2,
        "the groups they list"
    );
    assert_eq!(api.xcat3(&["delete", "compute"]).summary(), (12, 12));
    // Without their members the groups may go; the import brings them back.
    api.xcat3(&["group-delete", "compute"]).ok();
    api.xcat3(&["group-delete", "rack1"]).ok();
    let run = api.xcat3(&["import", out.to_str().unwrap()]);
    assert_eq!(run.summary(), (12, 12));
    assert!(
        run.stderr().contains("group compute: ok") && run.stderr().contains("group rack1: ok"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        api.xcat3(&["list", "n1", "-o", "name,mgt,netboot"]).ok(),
        "NAME  MGT   NETBOOT\nn1    ipmi  ipxe\n"
    );
    let run = api.xcat3(&["group-delete", "rack1"]);
    assert!(
        run.stderr().contains("group rack1 has 3 member(s)"),
        "{}",
        run.stderr()
    );
}

/// `xcat3 completion bash` is a script bash loads and that completes
/// subcommands; zsh and fish get theirs.
#[test]
fn shell_completion_completes_subcommands() {
    let xcat3 = xcat3_tests::bin_dir().join("xcat3");
    let script = format!(
        "source <({} completion bash) && COMP_WORDS=(xcat3 group-) COMP_CWORD=1 && _xcat3 xcat3 group- xcat3 && echo \"${{COMPREPLY[@]}}\"",
        xcat3.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        words.split_whitespace().collect::<Vec<_>>(),
        [
            "group-create",
            "group-delete",
            "group-list",
            "group-show",
            "group-update"
        ],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = std::process::Command::new(&xcat3)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("group-create")
        );
    }
}
