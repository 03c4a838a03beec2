//! Wiring for `run`, `replay` and `demo`: each builds a [`PipelineSpec`] (inputs, outputs,
//! normalizer, watermark policy), starts the engine, and runs the actix pipeline until the
//! inputs end or Ctrl-C; then it prints the counters and latency summary on stderr.

use crate::config::Config;
use anyhow::{Context, Result};
use rampart_actors::{run_pipeline, PipelineReport, PipelineSpec};
use rampart_connectors::demo::DemoConfig;
use rampart_connectors::file::FileConfig;
use rampart_connectors::http::HttpConfig;
use rampart_connectors::plugins::lookup::Watcher;
use rampart_connectors::plugins::{build_chain, Chain, Lookups, PluginContext};
use rampart_connectors::ndjson::FileOutputConfig;
use rampart_connectors::stdout::StdoutConfig;
use rampart_connectors::{InputConfig, OutputConfig};
use rampart_core::{Metrics, NormalizerConfig};
use rampart_engine::EngineConfig;
use rampart_rules::RuleSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `rampart replay` options.
#[derive(Debug)]
pub struct ReplayOptions {
    pub workers: usize,
    pub lateness: Duration,
    /// Where new_term and spike state is kept, if anywhere.
    pub state: Option<rampart_engine::StateConfig>,
    pub data_dir: Option<PathBuf>,
    pub input: PathBuf,
}

/// A config's plugin chain and lookups, ready to run. While it lives, a thread reloads the
/// lookup files when they change.
#[derive(Debug)]
pub struct Plugins {
    /// The chain; `None` when no plugin is enabled.
    pub chain: Option<Arc<Chain>>,
    /// The lookup tables and lists (also the rules' `expand` placeholders).
    pub lookups: Arc<Lookups>,
    _watcher: Watcher,
}

impl Plugins {
    /// No plugins, no lookups.
    pub fn none() -> Plugins {
        let lookups = Arc::new(Lookups::default());
        let watcher = lookups.watch(Duration::from_secs(3600));
        Plugins { chain: None, lookups, _watcher: watcher }
    }

    /// Loads the config's lookups and builds its chain (a VRL script compiles here; its
    /// errors name file, line and column). Errors are the user's to fix.
    pub fn load(cfg: &Config, metrics: &Arc<Metrics>) -> Result<Plugins> {
        let lookups = Arc::new(Lookups::load(&cfg.lookups, Some(metrics.clone()))?);
        let chain = build_chain(&cfg.plugins, &PluginContext { lookups: lookups.clone(), metrics: metrics.clone() })?;
        let watcher = lookups.watch(cfg.lookups.reload_every);
        Ok(Plugins { chain: (!chain.is_empty()).then(|| Arc::new(chain)), lookups, _watcher: watcher })
    }
}

/// `rampart demo` options.
#[derive(Debug)]
pub struct DemoOptions {
    pub rate: u64,
    pub duration: Option<Duration>,
    pub seed: u64,
    pub workers: usize,
    pub lateness: Duration,
    pub http: Option<String>,
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what systemd and `kill` send), so both shut
/// down in order and flush open windows.
async fn ctrl_c() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let int = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler: run until the inputs end.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = term => {}
        _ = int => {}
    }
    eprintln!("rampart: stopping, shutting down in order (flushing open windows)");
}

fn execute(spec: PipelineSpec, rules: Arc<RuleSet>, engine_cfg: EngineConfig, metrics: Arc<Metrics>) -> Result<PipelineReport> {
    if let Some(chain) = &spec.plugins {
        eprintln!("rampart: plugins {}", chain.names().join(", "));
    }
    let engine = rampart_engine::start(rules, engine_cfg, metrics.clone()).context("starting the engine")?;
    let system = actix::System::new();
    let report = system.block_on(run_pipeline(spec, engine, metrics.clone(), ctrl_c())).context("pipeline")?;
    for e in report.input_errors() {
        eprintln!("input error: {e}");
    }
    for e in &report.output_errors {
        eprintln!("output error: {e}");
    }
    eprintln!(
        "rampart: {} events accepted, {} invalid, {} late (beyond the allowed lateness: stored, not correlated), {} alerts, {} suppressed",
        report.accepted, report.invalid, report.late, report.alerts, report.suppressed
    );
    eprint!("{}", metrics.summary());
    Ok(report)
}

/// Normalizer settings for `replay` and `demo`, which take no config file: the defaults.
fn normalizer() -> NormalizerConfig {
    Config::embedded_default().normalizer_config()
}

