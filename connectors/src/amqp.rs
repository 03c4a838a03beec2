//! AMQP 0-9-1 (RabbitMQ 3.x and later) through `lapin` 4 on the running tokio runtime: the
//! `type: amqp` input, which consumes MozDef's event queue, and the `type: amqp` output, which
//! publishes alerts (and optionally events) to a topic exchange.
//!
//! # Input
//!
//! Topology, by default MozDef's (`loginput` published to it and `esworker_eventtask`
//! consumed it): a durable `direct` exchange `eventtask`, a durable queue `eventtask` bound to
//! it with the routing key `eventtask`. With `declare: true` Rampart declares all of it (a
//! declaration that matches what exists is a no-op), plus the dead-letter exchange (`fanout`)
//! and a durable queue of the same name bound to it, so dead letters are kept; with
//! `declare: false` it only checks that the queue and the dead-letter exchange exist. An empty
//! `exchange` consumes the queue without binding it (the default exchange).
//!
//! A message holds one JSON object (what MozDef sends), a JSON array of objects, or NDJSON;
//! the body must be UTF-8 and at most `max_message` bytes. A message is atomic: if any record
//! in it is not a JSON object, none of it is used.
//!
//! Delivery: at least once, with manual acknowledgements. Every event of a message carries
//! one shared [`AckToken`]; when the last output has settled it the message is
//!
//! - acked, when every output stored it;
//! - nacked with requeue (after `requeue_delay`, so a store that is down is not hammered),
//!   when an output failed in a way a retry can fix: RabbitMQ delivers it again;
//! - published to the dead-letter exchange, with the original body and properties and the
//!   headers `x-rampart-reason`, `x-rampart-queue`, `x-rampart-exchange` and
//!   `x-rampart-routing-key`, and acked once the broker confirms that publish, when an output
//!   can never store it. Messages the input itself cannot read (not UTF-8, not JSON, not
//!   objects, too large, empty) go the same way and count in
//!   `rampart_events_invalid_total`. Dead letters are published by Rampart rather than through
//!   a queue's `x-dead-letter-exchange` argument, so an existing MozDef queue can be consumed
//!   without redeclaring it with new arguments, and the reason travels with the message.
//!
//! Event ids are the same on every delivery of a message, so stores index a redelivered
//! message once: they derive from `origin` (default `amqp:<queue>`) and the `message_id`
//! property when the publisher set one, else from the body bytes (each record's offset and
//! bytes). Two messages with identical bodies and no `message_id` therefore get the same ids
//! and are stored as one document; publishers that can send identical events on purpose
//! should set `message_id`. Redeliveries are counted in `rampart_amqp_redelivered_total`;
//! the stored document does not mark them (it is the same document).
//!
//! Memory: at most `prefetch` messages are unacknowledged at once, which bounds what the
//! input holds (each body is kept until its message settles, to dead-letter it if needed).
//! Backpressure from the pipeline stops consumption, and RabbitMQ then stops delivering.
//!
//! Connection loss: the session ends and the input's supervisor connects again with
//! exponential backoff (`reconnect_min` doubling to `reconnect_max`). RabbitMQ redelivers
//! what the dead channel had not acknowledged. Shutdown cancels the consumer, lets in-flight
//! messages settle for up to `drain_timeout` so their acks go out, then closes; whatever is
//! still unsettled is redelivered to the next consumer.
//!
//! # Output
//!
//! Alerts go to a durable `topic` exchange (MozDef's `alerts`, routing key `mozdef.alert`)
//! as persistent JSON messages (`content_type: application/json`, `message_id` = the alert
//! id, `timestamp` = the alert time). Publisher confirms are awaited before a write returns;
//! a nack or a missing confirm is retried with backoff (reconnecting when needed) and then
//! reported as an error. A retry may publish an alert twice: consumers dedupe on
//! `message_id`. Optional `queue` declares a durable queue bound with the routing key so that
//! alerts wait for a consumer. With `events: true`, events are also published, to
//! `events_exchange`, and their ack tokens are settled from the confirms.
//!
//! TLS (`amqps://`) is not built in: lapin is compiled without a TLS backend to keep the
//! build small. Reach a remote broker over a TLS tunnel or a local proxy.

