//! `access_log`: reads web server access log lines (NCSA common and combined log format, as
//! nginx and Apache write them by default, optionally led by Apache's `vhost:port`) from the
//! `summary` of an event whose `processname` is a web server.
//!
//! `CLIENT IDENT USER [10/Oct/2023:13:55:36 -0700] "METHOD PATH PROTOCOL" STATUS BYTES
//! ["REFERRER" "USER AGENT"]` sets `details.sourceipaddress`, `details.remoteuser`,
//! `details.accesstime` (ISO-8601 UTC), `details.method`, `details.path`, `details.query`
//! (after `?`), `details.protocol`, `details.status` and `details.bytes` (numbers; `-` bytes
//! is 0), `details.referrer`, `details.useragent`, `details.vhost`; `category` `web`; tag
//! `accesslog`. A request line that is not `METHOD PATH PROTOCOL` (scanners send TLS
//! handshakes to port 80) is kept whole in `details.request`. Error log lines and anything
//! else are left as they were.

use super::fields::{PARSER_PRIORITY, add_tag, details, is_ip, set_text, text};
use super::{Plugin, PluginEvent, Verdict};
use chrono::DateTime;
use rampart_core::EventTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Options of the `access_log` plugin.
///
/// It has none of its own: `name`, `enabled`, `priority` (default 7) and `terms` are the
/// settings every `plugins:` entry has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {}

/// The registration terms, unless the entry gives its own `terms`.
fn default_terms() -> Vec<String> {
    ["nginx", "apache", "apache2", "httpd"].map(String::from).to_vec()
}

impl AccessLogConfig {
    /// Every problem with these options.
    pub fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The `access_log` plugin: see the module docs.
#[derive(Debug)]
pub struct AccessLogPlugin;

impl AccessLogPlugin {
    /// A plugin with these options.
    pub fn new(_cfg: AccessLogConfig) -> AccessLogPlugin {
        AccessLogPlugin
    }
}

impl Plugin for AccessLogPlugin {
    fn name(&self) -> &str {
        "access_log"
    }

    fn terms(&self) -> Vec<String> {
        default_terms()
    }

    fn priority(&self) -> i32 {
        PARSER_PRIORITY
    }

    fn process(&self, event: &mut PluginEvent<'_>) -> Verdict {
        let Some(fields) = text(event.doc, "summary").and_then(parse) else { return Verdict::Keep };
        let doc = &mut *event.doc;
        set_text(doc, "category", "web");
        add_tag(doc, "accesslog");
        let d = details(doc);
        for (k, v) in fields {
            d.insert(k.to_string(), v);
        }
        Verdict::Keep
    }
}

/// Takes one space-delimited word.
fn word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    Some(s.split_once(' ').unwrap_or((s, "")))
}

/// Takes one `"quoted"` field (with `\"` escapes, as nginx and Apache write them), unescaped.
fn quoted(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => {
                    if e != '"' && e != '\\' {
                        out.push('\\');
                    }
                    out.push(e);
                }
                None => return None,
            },
            '"' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

