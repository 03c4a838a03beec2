//! HTTP input (HTTP/1.1, actix-web 4): MozDef loginput's endpoints and the part of the
//! Elasticsearch REST API that log shippers use, so MozDef clients, rsyslog
//! (`omelasticsearch`), syslog-ng (`elasticsearch-http`), Vector's `elasticsearch` sink and
//! Filebeat can point at Rampart unchanged; plus `GET /metrics` (Prometheus text 0.0.4),
//! `GET /health` (liveness: the process answers) and `GET /ready` (readiness: every input
//! that must reach a peer, such as an AMQP consumer, is taking events; 503 naming those that
//! are not).
//!
//! - [`mozdef`]: `POST|PUT /events`, `/nxlog`, `/cef` (normalized, `details.endpoint`
//!   names the endpoint), `/custom/<app>` (stored as sent), `GET /status`.
//! - [`bulk`]: `POST|PUT /_bulk` and `/<index>/_bulk` (Elasticsearch bulk NDJSON or a JSON
//!   array; per-item answers as Elasticsearch gives them), and the single-document
//!   `/<index>/_doc[/<id>]`, `/<index>/_create/<id>`.
//! - [`es`]: what shippers ask an Elasticsearch node at startup (`GET /`, `/_cluster/health`,
//!   `/_cat/health`, `/_license`, `/_xpack`, `/_nodes`, templates, ILM policies, ingest
//!   pipelines), answered with minimal valid bodies and nothing stored.
//! - [`ack`]: one ack token per event and the wait for the outputs to settle them.
//!
//! Bodies: JSON object, JSON array of objects, or NDJSON (`Content-Type`
//! `application/json`, `application/x-ndjson`, `text/plain`, or none), `Content-Encoding`
//! `gzip`, `deflate` or none, at most `max_body` bytes before and after decompression
//! (413 above). Every response carries `X-Elastic-Product: Elasticsearch` (Elasticsearch
//! clients refuse a node without it). Unknown paths get 404 listing the endpoints; a known
//! path with the wrong method gets 405 with `Allow`.
//!
//! Delivery guarantee: end to end, at least once. Every event gets its own
//! [`rampart_core::AckToken`]; a request is answered only when every output has durably
//! stored (or refused) each of its events, or after `ack_timeout`, or shortly after
//! shutdown begins. `/events` & co answer 200 only when all were stored (503 with
//! `"retry": true` otherwise, 400 when an output rejected one), `/_bulk` answers per item
//! (201, or 429 `es_rejected_execution_exception` to retry, or 400). A shipper that retries
//! until success therefore loses nothing; a bulk action with `_id` keeps its event id across
//! retries, so a retried document is written under the same id instead of duplicated.

mod ack;
mod bulk;
mod es;
mod mozdef;

use crate::error::ConnectorError;
use crate::events::EventsAccepted;
use crate::source::{Shutdown, SourceContext, MAX_BATCH};
use ack::{Delivery, Outcome};
use actix_web::dev::ServerHandle;
use actix_web::http::header::{HeaderValue, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{middleware, web, App, HttpRequest, HttpResponse, HttpServer};
use rampart_core::{Event, Metrics, Normalizer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `type: http` input.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, `host:port`. Default `127.0.0.1:8080` (local only; put a
    /// proxy with TLS in front to expose it).
    #[serde(default = "default_bind")]
    pub bind: String,
    /// Largest request body in bytes, before and after decompression; larger requests get
    /// 413. Default 10 MiB.
    #[serde(default = "default_max_body", deserialize_with = "crate::registry::lenient")]
    pub max_body: usize,
    /// HTTP worker threads. Default 2.
    #[serde(default = "default_workers", deserialize_with = "crate::registry::lenient")]
    pub workers: usize,
    /// How long a request may take, from arrival until every output has confirmed its
    /// events; past it the request is answered with what is confirmed (503, or per-item 429
    /// on `/_bulk`) and the shipper retries the rest. Human duration, default `30s`.
    #[serde(default = "default_ack_timeout", with = "crate::registry::human_duration")]
    pub ack_timeout: Duration,
    /// The Elasticsearch version `GET /` reports, `major.minor.patch`. Shippers read it to
    /// choose their protocol and refuse "older" nodes: Filebeat 8.x needs at least its own
    /// version, Vector picks its bulk format from the major. Default `8.19.0` (the last 8.x,
    /// so every 8.x shipper accepts it); say `9.1.0` for 9.x Beats, `7.17.0` for old ones.
    #[serde(default = "default_es_version")]
    pub es_version: String,
}

fn default_bind() -> String {
    "127.0.0.1:8080".to_string()
}
fn default_max_body() -> usize {
    10 * 1024 * 1024
}
fn default_workers() -> usize {
    2
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_es_version() -> String {
    "8.19.0".to_string()
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { bind: default_bind(), max_body: default_max_body(), workers: default_workers(), ack_timeout: default_ack_timeout(), es_version: default_es_version() }
    }
}

impl HttpConfig {
    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.bind.parse::<SocketAddr>().is_err() && !self.bind.rsplit_once(':').is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok()) {
            p.push(format!("bind: `{}` is not host:port", self.bind));
        }
        if self.max_body == 0 {
            p.push("max_body: must be at least 1 byte".to_string());
        }
        if self.workers == 0 || self.workers > 64 {
            p.push(format!("workers: must be between 1 and 64, got {}", self.workers));
        }
        if self.ack_timeout.is_zero() || self.ack_timeout > Duration::from_secs(3600) {
            p.push(format!("ack_timeout: must be between 1ms and 1h, got {}", rampart_core::time::format_duration(self.ack_timeout)));
        }
        if es::parse_version(&self.es_version).is_none() {
            p.push(format!("es_version: `{}` is not major.minor.patch (e.g. 8.19.0)", self.es_version));
        }
        p
    }
}

