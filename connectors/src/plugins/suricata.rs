//! `suricata`: shapes Suricata EVE JSON records (`alert`, `dns`, `http`, `tls`, `flow`, and
//! any other `event_type`) as MozDef's `suricataFixup` did.
//!
//! The record arrives normalized: `timestamp` became `utctimestamp`, `event_type` became
//! `category`, the sensor's `host` became `hostname`, and the rest sits in `details`. This
//! plugin moves `src_ip`/`src_port`/`dest_ip`/`dest_port` to `details.sourceipaddress`,
//! `sourceport`, `destinationipaddress`, `destinationport`, keeps the EVE type in
//! `details.eventtype`, sets `category` `suricata` (`source` `suricata`, tags `suricata`,
//! `suricata_<type>`) and writes a one-line `summary`: an alert's is its `alert.signature`
//! with the flow, and its `alert.severity` (1 high, 2 medium, 3 low) becomes the event's
//! `severity` (`CRITICAL`, `WARNING`, `NOTICE`) and `details.alertcategory`.

use super::fields::{PARSER_PRIORITY, add_tag, details, set_text};
use super::{Plugin, PluginEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Options of the `suricata` plugin.
///
/// It has none of its own: `name`, `enabled`, `priority` (default 7) and `terms` are the
/// settings every `plugins:` entry has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SuricataConfig {}

/// The registration terms, unless the entry gives its own `terms`.
fn default_terms() -> Vec<String> {
    ["flow_id", "suricata"].map(String::from).to_vec()
}

impl SuricataConfig {
    /// Every problem with these options.
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The `suricata` plugin: see the module docs.
#[derive(Debug)]
pub struct SuricataPlugin;

impl SuricataPlugin {
    /// A plugin with these options.
    pub fn new(_cfg: SuricataConfig) -> SuricataPlugin {
        SuricataPlugin
    }
}

const TUPLE: &[(&str, &str)] = &[("src_ip", "sourceipaddress"), ("src_port", "sourceport"), ("dest_ip", "destinationipaddress"), ("dest_port", "destinationport")];

impl Plugin for SuricataPlugin {
    fn name(&self) -> &str {
        "suricata"
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
        if !d.contains_key("src_ip") || !(d.contains_key("flow_id") || d.contains_key("event_type")) {
            return Verdict::Keep;
        }
        // Normalization moved `event_type` to `category`; a sender's own `category` would
        // have left it in details.
        let kind = d.get("event_type").and_then(Value::as_str).or_else(|| doc.get("category").and_then(Value::as_str)).unwrap_or("event").to_string();
        let d = details(doc);
        for (eve, mozdef) in TUPLE {
            if let Some(v) = d.remove(*eve) {
                d.entry(*mozdef).or_insert(v);
            }
        }
        d.insert("eventtype".into(), kind.clone().into());
        let mut severity = None;
        if kind == "alert" {
            let alert = d.get("alert").and_then(Value::as_object);
            severity = alert.and_then(|a| a.get("severity")).and_then(Value::as_u64).map(|n| match n {
                1 => "CRITICAL",
                2 => "WARNING",
                _ => "NOTICE",
            });
            if let Some(c) = alert.and_then(|a| a.get("category")).cloned() {
                d.insert("alertcategory".into(), c);
            }
        }
        let summary = summarize(&kind, d);
        set_text(doc, "summary", summary);
        set_text(doc, "category", "suricata");
        set_text(doc, "source", "suricata");
        if let Some(sev) = severity {
            set_text(doc, "severity", sev);
        }
        add_tag(doc, "suricata");
        add_tag(doc, &format!("suricata_{kind}"));
        Verdict::Keep
    }
}

/// `d[a][b]` as text, `-` when absent.
fn at(d: &Map<String, Value>, a: &str, b: &str) -> String {
    let v = if b.is_empty() { d.get(a) } else { d.get(a).and_then(|o| o.get(b)) };
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_string(),
        Some(v) => v.to_string(),
    }
}

fn summarize(kind: &str, d: &Map<String, Value>) -> String {
    let flow = format!("{} {}:{} -> {}:{}", at(d, "proto", ""), at(d, "sourceipaddress", ""), at(d, "sourceport", ""), at(d, "destinationipaddress", ""), at(d, "destinationport", ""));
    match kind {
        "alert" => format!("{} {flow}", at(d, "alert", "signature")),
        "dns" => format!("DNS {} {} {} {flow}", at(d, "dns", "type"), at(d, "dns", "rrtype"), at(d, "dns", "rrname")),
        "http" => format!("HTTP {} {}{} {} {flow}", at(d, "http", "http_method"), at(d, "http", "hostname"), at(d, "http", "url"), at(d, "http", "status")),
        "tls" => format!("TLS {} {} {flow}", at(d, "tls", "version"), at(d, "tls", "sni")),
        "flow" => format!("flow {flow} {} {} bytes out, {} bytes in", at(d, "flow", "state"), at(d, "flow", "bytes_toserver"), at(d, "flow", "bytes_toclient")),
        other => format!("{other} {flow}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::kept;
    use rampart_core::{EventId, Normalizer};
    use serde_json::json;

    fn run(record: Value) -> Map<String, Value> {
        let e = Normalizer::default().normalize(record, EventId(1)).unwrap();
        kept(&SuricataPlugin::new(SuricataConfig::default()), Value::Object(e.doc))
    }

    #[test]
    fn alert_signature_becomes_the_summary() {
        let d = run(json!({"timestamp": "2023-11-14T22:13:20.250713+0000", "flow_id": 1187242936520310u64, "in_iface": "eth1", "event_type": "alert", "src_ip": "198.51.100.77", "src_port": 44102, "dest_ip": "10.1.2.30", "dest_port": 22, "proto": "TCP", "community_id": "1:Sk0Lz4b7aYpJ9hIxTEMkNIv7oBY=", "alert": {"action": "allowed", "gid": 1, "signature_id": 2001219, "rev": 20, "signature": "ET SCAN Potential SSH Scan", "category": "Attempted Information Leak", "severity": 2}, "host": "ids-1"}));
        assert_eq!(d["summary"], "ET SCAN Potential SSH Scan TCP 198.51.100.77:44102 -> 10.1.2.30:22");
        assert_eq!(d["category"], "suricata");
        assert_eq!(d["severity"], "WARNING");
        assert_eq!(d["hostname"], "ids-1");
        assert_eq!(d["tags"], json!(["suricata", "suricata_alert"]));
        let det = &d["details"];
        assert_eq!(det["eventtype"], "alert");
        assert_eq!(det["sourceipaddress"], "198.51.100.77");
        assert_eq!(det["destinationport"], 22);
        assert_eq!(det["alertcategory"], "Attempted Information Leak");
        assert_eq!(det["alert"]["signature_id"], 2001219);
        assert!(det.get("src_ip").is_none());
    }

    #[test]
    fn dns_http_tls_flow() {
        let base = |kind: &str, extra: Value| {
            let mut r = json!({"timestamp": "2023-11-14T22:13:21.000000+0000", "flow_id": 42, "event_type": kind, "src_ip": "10.1.2.3", "src_port": 50000, "dest_ip": "10.0.0.53", "dest_port": 53, "proto": "UDP"});
            r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            run(r)
        };
        let d = base("dns", json!({"dns": {"type": "query", "id": 4242, "rrname": "updates.example.org", "rrtype": "A", "tx_id": 0}}));
        assert_eq!(d["summary"], "DNS query A updates.example.org UDP 10.1.2.3:50000 -> 10.0.0.53:53");
        let d = base("http", json!({"http": {"hostname": "intranet.example.com", "url": "/login", "http_user_agent": "Mozilla/5.0", "http_method": "POST", "protocol": "HTTP/1.1", "status": 302, "length": 0}}));
        assert_eq!(d["summary"], "HTTP POST intranet.example.com/login 302 UDP 10.1.2.3:50000 -> 10.0.0.53:53");
        assert_eq!(d["severity"], "INFO", "only alerts set a severity");
        let d = base("tls", json!({"tls": {"subject": "CN=www.example.com", "issuerdn": "CN=R3", "sni": "www.example.com", "version": "TLS 1.3"}}));
        assert_eq!(d["summary"], "TLS TLS 1.3 www.example.com UDP 10.1.2.3:50000 -> 10.0.0.53:53");
        let d = base("flow", json!({"flow": {"pkts_toserver": 3, "pkts_toclient": 2, "bytes_toserver": 210, "bytes_toclient": 320, "state": "established", "reason": "timeout"}}));
        assert_eq!(d["summary"], "flow UDP 10.1.2.3:50000 -> 10.0.0.53:53 established 210 bytes out, 320 bytes in");
        assert_eq!(d["tags"], json!(["suricata", "suricata_flow"]));
    }

    #[test]
    fn stats_and_non_eve_records_are_left_alone() {
        let d = run(json!({"timestamp": "2023-11-14T22:13:21.000000+0000", "event_type": "stats", "stats": {"uptime": 120}}));
        assert_eq!(d["category"], "stats");
        assert!(d["details"].get("eventtype").is_none());
        let d = run(json!({"summary": "suricata restarted", "details": {"flow_id": 1}}));
        assert_eq!(d["summary"], "suricata restarted");
        assert_eq!(d["details"], json!({"flow_id": 1}));
    }
}
