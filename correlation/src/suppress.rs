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
