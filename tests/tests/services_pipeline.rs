//! The whole stack, through the built binary, against the real services: events published
//! to RabbitMQ in MozDef's shape go through `rampart run` (the shipped rules, the real
//! engine) into OpenSearch, and the alert they raise lands in `alerts-*` and on the `alerts`
//! exchange; an OpenSearch outage holds the AMQP acknowledgements and, after a crash and a
//! restart, redelivery stores every event exactly once.
//!
//! Services: `RAMPART_TEST_AMQP_URL` and `RAMPART_TEST_ES_URL` (docs/testing.md); the outage
//! test starts a second OpenSearch node of its own with `scripts/services/opensearch.sh`.
//! Missing services fail the tests, naming what to start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::Channel;
use rampart_tests::services::{amqp_url, broker, consumers, depth, es_url, header, publish, unique, Es, Node, RampartProcess};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Waits up to `secs` for `cond` (which may `.await`), failing with `what` and the log.
macro_rules! wait_for {
    ($secs:expr, $what:expr, $rampart:expr, $cond:expr) => {{
        let start = Instant::now();
        loop {
            if $cond {
                break;
            }
            if start.elapsed() > Duration::from_secs($secs) {
                panic!("timed out after {} s waiting for {}\n{}", $secs, $what, $rampart.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }};
}

struct Names {
    events_exchange: String,
    queue: String,
    dead_letters: String,
    alerts_exchange: String,
    alerts_queue: String,
    prefix: String,
}

impl Names {
    fn new(test: &str) -> Names {
        let base = unique(test);
        Names {
            events_exchange: format!("{base}.eventtask"),
            queue: format!("{base}.eventtask"),
            dead_letters: format!("{base}.deadletter"),
            alerts_exchange: format!("{base}.alerts"),
            alerts_queue: format!("{base}.alerts"),
            prefix: base,
        }
    }

    /// The production shape: AMQP in (MozDef's topology under test names), the shipped rule
    /// library, Elasticsearch out for events and alerts, alerts also to an AMQP exchange.
    fn config(&self, es: &str) -> String {
        let amqp = amqp_url();
        format!(
            r#"engine:
  lateness: 5s
inputs:
  - type: amqp
    url: "{amqp}"
    exchange: {ex}
    queue: {q}
    routing_key: eventtask
    dead_letter_exchange: {dl}
    prefetch: 100
    requeue_delay: 200ms
    drain_timeout: 2s
outputs:
  - type: elasticsearch
    url: "{es}"
    events_index: {p}-events
    alerts_index: {p}-alerts
    dead_letter_index: {p}-deadletter
    replicas: 0
    flush_interval: 100ms
    retry_initial: 100ms
    retry_max: 1s
    retry_for: 10m
    connect_timeout: 30s
  - type: amqp
    url: "{amqp}"
    exchange: {aex}
    queue: {aq}
  - type: stdout
"#,
            ex = self.events_exchange,
            q = self.queue,
            dl = self.dead_letters,
            p = self.prefix,
            aex = self.alerts_exchange,
            aq = self.alerts_queue,
        )
    }

    async fn cleanup(&self, ch: &Channel, es: &Es) {
        for q in [&self.queue, &self.dead_letters, &self.alerts_queue] {
            let _ = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
        }
        for x in [&self.events_exchange, &self.dead_letters, &self.alerts_exchange] {
            let _ = ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await;
        }
        es.cleanup(&self.prefix).await;
    }
}

/// One failed sshd password from `ip`, `secs_ago` seconds before now, as MozDef's
/// loginput would have published it. Its time is `n` ms later than that, so events sent in a
/// tight loop never share a millisecond (a crossing counts every event at its time: two at
/// one millisecond would take a count from 9 to 11).
fn failed_password(ip: &str, n: u64, secs_ago: i64) -> Vec<u8> {
    let t = chrono::Utc::now() - chrono::Duration::seconds(secs_ago) + chrono::Duration::milliseconds(n as i64);
    json!({
        "utctimestamp": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "hostname": "bastion1",
        "processname": "sshd",
        "category": "authentication",
        "summary": format!("Failed password for root from {ip} port {} ssh2", 40000 + n),
        "details": {"sourceipaddress": ip, "username": "root", "success": false}
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_events_reach_opensearch_and_their_alert_reaches_alerts_and_the_exchange() {
    let es = Es::connect(&es_url()).await;
    let (_conn, ch) = broker().await;
    let names = Names::new("stack");
    let dir = tempfile::tempdir().unwrap();
    let rampart = RampartProcess::start(dir.path(), &names.config(&es_url()));
    wait_for!(60, "rampart to consume its queue", rampart, consumers(&names.queue).await == 1);

    // Twelve failed passwords from one source, just now (older than the 5 s lateness would
    // be late: stored, not correlated): the shipped "SSH brute force from one source" rule
    // fires once, when the processing-time watermark passes them. One message is not JSON.
    for n in 0..12u64 {
        publish(&ch, &names.events_exchange, "eventtask", &failed_password("203.0.113.77", n, 0), Some(&format!("m{n}"))).await;
    }
    publish(&ch, &names.events_exchange, "eventtask", b"this is not json", Some("poison")).await;

    let events = format!("{}-events-*", names.prefix);
    wait_for!(60, "12 events in OpenSearch", rampart, es.count(&events).await == 12);
    let docs = es.docs(&events).await;
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    let ids: BTreeSet<&String> = docs.keys().collect();
    assert_eq!(ids.len(), 12);
    for (id, doc) in &docs {
        assert_eq!(id.len(), 32, "document ids are event ids: {id}");
        assert_eq!(doc["id"], id.as_str(), "the document carries its id: {doc}");
        assert!(doc["@timestamp"].is_string() && doc["summary"].as_str().unwrap().starts_with("Failed password"), "{doc}");
    }
    // The day's index, its aliases and its mapping.
    let index = format!("{}-events-{today}", names.prefix);
    let aliases = es.aliases(&format!("{}-events,{}-events-previous", names.prefix, names.prefix)).await;
    assert_eq!(aliases.get(&index).map(|a| a.contains(&format!("{}-events", names.prefix))), Some(true), "{aliases:?}");
    let mapping = es.get(&format!("/{index}/_mapping")).await;
    let props = &mapping[&index]["mappings"]["properties"];
    assert_eq!(props["@timestamp"]["type"], "date", "{props}");
    assert_eq!(props["utctimestamp"]["type"], "date");
    assert_eq!(props["summary"]["type"], "text");
    assert_eq!(props["hostname"]["type"], "keyword");
    assert_eq!(props["details"]["properties"]["sourceipaddress"]["type"], "ip");

    // The alert: in the monthly alerts index behind the alias, and on the exchange.
    let alerts_alias = format!("{}-alerts", names.prefix);
    wait_for!(60, "the brute-force alert in OpenSearch", rampart, es.count(&alerts_alias).await == 1);
    let alerts = es.docs(&alerts_alias).await;
    let (alert_id, alert) = alerts.iter().next().unwrap();
    assert_eq!(alert["rule"]["title"], "SSH brute force from one source", "{alert}");
    assert_eq!(alert["group"]["details.sourceipaddress"], "203.0.113.77", "{alert}");
    assert_eq!(alert["value"], 10);
    let referenced: BTreeSet<String> = alert["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(referenced.len(), 10);
    assert!(referenced.iter().all(|id| docs.contains_key(id)), "the alert references stored events");
    let month = chrono::Utc::now().format("%Y%m").to_string();
    assert!(es.aliases(&alerts_alias).await.contains_key(&format!("{}-alerts-{month}", names.prefix)));

    let published = std::cell::RefCell::new(None);
    wait_for!(30, "the alert on the alerts exchange", rampart, {
        *published.borrow_mut() = ch.basic_get(names.alerts_queue.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap();
        published.borrow().is_some()
    });
    let msg = published.into_inner().unwrap();
    let body: Value = serde_json::from_slice(&msg.delivery.data).unwrap();
    assert_eq!(body["id"], alert_id.as_str());
    assert_eq!(msg.delivery.properties.message_id().as_ref().map(|m| m.as_str()), Some(alert_id.as_str()));
    assert_eq!(msg.delivery.routing_key.as_str(), "mozdef.alert");

    // Every stored event is acknowledged; the poison message waits in the dead letters
    // with its reason.
    wait_for!(30, "the queue to drain", rampart, depth(&names.queue).await == (0, 0));
    let dead = ch.basic_get(names.dead_letters.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("the poison message is dead-lettered");
    assert_eq!(&dead.delivery.data[..], b"this is not json");
    let reason = header(&dead.delivery, "x-rampart-reason");
    assert!(reason.contains("not JSON"), "{reason}");

    drop(rampart);
    names.cleanup(&ch, &es).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opensearch_outage_holds_acks_and_a_crash_loses_and_duplicates_nothing() {
    let node = Node::start();
    let es = Es::connect(&node.url).await;
    let (_conn, ch) = broker().await;
    let names = Names::new("outage");
    let dir = tempfile::tempdir().unwrap();
    let config = names.config(&node.url);
    let mut rampart = RampartProcess::start(dir.path(), &config);
    wait_for!(60, "rampart to consume its queue", rampart, consumers(&names.queue).await == 1);
    let events = format!("{}-events-*", names.prefix);

    // Stored while the node is up, and acknowledged.
    for n in 0..5u64 {
        publish(&ch, &names.events_exchange, "eventtask", &failed_password("198.51.100.1", n, 5), Some(&format!("a{n}"))).await;
    }
    wait_for!(60, "5 events stored", rampart, es.count(&events).await == 5);
    wait_for!(30, "5 acks", rampart, depth(&names.queue).await == (0, 0));

    // The node goes down: new messages are taken but not acknowledged.
    node.script("stop");
    for n in 0..5u64 {
        publish(&ch, &names.events_exchange, "eventtask", &failed_password("198.51.100.2", n, 5), Some(&format!("b{n}"))).await;
    }
    wait_for!(30, "5 unacknowledged deliveries", rampart, depth(&names.queue).await == (0, 5));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(depth(&names.queue).await, (0, 5), "nothing is acknowledged while the store is down");

    // Rampart crashes: the broker takes the five back.
    rampart.kill();
    wait_for!(30, "the deliveries back in the queue", rampart, depth(&names.queue).await == (5, 0));

    // The node and Rampart come back: the five are redelivered and stored; a publisher's
    // retry of an already stored message (same message id and body) is stored once.
    node.script("start");
    let mut rampart = RampartProcess::start(dir.path(), &config);
    publish(&ch, &names.events_exchange, "eventtask", &failed_password("198.51.100.1", 0, 5), Some("a0")).await;
    wait_for!(90, "10 events stored", rampart, es.count(&events).await >= 10);
    wait_for!(30, "every delivery acknowledged", rampart, depth(&names.queue).await == (0, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let docs = es.docs(&events).await;
    assert_eq!(docs.len(), 10, "each event exactly once: {:?}", docs.keys());
    let summaries: BTreeSet<String> = docs.values().map(|d| d["summary"].as_str().unwrap().to_string()).collect();
    assert_eq!(summaries.len(), 10, "{summaries:?}");
    assert_eq!(rampart.stop(Duration::from_secs(20)).map(|s| s.success()), Some(true), "{}", rampart.log());

    names.cleanup(&ch, &es).await;
    drop(node);
}
