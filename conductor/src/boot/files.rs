//! The boot files on disk: written in bulk per request, one set per node,
//! named by MAC the way each loader looks for them.

use std::path::{Path, PathBuf};

use xcat3_common::config::BootConfig;

use crate::drivers::dhcp::{BootLoader, Reservation};

/// iPXE binaries copied from `[boot] ipxe_dir` into the TFTP root.
const IPXE_BINARIES: &[&str] = &["undionly.kpxe", "ipxe.efi", "snponly.efi"];

#[derive(Debug, Clone)]
pub struct BootFiles {
    tftp_root: PathBuf,
    http_root: PathBuf,
}

/// What one node boots into. Only local boot exists until OS deployment
/// adds install entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootEntry {
    /// Boot from the local disk (state `dhcp`, or deployed).
    LocalDisk,
}

impl BootFiles {
    /// Creates the trees, copies the iPXE binaries and writes `boot.ipxe`.
    pub fn prepare(cfg: &BootConfig) -> anyhow::Result<BootFiles> {
        let tftp_root = PathBuf::from(&cfg.tftp_root);
        let http_root = PathBuf::from(&cfg.http_root);
        for d in [
            tftp_root.join("pxelinux.cfg"),
            tftp_root.join("grub"),
            http_root.join("ipxe"),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| anyhow::anyhow!("[boot]: creating {}: {e}", d.display()))?;
        }
        let mut missing = Vec::new();
        for b in IPXE_BINARIES {
            let from = Path::new(&cfg.ipxe_dir).join(b);
            if std::fs::copy(&from, tftp_root.join(b)).is_err() {
                missing.push(from.display().to_string());
            }
        }
        if !missing.is_empty() {
            tracing::warn!(
                missing = missing.join(", "),
                "iPXE binaries not found (apt install ipxe, or set [boot] ipxe_dir); nodes cannot chain-load iPXE over TFTP"
            );
        }
        let chain = match cfg.http_listen.parse::<std::net::SocketAddr>() {
            Ok(a) => format!(
                "#!ipxe\n\
                 # xcat3: run this node's own script, named by its MAC.\n\
                 chain http://${{next-server}}:{}/ipxe/${{mac:hexhyp}} || goto none\n\
                 :none\n\
                 echo xcat3: no boot script for ${{mac}}; booting the next device\n\
                 exit\n",
                a.port()
            ),
            Err(_) => "#!ipxe\necho xcat3: [boot] http_listen is not set\nexit\n".to_string(),
        };
        std::fs::write(tftp_root.join("boot.ipxe"), &chain)?;
        std::fs::write(http_root.join("boot.ipxe"), &chain)?;
        Ok(BootFiles {
            tftp_root,
            http_root,
        })
    }

    pub fn tftp_root(&self) -> &Path {
        &self.tftp_root
    }

    pub fn http_root(&self) -> &Path {
        &self.http_root
    }

    /// The files `host` reads, with their contents.
    fn files(&self, host: &Reservation, entry: BootEntry) -> Vec<(PathBuf, String)> {
        let mac = host.mac_dashes();
        let BootEntry::LocalDisk = entry;
        // The iPXE script exists for every loader: a node falls back to
        // iPXE when its firmware can.
        let mut out = vec![(
            self.http_root.join("ipxe").join(&mac),
            format!(
                "#!ipxe\n# xcat3: node {}, boot from local disk\necho xcat3: {} boots from its disk\nexit\n",
                host.name, host.name
            ),
        )];
        match host.loader {
            BootLoader::Ipxe => {}
            BootLoader::Pxelinux | BootLoader::Petitboot => out.push((
                self.tftp_root
                    .join("pxelinux.cfg")
                    .join(format!("01-{mac}")),
                format!(
                    "# xcat3: node {}\nDEFAULT local\nLABEL local\n  LOCALBOOT 0\n",
                    host.name
                ),
            )),
            BootLoader::Grub2 => {
                let text = format!("# xcat3: node {}\nset timeout=0\nexit\n", host.name);
                // GRUB upstream looks for grub.cfg-<mac>; Ironic and xCAT
                // write grub.cfg-01-<mac>: write both.
                for f in [format!("grub.cfg-01-{mac}"), format!("grub.cfg-{mac}")] {
                    out.push((self.tftp_root.join("grub").join(f), text.clone()));
                }
            }
        }
        out
    }

    /// Writes every host's files (blocking; run it off the async threads).
    pub fn write(&self, hosts: &[Reservation], entry: BootEntry) -> Vec<Result<(), String>> {
        hosts
            .iter()
            .map(|h| {
                for (path, text) in self.files(h, entry) {
                    std::fs::write(&path, text)
                        .map_err(|e| format!("boot: writing {}: {e}", path.display()))?;
                }
                Ok(())
            })
            .collect()
    }

    /// Removes every file any loader could have for these MACs.
    pub fn remove(&self, macs: &[String]) -> Vec<Result<(), String>> {
        macs.iter()
            .map(|mac| {
                let m = mac.replace(':', "-");
                for path in [
                    self.http_root.join("ipxe").join(&m),
                    self.tftp_root.join("pxelinux.cfg").join(format!("01-{m}")),
                    self.tftp_root.join("grub").join(format!("grub.cfg-01-{m}")),
                    self.tftp_root.join("grub").join(format!("grub.cfg-{m}")),
                ] {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(format!("boot: removing {}: {e}", path.display())),
                    }
                }
                Ok(())
            })
            .collect()
    }
}
