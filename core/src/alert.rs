//! [`Alert`]: what a rule emits when it matches or a correlation crosses its threshold.
//!
//! The serialized form is MozDef's alert document (`utctimestamp`, `severity`, `category`,
//! `summary`, `tags`, `events`) with Rampart's correlation facts beside it (`rule`, `group`,
//! `window`, `value`). It contains only event-time facts, so replaying the same input gives
//! byte-identical alerts.

use crate::event::EventId;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A reference to an event that contributed to an alert.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventRef {
    /// The event's id (its document id in the events store).
    pub id: EventId,
    /// The event's time.
    #[serde(with = "rfc3339")]
    pub utctimestamp: EventTime,
}

/// The rule an alert came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// The rule's `id` (or `name` when it has no id).
    pub id: String,
    /// The rule's `title`.
    pub title: String,
    /// Sigma `level` (`informational` … `critical`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// `detection` for single-event rules, or the correlation type (`event_count`, …).
    #[serde(rename = "type")]
    pub kind: String,
}

/// The event-time window an aggregate was computed over (inclusive bounds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertWindow {
    /// First instant inside the window.
    #[serde(with = "rfc3339")]
    pub start: EventTime,
    /// Last instant inside the window (the time of the event that crossed the threshold).
    #[serde(with = "rfc3339")]
    pub end: EventTime,
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic id: a hash of the rule, the group and the window end.
    pub id: String,
    /// When the alert happened in event time (the crossing event's time).
    #[serde(with = "rfc3339")]
    pub utctimestamp: EventTime,
    /// MozDef severity (`INFO`, `NOTICE`, `WARNING`, `ERROR`, `CRITICAL`).
    pub severity: String,
    /// MozDef category (the rule's `category`, or `correlation`/`detection`).
    pub category: String,
    /// The rendered `summary` template.
    pub summary: String,
    /// Rule tags plus Rampart's own.
    pub tags: Vec<String>,
    /// The rule that fired.
    pub rule: AlertRule,
    /// The group-by field values (empty for ungrouped rules).
    pub group: Map<String, Value>,
    /// The window the aggregate covers (equal bounds for single-event rules).
    pub window: AlertWindow,
    /// The aggregate: event count, distinct value count, sum, mean or percentile, or 1 for
    /// a single-event rule. Whole numbers are written without a fraction (`3`, not `3.0`).
    #[serde(with = "whole")]
    pub value: f64,
    /// References to the contributing events (at most the rule's limit, oldest first).
    pub events: Vec<EventRef>,
}

impl Alert {
    /// The deterministic alert id for `(rule, group, time)`.
    pub fn make_id(rule_id: &str, group: &Map<String, Value>, time: EventTime) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(rule_id.as_bytes());
        h.update(&[0xff]);
        for (k, v) in group {
            h.update(k.as_bytes());
            h.update(&[0xfe]);
            h.update(v.to_string().as_bytes());
            h.update(&[0xfd]);
        }
        h.update(&time.0.to_le_bytes());
        format!("{:032x}", h.digest128())
    }
}

/// Serde helpers writing a whole `f64` as a JSON integer, so counts read as counts.
mod whole {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            s.serialize_i64(*v as i64)
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}

/// Serde helpers writing [`EventTime`] as RFC 3339 text (and reading text or epoch ms).
pub mod rfc3339 {
    use crate::time::{parse_timestamp, EventTime, NaiveZone};
    use serde::{de, Deserialize, Deserializer, Serializer};

    /// Writes the time as RFC 3339 in UTC.
    pub fn serialize<S: Serializer>(t: &EventTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.to_rfc3339())
    }

    /// Reads RFC 3339 text or an epoch number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EventTime, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::String(s) => parse_timestamp(s, NaiveZone::default(), EventTime(0))
                .ok_or_else(|| de::Error::custom(format!("invalid timestamp `{s}`"))),
            serde_json::Value::Number(n) => n
                .as_f64()
                .and_then(crate::time::epoch_number_to_time)
                .ok_or_else(|| de::Error::custom(format!("invalid epoch `{n}`"))),
            other => Err(de::Error::custom(format!("expected a timestamp, found {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_with_iso_times() {
        let mut group = Map::new();
        group.insert("sourceipaddress".into(), json!("10.1.1.1"));
        let a = Alert {
            id: Alert::make_id("r1", &group, EventTime(1_000)),
            utctimestamp: EventTime(1_000),
            severity: "WARNING".into(),
            category: "bruteforce".into(),
            summary: "s".into(),
            tags: vec!["ssh".into()],
            rule: AlertRule { id: "r1".into(), title: "t".into(), level: None, kind: "event_count".into() },
            group,
            window: AlertWindow { start: EventTime(0), end: EventTime(1_000) },
            value: 5.0,
            events: vec![EventRef { id: EventId(7), utctimestamp: EventTime(500) }],
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["value"].to_string(), "5", "whole values are written as integers");
        assert_eq!(serde_json::to_value(Alert { value: 2.5, ..a.clone() }).unwrap()["value"], json!(2.5));
        assert_eq!(v["utctimestamp"], json!("1970-01-01T00:00:01.000+00:00"));
        assert_eq!(v["events"][0]["id"], json!("00000000000000000000000000000007"));
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn ids_depend_on_rule_group_and_time() {
        let g = Map::new();
        let a = Alert::make_id("r", &g, EventTime(1));
        assert_eq!(a, Alert::make_id("r", &g, EventTime(1)));
        assert_ne!(a, Alert::make_id("r", &g, EventTime(2)));
        assert_ne!(a, Alert::make_id("s", &g, EventTime(1)));
    }
}
