//! [`RuleMatcher`]: every detection of a rule set behind an exact prefilter, so that an
//! event is evaluated only against the rules it could match.
//!
//! At build time each detection's condition is reduced to *necessary* clauses: ORs of cheap
//! atoms ("field F, lowercased, equals `x`" or "contains `x`") that every matching event
//! satisfies (`a and (b or c)` needs `a`; `x or y` needs one clause of `x` or one of `y`;
//! a regex needs one of its literal prefixes or suffixes, or of the literals inside it
//! ([`required_literals`]); `not`, numeric comparisons and the like give nothing). Then:
//!
//! - **Routing.** The few fields that most rules test for equality in a clause of their
//!   own (with the `windows-evtx` pipeline: `Channel`, `EventID`, `Provider_Name`, added by
//!   the logsource conditions) become dimensions. A rule lands in the bucket(s) of its
//!   allowed values, or "any" on a dimension it does not constrain; an event reads those
//!   fields once and visits only the buckets its values (or "any") name.
//! - **Content.** In a bucket, a rule keeps its two most selective other clauses, and is a
//!   candidate only when the event meets both. Per field, the
//!   bucket holds a hash map of exact values and one Aho-Corasick automaton over the
//!   substrings; the event's value is looked up once and scanned once, and the atoms found
//!   name the candidate rules. A rule without such a clause is always a candidate in its
//!   bucket.
//! - **Verification.** Candidates are evaluated in full ([`Detection::matches_doc`]), in
//!   rule order. Every field lookup (of the prefilter and of each condition) is numbered
//!   by its paths when the matcher is built, and an event's lookups are remembered by
//!   number, so the candidates' many reads of `Image` or `CommandLine` walk the event once.
//!
//! What must stay true: the prefilter is exact, i.e. it never drops a rule a full
//! evaluation would match. An atom's test is implied by the matcher it comes from (same
//! lowercasing, same reading of numbers, booleans and arrays, same field lookup), and a
//! test compares prefiltered with brute-force matching over the SigmaHQ corpus.

use crate::condition::Cond;
use crate::detection::{Doc, FieldCond, SelectionMatcher};
use crate::matcher::{GlobTok, StrKind, StrMatch, ValueMatcher};
use crate::{Detection, RuleKind, RuleSet};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rampart_core::FieldPath;
use serde_json::{Map, Value};
use std::cell::RefCell;
use hashbrown::{DefaultHashBuilder, HashMap};
use std::collections::BTreeMap;
use std::hash::BuildHasher;

/// At most this many routing dimensions (an event visits up to 2^dims buckets).
const MAX_DIMS: usize = 3;
/// "Any value" on a routing dimension.
const ANY: u32 = u32::MAX;
/// "Absent or null" on a routing dimension (an [`Atom::Absent`] clause, e.g. a pipeline's
/// `Channel|exists: false` that keeps non-Windows rules off Windows events).
const ABSENT: u32 = u32::MAX - 1;
/// A rule whose allowed routing values multiply out to more buckets than this is routed
/// on fewer dimensions.
const MAX_BUCKETS_PER_RULE: usize = 64;
/// From this many field scans on, an event's key segments are gathered first ([`Present`]).
const PRESENT_FROM: usize = 6;
/// Content clauses whose weakest atom is shorter than this prune too little to be worth
/// scanning for (the rule is then always a candidate in its bucket).
const MIN_SCORE: usize = 3;

/// A cheap per-field test implied by a matcher. Texts are lowercased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Atom {
    /// The lowercased value equals this.
    Eq(String),
    /// The lowercased value contains this (non-empty).
    Sub(String),
    /// The field is absent or null (`exists: false`). Only a routing value, never content.
    Absent,
}

/// One atom on one field (an index into [`RuleMatcher::fields`]).
type Lit = (usize, Atom);

/// A disjunction of atoms; a rule's necessary condition is a conjunction of clauses.
type Clause = Vec<Lit>;

/// A bucket's rules before indexing: the always-candidates, and (rule, content clauses).
type Members = (Vec<u32>, Vec<(u32, Vec<Clause>)>);

/// Content clauses a rule keeps at most: a candidate must meet each of them (every clause
/// is necessary), so a second clause prunes the events whose best clause is common
/// (`OriginalFileName` ending in `.exe`) but whose other one is rare.
const MAX_CONTENT: usize = 2;
/// A rule's content clause number, in the top bit of the rule ids the indexes hold.
const CLAUSE_SHIFT: u32 = 31;
// One bit holds the clause number: a third clause would need another (and a third
// clause gained little: 12.2 → 11.6 candidates per event of the sigma scenario).
const _: () = assert!(MAX_CONTENT <= 1 << (32 - CLAUSE_SHIFT));
/// The rule id in a tagged id.
const RULE_MASK: u32 = (1 << CLAUSE_SHIFT) - 1;

/// A rule in a bucket: (bucket id, rule id).
type Placed = (u32, u32);

/// One field's atoms before indexing: exact values → rules in buckets, and per bucket,
/// substrings → rules.
type FieldAtoms = (HashMap<String, Vec<Placed>>, BTreeMap<u32, BTreeMap<String, Vec<u32>>>);

/// A bucket's scan of one field: ([`RuleMatcher::scans`] index, [`FieldIndex::subs`] index
/// or [`NO_SUBS`] when the bucket has only exact values there).
type ScanRef = (u32, u32);

/// A bucket with exact values but no substrings on a field.
const NO_SUBS: u32 = u32::MAX;

/// Where a field condition reads its value: the same lookup as [`FieldCond::lookup`]; no
/// paths means every scalar anywhere in the event (keyword searches).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FieldKey {
    paths: Vec<FieldPath>,
    wild: bool,
}

impl FieldKey {
    /// Looks the field up; `slot` is its number ([`RuleMatcher::fields`] index), which field
    /// conditions reading the same paths share.
    fn lookup<'d>(&self, slot: usize, doc: &Doc<'d>) -> Option<&'d Value> {
        doc.remembered(slot as u32, || crate::detection::lookup_paths(&self.paths, self.wild, doc))
    }
}

/// The detections of a rule set, indexed for matching many rules at once.
#[derive(Clone, Debug)]
pub struct RuleMatcher {
    /// (position in the rule set, detection), in rule-set order; a rule's id here is its
    /// index in this list.
    rules: Vec<(usize, Detection)>,
    /// Interned field lookups.
    fields: Vec<FieldKey>,
    /// Per field: the hashes of its paths' first segments, when one of them must be a key
    /// of the event (or of its `details`) for the lookup to find anything ([`Present`]);
    /// `None` for keyword and wildcard lookups, which are always made.
    firsts: Vec<Option<Vec<u64>>>,
    /// Hashes key segments for `firsts` and [`Present`].
    segments: DefaultHashBuilder,
    /// Routing dimensions: a field and its known values (lowercased) → value id.
    dims: Vec<(usize, HashMap<String, u32>)>,
    /// Buckets by value id per dimension ([`ANY`] for "any"; unused dimensions are ANY).
    buckets: HashMap<[u32; MAX_DIMS], Bucket>,
    /// Content atoms per field, over all buckets: an event's field is looked up and
    /// scanned once, however many of the buckets it visits have atoms on that field.
    scans: Vec<FieldIndex>,
    /// Per rule: the content clauses it must meet, as a bit mask (0 without content).
    need: Vec<u8>,
}

/// The rules routed to one combination of dimension values.
#[derive(Clone, Debug, Default)]
struct Bucket {
    id: u32,
    /// Rules without a content clause: always candidates here.
    always: Vec<u32>,
    /// The fields with atoms of this bucket's rules, ascending.
    scans: Vec<ScanRef>,
}

#[derive(Clone, Debug)]
struct FieldIndex {
    field: usize,
    /// Exact lowercased value → rules (in buckets: one hash lookup for every bucket).
    eq: HashMap<String, Vec<Placed>>,
    /// Substrings, one automaton per bucket: an event scans only its buckets' patterns
    /// (the keyword rules' scan of every scalar of the event would otherwise search the
    /// patterns of every bucket).
    subs: Vec<SubIndex>,
    /// Whether a number's or a boolean's text can meet one of this field's atoms: for the
    /// keyword search, which otherwise formats every number of the event (a Sysmon event
    /// carries a dozen) to search text no pattern can be in.
    scalars: bool,
}

