//! The HTTP input over real TCP. The pipeline is simulated: tests take batches from the
//! source channel and settle (drop or report) the events' ack tokens as an output would.

use super::*;
use crate::source::shutdown_pair;
use crate::ShutdownTrigger;
use rampart_core::{AckStatus, Counter};
use serde_json::Value;
use std::io::Write;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 response: status, the header block (lower-cased) and the body.
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        self.head.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    }
}

/// A real HTTP/1.1 exchange over TCP.
async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await; // the server may answer 413 before reading it all
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp).await;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Resp { status, head: head.to_ascii_lowercase(), body: body.to_string() }
}

async fn call(addr: SocketAddr, method: &str, path: &str, ctype: Option<&str>, body: &[u8]) -> Resp {
    match ctype {
        Some(c) => send(addr, method, path, &[("Content-Type", c)], body).await,
        None => send(addr, method, path, &[], body).await,
    }
}

struct Server {
    h: HttpServerHandle,
    rx: flume::Receiver<Vec<Event>>,
    metrics: Arc<Metrics>,
    trigger: ShutdownTrigger,
}

fn server_with(cfg: HttpConfig, cap: usize) -> Server {
    let (tx, rx) = flume::bounded(cap);
    let (trigger, s) = shutdown_pair();
    let metrics = Arc::new(Metrics::new());
    let cfg = HttpConfig { bind: "127.0.0.1:0".into(), workers: 1, ..cfg };
    let h = start(&cfg, SourceContext { out: tx, metrics: metrics.clone(), normalizer: Normalizer::default(), shutdown: s }).unwrap();
    Server { h, rx, metrics, trigger }
}

fn server(max_body: usize, cap: usize) -> Server {
    server_with(HttpConfig { max_body, ..Default::default() }, cap)
}

/// An output that stores every event (its token dropped: delivered), or settles it as
/// `decide` says by its summary. Returns what it stored.
fn output(rx: flume::Receiver<Vec<Event>>, decide: fn(&str) -> Option<(AckStatus, &'static str)>) -> Arc<Mutex<Vec<Event>>> {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let keep = stored.clone();
    actix_web::rt::spawn(async move {
        while let Ok(batch) = rx.recv_async().await {
            for mut e in batch {
                let token = e.ack.take().expect("every HTTP event carries an ack token");
                let summary = e.doc.get("summary").and_then(Value::as_str).unwrap_or("").to_string();
                match decide(&summary) {
                    Some((status, why)) => token.report(status, why),
                    None => keep.lock().unwrap().push(e),
                }
            }
        }
    });
    stored
}

fn stores_all(_: &str) -> Option<(AckStatus, &'static str)> {
    None
}

fn docs(stored: &Mutex<Vec<Event>>) -> Vec<Value> {
    stored.lock().unwrap().iter().map(Event::to_value).collect()
}

#[actix_web::test]
async fn object_array_and_ndjson_are_accepted_once_stored() {
    let s = server(1 << 20, 16);
    let stored = output(s.rx.clone(), stores_all);
    let a = s.h.addr();
    let r = call(a, "POST", "/events", Some("application/json"), br#"{"summary":"one"}"#).await;
    assert_eq!((r.status, r.json()), (200, json!({"accepted": 1})));
    assert!(r.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(r.header("x-elastic-product").as_deref(), Some("elasticsearch"), "every response says it");
    let r = call(a, "POST", "/events", Some("application/json"), br#"[{"summary":"two"},{"summary":"three"}]"#).await;
    assert_eq!((r.status, r.json()), (200, json!({"accepted": 2})));
    let r = call(a, "PUT", "/events/", Some("application/x-ndjson"), b"{\"summary\":\"four\"}\n{\"summary\":\"five\"}\n").await;
    assert_eq!((r.status, r.json()), (200, json!({"accepted": 2})), "PUT and a trailing slash, as MozDef took");
    assert_eq!(call(a, "POST", "/events", None, b"{\"summary\":\"six\"}").await.status, 200, "no content type is fine");
    let got = docs(&stored);
    let summaries: Vec<&str> = got.iter().map(|d| d["summary"].as_str().unwrap()).collect();
    assert_eq!(summaries, ["one", "two", "three", "four", "five", "six"]);
    assert!(got.iter().all(|d| d["details"]["endpoint"] == "events"), "{got:?}");
    assert_eq!(s.metrics.get(Counter::EventsAccepted), 6);
    s.h.stop().await;
}

#[actix_web::test]
async fn an_invalid_record_rejects_the_whole_request_with_its_position() {
    let s = server(1 << 20, 16);
    let a = s.h.addr();
    let r = call(a, "POST", "/events", Some("application/x-ndjson"), b"{\"a\":1}\n{\"b\":2}\n{\"c\": x}\n").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"error": "line 3, column 7: expected value", "accepted": 0, "invalid": 1}));
    let r = call(a, "POST", "/nxlog", Some("application/json"), b"[1, 2]").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "line 1, column 1: an event must be a JSON object, found an array");
    let r = call(a, "POST", "/events", Some("application/json"), b"  ").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("empty body"));
    assert!(s.rx.is_empty(), "nothing of a rejected request gets in");
    assert_eq!(s.metrics.get(Counter::EventsAccepted), 0);
    assert_eq!(s.metrics.get(Counter::EventsInvalid), 2);
    s.h.stop().await;
}

