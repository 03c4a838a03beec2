//! Registration: the config file's `inputs:` and `outputs:` entries, one serde-tagged enum
//! each (`type: file | http | syslog | demo | amqp | cloudtrail | sqs`, `type: file | stdout | elasticsearch | amqp`), their validation, and the one
//! `match` that builds an output. Adding a connector is its file, one variant, one arm and
//! one example under `config/examples/`; serde names the valid types in its error.

use crate::amqp::{AmqpConfig, AmqpOutput, AmqpOutputConfig};
use crate::aws::cloudtrail::CloudTrailInputConfig;
use crate::aws::sqs::SqsConfig;
use crate::demo::DemoConfig;
use crate::elasticsearch::{ElasticsearchConfig, ElasticsearchOutput};
use crate::error::ConnectorError;
use crate::file::FileConfig;
use crate::http::HttpConfig;
use crate::ndjson::{FileOutput, FileOutputConfig};
use crate::sink::Sink;
use crate::stdout::{StdoutConfig, StdoutOutput};
use crate::syslog::SyslogConfig;
use rampart_core::Metrics;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One entry of `inputs:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputConfig {
    /// JSON events from a file or stdin, read once to the end.
    File(FileConfig),
    /// MozDef loginput and Elasticsearch bulk endpoints over HTTP, until shut down.
    Http(HttpConfig),
    /// Syslog (RFC 5424 / RFC 3164) over UDP and/or TCP, until shut down.
    Syslog(SyslogConfig),
    /// Generated traffic with planted attacks.
    Demo(DemoConfig),
    /// A RabbitMQ queue (MozDef's `eventtask` by default), with acknowledgements.
    Amqp(AmqpConfig),
    /// CloudTrail log files from a directory or an S3 bucket, polled (or read once).
    Cloudtrail(CloudTrailInputConfig),
    /// An SQS queue of S3/CloudTrail notifications and GuardDuty findings, deleted once stored.
    Sqs(SqsConfig),
}

impl InputConfig {
    /// The `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            InputConfig::File(_) => "file",
            InputConfig::Http(_) => "http",
            InputConfig::Syslog(_) => "syslog",
            InputConfig::Demo(_) => "demo",
            InputConfig::Amqp(_) => "amqp",
            InputConfig::Cloudtrail(_) => "cloudtrail",
            InputConfig::Sqs(_) => "sqs",
        }
    }

    /// Whether the input ends by itself (a file, a demo with a duration); a pipeline of
    /// only finite inputs stops when they are done.
    pub fn is_finite(&self) -> bool {
        match self {
            InputConfig::File(_) => true,
            InputConfig::Http(_) | InputConfig::Syslog(_) => false,
            InputConfig::Demo(d) => d.duration.is_some(),
            InputConfig::Amqp(_) | InputConfig::Sqs(_) => false,
            InputConfig::Cloudtrail(c) => c.once,
        }
    }

    /// A short name for logs and reports (`file:/var/log/x.json`, `http:127.0.0.1:8080`,
    /// `syslog:udp:127.0.0.1:5514,tcp:127.0.0.1:5514`).
    pub fn describe(&self) -> String {
        match self {
            InputConfig::File(f) => format!("file:{}", f.path),
            InputConfig::Http(h) => format!("http:{}", h.bind),
            InputConfig::Syslog(s) => format!("syslog:{}", s.listeners()),
            InputConfig::Demo(d) => format!("demo:seed={}", d.seed),
            InputConfig::Amqp(a) => a.describe(),
            InputConfig::Cloudtrail(c) => c.describe(),
            InputConfig::Sqs(c) => c.describe(),
        }
    }

    /// Every problem with this input's settings.
    pub fn validate(&self) -> Vec<String> {
        let problems = match self {
            InputConfig::File(c) => c.validate(),
            InputConfig::Http(c) => c.validate(),
            InputConfig::Syslog(c) => c.validate(),
            InputConfig::Demo(c) => c.validate(),
            InputConfig::Amqp(c) => c.validate(),
            InputConfig::Cloudtrail(c) => c.validate(),
            InputConfig::Sqs(c) => c.validate(),
        };
        problems.into_iter().map(|p| format!("{}: {p}", self.kind())).collect()
    }
}

