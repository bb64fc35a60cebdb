//! copycds end to end: ISOs built in the test with xorriso (the layouts of
//! Ubuntu live-server and legacy, Debian, Rocky and RHEL media, with tiny
//! fake kernels and initrds), uploaded by the real CLI, unpacked by the
//! API without mounting, and served back under /install/.

use std::path::Path;
use std::process::Command;

use xcat3_tests::{Api, TempDir, make_iso};

/// A test medium: ISO file name, its files, the osimage name copycds
/// should give it, and where its kernel is.
type Medium<'a> = (&'a str, Vec<(&'a str, &'a [u8])>, &'a str, &'a str);

/// `GET URL` with busybox wget.
fn http_get(url: &str) -> Vec<u8> {
    let out = Command::new("busybox")
        .args(["wget", "-q", "-O", "-", url])
        .output()
        .expect("busybox");
    assert!(out.status.success(), "GET {url} failed");
    out.stdout
}

/// What is in the install dir besides image trees (must stay empty).
fn leftovers(install: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(install).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == ".incoming" {
            out.extend(
                std::fs::read_dir(e.path())
                    .unwrap()
                    .flatten()
                    .map(|f| format!(".incoming/{}", f.file_name().to_string_lossy())),
            );
        } else if name.starts_with(".tmp") {
            out.push(name);
        }
    }
    out
}

