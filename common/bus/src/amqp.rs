//! RabbitMQ through lapin 4.
//!
//! - Requests: published with confirms to the durable direct exchange
//!   `xcat3`, routing key = conductor host, `mandatory` (a host with no
//!   queue is an error at once), and a per-message expiration equal to the
//!   time left before the request's deadline: a conductor that comes back
//!   late never sees it.
//! - Replies: direct reply-to (`amq.rabbitmq.reply-to`), consumed on the
//!   publishing channel and routed to the waiting caller by correlation id.
//! - Conductors: one durable queue `xcat3.conductor.<host>` each, prefetch
//!   matched to their concurrency, ack after the work is done.
//! - Recovery: one connection per process (a [`Link`]), rebuilt on demand
//!   after a failure; consumers are supervised and re-attach themselves.
//!   lapin's own auto-recovery is not used: it cannot restore a direct
//!   reply-to consumer, and a channel closed by that error never recovers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::{mpsc, watch};

use super::{Bus, BusError, Delivery, EXCHANGE, Responder, queue_name};
use xcat3_common::config::redact_url as redact;
use xcat3_common::rpc::{ReplyBatch, Request, now_ms};

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

fn transport(e: impl std::fmt::Display) -> BusError {
    BusError::Transport(e.to_string())
}

/// Callers waiting for reply batches, by correlation id.
type Waiters = Arc<Mutex<HashMap<String, Waiter>>>;

struct Waiter {
    tx: mpsc::Sender<ReplyBatch>,
    deadline_ms: i64,
}

/// One live connection with its confirm-mode publishing channel, which
/// also consumes direct reply-to for the requests it published.
struct Link {
    conn: Connection,
    publish: Channel,
    waiters: Waiters,
}

impl Link {
    fn healthy(&self) -> bool {
        self.conn.status().connected() && self.publish.status().connected()
    }
}

pub struct AmqpBus {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
    /// Stop signals of the supervised consumers, by host.
    consumers: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl AmqpBus {
    /// Connects once now, so a wrong URL or a missing broker is reported at
    /// start; later failures reconnect on demand.
    pub async fn connect(url: &str) -> Result<AmqpBus, BusError> {
        let inner = Arc::new(Inner {
            url: url.to_string(),
            link: tokio::sync::Mutex::new(None),
            consumers: Mutex::default(),
        });
        inner.link().await?;
        Ok(AmqpBus { inner })
    }
}

impl Inner {
    /// The current link, (re)built if there is none or it failed.
    async fn link(&self) -> Result<Arc<Link>, BusError> {
        let mut current = self.link.lock().await;
        if let Some(l) = current.as_ref()
            && l.healthy()
        {
            return Ok(l.clone());
        }
        if current.take().is_some() {
            tracing::warn!(url = %redact(&self.url), "bus connection lost; reconnecting");
            xcat3_common::metrics::bus_error("reconnect");
        }
        let conn = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .map_err(|e| {
                BusError::Transport(format!("connecting to {}: {e}", redact(&self.url)))
            })?;
        let publish = conn.create_channel().await.map_err(transport)?;
        declare_exchange(&publish).await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(transport)?;
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
        let waiters: Waiters = Arc::default();
        tokio::spawn(route_replies(replies, waiters.clone()));
        let link = Arc::new(Link {
            conn,
            publish,
            waiters,
        });
        *current = Some(link.clone());
        Ok(link)
    }

