//! [`SessionWindows`]: per-key activity sessions (`window: session(gap)`), closed by a quiet
//! gap or a maximum length, reported when a session's measure (count, distinct count or
//! aggregate) crosses its slot's condition.
//!
//! Sessions are not a fixed function of a record's time (a record can join two sessions
//! into one, or be cut off by the length cap), so there is no delayed retraction to express
//! them with, as [`crate::WindowedCount`] does for sliding windows. Instead, like
//! [`crate::Absence`], the operator buffers records per time and takes each time in order
//! once the frontier has passed it: the result depends neither on arrival order nor on the
//! number of workers.

use crate::window::Item;
use crate::{Contribution, Crossing, Crossings, Key, Specs, Time, Window, WindowSpec};
use differential_dataflow::{Hashable, VecCollection};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// Groups keyed records into sessions and reports each session's crossings.
///
/// Per key (slot and group), records are taken in time order once the frontier has passed
/// their time, all records at one millisecond together. A session is a maximal run of
/// records in which each is at most `gap_ms` after the previous one (inclusive) and the
/// whole run spans at most the spec's `window_ms` (last − first, inclusive); a record that
/// breaks either rule closes the session and starts a new one. After the records at `t`
/// are added, the session's measure is evaluated; when it goes from not meeting the slot's
/// condition (or from no session) to meeting it, one [`Crossing`] is emitted at `t`, with
/// the session's start as `window_start` and its contributions, oldest first, at most
/// `max_refs`. A session fires again only if its measure leaves the condition and comes
/// back (a sum over negative values can).
///
/// Records are netted per record and time; a net count of zero or less is ignored (event
/// streams only add), as are records of slots without a spec or whose spec is not a
/// [`Window::Session`]. A key's state is dropped once the frontier passes the last time a
/// record could still join its session; no capability is held for that, so the output
/// frontier follows the input's.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Contribution, SessionWindows, Window, WindowSpec};
///
/// // Three events in a session that pauses at most 10 ms and lasts at most 60 ms.
/// let specs = Arc::new(vec![WindowSpec { window: Window::Session { gap_ms: 10 }, ..WindowSpec::at_least(60, 3, 10) }]);
/// let recv = timely::example(move |scope| {
///     let (mut input, events) = scope.new_collection();
///     for (id, t) in [(1u128, 0u64), (2, 5), (3, 15), (4, 40), (5, 45), (6, 50)] {
///         input.update_at(((0u32, vec!["root".to_string()]), Contribution { time: t, id, accepted_ns: 0 }), t, 1);
///     }
///     events.session_windows(&specs).capture()
/// });
/// let crossings: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// // 0, 5, 15 form one session; 40 comes 25 ms after 15 and starts another.
/// let found: Vec<_> = crossings.iter().map(|c| (c.window_start, c.time, c.value.get())).collect();
/// assert_eq!(found, vec![(0, 15, 3.0), (40, 50, 3.0)]);
/// ```
pub trait SessionWindows<'scope> {
    /// Groups into sessions and reports crossings (operator named `SessionWindows`).
    fn session_windows(self, specs: &Specs) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.session_windows_core("SessionWindows", specs)
    }

    /// As [`SessionWindows::session_windows`], with the operator named `name`.
    fn session_windows_core(self, name: &str, specs: &Specs) -> Crossings<'scope>;
}

/// The records arriving at one time, netted per key and record, and the capability to
/// report at that time.
type Due<V> = (Capability<Time>, HashMap<Key, BTreeMap<V, isize>>);

/// The gap of a session spec; `None` for the other windows.
fn gap(spec: &WindowSpec) -> Option<u64> {
    match spec.window {
        Window::Session { gap_ms } => Some(gap_ms),
        Window::Sliding | Window::Tumbling => None,
    }
}

/// One key's open session.
struct Session<V> {
    /// The first record's time.
    start: Time,
    /// The latest record's time.
    last: Time,
    /// The last time a record can still join: `min(last + gap, start + window_ms)`.
    until: Time,
    /// The records with their multiplicities (none zero).
    items: BTreeMap<V, u64>,
    /// Whether the measure met the condition at the last evaluation.
    met: bool,
}

