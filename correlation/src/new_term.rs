//! [`NewTerms`]: the first time a value (or a combination of values) is seen in a group,
//! once a learning period has passed. Memory is bounded per group and can be saved and
//! restored ([`crate::Keep`]), so a restart does not re-alert on everything it knew.

use crate::persist::{extents, In, Keep, Offers, Saved};
use crate::{Contribution, Crossing, Crossings, Events, GroupKey, Key, Number, Slot, Time};
use differential_dataflow::Hashable;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Map as _, ToStream as _};
use timely::dataflow::operators::{Capability, Concat};

/// How one new_term slot behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermSpec {
    /// How many leading values of a record's group key are the group; the rest are the term.
    pub group_len: usize,
    /// Learning period (ms of event time) from the slot's first record: terms seen in
    /// `[first, first + learning)` are remembered without alerting.
    pub learning_ms: u64,
    /// A term not seen for longer than this (ms) is new again; `None`: never.
    pub forget_ms: Option<u64>,
    /// At most this many terms per group; beyond, the least recently seen are forgotten
    /// (and counted through [`Keep::on_evict`]). At least 1.
    pub max_terms: usize,
}

/// Specs indexed by slot; `None` (or a missing slot) is not a new_term slot.
pub type TermSpecs = Arc<Vec<Option<TermSpec>>>;

/// Reports each term the first time it is seen in its group, after the slot's learning.
///
/// Records are keyed by `(slot, group ++ term)`; the first `group_len` values are the group.
/// A record at `t` fires one [`Crossing`] at `t` (value 1, its key the group and the term,
/// the record as its only event) when its term is not known in its group and `t` is at or
/// after `first + learning`, where `first` is the earliest record of the slot on any
/// worker. Every record makes its term known (its last-seen time becomes `t`). Records are
/// taken in event-time order once the frontier passes them, so the answer does not depend
/// on arrival order or worker count; of equal records at one time the first fires.
///
/// When input ends, records still pending are processed and the state is offered a final
/// time (see [`Keep`]).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Contribution, Keep, NewTerms, TermSpec};
///
/// // Group by user, term: the source address; learn for 100 ms.
/// let specs = Arc::new(vec![Some(TermSpec { group_len: 1, learning_ms: 100, forget_ms: None, max_terms: 1000 })]);
/// let recv = timely::example(move |scope| {
///     let (mut input, records) = scope.new_collection();
///     for (id, t, src) in [(1u128, 0u64, "10.0.0.1"), (2, 100, "10.0.0.1"), (3, 150, "10.0.0.9"), (4, 160, "10.0.0.9")] {
///         let key = vec!["alice".to_string(), src.to_string()];
///         input.update_at(((0u32, key), Contribution { time: t, id, accepted_ns: 0 }), t, 1);
///     }
///     records.new_terms(&specs, Keep::default()).capture()
/// });
/// let fired: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// // 10.0.0.1 was learnt; 10.0.0.9 is new at 150 and known at 160.
/// assert_eq!(fired.iter().map(|c| (c.key[1].as_str(), c.time)).collect::<Vec<_>>(), vec![("10.0.0.9", 150)]);
/// ```
pub trait NewTerms<'scope> {
    /// Watches for new terms (operators named `NewTerms`).
    fn new_terms(self, specs: &TermSpecs, keep: Keep) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.new_terms_core("NewTerms", specs, keep)
    }

    /// As [`NewTerms::new_terms`], with the operators named after `name`.
    fn new_terms_core(self, name: &str, specs: &TermSpecs, keep: Keep) -> Crossings<'scope>;
}

/// The worker that owns a record's group: a hash of the slot and the group values only,
/// so every term of a group meets the group's memory.
fn owner(specs: &TermSpecs, slot: Slot, key: &[String]) -> u64 {
    let n = specs.get(slot as usize).and_then(Option::as_ref).map_or(key.len(), |s| s.group_len.min(key.len()));
    (slot, &key[..n]).hashed()
}

/// One group's memory: each term's last-seen time, and the same ordered by it.
#[derive(Default)]
struct Group {
    seen: HashMap<GroupKey, Time>,
    by_age: BTreeSet<(Time, GroupKey)>,
}

