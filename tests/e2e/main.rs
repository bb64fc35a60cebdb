//! End-to-end tests: the real `xcat3-api` binary driven by the real `xcat3`
//! CLI. One binary, a module per area.

#[cfg(feature = "servers")]
mod conductors;
mod console;
mod copycds;
mod deploy;
#[cfg(feature = "servers")]
mod faults;
#[cfg(feature = "servers")]
mod images;
mod inspect;
mod inventory;
mod ipmi;
#[cfg(feature = "servers")]
mod kvm;
#[cfg(feature = "servers")]
mod mariadb;
#[cfg(feature = "servers")]
mod netboot;
#[cfg(feature = "servers")]
mod openapi;
mod operations;
mod redfish;
mod remote;
mod secrets;
mod security;
#[cfg(feature = "servers")]
mod v1client;
