//! Scenario `engine`: the shipped rule library over the demo generator's traffic (with
//! planted attacks), in-process. Measures the engine alone: matching, windowed correlation,
//! suppression, alert emission.

use crate::cli::Args;
use crate::gen;
use crate::inproc::{run_scenario, RunSpec};
use crate::report::Report;
use anyhow::{anyhow, Result};
use rampart_core::EventTime;
use std::path::PathBuf;
use std::sync::Arc;

/// Runs the scenario.
pub fn run(args: &Args) -> Result<()> {
    let paths = if args.rules.is_empty() { vec![PathBuf::from("rules/library")] } else { args.rules.clone() };
    let rules = Arc::new(rampart_rules::load_paths(&paths).map_err(|d| anyhow!("{d}"))?);
    let n = args.events.unwrap_or(500_000);
    let step = args.step_us.unwrap_or(2_000);
    let mut r = Report::new("engine");
    r.param("events", n as u64).param("rules", rules.len() as u64).param("step_us", step).param("seed", args.seed);
    let spec = RunSpec { rules, workers: args.workers, batch: args.batch.unwrap_or(1024), rate: args.rate, lateness_ms: args.lateness_ms, tick_us: args.tick_us };
    let seed = args.seed;
    run_scenario(&mut r, &spec, args.half_max, &|| {
        let start = EventTime::now();
        gen::normalize(gen::mixed(seed, n, start, step), start, step)
    })?;
    r.finish(&args.out_path("engine"))
}