/// What every handler shares.
pub(crate) struct State {
    out: flume::Sender<Vec<Event>>,
    metrics: Arc<Metrics>,
    normalizer: Normalizer,
    shutdown: Shutdown,
    max_body: usize,
    ack_timeout: Duration,
    es: es::Identity,
    /// Requests so far: part of the origin that event ids derive from.
    requests: AtomicU64,
    /// Bulk items so far: the `_seq_no` answered.
    seq: AtomicU64,
}

/// After shutdown begins, how long a request still waits for its acknowledgements. Below
/// the server's 5 s graceful-stop limit, so the client gets an answer, not a reset.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Content types read as JSON/NDJSON. `application/x-www-form-urlencoded` is what `curl -d`
/// sends by default; MozDef's loginput read such bodies as JSON, and so do we.
const ACCEPTED_TYPES: &[&str] = &["application/x-www-form-urlencoded", "application/json", "application/x-ndjson", "application/ndjson", "application/jsonlines", "application/x-jsonlines", "application/jsonl", "text/plain", "text/json"];

/// Every endpoint, for the 404 answer and the docs.
const ENDPOINTS: &[&str] = &[
    "POST|PUT /events",
    "POST|PUT /nxlog",
    "POST|PUT /cef",
    "POST|PUT /custom/<app>",
    "GET /status",
    "POST|PUT /_bulk",
    "POST|PUT /<index>/_bulk",
    "POST /<index>/_doc",
    "POST|PUT /<index>/_doc/<id>",
    "POST|PUT /<index>/_create/<id>",
    "GET|HEAD /",
    "GET /_cluster/health",
    "GET /_cat/health",
    "GET /_license",
    "GET /_xpack",
    "GET /_nodes",
    "GET|HEAD|PUT|POST /_index_template/<name>, /_template/<name>, /_component_template/<name>, /_ilm/policy/<name>, /_ingest/pipeline/<name>",
    "GET /metrics",
    "GET /health",
    "GET /ready",
];

/// Why a request body could not be read: the status and what to tell the sender.
#[derive(Debug, PartialEq)]
pub(crate) struct BodyError {
    status: StatusCode,
    message: String,
}

/// Reads a request body: checks the content type and encoding, enforces `max_body` on the
/// bytes received and on the decompressed bytes, and decompresses.
pub(crate) async fn read_body(req: &HttpRequest, body: web::Payload, max_body: usize) -> Result<web::Bytes, BodyError> {
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !essence.is_empty() && !ACCEPTED_TYPES.contains(&essence.as_str()) {
            return Err(BodyError { status: StatusCode::UNSUPPORTED_MEDIA_TYPE, message: format!("unsupported content type `{essence}`: send application/json or application/x-ndjson") });
        }
    }
    let encoding = req.headers().get(CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase()).unwrap_or_default();
    if !matches!(encoding.as_str(), "" | "identity" | "gzip" | "x-gzip" | "deflate") {
        return Err(BodyError { status: StatusCode::UNSUPPORTED_MEDIA_TYPE, message: format!("unsupported Content-Encoding `{encoding}`: send gzip, deflate or an uncompressed body") });
    }
    let too_large = || BodyError { status: StatusCode::PAYLOAD_TOO_LARGE, message: format!("request body larger than {max_body} bytes (max_body): send smaller batches") };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_large());
    }
    let bytes = match body.to_bytes_limited(max_body).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(BodyError { status: StatusCode::BAD_REQUEST, message: format!("cannot read the request body: {e}") }),
        Err(_) => return Err(too_large()),
    };
    match encoding.as_str() {
        "gzip" | "x-gzip" => decompress(flate2::read::MultiGzDecoder::new(&bytes[..]), max_body, "gzip").map_err(|e| e.unwrap_or_else(too_large)),
        "deflate" => decompress(flate2::read::ZlibDecoder::new(&bytes[..]), max_body, "deflate").map_err(|e| e.unwrap_or_else(too_large)),
        _ => Ok(bytes),
    }
}

