//! Versioned schema migrations (recorded in `seaql_migrations`). Each one is
//! idempotent (`IF NOT EXISTS`) because MySQL DDL is not transactional: a
//! migration interrupted half-way must be safe to run again.
//!
//! Never edit a released migration; add a new file and list it below.

use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261122_000002_conductor;
mod m20261123_000003_deploy;
mod m20261123_000004_operations;
mod m20261201_000005_error_kind;
mod m20261201_000006_groups;
mod m20261201_000007_inspect;
mod m20261202_000008_console;
mod m20261202_000009_deploy_step;
mod m20261203_000010_shell;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261122_000002_conductor::Migration),
            Box::new(m20261123_000003_deploy::Migration),
            Box::new(m20261123_000004_operations::Migration),
            Box::new(m20261201_000005_error_kind::Migration),
            Box::new(m20261201_000006_groups::Migration),
            Box::new(m20261201_000007_inspect::Migration),
            Box::new(m20261202_000008_console::Migration),
            Box::new(m20261202_000009_deploy_step::Migration),
            Box::new(m20261203_000010_shell::Migration),
        ]
    }
}
