//! Engine tests on hand-built plans (the rules crate's compilation is tested in `compile`).

use super::*;
use crate::plan::{KindPlan, Measure, RulePlan};
use rampart_correlation::{Aggregate, Cmp, Condition};
use rampart_core::{EventId, EventRef, EventTime, FieldPath};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// `{{ name }}` substitution, enough to see that the engine feeds the right lookups.
fn render(template: &'static str) -> plan::Renderer {
    Box::new(move |lookup| {
        let mut out = String::new();
        let mut rest = template;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let close = rest[open..].find("}}").map_or(rest.len(), |c| open + c);
            let name = rest[open + 2..close].trim();
            out.push_str(&lookup(name).unwrap_or_default());
            rest = &rest[(close + 2).min(rest.len())..];
        }
        out.push_str(rest);
        out
    })
}

fn rule(id: &str, summary: &'static str, suppress_ms: u64, kind: KindPlan) -> RulePlan {
    RulePlan {
        id: id.into(),
        title: format!("{id} title"),
        level: Some("high".into()),
        severity: "WARNING".into(),
        category: "test".into(),
        tags: vec!["t".into()],
        summary: render(summary),
        suppress_ms,
        kind,
    }
}

/// A detection of `details.result == value`.
fn detection(id: &str, value: &'static str, generate: bool, feeds: Vec<u32>) -> RulePlan {
    let feeds = feeds.into_iter().map(|slot| plan::Feed::to(slot, 0)).collect();
    let path = FieldPath::new("details.result");
    let matcher: plan::Matcher = Box::new(move |e: &Event| e.get(&path) == Some(&json!(value)));
    rule(id, "{{ rule.title }}: {{ details.user }} from {{ details.src }}", 0, KindPlan::Detection { matcher, generate, feeds, group_by: Vec::new(), read_group_by: Vec::new() })
}

fn correlation(id: &str, measure: Measure, window_ms: u64, threshold: u64, suppress_ms: u64) -> RulePlan {
    correlation_when(id, measure, window_ms, Condition::at_least(threshold), suppress_ms)
}

fn correlation_when(id: &str, measure: Measure, window_ms: u64, condition: Condition, suppress_ms: u64) -> RulePlan {
    let type_name = match &measure {
        Measure::Events => "event_count",
        Measure::Distinct(_) => "value_count",
        Measure::Numeric(..) => "value_sum",
        Measure::Rules => "temporal",
        Measure::Sequence => "temporal_ordered",
        Measure::Absence => "absence",
        Measure::NewTerm(..) => "new_term",
        Measure::Spike(_) => "spike",
        Measure::Follow(_) => "sequence",
        Measure::Deadman => "deadman",
    };
    let kind =
        KindPlan::Correlation {
        type_name,
        generate: true,
        feeds: Vec::new(),
        level: 0,
        measure,
        group_by: vec![FieldPath::new("details.src")],
        window: rampart_correlation::Window::Sliding,
        window_ms,
        condition,
    };
    rule(id, "{{ rule.id }} {{ details.src }} {{ value }} [{{ window.start }}]", suppress_ms, kind)
}

/// Rules: 0 detects failures (no alerts of its own) feeding 1 (three failures per source in
/// 10 s) and 2 (two distinct users per source in 10 s); 3 detects "root" and alerts.
fn plan() -> Plan {
    Plan::new(
        vec![
            detection("fail", "fail", false, vec![1, 2]),
            correlation("brute", Measure::Events, 10_000, 3, 0),
            correlation("spray", Measure::Distinct(FieldPath::new("details.user")), 10_000, 2, 0),
            detection("root", "root", true, vec![]),
        ],
        100,
    )
}

pub(crate) fn event(id: u128, ms: u64, result: &str, src: &str, user: &str) -> Event {
    let doc = json!({"utctimestamp": EventTime(ms).to_rfc3339(), "details": {"result": result, "src": src, "user": user}});
    let Value::Object(doc) = doc else { unreachable!() };
    Event { id: EventId(id), time: EventTime(ms), received: EventTime(ms), accepted_ns: rampart_core::metrics::clock_ns(), doc, ack: None, route: Default::default() }
}

pub(crate) fn cfg(workers: usize, lateness_ms: u64) -> EngineConfig {
    EngineConfig { workers, lateness: Duration::from_millis(lateness_ms), ..EngineConfig::default() }
}

