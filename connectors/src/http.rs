//! HTTP input (HTTP/1.1, actix-web): `POST /events`, plus `GET /metrics` (Prometheus text
//! format 0.0.4) and `GET /health`.
//!
//! `POST /events` takes a JSON object, a JSON array of objects, or NDJSON / concatenated
//! objects (`Content-Type` `application/json`, `application/x-ndjson`, `text/plain`, or
//! none). Answers:
//!
//! - `200 {"accepted": n}` once the events are in the pipeline's bounded queue (the request
//!   waits while the queue is full: that is the backpressure a shipper sees);
//! - `400 {"error": "line 3, column 5: expected value", "accepted": 0, "invalid": k}` when
//!   any record is not JSON or not an object. **A request is atomic**: one bad record
//!   rejects the whole request, so a shipper can simply resend a fixed batch without
//!   creating duplicates;
//! - `413` above `max_body`, `415` for another content type, `503` while shutting down.
//!
//! Delivery: at least once from the shipper's point of view (it retries until it gets a
//! 200); ids derive from a per-request counter and the receive time, so a resent batch is
//! a new set of events.

use crate::error::ConnectorError;
use crate::json::{Scan, Scanner};
use crate::source::SourceContext;
use actix_web::dev::ServerHandle;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use crate::events::{EventsAccepted, RecordInvalid};
use rampart_core::{Event, EventTime, Metrics, Normalizer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `type: http` input.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, `host:port`. Default `127.0.0.1:8080` (local only; put a
    /// proxy with TLS in front to expose it).
    #[serde(default = "default_bind")]
    pub bind: String,
    /// Largest request body in bytes; larger requests get 413. Default 10 MiB.
    #[serde(default = "default_max_body", deserialize_with = "crate::registry::lenient")]
    pub max_body: usize,
    /// HTTP worker threads. Default 2.
    #[serde(default = "default_workers", deserialize_with = "crate::registry::lenient")]
    pub workers: usize,
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

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { bind: default_bind(), max_body: default_max_body(), workers: default_workers() }
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
        p
    }
}

struct State {
    out: flume::Sender<Vec<Event>>,
    metrics: Arc<Metrics>,
    normalizer: Normalizer,
    max_body: usize,
    requests: AtomicU64,
}

/// Content types read as JSON/NDJSON. `application/x-www-form-urlencoded` is what `curl -d`
/// sends by default; MozDef's loginput read such bodies as JSON, and so do we.
const ACCEPTED_TYPES: &[&str] = &["application/x-www-form-urlencoded", "application/json", "application/x-ndjson", "application/ndjson", "application/jsonlines", "application/x-jsonlines", "application/jsonl", "text/plain", "text/json"];

fn error(status: actix_web::http::StatusCode, msg: impl Into<String>, invalid: u64) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": msg.into(), "accepted": 0, "invalid": invalid}))
}

async fn post_events(req: HttpRequest, body: web::Payload, state: web::Data<State>) -> HttpResponse {
    use actix_web::http::StatusCode;
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !essence.is_empty() && !ACCEPTED_TYPES.contains(&essence.as_str()) {
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported content type `{essence}`: send application/json or application/x-ndjson"), 0);
        }
    }
    let too_large = || error(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {} bytes (max_body)", state.max_body), 0);
    let declared = req.headers().get(actix_web::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body) {
        return too_large();
    }
    let bytes = match body.to_bytes_limited(state.max_body).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("cannot read the request body: {e}"), 0),
        Err(_) => return too_large(),
    };
    let (events, problem, invalid) = parse_body(&state, &bytes);
    if let Some(msg) = problem {
        RecordInvalid { input: "http", message: &msg, count: invalid, loud: false }.emit(&state.metrics);
        return error(StatusCode::BAD_REQUEST, msg, invalid);
    }
    if events.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty body: send a JSON object, an array of objects, or NDJSON", 0);
    }
    let n = events.len() as u64;
    match state.out.send_async(events).await {
        Ok(()) => {
            EventsAccepted { input: "http", count: n }.emit(&state.metrics);
            HttpResponse::Ok().json(json!({"accepted": n}))
        }
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the pipeline is shutting down; retry later", 0),
    }
}

