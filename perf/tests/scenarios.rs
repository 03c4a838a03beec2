//! Every perf scenario, end to end at small sizes, through the real `rampart-perf` binary:
//! the command line a user types, the run, the summary, the JSON result and the SVG plot.
//! The figures themselves (speed, memory) are benchmarks and are not asserted here; what is
//! asserted is that each scenario delivers every event, counts what it says it counts, and
//! records what its JSON promises, against expectations computed independently of the
//! harness (from the generators and the rule matcher directly).
//!
//! `http` and `amqp` run the `rampart` binary beside this package's binaries
//! (`target/<profile>/rampart`, which `cargo build --workspace` makes; `scripts/test.sh`
//! builds it before testing). `amqp` needs RabbitMQ and OpenSearch, which `scripts/test.sh`
//! starts (`RAMPART_TEST_AMQP_URL`, `RAMPART_TEST_ES_URL` to use others); it fails, never
//! skips, when they are not there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use rampart_core::EventTime;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The SigmaHQ corpus, as the rules crate's tests find it.
fn corpus() -> PathBuf {
    std::env::var_os("RAMPART_SIGMA_CORPUS").map_or_else(|| root().join("../shared/corpora/sigma"), PathBuf::from)
}

/// Runs `rampart-perf` with `args` plus `--out <dir>/<name>.json`; returns the result, after
/// checking the run succeeded, printed its summary line and wrote its plot.
fn run(dir: &Path, name: &str, args: &[&str]) -> Value {
    let out = dir.join(format!("{name}.json"));
    let o = Command::new(env!("CARGO_BIN_EXE_rampart-perf")).args(args).arg("--out").arg(&out).current_dir(root()).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "rampart-perf {args:?} failed ({}):\n{stdout}\n{stderr}", o.status);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let scenario = json["scenario"].as_str().unwrap().to_string();
    assert!(stdout.contains(&format!("scenario {scenario}:")), "no summary line in:\n{stdout}");
    assert!(std::fs::read_to_string(out.with_extension("svg")).unwrap().starts_with("<svg"), "no plot beside {}", out.display());
    assert!(json["machine"]["cpus"].as_u64().unwrap() >= 1, "{}", json["machine"]);
    assert!(json["command"].as_str().unwrap().contains("--scenario"), "{}", json["command"]);
    json
}

fn num(v: &Value, key: &str) -> f64 {
    v["results"][key].as_f64().unwrap_or_else(|| panic!("no number `{key}` in {}", v["results"]))
}

/// The shipped rule library (the `engine`, `http` and `amqp` scenarios' rules).
fn library() -> String {
    root().join("rules/library").display().to_string()
}

/// The `rampart` binary beside this package's binaries.
fn rampart() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_rampart-perf")).with_file_name("rampart");
    assert!(bin.exists(), "{} is missing: build it first (`cargo build --bin rampart`; scripts/test.sh does)", bin.display());
    bin.display().to_string()
}

/// Attackers in scenario 1's traffic whose failures reach the threshold (50) within the
/// window (30 s, both ends included), computed from the generator by brute force.
fn expected_window_alerts(seed: u64, keys: usize, n: usize, step_us: u64) -> usize {
    let start = EventTime(1_700_000_000_000);
    let values = rampart_perf::gen::keyed_auth(seed, keys, n, start, step_us);
    let mut times: HashMap<String, Vec<u64>> = HashMap::new();
    for (i, v) in values.iter().enumerate() {
        let ip = v["details"]["sourceipaddress"].as_str().unwrap().to_string();
        times.entry(ip).or_default().push(rampart_perf::gen::time_of(start, i, step_us).0);
    }
    // A key fires once per rise to 50 or more: with bursts of 60, once per attacker.
    times.values().filter(|ts| ts.iter().enumerate().any(|(j, &t)| ts[..=j].iter().filter(|&&u| u + 30_000 >= t).count() >= 50)).count()
}

