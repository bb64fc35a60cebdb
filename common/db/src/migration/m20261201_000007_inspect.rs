//! Hardware inspection: a `node_inventory` table (one row per node: the
//! inventory its BMC last reported, as JSON, and when) and each node's last
//! judged `health` (`ok`, `warning`, `critical`; NULL: never judged).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use super::m20261122_000001_initial::{index, string_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum NodeInventory {
    Table,
    NodeId,
    Data,
    ReadAt,
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Health,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut data = ColumnDef::new(NodeInventory::Data);
        data.not_null();
        // A big server's inventory (DIMMs, drives, firmware) can pass
        // MySQL's 64 KiB TEXT.
        if m.get_database_backend() == DbBackend::MySql {
            data.custom(Alias::new("MEDIUMTEXT"));
        } else {
            data.text();
        }
        m.create_table(
            Table::create()
                .table(NodeInventory::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(NodeInventory::NodeId)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(data)
                .col(
                    ColumnDef::new(NodeInventory::ReadAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        if !m.has_column("nodes", "health").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(string_null(Nodes::Health, 16))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(index(Nodes::Table, "idx_nodes_health", &["health"], false))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(NodeInventory::Table)
                .if_exists()
                .to_owned(),
        )
        .await?;
        if m.has_index("nodes", "idx_nodes_health").await? {
            m.drop_index(
                Index::drop()
                    .name("idx_nodes_health")
                    .table(Nodes::Table)
                    .to_owned(),
            )
            .await?;
        }
        if m.has_column("nodes", "health").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .drop_column(Nodes::Health)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
