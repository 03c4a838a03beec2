//! `--scenario summarize DIR`: the medians of several runs (what `perf/run-all.sh` writes:
//! `<case>-<i>.json`), per case and figure, as JSON and as a Markdown table for RESULTS.md.

use crate::cli::Args;
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Every numeric figure of a result, flattened (`results.x`, `latency.accept_to_alert.p99_ms`).
fn figures(v: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Some(r) = v["results"].as_object() {
        for (k, x) in r {
            match x {
                Value::Number(n) => {
                    out.insert(k.clone(), n.as_f64().unwrap_or(f64::NAN));
                }
                Value::Object(o) => {
                    for (k2, x2) in o {
                        if let Some(f) = x2.as_f64() {
                            out.insert(format!("{k}.{k2}"), f);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(f) = v["machine"]["speed_probe_ms"].as_f64() {
        out.insert("speed_probe_ms".into(), f);
    }
    if let Some(l) = v["latency"].as_object() {
        for (name, h) in l {
            for q in ["p50_ms", "p99_ms", "p999_ms", "max_ms"] {
                if let Some(f) = h[q].as_f64() {
                    out.insert(format!("{name}.{q}"), f);
                }
            }
        }
    }
    out
}

/// Groups `<case>-<i>.json` files by case and writes the medians.
pub fn run(args: &Args) -> Result<()> {
    let Some(dir) = args.inputs.first() else { bail!("summarize needs the directory of run results: rampart-perf --scenario summarize -- perf/results/runs") };
    let mut cases: BTreeMap<String, Vec<(PathBuf, Value)>> = BTreeMap::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let stem = p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let case = stem.rsplit_once('-').filter(|(_, i)| i.parse::<u32>().is_ok()).map_or(stem.clone(), |(c, _)| c.to_string());
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p)?).with_context(|| format!("parsing {}", p.display()))?;
        cases.entry(case).or_default().push((p, v));
    }
    let mut out = Map::new();
    let mut md = String::from("| case | runs | events/s | engine µs/event | CPU s per M events | p50 ms | p99 ms | p99.9 ms | max ms | other |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (case, runs) in &cases {
        let mut all: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (_, v) in runs {
            for (k, f) in figures(v) {
                all.entry(k).or_default().push(f);
            }
        }
        let med: BTreeMap<String, f64> = all.into_iter().map(|(k, v)| (k, median(v))).collect();
        let command = runs.first().map(|(_, v)| v["command"].clone()).unwrap_or(Value::Null);
        out.insert(case.clone(), json!({"runs": runs.len(), "command": command, "medians": med}));
        let g = |k: &str| med.get(k).copied();
        let f = |x: Option<f64>, prec: usize| x.map_or("–".to_string(), |x| format!("{x:.prec$}"));
        let lat = ["accept_to_alert", "send_to_stored", "send_to_alert_on_disk"].iter().find(|n| med.contains_key(&format!("{n}.p99_ms"))).copied().unwrap_or("accept_to_alert");
        let cpu_m = g("cpu_seconds_per_million_events").or(g("rampart_cpu_seconds_per_million_events")).or(g("rampart_cpu_us_per_event"));
        let mut other = String::new();
        for k in ["allocator_bytes_per_key", "rsigma_over_rampart_cpu_per_event", "rsigma_no_pipeline_over_rampart_cpu_per_event", "rsigma_all_rules_over_rampart_cpu_per_event", "alerts", "events_in_opensearch", "speed_probe_ms"] {
            if let Some(x) = g(k) {
                let _ = write!(other, "{k} {x:.1}; ");
            }
        }
        let _ = writeln!(
            md,
            "| {case} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            runs.len(),
            f(g("events_per_second"), 0),
            f(g("engine_cpu_us_per_event"), 2),
            f(cpu_m, 2),
            f(g(&format!("{lat}.p50_ms")), 2),
            f(g(&format!("{lat}.p99_ms")), 2),
            f(g(&format!("{lat}.p999_ms")), 2),
            f(g(&format!("{lat}.max_ms")), 2),
            other.trim_end_matches("; ")
        );
    }
    let path = args.out_path("medians");
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&Value::Object(out))? + "\n")?;
    let md_path = path.with_extension("md");
    std::fs::write(&md_path, &md)?;
    print!("{md}");
    println!("medians: {} and {}", path.display(), md_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_runs() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let v = json!({"results": {"events_per_second": 10.0, "rsigma": {"cpu_us_per_event": 3.0}}, "latency": {"accept_to_alert": {"p99_ms": 1.5}}, "machine": {"speed_probe_ms": 80.0}});
        let f = figures(&v);
        assert_eq!(f["events_per_second"], 10.0);
        assert_eq!(f["rsigma.cpu_us_per_event"], 3.0);
        assert_eq!(f["accept_to_alert.p99_ms"], 1.5);
        assert_eq!(f["speed_probe_ms"], 80.0);
    }
}
