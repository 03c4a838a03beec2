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
//! - [`absence`]: [`Absence::absence`], "A not followed by B within T" per key, fired by
//!   event-time timers when the watermark passes the deadline.
//! - [`deadman`]: [`Deadman::deadman`], "no events from X for T" per key, fired by
//!   processing-time (wall clock) timers; stamped with the watermark when it fires.
//! - [`aggregate`]: [`WindowedAggregate::windowed_aggregate`], the sum, mean or percentile
//!   of numeric values per key in a sliding window, same crossings.
//! - [`measure`]: [`Number`], [`Aggregate`] and [`Condition`], the plain data a slot's
//!   measure and threshold are made of.
//! - [`sequence`]: [`WindowedSequence::windowed_sequence`], how far an ordered list of
//!   steps has progressed per key in a sliding window (Sigma's `temporal_ordered`).
//! - [`follow`]: [`FollowSequences::follow_sequences`], Rampart's `sequence`: ordered
//!   steps per key within a maximum span, cancelled by `until`, at most `steps - 1` partial
//!   matches per key.
//! - [`new_term`]: [`NewTerms::new_terms`], the first time a value (or combination) is
//!   seen per group after a learning period; bounded memory, saved and restored.
//! - [`spike`]: [`Spikes::spikes`], the count in the current window against the reference
//!   window(s) before it, up or down by a ratio; saved and restored.
//! - [`persist`]: [`Saved`] state, [`Keep`] (restore and save options) and the
//!   [`Snapshots`] sink the stateful operators offer their state to.
//! - [`session`]: [`SessionWindows::session_windows`], per-key activity sessions closed
//!   by a quiet gap or a maximum length, reporting when a session's count, distinct count
//!   or aggregate crosses its threshold (`window: session(gap)`).
//! - [`suppress`]: [`Suppress::suppress`], final ordering of alert candidates on worker 0
//!   and per-rule suppression of repeats.
//! - `window` (private): the sliding window as delayed retraction and the crossing
//!   detection both windowed operators share.

pub mod absence;
pub mod aggregate;
pub mod count;
pub mod deadman;
pub mod distinct;
pub mod follow;
pub mod measure;
pub mod new_term;
pub mod persist;
pub mod sequence;
pub mod session;
pub mod spike;
pub mod suppress;
mod window;

pub use absence::Absence;
pub use aggregate::WindowedAggregate;
pub use count::WindowedCount;
pub use deadman::Deadman;
pub use distinct::WindowedDistinctCount;
pub use follow::{FollowSequences, SequenceSpec, SequenceSpecs};
pub use measure::{Aggregate, Cmp, Condition, Number};
pub use new_term::{NewTerms, TermSpec, TermSpecs};
pub use persist::{Keep, OnEvict, Part, Saved, Snapshots};
pub use sequence::WindowedSequence;
pub use session::SessionWindows;
pub use spike::{Direction, SpikeSpec, SpikeSpecs, Spikes};
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

/// How windows move.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// A record at `t` is in every window ending in `[t, t + w]`.
    #[default]
    Sliding,
    /// Fixed buckets `[k·w, (k+1)·w − 1]` aligned to the epoch: a record is in its own
    /// bucket's windows only, from its time to the bucket's last millisecond.
    Tumbling,
    /// Activity sessions per key, computed by [`SessionWindows`] (not by the sliding and
    /// tumbling operators): a record at most `gap_ms` after the previous one of its key
    /// extends the session, as long as the session spans at most the spec's `window_ms`
    /// (the maximum session length); any other record starts a new session.
    Session {
        /// The longest quiet time (ms, inclusive) that still continues a session.
        gap_ms: u64,
    },
}

/// How one slot's window behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSpec {
    /// Sliding, tumbling or session.
    pub window: Window,
    /// Window length `w` in ms (for tumbling windows, the bucket size, at least 1; for
    /// session windows, the maximum session length: last record − first record ≤ `w`).
    pub window_ms: u64,
    /// When the measure (count, distinct count or aggregate) of a non-empty window fires.
    pub condition: Condition,
    /// How [`WindowedAggregate`] folds values; ignored by the counts.
    pub aggregate: Aggregate,
    /// At most this many contributions are reported with a crossing (oldest first).
    pub max_refs: usize,
}

