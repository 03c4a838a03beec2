//! [`WindowedCount`]: events per key in a sliding event-time window, reported when the
//! count crosses its slot's threshold.
//!
//! The count is the most common correlation and the one with the most keys, so it is not
//! built from differential's arrangements as the distinct count and the aggregates are
//! (delayed retraction, `count_total`, a join for the window's contents: four arranged
//! updates per record, each sorted and merged with its key). It is one timely operator
//! that keeps each key's window as a queue of its records, takes times in order once the
//! frontier has passed them (like [`crate::SessionWindows`]), and lets records go when
//! their window slides past them: one hash lookup and one queue push per record. The
//! results are the same, on any number of workers and in any arrival order (the tests
//! check both against a recomputation from scratch); the perf scenario `window` measures
//! the difference.

use crate::{Contribution, Crossing, Crossings, Events, GroupKey, Key, Number, Slot, Specs, Time, Window, WindowSpec};
use differential_dataflow::Hashable;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::hash::BuildHasher;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// Counts keyed contributions over each slot's sliding window and reports crossings.
///
/// A contribution at `t` counts for every window end in `[t, t + w]` (inclusive bounds).
/// When a key's count goes from below the slot's threshold to at or above it at `t`, one
/// [`crate::Crossing`] is emitted at time `t`, carrying the count and the contributions in
/// `[t - w, t]`. The count must fall below the threshold again before the key can fire
/// again. State for a key is gone once its window empties.
///
/// Records with a diff of zero or less are ignored (event streams only add), as are
/// records of slots without a spec or with a session spec. The operator holds a capability
/// at the earliest time a record leaves a window, so that a falling condition (`lt`) can
/// fire then; once the input ends, every open window is played out.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Contribution, WindowSpec, WindowedCount};
///
/// let specs = Arc::new(vec![WindowSpec::at_least(10, 2, 10)]);
/// let recv = timely::example(move |scope| {
///     let (mut input, events) = scope.new_collection();
///     for (id, t) in [(1u128, 0u64), (2, 10), (3, 11)] {
///         input.update_at(((0u32, vec!["root".to_string()]), Contribution { time: t, id, accepted_ns: 0 }), t, 1);
///     }
///     events.windowed_count(&specs).capture()
/// });
/// let crossings: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// // The events at 0 and 10 share the window [0, 10]; the one at 11 finds the count
/// // already at the threshold, so it does not fire again.
/// assert_eq!(crossings.len(), 1);
/// assert_eq!((crossings[0].time, crossings[0].value.get()), (10, 2.0));
/// ```
pub trait WindowedCount<'scope> {
    /// Counts and reports crossings (operators named `WindowedCount`).
    fn windowed_count(self, specs: &Specs) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.windowed_count_core("WindowedCount", specs)
    }

    /// As [`WindowedCount::windowed_count`], with operators named after `name`.
    fn windowed_count_core(self, name: &str, specs: &Specs) -> Crossings<'scope>;
}

impl<'scope> WindowedCount<'scope> for Events<'scope> {
    fn windowed_count_core(self, name: &str, specs: &Specs) -> Crossings<'scope> {
        let specs = specs.clone();
        let pact = Exchange::new(|((k, _), _, _): &((Key, Contribution), Time, isize)| k.hashed());
        self.inner.unary_frontier::<CapacityContainerBuilder<Vec<Crossing>>, _, _, _>(pact, name, move |_, _| {
            let mut counts = Counts::default();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    for ((key, c), t, r) in data.drain(..) {
                        if r <= 0 || !specs.get(key.0 as usize).is_some_and(|s| matches!(s.window, Window::Sliding | Window::Tumbling)) {
                            continue;
                        }
                        let due = counts.due.entry(t).or_insert_with(|| (cap.delayed(&t), Vec::new()));
                        due.1.push((key, c, r.unsigned_abs()));
                    }
                });
                let mut crossings = Vec::new();
                while let Some((time, cap)) = counts.next(|t| !frontier.less_equal(t)) {
                    counts.step(time, &cap, &specs, &mut crossings);
                    if !crossings.is_empty() {
                        crossings.sort_unstable_by(|a: &Crossing, b: &Crossing| (a.slot, &a.key).cmp(&(b.slot, &b.key)));
                        output.session(&cap).give_iterator(crossings.drain(..));
                    }
                }
            }
        })
    }
}

/// Records waiting for the frontier to pass their time, with the capability to report at it.
type Due = (Capability<Time>, Vec<(Key, Contribution, usize)>);

