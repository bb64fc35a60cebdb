//! Reaching nodes' operating systems over SSH: `ssh_identity` (the
//! cluster's key pair the conductors log in with; the private half sealed
//! like any secret) and `node_host_keys` (the SSH host keys a node's agent
//! reported, one row per node, so a conductor checks a node's server
//! against what the node itself said when xcat3 booted it); post-boot
//! scripts (`scripts`, by name) and each node's last run of them
//! (`node_postscripts`); and `nodes.expires_at`, when a temporary guest
//! is removed.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SshIdentity {
    Table,
    Name,
    PublicKey,
    PrivateKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NodeHostKeys {
    Table,
    NodeId,
    HostKeys,
    ReportedAt,
}

#[derive(DeriveIden)]
enum Scripts {
    Table,
    Name,
    Content,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NodePostscripts {
    Table,
    NodeId,
    Runs,
    RanAt,
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    ExpiresAt,
}

/// A TEXT column that holds more than MySQL's 64 KiB TEXT.
fn long_text(col: impl IntoIden, m: &SchemaManager) -> ColumnDef {
    let mut c = ColumnDef::new(col);
    c.not_null();
    if m.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::MySql {
        c.custom(Alias::new("MEDIUMTEXT"));
    } else {
        c.text();
    }
    c
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SshIdentity::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(SshIdentity::Name)
                        .string_len(32)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(SshIdentity::PublicKey).text().not_null())
                .col(ColumnDef::new(SshIdentity::PrivateKey).text().not_null())
                .col(
                    ColumnDef::new(SshIdentity::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(NodeHostKeys::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(NodeHostKeys::NodeId)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(NodeHostKeys::HostKeys).text().not_null())
                .col(
                    ColumnDef::new(NodeHostKeys::ReportedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Scripts::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Scripts::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(long_text(Scripts::Content, m))
                .col(ColumnDef::new(Scripts::UpdatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(NodePostscripts::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(NodePostscripts::NodeId)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(long_text(NodePostscripts::Runs, m))
                .col(
                    ColumnDef::new(NodePostscripts::RanAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        // MySQL DDL is not transactional: check first.
        if !m.has_column("nodes", "expires_at").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .add_column(
                        ColumnDef::new(Nodes::ExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(super::m20261122_000001_initial::index(
            Nodes::Table,
            "idx_nodes_expires_at",
            &["expires_at"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.has_index("nodes", "idx_nodes_expires_at").await? {
            m.drop_index(
                Index::drop()
                    .name("idx_nodes_expires_at")
                    .table(Nodes::Table)
                    .to_owned(),
            )
            .await?;
        }
        if m.has_column("nodes", "expires_at").await? {
            m.alter_table(
                Table::alter()
                    .table(Nodes::Table)
                    .drop_column(Nodes::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        }
        for t in [
            SshIdentity::Table.into_iden(),
            NodeHostKeys::Table.into_iden(),
            Scripts::Table.into_iden(),
            NodePostscripts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
