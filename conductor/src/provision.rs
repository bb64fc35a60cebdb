//! `deploy --state dhcp` and `deploy -d` for the nodes of one request:
//! DHCP reservations and boot files in bulk, a result per node.

use std::net::Ipv4Addr;
use std::sync::Arc;

use xcat3_common::config::{BootConfig, DhcpConfig};
use xcat3_common::db::nodes::NodeRecord;
use xcat3_common::db::{Db, resources};
use xcat3_common::model::Netboot;
use xcat3_common::rpc::ProvisionTarget;

use crate::boot::{BootEntry, BootFiles};
use crate::drivers::dhcp::{self, BootLoader, DhcpBackend, Reservation, Subnet};

pub struct Provisioner {
    db: Db,
    dhcp: Arc<dyn DhcpBackend>,
    files: BootFiles,
    boot: BootConfig,
}

/// One node's outcome: `Ok` or an error naming the field.
pub type Outcome = (String, Result<(), String>);

impl Provisioner {
    pub fn new(db: Db, dhcp: &DhcpConfig, boot: &BootConfig) -> anyhow::Result<Provisioner> {
        Ok(Provisioner {
            db,
            dhcp: dhcp::from_config(dhcp, boot)?,
            files: BootFiles::prepare(boot)?,
            boot: boot.clone(),
        })
    }

    pub fn files(&self) -> &BootFiles {
        &self.files
    }

    /// Brings the DHCP server up to date with the networks table (at start,
    /// so a managed dnsmasq serves existing reservations at once).
    pub async fn sync_subnets(&self) -> Result<Vec<Subnet>, String> {
        let rows = resources::networks(&self.db)
            .await
            .map_err(|e| format!("reading networks: {e}"))?;
        let subnets = Subnet::from_rows(&rows, &self.boot);
        self.dhcp
            .sync_subnets(&subnets)
            .await
            .map_err(|e| e.to_string())?;
        Ok(subnets)
    }

    pub async fn run(&self, records: &[NodeRecord], target: ProvisionTarget) -> Vec<Outcome> {
        match target {
            ProvisionTarget::Dhcp => self.reserve(records).await,
            ProvisionTarget::Clean => self.clean(records).await,
        }
    }

    async fn reserve(&self, records: &[NodeRecord]) -> Vec<Outcome> {
        let start = std::time::Instant::now();
        let subnets = match self.sync_subnets().await {
            Ok(s) => s,
            Err(e) => return fail_all(records, &e),
        };
        let mut out = Vec::with_capacity(records.len());
        let mut hosts = Vec::with_capacity(records.len());
        for r in records {
            match reservation(r, &subnets) {
                Ok(h) => hosts.push(h),
                Err(e) => out.push((r.node.name.clone(), Err(e))),
            }
        }
        let synced = start.elapsed();
        let added = self.dhcp.add(&hosts).await;
        let reserved = start.elapsed();
        let ok: Vec<Reservation> = hosts
            .iter()
            .zip(&added)
            .filter(|(_, r)| r.is_ok())
            .map(|(h, _)| h.clone())
            .collect();
        for (h, r) in hosts.iter().zip(added) {
            if let Err(e) = r {
                out.push((h.name.clone(), Err(e)));
            }
        }
        let files = self.files.clone();
        let names: Vec<String> = ok.iter().map(|h| h.name.clone()).collect();
        let written = tokio::task::spawn_blocking(move || files.write(&ok, BootEntry::LocalDisk))
            .await
            .unwrap_or_else(|e| Err(format!("boot: {e}")));
        let written: Vec<Outcome> = names.into_iter().map(|n| (n, written.clone())).collect();
        out.extend(written);
        tracing::info!(
            nodes = records.len(),
            backend = self.dhcp.name(),
            subnets_ms = synced.as_millis() as u64,
            dhcp_ms = (reserved - synced).as_millis() as u64,
            files_ms = (start.elapsed() - reserved).as_millis() as u64,
            "reservations and boot files written"
        );
        out
    }

    async fn clean(&self, records: &[NodeRecord]) -> Vec<Outcome> {
        let hosts: Vec<(String, String)> = records
            .iter()
            .flat_map(|r| r.nics.iter().map(|n| (r.node.name.clone(), n.mac.clone())))
            .collect();
        let removed = self.dhcp.remove(&hosts).await;
        let macs: Vec<String> = hosts.iter().map(|(_, m)| m.clone()).collect();
        let files = self.files.clone();
        let gone = tokio::task::spawn_blocking(move || files.remove(&macs))
            .await
            .unwrap_or_else(|e| Err(format!("boot: {e}")));
        // A node is clean when every step for every one of its nics was.
        let mut errors: std::collections::HashMap<&str, String> = Default::default();
        for ((name, _), r) in hosts.iter().zip(&removed) {
            if let Some(e) = r.as_ref().err().or(gone.as_ref().err()) {
                errors.entry(name).or_insert_with(|| e.clone());
            }
        }
        records
            .iter()
            .map(|r| {
                let name = r.node.name.clone();
                let res = match errors.get(name.as_str()) {
                    Some(e) => Err(e.clone()),
                    None => Ok(()),
                };
                (name, res)
            })
            .collect()
    }
}

fn fail_all(records: &[NodeRecord], why: &str) -> Vec<Outcome> {
    records
        .iter()
        .map(|r| (r.node.name.clone(), Err(why.to_string())))
        .collect()
}

/// The node's reservation: its primary nic (or its only one) with a MAC
/// and an IPv4 address inside a known network.
fn reservation(r: &NodeRecord, subnets: &[Subnet]) -> Result<Reservation, String> {
    let (i, nic) = r
        .nics
        .iter()
        .enumerate()
        .find(|(_, n)| n.primary)
        .or_else(|| (r.nics.len() == 1).then(|| (0, &r.nics[0])))
        .ok_or_else(|| {
            if r.nics.is_empty() {
                "nics_info: no nic (a DHCP reservation needs a MAC and an IP)".to_string()
            } else {
                "nics_info: no nic is primary (set \"primary\": true on the boot nic)".to_string()
            }
        })?;
    let field = format!("nics_info.nics[{i}].ip");
    let ip: Ipv4Addr = nic
        .ip
        .as_deref()
        .ok_or_else(|| format!("{field}: not set (a DHCP reservation needs one)"))?
        .parse()
        .map_err(|_| format!("{field}: only IPv4 addresses can be reserved"))?;
    let subnet = subnets
        .iter()
        .find(|s| s.contains(ip))
        .ok_or_else(|| {
            format!(
                "{field}: {ip} is outside every network with a next-server (see `xcat3 network-list`)"
            )
        })?
        .clone();
    let loader = match r
        .node
        .netboot
        .as_deref()
        .and_then(|v| Netboot::parse("netboot", v).ok())
    {
        None | Some(Netboot::Ipxe) => BootLoader::Ipxe,
        Some(Netboot::Pxe) => BootLoader::Pxelinux,
        Some(Netboot::Grub2) => BootLoader::Grub2,
        Some(Netboot::Petitboot) => BootLoader::Petitboot,
    };
    Ok(Reservation {
        name: r.node.name.clone(),
        mac: nic.mac.clone(),
        ip,
        subnet,
        loader,
    })
}