fn group(src: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("details.src".into(), json!(src));
    m
}

#[test]
fn correlations_fire_with_group_window_refs_and_summary() {
    let events = vec![
        event(1, 1_000, "fail", "10.0.0.1", "alice"),
        event(2, 2_000, "fail", "10.0.0.1", "alice"),
        event(3, 3_000, "ok", "10.0.0.1", "alice"),
        event(4, 4_000, "fail", "10.0.0.1", "bob"),
        event(5, 5_000, "fail", "10.0.0.2", "carol"),
    ];
    let alerts = replay_plan(plan(), cfg(1, 60_000), events).unwrap();
    let brief: Vec<_> = alerts.iter().map(|a| (a.rule.id.as_str(), a.utctimestamp.0, a.value)).collect();
    // At 4 s: the third failure from .1 (brute) and its second distinct user (spray); both
    // at the same time, ordered by rule.
    assert_eq!(brief, vec![("brute", 4_000, 3.0), ("spray", 4_000, 2.0)]);
    let brute = &alerts[0];
    assert_eq!(brute.group, group("10.0.0.1"));
    assert_eq!(brute.rule.kind, "event_count");
    assert_eq!((brute.window.start.0, brute.window.end.0), (0, 4_000), "window start clamps at the epoch");
    assert_eq!(brute.events.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![1, 2, 4]);
    assert_eq!(brute.summary, format!("brute 10.0.0.1 3 [{}]", EventTime(0).to_rfc3339()));
    assert_eq!(brute.id, Alert::make_id("brute", &group("10.0.0.1"), EventTime(4_000)));
    assert_eq!((alerts[1].rule.kind.as_str(), alerts[1].events.len()), ("value_count", 3));
}

#[test]
fn detections_alert_with_the_summary_rendered_from_the_event() {
    let events = vec![event(7, 500, "root", "10.9.9.9", "root"), event(8, 500, "root", "10.9.9.8", "root"), event(9, 600, "ok", "x", "y")];
    let alerts = replay_plan(plan(), cfg(1, 0), events).unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].summary, "root title: root from 10.9.9.9");
    assert_eq!((alerts[0].rule.kind.as_str(), alerts[0].value, alerts[0].window.start.0, alerts[0].window.end.0), ("detection", 1.0, 500, 500));
    assert_eq!(alerts[0].events, vec![EventRef { id: EventId(7), utctimestamp: EventTime(500) }]);
    assert!(alerts[0].group.is_empty());
    assert_ne!(alerts[0].id, alerts[1].id, "two matches in one millisecond keep distinct ids");
}

/// Random failures over a few sources and users, `span_ms` wide.
fn random_events(seed: u64, n: usize, span_ms: u64) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut events: Vec<Event> = (0..n)
        .map(|i| {
            let src = ["10.0.0.1", "10.0.0.2", "10.0.0.3"][rng.random_range(0..3)];
            let user = ["alice", "bob", "carol", "dave"][rng.random_range(0..4)];
            let result = ["fail", "fail", "fail", "ok", "root"][rng.random_range(0..5)];
            event(i as u128, rng.random_range(0..span_ms), result, src, user)
        })
        .collect();
    events.sort_by_key(|e| e.time);
    events
}

#[test]
fn same_alerts_in_order_shuffled_and_on_four_workers() {
    let events = random_events(3, 400, 120_000);
    let expected = replay_plan(plan(), cfg(1, 300_000), events.clone()).unwrap();
    assert!(expected.iter().any(|a| a.rule.id == "brute") && expected.iter().any(|a| a.rule.id == "spray") && expected.iter().any(|a| a.rule.id == "root"));
    let mut sorted = expected.clone();
    sorted.sort_by(|a, b| (a.utctimestamp, &a.rule.id).cmp(&(b.utctimestamp, &b.rule.id)));
    assert_eq!(sorted.iter().map(|a| a.utctimestamp).collect::<Vec<_>>(), expected.iter().map(|a| a.utctimestamp).collect::<Vec<_>>(), "alerts come in time order");
    let mut shuffled = events.clone();
    shuffled.shuffle(&mut SmallRng::seed_from_u64(9));
    // Lateness covers the whole span, so arrival order must not matter.
    assert_eq!(replay_plan(plan(), cfg(1, 300_000), shuffled.clone()).unwrap(), expected);
    assert_eq!(replay_plan(plan(), cfg(4, 300_000), shuffled).unwrap(), expected);
    assert_eq!(replay_plan(plan(), cfg(4, 300_000), events).unwrap(), expected);
}

