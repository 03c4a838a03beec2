//! The `type: cloudtrail` input: CloudTrail log files (`.json.gz` with `Records`, as
//! CloudTrail delivers them) from a local directory, read recursively, or from an S3 bucket
//! and prefix (`ListObjectsV2` and `GetObject`, any S3-compatible server through
//! `aws.endpoint`). Digest files and hidden files are skipped.
//!
//! It polls every `poll_interval` (or reads once and stops with `once: true`), oldest key
//! first, and remembers which files it has read: a file is done when every output has
//! stored all of its events (the events share one [`AckToken`]). Done files are appended to
//! `state_file`, one key per line, so a restart does not read them again (a done file that
//! later disappears from the listing, expired or deleted, is dropped from the state, which
//! so stays the size of what is there); without a state
//! file, a restart reads everything again, which stores nothing twice (ids come from each
//! record's `eventID`). A file whose events an output failed to store is read again at the
//! next poll. A file that is not CloudTrail (not gzip or JSON, no `Records`) is reported once
//! and skipped until its size changes (a file still being written is read again when it
//! grows). Delivery: at least once per file.

use super::{cloudtrail_events, is_log_file, sdk_error, AwsConfig};
use crate::error::ConnectorError;
use crate::events::RecordInvalid;
use crate::source::{SourceContext, MAX_BATCH};
use rampart_core::{AckStatus, AckToken, Retry};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// `type: cloudtrail` input.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudTrailInputConfig {
    /// A local directory to read, with its subdirectories. Set this or `bucket`.
    #[serde(default)]
    pub dir: Option<String>,
    /// An S3 bucket to read. Set this or `dir`.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Only keys under this prefix (`AWSLogs/111122223333/CloudTrail/`). Default: the whole
    /// bucket or directory.
    #[serde(default)]
    pub prefix: String,
    /// How to reach S3 (region, endpoint, credentials, path-style). Not used with `dir`.
    #[serde(default)]
    pub aws: AwsConfig,
    /// A file remembering which log files are done, one key per line. Default: none (kept in
    /// memory; a restart reads everything again without storing anything twice).
    #[serde(default)]
    pub state_file: Option<String>,
    /// How often to look for new files. Default `1m`.
    #[serde(default = "default_poll", with = "crate::registry::human_duration")]
    pub poll_interval: Duration,
    /// Read what is there, wait until it is stored, and stop. Default false (keep polling).
    #[serde(default, deserialize_with = "crate::registry::lenient")]
    pub once: bool,
    /// Largest log file, in bytes once decompressed. Default 256 MiB (CloudTrail's files are a
    /// few MiB). A larger one is reported and skipped.
    #[serde(default = "default_max_file", deserialize_with = "crate::registry::lenient")]
    pub max_file_bytes: usize,
}

fn default_poll() -> Duration {
    Duration::from_secs(60)
}

fn default_max_file() -> usize {
    256 << 20
}

impl CloudTrailInputConfig {
    /// A config reading `dir` with the defaults.
    pub fn dir(dir: impl Into<String>) -> CloudTrailInputConfig {
        CloudTrailInputConfig {
            dir: Some(dir.into()),
            bucket: None,
            prefix: String::new(),
            aws: AwsConfig::default(),
            state_file: None,
            poll_interval: default_poll(),
            once: false,
            max_file_bytes: default_max_file(),
        }
    }

    /// `cloudtrail:s3://bucket/prefix` or `cloudtrail:/dir`.
    pub fn describe(&self) -> String {
        match (&self.dir, &self.bucket) {
            (Some(d), _) => format!("cloudtrail:{d}"),
            (None, Some(b)) => format!("cloudtrail:s3://{b}/{}", self.prefix),
            (None, None) => "cloudtrail:?".to_string(),
        }
    }

    /// Every problem with these settings.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match (&self.dir, &self.bucket) {
            (Some(_), Some(_)) => problems.push("set `dir` or `bucket`, not both".to_string()),
            (None, None) => problems.push("set `dir` (a local directory) or `bucket` (an S3 bucket) to read".to_string()),
            (Some(d), None) if !Path::new(d).is_dir() => problems.push(format!("dir `{d}` does not exist or is not a directory")),
            (None, Some(b)) if b.is_empty() || b.contains('/') => problems.push(format!("bucket `{b}` is not a bucket name (put the path in `prefix`)")),
            _ => {}
        }
        if self.bucket.is_some() {
            problems.extend(self.aws.validate());
        }
        if self.poll_interval.is_zero() {
            problems.push("poll_interval is 0: give a duration such as 1m".to_string());
        }
        if self.max_file_bytes == 0 {
            problems.push("max_file_bytes is 0".to_string());
        }
        problems
    }
}

