//! [`Suppress`]: the last stage before alerts leave the dataflow. It gathers every alert
//! candidate on worker 0, releases them in `(time, slot, key, payload)` order once the
//! frontier has passed their time, and withholds repeats within a slot's suppression
//! duration.

use crate::{GroupKey, Slot, Time};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

/// An alert candidate. Field order is the release order (derived `Ord`): time, slot, key,
/// then payload, so equal inputs give equal output order on any number of workers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Candidate<P> {
    /// Event time of the candidate. It must not be earlier than the timely time of the
    /// message carrying it (a differential-style "record at or after its capability").
    pub time: Time,
    /// The rule (or slot) it belongs to; indexes the suppression durations.
    pub slot: Slot,
    /// The group key suppression is tracked by.
    pub key: GroupKey,
    /// Whatever the caller needs to build the alert.
    pub payload: P,
}

/// A stream of candidates.
pub type Candidates<'scope, P> = StreamVec<'scope, Time, Candidate<P>>;

/// Suppression durations in ms, indexed by slot; 0 (or a missing entry) never suppresses.
pub type Durations = Arc<Vec<u64>>;

/// Orders candidates deterministically and drops repeats.
///
/// A candidate for `(slot, key)` at `time` is dropped (and passed to `on_suppress`) when the
/// same `(slot, key)` released one at `t0` with `t0 < time <= t0 + duration`; candidates at
/// the same time are all released. Suppression state for a pair is forgotten once the
/// frontier passes `t0 + duration`. Output lives on worker 0, at each candidate's time.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use timely::dataflow::operators::{ToStream, capture::{Capture, Extract}};
/// use rampart_correlation::{Candidate, Suppress};
///
/// let recv = timely::example(|scope| {
///     [0u64, 5, 11]
///         .map(|time| Candidate { time, slot: 0, key: vec![], payload: () })
///         .to_stream(scope)
///         .container::<Vec<_>>()
///         .suppress(Arc::new(vec![10]), |_| {})
///         .capture()
/// });
/// let times: Vec<u64> = recv.extract().into_iter().flat_map(|(_, v)| v).map(|c| c.time).collect();
/// assert_eq!(times, vec![0, 11]);
/// ```
pub trait Suppress<'scope, P> {
    /// Orders and suppresses (operator named `Suppress`).
    fn suppress(self, durations: Durations, on_suppress: impl FnMut(&Candidate<P>) + 'static) -> Candidates<'scope, P>
    where
        Self: Sized,
    {
        self.suppress_core("Suppress", durations, on_suppress)
    }

    /// As [`Suppress::suppress`], with the operator named `name`.
    fn suppress_core(self, name: &str, durations: Durations, on_suppress: impl FnMut(&Candidate<P>) + 'static) -> Candidates<'scope, P>;
}

impl<'scope, P> Suppress<'scope, P> for Candidates<'scope, P>
where
    P: timely::ExchangeData + Ord + Clone,
{
    fn suppress_core(self, name: &str, durations: Durations, mut on_suppress: impl FnMut(&Candidate<P>) + 'static) -> Candidates<'scope, P> {
        // Everything meets on worker 0: one place decides the order and the repeats.
        let pact = Exchange::new(|_: &Candidate<P>| 0u64);
        self.unary_frontier::<CapacityContainerBuilder<Vec<Candidate<P>>>, _, _, _>(pact, name, move |_, _| {
            let mut stash: BTreeMap<Time, (Capability<Time>, Vec<Candidate<P>>)> = BTreeMap::new();
            let mut released: HashMap<(Slot, GroupKey), Time> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    for c in data.drain(..) {
                        let time = c.time.max(*cap.time());
                        stash.entry(time).or_insert_with(|| (cap.delayed(&time), Vec::new())).1.push(c);
                    }
                });
                while let Some(entry) = stash.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (cap, mut batch)) = entry.remove_entry();
                    batch.sort_unstable();
                    let mut session = output.session(&cap);
                    for c in batch {
                        let d = durations.get(c.slot as usize).copied().unwrap_or(0);
                        if d > 0 {
                            let pair = (c.slot, c.key.clone());
                            match released.get(&pair) {
                                Some(&t0) if t0 < time && time <= t0.saturating_add(d) => {
                                    on_suppress(&c);
                                    continue;
                                }
                                _ => {
                                    released.insert(pair, time);
                                }
                            }
                        }
                        session.give(c);
                    }
                }
                // A pair whose window ends before every future time can never suppress again.
                match frontier.frontier().iter().min() {
                    Some(&low) => released.retain(|(slot, _), t0| {
                        let d = durations.get(*slot as usize).copied().unwrap_or(0);
                        t0.saturating_add(d) >= low
                    }),
                    None => released.clear(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::shuffled;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::sync::Mutex;
    use timely::dataflow::operators::vec::Input;
    use timely::dataflow::operators::Inspect;

    type C = Candidate<u32>;

    /// Runs `suppress` with the candidates spread over `workers` workers (all sent at time
    /// 0, in the given order) and returns the released candidates in release order and the
    /// suppressed ones.
    fn run(workers: usize, candidates: Vec<C>, durations: Vec<u64>) -> (Vec<C>, Vec<C>) {
        let released = Arc::new(Mutex::new(Vec::new()));
        let suppressed = Arc::new(Mutex::new(Vec::new()));
        let (r, s) = (released.clone(), suppressed.clone());
        let candidates = Arc::new(candidates);
        let durations = Arc::new(durations);
        timely::execute(timely::Config::process(workers), move |worker| {
            let (index, peers) = (worker.index(), worker.peers());
            let (r, s, durations) = (r.clone(), s.clone(), durations.clone());
            let mut input = worker.dataflow::<Time, _, _>(|scope| {
                let (input, stream) = scope.new_input::<C>();
                stream
                    .suppress(durations, move |c| s.lock().unwrap().push(c.clone()))
                    .inspect(move |c| {
                        assert_eq!(index, 0, "released on worker 0 only");
                        r.lock().unwrap().push(c.clone());
                    });
                input
            });
            for (i, c) in candidates.iter().enumerate() {
                if i % peers == index {
                    input.send(c.clone());
                }
            }
        })
        .unwrap()
        .join()
        .into_iter()
        .for_each(|r| r.unwrap());
        let r = released.lock().unwrap().clone();
        let s = suppressed.lock().unwrap().clone();
        (r, s)
    }

    /// From scratch: sort everything, walk it once.
    fn oracle(candidates: &[C], durations: &[u64]) -> (Vec<C>, Vec<C>) {
        let mut sorted = candidates.to_vec();
        sorted.sort();
        let (mut out, mut dropped) = (Vec::new(), Vec::new());
        for c in sorted {
            let d = durations.get(c.slot as usize).copied().unwrap_or(0);
            let last = out.iter().rev().find(|o: &&C| o.slot == c.slot && o.key == c.key).map(|o| o.time);
            match last {
                Some(t0) if d > 0 && t0 < c.time && c.time <= t0 + d => dropped.push(c),
                _ => out.push(c),
            }
        }
        dropped.sort();
        (out, dropped)
    }

    fn c(time: Time, slot: Slot, key: &str, payload: u32) -> C {
        Candidate { time, slot, key: vec![key.to_string()], payload }
    }

    #[test]
    fn drops_repeats_within_the_duration_only() {
        let input = vec![c(0, 0, "a", 0), c(5, 0, "a", 1), c(10, 0, "a", 2), c(11, 0, "a", 3), c(5, 0, "b", 4), c(5, 1, "a", 5), c(6, 1, "a", 6)];
        let (out, mut dropped) = run(1, shuffled(&input, 1), vec![10, 0]);
        let got: Vec<_> = out.iter().map(|c| c.payload).collect();
        // a: 0 released, 5 and 10 within (0, 10], 11 released. b is its own pair; slot 1
        // has no suppression.
        assert_eq!(got, vec![0, 4, 5, 6, 3]);
        dropped.sort();
        assert_eq!(dropped.iter().map(|c| c.payload).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn equal_times_are_all_released_in_key_order() {
        let input = vec![c(7, 0, "b", 1), c(7, 0, "a", 2), c(7, 0, "a", 0)];
        let (out, dropped) = run(1, input, vec![100]);
        assert_eq!(out.iter().map(|c| c.payload).collect::<Vec<_>>(), vec![0, 2, 1]);
        assert!(dropped.is_empty());
    }

    #[test]
    fn matches_from_scratch_on_1_2_and_4_workers() {
        for seed in 0..6 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let input: Vec<C> = (0..200)
                .map(|i| c(rng.random_range(0..300), rng.random_range(0..3), ["a", "b", "c"][rng.random_range(0..3)], i))
                .collect();
            let durations = vec![0, 15, 60];
            let (expected, expected_dropped) = oracle(&input, &durations);
            assert!(!expected_dropped.is_empty(), "seed {seed} suppresses nothing");
            for workers in [1, 2, 4] {
                let (out, mut dropped) = run(workers, shuffled(&input, seed + 100), durations.clone());
                dropped.sort();
                assert_eq!(out, expected, "seed {seed}, {workers} workers");
                assert_eq!(dropped, expected_dropped, "seed {seed}, {workers} workers");
            }
        }
    }
}