/// One key's window: its records, oldest first (times never decrease, because times are
/// taken in order), whether its count met the condition just before the time being taken,
/// and whether that time has touched it yet.
struct Entry {
    slot: Slot,
    met: bool,
    touched: bool,
    /// The group, packed by [`pack`]: one allocation instead of a vector of strings.
    group: Box<[u8]>,
    records: VecDeque<Contribution>,
}

impl Entry {
    /// Brings the window to `time` before its records at `time` arrive: notes whether it
    /// met the condition just before (its records that left earlier may still be here,
    /// when only the growth of its count matters), then drops every record gone by `time`.
    fn settle(&mut self, spec: &WindowSpec, time: Time) {
        while self.records.front().is_some_and(|c| spec.leaves(c.time) < time) {
            self.records.pop_front();
        }
        let n = self.records.len() as u64;
        self.met = n > 0 && spec.condition.is_met(Number::from(n));
        while self.records.front().is_some_and(|c| spec.leaves(c.time) <= time) {
            self.records.pop_front();
        }
    }
}

/// The operator's state: per-key windows in a slab indexed by a hash table (each key is
/// stored once, and the expiry queue refers to slab positions, so no key is cloned per
/// record), and one pending expiry per non-empty key: the time its oldest record leaves,
/// or, for a condition only a growing count can meet, its newest (one expiry per burst,
/// not per record).
#[derive(Default)]
struct Counts {
    due: BTreeMap<Time, Due>,
    slab: Vec<Entry>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// `(leave time, slab position)`, one per non-empty key.
    expiry: BinaryHeap<Reverse<(Time, u32)>>,
    /// A capability at or before every pending expiry, to report crossings at its time.
    hold: Option<Capability<Time>>,
    /// Slab positions touched at the current time.
    touched: Vec<u32>,
    /// Scratch space for packing a group.
    packed: Vec<u8>,
}

impl Counts {
    /// The next time to take (the earliest of pending records and expiries) if `done(t)`
    /// says no more records can arrive at it, with a capability at it.
    fn next(&mut self, done: impl Fn(&Time) -> bool) -> Option<(Time, Capability<Time>)> {
        let due = self.due.first_key_value().map(|(t, _)| *t);
        let expiry = self.expiry.peek().map(|Reverse((t, _))| *t);
        let time = match (due, expiry) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        if !done(&time) {
            return None;
        }
        match self.due.first_key_value() {
            Some((t, (cap, _))) if *t == time => Some((time, cap.clone())),
            // Only expiries at `time`: the hold is at or before every one of them.
            _ => self.hold.as_ref().map(|h| (time, h.delayed(&time))),
        }
    }

    /// Takes one time: records leave, records arrive, touched keys are evaluated.
    fn step(&mut self, time: Time, cap: &Capability<Time>, specs: &Specs, crossings: &mut Vec<Crossing>) {
        self.touched.clear();
        while let Some(Reverse((t, pos))) = self.expiry.peek().copied() {
            if t > time {
                break;
            }
            self.expiry.pop();
            let entry = &mut self.slab[pos as usize];
            let Some(spec) = specs.get(entry.slot as usize) else { continue };
            if !entry.touched {
                entry.touched = true;
                entry.settle(spec, time);
                self.touched.push(pos);
            }
            // Next time this window loses records: when its oldest leaves, if that can make
            // it meet a falling condition; otherwise only to free memory, once its newest
            // has left (records that left meanwhile are dropped whenever it is touched).
            let next = if spec.condition.rises_only() { entry.records.back() } else { entry.records.front() };
            if let Some(c) = next {
                self.expiry.push(Reverse((spec.leaves(c.time), pos)));
            }
        }
        if let Some((_, (_, records))) = self.due.remove_entry(&time) {
            for (key, c, m) in records {
                let Some(spec) = specs.get(key.0 as usize) else { continue };
                let pos = self.position(key);
                let entry = &mut self.slab[pos as usize];
                if !entry.touched {
                    entry.touched = true;
                    entry.settle(spec, time);
                    self.touched.push(pos);
                }
                if entry.records.is_empty() {
                    // A new window, or one whose records have all left: one expiry is
                    // pending for every window that has records.
                    let leaves = spec.leaves(time);
                    self.expiry.push(Reverse((leaves, pos)));
                    if self.hold.as_ref().is_none_or(|h| *h.time() > leaves) {
                        self.hold = Some(cap.delayed(&leaves));
                    }
                }
                for _ in 0..m {
                    entry.records.push_back(c.clone());
                }
            }
        }
        for i in 0..self.touched.len() {
            let pos = self.touched[i];
            let entry = &mut self.slab[pos as usize];
            entry.touched = false;
            let Some(spec) = specs.get(entry.slot as usize) else { continue };
            let n = entry.records.len() as u64;
            let met = n > 0 && spec.condition.is_met(Number::from(n));
            if met && !entry.met {
                crossings.push(crossing(time, entry, spec));
            }
            entry.met = met;
            if entry.records.is_empty() {
                self.remove(pos);
            }
        }
        #[cfg(test)]
        HELD.set((self.index.len(), self.slab.iter().map(|e| e.records.len()).sum()));
        // Keep the hold at the earliest pending expiry (none: let it go).
        match self.expiry.peek() {
            Some(Reverse((t, _))) => {
                if let Some(h) = self.hold.as_mut() {
                    if h.time() < t {
                        h.downgrade(t);
                    }
                }
            }
            None => self.hold = None,
        }
    }

