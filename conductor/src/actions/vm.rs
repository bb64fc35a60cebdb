//! `mkvm` / `clonevm` / `rmvm`: the guests grouped by hypervisor, each
//! group one batch on that hypervisor's connection (the VM interface),
//! groups concurrently. Sent to the conductor owning the hypervisor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use xcat3_common::model::{VmShape, tokens};
use xcat3_common::rpc::{ErrorKind, NodeResult, now_ms};
use xcat3_db::nodes::parse_map;

use super::{ActionModule, Batch, Results};
use crate::drivers::{DriverError, Guest, VmOutcomes};
use crate::runner::Runner;

pub enum Guests {
    Create { source: Option<String> },
    Remove { purge: bool },
}

#[async_trait]
impl ActionModule for Guests {
    fn locks(&self) -> bool {
        true
    }

    fn needs_nics(&self) -> bool {
        true
    }

    async fn run(&self, runner: &Arc<Runner>, batch: Batch<'_>, out: &Results) {
        let left = Duration::from_millis((batch.request.deadline_ms - now_ms()).max(0) as u64);
        match tokio::time::timeout(left, self.run_batches(runner, &batch)).await {
            Ok(results) => {
                for (name, r) in results {
                    let r = match r {
                        Ok(text) => NodeResult::Ok(text),
                        Err(e) => e.into(),
                    };
                    let _ = out.send((name, r, None));
                }
            }
            Err(_) => {
                for rec in &batch.records {
                    let r = NodeResult::error(
                        ErrorKind::Timeout,
                        "timeout: the hypervisor did not finish before the request's deadline (the guest may still appear; re-run to see)",
                    );
                    let _ = out.send((rec.node.name.clone(), r, None));
                }
            }
        }
    }
}

impl Guests {
    async fn run_batches(&self, runner: &Arc<Runner>, batch: &Batch<'_>) -> VmOutcomes {
        let req = batch.request;
        let mut out = VmOutcomes::new();
        let mut by_host: BTreeMap<String, Vec<Guest>> = BTreeMap::new();
        // rmvm of guests that name their hypervisor themselves (libvirt_uri).
        let mut on_own = Vec::new();
        let vms = runner.actors().drivers.hypervisors();
        for rec in &batch.records {
            let name = rec.node.name.clone();
            let info = parse_map(&rec.node.control_info);
            let shape = match VmShape::from_control_info(&info) {
                Ok(s) => s,
                Err(e) => {
                    out.push((name, Err(DriverError::invalid(e.to_string()))));
                    continue;
                }
            };
            if req.ring_key(&name) != shape.host.as_deref().unwrap_or(&name) {
                out.push((
                    name,
                    Err(DriverError::internal(
                        "control_info.vm_host changed while the request was under way; retry"
                            .into(),
                    )),
                ));
                continue;
            }
            let guest = Guest {
                mac: rec.primary_mac(),
                arch: rec.node.arch.clone(),
                shape,
                name,
            };
            match (&guest.shape.host, self) {
                (Some(h), _) => by_host.entry(h.clone()).or_default().push(guest),
                // A guest with no hypervisor at all (rmvm'd before) is gone.
                (None, Guests::Remove { .. }) if !vms.has_own_endpoint(&info) => {
                    out.push((guest.name, Ok(tokens::ABSENT.into())))
                }
                (None, Guests::Remove { .. }) => on_own.push((guest, info)),
                (None, _) => out.push((
                    guest.name,
                    Err(DriverError::invalid(
                        "control_info.vm_host: not set (mkvm --host HYPERVISOR)".into(),
                    )),
                )),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (host, guests) in by_host {
            let Some(info) = batch.vm_hosts.get(&host).cloned() else {
                for g in guests {
                    out.push((
                        g.name,
                        Err(DriverError::invalid(format!(
                            "control_info.vm_host: no node `{host}`"
                        ))),
                    ));
                }
                continue;
            };
            let vms = vms.clone();
            let work = match self {
                Guests::Create { source } => Ok(source.clone()),
                Guests::Remove { purge } => Err(*purge),
            };
            tasks.spawn(async move {
                match work {
                    Ok(source) => vms.create_guests(&host, &info, guests, source).await,
                    Err(purge) => vms.remove_guests(Some(&host), &info, guests, purge).await,
                }
            });
        }
        let purge = matches!(self, Guests::Remove { purge: true });
        for (guest, info) in on_own {
            let vms = vms.clone();
            tasks.spawn(async move { vms.remove_guests(None, &info, vec![guest], purge).await });
        }
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(results) => out.extend(results),
                Err(e) => tracing::error!("VM batch failed: {e}"),
            }
        }
        out
    }
}
