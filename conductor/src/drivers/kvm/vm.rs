//! `mkvm` / `rmvm`: defining and removing guests on one hypervisor.
//!
//! A batch is all the guests of one request on one hypervisor; the
//! conductor that owns the hypervisor in the ring runs it, and within the
//! conductor one batch per hypervisor runs at a time, so capacity checks
//! and name checks never race. A batch reads the hypervisor once (every
//! domain's size, MACs and mark), plans every guest against it, then
//! creates disks and definitions concurrently. A guest that fails leaves
//! nothing behind: its new disk is deleted again.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use xcat3_common::model::{HypervisorCapacity, VmDisk, VmShape, tokens};

use super::domxml::{self, GuestXml};
use super::hypervisor::Hypervisor;
use super::libvirt::{Connection, XML_INACTIVE};
use super::{Kvm, endpoint_of, host_endpoint};
use crate::drivers::DriverError;

/// One guest of a batch.
#[derive(Debug, Clone)]
pub struct Guest {
    pub name: String,
    pub arch: Option<String>,
    /// The node's primary MAC (the API allocates one before `mkvm`).
    pub mac: Option<String>,
    pub shape: VmShape,
}

/// Per guest: the result text (`created`, `exists`, `removed`, `absent`)
/// or an error.
pub type Outcomes = Vec<(String, Result<String, DriverError>)>;

/// The same error for every guest (the batch could not start).
fn fail_all(guests: Vec<Guest>, why: &DriverError) -> Outcomes {
    guests
        .into_iter()
        .map(|g| (g.name, Err(why.clone())))
        .collect()
}

/// Every finished task's outcome.
async fn join_all(
    mut tasks: tokio::task::JoinSet<(String, Result<String, DriverError>)>,
) -> Outcomes {
    let mut out = Outcomes::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(outcome) => out.push(outcome),
            Err(e) => tracing::error!("guest task failed: {e}"),
        }
    }
    out
}

/// What the hypervisor holds, read once per batch.
struct Inventory {
    capacity: HypervisorCapacity,
    /// Domain name → (our mark, MACs).
    domains: HashMap<String, (Option<String>, Vec<String>)>,
    /// MAC → domain name.
    macs: HashMap<String, String>,
}

/// A guest to create, after planning.
struct Plan {
    guest: Guest,
    mac: String,
    /// `clonevm`: the source guest.
    source: Option<Arc<Source>>,
}

/// The guest `clonevm` copies: its definition and hard disks.
struct Source {
    xml: String,
    disks: Vec<String>,
}

/// Reads the clone source: it must exist and be shut off (its disks
/// become the clones' backing files and must not change under them).
fn read_source(
    hv: &Hypervisor,
    conn: &Connection,
    host: &str,
    name: &str,
) -> Result<(Source, u64, u32), DriverError> {
    let d = conn
        .lookup(name)
        .map_err(|e| hv.error("domain lookup", &e))?
        .ok_or_else(|| {
            DriverError::invalid(format!("source: no domain `{name}` on hypervisor {host}"))
        })?;
    if d.is_active().map_err(|e| hv.error("domain state", &e))? {
        return Err(DriverError::invalid(format!(
            "source: `{name}` is running; shut it down before cloning (its disks back the clones)"
        )));
    }
    let xml = d
        .xml(XML_INACTIVE)
        .map_err(|e| hv.error(&format!("XML of domain {name}"), &e))?;
    let disks =
        domxml::disk_files(&xml).map_err(|e| DriverError::bmc(format!("source {name}: {e}")))?;
    let (mem, cpus) = d.size().map_err(|e| hv.error("domain size", &e))?;
    Ok((Source { xml, disks }, mem, cpus))
}

fn read_inventory(
    hv: &Hypervisor,
    conn: &Connection,
    memory_overcommit: f64,
    cpu_overcommit: f64,
) -> Result<Inventory, DriverError> {
    let (memory, cpus) = conn.host_info().map_err(|e| hv.error("host info", &e))?;
    let mut inv = Inventory {
        capacity: HypervisorCapacity {
            memory_mib: (memory as f64 * memory_overcommit) as u64,
            allocated_mib: 0,
            cpus: (cpus as f64 * cpu_overcommit) as u32,
            allocated_cpus: 0,
            domains: 0,
        },
        domains: HashMap::new(),
        macs: HashMap::new(),
    };
    for d in conn
        .all_domains()
        .map_err(|e| hv.error("listing domains", &e))?
    {
        // A guest undefined meanwhile is simply not counted.
        let (Ok((mem, vcpus)), Ok(xml)) = (d.size(), d.xml(XML_INACTIVE)) else {
            continue;
        };
        let name = d.name();
        inv.capacity.allocated_mib += mem;
        inv.capacity.allocated_cpus += vcpus;
        inv.capacity.domains += 1;
        let macs = domxml::macs(&xml).unwrap_or_default();
        for m in &macs {
            inv.macs.insert(m.clone(), name.clone());
        }
        inv.domains.insert(name, (domxml::marked_for(&xml), macs));
    }
    Ok(inv)
}

