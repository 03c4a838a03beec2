//! [`Sink`]: what an output does, and [`EventBatch`], what it is given.
//!
//! A sink runs on its own actor thread (a single-threaded tokio runtime owned by
//! `rampart-actors`), so its futures need not be `Send` and a local sink may do blocking
//! file IO without stalling the engine or the inputs. Calls are serialized: the next
//! `write_*` starts only when the previous one has resolved, and waiting in one is the
//! backpressure that holds the inputs.
//!
//! Delivery: every event in a batch carries the [`AckToken`] of the delivery it came from
//! (or none). A sink settles each token once it knows the outcome: it *drops* the token when
//! the event is durably stored (which counts as delivered), or calls
//! [`AckToken::report`] with [`AckStatus::Errored`] (a retry can help: redeliver) or
//! [`AckStatus::Rejected`] (never storable: dead-letter) and then drops it. A local sink
//! settles before its `write_events` returns; a network sink (Elasticsearch) may return as
//! soon as the batch is in its bounded buffer and settle later, from its own tasks.

use crate::error::ConnectorError;
use futures::future::LocalBoxFuture;
use rampart_core::{AckStatus, AckToken, Alert, Event};
use std::sync::Arc;

/// A boxed, non-`Send` future (sinks run on one thread).
pub type SinkFuture<'a> = LocalBoxFuture<'a, Result<(), ConnectorError>>;

/// Events for one output: the events (shared by every output and the engine) and, index
/// for index, the ack token each came with (this output's clone).
#[derive(Clone, Debug, Default)]
pub struct EventBatch {
    /// The events.
    pub events: Arc<Vec<Arc<Event>>>,
    /// `acks[i]` belongs to `events[i]`; `None` for sources without acknowledgement
    /// (files, demo). Either empty (no event has one) or as long as `events`.
    pub acks: Vec<Option<AckToken>>,
}

impl EventBatch {
    /// A batch without ack tokens.
    pub fn new(events: Vec<Arc<Event>>) -> EventBatch {
        EventBatch { events: Arc::new(events), acks: Vec::new() }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Each event with its token.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<Event>, Option<&AckToken>)> {
        self.events.iter().enumerate().map(|(i, e)| (e, self.acks.get(i).and_then(Option::as_ref)))
    }

    /// Settles every token from a whole-batch outcome: `Ok` drops them (delivered), an
    /// error reports it on each (errored or rejected by its retry hint) and then drops them.
    pub fn settle(self, outcome: &Result<(), ConnectorError>) {
        if let Err(e) = outcome {
            let status = if e.retry() == rampart_core::Retry::Never { AckStatus::Rejected } else { AckStatus::Errored };
            let reason = e.to_string();
            for t in self.acks.iter().flatten() {
                t.report(status, reason.clone());
            }
        }
    }
}

/// An output of events and/or alerts; see the module docs for the delivery contract.
pub trait Sink: Send {
    /// The component name used in logs and errors (`file`, `stdout`, `elasticsearch`).
    fn name(&self) -> &'static str;

    /// Whether this output wants events.
    fn wants_events(&self) -> bool;

    /// Whether this output wants alerts.
    fn wants_alerts(&self) -> bool;

    /// Connects (checks the peer, installs templates) before the first write. An error
    /// whose retry hint is `Never` stops the pipeline from starting; the default has
    /// nothing to do.
    fn connect(&mut self) -> SinkFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Takes a batch of events and settles its ack tokens (now or later). An `Err` means
    /// the batch was not taken; its tokens must have been reported as failed.
    fn write_events(&mut self, batch: EventBatch) -> SinkFuture<'_>;

    /// Writes a batch of alerts (durably, or into a bounded buffer flushed by
    /// [`Sink::flush`]).
    fn write_alerts(&mut self, alerts: Arc<Vec<Alert>>) -> SinkFuture<'_>;

    /// Writes everything buffered and waits until every token taken so far is settled
    /// (called at shutdown). The default has nothing to do.
    fn flush(&mut self) -> SinkFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Adapts a blocking write to [`Sink::write_events`]: runs it, settles the batch's tokens
/// from its result, and returns the result.
pub fn settle_now<'a>(batch: EventBatch, write: impl FnOnce(&[Arc<Event>]) -> Result<(), ConnectorError>) -> SinkFuture<'a> {
    let r = write(&batch.events);
    batch.settle(&r);
    Box::pin(std::future::ready(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn token(tx: &mpsc::Sender<(AckStatus, Option<String>)>) -> Option<AckToken> {
        let tx = tx.clone();
        Some(AckToken::new(move |s, r| {
            let _ = tx.send((s, r));
        }))
    }

    fn event() -> Arc<Event> {
        Arc::new(rampart_core::Normalizer::default().normalize(serde_json::json!({"summary": "x"}), rampart_core::EventId(1)).unwrap())
    }

    #[test]
    fn settle_drops_on_success_and_reports_errors_by_retry_hint() {
        let (tx, rx) = mpsc::channel();
        let b = EventBatch { events: Arc::new(vec![event(), event()]), acks: vec![token(&tx), None] };
        b.settle(&Ok(()));
        assert_eq!(rx.try_recv().unwrap().0, AckStatus::Delivered);
        assert!(rx.try_recv().is_err());

        let b = EventBatch { events: Arc::new(vec![event()]), acks: vec![token(&tx)] };
        let io = ConnectorError::Write { component: "file output", path: "/x".into(), source: std::io::Error::other("disk full") };
        b.settle(&Err(io));
        let (s, r) = rx.try_recv().unwrap();
        assert_eq!(s, AckStatus::Errored);
        assert!(r.unwrap().contains("disk full"));
    }
}
