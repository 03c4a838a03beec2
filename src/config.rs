//! The service configuration file (`rampart run --config FILE`): one YAML file that wires
//! rules, the engine, normalization, inputs and outputs.
//!
//! Values may use `${NAME}` or `${NAME:-default}` to read environment variables (for
//! secrets); an unset variable without a default is an error naming it and its line.
//! `$${` writes a literal `${`; whole-line comments are not interpolated.
//! Every section is optional; with no file at all [`Config::embedded_default`] applies:
//! HTTP input on 127.0.0.1:8080, the shipped rules, NDJSON files under `./data`, alerts on
//! stdout.

use anyhow::{anyhow, bail, Context, Result};
use rampart_connectors::plugins::{LookupsConfig, PluginEntry};
use rampart_connectors::{InputConfig, OutputConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Rule files or directories (searched recursively for `*.yml`/`*.yaml`). Empty or
    /// absent: the shipped library embedded in the binary.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// Logsource pipelines applied to the rules: built-in names (`rampart pipelines`) or
    /// pipeline YAML files, in priority order. Default: none (rules match fields as written).
    #[serde(default)]
    pub pipelines: Vec<String>,
    /// YAML files of placeholder values for the `expand` modifier (`name: [values]`).
    /// `--placeholders` replaces this list. Default: none (rules using `expand` are refused).
    #[serde(default)]
    pub placeholders: Vec<PathBuf>,
    /// Correlation engine settings.
    #[serde(default)]
    pub engine: EngineSection,
    /// Normalization settings.
    #[serde(default)]
    pub normalizer: NormalizerSection,
    /// Where events come from (`type: http | file | demo`). Default: HTTP on 127.0.0.1:8080.
    #[serde(default = "default_inputs")]
    pub inputs: Vec<InputConfig>,
    /// Where events and alerts go (`type: file | stdout`). Default: files under `./data`
    /// and alerts on stdout.
    #[serde(default = "default_outputs")]
    pub outputs: Vec<OutputConfig>,
    /// Lookup tables and CIDR lists (files reloaded when they change) for plugins, VRL
    /// scripts and rules (`expand` placeholders). Default: none. See docs/plugins.md.
    #[serde(default)]
    pub lookups: LookupsConfig,
    /// The plugin chain between normalization and the rules (`type: ipfixup | geoip |
    /// field_limit | drop | enrich | vrl`), each with `enabled`, `priority`, `terms`.
    /// Default: none. See docs/plugins.md.
    #[serde(default)]
    pub plugins: Vec<PluginEntry>,
}

/// `engine:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Dataflow worker threads. Default 1.
    #[serde(default = "one")]
    pub workers: usize,
    /// How late (in event time, behind the newest event) an event may arrive and still be
    /// correlated, e.g. `30s`, `1m`. Default `1m`.
    #[serde(default = "default_lateness", with = "humantime_serde_compat")]
    pub lateness: Duration,
    /// Most contributing events an alert references. Default 100.
    #[serde(default = "default_max_refs")]
    pub max_refs: usize,
    /// Advance the watermark with the wall clock (now − lateness) so that windows close in
    /// quiet periods. Default true; turn off when feeding old data into `run`.
    #[serde(default = "yes")]
    pub processing_time_watermark: bool,
    /// Save what `new_term` and `spike` rules have learnt, and restore it at start, so that
    /// a restart does not flood. Default true (only rule sets with such rules write a file).
    #[serde(default = "yes")]
    pub keep_state: bool,
    /// Directory of the correlation state file (`correlation-state.json`). Default: `state`
    /// under the first file output's `dir` (`./data/state` with the default outputs).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// How often the state is saved while running, e.g. `5m`; it is also saved at shutdown.
    /// Default `5m`.
    #[serde(default = "default_snapshot_interval", with = "humantime_serde_compat")]
    pub snapshot_interval: Duration,
    /// When the state file cannot be used (corrupt, another version), set it aside
    /// (renamed `*.invalid-<ms>`) and start empty instead of refusing to start. Default false.
    #[serde(default)]
    pub discard_invalid_state: bool,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            workers: 1,
            lateness: default_lateness(),
            max_refs: default_max_refs(),
            processing_time_watermark: true,
            keep_state: true,
            state_dir: None,
            snapshot_interval: default_snapshot_interval(),
            discard_invalid_state: false,
        }
    }
}

