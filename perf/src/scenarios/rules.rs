//! Scenario 2, `rules`: 1,000 generated threshold rules (each a detection and an
//! `event_count` correlation over it, five families over sshd, sudo, firewall, web and
//! process traffic) over the demo generator's mixed traffic, in-process.

use crate::cli::Args;
use crate::gen;
use crate::inproc::{run_scenario, RunSpec};
use crate::report::Report;
use anyhow::{anyhow, Result};
use rampart_core::EventTime;
use std::sync::Arc;

/// Runs the scenario.
pub fn run(args: &Args) -> Result<()> {
    let text = gen::threshold_rules(args.rule_count);
    let rules = Arc::new(rampart_rules::load_str("threshold-rules.yml", &text).map_err(|d| anyhow!("{d}"))?);
    let n = args.events.unwrap_or(300_000);
    let step = args.step_us.unwrap_or(2_000);
    let mut r = Report::new("rules");
    r.param("events", n as u64).param("threshold_rules", args.rule_count as u64).param("rules_loaded", rules.len() as u64).param("step_us", step).param("seed", args.seed);
    let spec = RunSpec { rules, workers: args.workers, batch: args.batch.unwrap_or(1024), rate: args.rate, lateness_ms: args.lateness_ms, tick_us: args.tick_us };
    let seed = args.seed;
    run_scenario(&mut r, &spec, args.half_max, &|| {
        let start = EventTime::now();
        gen::normalize(gen::mixed(seed, n, start, step), start, step)
    })?;
    r.finish(&args.out_path("rules"))
}
