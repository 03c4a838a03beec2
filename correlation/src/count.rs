//! [`WindowedCount`]: events per key in a sliding event-time window, reported when the
//! count crosses its slot's threshold.
//!
//! The count is the most common correlation and the one with the most keys, so it is not
//! built from differential's arrangements as the aggregates are
//! (delayed retraction, `count_total`, a join for the window's contents: four arranged
//! updates per record, each sorted and merged with its key). It is one timely operator
//! that keeps each key's window as a queue of its records, takes times in order once the
//! frontier has passed them (like [`crate::SessionWindows`]), and lets records go when
//! their window slides past them: one hash lookup and one queue push per record. The
//! results are the same, on any number of workers and in any arrival order (the tests
//! check both against a recomputation from scratch); the perf scenario `window` measures
//! the difference.

use crate::window::{hold_earliest, hold_until};
use crate::{Contribution, Crossing, Crossings, Events, GroupKey, Key, Number, Slot, Specs, Time, Window, WindowSpec};
use differential_dataflow::Hashable;
use hashbrown::{DefaultHashBuilder, HashTable};
use smallvec::SmallVec;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
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
/// again. State for a key is gone soon after its window empties (within a sixteenth of the
/// window for `gt`/`gte` conditions, at once for the others).
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
                    // One capability for all pending records: the earliest batch's.
                    hold_earliest(&mut counts.due_hold, &cap);
                    for ((key, c), t, r) in data.drain(..) {
                        if r <= 0 || !specs.get(key.0 as usize).is_some_and(|s| matches!(s.window, Window::Sliding | Window::Tumbling)) {
                            continue;
                        }
                        counts.due.entry(t).or_default().push((key, c, r.unsigned_abs()));
                    }
                });
                let mut crossings = Vec::new();
                let done = |t: &Time| !frontier.less_equal(t);
                while let Some(time) = counts.next(done) {
                    counts.step(time, &specs, &mut crossings);
                    if !crossings.is_empty() {
                        crossings.sort_unstable_by(|a: &Crossing, b: &Crossing| (a.slot, &a.key).cmp(&(b.slot, &b.key)));
                        // A capability is made only for a time that reports something.
                        if let Some(cap) = counts.capability(time) {
                            output.session(&cap).give_iterator(crossings.drain(..));
                        }
                    }
                }
                counts.release();
                counts.sweep(&specs, done);
            }
        })
    }
}

/// Records waiting for the frontier to pass their time.
type Due = Vec<(Key, Contribution, usize)>;

/// A contribution as a window holds it: the id in two halves, so that a record aligns to
/// 8 bytes and the first one fits in its [`Entry`] (32 bytes; a `u128` would make it 48).
#[derive(Clone, Copy)]
struct Held {
    time: Time,
    id: [u64; 2],
    accepted_ns: u64,
}

impl From<&Contribution> for Held {
    fn from(c: &Contribution) -> Held {
        Held { time: c.time, id: [c.id as u64, (c.id >> 64) as u64], accepted_ns: c.accepted_ns }
    }
}

impl Held {
    fn contribution(&self) -> Contribution {
        Contribution { time: self.time, id: u128::from(self.id[0]) | (u128::from(self.id[1]) << 64), accepted_ns: self.accepted_ns }
    }
}

/// Whether the window met its condition just before the time being taken.
const MET: u8 = 1;
/// Whether the time being taken has touched the window yet.
const TOUCHED: u8 = 2;
/// Whether an expiry (or, for a rising condition, a sweep) is pending for the window.
const PENDING: u8 = 4;

/// One key's window: its records, oldest first (times never decrease, because times are
/// taken in order). 72 bytes: the first record and a group of up to 16 packed bytes (an
/// IPv4 address, a user name) live in the entry itself, so a key with one event in its
/// window costs no allocation beyond its slab slot and index bucket.
struct Entry {
    /// `records[head..]` are in the window; the ones before have left. Popping moves
    /// `head`, and the left part is dropped once it is half the list: amortized O(1).
    records: SmallVec<[Held; 1]>,
    /// The group, packed by [`pack`].
    group: SmallVec<[u8; 16]>,
    slot: Slot,
    head: u16,
    flags: u8,
}

