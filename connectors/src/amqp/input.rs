//! The `type: amqp` input: consumes a queue and acks each message once every output has its
//! events, or requeues or dead-letters it (see the delivery rules in the module header).

use super::{lost, peer_error, short, timed, timeout_error, truncate_at_char, AmqpConfig, CONNECT_TIMEOUT, OP_TIMEOUT};
use crate::error::ConnectorError;
use crate::events::{AmqpConnected, MessageDeadLettered, MessageRedelivered, MessageRequeued, RecordInvalid};
use crate::json::{Scan, Scanner};
use crate::secret::redact_url;
use crate::source::{Pending, SourceContext, MAX_BATCH};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Acker, BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use rampart_core::{AckStatus, AckToken, Event, EventId, EventTime, Metrics, Normalizer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a dead-letter publish may wait for its confirm.
const DEAD_LETTER_CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);
/// Invalid messages listed in the input's report.
const MAX_LISTED: usize = 20;
/// Longest reason written into `x-rampart-reason`.
const MAX_REASON: usize = 2048;

/// How a session that got as far as consuming ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// Shutdown fired (or the pipeline closed): the consumer was cancelled and in-flight
    /// messages were given `drain_timeout` to settle.
    Shutdown,
    /// The connection, a channel or the consumer was lost; connect again soon.
    Lost(ConnectorError),
}

/// The `type: amqp` input across its sessions (one connection each): see the module docs.
/// Its supervisor calls [`AmqpInput::session`] until it returns [`SessionEnd::Shutdown`],
/// waiting with backoff between failures.
pub struct AmqpInput {
    cfg: AmqpConfig,
    ctx: SourceContext,
    name: String,
    origin: String,
    peer: String,
    sessions: u64,
    invalid: u64,
    errors: Vec<String>,
}

impl std::fmt::Debug for AmqpInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpInput").field("input", &self.name).field("peer", &self.peer).finish_non_exhaustive()
    }
}

/// What a message needs to be settled after its events have gone through the outputs.
struct Settle {
    acker: Acker,
    status: AckStatus,
    reason: Option<String>,
    original: Original,
}

/// The message as it arrived, kept to dead-letter it.
struct Original {
    body: Vec<u8>,
    properties: BasicProperties,
    exchange: ShortString,
    routing_key: ShortString,
}

impl AmqpInput {
    /// An input that has not connected yet.
    pub fn new(cfg: AmqpConfig, ctx: SourceContext) -> AmqpInput {
        let name = cfg.describe();
        let origin = cfg.origin.clone().unwrap_or_else(|| name.clone());
        let peer = redact_url(cfg.url.expose());
        ctx.metrics.input_waiting(&name, format!("connecting to {peer}"));
        AmqpInput { cfg, ctx, name, origin, peer, sessions: 0, invalid: 0, errors: Vec::new() }
    }

    /// The first invalid messages (`amqp:<queue>: message …: reason`) and, past those, a
    /// count; for the input's report.
    pub fn into_errors(self) -> Vec<String> {
        let mut errors = self.errors;
        if self.invalid > errors.len() as u64 {
            errors.push(format!("{}: … {} invalid messages in all (sent to {})", self.name, self.invalid, self.cfg.dead_letter_exchange));
        }
        errors
    }

    fn peer_error(&self, what: &str, e: &lapin::Error) -> ConnectorError {
        peer_error(&self.name, &self.peer, what, e)
    }

    /// Connects, declares, and consumes until shutdown or until the connection is lost.
    /// `Err` means it did not get as far as consuming; its retry hint says whether trying
    /// again can help.
    ///
    /// The input is ready (`GET /ready`) from when its consumer starts until the session
    /// ends; then it waits, with the reason.
    pub async fn session(&mut self) -> Result<SessionEnd, ConnectorError> {
        let end = self.connect_and_consume().await;
        let why = match &end {
            Ok(SessionEnd::Shutdown) => "stopped".to_string(),
            Ok(SessionEnd::Lost(e)) | Err(e) => e.to_string(),
        };
        self.ctx.metrics.input_waiting(&self.name, why);
        end
    }

