//! [`WindowedCount`]: events per key in a sliding event-time window, reported when the
//! count crosses its slot's threshold.

use crate::window::{crossings, slide};
use crate::{Crossings, Events, Number, Specs};
use differential_dataflow::operators::CountTotal;

/// Counts keyed contributions over each slot's sliding window and reports crossings.
///
/// A contribution at `t` counts for every window end in `[t, t + w]` (inclusive bounds).
/// When a key's count goes from below the slot's threshold to at or above it at `t`, one
/// [`crate::Crossing`] is emitted at time `t`, carrying the count and the contributions in
/// `[t - w, t]`. The count must fall below the threshold again before the key can fire
/// again. State for a key is gone once its window empties.
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
        let windowed = slide(self, specs);
        let counts = windowed
            .clone()
            .map(|(k, _)| k)
            .arrange_by_self_named(&format!("{name}: Arrange keys"))
            .count_total()
            .map(|(k, c)| (k, Number::from(c.unsigned_abs() as u64)));
        crossings(name, windowed, counts, specs)
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
mod state {
    use super::*;
    use crate::testkit::at;
    use crate::WindowSpec;
    use differential_dataflow::input::InputSession;
    use differential_dataflow::logging::{DifferentialEvent, DifferentialEventBuilder};
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::Probe;

    /// Feeds one event per ms for `n` ms over 7 keys, then idles as long again; returns the
    /// updates every arrangement holds at the end and at its peak (from differential's
    /// batch/merge/drop events).
    fn held_updates(n: u64) -> (i64, i64) {
        let live = Arc::new(Mutex::new((0i64, 0i64)));
        let live2 = live.clone();
        timely::execute_directly(move |worker| {
            worker.log_register().unwrap().insert::<DifferentialEventBuilder, _>("differential/arrange", move |_, data| {
                let Some(data) = data else { return };
                let (held, peak) = &mut *live2.lock().unwrap();
                for (_, event) in data.iter() {
                    match event {
                        DifferentialEvent::Batch(e) => *held += e.length as i64,
                        DifferentialEvent::Merge(e) => {
                            if let Some(done) = e.complete {
                                *held += done as i64 - e.length1 as i64 - e.length2 as i64;
                            }
                        }
                        DifferentialEvent::Drop(e) => *held -= e.length as i64,
                        _ => {}
                    }
                    *peak = (*peak).max(*held);
                }
            });
            let specs = Arc::new(vec![WindowSpec::at_least(10, 3, 5)]);
            let mut input = InputSession::new();
            let probe = worker.dataflow(|scope| {
                let (probe, _) = input.to_collection(scope).windowed_count(&specs).probe();
                probe
            });
            for round in 0..2 * n {
                if round < n {
                    input.insert(((0, vec![format!("k{}", round % 7)]), at(round as u128, round)));
                }
                input.advance_to(round + 1);
                input.flush();
                worker.step_while(|| probe.less_than(input.time()));
            }
        });
        let r = *live.lock().unwrap();
        r
    }

    #[test]
    fn state_follows_the_window_not_the_history() {
        let (held_small, peak_small) = held_updates(500);
        let (held_large, peak_large) = held_updates(5_000);
        assert!(peak_small > 20, "the windows never held much ({peak_small})");
        // Ten times the history, about the same state: compaction follows the frontier.
        assert!(peak_large <= 2 * peak_small, "peak grew with history: {peak_small} -> {peak_large}");
        // What lingers after the windows close is a few not-yet-merged batches, not history.
        assert!(held_large <= peak_small && held_large <= held_small + 10, "held {held_small} -> {held_large}");
    }
}