#[test]
fn window_fires_once_per_attacker_flat_out_and_open_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (n, keys) = (60_000, 2_000);
    let expected = expected_window_alerts(42, keys, n, 50);
    assert!(expected >= 5, "the traffic should hold several attackers, has {expected}");
    let flat = run(dir.path(), "window", &["--scenario", "window", "--events", "60000", "--keys", "2000", "--rsigma", "none"]);
    assert_eq!(num(&flat, "alerts") as usize, expected);
    assert_eq!(num(&flat, "rule_matches") as usize, n, "every event is a failed password");
    assert_eq!((num(&flat, "events") as usize, num(&flat, "late")), (n, 0.0));
    assert!(num(&flat, "events_per_engine_cpu_second") > 0.0 && num(&flat, "engine_cpu_us_per_event") > 0.0);
    assert_eq!(flat["params"]["rate"], "flat out");

    // Open loop: latency from each event's scheduled send, one sample per alert.
    let open = run(dir.path(), "window-rate", &["--scenario", "window", "--events", "60000", "--keys", "2000", "--rsigma", "none", "--rate", "20000"]);
    assert_eq!(num(&open, "alerts") as usize, expected);
    assert_eq!(num(&open, "late"), 0.0, "open-loop events are in time order");
    let lat = &open["latency"]["accept_to_alert"];
    assert_eq!(lat["count"].as_u64().unwrap() as usize, expected, "{lat}");
    let (p50, p99, max) = (lat["p50_ms"].as_f64().unwrap(), lat["p99_ms"].as_f64().unwrap(), lat["max_ms"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{lat}");
    // The sender wakes once per tick (100 µs) and sends what is due: ~one lag sample per tick.
    let lag = open["latency"]["send_lag"]["count"].as_u64().unwrap();
    assert!(lag > 100 && (lag as usize) < n, "send_lag samples: {lag}");
    // A run of 60,000 events at 20,000/s lasts about 3 s: the schedule was kept.
    let wall = num(&open, "wall_seconds");
    assert!((2.9..30.0).contains(&wall), "wall {wall} s");
}

#[test]
fn half_max_runs_open_loop_at_half_the_flat_out_rate() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), "window-half", &["--scenario", "window", "--events", "20000", "--keys", "2000", "--rsigma", "none", "--half-max"]);
    let max = num(&r, "max_events_per_second");
    let rate = r["params"]["rate"].as_f64().unwrap();
    assert!((rate - max / 2.0).abs() < 1e-6 * max, "rate {rate}, max {max}");
    assert_eq!(r["params"]["lateness_ms"], 0);
    assert_eq!(num(&r, "alerts") as usize, expected_window_alerts(42, 2_000, 20_000, 50));
    assert!(r["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("--half-max")), "{}", r["notes"]);
}

#[test]
fn threshold_rules_match_every_event_they_should_on_any_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let (n, step) = (20_000, 2_000);
    // Detections matched, counted by the rule matcher directly.
    let rules = rampart_rules::load_str("t.yml", &rampart_perf::gen::threshold_rules(200)).unwrap();
    let matcher = rampart_rules::RuleMatcher::new(&rules);
    let start = EventTime(1_700_000_000_000);
    let events = rampart_perf::gen::normalize(rampart_perf::gen::mixed(42, n, start, step), start, step);
    let mut hits = Vec::new();
    let expected: usize = events
        .iter()
        .map(|e| {
            hits.clear();
            matcher.matches(&e.doc, &mut hits);
            hits.len()
        })
        .sum();
    assert!(expected > 1_000, "{expected}");
    let one = run(dir.path(), "rules-1", &["--scenario", "rules", "--events", "20000", "--rule-count", "200"]);
    let two = run(dir.path(), "rules-2", &["--scenario", "rules", "--events", "20000", "--rule-count", "200", "--workers", "2"]);
    assert_eq!(num(&one, "rule_matches") as usize, expected);
    assert_eq!(num(&two, "rule_matches") as usize, expected);
    assert!(num(&one, "alerts") > 0.0);
    assert_eq!(num(&one, "alerts"), num(&two, "alerts"), "alerts must not depend on the worker count");
    assert_eq!(one["params"]["rules_loaded"], 400, "200 detections and their 200 correlations");
}

#[test]
fn sigma_scenario_matches_the_planted_regression_events() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus().display().to_string();
    let placeholders = root().join("rules/tests/sigmahq-placeholders.yml").display().to_string();
    let r = run(dir.path(), "sigma", &["--scenario", "sigma", "--events", "400", "--rsigma", "none", "--corpus", &corpus, "--placeholders", &placeholders]);
    assert_eq!(num(&r, "events") as usize, 400);
    // Every detection match is an alert (no correlations, no suppression among these rules),
    // and the 5 % of regression events carry attacks SigmaHQ's rules were written for.
    let matches = num(&r, "rule_matches");
    assert!(matches >= 10.0, "{}", r["results"]);
    assert_eq!(num(&r, "alerts"), matches);
    assert!(num(&r, "rule_load_seconds") > 0.0);
}

