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

use rampart_core::{EventId, EventTime, Normalizer};
use rampart_rules::{Pipeline, Pipelines, RuleKind, RuleMatcher};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

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
    let root = std::env::var_os("RAMPART_SIGMA_CORPUS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/sigma"), PathBuf::from);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("rules"))
        .collect();
    dirs.sort();
    let vars_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigmahq-placeholders.yml");

    let (t, c) = (Instant::now(), cpu_secs());
    let mut list = Pipelines::resolve(&["windows-evtx"]).unwrap().list().to_vec();
    list.push(Pipeline::placeholders("sigmahq-placeholders.yml", &std::fs::read_to_string(vars_file).unwrap()).unwrap());
    let pipelines = Pipelines::new(list);
    let set = rampart_rules::load_paths_with(&dirs, &pipelines).unwrap_or_else(|d| panic!("{d}"));
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

    let mut raw = Vec::new();
    files(&root.join("regression_data"), "json", &mut raw);
    raw.sort();
    let exported: Vec<Map<String, Value>> = raw
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            serde_json::Deserializer::from_str(&text).into_iter::<Value>().map(|v| match v.unwrap() {
                Value::Object(m) => m,
                other => panic!("{}: not an object: {other}", p.display()),
            }).collect::<Vec<_>>()
        })
        .collect();
    let norm = Normalizer::default();
    let normalized: Vec<Map<String, Value>> =
        exported.iter().enumerate().map(|(i, d)| norm.normalize_at(Value::Object(d.clone()), EventId(i as u128), EventTime(0)).unwrap().doc).collect();

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