    /// The slab position of `key`'s window, made (empty) if it has none.
    fn position(&mut self, (slot, group): Key) -> u32 {
        pack(&group, &mut self.packed);
        let hash = self.hasher.hash_one((slot, &self.packed[..]));
        let (slab, packed) = (&self.slab, &self.packed);
        if let Some(&pos) = self.index.find(hash, |&p| slab[p as usize].slot == slot && *slab[p as usize].group == packed[..]) {
            return pos;
        }
        let entry = Entry { slot, met: false, touched: false, group: packed[..].into(), records: VecDeque::with_capacity(1) };
        let pos = match self.free.pop() {
            Some(p) => {
                self.slab[p as usize] = entry;
                p
            }
            None => {
                self.slab.push(entry);
                (self.slab.len() - 1) as u32
            }
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index.insert_unique(hash, pos, |&p| hasher.hash_one((slab[p as usize].slot, &slab[p as usize].group[..])));
        pos
    }

    /// Forgets an empty window.
    fn remove(&mut self, pos: u32) {
        let entry = &mut self.slab[pos as usize];
        let hash = self.hasher.hash_one((entry.slot, &entry.group[..]));
        if let Ok(found) = self.index.find_entry(hash, |&p| p == pos) {
            found.remove();
        }
        entry.group = Box::default();
        entry.records = VecDeque::new();
        self.free.push(pos);
    }
}

/// Packs a group's values into `out`: each value's length (LEB128) and bytes.
fn pack(group: &[String], out: &mut Vec<u8>) {
    out.clear();
    for value in group {
        let mut n = value.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(value.as_bytes());
    }
}

/// The group [`pack`] packed.
fn unpack(mut packed: &[u8]) -> GroupKey {
    let mut group = Vec::new();
    while !packed.is_empty() {
        let (mut n, mut shift) = (0usize, 0);
        while let Some((&byte, rest)) = packed.split_first() {
            packed = rest;
            n |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let (value, rest) = packed.split_at(n.min(packed.len()));
        group.push(String::from_utf8_lossy(value).into_owned());
        packed = rest;
    }
    group
}

/// The crossing of `entry`'s window at `time`: its count and its contributions, oldest
/// first, at most `max_refs`.
fn crossing(time: Time, entry: &Entry, spec: &WindowSpec) -> Crossing {
    let mut refs: Vec<&Contribution> = entry.records.iter().collect();
    refs.sort_unstable();
    refs.dedup();
    Crossing {
        slot: entry.slot,
        key: unpack(&entry.group),
        time,
        window_start: spec.start(time),
        value: Number::from(entry.records.len() as u64),
        trigger_accepted_ns: entry.records.iter().map(|c| c.accepted_ns).max().unwrap_or(0),
        events: refs.into_iter().take(spec.max_refs).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{at, oracle, random, run, shuffled, specs};
    use crate::{Aggregate, Cmp, Condition, Contribution, Crossing, Key, Time, WindowSpec};
    use std::sync::Arc;

    fn op<'s>(c: Events<'s>, s: &Specs) -> Crossings<'s> {
        c.windowed_count(s)
    }

    fn counted(seed: u64) -> Vec<((Key, Contribution), Time)> {
        random(seed, 80, 150).into_iter().map(|((k, (_, c)), t)| ((k, c), t)).collect()
    }

    #[test]
    fn matches_from_scratch_recomputation() {
        for seed in 0..10 {
            let records = counted(seed);
            let expected = oracle(&records, &specs());
            assert!(!expected.is_empty(), "seed {seed} exercises nothing");
            assert_eq!(run(1, records, specs(), op), expected, "seed {seed}");
        }
    }

    #[test]
    fn same_result_on_1_2_and_4_workers_and_in_any_order() {
        for seed in 10..13 {
            let records = counted(seed);
            let expected = oracle(&records, &specs());
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), specs(), op), expected, "seed {seed}, {workers} workers");
            }
        }
    }

    fn one_key(times: &[Time], window_ms: u64, threshold: u64) -> Vec<Crossing> {
        let specs = Arc::new(vec![WindowSpec::at_least(window_ms, threshold, 10)]);
        let records = times.iter().enumerate().map(|(i, t)| (((0, vec!["k".to_string()]), at(i as u128, *t)), *t)).collect();
        run(1, records, specs, op)
    }

    #[test]
    fn window_bounds_are_inclusive() {
        let at_edge = one_key(&[100, 110], 10, 2);
        assert_eq!(at_edge.len(), 1);
        assert_eq!((at_edge[0].time, at_edge[0].window_start, at_edge[0].value.get()), (110, 100, 2.0));
        assert_eq!(at_edge[0].events, vec![at(0, 100), at(1, 110)]);
        assert!(one_key(&[100, 111], 10, 2).is_empty(), "an event 1 ms past the window end must not count");
    }

    #[test]
    fn fires_once_per_crossing() {
        let c = one_key(&[0, 1, 2, 3, 4, 5], 10, 2);
        assert_eq!(c.iter().map(|c| c.time).collect::<Vec<_>>(), vec![1]);
        // Once the window empties the key may cross again.
        let c = one_key(&[0, 1, 2, 50, 51], 10, 2);
        assert_eq!(c.iter().map(|c| (c.time, c.value.get())).collect::<Vec<_>>(), vec![(1, 2.0), (51, 2.0)]);
        assert_eq!(c[1].events, vec![at(3, 50), at(4, 51)]);
    }

    #[test]
    fn falling_counts_fire_when_a_retraction_takes_the_count_under() {
        // `lt: 3` over 10 ms. Events at 0, 1, 2 give counts 1 (fires: a non-empty window
        // under 3), 2, 3 (leaves the condition). At 11 the event at 0 leaves the window
        // (it counts for ends up to 10): 2 again, so it fires again, at 11, with the events
        // still in [1, 11]. At 13 the window empties: no measure, no alert.
        let specs = Arc::new(vec![WindowSpec { window: crate::Window::Sliding, window_ms: 10, condition: Condition(vec![(Cmp::Lt, 3.0)]), aggregate: Aggregate::Sum, max_refs: 10 }]);
        let records = [0, 1, 2].iter().map(|&t| (((0, vec!["k".to_string()]), at(t as u128, t)), t)).collect();
        let c = run(1, records, specs, op);
        assert_eq!(c.iter().map(|c| (c.time, c.value.get())).collect::<Vec<_>>(), vec![(0, 1.0), (11, 2.0)]);
        assert_eq!(c[1].events, vec![at(1, 1), at(2, 2)]);
        // `eq: 2` fires on the way up (at 1) and on the way down (at 11).
        let specs = Arc::new(vec![WindowSpec { window: crate::Window::Sliding, window_ms: 10, condition: Condition(vec![(Cmp::Eq, 2.0)]), aggregate: Aggregate::Sum, max_refs: 10 }]);
        let records = [0, 1, 2].iter().map(|&t| (((0, vec!["k".to_string()]), at(t as u128, t)), t)).collect();
        assert_eq!(run(1, records, specs, op).iter().map(|c| c.time).collect::<Vec<_>>(), vec![1, 11]);
    }

    #[test]
    fn falling_and_ranged_conditions_match_from_scratch_on_1_2_and_4_workers() {
        let specs = Arc::new(vec![
            WindowSpec { window: crate::Window::Sliding, window_ms: 10, condition: Condition(vec![(Cmp::Lt, 3.0)]), aggregate: Aggregate::Sum, max_refs: 4 },
            WindowSpec { window: crate::Window::Sliding, window_ms: 25, condition: Condition(vec![(Cmp::Gt, 2.0), (Cmp::Lte, 4.0)]), aggregate: Aggregate::Sum, max_refs: 4 },
        ]);
        for seed in 40..43 {
            let records = counted(seed);
            let expected = oracle(&records, &specs);
            assert!(expected.iter().any(|c| c.slot == 0) && expected.iter().any(|c| c.slot == 1), "seed {seed}");
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), specs.clone(), op), expected, "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn tumbling_windows_match_from_scratch_on_1_2_and_4_workers() {
        let specs = Arc::new(vec![
            WindowSpec { window: crate::Window::Tumbling, ..WindowSpec::at_least(10, 3, 4) },
            WindowSpec { window: crate::Window::Tumbling, window_ms: 25, condition: Condition(vec![(Cmp::Lt, 2.0)]), aggregate: Aggregate::Sum, max_refs: 4 },
        ]);
        for seed in 50..53 {
            let records = counted(seed);
            let expected = oracle(&records, &specs);
            assert!(expected.iter().any(|c| c.slot == 0) && expected.iter().any(|c| c.slot == 1), "seed {seed}");
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), specs.clone(), op), expected, "seed {seed}, {workers} workers");
            }
        }
        // Buckets [0, 9] and [10, 19]: events at 8 and 9 count together, 9 and 10 do not.
        let specs = Arc::new(vec![WindowSpec { window: crate::Window::Tumbling, ..WindowSpec::at_least(10, 2, 4) }]);
        let rec = |id: u128, t: Time| (((0, vec!["k".to_string()]), at(id, t)), t);
        let c = run(1, vec![rec(1, 8), rec(2, 9)], specs.clone(), op);
        assert_eq!(c.iter().map(|c| (c.time, c.window_start)).collect::<Vec<_>>(), vec![(9, 0)]);
        assert!(run(1, vec![rec(1, 9), rec(2, 10)], specs, op).is_empty());
    }

    #[test]
    fn limits_references_and_ignores_unknown_slots() {
        let specs = Arc::new(vec![WindowSpec::at_least(100, 3, 2)]);
        let records = vec![
            (((0, vec![]), at(1, 5)), 5),
            (((0, vec![]), at(2, 6)), 6),
            (((0, vec![]), at(3, 7)), 7),
            (((9, vec![]), at(4, 7)), 7),
            (((9, vec![]), at(5, 7)), 7),
            (((9, vec![]), at(6, 7)), 7),
        ];
        let c = run(1, records, specs, op);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].slot, c[0].value.get(), c[0].trigger_accepted_ns), (0, 3.0, 3));
        assert_eq!(c[0].events, vec![at(1, 5), at(2, 6)], "oldest first, at most max_refs");
    }
}

