//! The in-process engine runner shared by the in-engine scenarios (`engine`, `window`,
//! `rules`, `sigma`).
//!
//! Events are generated and normalized *before* the clock starts (normalization is measured
//! by the `parse` micro-benchmark), then handed to [`rampart_engine::Handle`] in batches from
//! this thread:
//! - flat out: as fast as the engine takes them; event times are the generator's
//!   (`--step-us` apart);
//! - open loop (`--rate`): batch by batch as their scheduled send times come
//!   ([`crate::pace`]); each event's time is its scheduled wall-clock time and its
//!   `accepted_ns` its scheduled send time, so the engine's own accept → alert histogram
//!   measures from the scheduled send, coordinated omission included. The sender wakes at
//!   most once per `--tick-us` and sends everything due by then in one batch, as a shipper
//!   batches; the wait counts in each event's latency (it is measured from its own due
//!   time). Sleeping between ticks leaves the engine a core: a sender that spun for each
//!   event (`--tick-us 0`) took a whole core of the two this machine has, and then every
//!   other thread preempted either it or the engine.
//!
//! The engine gets the only reference to each event (`Handover`), so freeing every event's
//! document (a few dozen allocations, made on this thread) is measured as engine work. Before
//! 2026-11-30 this runner kept every event until the run had ended, which hid ~40 % of
//! scenario 1's engine time (`perf/RESULTS.md`).
//!
//! CPU is reported for the whole process and for the engine (the process minus the feeding
//! thread), from the first send to the end of the shutdown, which flushes every open window:
//! a short run pays at the end for retractions a long run makes while its windows slide, so
//! short runs overstate the per-event cost a little.

use crate::hist::{Latency, Sampler};
use crate::measure;
use crate::pace::{sleep_until, wait_until, Schedule};
use crate::report::Report;
use anyhow::{anyhow, bail, Context, Result};
use rampart_core::metrics::clock_ns;
use rampart_core::{Counter, Event, EventTime, Metrics, Stage};
use rampart_engine::EngineConfig;
use rampart_rules::RuleSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The rules.
    pub rules: Arc<RuleSet>,
    /// Dataflow workers.
    pub workers: usize,
    /// Events per batch.
    pub batch: usize,
    /// Open-loop rate (events/s), or flat out.
    pub rate: Option<f64>,
    /// Allowed lateness (ms); default 60 s flat out, 0 open loop.
    pub lateness_ms: Option<u64>,
    /// Open loop: the sender sends at most once per this many µs (everything due by then,
    /// up to `batch`), sleeping in between; 0: each event as it falls due, spinning.
    pub tick_us: u64,
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Events fed.
    pub events: usize,
    /// Seconds from the first send to the engine's shutdown (every window flushed).
    pub wall_s: f64,
    /// Process CPU seconds over that time.
    pub cpu_s: f64,
    /// CPU seconds of the engine: the process's minus the feeding thread's, to the end of
    /// the shutdown (so including the final flush of every open window).
    pub engine_cpu_s: f64,
    /// CPU seconds of the feeding thread.
    pub feeder_cpu_s: f64,
    /// Alerts out of the engine.
    pub alerts: u64,
    /// Detection matches.
    pub rule_matches: u64,
    /// Events later than the watermark.
    pub late: u64,
    /// Resident set before the engine started (the pre-generated events are in it).
    pub rss_before: u64,
    /// Peak resident set of the process.
    pub peak_rss: u64,
    /// Scheduled send → alert out (open loop only).
    pub accept_to_alert: Option<Latency>,
    /// Scheduled send → actually handed to the engine (open loop only): how far the sender fell behind.
    pub send_lag: Option<Latency>,
    /// Events handed to the engine per second, over time.
    pub timeline: Vec<(f64, f64)>,
}

