use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "osimages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub arch: String,
    pub ver: String,
    pub distro: String,
    pub profile: Option<String>,
    #[sea_orm(column_name = "type")]
    pub image_type: Option<String>,
    pub provmethod: Option<String>,
    pub rootfstype: Option<String>,
    /// Base name of the imported ISO.
    pub orig_name: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
