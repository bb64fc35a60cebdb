//! Answer files for unattended installs: Ubuntu autoinstall (cloud-init
//! nocloud, fetched over HTTP by subiquity), Debian preseed and RHEL-family
//! kickstart, and the installer's kernel arguments.
//!
//! Templates use `{{ variable }}` and nothing else: they are parsed once per
//! request (an unknown variable is an error naming it and its line), and
//! what is the same for every node (the crypted root password, repository
//! URLs) is computed once; rendering a node is then a concatenation. An
//! osimage can replace the built-in template with its own
//! (`install_dir/<osimage>/.xcat3-template` on the API host).

use std::borrow::Cow;

use xcat3_common::model::Installer;

const USER_DATA: &str = include_str!("user-data.yaml");
const PRESEED: &str = include_str!("preseed.cfg");
const KICKSTART: &str = include_str!("ks.cfg");
const NODE_CONF: &str = include_str!("node.conf");

/// A built image's per-node overlay archive: served beside the image's
/// root archive, unpacked over it by the kernel.
pub const OVERLAY: &str = "overlay.cpio";

/// Every variable a template may use.
pub const VARIABLES: &[&str] = &[
    "node",
    "mac",
    "domain",
    "osimage",
    "distro",
    "version",
    "arch",
    "timezone",
    "api_url",
    "repo_url",
    "repo_host",
    "repo_dir",
    "root_password",
    "install_disk",
    "disk_match",
    "disk_command",
    "disk_kickstart",
    "packages",
    "packages_yaml",
    "packages_lines",
    "callback",
    "authorize",
];

#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    /// An index into [`VARIABLES`].
    Var(usize),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `text`; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        let mut line = 1;
        while let Some(start) = rest.find("{{") {
            let (before, after) = rest.split_at(start);
            line += before.matches('\n').count();
            let end = after.find("}}").ok_or_else(|| {
                format!("template {origin}, line {line}: `{{{{` without a closing `}}}}`")
            })?;
            let name = after[2..end].trim();
            let var = VARIABLES.iter().position(|v| *v == name).ok_or_else(|| {
                format!(
                    "template {origin}, line {line}: unknown variable `{name}` (known: {})",
                    VARIABLES.join(", ")
                )
            })?;
            if !before.is_empty() {
                segments.push(Segment::Text(before.to_string()));
            }
            segments.push(Segment::Var(var));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Template { segments })
    }

    fn render<'v>(&self, value: impl Fn(&str) -> Cow<'v, str>) -> String {
        let mut out = String::with_capacity(4096);
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(i) => out.push_str(&value(VARIABLES[*i])),
            }
        }
        out
    }
}

/// What is the same for every node deployed with one image in a request.
#[derive(Debug, Clone)]
pub struct ImageContext {
    pub osimage: String,
    pub distro: String,
    pub version: String,
    pub arch: String,
    pub installer: Installer,
    /// The ISO's path in the tree (subiquity fetches the whole medium).
    pub iso: Option<String>,
    /// The API's URL, without a trailing slash.
    pub api_url: String,
    /// Crypted once per request (SHA-512 crypt costs about a millisecond).
    pub root_password: String,
    pub timezone: String,
    /// A built image's kind (the agent's `xcat3.kind`).
    pub kind: Option<xcat3_common::model::ImageKind>,
}

impl ImageContext {
    /// `http://api/install/<osimage>/`: the package repository.
    pub fn repo_url(&self) -> String {
        format!("{}/install/{}/", self.api_url, self.osimage)
    }

    /// The repository's host (and port) and directory, for preseed's
    /// `mirror/http/*`.
    fn repo_host_dir(&self) -> (String, String) {
        let no_scheme = self
            .api_url
            .split_once("://")
            .map_or(self.api_url.as_str(), |(_, r)| r);
        let (host, path) = no_scheme.split_once('/').unwrap_or((no_scheme, ""));
        let path = path.trim_end_matches('/');
        let dir = if path.is_empty() {
            format!("/install/{}", self.osimage)
        } else {
            format!("/{path}/install/{}", self.osimage)
        };
        (host.to_string(), dir)
    }
}

