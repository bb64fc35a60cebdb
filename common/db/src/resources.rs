//! Single-resource storage: networks, OS images, passwords, services, nics.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
};

use super::entity::{network, nic, node, osimage, passwd, service};
use super::{Db, DbError, is_unique_violation};
use xcat3_common::model::{NetworkSpec, NicSpec, OsImageSpec, PasswdSpec};

fn conflict_or(e: sea_orm::DbErr, what: String) -> DbError {
    if is_unique_violation(&e) {
        DbError::Conflict(what)
    } else {
        DbError::Db(e)
    }
}

// ---- networks ----

pub async fn networks(db: &Db) -> Result<Vec<network::Model>, DbError> {
    Ok(network::Entity::find()
        .order_by_asc(network::Column::Id)
        .all(db.conn())
        .await?)
}

pub async fn network(db: &Db, name: &str) -> Result<network::Model, DbError> {
    network::Entity::find()
        .filter(network::Column::Name.eq(name))
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("network {name} could not be found")))
}

fn network_fields(am: &mut network::ActiveModel, s: &NetworkSpec) {
    am.name = Set(s.name.clone());
    am.subnet = Set(s.subnet.clone());
    am.netmask = Set(s.netmask.clone());
    am.gateway = Set(s.gateway.clone());
    am.nameservers = Set(s.nameservers.clone());
    am.ntpservers = Set(s.ntpservers.clone());
    am.domain = Set(s.domain.clone());
    am.dynamic_range = Set(s.dynamic_range.clone());
    am.next_server = Set(s.next_server.clone());
    am.extra = Set(serde_json::to_string(&s.extra).unwrap_or_else(|_| "{}".into()));
    am.updated_at = Set(Utc::now());
}

pub async fn create_network(db: &Db, s: &NetworkSpec) -> Result<(), DbError> {
    let mut am = network::ActiveModel {
        id: NotSet,
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    network_fields(&mut am, s);
    am.insert(db.conn())
        .await
        .map_err(|e| conflict_or(e, format!("network {} already exists", s.name)))?;
    Ok(())
}

pub async fn update_network(
    db: &Db,
    old: network::Model,
    s: &NetworkSpec,
) -> Result<network::Model, DbError> {
    let mut am = old.into_active_model();
    network_fields(&mut am, s);
    Ok(am.update(db.conn()).await?)
}

pub async fn delete_network(db: &Db, name: &str) -> Result<(), DbError> {
    let res = network::Entity::delete_many()
        .filter(network::Column::Name.eq(name))
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(DbError::NotFound(format!(
            "network {name} could not be found"
        )));
    }
    Ok(())
}

// ---- osimages ----

pub async fn osimages(db: &Db) -> Result<Vec<osimage::Model>, DbError> {
    Ok(osimage::Entity::find()
        .order_by_asc(osimage::Column::Id)
        .all(db.conn())
        .await?)
}

pub async fn osimage(db: &Db, name: &str) -> Result<osimage::Model, DbError> {
    osimage::Entity::find()
        .filter(osimage::Column::Name.eq(name))
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("osimage {name} could not be found")))
}

pub async fn osimage_by_id(db: &Db, id: i64) -> Result<osimage::Model, DbError> {
    osimage::Entity::find_by_id(id)
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("osimage with id {id} could not be found")))
}

/// Registers an imported medium (copycds).
pub async fn create_osimage(
    db: &Db,
    name: &str,
    distro: &str,
    ver: &str,
    arch: &str,
    orig_name: &str,
    provmethod: &str,
) -> Result<osimage::Model, DbError> {
    let now = Utc::now();
    let am = osimage::ActiveModel {
        id: NotSet,
        name: Set(name.to_string()),
        distro: Set(distro.to_string()),
        ver: Set(ver.to_string()),
        arch: Set(arch.to_string()),
        profile: Set(Some("compute".into())),
        image_type: Set(Some("linux".into())),
        provmethod: Set(Some(provmethod.to_string())),
        rootfstype: Set(None),
        orig_name: Set(Some(orig_name.to_string())),
        created_at: Set(now),
        updated_at: Set(now),
    };
    am.insert(db.conn())
        .await
        .map_err(|e| conflict_or(e, format!("osimage {name} already exists")))
}

