//! State that outlives a run: what the stateful operators ([`crate::NewTerms`],
//! [`crate::Spikes`]) save ([`Saved`]), where they hand it ([`Snapshots`]) and how they get it
//! back ([`Keep::restore`]).
//!
//! The operators never touch files. Each instance offers its whole state as a [`Part`] now
//! and then and once more when its input ends; the engine's store writes the parts of every
//! worker as one snapshot. Entries are keyed by slot and group, never by worker: on restore
//! any worker may be handed any entry, and the operator routes it to the worker that owns
//! its key with the same exchange its records take. That is what lets a snapshot written by
//! 4 workers be restored by 1 (or 3).

use crate::{Contribution, GroupKey, Key, Slot, Time};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

/// One saved piece of operator state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Saved {
    /// The first and the newest record time a slot has seen (every worker keeps them).
    Extent {
        /// The slot.
        slot: Slot,
        /// The earliest record time (new_term's learning starts there).
        first: Time,
        /// The latest record time (nothing is evaluated past it when input ends).
        newest: Time,
    },
    /// A new_term group's known terms, each with the last time it was seen.
    Terms {
        /// The slot.
        slot: Slot,
        /// The group-by values.
        group: GroupKey,
        /// `(term values, last seen)`.
        terms: Vec<(GroupKey, Time)>,
    },
    /// A spike group's window counts and the moves still due.
    Spike {
        /// The slot.
        slot: Slot,
        /// The group-by values.
        group: GroupKey,
        /// Events in the current window.
        current: u64,
        /// Events in the reference window(s).
        reference: u64,
        /// Whether the condition held at the last evaluation.
        met: bool,
        /// Nothing of this group is evaluated before this time.
        floor: Time,
        /// The newest contributions (at most the slot's `max_refs`), oldest first.
        refs: Vec<Contribution>,
        /// `(time, events moving from current to reference, events leaving reference)`.
        moves: Vec<(Time, u32, u32)>,
    },
    /// A record received but not processed yet (its time had not passed the watermark).
    Pending {
        /// The slot.
        slot: Slot,
        /// The record's full key.
        key: GroupKey,
        /// The record.
        contribution: Contribution,
    },
}

impl Saved {
    /// The slot an entry belongs to.
    pub fn slot(&self) -> Slot {
        match self {
            Saved::Extent { slot, .. } | Saved::Terms { slot, .. } | Saved::Spike { slot, .. } | Saved::Pending { slot, .. } => *slot,
        }
    }

    /// The same entry for another slot (rules move when rule files change).
    pub fn with_slot(mut self, to: Slot) -> Saved {
        match &mut self {
            Saved::Extent { slot, .. } | Saved::Terms { slot, .. } | Saved::Spike { slot, .. } | Saved::Pending { slot, .. } => *slot = to,
        }
        self
    }
}

/// One operator instance's whole state at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// The operator's name (`NewTerms`, `Spikes[1]`, …).
    pub operator: String,
    /// The worker it runs on.
    pub worker: usize,
    /// Its input has ended: this is its final state.
    pub last: bool,
    /// Every entry it holds.
    pub entries: Vec<Saved>,
}

/// Where operator instances hand their state. Called from worker threads.
pub trait Snapshots: Send + Sync {
    /// Takes one instance's state, replacing what it offered before.
    fn offer(&self, part: Part);
}

/// Called with the number of terms a bounded operator had to forget.
pub type OnEvict = Arc<dyn Fn(u64) + Send + Sync>;

/// How a stateful operator keeps its state: what it starts from and where it saves to.
#[derive(Clone, Default)]
pub struct Keep {
    /// Entries this worker restores before any record is processed (any share of a
    /// snapshot: each entry reaches the worker owning its key).
    pub restore: Vec<Saved>,
    /// Where to offer state; `None`: nothing is saved.
    pub snapshots: Option<Arc<dyn Snapshots>>,
    /// How often (processing time) to offer state while running; the final offer comes
    /// when input ends.
    pub interval: Duration,
    /// Counts terms forgotten to stay within bounds.
    pub on_evict: Option<OnEvict>,
}

impl std::fmt::Debug for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keep").field("restore", &self.restore.len()).field("saves", &self.snapshots.is_some()).field("interval", &self.interval).finish()
    }
}

/// What a stateful operator reads: records (exchanged by key) and restored entries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum In {
    Record(Key, Contribution),
    Saved(Saved),
}

/// Every slot's first and newest record time on this worker, sent on whenever either
/// moves (at most one message per slot per batch), plus the restored extents: broadcast,
/// so that every worker knows every slot's extent by the time its frontier passes a time.
pub(crate) fn extents<'s>(name: &str, records: StreamVec<'s, Time, In>) -> StreamVec<'s, Time, (Slot, Time, Time)> {
    use timely::dataflow::operators::vec::Broadcast;
    records
        .unary::<CapacityContainerBuilder<Vec<(Slot, Time, Time)>>, _, _, _>(Pipeline, &format!("{name}: Extents"), |_, _| {
            let mut seen: HashMap<Slot, (Time, Time)> = HashMap::new();
            move |input, output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    let mut moved: HashMap<Slot, (Time, Time)> = HashMap::new();
                    for item in data.drain(..) {
                        let (slot, first, newest) = match item {
                            In::Record((slot, _), c) => (slot, c.time, c.time),
                            In::Saved(Saved::Extent { slot, first, newest }) => (slot, first, newest),
                            In::Saved(_) => continue,
                        };
                        let changed = match seen.entry(slot) {
                            Entry::Occupied(mut o) => {
                                let e = o.get_mut();
                                let changed = first < e.0 || newest > e.1;
                                *e = (e.0.min(first), e.1.max(newest));
                                changed
                            }
                            Entry::Vacant(v) => {
                                v.insert((first, newest));
                                true
                            }
                        };
                        if let (true, Some(e)) = (changed, seen.get(&slot)) {
                            moved.insert(slot, *e);
                        }
                    }
                    let mut moved: Vec<_> = moved.into_iter().map(|(s, (a, b))| (s, a, b)).collect();
                    moved.sort_unstable();
                    output.session(&cap).give_iterator(moved.into_iter());
                });
            }
        })
        .broadcast()
}

/// `a ≥ b`, allowing for the rounding of `b` (a product with a ratio such as 1.1), so that
/// a measure exactly at a threshold meets it.
pub(crate) fn at_least(a: f64, b: f64) -> bool {
    a >= b - b.abs() * 1e-12
}

/// How often to offer state, and whether this instance offers at all.
pub(crate) struct Offers {
    snapshots: Option<Arc<dyn Snapshots>>,
    interval: Duration,
    last: std::time::Instant,
    done: bool,
    operator: String,
    worker: usize,
}

impl Offers {
    pub fn new(keep: &Keep, operator: &str, worker: usize) -> Offers {
        Offers { snapshots: keep.snapshots.clone(), interval: keep.interval, last: std::time::Instant::now(), done: false, operator: operator.to_string(), worker }
    }

    /// Whether the state should be offered now (`last`: input has ended).
    pub fn due(&self, last: bool) -> bool {
        self.snapshots.is_some() && !self.done && (last || self.last.elapsed() >= self.interval)
    }

    pub fn offer(&mut self, last: bool, entries: Vec<Saved>) {
        if let Some(s) = &self.snapshots {
            s.offer(Part { operator: self.operator.clone(), worker: self.worker, last, entries });
        }
        self.last = std::time::Instant::now();
        self.done |= last;
    }
}
