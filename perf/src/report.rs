//! A run's result: the summary line, the JSON file and the SVG plot beside it.
//!
//! The JSON holds what the run was (scenario, parameters, command line, machine, start time),
//! what it measured (`results`: throughput, CPU, memory, counts), each latency histogram's
//! percentiles and its full percentile curve, and throughput over time. The SVG (hand-written,
//! no plotting dependency) has two panels: latency by percentile (log scale of 1/(1−p), the
//! way HdrHistogram plots are read) and throughput over time.

use crate::hist::Latency;
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One run's result, built up by the scenario.
#[derive(Debug)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// What was asked (sizes, rate, workers, …).
    pub params: Map<String, Value>,
    /// What was measured.
    pub results: Map<String, Value>,
    /// Named latency histograms (`accept_to_alert`, `send_to_stored`, …).
    pub latencies: Vec<(String, Latency)>,
    /// Throughput over time: (seconds, events/s).
    pub timeline: Vec<(f64, f64)>,
    /// Notes a reader needs (what a latency includes, what was approximated).
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for `scenario`.
    pub fn new(scenario: &str) -> Report {
        Report { scenario: scenario.into(), params: Map::new(), results: Map::new(), latencies: Vec::new(), timeline: Vec::new(), notes: Vec::new() }
    }

    /// Adds a parameter.
    pub fn param(&mut self, k: &str, v: impl Into<Value>) -> &mut Self {
        self.params.insert(k.into(), v.into());
        self
    }

    /// Adds a result.
    pub fn result(&mut self, k: &str, v: impl Into<Value>) -> &mut Self {
        self.results.insert(k.into(), v.into());
        self
    }

    /// A result as a number (0 when absent).
    pub fn num(&self, k: &str) -> f64 {
        self.results.get(k).and_then(Value::as_f64).unwrap_or(0.0)
    }

    /// The JSON document.
    pub fn to_json(&self) -> Value {
        let lat: Map<String, Value> = self
            .latencies
            .iter()
            .map(|(k, l)| {
                let mut v = l.to_json();
                if let Some(o) = v.as_object_mut() {
                    o.insert("curve".into(), json!(l.curve()));
                }
                (k.clone(), v)
            })
            .collect();
        json!({
            "scenario": self.scenario,
            "started": chrono_free_now(),
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "machine": crate::measure::machine(),
            "params": self.params,
            "results": self.results,
            "latency": lat,
            "throughput_timeline": self.timeline,
            "notes": self.notes,
        })
    }

    /// The one-paragraph summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut s = format!("scenario {}:", self.scenario);
        for (k, v) in &self.results {
            match v {
                Value::Number(n) => {
                    let f = n.as_f64().unwrap_or(0.0);
                    if f.fract() == 0.0 || f.abs() >= 1000.0 {
                        let _ = write!(s, " {k}={f:.0}");
                    } else {
                        let _ = write!(s, " {k}={f:.3}");
                    }
                }
                Value::String(t) => {
                    let _ = write!(s, " {k}={t}");
                }
                Value::Bool(b) => {
                    let _ = write!(s, " {k}={b}");
                }
                _ => {}
            }
        }
        for (k, l) in &self.latencies {
            let _ = write!(s, "\n  {k} (n={}): {}", l.len(), l.short());
        }
        s
    }

    /// Writes the JSON to `out` and the SVG beside it; prints the summary and both paths.
    pub fn finish(&self, out: &Path) -> Result<()> {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(out, serde_json::to_string_pretty(&self.to_json())? + "\n").with_context(|| format!("writing {}", out.display()))?;
        let svg_path: PathBuf = out.with_extension("svg");
        std::fs::write(&svg_path, self.svg()).with_context(|| format!("writing {}", svg_path.display()))?;
        println!("{}", self.summary());
        for n in &self.notes {
            println!("  note: {n}");
        }
        println!("result: {} (plot: {})", out.display(), svg_path.display());
        Ok(())
    }

    /// The plot: latency percentile curves (left) and throughput over time (right).
    pub fn svg(&self) -> String {
        let (w, h) = (1000.0, 420.0);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="18" text-anchor="middle" font-size="14">rampart-perf: {}</text>
"#,
            w / 2.0,
            xml(&self.scenario)
        );
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
        // Left panel: latency by percentile.
        let (lx, ly, lw, lh) = (60.0, 40.0, 400.0, 330.0);
        let curves: Vec<(String, Vec<(f64, f64)>)> = self.latencies.iter().filter(|(_, l)| !l.is_empty()).map(|(k, l)| (k.clone(), l.curve())).collect();
        let max_ms = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(0.0f64, f64::max).max(0.001);
        // x = log10(1 / (1 - p)), capped at 5 nines.
        let xmax = 5.0f64;
        let px = |p: f64| lx + lw * (1.0 / (1.0 - (p / 100.0).min(0.99999))).log10().min(xmax) / xmax;
        let py = |ms: f64| ly + lh - lh * (ms / max_ms);
        axes(&mut s, lx, ly, lw, lh, "percentile", "latency (ms)");
        for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].iter().enumerate() {
            let x = lx + lw * i as f64 / xmax;
            let _ = writeln!(s, r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#, ly + lh + 14.0);
        }
        ticks_y(&mut s, lx, ly, lh, max_ms);
        for (i, (name, c)) in curves.iter().enumerate() {
            let color = colors[i % colors.len()];
            let pts: Vec<String> = c.iter().map(|(p, ms)| format!("{:.1},{:.1}", px(*p), py(*ms))).collect();
            let _ = writeln!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#, pts.join(" "));
            let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" fill="{color}">{}</text>"#, lx + 8.0, ly + 14.0 + 14.0 * i as f64, xml(name));
        }
        if curves.is_empty() {
            let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no latency samples (flat-out run)</text>"#, lx + lw / 2.0, ly + lh / 2.0);
        }
        // Right panel: throughput over time.
        let (rx, ry, rw, rh) = (560.0, 40.0, 400.0, 330.0);
        axes(&mut s, rx, ry, rw, rh, "seconds", "events/s");
        let tmax = self.timeline.iter().map(|p| p.0).fold(0.0f64, f64::max).max(0.001);
        let vmax = self.timeline.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1.0);
        ticks_y(&mut s, rx, ry, rh, vmax);
        for i in 0..=4 {
            let t = tmax * i as f64 / 4.0;
            let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t:.1}</text>"#, rx + rw * i as f64 / 4.0, ry + rh + 14.0);
        }
        let pts: Vec<String> = self.timeline.iter().map(|(t, v)| format!("{:.1},{:.1}", rx + rw * t / tmax, ry + rh - rh * v / vmax)).collect();
        let _ = writeln!(s, r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##, pts.join(" "));
        s.push_str("</svg>\n");
        s
    }
}