#[actix_web::test]
async fn limits_content_types_methods_and_unknown_paths() {
    let s = server(1024, 16);
    let a = s.h.addr();
    let big = format!("{{\"summary\":\"{}\"}}", "x".repeat(2000));
    let r = call(a, "POST", "/events", Some("application/json"), big.as_bytes()).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("max_body"), "{}", r.body);
    // A small gzip body that inflates past max_body is refused too.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(big.as_bytes()).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1024);
    let r = send(a, "POST", "/_bulk", &[("Content-Encoding", "gzip")], &bomb).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "content_too_long_exception");
    let r = send(a, "POST", "/events", &[("Content-Encoding", "br")], b"{}").await;
    assert_eq!(r.status, 415);
    assert!(r.body.contains("`br`"), "{}", r.body);
    let r = call(a, "POST", "/events", Some("application/xml"), b"<e/>").await;
    assert_eq!(r.status, 415);
    assert!(r.body.contains("application/xml"), "{}", r.body);
    let r = call(a, "GET", "/events", None, b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("post, put"));
    assert_eq!(r.json()["error"], "GET is not allowed on /events: use POST or PUT");
    let r = call(a, "DELETE", "/_bulk", None, b"").await;
    assert_eq!(r.status, 405);
    let r = call(a, "GET", "/nope", None, b"").await;
    assert_eq!(r.status, 404);
    let endpoints = r.json()["endpoints"].as_array().unwrap().clone();
    assert!(endpoints.iter().any(|e| e == "POST|PUT /_bulk") && endpoints.iter().any(|e| e == "POST|PUT /custom/<app>"), "{endpoints:?}");
    assert!(r.json()["error"].as_str().unwrap().contains("GET /nope"));
    assert!(s.rx.is_empty());
    s.h.stop().await;
}

