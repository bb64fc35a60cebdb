//! Kea: reservations are rows of Kea's own MySQL `hosts` table (schema from
//! `kea-admin db-init mysql`), written in bulk in one transaction per
//! batch; kea-dhcp4 reads them from its `hosts-database` at lease time, so
//! a reservation is live the moment it commits, with no reload.
//!
//! The conductor also renders `DIR/kea-dhcp4.conf` (subnets from the
//! networks table, boot-file classes by client architecture) and, with
//! `manage = true`, runs kea-dhcp4 on it, restarting it only when the
//! subnets change.

use std::path::PathBuf;

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};
use serde_json::{Value as Json, json};
use tokio::sync::OnceCell;
use xcat3_common::config::{DhcpConfig, redact_url};
use xcat3_db::Db;

use super::process::Supervised;
use super::{BootLoader, DhcpBackend, DhcpError, Reservation, Subnet, for_each_host};

/// Kea's identifier type for a hardware address.
const HW_ADDRESS: i8 = 0;
/// Rows per INSERT (7 values each, far below MySQL's placeholder limit).
const CHUNK: usize = 1000;

pub struct Kea {
    url: String,
    db: OnceCell<Db>,
    dir: PathBuf,
    interface: Option<String>,
    process: Option<Supervised>,
}

fn err(message: impl std::fmt::Display) -> DhcpError {
    DhcpError {
        backend: "kea",
        message: message.to_string(),
    }
}

/// `mysql://USER:PASS@HOST:PORT/DB` as Kea's database map.
fn kea_database(url: &str) -> Result<Json, String> {
    let bad = || {
        format!(
            "[dhcp] kea_database_url: `{}` is not mysql://USER:PASS@HOST:PORT/DB",
            redact_url(url)
        )
    };
    let rest = url.strip_prefix("mysql://").ok_or_else(bad)?;
    let (auth, rest) = rest.rsplit_once('@').ok_or_else(bad)?;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, name) = rest.split_once('/').ok_or_else(bad)?;
    let name = name.split('?').next().unwrap_or(name);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (hostport, 3306),
    };
    Ok(
        json!({"type": "mysql", "name": name, "host": host, "port": port,
              "user": user, "password": password}),
    )
}

impl Kea {
    pub fn new(dhcp: &DhcpConfig) -> anyhow::Result<Kea> {
        let dir = PathBuf::from(&dhcp.dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("[dhcp] dir: creating {}: {e}", dir.display()))?;
        kea_database(&dhcp.kea_database_url).map_err(anyhow::Error::msg)?;
        let conf = dir.join("kea-dhcp4.conf");
        let d = dir.display().to_string();
        let process = dhcp.manage.then(|| {
            Supervised::new(
                "kea-dhcp4",
                vec!["-c".into(), conf.display().to_string()],
                vec![
                    ("KEA_PIDFILE_DIR".into(), d.clone()),
                    ("KEA_LOCKFILE_DIR".into(), d.clone()),
                ],
                dir.join("kea-dhcp4.log"),
                dir.join("kea-dhcp4.kea-dhcp4.pid"),
                conf.display().to_string(),
                "DHCP4_STARTED",
            )
        });
        Ok(Kea {
            url: dhcp.kea_database_url.clone(),
            db: OnceCell::new(),
            dir,
            interface: (!dhcp.interface.is_empty()).then(|| dhcp.interface.clone()),
            process,
        })
    }

    async fn db(&self) -> Result<&Db, String> {
        self.db
            .get_or_try_init(|| async {
                Db::connect(&self.url).await.map_err(|e| {
                    format!("dhcp (kea): connecting to {}: {e}", redact_url(&self.url))
                })
            })
            .await
    }