impl<V: Item> Session<V> {
    fn new(t: Time) -> Session<V> {
        Session { start: t, last: t, until: t, items: BTreeMap::new(), met: false }
    }

    /// Adds the records at `t` (not before `last`).
    fn add(&mut self, t: Time, records: Vec<(V, u64)>, gap_ms: u64, max_ms: u64) {
        self.last = t;
        self.until = t.saturating_add(gap_ms).min(self.start.saturating_add(max_ms));
        for (v, m) in records {
            *self.items.entry(v).or_default() += m;
        }
    }

    /// Evaluates the measure after the records at `time`: a crossing if it meets the
    /// condition now and did not at the last evaluation.
    fn evaluate(&mut self, time: Time, (slot, key): &Key, spec: &WindowSpec) -> Option<Crossing> {
        let items: Vec<(&V, u64)> = self.items.iter().map(|(v, m)| (v, *m)).collect();
        let value = V::measure(&items, spec);
        let met = value.is_some_and(|v| spec.condition.is_met(v));
        let fires = met && !self.met;
        self.met = met;
        let value = value.filter(|_| fires)?;
        let contributions: BTreeSet<&Contribution> = items.iter().map(|(v, _)| v.contribution()).collect();
        Some(Crossing {
            slot: *slot,
            key: key.clone(),
            time,
            window_start: self.start,
            value,
            trigger_accepted_ns: contributions.iter().map(|c| c.accepted_ns).max().unwrap_or(0),
            events: contributions.into_iter().take(spec.max_refs).cloned().collect(),
        })
    }
}