/// The backing file's format, from its name (libvirt needs it said).
fn image_format(path: &str) -> &'static str {
    if path.ends_with(".qcow2") {
        "qcow2"
    } else {
        "raw"
    }
}

fn volume_xml(name: &str, disk: &VmDisk) -> String {
    let e = domxml::escape;
    match disk {
        VmDisk::Size(bytes) => format!(
            "<volume><name>{}</name><capacity unit='bytes'>{bytes}</capacity>\
             <target><format type='qcow2'/></target></volume>",
            e(name)
        ),
        VmDisk::Image(path) => format!(
            "<volume><name>{}</name><capacity unit='bytes'>0</capacity>\
             <target><format type='qcow2'/></target>\
             <backingStore><path>{}</path><format type='{}'/></backingStore></volume>",
            e(name),
            e(path),
            image_format(path)
        ),
    }
}

impl Kvm {
    fn host(&self, host: &str, info: &Map<String, Value>) -> Result<Arc<Hypervisor>, DriverError> {
        Ok(self.hypervisors.get(&host_endpoint(host, info)?))
    }

    /// The hypervisor's capacity (`HypervisorInfo`).
    pub(super) async fn capacity(
        &self,
        host: &str,
        info: &Map<String, Value>,
    ) -> Result<HypervisorCapacity, DriverError> {
        let hv = self.host(host, info)?;
        let (mem, cpu) = (self.memory_overcommit, self.cpu_overcommit);
        hv.call(move |hv, conn| Ok(read_inventory(hv, conn, mem, cpu)?.capacity))
            .await
    }

    /// Defines `guests` on the hypervisor `host` (whose node's
    /// `control_info` is `info`); with `source`, as linked clones of that
    /// guest (qcow2 overlays on its disks, its devices and size).
    pub(super) async fn create_guests(
        &self,
        host: &str,
        info: &Map<String, Value>,
        guests: Vec<Guest>,
        source: Option<String>,
    ) -> Outcomes {
        let hv = match self.host(host, info) {
            Ok(hv) => hv,
            Err(e) => return fail_all(guests, &e),
        };
        let _batch = hv.batch_lock().await;
        let (mem, cpu) = (self.memory_overcommit, self.cpu_overcommit);
        let names: Vec<String> = guests.iter().map(|g| g.name.clone()).collect();
        let host_name = host.to_string();
        let planned = hv
            .call(move |hv, conn| {
                let mut guests = guests.clone();
                let source = match &source {
                    Some(name) => {
                        let (src, memory, cpus) = read_source(hv, conn, &host_name, name)?;
                        for g in &mut guests {
                            g.shape.memory_mib = memory;
                            g.shape.cpus = cpus;
                        }
                        Some(Arc::new(src))
                    }
                    None => None,
                };
                let inv = read_inventory(hv, conn, mem, cpu)?;
                Ok(plan(hv, &host_name, inv, guests, source))
            })
            .await;
        let (mut out, plans) = match planned {
            Ok(p) => p,
            Err(e) => return names.into_iter().map(|n| (n, Err(e.clone()))).collect(),
        };
        let kind = self.domain_type.clone();
        let mut tasks = tokio::task::JoinSet::new();
        for p in plans {
            let hv = hv.clone();
            let kind = kind.clone();
            tasks.spawn(async move {
                let name = p.guest.name.clone();
                let r = hv
                    .call(move |hv, conn| define_guest(hv, conn, &kind, &p))
                    .await;
                (name, r.map(|()| tokens::CREATED.to_string()))
            });
        }
        out.extend(join_all(tasks).await);
        out
    }

