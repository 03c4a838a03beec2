//! [`run_pipeline`]: starts outputs, the alert pump and inputs around an engine, waits, and
//! shuts everything down in order.
//!
//! Ordered shutdown, when every input has ended (a file at EOF, a demo with a duration) or
//! the shutdown future fires (Ctrl-C):
//!
//! 1. stop the inputs (servers stop accepting; what they already accepted is forwarded);
//! 2. shut the engine down: it flushes every open window, while the alert pump keeps
//!    draining its alert channel into the alert outputs;
//! 3. wait for the pump to write the last alert;
//! 4. flush and close the outputs;
//! 5. return a [`PipelineReport`].

use crate::alerts::AlertPump;
use crate::error::PipelineError;
use crate::input::{InputActor, InputReport};
use crate::output::{OutputActor, OutputHandle, MAILBOX};
use actix::prelude::*;
use rampart_connectors::plugins::Chain;
use rampart_connectors::{shutdown_pair, InputConfig, OutputConfig, Sink};
use rampart_core::{Alert, Counter, Event, EventTime, Metrics, Normalizer, NormalizerConfig};
use rampart_engine::{Engine, EngineError, EngineReport, Handle};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// What to run.
#[derive(Clone, Debug)]
pub struct PipelineSpec {
    /// The inputs (`inputs:`); at least one.
    pub inputs: Vec<InputConfig>,
    /// The outputs (`outputs:`); at least one.
    pub outputs: Vec<OutputConfig>,
    /// How events are normalized.
    pub normalizer: NormalizerConfig,
    /// `Some(lateness)` in `run` mode: every second the watermark is advanced to
    /// `now − lateness`, so windows close during quiet periods. `None` for replays, where
    /// only event time moves the watermark.
    pub processing_time_watermark: Option<Duration>,
    /// The plugin chain every input's batches go through before the engine and the outputs;
    /// `None` for none.
    pub plugins: Option<Arc<Chain>>,
}

/// What a pipeline did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineReport {
    /// Events the inputs accepted.
    pub accepted: u64,
    /// Records the inputs rejected.
    pub invalid: u64,
    /// Events too late to correlate (still written).
    pub late: u64,
    /// Alerts the engine emitted.
    pub alerts: u64,
    /// Alerts withheld by suppression.
    pub suppressed: u64,
    /// Event writes by outputs (an event written by two outputs counts twice).
    pub events_written: u64,
    /// Alert writes by outputs.
    pub alerts_written: u64,
    /// Each input's problems.
    pub inputs: Vec<InputReport>,
    /// Output and alert-delivery problems.
    pub output_errors: Vec<String>,
}

impl PipelineReport {
    /// Every input problem, prefixed by nothing (the messages name their input).
    pub fn input_errors(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().flat_map(|i| i.errors.iter().map(String::as_str))
    }
}

/// What the inputs need to feed the engine. Implemented by [`rampart_engine::Handle`].
pub trait EngineFeed: Clone + Unpin + 'static {
    /// Sends a batch, waiting while the engine is full.
    fn send(&self, batch: Vec<Arc<Event>>) -> impl Future<Output = Result<(), EngineError>>;
    /// Advances the watermark to at least `t`.
    fn advance_to(&self, t: EventTime);
}

impl EngineFeed for Handle {
    fn send(&self, batch: Vec<Arc<Event>>) -> impl Future<Output = Result<(), EngineError>> {
        Handle::send(self, batch)
    }
    fn advance_to(&self, t: EventTime) {
        Handle::advance_to(self, t)
    }
}

/// What the pipeline needs from an engine. Implemented by [`rampart_engine::Engine`];
/// tests use stand-ins to check the wiring alone.
pub trait PipelineEngine: Send + 'static {
    /// The feeding side.
    type Feed: EngineFeed;
    /// A feed for one input.
    fn feed(&self) -> Self::Feed;
    /// The alert channel.
    fn alerts(&self) -> flume::Receiver<Alert>;
    /// Flushes every window and stops (blocking; alerts are drained meanwhile).
    fn shutdown(self) -> Result<EngineReport, EngineError>;
}

impl PipelineEngine for Engine {
    type Feed = Handle;
    fn feed(&self) -> Handle {
        self.handle()
    }
    fn alerts(&self) -> flume::Receiver<Alert> {
        Engine::alerts(self)
    }
    fn shutdown(self) -> Result<EngineReport, EngineError> {
        Engine::shutdown(self)
    }
}

/// Runs `spec` around `engine` until its inputs end or `shutdown` resolves, then stops in
/// order (see the module docs). Call it inside an actix `System` (`#[actix::main]`,
/// `System::new().block_on(…)`).
pub async fn run_pipeline<E: PipelineEngine>(spec: PipelineSpec, engine: E, metrics: Arc<Metrics>, shutdown: impl Future<Output = ()>) -> Result<PipelineReport, PipelineError> {
    let mut sinks = Vec::with_capacity(spec.outputs.len());
    for (index, o) in spec.outputs.iter().enumerate() {
        sinks.push(o.build(metrics.clone()).map_err(|source| PipelineError::Output { index, kind: o.kind(), source })?);
    }
    run_with_sinks(spec, sinks, engine, metrics, shutdown).await
}

