//! JSON parse + normalize: raw sender bytes (the demo generator's traffic, as an input
//! receives it) → `serde_json::Value` → normalized [`rampart_core::Event`].

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rampart_core::{EventId, EventTime, Normalizer, NormalizerConfig};
use std::hint::black_box;

fn parse_normalize(c: &mut Criterion) {
    let start = EventTime(1_767_225_600_000);
    let lines: Vec<Vec<u8>> = rampart_perf::gen::mixed(7, 1024, start, 2_000).iter().filter_map(|v| serde_json::to_vec(v).ok()).collect();
    let bytes: usize = lines.iter().map(Vec::len).sum();
    let normalizer = Normalizer::new(NormalizerConfig::default());
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("json_parse_1024_events", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_slice::<serde_json::Value>(l).ok());
            }
        })
    });
    g.bench_function("json_parse_and_normalize_1024_events", |b| {
        b.iter(|| {
            for (i, l) in lines.iter().enumerate() {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(l) {
                    black_box(normalizer.normalize_at(v, EventId::derive("bench", i as u64, l), start).ok());
                }
            }
        })
    });
    let values: Vec<serde_json::Value> = lines.iter().filter_map(|l| serde_json::from_slice(l).ok()).collect();
    g.bench_function("normalize_only_1024_events", |b| {
        b.iter_batched(|| values.clone(), |vs| {
            for (i, v) in vs.into_iter().enumerate() {
                black_box(normalizer.normalize_at(v, EventId(i as u128), start).ok());
            }
        }, BatchSize::LargeInput)
    });
    g.finish();
    println!("(average event: {} bytes of JSON)", bytes / lines.len().max(1));
}

criterion_group!(benches, parse_normalize);
criterion_main!(benches);
