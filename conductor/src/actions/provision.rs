//! `deploy`: DHCP reservations, boot files and answer files, written in
//! bulk (not node by node) by the [`Provisioner`](crate::provision).
//! `nodeset` also sets each node's next boot to the network once, through
//! its management driver, between preparing and recording.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use xcat3_common::model::tokens;
use xcat3_common::rpc::{BootDevice, NodeError, NodeResult, ProvisionTarget};
use xcat3_db::nodes::NodeRecord;

use super::{ActionModule, Batch, NodeStep, Results, boot_device};
use crate::provision::Prepared;
use crate::runner::{Runner, node_info};

pub struct Provision {
    pub target: ProvisionTarget,
}

#[async_trait]
impl ActionModule for Provision {
    fn locks(&self) -> bool {
        true
    }

    fn needs_nics(&self) -> bool {
        true
    }

    async fn run(&self, runner: &Arc<Runner>, batch: Batch<'_>, out: &Results) {
        let results = match &self.target {
            ProvisionTarget::Nodeset { osimage } => {
                deploy(runner, &batch, osimage.as_deref(), false).await
            }
            ProvisionTarget::Takeover => deploy(runner, &batch, None, true).await,
            other => runner.actors().provisioner.run(&batch.records, other).await,
        };
        for (name, r) in results {
            let r = match r {
                Ok(()) => NodeResult::Ok(tokens::OK.into()),
                Err(e) => NodeResult::Error(e),
            };
            let _ = out.send((name, r, None));
        }
    }
}

/// `nodeset` (or, with `takeover`, re-creating a deploy another conductor
/// prepared): reservations, install entries and answer files in bulk,
/// then each node's next boot set to the network once (always, for a
/// stateless image) through its
/// management driver (nodes without `mgt` are booted by hand), then the
/// states recorded: `deploying`, or `deploy failed` with the reason when
/// the boot device could not be set.
async fn deploy(
    runner: &Arc<Runner>,
    batch: &Batch<'_>,
    osimage: Option<&str>,
    takeover: bool,
) -> Vec<(String, Result<(), NodeError>)> {
    let provisioner = &runner.actors().provisioner;
    let records = &batch.records;
    let mut out = Vec::with_capacity(records.len());
    let mut ready = Vec::with_capacity(records.len());
    // The key conductors log in with goes into every OS we put there
    // (read once per conductor, `shell::Shell`).
    let cluster_key = match runner.shell().key(&runner.db).await {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(error = %e, "deploying without the cluster's SSH key: exec and copy will be refused by these nodes");
            None
        }
    };
    let key = cluster_key.as_ref().map(|k| k.public.as_str());
    for (name, r) in provisioner
        .prepare_deploy(records, osimage, takeover, key)
        .await
    {
        match r {
            Ok(p) => ready.push(p),
            Err(e) => out.push((name, Err(e))),
        }
    }
    let mut failed: HashMap<String, NodeError> = HashMap::new();
    if !takeover {
        let by_name: HashMap<&str, &NodeRecord> =
            records.iter().map(|r| (r.node.name.as_str(), r)).collect();
        let net_once: Arc<dyn NodeStep> = Arc::new(boot_device::Set {
            device: BootDevice::Net,
            persistent: false,
        });
        // A stateless node boots its image at every start.
        let net_always: Arc<dyn NodeStep> = Arc::new(boot_device::Set {
            device: BootDevice::Net,
            persistent: true,
        });
        let mut tasks = tokio::task::JoinSet::new();
        for p in &ready {
            let rec = by_name[p.name.as_str()];
            if rec.node.mgt.is_none() {
                continue;
            }
            let info = node_info(rec, &batch.vm_hosts);
            let step = if p.stateless { &net_always } else { &net_once };
            let (runner, step) = (runner.clone(), step.clone());
            let deadline_ms = batch.request.deadline_ms;
            tasks.spawn(async move {
                let (r, _) = runner.act(&info, step.as_ref(), deadline_ms).await;
                (info.name, r)
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((name, NodeResult::Error(e))) = done {
                let message = format!(
                    "setting the next boot device to the network failed: {}",
                    e.message
                );
                failed.insert(name, NodeError { message, ..e });
            }
        }
    }
    let (ok, not): (Vec<Prepared>, Vec<Prepared>) = ready
        .into_iter()
        .partition(|p| !failed.contains_key(&p.name));
    let failed: Vec<(String, NodeError)> = not
        .into_iter()
        .filter_map(|p| failed.remove(&p.name).map(|e| (p.name, e)))
        .collect();
    let recorded = if takeover {
        provisioner.record_takeover(&ok).await
    } else {
        let reasons: Vec<(String, String)> = failed
            .iter()
            .map(|(n, e)| (n.clone(), e.message.clone()))
            .collect();
        provisioner.record_deploy(&ok, &reasons).await
    };
    match recorded {
        Ok(()) => {
            out.extend(ok.into_iter().map(|p| (p.name, Ok(()))));
            out.extend(failed.into_iter().map(|(n, e)| (n, Err(e))));
        }
        Err(e) => {
            let why = runner.internal(format!("recording the deploy: {e}"));
            out.extend(ok.into_iter().map(|p| (p.name, Err(why.clone()))));
            out.extend(failed.into_iter().map(|(n, _)| (n, Err(why.clone()))));
        }
    }
    out
}