#[cfg(test)]
mod packing {
    use super::{pack, unpack};

    #[test]
    fn groups_come_back_as_they_went_in() {
        let long = "x".repeat(300);
        for group in [vec![], vec![String::new()], vec!["\"10.0.0.1\"".to_string(), "null".to_string()], vec![long.clone(), "é\u{1f}".to_string(), String::new()]] {
            let mut packed = Vec::new();
            pack(&group, &mut packed);
            assert_eq!(unpack(&packed), group);
        }
        // Different splits of the same bytes pack differently.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        pack(&["ab".to_string(), "c".to_string()], &mut a);
        pack(&["a".to_string(), "bc".to_string()], &mut b);
        assert_ne!(a, b);
    }
}

#[cfg(test)]
thread_local! {
    /// `(keys, records)` the last [`Counts::step`] on this thread left held (tests only).
    static HELD: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

#[cfg(test)]
mod state {
    use super::*;
    use crate::testkit::at;
    use crate::WindowSpec;
    use differential_dataflow::input::InputSession;
    use std::sync::Arc;
    use timely::dataflow::operators::Probe;

    /// Feeds one event per ms for `n` ms over 7 keys, then idles as long again; returns the
    /// `(keys, records)` held at the end and the most records held at any step.
    fn held(n: u64) -> ((usize, usize), usize) {
        timely::execute_directly(move |worker| {
            let specs = Arc::new(vec![WindowSpec::at_least(10, 3, 5)]);
            let mut input = InputSession::new();
            let probe = worker.dataflow(|scope| {
                let (probe, _) = input.to_collection(scope).windowed_count(&specs).probe();
                probe
            });
            let mut peak = 0;
            for round in 0..2 * n {
                if round < n {
                    input.insert(((0, vec![format!("k{}", round % 7)]), at(round as u128, round)));
                }
                input.advance_to(round + 1);
                input.flush();
                worker.step_while(|| probe.less_than(input.time()));
                peak = peak.max(HELD.get().1);
            }
            (HELD.get(), peak)
        })
    }

    #[test]
    fn state_follows_the_window_not_the_history() {
        let (end_small, peak_small) = held(500);
        let (end_large, peak_large) = held(5_000);
        // A 10 ms window over one event per ms holds 11 records at most.
        assert!((10..=11).contains(&peak_small), "peak {peak_small}");
        assert_eq!(peak_large, peak_small, "ten times the history, the same state");
        // Once every window has emptied, nothing is left: no key, no record.
        assert_eq!(end_small, (0, 0));
        assert_eq!(end_large, (0, 0));
    }
}