/// One bucket's substrings on one field.
#[derive(Clone, Debug)]
struct SubIndex {
    /// ASCII case-insensitive over lowercase patterns; `None` if it could not be built, and
    /// then every rule here is a candidate.
    ac: Option<AhoCorasick>,
    /// Rules per pattern.
    rules: Vec<Vec<u32>>,
}

/// Per-thread scratch space, so matching allocates nothing per event once warm.
#[derive(Default)]
struct Scratch {
    candidates: Candidates,
    /// A lowercased copy of the value being looked at, when it needs one.
    lower: String,
    /// A number's text.
    num: String,
    /// The event's key segments.
    present: Present,
    /// `present` was filled for this event.
    present_on: bool,
    /// The event's value ids per routing dimension.
    dim_ids: [Vec<u32>; MAX_DIMS],
    /// The buckets the event visits.
    visited: Vec<u32>,
    /// The scans those buckets need.
    scans: Vec<ScanRef>,
    /// The substring indexes of the field being scanned.
    subs: Vec<u32>,
    /// The event's scalars joined by NUL, for the keyword search.
    joined: String,
    /// Patterns already handled in the text being scanned.
    patterns: Vec<usize>,
}

/// The first segments (the text before the first `.`) of an event's keys and of its
/// `details`' keys, as a 512-bit Bloom filter. [`FieldPath::lookup_event`] finds a path
/// only under a key that starts with the path's first segment, in the event or in its
/// `details`, so a field none of whose first segments is here is absent, without the
/// lookup (two scans of the event's keys, each missing field; an event visits ~130 fields'
/// worth of atoms in the SigmaHQ rules and carries ~20).
#[derive(Default)]
struct Present([u64; 8]);

impl Present {
    fn fill(&mut self, doc: &Map<String, Value>, hasher: &DefaultHashBuilder) {
        self.0 = [0; 8];
        for (k, v) in doc {
            self.insert(k, hasher);
            if let (Value::Object(details), "details") = (v, k.as_str()) {
                details.keys().for_each(|k| self.insert(k, hasher));
            }
        }
    }

    fn insert(&mut self, key: &str, hasher: &DefaultHashBuilder) {
        let h = hasher.hash_one(key.split('.').next().unwrap_or_default());
        for bit in [h >> 55, (h >> 46) & 511] {
            self.0[(bit >> 6) as usize & 7] |= 1 << (bit & 63);
        }
    }

    fn may_have(&self, h: u64) -> bool {
        [h >> 55, (h >> 46) & 511].iter().all(|&bit| self.0[(bit >> 6) as usize & 7] & (1 << (bit & 63)) != 0)
    }
}



thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl RuleMatcher {
    /// Indexes the detections of `set` (correlations are not matched against events).
    pub fn new(set: &RuleSet) -> RuleMatcher {
        let mut rules: Vec<(usize, Detection)> = set
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.kind {
                RuleKind::Detection(d) => Some((i, d.clone())),
                RuleKind::Correlation(_) => None,
            })
            .collect();
        let mut fields: Vec<FieldKey> = Vec::new();
        let mut field_ids: HashMap<FieldKey, usize> = HashMap::new();
        let mut intern = |key: FieldKey| {
            *field_ids.entry(key.clone()).or_insert_with(|| {
                fields.push(key);
                fields.len() - 1
            })
        };
        // Every condition's lookup gets its field's number, so that matching an event
        // reads each field once, for the prefilter and all candidates alike.
        for (_, d) in &mut rules {
            d.number_lookups(&mut |c| intern(FieldKey { paths: c.paths().cloned().collect(), wild: c.is_wild() }) as u32);
        }
        let clauses: Vec<Vec<Clause>> = rules
            .iter()
            .map(|(_, d)| {
                let sels: Vec<Vec<Clause>> = d.selections.iter().map(|s| selection_clauses(&s.matcher, &mut intern)).collect();
                let mut cl = cond_clauses(&d.condition, &sels);
                for c in &mut cl {
                    c.sort();
                    c.dedup();
                }
                cl.sort();
                cl.dedup();
                cl
            })
            .collect();

        // Routing dimensions: the fields most rules constrain to a set of exact values.
        let mut uses: BTreeMap<usize, usize> = BTreeMap::new();
        for cl in &clauses {
            let mut fs: Vec<usize> = cl.iter().filter_map(routing_field).collect();
            fs.dedup();
            for f in fs {
                *uses.entry(f).or_default() += 1;
            }
        }
        let mut ranked: Vec<(usize, usize)> = uses.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let min_uses = (rules.len() / 50).max(2);
        let mut dims: Vec<(usize, HashMap<String, u32>)> =
            ranked.iter().filter(|(_, n)| *n >= min_uses).take(MAX_DIMS).map(|(f, _)| (*f, HashMap::new())).collect();

        // Each rule's routing values and content clause.
        let mut members: HashMap<[u32; MAX_DIMS], Members> = HashMap::new();
        let mut need = vec![0u8; clauses.len()];
        for (id, cl) in clauses.iter().enumerate() {
            let id = id as u32;
            let mut used = vec![false; cl.len()];
            let mut allowed: Vec<Option<Vec<u32>>> = vec![None; MAX_DIMS];
            for (d, (field, values)) in dims.iter_mut().enumerate() {
                // The most selective clause on this field (fewest values).
                let best = cl.iter().enumerate().filter(|(_, c)| routing_field(c) == Some(*field)).min_by_key(|(_, c)| c.len());
                if let Some((ci, c)) = best {
                    used[ci] = true;
                    let mut ids: Vec<u32> = Vec::with_capacity(c.len());
                    for (_, a) in c {
                        let next = values.len() as u32;
                        ids.push(match a {
                            Atom::Eq(s) | Atom::Sub(s) => *values.entry(s.clone()).or_insert(next),
                            Atom::Absent => ABSENT,
                        });
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    allowed[d] = Some(ids);
                }
            }
            // Too many combinations: drop the widest dimensions (their clause becomes content).
            while allowed.iter().map(|a| a.as_ref().map_or(1, Vec::len)).product::<usize>() > MAX_BUCKETS_PER_RULE {
                let widest = (0..MAX_DIMS).max_by_key(|&d| allowed[d].as_ref().map_or(0, Vec::len)).unwrap_or(0);
                allowed[widest] = None;
                if let Some((ci, _)) = cl.iter().enumerate().filter(|(_, c)| routing_field(c) == dims.get(widest).map(|d| d.0)).min_by_key(|(_, c)| c.len()) {
                    used[ci] = false;
                }
            }
            let mut content: Vec<&Clause> = cl.iter().enumerate().filter(|(i, c)| !used[*i] && score(c) >= MIN_SCORE).map(|(_, c)| c).collect();
            content.sort_by_key(|c| std::cmp::Reverse((score(c), std::cmp::Reverse(c.len()))));
            content.truncate(MAX_CONTENT);
            need[id as usize] = ((1u32 << content.len()) - 1) as u8;
            let mut keys = vec![[ANY; MAX_DIMS]];
            for (d, a) in allowed.iter().enumerate() {
                if let Some(ids) = a {
                    keys = keys.iter().flat_map(|k| ids.iter().map(move |&v| {
                        let mut k = *k;
                        k[d] = v;
                        k
                    })).collect();
                }
            }
            for k in keys {
                let entry = members.entry(k).or_default();
                if content.is_empty() {
                    entry.0.push(id);
                } else {
                    entry.1.push((id, content.iter().map(|c| (*c).clone()).collect()));
                }
            }
        }
        let mut by_field: BTreeMap<usize, FieldAtoms> = BTreeMap::new();
        let mut buckets: HashMap<[u32; MAX_DIMS], Bucket> = HashMap::new();
        let mut bucket_fields: Vec<Vec<usize>> = Vec::new();
        for (id, (k, (always, content))) in members.into_iter().enumerate() {
            let id = id as u32;
            let mut fs = Vec::new();
            for (rule, clause, ci) in content.into_iter().flat_map(|(r, cs)| cs.into_iter().enumerate().map(move |(ci, c)| (r, c, ci))) {
                // The index holds the rule with its clause number (see `Candidates::hit`).
                let rule = rule | (ci as u32) << CLAUSE_SHIFT;
                for (field, atom) in clause {
                    let (eq, subs) = by_field.entry(field).or_default();
                    match atom {
                        Atom::Eq(s) => {
                            let list = eq.entry(s).or_default();
                            if list.last() != Some(&(id, rule)) {
                                list.push((id, rule));
                            }
                        }
                        Atom::Sub(s) => {
                            let list = subs.entry(id).or_default().entry(s).or_default();
                            if list.last() != Some(&rule) {
                                list.push(rule);
                            }
                        }
                        // A content clause has a score of at least MIN_SCORE, which no
                        // clause with an `Absent` atom reaches.
                        Atom::Absent => continue,
                    }
                    fs.push(field);
                }
            }
            fs.sort_unstable();
            fs.dedup();
            bucket_fields.push(fs);
            buckets.insert(k, Bucket { id, always, scans: Vec::new() });
        }
        // Per bucket id, its scans.
        let mut refs: Vec<Vec<ScanRef>> = vec![Vec::new(); bucket_fields.len()];
        let scans: Vec<FieldIndex> = by_field
            .into_iter()
            .enumerate()
            .map(|(si, (field, (eq, by_bucket)))| {
                let mut subs = Vec::with_capacity(by_bucket.len());
                let mut scalars = false;
                for (bucket, patterns) in by_bucket {
                    refs[bucket as usize].push((si as u32, subs.len() as u32));
                    let (patterns, rules): (Vec<String>, Vec<Vec<u32>>) = patterns.into_iter().unzip();
                    // The keyword search runs over the event's scalars joined by NUL and
                    // lowercased, with a case-sensitive automaton (over lowercase patterns):
                    // its few patterns then get a fast prefilter (Teddy, memmem), which
                    // ASCII case-insensitivity defeats on the ~1 KB of joined text. Fields'
                    // automata stay case-insensitive over the text as it is (large ones
                    // were slower case-sensitive, with the copy to lowercase).
                    let keywords = fields[field].paths.is_empty();
                    let joinable = !keywords || !patterns.iter().any(|p| p.contains('\0'));
                    let patterns: Vec<String> = if keywords { patterns.into_iter().map(|p| p.to_ascii_lowercase()).collect() } else { patterns };
                    let ac = joinable.then(|| AhoCorasickBuilder::new().ascii_case_insensitive(!keywords).match_kind(MatchKind::Standard).build(&patterns).ok()).flatten();
                    scalars |= patterns.iter().any(|p| may_be_in_scalar_text(p));
                    subs.push(SubIndex { ac, rules });
                }
                scalars |= !eq.is_empty();
                FieldIndex { field, eq, subs, scalars }
            })
            .collect();
        for b in buckets.values_mut() {
            let fs = &bucket_fields[b.id as usize];
            let mine = &refs[b.id as usize];
            // Fields with only exact values here still need their lookup.
            b.scans = scans
                .iter()
                .enumerate()
                .filter(|(_, x)| fs.binary_search(&x.field).is_ok())
                .map(|(i, _)| mine.iter().find(|r| r.0 == i as u32).copied().unwrap_or((i as u32, NO_SUBS)))
                .collect();
        }
        let segments = DefaultHashBuilder::default();
        let firsts = fields
            .iter()
            .map(|k| (!k.wild && !k.paths.is_empty()).then(|| k.paths.iter().map(|p| segments.hash_one(p.segments().first().map_or("", String::as_str))).collect()))
            .collect();
        RuleMatcher { rules, fields, firsts, segments, dims, buckets, scans, need }
    }

    /// Appends to `out` the positions (in the rule set) of the detections `doc` matches, in
    /// rule-set order. Exactly what evaluating every detection would give.
    pub fn matches(&self, doc: &Map<String, Value>, out: &mut Vec<usize>) {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let s = &mut *s;
            let doc = &Doc::new(doc);
            self.candidates_into(doc, s);
            for &c in &s.candidates.list {
                let (pos, det) = &self.rules[c as usize];
                if det.matches_in(doc) {
                    out.push(*pos);
                }
            }
        });
    }

    /// The rules `doc` must be evaluated against, sorted, into `s.candidates`.
    fn candidates_into(&self, doc: &Doc<'_>, s: &mut Scratch) {
        s.candidates.start(self.rules.len());
        // The event's value ids on each dimension (plus "any"; "absent" when it has no value).
        for (d, (field, values)) in self.dims.iter().enumerate() {
            let ids = &mut s.dim_ids[d];
            ids.clear();
            ids.push(ANY);
            match self.fields[*field].lookup(*field, doc) {
                None | Some(Value::Null) => ids.push(ABSENT),
                Some(v) => each_key(v, &mut s.num, &mut s.lower, &mut |k| {
                    if let Some(&id) = values.get(k) {
                        if !ids.contains(&id) {
                            ids.push(id);
                        }
                    }
                }),
            }
        }
        for d in self.dims.len()..MAX_DIMS {
            s.dim_ids[d].clear();
            s.dim_ids[d].push(ANY);
        }
        let mut key = [ANY; MAX_DIMS];
        s.visited.clear();
        s.scans.clear();
        let [ids0, ids1, ids2] = &s.dim_ids;
        for &i0 in ids0 {
            key[0] = i0;
            for &i1 in ids1 {
                key[1] = i1;
                for &i2 in ids2 {
                    key[2] = i2;
                    if let Some(b) = self.buckets.get(&key) {
                        s.visited.push(b.id);
                        s.scans.extend_from_slice(&b.scans);
                        for &r in &b.always {
                            s.candidates.add(r);
                        }
                    }
                }
            }
        }
        s.scans.sort_unstable();
        s.scans.dedup();
        // Filling it reads every key of the event, cold in memory the first time: worth it
        // when many fields are to be looked up, not for a few.
        s.present_on = s.scans.len() >= PRESENT_FROM;
        if s.present_on {
            s.present.fill(doc.map, &self.segments);
        }
        // Each field once, with the substring indexes of every visited bucket.
        let mut i = 0;
        while i < s.scans.len() {
            let scan = s.scans[i].0;
            s.subs.clear();
            while i < s.scans.len() && s.scans[i].0 == scan {
                if s.scans[i].1 != NO_SUBS {
                    s.subs.push(s.scans[i].1);
                }
                i += 1;
            }
            if let Some(f) = self.scans.get(scan as usize) {
                self.scan(f, doc, s);
            }
        }
        s.candidates.list.sort_unstable();
    }

    /// The positions (in the rule set) of the detections `doc` would be evaluated against
    /// in full: what the prefilter lets through, for diagnostics and benchmarks.
    pub fn candidates(&self, doc: &Map<String, Value>) -> Vec<usize> {
        let mut s = Scratch::default();
        self.candidates_into(&Doc::new(doc), &mut s);
        s.candidates.list.iter().map(|&c| self.rules[c as usize].0).collect()
    }

    /// Same result as [`RuleMatcher::matches`], by evaluating every detection (for tests and
    /// for measuring what the prefilter saves).
    pub fn matches_all(&self, doc: &Map<String, Value>, out: &mut Vec<usize>) {
        let doc = &Doc::new(doc);
        out.extend(self.rules.iter().filter(|(_, d)| d.matches_in(doc)).map(|(i, _)| *i));
    }

    /// Number of detections.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// No detections.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// One line on the index: routing fields, buckets, rules with a content prefilter.
    pub fn stats(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(|(f, v)| format!("{} ({} values)", self.fields[*f].paths.iter().map(FieldPath::as_str).collect::<Vec<_>>().join("|"), v.len())).collect();
        format!(
            "{} detections; routed on [{}] into {} buckets; {} with a content prefilter ({} of them two clauses)",
            self.rules.len(),
            dims.join(", "),
            self.buckets.len(),
            self.need.iter().filter(|&&n| n != 0).count(),
            self.need.iter().filter(|&&n| n.count_ones() == 2).count()
        )
    }
}

