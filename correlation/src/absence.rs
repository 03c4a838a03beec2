//! [`Absence`]: "A not followed by B within T" per key, fired by event-time timers when the
//! frontier (the watermark) passes the deadline, with no polling.

use crate::{Contribution, Crossing, Crossings, Key, Number, Specs, Steps, Time};
use differential_dataflow::Hashable;
use std::collections::{BTreeMap, HashMap};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// Reports keyed step-0 records ("A") that no step-1 record ("B") of the same key follows
/// within the slot's window.
///
/// An A at `t` opens a deadline at `t + w`; a B at any time in `[t, t + w]` (inclusive,
/// ties included) closes every open deadline of its key. A deadline still open when the
/// frontier passes `t + w` fires one [`Crossing`] at `t + w`, carrying that A (value 1,
/// window `[t, t + w]`). Nothing fires before the frontier has passed the deadline, so a
/// late B within the lateness still cancels. At most `max_refs.max(1) * 100` deadlines are
/// open per key; beyond that the oldest are dropped (the bound on partial matches).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Absence, Contribution, WindowSpec};
///
/// let specs = Arc::new(vec![WindowSpec::at_least(10, 1, 10)]);
/// let recv = timely::example(move |scope| {
///     let (mut input, steps) = scope.new_collection();
///     // alice: A at 0, B at 10 (in time). bob: A at 5, no B.
///     for (id, t, user, step) in [(1u128, 0u64, "alice", 0u32), (2, 10, "alice", 1), (3, 5, "bob", 0)] {
///         let c = Contribution { time: t, id, accepted_ns: 0 };
///         input.update_at(((0u32, vec![user.to_string()]), (step, c)), t, 1);
///     }
///     steps.absence(&specs).capture()
/// });
/// let fired: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(fired.iter().map(|c| (c.key[0].as_str(), c.time)).collect::<Vec<_>>(), vec![("bob", 15)]);
/// ```
pub trait Absence<'scope> {
    /// Watches for absences (operator named `Absence`).
    fn absence(self, specs: &Specs) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.absence_core("Absence", specs)
    }

    /// As [`Absence::absence`], with the operator named `name`.
    fn absence_core(self, name: &str, specs: &Specs) -> Crossings<'scope>;
}

/// Work due at one time: the records arriving then, and the deadlines falling then.
type Due = (Capability<Time>, Vec<(Key, (u32, Contribution))>, Vec<Key>);