#[actix_web::test]
async fn metrics_health_and_status() {
    let s = server(1 << 20, 16);
    let _stored = output(s.rx.clone(), stores_all);
    let a = s.h.addr();
    call(a, "POST", "/events", None, b"{\"a\":1}\n{\"a\":2}").await;
    call(a, "POST", "/events", None, b"nope").await;
    let r = call(a, "GET", "/metrics", None, b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain; version=0.0.4"));
    assert!(r.body.contains("rampart_events_accepted_total 2\n"), "{}", r.body);
    assert!(r.body.contains("rampart_events_invalid_total 1\n"), "{}", r.body);
    let r = call(a, "GET", "/health", None, b"").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let r = call(a, "GET", "/status", None, b"").await;
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok", "service": "loginput"})));
    s.h.stop().await;
}

#[actix_web::test]
async fn ready_names_the_inputs_that_are_not_taking_events() {
    let s = server(1 << 20, 16);
    let a = s.h.addr();
    let r = call(a, "GET", "/ready", None, b"").await;
    assert_eq!((r.status, r.json()), (200, json!({"ready": true, "inputs": {}})));
    s.metrics.input_waiting("amqp:events", "amqp:events: cannot connect to amqp://127.0.0.1:1: Connection refused");
    s.metrics.input_ready("amqp:audit");
    let r = call(a, "GET", "/ready", None, b"").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        json!({"ready": false, "inputs": {"amqp:audit": true, "amqp:events": false}, "waiting": {"amqp:events": "amqp:events: cannot connect to amqp://127.0.0.1:1: Connection refused"}})
    );
    // Liveness is not readiness: the process answers, so /health stays ok.
    assert_eq!(call(a, "GET", "/health", None, b"").await.status, 200);
    s.metrics.input_ready("amqp:events");
    let r = call(a, "GET", "/ready", None, b"").await;
    assert_eq!((r.status, r.json()["ready"].clone()), (200, json!(true)));
    s.h.stop().await;
}

#[actix_web::test]
async fn requests_are_answered_only_after_the_outputs_settle() {
    let s = server(1 << 20, 1);
    let a = s.h.addr();
    let first = actix_web::rt::spawn(async move { call(a, "POST", "/events", None, b"{\"summary\":\"a\"}").await });
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    assert!(!first.is_finished(), "in the pipeline is not stored yet");
    // The queue (capacity 1) is full: the next request waits to get in.
    let second = actix_web::rt::spawn(async move { call(a, "POST", "/events", None, b"{\"summary\":\"b\"}").await });
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    assert!(!second.is_finished());
    let held = s.rx.recv_async().await.unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    assert!(!first.is_finished(), "taken by an output is not stored either");
    drop(held);
    assert_eq!(first.await.unwrap().status, 200, "stored: now it is answered");
    let mut b = s.rx.recv_async().await.unwrap();
    b[0].ack.take().unwrap().report(AckStatus::Errored, "disk full");
    drop(b);
    let r = second.await.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    let j = r.json();
    assert_eq!((j["retry"].clone(), j["accepted"].clone(), j["delivered"].clone()), (json!(true), json!(1), json!(0)));
    assert!(j["error"].as_str().unwrap().contains("line 1, column 1: disk full"), "{j}");
    s.h.stop().await;
}

#[actix_web::test]
async fn a_rejection_is_400_and_a_silent_output_times_out_as_503() {
    let s = server_with(HttpConfig { ack_timeout: Duration::from_millis(300), ..Default::default() }, 16);
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    let rx = s.rx.clone();
    actix_web::rt::spawn(async move {
        while let Ok(batch) = rx.recv_async().await {
            for mut e in batch {
                match e.doc["summary"].as_str() {
                    Some("poison") => e.ack.take().unwrap().report(AckStatus::Rejected, "field too long"),
                    Some("stuck") => keep.lock().unwrap().push(e),
                    _ => {}
                }
            }
        }
    });
    let a = s.h.addr();
    let r = call(a, "POST", "/events", None, b"{\"summary\":\"ok\"}\n{\"summary\":\"poison\"}\n").await;
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j["error"], "line 2, column 1: an output rejected the event: field too long");
    assert_eq!((j["retry"].clone(), j["delivered"].clone(), j["rejected"].clone()), (json!(false), json!(1), json!(1)));
    let started = Instant::now();
    let r = call(a, "POST", "/events", None, b"{\"summary\":\"stuck\"}").await;
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("within ack_timeout (300ms)"), "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5));
    held.lock().unwrap().clear();
    s.h.stop().await;
}

