//! `rampart-connectors`: how events get into Rampart and how events and alerts get out, as
//! plain async (and, for local files, plain blocking) code. Nothing here knows about the
//! engine or actors: sources push `Vec<Event>` batches into a bounded channel and sinks take
//! slices of events and alerts; `rampart-actors` does the wiring.
//!
//! - [`registry`]: the `inputs:` / `outputs:` config enums ([`InputConfig`], [`OutputConfig`]),
//!   their validation, and the one `match` that builds a sink.
//! - [`source`]: what every source gets ([`SourceContext`]: channel, metrics, normalizer,
//!   [`Shutdown`]) and the batch size.
//! - [`file`]: NDJSON / concatenated / pretty-printed JSON from a file or stdin.
//! - [`http`]: MozDef loginput's endpoints (`/events`, `/nxlog`, `/cef`, `/custom/<app>`),
//!   Elasticsearch's `_bulk` and the startup calls shippers make, `GET /metrics`, `GET /health`
//!   (actix-web), answering each request once its events are stored.
//! - [`syslog`]: RFC 5424 / RFC 3164 syslog over UDP and TCP (octet-counted or newline
//!   framing).
//! - [`demo`]: realistic background traffic with planted attacks, live or offline.
//! - [`amqp`]: RabbitMQ: the queue input (MozDef's `eventtask`, acked after the outputs
//!   store each message, dead-lettered when they never can) and the alerts output
//!   (publisher confirms).
//! - [`aws`]: CloudTrail log files from a directory or S3, and SQS notifications (S3 and
//!   CloudTrail file notifications, GuardDuty findings), through the AWS SDK.
//! - [`plugins`]: the plugin chain that shapes events between normalization and correlation.
//! - [`ndjson`]: daily NDJSON files for events and alerts.
//! - [`stdout`]: NDJSON on standard output.
//! - [`elasticsearch`]: bulk indexing into Elasticsearch / OpenSearch with per-item acks.
//! - [`sink`]: the [`Sink`] trait the outputs implement.
//! - [`secret`]: [`Secret`] config values and URL credential redaction.
//! - [`events`]: telemetry structs whose `emit` logs and counts together.
//! - [`error`]: [`ConnectorError`], with the domain and retry hint supervisors act on.
//!
//! The shared JSON record scanner (`json`) is private: both `file` and `http` read records
//! with it, so an HTTP body and a file report the same positions and messages.

pub mod amqp;
pub mod aws;
pub mod demo;
pub mod elasticsearch;
pub mod error;
pub mod events;
pub mod file;
pub mod http;
mod json;
pub mod ndjson;
pub mod plugins;
pub mod registry;
pub mod secret;
pub mod sink;
pub mod source;
pub mod stdout;
pub mod syslog;

pub use error::ConnectorError;
pub use registry::{InputConfig, OutputConfig};
pub use secret::{redact_url, Secret};
pub use sink::{EventBatch, Sink, SinkFuture};
pub use source::{shutdown_pair, Shutdown, ShutdownTrigger, SourceContext};
