//! The ring of live conductors, built from the `services` table (where
//! `service.rs` registers and heartbeats), cached briefly and rebuilt when
//! the live set changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use xcat3_common::ring::HashRing;
use xcat3_db::{Db, DbError, services};

/// How long a ring is reused before the live set is read again. Short, so
/// a joiner or a dead conductor changes placement within seconds.
const RING_TTL: Duration = Duration::from_secs(2);

pub struct Membership {
    db: Db,
    heartbeat_timeout_s: u64,
    /// This conductor: a ring without it is not cached (see [`ring`](Self::ring)).
    host: String,
    cached: Mutex<Option<(Instant, Arc<HashRing>)>>,
}

impl Membership {
    pub fn new(db: Db, heartbeat_timeout_s: u64, host: String) -> Membership {
        Membership {
            db,
            heartbeat_timeout_s,
            host,
            cached: Mutex::new(None),
        }
    }

    /// The ring of live conductors.
    pub async fn ring(&self) -> Result<Arc<HashRing>, DbError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, ring)) = cached.as_ref()
            && at.elapsed() < RING_TTL
        {
            return Ok(ring.clone());
        }
        let live = services::live_conductors(&self.db, self.heartbeat_timeout_s).await?;
        let ring = match cached.as_ref() {
            Some((_, r)) if r.hosts() == live.as_slice() => r.clone(),
            _ => {
                tracing::info!(conductors = ?live, "hash ring rebuilt");
                xcat3_common::metrics::gauge(
                    "xcat3_conductor_ring_size",
                    "Conductors in the hash ring, as this conductor last built it.",
                    &[],
                    live.len() as f64,
                );
                Arc::new(HashRing::new(&live))
            }
        };
        // A ring without us was read while our heartbeat was late (a
        // pause, a thaw, a slow start): it is used once, not kept, so the
        // request that follows our next heartbeat sees us.
        if live.contains(&self.host) {
            *cached = Some((Instant::now(), ring.clone()));
        } else {
            *cached = None;
        }
        Ok(ring)
    }
}
