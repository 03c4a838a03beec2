//! `rampart-perf`: load tests for Rampart. Each scenario is one reproducible command; each
//! run prints a summary and writes a JSON result (see `perf/README.md`).
//!
//! Scenario `engine`: the demo generator's realistic traffic (with planted attacks),
//! pre-generated and normalized, fed flat out through the engine's `Handle` in batches,
//! against the shipped rule library. It measures the engine alone (matching, windowed
//! correlation, suppression, alert emission), not JSON parsing, which it reports
//! separately as the normalize stage.

use anyhow::{bail, Context, Result};
use clap::Parser;
use rampart_core::{Counter, EventId, EventTime, Metrics, Normalizer, NormalizerConfig, Stage};
use rampart_engine::EngineConfig;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Load tests for Rampart.
#[derive(Debug, Parser)]
struct Args {
    /// Scenario: `engine` (shipped rules over demo traffic, in-process).
    #[arg(long, default_value = "engine")]
    scenario: String,
    /// Events to generate.
    #[arg(long, default_value_t = 500_000)]
    events: usize,
    /// Event time between generated events, in ms.
    #[arg(long, default_value_t = 2)]
    step_ms: u64,
    /// Dataflow workers.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Events per batch handed to the engine.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Rule files or directories (default: rules/library).
    #[arg(long)]
    rules: Vec<PathBuf>,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to write the JSON result.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return f64::NAN };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok()))
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.scenario != "engine" {
        bail!("unknown scenario `{}` (known: engine)", args.scenario);
    }
    let rules_paths = if args.rules.is_empty() { vec![PathBuf::from("rules/library")] } else { args.rules.clone() };
    let rules = Arc::new(rampart_rules::load_paths(&rules_paths).map_err(|d| anyhow::anyhow!("{d}"))?);

    let start = EventTime::now();
    let raw = rampart_connectors::demo::generate(args.seed, start, args.events, args.step_ms);
    let normalizer = Normalizer::new(NormalizerConfig::default());
    let t0 = Instant::now();
    let events: Vec<_> = raw
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| normalizer.normalize_at(v, EventId::derive("perf", i as u64, &[]), start).ok())
        .map(Arc::new)
        .collect();
    let normalize_s = t0.elapsed().as_secs_f64();

    let metrics = Arc::new(Metrics::new());
    let cfg = EngineConfig { workers: args.workers, ..EngineConfig::default() };
    let engine = rampart_engine::start(rules.clone(), cfg, metrics.clone()).context("engine")?;
    let alerts_rx = engine.alerts();
    let drain = std::thread::spawn(move || alerts_rx.iter().count());
    let handle = engine.handle();

    let cpu0 = cpu_seconds();
    let t1 = Instant::now();
    for chunk in events.chunks(args.batch.max(1)) {
        handle.send_blocking(chunk.to_vec())?;
    }
    let report = engine.shutdown()?;
    let alerts = drain.join().map_err(|_| anyhow::anyhow!("alert drain thread panicked"))?;
    let wall = t1.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;

    let n = events.len() as f64;
    let h = metrics.histogram(Stage::AcceptToAlert);
    let q = |x: f64| if h.is_empty() { 0.0 } else { h.value_at_quantile(x) as f64 / 1e6 };
    let result = json!({
        "scenario": args.scenario,
        "events": events.len(),
        "rules": rules.len(),
        "workers": args.workers,
        "batch": args.batch,
        "wall_seconds": wall,
        "events_per_second": n / wall,
        "cpu_seconds": cpu,
        "cpu_seconds_per_million_events": cpu / n * 1e6,
        "normalize_events_per_second": n / normalize_s,
        "alerts": alerts,
        "rule_matches": metrics.get(Counter::RuleMatches),
        "late": report.late,
        "peak_rss_mib": peak_rss_mib(),
        "note": "accept->alert here includes the time events waited in the pre-generated backlog, so it measures batch drain time, not live latency",
        "accept_to_alert_ms": {"p50": q(0.5), "p99": q(0.99), "p999": q(0.999), "max": q(1.0)},
    });
    println!(
        "scenario {}: {} events, {} rules, {} worker(s): {:.0} events/s, {:.2} CPU s per million events, {} alerts, peak RSS {:.0} MiB (normalize alone: {:.0} events/s)",
        args.scenario,
        events.len(),
        rules.len(),
        args.workers,
        n / wall,
        cpu / n * 1e6,
        alerts,
        peak_rss_mib(),
        n / normalize_s
    );
    let out = args.out.unwrap_or_else(|| PathBuf::from(format!("perf/results/{}.json", args.scenario)));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&result)? + "\n")?;
    println!("result written to {}", out.display());
    Ok(())
}
