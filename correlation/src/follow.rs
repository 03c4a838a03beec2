//! [`FollowSequences`]: Rampart's `sequence`, ordered steps per key within a maximum span,
//! cancelled by an `until` step, with a fixed bound on partial matches per key.

use crate::{Contribution, Crossing, Crossings, Key, Number, Steps, Time};
use differential_dataflow::Hashable;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// One sequence slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceSpec {
    /// Number of steps (at least 2). Records carry steps `0..steps`; a record with step
    /// `steps` is an `until` record.
    pub steps: u32,
    /// Longest time (ms) from a match's first step to its last.
    pub maxspan_ms: u64,
    /// At most this many contributions are reported with a match (its first steps).
    pub max_refs: usize,
}

/// Sequence specs by slot; `None` for slots that are not sequences (their records are
/// ignored).
pub type SequenceSpecs = Arc<Vec<Option<SequenceSpec>>>;

/// Follows keyed `(step, contribution)` records through each slot's ordered steps and
/// reports every completed sequence.
///
/// Records are taken in event-time order once the frontier has passed their time, events
/// at the same millisecond by id, so arrival order and worker count never change the
/// answer. Per key, for each event, in this order:
/// 1. an `until` record (step = `steps`) cancels every partial match of the key;
/// 2. partial matches older than `maxspan` (first step more than `maxspan_ms` before the
///    event) are dropped;
/// 3. each partial match waiting for a step the event matches takes it, the most advanced
///    first, so one event moves a partial match at most one step; a match that takes its
///    last step fires one [`Crossing`] at the event's time (value: the number of steps,
///    window: first step to last, events: the steps' contributions in order) and clears
///    every partial match of the key, so the events of a match never start another;
/// 4. if the event matches step 0 (and completed nothing), it starts a partial match.
///
/// Of two partial matches at the same step only the later-starting one is kept: anything
/// the earlier one could still complete, the later one can too (same steps to go, more time
/// left). So a key holds at most `steps - 1` partial matches, whatever the traffic, and
/// none are lost. A key's state is dropped once its last partial match expires.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Contribution, FollowSequences, SequenceSpec};
///
/// // failed (0) → accepted (1) within 10 ms; logout (2) cancels.
/// let specs = Arc::new(vec![Some(SequenceSpec { steps: 2, maxspan_ms: 10, max_refs: 10 })]);
/// let recv = timely::example(move |scope| {
///     let (mut input, steps) = scope.new_collection();
///     let records = [
///         (1u128, 0u64, "alice", 0u32), (2, 4, "alice", 1),  // in order, in time: fires at 4
///         (3, 0, "bob", 0), (4, 20, "bob", 1),               // too far apart
///         (5, 0, "carol", 0), (6, 2, "carol", 2), (7, 3, "carol", 1), // cancelled
///     ];
///     for (id, t, user, step) in records {
///         let c = Contribution { time: t, id, accepted_ns: 0 };
///         input.update_at(((0u32, vec![user.to_string()]), (step, c)), t, 1);
///     }
///     steps.follow_sequences(&specs).capture()
/// });
/// let fired: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(fired.iter().map(|c| (c.key[0].as_str(), c.time, c.window_start)).collect::<Vec<_>>(), vec![("alice", 4, 0)]);
/// ```
pub trait FollowSequences<'scope> {
    /// Follows sequences (operator named `FollowSequences`).
    fn follow_sequences(self, specs: &SequenceSpecs) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.follow_sequences_core("FollowSequences", specs)
    }

    /// As [`FollowSequences::follow_sequences`], with the operator named `name`.
    fn follow_sequences_core(self, name: &str, specs: &SequenceSpecs) -> Crossings<'scope>;
}

/// A partial match: its first step's time and the contributions of the steps taken.
#[derive(Clone, Debug)]
struct Partial {
    start: Time,
    events: Vec<Contribution>,
}

/// Partial matches of one key, indexed by the number of steps taken (index 0 unused).
type KeyState = Vec<Option<Partial>>;

/// Records arriving at one time, with the capability to report at it.
type Due = (Capability<Time>, Vec<(Key, (u32, Contribution))>);

