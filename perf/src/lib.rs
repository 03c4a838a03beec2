//! `rampart-perf`: Rampart's load tests. Each scenario is one reproducible command (see
//! `perf/README.md`); each run prints a short summary and writes a JSON result and an SVG
//! plot beside it (`perf/results/<scenario>.json` and `.svg`).
//!
//! Modules:
//! - [`cli`]: the options every scenario shares.
//! - [`gen`]: the load generators (MozDef-style security traffic with planted attacks,
//!   100k-key sshd failures, Windows process creation and SigmaHQ's regression events),
//!   generated rule sets, and the flattening rsigma needs.
//! - [`pace`]: the open-loop schedule: send times fixed in advance, independent of responses,
//!   so coordinated omission cannot hide latency (latency is measured from the *scheduled*
//!   send time).
//! - [`measure`]: CPU time (process, thread, child process, engine worker threads) and memory
//!   (VmHWM, VmRSS).
//! - [`hist`]: latency histograms (hdrhistogram) and throughput-over-time sampling.
//! - [`report`]: the summary line, the JSON result and the SVG plot.
//! - [`inproc`]: the in-process engine runner shared by the in-engine scenarios.
//! - [`spawn`]: running the real `rampart` binary with a generated config.
//! - [`rsigma`]: running rsigma side by side on the same input.
//! - [`scenarios`]: one module per scenario.

pub mod cli;
pub mod gen;
pub mod hist;
pub mod inproc;
pub mod measure;
pub mod pace;
pub mod report;
pub mod rsigma;
pub mod scenarios;
pub mod spawn;
