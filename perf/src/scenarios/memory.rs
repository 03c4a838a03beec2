//! Scenario 6, `memory`: engine memory per active window key, at 1,000,000 keys.
//!
//! One `event_count` correlation over a 1 h window (nothing expires during the run, nothing
//! crosses) gets one event from each of `--keys` distinct sources. Events are generated and
//! sent in chunks of 10,000 (`--batch`), so at most a few chunks are alive at once; once
//! the engine has matched every event and settled, the bytes the allocator holds are
//! compared with those before the first event. The counting allocator (`stats_alloc`) is
//! installed only in the `rampart-perf-memory` binary, so the other scenarios run on the
//! plain system allocator; `rampart-perf --scenario memory` runs that binary. VmRSS growth
//! is reported beside it.
//! The lateness is 0 unless `--lateness-ms` says otherwise, so that every event has been
//! counted into its window when the bytes are read (with a lateness, the newest events
//! still wait for the watermark, and their bytes would be counted as window state).

use crate::cli::Args;
use crate::gen;
use crate::measure;
use crate::report::Report;
use anyhow::{anyhow, bail, Context, Result};
use rampart_core::{Counter, EventTime, Metrics};
use rampart_engine::EngineConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `rampart-perf-memory` (beside this binary) with the same arguments.
pub fn exec(_args: &Args) -> Result<()> {
    let me = std::env::current_exe().context("finding this binary")?;
    let bin = me.with_file_name("rampart-perf-memory");
    if !bin.exists() {
        bail!("{} not found: build it with `cargo build --release -p rampart-perf` (it carries the counting allocator)", bin.display());
    }
    let status = std::process::Command::new(&bin).args(std::env::args_os().skip(1)).status().with_context(|| format!("running {}", bin.display()))?;
    if !status.success() {
        bail!("{} failed: {status}", bin.display());
    }
    Ok(())
}

/// The rule: counts per source over one hour; never fires.
fn rules() -> String {
    gen::window_rules().replace("timespan: 30s", "timespan: 1h").replace("gte: 50", "gte: 1000000")
}

/// Runs the scenario; `held` reads the bytes the allocator currently holds.
pub fn run(args: &Args, held: &dyn Fn() -> i64) -> Result<()> {
    let keys = args.keys.unwrap_or(1_000_000);
    let rules = Arc::new(rampart_rules::load_str("memory.yml", &rules()).map_err(|d| anyhow!("{d}"))?);
    let metrics = Arc::new(Metrics::new());
    // Lateness 0 unless asked: events still within the lateness wait in the operator's
    // queue for the watermark (at 1 ms per key, 60 s would hold the last 60,000 events),
    // which is buffered input, not window state.
    let lateness_ms = args.lateness_ms.unwrap_or(0);
    let cfg = EngineConfig { workers: args.workers.max(1), lateness: Duration::from_millis(lateness_ms), ..EngineConfig::default() };
    let engine = rampart_engine::start(rules, cfg, metrics.clone()).context("starting the engine")?;
    let rx = engine.alerts();
    let drain = std::thread::spawn(move || rx.iter().count());
    let handle = engine.handle();
    // Let the workers build the dataflow before the baseline.
    std::thread::sleep(Duration::from_millis(300));
    let (held0, rss0) = (held(), measure::rss());
    let start = EventTime::now();
    let step_us = 1_000; // 1,000 keys per second of event time: 1M keys span 17 min < 1 h.
    let chunk = args.batch.unwrap_or(10_000).max(1);
    let mut samples = Vec::new();
    let t0 = Instant::now();
    let mut k = 0;
    while k < keys {
        let m = chunk.min(keys - k);
        let values: Vec<_> = (k..k + m)
            .map(|i| {
                let ip = gen::key_ip(i);
                serde_json::json!({"utctimestamp": gen::time_of(start, i, step_us).to_rfc3339(), "hostname": "bastion1", "processname": "sshd",
                    "summary": format!("Failed password for root from {ip} port 40000 ssh2"), "details": {"sourceipaddress": ip}})
            })
            .collect();
        let mut events = gen::normalize(values, start, step_us);
        for (j, e) in events.iter_mut().enumerate() {
            e.time = gen::time_of(start, k + j, step_us);
        }
        handle.send_blocking(events.into_iter().map(Arc::new).collect()).map_err(|e| anyhow!("engine: {e}"))?;
        k += m;
        if k % (keys / 10).max(chunk) == 0 || k == keys {
            settle(&metrics, k as u64);
            samples.push((k as u64, held() - held0));
        }
    }
    settle(&metrics, keys as u64);
    std::thread::sleep(Duration::from_secs(1));
    let (held1, rss1) = (held(), measure::rss());
    let feed_s = t0.elapsed().as_secs_f64();
    drop(handle);
    engine.shutdown().map_err(|e| anyhow!("engine: {e}"))?;
    let _ = drain.join();
    let per_key = (held1 - held0) as f64 / keys as f64;
    let mut r = Report::new("memory");
    r.param("keys", keys as u64).param("workers", args.workers as u64).param("lateness_ms", lateness_ms).param("rule", "event_count by details.sourceipaddress, 1h sliding (no key expires, none fires)");
    r.result("allocator_bytes_per_key", per_key)
        .result("rss_bytes_per_key", rss1.saturating_sub(rss0) as f64 / keys as f64)
        .result("allocator_growth_mib", (held1 - held0) as f64 / 1048576.0)
        .result("rss_growth_mib", rss1.saturating_sub(rss0) as f64 / 1048576.0)
        .result("peak_rss_mib", measure::peak_rss() as f64 / 1048576.0)
        .result("feed_seconds", feed_s)
        .result("target_bytes_per_key", 100u64)
        .result("met", per_key <= 100.0);
    r.result("growth_by_keys", serde_json::json!(samples.iter().map(|(k, b)| serde_json::json!({"keys": k, "bytes": b, "bytes_per_key": *b as f64 / *k as f64})).collect::<Vec<_>>()));
    r.timeline = samples.iter().map(|(k, b)| (*k as f64 / 1e6, *b as f64 / *k as f64)).collect();
    r.notes.push("the throughput panel of the plot shows bytes per key (y) against millions of keys (x) here".into());
    r.finish(&args.out_path("memory"))
}

/// Waits until the engine has matched `n` events (or 60 s have passed).
fn settle(metrics: &Metrics, n: u64) {
    let until = Instant::now() + Duration::from_secs(60);
    while metrics.get(Counter::RuleMatches) < n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
}