/// Reads every record of a body: the events, the first problem (as
/// `line L, column C: message`) and how many records were invalid.
fn parse_body(state: &State, bytes: &[u8]) -> (Vec<Event>, Option<String>, u64) {
    let req_no = state.requests.fetch_add(1, Ordering::Relaxed);
    let received = EventTime::now();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut scanner = Scanner::new(format!("http#{req_no}@{nanos}"), bytes.len().max(1));
    scanner.push(bytes);
    scanner.finish();
    let mut events = Vec::new();
    let mut first = None;
    let mut invalid = 0;
    loop {
        match scanner.next() {
            Scan::Record { value, id, line, column } => match state.normalizer.normalize_at(value, id, received) {
                Ok(e) => events.push(e),
                Err(e) => {
                    invalid += 1;
                    first.get_or_insert_with(|| format!("line {line}, column {column}: {e}"));
                }
            },
            Scan::Invalid { line, column, message } => {
                invalid += 1;
                first.get_or_insert_with(|| format!("line {line}, column {column}: {message}"));
            }
            Scan::NeedMore | Scan::End => break,
        }
    }
    (events, first, invalid)
}

async fn get_metrics(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render_prometheus())
}

async fn get_health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

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
    let state = web::Data::new(State { out: ctx.out, metrics: ctx.metrics, normalizer: ctx.normalizer, max_body: cfg.max_body, requests: AtomicU64::new(0) });
    let bind_err = |source| ConnectorError::Bind { component: "http", bind: cfg.bind.clone(), source };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/events", web::post().to(post_events))
            .route("/metrics", web::get().to(get_metrics))
            .route("/health", web::get().to(get_health))
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
mod tests {
    use super::*;
    use crate::source::shutdown_pair;
    use rampart_core::Counter;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A real HTTP/1.1 exchange over TCP: (status, content type, body).
    async fn call(addr: SocketAddr, method: &str, path: &str, ctype: Option<&str>, body: &[u8]) -> (u16, String, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let ct = ctype.map(|c| format!("Content-Type: {c}\r\n")).unwrap_or_default();
        let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        s.write_all(head.as_bytes()).await.unwrap();
        let _ = s.write_all(body).await; // the server may answer 413 before reading it all
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp).await;
        let text = String::from_utf8_lossy(&resp).into_owned();
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let ctype = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_string)).unwrap_or_default();
        (status, ctype, body.to_string())
    }

    fn server(max_body: usize, cap: usize) -> (HttpServerHandle, flume::Receiver<Vec<Event>>, Arc<Metrics>, crate::ShutdownTrigger) {
        let (tx, rx) = flume::bounded(cap);
        let (t, s) = shutdown_pair();
        let m = Arc::new(Metrics::new());
        let cfg = HttpConfig { bind: "127.0.0.1:0".into(), max_body, workers: 1 };
        let h = start(&cfg, SourceContext { out: tx, metrics: m.clone(), normalizer: Normalizer::default(), shutdown: s }).unwrap();
        (h, rx, m, t)
    }

    fn json_body(b: &str) -> Value {
        serde_json::from_str(b).unwrap_or_else(|e| panic!("{b}: {e}"))
    }

    #[actix_web::test]
    async fn object_array_and_ndjson_are_accepted() {
        let (h, rx, m, _t) = server(1 << 20, 16);
        let a = h.addr();
        let (code, ct, body) = call(a, "POST", "/events", Some("application/json"), br#"{"summary":"one"}"#).await;
        assert_eq!((code, json_body(&body)), (200, json!({"accepted": 1})));
        assert!(ct.starts_with("application/json"));
        let (code, _, body) = call(a, "POST", "/events", Some("application/json"), br#"[{"summary":"two"},{"summary":"three"}]"#).await;
        assert_eq!((code, json_body(&body)), (200, json!({"accepted": 2})));
        let (code, _, body) = call(a, "POST", "/events", Some("application/x-ndjson"), b"{\"summary\":\"four\"}\n{\"summary\":\"five\"}\n").await;
        assert_eq!((code, json_body(&body)), (200, json!({"accepted": 2})));
        let (code, _, _) = call(a, "POST", "/events", None, b"{\"summary\":\"six\"}").await;
        assert_eq!(code, 200, "no content type is fine");
        let got: Vec<String> = rx.drain().flatten().map(|e| e.doc["summary"].as_str().unwrap().to_string()).collect();
        assert_eq!(got, ["one", "two", "three", "four", "five", "six"]);
        assert_eq!(m.get(Counter::EventsAccepted), 6);
        h.stop().await;
    }

    #[actix_web::test]
    async fn an_invalid_record_rejects_the_whole_request_with_its_position() {
        let (h, rx, m, _t) = server(1 << 20, 16);
        let a = h.addr();
        let (code, _, body) = call(a, "POST", "/events", Some("application/x-ndjson"), b"{\"a\":1}\n{\"b\":2}\n{\"c\": x}\n").await;
        assert_eq!(code, 400);
        assert_eq!(json_body(&body), json!({"error": "line 3, column 7: expected value", "accepted": 0, "invalid": 1}));
        let (code, _, body) = call(a, "POST", "/events", Some("application/json"), b"[1, 2]").await;
        assert_eq!(code, 400);
        assert_eq!(json_body(&body)["error"], "line 1, column 1: an event must be a JSON object, found an array");
        let (code, _, body) = call(a, "POST", "/events", Some("application/json"), b"  ").await;
        assert_eq!(code, 400);
        assert!(json_body(&body)["error"].as_str().unwrap().starts_with("empty body"));
        assert!(rx.is_empty(), "nothing of a rejected request gets in");
        assert_eq!(m.get(Counter::EventsAccepted), 0);
        assert_eq!(m.get(Counter::EventsInvalid), 2);
        h.stop().await;
    }

    #[actix_web::test]
    async fn too_large_unsupported_type_and_unknown_paths() {
        let (h, rx, _m, _t) = server(1024, 16);
        let a = h.addr();
        let big = format!("{{\"summary\":\"{}\"}}", "x".repeat(2000));
        let (code, _, body) = call(a, "POST", "/events", Some("application/json"), big.as_bytes()).await;
        assert_eq!(code, 413, "{body}");
        let (code, _, body) = call(a, "POST", "/events", Some("application/xml"), b"<e/>").await;
        assert_eq!(code, 415);
        assert!(body.contains("application/xml"), "{body}");
        let (code, _, _) = call(a, "GET", "/events", None, b"").await;
        assert_eq!(code, 404);
        assert!(rx.is_empty());
        h.stop().await;
    }

    #[actix_web::test]
    async fn metrics_and_health() {
        let (h, _rx, _m, _t) = server(1 << 20, 16);
        let a = h.addr();
        call(a, "POST", "/events", None, b"{\"a\":1}\n{\"a\":2}").await;
        call(a, "POST", "/events", None, b"nope").await;
        let (code, ct, body) = call(a, "GET", "/metrics", None, b"").await;
        assert_eq!(code, 200);
        assert_eq!(ct, "text/plain; version=0.0.4");
        assert!(body.contains("rampart_events_accepted_total 2\n"), "{body}");
        assert!(body.contains("rampart_events_invalid_total 1\n"), "{body}");
        let (code, _, body) = call(a, "GET", "/health", None, b"").await;
        assert_eq!((code, body.as_str()), (200, "ok\n"));
        h.stop().await;
    }

    #[actix_web::test]
    async fn a_full_pipeline_holds_the_request_and_shutdown_stops_the_server() {
        let (h, rx, _m, t) = server(1 << 20, 1);
        let a = h.addr();
        assert_eq!(call(a, "POST", "/events", None, b"{\"a\":1}").await.0, 200);
        // The queue (capacity 1) is full: the next request waits until it is drained.
        let pending = actix_web::rt::spawn(async move { call(a, "POST", "/events", None, b"{\"a\":2}").await.0 });
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!pending.is_finished(), "the request is held while the pipeline is full");
        assert_eq!(rx.recv_async().await.unwrap().len(), 1);
        assert_eq!(pending.await.unwrap(), 200);
        t.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(10), h.finished()).await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(a).await.is_err(), "no longer listening");
    }

    #[test]
    fn config_validation() {
        assert!(HttpConfig::default().validate().is_empty());
        assert!(HttpConfig { bind: "localhost:9000".into(), ..Default::default() }.validate().is_empty());
        let bad = HttpConfig { bind: "nowhere".into(), max_body: 0, workers: 0 };
        assert_eq!(bad.validate().len(), 3);
    }
}
