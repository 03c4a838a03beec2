//! Telemetry, named once: each struct's `emit` writes the `tracing` line and the metric
//! together, so a log line and its counter cannot drift apart. Nothing per event is logged
//! above `debug`; a rejected record is a `warn` only while the caller says it is among the
//! first few (inputs keep a bounded list of them for their report).

use rampart_core::{Counter, Event, Metrics, Stage};
use std::sync::Arc;

/// A source handed `count` events to the pipeline.
pub struct EventsAccepted<'a> {
    /// The input (`file`, `http`, `demo`).
    pub input: &'a str,
    /// How many.
    pub count: u64,
}

impl EventsAccepted<'_> {
    /// Counts `rampart_events_accepted_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::trace!(input = self.input, count = self.count, "events accepted");
        metrics.add(Counter::EventsAccepted, self.count);
    }
}

/// A record was rejected (not JSON, not an object, too large).
pub struct RecordInvalid<'a> {
    /// The input.
    pub input: &'a str,
    /// Where and why (`path:line:column: message`).
    pub message: &'a str,
    /// How many records this stands for (an HTTP request reports them together).
    pub count: u64,
    /// Log at `warn` (the first few) rather than `debug`.
    pub loud: bool,
}

impl RecordInvalid<'_> {
    /// Counts `rampart_events_invalid_total`.
    pub fn emit(self, metrics: &Metrics) {
        if self.loud {
            tracing::warn!(input = self.input, "{}", self.message);
        } else {
            tracing::debug!(input = self.input, "{}", self.message);
        }
        metrics.add(Counter::EventsInvalid, self.count);
    }
}

/// An input received events but had to drop them: the pipeline was full and the protocol
/// cannot push back (UDP). Callers rate-limit `loud` (a flood of drops is one warning every
/// few seconds, not one per datagram).
pub struct EventsDropped<'a> {
    /// The input.
    pub input: &'a str,
    /// How many were dropped now.
    pub count: u64,
    /// How many this input has dropped in all (for the log line).
    pub total: u64,
    /// Log at `warn` rather than `debug`.
    pub loud: bool,
}

impl EventsDropped<'_> {
    /// Counts `rampart_events_dropped_total`.
    pub fn emit(self, metrics: &Metrics) {
        if self.loud {
            tracing::warn!(input = self.input, total = self.total, "the pipeline is full: dropping received events ({} so far)", self.total);
        } else {
            tracing::debug!(input = self.input, total = self.total, "dropped {} events: the pipeline is full", self.count);
        }
        metrics.add(Counter::EventsDropped, self.count);
    }
}

/// An output durably wrote a batch of events.
pub struct EventsWritten<'a> {
    /// The output (`file`, `stdout`).
    pub output: &'a str,
    /// The events.
    pub events: &'a [Arc<Event>],
}

impl EventsWritten<'_> {
    /// Counts `rampart_events_written_total` and records each event's accept-to-written
    /// latency.
    pub fn emit(self, metrics: &Metrics) {
        tracing::trace!(output = self.output, count = self.events.len(), "events written");
        metrics.add(Counter::EventsWritten, self.events.len() as u64);
        for e in self.events {
            metrics.record_since(Stage::AcceptToWritten, e.accepted_ns);
        }
    }
}

/// An output durably wrote a batch of alerts.
pub struct AlertsWritten<'a> {
    /// The output.
    pub output: &'a str,
    /// How many.
    pub count: u64,
}

impl AlertsWritten<'_> {
    /// Counts `rampart_alerts_written_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::debug!(output = self.output, count = self.count, "alerts written");
        metrics.add(Counter::AlertsWritten, self.count);
    }
}

/// An output's request failed in a way a retry may fix (no connection, a timeout, 429,
/// 5xx); it sends the affected documents again after `delay`.
pub struct OutputRetrying<'a> {
    /// The output.
    pub output: &'a str,
    /// Where it writes (credentials redacted).
    pub peer: &'a str,
    /// Documents to send again.
    pub docs: usize,
    /// Failed attempts so far for these documents.
    pub attempt: u32,
    /// Wait before the next attempt.
    pub delay: std::time::Duration,
    /// What went wrong.
    pub reason: &'a str,
    /// Log at `warn` (the caller limits how often) rather than `debug`.
    pub loud: bool,
}

