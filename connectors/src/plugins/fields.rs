//! Small helpers the parser plugins share: reading and writing MozDef-schema fields, tags,
//! `key=value` text, and key clean-up (lower case, no dots) for JSON logs.
//!
//! They never panic on odd documents: a `details` or `tags` that is not the expected type is
//! kept under another key rather than overwritten, so nothing a sender sent is lost.

use serde_json::{Map, Value};

/// The document's `details` object, created when absent. A non-object `details` (the
/// normalizer never leaves one, but a plugin before this one might) is kept as
/// `details.details`.
/// The priority every parser has unless its entry says otherwise: after `field_limit` (0)
/// and `drop` (5), before `ipfixup` (10) and `geoip` (20), which read the addresses the
/// parsers set.
pub const PARSER_PRIORITY: i32 = 7;

pub fn details(doc: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let slot = doc.entry("details").or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        let old = std::mem::replace(slot, Value::Object(Map::new()));
        if let Value::Object(m) = slot {
            m.insert("details".into(), old);
        }
    }
    match slot {
        Value::Object(m) => m,
        // Made an object just above.
        _ => unreachable!("details was made an object"),
    }
}

/// A top-level string field.
pub fn text<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Value::as_str)
}

/// Adds a tag once. A `tags` that is not a list is turned into one holding its old value.
pub fn add_tag(doc: &mut Map<String, Value>, tag: &str) {
    let slot = doc.entry("tags").or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        let old = std::mem::take(slot);
        *slot = Value::Array(if old.is_null() { Vec::new() } else { vec![old] });
    }
    if let Value::Array(tags) = slot {
        if !tags.iter().any(|t| t.as_str() == Some(tag)) {
            tags.push(Value::String(tag.to_string()));
        }
    }
}

/// Sets a top-level string field.
pub fn set_text(doc: &mut Map<String, Value>, key: &str, value: impl Into<String>) {
    doc.insert(key.to_string(), Value::String(value.into()));
}

/// A port or count as a JSON number when it is one, else as the text.
pub fn number_or_text(s: &str) -> Value {
    match s.parse::<u64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::String(s.to_string()),
    }
}

/// Whether `s` looks like an IPv4 or IPv6 address (what sshd and web servers print).
pub fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// Splits `key=value key="quoted value" key='single'` text, as auditd and PAM print it.
/// Values keep their quotes off and report whether they were quoted (auditd hex-encodes
/// only unquoted values). Text without `=` between pairs is skipped.
pub fn key_values(text: &str) -> Vec<(&str, &str, bool)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key_part = &rest[..eq];
        // A word without `=` before the key (`op=login`'s neighbours are fine; stray words
        // such as auditd's `msg=audit(…):` prefix are skipped word by word).
        if let Some(space) = key_part.rfind(char::is_whitespace) {
            rest = rest[space..].trim_start();
            continue;
        }
        let key = key_part;
        let after = &rest[eq + 1..];
        let (value, quoted, next) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => match after[1..].find(q) {
                Some(end) => (&after[1..1 + end], true, &after[2 + end..]),
                None => (&after[1..], true, ""),
            },
            _ => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], false, &after[end..])
            }
        };
        if !key.is_empty() {
            out.push((key, value, quoted));
        }
        rest = next.trim_start();
    }
    out
}

/// Rewrites every key of a JSON tree: lower case and without dots, as MozDef did before
/// indexing (Elasticsearch reads a dot in a key as nesting, and CloudTrail's and Zeek's
/// mixed-case keys make rules brittle). When two keys collide after the rewrite, the later
/// one is kept under `<key>_<n>` so nothing is lost.
pub fn clean_keys(value: Value, lower: bool) -> Value {
    match value {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let mut key: String = k.chars().filter(|c| *c != '.').collect();
                if lower {
                    key = key.to_lowercase();
                }
                let v = clean_keys(v, lower);
                if out.contains_key(&key) {
                    let mut n = 2;
                    while out.contains_key(&format!("{key}_{n}")) {
                        n += 1;
                    }
                    key = format!("{key}_{n}");
                }
                out.insert(key, v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|v| clean_keys(v, lower)).collect()),
        other => other,
    }
}

/// Decodes auditd's hex encoding of an untrusted string (`2F746D70` → `/tmp`); NULs (the
/// separators in `proctitle`) become spaces. `None` when `s` is not even-length hex.
pub fn decode_hex(s: &str) -> Option<String> {
    if s.is_empty() || !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .map(|b| if b == 0 { b' ' } else { b })
        .collect();
    Some(String::from_utf8_lossy(&bytes).trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_values_handles_quotes_and_stray_words() {
        let kv = key_values(r#"msg=audit(1.2:3): pid=7 comm="ls -l" exe=2F62696E msg='op=login res=success'"#);
        assert_eq!(kv[0], ("msg", "audit(1.2:3):", false));
        assert_eq!(kv[1], ("pid", "7", false));
        assert_eq!(kv[2], ("comm", "ls -l", true));
        assert_eq!(kv[3], ("exe", "2F62696E", false));
        assert_eq!(kv[4], ("msg", "op=login res=success", true));
        assert!(key_values("no pairs here").is_empty());
    }

    #[test]
    fn clean_keys_lowers_removes_dots_and_keeps_collisions() {
        let v = clean_keys(json!({"eventName": 1, "a.b": {"C.d": [{"E": 2}]}, "ab": 3}), true);
        assert_eq!(v, json!({"eventname": 1, "ab": {"cd": [{"e": 2}]}, "ab_2": 3}));
    }

    #[test]
    fn hex_decoding_and_tags() {
        assert_eq!(decode_hex("6C73002D6C61").as_deref(), Some("ls -la"));
        assert_eq!(decode_hex("/bin/ls"), None);
        assert_eq!(decode_hex("abc"), None);
        let mut doc = Map::new();
        doc.insert("tags".into(), json!("old"));
        add_tag(&mut doc, "x");
        add_tag(&mut doc, "x");
        assert_eq!(doc["tags"], json!(["old", "x"]));
        doc.insert("details".into(), json!("text"));
        details(&mut doc).insert("k".into(), json!(1));
        assert_eq!(doc["details"], json!({"details": "text", "k": 1}));
    }
}