/// One entry of `outputs:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputConfig {
    /// Daily NDJSON files.
    File(FileOutputConfig),
    /// NDJSON on standard output.
    Stdout(StdoutConfig),
    /// Elasticsearch / OpenSearch bulk indexing (boxed: its config is ten times the others').
    Elasticsearch(Box<ElasticsearchConfig>),
    /// Alerts (and optionally events) published to a RabbitMQ exchange, with confirms.
    Amqp(AmqpOutputConfig),
}

impl OutputConfig {
    /// The `type` name.
    pub fn kind(&self) -> &'static str {
        match self {
            OutputConfig::File(_) => "file",
            OutputConfig::Stdout(_) => "stdout",
            OutputConfig::Elasticsearch(_) => "elasticsearch",
            OutputConfig::Amqp(_) => "amqp",
        }
    }

    /// Whether this output takes events.
    pub fn wants_events(&self) -> bool {
        match self {
            OutputConfig::File(c) => c.events,
            OutputConfig::Stdout(c) => c.events,
            OutputConfig::Elasticsearch(c) => c.events,
            OutputConfig::Amqp(c) => c.events,
        }
    }

    /// Whether this output takes alerts.
    pub fn wants_alerts(&self) -> bool {
        match self {
            OutputConfig::File(c) => c.alerts,
            OutputConfig::Stdout(c) => c.alerts,
            OutputConfig::Elasticsearch(c) => c.alerts,
            OutputConfig::Amqp(c) => c.alerts,
        }
    }

    /// Every problem with this output's settings.
    pub fn validate(&self) -> Vec<String> {
        let problems = match self {
            OutputConfig::File(c) => c.validate(),
            OutputConfig::Stdout(c) => c.validate(),
            OutputConfig::Elasticsearch(c) => c.validate(),
            OutputConfig::Amqp(c) => c.validate(),
        };
        problems.into_iter().map(|p| format!("{}: {p}", self.kind())).collect()
    }

    /// Opens the output.
    pub fn build(&self, metrics: Arc<Metrics>) -> Result<Box<dyn Sink>, ConnectorError> {
        Ok(match self {
            OutputConfig::File(c) => Box::new(FileOutput::open(c.clone(), metrics)?),
            OutputConfig::Stdout(c) => Box::new(StdoutOutput::new(c.clone(), metrics)),
            OutputConfig::Elasticsearch(c) => Box::new(ElasticsearchOutput::new(c.as_ref().clone(), metrics)?),
            OutputConfig::Amqp(c) => Box::new(AmqpOutput::new(c.clone(), metrics)),
        })
    }
}

/// Serde glue for numbers and booleans: accepts the native JSON/YAML value or its text.
///
/// Needed because the `type`-tagged enums buffer their fields before deserializing them, and
/// a YAML reader that keeps spans hands every buffered scalar over as a string (`rate: 50`
/// arrives as `"50"`).
pub fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned + std::str::FromStr,
    T::Err: std::fmt::Display,
{
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s.trim().parse().map_err(|e| D::Error::custom(format!("`{s}`: {e}"))),
        other => serde_json::from_value(other).map_err(D::Error::custom),
    }
}

/// Serde glue: a [`std::time::Duration`] as human text (`30s`, `5m`, `1h 30m`).
pub mod human_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `5m`-style text.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&rampart_core::time::format_duration(*d))
    }

    /// Reads `5m`-style text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        rampart_core::time::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde glue: an optional human duration.