    /// kea-dhcp4's configuration for `subnets`.
    fn render(&self, subnets: &[Subnet]) -> Result<Json, String> {
        let efi = "(option[93].hex == 0x0007 or option[93].hex == 0x0009)";
        let subnet4: Vec<Json> = subnets
            .iter()
            .map(|s| {
                let prefix = u32::from(s.netmask).count_ones();
                let mut options = vec![];
                if let Some(g) = s.gateway {
                    options.push(json!({"name": "routers", "data": g.to_string()}));
                }
                if !s.nameservers.is_empty() {
                    let ns: Vec<String> = s.nameservers.iter().map(|n| n.to_string()).collect();
                    options.push(json!({"name": "domain-name-servers", "data": ns.join(", ")}));
                }
                if let Some(d) = &s.domain {
                    options.push(json!({"name": "domain-name", "data": d}));
                }
                let mut v = json!({
                    "id": s.id, "subnet": format!("{}/{prefix}", s.network),
                    "next-server": s.next_server.to_string(), "option-data": options,
                });
                if let Some((a, b)) = s.dynamic_range {
                    v["pools"] = json!([{"pool": format!("{a} - {b}")}]);
                }
                v
            })
            .collect();
        let interfaces = match &self.interface {
            Some(i) => json!([i]),
            None => json!(["*"]),
        };
        Ok(json!({"Dhcp4": {
            "interfaces-config": {"interfaces": interfaces},
            "lease-database": {"type": "memfile", "persist": true,
                               "name": self.dir.join("kea-leases4.csv").display().to_string()},
            "hosts-database": kea_database(&self.url)?,
            "host-reservation-identifiers": ["hw-address"],
            // Petitboot's config file (RFC 5071), set per host.
            "option-def": [{"name": "conf-file", "code": 209, "type": "string"}],
            // Reserved hosts (KNOWN) chain-load iPXE by architecture; a
            // host row's own boot file (pxelinux, GRUB) overrides these.
            "client-classes": [
                {"name": "xcat3-ipxe", "test": "member('KNOWN') and option[175].exists",
                 "boot-file-name": "boot.ipxe"},
                {"name": "xcat3-efi64", "test": format!("member('KNOWN') and not option[175].exists and {efi}"),
                 "boot-file-name": "ipxe.efi"},
                {"name": "xcat3-bios", "test": format!("member('KNOWN') and not option[175].exists and not {efi}"),
                 "boot-file-name": "undionly.kpxe"},
            ],
            "subnet4": subnet4,
            "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                         "output_options": [{"output": "stdout"}]}],
        }}))
    }