impl Entry {
    fn new(slot: Slot, group: &[u8]) -> Entry {
        Entry { records: SmallVec::new(), group: SmallVec::from_slice(group), slot, head: 0, flags: 0 }
    }

    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    fn live(&self) -> &[Held] {
        self.records.get(usize::from(self.head)..).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.live().len()
    }

    fn push(&mut self, h: Held) {
        self.records.push(h);
    }

    /// Drops the oldest records while `gone(time)` holds for them.
    fn pop_while(&mut self, gone: impl Fn(Time) -> bool) {
        let mut head = usize::from(self.head);
        while self.records.get(head).is_some_and(|h| gone(h.time)) {
            head += 1;
        }
        if head == self.records.len() {
            self.records.clear();
            head = 0;
        } else if head >= 8 && (2 * head >= self.records.len() || head >= usize::from(u16::MAX)) {
            self.records.drain(..head);
            head = 0;
        }
        self.head = head as u16;
    }

    /// Settles the window at `time` the first time `time` touches it; whether it did.
    fn touch(&mut self, spec: &WindowSpec, time: Time) -> bool {
        let first = !self.has(TOUCHED);
        if first {
            self.set(TOUCHED, true);
            self.settle(spec, time);
        }
        first
    }

    /// Brings the window to `time` before its records at `time` arrive: notes whether it
    /// met the condition just before (its records that left earlier may still be here,
    /// when only the growth of its count matters), then drops every record gone by `time`.
    fn settle(&mut self, spec: &WindowSpec, time: Time) {
        self.pop_while(|t| spec.leaves(t) < time);
        let n = self.len() as u64;
        self.set(MET, n > 0 && spec.condition.is_met(Number::from(n)));
        self.pop_while(|t| spec.leaves(t) <= time);
    }
}

/// Entries per slab chunk.
const CHUNK: usize = 4096;

/// The windows, in chunks of [`CHUNK`] allocated once each: growing never copies the
/// entries or holds twice their memory, as a doubling vector would.
#[derive(Default)]
struct Slab {
    chunks: Vec<Vec<Entry>>,
}

impl Slab {
    /// Adds `entry` at the end; its position.
    fn push(&mut self, entry: Entry) -> u32 {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let n = self.chunks.len() - 1;
        let chunk = &mut self.chunks[n];
        chunk.push(entry);
        (n * CHUNK + chunk.len() - 1) as u32
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = Entry;
    fn index(&self, pos: u32) -> &Entry {
        &self.chunks[pos as usize / CHUNK][pos as usize % CHUNK]
    }
}

impl std::ops::IndexMut<u32> for Slab {
    fn index_mut(&mut self, pos: u32) -> &mut Entry {
        &mut self.chunks[pos as usize / CHUNK][pos as usize % CHUNK]
    }
}

/// The operator's state: per-key windows in a slab indexed by a hash table (each key is
/// stored once, and the expiry queues refer to slab positions, so no key is cloned per
/// record), and one pending expiry per non-empty key. For a condition a shrinking count
/// can meet (`lt`, ranges), the expiry is exact: the time its oldest record leaves, in a
/// heap, with a capability held to report at it. For a condition only a growing count can
/// meet (`gt`, `gte`: most rules), leaving records never make an alert, so the expiry
/// only frees memory: the key's position goes in a coarse bucket (a sixteenth of the
/// window) at or after its newest record leaves, 4 bytes per key, no capability held: one
/// look per key per window length while it is active, and one after it goes quiet. Its
/// records that left meanwhile are dropped when new ones arrive, so a key holds at most
/// the records of its window when it was last touched.
#[derive(Default)]
struct Counts {
    due: BTreeMap<Time, Due>,
    /// A capability at or before every pending record's time (one per operator, not one
    /// per distinct time: making and dropping capabilities is progress-tracking work).
    due_hold: Option<Capability<Time>>,
    slab: Slab,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// `(leave time, slab position)`, one per non-empty key with a falling condition.
    expiry: BinaryHeap<Reverse<(Time, u32)>>,
    /// Bucket time → positions of keys with a rising condition to look at then.
    sweeps: BTreeMap<Time, Vec<u32>>,
    /// A capability at or before every pending expiry, to report crossings at its time.
    hold: Option<Capability<Time>>,
    /// Slab positions touched at the current time.
    touched: Vec<u32>,
    /// Scratch space for packing a group.
    packed: Vec<u8>,
}

/// Where a window's key goes in the index (the same for lookups, inserts and removals).
fn key_hash(hasher: &DefaultHashBuilder, slot: Slot, group: &[u8]) -> u64 {
    hasher.hash_one((slot, group))
}

/// The sweep bucket for a rising window whose newest record leaves at `leaves`.
fn bucket(spec: &WindowSpec, leaves: Time) -> Time {
    let g = (spec.window_ms / 16).max(1);
    leaves.div_ceil(g).saturating_mul(g)
}

impl Counts {
    /// The next time to take (the earliest of pending records and expiries) if `done(t)`
    /// says no more records can arrive at it.
    fn next(&self, done: impl Fn(&Time) -> bool) -> Option<Time> {
        let due = self.due.first_key_value().map(|(t, _)| *t);
        let expiry = self.expiry.peek().map(|Reverse((t, _))| *t);
        let time = match (due, expiry) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        done(&time).then_some(time)
    }

