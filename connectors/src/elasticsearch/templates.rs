//! Index layout: the composable index templates (`PUT _index_template/NAME`, Elasticsearch
//! 7.8+ and OpenSearch 1+ read the same JSON), the daily and monthly index names, and the
//! plan that moves the `events` / `events-previous` aliases when a newer day appears. All
//! pure functions of the config and of what the cluster answered.

use chrono::{Days, NaiveDate};
use rampart_core::EventTime;
use serde_json::{json, Value};

/// Template priority: above the built-in templates of Elasticsearch 8 (`logs-*-*` and
/// friends use 100), so a prefix such as `logs` still gets Rampart's mappings.
const PRIORITY: u32 = 200;

/// `{prefix}-YYYYMMDD`, by the record's own UTC day.
pub fn event_index(prefix: &str, t: EventTime) -> String {
    format!("{prefix}-{}", t.day_stamp())
}

/// `{prefix}-YYYYMM`, by the record's own UTC month.
pub fn alert_index(prefix: &str, t: EventTime) -> String {
    format!("{prefix}-{}", t.to_datetime().format("%Y%m"))
}

/// The day of a daily index name `{prefix}-YYYYMMDD`, or `None` for anything else.
pub fn index_day(prefix: &str, index: &str) -> Option<NaiveDate> {
    let stamp = index.strip_prefix(prefix)?.strip_prefix('-')?;
    if stamp.len() != 8 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(stamp, "%Y%m%d").ok()
}

/// The daily index name for `day`.
pub fn day_index(prefix: &str, day: NaiveDate) -> String {
    format!("{prefix}-{}", day.format("%Y%m%d"))
}

/// The alias that follows the previous day (`{events_index}-previous`).
pub fn previous_alias(prefix: &str) -> String {
    format!("{prefix}-previous")
}

/// Mappings shared by the events and alerts templates: every string is a `keyword` (no
/// date or number guessing, which makes a field's type depend on its first value), fields
/// named `*ipaddress` are `ip` and `*geopoint` are `geo_point`, both tolerating bad values,
/// and the MozDef time fields are dates.
fn mappings(extra_dates: &[&str]) -> Value {
    let mut properties = serde_json::Map::new();
    for f in ["@timestamp", "utctimestamp"].iter().chain(extra_dates) {
        properties.insert((*f).to_string(), json!({"type": "date"}));
    }
    properties.insert("summary".into(), json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}}));
    json!({
        "date_detection": false,
        "numeric_detection": false,
        "dynamic_templates": [
            {"ipaddress": {"match": "*ipaddress", "match_mapping_type": "string", "mapping": {"type": "ip", "ignore_malformed": true}}},
            {"geopoint": {"match": "*geopoint", "mapping": {"type": "geo_point", "ignore_malformed": true}}},
            {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 8191}}}
        ],
        "properties": properties
    })
}

fn settings(shards: u32, replicas: u32) -> Value {
    json!({"number_of_shards": shards, "number_of_replicas": replicas})
}

/// The template for `{prefix}-*` daily event indices. No alias here: `{prefix}` and
/// `{prefix}-previous` move from day to day (see [`plan_aliases`]).
pub fn events_template(prefix: &str, shards: u32, replicas: u32) -> Value {
    json!({
        "index_patterns": [format!("{prefix}-*")],
        "priority": PRIORITY,
        "template": {
            "settings": settings(shards, replicas),
            "mappings": mappings(&["receivedtimestamp"]),
        },
        "_meta": {"managed_by": "rampart", "what": "daily event indices"}
    })
}

/// The template for `{prefix}-*` monthly alert indices, each behind the `{prefix}` alias.
pub fn alerts_template(prefix: &str, shards: u32, replicas: u32) -> Value {
    json!({
        "index_patterns": [format!("{prefix}-*")],
        "priority": PRIORITY,
        "template": {
            "settings": settings(shards, replicas),
            "mappings": alert_mappings(),
            "aliases": {prefix: {}}
        },
        "_meta": {"managed_by": "rampart", "what": "monthly alert indices"}
    })
}

/// The alerts' mappings: the shared ones, plus `value` as a `double`. Without it, the first
/// alert (usually a whole count) would map `value` as `long` and later means or sums such
/// as 2.5 would be truncated.
fn alert_mappings() -> Value {
    let mut m = mappings(&["window.start", "window.end", "events.utctimestamp"]);
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.insert("value".into(), json!({"type": "double"}));
    }
    m
}

