//! `rampart-perf-memory`: scenario 6 (bytes of engine memory per active window key), in a
//! binary of its own because it installs a counting global allocator that the other
//! scenarios should not pay for.

use clap::Parser;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn held() -> i64 {
    let s = GLOBAL.stats();
    // Reallocations are already in both counters (growth in one, shrinkage in the other).
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn main() -> anyhow::Result<()> {
    let mut args = rampart_perf::cli::Args::parse();
    args.scenario = "memory".into();
    rampart_perf::scenarios::memory::run(&args, &held)
}
