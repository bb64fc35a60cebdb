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
    pub created_at: DateTimeUtc,
    /// Last heartbeat.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
