//! `rampart-perf`: runs one load-test scenario (see `perf/README.md`).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = rampart_perf::cli::Args::parse();
    rampart_perf::scenarios::run(&args)
}
