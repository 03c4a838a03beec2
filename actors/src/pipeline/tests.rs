//! Pipeline wiring tests. Most use a stand-in engine so that they test the actors alone:
//! it records what it is fed, fires an alert for every event whose summary is `fire`, and
//! on shutdown emits one "window" alert per run (as a real engine flushes open windows).
//! `real_engine_end_to_end` runs the real engine with a tiny rule set.

use super::*;
use parking_lot::Mutex;
use rampart_connectors::file::FileConfig;
use rampart_connectors::ndjson::FileOutputConfig;
use rampart_connectors::{ConnectorError, EventBatch, InputConfig, OutputConfig, SinkFuture};
use rampart_core::{AckStatus, AckToken};
use rampart_core::alert::{AlertRule, AlertWindow};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

type AlertTx = Arc<Mutex<Option<flume::Sender<Alert>>>>;

#[derive(Clone)]
struct FakeFeed {
    seen: Arc<Mutex<Vec<Arc<Event>>>>,
    alerts: AlertTx,
    closed: Arc<AtomicBool>,
    advanced: Arc<AtomicU64>,
}

struct FakeEngine {
    feed: FakeFeed,
    rx: flume::Receiver<Alert>,
    /// Shut down with an error after flushing (as when the final state snapshot fails).
    fail_shutdown: bool,
}

fn alert(summary: &str, t: EventTime, value: f64) -> Alert {
    Alert {
        id: Alert::make_id(summary, &Default::default(), t),
        utctimestamp: t,
        severity: "WARNING".into(),
        category: "test".into(),
        summary: summary.into(),
        tags: vec![],
        rule: AlertRule { id: summary.into(), title: summary.into(), level: None, kind: "event_count".into() },
        group: Default::default(),
        window: AlertWindow { start: t, end: t },
        value,
        events: vec![],
    }
}

impl FakeEngine {
    fn new() -> FakeEngine {
        let (tx, rx) = flume::bounded(4);
        FakeEngine {
            feed: FakeFeed { seen: Default::default(), alerts: Arc::new(Mutex::new(Some(tx))), closed: Default::default(), advanced: Default::default() },
            rx,
            fail_shutdown: false,
        }
    }
}

impl EngineFeed for FakeFeed {
    async fn send(&self, batch: Vec<Arc<Event>>) -> Result<(), EngineError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(EngineError::Closed);
        }
        for e in &batch {
            if e.doc["summary"] == "fire" {
                let tx = self.alerts.lock().clone();
                if let Some(tx) = tx {
                    let _ = tx.send_async(alert("fire", e.time, 1.0)).await;
                }
            }
        }
        self.seen.lock().extend(batch);
        Ok(())
    }
    fn advance_to(&self, t: EventTime) {
        self.advanced.fetch_max(t.0, Ordering::SeqCst);
    }
}

impl PipelineEngine for FakeEngine {
    type Feed = FakeFeed;
    fn feed(&self) -> FakeFeed {
        self.feed.clone()
    }
    fn alerts(&self) -> flume::Receiver<Alert> {
        self.rx.clone()
    }
    fn shutdown(self) -> Result<EngineReport, EngineError> {
        self.feed.closed.store(true, Ordering::SeqCst);
        let n = self.feed.seen.lock().len() as u64;
        let fires = self.feed.seen.lock().iter().filter(|e| e.doc["summary"] == "fire").count() as u64;
        // The still-open window flushes now; the channel is small, so this blocks unless
        // the pump drains concurrently.
        let tx = self.feed.alerts.lock().take();
        if let Some(tx) = tx {
            for i in 0..6 {
                let _ = tx.send(alert("window", EventTime(i), n as f64));
            }
        }
        if self.fail_shutdown {
            return Err(EngineError::State { file: "state/correlation-state.json".into(), reason: "the final snapshot could not be written: disk full".into(), hint: "free space".into() });
        }
        Ok(EngineReport { events: n, late: 0, alerts: fires + 6, suppressed: 0 })
    }
}

/// Counts the alerts it is given and records whether it was flushed.
struct FlushSink {
    alerts: Arc<AtomicU64>,
    flushed: Arc<AtomicBool>,
}

