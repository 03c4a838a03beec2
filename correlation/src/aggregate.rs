//! [`WindowedAggregate`]: the sum, mean or a percentile of numeric values per key in a
//! sliding event-time window, reported when it crosses into its slot's condition.

use crate::window::{crossings, slide};
use crate::{Crossings, Number, Numbers, Specs};

/// Folds keyed `(number, contribution)` records over each slot's sliding window with the
/// slot's [`crate::Aggregate`] and reports crossings.
///
/// Window and crossing semantics are those of [`crate::WindowedCount`]: the measure of a
/// key at `t` folds the values of the records in `[t - w, t]` (repeated values count as
/// often as they occur); a key with no records has no measure and never fires. A crossing
/// carries the measure and every contribution in the window.
///
/// One `reduce` serves every slot: the slot's aggregate is looked up per key, so a sum, a
/// mean and a median share the same operators.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Aggregate, Condition, Contribution, Number, WindowSpec, WindowedAggregate};
///
/// // Fires when a host sends more than 1000 bytes within 60 ms.
/// let condition = Condition(vec![(rampart_correlation::Cmp::Gt, 1000.0)]);
/// let specs = Arc::new(vec![WindowSpec { window: rampart_correlation::Window::Sliding, window_ms: 60, condition, aggregate: Aggregate::Sum, max_refs: 10 }]);
/// let recv = timely::example(move |scope| {
///     let (mut input, values) = scope.new_collection();
///     for (id, t, bytes) in [(1u128, 0u64, 600.0), (2, 50, 300.0), (3, 60, 200.0)] {
///         let c = Contribution { time: t, id, accepted_ns: 0 };
///         input.update_at(((0u32, vec!["db1".to_string()]), (Number::new(bytes).unwrap(), c)), t, 1);
///     }
///     values.windowed_aggregate(&specs).capture()
/// });
/// let crossings: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(crossings.len(), 1);
/// assert_eq!((crossings[0].time, crossings[0].value.get()), (60, 1100.0));
/// ```
pub trait WindowedAggregate<'scope> {
    /// Aggregates and reports crossings (operators named `WindowedAggregate`).
    fn windowed_aggregate(self, specs: &Specs) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.windowed_aggregate_core("WindowedAggregate", specs)
    }

    /// As [`WindowedAggregate::windowed_aggregate`], with operators named after `name`.
    fn windowed_aggregate_core(self, name: &str, specs: &Specs) -> Crossings<'scope>;
}