    /// A capability to report at `time`, a time being taken: the pending records' hold is
    /// at or before every pending record, the expiry hold at or before every expiry.
    fn capability(&self, time: Time) -> Option<Capability<Time>> {
        [&self.due_hold, &self.hold].into_iter().flatten().find(|h| *h.time() <= time).map(|h| h.delayed(&time))
    }

    /// Once the times that have passed are taken: moves the holds up to the earliest pending
    /// record and expiry, or lets them go.
    fn release(&mut self) {
        hold_until(&mut self.due_hold, self.due.first_key_value().map(|(t, _)| t));
        hold_until(&mut self.hold, self.expiry.peek().map(|Reverse((t, _))| t));
    }

    /// Takes one time: records leave, records arrive, touched keys are evaluated.
    fn step(&mut self, time: Time, specs: &Specs, crossings: &mut Vec<Crossing>) {
        self.touched.clear();
        while let Some(Reverse((t, pos))) = self.expiry.peek().copied() {
            if t > time {
                break;
            }
            self.expiry.pop();
            let entry = &mut self.slab[pos];
            entry.set(PENDING, false);
            let Some(spec) = specs.get(entry.slot as usize) else { continue };
            if entry.touch(spec, time) {
                self.touched.push(pos);
            }
            // Next time this window loses records: when its oldest leaves.
            if let Some(h) = entry.live().first() {
                self.expiry.push(Reverse((spec.leaves(h.time), pos)));
                entry.set(PENDING, true);
            }
        }
        if let Some(records) = self.due.remove(&time) {
            for (key, c, m) in records {
                let Some(spec) = specs.get(key.0 as usize) else { continue };
                let pos = self.position(key);
                let entry = &mut self.slab[pos];
                if entry.touch(spec, time) {
                    self.touched.push(pos);
                }
                if !entry.has(PENDING) {
                    entry.set(PENDING, true);
                    let leaves = spec.leaves(time);
                    if spec.condition.rises_only() {
                        self.sweeps.entry(bucket(spec, leaves)).or_default().push(pos);
                    } else {
                        self.expiry.push(Reverse((leaves, pos)));
                        if self.hold.as_ref().is_none_or(|h| *h.time() > leaves) {
                            // `time` is pending, so the records' hold is at or before it.
                            self.hold = self.due_hold.as_ref().map(|h| h.delayed(&leaves));
                        }
                    }
                }
                let held = Held::from(&c);
                for _ in 0..m {
                    entry.push(held);
                }
            }
        }
        for i in 0..self.touched.len() {
            let pos = self.touched[i];
            let entry = &mut self.slab[pos];
            entry.set(TOUCHED, false);
            let Some(spec) = specs.get(entry.slot as usize) else { continue };
            let n = entry.len() as u64;
            let met = n > 0 && spec.condition.is_met(Number::from(n));
            if met && !entry.has(MET) {
                crossings.push(crossing(time, entry, spec));
            }
            entry.set(MET, met);
            if n == 0 && !entry.has(PENDING) {
                self.remove(pos);
            }
        }
        self.note_held();
    }

