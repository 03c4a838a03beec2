//! Telemetry of the engine's correlation state, named once: each struct's `emit` writes the
//! `tracing` line and the metric together.

use rampart_core::{Counter, Metrics};
use std::path::Path;

/// A correlation state snapshot was written.
pub struct StateSnapshotWritten<'a> {
    /// The file.
    pub file: &'a Path,
    /// The final snapshot (input ended) rather than a periodic one.
    pub last: bool,
}

impl StateSnapshotWritten<'_> {
    /// Counts `rampart_state_snapshots_written_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::debug!(file = %self.file.display(), last = self.last, "correlation state written");
        metrics.add(Counter::StateSnapshotsWritten, 1);
    }
}

/// A correlation state snapshot could not be written (the previous one is intact).
pub struct StateSnapshotFailed<'a> {
    /// The file.
    pub file: &'a Path,
    /// Why.
    pub error: &'a str,
}

impl StateSnapshotFailed<'_> {
    /// Counts `rampart_state_snapshots_failed_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::warn!(file = %self.file.display(), error = self.error, "correlation state could not be written; the previous snapshot is intact");
        metrics.add(Counter::StateSnapshotsFailed, 1);
    }
}

/// new_term operators forgot `count` terms to stay within `max_terms`.
pub struct NewTermsEvicted {
    /// How many.
    pub count: u64,
}

impl NewTermsEvicted {
    /// Counts `rampart_new_terms_evicted_total`.
    pub fn emit(self, metrics: &Metrics) {
        tracing::trace!(count = self.count, "new_term terms evicted (max_terms)");
        metrics.add(Counter::NewTermsEvicted, self.count);
    }
}