/// One node's part.
#[derive(Debug, Clone)]
pub struct NodeContext<'a> {
    pub node: &'a str,
    pub mac: &'a str,
    pub domain: &'a str,
    /// `control_info.install_disk`.
    pub disk: Option<&'a str>,
    /// `control_info.install_packages`, split.
    pub packages: Vec<&'a str>,
    /// `control_info.install_args`, split.
    pub extra_args: Vec<&'a str>,
    /// `control_info.ssh_authorized_keys` (built images: root's keys).
    pub authorized_keys: Option<&'a str>,
    /// The cluster's SSH public key (`shell::ClusterKey`): root's
    /// `authorized_keys` gets it on every OS xcat3 installs or boots, so
    /// conductors can run `exec` and `copy` there.
    pub cluster_key: Option<&'a str>,
    /// The one-time callback token.
    pub token: &'a str,
    /// `http://<conductor>/autoinst/<node>`: where this node's answer
    /// files are served.
    pub answers_url: String,
}

/// The answer-file template of one image, parsed once per request.
#[derive(Debug, Clone)]
pub struct Answers {
    image: ImageContext,
    main: Template,
    repo_url: String,
    repo_host: String,
    repo_dir: String,
}

impl Answers {
    /// `custom` replaces the built-in template of the image's installer.
    pub fn new(image: ImageContext, custom: Option<&str>) -> Result<Answers, String> {
        if image.installer == Installer::Subiquity && image.iso.is_none() {
            return Err(format!(
                "osimage {}: its ISO is not kept in the install tree (Ubuntu live-server needs it); import it again with copycds",
                image.osimage
            ));
        }
        let (origin, text) = match custom {
            Some(t) => (
                format!(
                    "{} (osimage {})",
                    xcat3_common::model::TEMPLATE_OVERRIDE,
                    image.osimage
                ),
                t,
            ),
            None => (
                Self::main_file(image.installer).to_string(),
                Self::builtin(image.installer),
            ),
        };
        let main = Template::parse(&origin, text)?;
        let (repo_host, repo_dir) = image.repo_host_dir();
        Ok(Answers {
            repo_url: image.repo_url(),
            image,
            main,
            repo_host,
            repo_dir,
        })
    }

