//! Node groups: a `nodegroups` table holding each group's attributes (a
//! node's writable fields but nics), and each node's `groups` list
//! (comma-separated, in precedence order; NULL for none).

use sea_orm_migration::prelude::*;

use super::m20261122_000001_initial::{id, index, key, stamp, string_null, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Nodegroups {
    Table,
    Id,
    Name,
    Mgt,
    Netboot,
    Arch,
    Type,
    ControlInfo,
    ConsoleInfo,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Groups,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();
        m.create_table(
            Table::create()
                .table(Nodegroups::Table)
                .if_not_exists()
                .col(id(Nodegroups::Id))
                .col(key(Nodegroups::Name, 255, b))
                .col(string_null(Nodegroups::Mgt, 16))
                .col(string_null(Nodegroups::Netboot, 16))
                .col(string_null(Nodegroups::Arch, 16))
                .col(string_null(Nodegroups::Type, 32))
                .col(text(Nodegroups::ControlInfo))
                .col(text(Nodegroups::ConsoleInfo))
                .col(stamp(Nodegroups::CreatedAt))
                .col(stamp(Nodegroups::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            Nodegroups::Table,
            "uniq_nodegroups_name",
            &["name"],
            true,
        ))
        .await?;
        // MySQL DDL is not transactional: check first.
        if !m.has_column("nodes", "groups").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(ColumnDef::new(Nodes::Groups).text().null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.has_column("nodes", "groups").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .drop_column(Nodes::Groups)
                    .to_owned(),
            )
            .await?;
        }
        m.drop_table(
            Table::drop()
                .table(Nodegroups::Table)
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