#[actix_web::test]
async fn shutdown_answers_waiting_requests_and_stops_the_server() {
    let s = server(1 << 20, 4);
    let a = s.h.addr();
    let pending = actix_web::rt::spawn(async move { call(a, "POST", "/events", None, b"{\"a\":1}").await });
    let held = s.rx.recv_async().await.unwrap();
    s.trigger.trigger();
    let r = tokio::time::timeout(Duration::from_secs(10), pending).await.unwrap().unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("before shutdown"), "{}", r.body);
    tokio::time::timeout(Duration::from_secs(10), s.h.finished()).await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(a).await.is_err(), "no longer listening");
    drop(held);
}

#[actix_web::test]
async fn nxlog_cef_and_custom_endpoints() {
    let s = server(1 << 20, 16);
    let stored = output(s.rx.clone(), stores_all);
    let a = s.h.addr();
    assert_eq!(call(a, "POST", "/nxlog", None, br#"{"summary":"nx","Hostname":"dc1"}"#).await.status, 200);
    assert_eq!(call(a, "PUT", "/cef/", None, br#"{"summary":"c","endpoint":"sender's"}"#).await.status, 200);
    let sent = json!({"summary": "v", "details": {"cve": "CVE-2024-1"}, "asset": {"ip": "10.0.0.1"}, "timestamp": "2026-01-02T03:04:05Z"});
    let r = call(a, "POST", "/custom/vulnerabilities", None, sent.to_string().as_bytes()).await;
    assert_eq!((r.status, r.json()), (200, json!({"accepted": 1})));
    let got = docs(&stored);
    assert_eq!(got[0]["details"]["endpoint"], "nxlog");
    assert_eq!(got[0]["hostname"], "dc1", "normalized");
    assert_eq!(got[1]["details"]["endpoint"], "cef", "the endpoint wins, as in MozDef");
    // Custom: the document as sent plus exactly four keys.
    let custom = got[2].as_object().unwrap();
    let mut want = sent.as_object().unwrap().clone();
    want.insert("endpoint".into(), json!("vulnerabilities"));
    want.insert("customendpoint".into(), json!(true));
    want.insert("utctimestamp".into(), json!("2026-01-02T03:04:05.000+00:00"));
    want.insert("receivedtimestamp".into(), custom["receivedtimestamp"].clone());
    assert_eq!(*custom, want);
    assert_eq!(stored.lock().unwrap()[2].time.to_rfc3339(), "2026-01-02T03:04:05.000+00:00");
    s.h.stop().await;
}

fn bulk_decide(summary: &str) -> Option<(AckStatus, &'static str)> {
    match summary {
        "flaky" => Some((AckStatus::Errored, "opensearch 503")),
        "poison" => Some((AckStatus::Rejected, "mapper_parsing_exception in opensearch")),
        _ => None,
    }
}

#[actix_web::test]
async fn bulk_ndjson_is_answered_per_item_like_elasticsearch() {
    let s = server(1 << 20, 16);
    let stored = output(s.rx.clone(), bulk_decide);
    let a = s.h.addr();
    let body = concat!(
        "{\"index\":{\"_index\":\"syslog-2026\",\"_id\":\"a1\"}}\n{\"message\":\"one\",\"host\":\"web1\"}\n",
        "{\"create\":{\"_index\":\"syslog-2026\"}}\n{\"message\":\"two\"}\n",
        "{\"delete\":{\"_index\":\"syslog-2026\",\"_id\":\"x\"}}\n",
        "{\"index\":{}}\n{\"message\": oops}\n",
        "{\"update\":{\"_id\":\"u\"}}\n{\"doc\":{}}\n",
        "{\"index\":{}}\n{\"message\":\"flaky\"}\n",
        "{\"index\":{}}\n{\"message\":\"poison\"}\n",
    );
    let r = call(a, "POST", "/_bulk?filter_path=errors,items.*.error,items.*.status&pipeline=x", Some("application/x-ndjson"), body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["errors"], true);
    assert!(j["took"].is_u64());
    let items = j["items"].as_array().unwrap();
    let statuses: Vec<(String, u64)> = items.iter().map(|i| {
        let (op, v) = i.as_object().unwrap().iter().next().unwrap();
        (op.clone(), v["status"].as_u64().unwrap())
    }).collect();
    let want: Vec<(String, u64)> = [("index", 201), ("create", 201), ("delete", 400), ("index", 400), ("update", 400), ("index", 429), ("index", 400)].iter().map(|(o, s)| (o.to_string(), *s)).collect();
    assert_eq!(statuses, want);
    let first = &items[0]["index"];
    assert_eq!((first["_index"].clone(), first["_id"].clone(), first["result"].clone(), first["_version"].clone()), (json!("syslog-2026"), json!("a1"), json!("created"), json!(1)));
    assert_eq!(first["_shards"], json!({"total": 1, "successful": 1, "failed": 0}));
    assert_eq!(items[1]["create"]["_id"].as_str().unwrap().len(), 32, "an id is made up when none is sent");
    assert_eq!(items[3]["index"]["error"]["type"], "mapper_parsing_exception");
    assert!(items[3]["index"]["error"]["reason"].as_str().unwrap().contains("line 7, column 13"), "{}", items[3]);
    assert_eq!(items[5]["index"]["error"]["type"], "es_rejected_execution_exception");
    assert!(items[5]["index"]["error"]["reason"].as_str().unwrap().contains("opensearch 503"));
    assert_eq!(items[6]["index"]["error"]["type"], "illegal_argument_exception");
    let got = docs(&stored);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0]["summary"].clone(), got[0]["hostname"].clone(), got[0]["details"]["bulkindex"].clone()), (json!("one"), json!("web1"), json!("syslog-2026")));
    assert_eq!(stored.lock().unwrap()[0].id, bulk::id_for("syslog-2026", "a1"));
    assert!(got[0]["details"].get("endpoint").is_none());
    s.h.stop().await;
}

#[actix_web::test]
async fn bulk_arrays_path_index_gzip_and_retries() {
    let s = server(1 << 20, 16);
    let stored = output(s.rx.clone(), stores_all);
    let a = s.h.addr();
    let r = call(a, "PUT", "/mozdef/_bulk", Some("application/json"), br#"[{"summary":"x"},{"index":{"_id":"k"}},{"summary":"y"}]"#).await;
    let j = r.json();
    assert_eq!((r.status, j["errors"].clone()), (200, json!(false)), "{j}");
    assert_eq!(j["items"][0]["index"]["_index"], "mozdef");
    assert_eq!(j["items"][1]["index"]["_id"], "k");
    // The same document again, gzipped as Filebeat sends it: same event id.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"index\":{\"_index\":\"mozdef\",\"_id\":\"k\"}}\n{\"summary\":\"y\"}\n").unwrap();
    let r = send(a, "POST", "/_bulk", &[("Content-Encoding", "gzip"), ("Content-Type", "application/x-ndjson")], &gz.finish().unwrap()).await;
    assert_eq!((r.status, r.json()["items"][0]["index"]["status"].clone()), (200, json!(201)), "{}", r.body);
    {
        let events = stored.lock().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].id, events[2].id, "a retried _id keeps its event id");
        assert_eq!(events[0].doc["details"]["bulkindex"], "mozdef");
    }
    // Refused as a whole: a malformed action line, or an empty body.
    let r = call(a, "POST", "/_bulk", None, b"{\"index\":{}}\n{\"a\":1}\n{\"index\":{\"_id\":[]}}\n{\"a\":2}\n").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["reason"], "line 3, column 1: malformed action line: `_id` must be a non-empty string, found []");
    assert_eq!(r.json()["status"], 400);
    assert_eq!(call(a, "POST", "/_bulk", None, b"\n").await.status, 400);
    assert_eq!(stored.lock().unwrap().len(), 3, "nothing of a refused request");
    s.h.stop().await;
}

