//! `zeek`: shapes Zeek (Bro) JSON log records (`conn`, `dns`, `http`, `ssl`, `notice`, and
//! any other with the `id.*` connection tuple) as MozDef's `broFixup` did.
//!
//! The record arrives normalized: `ts` became `utctimestamp`, notice's `msg` became
//! `summary`, and the rest sits in `details`. This plugin moves `id.orig_h`/`id.orig_p`/
//! `id.resp_h`/`id.resp_p` (and notice's `src`/`dst`/`p`) to `details.sourceipaddress`,
//! `sourceport`, `destinationipaddress`, `destinationport`, removes the dots from every
//! other key in `details` (Elasticsearch reads a dot as nesting), names the log (Zeek's
//! `_path` when the record has it, else guessed from its fields) in `source` and
//! `details.zeeklog`, sets `category` `bro` and tags `zeek`, `bro_<log>`, and writes a one-line
//! `summary` (notice keeps its message after the note name).

use super::fields::{PARSER_PRIORITY, add_tag, clean_keys, details, set_text};
use super::{Plugin, PluginEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Options of the `zeek` plugin.
///
/// It has none of its own: `name`, `enabled`, `priority` (default 7) and `terms` are the
/// settings every `plugins:` entry has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZeekConfig {}

/// The registration terms, unless the entry gives its own `terms`.
fn default_terms() -> Vec<String> {
    ["id.orig_h", "_path", "note", "zeek", "bro"].map(String::from).to_vec()
}

impl ZeekConfig {
    /// Every problem with these options.
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The `zeek` plugin: see the module docs.
#[derive(Debug)]
pub struct ZeekPlugin;

impl ZeekPlugin {
    /// A plugin with these options.
    pub fn new(_cfg: ZeekConfig) -> ZeekPlugin {
        ZeekPlugin
    }
}

/// Zeek's names → MozDef's.
const TUPLE: &[(&str, &str)] = &[
    ("id.orig_h", "sourceipaddress"),
    ("id.orig_p", "sourceport"),
    ("id.resp_h", "destinationipaddress"),
    ("id.resp_p", "destinationport"),
    ("src", "sourceipaddress"),
    ("dst", "destinationipaddress"),
    ("p", "destinationport"),
];

impl Plugin for ZeekPlugin {
    fn name(&self) -> &str {
        "zeek"
    }

    fn terms(&self) -> Vec<String> {
        default_terms()
    }

    fn priority(&self) -> i32 {
        PARSER_PRIORITY
    }

    fn process(&self, event: &mut PluginEvent<'_>) -> Verdict {
        let doc = &mut *event.doc;
        let Some(Value::Object(d)) = doc.get("details") else { return Verdict::Keep };
        let has_tuple = d.contains_key("id.orig_h") || d.contains_key("id.resp_h") || (d.contains_key("note") && d.contains_key("src"));
        let path = d.get("_path").and_then(Value::as_str).map(str::to_string);
        // A record without the tuple, `_path` or a notice's `note` and `src` is not Zeek's
        // (the term `zeek` may be a tag).
        if !has_tuple && path.is_none() {
            return Verdict::Keep;
        }
        let log = path.unwrap_or_else(|| guess_log(d).to_string());
        let message = doc.get("summary").and_then(Value::as_str).unwrap_or("").to_string();
        // http's `host` was taken as the event's hostname by the normalizer.
        let host = doc.get("hostname").and_then(Value::as_str).unwrap_or("").to_string();
        let d = details(doc);
        let old = std::mem::take(d);
        let mut out = Map::with_capacity(old.len() + 2);
        let mut rest = Map::with_capacity(old.len());
        for (k, v) in old {
            match TUPLE.iter().find(|(z, _)| *z == k) {
                Some((_, m)) if !out.contains_key(*m) => {
                    out.insert((*m).to_string(), v);
                }
                _ => {
                    rest.insert(k, v);
                }
            }
        }
        if let Value::Object(rest) = clean_keys(Value::Object(rest), false) {
            for (k, v) in rest {
                out.entry(k).or_insert(v);
            }
        }
        out.insert("zeeklog".into(), log.clone().into());
        let summary = summarize(&log, &out, &message, &host);
        *d = out;
        set_text(doc, "summary", summary);
        set_text(doc, "category", "bro");
        set_text(doc, "source", log.clone());
        add_tag(doc, "zeek");
        add_tag(doc, &format!("bro_{log}"));
        Verdict::Keep
    }
}

/// Which log a record without `_path` came from, by its fields.
fn guess_log(d: &Map<String, Value>) -> &'static str {
    let has = |k: &str| d.contains_key(k);
    if has("note") {
        "notice"
    } else if has("qtype_name") || has("query") && has("rcode") {
        "dns"
    } else if has("method") && has("uri") {
        "http"
    } else if has("server_name") || has("cipher") || has("ja3") {
        "ssl"
    } else if has("conn_state") || has("history") || has("orig_bytes") {
        "conn"
    } else {
        "zeek"
    }
}

fn s(d: &Map<String, Value>, k: &str) -> String {
    match d.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_string(),
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect::<Vec<_>>().join(","),
        Some(v) => v.to_string(),
    }
}

