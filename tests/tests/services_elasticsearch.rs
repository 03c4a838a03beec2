//! The Elasticsearch output against a real OpenSearch 2.19 node: templates and moving
//! aliases, documents by day and id, idempotent redelivery, dead letters, alerts, batching
//! by size and age, and an outage on a second node of its own (stopped and restarted while
//! the output holds its tokens).
//!
//! The node is `RAMPART_TEST_ES_URL` (default `http://127.0.0.1:9200`); when it does not
//! answer the tests fail and say how to start it. Each test works under its own index
//! prefix and deletes it at the end. The sink is driven directly, on a current-thread
//! runtime, as the output actor does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use elasticsearch::http::Method;
use rampart_connectors::elasticsearch::{ElasticsearchConfig, ElasticsearchOutput};
use rampart_connectors::{ConnectorError, EventBatch, Sink};
use rampart_core::alert::{AlertRule, AlertWindow};
use rampart_core::{AckStatus, AckToken, Alert, Counter, Event, EventId, EventTime, Metrics, Normalizer, Retry};
use rampart_tests::services::{es_url, free_port, unique, Es, Node};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn config(url: &str, prefix: &str) -> ElasticsearchConfig {
    ElasticsearchConfig {
        events_index: format!("{prefix}-events"),
        alerts_index: format!("{prefix}-alerts"),
        dead_letter_index: format!("{prefix}-deadletter"),
        replicas: 0,
        flush_interval: Duration::from_millis(100),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(10),
        ..ElasticsearchConfig::new(url)
    }
}

async fn sink(cfg: ElasticsearchConfig, metrics: &Arc<Metrics>) -> ElasticsearchOutput {
    let mut out = ElasticsearchOutput::new(cfg, metrics.clone()).unwrap();
    out.connect().await.unwrap();
    out
}

/// How a token settled: its status and reason.
type Settled = (AckStatus, Option<String>);

/// Records how each token settled, by a name.
#[derive(Clone, Default)]
struct Acks(Arc<Mutex<BTreeMap<String, Settled>>>);

impl Acks {
    fn token(&self, name: &str) -> AckToken {
        let (acks, name) = (self.0.clone(), name.to_string());
        AckToken::new(move |s, r| {
            let prev = acks.lock().unwrap().insert(name.clone(), (s, r));
            assert!(prev.is_none(), "token {name} settled twice");
        })
    }

    fn get(&self, name: &str) -> Option<Settled> {
        self.0.lock().unwrap().get(name).cloned()
    }

    fn status(&self, name: &str) -> AckStatus {
        self.get(name).unwrap_or_else(|| panic!("token {name} is not settled")).0
    }

