//! [`InputActor`]: one per input. It runs the connector and forwards what it produces.
//!
//! The connector pushes batches into a small bounded channel; the forwarder takes each
//! batch, runs the plugin chain over it (between normalization and correlation), wraps the events in `Arc`s, and awaits both the engine (`send().await` on its
//! bounded channel) and every event output (`send().await` on its bounded mailbox) before
//! taking the next. A slow consumer therefore stops the forwarder, the channel fills, and
//! the connector waits: memory stays bounded by a few batches per hop.
//!
//! Supervision: a server input (`http`, `syslog`) that fails is restarted with exponential backoff
//! (1 s doubling to 30 s) while the pipeline runs, when its error says a retry can help; an
//! `amqp` input reconnects the same way with its own `reconnect_min`/`reconnect_max`;
//! a finite input (`file`, `demo`) that fails is reported, not restarted (re-reading a
//! file would duplicate what was already accepted).

use crate::output::{OutputActor, WriteEvents};
use crate::pipeline::EngineFeed;
use actix::prelude::*;
use futures::future::join_all;
use rampart_connectors::amqp::{AmqpConfig, AmqpInput, SessionEnd};
use rampart_connectors::plugins::Chain;
use rampart_connectors::{aws, demo, file, http, syslog, ConnectorError, EventBatch, InputConfig, Shutdown, SourceContext};
use rampart_core::{AckStatus, AckToken, Event, Metrics, Normalizer, Retry};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Batches the connector may queue ahead of the forwarder.
pub const SOURCE_QUEUE: usize = 2;
/// Most error messages one input keeps for the report.
const MAX_ERRORS: usize = 100;

/// What an input reports when it ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputReport {
    /// The input (`file:/path`, `http:127.0.0.1:8080`, `demo:seed=42`).
    pub input: String,
    /// Its problems: invalid records (`path:line:column: …`), failures, restarts, and
    /// batches the engine or an output refused.
    pub errors: Vec<String>,
}

/// The actor running one input.
pub struct InputActor<F: EngineFeed> {
    cfg: InputConfig,
    metrics: Arc<Metrics>,
    normalizer: Normalizer,
    shutdown: Shutdown,
    feed: F,
    outputs: Vec<Addr<OutputActor>>,
    plugins: Option<Arc<Chain>>,
    done: Option<oneshot::Sender<InputReport>>,
}

impl<F: EngineFeed> std::fmt::Debug for InputActor<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputActor").field("input", &self.cfg.describe()).finish_non_exhaustive()
    }
}

impl<F: EngineFeed + Unpin> InputActor<F> {
    /// An input actor; its report goes to `done` when it stops. `plugins` runs on every batch
    /// before the engine and the outputs see it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(cfg: InputConfig, metrics: Arc<Metrics>, normalizer: Normalizer, shutdown: Shutdown, feed: F, outputs: Vec<Addr<OutputActor>>, plugins: Option<Arc<Chain>>, done: oneshot::Sender<InputReport>) -> Self {
        InputActor { cfg, metrics, normalizer, shutdown, feed, outputs, plugins, done: Some(done) }
    }
}

impl<F: EngineFeed + Unpin> Actor for InputActor<F> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (tx, rx) = flume::bounded(SOURCE_QUEUE);
        let source = SourceContext { out: tx, metrics: self.metrics.clone(), normalizer: self.normalizer.clone(), shutdown: self.shutdown.clone() };
        let connector = run_connector(self.cfg.clone(), source);
        let forward = forward(rx, self.feed.clone(), self.outputs.clone(), self.plugins.clone());
        let input = self.cfg.describe();
        let work = async move {
            let (mut errors, forward_errors) = futures::join!(connector, forward);
            errors.extend(forward_errors);
            errors.truncate(MAX_ERRORS);
            InputReport { input, errors }
        };
        ctx.spawn(work.into_actor(self).map(|report, act, ctx| {
            tracing::debug!(input = %report.input, errors = report.errors.len(), "input finished");
            if let Some(done) = act.done.take() {
                let _ = done.send(report);
            }
            ctx.stop();
        }));
    }
}

/// Runs the connector to its end; returns its problems.
async fn run_connector(cfg: InputConfig, source: SourceContext) -> Vec<String> {
    let name = cfg.describe();
    match cfg {
        InputConfig::File(c) => match file::run(&c, source).await {
            Ok(stats) => {
                let mut errors = stats.errors;
                if stats.invalid > errors.len() as u64 {
                    errors.push(format!("{name}: … {} invalid records in all", stats.invalid));
                }
                errors
            }
            Err(e) => vec![e.to_string()],
        },
        InputConfig::Demo(c) => match demo::run(&c, source).await {
            Ok(_) => Vec::new(),
            Err(e) => vec![e.to_string()],
        },
        InputConfig::Http(c) => {
            let c = &c;
            supervise_server(&name, source, |s| async move { http::start(c, s)?.finished().await.map(|()| Vec::new()) }).await
        }
        InputConfig::Syslog(c) => {
            let (c, name) = (&c, name.as_str());
            supervise_server(name, source, |s| async move { syslog::run(c, s).await.map(|stats| stats.problems(name)) }).await
        }
        InputConfig::Amqp(c) => supervise_amqp(c, source).await,
        // Both retry what a retry can fix themselves; an `Err` needs the user.
        InputConfig::Cloudtrail(c) => match aws::cloudtrail::run(&c, source).await {
            Ok(stats) => stats.errors,
            Err(e) => vec![e.to_string()],
        },
        InputConfig::Sqs(c) => match aws::sqs::run(&c, source).await {
            Ok(stats) => stats.errors,
            Err(e) => vec![e.to_string()],
        },
    }
}