impl Sink for FlushSink {
    fn name(&self) -> &'static str {
        "flush"
    }
    fn wants_events(&self) -> bool {
        false
    }
    fn wants_alerts(&self) -> bool {
        true
    }
    fn write_events(&mut self, _: EventBatch) -> SinkFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }
    fn write_alerts(&mut self, batch: Arc<Vec<Alert>>) -> SinkFuture<'_> {
        self.alerts.fetch_add(batch.len() as u64, Ordering::SeqCst);
        Box::pin(std::future::ready(Ok(())))
    }
    fn flush(&mut self) -> SinkFuture<'_> {
        self.flushed.store(true, Ordering::SeqCst);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[actix_rt::test]
async fn an_engine_error_at_shutdown_is_reported_after_the_outputs_are_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, "{\"utctimestamp\":\"2026-03-01T10:00:00Z\",\"summary\":\"a\"}\n").unwrap();
    let s = spec(vec![InputConfig::File(FileConfig::new(input.to_str().unwrap()))], vec![]);
    let (alerts, flushed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let sink = FlushSink { alerts: alerts.clone(), flushed: flushed.clone() };
    let mut engine = FakeEngine::new();
    engine.fail_shutdown = true;
    let result = tokio::time::timeout(Duration::from_secs(20), run_with_sinks(s, vec![Box::new(sink)], engine, Arc::new(Metrics::new()), futures::future::pending())).await.expect("ends at EOF");
    let err = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("correlation-state.json"), "{err}");
    assert_eq!(alerts.load(Ordering::SeqCst), 6, "the flushed alerts reached the output");
    assert!(flushed.load(Ordering::SeqCst), "the output was flushed before the error was reported");
}

fn spec(inputs: Vec<InputConfig>, outputs: Vec<OutputConfig>) -> PipelineSpec {
    PipelineSpec { inputs, outputs, normalizer: NormalizerConfig::default(), processing_time_watermark: None, plugins: None }
}

fn read_lines(dir: &std::path::Path, prefix: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            out.extend(std::fs::read_to_string(e.path()).unwrap().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()));
        }
    }
    out
}

#[actix_rt::test]
async fn file_to_file_ends_at_eof_and_flushes_open_windows_before_closing_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(
        &input,
        "{\"utctimestamp\":\"2026-03-01T10:00:00Z\",\"summary\":\"a\"}\n{\"summary\": bad}\n{\"utctimestamp\":\"2026-03-01T10:00:01Z\",\"summary\":\"fire\"}\n{\"utctimestamp\":\"2026-03-01T10:00:02Z\",\"summary\":\"b\"}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let s = spec(vec![InputConfig::File(FileConfig::new(input.to_str().unwrap()))], vec![OutputConfig::File(FileOutputConfig { dir: data.clone(), ..Default::default() })]);
    let engine = FakeEngine::new();
    let seen = engine.feed.seen.clone();
    let metrics = Arc::new(Metrics::new());
    let report = tokio::time::timeout(Duration::from_secs(20), run_pipeline(s, engine, metrics, futures::future::pending())).await.expect("ends at EOF").unwrap();

    assert_eq!(report.accepted, 3);
    assert_eq!(report.invalid, 1);
    assert_eq!(report.events_written, 3);
    let errors: Vec<&str> = report.input_errors().collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].ends_with("in.ndjson:2:13: expected value"), "{errors:?}");
    assert_eq!(seen.lock().len(), 3, "the engine saw every accepted event");

    let events = read_lines(&data, "events-");
    assert_eq!(events.iter().map(|e| e["summary"].as_str().unwrap()).collect::<Vec<_>>(), ["a", "fire", "b"]);
    // The alert fired while running and the six flushed at shutdown are all written:
    // outputs were closed only after the engine's flush drained.
    let alerts = read_lines(&data, "alerts-");
    assert_eq!(alerts.len(), 7, "{alerts:?}");
    assert_eq!(alerts.iter().filter(|a| a["summary"] == "window").count(), 6);
    assert!(alerts.iter().filter(|a| a["summary"] == "window").all(|a| a["value"] == 3));
    assert_eq!(report.alerts, 7);
    assert_eq!(report.alerts_written, 7);
}