/// What a run did, for the input's report.
#[derive(Debug, Default)]
pub struct CloudTrailStats {
    /// Files whose events every output stored.
    pub files_done: u64,
    /// Events handed to the pipeline.
    pub events: u64,
    /// Files that were not CloudTrail log files.
    pub invalid: u64,
    /// The first problems, for the report.
    pub errors: Vec<String>,
}

const MAX_LISTED: usize = 20;

/// Where files come from.
enum Store {
    Dir(PathBuf),
    S3 { client: aws_sdk_s3::Client, bucket: String, peer: String },
}

/// One file found by a listing.
struct Found {
    key: String,
    size: u64,
}

impl Store {
    /// Every log file under the prefix, oldest key first (CloudTrail's keys sort by time
    /// within a region).
    async fn list(&self, prefix: &str) -> Result<Vec<Found>, ConnectorError> {
        let mut found = match self {
            Store::Dir(root) => {
                let (root, prefix) = (root.clone(), prefix.to_string());
                let walked = tokio::task::spawn_blocking(move || walk(&root, &prefix)).await;
                walked.map_err(|e| ConnectorError::Read { component: "cloudtrail", path: e.to_string(), source: std::io::Error::other("directory walk stopped") })??
            }
            Store::S3 { client, bucket, peer } => {
                let mut out = Vec::new();
                let mut pages = client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| sdk_error("cloudtrail", peer, &format!("cannot list s3://{bucket}/{prefix}"), &e))?;
                    for o in page.contents() {
                        if let Some(key) = o.key().filter(|k| is_log_file(k)) {
                            out.push(Found { key: key.to_string(), size: o.size().unwrap_or(0).max(0) as u64 });
                        }
                    }
                }
                out
            }
        };
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn read(&self, key: &str) -> Result<Vec<u8>, ConnectorError> {
        match self {
            Store::Dir(root) => {
                let path = root.join(key);
                tokio::fs::read(&path).await.map_err(|source| ConnectorError::Read { component: "cloudtrail", path: path.display().to_string(), source })
            }
            Store::S3 { client, bucket, peer } => {
                let what = format!("cannot get s3://{bucket}/{key}");
                let out = client.get_object().bucket(bucket).key(key).send().await.map_err(|e| sdk_error("cloudtrail", peer, &what, &e))?;
                let body = out.body.collect().await.map_err(|e| ConnectorError::Peer {
                    component: "cloudtrail",
                    peer: peer.clone(),
                    message: format!("{what}: the download broke off: {e}"),
                    domain: rampart_core::Domain::External,
                    retry: Retry::Later,
                })?;
                Ok(body.into_bytes().to_vec())
            }
        }
    }

    fn origin(&self, key: &str) -> String {
        match self {
            Store::Dir(root) => root.join(key).display().to_string(),
            Store::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
        }
    }
}

/// Log files under `root` whose path relative to it starts with `prefix`.
fn walk(root: &Path, prefix: &str) -> Result<Vec<Found>, ConnectorError> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| ConnectorError::Read { component: "cloudtrail", path: dir.display().to_string(), source })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(path);
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let key = rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
            if key.starts_with(prefix) && is_log_file(&key) {
                out.push(Found { key, size: meta.len() });
            }
        }
    }
    Ok(out)
}

/// The keys already done, and the file that keeps them.
struct State {
    done: HashSet<String>,
    file: Option<PathBuf>,
}

impl State {
    fn load(path: Option<&str>) -> Result<State, ConnectorError> {
        let Some(p) = path else { return Ok(State { done: HashSet::new(), file: None }) };
        let file = PathBuf::from(p);
        let done = match std::fs::read_to_string(&file) {
            Ok(text) => text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
            Err(source) => return Err(ConnectorError::Open { component: "cloudtrail", path: p.to_string(), source }),
        };
        Ok(State { done, file: Some(file) })
    }

