//! Scenario 4, `http`: Elasticsearch `_bulk` requests → the real `rampart` binary (HTTP input,
//! the shipped rules, the `file` output) → NDJSON files. Everything runs on this machine:
//! this process generates load, `rampart run` is a separate process.
//!
//! Rampart answers a `_bulk` request only once every event in it is stored, so a request's
//! latency from its *scheduled* send time to its answer is send → stored (coordinated
//! omission included: a request that had to wait for a free connection still counts from
//! when it was due). Alerts are followed in the alerts file: now − the alert's event time,
//! which is the scheduled send time of the event that completed it (millisecond resolution).
//! Rampart's own accept → written and accept → alert histograms (from `/metrics`) are
//! reported beside them.

use crate::cli::Args;
use crate::gen;
use crate::hist::{Latency, Sampler};
use crate::measure;
use crate::pace::Schedule;
use crate::report::Report;
use crate::spawn::{self, AlertTail, Rampart, Scratch};
use anyhow::{anyhow, bail, Context, Result};
use rampart_core::metrics::clock_ns;
use rampart_core::EventTime;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The config `rampart run` gets.
fn config(rules: &[PathBuf], workers: usize, lateness_ms: u64, port: u16, data: &std::path::Path) -> String {
    let rules: Vec<String> = rules.iter().map(|r| format!("  - \"{}\"", r.display())).collect();
    format!(
        "rules:\n{}\nengine:\n  workers: {workers}\n  lateness: {lateness_ms}ms\ninputs:\n  - type: http\n    bind: \"127.0.0.1:{port}\"\n    workers: 2\n    max_body: 104857600\noutputs:\n  - type: file\n    dir: \"{}\"\n    events: true\n    alerts: true\n",
        rules.join("\n"),
        data.display()
    )
}

