//! sea-orm entities, one per table. JSON documents (`control_info`, `extra`)
//! are TEXT columns holding serialized JSON: that reads back identically on
//! SQLite, MariaDB and MySQL, whatever their JSON column support.

pub mod network;
pub mod nic;
pub mod node;
pub mod node_inventory;
pub mod nodegroup;
pub mod osimage;
pub mod passwd;
pub mod service;
