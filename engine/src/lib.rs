//! `rampart-engine`: turns a rule set into one timely/differential dataflow and is the
//! boundary between async code and that dataflow.
//!
//! - [`start`] spawns the workers and returns an [`Engine`]; [`Engine::handle`] gives the
//!   [`Handle`] that feeds events (bounded, with backpressure), [`Engine::alerts`] the
//!   bounded channel alerts come out of, in deterministic `(time, rule, group)` order.
//! - [`replay`] runs a list of events through a fresh engine synchronously (`rules test`,
//!   tests, golden cases).
//!
//! Modules:
//! - `compile`: rule set → `plan` (the only module that knows the rules crate's types).
//! - `plan`: the rules as the dataflow sees them: plain data and two closures per rule.
//! - `dataflow`: the operators one worker runs (match, windowed counts, suppress, emit).
//! - [`handle`]: the watermark, late-event filtering and the bounded per-worker channels.
//! - [`error`]: the [`EngineError`] type.
//! - `events`: telemetry of the correlation state (a log line and its counter together).
//! - [`state`]: new_term and spike state on disk ([`StateConfig`]): loaded before events
//!   flow, snapshotted periodically and at shutdown, independent of the worker count.
//!
//! Workers park when idle and are unparked by the handle, so an idle engine costs nothing
//! and a batch is picked up within microseconds.
//!
//! An alert leaves once the watermark has passed its time: that is what makes the output
//! order (and every window's contents) independent of worker count and arrival order. The
//! watermark trails the newest event by the configured lateness, so alert latency is the
//! lateness plus microseconds of processing; callers that want alerts sooner on quiet
//! input call [`Handle::advance_to`] with the wall clock (a processing-time tick).

mod compile;
mod dataflow;
pub mod error;
mod events;
pub mod handle;
mod plan;
pub mod state;

pub use compile::{replay, start};
pub use error::EngineError;
pub use flume;
pub use handle::Handle;
pub use state::StateConfig;

use dataflow::{Counters, EventInput};
use handle::{Batch, Shared};
use plan::Plan;
use rampart_core::{Alert, Event, Metrics};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Worker threads (at least 1). Default 1.
    pub workers: usize,
    /// How far behind the newest event an event may be and still be correlated. Default 60 s.
    pub lateness: Duration,
    /// At most this many event references per correlation alert (oldest first). Default 100.
    pub max_refs: usize,
    /// Batches queued per worker before [`Handle::send`] waits. Default 64.
    pub input_capacity: usize,
    /// Alerts queued before the dataflow waits for the consumer. Default 4096.
    pub alert_capacity: usize,
    /// Where new_term and spike state is saved and restored from; `None` (the default):
    /// it lives only as long as the engine.
    pub state: Option<StateConfig>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { workers: 1, lateness: Duration::from_secs(60), max_refs: 100, input_capacity: 64, alert_capacity: 4096, state: None }
    }
}

impl EngineConfig {
    fn validate(&self) -> Result<(), EngineError> {
        let mut problems = Vec::new();
        if self.workers == 0 {
            problems.push("workers must be at least 1");
        }
        if self.input_capacity == 0 {
            problems.push("input_capacity must be at least 1");
        }
        if self.alert_capacity == 0 {
            problems.push("alert_capacity must be at least 1");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Config(problems.join("; ")))
        }
    }
}

/// Totals of one engine run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineReport {
    /// Events handed to the engine (late ones included).
    pub events: u64,
    /// Events later than the watermark: counted, not correlated.
    pub late: u64,
    /// Alerts emitted.
    pub alerts: u64,
    /// Alerts withheld by a rule's `suppress`.
    pub suppressed: u64,
}

/// A running engine.
///
/// Dropping it without [`Engine::shutdown`] also stops the workers and waits for them, with
/// the same caveat: alerts must be drained (or every receiver dropped) meanwhile.
pub struct Engine {
    shared: Arc<Shared>,
    alerts: flume::Receiver<Alert>,
    guards: Option<timely::communication::initialize::WorkerGuards<()>>,
    /// Where correlation state is saved, when it is.
    store: Option<Arc<state::Store>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("watermark", &self.shared.watermark()).finish_non_exhaustive()
    }
}

impl Engine {
    /// A handle to feed events with.
    pub fn handle(&self) -> Handle {
        Handle { shared: self.shared.clone() }
    }

    /// The alert channel (bounded). Alerts come in `(time, rule, group)` order, the same
    /// for any number of workers and any arrival order within the lateness; the channel
    /// disconnects once [`Engine::shutdown`] has flushed every window.
    pub fn alerts(&self) -> flume::Receiver<Alert> {
        self.alerts.clone()
    }