/// [`run_pipeline`] with outputs already built (`spec.outputs` is ignored).
pub async fn run_with_sinks<E: PipelineEngine>(spec: PipelineSpec, sinks: Vec<Box<dyn Sink>>, engine: E, metrics: Arc<Metrics>, shutdown: impl Future<Output = ()>) -> Result<PipelineReport, PipelineError> {
    if spec.inputs.is_empty() {
        return Err(PipelineError::Spec("no inputs".into()));
    }
    if sinks.is_empty() {
        return Err(PipelineError::Spec("no outputs".into()));
    }
    let before = |c| metrics.get(c);
    let start = [Counter::EventsAccepted, Counter::EventsInvalid, Counter::EventsWritten, Counter::AlertsWritten].map(before);

    let outputs: Vec<OutputHandle> = sinks.into_iter().map(|s| OutputActor::launch(s, MAILBOX)).collect();
    // 0. Connect every output before any input starts: a store that refuses us (bad
    //    address, credentials, template) stops the start with its reason.
    for (index, o) in outputs.iter().enumerate() {
        if let Err(source) = o.connect().await {
            let kind = o.name;
            for o in outputs {
                let _ = o.close().await;
            }
            return Err(PipelineError::Output { index, kind, source });
        }
    }
    let event_outputs: Vec<_> = outputs.iter().filter(|o| o.events).map(|o| o.addr.clone()).collect();
    let alert_outputs: Vec<_> = outputs.iter().filter(|o| o.alerts).map(|o| o.addr.clone()).collect();

    let (pump_done, pump_result) = oneshot::channel();
    AlertPump::new(engine.alerts(), alert_outputs, pump_done).start();

    let (ticker_stop, mut ticker_shutdown) = shutdown_pair();
    if let Some(lateness) = spec.processing_time_watermark {
        let feed = engine.feed();
        actix_rt::spawn(async move {
            let mut tick = actix_rt::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => feed.advance_to(EventTime::now().saturating_sub(lateness)),
                    _ = ticker_shutdown.wait() => break,
                }
            }
        });
    }

    let (inputs_stop, inputs_shutdown) = shutdown_pair();
    let normalizer = Normalizer::new(spec.normalizer.clone());
    let mut dones = Vec::with_capacity(spec.inputs.len());
    for cfg in &spec.inputs {
        let (tx, rx) = oneshot::channel();
        InputActor::new(cfg.clone(), metrics.clone(), normalizer.clone(), inputs_shutdown.clone(), engine.feed(), event_outputs.clone(), spec.plugins.clone(), tx).start();
        dones.push(rx);
    }

    // 1. Wait for the inputs to end by themselves, or for the shutdown signal.
    let all_inputs = futures::future::join_all(dones);
    tokio::pin!(all_inputs);
    tokio::pin!(shutdown);
    let finished = tokio::select! {
        r = &mut all_inputs => r,
        _ = &mut shutdown => {
            tracing::info!("shutting down: stopping inputs");
            inputs_stop.trigger();
            all_inputs.await
        }
    };
    inputs_stop.trigger();
    ticker_stop.trigger();
    let inputs: Vec<InputReport> = finished.into_iter().map(|r| r.unwrap_or_else(|_| InputReport { input: "?".into(), errors: vec!["input actor stopped without a report".into()] })).collect();

    // 2. Flush the engine's windows; the pump keeps draining alerts meanwhile. An engine
    // error (a worker failed, the final correlation state snapshot could not be written) is
    // reported only once the alerts it did produce are written and the outputs closed.
    let engine_result = actix_rt::task::spawn_blocking(move || engine.shutdown()).await.map_err(|e| PipelineError::Internal(e.to_string()))?;

    // 3. The pump ends once the engine's alert channel is empty and closed.
    let (_pumped, mut output_errors) = pump_result.await.map_err(|_| PipelineError::Internal("alert pump stopped without a report".into()))?;

    // 4. Flush and close outputs.
    drop(event_outputs);
    for o in outputs {
        let name = o.name;
        if let Err(e) = o.close().await {
            output_errors.push(format!("{name}: {e}"));
        }
    }

    let engine_report = engine_result?;
    let delta = |i: usize, c| metrics.get(c).saturating_sub(start[i]);
    Ok(PipelineReport {
        accepted: delta(0, Counter::EventsAccepted),
        invalid: delta(1, Counter::EventsInvalid),
        late: engine_report.late,
        alerts: engine_report.alerts,
        suppressed: engine_report.suppressed,
        events_written: delta(2, Counter::EventsWritten),
        alerts_written: delta(3, Counter::AlertsWritten),
        inputs,
        output_errors,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod engine_e2e;
