//! Temporary guests (`mkvm --expire-after`): every `[conductor]
//! expiry_interval` seconds, the
//! guests past their `expires_at` whose hypervisor this conductor owns in
//! the ring are removed as `rmvm --purge` removes them (undefined, disks
//! deleted), then deleted from the inventory. Each sweep that removes
//! some is a request in the history (`rmvm --purge (expired)`, requested
//! by `conductor HOST`), with every guest's result.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xcat3_bus::Responder;
use xcat3_common::model;
use xcat3_common::rpc::{Action, NodeResult, ReplyBatch, Request, now_ms};
use xcat3_db::{history, nodes as node_db};

use crate::runner::Runner;

pub async fn run(runner: Arc<Runner>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&runner).await {
            tracing::error!(error = %e, "expired guests: sweep failed");
        }
    }
}

/// Removes the expired guests this conductor owns; their names.
pub async fn sweep(runner: &Arc<Runner>) -> Result<Vec<String>, String> {
    let due = node_db::expired(&runner.db, chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let ring = runner.membership.ring().await.map_err(|e| e.to_string())?;
    let mut routes = BTreeMap::new();
    let mut mine = Vec::new();
    for (name, control_info) in due {
        let info = node_db::parse_map(&control_info);
        let key = model::vm_host(&info).map(str::to_string);
        if ring.owner(key.as_deref().unwrap_or(&name)) != Some(runner.host.as_str()) {
            continue;
        }
        if let Some(h) = key {
            routes.insert(name.clone(), h);
        }
        mine.push(name);
    }
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    let id = format!("expire-{}", xcat3_common::random_hex(16));
    let action = Action::VmRemove { purge: true };
    history::start(
        &runner.db,
        &id,
        "rmvm --purge (expired)",
        Some(&format!("conductor {}", runner.host)),
        mine.len(),
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!(guests = mine.len(), request_id = %id, "removing expired guests");
    let collected = Collect::default();
    let req = Request {
        request_id: id.clone(),
        action,
        nodes: mine,
        deadline_ms: now_ms() + 600_000,
        routes,
        record: true,
    };
    runner.run(req, &collected).await;
    let results = collected.0.lock().expect("results lock").clone();
    let gone: Vec<String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| n.clone())
        .collect();
    let failed = results.len() - gone.len();
    if !gone.is_empty() {
        let deleted = node_db::delete(&runner.db, &gone)
            .await
            .map_err(|e| e.to_string())?;
        for (n, r) in deleted {
            if let Err(e) = r {
                tracing::warn!(node = n, error = %e, "expired guest removed but its node not deleted");
            }
        }
    }
    history::finish(&runner.db, &id, &[], failed)
        .await
        .map_err(|e| e.to_string())?;
    Ok(gone)
}

/// Keeps the results of a conductor's own request.
#[derive(Default)]
struct Collect(Mutex<BTreeMap<String, NodeResult>>);

#[async_trait::async_trait]
impl Responder for Collect {
    async fn reply(&self, batch: &ReplyBatch) -> Result<(), xcat3_bus::BusError> {
        let mut all = self.0.lock().expect("results lock");
        for (n, r) in &batch.results {
            if let NodeResult::Error(e) = r {
                tracing::warn!(node = n, kind = %e.kind, error = %e.message, "expired guest not removed");
            }
            all.insert(n.clone(), r.clone());
        }
        Ok(())
    }

    async fn ack(&self) -> Result<(), xcat3_bus::BusError> {
        Ok(())
    }
}
