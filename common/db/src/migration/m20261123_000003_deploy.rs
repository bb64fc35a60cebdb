//! OS deployment: a node's one-time install callback token, when its
//! provisioning state last changed (deploy timeouts count from there), and
//! why its last deploy failed; an index on `state` for `list --state` and
//! the conductors' periodic scan of deploying nodes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Nodes {
    Table,
    State,
    DeployToken,
    StateChangedAt,
    LastError,
}

const STATE_INDEX: &str = "idx_nodes_state";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // MySQL DDL is not transactional: each step checks first.
        let columns = [
            (
                "deploy_token",
                ColumnDef::new(Nodes::DeployToken)
                    .string_len(64)
                    .null()
                    .to_owned(),
            ),
            (
                "state_changed_at",
                ColumnDef::new(Nodes::StateChangedAt)
                    .timestamp_with_time_zone()
                    .null()
                    .to_owned(),
            ),
            (
                "last_error",
                ColumnDef::new(Nodes::LastError).text().null().to_owned(),
            ),
        ];
        for (name, mut def) in columns {
            if !m.has_column("nodes", name).await? {
                m.alter_table(
                    Table::alter()
                        .table(Nodes::Table)
                        .add_column(&mut def)
                        .to_owned(),
                )
                .await?;
            }
        }
        if !m.has_index("nodes", STATE_INDEX).await? {
            m.create_index(
                Index::create()
                    .name(STATE_INDEX)
                    .table(Nodes::Table)
                    .col(Nodes::State)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.has_index("nodes", STATE_INDEX).await? {
            m.drop_index(
                Index::drop()
                    .name(STATE_INDEX)
                    .table(Nodes::Table)
                    .to_owned(),
            )
            .await?;
        }
        for (name, col) in [
            ("deploy_token", Nodes::DeployToken),
            ("state_changed_at", Nodes::StateChangedAt),
            ("last_error", Nodes::LastError),
        ] {
            if m.has_column("nodes", name).await? {
                m.alter_table(
                    Table::alter()
                        .table(Nodes::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
            }
        }
        Ok(())
    }
}
