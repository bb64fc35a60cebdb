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
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
