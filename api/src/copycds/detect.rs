//! Which OS an install medium holds, from its marker files: Ubuntu and
//! Debian's `.disk/info`, the RHEL family's `.treeinfo` (or `.discinfo`).
//! Pure: the caller hands over the file list and a reader.

use std::collections::HashSet;

pub use xcat3_common::model::Detected;

/// Debian-style architecture names as ours.
fn arch_of(word: &str) -> Option<&'static str> {
    Some(match word {
        "amd64" | "x86_64" => "x86_64",
        "arm64" | "aarch64" => "aarch64",
        "ppc64el" | "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        _ => return None,
    })
}

/// Reads the medium: its files (paths without a leading `./` or `/`) and a
/// reader for small text files.
pub fn detect(
    files: &HashSet<String>,
    read: impl Fn(&str) -> Option<String>,
) -> Result<Detected, String> {
    detect_any(files, read).and_then(plain)
}

/// What a medium says about itself reaches answer files (`{{version}}`),
/// osimage names and paths: only plain words are taken, so an ISO cannot
/// put shell into a kickstart or `..` into a path.
fn plain(d: Detected) -> Result<Detected, String> {
    let word = |what: &str, v: &str| {
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "the medium's {what} `{v}` is not a plain word (letters, digits, . _ + -)"
            ))
        }
    };
    let path = |what: &str, p: &str| {
        let ok = !p.is_empty()
            && p.len() <= 255
            && !p.split('/').any(|seg| seg.is_empty() || seg == "..")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-/".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "the medium's {what} path `{p}` is not a plain relative path"
            ))
        }
    };
    word("version", &d.version)?;
    word("arch", &d.arch)?;
    word("distro", &d.distro)?;
    word("flavor", &d.flavor)?;
    path("kernel", &d.kernel)?;
    path("initrd", &d.initrd)?;
    Ok(d)
}

fn detect_any(
    files: &HashSet<String>,
    read: impl Fn(&str) -> Option<String>,
) -> Result<Detected, String> {
    if files.contains(".treeinfo") || files.contains(".discinfo") {
        return redhat(files, &read);
    }
    if let Some(info) = read(".disk/info") {
        let words: Vec<&str> = info.split_whitespace().collect();
        return match words.first() {
            Some(w) if w.starts_with("Ubuntu") => ubuntu(files, &words),
            Some(&"Debian") => debian(files, &words),
            _ => Err(format!(
                "unknown distribution in .disk/info: `{}`",
                info.trim()
            )),
        };
    }
    Err("no .disk/info (Ubuntu, Debian) or .treeinfo/.discinfo (RHEL, Rocky, Alma, CentOS): not a supported install medium".into())
}