/// The template for the dead-letter index: the rejected document is kept as text, so any
/// document fits whatever broke it.
pub fn dead_letter_template(index: &str, shards: u32, replicas: u32) -> Value {
    json!({
        "index_patterns": [index],
        "priority": PRIORITY,
        "template": {
            "settings": settings(shards, replicas),
            "mappings": {
                "dynamic": false,
                "properties": {
                    "@timestamp": {"type": "date"},
                    "index": {"type": "keyword"},
                    "id": {"type": "keyword"},
                    "reason": {"type": "text"},
                    "document": {"type": "text"}
                }
            }
        },
        "_meta": {"managed_by": "rampart", "what": "documents the cluster refused to index"}
    })
}

/// Which indices hold the two moving aliases now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliasHolders {
    /// Indices holding `{prefix}`.
    pub current: Vec<String>,
    /// Indices holding `{prefix}-previous`.
    pub previous: Vec<String>,
}

/// Reads a `GET _alias/{prefix},{prefix}-previous` answer. Both distributions answer 404
/// when a name is missing, with the holders of the other name still listed beside
/// `error`/`status`, so the body is read whatever the status.
pub fn parse_alias_holders(body: &Value, prefix: &str) -> AliasHolders {
    let previous = previous_alias(prefix);
    let mut h = AliasHolders::default();
    if let Some(indices) = body.as_object() {
        for (index, v) in indices {
            let Some(aliases) = v.get("aliases").and_then(Value::as_object) else { continue };
            if aliases.contains_key(prefix) {
                h.current.push(index.clone());
            }
            if aliases.contains_key(&previous) {
                h.previous.push(index.clone());
            }
        }
    }
    h.current.sort();
    h.previous.sort();
    h
}

/// The `_aliases` actions after the daily index of `day` was created: if it is the newest
/// day (not older than the day `{prefix}` points at), `{prefix}` moves to it and
/// `{prefix}-previous` to the day before (or off, when that day has no index); if it is the
/// day just before the newest (late data arriving after midnight), `{prefix}-previous`
/// moves to it; otherwise nothing changes. Empty when the aliases are already right.
pub fn plan_aliases(prefix: &str, holders: &AliasHolders, day: NaiveDate, day_before_exists: bool) -> Vec<Value> {
    let newest = holders.current.iter().filter_map(|i| index_day(prefix, i)).max();
    let before = day.checked_sub_days(Days::new(1));
    let (current, previous) = match newest {
        Some(n) if day < n => {
            if before.is_some() && n.checked_sub_days(Days::new(1)) == Some(day) {
                (None, Some(Some(day_index(prefix, day))))
            } else {
                return Vec::new();
            }
        }
        _ => (Some(day_index(prefix, day)), Some(before.filter(|_| day_before_exists).map(|d| day_index(prefix, d)))),
    };
    let mut actions = Vec::new();
    if let Some(target) = current {
        move_alias(&mut actions, prefix, &holders.current, Some(&target));
    }
    if let Some(target) = previous {
        move_alias(&mut actions, &previous_alias(prefix), &holders.previous, target.as_deref());
    }
    actions
}

