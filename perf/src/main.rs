//! `rampart-perf`: runs one load-test scenario (see `perf/README.md`).

use clap::Parser;

/// The allocator `rampart` ships with, so that in-process figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = rampart_perf::cli::Args::parse();
    rampart_perf::scenarios::run(&args)
}
