//! Normalization into MozDef's event schema.
//!
//! Any JSON object is accepted. The output document has, in this order: `utctimestamp`,
//! `@timestamp` (both UTC ISO-8601), `receivedtimestamp`, `mozdefhostname`, `category`,
//! `severity`, `summary`, `hostname`, `processname`, `processid` (when known), `source`,
//! `tags`, `details`. Known synonyms are moved into those fields (see [`SYNONYMS`]); every
//! other top-level key is moved under `details`. Nothing the sender sent is dropped: a key
//! that would collide inside `details` is kept with a `_top` suffix, and a sender's own
//! `receivedtimestamp` moves to `details.receivedtimestamp`.
//!
//! [`Normalizer::verbatim_at`] is the exception MozDef's custom endpoints need: the
//! document stays as sent, with only the missing `utctimestamp`/`receivedtimestamp` added.

use crate::event::{Event, EventId};
use crate::metrics::clock_ns;
use crate::time::{epoch_number_to_time, parse_timestamp, EventTime, NaiveZone};
use serde_json::{Map, Value};
use thiserror::Error;

/// Why a value could not become an event.
#[derive(Debug, Error, PartialEq)]
pub enum NormalizeError {
    /// Events are JSON objects.
    #[error("an event must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type found instead.
        found: &'static str,
    },
}

/// Normalizer settings.
#[derive(Clone, Debug, Default)]
pub struct NormalizerConfig {
    /// Zone for timestamps that carry none (UTC by default).
    pub naive_zone: NaiveZone,
    /// This node's name, written to `mozdefhostname`.
    pub node_name: String,
}

/// The schema fields and the sender keys that feed them, first present wins. The schema
/// name itself is always tried first.
pub const SYNONYMS: &[(&str, &[&str])] = &[
    ("utctimestamp", &["utctimestamp", "@timestamp", "timestamp", "eventtime", "event_time", "EventTime", "time", "date", "datetime", "ts", "TimeCreated"]),
    ("summary", &["summary", "message", "msg", "MESSAGE", "payload", "short_message"]),
    ("hostname", &["hostname", "host", "source_host", "HOSTNAME", "hostName", "Hostname", "computer", "Computer"]),
    ("processname", &["processname", "process", "program", "SYSLOG_IDENTIFIER", "app_name", "appname"]),
    ("processid", &["processid", "pid", "PID", "_PID"]),
    ("severity", &["severity", "level", "loglevel", "log_level", "SEVERITY"]),
    ("category", &["category", "type", "event_type"]),
    ("source", &["source", "eventsource"]),
];

/// Turns sender JSON into [`Event`]s.
#[derive(Clone, Debug, Default)]
pub struct Normalizer {
    cfg: NormalizerConfig,
}

