//! The pieces both windowed operators share: the sliding window as a delayed retraction,
//! and crossing detection with the window's contents.
//!
//! Crossings are found the differential way: the keys whose measure is at or above their
//! threshold form a set; consolidated, its `+1` updates are exactly the crossings. Each
//! crossing becomes a one-millisecond *pulse* (`+1` at `t`, `-1` at `t + 1`) joined with
//! the windowed records, so the join's updates at `t` are the window's contents at `t`,
//! edges included, however the records arrived. `gather` waits for the frontier to pass
//! `t`, nets the join's updates and builds the [`Crossing`].

use crate::{Contribution, Crossing, Crossings, Key, Number, Specs, Time, WindowSpec};
use differential_dataflow::{AsCollection, ExchangeData, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, InputCapability};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a windowed record carries besides its key.
pub(crate) trait Item: ExchangeData {
    /// The event behind the record.
    fn contribution(&self) -> &Contribution;
    /// The window's measure from its records (each with its multiplicity, none zero):
    /// the value a crossing reports. `None` for no records.
    fn measure(items: &[(&Self, u64)], spec: &WindowSpec) -> Option<Number>;
}

impl Item for Contribution {
    fn contribution(&self) -> &Contribution {
        self
    }
    fn measure(items: &[(&Self, u64)], _: &WindowSpec) -> Option<Number> {
        let n: u64 = items.iter().map(|(_, m)| m).sum();
        (n > 0).then(|| Number::from(n))
    }
}

impl Item for (String, Contribution) {
    fn contribution(&self) -> &Contribution {
        &self.1
    }
    fn measure(items: &[(&Self, u64)], _: &WindowSpec) -> Option<Number> {
        let distinct: BTreeSet<&str> = items.iter().map(|(v, _)| v.0.as_str()).collect();
        (!distinct.is_empty()).then(|| Number::from(distinct.len() as u64))
    }
}

impl Item for (u32, Contribution) {
    fn contribution(&self) -> &Contribution {
        &self.1
    }
    fn measure(items: &[(&Self, u64)], _: &WindowSpec) -> Option<Number> {
        let records = items.iter().map(|(v, _)| (v.1.time, v.1.clone(), v.0)).collect();
        crate::sequence::progress(&records).map(Number::from)
    }
}

impl Item for (Number, Contribution) {
    fn contribution(&self) -> &Contribution {
        &self.1
    }
    fn measure(items: &[(&Self, u64)], spec: &WindowSpec) -> Option<Number> {
        let mut values: Vec<(Number, u64)> = items.iter().map(|(v, m)| (v.0, *m)).collect();
        values.sort_unstable();
        spec.aggregate.fold(&values)
    }
}

/// Keeps in `hold` the earliest capability an input batch has brought: `cap`'s when it is
/// earlier than what is held (one capability for every pending record, moved on later by
/// [`hold_until`]).
pub(crate) fn hold_earliest(hold: &mut Option<Capability<Time>>, cap: &InputCapability<Time>) {
    if cap.least().is_some_and(|t| hold.as_ref().is_none_or(|h| t < h.time())) {
        *hold = cap.retain_least(0);
    }
}

/// Moves `hold` up to `earliest`, the earliest time something still waits to be reported
/// at, or lets it go when nothing waits: a held capability keeps the frontier of every
/// operator downstream, so it must never sit earlier than needed.
pub(crate) fn hold_until(hold: &mut Option<Capability<Time>>, earliest: Option<&Time>) {
    match earliest {
        Some(t) => {
            if let Some(h) = hold.as_mut() {
                if h.time() < t {
                    h.downgrade(t);
                }
            }
        }
        None => *hold = None,
    }
}

/// Retractions waiting for their time.
type Waiting<V> = Vec<((Key, V), isize)>;

/// Each record at `t` stays in its slot's window until [`WindowSpec::leaves`]: `t + w + 1`
/// for sliding windows, the next bucket's start for tumbling ones. Records of slots without
/// a spec are dropped here.
///
/// The record passes at once; its retraction waits here, in time order, until the input
/// frontier reaches its time, under one capability held at the earliest waiting time. Sent
/// at once (as it was), every retraction sat in the next arrangement's batcher until its
/// time, and the batcher walks and copies what it keeps on every sealed time: with small,
/// frequent batches (one `_bulk` request or AMQP message each) that was most of the engine's
/// CPU (`perf/RESULTS.md`, scenarios 4 and 5). The collection is the same either way.
pub(crate) fn slide<'s, V: ExchangeData>(input: VecCollection<'s, Time, (Key, V), isize>, specs: &Specs) -> VecCollection<'s, Time, (Key, V), isize> {
    let specs = specs.clone();
    input
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<((Key, V), Time, isize)>>, _, _, _>(Pipeline, "Slide", move |_, _| {
            let mut later: BTreeMap<Time, Waiting<V>> = BTreeMap::new();
            let mut hold: Option<Capability<Time>> = None;
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    let mut session = output.session(&cap);
                    for ((k, v), t, r) in data.drain(..) {
                        let Some(spec) = specs.get(k.0 as usize) else { continue };
                        later.entry(spec.leaves(t)).or_default().push(((k.clone(), v.clone()), -r));
                        session.give(((k, v), t, r));
                    }
                    drop(session);
                    if hold.as_ref().is_none_or(|h| h.time() > cap.time()) {
                        hold = Some(cap);
                    }
                });
                // Retractions whose time the input has reached (all of them once it ends).
                let reached = |t: &Time| frontier.frontier().iter().all(|f| f >= t);
                if let Some(h) = hold.as_ref() {
                    let mut session = output.session(h);
                    while let Some(entry) = later.first_entry() {
                        if !reached(entry.key()) {
                            break;
                        }
                        let t = *entry.key();
                        session.give_iterator(entry.remove().into_iter().map(move |(d, r)| (d, t, r)));
                    }
                }
                hold_until(&mut hold, later.first_key_value().map(|(t, _)| t));
            }
        })
        .as_collection()
}