/// `normalizer:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizerSection {
    /// UTC offset for timestamps that carry no zone, e.g. `+02:00`. Default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// This node's name, written to each event's `mozdefhostname`. Default: the host name.
    #[serde(default)]
    pub node_name: Option<String>,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn default_lateness() -> Duration {
    Duration::from_secs(60)
}
fn default_snapshot_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_max_refs() -> usize {
    100
}
fn default_inputs() -> Vec<InputConfig> {
    vec![InputConfig::Http(Default::default())]
}
fn default_outputs() -> Vec<OutputConfig> {
    vec![OutputConfig::File(Default::default()), OutputConfig::Stdout(Default::default())]
}

/// Serde glue: durations as human text (`30s`, `1m`).
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        rampart_core::time::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

impl Config {
    /// The configuration used when `run` gets no `--config`.
    pub fn embedded_default() -> Config {
        Config {
            rules: Vec::new(),
            pipelines: Vec::new(),
            placeholders: Vec::new(),
            engine: EngineSection::default(),
            normalizer: NormalizerSection::default(),
            inputs: default_inputs(),
            outputs: default_outputs(),
            lookups: LookupsConfig::default(),
            plugins: Vec::new(),
        }
    }

    /// Reads, interpolates, parses and validates a configuration file. Every problem found
    /// by validation is reported together.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses configuration text (`name` is used in messages).
    pub fn parse(name: &str, text: &str) -> Result<Config> {
        let text = interpolate_env(name, text, |k| std::env::var(k).ok())?;
        let cfg: Config = marked_yaml::from_yaml(0, &text).map_err(|e| anyhow!("{name}: {}", describe_yaml_error(&e)))?;
        let problems = cfg.validate();
        if !problems.is_empty() {
            bail!("{name}: invalid configuration:\n  - {}", problems.join("\n  - "));
        }
        Ok(cfg)
    }

