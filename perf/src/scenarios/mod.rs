//! One module per scenario; [`run`] dispatches on `--scenario`.

pub mod amqp;
pub mod engine;
pub mod http;
pub mod memory;
pub mod rules;
pub mod sigma;
pub mod summarize;
pub mod window;

use crate::cli::Args;
use anyhow::{bail, Result};

/// Every scenario name, in the order after the original `engine`.
pub const NAMES: &[&str] = &["engine", "window", "rules", "sigma", "http", "amqp", "memory", "summarize"];

/// Runs the scenario `args` names.
pub fn run(args: &Args) -> Result<()> {
    match args.scenario.as_str() {
        "engine" => engine::run(args),
        "window" | "1" => window::run(args),
        "rules" | "2" => rules::run(args),
        "sigma" | "3" => sigma::run(args),
        "http" | "4" => http::run(args),
        "amqp" | "5" => amqp::run(args),
        "memory" | "6" => memory::exec(args),
        "summarize" => summarize::run(args),
        other => bail!("unknown scenario `{other}` (known: {})", NAMES.join(", ")),
    }
}
