//! [`WindowedDistinctCount`]: distinct values per key in a sliding event-time window,
//! reported when the number crosses its slot's threshold.
//!
//! Like [`crate::WindowedCount`], one timely operator rather than differential
//! arrangements (delayed retraction, `distinct_total`, `count_total` and a join for the
//! window's contents, each sorting and merging every record with its key: ~40 % of the
//! engine's CPU on the shipped rules). Each key keeps its window's records in time order
//! and a count per value; times are taken in order once the frontier has passed them; a
//! key is looked at when a record arrives or leaves its window, so falling conditions fire
//! when they become true. The tests compare it with a recomputation from scratch on 1, 2
//! and 4 workers in any arrival order.

use crate::window::{hold_earliest, hold_until};
use crate::{Contribution, Crossing, Crossings, Key, Number, Specs, Time, Values, Window, WindowSpec};
use differential_dataflow::Hashable;
use hashbrown::HashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// Counts the distinct values of keyed `(value, contribution)` records over each slot's
/// sliding window and reports crossings.
///
/// Window and crossing semantics are those of [`crate::WindowedCount`]; the measure is the
/// number of distinct values among the records in `[t - w, t]`, and a crossing carries every
/// contribution in the window (repeated values included).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Contribution, WindowSpec, WindowedDistinctCount};
///
/// let specs = Arc::new(vec![WindowSpec::at_least(100, 2, 10)]);
/// let recv = timely::example(move |scope| {
///     let (mut input, values) = scope.new_collection();
///     for (id, t, user) in [(1u128, 0u64, "alice"), (2, 5, "alice"), (3, 9, "bob")] {
///         let c = Contribution { time: t, id, accepted_ns: 0 };
///         input.update_at(((0u32, vec!["10.0.0.1".to_string()]), (user.to_string(), c)), t, 1);
///     }
///     values.windowed_distinct_count(&specs).capture()
/// });
/// let crossings: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(crossings.len(), 1);
/// assert_eq!((crossings[0].time, crossings[0].value.get(), crossings[0].events.len()), (9, 2.0, 3));
/// ```
pub trait WindowedDistinctCount<'scope> {
    /// Counts distinct values and reports crossings (operators named `WindowedDistinctCount`).
    fn windowed_distinct_count(self, specs: &Specs) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.windowed_distinct_count_core("WindowedDistinctCount", specs)
    }

    /// As [`WindowedDistinctCount::windowed_distinct_count`], with operators named after `name`.
    fn windowed_distinct_count_core(self, name: &str, specs: &Specs) -> Crossings<'scope>;
}

impl<'scope> WindowedDistinctCount<'scope> for Values<'scope> {
    fn windowed_distinct_count_core(self, name: &str, specs: &Specs) -> Crossings<'scope> {
        let specs = specs.clone();
        let pact = Exchange::new(|((k, _), _, _): &((Key, (String, Contribution)), Time, isize)| k.hashed());
        self.inner.unary_frontier::<CapacityContainerBuilder<Vec<Crossing>>, _, _, _>(pact, name, move |_, _| {
            let mut state = Distinct::default();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    hold_earliest(&mut state.hold, &cap);
                    for ((key, (value, c)), t, r) in data.drain(..) {
                        if r <= 0 || !specs.get(key.0 as usize).is_some_and(|s| matches!(s.window, Window::Sliding | Window::Tumbling)) {
                            continue;
                        }
                        state.due.entry(t).or_default().push((key, value, c, r.unsigned_abs()));
                    }
                });
                let mut crossings = Vec::new();
                while let Some(time) = state.next().filter(|t| !frontier.less_equal(t)) {
                    state.step(time, &specs, &mut crossings);
                    if !crossings.is_empty() {
                        crossings.sort_unstable_by(|a: &Crossing, b: &Crossing| (a.slot, &a.key).cmp(&(b.slot, &b.key)));
                        if let Some(cap) = state.hold.as_ref().map(|h| h.delayed(&time)) {
                            output.session(&cap).give_iterator(crossings.drain(..));
                        }
                    }
                }
                let next = state.next();
                hold_until(&mut state.hold, next.as_ref());
            }
        })
    }
}

