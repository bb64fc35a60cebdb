//! xcat3-conductor: runs power, boot-device, DHCP and boot-file work for
//! the nodes it owns in the hash ring.
//!
//! - [`service`]: the service loop (consume, heartbeat, sweep, shutdown);
//! - [`runner`]: one request: ownership, bulk locks, loading, batched replies;
//! - [`actions`]: one module per action (power, boot device, provision, vm);
//! - [`membership`]: the ring of live conductors;
//! - [`drivers`]: one trait per concern, one file per driver (power,
//!   management, DHCP);
//! - [`provision`]: `deploy --state dhcp` / `-d` in bulk;
//! - [`boot`]: boot files and the TFTP and HTTP servers for them.

pub mod actions;
pub mod answers;
pub mod boot;
pub mod console;
pub mod drivers;
pub mod expiry;
pub mod images;
pub mod listener;
pub mod local_addrs;
pub mod membership;
pub mod power_sync;
pub mod provision;
pub mod runner;
pub mod service;
pub mod shell;