use crate::error::ConnectorError;
use crate::events::{AlertsWritten, AmqpConnected, EventsWritten, MessageDeadLettered, MessageRedelivered, MessageRequeued, OutputPeerFailed, RecordInvalid};
use crate::json::{Scan, Scanner};
use crate::secret::{redact_url, Secret};
use crate::sink::{EventBatch, Sink, SinkFuture};
use crate::source::{SourceContext, MAX_BATCH};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Acker, BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ErrorKind, ExchangeKind};
use rampart_core::{AckStatus, AckToken, Alert, Domain, Event, EventId, EventTime, Metrics, Normalizer, Retry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// How long a TCP connect and AMQP handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one declaration, cancel or close may take.
const OP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a dead-letter publish may wait for its confirm.
const DEAD_LETTER_CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);
/// Invalid messages listed in the input's report.
const MAX_LISTED: usize = 20;
/// Longest reason written into `x-rampart-reason`.
const MAX_REASON: usize = 2048;
/// AMQP short strings (names, routing keys) hold at most this many bytes.
const MAX_NAME: usize = 255;

/// An exchange type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeType {
    /// Routes on an exact routing-key match (MozDef's `eventtask`).
    Direct,
    /// Routes on routing-key patterns (`mozdef.*`, `#`).
    Topic,
    /// Routes to every bound queue.
    Fanout,
    /// Routes on header values.
    Headers,
}

impl ExchangeType {
    fn kind(self) -> ExchangeKind {
        match self {
            ExchangeType::Direct => ExchangeKind::Direct,
            ExchangeType::Topic => ExchangeKind::Topic,
            ExchangeType::Fanout => ExchangeKind::Fanout,
            ExchangeType::Headers => ExchangeKind::Headers,
        }
    }
}

/// `type: amqp` input.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// Broker URL, `amqp://user:password@host:port/vhost` (the vhost `/` is written `%2f`).
    /// Default `amqp://guest:guest@127.0.0.1:5672/%2f`. Never printed with its password.
    #[serde(default = "default_url")]
    pub url: Secret,
    /// Exchange the queue is bound to. Default `eventtask` (MozDef's); empty: consume the
    /// queue without binding it.
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// Type of `exchange` when declaring it: `direct`, `topic`, `fanout` or `headers`.
    /// Default `direct` (what MozDef declared; an existing exchange must be declared with
    /// its own type).
    #[serde(default = "default_exchange_type")]
    pub exchange_type: ExchangeType,
    /// Queue to consume. Default `eventtask`.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Binding key between `exchange` and `queue`. Default `eventtask` (MozDef's loginput
    /// published with it).
    #[serde(default = "default_routing_key")]
    pub routing_key: String,
    /// Declare the exchange, queue, binding and dead-letter exchange and queue. Default true;
    /// false: use what exists (the queue and dead-letter exchange must exist).
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub declare: bool,
    /// Declare the exchanges and queues durable (they survive a broker restart). Default
    /// true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub durable: bool,
    /// Most unacknowledged messages at once (AMQP `prefetch_count`), the outermost memory
    /// bound. Default 1000; 1 to 65535.
    #[serde(default = "default_prefetch", deserialize_with = "crate::registry::lenient")]
    pub prefetch: u16,
    /// Exchange that messages which can never be stored are published to, with the reason
    /// in the `x-rampart-reason` header. Default `eventtask.deadletter`; declared as a
    /// `fanout` exchange with a durable queue of the same name when `declare` is true.
    #[serde(default = "default_dead_letter_exchange")]
    pub dead_letter_exchange: String,
    /// Largest message body in bytes; larger ones are dead-lettered. Default 1 MiB.
    #[serde(default = "default_max_message", deserialize_with = "crate::registry::lenient")]
    pub max_message: usize,
    /// First wait before reconnecting after a failure. Default `1s`.
    #[serde(default = "default_reconnect_min", with = "crate::registry::human_duration")]
    pub reconnect_min: Duration,
    /// Longest wait between reconnection attempts (the wait doubles up to it). Default `30s`.
    #[serde(default = "default_reconnect_max", with = "crate::registry::human_duration")]
    pub reconnect_max: Duration,
    /// At shutdown, how long in-flight messages may take to settle so their acks go out;
    /// the rest are redelivered later. Default `10s`.
    #[serde(default = "default_drain_timeout", with = "crate::registry::human_duration")]
    pub drain_timeout: Duration,
    /// How long a message an output failed to store waits before it is requeued. Default
    /// `1s`.
    #[serde(default = "default_requeue_delay", with = "crate::registry::human_duration")]
    pub requeue_delay: Duration,
    /// Consumer tag shown by `rabbitmqctl list_consumers`. Default: chosen by the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_tag: Option<String>,
    /// The origin hashed into event ids. Default `amqp:<queue>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

