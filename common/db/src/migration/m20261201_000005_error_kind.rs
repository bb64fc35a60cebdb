//! The kind of each failed node's result in the request history
//! (`unreachable`, `authentication`, ...), so `--retry-failed --kind`
//! can pick one kind. Null for successes and for rows written before.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RequestResults {
    Table,
    ErrorKind,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // MySQL DDL is not transactional: check first.
        if !m.has_column("request_results", "error_kind").await? {
            m.alter_table(
                Table::alter()
                    .table(RequestResults::Table)
                    .add_column(
                        ColumnDef::new(RequestResults::ErrorKind)
                            .string_len(32)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.has_column("request_results", "error_kind").await? {
            m.alter_table(
                Table::alter()
                    .table(RequestResults::Table)
                    .drop_column(RequestResults::ErrorKind)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
