//! Reaching nodes' operating systems over SSH: `ssh_identity` (the
//! cluster's key pair the conductors log in with; the private half sealed
//! like any secret) and `node_host_keys` (the SSH host keys a node's agent
//! reported, one row per node, so a conductor checks a node's server
//! against what the node itself said when xcat3 booted it).

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
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            SshIdentity::Table.into_iden(),
            NodeHostKeys::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
