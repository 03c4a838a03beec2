//! Scenario 1, `window`: a windowed count with a threshold over 100,000 distinct keys,
//! in-process. Every event is an sshd failed password from one of `--keys` sources (a handful
//! per key per window) or, 1 % of them, from attacking sources that send 60 each in turn; one
//! `event_count` correlation groups by source over a 30 s sliding window and fires at 50, so
//! every attacker gives one alert (the accept → alert samples of an open-loop run). With rsigma available, it runs the same
//! rules on the same events and the CPU time per event of both is compared.

use crate::cli::Args;
use crate::gen;
use crate::inproc::{run_scenario, RunSpec};
use crate::report::Report;
use anyhow::{anyhow, Result};
use rampart_core::EventTime;
use std::sync::Arc;

/// Runs the scenario.
pub fn run(args: &Args) -> Result<()> {
    let text = gen::window_rules();
    let rules = Arc::new(rampart_rules::load_str("window.yml", &text).map_err(|d| anyhow!("{d}"))?);
    let n = args.events.unwrap_or(1_000_000);
    let keys = args.keys.unwrap_or(100_000);
    // 20,000 events per second of event time: ~6 per key per 30 s window.
    let step = args.step_us.unwrap_or(50);
    let mut r = Report::new("window");
    r.param("events", n as u64).param("keys", keys as u64).param("step_us", step).param("seed", args.seed).param("rule", "event_count by details.sourceipaddress, 30s sliding, gte 50");
    let spec = RunSpec { rules, workers: args.workers, batch: args.batch.unwrap_or(1024), rate: args.rate, lateness_ms: args.lateness_ms, tick_us: args.tick_us };
    let seed = args.seed;
    let out = run_scenario(&mut r, &spec, args.half_max, &|| {
        let start = EventTime::now();
        gen::normalize(gen::keyed_auth(seed, keys, n, start, step), start, step)
    })?;
    if let Some(bin) = crate::rsigma::find(args) {
        let start = EventTime::now();
        let events = gen::keyed_auth(seed, keys, n, start, step);
        crate::rsigma::compare(&mut r, &bin, &crate::rsigma::Input::Rules(text), &events, out.engine_cpu_s / out.events.max(1) as f64, crate::rsigma::DEFAULT)?;
    }
    r.finish(&args.out_path("window"))
}
