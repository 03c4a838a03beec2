//! The plugin chain in front of the Elasticsearch output, against a real OpenSearch node: a
//! VRL script reroutes VPN events into their own index under their own `_id`, the drop
//! plugin removes noise (counted, its delivery settled as handled, nothing stored), and the
//! other events keep the default index and id, each listing the plugins that ran on it.
//!
//! The node is `RAMPART_TEST_ES_URL` (default `http://127.0.0.1:9200`); when it does not
//! answer the test fails and says how to start it. The test works under its own index
//! prefix and deletes it at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_connectors::elasticsearch::{ElasticsearchConfig, ElasticsearchOutput};
use rampart_connectors::plugins::chain::Registered;
use rampart_connectors::plugins::drop::{DropConfig, DropFilter};
use rampart_connectors::plugins::ipfixup::{IpFixup, IpFixupConfig};
use rampart_connectors::plugins::vrl::{OnBudget, Vrl, VrlConfig};
use rampart_connectors::plugins::{Chain, Lookups};
use rampart_connectors::{EventBatch, Sink};
use rampart_core::{AckStatus, AckToken, Counter, Event, EventId, Metrics, Normalizer};
use rampart_tests::services::{es_url, unique, Es};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn event(n: u64, doc: Value) -> Event {
    let raw = doc.to_string();
    Normalizer::default().normalize(doc, EventId::derive("plugins-es", n, raw.as_bytes())).unwrap()
}

#[tokio::test]
async fn reroute_and_drop_reach_opensearch_as_the_plugins_decided() {
    let url = es_url();
    let es = Es::connect(&url).await;
    let p = unique("plugins");
    let metrics = Arc::new(Metrics::new());

    // The chain: ipfixup, a drop of cron noise, and a VRL script that routes VPN sessions.
    let script = format!("if .details.program == \"openvpn\" {{\n  %index = \"{p}-vpn\"\n  %doc_id = \"session-\" + string!(.details.session)\n  .tags = push(array(.tags) ?? [], \"vpn\")\n}}\n");
    let vrl_cfg = VrlConfig { file: "route.vrl".into(), budget: Duration::from_millis(50), on_budget: OnBudget::Keep };
    let vrl = Vrl::compile("route_vpn", "route.vrl", &script, &vrl_cfg, &Arc::new(Lookups::default()), metrics.clone()).unwrap();
    let filter = DropFilter::new(&DropConfig { match_fields: BTreeMap::from([("program".into(), json!("CRON"))]), rules: vec![], reason: Some("cron noise".into()) }).unwrap();
    let chain = Chain::new(vec![Registered::new(Box::new(IpFixup::new(IpFixupConfig { classify: true }))), Registered::new(Box::new(filter)), Registered::new(Box::new(vrl))], metrics.clone());

    let settled: Arc<Mutex<BTreeMap<String, AckStatus>>> = Arc::default();
    let token = |name: &str| {
        let (s, name) = (settled.clone(), name.to_string());
        AckToken::new(move |status, _| {
            s.lock().unwrap().insert(name, status);
        })
    };
    let mut batch = vec![
        event(1, json!({"utctimestamp": "2026-03-05T12:00:00Z", "summary": "openvpn: alice connected", "details": {"program": "openvpn", "session": "77", "sourceipaddress": "8.8.8.8:1194"}})),
        event(2, json!({"utctimestamp": "2026-03-05T12:00:01Z", "summary": "pam_unix(cron:session): session opened for user root", "details": {"program": "CRON"}})),
        event(3, json!({"utctimestamp": "2026-03-05T12:00:02Z", "summary": "Accepted publickey for bob", "details": {"program": "sshd", "sourceipaddress": "10.0.0.5"}})),
    ];
    for (e, name) in batch.iter_mut().zip(["vpn", "cron", "sshd"]) {
        e.ack = Some(token(name));
    }
    assert_eq!(chain.apply(&mut batch), 1);
    assert_eq!(metrics.get(Counter::EventsPluginDropped), 1);
    assert_eq!(settled.lock().unwrap().get("cron"), Some(&AckStatus::Delivered), "the dropped delivery is settled as handled");
    let sshd_id = batch[1].id.to_string();

    let cfg = ElasticsearchConfig {
        events_index: format!("{p}-events"),
        alerts_index: format!("{p}-alerts"),
        dead_letter_index: format!("{p}-deadletter"),
        replicas: 0,
        flush_interval: Duration::from_millis(100),
        ..ElasticsearchConfig::new(url.clone())
    };
    let mut out = ElasticsearchOutput::new(cfg, metrics.clone()).unwrap();
    out.connect().await.unwrap();
    let acks = batch.iter_mut().map(|e| e.ack.take()).collect();
    out.write_events(EventBatch { events: Arc::new(batch.into_iter().map(Arc::new).collect()), acks }).await.unwrap();
    out.flush().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while settled.lock().unwrap().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "tokens not settled: {:?}", settled.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(settled.lock().unwrap().values().filter(|s| **s == AckStatus::Delivered).count(), 3);

    let vpn = es.docs(&format!("{p}-vpn-20260305")).await;
    assert_eq!(vpn.keys().collect::<Vec<_>>(), ["session-77"], "rerouted under the script's index and id");
    let doc = &vpn["session-77"];
    assert_eq!(doc["tags"], json!(["vpn"]));
    assert_eq!(doc["details"]["sourceipaddress"], "8.8.8.8");
    assert_eq!(doc["plugins"], json!(["ipfixup", "route_vpn"]));

    let events = es.docs(&format!("{p}-events-20260305")).await;
    assert_eq!(events.keys().collect::<Vec<_>>(), [&sshd_id], "the sshd event keeps the default index and id; the cron one is not stored");
    assert_eq!(events[&sshd_id]["details"]["sourceipaddress_class"], "private");
    assert_eq!(events[&sshd_id]["plugins"], json!(["ipfixup", "route_vpn"]));
    es.cleanup(&p).await;
}
