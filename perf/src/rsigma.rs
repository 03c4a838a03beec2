//! rsigma side by side: when `rsigma` is on PATH (or `--rsigma PATH`), scenarios `window` and
//! `sigma` also run `rsigma engine eval` on the same rules and the same events, and report
//! both CPU times per event and their ratio (rsigma ÷ Rampart's engine: above 1 means Rampart
//! spends less). Install it with `cargo install --locked rsigma@0.23.0`.
//!
//! rsigma reads NDJSON events from a file; Windows events are flattened for it
//! ([`crate::gen::flatten_windows`]), MozDef-style events are given as generated (their
//! `details.*` fields nested, timestamps in `utctimestamp`). Its CPU time is the child's user
//! and system time (`cutime + cstime` after waiting for it), less that of a run on no events
//! (its start: loading and compiling the rules, ~1 s for SigmaHQ, which Rampart's engine
//! figure leaves out of its own side too). That figure includes its parsing
//! of the JSON text, which Rampart's in-engine figure does not (Rampart's parse + normalize
//! cost is the `parse` micro-benchmark): RESULTS.md adds the benchmark's per-event time to
//! Rampart's for the like-for-like ratio.

use crate::cli::Args;
use crate::measure;
use crate::report::Report;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The rules rsigma gets.
#[derive(Debug)]
pub enum Input {
    /// One YAML text (several documents).
    Rules(String),
    /// Rule directories.
    Dirs(Vec<PathBuf>),
}

/// The rsigma binary to use, if any.
pub fn find(args: &Args) -> Option<PathBuf> {
    match args.rsigma.as_deref() {
        Some("none") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("rsigma")).find(|p| p.is_file())),
    }
}

/// Hard-links (or copies) every `*.yml` under `src` into `dst`, keeping the tree.
fn link_tree(src: &Path, dst: &Path) -> Result<usize> {
    let mut n = 0;
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))?.flatten() {
        let p = e.path();
        let to = dst.join(e.file_name());
        if p.is_dir() {
            n += link_tree(&p, &to)?;
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            if std::fs::hard_link(&p, &to).is_err() {
                std::fs::copy(&p, &to)?;
            }
            n += 1;
        }
    }
    Ok(n)
}

/// How rsigma is run: the options beyond the common ones, and the result key it is reported
/// under (`<key>` and `<key>_over_rampart_cpu_per_event`).
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Result key.
    pub key: &'static str,
    /// Extra `engine eval` options.
    pub options: &'static [&'static str],
}

/// rsigma as it runs by default.
pub const DEFAULT: Config = Config { key: "rsigma", options: &[] };

/// Runs rsigma on `events` with `rules` and adds its figures to `r`; `rampart_cpu_per_event`
/// is the engine's CPU seconds per event in the same scenario.
pub fn compare(r: &mut Report, bin: &Path, rules: &Input, events: &[Value], rampart_cpu_per_event: f64, config: Config) -> Result<()> {
    let dir = crate::spawn::Scratch::new("rsigma")?;
    let rules_path = match rules {
        Input::Rules(text) => {
            let p = dir.0.join("rules.yml");
            std::fs::write(&p, text)?;
            p
        }
        Input::Dirs(dirs) => {
            let root = dir.0.join("rules");
            for d in dirs {
                link_tree(d, &root.join(d.file_name().unwrap_or_default()))?;
            }
            root
        }
    };
    let events_path = dir.0.join("events.ndjson");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&events_path)?);
        for e in events {
            serde_json::to_writer(&mut f, e)?;
            f.write_all(b"\n")?;
        }
        f.flush()?;
    }
    let out_path = dir.0.join("out.ndjson");
    let empty_path = dir.0.join("empty.ndjson");
    std::fs::write(&empty_path, "")?;
    // Its start (loading and compiling the rules) on no events, then the run: the events'
    // share is the difference, as Rampart's engine figure leaves out its own rule load.
    let (startup_cpu, _) = run(bin, &rules_path, &empty_path, &dir.0.join("empty-out.ndjson"), &dir.0, config)?;
    let (total_cpu, wall) = run(bin, &rules_path, &events_path, &out_path, &dir.0, config)?;
    let cpu = (total_cpu - startup_cpu).max(0.0);
    let outputs = std::fs::read_to_string(&out_path).map(|t| t.lines().count()).unwrap_or(0);
    let n = events.len().max(1) as f64;
    let per_event = cpu / n;
    r.result(
        config.key,
        json!({
            "binary": bin.display().to_string(),
            "options": config.options,
            "events": events.len(),
            "wall_seconds": wall,
            "cpu_seconds": total_cpu,
            "startup_cpu_seconds": startup_cpu,
            "events_cpu_seconds": cpu,
            "cpu_us_per_event": per_event * 1e6,
            "events_per_cpu_second": n / cpu.max(1e-9),
            "output_lines": outputs,
            "stderr_tail": std::fs::read_to_string(dir.0.join("err.log")).unwrap_or_default().lines().rev().take(3).collect::<Vec<_>>(),
        }),
    );
    r.result(&format!("{}_over_rampart_cpu_per_event", config.key), per_event / rampart_cpu_per_event.max(1e-12));
    if config.key != DEFAULT.key {
        return Ok(());
    }
    r.notes.push("rsigma's CPU per event leaves out its start (loading and compiling the rules, `startup_cpu_seconds`, measured by a run on no events) but includes parsing the NDJSON text and writing its output lines (rsigma 0.23 prints every detection match even with --no-detections, see output_lines); Rampart's engine CPU starts from normalized events (add the `parse` benchmark's per-event time for a like-for-like figure)".into());
    Ok(())
}

/// One `rsigma engine eval` run: its CPU seconds (user + system) and wall seconds.
fn run(bin: &Path, rules: &Path, events: &Path, out: &Path, dir: &Path, config: Config) -> Result<(f64, f64)> {
    let cpu0 = measure::waited_children_cpu();
    let t0 = Instant::now();
    let status = Command::new(bin)
        // `--suppress 30s`: one correlation alert per key and window, closer to Rampart's one
        // per crossing (rsigma's default re-alerts on every event past the threshold).
        .args(["engine", "eval", "--no-detections", "--suppress", "30s", "--timestamp-field", "utctimestamp"])
        .args(config.options)
        .arg("--rules")
        .arg(rules)
        .arg("--event")
        .arg(format!("@{}", events.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out)?)
        .stderr(std::fs::File::create(dir.join("err.log"))?)
        .status()
        .with_context(|| format!("running {}", bin.display()))?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = measure::waited_children_cpu() - cpu0;
    if !status.success() && status.code() != Some(1) {
        bail!("rsigma failed ({status}): {}", std::fs::read_to_string(dir.join("err.log")).unwrap_or_default().chars().take(2000).collect::<String>());
    }
    Ok((cpu, wall))
}
