//! File and stdin input: JSON events from a file path or `-` (standard input), or Windows
//! event log files (`.evtx`).
//!
//! Speaks NDJSON, concatenated or pretty-printed JSON objects (back to back, spanning
//! lines), and a top-level JSON array of objects (its elements are the events). EVTX files
//! (`format: evtx`, or `auto` on a `.evtx` name or the `ElfFile` signature) are read with
//! the `evtx` crate 0.15 into the JSON that its `evtx_dump` prints
//! (`{"Event": {"System": …, "EventData": …}}`, attributes under `#attributes`), plus a
//! top-level `utctimestamp` from the record header so event time is right. Reads once
//! to the end (it does not follow a growing file) in bounded memory: only the record being
//! parsed is held, at most `max_record_bytes`.
//!
//! Delivery: at most once per read. A malformed record is reported as
//! `path:line:column: message`, counted in `rampart_events_invalid_total`, kept in the
//! first-errors list of [`FileStats`], and reading resumes at the next line; records
//! accepted before or after it are unaffected. Event ids are derived from `origin` (default
//! `file`, the same for a path and for stdin, so replaying the same bytes from anywhere
//! gives the same ids), the record's byte offset and its raw bytes.

use crate::error::ConnectorError;
use crate::json::{Scan, Scanner};
use crate::source::{SourceContext, MAX_BATCH};
use crate::events::RecordInvalid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// `type: file` input.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file to read, or `-` for standard input. Required.
    pub path: String,
    /// The origin hashed into event ids. Default `file`: ids then depend only on the
    /// bytes and their offset, so the same data replayed from a copy or from stdin keeps
    /// its ids. Set it to tell apart inputs that may carry identical bytes.
    #[serde(default = "default_origin")]
    pub origin: String,
    /// Largest single record, in bytes. Default 16 MiB. A bigger one is reported and
    /// skipped to the next line.
    #[serde(default = "default_max_record", deserialize_with = "crate::registry::lenient")]
    pub max_record_bytes: usize,
    /// How many error messages to keep for the final report. Default 20.
    #[serde(default = "default_max_errors", deserialize_with = "crate::registry::lenient")]
    pub max_errors: usize,
    /// `json`, `evtx` (Windows event log file), or `auto`: EVTX when the name ends in
    /// `.evtx` or the file starts with the EVTX signature, else JSON. Default `auto`.
    #[serde(default)]
    pub format: FileFormat,
}

/// What a file input reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// EVTX by name or signature, else JSON.
    #[default]
    Auto,
    /// NDJSON, concatenated JSON or a JSON array.
    Json,
    /// A Windows event log file.
    Evtx,
}

impl FileFormat {
    /// Does `path` get read as EVTX? (stdin is always JSON.)
    pub fn is_evtx(self, path: &str) -> bool {
        match self {
            FileFormat::Json => false,
            _ if path == "-" => false,
            FileFormat::Evtx => true,
            FileFormat::Auto => {
                let by_name = std::path::Path::new(path).extension().is_some_and(|e| e.eq_ignore_ascii_case("evtx"));
                by_name || {
                    use std::io::Read;
                    let mut magic = [0u8; 8];
                    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"ElfFile\0"
                }
            }
        }
    }
}

fn default_origin() -> String {
    "file".to_string()
}
fn default_max_record() -> usize {
    16 * 1024 * 1024
}
fn default_max_errors() -> usize {
    20
}

impl FileConfig {
    /// A config reading `path` with every default.
    pub fn new(path: impl Into<String>) -> FileConfig {
        FileConfig { path: path.into(), origin: default_origin(), max_record_bytes: default_max_record(), max_errors: default_max_errors(), format: FileFormat::Auto }
    }

    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.path.trim().is_empty() {
            p.push("path: must name a file or `-` for stdin".to_string());
        } else if self.path != "-" && !std::path::Path::new(&self.path).exists() {
            p.push(format!("path: {} does not exist", self.path));
        }
        if self.max_record_bytes == 0 {
            p.push("max_record_bytes: must be at least 1".to_string());
        }
        p
    }
}

/// What one read of a file produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// Events handed to the pipeline.
    pub accepted: u64,
    /// Records rejected (not JSON, not an object, too large).
    pub invalid: u64,
    /// The first `max_errors` problems, as `path:line:column: message`.
    pub errors: Vec<String>,
}

/// Reads the file (or stdin) to its end, sending batches into `ctx.out`. Returns early,
/// with what was read so far, when `ctx.shutdown` fires.
pub async fn run(cfg: &FileConfig, mut ctx: SourceContext) -> Result<FileStats, ConnectorError> {
    if cfg.format.is_evtx(&cfg.path) {
        return read_evtx(cfg, &mut ctx).await;
    }
    let reader: Box<dyn AsyncRead + Unpin + Send> = if cfg.path == "-" {
        Box::new(stdin_pipe())
    } else {
        let f = tokio::fs::File::open(&cfg.path).await.map_err(|source| ConnectorError::Open { component: "file", path: cfg.path.clone(), source })?;
        Box::new(f)
    };
    read(cfg, reader, &mut ctx).await
}

