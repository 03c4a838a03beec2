//! The options every scenario shares; each scenario reads the ones it needs.

use clap::Parser;
use std::path::PathBuf;

/// Load tests for Rampart: one scenario per run; prints a summary and writes
/// `perf/results/<scenario>.json` and `.svg`.
#[derive(Clone, Debug, Parser)]
#[command(name = "rampart-perf")]
pub struct Args {
    /// Scenario: `engine` (shipped rules, demo traffic), `window` (1: windowed count, 100k
    /// keys), `rules` (2: 1,000 threshold rules), `sigma` (3: all SigmaHQ rules on Windows
    /// events), `http` (4: HTTP `_bulk` → rampart → files), `amqp` (5: AMQP → rampart →
    /// OpenSearch), `memory` (6: bytes per active window key; runs `rampart-perf-memory`),
    /// `summarize` (medians of several runs' JSON).
    #[arg(long, default_value = "engine")]
    pub scenario: String,
    /// Events to send (per run).
    #[arg(long)]
    pub events: Option<usize>,
    /// Open-loop target rate in events/s: send times are fixed in advance and latency is
    /// measured from them. Absent: flat out.
    #[arg(long)]
    pub rate: Option<f64>,
    /// First a flat-out run to find the maximum rate, then an open-loop run at half of it
    /// (the latency target's condition). In-engine scenarios only.
    #[arg(long)]
    pub half_max: bool,
    /// Dataflow workers.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Events per batch handed to the engine (in-engine; memory: default 10000), per `_bulk`
    /// request (http) or per AMQP message (amqp; 1 = one event per message, as MozDef
    /// publishes).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Open loop, in-process: the sender wakes at most once per this many µs and sends
    /// every event then due as one batch (up to `--batch`), sleeping in between; latency
    /// still counts from each event's own due time. 0: spin and send each event as it
    /// falls due (takes a whole core).
    #[arg(long, default_value_t = 100)]
    pub tick_us: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Distinct window keys (`window`: 100,000; `memory`: 1,000,000).
    #[arg(long)]
    pub keys: Option<usize>,
    /// Generated threshold rules (`rules`).
    #[arg(long, default_value_t = 1000)]
    pub rule_count: usize,
    /// Event time between generated events in flat-out runs, in microseconds (open-loop runs
    /// stamp events with their scheduled wall-clock time instead).
    #[arg(long)]
    pub step_us: Option<u64>,
    /// Allowed lateness in ms (engine watermark). Default: 60000 flat out, 0 open loop (an
    /// alert leaves when the watermark passes it, so lateness adds to alert latency) and 0
    /// for memory (every event counted into its window when the bytes are read).
    #[arg(long)]
    pub lateness_ms: Option<u64>,
    /// Rule files or directories (`engine`, `http`, `amqp`; default rules/library).
    #[arg(long)]
    pub rules: Vec<PathBuf>,
    /// The SigmaHQ corpus (`sigma`).
    #[arg(long, default_value = "../shared/corpora/sigma")]
    pub corpus: PathBuf,
    /// Placeholder values for SigmaHQ's `expand` rules (`sigma`).
    #[arg(long, default_value = "rules/tests/sigmahq-placeholders.yml")]
    pub placeholders: PathBuf,
    /// Share of SigmaHQ regression events among the Windows events (`sigma`), 0–1.
    #[arg(long, default_value_t = 0.05)]
    pub regression_share: f64,
    /// The `rampart` binary (`http`, `amqp`). Default: `$CARGO_TARGET_DIR/release/rampart`,
    /// else `target/release/rampart`.
    #[arg(long)]
    pub rampart: Option<PathBuf>,
    /// The rsigma binary. Default: `rsigma` on PATH (when found). `none` turns it off.
    #[arg(long)]
    pub rsigma: Option<String>,
    /// AMQP broker (`amqp`).
    #[arg(long, env = "RAMPART_TEST_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// OpenSearch / Elasticsearch (`amqp`).
    #[arg(long, env = "RAMPART_TEST_ES_URL", default_value = "http://127.0.0.1:9200")]
    pub es_url: String,
    /// HTTP requests in flight at most (`http`); a request whose send time comes while this
    /// many are out is sent as soon as one returns, and its latency still counts from its
    /// scheduled time.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// `summarize`: the directory of run results (`-- perf/results/runs`).
    #[arg(last = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the JSON result (the SVG goes beside it). Default
    /// `perf/results/<scenario>.json`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Args {
    /// The JSON result path.
    pub fn out_path(&self, default_name: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from(format!("perf/results/{default_name}.json")))
    }
}
