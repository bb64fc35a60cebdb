//! The inventory model: validated node, nic, network, osimage and passwd
//! specs, built from untrusted JSON at the edge.
//!
//! Everything here is pure. Input arrives as `serde_json::Value` (not as a
//! derived struct) so that one bad node in a bulk request becomes that node's
//! error, naming the field, instead of failing the whole body.

mod fields;
mod group;
mod libvirt_uri;
mod network;
mod node;
mod osimage;
mod patch;
mod secrets;
mod state;
mod vm;

pub use fields::{
    Arch, FieldError, Mgt, Netboot, RESERVED_NODE_NAMES, check_hostname, check_node_name,
    mac_digits, normalize_mac, parse_ip,
};
pub use group::{
    GroupAttrs, GroupSpec, INHERITED_FIELDS, Inherited, MAX_GROUPS_PER_NODE, inherit, parse_groups,
};
pub use libvirt_uri::{LibvirtUri, Transport as LibvirtTransport, check_key_file, check_user};
pub use network::{NetworkSpec, OsImageSpec, PasswdSpec};
pub use node::{NicSpec, NodeSpec, check_install_value};
pub use osimage::{
    Build, Detected, ImageKind, Installer, MANIFEST, Manifest, ROOT_ARCHIVE, TEMPLATE_OVERRIDE,
};
pub use patch::{PatchOp, apply_patches, parse_patches};
pub use secrets::{MASK, has_masked, is_secret_key, mask_secrets, strip_masked};
pub use state::{ProvisionEvent, ProvisionState};
pub use vm::{
    HypervisorCapacity, VM_KEYS, VmDisk, VmNetwork, VmShape, parse_duration_s, parse_size, vm_host,
};

/// Result tokens of the v1 wire format (the client counts these as success).
pub mod tokens {
    pub const OK: &str = "ok";
    pub const UPDATED: &str = "updated";
    pub const DELETED: &str = "deleted";
    pub const NOT_FOUND: &str = "Could not be found.";
    /// `mkvm`: the guest was defined; `exists`: it already was.
    pub const CREATED: &str = "created";
    pub const EXISTS: &str = "exists";
    /// `rmvm`: the guest was undefined; `absent`: there was none.
    pub const REMOVED: &str = "removed";
    pub const ABSENT: &str = "absent";
}
