//! `rampart`: the command line. It parses arguments, loads and validates configuration and
//! rules, and wires connectors, actors and the engine together (see `docs/architecture.md`).
//!
//! Modules: [`config`] (the YAML service config), [`library`] (the embedded rule library),
//! [`ruletest`] (`rules test`), [`pipeline`] (run / replay / demo wiring), [`kibana`] (the
//! shipped Kibana saved objects and `kibana import`).

mod config;
mod kibana;
mod library;
mod pipeline;
mod ruletest;

use anyhow::{Context, Result};
use clap::{ArgAction, Args, Parser, Subcommand};
use rampart_rules::RuleSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc v2: less engine CPU than the system allocator on the perf scenarios that allocate
/// per event, the many small strings and maps of parsed events, and than mimalloc v3, whose
/// frees from another thread cost more (the engine frees events parsed elsewhere; see
/// `perf/RESULTS.md`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rampart: a streaming security event engine. Sigma rules, event-time correlation,
/// alerts in milliseconds.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None, after_help = "Start with `rampart demo`. Manual: docs/ in the repository.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: inputs → normalization → rules and correlation → outputs, until Ctrl-C.
    ///
    /// With no --config, runs the embedded default: HTTP input on 127.0.0.1:8080
    /// (POST /events, GET /metrics), the shipped rules, events and alerts as NDJSON files
    /// under ./data, alerts also on stdout.
    Run {
        /// Configuration file (YAML). See docs/configuration.md.
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
        /// Rule files or directories (overrides the config's `rules`).
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        #[command(flatten)]
        pipelines: PipelineArgs,
    },
    /// Replay events from a file (or stdin) through the rules in event time; print alerts as
    /// NDJSON on stdout and exit when the input ends and every window has closed.
    Replay {
        /// A rule file or directory (repeat for several); default: the shipped library.
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        #[command(flatten)]
        pipelines: PipelineArgs,
        #[command(flatten)]
        engine: EngineArgs,
        /// Also write the normalized events (and alerts) as daily NDJSON files here.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Run the plugin chain and lookups of this configuration file (its `plugins:` and
        /// `lookups:`; its inputs, outputs and rules are not used).
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
        /// NDJSON or concatenated JSON events, or a Windows `.evtx` file (by name or
        /// signature); `-` for stdin.
        #[arg(default_value = "-")]
        input: PathBuf,
    },
    /// Rule files: validate, test, explain.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Configuration files: validate.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Logsource pipelines: list the built-in ones, or print one.
    Pipelines {
        #[command(subcommand)]
        command: Option<PipelinesCommand>,
    },
    /// Run the engine on built-in realistic traffic with attacks in it (SSH brute force,
    /// password spraying, port scan, sudo abuse, web scanning, promiscuous mode) and print
    /// the alerts as they fire.
    Demo {
        /// Events per second.
        #[arg(long, default_value_t = 500)]
        rate: u64,
        /// Stop after this long (e.g. `90s`); default: until Ctrl-C.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Random seed for the traffic.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Dataflow worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Allowed lateness; the generator is in order, so the demo uses a short one.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        lateness: Duration,
        /// Also serve the HTTP input and /metrics on this address (e.g. 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
    },
    /// Kibana and OpenSearch Dashboards: import or export the shipped data views,
    /// visualizations and dashboard.
    Kibana {
        #[command(subcommand)]
        command: KibanaCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KibanaCommand {
    /// Import the saved objects (data views events-* and alerts-*, the alerts search, the
    /// visualizations, the "Rampart: overview" dashboard) through the saved objects import API;
    /// print the result of each object. Exits 1 if any object is not imported.
    Import {
        /// Kibana or OpenSearch Dashboards base URL, with its base path if it has one (e.g.
        /// http://localhost:5601).
        #[arg(long)]
        url: String,
        /// Kibana space id to import into; default: the default space.
        #[arg(long)]
        space: Option<String>,
        /// User for HTTP basic authentication.
        #[arg(long, env = "RAMPART_KIBANA_USER", hide_env_values = true)]
        user: Option<String>,
        /// Password for HTTP basic authentication (prefer the environment variable: arguments
        /// are visible to other users of the machine).
        #[arg(long, env = "RAMPART_KIBANA_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Replace existing objects with the same ids; with `false`, existing ones are
        /// reported as conflicts and left as they are.
        #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
        overwrite: bool,
    },
    /// Print the saved objects as NDJSON on stdout, for a manual upload (Stack Management →
    /// Saved Objects → Import).
    Export,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Parse and validate rule files; report every problem with file, line and column.
    Validate {
        /// Rule files or directories; default: the shipped library.
        paths: Vec<PathBuf>,
        #[command(flatten)]
        pipelines: PipelineArgs,
    },
    /// Run the `tests:` inside rule files through the engine.
    Test {
        /// Rule files or directories; default: the shipped library.
        paths: Vec<PathBuf>,
        #[command(flatten)]
        pipelines: PipelineArgs,
        /// Dataflow worker threads for each test.
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    /// Say why one event does or does not match a detection rule: each selection, each field
    /// condition with the value seen, then the condition. Exits 0 on a match, 1 otherwise.
    Explain {
        /// The rule: its id, name or title, among the loaded rules.
        rule: String,
        /// A file holding one JSON event, or `-` for stdin. The event is normalized as
        /// `replay` would normalize it.
        event: PathBuf,
        /// A rule file or directory (repeat for several); default: the shipped library.
        #[arg(long = "rules", value_name = "PATH")]
        rules: Vec<PathBuf>,
        #[command(flatten)]
        pipelines: PipelineArgs,
    },
}

#[derive(Debug, Subcommand)]
enum PipelinesCommand {
    /// List the built-in pipelines with a one-line description (the default).
    List,
    /// Print a built-in pipeline's YAML (or a pipeline file's transformations).
    Show {
        /// A built-in name or a pipeline file.
        name: String,
    },
}

/// `--pipeline`, shared by the commands that load rules.
#[derive(Debug, Args)]
struct PipelineArgs {
    /// Logsource pipeline: a built-in name (see `rampart pipelines`) or a pipeline YAML
    /// file; repeat for several (applied by priority, then in the order given).
    #[arg(long = "pipeline", value_name = "NAME|FILE")]
    pipeline: Vec<String>,
    /// YAML file of placeholder values for the `expand` modifier (`name: [values]`); repeat
    /// for several. A rule whose placeholder has no values is refused.
    #[arg(long = "placeholders", value_name = "FILE")]
    placeholders: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Parse and validate a configuration file (and the rules it names).
    Validate {
        /// The configuration file.
        file: PathBuf,
    },
}

/// Engine options shared by `run` and `replay`.
#[derive(Debug, Args)]
struct EngineArgs {
    /// Dataflow worker threads.
    #[arg(long)]
    workers: Option<usize>,
    /// Allowed lateness in event time (e.g. `30s`, `1m`); events older than the newest
    /// event minus this are counted as late and not correlated. Default 1m.
    #[arg(long, value_parser = parse_duration)]
    lateness: Option<Duration>,
    /// Directory where new_term and spike rules keep their state across restarts
    /// (`run` default: `state` under the data directory, see docs/configuration.md;
    /// `replay` keeps none unless given).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// If the saved correlation state cannot be used (corrupt, another version), set it
    /// aside and start empty instead of refusing to start.
    #[arg(long)]
    discard_invalid_state: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    rampart_core::time::parse_duration(s)
}

/// Exit codes: 0 success, 1 a failure at run time or failing rule tests, 2 invalid input
/// (rules, configuration, arguments).
const EXIT_INVALID: u8 = 2;

/// Invalid user input (rules, configuration): its text is printed as is and the exit code
/// is [`EXIT_INVALID`].
#[derive(Debug)]
struct InvalidInput(String);

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<InvalidInput>() {
            Some(InvalidInput(text)) => {
                eprint!("{text}");
                if !text.ends_with('\n') {
                    eprintln!();
                }
                ExitCode::from(EXIT_INVALID)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_target(false).try_init();
}

/// Loads rules from paths, or the embedded library when `paths` is empty, through the named
/// pipelines. Warnings go to stderr; errors (in rules or pipelines) come back as
/// [`InvalidInput`] holding the rendered diagnostics.
fn load_rules(paths: &[PathBuf], pipelines: &[String], placeholders: &[PathBuf], lookups: Option<&rampart_connectors::plugins::Lookups>) -> Result<Arc<RuleSet>> {
    let mut list = rampart_rules::Pipelines::resolve(pipelines).map_err(|d| InvalidInput(d.to_string()))?.list().to_vec();
    for f in placeholders {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|e| InvalidInput(format!("cannot read placeholders file {name}: {e}")))?;
        list.push(rampart_rules::Pipeline::placeholders(&name, &text).map_err(|d| InvalidInput(d.to_string()))?);
    }
    // Each lookup list's networks and each table's keys are `expand` values under its name
    // (as of now: rules compile once).
    if let Some(vars) = lookups.map(|l| l.placeholders()).filter(|v| !v.is_empty()) {
        let text = serde_json::to_string(&vars).context("lookup placeholders")?;
        list.push(rampart_rules::Pipeline::placeholders("<lookups>", &text).map_err(|d| InvalidInput(d.to_string()))?);
    }
    let pipelines = rampart_rules::Pipelines::new(list);
    let loaded = if paths.is_empty() {
        rampart_rules::load_sources_with(&library::sources(), &pipelines)
    } else {
        rampart_rules::load_paths_with(paths, &pipelines)
    };
    match loaded {
        Ok(set) => {
            for w in &set.warnings {
                eprintln!("{w}");
            }
            Ok(Arc::new(set))
        }
        Err(diags) => Err(InvalidInput(diags.to_string()).into()),
    }
}

/// Loads a configuration file; its problems are [`InvalidInput`].
fn load_config(path: &std::path::Path) -> Result<config::Config> {
    config::Config::load(path).map_err(|e| InvalidInput(format!("{e:#}")).into())
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Rules { command: RulesCommand::Validate { paths, pipelines } } => {
            let rules = load_rules(&paths, &pipelines.pipeline, &pipelines.placeholders, None)?;
            let correlations = rules.rules.iter().filter(|r| matches!(r.kind, rampart_rules::RuleKind::Correlation(_))).count();
            println!(
                "ok: {} rules ({} detections, {} correlations), {} warnings",
                rules.len(),
                rules.len() - correlations,
                correlations,
                rules.warnings.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { command: RulesCommand::Test { paths, pipelines, workers } } => {
            let rules = load_rules(&paths, &pipelines.pipeline, &pipelines.placeholders, None)?;
            let outcomes = ruletest::run_all(&rules, workers.max(1))?;
            let mut failed = 0;
            for o in &outcomes {
                if o.passed() {
                    println!("ok      {} — {} ({})", o.rule_title, o.test, o.location);
                } else {
                    failed += 1;
                    println!("FAILED  {} — {} ({})", o.rule_title, o.test, o.location);
                    for f in &o.failures {
                        println!("        {f}");
                    }
                }
            }
            // A sequence's inline steps are tested through the sequence.
            let untested: Vec<_> = rules.rules.iter().filter(|r| r.tests.is_empty() && r.part_of.is_none()).map(|r| r.title.as_str()).collect();
            println!("\n{} passed, {} failed", outcomes.len() - failed, failed);
            if !untested.is_empty() {
                println!("rules without tests: {}", untested.len());
            }
            Ok(if failed == 0 && !outcomes.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Rules { command: RulesCommand::Explain { rule, event, rules, pipelines } } => {
            let set = load_rules(&rules, &pipelines.pipeline, &pipelines.placeholders, None)?;
            let found = set
                .rules
                .iter()
                .find(|r| r.id == rule || r.name.as_deref() == Some(rule.as_str()) || r.title == rule)
                .or_else(|| set.rules.iter().find(|r| r.title.eq_ignore_ascii_case(&rule)))
                .ok_or_else(|| InvalidInput(format!("no loaded rule has the id, name or title `{rule}` ({} rules loaded; see --rules)", set.len())))?;
            let rampart_rules::RuleKind::Detection(det) = &found.kind else {
                return Err(InvalidInput(format!("`{rule}` is a correlation rule; explain one of the detection rules it counts")).into());
            };
            let text = if event.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).context("reading the event from stdin")?;
                t
            } else {
                std::fs::read_to_string(&event).map_err(|e| InvalidInput(format!("cannot read event file {}: {e}", event.display())))?
            };
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| InvalidInput(format!("{}: not one JSON event: {e}", event.display())))?;
            let normalizer = rampart_core::Normalizer::new(rampart_core::NormalizerConfig::default());
            let ev = normalizer
                .normalize(value, rampart_core::EventId::derive("explain", 0, text.as_bytes()))
                .map_err(|e| InvalidInput(format!("{}: {e}", event.display())))?;
            println!("rule {} — {} ({}:{})", found.id, found.title, found.loc.file, found.loc.line);
            let (matched, explanation) = det.explain(&ev.doc);
            print!("{explanation}");
            Ok(if matched { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Config { command: ConfigCommand::Validate { file } } => {
            let cfg = load_config(&file)?;
            let plugins = pipeline::Plugins::load(&cfg, &Arc::new(rampart_core::Metrics::new())).map_err(|e| InvalidInput(format!("{}: {e:#}", file.display())))?;
            load_rules(&cfg.rules, &cfg.pipelines, &cfg.placeholders, Some(&plugins.lookups))?;
            println!("ok: {} ({} inputs, {} outputs, {} plugins)", file.display(), cfg.inputs.len(), cfg.outputs.len(), plugins.chain.as_ref().map_or(0, |c| c.names().len()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config, engine, rules, pipelines } => {
            let mut cfg = match &config {
                Some(path) => load_config(path)?,
                None => config::Config::embedded_default(),
            };
            if !rules.is_empty() {
                cfg.rules = rules;
            }
            if !pipelines.pipeline.is_empty() {
                cfg.pipelines = pipelines.pipeline;
            }
            if !pipelines.placeholders.is_empty() {
                cfg.placeholders = pipelines.placeholders;
            }
            if let Some(w) = engine.workers {
                cfg.engine.workers = w;
            }
            if let Some(l) = engine.lateness {
                cfg.engine.lateness = l;
            }
            if let Some(d) = engine.state_dir {
                cfg.engine.keep_state = true;
                cfg.engine.state_dir = Some(d);
            }
            cfg.engine.discard_invalid_state |= engine.discard_invalid_state;
                        let metrics = Arc::new(rampart_core::Metrics::new());
            let plugins = pipeline::Plugins::load(&cfg, &metrics).map_err(|e| InvalidInput(format!("{e:#}")))?;
            let rules = load_rules(&cfg.rules, &cfg.pipelines, &cfg.placeholders, Some(&plugins.lookups))?;
            pipeline::run(cfg, rules, plugins, metrics).context("rampart run")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { rules, pipelines, engine, data_dir, config, input } => {
            let metrics = Arc::new(rampart_core::Metrics::new());
            let plugins = match &config {
                Some(path) => pipeline::Plugins::load(&load_config(path)?, &metrics).map_err(|e| InvalidInput(format!("{}: {e:#}", path.display())))?,
                None => pipeline::Plugins::none(),
            };
            let rules = load_rules(&rules, &pipelines.pipeline, &pipelines.placeholders, Some(&plugins.lookups))?;
            let opts = pipeline::ReplayOptions {
                workers: engine.workers.unwrap_or(1).max(1),
                lateness: engine.lateness.unwrap_or(Duration::from_secs(60)),
                state: engine.state_dir.map(|dir| rampart_engine::StateConfig { dir, interval: Duration::from_secs(300), discard_invalid: engine.discard_invalid_state }),
                data_dir,
                input,
            };
            let ok = pipeline::replay(opts, rules, plugins, metrics).context("rampart replay")?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Kibana { command: KibanaCommand::Export } => {
            print!("{}", kibana::SAVED_OBJECTS);
            Ok(ExitCode::SUCCESS)
        }
        Command::Kibana { command: KibanaCommand::Import { url, space, user, password, overwrite } } => {
            let credentials = match (user, password) {
                (Some(u), Some(p)) => Some((u, p)),
                (None, None) => None,
                (Some(_), None) => return Err(InvalidInput("--user needs --password (or RAMPART_KIBANA_PASSWORD)".into()).into()),
                (None, Some(_)) => return Err(InvalidInput("--password needs --user (or RAMPART_KIBANA_USER)".into()).into()),
            };
            kibana::import_url(&url, space.as_deref(), overwrite).map_err(InvalidInput)?;
            kibana::import(&kibana::ImportOptions { url, space, credentials, overwrite })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Pipelines { command } => {
            match command.unwrap_or(PipelinesCommand::List) {
                PipelinesCommand::List => {
                    for (name, _) in rampart_rules::pipeline::BUILTINS {
                        let p = rampart_rules::Pipeline::resolve(name).map_err(|d| InvalidInput(d.to_string()))?;
                        println!("{name:<14} {}", p.description);
                    }
                }
                PipelinesCommand::Show { name } => match rampart_rules::pipeline::BUILTINS.iter().find(|(n, _)| *n == name) {
                    Some((_, text)) => print!("{text}"),
                    None => {
                        let p = rampart_rules::Pipeline::resolve(&name).map_err(|d| InvalidInput(d.to_string()))?;
                        println!("{} (priority {}): {}", p.name, p.priority, p.description);
                        for t in p.summary() {
                            println!("  {t}");
                        }
                    }
                },
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { rate, duration, seed, workers, lateness, http } => {
            let rules = load_rules(&[], &[], &[], None)?;
            pipeline::demo(pipeline::DemoOptions { rate, duration, seed, workers: workers.max(1), lateness, http }, rules).context("rampart demo")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