    async fn connect_and_consume(&mut self) -> Result<SessionEnd, ConnectorError> {
        let mut shutdown = self.ctx.shutdown.clone();
        let props = ConnectionProperties::default().with_connection_name(format!("rampart {}", self.name).into());
        let conn = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(self.cfg.url.expose(), props)) => match r {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(self.peer_error("cannot connect", &e)),
                Err(_) => return Err(timeout_error(&self.name, &self.peer, "connecting")),
            },
            _ = shutdown.wait() => return Ok(SessionEnd::Shutdown),
        };
        let result = self.consume_on(&conn).await;
        let _ = tokio::time::timeout(OP_TIMEOUT, conn.close(200, "rampart input stopping".into())).await;
        result
    }

    async fn consume_on(&mut self, conn: &Connection) -> Result<SessionEnd, ConnectorError> {
        let op = |what: &'static str, e: lapin::Error| self.peer_error(what, &e);
        let channel = timed(&self.name, &self.peer, "opening a channel", conn.create_channel()).await?.map_err(|e| op("cannot open a channel", e))?;
        let dead_letters = timed(&self.name, &self.peer, "opening a channel", conn.create_channel()).await?.map_err(|e| op("cannot open a channel", e))?;
        timed(&self.name, &self.peer, "enabling publisher confirms", dead_letters.confirm_select(ConfirmSelectOptions::default()))
            .await?
            .map_err(|e| op("cannot enable publisher confirms", e))?;
        timed(&self.name, &self.peer, "setting the prefetch count", channel.basic_qos(self.cfg.prefetch, BasicQosOptions::default()))
            .await?
            .map_err(|e| op("cannot set the prefetch count", e))?;
        self.declare(&channel).await?;
        let tag = self.cfg.consumer_tag.clone().unwrap_or_default();
        let mut consumer = timed(&self.name, &self.peer, "starting the consumer", channel.basic_consume(short(&self.cfg.queue), short(&tag), BasicConsumeOptions::default(), FieldTable::default()))
            .await?
            .map_err(|e| op("cannot consume", e))?;
        AmqpConnected { component: &self.name, peer: &self.peer, reconnect: self.sessions > 0 }.emit(&self.ctx.metrics);
        self.ctx.metrics.input_ready(&self.name);
        self.sessions += 1;

        let (tx, rx) = mpsc::unbounded_channel();
        let in_flight = Arc::new(InFlight::default());
        let settler = Settler {
            rx,
            channel: dead_letters.clone(),
            exchange: self.cfg.dead_letter_exchange.clone(),
            queue: self.cfg.queue.clone(),
            name: self.name.clone(),
            peer: self.peer.clone(),
            metrics: self.ctx.metrics.clone(),
            requeue_delay: self.cfg.requeue_delay,
            in_flight: in_flight.clone(),
        };
        let settling = settler.run();
        tokio::pin!(settling);
        let end = tokio::select! {
            end = self.consume(&mut consumer, &tx, &in_flight) => end,
            e = &mut settling => SessionEnd::Lost(e),
        };
        drop(tx);
        if let SessionEnd::Shutdown = end {
            // Stop deliveries, then give what is in flight a bounded time to settle so its
            // acks go out. Deliveries buffered but not yet read are redelivered on close.
            let _ = tokio::time::timeout(OP_TIMEOUT, channel.basic_cancel(consumer.tag(), BasicCancelOptions::default())).await;
            drop(consumer);
            in_flight.draining.store(true, Ordering::SeqCst);
            let drained = tokio::time::timeout(self.cfg.drain_timeout, async {
                tokio::select! {
                    _ = in_flight.pending.idle() => {}
                    _ = &mut settling => {}
                }
            })
            .await;
            let left = in_flight.pending.len();
            if drained.is_err() || left > 0 {
                tracing::warn!(input = %self.name, "{left} messages unsettled after drain_timeout; RabbitMQ will redeliver them");
            }
        }
        let _ = tokio::time::timeout(OP_TIMEOUT, dead_letters.close(200, "rampart input stopping".into())).await;
        let _ = tokio::time::timeout(OP_TIMEOUT, channel.close(200, "rampart input stopping".into())).await;
        Ok(end)
    }

    /// Declares (or, with `declare: false`, checks) the topology.
    async fn declare(&self, ch: &Channel) -> Result<(), ConnectorError> {
        let cfg = &self.cfg;
        let hint = "set `exchange_type`/`durable` to match what exists, or `declare: false` to use it as it is";
        let (name, peer) = (&self.name, &self.peer);
        if !cfg.declare {
            let passive = QueueDeclareOptions { passive: true, ..Default::default() };
            timed(name, peer, "checking the queue", ch.queue_declare(short(&cfg.queue), passive, FieldTable::default()))
                .await?
                .map_err(|e| self.peer_error(&format!("queue `{}` is not usable (declare is false, so it must exist)", cfg.queue), &e))?;
            let passive = ExchangeDeclareOptions { passive: true, ..Default::default() };
            timed(name, peer, "checking the dead-letter exchange", ch.exchange_declare(short(&cfg.dead_letter_exchange), ExchangeKind::Fanout, passive, FieldTable::default()))
                .await?
                .map_err(|e| self.peer_error(&format!("dead-letter exchange `{}` is not usable (declare is false, so it must exist)", cfg.dead_letter_exchange), &e))?;
            return Ok(());
        }
        let exchange_opts = ExchangeDeclareOptions { durable: cfg.durable, ..Default::default() };
        let queue_opts = QueueDeclareOptions { durable: cfg.durable, ..Default::default() };
        if !cfg.exchange.is_empty() {
            timed(name, peer, "declaring the exchange", ch.exchange_declare(short(&cfg.exchange), cfg.exchange_type.kind(), exchange_opts, FieldTable::default()))
                .await?
                .map_err(|e| self.peer_error(&format!("cannot declare exchange `{}` ({hint})", cfg.exchange), &e))?;
        }
        timed(name, peer, "declaring the queue", ch.queue_declare(short(&cfg.queue), queue_opts, FieldTable::default()))
            .await?
            .map_err(|e| self.peer_error(&format!("cannot declare queue `{}` ({hint})", cfg.queue), &e))?;
        if !cfg.exchange.is_empty() {
            timed(name, peer, "binding the queue", ch.queue_bind(short(&cfg.queue), short(&cfg.exchange), short(&cfg.routing_key), QueueBindOptions::default(), FieldTable::default()))
                .await?
                .map_err(|e| self.peer_error(&format!("cannot bind queue `{}` to `{}`", cfg.queue, cfg.exchange), &e))?;
        }
        let dlx = &cfg.dead_letter_exchange;
        timed(name, peer, "declaring the dead-letter exchange", ch.exchange_declare(short(dlx), ExchangeKind::Fanout, exchange_opts, FieldTable::default()))
            .await?
            .map_err(|e| self.peer_error(&format!("cannot declare dead-letter exchange `{dlx}` ({hint})"), &e))?;
        timed(name, peer, "declaring the dead-letter queue", ch.queue_declare(short(dlx), queue_opts, FieldTable::default()))
            .await?
            .map_err(|e| self.peer_error(&format!("cannot declare dead-letter queue `{dlx}` ({hint})"), &e))?;
        timed(name, peer, "binding the dead-letter queue", ch.queue_bind(short(dlx), short(dlx), short(""), QueueBindOptions::default(), FieldTable::default()))
            .await?
            .map_err(|e| self.peer_error(&format!("cannot bind dead-letter queue `{dlx}`"), &e))?;
        Ok(())
    }

    /// Reads deliveries into batches and hands them to the pipeline until shutdown or loss.
    async fn consume(&mut self, consumer: &mut Consumer, tx: &mpsc::UnboundedSender<Settle>, in_flight: &Arc<InFlight>) -> SessionEnd {
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            let mut next = tokio::select! {
                biased;
                _ = shutdown.wait() => return SessionEnd::Shutdown,
                d = consumer.next() => d,
            };
            let mut batch = Vec::new();
            let mut tokens = Vec::new();
            // Take what has already arrived, up to a batch, without waiting.
            let lost = loop {
                match next {
                    Some(Ok(delivery)) => self.accept(delivery, tx, in_flight, &mut batch, &mut tokens),
                    Some(Err(e)) => break Some(self.peer_error("lost the connection", &e)),
                    None => break Some(lost(&self.name, &self.peer, "the broker cancelled the consumer (was the queue deleted?)")),
                }
                if batch.len() >= MAX_BATCH {
                    break None;
                }
                match consumer.next().now_or_never() {
                    Some(d) => next = d,
                    None => break None,
                }
            };
            if let Some(e) = lost {
                // Their acks could not go out on the dead channel: RabbitMQ redelivers them.
                for t in &tokens {
                    t.report(AckStatus::Errored, "the AMQP channel closed before the message was taken");
                }
                return SessionEnd::Lost(e);
            }
            if !self.ctx.send(batch).await {
                for t in &tokens {
                    t.report(AckStatus::Errored, "the pipeline stopped before taking the message");
                }
                return SessionEnd::Shutdown;
            }
        }
    }

    /// Turns one delivery into events (or a dead letter) with the token that settles it.
    fn accept(&mut self, delivery: Delivery, tx: &mpsc::UnboundedSender<Settle>, in_flight: &Arc<InFlight>, batch: &mut Vec<Event>, tokens: &mut Vec<AckToken>) {
        in_flight.pending.begin();
        if delivery.redelivered {
            MessageRedelivered { input: &self.name }.emit(&self.ctx.metrics);
        }
        let message_id = delivery.properties.message_id().as_ref().map(|m| m.as_str().to_string()).filter(|m| !m.is_empty());
        let parsed = parse_message(&delivery.data, message_id.as_deref(), &self.origin, self.cfg.max_message, &self.ctx.normalizer);
        let tag = delivery.delivery_tag;
        let original = Original { body: delivery.data, properties: delivery.properties, exchange: delivery.exchange, routing_key: delivery.routing_key };
        let acker = delivery.acker;
        let tx = tx.clone();
        let token = AckToken::new(move |status, reason| {
            // The session may be gone (the connection dropped): then the message is
            // redelivered anyway, and there is nothing left to do.
            let _ = tx.send(Settle { acker, status, reason, original });
        });
        match parsed {
            Ok(events) => {
                for mut e in events {
                    e.ack = Some(token.clone());
                    batch.push(e);
                }
                tokens.push(token);
            }
            Err(reason) => {
                self.invalid += 1;
                let shown = match &message_id {
                    Some(m) => format!("{}: message {m}: {reason}", self.name),
                    None => format!("{}: message (delivery {tag}): {reason}", self.name),
                };
                let loud = self.errors.len() < MAX_LISTED;
                RecordInvalid { input: &self.name, message: &shown, count: 1, loud }.emit(&self.ctx.metrics);
                if loud {
                    self.errors.push(shown);
                }
                token.report(AckStatus::Rejected, reason);
            }
        }
    }
}