impl<'scope> FollowSequences<'scope> for Steps<'scope> {
    fn follow_sequences_core(self, name: &str, specs: &SequenceSpecs) -> Crossings<'scope> {
        let specs = specs.clone();
        let pact = Exchange::new(|((k, _), _, _): &((Key, (u32, Contribution)), Time, isize)| k.hashed());
        self.inner.unary_frontier::<CapacityContainerBuilder<Vec<Crossing>>, _, _, _>(pact, name, move |_, _| {
            let mut due: BTreeMap<Time, Due> = BTreeMap::new();
            let mut keys: HashMap<Key, KeyState> = HashMap::new();
            // When a key's partial matches may all have expired: checked, not held (no
            // capability), so expiry never holds the frontier back.
            let mut expiry: BTreeMap<Time, Vec<Key>> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    for (rec, t, r) in data.drain(..) {
                        if r <= 0 || specs.get(rec.0 .0 as usize).and_then(Option::as_ref).is_none() {
                            continue;
                        }
                        due.entry(t).or_insert_with(|| (cap.delayed(&t), Vec::new())).1.push(rec);
                    }
                });
                while let Some(entry) = due.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (cap, arrived)) = entry.remove_entry();
                    // Per key, per event (by id), the steps it matches.
                    let mut events: BTreeMap<Key, BTreeMap<Contribution, Vec<u32>>> = BTreeMap::new();
                    for (key, (step, c)) in arrived {
                        events.entry(key).or_default().entry(c).or_default().push(step);
                    }
                    let mut session = output.session(&cap);
                    for (key, by_event) in events {
                        let Some(spec) = specs.get(key.0 as usize).and_then(Option::as_ref) else { continue };
                        let n = spec.steps as usize;
                        let state = keys.entry(key.clone()).or_insert_with(|| vec![None; n]);
                        for (c, matched) in by_event {
                            if let Some(done) = advance(state, spec, &c, &matched) {
                                let mut events = done.events;
                                events.truncate(spec.max_refs);
                                session.give(Crossing {
                                    slot: key.0,
                                    key: key.1.clone(),
                                    time,
                                    window_start: done.start,
                                    value: Number::from(u64::from(spec.steps)),
                                    trigger_accepted_ns: c.accepted_ns,
                                    events,
                                });
                            }
                        }
                        match state.iter().flatten().map(|p| p.start).min() {
                            Some(oldest) => expiry.entry(oldest.saturating_add(spec.maxspan_ms).saturating_add(1)).or_default().push(key),
                            None => {
                                keys.remove(&key);
                            }
                        }
                    }
                    // Forget keys whose every partial match is now too old to complete.
                    while let Some(e) = expiry.first_entry() {
                        if *e.key() > time {
                            break;
                        }
                        for key in e.remove() {
                            let Some(spec) = specs.get(key.0 as usize).and_then(Option::as_ref) else { continue };
                            let Some(state) = keys.get_mut(&key) else { continue };
                            expire(state, spec, time);
                            if state.iter().all(Option::is_none) {
                                keys.remove(&key);
                            }
                        }
                    }
                }
            }
        })
    }
}

/// Drops partial matches that can no longer complete by `now`.
fn expire(state: &mut KeyState, spec: &SequenceSpec, now: Time) {
    for slot in state.iter_mut() {
        if slot.as_ref().is_some_and(|p| now.saturating_sub(p.start) > spec.maxspan_ms) {
            *slot = None;
        }
    }
}

