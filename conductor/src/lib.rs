//! xcat3-conductor: runs power, boot-device (and later DHCP and deploy)
//! work for the nodes it owns in the hash ring.
//!
//! - [`service`]: the service loop (consume, heartbeat, sweep, shutdown);
//! - [`runner`]: one request: ownership, bulk locks, fan-out, batched replies;
//! - [`membership`]: the ring of live conductors;
//! - [`drivers`]: one trait per concern, one file per driver.

pub mod drivers;
pub mod membership;
pub mod runner;
pub mod service;
