//! [`FieldPath`]: a dotted field name such as `details.sourceipaddress`, parsed once and
//! resolved against nested JSON objects.

use serde_json::{Map, Value};
use std::cell::{OnceCell, RefCell};
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
        self.lookup_with(obj, &OnceCell::new(), None)
    }

    /// [`FieldPath::lookup`], with `own` caching whether `obj`'s own keys have a dot, and
    /// `big` (when given) indexing the document's large objects.
    fn lookup_with<'a>(&self, obj: &'a Map<String, Value>, own: &OnceCell<bool>, big: Option<&BigObjects<'a>>) -> Option<&'a Value> {
        let get = |o: &'a Map<String, Value>, k: &str| match big {
            Some(b) => b.get(o, k),
            None => get(o, k),
        };
        let mut segs = self.segments.iter();
        let mut cur = segs.next().and_then(|s| get(obj, s));
        for seg in segs {
            cur = match cur {
                Some(Value::Object(inner)) => get(inner, seg),
                _ => None,
            };
        }
        if cur.is_some() || !dotted_along(obj, &self.segments, own) {
            return cur;
        }
        resolve(obj, &self.segments)
    }

    /// Resolves the path in a MozDef-schema document: as written, then under `details`
    /// (so a rule may say `sourceipaddress` or `details.sourceipaddress`).
    pub fn lookup_event<'a>(&self, doc: &'a Map<String, Value>) -> Option<&'a Value> {
        self.lookup_event_cached(doc, &DottedKeys::default())
    }

    /// As [`FieldPath::lookup_event`], for one of many lookups in the same document: `known`
    /// (one per document) keeps what earlier lookups learned about dotted keys.
    pub fn lookup_event_cached<'a>(&self, doc: &'a Map<String, Value>, known: &DottedKeys<'a>) -> Option<&'a Value> {
        if let Some(v) = self.lookup_with(doc, &known.top, Some(&known.big)) {
            return Some(v);
        }
        if self.segments.first().is_some_and(|s| s == "details") {
            return None;
        }
        match get(doc, "details") {
            Some(Value::Object(details)) => self.lookup_with(details, &known.details, Some(&known.big)),
            _ => None,
        }
    }
}

/// Whether a document's top level and its `details` have keys with a dot, worked out the
/// first time a lookup misses there and kept for the document's other lookups
/// ([`FieldPath::lookup_event_cached`]). A lookup that misses on the nested walk must ask
/// whether a literal dotted key (`"a.b"` as one key) could answer it; for most events the
/// answer is no at every level, and these two levels are where each of an event's many
/// lookups would otherwise scan every key to find that out again.
///
/// It also indexes the document's large objects ([`BigObjects`]).
#[derive(Debug, Default)]
pub struct DottedKeys<'d> {
    top: OnceCell<bool>,
    details: OnceCell<bool>,
    big: BigObjects<'d>,
}

/// Key indexes of a document's objects with more than [`SCAN_UP_TO`] keys, each built at
/// its [`INDEX_FROM`]th lookup: a Windows event's `EventData` (~30 keys) is looked up for
/// dozens of fields per event, and `serde_json`'s ordered map hashes each key with SipHash
/// (a tenth of matching SigmaHQ's rules went there); the index hashes with foldhash.
/// Objects are told apart by address, which is stable while the document is borrowed.
#[derive(Debug, Default)]
pub struct BigObjects<'d> {
    seen: RefCell<Vec<BigObject<'d>>>,
}

#[derive(Debug)]
struct BigObject<'d> {
    addr: usize,
    lookups: u32,
    index: Option<hashbrown::HashMap<&'d str, &'d Value>>,
}

/// A large object is indexed at this lookup of it (fewer lookups cost less than building).
const INDEX_FROM: u32 = 3;
/// At most this many large objects are tracked per document.
const BIG_MAX: usize = 8;

