use sea_orm::entity::prelude::*;

/// A node group: the attributes its member nodes inherit.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nodegroups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub mgt: Option<String>,
    pub netboot: Option<String>,
    pub arch: Option<String>,
    #[sea_orm(column_name = "type")]
    pub node_type: Option<String>,
    pub control_info: String,
    pub console_info: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
