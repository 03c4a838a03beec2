//! Scenario 3, `sigma`: every SigmaHQ rule in `<corpus>/rules*/` (with the built-in
//! `windows-evtx` pipeline and the placeholder values of
//! `rules/tests/sigmahq-placeholders.yml`, as the corpus test loads them) over Windows events:
//! SigmaHQ's regression events replayed at volume (`--regression-share`, 5 %) among generated
//! benign Sysmon process-creation events, in-process. With rsigma available, it runs the same
//! rule folders on the same events (flattened to the field layout its Windows rules read),
//! three times: with its `sysmon` pipeline, its logsource routing for Windows events and its
//! Bloom prefilter (the same semantics as Rampart's pipeline: other products' rules stay off,
//! a category's rules see only its Sysmon event ids; result `rsigma`), the same without the
//! pipeline (`rsigma_no_pipeline`: category rules also match other event ids), and as it
//! runs by default, every rule on every event (`rsigma_all_rules`).

use crate::cli::Args;
use crate::gen;
use crate::inproc::{run_scenario, RunSpec};
use crate::report::Report;
use anyhow::{anyhow, Context, Result};
use rampart_core::EventTime;
use rampart_rules::{Pipeline, Pipelines};
use std::path::PathBuf;
use std::sync::Arc;

/// The corpus's rule folders (`rules`, `rules-emerging-threats`, …).
pub fn rule_dirs(corpus: &std::path::Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus)
        .with_context(|| format!("reading the SigmaHQ corpus at {} (--corpus)", corpus.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("rules")))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Runs the scenario.
pub fn run(args: &Args) -> Result<()> {
    let dirs = rule_dirs(&args.corpus)?;
    let vars = std::fs::read_to_string(&args.placeholders).with_context(|| format!("reading {} (--placeholders)", args.placeholders.display()))?;
    let evtx = Pipeline::builtin("windows-evtx").ok_or_else(|| anyhow!("no built-in windows-evtx pipeline"))?.map_err(|d| anyhow!("{d}"))?;
    let placeholders = Pipeline::placeholders(&args.placeholders.display().to_string(), &vars).map_err(|d| anyhow!("{d}"))?;
    let t = std::time::Instant::now();
    let rules = Arc::new(rampart_rules::load_paths_with(&dirs, &Pipelines::new(vec![evtx, placeholders])).map_err(|d| anyhow!("loading the SigmaHQ rules: {d}"))?);
    let load_s = t.elapsed().as_secs_f64();
    let regression = gen::regression_events(&args.corpus)?;
    let n = args.events.unwrap_or(20_000);
    let step = args.step_us.unwrap_or(1_000);
    let mut r = Report::new("sigma");
    r.param("events", n as u64)
        .param("rules", rules.len() as u64)
        .param("rule_dirs", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>())
        .param("regression_events", regression.len() as u64)
        .param("regression_share", args.regression_share)
        .param("step_us", step)
        .param("seed", args.seed);
    r.result("rule_load_seconds", load_s);
    let spec = RunSpec { rules, workers: args.workers, batch: args.batch.unwrap_or(1024), rate: args.rate, lateness_ms: args.lateness_ms, tick_us: args.tick_us };
    let (seed, share) = (args.seed, args.regression_share);
    let out = run_scenario(&mut r, &spec, args.half_max, &|| {
        let start = EventTime::now();
        gen::normalize(gen::windows(seed, n, &regression, share, start, step), start, step)
    })?;
    if let Some(bin) = crate::rsigma::find(args) {
        let events: Vec<_> = gen::windows(seed, n, &regression, share, EventTime::now(), step).iter().map(gen::flatten_windows).collect();
        let (input, per_event) = (crate::rsigma::Input::Dirs(dirs), out.engine_cpu_s / out.events.max(1) as f64);
        // Like for like: Rampart's windows-evtx keeps other products' rules off Windows
        // events and gives each category its Sysmon event ids; rsigma's logsource routing
        // does the first and its `sysmon` pipeline the second (with its Bloom prefilter, its
        // fastest matching). Without the pipeline rsigma's category rules (network
        // connections, raw disk access, …) also match process creations: ~2,300 more
        // matches, reported too. Then rsigma as it runs by default, every rule on every event.
        const LIKE: &[&str] = &["--pipeline", "sysmon", "--logsource-routing", "--event-logsource", "product=windows", "--bloom-prefilter"];
        crate::rsigma::compare(&mut r, &bin, &input, &events, per_event, crate::rsigma::Config { key: "rsigma", options: LIKE })?;
        // `LIKE` without its first two items, `--pipeline sysmon`.
        crate::rsigma::compare(&mut r, &bin, &input, &events, per_event, crate::rsigma::Config { key: "rsigma_no_pipeline", options: &LIKE[2..] })?;
        crate::rsigma::compare(&mut r, &bin, &input, &events, per_event, crate::rsigma::Config { key: "rsigma_all_rules", options: &[] })?;
    }
    r.finish(&args.out_path("sigma"))
}