    fn builtin(installer: Installer) -> &'static str {
        match installer {
            Installer::Subiquity => USER_DATA,
            Installer::DebianInstaller => PRESEED,
            Installer::Anaconda => KICKSTART,
            Installer::Agent => NODE_CONF,
        }
    }

    /// The file the installer is pointed at.
    pub fn main_file(installer: Installer) -> &'static str {
        match installer {
            Installer::Subiquity => "user-data",
            Installer::DebianInstaller => "preseed.cfg",
            Installer::Anaconda => "ks.cfg",
            Installer::Agent => "node.conf",
        }
    }

    pub fn image(&self) -> &ImageContext {
        &self.image
    }

    /// The node's answer files: (file name, text).
    pub fn render(&self, n: &NodeContext) -> Vec<(String, String)> {
        let img = &self.image;
        let mut packages: Vec<&str> = vec!["curl"];
        packages.extend(n.packages.iter().copied().filter(|p| *p != "curl"));
        let callback = format!(
            "curl -fsS --retry 10 --retry-delay 5 --retry-connrefused -X PUT -H 'Content-Type: application/json' -d '{{\"token\":\"{}\"}}' '{}/v1/nodes/provision/callback?name={}'",
            n.token, img.api_url, n.node
        );
        // Our own key's text (`ssh-ed25519 <base64> xcat3`) has no quote
        // of either kind; it goes into a double-quoted word.
        let authorize = match n.cluster_key {
            Some(k) => format!(
                "mkdir -p -m 700 /root/.ssh && echo \"{}\" >> /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys",
                k.trim()
            ),
            None => "true".into(),
        };
        let main = self.main.render(|var| match var {
            "node" => n.node.into(),
            "mac" => n.mac.into(),
            "domain" => n.domain.into(),
            "osimage" => img.osimage.as_str().into(),
            "distro" => img.distro.as_str().into(),
            "version" => img.version.as_str().into(),
            "arch" => img.arch.as_str().into(),
            "timezone" => img.timezone.as_str().into(),
            "api_url" => img.api_url.as_str().into(),
            "repo_url" => self.repo_url.as_str().into(),
            "repo_host" => self.repo_host.as_str().into(),
            "repo_dir" => self.repo_dir.as_str().into(),
            "root_password" => img.root_password.as_str().into(),
            "install_disk" => n.disk.unwrap_or("").into(),
            "disk_match" => match n.disk {
                Some(d) => format!("path: {d}").into(),
                None => "size: largest".into(),
            },
            "disk_command" => match n.disk {
                Some(d) => format!("debconf-set partman-auto/disk {d}").into(),
                None => "debconf-set partman-auto/disk \"$(list-devices disk | head -n1)\"".into(),
            },
            "disk_kickstart" => match n.disk {
                Some(d) => {
                    format!("ignoredisk --only-use={}", d.trim_start_matches("/dev/")).into()
                }
                None => "# every disk may be used".into(),
            },
            "packages" => packages.join(" ").into(),
            "packages_yaml" => format!(
                "[{}]",
                packages
                    .iter()
                    .map(|p| format!("\"{p}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .into(),
            "packages_lines" => packages.join("\n").into(),
            "callback" => callback.as_str().into(),
            "authorize" => authorize.as_str().into(),
            _ => "".into(),
        });
        if img.installer == Installer::Agent {
            return vec![(OVERLAY.to_string(), overlay(n, &main))];
        }
        let mut files = vec![(Self::main_file(img.installer).to_string(), main)];
        if img.installer == Installer::Subiquity {
            files.push((
                "meta-data".into(),
                format!(
                    "instance-id: xcat3-{}\nlocal-hostname: {}\n",
                    n.node, n.node
                ),
            ));
            // Subiquity asks for it; an empty document is fine, a 404 is not.
            files.push(("vendor-data".into(), String::new()));
        }
        files
    }

    /// The installer's kernel command line for the node.
    pub fn kernel_args(&self, n: &NodeContext) -> Vec<String> {
        let img = &self.image;
        let mut args: Vec<String> = match img.installer {
            Installer::Subiquity => vec![
                "ip=dhcp".into(),
                format!("url={}{}", self.repo_url, img.iso.as_deref().unwrap_or("")),
                "autoinstall".into(),
                format!("ds=nocloud-net;s={}/", n.answers_url),
                "cloud-config-url=/dev/null".into(),
            ],
            Installer::DebianInstaller => vec![
                "auto=true".into(),
                "priority=critical".into(),
                format!("url={}/preseed.cfg", n.answers_url),
                "interface=auto".into(),
                format!("netcfg/get_hostname={}", n.node),
                format!("netcfg/get_domain={}", n.domain),
                "locale=en_US.UTF-8".into(),
                "keymap=us".into(),
            ],
            Installer::Anaconda => vec![
                "ip=dhcp".into(),
                format!("inst.repo={}", self.repo_url),
                format!("inst.ks={}/ks.cfg", n.answers_url),
            ],
            // The root archive is the initramfs: the kernel runs its init
            // directly. The last console gets the login prompt.
            Installer::Agent => vec![
                "rdinit=/sbin/init".into(),
                "console=tty0".into(),
                "console=ttyS0,115200n8".into(),
                format!("{}={}", xcat3_common::agent::CMDLINE_API, img.api_url),
                format!(
                    "{}={}",
                    xcat3_common::agent::CMDLINE_KIND,
                    img.kind.map_or("stateless", |k| k.as_str())
                ),
            ],
        };
        args.push(format!("xcat3.node={}", n.node));
        args.push(format!("xcat3.token={}", n.token));
        args.extend(n.extra_args.iter().map(|a| a.to_string()));
        args
    }
}

/// A node's overlay for a built image: its name, its network (DHCP on the
/// nic with its MAC: the reservation gives it its address), and the
/// agent's config. Text only, so the archive is text too (see
/// [`xcat3_common::cpio::text_archive`]).
fn overlay(n: &NodeContext, node_conf: &str) -> String {
    let fqdn = if n.domain.is_empty() {
        n.node.to_string()
    } else {
        format!("{}.{} {}", n.node, n.domain, n.node)
    };
    let hostname = format!("{}\n", n.node);
    let hosts = format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{fqdn}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    );
    let network = format!(
        "# xcat3: the node's provisioning nic\n[Match]\nMACAddress={}\n\n[Network]\nDHCP=ipv4\n\n[DHCPv4]\nUseHostname=false\n",
        n.mac
    );
    let mut files = vec![
        ("etc/hostname", 0o644, hostname.as_str()),
        ("etc/hosts", 0o644, hosts.as_str()),
        (
            "etc/systemd/network/10-xcat3.network",
            0o644,
            network.as_str(),
        ),
        (xcat3_common::agent::NODE_CONF, 0o600, node_conf),
    ];
    let keys: Vec<&str> = n
        .cluster_key
        .into_iter()
        .chain(n.authorized_keys)
        .map(str::trim_end)
        .filter(|k| !k.is_empty())
        .collect();
    let keys = (!keys.is_empty()).then(|| format!("{}\n", keys.join("\n")));
    if let Some(k) = &keys {
        // Directories with root's own modes: an archive's directory entry
        // sets the mode of the one already there.
        files.extend([("root/", 0o700, ""), ("root/.ssh/", 0o700, "")]);
        files.push(("root/.ssh/authorized_keys", 0o600, k.as_str()));
    }
    xcat3_common::cpio::text_archive(&files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(installer: Installer) -> ImageContext {
        ImageContext {
            osimage: "img".into(),
            distro: "ubuntu".into(),
            version: "24.04".into(),
            arch: "x86_64".into(),
            installer,
            iso: Some("img.iso".into()),
            api_url: "http://10.0.0.1:3010".into(),
            root_password: "$6$salt$hash".into(),
            timezone: "UTC".into(),
            kind: None,
        }
    }

    fn node<'a>(disk: Option<&'a str>) -> NodeContext<'a> {
        NodeContext {
            node: "n1",
            mac: "52:54:00:00:00:01",
            domain: "lab.example",
            disk,
            packages: vec!["vim", "curl"],
            extra_args: vec!["console=ttyS0,115200"],
            authorized_keys: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE admin@mgmt"),
            cluster_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICLUSTER xcat3"),
            token: "0123abcd",
            answers_url: "http://10.0.0.2:8080/autoinst/n1".into(),
        }
    }

    #[test]
    fn unknown_variables_and_unclosed_braces_are_errors_with_lines() {
        let e = Template::parse("t", "a\nb {{ nope }}").unwrap_err();
        assert!(e.contains("line 2") && e.contains("`nope`"), "{e}");
        let e = Template::parse("t", "x {{node").unwrap_err();
        assert!(e.contains("without a closing"), "{e}");
        let t = Template::parse("t", "{{node}}-{{ mac }}!").unwrap();
        assert_eq!(t.render(|v| v.to_uppercase().into()), "NODE-MAC!");
    }

    #[test]
    fn builtin_templates_parse_and_fill_every_variable() {
        for inst in [
            Installer::Subiquity,
            Installer::DebianInstaller,
            Installer::Anaconda,
        ] {
            let a = Answers::new(image(inst), None).unwrap();
            for disk in [None, Some("/dev/sdb")] {
                let files = a.render(&node(disk));
                let main = &files[0].1;
                assert!(!main.contains("{{"), "{main}");
                assert!(main.contains("$6$salt$hash"), "{inst:?}: root password");
                assert!(
                    main.contains("'{\"token\":\"0123abcd\"}' 'http://10.0.0.1:3010/v1/nodes/provision/callback?name=n1'"),
                    "{inst:?}: callback\n{main}"
                );
                if let Some(d) = disk {
                    assert!(
                        main.contains(d.trim_start_matches("/dev/")),
                        "{inst:?}: disk"
                    );
                }
                assert!(main.contains("vim"), "{inst:?}: packages");
                assert!(
                    main.contains("echo \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICLUSTER xcat3\" >> /root/.ssh/authorized_keys"),
                    "{inst:?}: the cluster's key\n{main}"
                );
            }
        }
    }

    /// A built image's node gets one file, its overlay archive: name,
    /// hosts, networkd on its MAC, and the agent's settings; the kernel
    /// runs the archive's init and the agent learns its image's kind.
    #[test]
    fn a_built_images_node_gets_an_overlay_and_agent_arguments() {
        let mut img = image(Installer::Agent);
        img.kind = Some(xcat3_common::model::ImageKind::Image);
        let a = Answers::new(img, None).unwrap();
        let files = a.render(&node(Some("/dev/vda")));
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, OVERLAY);
        let cpio = &files[0].1;
        assert!(cpio.starts_with("070701"), "a newc archive");
        assert_eq!(cpio.len() % 4, 0);
        for part in [
            "etc/hostname\0",
            "n1\n",
            "127.0.1.1\tn1.lab.example n1",
            "MACAddress=52:54:00:00:00:01",
            "DHCP=ipv4",
            "etc/xcat3/node.conf\0",
            "install_disk=/dev/vda",
            "root_password=$6$salt$hash",
            "api_url=http://10.0.0.1:3010",
            "root/.ssh/authorized_keys\0",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICLUSTER xcat3\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE admin@mgmt\n",
        ] {
            assert!(cpio.contains(part), "{part:?} in the overlay");
        }
        // root and root/.ssh keep mode 0700 (040700 in the header).
        assert_eq!(cpio.matches("000041c0").count(), 2, "two 0700 directories");
        let args = a.kernel_args(&node(None)).join(" ");
        for part in [
            "rdinit=/sbin/init",
            "console=ttyS0,115200n8",
            "xcat3.api=http://10.0.0.1:3010",
            "xcat3.kind=image",
            "xcat3.node=n1",
            "xcat3.token=0123abcd",
        ] {
            assert!(args.contains(part), "{part} in {args}");
        }
    }

    #[test]
    fn autoinstall_is_yaml_shaped_nocloud() {
        let a = Answers::new(image(Installer::Subiquity), None).unwrap();
        let files = a.render(&node(None));
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["user-data", "meta-data", "vendor-data"]);
        let ud = &files[0].1;
        assert!(ud.starts_with("#cloud-config\n"));
        assert!(ud.contains("macaddress: \"52:54:00:00:00:01\""));
        assert!(ud.contains("match:\n        size: largest"));
        assert!(ud.contains("packages: [\"curl\", \"vim\"]"));
        let args = a.kernel_args(&node(None));
        assert_eq!(
            args,
            [
                "ip=dhcp",
                "url=http://10.0.0.1:3010/install/img/img.iso",
                "autoinstall",
                "ds=nocloud-net;s=http://10.0.0.2:8080/autoinst/n1/",
                "cloud-config-url=/dev/null",
                "xcat3.node=n1",
                "xcat3.token=0123abcd",
                "console=ttyS0,115200"
            ]
        );
    }

    #[test]
    fn preseed_and_kickstart_point_at_the_tree() {
        let a = Answers::new(image(Installer::DebianInstaller), None).unwrap();
        let p = &a.render(&node(None))[0].1;
        assert!(p.contains("d-i mirror/http/hostname string 10.0.0.1:3010\n"));
        assert!(p.contains("d-i mirror/http/directory string /install/img\n"));
        assert!(p.contains("list-devices disk"));
        let args = a.kernel_args(&node(None)).join(" ");
        assert!(
            args.contains("url=http://10.0.0.2:8080/autoinst/n1/preseed.cfg"),
            "{args}"
        );
        let k = Answers::new(image(Installer::Anaconda), None).unwrap();
        let ks = &k.render(&node(Some("/dev/vda")))[0].1;
        assert!(ks.contains("url --url=http://10.0.0.1:3010/install/img/\n"));
        assert!(ks.contains("network --bootproto=dhcp --device=52:54:00:00:00:01"));
        assert!(ks.contains("ignoredisk --only-use=vda"));
        let args = k.kernel_args(&node(None)).join(" ");
        assert!(
            args.contains("inst.ks=http://10.0.0.2:8080/autoinst/n1/ks.cfg"),
            "{args}"
        );
    }

    #[test]
    fn a_custom_template_replaces_the_builtin_one() {
        let a = Answers::new(
            image(Installer::Anaconda),
            Some("host {{node}} {{callback}}"),
        )
        .unwrap();
        let f = a.render(&node(None));
        assert!(f[0].1.starts_with("host n1 curl "));
        let e = Answers::new(image(Installer::Anaconda), Some("{{rootpw}}")).unwrap_err();
        assert!(e.contains("osimage img") && e.contains("`rootpw`"), "{e}");
    }

    #[test]
    fn subiquity_needs_the_kept_iso() {
        let mut img = image(Installer::Subiquity);
        img.iso = None;
        assert!(Answers::new(img, None).unwrap_err().contains("copycds"));
    }
}
