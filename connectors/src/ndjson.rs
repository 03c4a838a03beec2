//! NDJSON file output: events to `<dir>/events-YYYYMMDD.ndjson`, alerts to
//! `<dir>/alerts-YYYYMMDD.ndjson`, one JSON document per line, appended. An event a plugin
//! routed goes to `<dir>/<index>-YYYYMMDD.ndjson` and carries its document id as `_id`.
//!
//! The day is the record's own UTC day (`utctimestamp`), so a replay of old data lands in
//! the files of the days it describes. Each event line is the normalized document with the
//! event id first (`{"id": "…", "utctimestamp": …}`); alert lines are [`Alert`] documents.
//!
//! Delivery: a batch is written with one `write` per file and [`Sink::write_events`]
//! returns only after it reached the OS (and the disk, with `fsync: true`); that return is
//! the "durably accepted" point. A crash mid-write can leave a partial last line, which
//! readers of NDJSON skip.

use crate::error::ConnectorError;
use crate::plugins::chain::valid_route_index;
use crate::sink::{settle_now, EventBatch, Sink, SinkFuture};
use crate::events::{AlertsWritten, EventsWritten, OutputWriteFailed};
use rampart_core::{Alert, Event, EventTime, Metrics};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// `type: file` output.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutputConfig {
    /// Directory for the daily files; created if missing. Default `./data`.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// Write events. Default true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub events: bool,
    /// Write alerts. Default true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub alerts: bool,
    /// `fsync` each batch before acknowledging it (slower, survives power loss).
    /// Default false: a batch is acknowledged once the OS has it.
    #[serde(default, deserialize_with = "crate::registry::lenient")]
    pub fsync: bool,
}

fn default_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn yes() -> bool {
    true
}

impl Default for FileOutputConfig {
    fn default() -> Self {
        FileOutputConfig { dir: default_dir(), events: true, alerts: true, fsync: false }
    }
}

impl FileOutputConfig {
    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.dir.as_os_str().is_empty() {
            p.push("dir: must not be empty".to_string());
        } else if self.dir.exists() && !self.dir.is_dir() {
            p.push(format!("dir: {} exists and is not a directory", self.dir.display()));
        }
        if !self.events && !self.alerts {
            p.push("events and alerts are both false: this output would write nothing".to_string());
        }
        p
    }
}

/// The daily-file writer.
pub struct FileOutput {
    cfg: FileOutputConfig,
    metrics: Arc<Metrics>,
    /// Open append handles by file name; a handful at most (today, yesterday, a replay's day).
    files: HashMap<String, File>,
}

impl std::fmt::Debug for FileOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileOutput").field("cfg", &self.cfg).field("open", &self.files.len()).finish()
    }
}

const MAX_OPEN: usize = 8;

impl FileOutput {
    /// Creates the directory and an output writing into it.
    pub fn open(cfg: FileOutputConfig, metrics: Arc<Metrics>) -> Result<FileOutput, ConnectorError> {
        std::fs::create_dir_all(&cfg.dir).map_err(|source| ConnectorError::Open { component: "file output", path: cfg.dir.display().to_string(), source })?;
        Ok(FileOutput { cfg, metrics, files: HashMap::new() })
    }

    /// The file a record of `kind` (`events`/`alerts`) at `t` goes to.
    pub fn path_for(&self, kind: &str, t: EventTime) -> PathBuf {
        self.cfg.dir.join(format!("{kind}-{}.ndjson", t.day_stamp()))
    }

    /// Appends pre-rendered lines, grouped per file, one write per file.
    fn append(&mut self, groups: Vec<(String, Vec<u8>)>) -> Result<(), ConnectorError> {
        if self.files.len() + groups.len() > MAX_OPEN {
            self.files.clear();
        }
        for (name, bytes) in groups {
            let path = self.cfg.dir.join(&name);
            let file = match self.files.entry(name) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let f = OpenOptions::new().create(true).append(true).open(&path).map_err(|source| ConnectorError::Open { component: "file output", path: path.display().to_string(), source })?;
                    v.insert(f)
                }
            };
            let res = file.write_all(&bytes).and_then(|()| if self.cfg.fsync { file.sync_data() } else { Ok(()) });
            if let Err(source) = res {
                OutputWriteFailed { output: "file", error: &source }.emit(&self.metrics);
                // The handle may be in a bad state (disk full, file removed): reopen next time.
                self.files.clear();
                return Err(ConnectorError::Write { component: "file output", path: path.display().to_string(), source });
            }
        }
        Ok(())
    }
}

/// Groups lines by file name, keeping first-seen order of files and record order within.
fn group_push(groups: &mut Vec<(String, Vec<u8>)>, name: String) -> &mut Vec<u8> {
    let i = match groups.iter().position(|(n, _)| *n == name) {
        Some(i) => i,
        None => {
            groups.push((name, Vec::new()));
            groups.len() - 1
        }
    };
    &mut groups[i].1
}

/// Serializes an event as its document with the id first.
pub fn event_line(e: &Event, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(e.id.to_string().as_bytes());
    out.push(b'"');
    if let Some(doc_id) = &e.route.doc_id {
        out.extend_from_slice(b",\"_id\":");
        serde_json::to_writer(&mut *out, doc_id)?;
    }
    if !e.doc.is_empty() {
        out.push(b',');
        let body = serde_json::to_vec(&e.doc)?;
        // `body` is `{…}`: splice its inside after the id.
        out.extend_from_slice(&body[1..]);
    } else {
        out.push(b'}');
    }
    out.push(b'\n');
    Ok(())
}