fn dash(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

fn parse(line: &str) -> Option<Vec<(&'static str, Value)>> {
    let mut fields: Vec<(&'static str, Value)> = Vec::new();
    let (mut client, mut rest) = word(line)?;
    if !is_ip(client) {
        // Apache's vhost_combined: `www.example.com:443 CLIENT …`.
        let (next, after) = word(rest)?;
        if !is_ip(next) || client.contains('[') {
            return None;
        }
        fields.push(("vhost", client.into()));
        (client, rest) = (next, after);
    }
    let (_ident, rest) = word(rest)?;
    let (user, rest) = word(rest)?;
    let rest = rest.trim_start().strip_prefix('[')?;
    let (time, rest) = rest.split_once(']')?;
    let when = DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z").ok()?;
    let (request, rest) = quoted(rest)?;
    let (status, rest) = word(rest)?;
    let status: u16 = status.parse().ok().filter(|s| (100..600).contains(s))?;
    let (bytes, rest) = word(rest)?;
    let bytes: u64 = if bytes == "-" { 0 } else { bytes.parse().ok()? };
    fields.push(("sourceipaddress", client.into()));
    if let Some(u) = dash(user) {
        fields.push(("remoteuser", u.into()));
    }
    fields.push(("accesstime", EventTime::from_datetime(when).to_rfc3339().into()));
    let parts: Vec<&str> = request.split(' ').collect();
    match parts.as_slice() {
        [method, target, protocol] if protocol.starts_with("HTTP/") && method.bytes().all(|b| b.is_ascii_uppercase()) => {
            fields.push(("method", (*method).into()));
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            fields.push(("path", path.into()));
            if !query.is_empty() {
                fields.push(("query", query.into()));
            }
            fields.push(("protocol", (*protocol).into()));
        }
        _ => fields.push(("request", request.clone().into())),
    }
    fields.push(("status", status.into()));
    fields.push(("bytes", bytes.into()));
    // Combined format adds referrer and user agent; common format ends here.
    if let Some((referrer, rest)) = quoted(rest) {
        if let Some(r) = dash(&referrer) {
            fields.push(("referrer", r.into()));
        }
        if let Some((agent, _)) = quoted(rest) {
            if let Some(a) = dash(&agent) {
                fields.push(("useragent", a.into()));
            }
        }
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::kept;
    use serde_json::{json, Map};

    fn run(summary: &str) -> Map<String, Value> {
        kept(&AccessLogPlugin::new(AccessLogConfig::default()), json!({"summary": summary, "processname": "nginx", "category": "syslog", "tags": [], "details": {}}))
    }

    #[test]
    fn combined_format() {
        let d = run(r#"203.0.113.9 - - [14/Nov/2023:22:13:20 +0000] "GET /wp-login.php?redirect_to=%2Fadmin HTTP/1.1" 404 162 "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36""#);
        assert_eq!(d["category"], "web");
        assert_eq!(d["tags"], json!(["accesslog"]));
        assert_eq!(
            d["details"],
            json!({
                "sourceipaddress": "203.0.113.9",
                "accesstime": "2023-11-14T22:13:20.000+00:00",
                "method": "GET",
                "path": "/wp-login.php",
                "query": "redirect_to=%2Fadmin",
                "protocol": "HTTP/1.1",
                "status": 404,
                "bytes": 162,
                "useragent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36"
            })
        );
    }

    #[test]
    fn common_format_user_vhost_ipv6_escapes_and_odd_requests() {
        let d = run(r#"2001:db8::8 - frank [10/Oct/2023:13:55:36 -0700] "POST /api/v1/login HTTP/2.0" 200 -"#);
        assert_eq!(d["details"]["remoteuser"], "frank");
        assert_eq!(d["details"]["accesstime"], "2023-10-10T20:55:36.000+00:00");
        assert_eq!(d["details"]["bytes"], 0);
        assert!(d["details"].get("useragent").is_none());

        let d = run(r#"shop.example.com:443 198.51.100.4 - - [10/Oct/2023:13:55:36 +0200] "GET / HTTP/1.1" 301 230 "https://www.example.com/" "curl/8.4.0 \"quoted\"""#);
        assert_eq!(d["details"]["vhost"], "shop.example.com:443");
        assert_eq!(d["details"]["referrer"], "https://www.example.com/");
        assert_eq!(d["details"]["useragent"], "curl/8.4.0 \"quoted\"");

        let d = run(r#"192.0.2.66 - - [10/Oct/2023:13:55:36 +0000] "\x16\x03\x01\x00\xca\x01\x00\x00" 400 157 "-" "-""#);
        assert_eq!(d["details"]["request"], r"\x16\x03\x01\x00\xca\x01\x00\x00");
        assert_eq!(d["details"]["status"], 400);
        assert!(d["details"].get("method").is_none());
    }

    #[test]
    fn error_log_lines_and_others_are_left_alone() {
        for line in [
            r#"2023/11/14 22:13:20 [error] 1234#1234: *17 open() "/usr/share/nginx/html/favicon.ico" failed (2: No such file or directory), client: 203.0.113.9, server: _, request: "GET /favicon.ico HTTP/1.1", host: "example.com""#,
            "[Tue Nov 14 22:13:20.123456 2023] [core:error] [pid 1234:tid 140] [client 203.0.113.9:51234] AH00126: Invalid URI in request GET /../../etc/passwd HTTP/1.1",
            r#"203.0.113.9 - - [not a time] "GET / HTTP/1.1" 200 1"#,
            r#"203.0.113.9 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 999 1"#,
            "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok",
        ] {
            let d = run(line);
            assert_eq!(d["category"], "syslog", "{line}");
            assert_eq!(d["details"], json!({}), "{line}");
        }
    }
}