pub mod human_duration_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `5m`-style text, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::human_duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads `5m`-style text or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => rampart_core::time::parse_duration(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        inputs: Vec<InputConfig>,
        #[serde(default)]
        outputs: Vec<OutputConfig>,
    }

    fn parse(text: &str) -> Result<Doc, String> {
        marked_yaml::from_yaml::<Doc>(0, text).map_err(|e| e.to_string())
    }

    #[test]
    fn tagged_entries_with_defaults_and_human_durations() {
        let d = parse("inputs:\n  - type: demo\n    rate: 50\n    duration: 1m 30s\n  - type: http\n  - type: file\n    path: '-'\noutputs:\n  - type: stdout\n    events: true\n  - type: file\n").unwrap();
        assert_eq!(d.inputs[0], InputConfig::Demo(DemoConfig { rate: 50, duration: Some(Duration::from_secs(90)), ..Default::default() }));
        assert_eq!(d.inputs[1], InputConfig::Http(HttpConfig::default()));
        assert_eq!(d.inputs[2], InputConfig::File(FileConfig::new("-")));
        assert!(d.inputs[0].is_finite() && !d.inputs[1].is_finite() && d.inputs[2].is_finite());
        assert_eq!(d.outputs[0], OutputConfig::Stdout(StdoutConfig { events: true, ..Default::default() }));
        assert!(d.outputs[1].wants_events() && d.outputs[1].wants_alerts());
        // Native JSON numbers and booleans work as well as YAML's text.
        let j: InputConfig = serde_json::from_value(serde_json::json!({"type": "demo", "rate": 50, "duration": "90s"})).unwrap();
        assert_eq!(j, d.inputs[0]);
        let o: OutputConfig = serde_json::from_value(serde_json::json!({"type": "stdout", "events": true})).unwrap();
        assert_eq!(o, d.outputs[0]);
        let e = parse("inputs:\n  - type: demo\n    rate: lots\n").unwrap_err();
        assert!(e.contains("`lots`"), "{e}");
    }

    #[test]
    fn unknown_types_fields_and_bad_durations_are_errors() {
        let e = parse("inputs:\n  - type: kafka\n").unwrap_err();
        assert!(e.contains("kafka") && e.contains("file") && e.contains("http") && e.contains("demo"), "serde names the valid types: {e}");
        let e = parse("inputs:\n  - type: http\n    bnd: x\n").unwrap_err();
        assert!(e.contains("bnd"), "{e}");
        let e = parse("inputs:\n  - type: demo\n    attack_every: soon\n").unwrap_err();
        assert!(e.contains("invalid duration"), "{e}");
        assert!(parse("outputs:\n  - type: stdout\n    color: true\n").is_err());
    }

    #[test]
    fn validate_reports_every_problem_with_its_component() {
        let i = InputConfig::Http(HttpConfig { bind: "x".into(), max_body: 0, workers: 1, ..Default::default() });
        let p = i.validate();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().all(|m| m.starts_with("http: ")));
        let o = OutputConfig::Stdout(StdoutConfig { events: false, alerts: false, pretty: false });
        assert_eq!(o.validate(), ["stdout: events and alerts are both false: this output would write nothing"]);
    }

    #[test]
    fn every_example_config_parses_and_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples");
        let mut seen = Vec::new();
        for name in ["file", "http", "syslog", "demo", "file_output", "stdout", "elasticsearch", "amqp", "amqp_output", "cloudtrail", "sqs"] {
            let path = dir.join(format!("{name}.yml"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let d = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for i in &d.inputs {
                let problems: Vec<_> = i.validate().into_iter().filter(|p| !p.contains("does not exist")).collect();
                assert!(problems.is_empty(), "{name}: {problems:?}");
                seen.push(i.kind());
            }
            for o in &d.outputs {
                assert!(o.validate().is_empty(), "{name}: {:?}", o.validate());
                seen.push(o.kind());
            }
        }
        seen.sort();
        assert_eq!(seen, ["amqp", "amqp", "cloudtrail", "cloudtrail", "demo", "elasticsearch", "file", "file", "http", "sqs", "stdout", "syslog"]);
    }
}
