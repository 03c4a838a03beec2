//! The error vocabulary that supervisors act on: where a failure comes from and whether
//! retrying can help. Decisions are made on these fields, never on message strings.

use serde::Serialize;

/// Who has to act on an error.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// The user's input (a rule, a config, an event) is wrong; they must change it.
    User,
    /// Something outside Rampart (a broker, a store, the network) failed.
    External,
    /// A bug or an invariant broken inside Rampart.
    Internal,
}

/// Whether doing the same thing again can succeed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Retry {
    /// Retrying later (with backoff) may succeed.
    Later,
    /// Retrying cannot help.
    Never,
}