#[test]
fn copycds_detects_and_imports_each_distribution() {
    let dir = TempDir::new("copycds");
    let kernel: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let initrd: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 241) as u8).collect();
    let media: Vec<Medium> = vec![
        (
            "ubuntu-24.04-live-server-amd64",
            vec![
                (".disk/info", b"Ubuntu-Server 24.04 LTS \"Noble Numbat\" - Release amd64 (20240423)"),
                ("casper/vmlinuz", &kernel),
                ("casper/initrd", &initrd),
                ("pool/main/l/linux/linux-image.deb", b"deb"),
            ],
            "ubuntu24.04-x86_64",
            "casper/vmlinuz",
        ),
        (
            "ubuntu-18.04.6-server-ppc64el",
            vec![
                (".disk/info", b"Ubuntu-Server 18.04.6 LTS \"Bionic Beaver\" - Release ppc64el (20210915)"),
                ("install/netboot/ubuntu-installer/ppc64el/linux", &kernel),
                ("install/netboot/ubuntu-installer/ppc64el/initrd.gz", &initrd),
            ],
            "ubuntu18.04.6-ppc64le",
            "install/netboot/ubuntu-installer/ppc64el/linux",
        ),
        (
            "debian-12.5.0-amd64-netinst",
            vec![
                (".disk/info", b"Debian GNU/Linux 12.5.0 \"Bookworm\" - Official amd64 NETINST with firmware 20240210-11:27"),
                ("install.amd/vmlinuz", &kernel),
                ("install.amd/initrd.gz", &initrd),
            ],
            "debian12.5.0-x86_64",
            "install.amd/vmlinuz",
        ),
        (
            "Rocky-9.3-x86_64-dvd",
            vec![
                (".treeinfo", b"[header]\ntype = productmd.treeinfo\nversion = 1.2\n[release]\nname = Rocky Linux\nshort = Rocky\nversion = 9.3\n[tree]\narch = x86_64\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n"),
                (".discinfo", b"1699999999.0\nRocky Linux 9.3\nx86_64\n"),
                ("images/pxeboot/vmlinuz", &kernel),
                ("images/pxeboot/initrd.img", &initrd),
                ("BaseOS/Packages/b/bash.rpm", b"rpm"),
            ],
            "rocky9.3-x86_64",
            "images/pxeboot/vmlinuz",
        ),
        (
            "rhel-server-7.3-x86_64-dvd",
            vec![
                (".treeinfo", b"[general]\nfamily = Red Hat Enterprise Linux\nversion = 7.3\narch = x86_64\n"),
                ("images/pxeboot/vmlinuz", &kernel),
                ("images/pxeboot/initrd.img", &initrd),
            ],
            "rhels7.3-x86_64",
            "images/pxeboot/vmlinuz",
        ),
    ];
    let api = Api::standalone(&dir.path().join("data"));
    let install = dir.path().join("data/install");
    for (file, files, name, kernel_path) in &media {
        let tree = dir.path().join(format!("{file}-tree"));
        std::fs::create_dir_all(&tree).unwrap();
        // Ubuntu's own `ubuntu -> .` stays; a link out of the tree does not.
        std::os::unix::fs::symlink(".", tree.join("ubuntu")).unwrap();
        std::os::unix::fs::symlink("/etc", tree.join("escape")).unwrap();
        let iso = make_iso(dir.path(), file, files);
        let out = api.xcat3(&["copycds", iso.to_str().unwrap()]).ok();
        assert!(
            out.starts_with(&format!("{name}: created (")),
            "{file}: {out}"
        );
        let tree = install.join(name);
        assert_eq!(
            std::fs::read(tree.join(kernel_path)).unwrap(),
            kernel,
            "{file}"
        );
        assert!(tree.join(".xcat3-image.json").exists());
        assert!(tree.join("ubuntu").join(kernel_path).exists(), "{file}");
        assert!(
            std::fs::symlink_metadata(tree.join("escape")).is_err(),
            "{file}: link out kept"
        );
        // Conductors and installers fetch the tree over HTTP from the API.
        let served = http_get(&format!("{}/install/{name}/{kernel_path}", api.url));
        assert_eq!(served, kernel, "{file}: served kernel differs");
        // The same medium again: recognized, nothing copied.
        let out = api.xcat3(&["copycds", iso.to_str().unwrap()]).ok();
        assert!(
            out.starts_with(&format!("{name}: exists (")),
            "{file}: {out}"
        );
    }
    let shown = api.xcat3(&["osimage-show", "rocky9.3-x86_64"]).ok();
    for v in [
        "\"distro\": \"rocky\"",
        "\"ver\": \"9.3\"",
        "\"arch\": \"x86_64\"",
        "Rocky-9.3-x86_64-dvd.iso",
    ] {
        assert!(shown.contains(v), "{v} not in {shown}");
    }

    // Another name for the same medium; the default name taken by another
    // medium is refused and the existing tree is left as it was.
    let iso = dir.path().join("ubuntu-24.04-live-server-amd64.iso");
    let out = api
        .xcat3(&["copycds", iso.to_str().unwrap(), "-n", "noble-compute"])
        .ok();
    assert!(out.starts_with("noble-compute: created ("), "{out}");
    let other = make_iso(
        dir.path(),
        "ubuntu-24.04.1-live-server-amd64",
        &[
            (
                ".disk/info",
                b"Ubuntu-Server 24.04 LTS \"Noble Numbat\" - Release amd64 (20240827)",
            ),
            ("casper/vmlinuz", b"other kernel"),
            ("casper/initrd", b"other initrd"),
        ],
    );
    let run = api.xcat3(&["copycds", other.to_str().unwrap()]);
    assert_ne!(run.code(), 0);
    assert!(
        run.stderr().contains("osimage ubuntu24.04-x86_64 already exists (ubuntu 24.04 x86_64, from ubuntu-24.04-live-server-amd64.iso); give the new one another name"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        std::fs::read(install.join("ubuntu24.04-x86_64/casper/vmlinuz")).unwrap(),
        kernel
    );

    // Not an ISO; an ISO of an unknown distribution; an ISO without a
    // kernel: clear errors, nothing left behind.
    let readme = dir.path().join("README.iso");
    std::fs::write(&readme, vec![b'x'; 40_000]).unwrap();
    let run = api.xcat3(&["copycds", readme.to_str().unwrap()]);
    assert!(
        run.stderr().contains("README.iso: not an ISO 9660 image"),
        "{}",
        run.stderr()
    );
    let fedora = make_iso(dir.path(), "fedora", &[(".disk/info", b"Fedora 40 x86_64")]);
    let run = api.xcat3(&["copycds", fedora.to_str().unwrap()]);
    assert!(
        run.stderr()
            .contains("fedora.iso: unknown distribution in .disk/info: `Fedora 40 x86_64`"),
        "{}",
        run.stderr()
    );
    let bare = make_iso(dir.path(), "bare", &[("README", b"hello")]);
    let run = api.xcat3(&["copycds", bare.to_str().unwrap()]);
    assert!(
        run.stderr().contains("not a supported install medium"),
        "{}",
        run.stderr()
    );
    let nokernel = make_iso(
        dir.path(),
        "nokernel",
        &[(
            ".treeinfo",
            b"[release]\nname = AlmaLinux\nversion = 9.4\n[tree]\narch = x86_64\n",
        )],
    );
    let run = api.xcat3(&["copycds", nokernel.to_str().unwrap()]);
    assert!(
        run.stderr()
            .contains("AlmaLinux medium without a network-boot kernel and initrd"),
        "{}",
        run.stderr()
    );
    assert!(leftovers(&install).is_empty(), "{:?}", leftovers(&install));
    let list = api.xcat3(&["osimage-list"]).ok();
    assert_eq!(
        list.lines().filter(|l| l.contains("(osimage)")).count(),
        6,
        "{list}"
    );
    assert!(!install.join("alma9.4-x86_64").exists());
}
