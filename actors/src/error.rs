//! [`PipelineError`]: what stops a pipeline from starting or finishing cleanly. Failures of
//! single inputs and writes are not errors of the pipeline: they are listed in its report.

use rampart_connectors::ConnectorError;
use rampart_core::{Domain, Retry};
use rampart_engine::EngineError;
use thiserror::Error;

/// A pipeline failure.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// An output could not be opened (`outputs[index]`).
    #[error("outputs[{index}] ({kind}): {source}")]
    Output {
        /// Position in `outputs:`.
        index: usize,
        /// The output's type.
        kind: &'static str,
        /// Why.
        #[source]
        source: ConnectorError,
    },
    /// The engine failed while shutting down (a worker panicked).
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The pipeline was given nothing to read or nowhere to write.
    #[error("pipeline: {0}")]
    Spec(String),
    /// A task of the pipeline itself died (a bug).
    #[error("pipeline task failed: {0}")]
    Internal(String),
}

impl PipelineError {
    /// Who has to act.
    pub fn domain(&self) -> Domain {
        match self {
            PipelineError::Output { source, .. } => source.domain(),
            PipelineError::Engine(e) => e.domain(),
            PipelineError::Spec(_) => Domain::User,
            PipelineError::Internal(_) => Domain::Internal,
        }
    }

    /// Whether running again can help.
    pub fn retry(&self) -> Retry {
        match self {
            PipelineError::Output { source, .. } => source.retry(),
            PipelineError::Engine(_) | PipelineError::Spec(_) | PipelineError::Internal(_) => Retry::Never,
        }
    }
}