    /// Forgets `failed` (if it is still current) so the next use reconnects.
    async fn drop_link(&self, failed: &Arc<Link>) {
        let mut current = self.link.lock().await;
        if current.as_ref().is_some_and(|l| Arc::ptr_eq(l, failed)) {
            *current = None;
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

/// Publishes with a confirm on `ch`. `Ok(false)`: returned as unroutable.
async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    props: BasicProperties,
    mandatory: bool,
) -> Result<bool, BusError> {
    let confirm = ch
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory,
                ..Default::default()
            },
            payload,
            props,
        )
        .await
        .map_err(transport)?
        .await
        .map_err(transport)?;
    if confirm.is_nack() {
        return Err(transport("RabbitMQ refused the message (nack)"));
    }
    Ok(confirm.take_message().is_none())
}

/// Hands each reply batch to its waiter. When the consumer ends (the link
/// died) every waiter is dropped, so callers learn at once that their
/// replies are lost instead of waiting for the deadline.
async fn route_replies(mut replies: lapin::Consumer, waiters: Waiters) {
    while let Some(Ok(d)) = replies.next().await {
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
            let Ok(mut w) = waiters.lock() else { break };
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
    if let Ok(mut w) = waiters.lock() {
        w.clear();
    }
}

struct AmqpResponder {
    /// The conductor's link at delivery time: replies and the ack go back
    /// over the connection the request came in on.
    link: Arc<Link>,
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
        let props = BasicProperties::default()
            .with_correlation_id(corr.as_str().into())
            .with_content_type("application/json".into());
        publish_confirmed(&self.link.publish, "", to, &body, props, false).await?;
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
        let body = serde_json::to_vec(request)?;
        // One retry on a fresh link: the first use after a broker restart
        // finds the old connection dead.
        let mut last_err = None;
        for _ in 0..2 {
            let left = request.deadline_ms - now_ms();
            if left <= 0 {
                return Err(BusError::Transport(
                    "the request's deadline has passed".into(),
                ));
            }
            let link = self.inner.link().await?;
            let corr = uuid::Uuid::new_v4().to_string();
            let (tx, rx) = mpsc::channel(64);
            link.waiters
                .lock()
                .map_err(|_| transport("reply table poisoned"))?
                .insert(
                    corr.clone(),
                    Waiter {
                        tx,
                        deadline_ms: request.deadline_ms,
                    },
                );
            let props = BasicProperties::default()
                .with_correlation_id(corr.as_str().into())
                .with_reply_to(REPLY_TO.into())
                .with_expiration(left.to_string().as_str().into())
                .with_content_type("application/json".into());
            let res = publish_confirmed(&link.publish, EXCHANGE, host, &body, props, true).await;
            if !matches!(res, Ok(true))
                && let Ok(mut w) = link.waiters.lock()
            {
                w.remove(&corr);
            }
            match res {
                Ok(true) => return Ok(rx),
                // Routed nowhere: no conductor queue is bound for `host`.
                Ok(false) => return Err(BusError::NoConsumer(host.to_string())),
                Err(e) => {
                    tracing::warn!(error = %e, host, "publish failed");
                    xcat3_common::metrics::bus_error("publish");
                    self.inner.drop_link(&link).await;
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| transport("publish failed")))
    }

    async fn consume(
        &self,
        host: &str,
        prefetch: u16,
    ) -> Result<mpsc::Receiver<Delivery>, BusError> {
        // Attach once now so that a broken setup fails the start; the
        // supervisor re-attaches after failures.
        let link = self.inner.link().await?;
        let consumer = attach(&link, host, prefetch).await?;
        let (tx, rx) = mpsc::channel(prefetch.max(1) as usize);
        let (stop_tx, stop_rx) = watch::channel(false);
        self.inner
            .consumers
            .lock()
            .map_err(|_| transport("consumer table poisoned"))?
            .insert(host.to_string(), stop_tx);
        tokio::spawn(supervise(
            self.inner.clone(),
            host.to_string(),
            prefetch,
            (link, consumer),
            tx,
            stop_rx,
        ));
        Ok(rx)
    }

    async fn check(&self) -> Result<(), BusError> {
        self.inner.link().await.map(drop)
    }

    async fn stop_consuming(&self, host: &str) -> Result<(), BusError> {
        let stop = self
            .inner
            .consumers
            .lock()
            .map_err(|_| transport("consumer table poisoned"))?
            .remove(host);
        if let Some(s) = stop {
            let _ = s.send(true);
        }
        Ok(())
    }
}

/// Declares `host`'s queue and starts consuming it on a new channel.
async fn attach(
    link: &Link,
    host: &str,
    prefetch: u16,
) -> Result<(Channel, lapin::Consumer), BusError> {
    let ch = link.conn.create_channel().await.map_err(transport)?;
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
    Ok((ch, consumer))
}

/// Forwards deliveries of `host`'s queue; when the consumer fails, waits
/// (1 s, doubling to 10 s) and re-attaches on a fresh link, until stopped.
async fn supervise(
    inner: Arc<Inner>,
    host: String,
    prefetch: u16,
    first: (Arc<Link>, (Channel, lapin::Consumer)),
    tx: mpsc::Sender<Delivery>,
    mut stop: watch::Receiver<bool>,
) {
    let mut current = Some(first);
    let mut backoff = Duration::from_secs(1);
    loop {
        let (link, (ch, mut consumer)) = match current.take() {
            Some(c) => c,
            None => {
                let attached = async {
                    let link = inner.link().await?;
                    let c = attach(&link, &host, prefetch).await?;
                    Ok::<_, BusError>((link, c))
                };
                match attached.await {
                    Ok(c) => {
                        tracing::info!(host, "consuming again after a bus failure");
                        backoff = Duration::from_secs(1);
                        c
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, host, "cannot attach to the bus yet");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                }
            }
        };
        loop {
            let next = tokio::select! {
                d = consumer.next() => d,
                _ = stop.changed() => {
                    let tag = format!("conductor-{host}");
                    let _ = ch.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                    return;
                }
            };
            let d = match next {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, host, "consumer failed");
                    xcat3_common::metrics::bus_error("consume");
                    break;
                }
                None => break,
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
                link: link.clone(),
                reply_to: d.properties.reply_to().as_ref().map(|s| s.to_string()),
                correlation_id: d
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|s| s.to_string()),
                acker: d.acker,
            };
            let delivery = Delivery {
                request,
                responder: Box::new(responder),
            };
            if tx.send(delivery).await.is_err() {
                return;
            }
        }
        inner.drop_link(&link).await;
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
    }
}