impl<'scope, V: Item> SessionWindows<'scope> for VecCollection<'scope, Time, (Key, V), isize> {
    fn session_windows_core(self, name: &str, specs: &Specs) -> Crossings<'scope> {
        let specs = specs.clone();
        let pact = Exchange::new(|((k, _), _, _): &((Key, V), Time, isize)| k.hashed());
        self.inner.unary_frontier::<CapacityContainerBuilder<Vec<Crossing>>, _, _, _>(pact, name, move |_, _| {
            let mut due: BTreeMap<Time, Due<V>> = BTreeMap::new();
            let mut open: HashMap<Key, Session<V>> = HashMap::new();
            // `(until, key)` of every open session, one entry each (moved whenever `until`
            // moves): once the frontier passes `until`, any later record starts a new
            // session, so the state can go. It must never remove a newer session of the
            // key, hence the check on `until` when an entry comes due.
            let mut expiry: BTreeSet<(Time, Key)> = BTreeSet::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    for ((key, v), t, r) in data.drain(..) {
                        if specs.get(key.0 as usize).and_then(gap).is_none() {
                            continue;
                        }
                        let pending = due.entry(t).or_insert_with(|| (cap.delayed(&t), HashMap::new()));
                        *pending.1.entry(key).or_default().entry(v).or_default() += r;
                    }
                });
                while let Some(entry) = due.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (cap, keys)) = entry.remove_entry();
                    let mut keys: Vec<_> = keys.into_iter().collect();
                    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    let mut out = output.session(&cap);
                    for (key, records) in keys {
                        let Some(spec) = specs.get(key.0 as usize) else { continue };
                        let Some(gap_ms) = gap(spec) else { continue };
                        let added: Vec<(V, u64)> = records.into_iter().filter(|(_, r)| *r > 0).map(|(v, r)| (v, r.unsigned_abs() as u64)).collect();
                        if added.is_empty() {
                            continue;
                        }
                        if let Some(old) = open.get(&key) {
                            expiry.remove(&(old.until, key.clone()));
                        }
                        // All records at one time join or split together: the rules only
                        // look at times.
                        let state = match open.entry(key.clone()) {
                            Entry::Occupied(e) if time <= e.get().until => e.into_mut(),
                            Entry::Occupied(mut e) => {
                                e.insert(Session::new(time));
                                e.into_mut()
                            }
                            Entry::Vacant(e) => e.insert(Session::new(time)),
                        };
                        state.add(time, added, gap_ms, spec.window_ms);
                        expiry.insert((state.until, key.clone()));
                        if let Some(c) = state.evaluate(time, &key, spec) {
                            out.give(c);
                        }
                    }
                }
                // Every time still to come is at or after the frontier (none: input done).
                let horizon = frontier.frontier().first().copied();
                while let Some(first) = expiry.first() {
                    if horizon.is_some_and(|h| first.0 >= h) {
                        break;
                    }
                    if let Some((until, key)) = expiry.pop_first() {
                        if open.get(&key).is_some_and(|s| s.until == until) {
                            open.remove(&key);
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{at, random, random_numbers, run, shuffled, Naive, Records};
    use crate::{Aggregate, Cmp, Condition, Number};
    use std::sync::Arc;

    fn count_op<'s>(c: crate::Events<'s>, s: &Specs) -> Crossings<'s> {
        c.session_windows(s)
    }

    fn distinct_op<'s>(c: crate::Values<'s>, s: &Specs) -> Crossings<'s> {
        c.session_windows(s)
    }

    fn number_op<'s>(c: crate::Numbers<'s>, s: &Specs) -> Crossings<'s> {
        c.session_windows(s)
    }

    fn session(gap_ms: u64, max_ms: u64, condition: Vec<(Cmp, f64)>, aggregate: Aggregate, max_refs: usize) -> WindowSpec {
        WindowSpec { window: Window::Session { gap_ms }, window_ms: max_ms, condition: Condition(condition), aggregate, max_refs }
    }

    /// From scratch: per key, records sorted by time and cut into sessions by the two
    /// rules; each session's measure after each of its distinct times.
    fn oracle<V: Naive>(records: &[((Key, V), Time)], specs: &Specs) -> Vec<Crossing> {
        let mut by_key: BTreeMap<&Key, Vec<(Time, &V)>> = BTreeMap::new();
        for ((k, v), t) in records {
            if specs.get(k.0 as usize).is_some_and(|s| matches!(s.window, Window::Session { .. })) {
                by_key.entry(k).or_default().push((*t, v));
            }
        }
        let mut out = Vec::new();
        for (key, mut recs) in by_key {
            let spec = &specs[key.0 as usize];
            let Window::Session { gap_ms } = spec.window else { unreachable!() };
            recs.sort_by_key(|(t, _)| *t);
            let mut sessions: Vec<Vec<(Time, &V)>> = Vec::new();
            for r in recs {
                match sessions.last_mut() {
                    Some(s) if r.0 - s[s.len() - 1].0 <= gap_ms && r.0 - s[0].0 <= spec.window_ms => s.push(r),
                    _ => sessions.push(vec![r]),
                }
            }
            for s in sessions {
                let times: BTreeSet<Time> = s.iter().map(|(t, _)| *t).collect();
                let mut before = false;
                for end in times {
                    let items: Vec<&V> = s.iter().filter(|(t, _)| *t <= end).map(|(_, v)| *v).collect();
                    let now = V::naive(&items, spec);
                    let met = now.is_some_and(|m| spec.condition.is_met(Number::new(m).unwrap()));
                    if met && !before {
                        let contribs: BTreeSet<&Contribution> = items.iter().map(|v| v.contribution()).collect();
                        out.push(Crossing {
                            slot: key.0,
                            key: key.1.clone(),
                            time: end,
                            window_start: s[0].0,
                            value: Number::new(now.unwrap()).unwrap(),
                            trigger_accepted_ns: contribs.iter().map(|c| c.accepted_ns).max().unwrap(),
                            events: contribs.into_iter().take(spec.max_refs).cloned().collect(),
                        });
                    }
                    before = met;
                }
            }
        }
        out.sort();
        out
    }

    /// Compares with the oracle on 1, 2 and 4 workers; returns the crossings and how many
    /// of them are in a session the length cap started (a record of the key within the gap
    /// before its start), so the tests can check that the cap is exercised.
    fn check<V: Naive + Send + Sync>(records: Records<V>, specs: &Specs, op: crate::testkit::Op<V>, seed: u64) -> (Vec<Crossing>, usize) {
        let expected = oracle(&records, specs);
        for workers in [1, 2, 4] {
            assert_eq!(run(workers, shuffled(&records, seed), specs.clone(), op), expected, "seed {seed}, {workers} workers");
        }
        let capped = expected
            .iter()
            .filter(|c| {
                let Window::Session { gap_ms } = specs[c.slot as usize].window else { return false };
                records.iter().any(|((k, _), t)| k.0 == c.slot && k.1 == c.key && *t < c.window_start && c.window_start - *t <= gap_ms)
            })
            .count();
        (expected, capped)
    }

    #[test]
    fn counts_match_from_scratch_on_1_2_and_4_workers() {
        let specs = Arc::new(vec![
            session(15, 30, vec![(Cmp::Gte, 3.0)], Aggregate::Sum, 2),
            session(25, 60, vec![(Cmp::Gt, 2.0), (Cmp::Lte, 4.0)], Aggregate::Sum, 100),
        ]);
        let mut capped = 0;
        for seed in 0..4 {
            let records: Records<Contribution> = random(seed, 80, 400).into_iter().map(|((k, (_, c)), t)| ((k, c), t)).collect();
            let (expected, c) = check(records, &specs, count_op, seed);
            capped += c;
            assert!(expected.iter().any(|c| c.slot == 0) && expected.iter().any(|c| c.slot == 1), "seed {seed}");
            assert!(expected.iter().any(|c| c.events.len() == 2), "seed {seed}: max_refs never bit");
        }
        assert!(capped > 0, "the length cap never split a session");
    }

    #[test]
    fn distinct_counts_match_from_scratch_on_1_2_and_4_workers() {
        let specs = Arc::new(vec![
            session(25, 50, vec![(Cmp::Gte, 3.0)], Aggregate::Sum, 3),
            session(30, 60, vec![(Cmp::Lt, 2.0)], Aggregate::Sum, 10),
        ]);
        let mut capped = 0;
        for seed in 10..14 {
            let (expected, c) = check(random(seed, 80, 400), &specs, distinct_op, seed);
            capped += c;
            assert!(expected.iter().any(|c| c.slot == 0) && expected.iter().any(|c| c.slot == 1), "seed {seed}");
        }
        assert!(capped > 0, "the length cap never split a session");
    }

    #[test]
    fn aggregates_match_from_scratch_on_1_2_and_4_workers() {
        let specs = Arc::new(vec![
            session(15, 40, vec![(Cmp::Gte, 8.0)], Aggregate::Sum, 3),
            session(15, 40, vec![(Cmp::Gt, 3.0)], Aggregate::Avg, 3),
            session(20, 50, vec![(Cmp::Gte, 3.0)], Aggregate::Percentile(50), 5),
            session(20, 50, vec![(Cmp::Gte, 7.0)], Aggregate::Percentile(90), 5),
        ]);
        let (mut capped, mut again) = (0, 0);
        for seed in 20..24 {
            let (expected, c) = check(random_numbers(seed, 120, 300, 4), &specs, number_op, seed);
            capped += c;
            // A sum or mean can leave its condition and come back within one session.
            again += expected.windows(2).filter(|w| (w[0].slot, &w[0].key, w[0].window_start) == (w[1].slot, &w[1].key, w[1].window_start)).count();
            for slot in 0..4 {
                assert!(expected.iter().any(|c| c.slot == slot), "seed {seed}, slot {slot}");
            }
        }
        assert!(capped > 0, "the length cap never split a session");
        assert!(again > 0, "no session fired twice");
    }

    fn rec(id: u128, t: Time) -> ((Key, Contribution), Time) {
        (((0, vec!["k".to_string()]), at(id, t)), t)
    }

    #[test]
    fn a_record_exactly_gap_later_stays_in_the_session() {
        let specs = Arc::new(vec![session(10, 1000, vec![(Cmp::Gte, 2.0)], Aggregate::Sum, 10)]);
        let c = run(1, vec![rec(1, 0), rec(2, 10)], specs.clone(), count_op);
        assert_eq!(c.iter().map(|c| (c.window_start, c.time, c.value.get())).collect::<Vec<_>>(), vec![(0, 10, 2.0)]);
        assert_eq!(c[0].events, vec![at(1, 0), at(2, 10)]);
        assert!(run(1, vec![rec(1, 0), rec(2, 11)], specs.clone(), count_op).is_empty(), "gap + 1 starts a new session");
        // Records at one millisecond join together.
        let c = run(1, vec![rec(1, 0), rec(2, 11), rec(3, 11)], specs, count_op);
        assert_eq!(c.iter().map(|c| (c.window_start, c.time)).collect::<Vec<_>>(), vec![(11, 11)]);
    }

    #[test]
    fn the_length_cap_splits_a_continuously_active_key() {
        // One event every 2 ms for 60 ms; sessions last at most 20 ms: [0, 20], [22, 42],
        // [44, 60], each firing at its third event.
        let specs = Arc::new(vec![session(5, 20, vec![(Cmp::Gte, 3.0)], Aggregate::Sum, 2)]);
        let records: Vec<_> = (0..=30).map(|i| rec(i, i as Time * 2)).collect();
        let c = run(2, shuffled(&records, 7), specs, count_op);
        assert_eq!(c.iter().map(|c| (c.window_start, c.time, c.value.get())).collect::<Vec<_>>(), vec![(0, 4, 3.0), (22, 26, 3.0), (44, 48, 3.0)]);
        assert_eq!(c[1].events, vec![at(11, 22), at(12, 24)], "oldest first, at most max_refs");
        assert_eq!(c[1].trigger_accepted_ns, 13);
    }

    #[test]
    fn distinct_values_per_session() {
        let specs = Arc::new(vec![session(10, 1000, vec![(Cmp::Gte, 2.0)], Aggregate::Sum, 10)]);
        let rec = |id: u128, t: Time, v: &str| (((0, vec!["k".to_string()]), (v.to_string(), at(id, t))), t);
        // x, x, y in one session; then x alone after a 92 ms pause, then x and z.
        let records = vec![rec(1, 0, "x"), rec(2, 5, "x"), rec(3, 8, "y"), rec(4, 100, "x"), rec(5, 104, "z")];
        let c = run(1, records, specs, distinct_op);
        assert_eq!(c.iter().map(|c| (c.window_start, c.time, c.value.get())).collect::<Vec<_>>(), vec![(0, 8, 2.0), (100, 104, 2.0)]);
        assert_eq!(c[0].events, vec![at(1, 0), at(2, 5), at(3, 8)]);
    }

    #[test]
    fn a_sum_that_leaves_its_condition_fires_again() {
        let specs = Arc::new(vec![session(10, 1000, vec![(Cmp::Gte, 10.0)], Aggregate::Sum, 10)]);
        let rec = |id: u128, t: Time, v: f64| (((0, vec!["k".to_string()]), (Number::new(v).unwrap(), at(id, t))), t);
        // 4 + 3 + 5 = 12 at 9; -5 takes it to 7 at 12; 6 takes it to 13 at 15.
        let records = vec![rec(1, 0, 4.0), rec(2, 5, 3.0), rec(3, 9, 5.0), rec(4, 12, -5.0), rec(5, 15, 6.0)];
        let c = run(2, records, specs, number_op);
        assert_eq!(c.iter().map(|c| (c.window_start, c.time, c.value.get())).collect::<Vec<_>>(), vec![(0, 9, 12.0), (0, 15, 13.0)]);
        assert_eq!((c[1].events.len(), c[1].trigger_accepted_ns), (5, 5));
    }

    #[test]
    fn ignores_retractions_unknown_slots_and_other_windows() {
        let specs = Arc::new(vec![session(10, 100, vec![(Cmp::Gte, 2.0)], Aggregate::Sum, 10), WindowSpec::at_least(100, 2, 10)]);
        let recv = timely::example(move |scope| {
            use differential_dataflow::input::Input;
            use timely::dataflow::operators::capture::Capture;
            let (mut input, events) = scope.new_collection();
            // Slot 0: one record netted away, one retraction alone: never two.
            input.update_at(rec(1, 0).0, 0, 1);
            input.update_at(rec(1, 0).0, 0, -1);
            input.update_at(rec(2, 3).0, 3, -1);
            input.update_at(rec(3, 5).0, 5, 1);
            // Slot 1 is sliding, slot 2 has no spec.
            for (slot, id) in [(1u32, 4u128), (1, 5), (2, 6), (2, 7)] {
                input.update_at(((slot, vec![]), at(id, 5)), 5, 1);
            }
            events.session_windows(&specs).capture()
        });
        use timely::dataflow::operators::capture::Extract;
        assert!(recv.extract().into_iter().all(|(_, v)| v.is_empty()));
    }

    /// Feeds `batches` one after another on one worker, each followed by advancing the
    /// input to its time and running until the output has caught up; returns the
    /// `(window_start, time)` of every crossing.
    fn live(specs: Specs, batches: Vec<(Records<Contribution>, Time)>) -> Vec<(Time, Time)> {
        use differential_dataflow::input::InputSession;
        use std::sync::Mutex;
        use timely::dataflow::operators::{Inspect, Probe};
        let fired = Arc::new(Mutex::new(Vec::new()));
        let fired2 = fired.clone();
        timely::execute_directly(move |worker| {
            let mut input = InputSession::new();
            let probe = worker.dataflow(|scope| {
                let fired = fired2.clone();
                let (probe, _) = input.to_collection(scope).session_windows(&specs).inspect(move |c| fired.lock().unwrap().push((c.window_start, c.time))).probe();
                probe
            });
            for (records, until) in batches {
                for (rec, t) in records {
                    input.update_at(rec, t, 1);
                }
                input.advance_to(until);
                input.flush();
                worker.step_while(|| probe.less_than(input.time()));
                // Open sessions hold no capability: the output keeps up with the input.
                assert!(!probe.less_than(&until), "until {until}");
            }
        });
        let out = fired.lock().unwrap().clone();
        out
    }

    #[test]
    fn fed_live_in_steps_matches_from_scratch() {
        // The same records fed in time order, the input advancing 1, 7 or 30 ms at a time,
        // so sessions close, expire and are replaced across and within steps.
        let specs = Arc::new(vec![session(15, 30, vec![(Cmp::Gte, 3.0)], Aggregate::Sum, 2), session(25, 60, vec![(Cmp::Lt, 2.0)], Aggregate::Sum, 2)]);
        for seed in 30..33 {
            let records: Records<Contribution> = random(seed, 80, 400).into_iter().map(|((k, (_, c)), t)| ((k, c), t)).collect();
            let mut expected: Vec<(Time, Time)> = oracle(&records, &specs).iter().map(|c| (c.window_start, c.time)).collect();
            expected.sort();
            for step in [1, 7, 30] {
                let batches = (0..=400 / step).map(|i| (records.iter().filter(|(_, t)| t / step == i).cloned().collect(), (i + 1) * step)).collect();
                let mut fired = live(specs.clone(), batches);
                fired.sort();
                assert_eq!(fired, expected, "seed {seed}, step {step}");
            }
        }
    }

    #[test]
    fn a_session_replaced_before_its_expiry_keeps_the_new_state() {
        // 0 alone, then 20 in the same step (the session at 0 closed at 5 and is replaced
        // before its expiry is processed); 22 and 24 must still join the session at 20.
        let specs = Arc::new(vec![session(5, 1000, vec![(Cmp::Gte, 3.0)], Aggregate::Sum, 10)]);
        let fired = live(specs, vec![(vec![rec(1, 0), rec(2, 20)], 21), (vec![rec(3, 22), rec(4, 24)], 30)]);
        assert_eq!(fired, vec![(20, 24)]);
    }

    #[test]
    fn fed_live_a_session_survives_exact_gaps_without_holding_the_frontier() {
        // One event every 5 ms, exactly the gap, fed a millisecond at a time: the session
        // must survive each 5 ms wait (expiry is not early) and fire at its tenth event.
        let specs = Arc::new(vec![session(5, 1000, vec![(Cmp::Gte, 10.0)], Aggregate::Sum, 1)]);
        let batches = (0..100u64).map(|t| (if t % 5 == 0 { vec![rec(u128::from(t), t)] } else { vec![] }, t + 1)).collect();
        assert_eq!(live(specs, batches), vec![(0, 45)]);
    }
}
