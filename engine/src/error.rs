//! [`EngineError`]: what can go wrong starting, feeding or stopping the engine.

use rampart_core::{Domain, Retry};

/// Engine failures. [`EngineError::domain`] and [`EngineError::retry`] tell a supervisor
/// what to do without reading the message.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration cannot work (for example zero workers).
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// A rule cannot be turned into a dataflow (the rule set passed validation, so this is
    /// a gap between the rules crate and the engine).
    #[error("rule `{rule}` cannot run: {reason}")]
    Rule {
        /// The rule's id.
        rule: String,
        /// Why.
        reason: String,
    },
    /// The engine is shut down (or shutting down): it takes no more events.
    #[error("the engine is shut down")]
    Closed,
    /// timely could not start its workers.
    #[error("cannot start dataflow workers: {0}")]
    Start(String),
    /// A worker panicked; its message is kept.
    #[error("dataflow worker failed: {0}")]
    Worker(String),
    /// The correlation state file cannot be read (corrupt, from an incompatible version) or
    /// written.
    #[error("correlation state file {file}: {reason}; {hint}")]
    State {
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
        /// What to do.
        hint: String,
    },
}

impl EngineError {
    /// Who has to act.
    pub fn domain(&self) -> Domain {
        match self {
            EngineError::Config(_) | EngineError::Rule { .. } | EngineError::State { .. } => Domain::User,
            EngineError::Closed | EngineError::Start(_) | EngineError::Worker(_) => Domain::Internal,
        }
    }

    /// Whether trying again can help.
    pub fn retry(&self) -> Retry {
        match self {
            EngineError::Start(_) => Retry::Later,
            _ => Retry::Never,
        }
    }
}