/// [`run`] over any reader (tests, and callers with their own streams).
pub async fn read(cfg: &FileConfig, mut reader: impl AsyncRead + Unpin, ctx: &mut SourceContext) -> Result<FileStats, ConnectorError> {
    let shown = if cfg.path == "-" { "<stdin>" } else { cfg.path.as_str() };
    let mut scanner = Scanner::new(cfg.origin.clone(), cfg.max_record_bytes);
    let mut stats = FileStats::default();
    let mut batch = Vec::new();
    let mut chunk = Vec::new();
    loop {
        match scanner.next() {
            Scan::Record { value, id, line, column } => match ctx.normalizer.normalize(value, id) {
                Ok(event) => {
                    batch.push(event);
                    if batch.len() >= MAX_BATCH && !flush(ctx, &mut batch, &mut stats).await {
                        return Ok(stats);
                    }
                }
                Err(e) => invalid(&mut stats, cfg, ctx, format!("{shown}:{line}:{column}: {e}")),
            },
            Scan::Invalid { line, column, message } => invalid(&mut stats, cfg, ctx, format!("{shown}:{line}:{column}: {message}")),
            Scan::NeedMore => {
                // Hand over what we have before waiting on the reader, so a slow stdin
                // still delivers promptly.
                if !flush(ctx, &mut batch, &mut stats).await {
                    return Ok(stats);
                }
                chunk.resize(scanner.wanted(), 0);
                let n = tokio::select! {
                    r = reader.read(&mut chunk) => r.map_err(|source| ConnectorError::Read { component: "file", path: shown.to_string(), source })?,
                    _ = ctx.shutdown.wait() => return Ok(stats),
                };
                if n == 0 {
                    scanner.finish();
                } else {
                    scanner.push(&chunk[..n]);
                }
            }
            Scan::End => break,
        }
    }
    flush(ctx, &mut batch, &mut stats).await;
    tracing::debug!(path = %shown, accepted = stats.accepted, invalid = stats.invalid, "file input finished");
    Ok(stats)
}

fn open_evtx(path: &str) -> Result<evtx::EvtxParser<std::fs::File>, String> {
    let settings = evtx::ParserSettings::new().num_threads(1).separate_json_attributes(false);
    Ok(evtx::EvtxParser::from_path(path).map_err(|e| format!("{e}"))?.with_configuration(settings))
}

/// One record as `evtx_dump` prints it, plus `utctimestamp` from the record header.
fn evtx_doc(rec: evtx::SerializedEvtxRecord<serde_json::Value>) -> (u64, serde_json::Value) {
    let mut doc = serde_json::Map::new();
    doc.insert("utctimestamp".to_string(), serde_json::Value::String(rec.timestamp.to_string()));
    if let serde_json::Value::Object(o) = rec.data {
        doc.extend(o);
    }
    (rec.event_record_id, serde_json::Value::Object(doc))
}

/// One EVTX record read: (record id, JSON document), or why it could not be parsed.
pub type EvtxRecord = Result<(u64, serde_json::Value), String>;

/// Every record of an EVTX file, in file order. For tools and tests; the input streams.
pub fn evtx_records(path: &str) -> Result<Vec<EvtxRecord>, String> {
    let mut parser = open_evtx(path)?;
    Ok(parser.records_json_value().map(|r| r.map(evtx_doc).map_err(|e| format!("{e}"))).collect())
}

/// EVTX: parsed on a blocking thread (the parser is synchronous), records handed over
/// through a bounded channel so memory stays bounded whatever the file size.
async fn read_evtx(cfg: &FileConfig, ctx: &mut SourceContext) -> Result<FileStats, ConnectorError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<EvtxRecord>(1024);
    let path = cfg.path.clone();
    let open_err = tokio::task::spawn_blocking(move || {
        let mut parser = match open_evtx(&path) {
            Ok(p) => p,
            Err(e) => return Some(e),
        };
        for r in parser.records_json_value() {
            let item = r.map(evtx_doc).map_err(|e| format!("{e}"));
            if tx.blocking_send(item).is_err() {
                break; // the reader stopped (shutdown)
            }
        }
        None
    });
    let mut stats = FileStats::default();
    let mut batch = Vec::new();
    loop {
        let item = tokio::select! {
            i = rx.recv() => i,
            _ = ctx.shutdown.wait() => break,
        };
        let Some(item) = item else { break };
        match item {
            Ok((record_id, value)) => {
                let raw = serde_json::to_vec(&value).unwrap_or_default();
                let id = rampart_core::EventId::derive(&cfg.origin, record_id, &raw);
                match ctx.normalizer.normalize(value, id) {
                    Ok(event) => {
                        batch.push(event);
                        if batch.len() >= MAX_BATCH && !flush(ctx, &mut batch, &mut stats).await {
                            return Ok(stats);
                        }
                    }
                    Err(e) => invalid(&mut stats, cfg, ctx, format!("{}: record {record_id}: {e}", cfg.path)),
                }
            }
            Err(e) => invalid(&mut stats, cfg, ctx, format!("{}: {e}", cfg.path)),
        }
    }
    flush(ctx, &mut batch, &mut stats).await;
    match open_err.await {
        Ok(Some(e)) => Err(ConnectorError::Open { component: "file", path: cfg.path.clone(), source: std::io::Error::other(e) }),
        _ => Ok(stats),
    }
}

