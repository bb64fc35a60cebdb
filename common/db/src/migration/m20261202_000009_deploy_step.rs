//! Where a node's boot or image write is: the last step its agent (or
//! conductor) reported (`image fetched`, `agent up`, `installing`,
//! `done`), so a node stuck in `deploying` says where.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Nodes {
    Table,
    DeployStep,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // MySQL DDL is not transactional: check first.
        if !m.has_column("nodes", "deploy_step").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(ColumnDef::new(Nodes::DeployStep).string_len(32).null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.has_column("nodes", "deploy_step").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .drop_column(Nodes::DeployStep)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
