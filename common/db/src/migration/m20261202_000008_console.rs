//! Where the API reaches each conductor's console server: its URL and the
//! token it accepts, written by the conductor when it registers (a new
//! token every start). Null for conductors without consoles.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Services {
    Table,
    ConsoleUrl,
    ConsoleToken,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // MySQL DDL is not transactional, and SQLite adds one column per
        // statement: check each first.
        for (name, col) in [
            ("console_url", Services::ConsoleUrl),
            ("console_token", Services::ConsoleToken),
        ] {
            if !m.has_column("services", name).await? {
                m.alter_table(
                    Table::alter()
                        .table(Services::Table)
                        .add_column(ColumnDef::new(col).string_len(255).null())
                        .to_owned(),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, col) in [
            ("console_url", Services::ConsoleUrl),
            ("console_token", Services::ConsoleToken),
        ] {
            if m.has_column("services", name).await? {
                m.alter_table(
                    Table::alter()
                        .table(Services::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
            }
        }
        Ok(())
    }
}
