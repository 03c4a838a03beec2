//! [`WindowedSequence`]: how far an ordered list of steps has progressed per key in a
//! sliding event-time window (Sigma's `temporal_ordered`), reported when that progress
//! crosses into its slot's condition.

use crate::{Contribution, Crossing, Crossings, Key, Number, Specs, Steps, Time};
use differential_dataflow::Hashable;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// Measures ordered progress of keyed `(step, contribution)` records over each slot's
/// sliding window and reports crossings.
///
/// The measure of a key at `t` is the length of the longest prefix `0, 1, …, k-1` of steps
/// matched, in order, by distinct records in `[t - w, t]`: a record for step `i + 1` must
/// not be earlier than the one for step `i` (records at the same millisecond are in order
/// either way, so arrival order never matters). A record may carry any step; one event
/// matching two steps gives two records but serves only one step. A key with no records
/// has no measure and never fires.
///
/// The measure is evaluated whenever the window changes (a record enters at `t`, leaves at
/// `t + w + 1`); a crossing fires when it goes from not meeting the slot's condition (or
/// nothing) to meeting it, with every contribution in the window. Records are exchanged by
/// key, so a key's state lives on one worker; it is dropped once the key's window empties.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Contribution, WindowSpec, WindowedSequence};
///
/// // Two steps within 10 ms, in order.
/// let specs = Arc::new(vec![WindowSpec::at_least(10, 2, 10)]);
/// let recv = timely::example(move |scope| {
///     let (mut input, steps) = scope.new_collection();
///     // Step 1 at 0 comes before any step 0; step 0 at 3 and step 1 at 8 complete it.
///     for (id, t, step) in [(1u128, 0u64, 1u32), (2, 3, 0), (3, 8, 1)] {
///         let c = Contribution { time: t, id, accepted_ns: 0 };
///         input.update_at(((0u32, vec!["alice".to_string()]), (step, c)), t, 1);
///     }
///     steps.windowed_sequence(&specs).capture()
/// });
/// let crossings: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(crossings.len(), 1);
/// assert_eq!((crossings[0].time, crossings[0].value.get()), (8, 2.0));
/// ```
pub trait WindowedSequence<'scope> {
    /// Follows sequences and reports crossings (operator named `WindowedSequence`).
    fn windowed_sequence(self, specs: &Specs) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.windowed_sequence_core("WindowedSequence", specs)
    }

    /// As [`WindowedSequence::windowed_sequence`], with the operator named `name`.
    fn windowed_sequence_core(self, name: &str, specs: &Specs) -> Crossings<'scope>;
}

/// Work due at one time: records arriving then, and keys whose window changes then.
type Due = (Capability<Time>, Vec<(Key, (u32, Contribution))>, BTreeSet<Key>);

/// One key's records (time-ordered) and its measure after the last change.
#[derive(Default)]
struct KeyState {
    records: BTreeSet<(Time, Contribution, u32)>,
    last: Option<u64>,
}

impl<'scope> WindowedSequence<'scope> for Steps<'scope> {
    fn windowed_sequence_core(self, name: &str, specs: &Specs) -> Crossings<'scope> {
        let specs = specs.clone();
        let pact = Exchange::new(|((k, _), _, _): &((Key, (u32, Contribution)), Time, isize)| k.hashed());
        self.inner.unary_frontier::<CapacityContainerBuilder<Vec<Crossing>>, _, _, _>(pact, name, move |_, _| {
            let mut due: BTreeMap<Time, Due> = BTreeMap::new();
            let mut keys: HashMap<Key, KeyState> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    for (rec, t, r) in data.drain(..) {
                        if r <= 0 || specs.get(rec.0 .0 as usize).is_none() {
                            // Inputs only ever insert; records of unknown slots are dropped.
                            continue;
                        }
                        let entry = due.entry(t).or_insert_with(|| (cap.delayed(&t), Vec::new(), BTreeSet::new()));
                        entry.2.insert(rec.0.clone());
                        entry.1.push(rec);
                    }
                });
                while let Some(entry) = due.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (cap, arrived, changed)) = entry.remove_entry();
                    for (key, (step, c)) in arrived {
                        let Some(spec) = specs.get(key.0 as usize) else { continue };
                        // The record leaves the window after `time + w`: the key changes then.
                        let leave = spec.leaves(time);
                        due.entry(leave).or_insert_with(|| (cap.delayed(&leave), Vec::new(), BTreeSet::new())).2.insert(key.clone());
                        keys.entry(key).or_default().records.insert((time, c, step));
                    }
                    let mut session = output.session(&cap);
                    for key in changed {
                        let Some(spec) = specs.get(key.0 as usize) else { continue };
                        let Some(state) = keys.get_mut(&key) else { continue };
                        let start = spec.start(time);
                        // Older records can be in no window from now on.
                        state.records.retain(|(t, _, _)| *t >= start);
                        let now = progress(&state.records);
                        let met = |m: Option<u64>| m.is_some_and(|m| spec.condition.is_met(Number::from(m)));
                        if met(now) && !met(state.last) {
                            let contributions: BTreeSet<&Contribution> = state.records.iter().map(|(_, c, _)| c).collect();
                            session.give(Crossing {
                                slot: key.0,
                                key: key.1.clone(),
                                time,
                                window_start: start,
                                value: Number::from(now.unwrap_or(0)),
                                trigger_accepted_ns: contributions.iter().map(|c| c.accepted_ns).max().unwrap_or(0),
                                events: contributions.into_iter().take(spec.max_refs).cloned().collect(),
                            });
                        }
                        state.last = now;
                        if state.records.is_empty() {
                            keys.remove(&key);
                        }
                    }
                }
            }
        })
    }
}