impl<'d> BigObjects<'d> {
    /// [`get`], through the object's index once it has one.
    fn get(&self, obj: &'d Map<String, Value>, key: &str) -> Option<&'d Value> {
        if obj.len() <= SCAN_UP_TO {
            return get(obj, key);
        }
        let addr = std::ptr::from_ref(obj) as usize;
        let mut seen = self.seen.borrow_mut();
        let i = match seen.iter().position(|b| b.addr == addr) {
            Some(i) => i,
            None if seen.len() < BIG_MAX => {
                seen.push(BigObject { addr, lookups: 0, index: None });
                seen.len() - 1
            }
            None => return obj.get(key),
        };
        let b = &mut seen[i];
        b.lookups += 1;
        if b.index.is_none() && b.lookups >= INDEX_FROM {
            b.index = Some(obj.iter().map(|(k, v)| (k.as_str(), v)).collect());
        }
        match &b.index {
            Some(index) => index.get(key).copied(),
            None => obj.get(key),
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

/// Whether a literal dotted key could answer `segs` where the nested walk found nothing:
/// some object on the walk, above the last segment, has a key `<segment>.…` (`own` caches
/// whether `obj`, the first of them, has any key with a dot). Without one, [`resolve`]
/// takes the nested reading at every level and finds nothing either, so a miss (most
/// lookups of most rules' fields) costs no second search. The last segment needs no check:
/// there the only candidate is the key itself.
fn dotted_along(obj: &Map<String, Value>, segs: &[String], own: &OnceCell<bool>) -> bool {
    let Some((_, above)) = segs.split_last() else { return false };
    let mut cur = obj;
    for (i, seg) in above.iter().enumerate() {
        let dotted_here = i > 0 || *own.get_or_init(|| obj.keys().any(|k| k.as_bytes().contains(&b'.')));
        if dotted_here && cur.keys().any(|k| k.len() > seg.len() && k.starts_with(seg.as_str()) && k.as_bytes()[seg.len()] == b'.') {
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
        let (mut hits, mut dotted_hits, mut details_hits) = (0, 0, 0);
        for i in 0..4000 {
            let mut d = build(&mut next, if i % 2 == 0 { &names[..] } else { &dotless[..] }, 3);
            if i % 3 == 0 {
                d.insert("details".into(), Value::Object(build(&mut next, if i % 2 == 0 { &dotless[..] } else { &names[..] }, 3)));
            }
            // One cache for all of the document's lookups, as matching uses it.
            let known = DottedKeys::default();
            for p in &paths {
                let expected = resolve(&d, p.segments());
                assert_eq!(p.lookup(&d), expected, "{p} in {}", Value::Object(d.clone()));
                let in_details = || match d.get("details") {
                    Some(Value::Object(details)) => resolve(details, p.segments()),
                    _ => None,
                };
                assert_eq!(p.lookup_event_cached(&d, &known), expected.or_else(in_details), "{p} as an event field in {}", Value::Object(d.clone()));
                hits += usize::from(expected.is_some());
                dotted_hits += usize::from(expected.is_some() && dotted_along(&d, p.segments(), &OnceCell::new()));
                details_hits += usize::from(expected.is_none() && in_details().is_some());
            }
        }
        assert!(hits > 1000 && dotted_hits > 100 && details_hits > 100, "the documents exercise too little: {hits} hits, {dotted_hits} through dotted keys, {details_hits} under details");
    }

    #[test]
    fn large_objects_are_indexed_with_the_same_answers() {
        // Objects beyond SCAN_UP_TO keys, nested, with dotted keys and `details`.
        let mut data = Map::new();
        for i in 0..30 {
            data.insert(format!("k{i}"), json!(i));
        }
        data.insert("a.b".into(), json!("dotted"));
        data.insert("a".into(), json!({"c": "nested"}));
        let mut top = Map::new();
        for i in 0..20 {
            top.insert(format!("t{i}"), json!(format!("top{i}")));
        }
        top.insert("Event".into(), json!({"System": {"EventID": 1}, "EventData": Value::Object(data.clone())}));
        top.insert("details".into(), Value::Object(data));
        let mut paths: Vec<FieldPath> = (0..32).map(|i| FieldPath::new(&format!("Event.EventData.k{i}"))).collect();
        paths.extend((0..22).map(|i| FieldPath::new(&format!("t{i}"))));
        paths.extend((0..32).map(|i| FieldPath::new(&format!("k{i}"))));
        paths.extend(["Event.EventData.a.b", "Event.EventData.a.c", "Event.EventData.a", "a.b", "a.c", "Event.System.EventID", "Event.EventData"].map(FieldPath::new));
        let known = DottedKeys::default();
        let mut found = 0;
        for round in 0..3 {
            for p in &paths {
                let expected = p.lookup_event(&top);
                assert_eq!(p.lookup_event_cached(&top, &known), expected, "{p}, round {round}");
                found += usize::from(expected.is_some());
            }
        }
        assert!(found > 3 * 60, "only {found} lookups found something");
        let seen = known.big.seen.borrow();
        assert_eq!(seen.len(), 3, "the top level, EventData and details are large");
        assert!(seen.iter().all(|b| b.index.is_some()), "each was looked up often enough to be indexed");
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
