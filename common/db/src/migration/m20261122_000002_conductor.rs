//! What conductors record: a node's last boot device, a service's
//! in-flight work.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Nodes {
    Table,
    BootDevice,
}

#[derive(DeriveIden)]
enum Services {
    Table,
    InFlight,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // MySQL DDL is not transactional: check before each step so a rerun
        // after a failure half-way is safe.
        if !m.has_column("nodes", "boot_device").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(ColumnDef::new(Nodes::BootDevice).string_len(16).null())
                    .to_owned(),
            )
            .await?;
        }
        if !m.has_column("services", "in_flight").await? {
            m.alter_table(
                Table::alter()
                    .table(Services::Table)
                    .add_column(
                        ColumnDef::new(Services::InFlight)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.has_column("nodes", "boot_device").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .drop_column(Nodes::BootDevice)
                    .to_owned(),
            )
            .await?;
        }
        if m.has_column("services", "in_flight").await? {
            m.alter_table(
                Table::alter()
                    .table(Services::Table)
                    .drop_column(Services::InFlight)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