    async fn wait(&self, names: &[String], within: Duration) {
        let t0 = Instant::now();
        while names.iter().any(|n| self.get(n).is_none()) {
            assert!(t0.elapsed() < within, "tokens not settled within {within:?}: {:?}", names.iter().filter(|n| self.get(n).is_none()).collect::<Vec<_>>());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn event(origin: &str, n: u64, doc: Value) -> Arc<Event> {
    let raw = doc.to_string();
    Arc::new(Normalizer::default().normalize(doc, EventId::derive(origin, n, raw.as_bytes())).unwrap())
}

/// Events `from..to` of `origin` at `ts`, each with a token named `{tag}{n}`.
fn batch(acks: &Acks, tag: &str, events: &[Arc<Event>]) -> (EventBatch, Vec<String>) {
    let names: Vec<String> = (0..events.len()).map(|i| format!("{tag}{i}")).collect();
    let tokens = names.iter().map(|n| Some(acks.token(n))).collect();
    (EventBatch { events: Arc::new(events.to_vec()), acks: tokens }, names)
}

fn day_events(origin: &str, ts: &str, range: std::ops::Range<u64>) -> Vec<Arc<Event>> {
    range.map(|n| event(origin, n, json!({"utctimestamp": ts, "summary": format!("event {n}"), "details": {"n": n}}))).collect()
}

#[tokio::test]
async fn templates_mappings_documents_and_rolling_aliases() {
    let url = es_url();
    let es = Es::connect(&url).await;
    let p = unique("layout");
    let metrics = Arc::new(Metrics::new());
    let mut out = sink(config(&url, &p), &metrics).await;

    // Templates, as installed.
    let t = es.get(&format!("/_index_template/{p}-events")).await;
    let t = &t["index_templates"][0]["index_template"];
    assert_eq!(t["index_patterns"], json!([format!("{p}-events-*")]));
    assert_eq!(t["template"]["settings"]["index"]["number_of_replicas"], "0");
    assert_eq!(t["template"]["mappings"]["properties"]["summary"]["type"], "text");
    let a = es.get(&format!("/_index_template/{p}-alerts")).await;
    assert_eq!(a["index_templates"][0]["index_template"]["template"]["aliases"], json!({format!("{p}-alerts"): {}}));
    es.get(&format!("/_index_template/{p}-deadletter")).await;

    // Day one: documents land under their own day with their ids.
    let acks = Acks::default();
    let first = event(&p, 1, json!({"utctimestamp": "2026-03-01T10:00:00.123Z", "summary": "ssh login", "hostname": "web1", "details": {"sourceipaddress": "203.0.113.7", "destinationipaddress": "not an ip", "sourceipgeopoint": "48.85,2.35", "port": 22}}));
    let mut day1 = vec![first.clone()];
    day1.extend(day_events(&p, "2026-03-01T23:59:59Z", 2..4));
    let (b, names) = batch(&acks, "d1-", &day1);
    out.write_events(b).await.unwrap();
    out.flush().await.unwrap();
    for n in &names {
        assert_eq!(acks.status(n), AckStatus::Delivered, "{n}");
    }
    let day1_index = format!("{p}-events-20260301");
    let doc = es.get(&format!("/{day1_index}/_doc/{}", first.id)).await;
    assert_eq!(doc["_id"], first.id.to_string());
    assert_eq!(doc["_source"]["id"], first.id.to_string());
    assert_eq!(doc["_source"]["@timestamp"], "2026-03-01T10:00:00.123+00:00");
    assert_eq!(doc["_source"]["details"]["sourceipaddress"], "203.0.113.7");
    assert_eq!(es.count(&day1_index).await, 3);
    assert_eq!(metrics.get(Counter::EventsWritten), 3);

    // The mapping the template gave the new index.
    let m = es.get(&format!("/{day1_index}/_mapping")).await;
    let props = &m[&day1_index]["mappings"]["properties"];
    assert_eq!(props["@timestamp"]["type"], "date");
    assert_eq!(props["utctimestamp"]["type"], "date");
    assert_eq!(props["receivedtimestamp"]["type"], "date");
    assert_eq!(props["summary"]["type"], "text");
    assert_eq!(props["summary"]["fields"]["keyword"]["type"], "keyword");
    assert_eq!(props["hostname"]["type"], "keyword");
    let details = &props["details"]["properties"];
    assert_eq!(details["sourceipaddress"]["type"], "ip");
    assert_eq!(details["destinationipaddress"]["type"], "ip", "a bad value is ignored, not a mapping error");
    assert_eq!(details["sourceipgeopoint"]["type"], "geo_point");
    assert_eq!(details["port"]["type"], "long");

    let (ev, prev) = (format!("{p}-events"), format!("{p}-events-previous"));
    let names_q = format!("{ev},{prev}");
    assert_eq!(es.aliases(&names_q).await, BTreeMap::from([(day1_index.clone(), vec![ev.clone()])]));

    // Day two: the aliases roll.
    let (b, names) = batch(&acks, "d2-", &day_events(&p, "2026-03-02T00:00:00Z", 10..12));
    out.write_events(b).await.unwrap();
    out.flush().await.unwrap();
    assert!(names.iter().all(|n| acks.status(n) == AckStatus::Delivered));
    let day2_index = format!("{p}-events-20260302");
    assert_eq!(es.aliases(&names_q).await, BTreeMap::from([(day1_index.clone(), vec![prev.clone()]), (day2_index.clone(), vec![ev.clone()])]));
    assert_eq!(es.count(&ev).await, 2, "the alias reads the newest day");

    // An old day replayed later moves nothing.
    let (b, _) = batch(&acks, "old-", &day_events(&p, "2026-01-15T00:00:00Z", 20..21));
    out.write_events(b).await.unwrap();
    out.flush().await.unwrap();
    assert_eq!(es.aliases(&names_q).await.len(), 2);
    assert_eq!(es.count(&format!("{p}-events-20260115")).await, 1);
    es.cleanup(&p).await;
}

#[tokio::test]
async fn redelivered_events_are_stored_once() {
    let url = es_url();
    let es = Es::connect(&url).await;
    let p = unique("dup");
    let metrics = Arc::new(Metrics::new());
    let mut out = sink(config(&url, &p), &metrics).await;
    let events = day_events(&p, "2026-03-05T12:00:00Z", 0..5);
    let acks = Acks::default();
    let (b1, first) = batch(&acks, "first-", &events);
    let (b2, again) = batch(&acks, "again-", &events);
    out.write_events(b1).await.unwrap();
    out.flush().await.unwrap();
    out.write_events(b2).await.unwrap();
    out.flush().await.unwrap();
    for n in first.iter().chain(&again) {
        assert_eq!(acks.status(n), AckStatus::Delivered, "{n}: {:?}", acks.get(n));
    }
    assert_eq!(es.count(&format!("{p}-events-20260305")).await, 5);
    es.cleanup(&p).await;
}

#[tokio::test]
async fn a_document_that_breaks_the_mapping_is_dead_lettered_and_rejected_alone() {
    let url = es_url();
    let es = Es::connect(&url).await;
    let p = unique("dlq");
    let metrics = Arc::new(Metrics::new());
    let mut out = sink(config(&url, &p), &metrics).await;
    let acks = Acks::default();
    let ts = "2026-03-06T08:00:00Z";
    // `details.n` becomes a long with the first document...
    let (b, _) = batch(&acks, "setup-", &day_events(&p, ts, 0..1));
    out.write_events(b).await.unwrap();
    out.flush().await.unwrap();
    // ...so an object there can never be indexed; its neighbours can.
    let bad = event(&p, 100, json!({"utctimestamp": ts, "summary": "bad", "details": {"n": {"a": 1}}}));
    let mut events = day_events(&p, ts, 1..3);
    events.insert(1, bad.clone());
    let (b, names) = batch(&acks, "mix-", &events);
    out.write_events(b).await.unwrap();
    out.flush().await.unwrap();

    assert_eq!(acks.status(&names[0]), AckStatus::Delivered);
    assert_eq!(acks.status(&names[2]), AckStatus::Delivered);
    let (status, reason) = acks.get(&names[1]).unwrap();
    assert_eq!(status, AckStatus::Rejected);
    let reason = reason.unwrap();
    assert!(reason.contains("mapper_parsing_exception") && reason.contains("details.n"), "{reason}");

    let dl = format!("{p}-deadletter");
    assert_eq!(es.count(&dl).await, 1);
    let d = es.get(&format!("/{dl}/_doc/{}", bad.id)).await["_source"].clone();
    assert_eq!(d["index"], format!("{p}-events-20260306"));
    assert_eq!(d["id"], bad.id.to_string());
    assert!(d["reason"].as_str().unwrap().starts_with("mapper_parsing_exception"), "{d}");
    let original: Value = serde_json::from_str(d["document"].as_str().unwrap()).unwrap();
    assert_eq!(original["details"]["n"], json!({"a": 1}));
    assert!(d["@timestamp"].is_string());
    assert_eq!(es.count(&format!("{p}-events-20260306")).await, 3);
    assert_eq!(metrics.get(Counter::OutputErrors), 1);
    assert_eq!(metrics.get(Counter::EventsWritten), 3);
    es.cleanup(&p).await;
}

fn alert(rule: &str, ts: &str) -> Alert {
    let t = EventTime::from_datetime(chrono::DateTime::parse_from_rfc3339(ts).unwrap());
    Alert {
        id: Alert::make_id(rule, &Default::default(), t),
        utctimestamp: t,
        severity: "WARNING".into(),
        category: "bruteforce".into(),
        summary: format!("{rule} fired"),
        tags: vec!["attack.t1110".into()],
        rule: AlertRule { id: rule.into(), title: "R".into(), level: Some("high".into()), kind: "event_count".into() },
        group: serde_json::from_value(json!({"details.sourceipaddress": "203.0.113.7"})).unwrap(),
        window: AlertWindow { start: t, end: t },
        value: 10.0,
        events: vec![],
    }
}

#[tokio::test]
async fn alerts_land_in_monthly_indices_behind_the_alias() {
    let url = es_url();
    let es = Es::connect(&url).await;
    let p = unique("alerts");
    let metrics = Arc::new(Metrics::new());
    let mut out = sink(config(&url, &p), &metrics).await;
    let alerts = vec![alert("a", "2026-02-28T23:59:59Z"), alert("b", "2026-03-01T00:00:00Z"), alert("c", "2026-03-20T00:00:00Z")];
    out.write_alerts(Arc::new(alerts.clone())).await.unwrap();
    out.write_alerts(Arc::new(alerts.clone())).await.unwrap(); // stored once
    out.flush().await.unwrap();
    assert_eq!(metrics.get(Counter::AlertsWritten), 6);
    let alias = format!("{p}-alerts");
    assert_eq!(es.count(&alias).await, 3);
    let (feb, mar) = (format!("{p}-alerts-202602"), format!("{p}-alerts-202603"));
    assert_eq!(es.count(&mar).await, 2);
    let doc = es.get(&format!("/{feb}/_doc/{}", alerts[0].id)).await["_source"].clone();
    assert_eq!(doc["summary"], "a fired");
    assert_eq!(doc["@timestamp"], "2026-02-28T23:59:59.000+00:00");
    assert_eq!(es.aliases(&alias).await, BTreeMap::from([(feb.clone(), vec![alias.clone()]), (mar, vec![alias.clone()])]));
    let m = es.get(&format!("/{feb}/_mapping")).await;
    let props = &m[&feb]["mappings"]["properties"];
    assert_eq!(props["window"]["properties"]["end"]["type"], "date");
    assert_eq!(props["summary"]["type"], "text");
    assert_eq!(props["group"]["properties"]["details"]["properties"]["sourceipaddress"]["type"], "ip");
    es.cleanup(&p).await;
}

#[tokio::test]
async fn bulk_requests_go_out_by_size_and_by_age_without_a_flush() {
    let url = es_url();
    let es = Es::connect(&url).await;
    let p = unique("batch");
    let metrics = Arc::new(Metrics::new());
    let acks = Acks::default();
    // By size: 3 documents fill a request; the age limit is out of reach.
    let mut by_size = sink(ElasticsearchConfig { bulk_max_docs: 3, flush_interval: Duration::from_secs(3600), ..config(&url, &p) }, &metrics).await;
    let (b, names) = batch(&acks, "size-", &day_events(&p, "2026-03-07T00:00:00Z", 0..4));
    by_size.write_events(b).await.unwrap();
    acks.wait(&names[..3], Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(acks.get(&names[3]).is_none(), "the fourth document waits for a full request or the age limit");
    // By age: one document goes out `flush_interval` after it was buffered.
    let mut by_age = sink(ElasticsearchConfig { flush_interval: Duration::from_millis(200), ..config(&url, &p) }, &metrics).await;
    let (b, one) = batch(&acks, "age-", &day_events(&p, "2026-03-07T00:00:00Z", 10..11));
    let t0 = Instant::now();
    by_age.write_events(b).await.unwrap();
    acks.wait(&one, Duration::from_secs(10)).await;
    assert!(t0.elapsed() >= Duration::from_millis(200), "sent before its age: {:?}", t0.elapsed());
    assert_eq!(acks.status(&one[0]), AckStatus::Delivered);
    by_size.flush().await.unwrap();
    assert_eq!(acks.status(&names[3]), AckStatus::Delivered);
    assert_eq!(es.count(&format!("{p}-events-20260307")).await, 5);
    es.cleanup(&p).await;
}

#[tokio::test]
async fn startup_failures_say_what_to_fix() {
    // Nothing listens: retried until connect_timeout, then an error naming the address.
    let port = free_port();
    let cfg = ElasticsearchConfig { connect_timeout: Duration::from_millis(400), ..config(&format!("http://127.0.0.1:{port}"), "x") };
    let t0 = Instant::now();
    let err = ElasticsearchOutput::new(cfg, Arc::new(Metrics::new())).unwrap().connect().await.unwrap_err();
    assert!(t0.elapsed() >= Duration::from_millis(400));
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("connect_timeout") && text.contains("refused"), "{text}");
    assert_eq!(err.retry(), Retry::Later);

    // Refused credentials: no retry, and the message says what to check.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().take(1) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = r#"{"error":{"type":"security_exception","reason":"unable to authenticate user [rampart] for REST request [/]"},"status":401}"#;
            let _ = write!(s, "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    });
    let cfg = ElasticsearchConfig { user: Some("rampart".into()), password: Some(rampart_connectors::Secret::new("wrong")), ..config(&format!("http://{addr}"), "x") };
    let err = ElasticsearchOutput::new(cfg, Arc::new(Metrics::new())).unwrap().connect().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Peer { retry: Retry::Never, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("HTTP 401") && text.contains("check user and password") && !text.contains("wrong"), "{text}");
}

#[tokio::test]
async fn an_outage_holds_tokens_until_the_node_is_back_or_retry_for_passes() {
    let node = Node::start();
    let es = Es::connect(&node.url).await;
    let p = unique("outage");
    let metrics = Arc::new(Metrics::new());
    let acks = Acks::default();
    let ts = "2026-03-08T00:00:00Z";
    let cfg = ElasticsearchConfig { retry_max: Duration::from_millis(300), ..config(&node.url, &p) };
    let mut out = sink(cfg.clone(), &metrics).await;
    let mut short = sink(ElasticsearchConfig { retry_for: Duration::from_millis(800), ..cfg }, &metrics).await;

    let (b, before) = batch(&acks, "before-", &day_events(&p, ts, 0..5));
    out.write_events(b).await.unwrap();
    out.flush().await.unwrap();
    assert!(before.iter().all(|n| acks.status(n) == AckStatus::Delivered));

    node.script("stop");
    let during_events = day_events(&p, ts, 5..10);
    let (b, during) = batch(&acks, "during-", &during_events);
    out.write_events(b).await.unwrap();
    // Meanwhile an output with a short retry_for gives up and asks for redelivery.
    let (b, gave_up) = batch(&acks, "short-", &day_events(&p, ts, 100..103));
    short.write_events(b).await.unwrap();
    short.flush().await.unwrap();
    for n in &gave_up {
        let (status, reason) = acks.get(n).unwrap();
        assert_eq!(status, AckStatus::Errored, "{n}");
        assert!(reason.as_deref().unwrap_or("").contains("retry_for"), "{reason:?}");
    }
    assert!(during.iter().all(|n| acks.get(n).is_none()), "nothing may settle while the node is down: {:?}", acks.0.lock().unwrap());
    assert_eq!(metrics.get(Counter::EventsWritten), 5);
    assert!(metrics.get(Counter::OutputErrors) >= 3, "failed attempts and given-up documents count as output errors");

    node.script("start");
    out.flush().await.unwrap();
    for n in &during {
        assert_eq!(acks.status(n), AckStatus::Delivered, "{n}: {:?}", acks.get(n));
    }
    let index = format!("{p}-events-20260308");
    assert_eq!(es.count(&index).await, 10, "each document exactly once; none of the given-up ones");
    let ids: Vec<String> = during_events.iter().map(|e| e.id.to_string()).collect();
    let found = es.call(Method::Post, &format!("/{index}/_count"), Some(json!({"query": {"ids": {"values": ids}}}))).await.1;
    assert_eq!(found["count"], 5);
    drop(node);
}