impl Outcome {
    /// Events per wall-clock second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall_s.max(1e-9)
    }

    /// Adds this outcome's figures to a report.
    pub fn add_to(&self, r: &mut Report) {
        let n = self.events.max(1) as f64;
        r.result("events", self.events as u64)
            .result("wall_seconds", self.wall_s)
            .result("events_per_second", self.events_per_second())
            .result("events_per_engine_cpu_second", n / self.engine_cpu_s.max(1e-9))
            .result("cpu_seconds_per_million_events", self.cpu_s / n * 1e6)
            .result("engine_cpu_us_per_event", self.engine_cpu_s / n * 1e6)
            .result("feeder_cpu_seconds", self.feeder_cpu_s)
            .result("alerts", self.alerts)
            .result("rule_matches", self.rule_matches)
            .result("late", self.late)
            .result("rss_before_engine_mib", self.rss_before as f64 / 1048576.0)
            .result("peak_rss_mib", self.peak_rss as f64 / 1048576.0)
            .result("engine_peak_rss_growth_mib", self.peak_rss.saturating_sub(self.rss_before) as f64 / 1048576.0);
        if let Some(l) = &self.accept_to_alert {
            r.latencies.push(("accept_to_alert".into(), l.clone()));
        }
        if let Some(l) = &self.send_lag {
            r.latencies.push(("send_lag".into(), l.clone()));
        }
        r.timeline = self.timeline.clone();
    }
}

/// Runs `events` through a fresh engine as `spec` says.
pub fn run(spec: &RunSpec, events: Vec<Event>) -> Result<Outcome> {
    let open_loop = spec.rate.is_some();
    let lateness = spec.lateness_ms.unwrap_or(if open_loop { 0 } else { 60_000 });
    let metrics = Arc::new(Metrics::new());
    let cfg = EngineConfig { workers: spec.workers.max(1), lateness: Duration::from_millis(lateness), ..EngineConfig::default() };
    let rss_before = measure::rss();
    let engine = rampart_engine::start(spec.rules.clone(), cfg, metrics.clone()).context("starting the engine")?;
    let alerts_rx = engine.alerts();
    let drain = std::thread::Builder::new().name("perf-alerts".into()).spawn(move || alerts_rx.iter().count() as u64)?;
    let handle = engine.handle();
    let n = events.len();
    let batch = spec.batch.max(1);

    // Shared before the schedule is fixed: wrapping a million events takes longer than the
    // schedule's lead, and a sender that starts behind sends its first events in one burst
    // whose backlog the first alerts wait for (a p99 of hundreds of ms that measured the
    // harness, not the engine).
    let mut events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
    let schedule = spec.rate.map(|rate| Schedule::new(rate, Duration::from_millis(100)));
    if let Some(s) = &schedule {
        // Event time = scheduled wall-clock time; accepted = scheduled send time.
        let wall0 = EventTime::now().0 + 100;
        for (i, e) in events.iter_mut().enumerate() {
            let e = Arc::get_mut(e).ok_or_else(|| anyhow!("event {i} is shared before the run"))?;
            e.accepted_ns = s.due(i);
            e.time = EventTime(wall0 + s.offset(i) / 1_000_000);
        }
        let late_ms = clock_ns().saturating_sub(s.start_ns) / 1_000_000;
        if late_ms > 0 {
            bail!("the open-loop sender would start {late_ms} ms behind its schedule (setting the events' times took longer than the 100 ms lead)");
        }
    }
    let last_time = events.last().map_or(0, |e| e.time.0);
    let mut source = Handover(events.into_iter());
    let sent = Arc::new(AtomicU64::new(0));
    let s2 = sent.clone();
    let sampler = Sampler::start(Duration::from_millis(100), move || s2.load(Ordering::Relaxed));
    let mut send_lag = Latency::new();

    let (cpu0, feed0) = (measure::process_cpu(), measure::thread_cpu());
    let t0 = Instant::now();
    let tick_ns = spec.tick_us.saturating_mul(1_000);
    let mut next_send = 0;
    let mut i = 0;
    while i < n {
        let j = match &schedule {
            None => (i + batch).min(n),
            Some(s) => {
                let at = s.due(i).max(next_send);
                if tick_ns == 0 {
                    wait_until(at);
                } else {
                    sleep_until(at);
                }
                let now = clock_ns();
                next_send = now + tick_ns;
                send_lag.record(now.saturating_sub(s.due(i)));
                s.due_by(now).clamp(i + 1, (i + batch).min(n))
            }
        };
        handle.send_blocking(source.take(j - i)).map_err(|e| anyhow!("engine refused a batch: {e}"))?;
        sent.fetch_add((j - i) as u64, Ordering::Relaxed);
        i = j;
    }
    // The last alerts leave once the watermark passes the last event's time.
    handle.advance_to(EventTime(last_time + 1));
    let feeder_cpu_s = measure::thread_cpu() - feed0;
    drop(handle);
    let report = engine.shutdown().map_err(|e| anyhow!("engine: {e}"))?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = measure::process_cpu() - cpu0;
    // The engine's CPU is the process's minus the feeding thread's, up to the end of the
    // shutdown: batches still queued when the feeder finishes and the final flush of every
    // window (the retractions a longer run would have done while sliding) are engine work.
    // The alert-draining and sampling threads are counted in (they are small).
    let engine_cpu_s = cpu_s - feeder_cpu_s;
    let alerts = drain.join().map_err(|_| anyhow!("alert drain thread panicked"))?;
    let timeline = sampler.finish();
    let accept_to_alert = open_loop.then(|| Latency(metrics.histogram(Stage::AcceptToAlert)));
    Ok(Outcome {
        events: n,
        wall_s,
        cpu_s,
        engine_cpu_s,
        feeder_cpu_s,
        alerts,
        rule_matches: metrics.get(Counter::RuleMatches),
        late: report.late,
        rss_before,
        peak_rss: measure::peak_rss(),
        accept_to_alert,
        send_lag: open_loop.then_some(send_lag),
        timeline,
    })
}

