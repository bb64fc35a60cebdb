//! DHCP backends behind one trait: reservations change live, nothing
//! restarts for a host change (the prototype rewrote dhcpd.conf and
//! restarted dhcpd on every request).
//!
//! - `dnsmasq`: one file per host in a hosts directory dnsmasq reads on
//!   the fly; removals are followed by one reload per batch.
//! - `kea`: rows in Kea's MySQL `hosts` table, live when committed.
//! - `none`: reservations are someone else's job; requests still write
//!   boot files.

mod dnsmasq;
mod kea;
mod process;

use std::net::Ipv4Addr;
use std::sync::Arc;

use async_trait::async_trait;
use xcat3_common::config::{BootConfig, DhcpConfig};
use xcat3_db::entity::network;

pub use dnsmasq::Dnsmasq;
pub use kea::Kea;

/// A network row, parsed: what a DHCP server needs to serve its subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    /// The networks table's id (Kea's subnet-id).
    pub id: i64,
    pub name: String,
    pub network: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
    pub nameservers: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub dynamic_range: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Where nodes of this network fetch boot files.
    pub next_server: Ipv4Addr,
}

/// A network nodes cannot boot from: it has no next-server, none is
/// configured, and this conductor has no address in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unserved {
    pub name: String,
    pub network: Ipv4Addr,
    pub netmask: Ipv4Addr,
}

impl Unserved {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        crate::local_addrs::in_subnet(ip, self.network, self.netmask)
    }
}

impl Subnet {
    /// The networks usable for DHCP: those with a subnet and netmask (the
    /// API validated them) and a next-server: the network's own, else
    /// `[boot] server_address`, else this conductor's address on it
    /// (`own`). The others come back apart, named, for error messages.
    pub fn from_rows(
        rows: &[network::Model],
        boot: &BootConfig,
        own: &[Ipv4Addr],
    ) -> (Vec<Subnet>, Vec<Unserved>) {
        let ip = |s: &Option<String>| s.as_deref().and_then(|v| v.parse::<Ipv4Addr>().ok());
        let fallback = boot.server_address.parse::<Ipv4Addr>().ok();
        let mut usable = Vec::new();
        let mut unserved = Vec::new();
        for r in rows {
            let (Some(network), Some(netmask)) = (ip(&r.subnet), ip(&r.netmask)) else {
                continue;
            };
            let next_server = ip(&r.next_server)
                .or(fallback)
                .or_else(|| crate::local_addrs::address_in(own, network, netmask));
            let Some(next_server) = next_server else {
                unserved.push(Unserved {
                    name: r.name.clone(),
                    network,
                    netmask,
                });
                continue;
            };
            usable.push(Subnet {
                id: r.id,
                name: r.name.clone(),
                network,
                netmask,
                gateway: ip(&r.gateway),
                nameservers: r
                    .nameservers
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect(),
                domain: r.domain.clone(),
                dynamic_range: r.dynamic_range.as_deref().and_then(|d| {
                    let (a, b) = d.split_once('-')?;
                    Some((a.parse().ok()?, b.parse().ok()?))
                }),
                next_server,
            });
        }
        (usable, unserved)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        crate::local_addrs::in_subnet(ip, self.network, self.netmask)
    }
}

/// What a node boots with, chosen from its `netboot` and `arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootLoader {
    /// iPXE chain-loaded over TFTP (BIOS: undionly.kpxe, UEFI: ipxe.efi),
    /// then the per-node script over HTTP.
    Ipxe,
    /// GRUB (UEFI firmware that needs it): grub/grub.cfg-01-<mac>.
    Grub2,
    /// pxelinux (BIOS): pxelinux.cfg/01-<mac>.
    Pxelinux,
    /// OPAL/petitboot (ppc64le): DHCP option 209 names the config file.
    Petitboot,
}

/// One host reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub name: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    pub ip: Ipv4Addr,
    pub subnet: Subnet,
    pub loader: BootLoader,
}

impl Reservation {
    /// `aa-bb-cc-dd-ee-ff`: how pxelinux, GRUB and iPXE name per-MAC files.
    pub fn mac_dashes(&self) -> String {
        self.mac.replace(':', "-")
    }

    /// DHCP option 209 (RFC 5071 config file) for petitboot: the node's
    /// pxelinux-format file on the TFTP server.
    pub fn petitboot_config(&self) -> Option<String> {
        (self.loader == BootLoader::Petitboot)
            .then(|| format!("pxelinux.cfg/01-{}", self.mac_dashes()))
    }
}

/// A backend failure for the whole batch (a per-host failure is a value
/// in the result list instead).
#[derive(Debug, thiserror::Error)]
#[error("dhcp ({backend}): {message}")]
pub struct DhcpError {
    pub backend: &'static str,
    pub message: String,
}

/// Where reservations live. Calls are bulk: one call per request and
/// conductor, with a result per host in the order given.
#[async_trait]
pub trait DhcpBackend: Send + Sync {
    fn name(&self) -> &'static str;
    /// Makes the server serve `subnets` (called before reservations, with
    /// every usable network; a no-op when nothing changed).
    async fn sync_subnets(&self, subnets: &[Subnet]) -> Result<(), DhcpError>;
    /// Adds or replaces reservations.
    async fn add(&self, hosts: &[Reservation]) -> Vec<Result<(), String>>;
    /// Removes reservations (a missing one is not an error).
    async fn remove(&self, hosts: &[(String, String)]) -> Vec<Result<(), String>>;
}

/// The same outcome for each of `n` hosts (a step that failed, or
/// succeeded, for the whole batch).
pub(crate) fn for_each_host(n: usize, r: Result<(), String>) -> Vec<Result<(), String>> {
    vec![r; n]
}

/// No DHCP server of ours: every call succeeds and does nothing.
pub struct NoDhcp;

#[async_trait]
impl DhcpBackend for NoDhcp {
    fn name(&self) -> &'static str {
        "none"
    }
    async fn sync_subnets(&self, _: &[Subnet]) -> Result<(), DhcpError> {
        Ok(())
    }
    async fn add(&self, hosts: &[Reservation]) -> Vec<Result<(), String>> {
        for_each_host(hosts.len(), Ok(()))
    }
    async fn remove(&self, hosts: &[(String, String)]) -> Vec<Result<(), String>> {
        for_each_host(hosts.len(), Ok(()))
    }
}

/// The backend `[dhcp] backend` names.
pub fn from_config(dhcp: &DhcpConfig, boot: &BootConfig) -> anyhow::Result<Arc<dyn DhcpBackend>> {
    Ok(match dhcp.backend.as_str() {
        "none" | "" => Arc::new(NoDhcp),
        "dnsmasq" => Arc::new(Dnsmasq::new(dhcp, boot)?),
        "kea" => Arc::new(Kea::new(dhcp)?),
        other => anyhow::bail!("[dhcp] backend: `{other}` is not one of dnsmasq, kea, none"),
    })
}
