//! `rampart-actors`: runs a pipeline (inputs → engine → outputs) as actix actors with
//! bounded hand-offs and an ordered shutdown.
//!
//! - [`pipeline`]: [`PipelineSpec`], [`run_pipeline`] (start everything, wait for the
//!   inputs to end or the shutdown signal, then stop in order) and [`PipelineReport`];
//!   [`PipelineEngine`] is what the pipeline needs from an engine (implemented for
//!   [`rampart_engine::Engine`]).
//! - [`input`]: one actor per input: runs the connector, restarts a failed server with
//!   backoff, forwards each batch to the engine and to every event output, awaiting both.
//! - [`output`]: one actor per output on its own arbiter thread, with a bounded mailbox.
//! - [`alerts`]: the alert pump: engine alerts → every alert output.
//! - [`error`]: the [`PipelineError`] type.
//!
//! Every hop is bounded and awaited (`send().await`, never `do_send`), so a slow output
//! slows the inputs instead of growing a queue: source channel (a few batches) → engine
//! channel / output mailbox (a few batches each).

pub mod alerts;
pub mod error;
pub mod input;
pub mod output;
pub mod pipeline;

pub use error::PipelineError;
pub use input::InputReport;
pub use pipeline::{run_pipeline, run_with_sinks, EngineFeed, PipelineEngine, PipelineReport, PipelineSpec};