    fn mark(&mut self, key: String) -> Result<(), ConnectorError> {
        if let Some(path) = &self.file {
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                writeln!(f, "{key}")?;
                f.sync_data()
            };
            write().map_err(|source| ConnectorError::Write { component: "cloudtrail", path: path.display().to_string(), source })?;
        }
        self.done.insert(key);
        Ok(())
    }

    /// Forgets the done keys that a complete listing no longer has (a lifecycle rule or a
    /// person deleted the file: it cannot be read again), and rewrites the state file without
    /// them, so the state holds what is still there instead of every file ever read. The
    /// rewrite goes to a temporary file renamed over the old one: a crash leaves either.
    fn forget_missing(&mut self, listed: &HashSet<String>) -> Result<usize, ConnectorError> {
        let before = self.done.len();
        self.done.retain(|k| listed.contains(k));
        let gone = before - self.done.len();
        if let (Some(path), true) = (&self.file, gone > 0) {
            let mut keys: Vec<&String> = self.done.iter().collect();
            keys.sort_unstable();
            let tmp = path.with_extension("rewrite");
            let write = || -> std::io::Result<()> {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
                for k in &keys {
                    writeln!(f, "{k}")?;
                }
                f.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_data()?;
                std::fs::rename(&tmp, path)
            };
            write().map_err(|source| ConnectorError::Write { component: "cloudtrail", path: path.display().to_string(), source })?;
        }
        Ok(gone)
    }
}

/// Runs the input until shutdown (or, with `once`, until every file is stored). Errors that
/// a retry may fix (the network, S3 throttling) are logged and retried at the next poll;
/// `Err` is for what needs the user (bad credentials, a missing bucket, an unwritable state
/// file).
pub async fn run(cfg: &CloudTrailInputConfig, mut ctx: SourceContext) -> Result<CloudTrailStats, ConnectorError> {
    let name = cfg.describe();
    let store = match (&cfg.dir, &cfg.bucket) {
        (Some(d), _) => Store::Dir(PathBuf::from(d)),
        (None, Some(b)) => {
            let sdk = cfg.aws.sdk_config().await;
            Store::S3 { client: cfg.aws.s3(&sdk), bucket: b.clone(), peer: cfg.aws.peer() }
        }
        (None, None) => return Err(ConnectorError::Open { component: "cloudtrail", path: name, source: std::io::Error::other("set `dir` or `bucket`") }),
    };
    let mut state = State::load(cfg.state_file.as_deref())?;
    let mut stats = CloudTrailStats::default();
    let (tx, mut settled) = mpsc::unbounded_channel::<(String, AckStatus, Option<String>)>();
    let mut in_flight: HashSet<String> = HashSet::new();
    // Files that were not CloudTrail, by size: read again only when the size changes.
    let mut bad: HashMap<String, u64> = HashMap::new();
    let mut shutdown = ctx.shutdown.clone();
    let mut failures = 0u32;
    loop {
        while let Ok((key, status, reason)) = settled.try_recv() {
            settle(&mut state, &mut in_flight, &mut stats, &name, key, status, reason)?;
        }
        match cfg_pass(cfg, &store, &mut ctx, &mut state, &mut in_flight, &mut bad, &mut stats, &name, &tx).await {
            Ok(true) => failures = 0,
            Ok(false) => return Ok(stats),
            Err(e) if e.retry() == Retry::Never => return Err(e),
            Err(e) => {
                failures += 1;
                tracing::warn!(input = %name, "{e}; trying again in {}", rampart_core::time::format_duration(cfg.poll_interval));
                if stats.errors.len() < MAX_LISTED {
                    stats.errors.push(e.to_string());
                }
                if cfg.once && failures >= 3 {
                    return Err(e);
                }
            }
        }
        if cfg.once && failures == 0 {
            // Wait until every file read is stored, then stop.
            while !in_flight.is_empty() {
                tokio::select! {
                    s = settled.recv() => match s {
                        Some((key, status, reason)) => settle(&mut state, &mut in_flight, &mut stats, &name, key, status, reason)?,
                        None => break,
                    },
                    _ = shutdown.wait() => return Ok(stats),
                }
            }
            return Ok(stats);
        }
        let sleep = tokio::time::sleep(cfg.poll_interval);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                s = settled.recv() => if let Some((key, status, reason)) = s {
                    settle(&mut state, &mut in_flight, &mut stats, &name, key, status, reason)?;
                },
                _ = shutdown.wait() => return Ok(stats),
            }
        }
    }
}