/// The first of `candidates` (kernel, initrd) pairs present on the medium.
fn boot_pair(
    files: &HashSet<String>,
    candidates: &[(&str, &str)],
    what: &str,
) -> Result<(String, String), String> {
    candidates
        .iter()
        .find(|(k, i)| files.contains(*k) && files.contains(*i))
        .map(|(k, i)| (k.to_string(), i.to_string()))
        .ok_or_else(|| {
            format!(
                "{what} medium without a network-boot kernel and initrd (looked for {})",
                candidates
                    .iter()
                    .map(|(k, i)| format!("{k} + {i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// `Ubuntu-Server 24.04 LTS "Noble Numbat" - Release amd64 (20240423)`.
fn ubuntu(files: &HashSet<String>, words: &[&str]) -> Result<Detected, String> {
    let version = words
        .get(1)
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .ok_or("Ubuntu .disk/info without a version")?;
    let arch = words
        .iter()
        .find_map(|w| arch_of(w))
        .ok_or("Ubuntu .disk/info without an architecture")?;
    let deb_arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64el",
        other => other,
    };
    let live = files.contains("casper/vmlinuz");
    let legacy_kernel = format!("install/netboot/ubuntu-installer/{deb_arch}/linux");
    let legacy_initrd = format!("install/netboot/ubuntu-installer/{deb_arch}/initrd.gz");
    let (kernel, initrd) = if live {
        boot_pair(
            files,
            &[
                ("casper/vmlinuz", "casper/initrd"),
                ("casper/vmlinuz", "casper/initrd.gz"),
            ],
            "Ubuntu live",
        )?
    } else {
        boot_pair(
            files,
            &[
                (&legacy_kernel, &legacy_initrd),
                ("install/vmlinuz", "install/initrd.gz"),
            ],
            "Ubuntu",
        )?
    };
    Ok(Detected {
        distro: "ubuntu".into(),
        version: version.to_string(),
        arch: arch.into(),
        flavor: if live { "live-server" } else { "legacy" }.into(),
        kernel,
        initrd,
    })
}

/// `Debian GNU/Linux 12.5.0 "Bookworm" - Official amd64 NETINST with firmware 20240210-11:27`.
fn debian(files: &HashSet<String>, words: &[&str]) -> Result<Detected, String> {
    let version = words
        .iter()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .ok_or("Debian .disk/info without a version")?;
    let arch = words
        .iter()
        .find_map(|w| arch_of(w))
        .ok_or("Debian .disk/info without an architecture")?;
    let dir = match arch {
        "x86_64" => "install.amd",
        "aarch64" => "install.a64",
        _ => "install",
    };
    let (kernel, initrd) = boot_pair(
        files,
        &[(&format!("{dir}/vmlinuz"), &format!("{dir}/initrd.gz"))],
        "Debian",
    )?;
    let netinst = words.iter().any(|w| w.eq_ignore_ascii_case("netinst"));
    Ok(Detected {
        distro: "debian".into(),
        version: version.to_string(),
        arch: arch.into(),
        flavor: if netinst { "netinst" } else { "dvd" }.into(),
        kernel,
        initrd,
    })
}

/// A tiny INI reader: `(section, key) -> value`.
fn ini(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=')
            && !line.starts_with(['#', ';'])
        {
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn family_of(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    Some(if n.starts_with("red hat") {
        "rhels"
    } else if n.starts_with("rocky") {
        "rocky"
    } else if n.starts_with("almalinux") || n.starts_with("alma") {
        "alma"
    } else if n.starts_with("centos") {
        "centos"
    } else {
        return None;
    })
}

/// `.treeinfo` in either layout (productmd `[release]`/`[tree]`, or the
/// older `[general]`), else `.discinfo` (timestamp, release, arch).
fn redhat(
    files: &HashSet<String>,
    read: &impl Fn(&str) -> Option<String>,
) -> Result<Detected, String> {
    let (family, version, arch, mut kernel, mut initrd) = match read(".treeinfo") {
        Some(text) => {
            let kv = ini(&text);
            let get = |sec: &str, key: &str| {
                kv.iter()
                    .find(|(s, k, _)| s == sec && k == key)
                    .map(|(_, _, v)| v.clone())
            };
            let family = get("release", "name")
                .or_else(|| get("general", "family"))
                .ok_or(".treeinfo without [release] name or [general] family")?;
            let version = get("release", "version")
                .or_else(|| get("general", "version"))
                .ok_or(".treeinfo without a version")?;
            let arch = get("tree", "arch")
                .or_else(|| get("general", "arch"))
                .ok_or(".treeinfo without an arch")?;
            let images = format!("images-{arch}");
            (
                family,
                version,
                arch,
                get(&images, "kernel"),
                get(&images, "initrd"),
            )
        }
        None => {
            let text = read(".discinfo").ok_or(".discinfo unreadable")?;
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            let release = lines.get(1).ok_or(".discinfo without a release line")?;
            let (family, version) = release
                .rsplit_once(' ')
                .ok_or(".discinfo release line without a version")?;
            let arch = lines.get(2).ok_or(".discinfo without an arch line")?;
            (
                family.to_string(),
                version.to_string(),
                arch.to_string(),
                None,
                None,
            )
        }
    };
    let distro = family_of(&family).ok_or_else(|| format!("unknown distribution `{family}`"))?;
    let arch = arch_of(&arch).ok_or_else(|| format!("unknown architecture `{arch}`"))?;
    let default_kernel = "images/pxeboot/vmlinuz".to_string();
    let default_initrd = "images/pxeboot/initrd.img".to_string();
    let k = kernel.take().unwrap_or(default_kernel);
    let i = initrd.take().unwrap_or(default_initrd);
    let (kernel, initrd) = boot_pair(files, &[(&k, &i)], &family)?;
    Ok(Detected {
        distro: distro.into(),
        version,
        arch: arch.into(),
        flavor: "anaconda".into(),
        kernel,
        initrd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[&str]) -> HashSet<String> {
        files.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ubuntu_live_server_and_legacy() {
        let files = set(&[".disk/info", "casper/vmlinuz", "casper/initrd"]);
        let d = detect(&files, |p| {
            (p == ".disk/info").then(|| {
                "Ubuntu-Server 24.04 LTS \"Noble Numbat\" - Release amd64 (20240423)".into()
            })
        })
        .unwrap();
        assert_eq!(d.name(), "ubuntu24.04-x86_64");
        assert_eq!(
            (d.flavor.as_str(), d.kernel.as_str()),
            ("live-server", "casper/vmlinuz")
        );
        let files = set(&[
            ".disk/info",
            "install/netboot/ubuntu-installer/ppc64el/linux",
            "install/netboot/ubuntu-installer/ppc64el/initrd.gz",
        ]);
        let d = detect(&files, |_| {
            Some("Ubuntu-Server 18.04.6 LTS \"Bionic Beaver\" - Release ppc64el (20210915)".into())
        })
        .unwrap();
        assert_eq!(d.name(), "ubuntu18.04.6-ppc64le");
        assert_eq!(
            d.initrd,
            "install/netboot/ubuntu-installer/ppc64el/initrd.gz"
        );
    }

    #[test]
    fn debian_netinst() {
        let files = set(&[".disk/info", "install.amd/vmlinuz", "install.amd/initrd.gz"]);
        let d = detect(&files, |_| {
            Some("Debian GNU/Linux 12.5.0 \"Bookworm\" - Official amd64 NETINST with firmware 20240210-11:27".into())
        })
        .unwrap();
        assert_eq!(d.name(), "debian12.5.0-x86_64");
        assert_eq!(d.flavor, "netinst");
    }

    #[test]
    fn redhat_family_from_treeinfo_and_discinfo() {
        let files = set(&[
            ".treeinfo",
            "images/pxeboot/vmlinuz",
            "images/pxeboot/initrd.img",
            "images/pxeboot/vm;linuz$(x)",
        ]);
        let productmd = "[header]\nversion = 1.2\n[release]\nname = Rocky Linux\nshort = Rocky\nversion = 9.3\n[tree]\narch = x86_64\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n";
        let d = detect(&files, |_| Some(productmd.into())).unwrap();
        assert_eq!(d.name(), "rocky9.3-x86_64");
        let old = "[general]\nfamily = Red Hat Enterprise Linux\nversion = 7.3\narch = x86_64\n";
        assert_eq!(
            detect(&files, |_| Some(old.into())).unwrap().name(),
            "rhels7.3-x86_64"
        );
        let alma = "[release]\nname = AlmaLinux\nversion = 9.4\n[tree]\narch = x86_64\n";
        assert_eq!(
            detect(&files, |_| Some(alma.into())).unwrap().distro,
            "alma"
        );
        let files = set(&[
            ".discinfo",
            "images/pxeboot/vmlinuz",
            "images/pxeboot/initrd.img",
        ]);
        let disc = "1479826305.123\nCentOS Linux 7.3\nx86_64\n1\n";
        let d = detect(&files, |p| (p == ".discinfo").then(|| disc.into())).unwrap();
        assert_eq!(d.name(), "centos7.3-x86_64");
    }

    /// A medium's words reach answer files and paths: shell or `..` in
    /// them is refused (finding 11's class, through copycds).
    #[test]
    fn a_medium_cannot_put_shell_or_dotdot_into_what_it_names() {
        let files = set(&[
            ".treeinfo",
            "images/pxeboot/vmlinuz",
            "images/pxeboot/initrd.img",
            "images/pxeboot/vm;linuz$(x)",
        ]);
        let ti = |version: &str, kernel: &str| {
            format!(
                "[release]\nname = Rocky Linux\nversion = {version}\n[tree]\narch = x86_64\n[images-x86_64]\nkernel = {kernel}\ninitrd = images/pxeboot/initrd.img\n"
            )
        };
        let e = detect(&files, |_| {
            Some(ti("9.3;$(reboot)", "images/pxeboot/vmlinuz"))
        })
        .unwrap_err();
        assert!(e.contains("version"), "{e}");
        let e = detect(&files, |_| Some(ti("9.3", "images/pxeboot/vm;linuz$(x)"))).unwrap_err();
        assert!(e.contains("kernel path"), "{e}");
        assert!(detect(&files, |_| Some(ti("9.3", "images/pxeboot/vmlinuz"))).is_ok());
    }

    #[test]
    fn clear_errors() {
        let e = detect(&set(&["README"]), |_| None).unwrap_err();
        assert!(e.contains("not a supported install medium"), "{e}");
        let e = detect(&set(&[".disk/info"]), |_| Some("Fedora 40 x86_64".into())).unwrap_err();
        assert!(e.contains("unknown distribution in .disk/info"), "{e}");
        let e = detect(&set(&[".disk/info"]), |_| {
            Some("Ubuntu-Server 24.04 LTS - Release amd64".into())
        })
        .unwrap_err();
        assert!(
            e.contains("without a network-boot kernel and initrd"),
            "{e}"
        );
        let e = detect(&set(&[".treeinfo"]), |_| {
            Some("[release]\nname = SUSE\nversion = 15\n[tree]\narch = x86_64\n".into())
        })
        .unwrap_err();
        assert_eq!(e, "unknown distribution `SUSE`");
    }
}
