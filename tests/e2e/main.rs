//! End-to-end tests: the real `xcat3-api` binary driven by the real `xcat3`
//! CLI. One binary, a module per area.

mod inventory;
#[cfg(feature = "mariadb")]
mod mariadb;