/// The longest in-order prefix of steps the records (time-ordered) match; `None` when
/// there are no records. Greedy per millisecond: at each time, use as many of that time's
/// events as extend the prefix, in step order.
pub(crate) fn progress(records: &BTreeSet<(Time, Contribution, u32)>) -> Option<u64> {
    if records.is_empty() {
        return None;
    }
    let mut next = 0u32;
    let mut iter = records.iter().peekable();
    while let Some(&(t, _, _)) = iter.peek() {
        let mut group: Vec<(&Contribution, u32)> = Vec::new();
        while let Some((_, c, s)) = iter.next_if(|(u, _, _)| *u == *t) {
            group.push((c, *s));
        }
        let mut used: Vec<&Contribution> = Vec::new();
        while let Some(&(c, _)) = group.iter().find(|(c, s)| *s == next && !used.contains(c)) {
            used.push(c);
            next += 1;
        }
    }
    Some(u64::from(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{at, oracle, run, shuffled};
    use crate::{Aggregate, Cmp, Condition, WindowSpec};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::sync::Arc;

    fn op<'s>(c: Steps<'s>, s: &Specs) -> Crossings<'s> {
        c.windowed_sequence(s)
    }

    fn specs() -> Specs {
        Arc::new(vec![
            WindowSpec::at_least(20, 3, 4),
            WindowSpec { window: crate::Window::Sliding, window_ms: 30, condition: Condition(vec![(Cmp::Lt, 2.0)]), aggregate: Aggregate::Sum, max_refs: 4 },
        ])
    }

    fn random(seed: u64) -> crate::testkit::Records<(u32, Contribution)> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..120)
            .map(|i| {
                let slot = rng.random_range(0..2u32);
                let group = vec![["a", "b"][rng.random_range(0..2)].to_string()];
                let time = rng.random_range(0..200);
                // Some events carry two steps (one event matching two rules).
                let id = if i > 0 && rng.random_range(0..6) == 0 { i as u128 - 1 } else { i as u128 };
                (((slot, group), (rng.random_range(0..3u32), Contribution { time, id, accepted_ns: id as u64 })), time)
            })
            .collect::<Vec<_>>()
            .into_iter()
            // A reused id must keep its time.
            .scan(HashMap::new(), |times: &mut HashMap<u128, Time>, ((k, (s, c)), t)| {
                let t = *times.entry(c.id).or_insert(t);
                Some(((k, (s, Contribution { time: t, ..c })), t))
            })
            .collect()
    }

    #[test]
    fn matches_from_scratch_recomputation_on_1_2_and_4_workers() {
        for seed in 0..8 {
            let records = random(seed);
            let expected = oracle(&records, &specs());
            assert!(expected.iter().any(|c| c.slot == 0) && expected.iter().any(|c| c.slot == 1), "seed {seed}");
            assert_eq!(run(1, records.clone(), specs(), op), expected, "seed {seed}");
            for workers in [2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), specs(), op), expected, "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn tumbling_windows_match_from_scratch_on_1_2_and_4_workers() {
        let specs: Specs = Arc::new(specs().iter().map(|s| WindowSpec { window: crate::Window::Tumbling, ..s.clone() }).collect());
        for seed in 20..24 {
            let records = random(seed);
            let expected = oracle(&records, &specs);
            assert!(!expected.is_empty(), "seed {seed}");
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), specs.clone(), op), expected, "seed {seed}, {workers} workers");
            }
        }
    }

    fn one_key(steps: &[(Time, u32)], window_ms: u64, n: u64) -> Vec<Crossing> {
        let specs = Arc::new(vec![WindowSpec::at_least(window_ms, n, 10)]);
        let records = steps.iter().enumerate().map(|(i, (t, s))| (((0, vec!["k".to_string()]), (*s, at(i as u128, *t))), *t)).collect();
        run(1, records, specs, op)
    }

    #[test]
    fn order_and_window_edges() {
        // In order, exactly `w` apart: inside.
        assert_eq!(one_key(&[(0, 0), (10, 1)], 10, 2).iter().map(|c| c.time).collect::<Vec<_>>(), vec![10]);
        // One millisecond too late.
        assert!(one_key(&[(0, 0), (11, 1)], 10, 2).is_empty());
        // Out of order never completes.
        assert!(one_key(&[(0, 1), (5, 0)], 10, 2).is_empty());
        // The same millisecond counts as in order, either way round.
        assert_eq!(one_key(&[(5, 1), (5, 0)], 10, 2).len(), 1);
        // Fires once while complete; again after the first match has left the window.
        let c = one_key(&[(0, 0), (1, 1), (2, 1), (30, 0), (31, 1)], 10, 2);
        assert_eq!(c.iter().map(|c| c.time).collect::<Vec<_>>(), vec![1, 31]);
    }

    #[test]
    fn progress_uses_each_event_once() {
        let set = |v: &[(Time, u128, u32)]| v.iter().map(|&(t, id, s)| (t, at(id, t), s)).collect::<BTreeSet<_>>();
        assert_eq!(progress(&set(&[])), None);
        assert_eq!(progress(&set(&[(1, 1, 0), (1, 1, 1)])), Some(1), "one event, two steps: serves one");
        assert_eq!(progress(&set(&[(1, 1, 0), (1, 2, 1), (1, 3, 2)])), Some(3));
        assert_eq!(progress(&set(&[(1, 1, 1), (2, 2, 0), (3, 3, 2)])), Some(1));
    }
}