/// Standard input through a detached thread and an in-memory pipe.
///
/// `tokio::io::stdin` reads on the runtime's blocking pool, and a blocked read there cannot
/// be cancelled: after Ctrl-C the runtime would hang on exit until the user pressed enter.
/// A plain thread blocked on stdin does not hold the runtime; it ends with the process.
fn stdin_pipe() -> tokio::io::DuplexStream {
    let (reader, mut writer) = tokio::io::duplex(256 * 1024);
    let spawned = std::thread::Builder::new().name("rampart-stdin".into()).spawn(move || {
        use std::io::Read;
        use tokio::io::AsyncWriteExt;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("cannot read stdin: {e}");
                    break;
                }
            };
            // The pipe wakes its reader without a runtime, so a plain executor will do.
            if block_on_here(writer.write_all(&buf[..n])).is_err() {
                break; // the reader is gone (shutdown)
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the stdin reader thread: {e}");
    }
    reader
}

/// Drives one future to completion on the current thread (only the pipe's own wakers
/// are involved, so no runtime is needed).
fn block_on_here<F: std::future::Future>(fut: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

async fn flush(ctx: &mut SourceContext, batch: &mut Vec<rampart_core::Event>, stats: &mut FileStats) -> bool {
    let n = batch.len() as u64;
    if n == 0 {
        return true;
    }
    let ok = ctx.send(std::mem::take(batch)).await;
    if ok {
        stats.accepted += n;
    }
    ok
}

fn invalid(stats: &mut FileStats, cfg: &FileConfig, ctx: &SourceContext, msg: String) {
    stats.invalid += 1;
    let loud = stats.errors.len() < cfg.max_errors;
    RecordInvalid { input: "file", message: &msg, count: 1, loud }.emit(&ctx.metrics);
    if loud {
        stats.errors.push(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::shutdown_pair;
    use rampart_core::{Counter, Event, Metrics, Normalizer};
    use std::io::Write;
    use std::sync::Arc;

    fn ctx(cap: usize) -> (SourceContext, flume::Receiver<Vec<Event>>, Arc<Metrics>, crate::ShutdownTrigger) {
        let (tx, rx) = flume::bounded(cap);
        let (t, s) = shutdown_pair();
        let m = Arc::new(Metrics::new());
        (SourceContext { out: tx, metrics: m.clone(), normalizer: Normalizer::default(), shutdown: s }, rx, m, t)
    }

    #[tokio::test]
    async fn reads_a_file_reports_bad_records_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.ndjson");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "{{\"summary\":\"one\"}}\n{{\"summary\": oops}}\n[1,2]\n{{\n  \"summary\": \"pretty\"\n}}{{\"summary\":\"three\"}}").unwrap();
        drop(f);
        let cfg = FileConfig::new(path.to_str().unwrap());
        assert!(cfg.validate().is_empty());
        let (c, rx, m, _t) = ctx(16);
        let stats = run(&cfg, c).await.unwrap();
        assert_eq!(stats.accepted, 3);
        assert_eq!(stats.invalid, 2);
        let p = path.display();
        assert_eq!(stats.errors, [format!("{p}:2:13: expected value"), format!("{p}:3:1: an event must be a JSON object, found an array")]);
        let summaries: Vec<String> = rx.drain().flatten().map(|e| e.doc["summary"].as_str().unwrap().to_string()).collect();
        assert_eq!(summaries, ["one", "pretty", "three"]);
        assert_eq!(m.get(Counter::EventsAccepted), 3);
        assert_eq!(m.get(Counter::EventsInvalid), 2);
    }

    #[tokio::test]
    async fn missing_file_is_an_open_error_and_invalid_config() {
        let cfg = FileConfig::new("/nonexistent/rampart.ndjson");
        assert_eq!(cfg.validate(), ["path: /nonexistent/rampart.ndjson does not exist"]);
        let (c, _rx, _m, _t) = ctx(1);
        let err = run(&cfg, c).await.unwrap_err();
        assert!(matches!(err, ConnectorError::Open { .. }), "{err}");
        assert_eq!(err.retry(), rampart_core::Retry::Never);
    }

    #[tokio::test]
    async fn big_input_streams_in_batches_with_backpressure() {
        // 5,000 events through a channel of 2 batches: the reader must wait for the
        // consumer, and everything arrives in order.
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("{{\"n\":{i}}}\n"));
        }
        let (mut c, rx, _m, _t) = ctx(2);
        let consumer = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut max_batch = 0;
            while let Ok(b) = rx.recv_async().await {
                max_batch = max_batch.max(b.len());
                seen.extend(b.into_iter().map(|e| e.doc["details"]["n"].as_u64().unwrap()));
                tokio::task::yield_now().await;
            }
            (seen, max_batch)
        });
        let stats = read(&FileConfig::new("mem"), text.as_bytes(), &mut c).await.unwrap();
        drop(c);
        let (seen, max_batch) = consumer.await.unwrap();
        assert_eq!(stats.accepted, 5000);
        assert_eq!(seen, (0..5000).collect::<Vec<u64>>());
        assert!(max_batch <= MAX_BATCH);
    }

    #[tokio::test]
    async fn shutdown_stops_a_blocked_reader() {
        let (mut c, rx, _m, t) = ctx(1);
        let (_keep, pipe) = tokio::io::duplex(64);
        let task = tokio::spawn(async move { read(&FileConfig::new("-"), pipe, &mut c).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        t.trigger();
        let stats = tokio::time::timeout(std::time::Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
        assert_eq!(stats, FileStats::default());
        assert!(rx.is_empty());
    }

    #[tokio::test]
    async fn a_thread_feeding_the_pipe_is_read_to_the_end() {
        // What `stdin_pipe` does, with a fixed input instead of the terminal.
        let (reader, mut writer) = tokio::io::duplex(16);
        let feeder = std::thread::spawn(move || {
            use tokio::io::AsyncWriteExt;
            for i in 0..200 {
                block_on_here(writer.write_all(format!("{{\"n\":{i}}}\n").as_bytes())).unwrap();
            }
        });
        let (mut c, rx, _m, _t) = ctx(1000);
        let stats = read(&FileConfig::new("-"), reader, &mut c).await.unwrap();
        feeder.join().unwrap();
        assert_eq!(stats.accepted, 200);
        assert_eq!(rx.drain().flatten().count(), 200);
    }

    #[tokio::test]
    async fn error_list_is_bounded_but_counting_is_not() {
        let text = "x\n".repeat(50);
        let mut cfg = FileConfig::new("m");
        cfg.max_errors = 3;
        let (mut c, _rx, m, _t) = ctx(1);
        let stats = read(&cfg, text.as_bytes(), &mut c).await.unwrap();
        assert_eq!(stats.invalid, 50);
        assert_eq!(stats.errors.len(), 3);
        assert_eq!(m.get(Counter::EventsInvalid), 50);
    }
}

#[cfg(test)]
mod evtx_tests {
    use super::*;

    #[test]
    fn evtx_is_detected_by_name_or_signature() {
        let dir = tempfile::tempdir().unwrap();
        let renamed = dir.path().join("log.bin");
        std::fs::write(&renamed, b"ElfFile\0rest of a header").unwrap();
        let json = dir.path().join("events.json");
        std::fs::write(&json, b"{\"a\": 1}\n").unwrap();
        let p = |f: &std::path::Path| f.to_str().unwrap().to_string();
        assert!(FileFormat::Auto.is_evtx(&p(&renamed)), "by signature");
        assert!(FileFormat::Auto.is_evtx("missing/Security.EVTX"), "by name, any case");
        assert!(!FileFormat::Auto.is_evtx(&p(&json)));
        assert!(!FileFormat::Json.is_evtx(&p(&renamed)), "forced json");
        assert!(FileFormat::Evtx.is_evtx(&p(&json)), "forced evtx");
        assert!(!FileFormat::Evtx.is_evtx("-"), "stdin is JSON");
        let cfg: FileConfig = serde_json::from_str(r#"{"path": "x", "format": "evtx"}"#).unwrap();
        assert_eq!(cfg.format, FileFormat::Evtx);
        assert!(serde_json::from_str::<FileConfig>(r#"{"path": "x", "format": "xml"}"#).is_err());
    }

    #[test]
    fn a_file_that_is_not_evtx_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("fake.evtx");
        std::fs::write(&f, b"not an event log").unwrap();
        assert!(evtx_records(f.to_str().unwrap()).is_err());
    }
}