/// One key's window.
#[derive(Default)]
struct KeyWindow {
    /// Records in time order: (time, value, contribution, multiplicity).
    records: VecDeque<(Time, String, Contribution, usize)>,
    /// Multiplicity per value present.
    values: HashMap<String, usize>,
    /// The condition was met at the last time this key was looked at.
    met: bool,
}

/// The operator's state.
#[derive(Default)]
struct Distinct {
    /// Records waiting for the frontier to pass their time.
    due: BTreeMap<Time, Vec<(Key, String, Contribution, usize)>>,
    /// Keys to look at again when a record leaves their window.
    leaving: BTreeMap<Time, Vec<Key>>,
    windows: HashMap<Key, KeyWindow>,
    /// Held at the earliest time in `due` or `leaving`.
    hold: Option<Capability<Time>>,
}

impl Distinct {
    /// The earliest time something happens.
    fn next(&self) -> Option<Time> {
        match (self.due.keys().next(), self.leaving.keys().next()) {
            (Some(a), Some(b)) => Some(*a.min(b)),
            (a, b) => a.or(b).copied(),
        }
    }

    /// Applies what arrives and leaves at `time`, key by key, and collects the crossings.
    ///
    /// The records due at `time` are sorted by key, so each key's window is found once per
    /// time and judged once all of its records are in. Keys whose records leave at `time`
    /// are judged too; a key in both lists is judged twice, which changes nothing the second
    /// time (its records have already left and `met` is up to date).
    fn step(&mut self, time: Time, specs: &Specs, out: &mut Vec<Crossing>) {
        let mut due = self.due.remove(&time).unwrap_or_default();
        due.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut due = due.into_iter().peekable();
        while let Some((key, value, c, n)) = due.next() {
            let Some(spec) = specs.get(key.0 as usize) else { continue };
            let leaving = self.leaving.entry(spec.leaves(time)).or_default();
            if leaving.last() != Some(&key) {
                leaving.push(key.clone());
            }
            let w = match self.windows.get_mut(&key) {
                Some(w) => w,
                None => self.windows.entry(key.clone()).or_default(),
            };
            w.expire(spec, time);
            w.add(time, value, c, n);
            while let Some((_, value, c, n)) = due.next_if(|next| next.0 == key) {
                w.add(time, value, c, n);
            }
            w.judge(&key, spec, time, out);
        }
        for key in self.leaving.remove(&time).unwrap_or_default() {
            let (Some(spec), Some(w)) = (specs.get(key.0 as usize), self.windows.get_mut(&key)) else { continue };
            w.expire(spec, time);
            w.judge(&key, spec, time, out);
            if w.records.is_empty() {
                self.windows.remove(&key);
            }
        }
    }
}

impl KeyWindow {
    /// Out with the records whose window has passed by `time` (they are in time order, so
    /// the oldest are at the front).
    fn expire(&mut self, spec: &WindowSpec, time: Time) {
        while let Some((t, ..)) = self.records.front() {
            if spec.leaves(*t) > time {
                break;
            }
            if let Some((_, v, _, n)) = self.records.pop_front() {
                if let Some(m) = self.values.get_mut(&v) {
                    *m = m.saturating_sub(n);
                    if *m == 0 {
                        self.values.remove(&v);
                    }
                }
            }
        }
    }

    /// In with one record at `time`; the value is copied only when it is new to the window.
    fn add(&mut self, time: Time, value: String, c: Contribution, n: usize) {
        *self.values.entry_ref(value.as_str()).or_insert(0) += n;
        self.records.push_back((time, value, c, n));
    }