/// A sink that writes slowly and records how far the inputs got ahead of it.
struct SlowSink {
    metrics: Arc<Metrics>,
    written: Arc<AtomicU64>,
    max_ahead: Arc<AtomicU64>,
}

impl Sink for SlowSink {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn wants_events(&self) -> bool {
        true
    }
    fn wants_alerts(&self) -> bool {
        true
    }
    fn write_events(&mut self, batch: EventBatch) -> SinkFuture<'_> {
        std::thread::sleep(Duration::from_millis(3));
        let ahead = self.metrics.get(Counter::EventsAccepted).saturating_sub(self.written.load(Ordering::SeqCst));
        self.max_ahead.fetch_max(ahead, Ordering::SeqCst);
        self.written.fetch_add(batch.len() as u64, Ordering::SeqCst);
        Box::pin(std::future::ready(Ok(())))
    }
    fn write_alerts(&mut self, _: Arc<Vec<Alert>>) -> SinkFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }
}

#[actix_rt::test]
async fn a_slow_output_holds_the_input_back() {
    use rampart_connectors::source::MAX_BATCH;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.ndjson");
    let mut f = std::fs::File::create(&input).unwrap();
    const N: u64 = 60_000;
    for i in 0..N {
        writeln!(f, "{{\"n\":{i}}}").unwrap();
    }
    drop(f);
    let metrics = Arc::new(Metrics::new());
    let written = Arc::new(AtomicU64::new(0));
    let max_ahead = Arc::new(AtomicU64::new(0));
    let sink = SlowSink { metrics: metrics.clone(), written: written.clone(), max_ahead: max_ahead.clone() };
    let s = spec(vec![InputConfig::File(FileConfig::new(input.to_str().unwrap()))], vec![]);
    let report = run_with_sinks(s, vec![Box::new(sink)], FakeEngine::new(), metrics, futures::future::pending()).await.unwrap();
    assert_eq!(report.accepted, N);
    assert_eq!(written.load(Ordering::SeqCst), N, "nothing lost on the way");
    // Accepted-but-unwritten events are bounded by the hops' capacities (source queue,
    // the batch being forwarded, the output mailbox, the batch being written), not by
    // the input's size.
    let bound = ((crate::input::SOURCE_QUEUE + 1 + MAILBOX + 2) * MAX_BATCH) as u64;
    let ahead = max_ahead.load(Ordering::SeqCst);
    assert!(ahead <= bound, "the input ran {ahead} events ahead of the output (bound {bound})");
    assert!(ahead >= MAX_BATCH as u64, "the measure is live: {ahead}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn post(addr: &str, body: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split(' ').nth(1)?.parse().ok()
}

#[actix_rt::test]
async fn http_input_is_restarted_after_a_bind_failure_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // Someone else holds the port at first: the input fails, and is retried.
    let squatter = std::net::TcpListener::bind(&addr).unwrap();
    let http = rampart_connectors::http::HttpConfig { bind: addr.clone(), workers: 1, ..Default::default() };
    let mut s = spec(vec![InputConfig::Http(http)], vec![OutputConfig::File(FileOutputConfig { dir: dir.path().to_path_buf(), ..Default::default() })]);
    s.processing_time_watermark = Some(Duration::from_secs(5));
    let engine = FakeEngine::new();
    let advanced = engine.feed.advanced.clone();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let pipeline = actix_rt::spawn(run_pipeline(s, engine, Arc::new(Metrics::new()), async move {
        let _ = stop_rx.await;
    }));
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    drop(squatter);

    let client_addr = addr.clone();
    let status = actix_rt::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(code) = post(&client_addr, "{\"summary\":\"x\"}\n{\"summary\":\"fire\"}") {
                return Some(code);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(status, Some(200), "the restarted server accepts events");

    let _ = stop_tx.send(());
    let report = tokio::time::timeout(Duration::from_secs(20), pipeline).await.expect("shutdown completes").unwrap().unwrap();
    assert_eq!(report.accepted, 2);
    assert_eq!(report.events_written, 2);
    assert_eq!(report.alerts_written, 7);
    let errors: Vec<&str> = report.input_errors().collect();
    assert!(!errors.is_empty() && errors[0].contains("cannot listen") && errors[0].contains("restarting"), "{errors:?}");
    assert!(std::net::TcpStream::connect(&addr).is_err(), "the server is stopped");
    assert!(advanced.load(Ordering::SeqCst) > 0, "processing-time ticks advanced the watermark");
}

#[actix_rt::test]
async fn bad_specs_and_unopenable_outputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let s = spec(vec![InputConfig::File(FileConfig::new("-"))], vec![OutputConfig::File(FileOutputConfig { dir: blocker.join("sub"), ..Default::default() })]);
    let err = run_pipeline(s, FakeEngine::new(), Arc::new(Metrics::new()), futures::future::pending()).await.unwrap_err();
    assert!(matches!(err, PipelineError::Output { index: 0, kind: "file", .. }), "{err}");
    let s = spec(vec![], vec![OutputConfig::Stdout(Default::default())]);
    let err = run_pipeline(s, FakeEngine::new(), Arc::new(Metrics::new()), futures::future::pending()).await.unwrap_err();
    assert!(matches!(err, PipelineError::Spec(_)), "{err}");
}

