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

mod input;
mod output;

pub use input::{parse_message, AmqpInput, SessionEnd};
pub use output::{AmqpOutput, AmqpOutputConfig};

use crate::error::ConnectorError;
use crate::secret::{redact_url, Secret};
use lapin::types::ShortString;
use lapin::{ErrorKind, ExchangeKind};
use rampart_core::{Domain, Retry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// How long a TCP connect and AMQP handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one declaration, cancel or close may take.
const OP_TIMEOUT: Duration = Duration::from_secs(15);
/// AMQP short strings (names, routing keys) hold at most this many bytes.
const MAX_NAME: usize = 255;
/// The output's component name; the helpers below tell the output from an input by it.
const OUTPUT: &str = "amqp output";

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
mod tests;
