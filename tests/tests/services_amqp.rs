//! The AMQP connector against a real RabbitMQ.
//!
//! The broker is `RAMPART_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`;
//! `bash scripts/services/rabbitmq.sh start` brings up a local one). Queue depths and
//! closing a connection from the server side go through `rabbitmqctl -n <node>` with the node
//! `RAMPART_TEST_RABBITMQ_NODE` (default `rabbit@localhost`, what the script starts). These
//! tests fail, never skip, when either is unreachable. Every test uses its own exchanges and
//! queues, and deletes them at the end.
//!
//! The input runs in the real pipeline (`run_with_sinks`) with a stand-in engine that
//! ignores events, and a test output that records what it is given and settles each event's
//! ack token as the test decides: at once, later, or with a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use parking_lot::Mutex;
use rampart_actors::{run_with_sinks, EngineFeed, PipelineEngine, PipelineReport, PipelineSpec};
use rampart_connectors::amqp::{parse_message, AmqpConfig, AmqpOutput, AmqpOutputConfig};
use rampart_connectors::{ConnectorError, EventBatch, InputConfig, Secret, Sink, SinkFuture};
use rampart_core::alert::{AlertRule, AlertWindow};
use rampart_core::{AckStatus, AckToken, Alert, Counter, Event, EventId, EventTime, Metrics, Normalizer, NormalizerConfig};
use rampart_engine::{EngineError, EngineReport};
use rampart_tests::services::{amqp_url, broker, depth, header, publish, rabbitmqctl, unique};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Evaluates `cond` (it may `.await`) every 50 ms for up to `secs` seconds; fails naming
/// `what` otherwise.
macro_rules! wait_for {
    ($secs:expr, $what:expr, $cond:expr) => {{
        let start = Instant::now();
        loop {
            if $cond {
                break;
            }
            if start.elapsed() > Duration::from_secs($secs) {
                panic!("timed out after {} s waiting for {}", $secs, $what);
            }
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

async fn consumers(ch: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    match ch.queue_declare(queue.into(), passive, FieldTable::default()).await {
        Ok(q) => q.consumer_count(),
        Err(_) => 0,
    }
}

/// A passive declare fails the channel when the queue is missing, so it gets its own.
async fn consuming(conn: &Connection, queue: &str) -> bool {
    let ch = conn.create_channel().await.unwrap();
    let n = consumers(&ch, queue).await;
    let _ = ch.close(200, "ok".into()).await;
    n > 0
}

async fn cleanup(ch: &Channel, queues: &[&str], exchanges: &[&str]) {
    for q in queues {
        let _ = ch.queue_delete((*q).into(), QueueDeleteOptions::default()).await;
    }
    for x in exchanges {
        let _ = ch.exchange_delete((*x).into(), ExchangeDeleteOptions::default()).await;
    }
}

// ----- the stand-in engine ---------------------------------------------------------------

#[derive(Clone)]
struct NullFeed;

impl EngineFeed for NullFeed {
    async fn send(&self, _: Vec<Arc<Event>>) -> Result<(), EngineError> {
        Ok(())
    }
    fn advance_to(&self, _: EventTime) {}
}

struct NullEngine {
    tx: flume::Sender<Alert>,
    rx: flume::Receiver<Alert>,
}

impl NullEngine {
    fn new() -> NullEngine {
        let (tx, rx) = flume::bounded(1);
        NullEngine { tx, rx }
    }
}

impl PipelineEngine for NullEngine {
    type Feed = NullFeed;
    fn feed(&self) -> NullFeed {
        NullFeed
    }
    fn alerts(&self) -> flume::Receiver<Alert> {
        self.rx.clone()
    }
    fn shutdown(self) -> Result<EngineReport, EngineError> {
        drop(self.tx);
        Ok(EngineReport { events: 0, late: 0, alerts: 0, suppressed: 0 })
    }
}

// ----- the test output --------------------------------------------------------------------

/// What the test output does with an event's token.
#[derive(Clone, Copy, Debug)]
enum Verdict {
    /// Keep it until the test releases it.
    Hold,
    /// Drop it at once: stored.
    Deliver,
    /// Report this status and reason, then drop it.
    Fail(AckStatus, &'static str),
}

/// Decides from the event and how many times it has been seen (1 the first time).
type Policy = Arc<dyn Fn(&Event, usize) -> Verdict + Send + Sync>;

#[derive(Default)]
struct Book {
    events: Vec<Arc<Event>>,
    times: HashMap<EventId, usize>,
    held: Vec<(Arc<Event>, AckToken)>,
}

#[derive(Clone)]
struct Recorder {
    book: Arc<Mutex<Book>>,
    policy: Policy,
}

impl Recorder {
    fn new(policy: impl Fn(&Event, usize) -> Verdict + Send + Sync + 'static) -> Recorder {
        Recorder { book: Default::default(), policy: Arc::new(policy) }
    }

    fn seen(&self) -> usize {
        self.book.lock().events.len()
    }

    fn held(&self) -> usize {
        self.book.lock().held.len()
    }

    fn summaries(&self) -> Vec<String> {
        self.book.lock().events.iter().map(|e| summary(e)).collect()
    }

    fn events_with(&self, s: &str) -> Vec<Arc<Event>> {
        self.book.lock().events.iter().filter(|e| summary(e) == s).cloned().collect()
    }

    /// Settles the held tokens of events matching `which` (reporting `status` first).
    fn release(&self, which: impl Fn(&Event) -> bool, status: Option<(AckStatus, &str)>) -> usize {
        let taken: Vec<_> = {
            let mut book = self.book.lock();
            let (take, keep) = std::mem::take(&mut book.held).into_iter().partition(|(e, _)| which(e));
            book.held = keep;
            take
        };
        for (_, t) in &taken {
            if let Some((s, r)) = status {
                t.report(s, r);
            }
        }
        taken.len()
    }

    fn sink(&self) -> Box<dyn Sink> {
        Box::new(self.clone())
    }
}

/// How many different `n` values the output has seen.
fn distinct_ns(rec: &Recorder) -> usize {
    rec.book.lock().events.iter().filter_map(|e| e.doc["details"]["n"].as_u64()).collect::<std::collections::HashSet<u64>>().len()
}

fn summary(e: &Event) -> String {
    e.doc.get("summary").and_then(Value::as_str).unwrap_or_default().to_string()
}

impl Sink for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn wants_events(&self) -> bool {
        true
    }
    fn wants_alerts(&self) -> bool {
        false
    }
    fn write_events(&mut self, batch: EventBatch) -> SinkFuture<'_> {
        let policy = self.policy.clone();
        let mut book = self.book.lock();
        for (e, token) in batch.iter() {
            let n = {
                let n = book.times.entry(e.id).or_default();
                *n += 1;
                *n
            };
            book.events.push(e.clone());
            match (policy(e, n), token) {
                (Verdict::Hold, Some(t)) => book.held.push((e.clone(), t.clone())),
                (Verdict::Fail(s, r), Some(t)) => t.report(s, r),
                _ => {}
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
    fn write_alerts(&mut self, _: Arc<Vec<Alert>>) -> SinkFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }
}

// ----- running the input ------------------------------------------------------------------

/// An input on its own exchange, queue and dead-letter exchange, with short waits.
fn input_config(base: &str) -> AmqpConfig {
    AmqpConfig {
        url: Secret::new(amqp_url()),
        exchange: format!("{base}.x"),
        queue: base.to_string(),
        dead_letter_exchange: format!("{base}.dlx"),
        reconnect_min: Duration::from_millis(200),
        reconnect_max: Duration::from_secs(1),
        requeue_delay: Duration::from_millis(100),
        drain_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    done: actix_rt::task::JoinHandle<Result<PipelineReport, rampart_actors::PipelineError>>,
}

impl Running {
    async fn stop(self) -> PipelineReport {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.done).await.expect("the pipeline stops").unwrap().unwrap()
    }
}

fn start(cfg: AmqpConfig, recorder: &Recorder, metrics: &Arc<Metrics>) -> Running {
    let spec = PipelineSpec { inputs: vec![InputConfig::Amqp(cfg)], outputs: vec![], normalizer: NormalizerConfig::default(), processing_time_watermark: None, plugins: None };
    let (stop, stopped) = oneshot::channel::<()>();
    let done = actix_rt::spawn(run_with_sinks(spec, vec![recorder.sink()], NullEngine::new(), metrics.clone(), async move {
        let _ = stopped.await;
    }));
    Running { stop, done }
}

/// Starts the input and waits until it says it is ready (what `GET /ready` reports); by
/// then the broker must show its consumer, so what is published from now on reaches it.
async fn start_consuming(cfg: AmqpConfig, recorder: &Recorder, metrics: &Arc<Metrics>, conn: &Connection) -> Running {
    let queue = cfg.queue.clone();
    let name = format!("amqp:{queue}");
    let running = start(cfg, recorder, metrics);
    wait_for!(15, "the input to say it is ready", metrics.inputs_ready() == vec![(name.clone(), true)]);
    assert!(consuming(conn, &queue).await, "{name} said it was ready before RabbitMQ had its consumer");
    running
}

async fn dead_letters(ch: &Channel, queue: &str) -> Vec<lapin::message::Delivery> {
    let mut out = Vec::new();
    while let Some(m) = ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        out.push(m.delivery);
    }
    out
}

// ----- the tests ----------------------------------------------------------------------------

#[actix_rt::test]
async fn events_arrive_normalized_with_stable_ids_and_are_acked_only_once_every_token_settles() {
    let (conn, ch) = broker().await;
    let base = unique("ack");
    let cfg = input_config(&base);
    let (exchange, dlx) = (cfg.exchange.clone(), cfg.dead_letter_exchange.clone());
    let metrics = Arc::new(Metrics::new());
    let rec = Recorder::new(|_, _| Verdict::Hold);
    let running = start_consuming(cfg, &rec, &metrics, &conn).await;

    let one = br#"{"summary":"one","hostname":"web1","utctimestamp":"2026-03-01T10:00:00Z","sourceipaddress":"203.0.113.7"}"#;
    let two = br#"[{"summary":"two-a"},{"summary":"two-b"}]"#;
    let three = br#"{"message":"three","host":"db1"}"#;
    publish(&ch, &exchange, "eventtask", one, Some("msg-1")).await;
    publish(&ch, &exchange, "eventtask", two, None).await;
    publish(&ch, &exchange, "eventtask", three, None).await;
    wait_for!(10, "4 events", rec.seen() == 4);

    // Normalized (synonyms moved, the rest under details) and with the ids the message
    // alone decides: the message_id when there is one, else the body.
    let normalizer = Normalizer::default();
    let origin = format!("amqp:{base}");
    let e1 = &rec.events_with("one")[0];
    assert_eq!(e1.doc["hostname"], "web1");
    assert_eq!(e1.doc["utctimestamp"], "2026-03-01T10:00:00.000+00:00");
    assert_eq!(e1.doc["details"]["sourceipaddress"], "203.0.113.7");
    assert_eq!(e1.id, parse_message(one, Some("msg-1"), &origin, 1 << 20, &normalizer).unwrap()[0].id);
    let e3 = &rec.events_with("three")[0];
    assert_eq!(e3.doc["hostname"], "db1");
    assert_eq!(e3.id, parse_message(three, None, &origin, 1 << 20, &normalizer).unwrap()[0].id);
    let twos: Vec<EventId> = parse_message(two, None, &origin, 1 << 20, &normalizer).unwrap().iter().map(|e| e.id).collect();
    assert_eq!(vec![rec.events_with("two-a")[0].id, rec.events_with("two-b")[0].id], twos);

    // Nothing is acked while the output holds the tokens.
    assert_eq!(depth(&base).await, (0, 3), "three messages delivered, none acknowledged");
    assert_eq!(rec.release(|e| summary(e) == "one" || summary(e) == "three", None), 2);
    wait_for!(10, "two acks", depth(&base).await == (0, 1));
    // The two events of one message share its token: half of it settles nothing.
    assert_eq!(rec.release(|e| summary(e) == "two-a", None), 1);
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(depth(&base).await, (0, 1), "one event of the message is still held");
    assert_eq!(rec.release(|e| summary(e) == "two-b", None), 1);
    wait_for!(10, "the last ack", depth(&base).await == (0, 0));

    // Shutdown waits (up to drain_timeout) for what is in flight, and acks it.
    publish(&ch, &exchange, "eventtask", br#"{"summary":"late"}"#, None).await;
    wait_for!(10, "the late event", rec.seen() == 5);
    let releaser = rec.clone();
    actix_rt::spawn(async move {
        actix_rt::time::sleep(Duration::from_millis(500)).await;
        releaser.release(|_| true, None);
    });
    let report = running.stop().await;
    assert_eq!(depth(&base).await, (0, 0), "the message settled during the drain was acked");
    assert_eq!(report.accepted, 5);
    assert_eq!(report.invalid, 0);
    assert!(report.input_errors().next().is_none(), "{:?}", report.inputs);
    cleanup(&ch, &[&base, &dlx], &[&exchange, &dlx]).await;
}

#[actix_rt::test]
async fn failed_stores_are_redelivered_with_the_same_id_and_rejected_ones_dead_lettered() {
    let (conn, ch) = broker().await;
    let base = unique("outcomes");
    let cfg = input_config(&base);
    let (exchange, dlx) = (cfg.exchange.clone(), cfg.dead_letter_exchange.clone());
    let metrics = Arc::new(Metrics::new());
    let rec = Recorder::new(|e, n| match (summary(e).as_str(), n) {
        ("flaky", 1) => Verdict::Fail(AckStatus::Errored, "es: 503 Service Unavailable"),
        ("unstorable", _) => Verdict::Fail(AckStatus::Rejected, "mapper_parsing_exception: failed to parse field [details.port]"),
        _ => Verdict::Deliver,
    });
    let running = start_consuming(cfg, &rec, &metrics, &conn).await;

    let unstorable = br#"{"summary":"unstorable","details":{"port":"eighty"}}"#;
    publish(&ch, &exchange, "eventtask", br#"{"summary":"flaky"}"#, None).await;
    publish(&ch, &exchange, "eventtask", unstorable, Some("u-1")).await;
    publish(&ch, &exchange, "eventtask", br#"{"summary":"fine"}"#, None).await;
    wait_for!(10, "the flaky message twice", rec.events_with("flaky").len() == 2);
    wait_for!(10, "every message settled", depth(&base).await == (0, 0) && depth(&dlx).await == (1, 0));

    let flaky = rec.events_with("flaky");
    assert_eq!(flaky[0].id, flaky[1].id, "a redelivered message keeps its event id");
    assert_eq!(rec.events_with("unstorable").len(), 1, "a rejected message is not redelivered");
    assert_eq!(rec.events_with("fine").len(), 1);
    assert_eq!(metrics.get(Counter::AmqpRequeued), 1);
    assert!(metrics.get(Counter::AmqpRedelivered) >= 1, "the second delivery is flagged redelivered");
    assert_eq!(metrics.get(Counter::AmqpDeadLettered), 1);

    // The dead letter is the original message with the reason beside it.
    let dead = dead_letters(&ch, &dlx).await;
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(d.data, unstorable);
    assert!(header(d, "x-rampart-reason").starts_with("mapper_parsing_exception"), "{}", header(d, "x-rampart-reason"));
    assert_eq!(header(d, "x-rampart-queue"), base);
    assert_eq!(header(d, "x-rampart-exchange"), exchange);
    assert_eq!(header(d, "x-rampart-routing-key"), "eventtask");
    assert_eq!(d.properties.message_id().as_ref().map(|m| m.to_string()), Some("u-1".to_string()));
    assert_eq!(*d.properties.delivery_mode(), Some(2));

    let report = running.stop().await;
    assert_eq!(report.accepted, 4, "flaky twice, unstorable, fine");
    cleanup(&ch, &[&base, &dlx], &[&exchange, &dlx]).await;
}

#[actix_rt::test]
async fn unreadable_messages_are_dead_lettered_with_a_reason_and_the_stream_goes_on() {
    let (conn, ch) = broker().await;
    let base = unique("poison");
    let cfg = AmqpConfig { max_message: 1024, ..input_config(&base) };
    let (exchange, dlx) = (cfg.exchange.clone(), cfg.dead_letter_exchange.clone());
    let metrics = Arc::new(Metrics::new());
    let rec = Recorder::new(|_, _| Verdict::Deliver);
    let running = start_consuming(cfg, &rec, &metrics, &conn).await;

    let big = format!("{{\"summary\":\"{}\"}}", "x".repeat(2000));
    let bodies: [(&str, &[u8]); 6] = [
        ("before", br#"{"summary":"before"}"#),
        ("json", b"this is not json"),
        ("size", big.as_bytes()),
        ("utf8", b"{\"summary\":\"\xff\xfe\"}"),
        ("object", br#""just a string""#),
        ("after", br#"{"summary":"after"}"#),
    ];
    for (name, body) in bodies {
        publish(&ch, &exchange, "eventtask", body, Some(name)).await;
    }
    wait_for!(10, "the events around the bad ones", rec.seen() == 2);
    wait_for!(10, "four dead letters", depth(&dlx).await == (4, 0) && depth(&base).await == (0, 0));
    assert_eq!(rec.summaries(), ["before", "after"]);

    let mut reasons: Vec<(String, String)> = dead_letters(&ch, &dlx).await.iter().map(|d| (d.properties.message_id().as_ref().unwrap().to_string(), header(d, "x-rampart-reason"))).collect();
    reasons.sort();
    let expect = [("json", "not JSON: line 1, column 2"), ("object", "an event must be a JSON object, found a string"), ("size", "larger than max_message (1024 bytes)"), ("utf8", "not UTF-8 text")];
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    for ((id, reason), (want_id, want)) in reasons.iter().zip(expect) {
        assert_eq!(id, want_id);
        assert!(reason.contains(want), "{id}: {reason}");
    }
    assert_eq!(metrics.get(Counter::EventsInvalid), 4);
    assert_eq!(metrics.get(Counter::AmqpDeadLettered), 4);

    let report = running.stop().await;
    assert_eq!((report.accepted, report.invalid), (2, 4));
    let errors: Vec<&str> = report.input_errors().collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with(&format!("amqp:{base}: message json: not JSON"))), "{errors:?}");
    cleanup(&ch, &[&base, &dlx], &[&exchange, &dlx]).await;
}

#[actix_rt::test]
async fn the_input_reconnects_after_the_broker_closes_its_connection_and_loses_nothing() {
    let (conn, ch) = broker().await;
    let base = unique("reconnect");
    let cfg = AmqpConfig { prefetch: 20, ..input_config(&base) };
    let (exchange, dlx) = (cfg.exchange.clone(), cfg.dead_letter_exchange.clone());
    let metrics = Arc::new(Metrics::new());
    // Messages 10..20 are held on their first delivery, so they are in flight (unacked)
    // when the connection goes.
    let held = |e: &Event| e.doc["details"]["n"].as_u64().is_some_and(|n| (10..20).contains(&n));
    let rec = Recorder::new(move |e, n| if n == 1 && held(e) { Verdict::Hold } else { Verdict::Deliver });
    let running = start_consuming(cfg, &rec, &metrics, &conn).await;

    for n in 0..30 {
        publish(&ch, &exchange, "eventtask", json!({"summary": "tick", "n": n}).to_string().as_bytes(), None).await;
    }
    wait_for!(10, "30 events with 10 held", rec.seen() == 30 && rec.held() == 10);
    assert_eq!(depth(&base).await, (0, 10));

    // Close Rampart's connection from the broker's side.
    let connections = rabbitmqctl(&["list_connections", "pid", "client_properties"]).await;
    let pid = connections
        .lines()
        .find(|l| l.contains(&format!("rampart amqp:{base}\"")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no connection named `rampart amqp:{base}` in:\n{connections}"))
        .to_string();
    rabbitmqctl(&["close_connection", &pid, "rampart test: connection closed on purpose"]).await;
    for n in 30..40 {
        publish(&ch, &exchange, "eventtask", json!({"summary": "tick", "n": n}).to_string().as_bytes(), None).await;
    }
    wait_for!(20, "the reconnection", metrics.get(Counter::AmqpReconnects) == 1);
    wait_for!(5, "the input to be ready again once reconnected", metrics.inputs_waiting().is_empty());
    // The held tokens settle now, on a dead channel: their acks cannot go out, and RabbitMQ
    // has already given those messages to the new consumer.
    rec.release(|_| true, None);
    wait_for!(20, "every message stored and acked", distinct_ns(&rec) == 40 && depth(&base).await == (0, 0));
    for n in 10..20 {
        let copies: Vec<EventId> = rec.book.lock().events.iter().filter(|e| e.doc["details"]["n"] == n).map(|e| e.id).collect();
        assert!(copies.len() >= 2 && copies.iter().all(|id| *id == copies[0]), "message {n} redelivered with its id: {copies:?}");
    }
    assert!(metrics.get(Counter::AmqpRedelivered) >= 10);

    let report = running.stop().await;
    let errors: Vec<&str> = report.input_errors().collect();
    assert!(errors.iter().any(|e| e.contains("reconnecting in")), "{errors:?}");
    cleanup(&ch, &[&base, &dlx], &[&exchange, &dlx]).await;
}

#[actix_rt::test]
async fn prefetch_bounds_unacknowledged_messages_and_shutdown_leaves_the_unsettled_for_redelivery() {
    let (conn, ch) = broker().await;
    let base = unique("prefetch");
    let cfg = AmqpConfig { prefetch: 5, drain_timeout: Duration::from_millis(300), ..input_config(&base) };
    let (exchange, dlx) = (cfg.exchange.clone(), cfg.dead_letter_exchange.clone());
    let metrics = Arc::new(Metrics::new());
    let rec = Recorder::new(|_, _| Verdict::Hold);
    let running = start_consuming(cfg, &rec, &metrics, &conn).await;

    for n in 0..20 {
        publish(&ch, &exchange, "eventtask", json!({"summary": "p", "n": n}).to_string().as_bytes(), None).await;
    }
    wait_for!(10, "the first five", rec.held() == 5);
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rec.seen(), 5, "no more than prefetch messages are taken while none is settled");
    assert_eq!(depth(&base).await, (15, 5));

    // Settling lets the rest through, never more than five at a time.
    let mut max_held = 0;
    while rec.seen() < 20 {
        max_held = max_held.max(rec.held());
        rec.release(|_| true, None);
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(max_held <= 5, "{max_held} held at once");
    wait_for!(10, "all acked but the last batch", rec.held() > 0 && depth(&base).await == (0, rec.held() as u64));

    // Shutdown with tokens still held: after drain_timeout the input closes, and RabbitMQ
    // puts the unsettled messages back in the queue.
    let unsettled = rec.held() as u64;
    let report = running.stop().await;
    assert_eq!(depth(&base).await, (unsettled, 0), "unsettled messages are back in the queue");
    assert_eq!(report.accepted, 20);
    rec.release(|_| true, None);
    cleanup(&ch, &[&base, &dlx], &[&exchange, &dlx]).await;
}

#[actix_rt::test]
async fn declare_false_needs_the_queue_to_exist_and_says_so() {
    let (conn, _ch) = broker().await;
    let base = unique("missing");
    let cfg = AmqpConfig { declare: false, ..input_config(&base) };
    let metrics = Arc::new(Metrics::new());
    let rec = Recorder::new(|_, _| Verdict::Deliver);
    let running = start(cfg, &rec, &metrics);
    // The refusal cannot be fixed by retrying: the input stops, and with it the pipeline.
    let report = tokio::time::timeout(Duration::from_secs(20), running.done).await.expect("the pipeline ends by itself").unwrap().unwrap();
    let errors: Vec<&str> = report.input_errors().collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains(&format!("queue `{base}` is not usable (declare is false, so it must exist)")) && errors[0].contains("NOT_FOUND"), "{errors:?}");
    assert!(!errors[0].contains("guest:guest"), "the password is not shown: {errors:?}");
    // And `GET /ready` would say why the input is not taking events.
    let waiting = metrics.inputs_waiting();
    assert!(waiting.len() == 1 && waiting[0].0 == format!("amqp:{base}") && waiting[0].1.contains("is not usable"), "{waiting:?}");
    drop(conn);
}

fn alert(id: &str, severity: &str) -> Alert {
    let t = EventTime(1_772_359_200_000);
    Alert {
        id: id.into(),
        utctimestamp: t,
        severity: severity.into(),
        category: "bruteforce".into(),
        summary: format!("{severity} alert {id}"),
        tags: vec!["attack.t1110".into()],
        rule: AlertRule { id: "ssh-bruteforce".into(), title: "SSH brute force".into(), level: Some("high".into()), kind: "event_count".into() },
        group: Default::default(),
        window: AlertWindow { start: t, end: t },
        value: 10.0,
        events: vec![],
    }
}

#[actix_rt::test]
async fn the_alerts_output_publishes_with_confirms_and_routing_keys() {
    let (conn, ch) = broker().await;
    let exchange = unique("alerts");
    let events_exchange = format!("{exchange}.events");
    let metrics = Arc::new(Metrics::new());
    let cfg = AmqpOutputConfig { url: Secret::new(amqp_url()), exchange: exchange.clone(), routing_key: "mozdef.alert.{severity}".into(), events: true, events_exchange: events_exchange.clone(), ..Default::default() };
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let mut out = AmqpOutput::new(cfg, metrics.clone());
    out.connect().await.unwrap();

    // A consumer bound to the exchange, as a bot would be.
    let q = ch.queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default()).await.unwrap();
    ch.queue_bind(q.name().clone(), exchange.as_str().into(), "mozdef.alert.#".into(), QueueBindOptions::default(), FieldTable::default()).await.unwrap();
    let eq = ch.queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default()).await.unwrap();
    ch.queue_bind(eq.name().clone(), events_exchange.as_str().into(), "#".into(), QueueBindOptions::default(), FieldTable::default()).await.unwrap();
    let mut consumer = ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions { no_ack: true, ..Default::default() }, FieldTable::default()).await.unwrap();

    let alerts = Arc::new(vec![alert("a-1", "WARNING"), alert("a-2", "CRITICAL")]);
    out.write_alerts(alerts.clone()).await.unwrap();
    assert_eq!(metrics.get(Counter::AlertsWritten), 2);
    for want in alerts.iter() {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next()).await.expect("an alert arrives").unwrap().unwrap();
        let body: Value = serde_json::from_slice(&d.data).unwrap();
        assert_eq!(body, serde_json::to_value(want).unwrap());
        assert_eq!(d.routing_key.as_str(), format!("mozdef.alert.{}", want.severity));
        assert_eq!(d.properties.message_id().as_ref().map(|m| m.to_string()), Some(want.id.clone()));
        assert_eq!(d.properties.content_type().as_ref().map(|m| m.to_string()).as_deref(), Some("application/json"));
        assert_eq!(*d.properties.delivery_mode(), Some(2));
    }

    // Events, when asked for, settle their tokens once confirmed.
    let outcomes: Arc<Mutex<Vec<AckStatus>>> = Default::default();
    let o = outcomes.clone();
    let e = Normalizer::default().normalize(json!({"summary": "relay me", "category": "authentication"}), EventId(7)).unwrap();
    let token = AckToken::new(move |s, _| o.lock().push(s));
    let batch = EventBatch { events: Arc::new(vec![Arc::new(e)]), acks: vec![Some(token)] };
    out.write_events(batch).await.unwrap();
    assert_eq!(*outcomes.lock(), [AckStatus::Delivered]);
    let got = ch.basic_get(eq.name().clone(), BasicGetOptions { no_ack: true }).await.unwrap().expect("the event was published");
    assert_eq!(got.delivery.routing_key.as_str(), "authentication");
    assert_eq!(serde_json::from_slice::<Value>(&got.delivery.data).unwrap()["summary"], "relay me");

    out.flush().await.unwrap();
    cleanup(&ch, &[], &[&exchange, &events_exchange]).await;
    drop(conn);
}

#[actix_rt::test]
async fn the_alerts_output_reports_a_broker_it_cannot_use() {
    // Nothing listens on port 1: connect fails, with the address and no password.
    let cfg = AmqpOutputConfig { url: Secret::new("amqp://guest:hunter2@127.0.0.1:1/%2f"), ..Default::default() };
    let mut out = AmqpOutput::new(cfg, Arc::new(Metrics::new()));
    let e: ConnectorError = out.connect().await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("127.0.0.1:1") && !text.contains("hunter2") && text.contains("cannot connect"), "{text}");
    assert_eq!(e.retry(), rampart_core::Retry::Later);
}
