//! The `type: sqs` input: an Amazon SQS queue (or a compatible server through
//! `aws.endpoint`) carrying notifications, read with long polling.
//!
//! A message body may be
//! - an S3 event notification (`{"Records": [{"eventSource": "aws:s3", "s3": {"bucket":
//!   {"name": …}, "object": {"key": …}}}]}`, `ObjectCreated:*`): each object is fetched and
//!   read as a CloudTrail log file (with `fetch_s3: true`, the default);
//! - CloudTrail's own notification (`{"s3Bucket": …, "s3ObjectKey": [ … ]}`): the same;
//! - an EventBridge event (`{"detail-type": "GuardDuty Finding", "detail": {…}}`) or any other
//!   JSON object, array of objects or NDJSON: the objects are events, as the AMQP input reads
//!   them (the `guardduty` plugin shapes findings);
//! - a bare GuardDuty finding (`{"schemaVersion", "arn": "arn:aws:guardduty:…", "type", …}`):
//!   one event `{"source": "guardduty", "utctimestamp": updatedAt, "details": finding}`;
//! - any of these wrapped in an SNS notification (`{"Type": "Notification", "Message": "…"}`).
//!
//! S3's `s3:TestEvent` holds nothing and is deleted at once.
//!
//! Delivery: at least once. Every event of a message (including every record of every file
//! it points at) shares one [`AckToken`]; the message is deleted only when every output has
//! stored all of them. If an output fails, the message is left alone and SQS shows it again
//! after its visibility timeout. A message that cannot be read (not JSON, or pointing at a
//! file that is not CloudTrail) or whose events an output refuses is counted and left on
//! the queue, where the queue's redrive policy moves it to a dead-letter queue after
//! `maxReceiveCount` receives; a file that cannot be fetched (network, permissions) is
//! retried the same way. At most `max_in_flight` messages wait for their outputs at once.

use super::{cloudtrail_events, sdk_error, AwsConfig};
use crate::error::ConnectorError;
use crate::events::RecordInvalid;
use crate::source::{Pending, SourceContext, MAX_BATCH};
use rampart_core::{AckStatus, AckToken, Event, EventId, EventTime, Retry};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// `type: sqs` input.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqsConfig {
    /// The queue's URL (`https://sqs.us-east-1.amazonaws.com/111122223333/cloudtrail`).
    /// Required.
    pub queue_url: String,
    /// How to reach SQS and S3 (region, endpoint, credentials, path-style).
    #[serde(default)]
    pub aws: AwsConfig,
    /// Long-poll wait per receive, at most 20s. Default `20s`.
    #[serde(default = "default_wait", with = "crate::registry::human_duration")]
    pub wait_time: Duration,
    /// Messages per receive, 1 to 10. Default 10.
    #[serde(default = "default_max_messages", deserialize_with = "crate::registry::lenient")]
    pub max_messages: i32,
    /// How long a received message stays hidden from other consumers, whole seconds. It must
    /// cover reading its files and storing their events. Default: the queue's setting.
    #[serde(default, with = "crate::registry::human_duration_opt")]
    pub visibility_timeout: Option<Duration>,
    /// Fetch the CloudTrail files that S3 and CloudTrail notifications point at. Default
    /// true; with false, the notifications themselves are the events.
    #[serde(default = "default_true", deserialize_with = "crate::registry::lenient")]
    pub fetch_s3: bool,
    /// Most messages waiting for their outputs at once. Default 100.
    #[serde(default = "default_in_flight", deserialize_with = "crate::registry::lenient")]
    pub max_in_flight: usize,
    /// Largest CloudTrail file, in bytes once decompressed. Default 256 MiB.
    #[serde(default = "default_max_file", deserialize_with = "crate::registry::lenient")]
    pub max_file_bytes: usize,
    /// How long shutdown waits for in-flight messages to be stored and deleted. Default `10s`.
    #[serde(default = "default_drain", with = "crate::registry::human_duration")]
    pub drain_timeout: Duration,
}

fn default_wait() -> Duration {
    Duration::from_secs(20)
}
fn default_max_messages() -> i32 {
    10
}
fn default_true() -> bool {
    true
}
fn default_in_flight() -> usize {
    100
}
fn default_max_file() -> usize {
    256 << 20
}
fn default_drain() -> Duration {
    Duration::from_secs(10)
}

impl SqsConfig {
    /// A config for `queue_url` with the defaults.
    pub fn new(queue_url: impl Into<String>) -> SqsConfig {
        SqsConfig {
            queue_url: queue_url.into(),
            aws: AwsConfig::default(),
            wait_time: default_wait(),
            max_messages: default_max_messages(),
            visibility_timeout: None,
            fetch_s3: true,
            max_in_flight: default_in_flight(),
            max_file_bytes: default_max_file(),
            drain_timeout: default_drain(),
        }
    }

