//! The initial schema: services, nodes, nics, networks, osimages, passwds.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Services {
    Table,
    Id,
    Hostname,
    Type,
    Workers,
    Online,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Id,
    Name,
    Mgt,
    Netboot,
    Arch,
    Type,
    State,
    PowerState,
    ControlInfo,
    ConsoleInfo,
    Reservation,
    ConductorAffinity,
    OsimageId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Nics {
    Table,
    Id,
    Uuid,
    NodeId,
    Name,
    Mac,
    Ip,
    Netmask,
    Primary,
    Extra,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Networks {
    Table,
    Id,
    Name,
    Subnet,
    Netmask,
    Gateway,
    Nameservers,
    Ntpservers,
    Domain,
    DynamicRange,
    NextServer,
    Extra,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Osimages {
    Table,
    Id,
    Name,
    Arch,
    Ver,
    Distro,
    Profile,
    Type,
    Provmethod,
    Rootfstype,
    OrigName,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Passwds {
    Table,
    Id,
    Key,
    Username,
    Password,
    CryptMethod,
    CreatedAt,
    UpdatedAt,
}

pub(super) fn id<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

pub(super) fn string(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().to_owned()
}

/// A case-sensitive key column: MySQL's default collation compares
/// case-insensitively, SQLite's does not; names must behave the same on both.
pub(super) fn key(col: impl IntoIden, len: u32, backend: DbBackend) -> ColumnDef {
    let mut c = string(col, len);
    if backend == DbBackend::MySql {
        c.extra("COLLATE utf8mb4_bin");
    }
    c
}

pub(super) fn string_null(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).null().to_owned()
}

pub(super) fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().to_owned()
}

pub(super) fn stamp(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

pub(super) fn index(
    table: impl IntoIden + 'static,
    name: &str,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table).if_not_exists();
    for c in cols {
        idx.col(Alias::new(*c));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();
        m.create_table(
            Table::create()
                .table(Services::Table)
                .if_not_exists()
                .col(id(Services::Id))
                .col(key(Services::Hostname, 255, b))
                .col(string(Services::Type, 32))
                .col(ColumnDef::new(Services::Workers).integer().null())
                .col(ColumnDef::new(Services::Online).boolean().not_null())
                .col(stamp(Services::CreatedAt))
                .col(stamp(Services::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            Services::Table,
            "uniq_services_host_type",
            &["hostname", "type"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Nodes::Table)
                .if_not_exists()
                .col(id(Nodes::Id))
                .col(key(Nodes::Name, 255, b))
                .col(string_null(Nodes::Mgt, 16))
                .col(string_null(Nodes::Netboot, 16))
                .col(string_null(Nodes::Arch, 16))
                .col(string_null(Nodes::Type, 32))
                .col(string_null(Nodes::State, 32))
                .col(string_null(Nodes::PowerState, 16))
                .col(text(Nodes::ControlInfo))
                .col(text(Nodes::ConsoleInfo))
                .col(string_null(Nodes::Reservation, 255))
                .col(string_null(Nodes::ConductorAffinity, 255))
                .col(ColumnDef::new(Nodes::OsimageId).big_integer().null())
                .col(stamp(Nodes::CreatedAt))
                .col(stamp(Nodes::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(Nodes::Table, "uniq_nodes_name", &["name"], true))
            .await?;
        // The prototype had no index on these and scanned the table to find
        // locked or deploying nodes.
        m.create_index(index(
            Nodes::Table,
            "idx_nodes_reservation",
            &["reservation"],
            false,
        ))
        .await?;
        m.create_index(index(Nodes::Table, "idx_nodes_state", &["state"], false))
            .await?;

        m.create_table(
            Table::create()
                .table(Nics::Table)
                .if_not_exists()
                .col(id(Nics::Id))
                .col(key(Nics::Uuid, 36, b))
                .col(ColumnDef::new(Nics::NodeId).big_integer().not_null())
                .col(string_null(Nics::Name, 32))
                .col(key(Nics::Mac, 17, b))
                .col(string_null(Nics::Ip, 45))
                .col(string_null(Nics::Netmask, 45))
                .col(ColumnDef::new(Nics::Primary).boolean().not_null())
                .col(text(Nics::Extra))
                .col(stamp(Nics::CreatedAt))
                .col(stamp(Nics::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_nics_node")
                        .from(Nics::Table, Nics::NodeId)
                        .to(Nodes::Table, Nodes::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(Nics::Table, "uniq_nics_uuid", &["uuid"], true))
            .await?;
        m.create_index(index(Nics::Table, "uniq_nics_mac", &["mac"], true))
            .await?;
        m.create_index(index(Nics::Table, "idx_nics_node_id", &["node_id"], false))
            .await?;
        m.create_index(index(Nics::Table, "idx_nics_ip", &["ip"], false))
            .await?;

        m.create_table(
            Table::create()
                .table(Networks::Table)
                .if_not_exists()
                .col(id(Networks::Id))
                .col(key(Networks::Name, 64, b))
                .col(string_null(Networks::Subnet, 45))
                .col(string_null(Networks::Netmask, 45))
                .col(string_null(Networks::Gateway, 45))
                .col(string_null(Networks::Nameservers, 255))
                .col(string_null(Networks::Ntpservers, 255))
                .col(string_null(Networks::Domain, 255))
                .col(string_null(Networks::DynamicRange, 100))
                .col(string_null(Networks::NextServer, 45))
                .col(text(Networks::Extra))
                .col(stamp(Networks::CreatedAt))
                .col(stamp(Networks::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            Networks::Table,
            "uniq_networks_name",
            &["name"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Osimages::Table)
                .if_not_exists()
                .col(id(Osimages::Id))
                .col(key(Osimages::Name, 128, b))
                .col(string(Osimages::Arch, 16))
                .col(string(Osimages::Ver, 32))
                .col(string(Osimages::Distro, 32))
                .col(string_null(Osimages::Profile, 64))
                .col(string_null(Osimages::Type, 32))
                .col(string_null(Osimages::Provmethod, 32))
                .col(string_null(Osimages::Rootfstype, 32))
                .col(string_null(Osimages::OrigName, 255))
                .col(stamp(Osimages::CreatedAt))
                .col(stamp(Osimages::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            Osimages::Table,
            "uniq_osimages_name",
            &["name"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Passwds::Table)
                .if_not_exists()
                .col(id(Passwds::Id))
                .col(key(Passwds::Key, 64, b))
                .col(string_null(Passwds::Username, 255))
                .col(ColumnDef::new(Passwds::Password).text().null())
                .col(string_null(Passwds::CryptMethod, 16))
                .col(stamp(Passwds::CreatedAt))
                .col(stamp(Passwds::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(Passwds::Table, "uniq_passwds_key", &["key"], true))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "nics", "nodes", "services", "networks", "osimages", "passwds",
        ] {
            m.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