/// A network-style sink: takes batches at once and settles their tokens later, when the
/// test says so (as an Elasticsearch output does when its bulk request comes back).
struct HoldingSink {
    held: Arc<Mutex<Vec<EventBatch>>>,
    fail: bool,
}

impl Sink for HoldingSink {
    fn name(&self) -> &'static str {
        "holding"
    }
    fn wants_events(&self) -> bool {
        true
    }
    fn wants_alerts(&self) -> bool {
        false
    }
    fn write_events(&mut self, batch: EventBatch) -> SinkFuture<'_> {
        if self.fail {
            let e = ConnectorError::Write { component: "holding", path: "-".into(), source: std::io::Error::other("store down") };
            batch.settle(&Err(ConnectorError::Write { component: "holding", path: "-".into(), source: std::io::Error::other("store down") }));
            return Box::pin(std::future::ready(Err(e)));
        }
        self.held.lock().push(batch);
        Box::pin(std::future::ready(Ok(())))
    }
    fn write_alerts(&mut self, _: Arc<Vec<Alert>>) -> SinkFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }
}

type Outcomes = Arc<Mutex<Vec<(u64, AckStatus, Option<String>)>>>;

fn acked_batch(n: u64, outcomes: &Outcomes) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let mut e = Normalizer::default().normalize(serde_json::json!({"summary": "x", "n": i}), rampart_core::EventId(i as u128)).unwrap();
            let o = outcomes.clone();
            e.ack = Some(AckToken::new(move |s, r| o.lock().push((i, s, r))));
            e
        })
        .collect()
}

#[actix_rt::test]
async fn acks_wait_for_every_output_but_not_for_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let file = OutputConfig::File(FileOutputConfig { dir: dir.path().to_path_buf(), ..Default::default() }).build(metrics.clone()).unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let outputs = [OutputActor::launch(file, MAILBOX), OutputActor::launch(Box::new(HoldingSink { held: held.clone(), fail: false }), MAILBOX)];
    let engine = FakeEngine::new();
    let (tx, rx) = flume::bounded(2);
    let outcomes: Outcomes = Default::default();
    tx.send(acked_batch(3, &outcomes)).unwrap();
    drop(tx);
    let errors = crate::input::forward(rx, engine.feed.clone(), outputs.iter().map(|o| o.addr.clone()).collect(), None).await;
    assert!(errors.is_empty(), "{errors:?}");
    // The file output has written them and the engine still holds them, but the holding
    // output has not settled: no delivery is acknowledged yet.
    assert_eq!(engine.feed.seen.lock().len(), 3);
    assert!(engine.feed.seen.lock().iter().all(|e| e.ack.is_none()), "the engine never sees a token");
    assert!(outcomes.lock().is_empty(), "{:?}", outcomes.lock());
    // The holding output settles: one rejected, the rest stored.
    let batch = held.lock().pop().unwrap();
    batch.acks[1].as_ref().unwrap().report(AckStatus::Rejected, "mapper_parsing_exception");
    drop(batch);
    let mut got = outcomes.lock().clone();
    got.sort_by_key(|o| o.0);
    assert_eq!(got, [(0, AckStatus::Delivered, None), (1, AckStatus::Rejected, Some("mapper_parsing_exception".into())), (2, AckStatus::Delivered, None)]);
    for o in outputs {
        o.close().await.unwrap();
    }
}