/// Inflates at most `max_body` bytes; `Err(None)` when the result would be larger.
fn decompress(reader: impl Read, max_body: usize, name: &str) -> Result<web::Bytes, Option<BodyError>> {
    let mut out = Vec::new();
    match reader.take(max_body as u64 + 1).read_to_end(&mut out) {
        Ok(n) if n > max_body => Err(None),
        Ok(_) => Ok(out.into()),
        Err(e) => Err(Some(BodyError { status: StatusCode::BAD_REQUEST, message: format!("the body is not valid {name}: {e}") })),
    }
}

/// Sends events into the pipeline in batches of at most [`MAX_BATCH`] and waits until the
/// outputs have settled each one, the request's deadline (`ack_timeout` after `started`)
/// passes, or shutdown has been under way for [`SHUTDOWN_GRACE`]. Returns each event's
/// outcome, in order.
pub(crate) async fn deliver(state: &State, events: Vec<Event>, started: Instant) -> Vec<Outcome> {
    let deadline = tokio::time::Instant::from_std(started + state.ack_timeout);
    let mut delivery = Delivery::new(events.len());
    let mut shutdown = state.shutdown.clone();
    let mut events = events.into_iter();
    let mut offset = 0;
    loop {
        let mut batch: Vec<Event> = events.by_ref().take(MAX_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let n = batch.len();
        // The guards keep the tokens alive: if the send is cancelled (deadline, shutdown)
        // or refused, the batch is dropped inside it, and the failure reported on the
        // guards first is what the tokens fire with, so it never reads as delivered.
        let guards = delivery.attach(offset, &mut batch);
        let failure = tokio::select! {
            biased;
            r = state.out.send_async(batch) => match r {
                Ok(()) => None,
                Err(_) => Some("the pipeline is shutting down"),
            },
            _ = tokio::time::sleep_until(deadline) => Some("the pipeline stayed full for ack_timeout"),
            _ = shutdown.wait() => Some("the pipeline is shutting down"),
        };
        match failure {
            None => {
                EventsAccepted { input: "http", count: n as u64 }.emit(&state.metrics);
                drop(guards);
            }
            Some(why) => {
                for g in &guards {
                    g.report(rampart_core::AckStatus::Errored, why);
                }
                drop(guards);
                break;
            }
        }
        offset += n;
    }
    delivery.settle(deadline, state.shutdown.clone(), SHUTDOWN_GRACE, state.ack_timeout).await
}

/// The request id and receive time that the ids of a request's events derive from.
pub(crate) fn origin(state: &State, endpoint: &str) -> String {
    let req_no = state.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("http{endpoint}#{req_no}@{nanos}")
}

async fn get_metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render_prometheus())
}

async fn get_health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// Readiness: 200 when every input that registered one (the AMQP inputs) takes events, else
/// 503 with each waiting input and why. Unlike `/health`, a broker outage makes this fail,
/// so a load balancer or a publisher can wait for it, while a liveness probe on `/health`
/// does not restart a process that is only waiting for its broker.
async fn get_ready(state: web::Data<State>) -> HttpResponse {
    // One snapshot: the flags and the reasons describe the same moment.
    let readiness = state.metrics.readiness();
    let inputs: serde_json::Map<String, serde_json::Value> = readiness.iter().map(|(n, w)| (n.clone(), w.is_none().into())).collect();
    let waiting: serde_json::Map<String, serde_json::Value> = readiness.into_iter().filter_map(|(n, w)| w.map(|w| (n, w.into()))).collect();
    if waiting.is_empty() {
        return HttpResponse::Ok().json(json!({"ready": true, "inputs": inputs}));
    }
    HttpResponse::ServiceUnavailable().json(json!({"ready": false, "inputs": inputs, "waiting": waiting}))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": format!("no endpoint {} {}: see `endpoints`", req.method(), req.path()),
        "endpoints": ENDPOINTS,
        "status": 404,
    }))
}

/// A 405 answer naming the methods `path` takes.
fn method_not_allowed(req: &HttpRequest, allowed: &[Method]) -> HttpResponse {
    let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    let mut resp = HttpResponse::MethodNotAllowed().json(json!({
        "error": format!("{} is not allowed on {}: use {}", req.method(), req.path(), list.join(" or ")),
        "allowed": list,
        "status": 405,
    }));
    if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
        resp.headers_mut().insert(ALLOW, v);
    }
    resp
}

/// A resource on `paths` taking `methods` (each routed to `handler`), answering 405
/// otherwise.
fn resource<F, Args>(paths: &[&str], methods: &'static [Method], handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let mut r = web::resource(paths.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    for m in methods {
        r = r.route(web::method(m.clone()).to(handler.clone()));
    }
    r.default_service(web::to(move |req: HttpRequest| async move { method_not_allowed(&req, methods) }))
}