    /// `sqs:<queue url>` (credentials removed).
    pub fn describe(&self) -> String {
        format!("sqs:{}", crate::secret::redact_url(&self.queue_url))
    }

    /// Every problem with these settings.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.queue_url.starts_with("https://") || self.queue_url.starts_with("http://")) {
            problems.push(format!("queue_url `{}` is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", self.queue_url));
        }
        problems.extend(self.aws.validate());
        if self.wait_time > Duration::from_secs(20) {
            problems.push("wait_time is over 20s, SQS's longest long poll".to_string());
        }
        if !(1..=10).contains(&self.max_messages) {
            problems.push(format!("max_messages is {}: SQS takes 1 to 10", self.max_messages));
        }
        if self.visibility_timeout.is_some_and(|v| v.as_secs() > 43_200) {
            problems.push("visibility_timeout is over 12h, SQS's longest".to_string());
        }
        if self.max_in_flight == 0 {
            problems.push("max_in_flight is 0: nothing would ever be read".to_string());
        }
        if self.max_file_bytes == 0 {
            problems.push("max_file_bytes is 0".to_string());
        }
        problems
    }
}

/// What a run did, for the input's report.
#[derive(Debug, Default)]
pub struct SqsStats {
    /// Messages received.
    pub received: u64,
    /// Messages deleted after their events were stored.
    pub deleted: u64,
    /// Messages that could not be read, left for the redrive policy.
    pub invalid: u64,
    /// The first problems.
    pub errors: Vec<String>,
}

const MAX_LISTED: usize = 20;

/// What reading one message gave.
enum Read {
    /// Events to store; the message is deleted once they are.
    Events(Vec<Event>),
    /// A message that never holds events (S3's test event): delete it.
    Nothing,
}