impl WindowSpec {
    /// The first time a record at `t` is no longer in the window.
    ///
    /// Used by the sliding and tumbling operators only; session specs go to
    /// [`SessionWindows`]. For them this is the sliding answer over the maximum session
    /// length, the longest a record can stay in any session.
    pub fn leaves(&self, t: Time) -> Time {
        match self.window {
            Window::Sliding | Window::Session { .. } => t.saturating_add(self.window_ms).saturating_add(1),
            Window::Tumbling => {
                let w = self.window_ms.max(1);
                (t / w).saturating_add(1).saturating_mul(w)
            }
        }
    }

    /// The first instant of the window ending at `end`.
    ///
    /// Used by the sliding and tumbling operators only; for a session spec it is the
    /// earliest start a session ending at `end` can have (the sliding answer). A session's
    /// real start comes with its [`Crossing`].
    pub fn start(&self, end: Time) -> Time {
        match self.window {
            Window::Sliding | Window::Session { .. } => end.saturating_sub(self.window_ms),
            Window::Tumbling => {
                let w = self.window_ms.max(1);
                end / w * w
            }
        }
    }

    /// A count-style spec firing at `value >= n`.
    pub fn at_least(window_ms: u64, n: u64, max_refs: usize) -> WindowSpec {
        WindowSpec { window: Window::Sliding, window_ms, condition: Condition::at_least(n), aggregate: Aggregate::Sum, max_refs }
    }
}

/// Specs indexed by slot. A record whose slot has no spec is ignored.
pub type Specs = Arc<Vec<WindowSpec>>;

/// A key's measure went from not meeting its slot's condition (or from an empty window) to
/// meeting it at `time`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Crossing {
    /// The slot.
    pub slot: Slot,
    /// The group key.
    pub key: GroupKey,
    /// The window end: the time of the crossing.
    pub time: Time,
    /// The window start (inclusive): `time - w`, the tumbling bucket's start, or the
    /// session's first record's time.
    pub window_start: Time,
    /// The measure at `time`.
    pub value: Number,
    /// Contributions in the window at `time`, oldest first, at most the slot's `max_refs`.
    pub events: Vec<Contribution>,
    /// The latest acceptance among the window's contributions: the event that completed it.
    pub trigger_accepted_ns: u64,
}

/// Keyed contributions, present at their event time (input of [`WindowedCount`]).
pub type Events<'scope> = differential_dataflow::VecCollection<'scope, Time, (Key, Contribution), isize>;

/// Keyed `(value, contribution)` pairs (input of [`WindowedDistinctCount`]).
pub type Values<'scope> = differential_dataflow::VecCollection<'scope, Time, (Key, (String, Contribution)), isize>;

/// Keyed `(number, contribution)` pairs (input of [`WindowedAggregate`]).
pub type Numbers<'scope> = differential_dataflow::VecCollection<'scope, Time, (Key, (Number, Contribution)), isize>;

/// Keyed `(step, contribution)` pairs (input of [`WindowedSequence`]).
pub type Steps<'scope> = differential_dataflow::VecCollection<'scope, Time, (Key, (u32, Contribution)), isize>;

/// A stream of crossings, each at its own time.
pub type Crossings<'scope> = timely::dataflow::StreamVec<'scope, Time, Crossing>;

/// The timely scope the operators live in.
pub type Scope<'scope> = timely::dataflow::Scope<'scope, Time>;

#[cfg(test)]
pub(crate) mod testkit {
    //! Runs the windowed operators on fixed inputs and recomputes their answers from scratch.

    use super::*;
    use crate::window::Item;
    use crate::{Aggregate, Number, Window};
    use differential_dataflow::input::Input;
    use differential_dataflow::ExchangeData;
    use rand::rngs::SmallRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    use timely::dataflow::operators::capture::{Capture, Extract};

    /// A windowed operator under test.
    pub type Op<V> = OpWith<V, Specs>;

