//! RabbitMQ through lapin 4.
//!
//! - One connection per process, auto-recovering (lapin replays exchanges,
//!   queues, bindings, consumers, QoS and confirm mode after a reconnect).
//! - Requests: published with confirms to the durable direct exchange
//!   `xcat3`, routing key = conductor host, `mandatory` (a host with no
//!   queue is an error at once), and a per-message expiration equal to the
//!   time left before the request's deadline: a conductor that comes back
//!   late never sees it.
//! - Replies: direct reply-to (`amq.rabbitmq.reply-to`), routed to the
//!   waiting caller by correlation id.
//! - Conductors: one durable queue `xcat3.conductor.<host>` each, prefetch
//!   matched to their concurrency, ack after the work is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::mpsc;

use super::{Bus, BusError, Delivery, EXCHANGE, Responder, queue_name};
use crate::rpc::{ReplyBatch, Request, now_ms};

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

fn transport(e: impl std::fmt::Display) -> BusError {
    BusError::Transport(e.to_string())
}

/// A caller waiting for reply batches, until `deadline_ms`.
struct Waiter {
    tx: mpsc::Sender<ReplyBatch>,
    deadline_ms: i64,
}

type Waiters = Arc<Mutex<HashMap<String, Waiter>>>;

pub struct AmqpBus {
    conn: Connection,
    /// Confirm-mode channel for requests and replies; it also consumes
    /// direct reply-to (which must happen on the publishing channel).
    publish: Channel,
    waiters: Waiters,
    /// Consuming channels by host (to cancel on shutdown).
    consumers: Mutex<HashMap<String, Channel>>,
}

impl AmqpBus {
    pub async fn connect(url: &str) -> Result<AmqpBus, BusError> {
        let conn = Connection::connect(url, ConnectionProperties::default().enable_auto_recover())
            .await
            .map_err(|e| BusError::Transport(format!("connecting to {}: {e}", redact(url))))?;
        let publish = conn.create_channel().await.map_err(transport)?;
        declare_exchange(&publish).await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(transport)?;
        let waiters: Waiters = Arc::default();
        let replies = publish
            .basic_consume(
                REPLY_TO.into(),
                format!("xcat3-replies-{}", uuid::Uuid::new_v4())
                    .as_str()
                    .into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(transport)?;
        tokio::spawn(route_replies(replies, publish.clone(), waiters.clone()));
        Ok(AmqpBus {
            conn,
            publish,
            waiters,
            consumers: Mutex::default(),
        })
    }

    /// Publishes with a confirm; after a connection error, waits for lapin's
    /// recovery and tries once more.
    async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        props: BasicProperties,
        mandatory: bool,
    ) -> Result<(), BusError> {
        let mut retried = false;
        loop {
            let attempt = async {
                let confirm = self
                    .publish
                    .basic_publish(
                        exchange.into(),
                        routing_key.into(),
                        BasicPublishOptions {
                            mandatory,
                            ..Default::default()
                        },
                        payload,
                        props.clone(),
                    )
                    .await?
                    .await?;
                Ok::<_, lapin::Error>(confirm)
            };
            match attempt.await {
                Ok(confirm) => {
                    let nack = confirm.is_nack();
                    if confirm.take_message().is_some() {
                        // Returned as unroutable: no queue is bound for it.
                        return Err(BusError::NoConsumer(routing_key.to_string()));
                    }
                    if nack {
                        return Err(BusError::Transport(
                            "RabbitMQ refused the message (nack)".into(),
                        ));
                    }
                    return Ok(());
                }
                Err(e) if !retried => {
                    retried = true;
                    tracing::warn!(error = %e, "publish failed; waiting for the bus to recover");
                    self.publish.wait_for_recovery(e).await.map_err(transport)?;
                }
                Err(e) => return Err(transport(e)),
            }
        }
    }
}

async fn declare_exchange(ch: &Channel) -> Result<(), BusError> {
    ch.exchange_declare(
        EXCHANGE.into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(transport)
}

/// Hands each reply batch to its waiter; forgets waiters that are done,
/// gone, or past their deadline.
async fn route_replies(mut replies: lapin::Consumer, channel: Channel, waiters: Waiters) {
    while let Some(d) = replies.next().await {
        let d = match d {
            Ok(d) => d,
            Err(e) => {
                if channel.wait_for_recovery(e).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let Some(corr) = d
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.to_string())
        else {
            continue;
        };
        let batch: ReplyBatch = match serde_json::from_slice(&d.data) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable reply dropped");
                continue;
            }
        };
        let tx = {
            let mut w = match waiters.lock() {
                Ok(w) => w,
                Err(_) => break,
            };
            let now = now_ms();
            w.retain(|_, v| v.deadline_ms > now && !v.tx.is_closed());
            let tx = w.get(&corr).map(|v| v.tx.clone());
            if batch.done {
                w.remove(&corr);
            }
            tx
        };
        if let Some(tx) = tx {
            let _ = tx.send(batch).await;
        }
    }
}