    /// Every problem in the configuration (empty when valid).
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.engine.workers == 0 || self.engine.workers > 256 {
            p.push(format!("engine.workers: must be between 1 and 256, got {}", self.engine.workers));
        }
        if self.engine.snapshot_interval.is_zero() {
            p.push("engine.snapshot_interval: must be longer than zero".to_string());
        }
        if self.engine.max_refs == 0 {
            p.push("engine.max_refs: must be at least 1".to_string());
        }
        if let Some(tz) = &self.normalizer.timezone {
            if parse_offset(tz).is_none() {
                p.push(format!("normalizer.timezone: `{tz}` is not a UTC offset like +02:00 or -05:30"));
            }
        }
        if self.inputs.is_empty() {
            p.push("inputs: at least one input is needed".to_string());
        }
        if self.outputs.is_empty() {
            p.push("outputs: at least one output is needed".to_string());
        }
        for (i, input) in self.inputs.iter().enumerate() {
            p.extend(input.validate().into_iter().map(|m| format!("inputs[{i}]: {m}")));
        }
        for (i, output) in self.outputs.iter().enumerate() {
            p.extend(output.validate().into_iter().map(|m| format!("outputs[{i}]: {m}")));
        }
        p.extend(self.lookups.validate().into_iter().map(|m| format!("lookups.{m}")));
        p.extend(rampart_connectors::plugins::registry::validate(&self.plugins));
        for r in &self.rules {
            if !r.exists() {
                p.push(format!("rules: {} does not exist", r.display()));
            }
        }
        for (i, f) in self.placeholders.iter().enumerate() {
            if !f.is_file() {
                p.push(format!("placeholders[{i}]: {} does not exist", f.display()));
            }
        }
        for (i, name) in self.pipelines.iter().enumerate() {
            let builtin = rampart_rules::pipeline::BUILTINS.iter().any(|(n, _)| n == name);
            if !builtin && !Path::new(name).is_file() {
                p.push(format!("pipelines[{i}]: `{name}` is neither a built-in pipeline (see `rampart pipelines`) nor a file"));
            }
        }
        p
    }

    /// Where correlation state lives (`None` with `keep_state: false`): `state_dir`, else
    /// `state` under the first file output's directory, else `./data/state`.
    pub fn state(&self) -> Option<rampart_engine::StateConfig> {
        if !self.engine.keep_state {
            return None;
        }
        let dir = self.engine.state_dir.clone().unwrap_or_else(|| {
            let data = self.outputs.iter().find_map(|o| match o {
                OutputConfig::File(f) => Some(f.dir.clone()),
                _ => None,
            });
            data.unwrap_or_else(|| PathBuf::from("./data")).join("state")
        });
        Some(rampart_engine::StateConfig { dir, interval: self.engine.snapshot_interval, discard_invalid: self.engine.discard_invalid_state })
    }

    /// The normalizer settings as core's type.
    pub fn normalizer_config(&self) -> rampart_core::NormalizerConfig {
        let mut n = rampart_core::NormalizerConfig::default();
        if let Some(off) = self.normalizer.timezone.as_deref().and_then(parse_offset) {
            n.naive_zone = rampart_core::time::NaiveZone(off);
        }
        n.node_name = self.normalizer.node_name.clone().unwrap_or_else(node_name);
        n
    }
}

/// This machine's host name, for `mozdefhostname`.
pub fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "rampart".to_string())
}

/// Parses `+HH:MM`, `-HH:MM`, `Z` or `UTC`.
pub fn parse_offset(s: &str) -> Option<chrono::FixedOffset> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return chrono::FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn describe_yaml_error(e: &marked_yaml::FromYamlError) -> String {
    match e {
        marked_yaml::FromYamlError::ParseYaml(p) => p.to_string(),
        marked_yaml::FromYamlError::FromNode(n) => {
            let at = n.start_mark().map(|m| format!("line {}, column {}: ", m.line(), m.column())).unwrap_or_default();
            let path = n.path().map(|p| format!(" (at `{p}`)")).unwrap_or_default();
            format!("{at}{}{path}", &**n)
        }
    }
}