fn summarize(log: &str, d: &Map<String, Value>, message: &str, host: &str) -> String {
    let src = format!("{}:{}", s(d, "sourceipaddress"), s(d, "sourceport"));
    let dst = format!("{}:{}", s(d, "destinationipaddress"), s(d, "destinationport"));
    match log {
        "conn" => format!("{src} -> {dst} {} {} {} bytes out, {} bytes in", s(d, "proto"), s(d, "conn_state"), s(d, "orig_bytes"), s(d, "resp_bytes")),
        "dns" => format!("DNS {} {} -> {} ({}) {src} -> {dst}", s(d, "qtype_name"), s(d, "query"), s(d, "answers"), s(d, "rcode_name")),
        "http" => {
            let host = if d.contains_key("host") { s(d, "host") } else { host.to_string() };
            format!("HTTP {} {host}{} {} {src} -> {dst}", s(d, "method"), s(d, "uri"), s(d, "status_code"))
        }
        "ssl" => format!("SSL {} {} {src} -> {dst} established={}", s(d, "version"), s(d, "server_name"), s(d, "established")),
        "notice" => format!("{}: {message} {src} -> {dst}", s(d, "note")),
        _ => format!("zeek {log} {src} -> {dst}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::kept;
    use rampart_core::{EventId, Normalizer};
    use serde_json::json;

    /// As the pipeline hands it over: normalized first.
    fn run(record: Value) -> Map<String, Value> {
        let e = Normalizer::default().normalize(record, EventId(1)).unwrap();
        kept(&ZeekPlugin::new(ZeekConfig::default()), Value::Object(e.doc))
    }

    #[test]
    fn conn_record() {
        let d = run(json!({"ts": 1700000000.25, "uid": "CHhAvVGS1DHFjwGM9", "id.orig_h": "10.1.2.3", "id.orig_p": 51544, "id.resp_h": "93.184.216.34", "id.resp_p": 443, "proto": "tcp", "service": "ssl", "duration": 1.52, "orig_bytes": 517, "resp_bytes": 4301, "conn_state": "SF", "local_orig": true, "missed_bytes": 0, "history": "ShADadfF", "orig_pkts": 12, "resp_pkts": 10, "tunnel_parents": []}));
        assert_eq!(d["category"], "bro");
        assert_eq!(d["source"], "conn");
        assert_eq!(d["tags"], json!(["zeek", "bro_conn"]));
        let det = &d["details"];
        assert_eq!(det["sourceipaddress"], "10.1.2.3");
        assert_eq!(det["sourceport"], 51544);
        assert_eq!(det["destinationipaddress"], "93.184.216.34");
        assert_eq!(det["destinationport"], 443);
        assert!(det.get("id.orig_h").is_none() && det.get("idorig_h").is_none());
        assert_eq!(det["uid"], "CHhAvVGS1DHFjwGM9");
        assert_eq!(d["summary"], "10.1.2.3:51544 -> 93.184.216.34:443 tcp SF 517 bytes out, 4301 bytes in");
        assert_eq!(d["utctimestamp"], "2023-11-14T22:13:20.250+00:00");
    }

    #[test]
    fn dns_http_ssl_and_notice() {
        let d = run(json!({"_path": "dns", "ts": "2023-11-14T22:13:20.250Z", "uid": "C1", "id.orig_h": "10.1.2.3", "id.orig_p": 40001, "id.resp_h": "10.0.0.53", "id.resp_p": 53, "proto": "udp", "trans_id": 4242, "query": "updates.example.org", "qclass": 1, "qtype": 1, "qtype_name": "A", "rcode": 0, "rcode_name": "NOERROR", "answers": ["198.51.100.80", "198.51.100.81"], "TTLs": [60.0, 60.0], "rejected": false}));
        assert_eq!(d["summary"], "DNS A updates.example.org -> 198.51.100.80,198.51.100.81 (NOERROR) 10.1.2.3:40001 -> 10.0.0.53:53");
        assert_eq!(d["details"]["zeeklog"], "dns");
        assert_eq!(d["details"]["_path"], "dns");

        let d = run(json!({"ts": 1700000001.0, "uid": "C2", "id.orig_h": "10.1.2.3", "id.orig_p": 40002, "id.resp_h": "203.0.113.10", "id.resp_p": 80, "trans_depth": 1, "method": "GET", "host": "203.0.113.10", "uri": "/wp-login.php", "user_agent": "curl/8.4.0", "status_code": 404, "resp_mime_types": ["text/html"]}));
        assert_eq!(d["source"], "http");
        assert_eq!(d["summary"], "HTTP GET 203.0.113.10/wp-login.php 404 10.1.2.3:40002 -> 203.0.113.10:80");
        // The normalizer took `host` as the event's hostname; the summary still names it.
        assert_eq!(d["hostname"], "203.0.113.10");

        let d = run(json!({"ts": 1700000002.0, "uid": "C3", "id.orig_h": "10.1.2.3", "id.orig_p": 40003, "id.resp_h": "93.184.216.34", "id.resp_p": 443, "version": "TLSv13", "cipher": "TLS_AES_128_GCM_SHA256", "server_name": "www.example.com", "established": true, "ssl.history": "CsiI"}));
        assert_eq!(d["source"], "ssl");
        assert_eq!(d["details"]["sslhistory"], "CsiI", "dots are removed from the other keys");

        let d = run(json!({"ts": 1700000003.0, "note": "Scan::Port_Scan", "msg": "10.9.9.9 scanned at least 15 unique ports of host 10.1.2.3 in 0m2s", "src": "10.9.9.9", "dst": "10.1.2.3", "actions": ["Notice::ACTION_LOG"], "suppress_for": 3600.0}));
        assert_eq!(d["source"], "notice");
        assert_eq!(d["details"]["sourceipaddress"], "10.9.9.9");
        assert_eq!(d["summary"], "Scan::Port_Scan: 10.9.9.9 scanned at least 15 unique ports of host 10.1.2.3 in 0m2s 10.9.9.9:- -> 10.1.2.3:-");
    }

    #[test]
    fn records_that_are_not_zeek_are_left_alone() {
        let d = run(json!({"summary": "zeek restarted", "tags": ["zeek"], "details": {"node": "worker-1"}}));
        assert_eq!(d["summary"], "zeek restarted");
        assert_eq!(d["category"], "event");
        assert_eq!(d["details"], json!({"node": "worker-1"}));
    }
}
