//! Network boot: the files a node fetches when it PXE-boots, and the TFTP
//! and HTTP servers that hand them out.
//!
//! TFTP only chain-loads iPXE (`undionly.kpxe` for BIOS, `ipxe.efi` /
//! `snponly.efi` for UEFI) and serves per-MAC pxelinux and GRUB files for
//! firmware that needs them; iPXE then runs `boot.ipxe`, which chains to
//! the node's own script over HTTP (`/ipxe/<mac-with-dashes>`).

mod files;
mod http;
mod steps;
mod tftp;

pub use files::{BootEntry, BootFiles, Install};
pub use http::serve as serve_http;
pub use steps::FetchedImages;
pub use tftp::serve as serve_tftp;