/// "a string", "an object", …: a JSON value's kind as error messages name it.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Normalizer {
    /// A normalizer with these settings.
    pub fn new(cfg: NormalizerConfig) -> Normalizer {
        Normalizer { cfg }
    }

    /// The zone for timestamps that carry none, for inputs that read times themselves
    /// (syslog's year-less stamps).
    pub fn naive_zone(&self) -> NaiveZone {
        self.cfg.naive_zone
    }

    /// Normalizes one sender value received now.
    pub fn normalize(&self, value: Value, id: EventId) -> Result<Event, NormalizeError> {
        self.normalize_at(value, id, EventTime::now())
    }

    /// Makes an event of a sender object *without* normalizing it (MozDef's custom
    /// endpoints): the document is the object as sent, plus `utctimestamp` and
    /// `receivedtimestamp` when it has none. The event time is the first time synonym (see
    /// [`SYNONYMS`]) whose value parses, else `received`; an added `utctimestamp` carries
    /// it. Nothing is moved, renamed or dropped.
    pub fn verbatim_at(&self, value: Value, id: EventId, received: EventTime) -> Result<Event, NormalizeError> {
        let accepted_ns = clock_ns();
        let mut doc = match value {
            Value::Object(m) => m,
            other => return Err(NormalizeError::NotAnObject { found: json_type(&other) }),
        };
        let (time, _) = self.event_time(&doc, received);
        let time = time.unwrap_or(received);
        if !doc.contains_key("utctimestamp") {
            doc.insert("utctimestamp".into(), Value::String(time.to_rfc3339()));
        }
        if !doc.contains_key("receivedtimestamp") {
            doc.insert("receivedtimestamp".into(), Value::String(received.to_rfc3339()));
        }
        Ok(Event { id, time, received, accepted_ns, doc, ack: None, route: Default::default() })
    }

    /// The first time synonym whose value parses, and whether some synonym was present
    /// but did not parse.
    fn event_time(&self, src: &Map<String, Value>, received: EventTime) -> (Option<EventTime>, bool) {
        let mut unparsed = false;
        for key in SYNONYMS[0].1 {
            let Some(v) = src.get(*key) else { continue };
            let parsed = match v {
                Value::String(s) => parse_timestamp(s, self.cfg.naive_zone, received),
                Value::Number(n) => n.as_f64().and_then(epoch_number_to_time),
                _ => None,
            };
            match parsed {
                Some(t) => return (Some(t), unparsed),
                None => unparsed = true,
            }
        }
        (None, unparsed)
    }

    /// Normalizes one sender value, received at `received`.
    pub fn normalize_at(&self, value: Value, id: EventId, received: EventTime) -> Result<Event, NormalizeError> {
        let accepted_ns = clock_ns();
        let mut src = match value {
            Value::Object(m) => m,
            other => return Err(NormalizeError::NotAnObject { found: json_type(&other) }),
        };
        let mut details = match src.shift_remove("details") {
            Some(Value::Object(d)) => d,
            Some(Value::Null) | None => Map::new(),
            Some(other) => {
                let mut d = Map::new();
                d.insert("details".into(), other);
                d
            }
        };

        // Time: the first synonym whose value parses. Keys other than the schema's own
        // stay in `details` with their original text.
        let (time, time_unparsed) = self.event_time(&src, received);
        for schema_time in ["utctimestamp", "@timestamp"] {
            if let Some(v) = src.shift_remove(schema_time) {
                // A sender value that did not parse is kept; one that did is re-written.
                if time.is_none() || !is_time_like(&v) {
                    put_detail(&mut details, schema_time, v);
                }
            }
        }
        if let Some(v) = src.shift_remove("receivedtimestamp") {
            put_detail(&mut details, "receivedtimestamp", v);
        }
        let time = time.unwrap_or(received);

        let mut doc = Map::new();
        let ts = Value::String(time.to_rfc3339());
        doc.insert("utctimestamp".into(), ts.clone());
        doc.insert("@timestamp".into(), ts);
        doc.insert("receivedtimestamp".into(), Value::String(received.to_rfc3339()));
        if !self.cfg.node_name.is_empty() {
            doc.insert("mozdefhostname".into(), Value::String(self.cfg.node_name.clone()));
        }

        for (field, keys) in &SYNONYMS[1..] {
            let taken = keys.iter().find_map(|k| match src.get(*k) {
                Some(v) if accepts(field, v) => Some(*k),
                _ => None,
            });
            let value = taken.and_then(|k| src.shift_remove(k)).map(|v| shape(field, v));
            match (value, *field) {
                (Some(v), _) => {
                    doc.insert((*field).into(), v);
                }
                (None, "category") => {
                    doc.insert("category".into(), Value::String("event".into()));
                }
                (None, "severity") => {
                    doc.insert("severity".into(), Value::String("INFO".into()));
                }
                (None, "summary") | (None, "hostname") | (None, "processname") => {
                    doc.insert((*field).into(), Value::String(String::new()));
                }
                (None, "source") => {
                    doc.insert("source".into(), Value::String("UNKNOWN".into()));
                }
                (None, _) => {}
            }
        }
        // ECS-style `host: {name: …}` feeds hostname but stays whole in details.
        if doc.get("hostname").is_some_and(|h| h.as_str() == Some("")) {
            if let Some(name) = src.get("host").and_then(|h| h.get("name")).and_then(Value::as_str) {
                doc.insert("hostname".into(), Value::String(name.to_string()));
            }
        }

        let mut tags = match src.shift_remove("tags") {
            Some(Value::Array(a)) => a,
            Some(Value::String(s)) => s.split(',').map(|t| Value::String(t.trim().to_string())).filter(|t| t.as_str() != Some("")).collect(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                put_detail(&mut details, "tags", other);
                Vec::new()
            }
        };
        if time_unparsed && time == received {
            tags.push(Value::String("timestamp-unparsed".into()));
        }
        doc.insert("tags".into(), Value::Array(tags));

        for (k, v) in src {
            put_detail(&mut details, &k, v);
        }
        doc.insert("details".into(), Value::Object(details));

        Ok(Event { id, time, received, accepted_ns, doc, ack: None, route: Default::default() })
    }
}