    fn boot_file(loader: BootLoader) -> Option<&'static str> {
        match loader {
            // Chosen by class (architecture, iPXE or not).
            BootLoader::Ipxe => None,
            BootLoader::Pxelinux | BootLoader::Petitboot => Some("pxelinux.0"),
            BootLoader::Grub2 => Some("grub/grubx64.efi"),
        }
    }

    /// Replaces the rows of `hosts` (by MAC, and any row holding their
    /// address in their subnet) in one transaction.
    async fn write(&self, hosts: &[Reservation]) -> Result<(), String> {
        let db = self.db().await?;
        let fail = |e: sea_orm::DbErr| format!("dhcp (kea): {e}");
        let txn = db.conn().begin().await.map_err(fail)?;
        for chunk in hosts.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(",");
            let macs: Vec<Value> = chunk
                .iter()
                .map(|h| Value::from(mac_bytes(&h.mac)))
                .collect();
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::MySql,
                format!("DELETE FROM hosts WHERE dhcp_identifier_type = {HW_ADDRESS} AND dhcp_identifier IN ({marks})"),
                macs,
            ))
            .await
            .map_err(fail)?;
            let pairs = vec!["(?,?)"; chunk.len()].join(",");
            let ips: Vec<Value> = chunk
                .iter()
                .flat_map(|h| {
                    [
                        Value::from(u32::from(h.ip)),
                        Value::from(h.subnet.id as u32),
                    ]
                })
                .collect();
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::MySql,
                format!("DELETE FROM hosts WHERE (ipv4_address, dhcp4_subnet_id) IN ({pairs})"),
                ips,
            ))
            .await
            .map_err(fail)?;
            let rows = vec!["(?,?,?,?,?,?,?)"; chunk.len()].join(",");
            let mut values = Vec::with_capacity(chunk.len() * 7);
            for h in chunk {
                values.extend([
                    Value::from(mac_bytes(&h.mac)),
                    Value::from(HW_ADDRESS),
                    Value::from(h.subnet.id as u32),
                    Value::from(u32::from(h.ip)),
                    Value::from(h.name.clone()),
                    Value::from(u32::from(h.subnet.next_server)),
                    Value::from(Kea::boot_file(h.loader).map(str::to_string)),
                ]);
            }
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::MySql,
                format!(
                    "INSERT INTO hosts (dhcp_identifier, dhcp_identifier_type, dhcp4_subnet_id, \
                     ipv4_address, hostname, dhcp4_next_server, dhcp4_boot_file_name) VALUES {rows}"
                ),
                values,
            ))
            .await
            .map_err(fail)?;
        }
        // Petitboot hosts: option 209 on the host (deleted with it by
        // Kea's own trigger).
        for h in hosts {
            let Some(conf) = h.petitboot_config() else {
                continue;
            };
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::MySql,
                format!(
                    "INSERT INTO dhcp4_options (code, formatted_value, space, persistent, host_id, scope_id) \
                     SELECT 209, ?, 'dhcp4', 1, host_id, 3 FROM hosts \
                     WHERE dhcp_identifier_type = {HW_ADDRESS} AND dhcp_identifier = ?"
                ),
                vec![Value::from(conf), Value::from(mac_bytes(&h.mac))],
            ))
            .await
            .map_err(fail)?;
        }
        txn.commit().await.map_err(fail)
    }

    async fn delete(&self, macs: &[Vec<u8>]) -> Result<(), String> {
        let db = self.db().await?;
        for chunk in macs.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(",");
            db.conn()
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::MySql,
                    format!("DELETE FROM hosts WHERE dhcp_identifier_type = {HW_ADDRESS} AND dhcp_identifier IN ({marks})"),
                    chunk.iter().map(|m| Value::from(m.clone())).collect::<Vec<_>>(),
                ))
                .await
                .map_err(|e| format!("dhcp (kea): {e}"))?;
        }
        Ok(())
    }
}

/// `aa:bb:..` as the six bytes Kea stores.
fn mac_bytes(mac: &str) -> Vec<u8> {
    mac.split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

#[async_trait]
impl DhcpBackend for Kea {
    fn name(&self) -> &'static str {
        "kea"
    }

    async fn sync_subnets(&self, subnets: &[Subnet]) -> Result<(), DhcpError> {
        let conf = self.render(subnets).map_err(err)?;
        let text = serde_json::to_string_pretty(&conf).map_err(err)?;
        let path = self.dir.join("kea-dhcp4.conf");
        let changed = std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str());
        if changed {
            // It holds the hosts-database password.
            std::fs::write(&path, &text).map_err(|e| err(format!("{}: {e}", path.display())))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        match &self.process {
            Some(p) => p.ensure_running(changed).await.map_err(err),
            None => Ok(()),
        }
    }

    async fn add(&self, hosts: &[Reservation]) -> Vec<Result<(), String>> {
        for_each_host(hosts.len(), self.write(hosts).await)
    }

    async fn remove(&self, hosts: &[(String, String)]) -> Vec<Result<(), String>> {
        let macs: Vec<Vec<u8>> = hosts.iter().map(|(_, m)| mac_bytes(m)).collect();
        for_each_host(hosts.len(), self.delete(&macs).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_become_kea_maps() {
        let m = kea_database("mysql://kea:pw@127.0.0.1:3307/kea").unwrap();
        assert_eq!(m["host"], "127.0.0.1");
        assert_eq!(m["port"], 3307);
        assert_eq!(m["user"], "kea");
        assert_eq!(m["password"], "pw");
        assert_eq!(m["name"], "kea");
        let e = kea_database("postgres://kea:secret@db/kea").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(mac_bytes("02:00:5e:00:02:10"), [2, 0, 0x5e, 0, 2, 0x10]);
    }
}
