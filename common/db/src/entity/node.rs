use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nodes")]
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
    /// Provisioning state (`deploying`, `deployed`, ...).
    pub state: Option<String>,
    /// Last known power state, kept by the conductor.
    pub power_state: Option<String>,
    /// Last boot device set or read by a driver.
    pub boot_device: Option<String>,
    pub control_info: String,
    pub console_info: String,
    /// Host name of the conductor holding the node's lock, if any.
    pub reservation: Option<String>,
    /// Host name of the conductor that prepared the node's current deploy.
    pub conductor_affinity: Option<String>,
    pub osimage_id: Option<i64>,
    /// The one-time install callback token of the current deploy (cleared
    /// when used). Secret: never shown.
    pub deploy_token: Option<String>,
    /// When `state` last changed (deploy timeouts count from here).
    pub state_changed_at: Option<DateTimeUtc>,
    /// Why the last deploy failed.
    pub last_error: Option<String>,
    /// The last step of a boot or image write reported for the node
    /// (`xcat3_common::agent::Step`).
    pub deploy_step: Option<String>,
    /// The node's groups, comma-separated, first one first (NULL: none).
    pub groups: Option<String>,
    /// The last `health` verdict: `ok`, `warning` or `critical`.
    pub health: Option<String>,
    /// When a temporary guest (`mkvm --expire-after`) is removed.
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
