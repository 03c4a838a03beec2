//! Elasticsearch / OpenSearch output: events into daily `{events_index}-YYYYMMDD` indices
//! behind the moving aliases `{events_index}` (the newest day) and `{events_index}-previous`
//! (the day before), alerts into monthly `{alerts_index}-YYYYMM` indices behind the alias
//! `{alerts_index}`, through `_bulk` requests. An event a plugin routed
//! (`Event::route`) goes to `{route.index}-YYYYMMDD` under `_id` `{route.doc_id}` instead
//! (no template or aliases are set up for such a prefix unless it falls under `events_index-*`).
//!
//! Speaks the REST API of Elasticsearch 7.8+, 8 and 9 and OpenSearch 1 and 2 with the
//! official `elasticsearch` crate's transport. Only calls both distributions share are used
//! (`GET /`, `_bulk`, `PUT` index, `_alias`/`_aliases`, composable `_index_template`), every
//! request is sent through `Transport::send` with explicit plain headers (`Content-Type:
//! application/json`, `application/x-ndjson` for `_bulk`; `Accept: application/json`), so
//! OpenSearch never sees Elasticsearch's vendor media types, and the same template JSON
//! serves both.
//!
//! Delivery: at least once, stored exactly once. Each document is indexed with op_type
//! `create` and a deterministic `_id` (the event id; the alert id), so a retried request or
//! a redelivered event answers 409 (`version_conflict_engine_exception`) for a document
//! that is already stored, and 409 counts as stored. An event's ack token is settled from
//! its own bulk item: dropped (delivered) on 2xx/409; `Rejected` with the reason when the
//! cluster can never index it (a mapping error), while the document and the reason go to
//! `dead_letter_index`; `Errored` (redeliver) when a retry cannot fix it now or
//! `retry_for` passed. 429/5xx items and failed requests are retried with exponential
//! backoff and jitter ([`retry`] is the policy, a pure function of the response).
//! `write_events` returns once the batch is in the bounded buffer, and waits while
//! buffered plus in-flight documents exceed `bulk_max_docs × (in_flight + 1)` (or the same
//! in bytes): that wait is the backpressure on the inputs.

pub mod retry;
pub mod templates;

use crate::error::ConnectorError;
use crate::plugins::chain::valid_route_index;
use crate::events::{AlertsWritten, EventsWritten, OutputRecordsFailed, OutputRetrying};
use crate::secret::{redact_url, Secret};
use crate::sink::{EventBatch, Sink, SinkFuture};
use bytes::Bytes;
use elasticsearch::auth::Credentials;
use elasticsearch::http::headers::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use elasticsearch::http::transport::{SingleNodeConnectionPool, Transport, TransportBuilder};
use elasticsearch::http::{Method, Url};
use parking_lot::Mutex;
use rampart_core::{AckStatus, AckToken, Alert, Domain, Event, EventTime, Metrics, Retry};
use retry::{body_reason, classify_bulk, classify_request_status, Action, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

const OUTPUT: &str = "elasticsearch";
const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
/// Only what the retry policy reads: a clean 1000-document answer shrinks to `{"errors":false}`.
const BULK_FILTER: &str = "errors,items.*.status,items.*.error";

/// `type: elasticsearch` output.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// The cluster, `http(s)://host:port` (a path prefix is kept, for a proxy). It may carry
    /// credentials (`https://user:pass@host:9200`, percent-encoded); logs and errors show it
    /// with the password redacted. Required.
    pub url: Secret,
    /// User for HTTP basic authentication. Default: none (or the user written in `url`).
    #[serde(default)]
    pub user: Option<String>,
    /// Password for `user`. Default: none.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Index events. Default true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub events: bool,
    /// Index alerts. Default true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub alerts: bool,
    /// Prefix of the daily event indices (`events-YYYYMMDD`) and name of the alias on the
    /// newest day (`{events_index}-previous` is on the day before). Default `events`.
    #[serde(default = "default_events_index")]
    pub events_index: String,
    /// Prefix of the monthly alert indices (`alerts-YYYYMM`) and name of the alias on all of
    /// them. Default `alerts`.
    #[serde(default = "default_alerts_index")]
    pub alerts_index: String,
    /// Index for documents the cluster refused (mapping errors), with the reason and the
    /// original JSON. Default `rampart-deadletter`.
    #[serde(default = "default_dead_letter_index")]
    pub dead_letter_index: String,
    /// Replicas per shard in the installed templates. Default 1 (0 for a single node).
    #[serde(default = "one", deserialize_with = "crate::registry::lenient")]
    pub replicas: u32,
    /// Primary shards per index in the installed templates. Default 1.
    #[serde(default = "one", deserialize_with = "crate::registry::lenient")]
    pub shards: u32,
    /// A bulk request goes out at this many documents. Default 1000.
    #[serde(default = "default_bulk_max_docs", deserialize_with = "crate::registry::lenient")]
    pub bulk_max_docs: usize,
    /// A bulk request goes out at this many bytes of body. Default 5242880 (5 MiB).
    #[serde(default = "default_bulk_max_bytes", deserialize_with = "crate::registry::lenient")]
    pub bulk_max_bytes: usize,
    /// A bulk request goes out this long after its first document was buffered, however
    /// small. Default `1s`.
    #[serde(default = "default_flush_interval", with = "crate::registry::human_duration")]
    pub flush_interval: Duration,
    /// Bulk requests in flight at once. Default 4.
    #[serde(default = "default_in_flight", deserialize_with = "crate::registry::lenient")]
    pub in_flight: usize,
    /// First retry delay; it doubles per attempt, with jitter. Default `200ms`.
    #[serde(default = "default_retry_initial", with = "crate::registry::human_duration")]
    pub retry_initial: Duration,
    /// Longest retry delay. Default `30s`.
    #[serde(default = "default_retry_max", with = "crate::registry::human_duration")]
    pub retry_max: Duration,
    /// How long a document is retried before its event is reported `Errored` (its source
    /// redelivers it later) and dropped here; an alert is then counted as an output error.
    /// Default `5m`.
    #[serde(default = "default_retry_for", with = "crate::registry::human_duration")]
    pub retry_for: Duration,
    /// Timeout of one HTTP request, from connecting to the end of the answer. Default `30s`.
    #[serde(default = "default_request_timeout", with = "crate::registry::human_duration")]
    pub request_timeout: Duration,
    /// How long startup keeps trying to reach the cluster before failing. Default `60s`.
    #[serde(default = "default_connect_timeout", with = "crate::registry::human_duration")]
    pub connect_timeout: Duration,
    /// Install (overwrite) the index templates at startup. Default true; turn off when the
    /// user may not manage templates and they are installed some other way.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub install_templates: bool,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_events_index() -> String {
    "events".into()
}
fn default_alerts_index() -> String {
    "alerts".into()
}
fn default_dead_letter_index() -> String {
    "rampart-deadletter".into()
}
fn default_bulk_max_docs() -> usize {
    1000
}
fn default_bulk_max_bytes() -> usize {
    5 * 1024 * 1024
}
fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_in_flight() -> usize {
    4
}
fn default_retry_initial() -> Duration {
    Duration::from_millis(200)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}