    /// Looks at the rising windows in every bucket `done` says has passed (call once every
    /// time that has passed is taken, so that later times are later than the buckets):
    /// drops the records that have left, forgets a window left empty, and puts the others
    /// in the bucket of their newest record.
    fn sweep(&mut self, specs: &Specs, done: impl Fn(&Time) -> bool) {
        while let Some(entry) = self.sweeps.first_entry() {
            let now = *entry.key();
            if !done(&now) {
                break;
            }
            for pos in entry.remove() {
                let entry = &mut self.slab[pos];
                entry.set(PENDING, false);
                let Some(spec) = specs.get(entry.slot as usize) else { continue };
                // Every later time is after `now`: what has left by then can go.
                entry.pop_while(|t| spec.leaves(t) <= now);
                match entry.live().last().map(|h| spec.leaves(h.time)) {
                    Some(leaves) => {
                        entry.set(PENDING, true);
                        self.sweeps.entry(bucket(spec, leaves)).or_default().push(pos);
                    }
                    None => self.remove(pos),
                }
            }
        }
        self.note_held();
    }

    /// Keys and records held, for the tests.
    fn note_held(&self) {
        #[cfg(test)]
        HELD.set((self.index.len(), self.slab.chunks.iter().flatten().map(Entry::len).sum()));
    }

    /// The slab position of `key`'s window, made (empty) if it has none.
    fn position(&mut self, (slot, group): Key) -> u32 {
        pack(&group, &mut self.packed);
        let hash = key_hash(&self.hasher, slot, &self.packed);
        let (slab, packed) = (&self.slab, &self.packed);
        if let Some(&pos) = self.index.find(hash, |&p| slab[p].slot == slot && slab[p].group[..] == packed[..]) {
            return pos;
        }
        let entry = Entry::new(slot, packed);
        let pos = match self.free.pop() {
            Some(p) => {
                self.slab[p] = entry;
                p
            }
            None => self.slab.push(entry),
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index.insert_unique(hash, pos, |&p| key_hash(hasher, slab[p].slot, &slab[p].group));
        pos
    }

    /// Forgets an empty window.
    fn remove(&mut self, pos: u32) {
        let entry = &mut self.slab[pos];
        let hash = key_hash(&self.hasher, entry.slot, &entry.group);
        if let Ok(found) = self.index.find_entry(hash, |&p| p == pos) {
            found.remove();
        }
        *entry = Entry::new(0, &[]);
        self.free.push(pos);
    }
}

/// Packs a group's values into `out`: each value's header (LEB128 of its length times two,
/// plus one when the value is a quoted JSON string, whose quotes are then left out) and
/// bytes. A quoted IPv4 address packs into 16 bytes, which fit in the entry.
fn pack(group: &[String], out: &mut Vec<u8>) {
    out.clear();
    for value in group {
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        let bytes = if quoted { &value.as_bytes()[1..value.len() - 1] } else { value.as_bytes() };
        let mut n = bytes.len() << 1 | usize::from(quoted);
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(bytes);
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
        let (value, rest) = packed.split_at((n >> 1).min(packed.len()));
        let value = String::from_utf8_lossy(value);
        group.push(if n & 1 == 1 { format!("\"{value}\"") } else { value.into_owned() });
        packed = rest;
    }
    group
}

/// The crossing of `entry`'s window at `time`: its count and its contributions, oldest
/// first, at most `max_refs`.
fn crossing(time: Time, entry: &Entry, spec: &WindowSpec) -> Crossing {
    let mut refs: Vec<Contribution> = entry.live().iter().map(Held::contribution).collect();
    refs.sort_unstable();
    refs.dedup();
    Crossing {
        slot: entry.slot,
        key: unpack(&entry.group),
        time,
        window_start: spec.start(time),
        value: Number::from(entry.len() as u64),
        trigger_accepted_ns: entry.live().iter().map(|h| h.accepted_ns).max().unwrap_or(0),
        events: refs.into_iter().take(spec.max_refs).collect(),
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
        let cases = [
            vec![],
            vec![String::new()],
            vec!["\"10.0.0.1\"".to_string(), "null".to_string()],
            vec![long.clone(), "é\u{1f}".to_string(), String::new()],
            vec!["\"".to_string(), "\"\"".to_string(), "\"a\\\"\"".to_string(), "\"x".to_string(), "x\"".to_string(), format!("\"{long}\"")],
        ];
        for group in cases {
            let mut packed = Vec::new();
            pack(&group, &mut packed);
            assert_eq!(unpack(&packed), group);
        }
        // A quoted IPv4 address fits in an entry's 16 inline bytes.
        let mut packed = Vec::new();
        pack(&["\"255.255.255.255\"".to_string()], &mut packed);
        assert_eq!(packed.len(), 16);
        // A quoted value and the same text unquoted pack differently.
        let (mut q, mut u) = (Vec::new(), Vec::new());
        pack(&["\"ab\"".to_string()], &mut q);
        pack(&["ab".to_string()], &mut u);
        assert_ne!(q, u);
        // Different splits of the same bytes pack differently.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        pack(&["ab".to_string(), "c".to_string()], &mut a);
        pack(&["a".to_string(), "bc".to_string()], &mut b);
        assert_ne!(a, b);
    }
}

#[cfg(test)]
mod entry {
    use super::{Entry, Held};
    use crate::Contribution;