impl Sink for FileOutput {
    fn name(&self) -> &'static str {
        "file"
    }

    fn wants_events(&self) -> bool {
        self.cfg.events
    }

    fn wants_alerts(&self) -> bool {
        self.cfg.alerts
    }

    fn write_events(&mut self, batch: EventBatch) -> SinkFuture<'_> {
        settle_now(batch, |events| self.write_event_lines(events))
    }

    fn write_alerts(&mut self, alerts: Arc<Vec<Alert>>) -> SinkFuture<'_> {
        Box::pin(std::future::ready(self.write_alert_lines(&alerts)))
    }
}

impl FileOutput {
    /// Writes events now (the blocking core of [`Sink::write_events`]).
    pub fn write_event_lines(&mut self, events: &[Arc<Event>]) -> Result<(), ConnectorError> {
        if !self.cfg.events || events.is_empty() {
            return Ok(());
        }
        let mut groups = Vec::new();
        for e in events {
            let prefix = e.route.index.as_deref().filter(|i| valid_route_index(i)).unwrap_or("events");
            let buf = group_push(&mut groups, format!("{prefix}-{}.ndjson", e.time.day_stamp()));
            event_line(e, buf).map_err(|source| ConnectorError::Serialize { component: "file output", source })?;
        }
        self.append(groups)?;
        EventsWritten { output: "file", events }.emit(&self.metrics);
        Ok(())
    }

    /// Writes alerts now (the blocking core of [`Sink::write_alerts`]).
    pub fn write_alert_lines(&mut self, alerts: &[Alert]) -> Result<(), ConnectorError> {
        if !self.cfg.alerts || alerts.is_empty() {
            return Ok(());
        }
        let mut groups = Vec::new();
        for a in alerts {
            let buf = group_push(&mut groups, format!("alerts-{}.ndjson", a.utctimestamp.day_stamp()));
            serde_json::to_writer(&mut *buf, a).map_err(|source| ConnectorError::Serialize { component: "file output", source })?;
            buf.push(b'\n');
        }
        self.append(groups)?;
        AlertsWritten { output: "file", count: alerts.len() as u64 }.emit(&self.metrics);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rampart_core::alert::{AlertRule, AlertWindow};
    use rampart_core::{Counter, EventId, Normalizer, Stage};
    use serde_json::{json, Value};

    pub(crate) fn event(ts: &str, n: u64) -> Arc<Event> {
        Arc::new(Normalizer::default().normalize(json!({"utctimestamp": ts, "n": n}), EventId(n as u128)).unwrap())
    }

    pub(crate) fn alert(t: EventTime) -> Alert {
        Alert {
            id: Alert::make_id("r", &Default::default(), t),
            utctimestamp: t,
            severity: "WARNING".into(),
            category: "test".into(),
            summary: "s".into(),
            tags: vec![],
            rule: AlertRule { id: "r".into(), title: "R".into(), level: None, kind: "detection".into() },
            group: Default::default(),
            window: AlertWindow { start: t, end: t },
            value: 1.0,
            events: vec![],
        }
    }

    fn lines(p: &std::path::Path) -> Vec<Value> {
        std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn writes_daily_files_by_event_time_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::new());
        let cfg = FileOutputConfig { dir: dir.path().join("sub/data"), ..Default::default() };
        assert!(cfg.validate().is_empty());
        let mut out = FileOutput::open(cfg, m.clone()).unwrap();
        out.write_event_lines(&[event("2026-03-01T23:59:59Z", 1), event("2026-03-02T00:00:00Z", 2), event("2026-03-01T10:00:00Z", 3)]).unwrap();
        out.write_event_lines(&[event("2026-03-02T12:00:00Z", 4)]).unwrap();
        let d1 = lines(&dir.path().join("sub/data/events-20260301.ndjson"));
        let d2 = lines(&dir.path().join("sub/data/events-20260302.ndjson"));
        assert_eq!(d1.iter().map(|v| v["details"]["n"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(d2.iter().map(|v| v["details"]["n"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(d1[0]["id"], json!(EventId(1).to_string()));
        assert_eq!(d1[0].as_object().unwrap().keys().next().unwrap(), "id");
        assert_eq!(m.get(Counter::EventsWritten), 4);
        assert_eq!(m.histogram(Stage::AcceptToWritten).len(), 4);

        let t = EventTime::from_datetime(chrono::DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap());
        out.write_alert_lines(&[alert(t), alert(t)]).unwrap();
        let a = lines(&dir.path().join("sub/data/alerts-20260302.ndjson"));
        assert_eq!(a.len(), 2);
        let back: Alert = serde_json::from_value(a[0].clone()).unwrap();
        assert_eq!(back, alert(t));
        assert_eq!(m.get(Counter::AlertsWritten), 2);

        // A second writer (a restart) appends rather than truncating.
        let mut again = FileOutput::open(FileOutputConfig { dir: dir.path().join("sub/data"), fsync: true, ..Default::default() }, m).unwrap();
        again.write_event_lines(&[event("2026-03-01T11:00:00Z", 5)]).unwrap();
        assert_eq!(lines(&dir.path().join("sub/data/events-20260301.ndjson")).len(), 3);
    }

    #[test]
    fn disabled_kinds_write_nothing_and_bad_dirs_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(Metrics::new());
        let mut out = FileOutput::open(FileOutputConfig { dir: dir.path().to_path_buf(), events: false, ..Default::default() }, m.clone()).unwrap();
        assert!(!out.wants_events() && out.wants_alerts());
        out.write_event_lines(&[event("2026-03-01T00:00:00Z", 1)]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(m.get(Counter::EventsWritten), 0);

        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let cfg = FileOutputConfig { dir: file.clone(), events: false, alerts: false, fsync: false };
        let problems = cfg.validate();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(matches!(FileOutput::open(cfg, m), Err(ConnectorError::Open { .. })));
    }
}