    /// Undefines `guests` (stopping them first); with `purge`, deletes
    /// their disks too.
    pub(super) async fn remove_guests(
        &self,
        host: Option<&str>,
        info: &Map<String, Value>,
        guests: Vec<Guest>,
        purge: bool,
    ) -> Outcomes {
        let hv = match host {
            Some(h) => self.host(h, info),
            None => endpoint_of(info).map(|e| self.hypervisors.get(&e)),
        };
        let hv = match hv {
            Ok(hv) => hv,
            Err(e) => return fail_all(guests, &e),
        };
        let _batch = hv.batch_lock().await;
        let mut tasks = tokio::task::JoinSet::new();
        for g in guests {
            let hv = hv.clone();
            tasks.spawn(async move {
                let name = g.name.clone();
                let r = hv
                    .call(move |hv, conn| remove_guest(hv, conn, &g, purge))
                    .await;
                (name, r)
            });
        }
        join_all(tasks).await
    }
}

/// Decides each guest's fate against what the hypervisor holds: `exists`
/// (ours already), an error (taken name or MAC, no room), or a plan.
fn plan(
    hv: &Hypervisor,
    host: &str,
    mut inv: Inventory,
    guests: Vec<Guest>,
    source: Option<Arc<Source>>,
) -> (Outcomes, Vec<Plan>) {
    let mut out = Outcomes::new();
    let mut plans = Vec::new();
    for g in guests {
        let Some(mac) = g.mac.clone() else {
            out.push((
                g.name,
                Err(DriverError::invalid(
                    "nics_info: no nic (mkvm needs the guest's MAC)".into(),
                )),
            ));
            continue;
        };
        if let Some((mark, macs)) = inv.domains.get(&g.name) {
            let ours = mark.as_deref() == Some(g.name.as_str()) || macs.contains(&mac);
            out.push((
                g.name.clone(),
                if ours {
                    Ok(tokens::EXISTS.to_string())
                } else {
                    Err(DriverError::invalid(format!(
                        "hypervisor {host} ({}): a domain named `{}` already exists and is not this node's (no xcat3 mark, no MAC {mac}); remove it or pick another name",
                        hv.label(),
                        g.name
                    )))
                },
            ));
            continue;
        }
        if let Some(other) = inv.macs.get(&mac) {
            out.push((
                g.name.clone(),
                Err(DriverError::invalid(format!(
                    "hypervisor {host}: MAC {mac} is already used by domain `{other}`"
                ))),
            ));
            continue;
        }
        let c = &inv.capacity;
        if g.shape.memory_mib > c.free_mib() {
            out.push((
                g.name.clone(),
                Err(DriverError::unsupported(format!(
                    "hypervisor {host}: not enough memory: {} MiB needed, {} MiB free ({} MiB allocatable, {} MiB given to {} guests)",
                    g.shape.memory_mib,
                    c.free_mib(),
                    c.memory_mib,
                    c.allocated_mib,
                    c.domains
                ))),
            ));
            continue;
        }
        if c.allocated_cpus + g.shape.cpus > c.cpus {
            out.push((
                g.name.clone(),
                Err(DriverError::unsupported(format!(
                    "hypervisor {host}: not enough CPUs: {} needed, {} of {} allocatable left",
                    g.shape.cpus,
                    c.cpus.saturating_sub(c.allocated_cpus),
                    c.cpus
                ))),
            ));
            continue;
        }
        inv.capacity.allocated_mib += g.shape.memory_mib;
        inv.capacity.allocated_cpus += g.shape.cpus;
        inv.capacity.domains += 1;
        inv.macs.insert(mac.clone(), g.name.clone());
        plans.push(Plan {
            guest: g,
            mac,
            source: source.clone(),
        });
    }
    (out, plans)
}

