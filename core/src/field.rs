//! [`FieldPath`]: a dotted field name such as `details.sourceipaddress`, parsed once and
//! resolved against nested JSON objects.

use serde_json::{Map, Value};
use std::fmt;

/// A field name as written in a rule, split at its dots.
///
/// Resolution ([`FieldPath::lookup`]) walks nested objects (`a.b.c` → `{"a":{"b":{"c":…}}}`)
/// and falls back to literal dotted keys at any level (`{"a.b": {"c": …}}`,
/// `{"a": {"b.c": …}}`), because shippers do both.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    raw: String,
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a dotted name. An empty name has one empty segment and matches nothing real.
    pub fn new(raw: &str) -> FieldPath {
        FieldPath { raw: raw.to_string(), segments: raw.split('.').map(str::to_string).collect() }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The dot-separated parts.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Resolves the path in `obj`: nested objects first, then literal dotted keys.
    ///
    /// The nested walk is tried first and allocates nothing; it is also what the general
    /// search below would find first, so the answer is the same either way. Matching calls
    /// this for every field of every candidate rule, so it stays on the fast path.
    pub fn lookup<'a>(&self, obj: &'a Map<String, Value>) -> Option<&'a Value> {
        let mut segs = self.segments.iter();
        let mut cur = segs.next().and_then(|s| get(obj, s));
        for seg in segs {
            cur = match cur {
                Some(Value::Object(inner)) => get(inner, seg),
                _ => None,
            };
        }
        if cur.is_some() || self.segments.len() == 1 {
            return cur;
        }
        resolve(obj, &self.segments)
    }

    /// Resolves the path in a MozDef-schema document: as written, then under `details`
    /// (so a rule may say `sourceipaddress` or `details.sourceipaddress`).
    pub fn lookup_event<'a>(&self, doc: &'a Map<String, Value>) -> Option<&'a Value> {
        if let Some(v) = self.lookup(doc) {
            return Some(v);
        }
        if self.segments.first().is_some_and(|s| s == "details") {
            return None;
        }
        match get(doc, "details") {
            Some(Value::Object(details)) => self.lookup(details),
            _ => None,
        }
    }
}

/// Objects up to this many keys are searched by scanning their keys rather than hashing.
const SCAN_UP_TO: usize = 16;

/// `obj.get(key)`, without hashing small objects: `serde_json`'s ordered map hashes every
/// key with SipHash, which cost more than comparing a dozen key lengths (and the few keys
/// of the same length byte by byte). Matching looks fields up for every candidate rule of
/// every event, where that hashing was the largest single cost.
#[inline]
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if obj.len() <= SCAN_UP_TO {
        obj.iter().find(|(k, _)| k.len() == key.len() && k.as_str() == key).map(|(_, v)| v)
    } else {
        obj.get(key)
    }
}

fn resolve<'a>(obj: &'a Map<String, Value>, segs: &[String]) -> Option<&'a Value> {
    match segs {
        [] => None,
        [only] => get(obj, only),
        [first, ..] if !obj.keys().any(|k| k.len() > first.len() && k.starts_with(first.as_str()) && k.as_bytes()[first.len()] == b'.') => {
            // No literal dotted key starts here: only the nested reading could have matched.
            get(obj, first).and_then(|v| match v {
                Value::Object(inner) => resolve(inner, &segs[1..]),
                _ => None,
            })
        }
        _ => {
            // Try the shortest prefix as a key first (the nested reading), then longer
            // prefixes joined with dots (literal dotted keys).
            let mut key = String::new();
            for (i, seg) in segs.iter().enumerate() {
                if i > 0 {
                    key.push('.');
                }
                key.push_str(seg);
                if let Some(v) = get(obj, &key) {
                    let rest = &segs[i + 1..];
                    if rest.is_empty() {
                        return Some(v);
                    }
                    if let Value::Object(inner) = v {
                        if let Some(found) = resolve(inner, rest) {
                            return Some(found);
                        }
                    }
                }
            }
            None
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({:?})", self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn nested_then_literal_dotted() {
        let d = obj(json!({"details": {"sourceipaddress": "1.2.3.4"}, "a.b": 1, "x": {"y.z": 2}}));
        assert_eq!(FieldPath::new("details.sourceipaddress").lookup(&d), Some(&json!("1.2.3.4")));
        assert_eq!(FieldPath::new("a.b").lookup(&d), Some(&json!(1)));
        assert_eq!(FieldPath::new("x.y.z").lookup(&d), Some(&json!(2)));
        assert_eq!(FieldPath::new("details.nothing").lookup(&d), None);
        assert_eq!(FieldPath::new("").lookup(&d), None);
    }

    #[test]
    fn event_lookup_falls_back_to_details() {
        let d = obj(json!({"summary": "s", "details": {"user": "root", "ip": {"src": "10.0.0.1"}}}));
        assert_eq!(FieldPath::new("user").lookup_event(&d), Some(&json!("root")));
        assert_eq!(FieldPath::new("ip.src").lookup_event(&d), Some(&json!("10.0.0.1")));
        assert_eq!(FieldPath::new("summary").lookup_event(&d), Some(&json!("s")));
        assert_eq!(FieldPath::new("details.details.user").lookup_event(&d), None);
    }
}