/// The rules an event must be evaluated against, each once.
#[derive(Default)]
struct Candidates {
    /// Generation stamp per rule: `seen[r] == gen` when `r` is already in `list`.
    seen: Vec<u32>,
    gen: u32,
    list: Vec<u32>,
    /// Per rule of two content clauses: (generation, the clauses met so far in it).
    met: Vec<(u32, u8)>,
}

impl Candidates {
    /// Empties the list for a new event over `rules` rules.
    fn start(&mut self, rules: usize) {
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            self.seen.iter_mut().for_each(|x| *x = 0);
            self.met.iter_mut().for_each(|x| x.0 = 0);
            self.gen = 1;
        }
        if self.seen.len() < rules {
            self.seen.resize(rules, 0);
            self.met.resize(rules, (0, 0));
        }
        self.list.clear();
    }

    /// Notes that the event meets content clause `tagged >> CLAUSE_SHIFT` of rule
    /// `tagged & RULE_MASK`, which becomes a candidate once it meets all of `need`.
    fn hit(&mut self, tagged: u32, need: &[u8]) {
        let r = tagged & RULE_MASK;
        let all = need.get(r as usize).copied().unwrap_or(1);
        if all <= 1 {
            self.add(r);
            return;
        }
        let gen = self.gen;
        let met = &mut self.met[r as usize];
        if met.0 != gen {
            *met = (gen, 0);
        }
        met.1 |= 1 << (tagged >> CLAUSE_SHIFT);
        if met.1 == all {
            self.add(r);
        }
    }

    /// Makes rule `r` a candidate (once).
    fn add(&mut self, r: u32) {
        let slot = &mut self.seen[r as usize];
        if *slot != self.gen {
            *slot = self.gen;
            self.list.push(r);
        }
    }
}

impl RuleMatcher {
    /// Looks `f`'s field up in `doc` and adds the rules (of visited buckets) whose atoms
    /// its value meets.
    fn scan(&self, f: &FieldIndex, doc: &Doc<'_>, s: &mut Scratch) {
        if s.present_on && self.firsts[f.field].as_ref().is_some_and(|hs| !hs.iter().any(|&h| s.present.may_have(h))) {
            return;
        }
        let key = &self.fields[f.field];
        let need = &self.need[..];
        let Scratch { candidates, lower, num, visited, patterns, subs, joined, .. } = s;
        let eq = |text: &str, lower: &mut String, candidates: &mut Candidates| {
            if f.eq.is_empty() {
                return;
            }
            let hit = if text.bytes().any(|b| b.is_ascii_uppercase()) || !text.is_ascii() {
                lower.clear();
                lowercase_into(text, lower);
                f.eq.get(lower.as_str())
            } else {
                f.eq.get(text)
            };
            for &(b, r) in hit.map_or(&[][..], Vec::as_slice) {
                if visited.contains(&b) {
                    candidates.hit(r, need);
                }
            }
        };
        // `hay` is ASCII or lowercased (a field's automata are ASCII case-insensitive); the
        // keyword search's joined text is lowercased (its automata are case-sensitive).
        let mut search = |hay: &str, candidates: &mut Candidates| {
            for &si in subs.iter() {
                let Some(sub) = f.subs.get(si as usize) else { continue };
                let Some(ac) = &sub.ac else {
                    sub.rules.iter().flatten().for_each(|&r| candidates.hit(r, need));
                    continue;
                };
                // Overlapping search reports every occurrence; a pattern's rules are
                // added once per text.
                patterns.clear();
                for hit in ac.find_overlapping_iter(hay) {
                    let p = hit.pattern().as_usize();
                    if !patterns.contains(&p) {
                        patterns.push(p);
                        sub.rules[p].iter().for_each(|&r| candidates.hit(r, need));
                    }
                }
            }
        };
        let hay = |text: &str, lower: &mut String| -> bool {
            if text.is_ascii() {
                return true;
            }
            lower.clear();
            lowercase_into(text, lower);
            false
        };
        if key.paths.is_empty() {
            // Keywords: every scalar of the event, as `keyword_in` reads them. Exact values
            // one by one; substrings in one search over all of them joined by NUL, which no
            // keyword pattern contains (see `new`), so a match lies within one scalar.
            joined.clear();
            each_leaf(doc.map.values(), f.scalars, num, &mut |text| {
                eq(text, lower, candidates);
                lowercase_into(text, joined);
                joined.push('\0');
            });
            if !subs.is_empty() {
                search(joined, candidates);
            }
        } else if let Some(v) = key.lookup(f.field, doc) {
            each_text(v, num, &mut |text| {
                eq(text, lower, candidates);
                if subs.is_empty() {
                    return;
                }
                if hay(text, lower) {
                    search(text, candidates);
                } else {
                    search(lower, candidates);
                }
            });
        }
    }
}

/// [`each_text`] over every scalar under `values` (objects and arrays walked), or over
/// every string only when `scalars` is false.
fn each_leaf<'v>(values: impl Iterator<Item = &'v Value>, scalars: bool, num: &mut String, f: &mut dyn FnMut(&str)) {
    for v in values {
        match v {
            Value::Object(o) => each_leaf(o.values(), scalars, num, f),
            Value::Array(a) => each_leaf(a.iter(), scalars, num, f),
            Value::String(s) => f(s),
            other if scalars => each_text(other, num, f),
            _ => {}
        }
    }
}

/// Whether `pattern` (lowercase) can be found in the text of a number or a boolean, as
/// [`each_text`] gives them: only if it is made of the characters of a number's JSON or
/// canonical text, or lies within `true` or `false`.
fn may_be_in_scalar_text(pattern: &str) -> bool {
    pattern.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')) || "true".contains(pattern) || "false".contains(pattern)
}

/// What the matchers compare a lowercased value with: `str::to_lowercase` (ASCII-only text
/// lowercases the same way byte by byte).
fn lowercase_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_lowercase();
    } else {
        out.push_str(&text.to_lowercase());
    }
}

/// Calls `f` with every text a string matcher or an exact-value atom may compare for this
/// value: a string as is, a number as JSON writes it and as its canonical number text, a
/// boolean as `true`/`false`, and each scalar element of an array.
fn each_text(v: &Value, num: &mut String, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Number(n) => {
            use std::fmt::Write;
            num.clear();
            let _ = write!(num, "{n}");
            f(num);
            // An integer below 1e15 is its own canonical text: skip making it again (an
            // event carries a dozen such numbers, each read for the keyword search).
            let own = n.as_i64().is_some_and(|i| i.unsigned_abs() < CANONICAL_INT) || n.as_u64().is_some_and(|u| u < CANONICAL_INT);
            if !own {
                if let Some(c) = n.as_f64().map(canonical).filter(|c| c != num) {
                    f(&c);
                }
            }
        }
        Value::Bool(b) => f(if *b { "true" } else { "false" }),
        Value::Array(items) => {
            for x in items {
                if !x.is_array() && !x.is_object() {
                    each_text(x, num, f);
                }
            }
        }
        Value::Null | Value::Object(_) => {}
    }
}

/// [`each_text`], lowercased (for the routing dimensions).
fn each_key(v: &Value, num: &mut String, lower: &mut String, f: &mut dyn FnMut(&str)) {
    each_text(v, num, &mut |t| {
        if t.is_ascii() && !t.bytes().any(|b| b.is_ascii_uppercase()) {
            f(t);
        } else {
            lower.clear();
            lowercase_into(t, lower);
            f(lower);
        }
    });
}

/// Integers below this [`canonical`] writes as the integer itself.
const CANONICAL_INT: u64 = 1_000_000_000_000_000;

