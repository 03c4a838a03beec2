//! [`WindowedCount`]: events per key in a sliding event-time window, reported when the
//! count crosses its slot's threshold.

use crate::window::{crossings, slide};
use crate::{Crossings, Events, Specs};
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
/// let specs = Arc::new(vec![WindowSpec { window_ms: 10, threshold: 2, max_refs: 10 }]);
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
/// assert_eq!((crossings[0].time, crossings[0].value), (10, 2));
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
        let counts = windowed.clone().map(|(k, _)| k).arrange_by_self_named(&format!("{name}: Arrange keys")).count_total();
        crossings(name, windowed, counts, specs)
    }
}
