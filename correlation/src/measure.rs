//! What a window is measured by and when the measure fires: [`Number`] (a totally ordered
//! finite float), [`Aggregate`] (how numeric values fold into one) and [`Condition`] (the
//! threshold, any combination of `gt`/`gte`/`lt`/`lte`/`eq`/`neq`).
//!
//! These are plain data: the engine translates the rules' thresholds into them.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A finite number with a total order, so that it can key arrangements and sort.
///
/// Built only through [`Number::new`] (or `From<u64>`), which refuses NaN and infinities
/// and folds `-0.0` into `0.0`: equal numbers then have equal bits and hash alike.
#[derive(Copy, Clone, Default, Serialize, Deserialize)]
pub struct Number(f64);

impl Number {
    /// `None` for NaN and infinities.
    pub fn new(v: f64) -> Option<Number> {
        v.is_finite().then_some(Number(if v == 0.0 { 0.0 } else { v }))
    }

    /// Text as a number, after trimming (`" 42 "`, `"2.5"`, `"1e3"`); `None` for anything
    /// else, `"NaN"` and `"inf"` included.
    pub fn parse(text: &str) -> Option<Number> {
        text.trim().parse::<f64>().ok().and_then(Number::new)
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Number {
        Number(v as f64)
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Hash for Number {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Integers print without a fraction (`3`, not `3.0`); others in Rust's shortest form.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.fract() == 0.0 && self.0.abs() < 9.0e15 {
            write!(f, "{}", self.0 as i64)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

pub use rampart_core::Cmp;

/// A threshold: every comparison must hold (`gt: 100, lte: 200` is the range `(100, 200]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Condition(pub Vec<(Cmp, f64)>);

impl Condition {
    /// `value >= n`, the common case.
    pub fn at_least(n: u64) -> Condition {
        Condition(vec![(Cmp::Gte, n as f64)])
    }

    /// Whether a larger value meets the condition whenever a smaller one does (every
    /// comparison is `gt` or `gte`): then a window losing records can never make it met.
    pub fn rises_only(&self) -> bool {
        self.0.iter().all(|(op, _)| matches!(op, Cmp::Gt | Cmp::Gte))
    }

    /// Does `v` meet every comparison?
    pub fn is_met(&self, v: Number) -> bool {
        let v = v.get();
        self.0.iter().all(|&(op, n)| op.holds(v, n))
    }
}

/// How the numeric values in a window fold into the measure (for
/// [`crate::WindowedAggregate`]; the count operators ignore it).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    /// Sum.
    #[default]
    Sum,
    /// Arithmetic mean.
    Avg,
    /// The `p`-th percentile (0–100) by nearest rank: the smallest value with at least
    /// `p`% of the values at or below it (the minimum for `p = 0`). The median is `p = 50`.
    Percentile(u8),
}

impl Aggregate {
    /// Folds `values` (ascending, each with its multiplicity; none zero) into the measure.
    /// `None` when there are no values.
    pub fn fold(self, values: &[(Number, u64)]) -> Option<Number> {
        let n: u64 = values.iter().map(|(_, m)| m).sum();
        if n == 0 {
            return None;
        }
        let sum = || values.iter().map(|(v, m)| v.get() * *m as f64).sum::<f64>();
        match self {
            Aggregate::Sum => Number::new(sum()),
            Aggregate::Avg => Number::new(sum() / n as f64),
            Aggregate::Percentile(p) => {
                // Nearest rank: ceil(p/100 · n), at least 1. Integer arithmetic, so 50% of 4
                // is rank 2 exactly.
                let rank = (u64::from(p.min(100)) * n).div_ceil(100).max(1);
                let mut seen = 0;
                values.iter().find(|(_, m)| {
                    seen += m;
                    seen >= rank
                })
                .map(|(v, _)| *v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: f64) -> Number {
        Number::new(v).unwrap()
    }

    #[test]
    fn numbers_are_finite_and_parse_from_numeric_text_only() {
        assert_eq!(Number::new(2.5), Some(n(2.5)));
        assert_eq!(Number::new(f64::NAN), None);
        assert_eq!(Number::parse(" 42 "), Some(n(42.0)));
        assert_eq!(Number::parse("-1e3"), Some(n(-1000.0)));
        assert_eq!(Number::parse("abc"), None);
        assert_eq!(Number::parse("NaN"), None);
        assert_eq!(Number::parse("inf"), None);
        assert_eq!(Number::parse(""), None);
        assert_eq!(n(-0.0), n(0.0));
        assert_eq!(n(3.0).to_string(), "3");
        assert_eq!(n(2.5).to_string(), "2.5");
        assert!(n(-1.0) < n(0.5));
    }

    #[test]
    fn conditions_combine_comparisons() {
        let range = Condition(vec![(Cmp::Gt, 100.0), (Cmp::Lte, 200.0)]);
        assert!(!range.is_met(n(100.0)));
        assert!(range.is_met(n(100.5)));
        assert!(range.is_met(n(200.0)));
        assert!(!range.is_met(n(200.1)));
        let ne = Condition(vec![(Cmp::Neq, 3.0)]);
        assert!(ne.is_met(n(2.0)) && !ne.is_met(n(3.0)));
        assert!(Condition(vec![(Cmp::Eq, 3.0)]).is_met(n(3.0)));
        assert!(Condition(vec![(Cmp::Lt, 3.0)]).is_met(n(2.0)));
        assert!(!Condition(vec![(Cmp::Lt, 3.0)]).is_met(n(3.0)));
        assert!(Condition::at_least(3).is_met(n(3.0)));
    }

    #[test]
    fn aggregates_fold_multisets() {
        let vals = [(n(1.0), 1), (n(2.0), 2), (n(10.0), 1)];
        assert_eq!(Aggregate::Sum.fold(&vals), Some(n(15.0)));
        assert_eq!(Aggregate::Avg.fold(&vals), Some(n(3.75)));
        // 1, 2, 2, 10: the median by nearest rank is the 2nd value.
        assert_eq!(Aggregate::Percentile(50).fold(&vals), Some(n(2.0)));
        assert_eq!(Aggregate::Percentile(0).fold(&vals), Some(n(1.0)));
        assert_eq!(Aggregate::Percentile(76).fold(&vals), Some(n(10.0)));
        assert_eq!(Aggregate::Percentile(75).fold(&vals), Some(n(2.0)));
        assert_eq!(Aggregate::Percentile(100).fold(&vals), Some(n(10.0)));
        assert_eq!(Aggregate::Sum.fold(&[]), None);
    }
}