#[test]
fn engine_scenario_runs_the_shipped_library() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library();
    let r = run(dir.path(), "engine", &["--scenario", "engine", "--events", "20000", "--rules", &lib]);
    assert_eq!(num(&r, "events") as usize, 20_000);
    assert!(num(&r, "rule_matches") > 1_000.0 && num(&r, "alerts") > 0.0, "{}", r["results"]);
}

#[test]
fn http_bulk_ingest_stores_every_event_flat_out_and_open_loop() {
    let dir = tempfile::tempdir().unwrap();
    let bin = rampart();
    let lib = library();
    let flat = run(dir.path(), "http", &["--scenario", "http", "--events", "5000", "--batch", "500", "--rampart", &bin, "--rules", &lib]);
    assert_eq!(num(&flat, "events_stored") as usize, 5_000);
    assert_eq!(num(&flat, "failed_requests"), 0.0);
    assert_eq!(flat["results"]["rampart_accept_to_written"]["count"].as_f64(), Some(5_000.0), "{}", flat["results"]);
    let open = run(dir.path(), "http-rate", &["--scenario", "http", "--events", "4000", "--batch", "100", "--rate", "2000", "--rampart", &bin, "--rules", &lib]);
    assert_eq!(num(&open, "events_stored") as usize, 4_000);
    let lat = &open["latency"]["send_to_stored"];
    assert_eq!(lat["count"].as_u64(), Some(40), "one sample per request: {lat}");
    let wall = num(&open, "wall_seconds");
    assert!(wall >= 1.9, "4,000 events at 2,000/s take 2 s, not {wall}");
}

#[test]
fn amqp_to_opensearch_stores_every_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let bin = rampart();
    let lib = library();
    let r = run(dir.path(), "amqp", &["--scenario", "amqp", "--events", "3000", "--batch", "100", "--rampart", &bin, "--rules", &lib]);
    assert_eq!(num(&r, "events_published") as usize, 3_000);
    assert_eq!(num(&r, "events_in_opensearch") as usize, 3_000);
    assert_eq!(r["results"]["exactly_once_in_index"], true);
    assert!(num(&r, "engine_cpu_us_per_event") > 0.0);
}

#[test]
fn memory_scenario_measures_bytes_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), "memory", &["--scenario", "memory", "--keys", "20000"]);
    // Plausible, not the target: a window key costs tens to hundreds of bytes.
    let per_key = num(&r, "allocator_bytes_per_key");
    assert!((10.0..10_000.0).contains(&per_key), "{per_key}");
    let growth = r["results"]["growth_by_keys"].as_array().unwrap();
    assert!(!growth.is_empty() && growth.iter().all(|g| g["keys"].as_u64().unwrap() <= 20_000), "{growth:?}");
}

#[test]
fn summarize_takes_the_median_of_runs() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    for i in 1..=3 {
        run(&runs, &format!("window-{i}"), &["--scenario", "window", "--events", "6000", "--keys", "500", "--rsigma", "none", "--seed", &i.to_string()]);
    }
    let each: Vec<f64> = (1..=3)
        .map(|i| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(runs.join(format!("window-{i}.json"))).unwrap()).unwrap();
            num(&v, "engine_cpu_us_per_event")
        })
        .collect();
    let mut sorted = each.clone();
    sorted.sort_by(f64::total_cmp);
    let out = dir.path().join("medians.json");
    let o = Command::new(env!("CARGO_BIN_EXE_rampart-perf")).args(["--scenario", "summarize", "--out"]).arg(&out).arg("--").arg(&runs).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let medians: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let got = medians["window"]["medians"]["engine_cpu_us_per_event"].as_f64().unwrap_or_else(|| panic!("{medians}"));
    assert_eq!(got, sorted[1], "median of {each:?}");
    assert_eq!(medians["window"]["runs"], 3);
    assert!(std::fs::read_to_string(out.with_extension("md")).unwrap().contains("| window | 3 |"));
}
