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
}