impl Group {
    /// Marks `term` seen at `t`; whether it was known.
    fn touch(&mut self, term: GroupKey, t: Time) -> bool {
        match self.seen.get_mut(&term) {
            Some(last) => {
                if t > *last {
                    self.by_age.remove(&(*last, term.clone()));
                    *last = t;
                    self.by_age.insert((t, term));
                }
                true
            }
            None => {
                self.seen.insert(term.clone(), t);
                self.by_age.insert((t, term));
                false
            }
        }
    }

    /// Forgets terms last seen before `cutoff`.
    fn forget_before(&mut self, cutoff: Time) {
        while let Some((t, _)) = self.by_age.first() {
            if *t >= cutoff {
                break;
            }
            if let Some((_, term)) = self.by_age.pop_first() {
                self.seen.remove(&term);
            }
        }
    }

    /// Forgets the least recently seen terms (ties: the smallest term) beyond `max`; how
    /// many.
    fn evict_to(&mut self, max: usize) -> u64 {
        let mut n = 0;
        while self.seen.len() > max.max(1) {
            let Some((_, term)) = self.by_age.pop_first() else { break };
            self.seen.remove(&term);
            n += 1;
        }
        n
    }
}

/// How often (processing time) forgotten terms are swept out of idle groups.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Records due at one time.
type Due = (Capability<Time>, Vec<(Key, Contribution)>);