/// Messages taken but not yet settled in this session.
#[derive(Default)]
struct InFlight {
    pending: Pending,
    /// Shutdown is draining: requeue at once instead of after `requeue_delay`.
    draining: AtomicBool,
}

/// Carries out settlements: ack, requeue, or dead-letter then ack. Runs beside the consumer
/// for the whole session; ends only when the dead-letter channel fails (the session is then
/// restarted, which redeclares it).
struct Settler {
    rx: mpsc::UnboundedReceiver<Settle>,
    channel: Channel,
    exchange: String,
    queue: String,
    name: String,
    peer: String,
    metrics: Arc<Metrics>,
    requeue_delay: Duration,
    in_flight: Arc<InFlight>,
}

impl Settler {
    async fn run(mut self) -> ConnectorError {
        let mut ops = FuturesUnordered::new();
        loop {
            tokio::select! {
                Some(s) = self.rx.recv() => ops.push(self.settle(s)),
                Some(r) = ops.next(), if !ops.is_empty() => {
                    self.in_flight.pending.done();
                    if let Err(e) = r {
                        return e;
                    }
                }
                else => return lost(&self.name, &self.peer, "the settlement queue closed"),
            }
        }
    }

    /// One settlement as a future; `Err` only when the dead-letter channel is unusable.
    fn settle(&self, s: Settle) -> futures::future::BoxFuture<'static, Result<(), ConnectorError>> {
        let (channel, exchange, queue, name, peer, metrics) = (self.channel.clone(), self.exchange.clone(), self.queue.clone(), self.name.clone(), self.peer.clone(), self.metrics.clone());
        let delay = if self.in_flight.draining.load(Ordering::SeqCst) { Duration::ZERO } else { self.requeue_delay };
        let in_flight = self.in_flight.clone();
        Box::pin(async move {
            let Settle { acker, status, reason, original } = s;
            let reason = reason.unwrap_or_default();
            match status {
                AckStatus::Delivered => {
                    ack(&acker, &name).await;
                    Ok(())
                }
                AckStatus::Errored => {
                    if !delay.is_zero() && !in_flight.draining.load(Ordering::SeqCst) {
                        tokio::time::sleep(delay).await;
                    }
                    requeue(&acker, &name, &reason, &metrics).await;
                    Ok(())
                }
                AckStatus::Rejected => match dead_letter(&channel, &exchange, &queue, &reason, &original).await {
                    Ok(()) => {
                        ack(&acker, &name).await;
                        MessageDeadLettered { input: &name, reason: &reason }.emit(&metrics);
                        Ok(())
                    }
                    Err(e) => {
                        // Not dead-lettered: hand it back, so it is not lost.
                        requeue(&acker, &name, &reason, &metrics).await;
                        let message = format!("cannot publish to dead-letter exchange `{exchange}`: {e}");
                        tracing::warn!(input = %name, "{message}");
                        if channel.status().connected() {
                            Ok(())
                        } else {
                            Err(lost(&name, &peer, &message))
                        }
                    }
                },
            }
        })
    }
}

