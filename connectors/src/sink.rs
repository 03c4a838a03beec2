//! [`Sink`]: what an output does. Small and blocking on purpose: the local outputs write a
//! whole batch with one `write` call per file, and the actor that owns a sink runs it on its
//! own thread, so a slow disk stalls only that output (and, through its bounded mailbox,
//! the inputs feeding it), never the engine's workers.

use crate::error::ConnectorError;
use rampart_core::{Alert, Event};
use std::sync::Arc;

/// An output of events and/or alerts.
pub trait Sink: Send {
    /// The component name used in logs and errors (`file`, `stdout`).
    fn name(&self) -> &'static str;

    /// Whether this output wants events.
    fn wants_events(&self) -> bool;

    /// Whether this output wants alerts.
    fn wants_alerts(&self) -> bool;

    /// Writes a batch of events; when it returns `Ok` the batch is durably accepted (the
    /// point at which ack tokens may be released).
    fn write_events(&mut self, events: &[Arc<Event>]) -> Result<(), ConnectorError>;

    /// Writes a batch of alerts, durably as for events.
    fn write_alerts(&mut self, alerts: &[Alert]) -> Result<(), ConnectorError>;

    /// Flushes anything buffered (called at shutdown). The default has nothing to do
    /// because writes are flushed per batch.
    fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}