/// Runs the input until shutdown. Failures a retry may fix are logged and retried with
/// backoff; `Err` is for what needs the user (a missing queue, bad credentials).
pub async fn run(cfg: &SqsConfig, mut ctx: SourceContext) -> Result<SqsStats, ConnectorError> {
    let name = cfg.describe();
    let peer = cfg.aws.peer();
    let sdk = cfg.aws.sdk_config().await;
    let sqs = cfg.aws.sqs(&sdk);
    let s3 = cfg.aws.s3(&sdk);
    let mut stats = SqsStats::default();
    let in_flight = Arc::new(InFlight::default());
    let (tx, rx) = mpsc::unbounded_channel::<Settle>();
    let deleter = tokio::spawn(delete_loop(rx, sqs.clone(), cfg.queue_url.clone(), name.clone(), peer.clone(), in_flight.clone()));
    let mut shutdown = ctx.shutdown.clone();
    let mut backoff = Duration::from_secs(1);
    let result = loop {
        // Bound what waits on the outputs.
        tokio::select! {
            _ = in_flight.pending.below(cfg.max_in_flight) => {}
            _ = shutdown.wait() => {}
        }
        if shutdown.is_triggered() {
            break Ok(());
        }
        let mut receive = sqs.receive_message().queue_url(&cfg.queue_url).max_number_of_messages(cfg.max_messages).wait_time_seconds(cfg.wait_time.as_secs() as i32);
        if let Some(v) = cfg.visibility_timeout {
            receive = receive.visibility_timeout(v.as_secs() as i32);
        }
        let got = tokio::select! {
            r = receive.send() => r,
            _ = shutdown.wait() => break Ok(()),
        };
        let messages = match got {
            Ok(out) => {
                backoff = Duration::from_secs(1);
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                let e = sdk_error("sqs", &peer, &format!("cannot receive from {}", cfg.queue_url), &e);
                if e.retry() == Retry::Never {
                    break Err(e);
                }
                tracing::warn!(input = %name, "{e}; retrying in {}", rampart_core::time::format_duration(backoff));
                if stats.errors.len() < MAX_LISTED {
                    stats.errors.push(e.to_string());
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait() => break Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        let mut batch = Vec::new();
        // Kept until the batch is taken: if the pipeline stops first, the messages are
        // marked failed (left on the queue) instead of acked by the dropped batch.
        let mut tokens = Vec::new();
        let mut closed = false;
        for m in messages {
            stats.received += 1;
            let (Some(handle), body) = (m.receipt_handle, m.body.unwrap_or_default()) else { continue };
            let message_id = m.message_id.unwrap_or_default();
            let read = read_message(&body, &message_id, cfg, &s3, &peer, &ctx).await;
            in_flight.pending.begin();
            let tx2 = tx.clone();
            let id = message_id.clone();
            let token = AckToken::new(move |status, reason| {
                let _ = tx2.send(Settle { handle, message_id: id, status, reason });
            });
            match read {
                Ok(Read::Events(events)) => {
                    for mut e in events {
                        e.ack = Some(token.clone());
                        batch.push(e);
                        if batch.len() >= MAX_BATCH && !closed && !ctx.send(std::mem::take(&mut batch)).await {
                            closed = true;
                        }
                    }
                    tokens.push(token);
                }
                Ok(Read::Nothing) => {}
                Err(Unread::Fetch(reason)) => {
                    tracing::warn!(input = %name, "message {message_id}: {reason}; SQS shows it again after its visibility timeout");
                    if stats.errors.len() < MAX_LISTED {
                        stats.errors.push(format!("{name}: message {message_id}: {reason}"));
                    }
                    token.report(AckStatus::Errored, reason);
                }
                Err(Unread::Invalid(reason)) => {
                    stats.invalid += 1;
                    let message = format!("{name}: message {message_id}: {reason}");
                    let loud = stats.errors.len() < MAX_LISTED;
                    RecordInvalid { input: &name, message: &message, count: 1, loud }.emit(&ctx.metrics);
                    if loud {
                        stats.errors.push(message);
                    }
                    token.report(AckStatus::Rejected, reason);
                }
            }
        }
        if closed || !ctx.send(batch).await {
            for t in &tokens {
                t.report(AckStatus::Errored, "the pipeline stopped before taking the message");
            }
            break Ok(());
        }
    };
    drop(tx);
    // Let what is in flight be stored and deleted, for a bounded time.
    let drained = tokio::time::timeout(cfg.drain_timeout, in_flight.pending.idle()).await;
    if drained.is_err() {
        tracing::warn!(input = %name, "{} messages not yet stored after drain_timeout; SQS shows them again after their visibility timeout", in_flight.pending.len());
    }
    deleter.abort();
    stats.deleted = in_flight.deleted.load(Ordering::SeqCst);
    result.map(|()| stats)
}

struct Settle {
    handle: String,
    message_id: String,
    status: AckStatus,
    reason: Option<String>,
}

#[derive(Default)]
struct InFlight {
    pending: Pending,
    deleted: AtomicU64,
}

/// Deletes messages whose events are stored; leaves the others to SQS.
async fn delete_loop(mut rx: mpsc::UnboundedReceiver<Settle>, sqs: aws_sdk_sqs::Client, queue: String, name: String, peer: String, in_flight: Arc<InFlight>) {
    while let Some(s) = rx.recv().await {
        match s.status {
            AckStatus::Delivered => {
                // A failed delete is retried a few times; past that SQS shows the message
                // again and its events are stored again under the same ids.
                let mut tries = 0;
                loop {
                    match sqs.delete_message().queue_url(&queue).receipt_handle(&s.handle).send().await {
                        Ok(_) => {
                            in_flight.deleted.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        Err(e) if tries < 3 => {
                            tries += 1;
                            tracing::debug!(input = %name, "delete of message {} failed ({}), retrying", s.message_id, sdk_error("sqs", &peer, "delete", &e));
                            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                        }
                        Err(e) => {
                            tracing::warn!(input = %name, "{}; SQS will show message {} again", sdk_error("sqs", &peer, "cannot delete a stored message", &e), s.message_id);
                            break;
                        }
                    }
                }
            }
            AckStatus::Errored => tracing::debug!(input = %name, "message {}: an output failed ({}); SQS shows it again after its visibility timeout", s.message_id, s.reason.unwrap_or_default()),
            AckStatus::Rejected => tracing::warn!(input = %name, "message {}: left on the queue for its redrive policy: {}", s.message_id, s.reason.unwrap_or_default()),
        }
        in_flight.pending.done();
    }
}

/// The S3 objects a notification points at, if it is one.
fn s3_objects(v: &Value) -> Option<Vec<(String, String)>> {
    // CloudTrail's own notification.
    if let (Some(bucket), Some(keys)) = (v.get("s3Bucket").and_then(Value::as_str), v.get("s3ObjectKey").and_then(Value::as_array)) {
        return Some(keys.iter().filter_map(Value::as_str).map(|k| (bucket.to_string(), k.to_string())).collect());
    }
    let records = v.get("Records")?.as_array()?;
    if records.is_empty() || !records.iter().all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:s3")) {
        return None;
    }
    Some(
        records
            .iter()
            .filter(|r| r.get("eventName").and_then(Value::as_str).is_some_and(|n| n.starts_with("ObjectCreated:")))
            .filter_map(|r| {
                let s3 = r.get("s3")?;
                let bucket = s3.get("bucket")?.get("name")?.as_str()?;
                let key = s3.get("object")?.get("key")?.as_str()?;
                Some((bucket.to_string(), url_decode(key)))
            })
            .collect(),
    )
}

/// S3 notifications URL-encode keys, with `+` for spaces.
fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether an object is a bare GuardDuty finding.
fn is_finding(v: &Map<String, Value>) -> bool {
    v.contains_key("schemaVersion") && v.contains_key("type") && v.get("arn").and_then(Value::as_str).is_some_and(|a| a.contains(":guardduty:"))
}

/// Why a message gave no events.
enum Unread {
    /// It can never be read (not JSON, a file that is not CloudTrail): counted as invalid.
    Invalid(String),
    /// A file it points at could not be fetched now (network, permissions): tried again
    /// when SQS shows the message again.
    Fetch(String),
}

impl From<String> for Unread {
    fn from(reason: String) -> Unread {
        Unread::Invalid(reason)
    }
}

/// Reads one message body: see the module docs.
async fn read_message(body: &str, message_id: &str, cfg: &SqsConfig, s3: &aws_sdk_s3::Client, peer: &str, ctx: &SourceContext) -> Result<Read, Unread> {
    let origin = format!("sqs:{message_id}");
    let mut value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        // NDJSON and other multi-record bodies: as the AMQP input reads them.
        Err(_) => return Ok(Read::Events(crate::amqp::parse_message(body.as_bytes(), Some(message_id), &origin, usize::MAX, &ctx.normalizer)?)),
    };
    // SNS wraps the real message as text.
    if value.get("Type").and_then(Value::as_str) == Some("Notification") {
        if let Some(inner) = value.get("Message").and_then(Value::as_str).and_then(|m| serde_json::from_str::<Value>(m).ok()) {
            value = inner;
        }
    }
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Read::Nothing);
    }
    if cfg.fetch_s3 {
        if let Some(objects) = s3_objects(&value) {
            let mut events = Vec::new();
            for (bucket, key) in objects.into_iter().filter(|(_, k)| super::is_log_file(k)) {
                let what = format!("cannot get s3://{bucket}/{key}");
                let out = s3.get_object().bucket(&bucket).key(&key).send().await.map_err(|e| Unread::Fetch(sdk_error("sqs", peer, &what, &e).to_string()))?;
                let bytes = out.body.collect().await.map_err(|e| Unread::Fetch(format!("{what}: the download broke off: {e}")))?.into_bytes();
                let file = format!("s3://{bucket}/{key}");
                events.extend(cloudtrail_events(&bytes, &file, cfg.max_file_bytes, &ctx.normalizer).map_err(|e| format!("{file}: {e}"))?);
            }
            return Ok(if events.is_empty() { Read::Nothing } else { Read::Events(events) });
        }
    }
    let received = EventTime::now();
    let objects = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut events = Vec::with_capacity(objects.len());
    for (i, v) in objects.into_iter().enumerate() {
        let Value::Object(mut m) = v else { return Err(Unread::Invalid(format!("item {i} is not a JSON object"))) };
        let id = EventId::derive(&format!("{origin}#message_id={message_id}"), i as u64, b"");
        if is_finding(&m) {
            let mut doc = Map::new();
            doc.insert("source".into(), "guardduty".into());
            if let Some(t) = m.get("updatedAt").cloned() {
                doc.insert("utctimestamp".into(), t);
            }
            // `type` and `severity` would be taken as the event's category and severity.
            doc.insert("details".into(), Value::Object(std::mem::take(&mut m)));
            m = doc;
        }
        events.push(ctx.normalizer.normalize_at(Value::Object(m), id, received).map_err(|e| e.to_string())?);
    }
    Ok(Read::Events(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn notifications_name_their_objects() {
        let s3 = json!({"Records": [
            {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"}, "object": {"key": "AWSLogs/111122223333/CloudTrail/us-east-1/2023/11/14/a+b%3Dc.json.gz", "size": 812}}},
            {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "trail"}, "object": {"key": "old.json.gz"}}}
        ]});
        assert_eq!(s3_objects(&s3).unwrap(), [("trail".to_string(), "AWSLogs/111122223333/CloudTrail/us-east-1/2023/11/14/a b=c.json.gz".to_string())]);
        let ct = json!({"s3Bucket": "trail", "s3ObjectKey": ["k1.json.gz", "k2.json.gz"]});
        assert_eq!(s3_objects(&ct).unwrap().len(), 2);
        // A CloudTrail file's own `Records` are not S3 events.
        assert!(s3_objects(&json!({"Records": [{"eventSource": "iam.amazonaws.com"}]})).is_none());
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%e2%9c%93"), "✓");
    }

    #[test]
    fn validation() {
        let mut c = SqsConfig::new("sqs.example");
        c.max_messages = 11;
        c.wait_time = Duration::from_secs(30);
        let p = c.validate();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(SqsConfig::new("http://127.0.0.1:4566/000000000000/q").validate().is_empty());
    }
}