    /// An operator under test that takes specs of type `S`.
    pub type OpWith<V, S> = for<'s> fn(differential_dataflow::VecCollection<'s, Time, (Key, V), isize>, &S) -> Crossings<'s>;

    /// Keyed records, each with its time.
    pub type Records<V> = Vec<((Key, V), Time)>;

    /// Feeds `records` (each at its own time, in the given order, spread over the workers)
    /// into `op` on `workers` workers and returns every crossing, sorted.
    pub fn run<V: Item + Send + Sync>(workers: usize, records: Records<V>, specs: Specs, op: Op<V>) -> Vec<Crossing> {
        run_with(workers, records, specs, op)
    }

    /// As [`run`], for an operator that takes another kind of spec (`S`).
    pub fn run_with<V: ExchangeData + Send + Sync, S: Clone + Send + Sync + 'static>(
        workers: usize,
        records: Records<V>,
        specs: S,
        op: OpWith<V, S>,
    ) -> Vec<Crossing> {
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

    /// A [`Snapshots`] that keeps every part offered.
    #[derive(Default)]
    pub struct Collect(pub Mutex<Vec<Part>>);

    impl Snapshots for Collect {
        fn offer(&self, part: Part) {
            self.0.lock().unwrap().push(part);
        }
    }

    /// A stateful operator under test (`new_terms`, `spikes`).
    pub type KeptOp<S> = for<'s> fn(Events<'s>, &S, Keep) -> Crossings<'s>;

    /// Feeds `records` into `op` on `workers` workers, each worker restoring its share of
    /// `restore` and offering its state to one [`Collect`]; returns every crossing, sorted,
    /// and every part offered.
    pub fn run_kept<S: Clone + Send + Sync + 'static>(workers: usize, records: Records<Contribution>, specs: S, restore: Vec<Saved>, op: KeptOp<S>) -> (Vec<Crossing>, Vec<Part>) {
        let collect = Arc::new(Collect::default());
        let (send, recv) = std::sync::mpsc::channel();
        let send = Arc::new(Mutex::new(send));
        let records = Arc::new(records);
        let c2 = collect.clone();
        timely::execute(timely::Config::process(workers), move |worker| {
            let send = send.lock().unwrap().clone();
            let (index, peers) = (worker.index(), worker.peers());
            let specs = specs.clone();
            let keep = Keep {
                restore: restore.iter().enumerate().filter(|(i, _)| i % peers == index).map(|(_, s)| s.clone()).collect(),
                snapshots: Some(c2.clone()),
                interval: std::time::Duration::from_secs(3600),
                on_evict: None,
            };
            let mut input = worker.dataflow::<Time, _, _>(|scope| {
                let (input, coll) = scope.new_collection();
                op(coll, &specs, keep).capture_into(send);
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
        let mut out: Vec<Crossing> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
        out.sort();
        let parts = collect.0.lock().unwrap().clone();
        (out, parts)
    }

    /// The measure of a window's records, computed the obvious way (no shared code with
    /// the operators' folds).
    pub trait Naive: Item {
        /// `None` for an empty window.
        fn naive(items: &[&Self], spec: &WindowSpec) -> Option<f64>;
    }

    impl Naive for Contribution {
        fn naive(items: &[&Self], _: &WindowSpec) -> Option<f64> {
            (!items.is_empty()).then_some(items.len() as f64)
        }
    }

    impl Naive for (String, Contribution) {
        fn naive(items: &[&Self], _: &WindowSpec) -> Option<f64> {
            let distinct: BTreeSet<&str> = items.iter().map(|v| v.0.as_str()).collect();
            (!distinct.is_empty()).then_some(distinct.len() as f64)
        }
    }

    impl Naive for (Number, Contribution) {
        fn naive(items: &[&Self], spec: &WindowSpec) -> Option<f64> {
            let mut v: Vec<f64> = items.iter().map(|i| i.0.get()).collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            let sum: f64 = v.iter().sum();
            Some(match spec.aggregate {
                Aggregate::Sum => sum,
                Aggregate::Avg => sum / v.len() as f64,
                Aggregate::Percentile(p) => {
                    // Nearest rank: the smallest value with at least p% at or below it.
                    let i = (0..v.len()).find(|&i| (i + 1) * 100 >= usize::from(p) * v.len()).unwrap_or(v.len() - 1);
                    v[i]
                }
            })
        }
    }

    impl Naive for (u32, Contribution) {
        /// By exhaustive search: the longest `k` with distinct records for steps
        /// `0..k` whose times do not decrease.
        fn naive(items: &[&Self], _: &WindowSpec) -> Option<f64> {
            fn extend(items: &[&(u32, Contribution)], used: &mut Vec<u128>, step: u32, after: Time) -> u32 {
                let mut best = step;
                for i in items {
                    if i.0 == step && i.1.time >= after && !used.contains(&i.1.id) {
                        used.push(i.1.id);
                        best = best.max(extend(items, used, step + 1, i.1.time));
                        used.pop();
                    }
                }
                best
            }
            (!items.is_empty()).then(|| f64::from(extend(items, &mut Vec::new(), 0, 0)))
        }
    }

    /// What the crossings must be: the measure at every time, from scratch.
    pub fn oracle<V: Naive>(records: &[((Key, V), Time)], specs: &Specs) -> Vec<Crossing> {
        let keys: BTreeSet<&Key> = records.iter().map(|((k, _), _)| k).filter(|k| specs.get(k.0 as usize).is_some()).collect();
        let horizon = records.iter().map(|(_, t)| *t).max().unwrap_or(0) + specs.iter().map(|s| s.window_ms).max().unwrap_or(0) + 2;
        let mut out = Vec::new();
        for key in keys {
            let spec = &specs[key.0 as usize];
            let in_window = |end: Time| -> Vec<&V> {
                let inside = |t: Time| match spec.window {
                    // Sessions have their own oracle (in `session`); here, as `leaves`.
                    Window::Sliding | Window::Session { .. } => t <= end && t + spec.window_ms >= end,
                    Window::Tumbling => t <= end && t / spec.window_ms == end / spec.window_ms,
                };
                records.iter().filter(|((k, _), t)| k == key && inside(*t)).map(|((_, v), _)| v).collect()
            };
            let met = |m: Option<f64>| m.is_some_and(|m| spec.condition.is_met(Number::new(m).unwrap()));
            let mut before = false;
            for end in 0..=horizon {
                let items = in_window(end);
                let now = V::naive(&items, spec);
                if met(now) && !before {
                    let contribs: BTreeSet<&Contribution> = items.iter().map(|v| v.contribution()).collect();
                    out.push(Crossing {
                        slot: key.0,
                        key: key.1.clone(),
                        time: end,
                        window_start: match spec.window {
                            Window::Sliding | Window::Session { .. } => end.saturating_sub(spec.window_ms),
                            Window::Tumbling => end / spec.window_ms * spec.window_ms,
                        },
                        value: Number::new(now.unwrap()).unwrap(),
                        trigger_accepted_ns: contribs.iter().map(|c| c.accepted_ns).max().unwrap(),
                        events: contribs.into_iter().take(spec.max_refs).cloned().collect(),
                    });
                }
                before = met(now);
            }
        }
        out.sort();
        out
    }

    /// Two slots with different windows, thresholds and reference limits.
    pub fn specs() -> Specs {
        Arc::new(vec![
            WindowSpec::at_least(10, 3, 2),
            WindowSpec::at_least(25, 2, 100),
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

    /// Random numeric records over `slots` slots: few keys, times in `0..span`, values
    /// from a small set of exactly representable numbers (so sums do not depend on order).
    pub fn random_numbers(seed: u64, n: usize, span: u64, slots: u32) -> Records<(Number, Contribution)> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let slot = rng.random_range(0..slots);
                let group = vec![["a", "b"][rng.random_range(0..2)].to_string()];
                let time = rng.random_range(0..span);
                let value = [-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0][rng.random_range(0..9)];
                let c = Contribution { time, id: i as u128, accepted_ns: rng.random_range(0..1_000_000) };
                (((slot, group), (Number::new(value).unwrap(), c)), time)
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