    /// Stops input, flushes every open window (as if the watermark reached the end of
    /// time), waits for the workers and reports totals.
    ///
    /// Alerts produced by the flush go to the alert channel, so something must be receiving
    /// them concurrently (another thread or task): with nobody receiving and the channel
    /// full, this waits forever. Sends racing with shutdown fail with
    /// [`EngineError::Closed`]; batches already accepted are processed.
    /// With a state directory, the final snapshot is written before this returns; failing
    /// to write it is an error ([`EngineError::State`]).
    pub fn shutdown(mut self) -> Result<EngineReport, EngineError> {
        self.stop()?;
        if let Some(store) = &self.store {
            store.finish()?;
        }
        let c = &self.shared.counters;
        Ok(EngineReport {
            events: c.events.load(Ordering::Relaxed),
            late: c.late.load(Ordering::Relaxed),
            alerts: c.alerts.load(Ordering::Relaxed),
            suppressed: c.suppressed.load(Ordering::Relaxed),
        })
    }

    fn stop(&mut self) -> Result<(), EngineError> {
        self.shared.close();
        let Some(guards) = self.guards.take() else { return Ok(()) };
        let failures: Vec<String> = guards.join().into_iter().filter_map(Result::err).collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Worker(failures.join("; ")))
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts the workers for a plan.
fn start_plan(plan: Plan, cfg: EngineConfig, metrics: Arc<Metrics>) -> Result<Engine, EngineError> {
    cfg.validate()?;
    let plan = Arc::new(plan);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..cfg.workers).map(|_| flume::bounded::<Batch>(cfg.input_capacity)).unzip();
    let (alert_tx, alert_rx) = flume::bounded(cfg.alert_capacity);
    let counters = Arc::new(Counters::default());
    // Saved state is read before any worker starts, so it is in place before events flow.
    let (restore, store) = match &cfg.state {
        Some(sc) if plan.keeps_state() => {
            let restore = state::load(sc, &plan)?;
            // Each worker builds one new_term and one spike operator per level that uses them.
            let instances = cfg.workers * plan.stateful_operators();
            (restore, Some(Arc::new(state::Store::new(sc, &plan, instances, metrics.clone()))))
        }
        _ => (Vec::new(), None),
    };
    let restore = Arc::new(restore);
    let interval = cfg.state.as_ref().map_or(Duration::from_secs(300), |s| s.interval);
    let evicted = metrics.clone();
    let on_evict: rampart_correlation::OnEvict = Arc::new(move |count| events::NewTermsEvicted { count }.emit(&evicted));
    let worker_store = store.clone();
    let shared = Arc::new(Shared::new(senders, cfg.lateness, counters.clone(), metrics.clone()));
    let worker_shared = shared.clone();
    let guards = timely::execute(timely::Config::process(cfg.workers), move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let alerts = alert_tx.clone();
        // Any share will do: each entry travels to the worker owning its key.
        let keep = state::WorkerKeep {
            restore: restore.iter().enumerate().filter(|(i, _)| i % peers == index).map(|(_, e)| e.clone()).collect(),
            store: worker_store.clone(),
            interval,
            on_evict: Some(on_evict.clone()),
        };
        let mut input = worker.dataflow::<u64, _, _>(|scope| dataflow::build(scope, &plan, &metrics, &counters, alerts, &keep));
        worker_shared.register(index);
        if let Some(rx) = receivers.get(index) {
            run(worker, &worker_shared, rx, &mut input);
        }
        drop(input);
        // Input closed: every window flushes as the frontier empties.
        while worker.step_or_park(None) {}
    })
    .map_err(EngineError::Start)?;
    Ok(Engine { shared, alerts: alert_rx, guards: Some(guards), store })
}

/// A worker's life while input is open: take batches, follow the watermark, park when idle.
fn run(worker: &mut timely::worker::Worker, shared: &Shared, rx: &flume::Receiver<Batch>, input: &mut EventInput) {
    loop {
        // Read the watermark *before* draining: every batch that moved it is queued by now.
        let wm = shared.watermark();
        let mut open = true;
        loop {
            match rx.try_recv() {
                Ok(batch) => {
                    for event in batch {
                        input.send(event);
                    }
                }
                Err(flume::TryRecvError::Empty) => break,
                Err(flume::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if wm > *input.time() {
            input.advance_to(wm);
        } else {
            input.flush();
        }
        if !open {
            return;
        }
        worker.step_or_park(None);
    }
}

/// Runs `events`, in order, through a fresh engine and returns its alerts.
fn replay_plan(plan: Plan, cfg: EngineConfig, events: Vec<Event>) -> Result<Vec<Alert>, EngineError> {
    let engine = start_plan(plan, cfg, Arc::new(Metrics::new()))?;
    let rx = engine.alerts();
    let collector = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
    let handle = engine.handle();
    let mut events = events.into_iter().map(Arc::new).peekable();
    while events.peek().is_some() {
        let batch: Vec<_> = events.by_ref().take(1024).collect();
        handle.send_blocking(batch)?;
    }
    drop(handle);
    engine.shutdown()?;
    collector.join().map_err(|_| EngineError::Worker("alert collector panicked".into()))
}

#[cfg(test)]
mod tests;