#[test]
fn late_events_are_counted_not_correlated() {
    let engine = start_plan(plan(), cfg(2, 1_000), Arc::new(Metrics::new())).unwrap();
    let metrics_free = engine.alerts();
    let collector = std::thread::spawn(move || metrics_free.iter().collect::<Vec<_>>());
    let h = engine.handle();
    h.send_blocking(vec![Arc::new(event(1, 100_000, "fail", "a", "u"))]).unwrap();
    // 2 s behind the newest event with 1 s lateness: late. Two more on time make three
    // failures from `a` only if the late one were counted.
    h.send_blocking(vec![Arc::new(event(2, 98_000, "fail", "a", "u")), Arc::new(event(3, 100_500, "fail", "a", "u"))]).unwrap();
    assert_eq!(h.watermark(), EventTime(99_500));
    let report = engine.shutdown().unwrap();
    let alerts = collector.join().unwrap();
    assert_eq!((report.events, report.late), (3, 1));
    assert!(alerts.is_empty(), "{alerts:?}");
    // Control: the same event inside the lateness completes the window.
    let alerts = replay_plan(plan(), cfg(2, 5_000), vec![event(1, 100_000, "fail", "a", "u"), event(2, 98_000, "fail", "a", "u"), event(3, 100_500, "fail", "a", "u")]).unwrap();
    assert_eq!(alerts.iter().map(|a| (a.rule.id.as_str(), a.value)).collect::<Vec<_>>(), vec![("brute", 3.0)]);
}

#[test]
fn window_bounds_are_inclusive() {
    let fails = |times: &[u64]| times.iter().enumerate().map(|(i, t)| event(i as u128, *t, "fail", "s", "u")).collect::<Vec<_>>();
    let at_edge = replay_plan(plan(), cfg(1, 60_000), fails(&[1_000, 5_000, 11_000])).unwrap();
    assert_eq!(at_edge.iter().map(|a| (a.rule.id.as_str(), a.utctimestamp.0, a.window.start.0)).collect::<Vec<_>>(), vec![("brute", 11_000, 1_000)]);
    assert!(replay_plan(plan(), cfg(1, 60_000), fails(&[1_000, 5_000, 11_001])).unwrap().is_empty());
}

#[test]
fn suppression_drops_a_second_crossing_until_it_expires() {
    let plan = Plan::new(vec![detection("fail", "fail", false, vec![1]), correlation("brute", Measure::Events, 1_000, 2, 60_000)], 100);
    // Crossings at 1 s, 30 s (within 60 s: suppressed) and 62 s (fires).
    let times = [0, 1_000, 29_500, 30_000, 61_500, 62_000];
    let events: Vec<_> = times.iter().enumerate().map(|(i, t)| Arc::new(event(i as u128, *t, "fail", "s", "u"))).collect();
    let engine = start_plan(plan, cfg(1, 0), Arc::new(Metrics::new())).unwrap();
    let rx = engine.alerts();
    let collector = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
    engine.handle().send_blocking(events).unwrap();
    let report = engine.shutdown().unwrap();
    let alerts = collector.join().unwrap();
    assert_eq!(alerts.iter().map(|a| a.utctimestamp.0).collect::<Vec<_>>(), vec![1_000, 62_000]);
    assert_eq!((report.alerts, report.suppressed), (2, 1));
}

#[test]
fn shutdown_flushes_open_windows_and_ticks_close_them_earlier() {
    let metrics = Arc::new(Metrics::new());
    let engine = start_plan(plan(), cfg(2, 3_600_000), metrics.clone()).unwrap();
    let rx = engine.alerts();
    let h = engine.handle();
    let fails: Vec<_> = (0..3).map(|i| Arc::new(event(i, 1_000 + i as u64, "fail", "s", &format!("u{i}")))).collect();
    h.send_blocking(fails).unwrap();
    // The watermark is an hour behind: nothing can be final yet.
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    // A processing-time tick past the window end releases the crossings promptly.
    h.advance_to(EventTime(2_000));
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((first.rule.id.as_str(), first.utctimestamp.0), ("spray", 1_001));
    let second = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((second.rule.id.as_str(), second.utctimestamp.0), ("brute", 1_002));
    // Open windows flush at shutdown.
    h.send_blocking(vec![Arc::new(event(10, 5_000, "root", "s", "u"))]).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    let report = engine.shutdown().unwrap();
    assert_eq!(rx.iter().map(|a| a.rule.id).collect::<Vec<_>>(), vec!["root".to_string()]);
    assert_eq!(report, EngineReport { events: 4, late: 0, alerts: 3, suppressed: 0 });
    assert_eq!(metrics.get(rampart_core::Counter::AlertsFired), 3);
    assert_eq!(metrics.histogram(rampart_core::Stage::AcceptToAlert).len(), 3);
    assert!(matches!(h.send_blocking(vec![]), Err(EngineError::Closed)));
}