/// Fails fast, before anything starts, when a server input's address cannot be bound (in
/// use, not local): the supervisor would otherwise keep retrying a misconfiguration.
fn check_binds(inputs: &[InputConfig]) -> Result<()> {
    for i in inputs {
        match i {
            InputConfig::Http(h) => {
                std::net::TcpListener::bind(&h.bind).with_context(|| format!("HTTP input cannot listen on {} (is another process using it? set `bind:` in the config)", h.bind))?;
            }
            InputConfig::Syslog(s) => {
                if let Some(a) = &s.udp {
                    std::net::UdpSocket::bind(a).with_context(|| format!("syslog input cannot listen on udp:{a} (is another process using it? set `udp:` in the config)"))?;
                }
                if let Some(a) = &s.tcp {
                    std::net::TcpListener::bind(a).with_context(|| format!("syslog input cannot listen on tcp:{a} (is another process using it? set `tcp:` in the config)"))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `rampart run`.
pub fn run(cfg: Config, rules: Arc<RuleSet>, plugins: Plugins, metrics: Arc<Metrics>) -> Result<()> {
    check_binds(&cfg.inputs)?;
    let state = cfg.state();
    let engine_cfg = EngineConfig { workers: cfg.engine.workers, lateness: cfg.engine.lateness, max_refs: cfg.engine.max_refs, state: state.clone(), ..EngineConfig::default() };
    let spec = PipelineSpec {
        inputs: cfg.inputs.clone(),
        outputs: cfg.outputs.clone(),
        normalizer: cfg.normalizer_config(),
        processing_time_watermark: cfg.engine.processing_time_watermark.then_some(cfg.engine.lateness),
        plugins: plugins.chain.clone(),
    };
    for i in &spec.inputs {
        eprintln!("rampart: input {}", i.describe());
    }
    eprintln!("rampart: {} rules loaded, lateness {}", rules.len(), rampart_core::time::format_duration(cfg.engine.lateness));
    if let Some(s) = &state {
        eprintln!("rampart: correlation state (new_term, spike) kept in {}", s.dir.display());
    }
    execute(spec, rules, engine_cfg, metrics)?;
    drop(plugins);
    Ok(())
}

/// `rampart replay`: returns false when the input could not be read at all. `plugins` come
/// from `--config` (its `plugins:` and `lookups:`), or are none.
pub fn replay(opts: ReplayOptions, rules: Arc<RuleSet>, plugins: Plugins, metrics: Arc<Metrics>) -> Result<bool> {
    let mut outputs = vec![OutputConfig::Stdout(StdoutConfig { events: false, alerts: true, pretty: false })];
    if let Some(dir) = opts.data_dir {
        outputs.push(OutputConfig::File(FileOutputConfig { dir, ..FileOutputConfig::default() }));
    }
    let spec = PipelineSpec {
        inputs: vec![InputConfig::File(FileConfig::new(opts.input.to_string_lossy().into_owned()))],
        outputs,
        normalizer: normalizer(),
        processing_time_watermark: None,
        plugins: plugins.chain.clone(),
    };
    let engine_cfg = EngineConfig { workers: opts.workers, lateness: opts.lateness, state: opts.state, ..EngineConfig::default() };
    let report = execute(spec, rules, engine_cfg, metrics)?;
    drop(plugins);
    Ok(report.accepted > 0 || report.invalid > 0 || report.input_errors().next().is_none())
}

/// `rampart demo`.
pub fn demo(opts: DemoOptions, rules: Arc<RuleSet>) -> Result<()> {
    let mut inputs = vec![InputConfig::Demo(DemoConfig {
        rate: u32::try_from(opts.rate).unwrap_or(u32::MAX),
        seed: opts.seed,
        duration: opts.duration,
        ..DemoConfig::default()
    })];
    if let Some(bind) = opts.http {
        inputs.push(InputConfig::Http(HttpConfig { bind, ..HttpConfig::default() }));
    }
    check_binds(&inputs)?;
    let spec = PipelineSpec {
        inputs,
        outputs: vec![OutputConfig::Stdout(StdoutConfig { events: false, alerts: true, pretty: false })],
        normalizer: normalizer(),
        processing_time_watermark: Some(opts.lateness),
        plugins: None,
    };
    eprintln!(
        "rampart demo: {} events/s of generated traffic with attacks planted every 20s; {} rules; alerts print below as their windows close (lateness {}). Ctrl-C to stop.",
        opts.rate,
        rules.len(),
        rampart_core::time::format_duration(opts.lateness)
    );
    let engine_cfg = EngineConfig { workers: opts.workers, lateness: opts.lateness, ..EngineConfig::default() };
    execute(spec, rules, engine_cfg, Arc::new(Metrics::new()))?;
    Ok(())
}