fn default_url() -> Secret {
    Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f")
}
fn default_exchange() -> String {
    "eventtask".to_string()
}
fn default_exchange_type() -> ExchangeType {
    ExchangeType::Direct
}
fn default_queue() -> String {
    "eventtask".to_string()
}
fn default_routing_key() -> String {
    "eventtask".to_string()
}
fn yes() -> bool {
    true
}
fn default_prefetch() -> u16 {
    1000
}
fn default_dead_letter_exchange() -> String {
    "eventtask.deadletter".to_string()
}
fn default_max_message() -> usize {
    1024 * 1024
}
fn default_reconnect_min() -> Duration {
    Duration::from_secs(1)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(30)
}
fn default_drain_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_requeue_delay() -> Duration {
    Duration::from_secs(1)
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: default_url(),
            exchange: default_exchange(),
            exchange_type: default_exchange_type(),
            queue: default_queue(),
            routing_key: default_routing_key(),
            declare: true,
            durable: true,
            prefetch: default_prefetch(),
            dead_letter_exchange: default_dead_letter_exchange(),
            max_message: default_max_message(),
            reconnect_min: default_reconnect_min(),
            reconnect_max: default_reconnect_max(),
            drain_timeout: default_drain_timeout(),
            requeue_delay: default_requeue_delay(),
            consumer_tag: None,
            origin: None,
        }
    }
}

impl AmqpConfig {
    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        let mut p = check_url(&self.url);
        check_name(&mut p, "queue", &self.queue, false);
        check_name(&mut p, "exchange", &self.exchange, true);
        check_name(&mut p, "routing_key", &self.routing_key, true);
        check_name(&mut p, "dead_letter_exchange", &self.dead_letter_exchange, false);
        if let Some(tag) = &self.consumer_tag {
            check_name(&mut p, "consumer_tag", tag, false);
        }
        if !self.exchange.is_empty() && self.exchange == self.dead_letter_exchange {
            p.push(format!("dead_letter_exchange: `{}` is also the input's exchange; dead letters would come back", self.exchange));
        }
        if self.prefetch == 0 {
            p.push("prefetch: must be between 1 and 65535 (0 would mean unlimited)".to_string());
        }
        if self.max_message == 0 {
            p.push("max_message: must be at least 1 byte".to_string());
        }
        if self.reconnect_min.is_zero() {
            p.push("reconnect_min: must be more than 0s".to_string());
        }
        if self.reconnect_max < self.reconnect_min {
            p.push(format!(
                "reconnect_max: {} is less than reconnect_min ({})",
                rampart_core::time::format_duration(self.reconnect_max),
                rampart_core::time::format_duration(self.reconnect_min)
            ));
        }
        p
    }

    /// `amqp:<queue>`, the name in logs and reports.
    pub fn describe(&self) -> String {
        format!("amqp:{}", self.queue)
    }
}

fn check_url(url: &Secret) -> Vec<String> {
    let shown = redact_url(url.expose());
    match url.expose().parse::<lapin::uri::AMQPUri>() {
        Err(e) => vec![format!("url: `{shown}` is not an AMQP URL ({e}); expected amqp://user:password@host:5672/%2f")],
        Ok(_) if url.expose().starts_with("amqps:") => vec![format!("url: `{shown}`: amqps (TLS) is not supported by this build; use amqp:// through a TLS tunnel")],
        Ok(_) => Vec::new(),
    }
}

fn check_name(p: &mut Vec<String>, key: &str, value: &str, empty_ok: bool) {
    if value.is_empty() && !empty_ok {
        p.push(format!("{key}: must not be empty"));
    }
    if value.len() > MAX_NAME {
        p.push(format!("{key}: {} bytes long; AMQP allows at most {MAX_NAME}", value.len()));
    }
}

// ---------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------

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
    pub async fn session(&mut self) -> Result<SessionEnd, ConnectorError> {
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
                    _ = in_flight.idle() => {}
                    _ = &mut settling => {}
                }
            })
            .await;
            let left = in_flight.count.load(Ordering::SeqCst);
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
        in_flight.count.fetch_add(1, Ordering::SeqCst);
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
    count: AtomicUsize,
    /// Shutdown is draining: requeue at once instead of after `requeue_delay`.
    draining: AtomicBool,
    settled: Notify,
}

impl InFlight {
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) <= 1 {
            self.settled.notify_waiters();
        }
    }

    async fn idle(&self) {
        loop {
            let wait = self.settled.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            wait.await;
        }
    }
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
                    self.in_flight.done();
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

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

