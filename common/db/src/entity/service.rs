use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "services")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub hostname: String,
    #[sea_orm(column_name = "type")]
    pub service_type: String,
    pub workers: Option<i32>,
    pub online: bool,
    /// Nodes the conductor is working on, as of its last heartbeat.
    pub in_flight: i64,
    pub created_at: DateTimeUtc,
    /// Last heartbeat.
    pub updated_at: DateTimeUtc,
    /// Where the API reaches this conductor's console server.
    pub console_url: Option<String>,
    /// The bearer token that console server accepts (from its last start).
    pub console_token: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