/// One text for every number equal as `f64` (what [`ValueMatcher::Number`] compares).
fn canonical(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < CANONICAL_INT as f64 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The field of a clause made only of exact values of one field (a routing candidate).
fn routing_field(c: &Clause) -> Option<usize> {
    let (f, _) = c.first()?;
    c.iter().all(|(g, a)| g == f && matches!(a, Atom::Eq(_) | Atom::Absent)).then_some(*f)
}

/// How selective a clause is: the weight of its weakest atom, a literal's length with
/// rare bytes counted twice (exact values count more).
fn score(c: &Clause) -> usize {
    c.iter()
        .map(|(_, a)| match a {
            Atom::Eq(s) => weight(s) + 4,
            Atom::Sub(s) => weight(s),
            Atom::Absent => 0,
        })
        .min()
        .unwrap_or(0)
}

/// A literal's length, with bytes that are rare in event text counted twice: those of
/// non-ASCII characters (SigmaHQ's homoglyph and Unicode-obfuscation rules look for single
/// Cyrillic or Greek letters) and the escape and variable marks of cmd and PowerShell
/// (`^`, `` ` ``, `$`). Two carets (`^^`, the cmd obfuscation rule's shortest literal) then
/// weigh 4 and are scanned for, instead of the rule being a candidate on every event.
fn weight(s: &str) -> usize {
    s.bytes().map(|b| if b >= 0x80 || matches!(b, b'^' | b'`' | b'$') { 2 } else { 1 }).sum()
}

/// Necessary clauses of a condition, given those of each selection.
fn cond_clauses(c: &Cond, sels: &[Vec<Clause>]) -> Vec<Clause> {
    match c {
        Cond::Sel(i) => sels.get(*i).cloned().unwrap_or_default(),
        Cond::Not(_) => Vec::new(),
        Cond::And(cs) => cs.iter().flat_map(|c| cond_clauses(c, sels)).collect(),
        Cond::Or(cs) => or_clauses(cs.iter().map(|c| cond_clauses(c, sels)).collect()),
        Cond::AtLeast(0, _) => Vec::new(),
        Cond::AtLeast(n, idx) if *n >= idx.len() => idx.iter().flat_map(|i| sels.get(*i).cloned().unwrap_or_default()).collect(),
        Cond::AtLeast(_, idx) => or_clauses(idx.iter().map(|i| sels.get(*i).cloned().unwrap_or_default()).collect()),
    }
}

/// `(a1 and a2) or (b1 and b2)` needs `best(a) or best(b)`; nothing if any side needs nothing.
fn or_clauses(children: Vec<Vec<Clause>>) -> Vec<Clause> {
    if children.is_empty() || children.iter().any(Vec::is_empty) {
        return Vec::new();
    }
    // One side (a selection of one map, `1 of` one selection): every clause of it is needed.
    if children.len() == 1 {
        return children.into_iter().flatten().collect();
    }
    // Fields every side constrains to exact values keep their own clause (the union of
    // the sides' values), so `(Channel: a and EventID: 1) or (Channel: b and EventID: 2)`
    // still routes on both fields.
    let mut out: Vec<Clause> = Vec::new();
    let fields: Vec<usize> = children[0].iter().filter_map(routing_field).collect();
    for f in fields {
        let per_side: Option<Vec<&Clause>> = children.iter().map(|ch| ch.iter().filter(|c| routing_field(c) == Some(f)).min_by_key(|c| c.len())).collect();
        if let Some(sides) = per_side {
            let mut clause: Clause = sides.into_iter().flatten().cloned().collect();
            clause.sort();
            clause.dedup();
            if !out.contains(&clause) {
                out.push(clause);
            }
        }
    }
    let mut best_of_each: Clause = Vec::new();
    for ch in &children {
        if let Some(best) = ch.iter().max_by_key(|c| (score(c), std::cmp::Reverse(c.len()))) {
            best_of_each.extend(best.iter().cloned());
        }
    }
    best_of_each.sort();
    best_of_each.dedup();
    if !out.contains(&best_of_each) {
        out.push(best_of_each);
    }
    out
}

fn selection_clauses(m: &SelectionMatcher, intern: &mut dyn FnMut(FieldKey) -> usize) -> Vec<Clause> {
    match m {
        // Any keyword, anywhere.
        SelectionMatcher::Keywords(kws) => {
            let anywhere = intern(FieldKey { paths: Vec::new(), wild: false });
            let mut clause = Vec::new();
            for k in kws {
                match str_atom(k) {
                    Some(a) => clause.push((anywhere, a)),
                    None => return Vec::new(),
                }
            }
            if clause.is_empty() {
                return Vec::new();
            }
            vec![clause]
        }
        SelectionMatcher::Fields(alts) => or_clauses(alts.iter().map(|conds| conds.iter().flat_map(|c| field_clauses(c, intern)).collect()).collect()),
    }
}

fn field_clauses(c: &FieldCond, intern: &mut dyn FnMut(FieldKey) -> usize) -> Vec<Clause> {
    if c.negate {
        return Vec::new();
    }
    let field = if c.keyword { intern(FieldKey { paths: Vec::new(), wild: false }) } else { intern(FieldKey { paths: c.paths().cloned().collect(), wild: c.is_wild() }) };
    let lits = |m: &ValueMatcher| -> Option<Vec<Lit>> { value_atoms(m).map(|atoms| atoms.into_iter().map(|a| (field, a)).collect()) };
    if c.all {
        c.values.iter().filter_map(lits).collect()
    } else {
        let mut clause = Vec::new();
        for m in &c.values {
            match lits(m) {
                Some(l) => clause.extend(l),
                None => return Vec::new(),
            }
        }
        if clause.is_empty() {
            return Vec::new();
        }
        vec![clause]
    }
}

/// Atoms (OR) implied by one value matcher, or `None` when it implies nothing we index.
fn value_atoms(m: &ValueMatcher) -> Option<Vec<Atom>> {
    match m {
        ValueMatcher::Str(s) => str_atom(s).map(|a| vec![a]),
        // Equal as a number (canonical text) or, for a string value, equal to the text.
        ValueMatcher::Number { value, text } => {
            let mut v = vec![Atom::Eq(text.to_lowercase()), Atom::Eq(canonical(*value))];
            v.dedup();
            Some(v)
        }
        ValueMatcher::Bool(b) => Some(vec![Atom::Eq(b.to_string())]),
        ValueMatcher::Exists(false) => Some(vec![Atom::Absent]),
        ValueMatcher::Regex(re) => regex_atoms(re.as_str()),
        _ => None,
    }
}

/// Substrings every match of a regex contains: its literal prefixes (or suffixes, whichever
/// are longer), as `regex-syntax` extracts them, when they are finitely many, non-empty and
/// ASCII (lowercased: the atoms are case-insensitive, which only widens them).
fn regex_atoms(pattern: &str) -> Option<Vec<Atom>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new().build().parse(pattern).ok()?;
    let inner = required_literals(&hir).and_then(|atoms| Some((atoms.iter().map(String::len).min()?, atoms)));
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .filter_map(|kind| {
            let seq = Extractor::new().kind(kind).extract(&hir);
            let lits = seq.literals()?;
            let mut atoms = Vec::with_capacity(lits.len());
            for l in lits {
                let s = std::str::from_utf8(l.as_bytes()).ok()?;
                if s.is_empty() || !s.is_ascii() {
                    return None;
                }
                atoms.push(s.to_ascii_lowercase());
            }
            atoms.sort();
            atoms.dedup();
            // An empty set means the regex never matches: no atom (the rule stays a candidate).
            let weakest = atoms.iter().map(String::len).min()?;
            Some((weakest, atoms))
        })
        .chain(inner)
        .max_by_key(|(weakest, _)| *weakest)
        .map(|(_, atoms)| atoms.into_iter().map(Atom::Sub).collect())
}

/// At most this many literals from a regex's alternations (more prune too little).
const MAX_REQUIRED: usize = 64;