fn default_retry_for() -> Duration {
    Duration::from_secs(300)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(60)
}

impl ElasticsearchConfig {
    /// A config for `url` with every default.
    pub fn new(url: impl Into<String>) -> ElasticsearchConfig {
        ElasticsearchConfig {
            url: Secret::new(url),
            user: None,
            password: None,
            events: true,
            alerts: true,
            events_index: default_events_index(),
            alerts_index: default_alerts_index(),
            dead_letter_index: default_dead_letter_index(),
            replicas: 1,
            shards: 1,
            bulk_max_docs: default_bulk_max_docs(),
            bulk_max_bytes: default_bulk_max_bytes(),
            flush_interval: default_flush_interval(),
            in_flight: default_in_flight(),
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            retry_for: default_retry_for(),
            request_timeout: default_request_timeout(),
            connect_timeout: default_connect_timeout(),
            install_templates: true,
        }
    }

    /// The address for logs and errors (password redacted).
    pub fn peer(&self) -> String {
        redact_url(self.url.expose())
    }

    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        match Url::parse(self.url.expose()) {
            Err(e) => p.push(format!("url: `{}` is not a URL: {e} (expected http(s)://host:9200)", self.peer())),
            Ok(u) => {
                if u.scheme() != "http" && u.scheme() != "https" {
                    p.push(format!("url: `{}`: the scheme must be http or https", self.peer()));
                }
                if u.host_str().is_none_or(str::is_empty) {
                    p.push(format!("url: `{}` has no host", self.peer()));
                }
                if !u.username().is_empty() && self.user.is_some() {
                    p.push("url and user both name a user: keep one".to_string());
                }
            }
        }
        if self.password.is_some() && self.user.is_none() {
            p.push("password is set but user is not".to_string());
        }
        if self.user.is_some() && self.password.is_none() {
            p.push("user is set but password is not".to_string());
        }
        for (key, name) in [("events_index", &self.events_index), ("alerts_index", &self.alerts_index), ("dead_letter_index", &self.dead_letter_index)] {
            if let Some(why) = bad_index_name(name) {
                p.push(format!("{key}: `{name}` {why}"));
            }
        }
        // Each template's pattern must match only its own indices: composable templates of
        // equal priority may not overlap, and an overlap would map one kind like the other.
        let (e, a, d) = (&self.events_index, &self.alerts_index, &self.dead_letter_index);
        if e == a || a.starts_with(&format!("{e}-")) || e.starts_with(&format!("{a}-")) {
            p.push(format!("events_index `{e}` and alerts_index `{a}` overlap: `{e}-*` and `{a}-*` must not match each other's indices"));
        }
        for (key, prefix) in [("events_index", e), ("alerts_index", a)] {
            if d == prefix || d.starts_with(&format!("{prefix}-")) {
                p.push(format!("dead_letter_index `{d}` falls under {key} `{prefix}-*`: pick a name outside it"));
            }
        }
        if self.shards == 0 || self.shards > 1024 {
            p.push(format!("shards: {} is out of range (1 to 1024)", self.shards));
        }
        if self.bulk_max_docs == 0 {
            p.push("bulk_max_docs: must be at least 1".to_string());
        }
        if self.bulk_max_bytes < 1024 {
            p.push(format!("bulk_max_bytes: {} is below 1024 bytes", self.bulk_max_bytes));
        }
        if self.in_flight == 0 || self.in_flight > 64 {
            p.push(format!("in_flight: {} is out of range (1 to 64)", self.in_flight));
        }
        for (key, d) in [
            ("flush_interval", self.flush_interval),
            ("retry_initial", self.retry_initial),
            ("retry_for", self.retry_for),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if d.is_zero() {
                p.push(format!("{key}: must be longer than 0"));
            }
        }
        if self.retry_max < self.retry_initial {
            p.push("retry_max: must not be shorter than retry_initial".to_string());
        }
        if !self.events && !self.alerts {
            p.push("events and alerts are both false: this output would write nothing".to_string());
        }
        p
    }
}

/// Why `name` cannot prefix an index, if it cannot (lower case; no `\ / * ? " < > | , #`,
/// spaces or `:`; not starting with `-`, `_` or `+`; leaving room for the date suffix).
fn bad_index_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 200 {
        Some("is longer than 200 bytes")
    } else if name.chars().any(|c| c.is_uppercase()) {
        Some("has upper-case letters (index names are lower case)")
    } else if name.chars().any(|c| matches!(c, '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':' | ' ') || c.is_control()) {
        Some("has a character index names may not contain (\\ / * ? \" < > | , # : or a space)")
    } else if name.starts_with(['-', '_', '+', '.']) {
        Some("starts with - _ + or . (reserved)")
    } else {
        None
    }
}