fn is_time_like(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_))
}

/// Whether a sender value can fill a schema field (so an ECS `host` object does not
/// become `hostname`).
fn accepts(field: &str, v: &Value) -> bool {
    match field {
        "processid" => matches!(v, Value::Number(_) | Value::String(_)),
        "severity" => matches!(v, Value::String(_) | Value::Number(_)),
        _ => matches!(v, Value::String(_)),
    }
}

fn shape(field: &str, v: Value) -> Value {
    match (field, v) {
        ("severity", Value::String(s)) => Value::String(s.to_ascii_uppercase()),
        ("severity", Value::Number(n)) => Value::String(syslog_severity(n.as_u64()).to_string()),
        ("processid", Value::String(s)) => match s.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(s),
        },
        (_, v) => v,
    }
}

/// Syslog numeric severities in MozDef's words.
fn syslog_severity(n: Option<u64>) -> &'static str {
    match n {
        Some(0) => "EMERGENCY",
        Some(1) => "ALERT",
        Some(2) => "CRITICAL",
        Some(3) => "ERROR",
        Some(4) => "WARNING",
        Some(5) => "NOTICE",
        Some(6) => "INFO",
        Some(7) => "DEBUG",
        _ => "INFO",
    }
}

fn put_detail(details: &mut Map<String, Value>, key: &str, v: Value) {
    let mut k = key.to_string();
    while details.contains_key(&k) {
        k.push_str("_top");
    }
    details.insert(k, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(v: Value) -> Event {
        Normalizer::new(NormalizerConfig { node_name: "node1".into(), ..Default::default() })
            .normalize_at(v, EventId(1), EventTime(1_795_000_000_000))
            .unwrap()
    }

    #[test]
    fn mozdef_schema_from_a_syslog_like_event() {
        let e = norm(json!({
            "timestamp": "2026-11-27T10:00:00Z", "host": "web1", "program": "sshd", "pid": "811",
            "message": "Failed password for root from 10.0.0.9 port 2222 ssh2", "sourceipaddress": "10.0.0.9",
            "tags": "ssh, auth"
        }));
        let d = &e.doc;
        assert_eq!(d["utctimestamp"], json!("2026-11-27T10:00:00.000+00:00"));
        assert_eq!(d["@timestamp"], d["utctimestamp"]);
        assert_eq!(d["receivedtimestamp"], json!(EventTime(1_795_000_000_000).to_rfc3339()));
        assert_eq!(d["hostname"], json!("web1"));
        assert_eq!(d["processname"], json!("sshd"));
        assert_eq!(d["processid"], json!(811));
        assert_eq!(d["summary"], json!("Failed password for root from 10.0.0.9 port 2222 ssh2"));
        assert_eq!(d["severity"], json!("INFO"));
        assert_eq!(d["category"], json!("event"));
        assert_eq!(d["source"], json!("UNKNOWN"));
        assert_eq!(d["tags"], json!(["ssh", "auth"]));
        assert_eq!(d["details"], json!({"timestamp": "2026-11-27T10:00:00Z", "sourceipaddress": "10.0.0.9"}));
        assert_eq!(e.time.to_rfc3339(), "2026-11-27T10:00:00.000+00:00");
        let keys: Vec<_> = d.keys().cloned().collect();
        assert_eq!(keys[..3], ["utctimestamp", "@timestamp", "receivedtimestamp"]);
    }

    #[test]
    fn nothing_is_dropped() {
        let e = norm(json!({"details": {"a": 1}, "a": 2, "receivedtimestamp": "sender's", "tags": 5, "utctimestamp": "not a time"}));
        let det = &e.doc["details"];
        assert_eq!(det["a"], json!(1));
        assert_eq!(det["a_top"], json!(2));
        assert_eq!(det["receivedtimestamp"], json!("sender's"));
        assert_eq!(det["tags"], json!(5));
        assert_eq!(det["utctimestamp"], json!("not a time"));
        assert_eq!(e.doc["tags"], json!(["timestamp-unparsed"]));
        assert_eq!(e.time, EventTime(1_795_000_000_000));
    }

    #[test]
    fn epoch_times_and_numeric_severity() {
        let e = norm(json!({"ts": 1795000000123u64, "severity": 3}));
        assert_eq!(e.time, EventTime(1_795_000_000_123));
        assert_eq!(e.doc["severity"], json!("ERROR"));
        let e = norm(json!({"time": 1795000000.5}));
        assert_eq!(e.time, EventTime(1_795_000_000_500));
    }

    #[test]
    fn ecs_host_object_stays_and_feeds_hostname() {
        let e = norm(json!({"host": {"name": "dc01", "ip": ["10.0.0.1"]}, "@timestamp": "2026-01-01T00:00:00Z"}));
        assert_eq!(e.doc["hostname"], json!("dc01"));
        assert_eq!(e.doc["details"]["host"]["ip"], json!(["10.0.0.1"]));
        assert_eq!(e.time.to_rfc3339(), "2026-01-01T00:00:00.000+00:00");
    }

    #[test]
    fn verbatim_keeps_the_document_and_adds_only_the_times_it_lacks() {
        let n = Normalizer::default();
        let received = EventTime(1_795_000_000_000);
        let sent = json!({"message": "x", "host": {"name": "a"}, "timestamp": "2026-01-02T03:04:05Z", "details": 5});
        let e = n.verbatim_at(sent.clone(), EventId(7), received).unwrap();
        assert_eq!(e.time.to_rfc3339(), "2026-01-02T03:04:05.000+00:00");
        let mut want = sent.as_object().unwrap().clone();
        want.insert("utctimestamp".into(), json!("2026-01-02T03:04:05.000+00:00"));
        want.insert("receivedtimestamp".into(), json!(received.to_rfc3339()));
        assert_eq!(e.doc, want, "nothing moved, renamed or dropped");
        // A document with its own (even unparseable) times keeps them; the time falls back
        // to the receive time.
        let e = n.verbatim_at(json!({"utctimestamp": "soon", "receivedtimestamp": 1}), EventId(8), received).unwrap();
        assert_eq!(e.doc, *json!({"utctimestamp": "soon", "receivedtimestamp": 1}).as_object().unwrap());
        assert_eq!(e.time, received);
        assert!(n.verbatim_at(json!("x"), EventId(9), received).is_err());
    }

    #[test]
    fn non_objects_are_refused_with_their_type() {
        let n = Normalizer::default();
        assert_eq!(n.normalize(json!([1]), EventId(0)).unwrap_err().to_string(), "an event must be a JSON object, found an array");
    }
}