/// Hands the engine its events, batch by batch, keeping no reference to an event once it is
/// handed over: the engine gets the only one, as from `rampart run` with no event output, so
/// it frees each event once it has matched it, and that is engine work.
struct Handover(std::vec::IntoIter<Arc<Event>>);

impl Handover {
    /// The next `n` events (fewer at the end).
    fn take(&mut self, n: usize) -> Vec<Arc<Event>> {
        self.0.by_ref().take(n).collect()
    }
}

/// Runs a scenario's events flat out or open loop; with `half_max`, first flat out to find
/// the maximum rate, then open loop at half of it (both are reported; the open-loop run's
/// figures are the result).
pub fn run_scenario(r: &mut Report, spec: &RunSpec, half_max: bool, make: &dyn Fn() -> Vec<Event>) -> Result<Outcome> {
    let mut spec = spec.clone();
    if half_max {
        let flat = run(&RunSpec { rate: None, ..spec.clone() }, make())?;
        let max = flat.events_per_second();
        r.result("max_events_per_second", max);
        r.notes.push(format!("--half-max: a flat-out run reached {max:.0} events/s; the figures are from an open-loop run at half of that"));
        spec.rate = Some(max / 2.0);
    }
    r.param("workers", spec.workers as u64).param("batch", spec.batch as u64).param("rate", spec.rate.map_or(serde_json::Value::from("flat out"), serde_json::Value::from));
    r.param("lateness_ms", spec.lateness_ms.unwrap_or(if spec.rate.is_some() { 0 } else { 60_000 }));
    if spec.rate.is_some() {
        r.param("tick_us", spec.tick_us);
    }
    let out = run(&spec, make())?;
    out.add_to(r);
    if spec.rate.is_none() {
        r.notes.push("flat out: throughput and CPU only; latency needs an open-loop run (--rate R or --half-max)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen;

    #[test]
    fn the_runner_keeps_no_reference_to_an_event_it_handed_over() {
        let start = EventTime(1_700_000_000_000);
        let events: Vec<Arc<Event>> = gen::normalize(gen::keyed_auth(1, 10, 3, start, 50), start, 50).into_iter().map(Arc::new).collect();
        assert_eq!(events.len(), 3);
        let watch: Vec<_> = events.iter().map(Arc::downgrade).collect();
        let mut handover = Handover(events.into_iter());
        let batch = handover.take(2);
        assert!(batch.iter().all(|e| Arc::strong_count(e) == 1), "the engine must get the only reference");
        drop(batch);
        assert!(watch[..2].iter().all(|w| w.upgrade().is_none()), "events handed over outlived the batch");
        assert!(watch[2].upgrade().is_some(), "an event not yet handed over was freed");
        assert_eq!(handover.take(5).len(), 1);
        assert!(handover.take(5).is_empty());
    }
}
