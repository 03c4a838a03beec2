//! [`Cmp`]: one comparison of a threshold, shared by the rule language (`rules`, where it is
//! written `gt`/`gte`/`lt`/`lte`/`eq`/`neq`) and the correlation operators that test it.

use serde::{Deserialize, Serialize};

/// A comparison `value <op> bound`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cmp {
    /// `>` (`gt`)
    Gt,
    /// `>=` (`gte`)
    Gte,
    /// `<` (`lt`)
    Lt,
    /// `<=` (`lte`)
    Lte,
    /// `==` (`eq`)
    Eq,
    /// `!=` (`neq`)
    Neq,
}

impl Cmp {
    /// The comparison a rule writes as `key` (`gt`, `gte`, …), if it is one.
    pub fn from_key(key: &str) -> Option<Cmp> {
        Some(match key {
            "gt" => Cmp::Gt,
            "gte" => Cmp::Gte,
            "lt" => Cmp::Lt,
            "lte" => Cmp::Lte,
            "eq" => Cmp::Eq,
            "neq" => Cmp::Neq,
            _ => return None,
        })
    }

    /// Does `v <op> bound` hold?
    pub fn holds(self, v: f64, bound: f64) -> bool {
        match self {
            Cmp::Gt => v > bound,
            Cmp::Gte => v >= bound,
            Cmp::Lt => v < bound,
            Cmp::Lte => v <= bound,
            Cmp::Eq => v == bound,
            Cmp::Neq => v != bound,
        }
    }
}
