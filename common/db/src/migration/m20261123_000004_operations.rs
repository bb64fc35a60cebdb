//! Running it for real: API tokens (hashed, with a role) and the history
//! of bulk actions (one row per request, one per node result).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Name,
    Role,
    SecretHash,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Requests {
    Table,
    Id,
    Action,
    RequestedBy,
    NodeCount,
    Failed,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum RequestResults {
    Table,
    RequestId,
    Node,
    Ok,
    Result,
}

const STARTED_INDEX: &str = "idx_requests_started_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(ApiTokens::Id)
                        .string_len(32)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(ApiTokens::Name)
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(ApiTokens::Role).string_len(16).not_null())
                .col(
                    ColumnDef::new(ApiTokens::SecretHash)
                        .string_len(255)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ApiTokens::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(ApiTokens::ExpiresAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Requests::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(Requests::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Requests::Action).string_len(255).not_null())
                .col(ColumnDef::new(Requests::RequestedBy).string_len(64).null())
                .col(ColumnDef::new(Requests::NodeCount).integer().not_null())
                .col(ColumnDef::new(Requests::Failed).integer().null())
                .col(
                    ColumnDef::new(Requests::StartedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Requests::FinishedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        if !m.has_index("requests", STARTED_INDEX).await? {
            m.create_index(
                Index::create()
                    .name(STARTED_INDEX)
                    .table(Requests::Table)
                    .col(Requests::StartedAt)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(RequestResults::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(RequestResults::RequestId)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RequestResults::Node)
                        .string_len(255)
                        .not_null(),
                )
                .col(ColumnDef::new(RequestResults::Ok).boolean().not_null())
                .col(ColumnDef::new(RequestResults::Result).text().not_null())
                .primary_key(
                    Index::create()
                        .col(RequestResults::RequestId)
                        .col(RequestResults::Node),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(RequestResults::Table, RequestResults::RequestId)
                        .to(Requests::Table, Requests::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["request_results", "requests", "api_tokens"] {
            m.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