/// Records how a file's events fared.
fn settle(state: &mut State, in_flight: &mut HashSet<String>, stats: &mut CloudTrailStats, name: &str, key: String, status: AckStatus, reason: Option<String>) -> Result<(), ConnectorError> {
    in_flight.remove(&key);
    match status {
        AckStatus::Delivered => {
            stats.files_done += 1;
            state.mark(key)
        }
        AckStatus::Errored => {
            tracing::warn!(input = name, "{key}: an output could not store its events ({}); reading it again at the next poll", reason.unwrap_or_default());
            Ok(())
        }
        AckStatus::Rejected => {
            // An output can never store them: reading again cannot help.
            let message = format!("{name}: {key}: an output refused its events: {}", reason.unwrap_or_default());
            tracing::warn!(input = name, "{message}");
            if stats.errors.len() < MAX_LISTED {
                stats.errors.push(message);
            }
            state.mark(key)
        }
    }
}

/// One listing: reads every new file and hands its events over. `Ok(false)` when the
/// pipeline closed.
#[allow(clippy::too_many_arguments)]
async fn cfg_pass(
    cfg: &CloudTrailInputConfig,
    store: &Store,
    ctx: &mut SourceContext,
    state: &mut State,
    in_flight: &mut HashSet<String>,
    bad: &mut HashMap<String, u64>,
    stats: &mut CloudTrailStats,
    name: &str,
    tx: &mpsc::UnboundedSender<(String, AckStatus, Option<String>)>,
) -> Result<bool, ConnectorError> {
    let listing = store.list(&cfg.prefix).await?;
    let listed: HashSet<String> = listing.iter().map(|f| f.key.clone()).collect();
    let gone = state.forget_missing(&listed)?;
    if gone > 0 {
        tracing::info!(input = name, "forgot {gone} done files that are no longer there");
    }
    bad.retain(|k, _| listed.contains(k));
    for found in listing {
        if ctx.shutdown.is_triggered() {
            return Ok(false);
        }
        if state.done.contains(&found.key) || in_flight.contains(&found.key) || bad.get(&found.key) == Some(&found.size) {
            continue;
        }
        let bytes = store.read(&found.key).await?;
        let origin = store.origin(&found.key);
        let events = match cloudtrail_events(&bytes, &origin, cfg.max_file_bytes, &ctx.normalizer) {
            Ok(events) => events,
            Err(reason) => {
                stats.invalid += 1;
                let message = format!("{origin}: {reason}");
                let loud = stats.errors.len() < MAX_LISTED;
                RecordInvalid { input: name, message: &message, count: 1, loud }.emit(&ctx.metrics);
                if loud {
                    stats.errors.push(message);
                }
                bad.insert(found.key, found.size);
                continue;
            }
        };
        bad.remove(&found.key);
        in_flight.insert(found.key.clone());
        let (tx, key) = (tx.clone(), found.key.clone());
        let token = AckToken::new(move |status, reason| {
            let _ = tx.send((key, status, reason));
        });
        stats.events += events.len() as u64;
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let batch: Vec<_> = events
                .by_ref()
                .take(MAX_BATCH)
                .map(|mut e| {
                    e.ack = Some(token.clone());
                    e
                })
                .collect();
            if !ctx.send(batch).await {
                token.report(AckStatus::Errored, "the pipeline stopped before taking the file");
                return Ok(false);
            }
        }
        // An empty `Records` settles at once, as delivered, when this last clone goes.
        drop(token);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::tests::gz;
    use crate::source::shutdown_pair;
    use rampart_core::{Metrics, Normalizer};
    use serde_json::json;
    use std::sync::Arc;

    fn record(id: &str, name: &str) -> serde_json::Value {
        json!({"eventVersion": "1.08", "eventTime": "2023-11-14T22:13:20Z", "eventSource": "iam.amazonaws.com", "eventName": name, "eventID": id, "sourceIPAddress": "198.51.100.20"})
    }

    #[tokio::test]
    async fn reads_a_directory_once_remembers_and_skips_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs/AWSLogs/111122223333/CloudTrail/us-east-1/2023/11/14");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("111122223333_CloudTrail_us-east-1_20231114T2215Z_b.json.gz"), gz(&json!({"Records": [record("e3", "CreateUser")]}))).unwrap();
        std::fs::write(logs.join("111122223333_CloudTrail_us-east-1_20231114T2210Z_a.json.gz"), gz(&json!({"Records": [record("e1", "ListUsers"), record("e2", "GetUser")]}))).unwrap();
        std::fs::write(logs.join("111122223333_CloudTrail_us-east-1_20231114T2220Z_c.json.gz"), b"\x1f\x8bbroken").unwrap();
        std::fs::write(logs.join("notes.txt"), b"not a log").unwrap();
        let state = dir.path().join("state");
        let mut cfg = CloudTrailInputConfig::dir(dir.path().join("logs").to_str().unwrap());
        cfg.once = true;
        cfg.state_file = Some(state.to_str().unwrap().to_string());
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());

        let run_once = |cfg: CloudTrailInputConfig| async move {
            let (tx, rx) = flume::bounded(16);
            let (_t, s) = shutdown_pair();
            let ctx = SourceContext { out: tx, metrics: Arc::new(Metrics::new()), normalizer: Normalizer::default(), shutdown: s };
            // The "outputs": take each batch and drop it, which acks its events.
            let taker = tokio::spawn(async move {
                let mut names = Vec::new();
                while let Ok(batch) = rx.recv_async().await {
                    for e in batch {
                        names.push(e.doc["details"]["eventName"].as_str().unwrap().to_string());
                    }
                }
                names
            });
            let stats = run(&cfg, ctx).await.unwrap();
            (stats, taker.await.unwrap())
        };
        let (stats, names) = run_once(cfg.clone()).await;
        assert_eq!(names, ["ListUsers", "GetUser", "CreateUser"], "oldest file first");
        assert_eq!(stats.files_done, 2);
        assert_eq!(stats.invalid, 1);
        assert!(stats.errors[0].contains("20231114T2220Z_c.json.gz") && stats.errors[0].contains("gzip"), "{:?}", stats.errors);
        let kept = std::fs::read_to_string(&state).unwrap();
        assert_eq!(kept.lines().count(), 2);
        assert!(kept.lines().all(|l| l.starts_with("AWSLogs/111122223333/CloudTrail/")), "{kept}");

        // A restart reads only what is new.
        std::fs::write(logs.join("111122223333_CloudTrail_us-east-1_20231114T2225Z_d.json.gz"), gz(&json!({"Records": [record("e4", "DeleteUser")]}))).unwrap();
        let (stats, names) = run_once(cfg.clone()).await;
        assert_eq!(names, ["DeleteUser"]);
        assert_eq!(stats.files_done, 1);
        assert_eq!(std::fs::read_to_string(&state).unwrap().lines().count(), 3);

        // A file expired from the bucket leaves the state too: the state is what is there,
        // not every file ever read. What is still there is still not read again.
        std::fs::remove_file(logs.join("111122223333_CloudTrail_us-east-1_20231114T2210Z_a.json.gz")).unwrap();
        let (stats, names) = run_once(cfg).await;
        assert!(names.is_empty() && stats.files_done == 0, "{names:?}");
        let kept = std::fs::read_to_string(&state).unwrap();
        let mut kept: Vec<&str> = kept.lines().map(|l| l.rsplit('_').next().unwrap()).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["b.json.gz", "d.json.gz"]);
        assert!(!state.with_extension("rewrite").exists());
    }

    #[tokio::test]
    async fn a_file_an_output_failed_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.json.gz"), gz(&json!({"Records": [record("e1", "ListUsers")]}))).unwrap();
        let state = dir.path().join(".state");
        let mut cfg = CloudTrailInputConfig::dir(dir.path().to_str().unwrap());
        cfg.once = true;
        cfg.state_file = Some(state.to_str().unwrap().to_string());
        let (tx, rx) = flume::bounded(16);
        let (_t, s) = shutdown_pair();
        let ctx = SourceContext { out: tx, metrics: Arc::new(Metrics::new()), normalizer: Normalizer::default(), shutdown: s };
        let taker = tokio::spawn(async move {
            while let Ok(batch) = rx.recv_async().await {
                for e in batch {
                    e.ack.as_ref().unwrap().report(AckStatus::Errored, "store down");
                }
            }
        });
        let stats = run(&cfg, ctx).await.unwrap();
        taker.await.unwrap();
        assert_eq!(stats.files_done, 0);
        assert!(!state.exists() || std::fs::read_to_string(&state).unwrap().is_empty());
    }

    #[test]
    fn validation_names_each_problem() {
        let c = CloudTrailInputConfig { bucket: Some("a/b".into()), poll_interval: Duration::ZERO, ..CloudTrailInputConfig::dir("/nonexistent/rampart") };
        let p = c.validate();
        assert!(p.iter().any(|m| m.contains("not both")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("poll_interval")), "{p:?}");
        let c = CloudTrailInputConfig { dir: None, ..c };
        assert!(c.validate().iter().any(|m| m.contains("not a bucket name")));
    }
}