/// A clone: an overlay per source disk, in the source disk's pool, and the
/// source's definition renamed; overlays created here are deleted if
/// defining fails.
fn define_clone(
    hv: &Hypervisor,
    conn: &Connection,
    p: &Plan,
    src: &Source,
) -> Result<(), DriverError> {
    let g = &p.guest;
    let mut created = Vec::new();
    let mut attempt = || -> Result<(), DriverError> {
        let mut swaps = Vec::new();
        for (i, from) in src.disks.iter().enumerate() {
            let vol = conn
                .volume_at(from)
                .map_err(|e| hv.error("volume lookup", &e))?
                .ok_or_else(|| {
                    DriverError::invalid(format!(
                        "source disk {from} is not in a libvirt storage pool (clones need one for their overlays)"
                    ))
                })?;
            let pool = vol
                .pool()
                .map_err(|e| hv.error("pool of the source disk", &e))?;
            let name = if i == 0 {
                format!("{}.qcow2", g.name)
            } else {
                format!("{}-{i}.qcow2", g.name)
            };
            let overlay = match pool
                .volume(&name)
                .map_err(|e| hv.error("volume lookup", &e))?
            {
                Some(v) => v,
                None => {
                    let v = pool
                        .create_volume(&volume_xml(&name, &VmDisk::Image(from.clone())))
                        .map_err(|e| hv.error(&format!("creating overlay {name}"), &e))?;
                    created.push(v.path().map_err(|e| hv.error("disk path", &e))?);
                    v
                }
            };
            swaps.push((
                from.clone(),
                overlay.path().map_err(|e| hv.error("disk path", &e))?,
            ));
        }
        let xml = domxml::clone_xml(&src.xml, &g.name, &p.mac, &swaps)
            .map_err(|e| DriverError::bmc(format!("cloning: {e}")))?;
        conn.define(&xml)
            .map_err(|e| hv.error(&format!("defining domain {}", g.name), &e))
            .map(drop)
    };
    let result = attempt();
    if result.is_err() {
        for path in created {
            if let Ok(Some(v)) = conn.volume_at(&path)
                && let Err(e) = v.delete()
            {
                tracing::warn!(guest = %g.name, "could not delete overlay {path} after a failed clone: {e}");
            }
        }
    }
    result
}

/// Creates the guest's disk (unless one of its name is already in the
/// pool) and defines it; a disk created here is deleted if defining fails.
fn define_guest(
    hv: &Hypervisor,
    conn: &Connection,
    kind: &str,
    p: &Plan,
) -> Result<(), DriverError> {
    if let Some(src) = &p.source {
        return define_clone(hv, conn, p, src);
    }
    let g = &p.guest;
    let mut disk = None;
    let mut created = None;
    if let Some(spec) = &g.shape.disk {
        let pool = conn
            .pool(&g.shape.pool)
            .map_err(|e| hv.error("storage pool lookup", &e))?
            .ok_or_else(|| {
                DriverError::invalid(format!(
                    "hypervisor {}: no storage pool `{}` (control_info.vm_pool)",
                    hv.label(),
                    g.shape.pool
                ))
            })?;
        let vol_name = format!("{}.qcow2", g.name);
        let vol = match pool
            .volume(&vol_name)
            .map_err(|e| hv.error("volume lookup", &e))?
        {
            Some(v) => v,
            None => {
                let v = pool
                    .create_volume(&volume_xml(&vol_name, spec))
                    .map_err(|e| hv.error(&format!("creating disk {vol_name}"), &e))?;
                created = Some(v.path().map_err(|e| hv.error("disk path", &e))?);
                v
            }
        };
        let path = vol.path().map_err(|e| hv.error("disk path", &e))?;
        disk = Some((path, vol));
    }
    let xml = domxml::build_guest(&GuestXml {
        name: &g.name,
        kind,
        arch: g.arch.as_deref().unwrap_or("x86_64"),
        memory_mib: g.shape.memory_mib,
        cpus: g.shape.cpus,
        mac: &p.mac,
        network: &g.shape.network,
        disk: disk.as_ref().map(|(path, _)| (path.as_str(), "qcow2")),
        boot: &g.shape.boot,
    });
    if let Err(e) = conn.define(&xml) {
        if let (Some(_), Some((_, vol))) = (&created, &disk)
            && let Err(d) = vol.delete()
        {
            tracing::warn!(guest = %g.name, "could not delete the new disk after a failed define: {d}");
        }
        return Err(hv.error(&format!("defining domain {}", g.name), &e));
    }
    Ok(())
}