    /// Reports a crossing when the condition has just become true at `time`.
    fn judge(&mut self, key: &Key, spec: &WindowSpec, time: Time, out: &mut Vec<Crossing>) {
        let distinct = Number::from(self.values.len() as u64);
        let met = !self.records.is_empty() && spec.condition.is_met(distinct);
        if met && !self.met {
            let contributions: BTreeSet<&Contribution> = self.records.iter().map(|(_, _, c, _)| c).collect();
            out.push(Crossing {
                slot: key.0,
                key: key.1.clone(),
                time,
                window_start: spec.start(time),
                value: distinct,
                trigger_accepted_ns: contributions.iter().map(|c| c.accepted_ns).max().unwrap_or(0),
                events: contributions.into_iter().take(spec.max_refs).cloned().collect(),
            });
        }
        self.met = met;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{at, oracle, random, run, shuffled, specs};
    use crate::WindowSpec;
    use std::sync::Arc;

    fn op<'s>(c: Values<'s>, s: &Specs) -> Crossings<'s> {
        c.windowed_distinct_count(s)
    }

    #[test]
    fn matches_from_scratch_recomputation() {
        for seed in 0..10 {
            let records = random(seed, 80, 150);
            let expected = oracle(&records, &specs());
            assert!(!expected.is_empty(), "seed {seed} exercises nothing");
            assert_eq!(run(1, records, specs(), op), expected, "seed {seed}");
        }
    }

    #[test]
    fn same_result_on_1_2_and_4_workers_and_in_any_order() {
        for seed in 20..23 {
            let records = random(seed, 80, 150);
            let expected = oracle(&records, &specs());
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), specs(), op), expected, "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn falling_ranged_and_tumbling_conditions_match_from_scratch_on_1_2_and_4_workers() {
        use crate::{Aggregate, Cmp, Condition};
        let cond = |c: Vec<(Cmp, f64)>| Condition(c);
        let specs = Arc::new(vec![
            WindowSpec { window: crate::Window::Sliding, window_ms: 10, condition: cond(vec![(Cmp::Lt, 2.0)]), aggregate: Aggregate::Sum, max_refs: 3 },
            WindowSpec { window: crate::Window::Sliding, window_ms: 25, condition: cond(vec![(Cmp::Gt, 1.0), (Cmp::Lte, 3.0)]), aggregate: Aggregate::Sum, max_refs: 100 },
        ]);
        let tumbling = Arc::new(vec![
            WindowSpec { window: crate::Window::Tumbling, ..WindowSpec::at_least(10, 3, 4) },
            WindowSpec { window: crate::Window::Tumbling, window_ms: 25, condition: cond(vec![(Cmp::Lt, 3.0)]), aggregate: Aggregate::Sum, max_refs: 4 },
        ]);
        for specs in [specs, tumbling] {
            let mut slots = BTreeSet::new();
            for seed in 40..43 {
                let records = random(seed, 80, 150);
                let expected = oracle(&records, &specs);
                slots.extend(expected.iter().map(|c| c.slot));
                for workers in [1, 2, 4] {
                    assert_eq!(run(workers, shuffled(&records, seed), specs.clone(), op), expected, "seed {seed}, {workers} workers, {specs:?}");
                }
            }
            assert_eq!(slots.len(), 2, "both slots fire for some seed: {specs:?}");
        }
    }

    #[test]
    fn repeated_values_count_once_but_are_all_referenced() {
        let specs = Arc::new(vec![WindowSpec::at_least(10, 2, 10)]);
        let rec = |id: u128, t: u64, v: &str| (((0, vec!["ip".to_string()]), (v.to_string(), at(id, t))), t);
        // alice three times never reaches two distinct values; bob at 12 does, and the
        // window [2, 12] holds the alice at 2 and 5 (not the one at 1).
        let c = run(1, vec![rec(1, 1, "alice"), rec(2, 2, "alice"), rec(3, 5, "alice"), rec(4, 12, "bob")], specs.clone(), op);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].time, c[0].value.get()), (12, 2.0));
        assert_eq!(c[0].events, vec![at(2, 2), at(3, 5), at(4, 12)]);
        // Without bob nothing fires.
        assert!(run(1, vec![rec(1, 1, "alice"), rec(2, 2, "alice"), rec(3, 5, "alice")], specs, op).is_empty());
    }
}