/// Runs the scenario.
pub fn run(args: &Args) -> Result<()> {
    let bin = spawn::rampart_bin(args.rampart.as_deref())?;
    let scratch = Scratch::new("http")?;
    let data = scratch.0.join("data");
    let port = spawn::free_port()?;
    let rules: Vec<PathBuf> = if args.rules.is_empty() { vec![PathBuf::from("rules/library")] } else { args.rules.clone() };
    let rules: Vec<PathBuf> = rules.iter().map(|r| std::fs::canonicalize(r).with_context(|| format!("rules at {}", r.display()))).collect::<Result<_>>()?;
    let lateness = args.lateness_ms.unwrap_or(if args.rate.is_some() { 0 } else { 60_000 });
    let n = args.events.unwrap_or(200_000);
    let per_req = args.batch.unwrap_or(100).max(1);
    let reqs = n.div_ceil(per_req);
    let step = args.step_us.unwrap_or(2_000);

    // Bodies first (their event times depend on the schedule), then Rampart, then load.
    let schedule = args.rate.map(|rate| Schedule::new(rate / per_req as f64, Duration::from_secs(4)));
    let wall0 = EventTime::now().0 + 4_000;
    let values = gen::mixed(args.seed, n, EventTime::now(), step);
    let mut bodies = Vec::with_capacity(reqs);
    for (q, chunk) in values.chunks(per_req).enumerate() {
        let mut body = String::new();
        for v in chunk {
            let mut v = v.clone();
            if let (Some(s), Some(m)) = (&schedule, v.as_object_mut()) {
                m.insert("utctimestamp".into(), Value::String(EventTime(wall0 + s.offset(q) / 1_000_000).to_rfc3339()));
            }
            body.push_str("{\"index\":{\"_index\":\"perf\"}}\n");
            body.push_str(&serde_json::to_string(&v)?);
            body.push('\n');
        }
        bodies.push(body);
    }
    drop(values);

    let http = format!("127.0.0.1:{port}");
    let rampart = Rampart::start(&bin, &config(&rules, args.workers, lateness, port, &data), &scratch.0, &http)?;
    if schedule.is_some_and(|s| clock_ns() > s.start_ns) {
        bail!("generating the bodies took longer than the 4 s lead; use fewer --events");
    }
    let tail = AlertTail::start(data.clone());
    let stored = Arc::new(AtomicU64::new(0));
    let s2 = stored.clone();
    let sampler = Sampler::start(Duration::from_millis(200), move || s2.load(Ordering::Relaxed));
    let lat = Arc::new(Mutex::new(Latency::new()));
    let failures = Arc::new(AtomicU64::new(0));
    let cpu0 = rampart.cpu();
    let gen_cpu0 = measure::process_cpu();
    let t0 = Instant::now();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.connections).build()?;
    let url = format!("http://{http}/_bulk");
    let bodies = Arc::new(bodies);
    rt.block_on(async {
        let send = |q: usize, due: u64| {
            let (client, url, bodies, lat, stored, failures) = (client.clone(), url.clone(), bodies.clone(), lat.clone(), stored.clone(), failures.clone());
            async move {
                let body = bodies.get(q).cloned().unwrap_or_default();
                let events = body.lines().count() as u64 / 2;
                let res = client.post(&url).header("content-type", "application/x-ndjson").body(body).send().await;
                let ok = match res {
                    Ok(r) if r.status().is_success() => r.json::<Value>().await.is_ok_and(|v| v["errors"] == Value::Bool(false)),
                    _ => false,
                };
                if ok {
                    stored.fetch_add(events, Ordering::Relaxed);
                    if let Ok(mut h) = lat.lock() {
                        h.record(clock_ns().saturating_sub(due));
                    }
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        match &schedule {
            Some(s) => {
                let permits = Arc::new(tokio::sync::Semaphore::new(args.connections.max(1)));
                let mut tasks = Vec::with_capacity(reqs);
                let base = tokio::time::Instant::now();
                let base_ns = clock_ns();
                for q in 0..reqs {
                    let due = s.due(q);
                    tokio::time::sleep_until(base + Duration::from_nanos(due.saturating_sub(base_ns))).await;
                    let Ok(permit) = permits.clone().acquire_owned().await else { break };
                    let f = send(q, due);
                    tasks.push(tokio::spawn(async move {
                        f.await;
                        drop(permit);
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            }
            None => {
                let next = AtomicUsize::new(0);
                let conn = |_| async {
                    loop {
                        let q = next.fetch_add(1, Ordering::Relaxed);
                        if q >= reqs {
                            break;
                        }
                        send(q, clock_ns()).await;
                    }
                };
                futures::future::join_all((0..args.connections.max(1)).map(conn)).await;
            }
        }
    });
    // Open loop: from the first scheduled send (the lead before it is not load).
    let wall = match &schedule {
        Some(s) => clock_ns().saturating_sub(s.start_ns) as f64 / 1e9,
        None => t0.elapsed().as_secs_f64(),
    };
    let gen_cpu = measure::process_cpu() - gen_cpu0;
    let cpu = rampart.cpu();
    // Alerts still due: give the file output a moment.
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = rampart.metrics().unwrap_or_default();
    let peak = rampart.peak_rss();
    let timeline = sampler.finish();
    let alert_lat = tail.finish();
    rampart.stop()?;

    let done = stored.load(Ordering::Relaxed);
    let mut r = Report::new("http");
    r.param("events", n as u64).param("events_per_request", per_req as u64).param("connections", args.connections as u64).param("workers", args.workers as u64);
    r.param("rate", args.rate.map_or(Value::from("flat out"), Value::from)).param("lateness_ms", lateness).param("rampart", bin.display().to_string());
    let d = done.max(1) as f64;
    r.result("events_stored", done)
        .result("failed_requests", failures.load(Ordering::Relaxed))
        .result("wall_seconds", wall)
        .result("events_per_second", done as f64 / wall)
        .result("rampart_cpu_seconds_per_million_events", (cpu.total - cpu0.total) / d * 1e6)
        .result("engine_cpu_us_per_event", (cpu.named - cpu0.named) / d * 1e6)
        .result("loadgen_cpu_seconds", gen_cpu)
        .result("rampart_peak_rss_mib", peak as f64 / 1048576.0)
        .result("alerts", spawn::metric(&metrics, "rampart_alerts_fired_total", None).unwrap_or(0.0))
        .result("late", spawn::metric(&metrics, "rampart_events_late_total", None).unwrap_or(0.0))
        .result("rampart_accept_to_written", spawn::summary_ms(&metrics, "rampart_accept_to_written_seconds"))
        .result("rampart_accept_to_alert", spawn::summary_ms(&metrics, "rampart_accept_to_alert_seconds"));
    r.latencies.push(("send_to_stored".into(), lat.lock().map_err(|_| anyhow!("latency lock"))?.clone()));
    r.timeline = timeline;
    if schedule.is_none() {
        r.notes.push("flat out: each connection sends its next request when the previous is answered, so send_to_stored is a closed-loop service time, and event times are synthetic (lateness 60 s), so alerts leave at shutdown; use --rate for open-loop latencies".into());
    } else {
        r.latencies.push(("send_to_alert_on_disk".into(), alert_lat));
        r.notes.push("send_to_alert_on_disk has millisecond resolution (alert utctimestamp) and includes the 1 ms polling of the alerts file; with lateness 0 an alert leaves when a later event moves the watermark, so the gap between requests (--batch / rate) adds to it".into());
    }
    r.finish(&args.out_path("http"))
}