const POST_PUT: &[Method] = &[Method::POST, Method::PUT];
const GET: &[Method] = &[Method::GET];
const GET_HEAD: &[Method] = &[Method::GET, Method::HEAD];

/// A running HTTP input.
#[derive(Debug)]
pub struct HttpServerHandle {
    addr: SocketAddr,
    handle: ServerHandle,
    task: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServerHandle {
    /// The address actually bound (the port is known even when `bind` said `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), and waits.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }

    /// Resolves when the server exits (after [`HttpServerHandle::stop`], the source's
    /// shutdown signal, or a failure).
    pub async fn finished(self) -> Result<(), ConnectorError> {
        let bind = self.addr.to_string();
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ConnectorError::Bind { component: "http", bind, source }),
            Err(e) => Err(ConnectorError::Bind { component: "http", bind, source: std::io::Error::other(e.to_string()) }),
        }
    }
}

/// Binds and starts the server on the current actix/tokio `LocalSet` (inside an actix
/// `System`, or `#[actix_web::test]`). It stops when `ctx.shutdown` fires or
/// [`HttpServerHandle::stop`] is called.
pub fn start(cfg: &HttpConfig, ctx: SourceContext) -> Result<HttpServerHandle, ConnectorError> {
    let es = es::Identity::new(&cfg.es_version, &cfg.bind);
    let state = web::Data::new(State {
        out: ctx.out,
        metrics: ctx.metrics,
        normalizer: ctx.normalizer,
        shutdown: ctx.shutdown.clone(),
        max_body: cfg.max_body,
        ack_timeout: cfg.ack_timeout,
        es,
        requests: AtomicU64::new(0),
        seq: AtomicU64::new(0),
    });
    let bind_err = |source| ConnectorError::Bind { component: "http", bind: cfg.bind.clone(), source };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(middleware::DefaultHeaders::new().add(("X-Elastic-Product", "Elasticsearch")))
            .service(resource(&["/events", "/events/"], POST_PUT, mozdef::events))
            .service(resource(&["/nxlog", "/nxlog/"], POST_PUT, mozdef::nxlog))
            .service(resource(&["/cef", "/cef/"], POST_PUT, mozdef::cef))
            .service(resource(&["/custom/{app}", "/custom/{app}/"], POST_PUT, mozdef::custom))
            .service(resource(&["/status", "/status/"], GET, mozdef::status))
            .service(resource(&["/metrics"], GET, get_metrics))
            .service(resource(&["/health"], GET, get_health))
            .service(resource(&["/ready"], GET, get_ready))
            .service(resource(&["/_bulk", "/_bulk/"], POST_PUT, bulk::bulk))
            .service(resource(&["/{index}/_bulk", "/{index}/_bulk/"], POST_PUT, bulk::bulk_index))
            .service(resource(&["/{index}/_doc"], &[Method::POST], bulk::doc_auto_id))
            .service(resource(&["/{index}/_doc/{id}"], POST_PUT, bulk::doc_index))
            .service(resource(&["/{index}/_create/{id}"], POST_PUT, bulk::doc_create))
            .service(resource(&["/"], GET_HEAD, es::root))
            .service(resource(&["/_cluster/health", "/_cluster/health/{index}"], GET, es::cluster_health))
            .service(resource(&["/_cat/health"], GET, es::cat_health))
            .service(resource(&["/_license", "/_xpack/license"], GET, es::license))
            .service(resource(&["/_xpack"], GET, es::xpack))
            .service(resource(&["/_nodes", "/_nodes/{rest:.*}"], GET, es::nodes))
            .service(resource(
                &["/_index_template/{name}", "/_template/{name}", "/_component_template/{name}", "/_ilm/policy/{name}", "/_ingest/pipeline/{name}"],
                &[Method::GET, Method::HEAD, Method::PUT, Method::POST],
                es::setup_object,
            ))
            .default_service(web::to(not_found))
    })
    .workers(cfg.workers.max(1))
    .disable_signals()
    .shutdown_timeout(5)
    .bind(&cfg.bind)
    .map_err(bind_err)?;
    let addr = server.addrs().first().copied().ok_or_else(|| bind_err(std::io::Error::other("no address bound")))?;
    let server = server.run();
    let handle = server.handle();
    let task = actix_web::rt::spawn(server);
    let mut shutdown = ctx.shutdown;
    let stopper = handle.clone();
    actix_web::rt::spawn(async move {
        shutdown.wait().await;
        stopper.stop(true).await;
    });
    tracing::info!(%addr, "HTTP input listening");
    Ok(HttpServerHandle { addr, handle, task })
}

#[cfg(test)]
mod tests;