/// Replaces `${NAME}` and `${NAME:-default}`; `$${` escapes a literal `${`.
pub fn interpolate_env(name: &str, text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        // Whole-line comments are left alone, so documentation may show the syntax.
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            if pos > 0 && rest.as_bytes()[pos - 1] == b'$' {
                out.push_str(&rest[..pos - 1]);
                out.push_str("${");
                rest = &rest[pos + 2..];
                continue;
            }
            out.push_str(&rest[..pos]);
            let Some(end) = rest[pos..].find('}') else {
                bail!("{name}:{}: unclosed `${{` in `{}`", lineno + 1, line.trim_end());
            };
            let inner = &rest[pos + 2..pos + end];
            let (var, default) = match inner.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (inner, None),
            };
            match (lookup(var), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => missing.push(format!("{name}:{}: environment variable `{var}` is not set (write `${{{var}:-default}}` to give a default)", lineno + 1)),
            }
            rest = &rest[pos + end + 1..];
        }
        out.push_str(rest);
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_interpolation_with_defaults_and_errors() {
        let look = |k: &str| (k == "PW").then(|| "s3cret".to_string());
        assert_eq!(interpolate_env("c", "a: ${PW}\nb: ${NOPE:-x}\nc: $${PW}\n", look).unwrap(), "a: s3cret\nb: x\nc: ${PW}\n");
        let err = interpolate_env("c.yml", "a: 1\nb: ${NOPE}\n", look).unwrap_err().to_string();
        assert!(err.contains("c.yml:2: environment variable `NOPE` is not set"), "{err}");
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+02:00").unwrap().local_minus_utc(), 7200);
        assert_eq!(parse_offset("-05:30").unwrap().local_minus_utc(), -19800);
        assert_eq!(parse_offset("UTC").unwrap().local_minus_utc(), 0);
        assert!(parse_offset("CET").is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_located() {
        let err = Config::parse("r.yml", "engine:\n  workerz: 2\n").unwrap_err().to_string();
        assert!(err.contains("r.yml") && err.contains("workerz"), "{err}");
        let err = Config::parse("r.yml", "engine:\n  workers: 0\n  lateness: soon\n").unwrap_err().to_string();
        assert!(err.contains("lateness") || err.contains("invalid duration"), "{err}");
        let err = Config::parse("r.yml", "engine:\n  workers: 0\nnormalizer:\n  timezone: CET\n").unwrap_err().to_string();
        assert!(err.contains("engine.workers") && err.contains("normalizer.timezone"), "all problems at once: {err}");
    }

    #[test]
    fn pipelines_key_names_builtins_or_files() {
        let cfg = Config::parse("p.yml", "pipelines: [windows-evtx, mozdef]\n").unwrap();
        assert_eq!(cfg.pipelines, vec!["windows-evtx", "mozdef"]);
        let err = Config::parse("p.yml", "pipelines: [windows-evtx, /nope/x.yml]\n").unwrap_err().to_string();
        assert!(err.contains("pipelines[1]") && err.contains("/nope/x.yml") && !err.contains("pipelines[0]"), "{err}");
    }

    #[test]
    fn shipped_configs_parse_and_validate() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("config/rampart.yml")];
        for e in std::fs::read_dir(root.join("config/examples")).unwrap() {
            files.push(e.unwrap().path());
        }
        assert!(files.len() >= 6);
        std::env::set_current_dir(root).unwrap();
        for f in files {
            let cfg = Config::load(&f).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
            assert!(cfg.validate().is_empty());
        }
    }

    #[test]
    fn defaults() {
        let c = Config::parse("r.yml", "{}\n").unwrap();
        assert_eq!(c.engine.workers, 1);
        assert_eq!(c.engine.lateness, Duration::from_secs(60));
        assert_eq!(c.inputs.len(), 1);
        assert_eq!(c.outputs.len(), 2);
        let state = c.state().unwrap();
        assert_eq!((state.dir, state.interval, state.discard_invalid), (PathBuf::from("./data/state"), Duration::from_secs(300), false));
    }

    #[test]
    fn state_dir_follows_the_file_output_unless_set() {
        let c = Config::parse("s.yml", "outputs:\n  - type: file\n    dir: /var/lib/rampart\n").unwrap();
        assert_eq!(c.state().unwrap().dir, PathBuf::from("/var/lib/rampart/state"));
        let c = Config::parse("s.yml", "engine:\n  state_dir: /srv/state\n  snapshot_interval: 30s\n  discard_invalid_state: true\n").unwrap();
        assert_eq!(c.state(), Some(rampart_engine::StateConfig { dir: PathBuf::from("/srv/state"), interval: Duration::from_secs(30), discard_invalid: true }));
        let c = Config::parse("s.yml", "outputs:\n  - type: stdout\n").unwrap();
        assert_eq!(c.state().unwrap().dir, PathBuf::from("./data/state"));
        assert!(Config::parse("s.yml", "engine:\n  keep_state: false\n").unwrap().state().is_none());
        let err = Config::parse("s.yml", "engine:\n  snapshot_interval: 0s\n").unwrap_err().to_string();
        assert!(err.contains("engine.snapshot_interval"), "{err}");
    }
}