/// The Elasticsearch/OpenSearch output; see the module docs.
pub struct ElasticsearchOutput {
    shared: Arc<Shared>,
    flusher: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for ElasticsearchOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticsearchOutput").field("peer", &self.shared.peer).field("load", &*self.shared.load.borrow()).finish_non_exhaustive()
    }
}

/// What the sink and its tasks share. Every task runs on the sink's own thread; the locks
/// are never held across an `.await` and are uncontended.
struct Shared {
    cfg: ElasticsearchConfig,
    peer: String,
    transport: Transport,
    metrics: Arc<Metrics>,
    buffer: Mutex<Buffer>,
    /// Signalled when the buffer gets its first document (the flusher starts its clock).
    started: Notify,
    /// Documents (and bytes) taken and not yet settled: buffered, in flight or waiting to
    /// be retried. Writers wait on it for room; `flush` waits for zero.
    load: Arc<watch::Sender<Load>>,
    permits: Semaphore,
    /// Daily event indices created (and aliases checked) by this process. The lock also
    /// serializes alias moves, so two days never race.
    prepared: tokio::sync::Mutex<HashSet<String>>,
    retry_log: LogLimiter,
    failure_log: LogLimiter,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Load {
    docs: usize,
    bytes: usize,
}

#[derive(Default)]
struct Buffer {
    docs: Vec<Doc>,
    bytes: usize,
    since: Option<Instant>,
    generation: u64,
}

impl Buffer {
    fn take(&mut self) -> Vec<Doc> {
        self.bytes = 0;
        self.since = None;
        self.generation += 1;
        std::mem::take(&mut self.docs)
    }
}

/// One document on its way: where it goes, its JSON, and who waits for it.
struct Doc {
    index: String,
    id: String,
    source: Vec<u8>,
    kind: Kind,
    taken: Instant,
    _load: Taken,
}

enum Kind {
    Event(Arc<Event>, Ack),
    Alert,
    /// A refused document on its way to the dead-letter index.
    DeadLetter,
}

/// An ack token that cannot be lost: dropping it unsettled (the output stopped, its thread
/// ended) reports `Errored`, never the plain drop that means delivered.
struct Ack(Option<AckToken>);

impl Ack {
    fn delivered(mut self) {
        self.0 = None;
    }

    fn report(mut self, status: AckStatus, reason: String) {
        if let Some(t) = self.0.take() {
            t.report(status, reason);
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.report(AckStatus::Errored, "elasticsearch output stopped before the event was stored");
        }
    }
}

/// A document's share of [`Shared::load`], returned when the document is dropped.
struct Taken {
    load: Arc<watch::Sender<Load>>,
    bytes: usize,
}

impl Taken {
    fn new(load: &Arc<watch::Sender<Load>>, bytes: usize) -> Taken {
        load.send_modify(|l| {
            l.docs += 1;
            l.bytes += bytes;
        });
        Taken { load: load.clone(), bytes }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let bytes = self.bytes;
        self.load.send_modify(|l| {
            l.docs = l.docs.saturating_sub(1);
            l.bytes = l.bytes.saturating_sub(bytes);
        });
    }
}

/// Logs loudly at most once per period; the rest goes to `debug`.
struct LogLimiter {
    last: Mutex<Option<std::time::Instant>>,
}

impl LogLimiter {
    const PERIOD: Duration = Duration::from_secs(10);

    fn new() -> LogLimiter {
        LogLimiter { last: Mutex::new(None) }
    }

    fn loud(&self) -> bool {
        let mut last = self.last.lock();
        match *last {
            Some(t) if t.elapsed() < Self::PERIOD => false,
            _ => {
                *last = Some(std::time::Instant::now());
                true
            }
        }
    }
}

impl ElasticsearchOutput {
    /// An output for `cfg` (validated by the caller). Nothing is sent before
    /// [`Sink::connect`].
    pub fn new(cfg: ElasticsearchConfig, metrics: Arc<Metrics>) -> Result<ElasticsearchOutput, ConnectorError> {
        let peer = cfg.peer();
        let user_error = |message: String| ConnectorError::Peer { component: OUTPUT, peer: peer.clone(), message, domain: Domain::User, retry: Retry::Never };
        let mut url = Url::parse(cfg.url.expose()).map_err(|e| user_error(format!("url is not a URL: {e}")))?;
        // Credentials written in the URL become basic auth, and the URL the client keeps
        // (and puts in its error messages) has none.
        let mut credentials = match (&cfg.user, &cfg.password) {
            (Some(u), Some(p)) => Some(Credentials::Basic(u.clone(), p.expose().to_string())),
            _ => None,
        };
        if !url.username().is_empty() {
            credentials = Some(Credentials::Basic(percent_decode(url.username()), url.password().map(percent_decode).unwrap_or_default()));
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url)).timeout(cfg.request_timeout).enable_meta_header(false);
        if let Some(c) = credentials {
            builder = builder.auth(c);
        }
        let transport = builder.build().map_err(|e| user_error(format!("cannot build the HTTP client: {e}")))?;
        let shared = Shared {
            permits: Semaphore::new(cfg.in_flight.max(1)),
            peer,
            transport,
            metrics,
            buffer: Mutex::new(Buffer::default()),
            started: Notify::new(),
            load: Arc::new(watch::Sender::new(Load::default())),
            prepared: tokio::sync::Mutex::new(HashSet::new()),
            retry_log: LogLimiter::new(),
            failure_log: LogLimiter::new(),
            cfg,
        };
        Ok(ElasticsearchOutput { shared: Arc::new(shared), flusher: None })
    }

    /// Starts the task that sends a partial bulk request `flush_interval` after its first
    /// document (once; `connect` does it, a write without `connect` too).
    fn ensure_flusher(&mut self) {
        if self.flusher.is_none() {
            self.flusher = Some(tokio::spawn(flusher(self.shared.clone())));
        }
    }
}