#[actix_rt::test]
async fn a_failing_output_errors_the_delivery_and_no_output_delivers_at_once() {
    let engine = FakeEngine::new();
    let outcomes: Outcomes = Default::default();
    let failing = OutputActor::launch(Box::new(HoldingSink { held: Default::default(), fail: true }), MAILBOX);
    let (tx, rx) = flume::bounded(2);
    tx.send(acked_batch(2, &outcomes)).unwrap();
    drop(tx);
    let errors = crate::input::forward(rx, engine.feed.clone(), vec![failing.addr.clone()], None).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(outcomes.lock().iter().all(|(_, s, r)| *s == AckStatus::Errored && r.as_deref().unwrap().contains("store down")), "{:?}", outcomes.lock());
    assert_eq!(outcomes.lock().len(), 2);
    failing.close().await.unwrap();

    // A stopped output actor drops the message with its clones: still not "delivered".
    let gone = OutputActor::launch(Box::new(HoldingSink { held: Default::default(), fail: false }), MAILBOX);
    let addr = gone.addr.clone();
    gone.close().await.unwrap();
    let outcomes: Outcomes = Default::default();
    let (tx, rx) = flume::bounded(2);
    tx.send(acked_batch(1, &outcomes)).unwrap();
    drop(tx);
    crate::input::forward(rx, engine.feed.clone(), vec![addr], None).await;
    assert_eq!(outcomes.lock()[0].1, AckStatus::Errored, "{:?}", outcomes.lock());

    let outcomes: Outcomes = Default::default();
    let (tx, rx) = flume::bounded(2);
    tx.send(acked_batch(2, &outcomes)).unwrap();
    drop(tx);
    crate::input::forward(rx, engine.feed.clone(), vec![], None).await;
    assert_eq!(outcomes.lock().iter().filter(|o| o.1 == AckStatus::Delivered).count(), 2);
}

#[actix_rt::test]
async fn the_plugin_chain_runs_before_the_engine_and_outputs_and_drops_are_acked() {
    use rampart_connectors::plugins::drop::{DropConfig, DropFilter};
    use rampart_connectors::plugins::chain::Registered;
    use rampart_connectors::plugins::Chain;
    let metrics = Arc::new(Metrics::new());
    // Drop event n = 1 (normalization keeps `n` under `details`).
    let filter = DropFilter::new(&DropConfig { match_fields: [("details.n".to_string(), serde_json::json!(1))].into(), rules: vec![], reason: Some("test".into()) }).unwrap();
    let chain = Arc::new(Chain::new(vec![Registered::new(Box::new(filter))], metrics.clone()));
    let held = Arc::new(Mutex::new(Vec::new()));
    let out = OutputActor::launch(Box::new(HoldingSink { held: held.clone(), fail: false }), MAILBOX);
    let engine = FakeEngine::new();
    let outcomes: Outcomes = Default::default();
    let (tx, rx) = flume::bounded(2);
    tx.send(acked_batch(3, &outcomes)).unwrap();
    drop(tx);
    let errors = crate::input::forward(rx, engine.feed.clone(), vec![out.addr.clone()], Some(chain)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(metrics.get(rampart_core::Counter::EventsPluginDropped), 1);
    let seen: Vec<u64> = engine.feed.seen.lock().iter().map(|e| e.doc["details"]["n"].as_u64().unwrap()).collect();
    assert_eq!(seen, [0, 2], "the engine never sees the dropped event");
    assert_eq!(held.lock()[0].events.len(), 2, "nor does the output");
    assert_eq!(outcomes.lock().clone(), [(1, AckStatus::Delivered, None)], "the dropped delivery is settled as handled at once; the others wait for the output");
    held.lock().clear();
    out.close().await.unwrap();
}
