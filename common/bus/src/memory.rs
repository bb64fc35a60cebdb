//! The in-process bus: API and conductor in one process (standalone mode).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Bus, BusError, Delivery, Responder};
use xcat3_common::rpc::{ReplyBatch, Request};

/// Queues are channels; a call to a host that is not consuming fails at once.
#[derive(Default)]
pub struct MemoryBus {
    queues: Mutex<HashMap<String, mpsc::Sender<Delivery>>>,
}

struct MemoryResponder(mpsc::Sender<ReplyBatch>);

#[async_trait]
impl Responder for MemoryResponder {
    async fn reply(&self, batch: &ReplyBatch) -> Result<(), BusError> {
        // The caller may have stopped listening (deadline passed): fine.
        let _ = self.0.send(batch.clone()).await;
        Ok(())
    }

    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn call(
        &self,
        host: &str,
        request: &Request,
    ) -> Result<mpsc::Receiver<ReplyBatch>, BusError> {
        let queue = self
            .queues
            .lock()
            .map_err(|_| BusError::Transport("memory bus poisoned".into()))?
            .get(host)
            .cloned()
            .ok_or_else(|| BusError::NoConsumer(host.to_string()))?;
        let (tx, rx) = mpsc::channel(64);
        let delivery = Delivery {
            request: request.clone(),
            responder: Box::new(MemoryResponder(tx)),
        };
        queue
            .send(delivery)
            .await
            .map_err(|_| BusError::NoConsumer(host.to_string()))?;
        Ok(rx)
    }

    async fn consume(
        &self,
        host: &str,
        prefetch: u16,
    ) -> Result<mpsc::Receiver<Delivery>, BusError> {
        let (tx, rx) = mpsc::channel(prefetch.max(1) as usize);
        self.queues
            .lock()
            .map_err(|_| BusError::Transport("memory bus poisoned".into()))?
            .insert(host.to_string(), tx);
        Ok(rx)
    }

    /// In-process: always there.
    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn stop_consuming(&self, host: &str) -> Result<(), BusError> {
        self.queues
            .lock()
            .map_err(|_| BusError::Transport("memory bus poisoned".into()))?
            .remove(host);
        Ok(())
    }
}