/// Lowercase ASCII literals one of which every match of `hir` contains, anywhere in it (the
/// prefix and suffix extractors only see a match's ends: `\.exe\s+.*werfaultsecure\.exe`
/// begins with `.exe`, which nearly every command line holds, but needs
/// `werfaultsecure.exe`). `None` when no such set is known. A concatenation contributes its
/// best run of adjacent literal characters or the best set of one of its parts; an
/// alternation the union of its branches' sets (every branch must have one); a repetition
/// its body's set when it repeats at least once.
fn required_literals(hir: &regex_syntax::hir::Hir) -> Option<Vec<String>> {
    use regex_syntax::hir::HirKind;
    fn weakest(set: &[String]) -> usize {
        set.iter().map(String::len).min().unwrap_or(0)
    }
    match hir.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => literal_text(hir).map(|t| vec![t]),
        HirKind::Capture(c) => required_literals(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required_literals(&r.sub),
        HirKind::Alternation(branches) => {
            let mut all = Vec::new();
            for b in branches {
                all.extend(required_literals(b)?);
            }
            all.sort();
            all.dedup();
            (all.len() <= MAX_REQUIRED).then_some(all)
        }
        HirKind::Concat(parts) => {
            let mut best: Option<Vec<String>> = None;
            let consider = |set: Vec<String>, best: &mut Option<Vec<String>>| {
                if weakest(&set) > best.as_deref().map_or(0, weakest) {
                    *best = Some(set);
                }
            };
            let mut run = String::new();
            for part in parts {
                if let Some(t) = literal_text(part) {
                    run.push_str(&t);
                    continue;
                }
                if !run.is_empty() {
                    consider(vec![std::mem::take(&mut run)], &mut best);
                }
                if let Some(set) = required_literals(part) {
                    consider(set, &mut best);
                }
            }
            if !run.is_empty() {
                consider(vec![run], &mut best);
            }
            best
        }
        _ => None,
    }
}

/// The lowercase text `hir` always matches exactly, up to ASCII case: an ASCII literal, one
/// ASCII character, or a letter in both ASCII cases (what `(?i)` makes of a letter; `(?i)k`
/// also holds the Kelvin sign, which lowercases to `k`). Any other class ends a run, `(?i)s`
/// among them: it also holds the long s, which lowercases to itself, so a text matched
/// through it need not contain `s`.
fn literal_text(hir: &regex_syntax::hir::Hir) -> Option<String> {
    use regex_syntax::hir::{Class, HirKind};
    let chars: Vec<(u32, u32)> = match hir.kind() {
        HirKind::Literal(l) => {
            let t = std::str::from_utf8(&l.0).ok()?;
            return (t.is_ascii() && !t.is_empty()).then(|| t.to_ascii_lowercase());
        }
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().map(|r| (u32::from(r.start()), u32::from(r.end()))).collect(),
        HirKind::Class(Class::Bytes(c)) => c.ranges().iter().map(|r| (u32::from(r.start()), u32::from(r.end()))).collect(),
        _ => return None,
    };
    let one = |(a, b): (u32, u32)| (a == b && a < 128).then(|| char::from(a as u8));
    match chars.as_slice() {
        [x] => one(*x).map(|c| c.to_ascii_lowercase().to_string()),
        [x, y] => {
            let (a, b) = (one(*x)?, one(*y)?);
            (a.is_ascii_alphabetic() && a.eq_ignore_ascii_case(&b)).then(|| b.to_ascii_lowercase().to_string())
        }
        // `(?i)k`: the Kelvin sign lowercases to `k`.
        [(0x4B, 0x4B), (0x6B, 0x6B), (0x212A, 0x212A)] => Some("k".to_string()),
        _ => None,
    }
}

