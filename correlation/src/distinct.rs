//! [`WindowedDistinctCount`]: distinct values per key in a sliding event-time window,
//! reported when the number crosses its slot's threshold.

use crate::window::{crossings, slide};
use crate::{Crossings, Number, Specs, Values};
use differential_dataflow::operators::{CountTotal, ThresholdTotal};

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
        let windowed = slide(self, specs);
        let counts = windowed
            .clone()
            .map(|(k, (v, _))| (k, v))
            .arrange_by_self_named(&format!("{name}: Arrange values"))
            .distinct_total()
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