impl<'scope> NewTerms<'scope> for Events<'scope> {
    fn new_terms_core(self, name: &str, specs: &TermSpecs, keep: Keep) -> Crossings<'scope> {
        let scope = self.inner.scope();
        let worker = scope.index();
        let records = self.inner.flat_map(|((k, c), _, r)| (r > 0).then_some(In::Record(k, c)));
        let restored = keep.restore.clone().into_iter().map(In::Saved).to_stream(scope);
        let all = records.concat(restored);
        let extent_stream = extents(name, all.clone());
        let route = specs.clone();
        let pact = Exchange::new(move |x: &In| match x {
            In::Record((slot, key), _) | In::Saved(Saved::Pending { slot, key, .. }) => owner(&route, *slot, key),
            In::Saved(Saved::Terms { slot, group, .. }) => (*slot, group.as_slice()).hashed(),
            In::Saved(_) => 0,
        });
        let specs = specs.clone();
        let own = name.to_string();
        all.binary_frontier::<_, CapacityContainerBuilder<Vec<Crossing>>, _, _, _, _>(extent_stream, pact, Pipeline, name, move |_, _| {
            let mut offers = Offers::new(&keep, &own, worker);
            let on_evict = keep.on_evict.clone();
            let mut due: BTreeMap<Time, Due> = BTreeMap::new();
            let mut extent: HashMap<Slot, (Time, Time)> = HashMap::new();
            let mut groups: HashMap<(Slot, GroupKey), Group> = HashMap::new();
            let mut last_sweep = std::time::Instant::now();
            move |(input, frontier), (ext, ext_frontier), output| {
                ext.for_each(|_, data| {
                    for (slot, first, newest) in data.drain(..) {
                        let e = extent.entry(slot).or_insert((first, newest));
                        *e = (e.0.min(first), e.1.max(newest));
                    }
                });
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    for item in data.drain(..) {
                        let (key, c) = match item {
                            In::Record(key, c) => (key, c),
                            In::Saved(Saved::Pending { slot, key, contribution }) => ((slot, key), contribution),
                            In::Saved(Saved::Terms { slot, group, terms }) => {
                                let g = groups.entry((slot, group)).or_default();
                                for (term, t) in terms {
                                    g.touch(term, t);
                                }
                                continue;
                            }
                            In::Saved(_) => continue,
                        };
                        if specs.get(key.0 as usize).and_then(Option::as_ref).is_none() {
                            continue;
                        }
                        let t = c.time.max(*cap.time());
                        due.entry(t).or_insert_with(|| (cap.delayed(&t), Vec::new())).1.push((key, c));
                    }
                });
                let ended = frontier.frontier().is_empty() && ext_frontier.frontier().is_empty();
                let mut evicted = 0;
                while let Some(entry) = due.first_entry() {
                    let t = *entry.key();
                    if !ended && (frontier.less_equal(&t) || ext_frontier.less_equal(&t)) {
                        break;
                    }
                    let (cap, mut records) = entry.remove();
                    records.sort();
                    let mut fired = Vec::new();
                    for ((slot, key), c) in records {
                        let Some(spec) = specs.get(slot as usize).and_then(Option::as_ref) else { continue };
                        let first = extent.get(&slot).map_or(t, |e| e.0);
                        let learning = t < first.saturating_add(spec.learning_ms);
                        let (group, term) = key.split_at(spec.group_len.min(key.len()));
                        let g = groups.entry((slot, group.to_vec())).or_default();
                        if let Some(f) = spec.forget_ms {
                            g.forget_before(t.saturating_sub(f));
                        }
                        let known = g.touch(term.to_vec(), t);
                        evicted += g.evict_to(spec.max_terms);
                        if !known && !learning {
                            fired.push(Crossing { slot, key, time: t, window_start: t, value: Number::from(1), trigger_accepted_ns: c.accepted_ns, events: vec![c] });
                        }
                    }
                    if !fired.is_empty() {
                        output.session(&cap).give_iterator(fired.into_iter());
                    }
                }
                if let (true, Some(f)) = (evicted > 0, &on_evict) {
                    f(evicted);
                }
                // Now and then, free the memory of terms already forgotten (`forget_after`
                // before the frontier): no record can reach them in time any more, so this
                // changes no answer, only what idle groups hold.
                if let (true, Some(&now)) = (last_sweep.elapsed() >= SWEEP_EVERY, frontier.frontier().first()) {
                    groups.retain(|(slot, _), g| {
                        if let Some(f) = specs.get(*slot as usize).and_then(Option::as_ref).and_then(|s| s.forget_ms) {
                            g.forget_before(now.saturating_sub(f));
                        }
                        !g.seen.is_empty()
                    });
                    last_sweep = std::time::Instant::now();
                }
                if offers.due(ended) {
                    let mut entries: Vec<Saved> = extent.iter().map(|(&slot, &(first, newest))| Saved::Extent { slot, first, newest }).collect();
                    entries.extend(groups.iter().map(|((slot, group), g)| Saved::Terms { slot: *slot, group: group.clone(), terms: g.by_age.iter().map(|(t, term)| (term.clone(), *t)).collect() }));
                    entries.extend(due.values().flat_map(|(_, recs)| recs.iter().map(|((slot, key), c)| Saved::Pending { slot: *slot, key: key.clone(), contribution: c.clone() })));
                    offers.offer(ended, entries);
                }
                if ended {
                    groups.clear();
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{run_kept, shuffled};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    type Rec = ((Key, Contribution), Time);

    /// Runs the operator on `workers` workers; returns the crossings, sorted, and the final
    /// parts offered.
    fn run(workers: usize, records: Vec<Rec>, specs: TermSpecs, restore: Vec<Saved>) -> (Vec<Crossing>, Vec<Saved>) {
        let (out, parts) = run_kept(workers, records, specs, restore, |c, s, k| c.new_terms(s, k));
        assert_eq!(parts.iter().filter(|p| p.last).count(), workers, "one final part per worker");
        (out, parts.into_iter().filter(|p| p.last).flat_map(|p| p.entries).collect())
    }

    fn rec(id: u128, t: Time, group: &str, term: &str) -> Rec {
        (((0, vec![group.to_string(), term.to_string()]), Contribution { time: t, id, accepted_ns: id as u64 }), t)
    }

    fn spec(learning_ms: u64, forget_ms: Option<u64>, max_terms: usize) -> TermSpecs {
        Arc::new(vec![Some(TermSpec { group_len: 1, learning_ms, forget_ms, max_terms })])
    }

    fn fired(c: &[Crossing]) -> Vec<(Time, &str, &str)> {
        c.iter().map(|c| (c.time, c.key[0].as_str(), c.key[1].as_str())).collect()
    }

    #[test]
    fn learning_ends_exactly_at_first_plus_learning() {
        // First record at 10, learning 100: [10, 110) learns, 110 alerts.
        let (c, _) = run(1, vec![rec(1, 10, "g", "a"), rec(2, 109, "g", "b"), rec(3, 110, "g", "c"), rec(4, 111, "g", "b")], spec(100, None, 10), vec![]);
        assert_eq!(fired(&c), vec![(110, "g", "c")], "b was learnt at 109 (one ms before the end), c is new at the end");
        // The first record of the slot starts learning, whatever its group.
        let (c, _) = run(1, vec![rec(1, 10, "x", "a"), rec(2, 110, "g", "a")], spec(100, None, 10), vec![]);
        assert_eq!(fired(&c), vec![(110, "g", "a")], "a group first seen after learning alerts on its first term");
    }

    #[test]
    fn forget_after_and_max_terms_bound_the_memory() {
        // forget 50: seen at 0, again at 50 (exactly 50 later: still known), at 101 (51 later: new).
        let (c, _) = run(1, vec![rec(1, 0, "g", "a"), rec(2, 50, "g", "a"), rec(3, 101, "g", "a")], spec(0, Some(50), 10), vec![]);
        assert_eq!(fired(&c), vec![(0, "g", "a"), (101, "g", "a")]);
        // max 2: a, b, c → a (least recently seen) is evicted, so a is new again; b was
        // touched at 3, so c is the oldest when a returns.
        let (c, saved) = run(1, vec![rec(1, 0, "g", "a"), rec(2, 1, "g", "b"), rec(3, 2, "g", "c"), rec(4, 3, "g", "b"), rec(5, 4, "g", "a"), rec(6, 5, "g", "b")], spec(0, None, 2), vec![]);
        assert_eq!(fired(&c), vec![(0, "g", "a"), (4, "g", "a"), (1, "g", "b"), (2, "g", "c")], "sorted by key, then time");
        let terms: Vec<_> = saved.iter().filter_map(|s| match s {
            Saved::Terms { terms, .. } => Some(terms.clone()),
            _ => None,
        }).collect();
        assert_eq!(terms, vec![vec![(vec!["a".to_string()], 4), (vec!["b".to_string()], 5)]]);
    }

    /// From scratch: walk records in time order with a plain map per group.
    fn oracle(records: &[Rec], spec: &TermSpec) -> Vec<Crossing> {
        let mut sorted = records.to_vec();
        sorted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        let first = sorted.first().map_or(0, |r| r.1);
        let mut last: HashMap<(GroupKey, GroupKey), Time> = HashMap::new();
        let mut out = Vec::new();
        for (((slot, key), c), t) in sorted {
            let (g, term) = key.split_at(spec.group_len);
            let known = last.get(&(g.to_vec(), term.to_vec())).is_some_and(|l| spec.forget_ms.is_none_or(|f| t - l <= f));
            if !known && t >= first + spec.learning_ms {
                out.push(Crossing { slot, key: key.clone(), time: t, window_start: t, value: Number::from(1), trigger_accepted_ns: c.accepted_ns, events: vec![c] });
            }
            let e = last.entry((g.to_vec(), term.to_vec())).or_insert(t);
            *e = (*e).max(t);
        }
        out.sort();
        out
    }

    fn random(seed: u64, n: usize) -> Vec<Rec> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let t = rng.random_range(0..500);
                rec(i as u128, t, ["g", "h", "k"][rng.random_range(0..3)], ["a", "b", "c", "d", "e", "f"][rng.random_range(0..6)])
            })
            .collect()
    }

    #[test]
    fn matches_from_scratch_on_1_2_and_4_workers_in_any_order() {
        for seed in 0..4 {
            let records = random(seed, 150);
            let s = TermSpec { group_len: 1, learning_ms: 100, forget_ms: Some(120), max_terms: 100 };
            let expected = oracle(&records, &s);
            assert!(!expected.is_empty(), "seed {seed}");
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), Arc::new(vec![Some(s.clone())]), vec![]).0, expected, "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn a_restored_state_continues_the_run_on_any_number_of_workers() {
        let s = TermSpec { group_len: 1, learning_ms: 100, forget_ms: Some(200), max_terms: 100 };
        for seed in 10..13 {
            let mut records = random(seed, 200);
            records.sort_by_key(|r| r.1);
            let expected = oracle(&records, &s);
            let (before, after) = records.split_at(records.iter().position(|r| r.1 >= 250).unwrap());
            for (w1, w2) in [(4, 1), (1, 4), (2, 3)] {
                let (mut c1, saved) = run(w1, before.to_vec(), Arc::new(vec![Some(s.clone())]), vec![]);
                let (c2, _) = run(w2, after.to_vec(), Arc::new(vec![Some(s.clone())]), saved);
                c1.extend(c2);
                c1.sort();
                assert_eq!(c1, expected, "seed {seed}, {w1} then {w2} workers");
            }
        }
    }
}