/// Applies one event (matching the steps in `matched`) to a key's partial matches; returns
/// the match it completes, if any.
fn advance(state: &mut KeyState, spec: &SequenceSpec, c: &Contribution, matched: &[u32]) -> Option<Partial> {
    let n = spec.steps as usize;
    if matched.contains(&spec.steps) {
        state.iter_mut().for_each(|s| *s = None);
    }
    expire(state, spec, c.time);
    // The most advanced first, so this event moves each partial match one step at most.
    for taken in (1..n).rev() {
        if !matched.contains(&(taken as u32)) {
            continue;
        }
        let Some(mut partial) = state[taken].take() else { continue };
        partial.events.push(c.clone());
        if taken + 1 == n {
            state.iter_mut().for_each(|s| *s = None);
            return Some(partial);
        }
        // Keep the later-starting of two partial matches at one step.
        if state[taken + 1].as_ref().is_none_or(|p| p.start <= partial.start) {
            state[taken + 1] = Some(partial);
        }
    }
    if matched.contains(&0) {
        state[1] = Some(Partial { start: c.time, events: vec![c.clone()] });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::shuffled;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    type Records = Vec<((Key, (u32, Contribution)), Time)>;

    fn op<'s>(c: Steps<'s>, s: &SequenceSpecs) -> Crossings<'s> {
        c.follow_sequences(s)
    }

    fn run(workers: usize, records: Records, specs: SequenceSpecs) -> Vec<Crossing> {
        crate::testkit::run_with(workers, records, specs, op)
    }

    /// From scratch, by search: events of a key in (time, id) order; after each event that
    /// matches the last step, is there a chain of distinct, increasing events for steps
    /// `0..n` ending at it, all after the key's last completion and last `until`, spanning
    /// at most `maxspan`? The reported start is the latest possible first step.
    fn oracle(records: &Records, specs: &SequenceSpecs) -> Vec<(Key, Time, Time, usize)> {
        let mut by_key: BTreeMap<Key, BTreeMap<Contribution, Vec<u32>>> = BTreeMap::new();
        for ((k, (s, c)), _) in records {
            by_key.entry(k.clone()).or_default().entry(c.clone()).or_default().push(*s);
        }
        let mut out = Vec::new();
        for (key, events) in by_key {
            let Some(spec) = specs[key.0 as usize].as_ref() else { continue };
            let n = spec.steps;
            let events: Vec<(Contribution, Vec<u32>)> = events.into_iter().collect();
            // Events before `lo` are unusable (used by a match, or before an until).
            let mut lo = 0;
            for (e, (c, steps)) in events.iter().enumerate() {
                if steps.contains(&n) {
                    lo = e;
                }
                if !steps.contains(&(n - 1)) {
                    continue;
                }
                // Latest start s: a step-0 event at index i > floor, then steps 1..n-1 at
                // increasing indices up to e, with e taking the last one.
                let mut best: Option<Time> = None;
                for i in lo..e {
                    let start = &events[i];
                    if !start.1.contains(&0) || c.time - start.0.time > spec.maxspan_ms {
                        continue;
                    }
                    // Can steps 1..n-1 be placed strictly between i and e, in order?
                    let mut at = i;
                    let mut ok = true;
                    for step in 1..n - 1 {
                        match (at + 1..e).find(|&j| events[j].1.contains(&step)) {
                            Some(j) => at = j,
                            None => {
                                ok = false;
                                break;
                            }
                        }
                    }
                    if ok {
                        best = Some(best.map_or(start.0.time, |b: Time| b.max(start.0.time)));
                    }
                }
                if let Some(start) = best {
                    out.push((key.clone(), c.time, start, n as usize));
                    lo = e + 1;
                }
            }
        }
        out.sort();
        out
    }

    fn brief(c: &[Crossing]) -> Vec<(Key, Time, Time, usize)> {
        let mut v: Vec<_> = c.iter().map(|c| ((c.slot, c.key.clone()), c.time, c.window_start, c.events.len())).collect();
        v.sort();
        v
    }

    fn specs() -> SequenceSpecs {
        Arc::new(vec![Some(SequenceSpec { steps: 2, maxspan_ms: 10, max_refs: 10 }), Some(SequenceSpec { steps: 3, maxspan_ms: 30, max_refs: 10 }), None])
    }

    #[test]
    fn matches_from_scratch_on_1_2_and_4_workers() {
        let specs = specs();
        let mut total = 0;
        for seed in 0..8 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let records: Records = (0..200)
                .flat_map(|i| {
                    let t = rng.random_range(0..120);
                    let slot = rng.random_range(0..3u32);
                    let key = (slot, vec![["a", "b", "c"][rng.random_range(0..3)].to_string()]);
                    let c = Contribution { time: t, id: i, accepted_ns: i as u64 };
                    // Mostly one step; sometimes an event matches two steps, or is an until.
                    let top = if slot == 1 { 4 } else { 3 };
                    let mut steps = vec![rng.random_range(0..top)];
                    if rng.random_range(0..6) == 0 {
                        steps.push(rng.random_range(0..top));
                    }
                    steps.sort();
                    steps.dedup();
                    steps.into_iter().map(move |s| ((key.clone(), (s, c.clone())), t)).collect::<Vec<_>>()
                })
                .collect();
            let expected = oracle(&records, &specs);
            assert!(!expected.is_empty(), "seed {seed}: no matches");
            total += expected.len();
            for workers in [1, 2, 4] {
                assert_eq!(brief(&run(workers, shuffled(&records, seed), specs.clone())), expected, "seed {seed}, {workers} workers");
            }
        }
        assert!(total > 30, "{total} matches in all");
    }

    fn rec(id: u128, t: Time, step: u32) -> ((Key, (u32, Contribution)), Time) {
        (((0, vec![]), (step, Contribution { time: t, id, accepted_ns: id as u64 })), t)
    }

    #[test]
    fn maxspan_is_inclusive_and_order_matters() {
        let s = specs();
        assert_eq!(run(1, vec![rec(1, 0, 0), rec(2, 10, 1)], s.clone()).len(), 1, "exactly maxspan apart is in time");
        assert!(run(1, vec![rec(1, 0, 0), rec(2, 11, 1)], s.clone()).is_empty(), "one ms more is too late");
        assert!(run(1, vec![rec(1, 5, 1), rec(2, 6, 0)], s.clone()).is_empty(), "step 1 before step 0 is no sequence");
        // Same millisecond: ordered by event id.
        assert_eq!(run(1, vec![rec(1, 5, 0), rec(2, 5, 1)], s.clone()).len(), 1);
        assert!(run(1, vec![rec(2, 5, 0), rec(1, 5, 1)], s).is_empty());
    }

    #[test]
    fn until_cancels_and_a_match_consumes_its_events() {
        let s = specs();
        // step 0, until, step 1: cancelled; a new step 0 after the until starts afresh.
        assert!(run(1, vec![rec(1, 0, 0), rec(2, 1, 2), rec(3, 2, 1)], s.clone()).is_empty());
        let c = run(1, vec![rec(1, 0, 0), rec(2, 1, 2), rec(3, 2, 0), rec(4, 3, 1)], s.clone());
        assert_eq!(brief(&c), vec![((0, vec![]), 3, 2, 2)]);
        // 0, 0, 1, 1: one match (the later start), the second 1 finds nothing left.
        let c = run(1, vec![rec(1, 0, 0), rec(2, 1, 0), rec(3, 2, 1), rec(4, 3, 1)], s.clone());
        assert_eq!(brief(&c), vec![((0, vec![]), 2, 1, 2)]);
        assert_eq!(c[0].events.iter().map(|c| c.id).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(c[0].trigger_accepted_ns, 3);
    }

    #[test]
    fn one_rule_at_every_step_counts_runs() {
        // Three steps all matched by the same kind of event: every third event completes.
        let s: SequenceSpecs = Arc::new(vec![Some(SequenceSpec { steps: 3, maxspan_ms: 100, max_refs: 2 })]);
        let records: Records = (0..7u128).flat_map(|i| (0..3).map(move |step| rec(i + 1, i as Time, step))).collect();
        let c = run(1, records.clone(), s.clone());
        assert_eq!(c.iter().map(|c| c.time).collect::<Vec<_>>(), vec![2, 5]);
        assert_eq!(c[0].events.len(), 2, "max_refs caps the references");
        assert_eq!(run(2, shuffled(&records, 3), s), c);
    }

    #[test]
    fn partial_matches_per_key_stay_bounded() {
        // A flood of step 0 keeps one partial match, not one per event.
        let s: SequenceSpecs = Arc::new(vec![Some(SequenceSpec { steps: 3, maxspan_ms: 1_000_000, max_refs: 10 })]);
        let mut state: KeyState = vec![None; 3];
        let spec = s[0].clone().unwrap();
        for i in 0..10_000u64 {
            assert!(advance(&mut state, &spec, &Contribution { time: i, id: u128::from(i), accepted_ns: 0 }, &[0]).is_none());
            if i % 2 == 1 {
                assert!(advance(&mut state, &spec, &Contribution { time: i, id: u128::from(i) + 1_000_000, accepted_ns: 0 }, &[1]).is_none());
            }
        }
        assert!(state.iter().flatten().count() <= 2);
        assert!(state.iter().flatten().all(|p| p.events.len() <= 2));
    }
}