    #[test]
    fn a_key_with_one_record_fits_in_its_slot() {
        // The memory scenario's budget (100 bytes per key) rests on these.
        assert_eq!(std::mem::size_of::<Held>(), 32);
        assert!(std::mem::size_of::<Entry>() <= 72, "{}", std::mem::size_of::<Entry>());
        let mut e = Entry::new(3, b"\x0810.0.0.1");
        e.push(Held::from(&Contribution { time: 5, id: u128::MAX - 7, accepted_ns: 9 }));
        assert!(!e.records.spilled() && !e.group.spilled());
        assert_eq!(e.live()[0].contribution(), Contribution { time: 5, id: u128::MAX - 7, accepted_ns: 9 });
    }

    #[test]
    fn slab_positions_hold_across_chunks() {
        let mut slab = super::Slab::default();
        for i in 0..3 * super::CHUNK as u32 + 5 {
            assert_eq!(slab.push(Entry::new(i, b"")), i);
        }
        slab[4097].slot = 7;
        assert_eq!((slab[0].slot, slab[4095].slot, slab[4096].slot, slab[4097].slot, slab[12_292].slot), (0, 4095, 4096, 7, 12_292));
        assert_eq!(slab.chunks.iter().map(Vec::capacity).collect::<Vec<_>>(), vec![super::CHUNK; 4]);
    }

    #[test]
    fn records_leave_from_the_front_however_many_there_are() {
        let mut e = Entry::new(0, b"");
        let n = 200_000u64;
        for t in 0..n {
            e.push(Held { time: t, id: [t, 0], accepted_ns: 0 });
        }
        // More than a u16 of records leave at once: the front is compacted away.
        e.pop_while(|t| t < 70_000);
        assert_eq!((e.len(), e.live()[0].time, e.head), (130_000, 70_000, 0));
        // A few leave: only the head moves.
        e.pop_while(|t| t < 70_010);
        assert_eq!((e.len(), e.live()[0].time, e.head), (129_990, 70_010, 10));
        // Step by step past half of what is stored: compacted again, nothing lost.
        for end in 70_011..=140_000 {
            e.pop_while(|t| t < end);
            assert_eq!(e.live()[0].time, end);
        }
        assert!(usize::from(e.head) < e.records.len() / 2 + 1, "head {}", e.head);
        assert_eq!(e.len() as u64, n - 140_000);
        assert_eq!(e.live().last().map(|h| h.time), Some(n - 1));
        e.pop_while(|_| true);
        assert_eq!((e.len(), e.records.len(), e.head), (0, 0, 0));
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
        // A 10 ms window over one event per ms holds 11 records at most; a key drops the
        // records that left it when it is next touched (every 7 ms here), so each of the 7
        // keys holds at most the 2 records its window had then.
        assert!((10..=14).contains(&peak_small), "peak {peak_small}");
        assert_eq!(peak_large, peak_small, "ten times the history, the same state");
        // Once every window has emptied, nothing is left: no key, no record.
        assert_eq!(end_small, (0, 0));
        assert_eq!(end_large, (0, 0));
    }
}
