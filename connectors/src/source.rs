//! What every source is given: the bounded channel it feeds, the shared metrics, the
//! normalizer, and a [`Shutdown`] signal.
//!
//! Sources push whole batches (`Vec<Event>`) and await when the channel is full: that await
//! is the backpressure that keeps memory bounded when the engine or an output is slow.

use rampart_core::{Event, Metrics, Normalizer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// The most events a source puts in one batch.
pub const MAX_BATCH: usize = 1024;

/// Everything a source needs to run.
#[derive(Clone)]
pub struct SourceContext {
    /// Where batches go; bounded, so `send_async` waits when the pipeline is behind.
    pub out: flume::Sender<Vec<Event>>,
    /// Counters (`EventsAccepted`, `EventsInvalid`) shared by the whole process.
    pub metrics: Arc<Metrics>,
    /// Turns sender JSON into MozDef-schema events.
    pub normalizer: Normalizer,
    /// Fires when the source must stop.
    pub shutdown: Shutdown,
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext").field("shutdown", &self.shutdown.is_triggered()).finish_non_exhaustive()
    }
}

impl SourceContext {
    /// Sends one batch, counting its events as accepted once the pipeline has them.
    /// Returns `false` (and drops the batch) if shutdown fired first or the pipeline closed.
    pub async fn send(&mut self, batch: Vec<Event>) -> bool {
        if batch.is_empty() {
            return true;
        }
        let n = batch.len() as u64;
        let out = self.out.clone();
        tokio::select! {
            biased;
            r = out.send_async(batch) => match r {
                Ok(()) => {
                    crate::events::EventsAccepted { input: "source", count: n }.emit(&self.metrics);
                    true
                }
                Err(_) => false,
            },
            _ = self.shutdown.wait() => false,
        }
    }
}

/// The receiving side of a shutdown signal; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending side: [`ShutdownTrigger::trigger`] stops every clone of the paired
/// [`Shutdown`]. Dropping the trigger counts as triggering, so a forgotten source stops.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A new trigger and its signal.
pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Fires the signal (idempotent).
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Another receiver of this trigger's signal.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Whether the signal has fired (or its trigger is gone).
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves when the signal fires or its trigger is dropped.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_and_drop_both_stop() {
        let (t, mut s) = shutdown_pair();
        assert!(!s.is_triggered());
        let mut s2 = s.clone();
        t.trigger();
        s.wait().await;
        s2.wait().await;
        assert!(s.is_triggered());

        let (t, mut s) = shutdown_pair();
        drop(t);
        s.wait().await;
        assert!(s.is_triggered());
    }

    #[tokio::test]
    async fn send_counts_only_delivered_batches() {
        let (tx, rx) = flume::bounded(1);
        let (t, s) = shutdown_pair();
        let metrics = Arc::new(Metrics::new());
        let mut ctx = SourceContext { out: tx, metrics: metrics.clone(), normalizer: Normalizer::default(), shutdown: s };
        let ev = || Normalizer::default().normalize(serde_json::json!({"a": 1}), rampart_core::EventId(1)).unwrap();
        assert!(ctx.send(vec![ev(), ev()]).await);
        assert_eq!(metrics.get(rampart_core::Counter::EventsAccepted), 2);
        // The channel is full: a send waits, and shutdown releases it without counting.
        t.trigger();
        assert!(!ctx.send(vec![ev()]).await);
        assert_eq!(metrics.get(rampart_core::Counter::EventsAccepted), 2);
        assert_eq!(rx.len(), 1);
    }
}

/// Deliveries a queue source has taken whose events the outputs have not settled yet, so the
/// source can bound them and wait for them to drain at shutdown (AMQP, SQS).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    count: AtomicUsize,
    settled: Notify,
}

impl Pending {
    /// One more delivery waits on the outputs.
    pub(crate) fn begin(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// One delivery is settled.
    pub(crate) fn done(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
        self.settled.notify_waiters();
    }

    /// How many wait now.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Returns once fewer than `max` wait.
    pub(crate) async fn below(&self, max: usize) {
        loop {
            // Registered before the check, so a `done` between the two is not missed.
            let wait = self.settled.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            if self.len() < max {
                return;
            }
            wait.await;
        }
    }

    /// Returns once none wait.
    pub(crate) async fn idle(&self) {
        self.below(1).await;
    }
}
