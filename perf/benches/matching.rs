//! Rule matching over normalized events, for the shipped library and for scenario 2's 1,000
//! generated rules: every detection evaluated in turn (`*_every_rule`), and through the
//! prefiltered `RuleMatcher` the engine uses (`*_prefiltered`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart_core::EventTime;
use rampart_rules::{RuleKind, RuleMatcher, RuleSet};
use std::hint::black_box;

fn detections(set: &RuleSet) -> Vec<&rampart_rules::Detection> {
    set.rules.iter().filter_map(|r| match &r.kind {
        RuleKind::Detection(d) => Some(d),
        _ => None,
    }).collect()
}

fn matching(c: &mut Criterion) {
    let start = EventTime(1_767_225_600_000);
    let events = rampart_perf::gen::normalize(rampart_perf::gen::mixed(7, 1024, start, 2_000), start, 2_000);
    let library = match rampart_rules::load_paths(&["../rules/library"]) {
        Ok(s) => s,
        Err(d) => {
            eprintln!("rules/library does not load: {d}");
            return;
        }
    };
    let generated = match rampart_rules::load_str("threshold-rules.yml", &rampart_perf::gen::threshold_rules(1000)) {
        Ok(s) => s,
        Err(d) => {
            eprintln!("generated rules do not load: {d}");
            return;
        }
    };
    let mut g = c.benchmark_group("matching");
    g.throughput(Throughput::Elements(events.len() as u64));
    for (name, set) in [("library_rules_1024_events", &library), ("1000_generated_rules_1024_events", &generated)] {
        let dets = detections(set);
        g.bench_function(format!("{name}_every_rule"), |b| {
            b.iter(|| {
                let mut hits = 0usize;
                for e in &events {
                    for d in &dets {
                        hits += usize::from(d.matches(e));
                    }
                }
                black_box(hits)
            })
        });
        let matcher = RuleMatcher::new(set);
        g.bench_function(format!("{name}_prefiltered"), |b| {
            let mut hits = Vec::new();
            b.iter(|| {
                let mut n = 0usize;
                for e in &events {
                    hits.clear();
                    matcher.matches(&e.doc, &mut hits);
                    n += hits.len();
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, matching);
criterion_main!(benches);