struct AmqpResponder {
    channel: Channel,
    reply_to: Option<String>,
    correlation_id: Option<String>,
    acker: lapin::Acker,
}

#[async_trait]
impl Responder for AmqpResponder {
    async fn reply(&self, batch: &ReplyBatch) -> Result<(), BusError> {
        let (Some(to), Some(corr)) = (&self.reply_to, &self.correlation_id) else {
            return Ok(());
        };
        let body = serde_json::to_vec(batch)?;
        self.channel
            .basic_publish(
                "".into(),
                to.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default()
                    .with_correlation_id(corr.as_str().into())
                    .with_content_type("application/json".into()),
            )
            .await
            .map_err(transport)?
            .await
            .map_err(transport)?;
        Ok(())
    }

    async fn ack(&self) -> Result<(), BusError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(transport)
    }
}

#[async_trait]
impl Bus for AmqpBus {
    async fn call(
        &self,
        host: &str,
        request: &Request,
    ) -> Result<mpsc::Receiver<ReplyBatch>, BusError> {
        let left = request.deadline_ms - now_ms();
        if left <= 0 {
            return Err(BusError::Transport(
                "the request's deadline has already passed".into(),
            ));
        }
        let corr = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = mpsc::channel(64);
        self.waiters
            .lock()
            .map_err(|_| transport("reply table poisoned"))?
            .insert(
                corr.clone(),
                Waiter {
                    tx,
                    deadline_ms: request.deadline_ms,
                },
            );
        let body = serde_json::to_vec(request)?;
        let props = BasicProperties::default()
            .with_correlation_id(corr.as_str().into())
            .with_reply_to(REPLY_TO.into())
            .with_expiration(left.to_string().as_str().into())
            .with_content_type("application/json".into());
        if let Err(e) = self
            .publish_confirmed(EXCHANGE, host, &body, props, true)
            .await
        {
            if let Ok(mut w) = self.waiters.lock() {
                w.remove(&corr);
            }
            return Err(e);
        }
        Ok(rx)
    }

    async fn consume(
        &self,
        host: &str,
        prefetch: u16,
    ) -> Result<mpsc::Receiver<Delivery>, BusError> {
        let ch = self.conn.create_channel().await.map_err(transport)?;
        declare_exchange(&ch).await?;
        ch.basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(transport)?;
        let queue = queue_name(host);
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(transport)?;
        ch.queue_bind(
            queue.as_str().into(),
            EXCHANGE.into(),
            host.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(transport)?;
        let consumer = ch
            .basic_consume(
                queue.as_str().into(),
                format!("conductor-{host}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(transport)?;
        self.consumers
            .lock()
            .map_err(|_| transport("consumer table poisoned"))?
            .insert(host.to_string(), ch.clone());
        let (tx, rx) = mpsc::channel(prefetch.max(1) as usize);
        tokio::spawn(forward_deliveries(consumer, ch, self.publish.clone(), tx));
        Ok(rx)
    }

    async fn stop_consuming(&self, host: &str) -> Result<(), BusError> {
        let ch = self
            .consumers
            .lock()
            .map_err(|_| transport("consumer table poisoned"))?
            .remove(host);
        if let Some(ch) = ch {
            ch.basic_cancel(
                format!("conductor-{host}").as_str().into(),
                BasicCancelOptions::default(),
            )
            .await
            .map_err(transport)?;
        }
        Ok(())
    }
}

async fn forward_deliveries(
    mut consumer: lapin::Consumer,
    channel: Channel,
    replies: Channel,
    tx: mpsc::Sender<Delivery>,
) {
    while let Some(d) = consumer.next().await {
        let d: AmqpDelivery = match d {
            Ok(d) => d,
            Err(e) => {
                if channel.wait_for_recovery(e).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let request: Request = match serde_json::from_slice(&d.data) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "undecodable request rejected");
                let _ = d.acker.reject(BasicRejectOptions { requeue: false }).await;
                continue;
            }
        };
        let responder = AmqpResponder {
            channel: replies.clone(),
            reply_to: d.properties.reply_to().as_ref().map(|s| s.to_string()),
            correlation_id: d
                .properties
                .correlation_id()
                .as_ref()
                .map(|s| s.to_string()),
            acker: d.acker,
        };
        if tx
            .send(Delivery {
                request,
                responder: Box::new(responder),
            })
            .await
            .is_err()
        {
            break;
        }
    }
}

/// Hides the password in a URL before it is shown.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}