impl<'scope> WindowedAggregate<'scope> for Numbers<'scope> {
    fn windowed_aggregate_core(self, name: &str, specs: &Specs) -> Crossings<'scope> {
        let windowed = slide(self, specs);
        let s = specs.clone();
        let measure = windowed.clone().map(|(k, (v, _))| (k, v)).reduce_named(&format!("{name}: Fold"), move |key, input, output| {
            // Values arrive in ascending order with their multiplicities, which is what
            // the percentile needs.
            let values: Vec<(Number, u64)> = input.iter().filter(|(_, r)| *r > 0).map(|(v, r)| (**v, r.unsigned_abs() as u64)).collect();
            if let Some(m) = s.get(key.0 as usize).and_then(|spec| spec.aggregate.fold(&values)) {
                output.push((m, 1isize));
            }
        });
        crossings(name, windowed, measure, specs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{at, oracle, random_numbers, run, shuffled};
    use crate::{Aggregate, Cmp, Condition, Crossing, Time, WindowSpec};
    use std::sync::Arc;

    fn op<'s>(c: Numbers<'s>, s: &Specs) -> Crossings<'s> {
        c.windowed_aggregate(s)
    }

    /// One slot per aggregate, with rising, falling and ranged conditions.
    fn specs() -> Specs {
        let spec = |window_ms, aggregate, condition: Vec<(Cmp, f64)>| WindowSpec { window: crate::Window::Sliding, window_ms, condition: Condition(condition), aggregate, max_refs: 3 };
        Arc::new(vec![
            spec(10, Aggregate::Sum, vec![(Cmp::Gte, 12.0)]),
            spec(25, Aggregate::Avg, vec![(Cmp::Lt, 3.0)]),
            spec(15, Aggregate::Percentile(50), vec![(Cmp::Gt, 2.0), (Cmp::Lte, 5.0)]),
            spec(20, Aggregate::Percentile(90), vec![(Cmp::Eq, 7.0)]),
            spec(12, Aggregate::Sum, vec![(Cmp::Neq, 0.0), (Cmp::Lte, 6.0)]),
        ])
    }

    #[test]
    fn matches_from_scratch_recomputation() {
        for seed in 0..10 {
            let records = random_numbers(seed, 120, 150, 5);
            let expected = oracle(&records, &specs());
            for slot in 0..5 {
                assert!(expected.iter().any(|c| c.slot == slot), "seed {seed}: slot {slot} never fires");
            }
            assert_eq!(run(1, records, specs(), op), expected, "seed {seed}");
        }
    }

    #[test]
    fn same_result_on_1_2_and_4_workers_and_in_any_order() {
        for seed in 30..33 {
            let records = random_numbers(seed, 120, 150, 5);
            let expected = oracle(&records, &specs());
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), specs(), op), expected, "seed {seed}, {workers} workers");
            }
        }
    }

    fn one_key(values: &[(Time, f64)], window_ms: u64, aggregate: Aggregate, condition: Vec<(Cmp, f64)>) -> Vec<Crossing> {
        let specs = Arc::new(vec![WindowSpec { window: crate::Window::Sliding, window_ms, condition: Condition(condition), aggregate, max_refs: 10 }]);
        let records = values.iter().enumerate().map(|(i, (t, v))| (((0, vec!["k".to_string()]), (Number::new(*v).unwrap(), at(i as u128, *t))), *t)).collect();
        run(1, records, specs, op)
    }

    #[test]
    fn falling_conditions_fire_on_retraction_at_the_window_edge() {
        // avg < 5 over 10 ms: 8 at 0 and 4 at 5 average 6; at 11 the 8 leaves (it is in
        // windows ending up to 10 inclusive) and the average drops to 4.
        let c = one_key(&[(0, 8.0), (5, 4.0)], 10, Aggregate::Avg, vec![(Cmp::Lt, 5.0)]);
        assert_eq!(c.iter().map(|c| (c.time, c.value.get())).collect::<Vec<_>>(), vec![(11, 4.0)]);
        assert_eq!(c[0].events, vec![at(1, 5)], "the window at 11 holds only the 4");
        assert_eq!(c[0].window_start, 1);
        // When the last value leaves, the window is empty: no measure, no alert.
        let c = one_key(&[(0, 8.0)], 10, Aggregate::Avg, vec![(Cmp::Lt, 5.0)]);
        assert!(c.is_empty(), "{c:?}");
        // A first value already under the bound fires at once.
        let c = one_key(&[(3, 1.0)], 10, Aggregate::Sum, vec![(Cmp::Lt, 5.0)]);
        assert_eq!(c.iter().map(|c| c.time).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn rising_sum_fires_once_per_crossing() {
        let c = one_key(&[(0, 5.0), (4, 5.0), (8, 5.0), (9, 5.0)], 10, Aggregate::Sum, vec![(Cmp::Gte, 10.0)]);
        assert_eq!(c.iter().map(|c| (c.time, c.value.get())).collect::<Vec<_>>(), vec![(4, 10.0)]);
        // Negative and fractional values fold like any other.
        let c = one_key(&[(0, 2.5), (1, -1.0), (2, 0.25)], 10, Aggregate::Sum, vec![(Cmp::Eq, 1.75)]);
        assert_eq!(c.iter().map(|c| c.time).collect::<Vec<_>>(), vec![2]);
    }
}
