//! What an imported OS medium is: written by `copycds` on the API host
//! beside the unpacked tree (`.xcat3-image.json`), read by conductors when
//! they fetch an image's kernel and initrd to deploy it.

use serde::{Deserialize, Serialize};

/// The manifest's file name inside `install_dir/<osimage>/`.
pub const MANIFEST: &str = ".xcat3-image.json";

/// An answer-file template that replaces the built-in one for one image:
/// `install_dir/<osimage>/.xcat3-template`.
pub const TEMPLATE_OVERRIDE: &str = ".xcat3-template";

/// What a medium is, and where its network-boot kernel and initrd are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detected {
    /// `ubuntu`, `debian`, `rhels`, `rocky`, `alma`, `centos`.
    pub distro: String,
    pub version: String,
    /// `x86_64`, `aarch64`, `ppc64le`, `s390x`.
    pub arch: String,
    /// `live-server` (Ubuntu's subiquity), `legacy` (debian-installer),
    /// `netinst`/`dvd` (Debian), `anaconda` (RHEL family).
    pub flavor: String,
    /// Paths inside the medium.
    pub kernel: String,
    pub initrd: String,
}

impl Detected {
    /// The default osimage name, `<distro><version>-<arch>`.
    pub fn name(&self) -> String {
        format!("{}{}-{}", self.distro, self.version, self.arch)
    }

    /// Which installer (and so which answer file) the medium boots.
    pub fn installer(&self) -> Installer {
        if ImageKind::parse(&self.flavor).is_some() {
            return Installer::Agent;
        }
        match (self.distro.as_str(), self.flavor.as_str()) {
            ("ubuntu", "live-server") => Installer::Subiquity,
            ("ubuntu" | "debian", _) => Installer::DebianInstaller,
            _ => Installer::Anaconda,
        }
    }
}

/// The installers we write answer files for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// Ubuntu live-server: autoinstall as cloud-init nocloud over HTTP.
    Subiquity,
    /// Debian and legacy Ubuntu: preseed.
    DebianInstaller,
    /// RHEL, Rocky, Alma, CentOS: kickstart.
    Anaconda,
    /// An image xcat3 built (`genimage`): its root in RAM and our agent,
    /// configured by a per-node overlay archive.
    Agent,
}

/// What a built image (`genimage`) is for; its manifest's `flavor`, and the
/// osimage row's `provmethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    /// Booted into RAM on every start; nothing is written to disk.
    Stateless,
    /// Booted into RAM once, written to the node's `install_disk` by the
    /// agent; the node boots from its disk afterwards.
    Image,
}

impl ImageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Stateless => "stateless",
            ImageKind::Image => "image",
        }
    }

    pub fn parse(s: &str) -> Option<ImageKind> {
        match s {
            "stateless" => Some(ImageKind::Stateless),
            "image" => Some(ImageKind::Image),
            _ => None,
        }
    }
}

/// The root archive of a built image, inside its tree.
pub const ROOT_ARCHIVE: &str = "root.cpio.zst";

/// How a built image was made (`genimage`), kept in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub kind: ImageKind,
    /// The Debian suite and mirror it came from.
    pub suite: String,
    pub mirror: String,
    /// Packages asked for beyond the image's own set.
    pub packages: Vec<String>,
    /// Bytes of the kernel and of the compressed root archive.
    pub kernel_bytes: u64,
    pub root_bytes: u64,
    /// Bytes of the unpacked root.
    pub tree_bytes: u64,
    pub built_at: String,
    pub build_seconds: u64,
}

/// What an unpacked tree holds (`.xcat3-image.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    #[serde(flatten)]
    pub media: Detected,
    /// The ISO's file name and size, and its marker file's text: the same
    /// medium imported again has the same three.
    pub orig_name: String,
    pub iso_bytes: u64,
    pub marker: String,
    /// The ISO itself, kept in the tree when the installer needs the whole
    /// medium over HTTP (Ubuntu live-server's `url=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso: Option<String>,
    /// Set for images `genimage` built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
}

impl Manifest {
    /// The kind of a built image; `None` for imported installer media.
    pub fn kind(&self) -> Option<ImageKind> {
        self.build.as_ref().map(|b| b.kind)
    }
}
