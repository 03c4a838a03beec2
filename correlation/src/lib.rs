//! `rampart-correlation`: incremental event-time correlation operators on timely and
//! differential dataflow. It knows nothing about rules: the engine hands it keyed records
//! and per-slot specs (plain data) and gets crossings back.
//!
//! Event time is the timely timestamp ([`Time`], milliseconds). Every record is keyed by a
//! [`Key`]: the correlation *slot* (the engine's index of a correlation rule) and a group
//! key, so one operator chain serves every rule of a type.
//!
//! - [`count`]: [`WindowedCount::windowed_count`], events per key in a sliding window,
//!   reporting each threshold crossing with the events in the window.
//! - [`distinct`]: [`WindowedDistinctCount::windowed_distinct_count`], distinct values per
//!   key in a sliding window, same crossings.
//! - [`suppress`]: [`Suppress::suppress`], final ordering of alert candidates on worker 0
//!   and per-rule suppression of repeats.
//! - `window` (private): the sliding window as delayed retraction and the crossing
//!   detection both windowed operators share.

pub mod count;
pub mod distinct;
pub mod suppress;
mod window;

pub use count::WindowedCount;
pub use distinct::WindowedDistinctCount;
pub use suppress::{Candidate, Candidates, Suppress};

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Event time: milliseconds since the Unix epoch (the timely timestamp).
pub type Time = u64;

/// A correlation slot: the engine's index of one correlation rule.
pub type Slot = u32;

/// The rendered group-by values of a record, in the rule's group-by order.
pub type GroupKey = Vec<String>;

/// What records are keyed by: slot and group.
pub type Key = (Slot, GroupKey);

/// One event's share in a window: enough to reference it from an alert and to measure
/// latency. Ordered by time, then id, so sorting puts the oldest first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Contribution {
    /// Event time (ms).
    pub time: Time,
    /// The event id.
    pub id: u128,
    /// Monotonic ns at acceptance (`rampart_core::metrics::clock_ns`).
    pub accepted_ns: u64,
}

/// How one slot's window behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length `w` in ms: a record at `t` counts for window ends in `[t, t + w]`.
    pub window_ms: u64,
    /// The count (or distinct count) at which the slot fires: `value >= threshold`.
    pub threshold: u64,
    /// At most this many contributions are reported with a crossing (oldest first).
    pub max_refs: usize,
}

/// Specs indexed by slot. A record whose slot has no spec is ignored.
pub type Specs = Arc<Vec<WindowSpec>>;

/// A key's value went from below its threshold (or nothing) to at or above it at `time`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Crossing {
    /// The slot.
    pub slot: Slot,
    /// The group key.
    pub key: GroupKey,
    /// The window end: the time of the crossing.
    pub time: Time,
    /// The window start, `time - w` (inclusive).
    pub window_start: Time,
    /// The count or distinct count at `time`.
    pub value: u64,
    /// Contributions in the window at `time`, oldest first, at most the slot's `max_refs`.
    pub events: Vec<Contribution>,
    /// The latest acceptance among the window's contributions: the event that completed it.
    pub trigger_accepted_ns: u64,
}

/// Keyed contributions, present at their event time (input of [`WindowedCount`]).
pub type Events<'scope> = differential_dataflow::VecCollection<'scope, Time, (Key, Contribution), isize>;

/// Keyed `(value, contribution)` pairs (input of [`WindowedDistinctCount`]).
pub type Values<'scope> = differential_dataflow::VecCollection<'scope, Time, (Key, (String, Contribution)), isize>;

/// A stream of crossings, each at its own time.
pub type Crossings<'scope> = timely::dataflow::StreamVec<'scope, Time, Crossing>;

/// The timely scope the operators live in.
pub type Scope<'scope> = timely::dataflow::Scope<'scope, Time>;
