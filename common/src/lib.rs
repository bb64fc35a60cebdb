//! xcat3-common: what every xcat3 process shares.
//!
//! - [`model`]: validated inventory specs built from untrusted JSON (pure);
//! - [`noderange`]: expand and fold xCAT noderanges (pure);
//! - [`db`]: sea-orm entities, migrations and bulk queries (SQLite or MySQL);
//! - [`config`]: the TOML configuration with `XCAT3_<SECTION>_<KEY>` overrides.

pub mod config;
pub mod db;
pub mod model;
pub mod noderange;
