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
        if cur.is_some() || !dotted_along(obj, &self.segments) {
            return cur;
        }
        resolve(obj, &self.segments)
    }

    /// As [`FieldPath::lookup`], told whether `obj` has literal dotted keys anywhere
    /// ([`has_dotted_keys`]): without any, the nested walk is the whole answer. For callers
    /// that look many paths up in one document and work that out once.
    pub fn lookup_in<'a>(&self, obj: &'a Map<String, Value>, dotted: bool) -> Option<&'a Value> {
        if dotted {
            return self.lookup(obj);
        }
        let mut segs = self.segments.iter();
        let mut cur = segs.next().and_then(|s| get(obj, s));
        for seg in segs {
            cur = match cur {
                Some(Value::Object(inner)) => get(inner, seg),
                _ => None,
            };
        }
        cur
    }

    /// Resolves the path in a MozDef-schema document: as written, then under `details`
    /// (so a rule may say `sourceipaddress` or `details.sourceipaddress`).
    pub fn lookup_event<'a>(&self, doc: &'a Map<String, Value>) -> Option<&'a Value> {
        self.lookup_event_in(doc, true)
    }

    /// As [`FieldPath::lookup_event`], told whether `doc` has dotted keys (see
    /// [`FieldPath::lookup_in`]).
    pub fn lookup_event_in<'a>(&self, doc: &'a Map<String, Value>, dotted: bool) -> Option<&'a Value> {
        if let Some(v) = self.lookup_in(doc, dotted) {
            return Some(v);
        }
        if self.segments.first().is_some_and(|s| s == "details") {
            return None;
        }
        match get(doc, "details") {
            Some(Value::Object(details)) => self.lookup_in(details, dotted),
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
pub fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if obj.len() <= SCAN_UP_TO {
        obj.iter().find(|(k, _)| k.len() == key.len() && k.as_str() == key).map(|(_, v)| v)
    } else {
        obj.get(key)
    }
}

/// Whether some key of `obj`, or of an object nested in it, has a dot: only then can a
/// path resolve through a literal dotted key. Lookups do not descend into arrays, so
/// neither does this.
pub fn has_dotted_keys(obj: &Map<String, Value>) -> bool {
    obj.iter().any(|(k, v)| k.contains('.') || matches!(v, Value::Object(inner) if has_dotted_keys(inner)))
}

/// Whether a literal dotted key could answer `segs` where the nested walk found nothing:
/// some object on the walk, above the last segment, has a key `<segment>.…`. Without one,
/// [`resolve`] takes the nested reading at every level and finds nothing either, so a miss
/// (most lookups of most rules' fields) costs no second search. The last segment needs no
/// check: there the only candidate is the key itself.
fn dotted_along(obj: &Map<String, Value>, segs: &[String]) -> bool {
    let Some((_, above)) = segs.split_last() else { return false };
    let mut cur = obj;
    for seg in above {
        if cur.keys().any(|k| k.len() > seg.len() && k.starts_with(seg.as_str()) && k.as_bytes()[seg.len()] == b'.') {
            return true;
        }
        match get(cur, seg) {
            Some(Value::Object(inner)) => cur = inner,
            _ => return false,
        }
    }
    false
}

/// The general search: at each level the nested reading first, then literal dotted keys
/// (`a.b` as one key), shortest prefix first.
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

    /// `lookup` (nested walk, then the general search only where a dotted key could
    /// answer) finds what the general search alone finds, on documents mixing nested
    /// objects, dotted keys at every level, scalars in the way and more than `SCAN_UP_TO`
    /// keys.
    #[test]
    fn lookup_agrees_with_the_general_search() {
        let names = ["a", "b", "c", "a.b", "b.c", "a.b.c", "ab", "c.a"];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        fn build(next: &mut dyn FnMut(usize) -> usize, names: &[&str], depth: usize) -> Map<String, Value> {
            let mut m = Map::new();
            let wide = next(4) == 0;
            for i in 0..(if wide { 20 } else { next(5) }) {
                let key = if wide && i >= names.len() { format!("pad{i}") } else { names[next(names.len())].to_string() };
                let v = if depth > 0 && next(2) == 0 { Value::Object(build(next, names, depth - 1)) } else { json!(format!("v{}", next(100))) };
                m.insert(key, v);
            }
            m
        }
        let paths: Vec<FieldPath> = ["a", "b", "a.b", "a.b.c", "b.c", "c.a", "a.c", "ab", "a.b.c.a", "b.c.a", "c.a.b"].into_iter().map(FieldPath::new).collect();
        let dotless = ["a", "b", "c", "ab"];
        let (mut hits, mut dotted_hits, mut dotless_hits) = (0, 0, 0);
        for i in 0..4000 {
            let d = build(&mut next, if i % 2 == 0 { &names[..] } else { &dotless[..] }, 3);
            for p in &paths {
                let expected = resolve(&d, p.segments());
                assert_eq!(p.lookup(&d), expected, "{p} in {}", Value::Object(d.clone()));
                assert_eq!(p.lookup_in(&d, has_dotted_keys(&d)), expected, "{p} in {} (dotted keys worked out first)", Value::Object(d.clone()));
                hits += usize::from(expected.is_some());
                dotted_hits += usize::from(expected.is_some() && dotted_along(&d, p.segments()));
                dotless_hits += usize::from(expected.is_some() && !has_dotted_keys(&d) && p.segments().len() > 1);
            }
        }
        assert!(hits > 1000 && dotted_hits > 100 && dotless_hits > 100, "the documents exercise too little: {hits} hits, {dotted_hits} through dotted keys, {dotless_hits} nested without any");
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