#[test]
fn send_waits_while_the_worker_is_full() {
    use std::future::Future;
    use std::task::{Context, Poll};
    let engine = start_plan(plan(), EngineConfig { workers: 1, lateness: Duration::ZERO, input_capacity: 1, alert_capacity: 1, ..EngineConfig::default() }, Arc::new(Metrics::new())).unwrap();
    let rx = engine.alerts();
    let h = engine.handle();
    // Three detection alerts, two of them final at once: the worker blocks emitting the
    // second into the one-slot alert channel nobody reads yet.
    h.send_blocking((1..=3).map(|i| Arc::new(event(i, i as u64, "root", "s", "u"))).collect()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !rx.is_full() {
        assert!(std::time::Instant::now() < deadline, "the alert channel never filled");
        std::thread::sleep(Duration::from_millis(5));
    }
    // One batch fits the worker's channel; the next must wait.
    h.send_blocking(vec![Arc::new(event(4, 4, "root", "s", "u"))]).unwrap();
    let mut pending = Box::pin(h.send(vec![Arc::new(event(5, 5, "root", "s", "u"))]));
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    assert!(matches!(pending.as_mut().poll(&mut cx), Poll::Pending), "send did not wait on a full channel");
    let collector = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
    futures::executor::block_on(pending).unwrap();
    engine.shutdown().unwrap();
    assert_eq!(collector.join().unwrap().iter().map(|a| a.events[0].id.0).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
}

/// A failure carrying `details.bytes`.
fn sized(id: u128, ms: u64, src: &str, bytes: Value) -> Event {
    let mut e = event(id, ms, "fail", src, "u");
    if let Some(Value::Object(d)) = e.doc.get_mut("details") {
        d.insert("bytes".into(), bytes);
    }
    e
}

/// 0 detects failures feeding 1 (sum of bytes per source over 10 s reaches 100) and 2
/// (mean bytes per source over 10 s falls under 10).
fn numeric_plan() -> Plan {
    let bytes = FieldPath::new("details.bytes");
    Plan::new(
        vec![
            detection("fail", "fail", false, vec![1, 2]),
            correlation_when("sum", Measure::Numeric(bytes.clone(), Aggregate::Sum), 10_000, Condition(vec![(Cmp::Gte, 100.0)]), 0),
            correlation_when("avg", Measure::Numeric(bytes, Aggregate::Avg), 10_000, Condition(vec![(Cmp::Lt, 10.0)]), 0),
        ],
        100,
    )
}

#[test]
fn numeric_correlations_read_numbers_and_numeric_strings_and_count_the_rest() {
    let metrics = Arc::new(Metrics::new());
    let engine = start_plan(numeric_plan(), cfg(1, 60_000), metrics.clone()).unwrap();
    let rx = engine.alerts();
    let collector = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
    let events = vec![
        sized(1, 1_000, "a", json!(60)),
        sized(2, 2_000, "a", json!("lots")),
        sized(3, 3_000, "a", json!(" 40.5 ")),
        // Mean of a: 60 → 50.25 → 33.5; the 60 leaves at 11.001 s (mean 20.25), the 40.5 at
        // 13.001 s (mean 0): the window [3.001, 13.001] holds only the 0.
        sized(4, 4_000, "a", json!(0)),
        sized(5, 5_000, "b", json!(true)),
    ];
    engine.handle().send_blocking(events.into_iter().map(Arc::new).collect()).unwrap();
    engine.shutdown().unwrap();
    let alerts = collector.join().unwrap();
    let brief: Vec<_> = alerts.iter().map(|a| (a.rule.id.as_str(), a.rule.kind.as_str(), a.utctimestamp.0, a.value)).collect();
    assert_eq!(brief, vec![("sum", "value_sum", 3_000, 100.5), ("avg", "value_sum", 13_001, 0.0)]);
    assert_eq!(alerts[0].events.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![1, 3], "the non-numeric event is not part of it");
    assert_eq!(alerts[1].events.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![4]);
    assert_eq!((alerts[1].window.start.0, alerts[1].window.end.0), (3_001, 13_001));
    assert_eq!(alerts[0].summary, format!("sum a 100.5 [{}]", EventTime(0).to_rfc3339()));
    // "lots" and `true`, once for each of the two rules.
    assert_eq!(metrics.get(rampart_core::Counter::CorrelationValuesIgnored), 4);
}

#[test]
fn numeric_correlations_are_the_same_on_four_workers_and_shuffled() {
    let mut rng = SmallRng::seed_from_u64(5);
    let events: Vec<Event> = (0..300)
        .map(|i| {
            let src = ["a", "b", "c"][rng.random_range(0..3)];
            let bytes = [json!(1), json!(5), json!("20"), json!(50), json!("x"), json!(2.5)][rng.random_range(0..6)].clone();
            sized(i, rng.random_range(0..120_000), src, bytes)
        })
        .collect();
    let expected = replay_plan(numeric_plan(), cfg(1, 300_000), events.clone()).unwrap();
    assert!(expected.iter().any(|a| a.rule.id == "sum") && expected.iter().any(|a| a.rule.id == "avg"));
    let mut shuffled = events.clone();
    shuffled.shuffle(&mut SmallRng::seed_from_u64(1));
    assert_eq!(replay_plan(numeric_plan(), cfg(4, 300_000), shuffled.clone()).unwrap(), expected);
    assert_eq!(replay_plan(numeric_plan(), cfg(2, 300_000), shuffled).unwrap(), expected);
}

#[test]
fn absence_fires_when_the_watermark_passes_the_deadline_and_not_before() {
    // "fail" not followed by "ok" from the same source within 10 s.
    let mut ok = detection("ok", "ok", false, vec![]);
    if let KindPlan::Detection { feeds, .. } = &mut ok.kind {
        feeds.push(plan::Feed::to(1, 1));
    }
    let plan = Plan::new(vec![detection("fail", "fail", false, vec![1]), correlation_when("gone", Measure::Absence, 10_000, Condition::at_least(1), 0), ok], 100);
    let engine = start_plan(plan, cfg(1, 0), Arc::new(Metrics::new())).unwrap();
    let rx = engine.alerts();
    let h = engine.handle();
    h.send_blocking(vec![Arc::new(event(1, 1_000, "fail", "a", "u")), Arc::new(event(2, 1_000, "fail", "b", "u"))]).unwrap();
    h.send_blocking(vec![Arc::new(event(3, 5_000, "ok", "b", "u"))]).unwrap();
    // The watermark at the deadline (11 s) is not past it: nothing yet.
    h.advance_to(EventTime(11_000));
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "fired before the deadline had passed");
    // One millisecond later the deadline is final: `a` fires (b was followed), with no
    // further events and without shutting down.
    h.advance_to(EventTime(11_001));
    let alert = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((alert.rule.id.as_str(), alert.utctimestamp.0, alert.group.clone()), ("gone", 11_000, group("a")));
    assert_eq!(alert.events.iter().map(|r| r.id.0).collect::<Vec<_>>(), vec![1]);
    assert_eq!((alert.window.start.0, alert.window.end.0), (1_000, 11_000));
    engine.shutdown().unwrap();
    assert!(rx.iter().next().is_none());
}

#[test]
fn rejects_zero_workers() {
    let err = start_plan(plan(), cfg(0, 0), Arc::new(Metrics::new())).unwrap_err();
    assert!(matches!(err, EngineError::Config(_)), "{err}");
}

#[test]
fn engine_and_handle_cross_threads() {
    fn check<T: Send + 'static>() {}
    fn shared<T: Send + Sync + 'static>() {}
    check::<Engine>();
    shared::<Handle>();
    shared::<EngineError>();
    // Handle::send's future may move between executor threads.
    #[allow(dead_code)]
    fn future_is_send(h: &Handle) {
        fn is_send<F: Send>(_: &F) {}
        is_send(&h.send(Vec::new()));
    }
}