/// `type: amqp` output.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpOutputConfig {
    /// Broker URL, as for the input. Default `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[serde(default = "default_url")]
    pub url: Secret,
    /// Exchange alerts are published to. Default `alerts` (MozDef's).
    #[serde(default = "default_alert_exchange")]
    pub exchange: String,
    /// Type of the exchanges when declaring them. Default `topic`.
    #[serde(default = "default_output_exchange_type")]
    pub exchange_type: ExchangeType,
    /// Routing key for alerts: text with `{path}` placeholders filled from the alert's
    /// JSON (`{severity}`, `{category}`, `{rule.id}`; a missing field is empty). Default
    /// `mozdef.alert` (MozDef's).
    #[serde(default = "default_alert_routing_key")]
    pub routing_key: String,
    /// Declare the exchanges (and `queue`). Default true; false: they must exist.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub declare: bool,
    /// Declare them durable. Default true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub durable: bool,
    /// A durable queue to declare and bind to `exchange` with `routing_key` (placeholders
    /// as `#`), so alerts wait for a consumer. Default none: alerts reach only the queues
    /// consumers have bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Publish alerts. Default true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub alerts: bool,
    /// Publish events too (to `events_exchange`); their deliveries are acknowledged once the
    /// broker confirms them. Default false.
    #[serde(default, deserialize_with = "crate::registry::lenient")]
    pub events: bool,
    /// Exchange events are published to. Default `rampart.events`.
    #[serde(default = "default_events_exchange")]
    pub events_exchange: String,
    /// Routing key for events, a template over the event document. Default `{category}`.
    #[serde(default = "default_events_routing_key")]
    pub events_routing_key: String,
    /// How long a batch may wait for its publisher confirms. Default `10s`.
    #[serde(default = "default_confirm_timeout", with = "crate::registry::human_duration")]
    pub confirm_timeout: Duration,
    /// Further attempts after a nack, a missing confirm or a lost connection (with
    /// backoff from 1s doubling to 30s) before the write fails. Default 3.
    #[serde(default = "default_retries", deserialize_with = "crate::registry::lenient")]
    pub retries: u32,
}

fn default_alert_exchange() -> String {
    "alerts".to_string()
}
fn default_output_exchange_type() -> ExchangeType {
    ExchangeType::Topic
}
fn default_alert_routing_key() -> String {
    "mozdef.alert".to_string()
}
fn default_events_exchange() -> String {
    "rampart.events".to_string()
}
fn default_events_routing_key() -> String {
    "{category}".to_string()
}
fn default_confirm_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_retries() -> u32 {
    3
}

impl Default for AmqpOutputConfig {
    fn default() -> Self {
        AmqpOutputConfig {
            url: default_url(),
            exchange: default_alert_exchange(),
            exchange_type: default_output_exchange_type(),
            routing_key: default_alert_routing_key(),
            declare: true,
            durable: true,
            queue: None,
            alerts: true,
            events: false,
            events_exchange: default_events_exchange(),
            events_routing_key: default_events_routing_key(),
            confirm_timeout: default_confirm_timeout(),
            retries: default_retries(),
        }
    }
}

impl AmqpOutputConfig {
    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        let mut p = check_url(&self.url);
        if !self.events && !self.alerts {
            p.push("events and alerts are both false: this output would publish nothing".to_string());
        }
        if self.alerts {
            check_name(&mut p, "exchange", &self.exchange, false);
            check_template(&mut p, "routing_key", &self.routing_key);
        }
        if self.events {
            check_name(&mut p, "events_exchange", &self.events_exchange, false);
            check_template(&mut p, "events_routing_key", &self.events_routing_key);
        }
        if let Some(q) = &self.queue {
            check_name(&mut p, "queue", q, false);
        }
        if self.confirm_timeout.is_zero() {
            p.push("confirm_timeout: must be more than 0s".to_string());
        }
        p
    }
}

/// A message to publish.
struct Outgoing {
    exchange: ShortString,
    routing_key: ShortString,
    body: Vec<u8>,
    properties: BasicProperties,
}

/// Publishes alerts (and events) with publisher confirms; see the module docs.
pub struct AmqpOutput {
    cfg: AmqpOutputConfig,
    metrics: Arc<Metrics>,
    peer: String,
    channel: Option<(Connection, Channel)>,
    connections: u64,
}

impl std::fmt::Debug for AmqpOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpOutput").field("peer", &self.peer).field("exchange", &self.cfg.exchange).finish_non_exhaustive()
    }
}

const OUTPUT: &str = "amqp output";

impl AmqpOutput {
    /// An output that connects on [`Sink::connect`] (or its first write).
    pub fn new(cfg: AmqpOutputConfig, metrics: Arc<Metrics>) -> AmqpOutput {
        let peer = redact_url(cfg.url.expose());
        AmqpOutput { cfg, metrics, peer, channel: None, connections: 0 }
    }