#[actix_web::test]
async fn single_document_apis() {
    let s = server(1 << 20, 16);
    let stored = output(s.rx.clone(), stores_all);
    let a = s.h.addr();
    let r = call(a, "PUT", "/logs/_doc/42", Some("application/json"), br#"{"message":"m1"}"#).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.json()["_id"].clone(), r.json()["result"].clone()), (json!("42"), json!("created")));
    let r = call(a, "POST", "/logs/_doc", Some("application/json"), br#"{"message":"m2"}"#).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["_index"], "logs");
    let r = call(a, "PUT", "/logs/_create/7", None, br#"{"message": nope}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "mapper_parsing_exception");
    assert!(r.json()["error"]["reason"].as_str().unwrap().contains("line 1, column 14: expected ident"), "{}", r.body);
    assert_eq!(stored.lock().unwrap().len(), 2);
    assert_eq!(stored.lock().unwrap()[0].id, bulk::id_for("logs", "42"));
    s.h.stop().await;
}

#[actix_web::test]
async fn elasticsearch_startup_calls_are_answered() {
    let s = server_with(HttpConfig { es_version: "8.17.3".into(), ..Default::default() }, 16);
    let a = s.h.addr();
    let r = call(a, "GET", "/", None, b"").await;
    let j = r.json();
    assert_eq!(r.header("x-elastic-product").as_deref(), Some("elasticsearch"));
    assert_eq!((j["cluster_name"].clone(), j["tagline"].clone()), (json!("rampart"), json!("You Know, for Search")));
    assert_eq!((j["version"]["number"].clone(), j["version"]["build_flavor"].clone()), (json!("8.17.3"), json!("default")));
    assert!(j["version"]["lucene_version"].is_string() && j["cluster_uuid"].is_string());
    let r = call(a, "HEAD", "/", None, b"").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = call(a, "GET", "/_cluster/health?timeout=5s", None, b"").await;
    assert_eq!((r.status, r.json()["status"].clone()), (200, json!("green")));
    let r = call(a, "GET", "/_cat/health", None, b"").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(" rampart green 1 1 "), "{}", r.body);
    assert_eq!(call(a, "GET", "/_cat/health?h=status", None, b"").await.body, "green\n");
    assert_eq!(call(a, "GET", "/_cat/health?format=json", None, b"").await.json()[0]["status"], "green");
    let r = call(a, "GET", "/_license?human=false", None, b"").await;
    assert_eq!((r.json()["license"]["status"].clone(), r.json()["license"]["type"].clone()), (json!("active"), json!("basic")));
    let r = call(a, "GET", "/_xpack", None, b"").await;
    assert_eq!(r.json()["features"]["ilm"], json!({"available": true, "enabled": true}));
    let r = call(a, "GET", "/_nodes/_local/http", None, b"").await;
    let nodes = r.json()["nodes"].as_object().unwrap().clone();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes.values().next().unwrap()["http"]["publish_address"], json!(a.to_string()));
    for path in ["/_index_template/filebeat-8.17.3", "/_ilm/policy/filebeat", "/_template/logstash", "/_ingest/pipeline/p"] {
        let r = call(a, "GET", path, None, b"").await;
        assert_eq!((r.status, r.json()["error"]["type"].clone()), (404, json!("resource_not_found_exception")), "{path}");
        assert_eq!(call(a, "HEAD", path, None, b"").await.status, 404, "{path}");
        let r = call(a, "PUT", path, Some("application/json"), br#"{"index_patterns":["x-*"]}"#).await;
        assert_eq!((r.status, r.json()), (200, json!({"acknowledged": true})), "{path}");
    }
    assert!(s.rx.is_empty(), "setup calls are not events");
    s.h.stop().await;
}

#[test]
fn config_validation() {
    assert!(HttpConfig::default().validate().is_empty());
    assert!(HttpConfig { bind: "localhost:9000".into(), ..Default::default() }.validate().is_empty());
    let bad = HttpConfig { bind: "nowhere".into(), max_body: 0, workers: 0, ack_timeout: Duration::ZERO, es_version: "8".into() };
    let p = bad.validate();
    assert_eq!(p.len(), 5, "{p:?}");
    assert!(p[4].contains("es_version: `8`"), "{p:?}");
}
