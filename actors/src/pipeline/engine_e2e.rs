//! The pipeline around the real engine and a real (tiny) rule set: a file in, daily files
//! out. Nothing advances the watermark past the events (a replay), so every alert here
//! comes out of the engine's flush during the ordered shutdown: the test fails if the
//! pipeline closed its outputs before the engine had drained.

use super::*;
use rampart_connectors::file::FileConfig;
use rampart_connectors::ndjson::FileOutputConfig;
use rampart_connectors::{InputConfig, OutputConfig};
use rampart_engine::EngineConfig;

const RULES: &str = r#"
title: Failed sshd password
id: 11111111-0000-4000-8000-000000000001
name: sshd_failed
detection:
  selection:
    processname: sshd
    summary|startswith: 'Failed password for '
  condition: selection
---
title: Brute force
id: 11111111-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [sshd_failed]
  group-by: [details.sourceipaddress]
  timespan: 1m
  condition:
    gte: 5
level: high
summary: 'brute force from {{ details.sourceipaddress }}'
---
title: Root login
id: 11111111-0000-4000-8000-000000000003
detection:
  selection:
    processname: sshd
    summary|startswith: 'Accepted '
    details.username: root
  condition: selection
level: high
"#;

#[actix_rt::test]
async fn real_engine_end_to_end_with_flush_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson");
    let mut text = String::new();
    for i in 0..6 {
        text.push_str(&format!(
            "{{\"utctimestamp\":\"2026-03-01T10:00:0{i}Z\",\"processname\":\"sshd\",\"summary\":\"Failed password for root from 203.0.113.7 port {i} ssh2\",\"details\":{{\"sourceipaddress\":\"203.0.113.7\"}}}}\n"
        ));
    }
    text.push_str("{\"utctimestamp\":\"2026-03-01T10:00:07Z\",\"processname\":\"sshd\",\"summary\":\"Accepted password for root from 10.0.1.5 port 2 ssh2\",\"details\":{\"username\":\"root\",\"sourceipaddress\":\"10.0.1.5\"}}\n");
    text.push_str("{\"utctimestamp\":\"2026-03-01T10:00:08Z\",\"processname\":\"sshd\",\"summary\":\"Failed password for bob from 10.9.9.9 port 2 ssh2\",\"details\":{\"sourceipaddress\":\"10.9.9.9\"}}\n");
    std::fs::write(&input, text).unwrap();
    let data = dir.path().join("data");

    let rules = Arc::new(rampart_rules::load_str("e2e.yml", RULES).unwrap_or_else(|d| panic!("{d:?}")));
    let metrics = Arc::new(Metrics::new());
    let engine = rampart_engine::start(rules, EngineConfig { workers: 2, ..Default::default() }, metrics.clone()).unwrap();
    let spec = PipelineSpec {
        inputs: vec![InputConfig::File(FileConfig::new(input.to_str().unwrap()))],
        outputs: vec![OutputConfig::File(FileOutputConfig { dir: data.clone(), ..Default::default() })],
        normalizer: NormalizerConfig::default(),
        processing_time_watermark: None,
        plugins: None,
    };
    let report = tokio::time::timeout(Duration::from_secs(30), run_pipeline(spec, engine, metrics, futures::future::pending())).await.expect("ends at EOF").unwrap();

    assert_eq!(report.accepted, 8);
    assert_eq!(report.events_written, 8);
    assert_eq!(report.late, 0);
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(data.join("alerts-20260301.ndjson")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let titles: Vec<&str> = alerts.iter().map(|a| a["rule"]["title"].as_str().unwrap()).collect();
    assert_eq!(titles.iter().filter(|t| **t == "Brute force").count(), 1, "{alerts:#?}");
    assert_eq!(titles.iter().filter(|t| **t == "Root login").count(), 1, "{alerts:#?}");
    let brute = alerts.iter().find(|a| a["rule"]["title"] == "Brute force").unwrap();
    assert_eq!(brute["group"]["details.sourceipaddress"], "203.0.113.7");
    assert_eq!(brute["value"], 5, "fires once, at the crossing");
    assert_eq!(report.alerts, alerts.len() as u64);
    assert_eq!(report.alerts_written, alerts.len() as u64);
    // Event references point at ids in the events file.
    let events = std::fs::read_to_string(data.join("events-20260301.ndjson")).unwrap();
    for r in brute["events"].as_array().unwrap() {
        assert!(events.contains(r["id"].as_str().unwrap()), "{r}");
    }
}

/// The demo generator and the shipped rule library agree: twenty minutes of demo traffic
/// trip every planted attack's rule, and background traffic trips nothing else.
#[test]
fn demo_traffic_trips_every_shipped_attack_rule_and_nothing_else() {
    let library = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/library");
    let rules = Arc::new(rampart_rules::load_paths(&[library]).unwrap_or_else(|d| panic!("{d:?}")));
    let start = EventTime(1_795_000_000_000);
    let normalizer = Normalizer::default();
    let events: Vec<Event> = rampart_connectors::demo::generate(42, start, 4800, 250)
        .into_iter()
        .enumerate()
        .map(|(i, v)| normalizer.normalize_at(v, rampart_core::EventId(i as u128), start).unwrap())
        .collect();
    let alerts = rampart_engine::replay(rules, EngineConfig::default(), events).unwrap();
    let mut titles: Vec<&str> = alerts.iter().map(|a| a.rule.title.as_str()).collect();
    titles.sort();
    titles.dedup();
    // A brute force ends in a successful login: the sequence rule, and when the attacker
    // guessed root's password, the root-login rule, fire on the planted attacker only.
    assert!(
        alerts.iter().filter(|a| a.rule.title.starts_with("SSH login accepted") || a.rule.title == "Direct root login over SSH").all(|a| {
            let ip = a.group.get("details.sourceipaddress").and_then(|v| v.as_str()).map(str::to_string);
            ip.or_else(|| a.summary.split_whitespace().last().map(str::to_string)).is_some_and(|ip| ip.starts_with("203.0.113."))
        }),
        "{alerts:#?}"
    );
    let expected = [
        "Direct root login over SSH",
        "Network interface in promiscuous mode",
        "Port scan from one source",
        "Repeated sudo refusals for one user",
        "SSH brute force from one source",
        "SSH login accepted after repeated failures from the same source",
        "SSH password spraying",
        "User not in sudoers",
        "Web scanner",
    ];
    assert_eq!(titles, expected, "{alerts:#?}");
}