/// A built image made again under its name (`genimage --force`): its
/// version, kind and time change; nodes keep pointing at the same row.
pub async fn rebuilt_osimage(
    db: &Db,
    old: osimage::Model,
    ver: &str,
    provmethod: &str,
) -> Result<osimage::Model, DbError> {
    let mut am: osimage::ActiveModel = old.into();
    am.ver = Set(ver.to_string());
    am.provmethod = Set(Some(provmethod.to_string()));
    am.updated_at = Set(Utc::now());
    Ok(am.update(db.conn()).await?)
}

pub async fn update_osimage(
    db: &Db,
    old: osimage::Model,
    s: &OsImageSpec,
) -> Result<osimage::Model, DbError> {
    let mut am = old.into_active_model();
    am.profile = Set(s.profile.clone());
    am.image_type = Set(s.image_type.clone());
    am.provmethod = Set(s.provmethod.clone());
    am.rootfstype = Set(s.rootfstype.clone());
    am.updated_at = Set(Utc::now());
    Ok(am.update(db.conn()).await?)
}

/// Deletes an image no node uses.
pub async fn delete_osimage(db: &Db, name: &str) -> Result<osimage::Model, DbError> {
    let image = osimage(db, name).await?;
    let users = node::Entity::find()
        .filter(node::Column::OsimageId.eq(image.id))
        .count(db.conn())
        .await?;
    if users > 0 {
        return Err(DbError::Invalid(format!(
            "osimage {name} is used by {users} node(s)"
        )));
    }
    osimage::Entity::delete_by_id(image.id)
        .exec(db.conn())
        .await?;
    Ok(image)
}

// ---- passwds ----

pub async fn passwds(db: &Db) -> Result<Vec<passwd::Model>, DbError> {
    Ok(passwd::Entity::find()
        .order_by_asc(passwd::Column::Id)
        .all(db.conn())
        .await?)
}

pub async fn passwd(db: &Db, key: &str) -> Result<passwd::Model, DbError> {
    passwd::Entity::find()
        .filter(passwd::Column::Key.eq(key))
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("passwd {key} could not be found")))
}

pub async fn passwd_by_id(db: &Db, id: i64) -> Result<passwd::Model, DbError> {
    passwd::Entity::find_by_id(id)
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("passwd with id {id} could not be found")))
}

pub async fn create_passwd(db: &Db, s: &PasswdSpec) -> Result<(), DbError> {
    let now = Utc::now();
    passwd::ActiveModel {
        id: NotSet,
        key: Set(s.key.clone()),
        username: Set(s.username.clone()),
        password: Set(s.password.clone()),
        crypt_method: Set(s.crypt_method.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db.conn())
    .await
    .map_err(|e| conflict_or(e, format!("passwd {} already exists", s.key)))?;
    Ok(())
}

pub async fn update_passwd(
    db: &Db,
    old: passwd::Model,
    s: &PasswdSpec,
) -> Result<passwd::Model, DbError> {
    let mut am = old.into_active_model();
    am.key = Set(s.key.clone());
    am.username = Set(s.username.clone());
    am.password = Set(s.password.clone());
    am.crypt_method = Set(s.crypt_method.clone());
    am.updated_at = Set(Utc::now());
    am.update(db.conn())
        .await
        .map_err(|e| conflict_or(e, format!("passwd {} already exists", s.key)))
}

pub async fn delete_passwd(db: &Db, key: &str) -> Result<(), DbError> {
    let res = passwd::Entity::delete_many()
        .filter(passwd::Column::Key.eq(key))
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(DbError::NotFound(format!(
            "passwd {key} could not be found"
        )));
    }
    Ok(())
}