impl Drop for ElasticsearchOutput {
    /// Stops the flusher and settles what is still buffered as `Errored` (requests already
    /// sent finish on their own tasks while the runtime lives).
    fn drop(&mut self) {
        if let Some(f) = self.flusher.take() {
            f.abort();
        }
        drop(self.shared.buffer.lock().take());
    }
}

impl Sink for ElasticsearchOutput {
    fn name(&self) -> &'static str {
        OUTPUT
    }

    fn wants_events(&self) -> bool {
        self.shared.cfg.events
    }

    fn wants_alerts(&self) -> bool {
        self.shared.cfg.alerts
    }

    fn connect(&mut self) -> SinkFuture<'_> {
        Box::pin(async move {
            self.shared.connect().await?;
            self.ensure_flusher();
            Ok(())
        })
    }

    fn write_events(&mut self, batch: EventBatch) -> SinkFuture<'_> {
        Box::pin(async move {
            if !self.shared.cfg.events || batch.is_empty() {
                return Ok(());
            }
            self.ensure_flusher();
            self.shared.wait_for_room().await;
            let EventBatch { events, acks } = batch;
            let mut acks = acks.into_iter();
            let prefix = &self.shared.cfg.events_index;
            for e in events.iter() {
                let ack = Ack(acks.next().flatten());
                match event_source(e) {
                    Ok(source) => {
                        // A plugin's route picks the index prefix and `_id` (an unusable
                        // prefix falls back to `events_index`).
                        let prefix = e.route.index.as_deref().filter(|i| valid_route_index(i)).unwrap_or(prefix);
                        let index = templates::event_index(prefix, e.time);
                        let id = e.route.doc_id.clone().unwrap_or_else(|| e.id.to_string());
                        self.shared.push(index, id, source, Kind::Event(e.clone(), ack));
                    }
                    Err(err) => ack.report(AckStatus::Rejected, format!("elasticsearch: cannot serialize event {}: {err}", e.id)),
                }
            }
            Ok(())
        })
    }

    fn write_alerts(&mut self, alerts: Arc<Vec<Alert>>) -> SinkFuture<'_> {
        Box::pin(async move {
            if !self.shared.cfg.alerts || alerts.is_empty() {
                return Ok(());
            }
            self.ensure_flusher();
            self.shared.wait_for_room().await;
            let prefix = &self.shared.cfg.alerts_index;
            for a in alerts.iter() {
                let source = alert_source(a).map_err(|source| ConnectorError::Serialize { component: OUTPUT, source })?;
                self.shared.push(templates::alert_index(prefix, a.utctimestamp), a.id.clone(), source, Kind::Alert);
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> SinkFuture<'_> {
        Box::pin(async move {
            let docs = self.shared.buffer.lock().take();
            self.shared.dispatch(docs);
            let mut load = self.shared.load.subscribe();
            let _ = load.wait_for(|l| l.docs == 0).await;
            Ok(())
        })
    }
}

/// Sends the buffer `flush_interval` after its first document, unless size sent it first.
async fn flusher(shared: Arc<Shared>) {
    loop {
        let (since, generation) = loop {
            let started = shared.started.notified();
            let clock = {
                let b = shared.buffer.lock();
                b.since.map(|since| (since, b.generation))
            };
            match clock {
                Some(c) => break c,
                None => started.await,
            }
        };
        tokio::time::sleep_until(since + shared.cfg.flush_interval).await;
        let docs = {
            let mut b = shared.buffer.lock();
            if b.generation != generation {
                continue;
            }
            b.take()
        };
        shared.dispatch(docs);
    }
}

impl Shared {
    fn error(&self, domain: Domain, retry: Retry, message: String) -> ConnectorError {
        ConnectorError::Peer { component: OUTPUT, peer: self.peer.clone(), message, domain, retry }
    }

    /// One request; `Ok` is any HTTP answer, `Err` no answer (connection, timeout).
    async fn request(&self, method: Method, path: &str, query: &[(&str, &str)], body: Option<Vec<u8>>, content_type: &'static str) -> Result<(u16, Bytes), elasticsearch::Error> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(ACCEPT, HeaderValue::from_static(JSON));
        let query = if query.is_empty() { None } else { Some(query) };
        let response = self.transport.send(method, path, headers, query, body, None).await?;
        let status = response.status_code().as_u16();
        Ok((status, response.bytes().await?))
    }

    /// A startup request, retried with backoff while the cluster does not answer (or answers
    /// 408/429/5xx, as it does while starting) until `connect_timeout` has passed.
    async fn startup_request(&self, deadline: Instant, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<(u16, Bytes), ConnectorError> {
        let mut attempt = 0;
        loop {
            let problem = match self.request(method, path, &[], body.clone(), JSON).await {
                Ok((s, b)) if !matches!(s, 408 | 429 | 500..=599) => return Ok((s, b)),
                Ok((s, b)) => format!("HTTP {s}: {}", body_reason(&b)),
                Err(e) => describe(&e),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(self.error(
                    Domain::External,
                    Retry::Later,
                    format!(
                        "{method:?} {path}: no usable answer within connect_timeout ({}): {problem}; check that Elasticsearch or OpenSearch runs at that address and that `url` is right",
                        rampart_core::time::format_duration(self.cfg.connect_timeout)
                    ),
                ));
            }
            attempt += 1;
            let delay = backoff(self.cfg.retry_initial, self.cfg.retry_max, attempt, rand::random::<f64>()).min(deadline - now);
            if self.retry_log.loud() {
                tracing::warn!(output = OUTPUT, peer = %self.peer, "{method:?} {path} failed ({problem}); retrying in {delay:?}");
            } else {
                tracing::debug!(output = OUTPUT, peer = %self.peer, "{method:?} {path} failed ({problem}); retrying in {delay:?}");
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// `GET /` (and the distribution's version), then the index templates.
    async fn connect(&self) -> Result<(), ConnectorError> {
        let deadline = Instant::now() + self.cfg.connect_timeout;
        let (status, body) = self.startup_request(deadline, Method::Get, "/", None).await?;
        match status {
            200..=299 => {}
            401 | 403 => {
                return Err(self.error(Domain::User, Retry::Never, format!("HTTP {status}: {}; check user and password", body_reason(&body))));
            }
            _ => return Err(self.error(Domain::External, Retry::Later, format!("GET / answered HTTP {status}: {}", body_reason(&body)))),
        }
        let info: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let version = info.pointer("/version/number").and_then(Value::as_str).unwrap_or("unknown version");
        let distribution = info.pointer("/version/distribution").and_then(Value::as_str).unwrap_or("elasticsearch");
        tracing::info!(output = OUTPUT, peer = %self.peer, "connected to {distribution} {version} (cluster {})", info["cluster_name"].as_str().unwrap_or("?"));
        if !self.cfg.install_templates {
            return Ok(());
        }
        if distribution != "opensearch" && !composable_templates(version) {
            return Err(self.error(
                Domain::User,
                Retry::Never,
                format!("Elasticsearch {version} has no composable index templates (they need 7.8 or later): upgrade it, or set install_templates: false and install the templates yourself"),
            ));
        }
        let c = &self.cfg;
        let mut wanted = vec![(c.dead_letter_index.as_str(), templates::dead_letter_template(&c.dead_letter_index, c.shards, c.replicas))];
        if c.events {
            wanted.push((c.events_index.as_str(), templates::events_template(&c.events_index, c.shards, c.replicas)));
        }
        if c.alerts {
            wanted.push((c.alerts_index.as_str(), templates::alerts_template(&c.alerts_index, c.shards, c.replicas)));
        }
        for (name, template) in wanted {
            let path = format!("/_index_template/{name}");
            let body = serde_json::to_vec(&template).map_err(|source| ConnectorError::Serialize { component: OUTPUT, source })?;
            let (status, answer) = self.startup_request(deadline, Method::Put, &path, Some(body)).await?;
            let reason = body_reason(&answer);
            match status {
                200..=299 => tracing::debug!(output = OUTPUT, "installed index template {name}"),
                401 | 403 => {
                    return Err(self.error(
                        Domain::User,
                        Retry::Never,
                        format!("PUT {path}: HTTP {status}: {reason}; the user needs the manage_index_templates privilege, or set install_templates: false and install the templates yourself"),
                    ))
                }
                400 | 404 | 405 => {
                    return Err(self.error(
                        Domain::User,
                        Retry::Never,
                        format!("PUT {path}: HTTP {status}: {reason}; the cluster refused the composable index template (they need Elasticsearch 7.8+ or OpenSearch 1+); set install_templates: false to manage templates yourself"),
                    ))
                }
                _ => return Err(self.error(Domain::External, Retry::Later, format!("PUT {path}: HTTP {status}: {reason}"))),
            }
        }
        Ok(())
    }

    /// Waits while the documents taken and not settled are over the bound.
    async fn wait_for_room(&self) {
        let slots = self.cfg.in_flight + 1;
        let (max_docs, max_bytes) = (self.cfg.bulk_max_docs.saturating_mul(slots), self.cfg.bulk_max_bytes.saturating_mul(slots));
        let mut load = self.load.subscribe();
        let _ = load.wait_for(|l| l.docs < max_docs && l.bytes < max_bytes).await;
    }

    /// Appends a document to the buffer, sending the buffer when it is full.
    fn push(self: &Arc<Self>, index: String, id: String, source: Vec<u8>, kind: Kind) {
        let size = source.len() + index.len() + id.len() + 40;
        let doc = Doc { index, id, source, kind, taken: Instant::now(), _load: Taken::new(&self.load, size) };
        let (before, full) = {
            let mut b = self.buffer.lock();
            let before = if !b.docs.is_empty() && b.bytes + size > self.cfg.bulk_max_bytes { b.take() } else { Vec::new() };
            if b.docs.is_empty() {
                b.since = Some(Instant::now());
                self.started.notify_one();
            }
            b.bytes += size;
            b.docs.push(doc);
            let full = if b.docs.len() >= self.cfg.bulk_max_docs || b.bytes >= self.cfg.bulk_max_bytes { b.take() } else { Vec::new() };
            (before, full)
        };
        self.dispatch(before);
        self.dispatch(full);
    }

    /// Sends `docs` as one bulk request (and its retries) from a task of its own.
    fn dispatch(self: &Arc<Self>, docs: Vec<Doc>) {
        if !docs.is_empty() {
            tokio::spawn(self.clone().run_bulk(docs));
        }
    }

    /// One bulk request until every document in it is settled: sent (at most `in_flight`
    /// at once), its answer applied, what must be retried sent again after a backoff, and
    /// what ran out of `retry_for` given up.
    async fn run_bulk(self: Arc<Self>, mut docs: Vec<Doc>) {
        let mut attempt = 0;
        let mut last_error = String::new();
        loop {
            if attempt > 0 {
                docs = self.expire(docs, &last_error);
            }
            if docs.is_empty() {
                return;
            }
            let outcome = {
                let Ok(_permit) = self.permits.acquire().await else { return };
                self.send_bulk(&docs).await
            };
            let (retry, reason) = self.apply(docs, outcome);
            docs = retry;
            if docs.is_empty() {
                return;
            }
            attempt += 1;
            let delay = backoff(self.cfg.retry_initial, self.cfg.retry_max, attempt, rand::random::<f64>());
            // Wake up in time to give up on the oldest document when its time is over.
            let oldest = docs.iter().map(|d| d.taken).min().unwrap_or_else(Instant::now);
            let delay = delay.min((oldest + self.cfg.retry_for).saturating_duration_since(Instant::now()));
            OutputRetrying { output: OUTPUT, peer: &self.peer, docs: docs.len(), attempt, delay, reason: &reason, loud: self.retry_log.loud() }.emit(&self.metrics);
            last_error = reason;
            tokio::time::sleep(delay).await;
        }
    }

    /// Creates the daily indices of `docs` (and moves the aliases), then sends the request.
    async fn send_bulk(&self, docs: &[Doc]) -> Outcome {
        if let Err(reason) = self.prepare_event_indices(docs).await {
            return Outcome::Whole(Action::Retry(reason));
        }
        let mut body = Vec::with_capacity(docs.iter().map(|d| d.source.len() + d.index.len() + d.id.len() + 40).sum());
        for d in docs {
            body.extend_from_slice(b"{\"create\":{\"_index\":");
            push_json_str(&mut body, &d.index);
            body.extend_from_slice(b",\"_id\":");
            push_json_str(&mut body, &d.id);
            body.extend_from_slice(b"}}\n");
            body.extend_from_slice(&d.source);
            body.push(b'\n');
        }
        match self.request(Method::Post, "/_bulk", &[("filter_path", BULK_FILTER)], Some(body), NDJSON).await {
            Ok((status, answer)) => classify_bulk(status, &answer, docs.len()),
            Err(e) => Outcome::Whole(Action::Retry(describe(&e))),
        }
    }

    /// Settles what an answer settles; returns the documents to retry and why.
    fn apply(self: &Arc<Self>, docs: Vec<Doc>, outcome: Outcome) -> (Vec<Doc>, String) {
        let n = docs.len();
        let actions = match outcome {
            Outcome::AllDone => vec![Action::Done; n],
            Outcome::Items(a) => a,
            Outcome::Whole(a) => vec![a; n],
        };
        let mut stored = Vec::new();
        let mut alerts = 0;
        let mut retry = Vec::new();
        let mut retry_reason = String::new();
        let mut dead = Vec::new();
        let mut rejected: Option<(u64, String)> = None;
        let mut failed: Option<(u64, String)> = None;
        let count = |slot: &mut Option<(u64, String)>, reason: &str| match slot {
            Some((n, _)) => *n += 1,
            None => *slot = Some((1, reason.to_string())),
        };
        for (doc, action) in docs.into_iter().zip(actions) {
            match action {
                Action::Done => match doc.kind {
                    Kind::Event(e, ack) => {
                        ack.delivered();
                        stored.push(e);
                    }
                    Kind::Alert => alerts += 1,
                    Kind::DeadLetter => tracing::debug!(output = OUTPUT, "dead letter {} stored", doc.id),
                },
                Action::Retry(reason) => {
                    retry_reason = reason;
                    retry.push(doc);
                }
                Action::DeadLetter(reason) => {
                    let why = format!("{}: {reason}", doc.index);
                    if matches!(doc.kind, Kind::DeadLetter) {
                        count(&mut failed, &format!("the dead-letter index refused a document: {why}"));
                        continue;
                    }
                    count(&mut rejected, &why);
                    dead.push(self.dead_letter(&doc, &reason));
                    if let Kind::Event(_, ack) = doc.kind {
                        ack.report(AckStatus::Rejected, format!("elasticsearch: {why}"));
                    }
                }
                Action::Fail(reason) => {
                    let why = format!("{}: {reason}", doc.index);
                    count(&mut failed, &why);
                    if let Kind::Event(_, ack) = doc.kind {
                        ack.report(AckStatus::Errored, format!("elasticsearch: {why}"));
                    }
                }
            }
        }
        if !stored.is_empty() {
            EventsWritten { output: OUTPUT, events: &stored }.emit(&self.metrics);
        }
        if alerts > 0 {
            AlertsWritten { output: OUTPUT, count: alerts }.emit(&self.metrics);
        }
        if let Some((count, reason)) = rejected {
            let what = format!("refused by the cluster; sent to {}", self.cfg.dead_letter_index);
            OutputRecordsFailed { output: OUTPUT, count, reason: &reason, what: &what, loud: self.failure_log.loud() }.emit(&self.metrics);
        }
        if let Some((count, reason)) = failed {
            OutputRecordsFailed { output: OUTPUT, count, reason: &reason, what: "not stored", loud: self.failure_log.loud() }.emit(&self.metrics);
        }
        self.dispatch(dead);
        (retry, retry_reason)
    }

    /// Gives up on documents whose `retry_for` has passed.
    fn expire(&self, docs: Vec<Doc>, last_error: &str) -> Vec<Doc> {
        let now = Instant::now();
        let (expired, keep): (Vec<Doc>, Vec<Doc>) = docs.into_iter().partition(|d| now.duration_since(d.taken) >= self.cfg.retry_for);
        if !expired.is_empty() {
            let reason = format!("not stored within retry_for ({}); last error: {last_error}", rampart_core::time::format_duration(self.cfg.retry_for));
            let count = expired.len() as u64;
            for d in expired {
                if let Kind::Event(_, ack) = d.kind {
                    ack.report(AckStatus::Errored, format!("elasticsearch: {reason}"));
                }
            }
            OutputRecordsFailed { output: OUTPUT, count, reason: &reason, what: "given up", loud: self.failure_log.loud() }.emit(&self.metrics);
        }
        keep
    }

    /// The dead-letter document for `doc`, refused for `reason`. Its id is the original's,
    /// so a redelivered poison event is dead-lettered once.
    fn dead_letter(self: &Arc<Self>, doc: &Doc, reason: &str) -> Doc {
        let body = json!({
            "@timestamp": EventTime::now().to_rfc3339(),
            "index": doc.index,
            "id": doc.id,
            "reason": reason,
            "document": String::from_utf8_lossy(&doc.source),
        });
        let source = body.to_string().into_bytes();
        let index = self.cfg.dead_letter_index.clone();
        let size = source.len() + index.len() + doc.id.len() + 40;
        Doc { index, id: doc.id.clone(), source, kind: Kind::DeadLetter, taken: Instant::now(), _load: Taken::new(&self.load, size) }
    }

    /// Creates each daily event index of `docs` this process has not prepared yet and moves
    /// the aliases. `Err` (retry the request) only for failures a retry can fix; a refusal
    /// (no privilege to manage aliases) is logged and the documents go out anyway.
    async fn prepare_event_indices(&self, docs: &[Doc]) -> Result<(), String> {
        let mut wanted: Vec<&str> = Vec::new();
        for d in docs {
            if matches!(d.kind, Kind::Event(..)) && !wanted.contains(&d.index.as_str()) {
                wanted.push(&d.index);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut prepared = self.prepared.lock().await;
        for index in wanted {
            if prepared.contains(index) {
                continue;
            }
            match self.prepare_day(index).await {
                Ok(()) => {}
                Err(Action::Retry(r)) => return Err(r),
                Err(other) => tracing::error!(output = OUTPUT, peer = %self.peer, "cannot set up index {index} or its aliases: {other:?}; writing to it anyway"),
            }
            prepared.insert(index.to_string());
        }
        Ok(())
    }

    async fn prepare_day(&self, index: &str) -> Result<(), Action> {
        let prefix = &self.cfg.events_index;
        let Some(day) = templates::index_day(prefix, index) else { return Ok(()) };
        let fail = |what: &str, r: Result<(u16, Bytes), elasticsearch::Error>| -> Result<(u16, Bytes), Action> {
            match r {
                Err(e) => Err(Action::Retry(format!("{what}: {}", describe(&e)))),
                Ok((s, b)) => match classify_request_status(s, &b) {
                    Action::Done => Ok((s, b)),
                    Action::Retry(r) => Err(Action::Retry(format!("{what}: {r}"))),
                    _ if s == 404 || (s == 400 && body_reason(&b).starts_with("resource_already_exists_exception")) => Ok((s, b)),
                    Action::Fail(r) | Action::DeadLetter(r) => Err(Action::Fail(format!("{what}: {r}"))),
                },
            }
        };
        fail(&format!("creating index {index}"), self.request(Method::Put, &format!("/{index}"), &[], None, JSON).await)?;
        let previous = templates::previous_alias(prefix);
        let (_, body) = fail("reading aliases", self.request(Method::Get, &format!("/_alias/{prefix},{previous}"), &[], None, JSON).await)?;
        let holders = templates::parse_alias_holders(&serde_json::from_slice(&body).unwrap_or(Value::Null), prefix);
        let day_before = day.pred_opt().map(|d| templates::day_index(prefix, d));
        let before_exists = match &day_before {
            Some(i) => fail("checking the day before", self.request(Method::Head, &format!("/{i}"), &[], None, JSON).await)?.0 == 200,
            None => false,
        };
        let actions = templates::plan_aliases(prefix, &holders, day, before_exists);
        if actions.is_empty() {
            return Ok(());
        }
        let body = json!({"actions": actions}).to_string();
        fail("moving aliases", self.request(Method::Post, "/_aliases", &[], Some(body.clone().into_bytes()), JSON).await)?;
        tracing::info!(output = OUTPUT, peer = %self.peer, "aliases moved for {index}: {body}");
        Ok(())
    }
}

/// Whether an Elasticsearch version has composable index templates (7.8+).
fn composable_templates(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major > 7 || (major == 7 && minor >= 8)
}

/// Exponential backoff with jitter: `initial × 2^(attempt-1)`, at most `max`, then a
/// uniform pick in its upper half (`jitter` in 0..1), so clients that failed together do
/// not come back together.
fn backoff(initial: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(max);
    exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The event's document: the id first, `@timestamp` (the event time) when the document has
/// none, then the normalized document as the NDJSON output writes it.
fn event_source(e: &Event) -> Result<Vec<u8>, serde_json::Error> {
    let body = serde_json::to_vec(&e.doc)?;
    let mut out = Vec::with_capacity(body.len() + 80);
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(e.id.to_string().as_bytes());
    out.push(b'"');
    if !e.doc.contains_key("@timestamp") {
        out.extend_from_slice(b",\"@timestamp\":");
        push_json_str(&mut out, &e.time.to_rfc3339());
    }
    if e.doc.is_empty() {
        out.push(b'}');
    } else {
        // `body` is `{…}`: splice its inside after what is written already.
        out.push(b',');
        out.extend_from_slice(&body[1..]);
    }
    Ok(out)
}

/// The alert's document with `@timestamp` (its event time) added.
fn alert_source(a: &Alert) -> Result<Vec<u8>, serde_json::Error> {
    let mut v = serde_json::to_value(a)?;
    if let Value::Object(m) = &mut v {
        if !m.contains_key("@timestamp") {
            m.insert("@timestamp".into(), Value::String(a.utctimestamp.to_rfc3339()));
        }
    }
    serde_json::to_vec(&v)
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// An error with its causes (`error sending request …: client error (Connect): tcp connect
/// error: Connection refused (os error 111)`), each cause once.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// Decodes `%XX` escapes in URL user info.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{EventId, Normalizer};

    #[test]
    fn config_defaults_and_every_problem_reported() {
        let c: ElasticsearchConfig = serde_json::from_value(json!({"url": "http://127.0.0.1:9200"})).unwrap();
        assert_eq!(c, ElasticsearchConfig::new("http://127.0.0.1:9200"));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!((c.bulk_max_docs, c.bulk_max_bytes, c.in_flight, c.replicas, c.shards), (1000, 5 * 1024 * 1024, 4, 1, 1));
        assert_eq!((c.flush_interval, c.retry_for, c.connect_timeout), (Duration::from_secs(1), Duration::from_secs(300), Duration::from_secs(60)));

        let bad = ElasticsearchConfig {
            url: Secret::new("ftp://u:secret@x"),
            user: Some("v".into()),
            events_index: "Events".into(),
            alerts_index: "_alerts".into(),
            dead_letter_index: "a b".into(),
            shards: 0,
            bulk_max_docs: 0,
            bulk_max_bytes: 10,
            in_flight: 0,
            flush_interval: Duration::ZERO,
            retry_max: Duration::from_millis(1),
            events: false,
            alerts: false,
            ..ElasticsearchConfig::new("x")
        };
        let p = bad.validate();
        for want in ["scheme must be http", "url and user both", "user is set but password", "events_index: `Events`", "alerts_index: `_alerts`", "dead_letter_index: `a b`", "shards", "bulk_max_docs", "bulk_max_bytes", "in_flight", "flush_interval", "retry_max", "both false"] {
            assert!(p.iter().any(|m| m.contains(want)), "missing `{want}` in {p:#?}");
        }
        assert!(p.iter().all(|m| !m.contains("secret")), "the password must not leak: {p:#?}");
        assert_eq!(p.len(), 13, "{p:#?}");

        let overlap = ElasticsearchConfig { alerts_index: "events-alerts".into(), dead_letter_index: "events-dl".into(), ..ElasticsearchConfig::new("https://es:9200") };
        let p = overlap.validate();
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].contains("overlap") && p[1].contains("falls under events_index"));
        assert!(ElasticsearchConfig::new("not a url").validate()[0].starts_with("url: `not a url` is not a URL"));
    }

    #[test]
    fn config_reads_yaml_style_strings_and_never_prints_secrets() {
        let c: ElasticsearchConfig = serde_json::from_value(json!({
            "url": "https://rampart:hunter2@es:9200", "replicas": "0", "bulk_max_docs": "10",
            "flush_interval": "250ms", "retry_for": "2m", "install_templates": "false"
        }))
        .unwrap();
        assert_eq!((c.replicas, c.bulk_max_docs, c.flush_interval, c.retry_for, c.install_templates), (0, 10, Duration::from_millis(250), Duration::from_secs(120), false));
        assert_eq!(c.peer(), "https://rampart:***@es:9200");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
        assert!(serde_json::from_value::<ElasticsearchConfig>(json!({"url": "http://x:9200", "index": "e"})).is_err(), "unknown keys are errors");
        assert!(serde_json::from_value::<ElasticsearchConfig>(json!({"events": true})).is_err(), "url is required");
    }

    fn event(v: Value) -> Event {
        Normalizer::default().normalize(v, EventId(0xabc)).unwrap()
    }

    #[test]
    fn event_documents_carry_the_id_and_an_at_timestamp() {
        let e = event(json!({"utctimestamp": "2026-03-01T10:00:00.5Z", "summary": "s", "details": {"n": 1}}));
        let v: Value = serde_json::from_slice(&event_source(&e).unwrap()).unwrap();
        assert_eq!(v["id"], "00000000000000000000000000000abc");
        assert_eq!(v["@timestamp"], "2026-03-01T10:00:00.500+00:00");
        assert_eq!(v["summary"], "s");
        assert_eq!(v["details"]["n"], 1);
        assert_eq!(v.as_object().unwrap().keys().next().unwrap(), "id");

        // A document without `@timestamp` gets the event time, in milliseconds, UTC.
        let mut e = e;
        e.doc.remove("@timestamp");
        let v: Value = serde_json::from_slice(&event_source(&e).unwrap()).unwrap();
        assert_eq!(v["@timestamp"], "2026-03-01T10:00:00.500+00:00");
        assert_eq!(v["utctimestamp"], "2026-03-01T10:00:00.500+00:00");
        e.doc.clear();
        let v: Value = serde_json::from_slice(&event_source(&e).unwrap()).unwrap();
        assert_eq!(v, json!({"id": "00000000000000000000000000000abc", "@timestamp": "2026-03-01T10:00:00.500+00:00"}));

        let a = crate::ndjson::tests::alert(e.time);
        let v: Value = serde_json::from_slice(&alert_source(&a).unwrap()).unwrap();
        assert_eq!(v["@timestamp"], "2026-03-01T10:00:00.500+00:00");
        assert_eq!(v["id"], json!(a.id));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let (i, m) = (Duration::from_millis(200), Duration::from_secs(30));
        assert_eq!(backoff(i, m, 1, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(i, m, 1, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(i, m, 3, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(i, m, 10, 1.0), m);
        assert_eq!(backoff(i, m, 1000, 0.5), m.mul_f64(0.75));
    }

    #[test]
    fn helpers() {
        assert_eq!(percent_decode("p%40ss%3Aw0rd%"), "p@ss:w0rd%");
        assert!(composable_templates("7.8.0") && composable_templates("8.15.1") && composable_templates("9.0.0"));
        assert!(!composable_templates("7.7.1") && !composable_templates("6.8.23"));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        assert_eq!(describe(&io), "Connection refused");
    }

    #[tokio::test]
    async fn dropping_an_unsettled_token_reports_errored_never_delivered() {
        let (tx, rx) = std::sync::mpsc::channel();
        let token = AckToken::new(move |s, r| tx.send((s, r)).unwrap());
        let mut out = ElasticsearchOutput::new(ElasticsearchConfig { flush_interval: Duration::from_secs(3600), ..ElasticsearchConfig::new("http://127.0.0.1:9") }, Arc::new(Metrics::new())).unwrap();
        let batch = EventBatch { events: Arc::new(vec![Arc::new(event(json!({"summary": "x"})))]), acks: vec![Some(token)] };
        out.write_events(batch).await.unwrap();
        assert_eq!(out.shared.load.borrow().docs, 1);
        drop(out);
        let (status, reason) = rx.recv().unwrap();
        assert_eq!(status, AckStatus::Errored);
        assert!(reason.unwrap().contains("stopped before"));
    }
}