fn str_atom(s: &StrMatch) -> Option<Atom> {
    // A case-sensitive match implies the lowercased one only where lowercasing is per
    // character, which ASCII guarantees.
    let low = |t: &str| -> Option<String> {
        if s.cased {
            t.is_ascii().then(|| t.to_ascii_lowercase())
        } else {
            Some(t.to_string())
        }
    };
    match &s.kind {
        StrKind::Any => None,
        StrKind::Equals => low(&s.needle).map(Atom::Eq),
        StrKind::Contains | StrKind::StartsWith | StrKind::EndsWith => (!s.needle.is_empty()).then(|| low(&s.needle).map(Atom::Sub)).flatten(),
        StrKind::Glob(toks) => toks
            .iter()
            .filter_map(|t| match t {
                GlobTok::Lit(l) => Some(l),
                GlobTok::Star | GlobTok::One => None,
            })
            .max_by_key(|l| l.len())
            .and_then(|l| low(l))
            .map(Atom::Sub),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matcher(text: &str) -> RuleMatcher {
        RuleMatcher::new(&crate::load_str("t.yml", text).unwrap_or_else(|d| panic!("{d}")))
    }

    /// Prefiltered and brute-force results agree on `doc`; returns the matches.
    fn check(m: &RuleMatcher, doc: Value) -> Vec<usize> {
        let doc = doc.as_object().unwrap().clone();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        m.matches(&doc, &mut a);
        m.matches_all(&doc, &mut b);
        assert_eq!(a, b, "prefiltered vs brute force on {doc:?}");
        a
    }

    /// [`RuleMatcher::candidates`] of a JSON object.
    fn candidates(m: &RuleMatcher, doc: Value) -> Vec<usize> {
        m.candidates(doc.as_object().unwrap())
    }

    fn rule(id: &str, detection: &str) -> String {
        format!("title: {id}\nid: {id}\ndetection:\n{detection}\n---\n")
    }

    #[test]
    fn a_rule_is_a_candidate_only_when_it_meets_both_of_its_content_clauses() {
        // `img` ends with `.exe` on nearly every event; `cmd`'s flags are rare. Both clauses
        // are necessary, so an event meeting one is not a candidate.
        let text = rule("both", "  sel:\n    img|endswith: ['7z.exe', 'rar.exe']\n    cmd|contains: [' -hp', ' -sdel']\n  condition: sel")
            + &rule("either", "  a:\n    img|endswith: 'tool.exe'\n  b:\n    cmd|contains: 'secret'\n  condition: a or b")
            + &rule("and_or", "  a:\n    img|contains: 'zzz'\n  b:\n    cmd|contains: [' /quiet', ' /norestart']\n  c:\n    par|contains: 'setup'\n  condition: a and (b or c)");
        let m = matcher(&text);
        assert!(m.stats().contains("3 with a content prefilter (2 of them two clauses)"), "{}", m.stats());
        assert_eq!(candidates(&m, json!({"img": "C:\\7z.exe", "cmd": "7z a x.7z"})), Vec::<usize>::new(), "one clause met");
        assert_eq!(candidates(&m, json!({"img": "C:\\x.exe", "cmd": "x -hp"})), Vec::<usize>::new(), "the other clause met");
        assert_eq!(check(&m, json!({"img": "C:\\7Z.EXE", "cmd": "7z a -HPpass x.7z"})), vec![0]);
        assert_eq!(check(&m, json!({"img": "C:\\winrar.exe", "cmd": ["y", "a -sdel"]})), vec![0], "any element of an array");
        assert_eq!(check(&m, json!({"img": "C:\\7z.exe"})), Vec::<usize>::new(), "a field missing");
        // One clause of an `or` is all `either` has.
        assert_eq!(check(&m, json!({"img": "tool.exe", "cmd": "nothing"})), vec![1]);
        assert_eq!(check(&m, json!({"img": "a.exe", "cmd": "a secret"})), vec![1]);
        // `a and (b or c)`: `a`, and one atom of `b`'s or `c`'s.
        assert_eq!(candidates(&m, json!({"img": "zzz.exe", "cmd": "x", "par": "y"})), Vec::<usize>::new());
        assert_eq!(check(&m, json!({"img": "zzz.exe", "cmd": "x", "par": "SETUP.exe"})), vec![2]);
        assert_eq!(check(&m, json!({"img": "zzz.exe", "cmd": "x /quiet", "par": "y"})), vec![2]);
        assert_eq!(check(&m, json!({"img": "zz.exe", "cmd": "x /quiet", "par": "setup"})), Vec::<usize>::new());
    }

    #[test]
    fn short_literals_of_rare_bytes_are_scanned_for() {
        // `^^` and one Cyrillic letter (two bytes) weigh 4; `ab` weighs 2 and is too common
        // to scan for, so its rule is a candidate on every event.
        let text = rule("caret", "  sel:\n    cmd|contains: ['^^', ',;,']\n  condition: sel")
            + &rule("cyrillic", "  sel:\n    cmd|contains: \"\\u0410\"\n  condition: sel")
            + &rule("short", "  sel:\n    cmd|contains: ab\n  condition: sel");
        let m = matcher(&text);
        assert!(m.stats().contains("2 with a content prefilter"), "{}", m.stats());
        assert_eq!(candidates(&m, json!({"cmd": "cmd /c echo hi"})), vec![2]);
        assert_eq!(check(&m, json!({"cmd": "c^^md /c x"})), vec![0]);
        assert_eq!(check(&m, json!({"cmd": "a,;,b"})), vec![0]);
        assert_eq!(check(&m, json!({"cmd": "p\u{0430}ypal.exe ab"})), vec![1, 2], "lower-case а meets the rule's А");
        assert_eq!(check(&m, json!({"cmd": "\u{0410}"})), vec![1]);
    }

    #[test]
    fn routes_on_exact_values_and_prunes_on_substrings() {
        // Enough rules on `chan` for it to become a routing dimension.
        let mut text = String::new();
        for i in 0..6 {
            text += &rule(&format!("r{i}"), &format!("  sel:\n    chan: C{}\n    eid: [1, 2]\n    cmd|contains: needle{i}\n  condition: sel", i % 2));
        }
        text += &rule("anywhere", "  sel:\n    cmd|endswith: '.EXE'\n  condition: sel");
        text += &rule("negated", "  sel:\n    chan: c0\n  filter:\n    cmd|contains: x\n  condition: sel and not filter");
        let m = matcher(&text);
        assert!(m.stats().contains("routed on [chan"), "{}", m.stats());
        assert_eq!(check(&m, json!({"chan": "c0", "eid": 1, "cmd": "a NEEDLE0 b"})), vec![0, 7]);
        assert_eq!(check(&m, json!({"chan": "C1", "eid": "2", "cmd": "needle3 needle1"})), vec![1, 3]);
        assert_eq!(check(&m, json!({"chan": "c0", "eid": 2.0, "cmd": "needle4 run.exe"})), vec![4, 6], "2.0 is 2; the filter sees the x of .exe");
        assert_eq!(check(&m, json!({"chan": "c0", "eid": 3, "cmd": "needle0"})), vec![7], "event id 3 is none of the rules'");
        assert_eq!(check(&m, json!({"chan": ["x", "c1"], "eid": [1], "cmd": ["no", "needle5"]})), vec![5], "arrays: any element");
        // Only the rules that can match are evaluated.
        let doc = json!({"chan": "c0", "eid": 1, "cmd": "needle0"});
        assert_eq!(m.candidates(doc.as_object().unwrap()).len(), 2, "r0 and `negated`");
        assert_eq!(m.candidates(json!({"chan": "c9", "cmd": "zzz"}).as_object().unwrap()).len(), 0);
    }

    #[test]
    fn routes_absent_and_null_values_and_every_value_of_an_array() {
        // `chan` is a dimension; two rules want it absent (one as an alternative).
        let mut text = String::new();
        for i in 0..6 {
            text += &rule(&format!("r{i}"), &format!("  sel:\n    chan: c{i}\n  condition: sel"));
        }
        text += &rule("nochan", "  sel:\n    chan|exists: false\n  condition: sel");
        text += &rule("c0_or_none", "  a:\n    chan: c0\n  b:\n    chan|exists: false\n  condition: a or b");
        let m = matcher(&text);
        assert!(m.stats().contains("routed on [chan"), "{}", m.stats());
        assert_eq!(check(&m, json!({"other": 1})), vec![6, 7], "absent");
        assert_eq!(check(&m, json!({"chan": null})), vec![6, 7], "null is absent for `exists`");
        assert_eq!(check(&m, json!({"chan": "c0"})), vec![0, 7]);
        assert_eq!(m.candidates(json!({"chan": "c3"}).as_object().unwrap()), vec![3], "present: the absent-only rules are not visited");
        // More than a handful of an array's values name buckets: each one is visited.
        assert_eq!(check(&m, json!({"chan": ["c0", "c1", "c2", "c3", "c4", "c5"]})), vec![0, 1, 2, 3, 4, 5, 7]);
    }

    #[test]
    fn keywords_are_searched_in_each_scalar_and_substrings_per_bucket() {
        let mut text = String::new();
        for i in 0..6 {
            text += &rule(&format!("r{i}"), &format!("  sel:\n    chan: c{}\n    cmd|contains: needle{i}\n  condition: sel", i % 2));
        }
        text += &rule("kw", "  keywords:\n    - 'BADWORD'\n    - 'évil'\n  condition: keywords");
        let m = matcher(&text);
        assert!(m.stats().contains("routed on [chan"), "{}", m.stats());
        // Within one scalar, anywhere in the event, case-insensitively, also non-ASCII.
        assert_eq!(check(&m, json!({"a": {"b": ["x", "a badword here"]}})), vec![6]);
        assert_eq!(check(&m, json!({"n": 1, "s": "ÉVIL"})), vec![6]);
        assert_eq!(check(&m, json!({"n": 1, "s": "A BadWord HERE"})), vec![6], "ASCII text in any case");
        // Not across two scalars: "bad" + "word" are two values.
        let split = json!({"a": "x bad", "b": "word y"});
        assert_eq!(check(&m, split.clone()), Vec::<usize>::new());
        assert!(m.candidates(split.as_object().unwrap()).is_empty(), "the joined search does not bridge scalars");
        // A bucket's substrings are searched only for events in that bucket.
        assert!(m.candidates(json!({"chan": "c1", "cmd": "needle0 needle2"}).as_object().unwrap()).is_empty());
        assert_eq!(check(&m, json!({"chan": "c0", "cmd": "needle0 needle2 needle1"})), vec![0, 2]);
    }

    #[test]
    fn keywords_in_numbers_and_booleans_are_found_when_a_pattern_can_be_there() {
        // Patterns that can lie in a number's or a boolean's text keep those texts in the
        // keyword search; a set of letters-only patterns leaves them out, and finds the same.
        for (kw, hit, miss) in [
            ("'1234'", json!({"s": "x", "n": 512345}), json!({"s": "x", "n": 5123})),
            ("'-2.5'", json!({"f": -2.5}), json!({"f": 2.5})),
            ("'1e+21'", json!({"s": "1e+21"}), json!({"s": "1e21"})),
            ("'rue'", json!({"b": true}), json!({"b": false})),
            ("'als'", json!({"a": [1, false]}), json!({"a": [1, true]})),
        ] {
            let m = matcher(&(rule("kw", &format!("  keywords:\n    - {kw}\n  condition: keywords")) + &rule("word", "  keywords:\n    - 'BADWORD'\n  condition: keywords")));
            assert_eq!(check(&m, hit.clone()), vec![0], "{kw} in {hit}");
            assert_eq!(check(&m, miss.clone()), Vec::<usize>::new(), "{kw} not in {miss}");
            assert_eq!(check(&m, json!({"n": 987, "s": "a badword"})), vec![1]);
        }
        assert!(may_be_in_scalar_text("-12.5e+3") && may_be_in_scalar_text("ru") && !may_be_in_scalar_text("sekurlsa::") && !may_be_in_scalar_text("12a"));
    }

    #[test]
    fn fields_are_found_nested_dotted_or_under_details_and_skipped_when_absent() {
        let text = rule("deep", "  sel:\n    win.data.cmd|contains: needle\n  condition: sel") + &rule("flat", "  sel:\n    Image|endswith: '\\evil.exe'\n  condition: sel");
        let m = matcher(&text);
        for doc in [
            json!({"win": {"data": {"cmd": "a needle"}}}),
            json!({"win.data.cmd": "a needle"}),
            json!({"win.data": {"cmd": "a needle"}}),
            json!({"win": {"data.cmd": "a needle"}}),
            json!({"details": {"win": {"data": {"cmd": "a needle"}}}}),
            json!({"details": {"win.data.cmd": "a needle"}}),
        ] {
            assert_eq!(check(&m, doc.clone()), vec![0], "{doc}");
        }
        assert_eq!(check(&m, json!({"details": {"Image": "C:\\x\\EVIL.exe"}, "other": 1})), vec![1]);
        // Neither field's first segment is a key: no lookup, no candidate.
        let absent = json!({"windows": {"data": {"cmd": "needle"}}, "details": {"image": "\\evil.exe", "wi": 1}});
        assert_eq!(check(&m, absent.clone()), Vec::<usize>::new());
        assert!(m.candidates(absent.as_object().unwrap()).is_empty());
        // Many keys (the filter's bits fill up): still exact.
        let mut many = serde_json::Map::new();
        for i in 0..300 {
            many.insert(format!("k{i}"), json!(i));
        }
        many.insert("Image".into(), json!("c:\\evil.exe"));
        assert_eq!(check(&m, Value::Object(many)), vec![1]);
    }

    #[test]
    fn a_number_gives_its_json_text_and_its_canonical_text() {
        let numbers = [json!(0), json!(-1), json!(5), json!(999_999_999_999_999u64), json!(1_000_000_000_000_000u64), json!(1_000_000_000_000_001u64), json!(-1_000_000_000_000_000i64), json!(u64::MAX), json!(i64::MIN), json!(5.0), json!(0.5), json!(-2.0), json!(1e20)];
        for v in numbers {
            let mut got = Vec::new();
            each_text(&v, &mut String::new(), &mut |t| got.push(t.to_string()));
            let Value::Number(n) = &v else { panic!() };
            let mut want = vec![n.to_string()];
            if let Some(c) = n.as_f64().map(canonical).filter(|c| *c != want[0]) {
                want.push(c);
            }
            assert_eq!(got, want, "{v}");
        }
    }

    #[test]
    fn a_regex_needs_one_of_its_inner_literals() {
        let atoms = |p: &str| -> Option<Vec<String>> {
            regex_atoms(p).map(|v| v.into_iter().map(|a| match a {
                Atom::Sub(s) => s,
                other => panic!("{other:?}"),
            }).collect())
        };
        // The inner literal beats a weak prefix and an open suffix.
        // (`(?i)s` also matches the long s, which lowercases to itself: a run ends there.)
        assert_eq!(atoms(r#"(?i)\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe["']?\s+\d{2,10}"#), Some(vec!["ecure.exe".to_string()]));
        assert_eq!(atoms(r#"\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe"#), Some(vec!["werfaultsecure.exe".to_string()]));
        assert_eq!(atoms(r"\s(Get|Set)-Content\s+-Path"), Some(vec!["-content".to_string()]));
        assert_eq!(atoms(r"(?i)\s(Get|Set)-Content\s+-Path"), Some(vec!["-content".to_string()]));
        assert_eq!(atoms(r"x+(alpha|beta)y*gamma\s"), Some(vec!["gamma".to_string()]));
        // A stronger suffix still wins.
        assert_eq!(atoms(r"x+(alpha|beta)y*gamma"), Some(vec!["xalphagamma".to_string(), "xbetagamma".to_string(), "ygamma".to_string()]));
        assert_eq!(atoms(r"(?i)a.*(needle|haystack)"), Some(vec!["needle".to_string(), "tack".to_string()]));
        assert_eq!(atoms(r"(?i)x.*rose\d"), Some(vec!["ro".to_string()]));
        assert_eq!(atoms(r"(?i)zz.*kit\d"), Some(vec!["kit".to_string()]));
        // Optional parts and empty branches give nothing.
        assert_eq!(atoms(r".*(needle)?.*"), None);
        assert_eq!(atoms(r".*(needle|).*"), None);

        // Whatever the atoms, a text the regex matches contains one of them (lowercased).
        let patterns = [
            r"(?i)\.exe.*werfault\.exe",
            r"(?i)(cmd|power)shell.*-enc",
            r"a(bc)+d.*ef",
            r"(?i)x.*rose",
            r"(?i)K[a-z]+kit",
            r"\b(net|net1)\s+user\b",
            r"[Aa][Bb]c.*(d|e)fg",
            r"(?i)(?:\\|/)temp(?:\\|/)[a-z]{3}\.ps1",
        ];
        let texts = [
            "C:\\x.EXE /c WerFault.exe 1234",
            "POWERSHELL.exe -EncodedCommand ZQ==",
            "abcbcd ef",
            "X the ROſE",
            "xx \u{212A}itkit",
            "net user bob",
            "ABc efg",
            "C:\\TEMP\\abc.PS1",
            "nothing here",
        ];
        let mut checked = 0;
        for p in patterns {
            let re = regex::Regex::new(p).unwrap();
            let atoms = atoms(p).unwrap_or_else(|| panic!("no atoms for {p}"));
            for t in texts {
                if re.is_match(t) {
                    let low = t.to_lowercase();
                    assert!(atoms.iter().any(|a| low.contains(a.as_str())), "{p} matches {t:?} but none of {atoms:?} is in it");
                    checked += 1;
                }
            }
        }
        assert!(checked >= patterns.len(), "only {checked} matches checked");
    }

    #[test]
    fn exact_on_the_matchers_edge_cases() {
        let mut text = String::new();
        text += &rule("cased", "  sel:\n    f|cased|contains: AbC\n  condition: sel");
        text += &rule("unicode", "  sel:\n    f|contains: ÄRGER\n  condition: sel");
        text += &rule("glob", "  sel:\n    f: 'a*longest?x'\n  condition: sel");
        text += &rule("or", "  a:\n    f|contains: alpha\n  b:\n    g: 5\n  condition: a or b");
        text += &rule("or-open", "  a:\n    f|contains: alpha\n  b:\n    g|re: '^z'\n  condition: a or b");
        text += &rule("one-of", "  s1:\n    f: one\n  s2:\n    f|startswith: two\n  condition: 1 of s*");
        text += &rule("all", "  sel:\n    f|contains|all: [red, green]\n  condition: sel");
        text += &rule("bool", "  sel:\n    b: true\n  condition: sel");
        text += &rule("hex", "  sel:\n    n: 0x10\n  condition: sel");
        text += &rule("keyword", "  kw:\n    - secret\n  condition: kw");
        text += &rule("null", "  sel:\n    f: null\n  condition: sel");
        text += &rule("regex", "  sel:\n    f|re: '-(W|R)\\s?[0-9a-f]{2}'\n  condition: sel");
        text += &rule("regex-i", "  sel:\n    f|re|i: 'net\\s+config'\n  condition: sel");
        text += &rule("regex-open", "  sel:\n    f|re: '.+:role/.+'\n  condition: sel");
        let m = matcher(&text);
        let docs = [
            json!({"f": "xxAbCxx"}),
            json!({"f": "xxabcxx"}),
            json!({"f": "der ärger"}),
            json!({"f": "DER ÄRGER"}),
            json!({"f": "A__LONGESTQX"}),
            json!({"f": "alpha"}),
            json!({"g": 5}),
            json!({"g": "5"}),
            json!({"g": 5.0}),
            json!({"g": "zed"}),
            json!({"f": "ONE"}),
            json!({"f": "twofold"}),
            json!({"f": "green and red"}),
            json!({"f": "green"}),
            json!({"b": "TRUE"}),
            json!({"b": true}),
            json!({"n": 16}),
            json!({"n": "0x10"}),
            json!({"x": {"y": "top SECRET"}}),
            json!({"g": 1}),
            json!({"f": "x -W 3f y"}),
            json!({"f": "x -w 3f y"}),
            json!({"f": "NET   CONFIG"}),
            json!({"f": "a:role/b"}),
        ];
        let mut seen = 0;
        for d in docs {
            seen += check(&m, d).len();
        }
        assert!(seen >= 21, "the cases exercise matches ({seen})");
    }
}