// ---- services ----

pub async fn services(db: &Db) -> Result<Vec<service::Model>, DbError> {
    Ok(service::Entity::find()
        .order_by_asc(service::Column::Id)
        .all(db.conn())
        .await?)
}

pub async fn services_by_hostname(db: &Db, host: &str) -> Result<Vec<service::Model>, DbError> {
    let rows = service::Entity::find()
        .filter(service::Column::Hostname.eq(host))
        .all(db.conn())
        .await?;
    if rows.is_empty() {
        return Err(DbError::NotFound(format!(
            "service {host} could not be found"
        )));
    }
    Ok(rows)
}

// ---- nics (as single resources) ----

pub async fn nics(db: &Db) -> Result<Vec<nic::Model>, DbError> {
    Ok(nic::Entity::find()
        .order_by_asc(nic::Column::Id)
        .all(db.conn())
        .await?)
}

pub async fn nic_by_uuid(db: &Db, uuid: &str) -> Result<nic::Model, DbError> {
    nic::Entity::find()
        .filter(nic::Column::Uuid.eq(uuid))
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("nic {uuid} could not be found")))
}

pub async fn nic_by_mac(db: &Db, mac: &str) -> Result<nic::Model, DbError> {
    nic::Entity::find()
        .filter(nic::Column::Mac.eq(mac))
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("nic with mac {mac} could not be found")))
}

pub async fn nics_of_node(db: &Db, node_id: i64) -> Result<Vec<nic::Model>, DbError> {
    Ok(nic::Entity::find()
        .filter(nic::Column::NodeId.eq(node_id))
        .order_by_asc(nic::Column::Id)
        .all(db.conn())
        .await?)
}

pub async fn node_by_name(db: &Db, name: &str) -> Result<node::Model, DbError> {
    node::Entity::find()
        .filter(node::Column::Name.eq(name))
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("node {name} could not be found")))
}

pub async fn node_by_id(db: &Db, id: i64) -> Result<node::Model, DbError> {
    node::Entity::find_by_id(id)
        .one(db.conn())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("node with id {id} could not be found")))
}

/// Creates or rewrites one nic. The mac and uuid unique keys turn a taken
/// address into a `Conflict` that names it.
pub async fn save_nic(
    db: &Db,
    old: Option<nic::Model>,
    node_id: i64,
    s: &NicSpec,
) -> Result<nic::Model, DbError> {
    let now = Utc::now();
    let is_update = old.is_some();
    let mut am = match old {
        Some(m) => m.into_active_model(),
        None => nic::ActiveModel {
            id: NotSet,
            created_at: Set(now),
            ..Default::default()
        },
    };
    am.uuid = Set(s.uuid.to_string());
    am.node_id = Set(node_id);
    am.name = Set(s.name.clone());
    am.mac = Set(s.mac.clone());
    am.ip = Set(s.ip.clone());
    am.netmask = Set(s.netmask.clone());
    am.primary = Set(s.primary);
    am.extra = Set(serde_json::to_string(&s.extra).unwrap_or_else(|_| "{}".into()));
    am.updated_at = Set(now);
    let conflict = format!(
        "mac {} or uuid {} is already used by another nic",
        s.mac, s.uuid
    );
    let res = if is_update {
        am.update(db.conn()).await
    } else {
        am.insert(db.conn()).await
    };
    res.map_err(|e| conflict_or(e, conflict))
}

pub async fn delete_nic(db: &Db, uuid: &str) -> Result<(), DbError> {
    let res = nic::Entity::delete_many()
        .filter(nic::Column::Uuid.eq(uuid))
        .exec(db.conn())
        .await?;
    if res.rows_affected == 0 {
        return Err(DbError::NotFound(format!("nic {uuid} could not be found")));
    }
    Ok(())
}