fn move_alias(actions: &mut Vec<Value>, alias: &str, holders: &[String], target: Option<&str>) {
    for h in holders {
        if Some(h.as_str()) != target {
            actions.push(json!({"remove": {"index": h, "alias": alias}}));
        }
    }
    if let Some(t) = target {
        if !holders.iter().any(|h| h == t) {
            actions.push(json!({"add": {"index": t, "alias": alias}}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y%m%d").unwrap()
    }

    fn t(s: &str) -> EventTime {
        EventTime::from_datetime(chrono::DateTime::parse_from_rfc3339(s).unwrap())
    }

    #[test]
    fn indices_are_named_by_the_records_own_utc_day_and_month() {
        assert_eq!(event_index("events", t("2026-03-01T23:59:59.999Z")), "events-20260301");
        assert_eq!(event_index("events", t("2026-03-02T00:30:00+02:00")), "events-20260301", "UTC day, not local");
        assert_eq!(event_index("t1-events", t("2026-12-31T12:00:00Z")), "t1-events-20261231");
        assert_eq!(alert_index("alerts", t("2026-02-28T23:59:59Z")), "alerts-202602");
        assert_eq!(alert_index("alerts", t("2026-03-01T00:00:00Z")), "alerts-202603");
        assert_eq!(index_day("events", "events-20260301"), Some(day("20260301")));
        assert_eq!(index_day("events", "events-previous"), None);
        assert_eq!(index_day("events", "events-2026030"), None);
        assert_eq!(index_day("events", "events-20261301"), None);
        assert_eq!(index_day("events", "eventsx-20260301"), None);
        assert_eq!(index_day("ev", "events-20260301"), None);
    }

    #[test]
    fn templates_carry_the_mappings_settings_and_aliases() {
        let e = events_template("t1-events", 2, 0);
        assert_eq!(e["index_patterns"], json!(["t1-events-*"]));
        assert_eq!(e["template"]["settings"], json!({"number_of_shards": 2, "number_of_replicas": 0}));
        let m = &e["template"]["mappings"];
        for f in ["@timestamp", "utctimestamp", "receivedtimestamp"] {
            assert_eq!(m["properties"][f]["type"], "date", "{f}");
        }
        assert_eq!(m["properties"]["summary"], json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}}));
        assert_eq!(m["date_detection"], false);
        let dt = m["dynamic_templates"].as_array().unwrap();
        let names: Vec<_> = dt.iter().map(|t| t.as_object().unwrap().keys().next().unwrap().as_str()).collect();
        assert_eq!(names, ["ipaddress", "geopoint", "strings"], "specific patterns before the catch-all");
        assert_eq!(dt[0]["ipaddress"]["match"], "*ipaddress");
        assert_eq!(dt[0]["ipaddress"]["mapping"], json!({"type": "ip", "ignore_malformed": true}));
        assert_eq!(dt[1]["geopoint"]["mapping"], json!({"type": "geo_point", "ignore_malformed": true}));
        assert_eq!(dt[2]["strings"]["mapping"], json!({"type": "keyword", "ignore_above": 8191}));
        assert!(e["template"].get("aliases").is_none(), "event aliases move by day");

        let a = alerts_template("alerts", 1, 1);
        assert_eq!(a["index_patterns"], json!(["alerts-*"]));
        assert_eq!(a["template"]["aliases"], json!({"alerts": {}}));
        assert_eq!(a["template"]["mappings"]["properties"]["window.end"]["type"], "date");
        assert_eq!(a["template"]["mappings"]["properties"]["value"]["type"], "double", "means must not be truncated to a long");
        assert_eq!(a["template"]["mappings"]["dynamic_templates"], m["dynamic_templates"]);

        let d = dead_letter_template("rampart-deadletter", 1, 1);
        assert_eq!(d["index_patterns"], json!(["rampart-deadletter"]));
        assert_eq!(d["template"]["mappings"]["properties"]["document"]["type"], "text");
    }

    fn holders(current: &[&str], previous: &[&str]) -> AliasHolders {
        AliasHolders { current: current.iter().map(|s| s.to_string()).collect(), previous: previous.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn aliases_follow_the_newest_day() {
        // First day ever, no day before: `events` goes on, `events-previous` stays off.
        assert_eq!(plan_aliases("events", &AliasHolders::default(), day("20260301"), false), [json!({"add": {"index": "events-20260301", "alias": "events"}})]);
        // Rollover.
        let h = holders(&["events-20260301"], &[]);
        assert_eq!(
            plan_aliases("events", &h, day("20260302"), true),
            [
                json!({"remove": {"index": "events-20260301", "alias": "events"}}),
                json!({"add": {"index": "events-20260302", "alias": "events"}}),
                json!({"add": {"index": "events-20260301", "alias": "events-previous"}}),
            ]
        );
        // Already right (a restart on the same day): nothing to do.
        let h = holders(&["events-20260302"], &["events-20260301"]);
        assert!(plan_aliases("events", &h, day("20260302"), true).is_empty());
        // A gap: the day before has no index, so `events-previous` comes off the old one.
        assert_eq!(
            plan_aliases("events", &h, day("20260305"), false),
            [
                json!({"remove": {"index": "events-20260302", "alias": "events"}}),
                json!({"add": {"index": "events-20260305", "alias": "events"}}),
                json!({"remove": {"index": "events-20260301", "alias": "events-previous"}}),
            ]
        );
        // Late data for the day before the newest: only `events-previous` moves to it.
        let h = holders(&["events-20260305"], &[]);
        assert_eq!(plan_aliases("events", &h, day("20260304"), false), [json!({"add": {"index": "events-20260304", "alias": "events-previous"}})]);
        // A replay of an old day moves nothing.
        assert!(plan_aliases("events", &h, day("20260101"), true).is_empty());
    }

    #[test]
    fn alias_answers_are_read_with_or_without_a_missing_name() {
        let both = json!({"events-20260302": {"aliases": {"events": {}}}, "events-20260301": {"aliases": {"events-previous": {}}}});
        assert_eq!(parse_alias_holders(&both, "events"), holders(&["events-20260302"], &["events-20260301"]));
        let partial = json!({"error": "alias [events-previous] missing", "status": 404, "events-20260302": {"aliases": {"events": {}}}});
        assert_eq!(parse_alias_holders(&partial, "events"), holders(&["events-20260302"], &[]));
        let none = json!({"error": "alias [events, events-previous] missing", "status": 404});
        assert_eq!(parse_alias_holders(&none, "events"), AliasHolders::default());
    }
}