async fn ack(acker: &Acker, name: &str) {
    match acker.ack(BasicAckOptions::default()).await {
        Ok(true) => {}
        Ok(false) => tracing::debug!(input = name, "ack skipped: its channel is gone, RabbitMQ redelivers the message"),
        Err(e) => tracing::debug!(input = name, "ack failed ({e}); RabbitMQ redelivers the message"),
    }
}

async fn requeue(acker: &Acker, name: &str, reason: &str, metrics: &Metrics) {
    match acker.nack(BasicNackOptions { requeue: true, multiple: false }).await {
        Ok(true) => MessageRequeued { input: name, reason }.emit(metrics),
        Ok(false) => tracing::debug!(input = name, "requeue skipped: its channel is gone, RabbitMQ redelivers the message"),
        Err(e) => tracing::debug!(input = name, "requeue failed ({e}); RabbitMQ redelivers the message"),
    }
}

/// Publishes the original message to the dead-letter exchange with the reason in its
/// headers, and waits for the broker's confirm.
async fn dead_letter(channel: &Channel, exchange: &str, queue: &str, reason: &str, original: &Original) -> Result<(), String> {
    let mut headers = original.properties.headers().clone().unwrap_or_default();
    let mut reason = reason.to_string();
    truncate_at_char(&mut reason, MAX_REASON);
    headers.insert(short("x-rampart-reason"), AMQPValue::LongString(LongString::from(reason)));
    headers.insert(short("x-rampart-queue"), AMQPValue::LongString(LongString::from(queue)));
    headers.insert(short("x-rampart-exchange"), AMQPValue::LongString(LongString::from(original.exchange.as_str())));
    headers.insert(short("x-rampart-routing-key"), AMQPValue::LongString(LongString::from(original.routing_key.as_str())));
    // Dead letters are kept for people to look at: make them survive a broker restart.
    let props = original.properties.clone().with_headers(headers).with_delivery_mode(2);
    let publish = async {
        let confirm = channel.basic_publish(short(exchange), original.routing_key.clone(), BasicPublishOptions::default(), &original.body, props).await?;
        confirm.await
    };
    match tokio::time::timeout(DEAD_LETTER_CONFIRM_TIMEOUT, publish).await {
        Ok(Ok(c)) if c.is_ack() => Ok(()),
        Ok(Ok(_)) => Err("the broker refused it (nack)".to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no confirm within {}", rampart_core::time::format_duration(DEAD_LETTER_CONFIRM_TIMEOUT))),
    }
}

/// Reads one message body into events: see the module docs for what a message may hold
/// and how ids are derived. `Err` is the reason it can never be stored.
pub fn parse_message(body: &[u8], message_id: Option<&str>, origin: &str, max_message: usize, normalizer: &Normalizer) -> Result<Vec<Event>, String> {
    if body.len() > max_message {
        return Err(format!("message of {} bytes is larger than max_message ({max_message} bytes)", body.len()));
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to()));
    }
    let mut scanner = Scanner::new(origin, body.len().max(1));
    scanner.push(body);
    scanner.finish();
    let received = EventTime::now();
    let mut events = Vec::new();
    loop {
        match scanner.next() {
            Scan::Record { value, id, line, column } => {
                let id = match message_id {
                    Some(m) => EventId::derive(&format!("{origin}#message_id={m}"), events.len() as u64, b""),
                    None => id,
                };
                match normalizer.normalize_at(value, id, received) {
                    Ok(e) => events.push(e),
                    Err(e) => return Err(format!("line {line}, column {column}: {e}")),
                }
            }
            Scan::Invalid { line, column, message } => return Err(format!("not JSON: line {line}, column {column}: {message}")),
            Scan::NeedMore | Scan::End => break,
        }
    }
    if events.is_empty() {
        return Err("no event in the message: expected a JSON object".to_string());
    }
    Ok(events)
}