fn axes(s: &mut String, x: f64, y: f64, w: f64, h: f64, xlabel: &str, ylabel: &str) {
    let _ = writeln!(s, r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="black"/>"#);
    let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{xlabel}</text>"#, x + w / 2.0, y + h + 30.0);
    let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{ylabel}</text>"#, x - 45.0, y + h / 2.0, x - 45.0, y + h / 2.0);
}

fn ticks_y(s: &mut String, x: f64, y: f64, h: f64, max: f64) {
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let yy = y + h - h * i as f64 / 4.0;
        let label = if max >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") };
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#, x - 4.0, yy + 4.0);
    }
}

fn xml(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Now as RFC 3339 UTC (via the core crate's event time formatting).
fn chrono_free_now() -> String {
    rampart_core::EventTime::now().to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_svg_are_written() {
        let dir = std::env::temp_dir().join(format!("rampart-perf-report-{}", std::process::id()));
        let mut r = Report::new("unit");
        r.param("events", 10).result("events_per_second", 1234.5);
        let mut l = Latency::new();
        for i in 1..100 {
            l.record(i * 10_000);
        }
        r.latencies.push(("accept_to_alert".into(), l));
        r.timeline = vec![(0.5, 100.0), (1.0, 200.0)];
        let out = dir.join("unit.json");
        r.finish(&out).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v["results"]["events_per_second"], 1234.5);
        assert!(v["latency"]["accept_to_alert"]["p99_ms"].as_f64().unwrap() > 0.9);
        let svg = std::fs::read_to_string(dir.join("unit.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline") && svg.trim_end().ends_with("</svg>"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
