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
pub use suppress::{Candidate, Candidates, Durations, Suppress};

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

#[cfg(test)]
pub(crate) mod testkit {
    //! Runs the windowed operators on fixed inputs and recomputes their answers from scratch.

    use super::*;
    use crate::window::Item;
    use differential_dataflow::input::Input;
    use rand::rngs::SmallRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    use timely::dataflow::operators::capture::{Capture, Extract};

    /// A windowed operator under test.
    pub type Op<V> = for<'s> fn(differential_dataflow::VecCollection<'s, Time, (Key, V), isize>, &Specs) -> Crossings<'s>;

    /// Keyed records, each with its time.
    pub type Records<V> = Vec<((Key, V), Time)>;

    /// Feeds `records` (each at its own time, in the given order, spread over the workers)
    /// into `op` on `workers` workers and returns every crossing, sorted.
    pub fn run<V: Item + Send + Sync>(workers: usize, records: Records<V>, specs: Specs, op: Op<V>) -> Vec<Crossing> {
        let (send, recv) = std::sync::mpsc::channel();
        let send = Arc::new(Mutex::new(send));
        let records = Arc::new(records);
        timely::execute(timely::Config::process(workers), move |worker| {
            let send = send.lock().unwrap().clone();
            let (index, peers) = (worker.index(), worker.peers());
            let specs = specs.clone();
            let mut input = worker.dataflow::<Time, _, _>(|scope| {
                let (input, coll) = scope.new_collection();
                op(coll, &specs).capture_into(send);
                input
            });
            for (i, (rec, t)) in records.iter().enumerate() {
                if i % peers == index {
                    input.update_at(rec.clone(), *t, 1);
                }
            }
        })
        .unwrap()
        .join()
        .into_iter()
        .for_each(|r| r.unwrap());
        let mut out: Vec<Crossing> = recv.extract().into_iter().flat_map(|(t, v)| v.into_iter().inspect(move |c| assert_eq!(c.time, t))).collect();
        out.sort();
        out
    }

    /// What the crossings must be: the measure at every time, from scratch.
    pub fn oracle<V: Item>(records: &[((Key, V), Time)], specs: &Specs) -> Vec<Crossing> {
        let keys: BTreeSet<&Key> = records.iter().map(|((k, _), _)| k).filter(|k| specs.get(k.0 as usize).is_some()).collect();
        let horizon = records.iter().map(|(_, t)| *t).max().unwrap_or(0) + specs.iter().map(|s| s.window_ms).max().unwrap_or(0) + 2;
        let mut out = Vec::new();
        for key in keys {
            let spec = &specs[key.0 as usize];
            let in_window = |end: Time| -> Vec<&V> {
                records.iter().filter(|((k, _), t)| k == key && *t <= end && t + spec.window_ms >= end).map(|((_, v), _)| v).collect()
            };
            let measure = |items: &[&V]| -> u64 {
                let distinct: BTreeSet<&str> = items.iter().filter_map(|v| v.distinct_value()).collect();
                if distinct.is_empty() { items.len() as u64 } else { distinct.len() as u64 }
            };
            let mut before = 0;
            for end in 0..=horizon {
                let items = in_window(end);
                let now = measure(&items);
                if now >= spec.threshold.max(1) && before < spec.threshold.max(1) {
                    let contribs: BTreeSet<&Contribution> = items.iter().map(|v| v.contribution()).collect();
                    out.push(Crossing {
                        slot: key.0,
                        key: key.1.clone(),
                        time: end,
                        window_start: end.saturating_sub(spec.window_ms),
                        value: now,
                        trigger_accepted_ns: contribs.iter().map(|c| c.accepted_ns).max().unwrap(),
                        events: contribs.into_iter().take(spec.max_refs).cloned().collect(),
                    });
                }
                before = now;
            }
        }
        out.sort();
        out
    }

    /// Two slots with different windows, thresholds and reference limits.
    pub fn specs() -> Specs {
        Arc::new(vec![
            WindowSpec { window_ms: 10, threshold: 3, max_refs: 2 },
            WindowSpec { window_ms: 25, threshold: 2, max_refs: 100 },
        ])
    }

    /// Random keyed records: few keys, times in `0..span`, values from a small set.
    pub fn random(seed: u64, n: usize, span: u64) -> Records<(String, Contribution)> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let slot = rng.random_range(0..2u32);
                let group = vec![["a", "b"][rng.random_range(0..2)].to_string()];
                let time = rng.random_range(0..span);
                let value = ["x", "y", "z", "w"][rng.random_range(0..4)].to_string();
                let c = Contribution { time, id: i as u128, accepted_ns: rng.random_range(0..1_000_000) };
                (((slot, group), (value, c)), time)
            })
            .collect()
    }

    /// The same records in another order.
    pub fn shuffled<T: Clone>(records: &[T], seed: u64) -> Vec<T> {
        let mut v = records.to_vec();
        v.shuffle(&mut SmallRng::seed_from_u64(seed));
        v
    }

    /// A contribution at `t` with id `id`.
    pub fn at(id: u128, t: Time) -> Contribution {
        Contribution { time: t, id, accepted_ns: id as u64 }
    }
}