impl<'scope> Absence<'scope> for Steps<'scope> {
    fn absence_core(self, name: &str, specs: &Specs) -> Crossings<'scope> {
        let specs = specs.clone();
        let pact = Exchange::new(|((k, _), _, _): &((Key, (u32, Contribution)), Time, isize)| k.hashed());
        self.inner.unary_frontier::<CapacityContainerBuilder<Vec<Crossing>>, _, _, _>(pact, name, move |_, _| {
            let mut due: BTreeMap<Time, Due> = BTreeMap::new();
            // Open deadlines per key: (deadline, the A), oldest first.
            let mut open: HashMap<Key, Vec<(Time, Contribution)>> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    for (rec, t, r) in data.drain(..) {
                        if r <= 0 || specs.get(rec.0 .0 as usize).is_none() {
                            continue;
                        }
                        due.entry(t).or_insert_with(|| (cap.delayed(&t), Vec::new(), Vec::new())).1.push(rec);
                    }
                });
                while let Some(entry) = due.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (cap, mut arrived, deadlines)) = entry.remove_entry();
                    // As first, so a B at the same millisecond follows them.
                    arrived.sort_by_key(|(_, (step, c))| (*step, c.clone()));
                    for (key, (step, c)) in arrived {
                        let Some(spec) = specs.get(key.0 as usize) else { continue };
                        if step == 0 {
                            let deadline = time.saturating_add(spec.window_ms);
                            due.entry(deadline).or_insert_with(|| (cap.delayed(&deadline), Vec::new(), Vec::new())).2.push(key.clone());
                            let list = open.entry(key).or_default();
                            list.push((deadline, c));
                            let bound = spec.max_refs.max(1) * 100;
                            if list.len() > bound {
                                list.drain(..list.len() - bound);
                            }
                        } else {
                            open.remove(&key);
                        }
                    }
                    let mut fired = Vec::new();
                    for key in deadlines {
                        let Some(list) = open.get_mut(&key) else { continue };
                        let (now, later): (Vec<_>, Vec<_>) = list.drain(..).partition(|(d, _)| *d == time);
                        *list = later;
                        if list.is_empty() {
                            open.remove(&key);
                        }
                        fired.extend(now.into_iter().map(|(_, c)| (key.clone(), c)));
                    }
                    fired.sort();
                    fired.dedup();
                    let mut session = output.session(&cap);
                    for (key, c) in fired {
                        session.give(Crossing {
                            slot: key.0,
                            key: key.1,
                            time,
                            window_start: c.time,
                            value: Number::from(1),
                            trigger_accepted_ns: c.accepted_ns,
                            events: vec![c],
                        });
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{run, shuffled};
    use crate::WindowSpec;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::sync::Arc;

    fn op<'s>(c: Steps<'s>, s: &Specs) -> Crossings<'s> {
        c.absence(s)
    }

    /// From scratch: every A with no B of its key in `[t, t + w]`.
    fn oracle(records: &crate::testkit::Records<(u32, Contribution)>, specs: &Specs) -> Vec<Crossing> {
        let mut out: Vec<Crossing> = records
            .iter()
            .filter(|((k, (s, _)), _)| *s == 0 && specs.get(k.0 as usize).is_some())
            .filter(|((k, _), t)| {
                let w = specs[k.0 as usize].window_ms;
                !records.iter().any(|((k2, (s2, _)), t2)| k2 == k && *s2 == 1 && *t2 >= *t && *t2 <= t + w)
            })
            .map(|((k, (_, c)), t)| Crossing {
                slot: k.0,
                key: k.1.clone(),
                time: t + specs[k.0 as usize].window_ms,
                window_start: *t,
                value: Number::from(1),
                trigger_accepted_ns: c.accepted_ns,
                events: vec![c.clone()],
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn matches_from_scratch_on_1_2_and_4_workers() {
        let specs: Specs = Arc::new(vec![WindowSpec::at_least(10, 1, 5), WindowSpec::at_least(30, 1, 5)]);
        for seed in 0..6 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let records: Vec<_> = (0..100)
                .map(|i| {
                    let t = rng.random_range(0..300);
                    let key = (rng.random_range(0..2u32), vec![["a", "b", "c"][rng.random_range(0..3)].to_string()]);
                    let step = u32::from(rng.random_range(0..3) == 0);
                    ((key, (step, Contribution { time: t, id: i, accepted_ns: i as u64 })), t)
                })
                .collect();
            let expected = oracle(&records, &specs);
            assert!(!expected.is_empty() && expected.len() < records.len(), "seed {seed}");
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), specs.clone(), op), expected, "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn deadline_is_inclusive() {
        let specs: Specs = Arc::new(vec![WindowSpec::at_least(10, 1, 5)]);
        let rec = |id: u128, t: Time, step: u32| (((0, vec![]), (step, Contribution { time: t, id, accepted_ns: 0 })), t);
        assert!(run(1, vec![rec(1, 0, 0), rec(2, 10, 1)], specs.clone(), op).is_empty(), "B at the deadline is in time");
        assert!(run(1, vec![rec(1, 5, 0), rec(2, 5, 1)], specs.clone(), op).is_empty(), "B at the same ms follows");
        let c = run(1, vec![rec(1, 0, 0), rec(2, 11, 1)], specs, op);
        assert_eq!(c.iter().map(|c| c.time).collect::<Vec<_>>(), vec![10]);
    }
}