impl OutputRetrying<'_> {
    /// Counts one failed attempt in `rampart_output_errors_total`.
    pub fn emit(self, metrics: &Metrics) {
        if self.loud {
            tracing::warn!(output = self.output, peer = self.peer, docs = self.docs, attempt = self.attempt, "write failed, retrying in {:?}: {}", self.delay, self.reason);
        } else {
            tracing::debug!(output = self.output, peer = self.peer, docs = self.docs, attempt = self.attempt, "write failed, retrying in {:?}: {}", self.delay, self.reason);
        }
        metrics.add(Counter::OutputErrors, 1);
    }
}

/// An output gave up on records: the store refused them for good (dead-lettered), failed
/// in a way a retry cannot fix now, or the retry time ran out.
pub struct OutputRecordsFailed<'a> {
    /// The output.
    pub output: &'a str,
    /// How many records.
    pub count: u64,
    /// The first record's reason.
    pub reason: &'a str,
    /// What became of them (`not stored`, `sent to the dead-letter index`).
    pub what: &'a str,
    /// Log at `warn` (the caller limits how often) rather than `debug`.
    pub loud: bool,
}

impl OutputRecordsFailed<'_> {
    /// Counts each record in `rampart_output_errors_total`.
    pub fn emit(self, metrics: &Metrics) {
        if self.loud {
            tracing::warn!(output = self.output, count = self.count, "{} records {}: {}", self.count, self.what, self.reason);
        } else {
            tracing::debug!(output = self.output, count = self.count, "{} records {}: {}", self.count, self.what, self.reason);
        }
        metrics.add(Counter::OutputErrors, self.count);
    }
}

/// An output failed to write a batch.
pub struct OutputWriteFailed<'a> {
    /// The output.
    pub output: &'a str,
    /// The OS error.
    pub error: &'a std::io::Error,
}

impl OutputWriteFailed<'_> {
    /// Counts `rampart_output_errors_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::warn!(output = self.output, "write failed: {}", self.error);
        metrics.add(Counter::OutputErrors, 1);
    }
}

/// An AMQP input published a message to its dead-letter exchange (and then acked it).
pub struct MessageDeadLettered<'a> {
    /// The input (`amqp:eventtask`).
    pub input: &'a str,
    /// Why it can never be stored.
    pub reason: &'a str,
}

impl MessageDeadLettered<'_> {
    /// Counts `rampart_amqp_dead_lettered_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::debug!(input = self.input, reason = self.reason, "message dead-lettered");
        metrics.add(Counter::AmqpDeadLettered, 1);
    }
}

/// An AMQP input handed a message back for redelivery (nack with requeue).
pub struct MessageRequeued<'a> {
    /// The input.
    pub input: &'a str,
    /// What the output that failed said.
    pub reason: &'a str,
}

impl MessageRequeued<'_> {
    /// Counts `rampart_amqp_requeued_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::debug!(input = self.input, reason = self.reason, "message requeued");
        metrics.add(Counter::AmqpRequeued, 1);
    }
}

/// The broker delivered a message again (it was unacknowledged on a channel that closed, or
/// requeued).
pub struct MessageRedelivered<'a> {
    /// The input.
    pub input: &'a str,
}

impl MessageRedelivered<'_> {
    /// Counts `rampart_amqp_redelivered_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::trace!(input = self.input, "redelivered message");
        metrics.add(Counter::AmqpRedelivered, 1);
    }
}

/// An AMQP connector connected (again) and is ready: consuming, or able to publish.
pub struct AmqpConnected<'a> {
    /// The component (`amqp:eventtask`, `amqp output`).
    pub component: &'a str,
    /// The broker (credentials removed).
    pub peer: &'a str,
    /// Whether this replaces a connection that was lost.
    pub reconnect: bool,
}

impl AmqpConnected<'_> {
    /// Counts `rampart_amqp_reconnects_total` when it is a reconnection.
    pub fn emit(self, metrics: &Metrics) {
        if self.reconnect {
            tracing::info!(component = self.component, peer = self.peer, "reconnected to RabbitMQ");
            metrics.add(Counter::AmqpReconnects, 1);
        } else {
            tracing::info!(component = self.component, peer = self.peer, "connected to RabbitMQ");
        }
    }
}

/// An output could not deliver a batch to a network peer.
pub struct OutputPeerFailed<'a> {
    /// The output.
    pub output: &'a str,
    /// What happened.
    pub message: &'a str,
}

impl OutputPeerFailed<'_> {
    /// Counts `rampart_output_errors_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::warn!(output = self.output, "{}", self.message);
        metrics.add(Counter::OutputErrors, 1);
    }
}
