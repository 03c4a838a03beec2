//! The plugin chain's cost per event: the built-ins enabled (`field_limit`, `drop` by field
//! match, `ipfixup`, `geoip` on a small test database, `enrich` against a CIDR list) over a
//! mix of typical events (sshd, sudo, nginx access, CloudTrail, Suricata alert, a syslog line
//! no plugin wants), and the same with a VRL script added. Target: the built-ins under 2 µs
//! per event per core.
//!
//! `cargo bench -p rampart-perf --bench plugins`; criterion prints elements/s, the inverse is
//! the cost per event (the events are cloned outside the measured part).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rampart_connectors::plugins::chain::Registered;
use rampart_connectors::plugins::drop::{DropConfig, DropFilter};
use rampart_connectors::plugins::enrich::{Enrich, EnrichConfig};
use rampart_connectors::plugins::fieldlimit::{FieldLimit, FieldLimitConfig};
use rampart_connectors::plugins::geoip::{testdb, GeoIp};
use rampart_connectors::plugins::ipfixup::{IpFixup, IpFixupConfig};
use rampart_connectors::plugins::lookup::{ListConfig, LookupsConfig};
use rampart_connectors::plugins::vrl::{OnBudget, Vrl, VrlConfig};
use rampart_connectors::plugins::{Chain, Lookups};
use rampart_core::{Event, EventId, Metrics, Normalizer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn typical() -> Vec<Event> {
    let docs: Vec<Value> = vec![
        json!({"utctimestamp": "2026-03-05T12:00:00Z", "hostname": "bastion1", "processname": "sshd", "summary": "Failed password for invalid user admin from 81.2.69.160 port 52144 ssh2", "category": "authentication", "tags": ["syslog"], "details": {"program": "sshd", "username": "admin", "sourceipaddress": "81.2.69.160", "sourceport": 52144, "result": "failure"}}),
        json!({"utctimestamp": "2026-03-05T12:00:01Z", "hostname": "web3", "processname": "sudo", "summary": "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx", "category": "privilege", "details": {"program": "sudo", "username": "alice", "command": "/usr/bin/systemctl restart nginx"}}),
        json!({"utctimestamp": "2026-03-05T12:00:02Z", "hostname": "web3", "summary": "GET /wp-login.php 404", "category": "webserver", "details": {"sourceipaddress": "8.8.8.8", "request": "GET /wp-login.php HTTP/1.1", "status": 404, "bytes": 512, "useragent": "Mozilla/5.0 (compatible; scanner)"}}),
        json!({"utctimestamp": "2026-03-05T12:00:03Z", "summary": "ConsoleLogin", "category": "cloudtrail", "source": "cloudtrail", "details": {"eventname": "ConsoleLogin", "eventsource": "signin.amazonaws.com", "awsregion": "us-east-1", "sourceipaddress": "203.0.113.7", "useridentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/bob", "username": "bob"}, "responseelements": {"ConsoleLogin": "Success"}}}),
        json!({"utctimestamp": "2026-03-05T12:00:04Z", "summary": "ET SCAN Nmap Scripting Engine User-Agent Detected", "category": "ids", "details": {"event_type": "alert", "sourceipaddress": "10.1.2.3", "destinationipaddress": "81.2.69.10", "src_port": 44321, "dest_port": 80, "proto": "TCP", "alert": {"signature_id": 2009358, "signature": "ET SCAN Nmap Scripting Engine User-Agent Detected", "severity": 2}}}),
        json!({"utctimestamp": "2026-03-05T12:00:05Z", "hostname": "db1", "summary": "kernel: [12345.678] EXT4-fs (sda1): mounted filesystem with ordered data mode", "category": "syslog", "details": {"program": "kernel"}}),
    ];
    let n = Normalizer::default();
    (0..1024).filter_map(|i| n.normalize(docs[i % docs.len()].clone(), EventId(i as u128)).ok()).collect()
}

fn builtins(lookups: &Arc<Lookups>) -> Vec<Registered> {
    let geo = GeoIp::from_bytes(testdb::sample(), "en").unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let filter = DropFilter::new(&DropConfig { match_fields: BTreeMap::from([("program".to_string(), json!("CRON"))]), rules: vec![], reason: None }).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let enrich = Enrich::new(&EnrichConfig { list: Some("internal".into()), key: "details.sourceipaddress".into(), tag: Some("internal_source".into()), ..Default::default() }, lookups.clone()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    vec![
        Registered::new(Box::new(FieldLimit::new(&FieldLimitConfig::default()))),
        Registered::new(Box::new(filter)),
        Registered::new(Box::new(IpFixup::new(IpFixupConfig { classify: true }))),
        Registered::new(Box::new(geo)),
        Registered::new(Box::new(enrich)),
    ]
}

fn chain(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("rampart-bench-plugins-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let nets = dir.join("internal.txt");
    let _ = std::fs::write(&nets, "10.0.0.0/8\n172.16.0.0/12\n192.168.0.0/16\n");
    let lookups = Arc::new(Lookups::load(&LookupsConfig { lists: vec![ListConfig { name: "internal".into(), path: nets }], ..Default::default() }, None).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    }));
    let metrics = Arc::new(Metrics::new());
    let events = typical();

    let mut g = c.benchmark_group("plugins");
    g.throughput(Throughput::Elements(events.len() as u64));
    let builtin = Chain::new(builtins(&lookups), metrics.clone());
    g.bench_function("builtins_1024_typical_events", |b| b.iter_batched(|| events.clone(), |mut evs| black_box(builtin.apply(&mut evs)), BatchSize::LargeInput));

    let script = ".tags = push(array(.tags) ?? [], \"seen\")\nif .category == \"webserver\" { %index = \"web\" }\n";
    let vrl = Vrl::compile("tag", "bench.vrl", script, &VrlConfig { file: "bench.vrl".into(), budget: Duration::from_millis(1), on_budget: OnBudget::Keep }, &lookups, metrics.clone()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let mut with_vrl = builtins(&lookups);
    with_vrl.push(Registered::new(Box::new(vrl)));
    let with_vrl = Chain::new(with_vrl, metrics.clone());
    g.bench_function("builtins_and_vrl_1024_typical_events", |b| b.iter_batched(|| events.clone(), |mut evs| black_box(with_vrl.apply(&mut evs)), BatchSize::LargeInput));

    let empty = Chain::empty(metrics.clone());
    g.bench_function("empty_chain_1024_typical_events", |b| b.iter_batched(|| events.clone(), |mut evs| black_box(empty.apply(&mut evs)), BatchSize::LargeInput));
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = chain
}
criterion_main!(benches);