/// Stops and undefines one guest; with `purge`, deletes its disks (the
/// files of its `device='disk'` disks, as libvirt volumes).
fn remove_guest(
    hv: &Hypervisor,
    conn: &Connection,
    g: &Guest,
    purge: bool,
) -> Result<String, DriverError> {
    let Some(d) = conn
        .lookup(&g.name)
        .map_err(|e| hv.error("domain lookup", &e))?
    else {
        return Ok(tokens::ABSENT.to_string());
    };
    let xml = d
        .xml(XML_INACTIVE)
        .map_err(|e| hv.error(&format!("XML of domain {}", g.name), &e))?;
    let ours = domxml::marked_for(&xml).as_deref() == Some(g.name.as_str())
        || g.mac
            .as_ref()
            .is_some_and(|m| domxml::macs(&xml).unwrap_or_default().contains(m));
    if !ours {
        return Err(format!(
            "hypervisor {}: domain `{}` is not this node's (no xcat3 mark, no MAC {}); not removed",
            hv.label(),
            g.name,
            g.mac.as_deref().unwrap_or("-")
        ))
        .map_err(DriverError::invalid);
    }
    let disks = if purge {
        domxml::disk_files(&xml).map_err(|e| DriverError::bmc(format!("domain {}: {e}", g.name)))?
    } else {
        Vec::new()
    };
    if d.is_active().map_err(|e| hv.error("domain state", &e))? {
        d.destroy()
            .map_err(|e| hv.error(&format!("stopping domain {}", g.name), &e))?;
    }
    d.undefine()
        .map_err(|e| hv.error(&format!("undefining domain {}", g.name), &e))?;
    let mut kept = Vec::new();
    for path in disks {
        match conn.volume_at(&path) {
            Ok(Some(v)) => {
                if let Err(e) = v.delete() {
                    kept.push(format!("{path} ({})", e.message));
                }
            }
            Ok(None) => kept.push(format!("{path} (not in a libvirt storage pool)")),
            Err(e) => kept.push(format!("{path} ({})", e.message)),
        }
    }
    if !kept.is_empty() {
        return Err(DriverError::bmc(format!(
            "hypervisor {}: domain {} undefined, but disks left: {}",
            hv.label(),
            g.name,
            kept.join(", ")
        )));
    }
    Ok(tokens::REMOVED.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use xcat3_common::config::KvmConfig;

    fn guest(name: &str, mac: &str, memory: u64) -> Guest {
        let info = json!({"vm_host": "hv", "vm_memory": memory});
        Guest {
            name: name.into(),
            arch: None,
            mac: Some(mac.into()),
            shape: VmShape::from_control_info(info.as_object().unwrap()).unwrap(),
        }
    }

    /// The conductor's own checks, on libvirt's `test:///default` driver
    /// (a 3 GiB, 16-CPU host with one foreign 8 GiB domain named `test`).
    #[tokio::test]
    async fn batch_checks_names_memory_and_marks() {
        let kvm = Kvm::new(&KvmConfig {
            domain_type: "test".into(),
            memory_overcommit: 4.0,
            ..KvmConfig::default()
        });
        let hv = json!({"libvirt_uri": "test:///default"});
        let hv = hv.as_object().unwrap();
        let cap = kvm.capacity("hv", hv).await.unwrap();
        assert!(cap.memory_mib > 0 && cap.domains == 1, "{cap:?}");
        let mut out = kvm
            .create_guests(
                "hv",
                hv,
                vec![
                    guest("g1", "52:54:00:00:00:01", 64),
                    guest("test", "52:54:00:00:00:02", 64),
                    guest("huge", "52:54:00:00:00:03", 16 * 1024 * 1024),
                ],
                None,
            )
            .await;
        out.sort();
        assert_eq!(out[0], ("g1".to_string(), Ok("created".to_string())));
        let huge = out[1].1.as_ref().unwrap_err();
        assert!(
            huge.message
                .starts_with("hypervisor hv: not enough memory: 16777216 MiB needed, "),
            "{huge}"
        );
        let foreign = out[2].1.as_ref().unwrap_err();
        assert!(
            foreign
                .message
                .contains("a domain named `test` already exists"),
            "{foreign}"
        );
        // Known by its mark: `exists`; a MAC another domain holds: refused.
        let again = kvm
            .create_guests(
                "hv",
                hv,
                vec![
                    guest("g1", "52:54:00:00:00:09", 64),
                    guest("g2", "52:54:00:00:00:01", 64),
                ],
                None,
            )
            .await;
        assert!(
            again.contains(&("g1".into(), Ok("exists".into()))),
            "{again:?}"
        );
        assert!(
            again.iter().any(|(n, r)| n == "g2"
                && r.as_ref()
                    .unwrap_err()
                    .message
                    .contains("MAC 52:54:00:00:00:01 is already used by domain `g1`")),
            "{again:?}"
        );
        let gone = kvm
            .remove_guests(
                Some("hv"),
                hv,
                vec![guest("g1", "52:54:00:00:00:01", 64), guest("test", "x", 64)],
                true,
            )
            .await;
        assert!(
            gone.contains(&("g1".into(), Ok("removed".into()))),
            "{gone:?}"
        );
        assert!(
            gone.iter()
                .any(|(n, r)| n == "test"
                    && r.as_ref().unwrap_err().message.contains("not this node's")),
            "{gone:?}"
        );
    }
}