    /// The confirming channel, connecting and declaring first when there is none (or the
    /// one there was has closed).
    async fn channel(&mut self) -> Result<Channel, ConnectorError> {
        if let Some((_, ch)) = &self.channel {
            if ch.status().connected() {
                return Ok(ch.clone());
            }
            self.channel = None;
        }
        let props = ConnectionProperties::default().with_connection_name("rampart amqp output".into());
        let conn = match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(self.cfg.url.expose(), props)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(peer_error(OUTPUT, &self.peer, "cannot connect", &e)),
            Err(_) => return Err(timeout_error(OUTPUT, &self.peer, "connecting")),
        };
        let fail = |what: &str, e: lapin::Error| peer_error(OUTPUT, &self.peer, what, &e);
        let ch = timed(OUTPUT, &self.peer, "opening a channel", conn.create_channel()).await?.map_err(|e| fail("cannot open a channel", e))?;
        timed(OUTPUT, &self.peer, "enabling publisher confirms", ch.confirm_select(ConfirmSelectOptions::default()))
            .await?
            .map_err(|e| fail("cannot enable publisher confirms", e))?;
        let opts = ExchangeDeclareOptions { durable: self.cfg.durable, passive: !self.cfg.declare, ..Default::default() };
        let mut exchanges = Vec::new();
        if self.cfg.alerts {
            exchanges.push(self.cfg.exchange.clone());
        }
        if self.cfg.events {
            exchanges.push(self.cfg.events_exchange.clone());
        }
        for x in &exchanges {
            let what = if self.cfg.declare {
                format!("cannot declare exchange `{x}` (set `exchange_type`/`durable` to match what exists, or `declare: false`)")
            } else {
                format!("exchange `{x}` is not usable (declare is false, so it must exist)")
            };
            timed(OUTPUT, &self.peer, "declaring an exchange", ch.exchange_declare(short(x), self.cfg.exchange_type.kind(), opts, FieldTable::default()))
                .await?
                .map_err(|e| fail(&what, e))?;
        }
        if let (Some(q), true) = (&self.cfg.queue, self.cfg.alerts) {
            let qopts = QueueDeclareOptions { durable: self.cfg.durable, passive: !self.cfg.declare, ..Default::default() };
            timed(OUTPUT, &self.peer, "declaring the queue", ch.queue_declare(short(q), qopts, FieldTable::default()))
                .await?
                .map_err(|e| fail(&format!("cannot declare queue `{q}`"), e))?;
            if self.cfg.declare {
                let key = binding_key(&self.cfg.routing_key);
                timed(OUTPUT, &self.peer, "binding the queue", ch.queue_bind(short(q), short(&self.cfg.exchange), short(&key), QueueBindOptions::default(), FieldTable::default()))
                    .await?
                    .map_err(|e| fail(&format!("cannot bind queue `{q}` to `{}`", self.cfg.exchange), e))?;
            }
        }
        AmqpConnected { component: OUTPUT, peer: &self.peer, reconnect: self.connections > 0 }.emit(&self.metrics);
        self.connections += 1;
        self.channel = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// Publishes every message and waits for its confirm, retrying the ones that were not
    /// confirmed; `Err` names how many never were.
    async fn publish(&mut self, what: &str, messages: &[Outgoing]) -> Result<(), ConnectorError> {
        let mut pending: Vec<usize> = (0..messages.len()).collect();
        let mut last = String::new();
        let mut delay = Duration::from_secs(1);
        for attempt in 0..=self.cfg.retries {
            if attempt > 0 {
                tracing::debug!(output = OUTPUT, "{} {what} not confirmed ({last}); retrying in {}", pending.len(), rampart_core::time::format_duration(delay));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            let ch = match self.channel().await {
                Ok(ch) => ch,
                Err(e) if e.retry() == Retry::Never => return Err(e),
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let mut confirms = Vec::with_capacity(pending.len());
            for &i in &pending {
                let m = &messages[i];
                match ch.basic_publish(m.exchange.clone(), m.routing_key.clone(), BasicPublishOptions::default(), &m.body, m.properties.clone()).await {
                    Ok(c) => confirms.push((i, Some(c))),
                    Err(e) => {
                        last = e.to_string();
                        confirms.push((i, None));
                    }
                }
            }
            let deadline = tokio::time::Instant::now() + self.cfg.confirm_timeout;
            let mut failed = Vec::new();
            for (i, c) in confirms {
                let Some(c) = c else {
                    failed.push(i);
                    continue;
                };
                match tokio::time::timeout_at(deadline, c).await {
                    Ok(Ok(c)) if c.is_ack() => {}
                    Ok(Ok(_)) => {
                        last = "the broker refused it (nack)".to_string();
                        failed.push(i);
                    }
                    Ok(Err(e)) => {
                        last = e.to_string();
                        failed.push(i);
                    }
                    Err(_) => {
                        last = format!("no confirm within {}", rampart_core::time::format_duration(self.cfg.confirm_timeout));
                        failed.push(i);
                    }
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            pending = failed;
        }
        let message = format!("{} of {} {what} not confirmed by RabbitMQ after {} attempts: {last}", pending.len(), messages.len(), self.cfg.retries + 1);
        OutputPeerFailed { output: OUTPUT, message: &message }.emit(&self.metrics);
        Err(ConnectorError::Peer { component: OUTPUT, peer: self.peer.clone(), message, domain: Domain::External, retry: Retry::Later })
    }

    fn outgoing(&self, exchange: &str, template: &str, doc: &Value, message_id: String, time: EventTime, kind: &str) -> Result<Outgoing, ConnectorError> {
        let body = serde_json::to_vec(doc).map_err(|source| ConnectorError::Serialize { component: OUTPUT, source })?;
        let mut key = render_key(template, doc);
        truncate_at_char(&mut key, MAX_NAME);
        let properties = BasicProperties::default()
            .with_content_type(short("application/json"))
            .with_delivery_mode(2)
            .with_message_id(ShortString::try_new(message_id).unwrap_or_else(|_| short("")))
            .with_timestamp(time.0 / 1000)
            .with_app_id(short("rampart"))
            .with_type(short(kind));
        Ok(Outgoing { exchange: short(exchange), routing_key: ShortString::try_new(key).unwrap_or_else(|_| short("")), body, properties })
    }
}

impl Sink for AmqpOutput {
    fn name(&self) -> &'static str {
        "amqp"
    }

    fn wants_events(&self) -> bool {
        self.cfg.events
    }

    fn wants_alerts(&self) -> bool {
        self.cfg.alerts
    }

    fn connect(&mut self) -> SinkFuture<'_> {
        Box::pin(async move { self.channel().await.map(|_| ()) })
    }

    fn write_events(&mut self, batch: EventBatch) -> SinkFuture<'_> {
        Box::pin(async move {
            let messages: Result<Vec<Outgoing>, ConnectorError> =
                batch.events.iter().map(|e| self.outgoing(&self.cfg.events_exchange, &self.cfg.events_routing_key, &e.to_value(), e.id.to_string(), e.time, "event")).collect();
            let r = match messages {
                Ok(messages) => self.publish("events", &messages).await,
                Err(e) => Err(e),
            };
            if r.is_ok() {
                EventsWritten { output: "amqp", events: &batch.events }.emit(&self.metrics);
            }
            batch.settle(&r);
            r
        })
    }

    fn write_alerts(&mut self, alerts: Arc<Vec<Alert>>) -> SinkFuture<'_> {
        Box::pin(async move {
            let mut messages = Vec::with_capacity(alerts.len());
            for a in alerts.iter() {
                let doc = serde_json::to_value(a).map_err(|source| ConnectorError::Serialize { component: OUTPUT, source })?;
                messages.push(self.outgoing(&self.cfg.exchange, &self.cfg.routing_key, &doc, a.id.clone(), a.utctimestamp, "alert")?);
            }
            self.publish("alerts", &messages).await?;
            AlertsWritten { output: "amqp", count: alerts.len() as u64 }.emit(&self.metrics);
            Ok(())
        })
    }