/// Keeps an AMQP input consuming until shutdown. A failure to connect is retried after
/// `reconnect_min`, doubling up to `reconnect_max`; a session that was consuming and lost
/// its connection starts again from `reconnect_min`. Refusals no retry can fix (bad
/// credentials, a declaration that contradicts the broker, a missing queue with
/// `declare: false`) stop the input.
async fn supervise_amqp(cfg: AmqpConfig, source: SourceContext) -> Vec<String> {
    let mut shutdown = source.shutdown.clone();
    let (min, max) = (cfg.reconnect_min, cfg.reconnect_max);
    let mut input = AmqpInput::new(cfg, source);
    let mut errors = Vec::new();
    let mut backoff = min;
    loop {
        let failure = match input.session().await {
            Ok(SessionEnd::Shutdown) => break,
            Ok(SessionEnd::Lost(e)) => {
                backoff = min;
                e.to_string()
            }
            Err(e) if e.retry() == Retry::Never => {
                tracing::error!("{e}");
                errors.push(e.to_string());
                break;
            }
            Err(e) => e.to_string(),
        };
        let wait = rampart_core::time::format_duration(backoff);
        tracing::warn!("{failure}; reconnecting in {wait}");
        if errors.len() < MAX_ERRORS / 2 {
            errors.push(format!("{failure} (reconnecting in {wait})"));
        }
        tokio::select! {
            _ = actix_rt::time::sleep(backoff) => {}
            _ = shutdown.wait() => break,
        }
        backoff = (backoff * 2).min(max);
    }
    errors.extend(input.into_errors());
    errors
}

/// Keeps a server input up until shutdown, restarting it with backoff. One `serve` runs
/// the server until it stops and returns its problems, or fails.
async fn supervise_server<S, F>(name: &str, source: SourceContext, mut serve: S) -> Vec<String>
where
    S: FnMut(SourceContext) -> F,
    F: std::future::Future<Output = Result<Vec<String>, ConnectorError>>,
{
    let mut errors = Vec::new();
    let mut shutdown = source.shutdown.clone();
    let mut backoff = Duration::from_secs(1);
    loop {
        if shutdown.is_triggered() {
            break;
        }
        let failure = match serve(source.clone()).await {
            Ok(problems) => {
                errors.extend(problems);
                if shutdown.is_triggered() {
                    break;
                }
                format!("{name}: server stopped unexpectedly")
            }
            Err(e) if e.retry() == Retry::Never => {
                errors.push(e.to_string());
                break;
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!("{failure}; restarting in {}", rampart_core::time::format_duration(backoff));
        errors.push(format!("{failure} (restarting in {})", rampart_core::time::format_duration(backoff)));
        tokio::select! {
            _ = actix_rt::time::sleep(backoff) => {}
            _ = shutdown.wait() => break,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    errors
}

/// Moves batches from the connector through the plugin chain to the engine and the event
/// outputs, awaiting both.
///
/// The chain runs first, on the whole batch: what it drops never reaches the engine or an
/// output, and its ack token is released here, which settles the delivery as handled (an
/// AMQP message is acked).
///
/// Each event's ack token is taken off before the engine sees it (windows may hold an
/// event for as long as they last; the delivery must not wait for that) and every event
/// output gets its own clone. The forwarder's copy is dropped once the batch is handed
/// over, so a token fires when the last output has settled it — at once, as delivered,
/// when no output takes events. If an output fails to take the batch (or its actor is
/// gone, which drops the message and its clones unsettled), the forwarder reports the
/// failure on its own copies first, so the delivery is never counted as delivered.
pub(crate) async fn forward<F: EngineFeed>(rx: flume::Receiver<Vec<Event>>, feed: F, outputs: Vec<Addr<OutputActor>>, plugins: Option<Arc<Chain>>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut note = |e: String| {
        tracing::warn!("{e}");
        if errors.len() < MAX_ERRORS {
            errors.push(e);
        }
    };
    while let Ok(mut batch) = rx.recv_async().await {
        if let Some(chain) = &plugins {
            chain.apply(&mut batch);
            if batch.is_empty() {
                continue;
            }
        }
        let acks: Vec<Option<AckToken>> = if batch.iter().any(|e| e.ack.is_some()) { batch.iter_mut().map(|e| e.ack.take()).collect() } else { Vec::new() };
        let events: Vec<Arc<Event>> = batch.into_iter().map(Arc::new).collect();
        let shared = Arc::new(events.clone());
        let writes = join_all(outputs.iter().map(|o| o.send(WriteEvents(EventBatch { events: shared.clone(), acks: acks.clone() }))));
        let (engine, writes) = futures::join!(feed.send(events), writes);
        if let Err(e) = engine {
            note(format!("engine refused a batch of {}: {e}", shared.len()));
        }
        for w in writes {
            let problem = match w {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("output unavailable: {e}"),
            };
            for t in acks.iter().flatten() {
                t.report(AckStatus::Errored, problem.clone());
            }
            note(problem);
        }
        drop(acks);
    }
    errors
}
