//! The boot step only the conductor sees: `image fetched`, when a node
//! took its overlay (iPXE fetches kernel, root archive and overlay in that
//! order, so the last one means all three are in the node's memory).
//! Recorded in bulk: a mass reboot of 10,000 nodes is a few statements a
//! second, not 10,000.

use std::time::Duration;

use chrono::Utc;
use sea_orm::Value;
use tokio::sync::mpsc;
use xcat3_common::agent::Step;
use xcat3_db::{Db, nodes as node_db};

/// How long fetches are gathered before they are written.
const BATCH: Duration = Duration::from_millis(500);

/// Where the HTTP server tells of a fetched overlay (the node's name).
#[derive(Clone)]
pub struct FetchedImages(mpsc::UnboundedSender<String>);

impl FetchedImages {
    /// Starts the recorder on `db`.
    pub fn record_into(db: Db) -> FetchedImages {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(record(db, rx));
        FetchedImages(tx)
    }

    pub fn fetched(&self, node: &str) {
        let _ = self.0.send(node.to_string());
    }
}

async fn record(db: Db, mut rx: mpsc::UnboundedReceiver<String>) {
    while let Some(first) = rx.recv().await {
        let mut names = vec![first];
        tokio::time::sleep(BATCH).await;
        while let Ok(n) = rx.try_recv() {
            names.push(n);
        }
        names.sort_unstable();
        names.dedup();
        if let Err(e) = write(&db, &names).await {
            tracing::warn!(nodes = names.len(), error = %e, "recording `image fetched` failed");
        }
    }
}

/// A deploying node gets the step; a `booted` (stateless) node is booting
/// again: `deploying` from now, its deploy timeout counting.
async fn write(db: &Db, names: &[String]) -> Result<(), xcat3_db::DbError> {
    let step = Step::ImageFetched.as_str();
    let rows: Vec<(String, Vec<Value>)> = names
        .iter()
        .map(|n| (n.clone(), vec![Some(step.to_string()).into()]))
        .collect();
    node_db::set_columns(
        db,
        &["deploy_step"],
        &rows,
        Some(("state", "deploying".into())),
    )
    .await?;
    let now = Utc::now();
    let rebooting: Vec<(String, Vec<Value>)> = names
        .iter()
        .map(|n| {
            (
                n.clone(),
                vec![
                    Some("deploying".to_string()).into(),
                    Some(now).into(),
                    Some(step.to_string()).into(),
                    Option::<String>::None.into(),
                ],
            )
        })
        .collect();
    node_db::set_columns(
        db,
        &["state", "state_changed_at", "deploy_step", "last_error"],
        &rebooting,
        Some(("state", "booted".into())),
    )
    .await?;
    Ok(())
}