    fn flush(&mut self) -> SinkFuture<'_> {
        Box::pin(async move {
            // Every write has waited for its confirms: nothing is buffered. Close politely.
            if let Some((conn, _)) = self.channel.take() {
                let _ = tokio::time::timeout(OP_TIMEOUT, conn.close(200, "rampart output stopping".into())).await;
            }
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A short string from text known to fit (names are validated to 255 bytes; literals).
fn short(s: &str) -> ShortString {
    let mut s = s.to_string();
    truncate_at_char(&mut s, MAX_NAME);
    ShortString::try_new(s).unwrap_or_default()
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Fills `{a.b}` placeholders from `doc` (strings as they are, other values as JSON text,
/// missing ones empty); `{{` and `}}` are literal braces.
pub fn render_key(template: &str, doc: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        match (tail.starts_with('{'), tail.find('}')) {
            (true, Some(end)) => {
                let path = tail[1..end].trim();
                let value = path.split('.').try_fold(doc, |v, k| v.get(k));
                match value {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                }
                rest = &tail[end + 1..];
            }
            _ => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The binding key matching every key a template renders: each placeholder becomes `#`.
fn binding_key(template: &str) -> String {
    let doc = Value::Null;
    if render_key(template, &doc) == template.replace("{{", "{").replace("}}", "}") {
        return template.replace("{{", "{").replace("}}", "}");
    }
    "#".to_string()
}

fn check_template(p: &mut Vec<String>, key: &str, template: &str) {
    let mut depth = 0i32;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') && depth == 0 => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') && depth == 0 => {
                chars.next();
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            break;
        }
    }
    if depth != 0 {
        p.push(format!("{key}: `{template}` has an unmatched brace (placeholders are `{{field.path}}`; write `{{{{` for a literal brace)"));
    }
    if template.len() > MAX_NAME {
        p.push(format!("{key}: {} bytes long; AMQP allows at most {MAX_NAME}", template.len()));
    }
}

async fn timed<T>(component: &str, peer: &str, what: &str, fut: impl std::future::Future<Output = T>) -> Result<T, ConnectorError> {
    tokio::time::timeout(OP_TIMEOUT, fut).await.map_err(|_| timeout_error(component, peer, what))
}

fn component_name(component: &str) -> &'static str {
    if component == OUTPUT {
        OUTPUT
    } else {
        "amqp input"
    }
}

/// The input's name (`amqp:eventtask: `) before a message; the output has only one.
fn prefix(component: &str) -> String {
    if component == OUTPUT {
        String::new()
    } else {
        format!("{component}: ")
    }
}

fn timeout_error(component: &str, peer: &str, what: &str) -> ConnectorError {
    ConnectorError::Peer {
        component: component_name(component),
        peer: peer.to_string(),
        message: format!("{}no answer while {what} within {}; is RabbitMQ overloaded or unreachable?", prefix(component), rampart_core::time::format_duration(OP_TIMEOUT)),
        domain: Domain::External,
        retry: Retry::Later,
    }
}

fn lost(component: &str, peer: &str, message: &str) -> ConnectorError {
    ConnectorError::Peer { component: component_name(component), peer: peer.to_string(), message: format!("{}{message}", prefix(component)), domain: Domain::External, retry: Retry::Later }
}

/// A lapin error as a [`ConnectorError`]: refusals that only the user can fix (bad
/// credentials or vhost, a missing queue, a declaration that contradicts what exists) are
/// not retried; everything else (connection refused or reset, heartbeats, broker errors) is.
fn peer_error(component: &str, peer: &str, what: &str, e: &lapin::Error) -> ConnectorError {
    let (domain, retry, hint) = match e.kind() {
        ErrorKind::ProtocolError(p) => match p.get_id() {
            403 => (Domain::User, Retry::Never, "; check the user's password and permissions"),
            402 | 530 => (Domain::User, Retry::Never, "; check the vhost in the URL (`/` is written `%2f`) and the user's access to it"),
            404 => (Domain::User, Retry::Never, ""),
            406 => (Domain::User, Retry::Never, ""),
            _ => (Domain::External, Retry::Later, ""),
        },
        ErrorKind::IOError(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => (Domain::External, Retry::Later, "; is RabbitMQ running there? (`bash scripts/services/rabbitmq.sh start` locally)"),
        _ => (Domain::External, Retry::Later, ""),
    };
    ConnectorError::Peer { component: component_name(component), peer: peer.to_string(), message: format!("{}{what}: {e}{hint}", prefix(component)), domain, retry }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: &[u8], id: Option<&str>) -> Result<Vec<Event>, String> {
        parse_message(body, id, "amqp:eventtask", 1024, &Normalizer::default())
    }

    #[test]
    fn defaults_are_mozdefs_topology_and_validation_reports_every_problem() {
        let c = AmqpConfig::default();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!((c.exchange.as_str(), c.queue.as_str(), c.routing_key.as_str()), ("eventtask", "eventtask", "eventtask"));
        assert_eq!(c.exchange_type, ExchangeType::Direct);
        assert_eq!(c.describe(), "amqp:eventtask");
        let bad = AmqpConfig {
            url: Secret::new("http://x"),
            queue: String::new(),
            prefetch: 0,
            max_message: 0,
            reconnect_min: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(1),
            dead_letter_exchange: "eventtask".into(),
            ..Default::default()
        };
        let p = bad.validate();
        assert_eq!(p.len(), 6, "{p:?}");
        assert!(p[0].starts_with("url: `http://x` is not an AMQP URL"), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("queue: must not be empty")));
        assert!(p.iter().any(|m| m.contains("dead letters would come back")));
        let tls = AmqpConfig { url: Secret::new("amqps://u:secret@host/%2f"), ..Default::default() }.validate();
        assert!(tls[0].contains("amqps") && !tls[0].contains("secret"), "{tls:?}");

        let o = AmqpOutputConfig::default();
        assert!(o.validate().is_empty(), "{:?}", o.validate());
        assert_eq!((o.exchange.as_str(), o.routing_key.as_str(), o.exchange_type), ("alerts", "mozdef.alert", ExchangeType::Topic));
        let bad = AmqpOutputConfig { routing_key: "alert.{severity".into(), alerts: true, events: false, confirm_timeout: Duration::ZERO, ..Default::default() };
        let p = bad.validate();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("unmatched brace"), "{p:?}");
    }

    #[test]
    fn ids_come_from_the_message_id_or_the_body_never_from_the_delivery() {
        let body = br#"{"summary":"login failed","hostname":"web1"}"#;
        let a = parse(body, None).unwrap();
        let b = parse(body, None).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].id, b[0].id, "a redelivered body keeps its id");
        assert_eq!(a[0].id, EventId::derive("amqp:eventtask", 0, body));
        assert_eq!(a[0].doc["summary"], "login failed");
        assert_eq!(a[0].doc["hostname"], "web1");

        let m1 = parse(body, Some("m-1")).unwrap();
        let m1_other_body = parse(br#"{"summary":"changed"}"#, Some("m-1")).unwrap();
        assert_eq!(m1[0].id, m1_other_body[0].id, "the publisher's message_id decides");
        assert_ne!(m1[0].id, a[0].id);
        assert_ne!(m1[0].id, parse(body, Some("m-2")).unwrap()[0].id);

        // An array (or NDJSON) holds several events with distinct ids.
        let many = parse(br#"[{"summary":"a"},{"summary":"b"}]"#, None).unwrap();
        assert_eq!(many.len(), 2);
        assert_ne!(many[0].id, many[1].id);
        let nd = parse(b"{\"summary\":\"a\"}\n{\"summary\":\"b\"}\n", Some("x")).unwrap();
        assert_eq!(nd.len(), 2);
        assert_ne!(nd[0].id, nd[1].id);
    }

    #[test]
    fn unreadable_messages_are_rejected_whole_with_a_reason() {
        let too_big = vec![b' '; 2000];
        assert!(parse(&too_big, None).unwrap_err().contains("larger than max_message (1024 bytes)"));
        assert!(parse(b"{\"a\":\"\xff\"}", None).unwrap_err().starts_with("not UTF-8 text (invalid byte at offset 6)"));
        assert_eq!(parse(b"{\"a\": ?}", None).unwrap_err(), "not JSON: line 1, column 7: expected value");
        assert!(parse(b"[{\"a\":1}, 3]", None).unwrap_err().contains("must be a JSON object, found a number"));
        assert!(parse(b"\"just text\"", None).unwrap_err().contains("found a string"));
        assert!(parse(b"  \n", None).unwrap_err().starts_with("no event"));
        assert!(parse(b"[]", None).unwrap_err().starts_with("no event"));
        // One bad line in NDJSON rejects the whole message (it is atomic).
        assert!(parse(b"{\"a\":1}\n{bad}\n", None).is_err());
    }

    #[test]
    fn routing_keys_render_from_the_document() {
        let doc = json!({"severity": "WARNING", "rule": {"id": "ssh-bf", "level": null}, "value": 10});
        assert_eq!(render_key("mozdef.alert", &doc), "mozdef.alert");
        assert_eq!(render_key("alert.{severity}.{rule.id}", &doc), "alert.WARNING.ssh-bf");
        assert_eq!(render_key("{rule.level}.{missing}.{value}", &doc), "..10");
        assert_eq!(render_key("{{literal}}", &doc), "{literal}");
        assert_eq!(binding_key("mozdef.alert"), "mozdef.alert");
        assert_eq!(binding_key("alert.{severity}"), "#");
        let mut p = Vec::new();
        check_template(&mut p, "k", "a.{b}.{{c}}");
        assert!(p.is_empty(), "{p:?}");
        check_template(&mut p, "k", "a.}b");
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn refusals_only_the_user_can_fix_are_not_retried() {
        use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPSoftError};
        let refused: lapin::Error = lapin::ErrorKind::ProtocolError(AMQPError::new(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED), "ACCESS_REFUSED".into())).into();
        let e = peer_error("amqp:q", "amqp://guest:***@h/%2f", "cannot connect", &refused);
        assert_eq!((e.domain(), e.retry()), (Domain::User, Retry::Never));
        assert!(e.to_string().contains("password"), "{e}");
        let reset: lapin::Error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        let e = peer_error("amqp:q", "amqp://guest:***@h/%2f", "cannot connect", &reset);
        assert_eq!((e.domain(), e.retry()), (Domain::External, Retry::Later));
        assert!(e.to_string().starts_with("amqp input: amqp://guest:***@h/%2f: amqp:q: cannot connect"), "{e}");
    }
}
