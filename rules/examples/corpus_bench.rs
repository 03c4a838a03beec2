//! Load and match timings over the SigmaHQ corpus (`../shared/corpora/sigma`, or
//! `$RAMPART_SIGMA_CORPUS`): every rule under `rules*/` loaded as one set with the
//! `windows-evtx` pipeline and the SigmaHQ placeholders, then the regression events (as
//! exported, and normalized as the engine sees them) matched against every detection.
//!
//! ```sh
//! cargo run --release -p rampart-rules --example corpus_bench [-- SECONDS]
//! ```
//!
//! Speed targets live in `perf/`; this is the quick loop for the matching path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)] // a measuring tool

use rampart_rules::{RuleKind, RuleMatcher};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{corpus_root, load_windows_set, normalized, regression_events};

/// CPU seconds (user + system) this thread has used, from `/proc/thread-self/stat`.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat (Linux)");
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5), counted from the state field (3): utime, stime in ticks.
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

fn main() {
    let secs: f64 = std::env::args().nth(1).map_or(3.0, |s| s.parse().expect("seconds"));
    let root = corpus_root();

    let (t, c) = (Instant::now(), cpu_secs());
    let set = load_windows_set(&root);
    let (load, load_cpu) = (t.elapsed(), cpu_secs() - c);
    let (t, c) = (Instant::now(), cpu_secs());
    let matcher = RuleMatcher::new(&set);
    let (index, index_cpu) = (t.elapsed(), cpu_secs() - c);
    let detections: Vec<&rampart_rules::Detection> = set
        .rules
        .iter()
        .filter_map(|r| match &r.kind {
            RuleKind::Detection(d) => Some(d),
            RuleKind::Correlation(_) => None,
        })
        .collect();
    println!(
        "loaded {} rules ({} detections) in {load:.2?} ({load_cpu:.2} CPU s); matcher index built in {index:.2?} ({index_cpu:.2} CPU s)",
        set.len(),
        detections.len()
    );
    println!("{}", matcher.stats());

    let exported = regression_events(&root);
    let normalized = normalized(&exported);

    // What the prefilter lets through: candidates per event, and the rules let through
    // most often without matching.
    let mut freq = std::collections::BTreeMap::<usize, (usize, usize)>::new();
    let mut total = 0usize;
    for d in &normalized {
        let mut hits = Vec::new();
        matcher.matches(d, &mut hits);
        for c in matcher.candidates(d) {
            let e = freq.entry(c).or_default();
            e.0 += 1;
            e.1 += usize::from(hits.contains(&c));
            total += 1;
        }
    }
    println!("candidates per event: {:.1}", total as f64 / normalized.len() as f64);
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        let mut top: Vec<_> = freq.into_iter().collect();
        top.sort_by_key(|(_, (n, m))| std::cmp::Reverse(n - m));
        for (r, (n, m)) in top.iter().take(25) {
            println!("  {n:4} candidate, {m:4} match: {}", set.rules[*r].loc.file);
        }
    }
    if std::env::var_os("BENCH_COSTLY").is_some() {
        // The rules costing most to evaluate over the events they are candidates for.
        let mut cost: Vec<(Duration, usize)> = Vec::new();
        for (i, r) in set.rules.iter().enumerate() {
            let RuleKind::Detection(det) = &r.kind else { continue };
            let t = Instant::now();
            for _ in 0..20 {
                for d in &normalized {
                    std::hint::black_box(det.matches_doc(d));
                }
            }
            cost.push((t.elapsed(), i));
        }
        cost.sort();
        cost.reverse();
        for (d, i) in cost.iter().take(15) {
            println!("  {:8.2?} per event: {}", *d / (20 * normalized.len() as u32), set.rules[*i].loc.file);
        }
    }
    let brute_too = std::env::var_os("BENCH_PREFILTER_ONLY").is_none();

    let mut out = Vec::new();
    for (label, events) in [("as exported", &exported), ("normalized", &normalized)] {
        let brute = |d: &Map<String, Value>| detections.iter().filter(|r| r.matches_doc(d)).count();
        let indexed = |d: &Map<String, Value>, out: &mut Vec<usize>| {
            out.clear();
            matcher.matches(d, out);
            out.len()
        };
        let hits: usize = events.iter().map(brute).sum();
        let hits2: usize = events.iter().map(|d| indexed(d, &mut out)).sum();
        assert_eq!(hits, hits2, "prefiltered and brute-force matching disagree");
        // Events per CPU second of this thread (the machine may be shared: wall time lies).
        let rate = |f: &mut dyn FnMut(&Map<String, Value>)| {
            let budget = Duration::from_secs_f64(secs);
            let (t, c, mut n) = (Instant::now(), cpu_secs(), 0u64);
            while t.elapsed() < budget || cpu_secs() - c < 0.5 {
                for d in events.iter() {
                    f(d);
                }
                n += events.len() as u64;
            }
            n as f64 / (cpu_secs() - c)
        };
        let b = if brute_too {
            rate(&mut |d| {
                std::hint::black_box(brute(d));
            })
        } else {
            f64::NAN
        };
        let p = rate(&mut |d| {
            std::hint::black_box(indexed(d, &mut out));
        });
        println!("{} events {label}, {hits} rule matches: brute force {b:.0} events/s, prefiltered {p:.0} events/s per CPU second", events.len());
    }
}
