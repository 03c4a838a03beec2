//! Standard output: events and/or alerts as NDJSON (or indented JSON with `pretty`).
//!
//! Delivery: each batch is flushed before the write returns; a closed pipe is an error
//! (the pipeline reports it and stops writing there).

use crate::error::ConnectorError;
use crate::ndjson::event_line;
use crate::sink::{settle_now, EventBatch, Sink, SinkFuture};
use crate::events::{AlertsWritten, EventsWritten, OutputWriteFailed};
use rampart_core::{Alert, Event, Metrics};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;

/// `type: stdout` output.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// Print events. Default false (they are many).
    #[serde(default, deserialize_with = "crate::registry::lenient")]
    pub events: bool,
    /// Print alerts. Default true.
    #[serde(default = "yes", deserialize_with = "crate::registry::lenient")]
    pub alerts: bool,
    /// Indented JSON, one blank-line-free document after another, for reading by eye.
    /// Default false (NDJSON).
    #[serde(default, deserialize_with = "crate::registry::lenient")]
    pub pretty: bool,
}

fn yes() -> bool {
    true
}

impl Default for StdoutConfig {
    fn default() -> Self {
        StdoutConfig { events: false, alerts: true, pretty: false }
    }
}

impl StdoutConfig {
    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        if !self.events && !self.alerts {
            return vec!["events and alerts are both false: this output would write nothing".to_string()];
        }
        Vec::new()
    }
}

/// Writes to stdout, or to any writer (tests).
pub struct StdoutOutput<W: Write + Send = std::io::Stdout> {
    cfg: StdoutConfig,
    metrics: Arc<Metrics>,
    out: W,
    buf: Vec<u8>,
}

impl<W: Write + Send> std::fmt::Debug for StdoutOutput<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutOutput").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl StdoutOutput<std::io::Stdout> {
    /// An output to the process's stdout.
    pub fn new(cfg: StdoutConfig, metrics: Arc<Metrics>) -> Self {
        Self::with_writer(cfg, metrics, std::io::stdout())
    }
}

impl<W: Write + Send> StdoutOutput<W> {
    /// An output to `out`.
    pub fn with_writer(cfg: StdoutConfig, metrics: Arc<Metrics>, out: W) -> Self {
        StdoutOutput { cfg, metrics, out, buf: Vec::new() }
    }

    /// The writer (tests read what was written).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn emit(&mut self) -> Result<(), ConnectorError> {
        let res = self.out.write_all(&self.buf).and_then(|()| self.out.flush());
        self.buf.clear();
        res.map_err(|source| {
            OutputWriteFailed { output: "stdout", error: &source }.emit(&self.metrics);
            ConnectorError::Write { component: "stdout", path: "<stdout>".into(), source }
        })
    }
}

fn ser_err(source: serde_json::Error) -> ConnectorError {
    ConnectorError::Serialize { component: "stdout", source }
}

impl<W: Write + Send> Sink for StdoutOutput<W> {
    fn name(&self) -> &'static str {
        "stdout"
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

impl<W: Write + Send> StdoutOutput<W> {
    /// Writes events now (the blocking core of [`Sink::write_events`]).
    pub fn write_event_lines(&mut self, events: &[Arc<Event>]) -> Result<(), ConnectorError> {
        if !self.cfg.events || events.is_empty() {
            return Ok(());
        }
        for e in events {
            if self.cfg.pretty {
                let mut line = Vec::new();
                event_line(e, &mut line).map_err(ser_err)?;
                let v: serde_json::Value = serde_json::from_slice(&line).map_err(ser_err)?;
                serde_json::to_writer_pretty(&mut self.buf, &v).map_err(ser_err)?;
                self.buf.push(b'\n');
            } else {
                event_line(e, &mut self.buf).map_err(ser_err)?;
            }
        }
        self.emit()?;
        EventsWritten { output: "stdout", events }.emit(&self.metrics);
        Ok(())
    }

    /// Writes alerts now (the blocking core of [`Sink::write_alerts`]).
    pub fn write_alert_lines(&mut self, alerts: &[Alert]) -> Result<(), ConnectorError> {
        if !self.cfg.alerts || alerts.is_empty() {
            return Ok(());
        }
        for a in alerts {
            if self.cfg.pretty {
                serde_json::to_writer_pretty(&mut self.buf, a).map_err(ser_err)?;
            } else {
                serde_json::to_writer(&mut self.buf, a).map_err(ser_err)?;
            }
            self.buf.push(b'\n');
        }
        self.emit()?;
        AlertsWritten { output: "stdout", count: alerts.len() as u64 }.emit(&self.metrics);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ndjson::tests::{alert, event};
    use rampart_core::{Counter, EventTime};

    #[test]
    fn alerts_by_default_events_on_request_pretty_on_request() {
        let m = Arc::new(Metrics::new());
        let mut out = StdoutOutput::with_writer(StdoutConfig::default(), m.clone(), Vec::new());
        out.write_event_lines(&[event("2026-03-01T00:00:00Z", 1)]).unwrap();
        out.write_alert_lines(&[alert(EventTime(1000)), alert(EventTime(2000))]).unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "events are off by default: {text}");
        let a: Alert = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(a.utctimestamp, EventTime(2000));
        assert_eq!(m.get(Counter::AlertsWritten), 2);
        assert_eq!(m.get(Counter::EventsWritten), 0);

        let cfg = StdoutConfig { events: true, alerts: false, pretty: true };
        let mut out = StdoutOutput::with_writer(cfg, m.clone(), Vec::new());
        out.write_event_lines(&[event("2026-03-01T00:00:00Z", 7)]).unwrap();
        out.write_alert_lines(&[alert(EventTime(1))]).unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        assert!(text.starts_with("{\n  \"id\": "), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["details"]["n"], 7);
        assert_eq!(m.get(Counter::EventsWritten), 1);
    }

    #[test]
    fn nothing_to_write_is_a_config_problem_and_write_errors_are_reported() {
        assert_eq!(StdoutConfig { events: false, alerts: false, pretty: false }.validate().len(), 1);
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let m = Arc::new(Metrics::new());
        let mut out = StdoutOutput::with_writer(StdoutConfig::default(), m.clone(), Broken);
        let err = out.write_alert_lines(&[alert(EventTime(1))]).unwrap_err();
        assert!(matches!(err, ConnectorError::Write { .. }));
        assert_eq!(m.get(Counter::OutputErrors), 1);
        assert_eq!(m.get(Counter::AlertsWritten), 0);
    }
}
