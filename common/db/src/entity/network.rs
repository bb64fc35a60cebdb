use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "networks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub subnet: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub nameservers: Option<String>,
    pub ntpservers: Option<String>,
    pub domain: Option<String>,
    pub dynamic_range: Option<String>,
    pub next_server: Option<String>,
    pub extra: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
