//! The `type: amqp` output: alerts (and optionally events) published with publisher
//! confirms.

use super::{binding_key, check_name, check_template, check_url, default_url, peer_error, render_key, short, timed, timeout_error, truncate_at_char, yes, ExchangeType, CONNECT_TIMEOUT, MAX_NAME, OP_TIMEOUT, OUTPUT};
use crate::error::ConnectorError;
use crate::events::{AlertsWritten, AmqpConnected, EventsWritten, OutputPeerFailed};
use crate::secret::{redact_url, Secret};
use crate::sink::{EventBatch, Sink, SinkFuture};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use rampart_core::{Alert, Domain, EventTime, Metrics, Retry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

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
