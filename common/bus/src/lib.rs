//! The message bus between the API and conductors.
//!
//! Two implementations behind one trait: `amqp` (RabbitMQ through lapin:
//! durable direct exchange `xcat3`, one queue `xcat3.conductor.<host>` per
//! conductor, direct reply-to, publisher confirms, per-message expiration)
//! and `memory` (tokio channels, for standalone mode and tests). Dispatch
//! code sees only [`Bus`], so it runs unchanged on both.

mod amqp;
mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

pub use amqp::AmqpBus;
pub use memory::MemoryBus;

use xcat3_common::rpc::{ReplyBatch, Request};

/// The direct exchange every conductor queue is bound to.
pub const EXCHANGE: &str = "xcat3";

/// The queue of conductor `host`.
pub fn queue_name(host: &str) -> String {
    format!("xcat3.conductor.{host}")
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus: {0}")]
    Transport(String),
    #[error("conductor {0} is not consuming")]
    NoConsumer(String),
    #[error("bus: cannot encode or decode a message: {0}")]
    Codec(#[from] serde_json::Error),
}

/// A request received by a conductor, with the way back.
pub struct Delivery {
    pub request: Request,
    pub responder: Box<dyn Responder>,
}

/// Sends reply batches for one delivery, then acknowledges it.
#[async_trait]
pub trait Responder: Send + Sync {
    /// Sends one batch to the caller (best effort: a caller that gave up
    /// is not an error for the conductor).
    async fn reply(&self, batch: &ReplyBatch) -> Result<(), BusError>;
    /// Acknowledges the delivery once its work is done (AMQP: `basic_ack`),
    /// so a conductor that dies mid-request does not lose it silently.
    async fn ack(&self) -> Result<(), BusError>;
}

#[async_trait]
pub trait Bus: Send + Sync {
    /// Sends `request` to conductor `host`. Reply batches arrive on the
    /// receiver; the one with `done = true` is last. The receiver closes
    /// early if the bus loses the reply path; callers stop at the request's
    /// deadline in any case.
    async fn call(
        &self,
        host: &str,
        request: &Request,
    ) -> Result<mpsc::Receiver<ReplyBatch>, BusError>;

    /// Starts consuming conductor `host`'s queue with at most `prefetch`
    /// unacknowledged deliveries in flight.
    async fn consume(
        &self,
        host: &str,
        prefetch: u16,
    ) -> Result<mpsc::Receiver<Delivery>, BusError>;

    /// Stops consuming `host`'s queue (graceful shutdown); deliveries not
    /// yet taken go back to the queue.
    async fn stop_consuming(&self, host: &str) -> Result<(), BusError>;

    /// Whether the bus can carry requests now (reconnecting if needed);
    /// what `/readyz` asks.
    async fn check(&self) -> Result<(), BusError>;
}

/// Connects to `url`: `memory` or `amqp://...`.
pub async fn connect(url: &str) -> Result<Arc<dyn Bus>, BusError> {
    if url == "memory" {
        Ok(Arc::new(MemoryBus::default()))
    } else if url.starts_with("amqp://") || url.starts_with("amqps://") {
        Ok(Arc::new(AmqpBus::connect(url).await?))
    } else {
        Err(BusError::Transport(format!(
            "unknown bus url {url:?} (use amqp://... or memory)"
        )))
    }
}