/// Crossings of `measure` (one value per key and time, and none for a key whose window is
/// empty, as `count_total` and `reduce` produce) into its slot's condition, with the
/// windowed records that make them up.
///
/// The keys meeting their condition form a set; its positive changes are the crossings.
/// That covers falling conditions too: `lt: 3` enters the set when a retraction takes the
/// count from 3 to 2, and a key whose window empties leaves the set without a crossing.
pub(crate) fn crossings<'s, V: Item>(
    name: &str,
    windowed: VecCollection<'s, Time, (Key, V), isize>,
    measure: VecCollection<'s, Time, (Key, Number), isize>,
    specs: &Specs,
) -> Crossings<'s> {
    let s = specs.clone();
    let pulses = measure
        .flat_map(move |(k, v)| s.get(k.0 as usize).is_some_and(|spec| spec.condition.is_met(v)).then_some(k))
        .arrange_by_self_named(&format!("{name}: Arrange met"))
        .as_collection(|k, &()| k.clone())
        .inner
        .flat_map(|(k, t, d)| {
            // A positive change of the above-threshold set is a crossing; the pulse carries
            // its time so that `gather` keeps only the join's updates at that time.
            (d > 0).then(|| [((k.clone(), t), t, 1), ((k, t), t.saturating_add(1), -1)]).into_iter().flatten()
        })
        .as_collection();
    let joined = windowed.join(pulses);
    gather(name, joined.inner, specs)
}

/// The join's output: windowed records paired with the time of the pulse they met.
type Joined<'s, V> = timely::dataflow::StreamVec<'s, Time, ((Key, (V, Time)), Time, isize)>;

type Pending<V> = (Capability<Time>, HashMap<Key, BTreeMap<V, isize>>);

/// Nets the join's updates per `(time, key)` and, once the frontier has passed the time,
/// emits one [`Crossing`] per key, keys in order.
fn gather<'s, V: Item>(name: &str, joined: Joined<'s, V>, specs: &Specs) -> Crossings<'s> {
    let specs = specs.clone();
    joined.unary_frontier::<CapacityContainerBuilder<Vec<Crossing>>, _, _, _>(Pipeline, &format!("{name}: Gather"), move |_, _| {
        let mut stash: BTreeMap<Time, Pending<V>> = BTreeMap::new();
        move |(input, frontier), output| {
            input.for_each(|cap, data| {
                let Some(cap) = cap.retain_least(0) else { return };
                for ((key, (v, pulse)), t, r) in data.drain(..) {
                    if t != pulse {
                        // Updates at other times net to zero or retract the pulse.
                        continue;
                    }
                    let pending = stash.entry(t).or_insert_with(|| (cap.delayed(&t), HashMap::new()));
                    *pending.1.entry(key).or_default().entry(v).or_default() += r;
                }
            });
            while let Some(entry) = stash.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let (time, (cap, keys)) = entry.remove_entry();
                let mut keys: Vec<_> = keys.into_iter().collect();
                keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let mut session = output.session(&cap);
                for (key, items) in keys {
                    if let Some(c) = build(time, key, &items, &specs) {
                        session.give(c);
                    }
                }
            }
        }
    })
}

fn build<V: Item>(time: Time, (slot, key): Key, items: &BTreeMap<V, isize>, specs: &Specs) -> Option<Crossing> {
    let spec = specs.get(slot as usize)?;
    let present: Vec<(&V, u64)> = items.iter().filter(|(_, r)| **r > 0).map(|(v, r)| (v, r.unsigned_abs() as u64)).collect();
    let value = V::measure(&present, spec)?;
    let contributions: BTreeSet<&Contribution> = present.iter().map(|(v, _)| v.contribution()).collect();
    let trigger_accepted_ns = contributions.iter().map(|c| c.accepted_ns).max().unwrap_or(0);
    Some(Crossing {
        slot,
        key,
        time,
        window_start: spec.start(time),
        value,
        events: contributions.into_iter().take(spec.max_refs).cloned().collect(),
        trigger_accepted_ns,
    })
}
