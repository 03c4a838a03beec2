//! Detection rules: `detection:` selections and condition, compiled to [`Detection`].

use crate::condition::{self, Cond};
use crate::matcher::{compile_str, scalar_text, tokenize, Anchor, Hay, NumOp, StrMatch, TimePart, ValueMatcher};
use crate::pipeline::Pipelines;
use crate::yaml::{kind_name, pos, spos, Sink};
use marked_yaml::types::MarkedScalarNode;
use marked_yaml::Node;
use rampart_core::{field, FieldPath};
use serde_json::{Map, Value};

/// Sigma's `logsource`: with no [pipeline](crate::pipeline) it does not filter; a pipeline
/// turns it into extra conditions and field renames at load time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSource {
    /// `logsource.product`
    pub product: Option<String>,
    /// `logsource.category`
    pub category: Option<String>,
    /// `logsource.service`
    pub service: Option<String>,
}

/// A compiled detection: named selections and the condition over them.
#[derive(Clone, Debug)]
pub struct Detection {
    /// Parsed `logsource` (as written; pipelines have already been applied).
    pub logsource: LogSource,
    /// Selections in definition order; the condition refers to them by index.
    pub selections: Vec<Selection>,
    /// The condition (a list of conditions is compiled to their OR).
    pub condition: Cond,
}

/// One named selection.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Its name in `detection:`.
    pub name: String,
    /// What it tests.
    pub matcher: SelectionMatcher,
}

/// The three shapes a selection can take.
#[derive(Clone, Debug)]
pub enum SelectionMatcher {
    /// OR over maps, each the AND of its field conditions (a single map is one entry).
    Fields(Vec<Vec<FieldCond>>),
    /// Keyword search: any string anywhere in the event matches any of these.
    Keywords(Vec<StrMatch>),
}

/// `Field|mods: values` compiled.
#[derive(Clone, Debug)]
pub struct FieldCond {
    /// The key as written in the rule (`Image|endswith`), for explanations.
    pub key: String,
    /// The field addressed.
    pub field: FieldPath,
    /// Other places the same field may live (from a pipeline's one-to-many mapping): the
    /// first of `field`, `fallbacks…` present in the event is the value tested.
    pub fallbacks: Vec<FieldPath>,
    /// Alternatives (OR), or conjuncts when `all` is set.
    pub values: Vec<ValueMatcher>,
    /// `all` modifier.
    pub all: bool,
    /// `neq` modifier: the field is present (not null) and matches none of `values`.
    pub negate: bool,
    /// Empty field name (`'|all': [...]`): the values are keywords searched in every
    /// string of the event, like a keyword list.
    pub keyword: bool,
    /// Every value is a string pattern: the event value is prepared once for all of them.
    str_only: bool,
    /// Some path has a `*` segment (any key at that level, e.g. `Event.UserData.*.User`).
    wild: bool,
    /// With many case-insensitive `contains` values (a list of command-line fragments),
    /// one automaton for them all, and the positions of the other values.
    contains: Option<Box<ContainsSet>>,
    /// This lookup's id in a [`crate::RuleMatcher`], whose matching remembers each id's
    /// value per event ([`Doc`]); [`NO_SLOT`] outside one.
    slot: u32,
}

/// A field condition not numbered by a matcher: its lookups are not remembered.
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// From this many case-insensitive `contains` values on, they are searched at once.
const CONTAINS_SET_FROM: usize = 4;

/// The case-insensitive `contains` values of a string-only condition, searched at once.
#[derive(Clone, Debug)]
struct ContainsSet {
    /// Over the needles (lowercased), ASCII case-insensitive.
    ac: aho_corasick::AhoCorasick,
    /// The positions of the values it does not cover.
    rest: Vec<usize>,
    /// Some needle is ASCII. When none is (homoglyph lists: Cyrillic letters, invisible
    /// characters), an ASCII text cannot contain any, and is not searched.
    ascii: bool,
}

/// The automaton over the case-insensitive `contains` values of a string-only condition
/// (their needles are lowercased), with the positions of the values it does not cover.
fn contains_set(values: &[ValueMatcher]) -> Option<Box<ContainsSet>> {
    let is_set = |m: &ValueMatcher| matches!(m, ValueMatcher::Str(s) if s.kind == crate::matcher::StrKind::Contains && !s.cased);
    let needles: Vec<&str> = values.iter().filter(|m| is_set(m)).filter_map(|m| match m {
        ValueMatcher::Str(s) => Some(s.needle.as_str()),
        _ => None,
    }).collect();
    if needles.len() < CONTAINS_SET_FROM {
        return None;
    }
    let ac = aho_corasick::AhoCorasickBuilder::new().ascii_case_insensitive(true).build(&needles).ok()?;
    let rest = values.iter().enumerate().filter(|(_, m)| !is_set(m)).map(|(i, _)| i).collect();
    let ascii = needles.iter().any(|n| n.is_ascii());
    Some(Box::new(ContainsSet { ac, rest, ascii }))
}

impl FieldCond {
    /// The field's name(s): `field` then the fallbacks.
    pub fn paths(&self) -> impl Iterator<Item = &FieldPath> {
        std::iter::once(&self.field).chain(&self.fallbacks)
    }

    /// Replaces the addressed paths (pipelines rename fields at load time, never per event).
    pub(crate) fn set_paths(&mut self, mut paths: Vec<FieldPath>) {
        if paths.is_empty() {
            return;
        }
        self.field = paths.remove(0);
        self.fallbacks = paths;
        let wild = self.paths().any(|p| p.segments().iter().any(|s| s == "*"));
        self.wild = wild;
    }

    /// The event value this condition tests.
    pub fn lookup<'d>(&self, doc: &'d Map<String, Value>) -> Option<&'d Value> {
        self.lookup_in(&Doc::new(doc))
    }

    fn lookup_in<'d>(&self, doc: &Doc<'d>) -> Option<&'d Value> {
        doc.remembered(self.slot, || {
            if !self.wild && self.fallbacks.is_empty() {
                return doc.lookup_event(&self.field);
            }
            lookup_paths_iter(self.paths(), self.wild, doc)
        })
    }

    /// Some path has a `*` segment.
    pub(crate) fn is_wild(&self) -> bool {
        self.wild
    }

    pub(crate) fn matches(&self, doc: &Doc<'_>) -> bool {
        if self.negate {
            return self.lookup_in(doc).is_some_and(|v| !v.is_null()) && !self.matches_values(doc);
        }
        self.matches_values(doc)
    }

    fn matches_values(&self, doc: &Doc<'_>) -> bool {
        if self.keyword {
            let anywhere = |m: &ValueMatcher| doc.map.values().any(|x| any_leaf(x, &|leaf| m.matches(Some(leaf), &|_| None)));
            return if self.all { self.values.iter().all(anywhere) } else { self.values.iter().any(anywhere) };
        }
        let v = self.lookup_in(doc);
        if self.str_only && !self.all {
            let str_match = |m: &ValueMatcher, hay: &Hay<'_>| matches!(m, ValueMatcher::Str(s) if s.is_match_hay(hay));
            return v.is_some_and(|v| any_scalar(v, &|text| {
                let hay = Hay::new(text);
                match &self.contains {
                    // Same answer as each value's own search: the needles are lowercase
                    // and the text is ASCII (compared ASCII-case-insensitively) or
                    // lowercased.
                    Some(set) => {
                        ((set.ascii || !hay.is_ascii()) && set.ac.is_match(hay.folded()))
                            || set.rest.iter().any(|&i| self.values.get(i).is_some_and(|m| str_match(m, &hay)))
                    }
                    None => self.values.iter().any(|m| str_match(m, &hay)),
                }
            }));
        }
        let lookup = |p: &FieldPath| doc.lookup_event(p).cloned();
        if self.all {
            self.values.iter().all(|m| m.matches(v, &lookup))
        } else {
            self.values.iter().any(|m| m.matches(v, &lookup))
        }
    }
}

/// [`FieldCond::lookup`] for `paths` (the field, then its fallbacks) and its `wild` flag.
pub(crate) fn lookup_paths<'d>(paths: &[FieldPath], wild: bool, doc: &Doc<'d>) -> Option<&'d Value> {
    match paths {
        [only] if !wild => doc.lookup_event(only),
        _ => lookup_paths_iter(paths.iter(), wild, doc),
    }
}

/// The first of `paths` present; only paths with a `*` segment take the slower walk.
fn lookup_paths_iter<'p, 'd>(mut paths: impl Iterator<Item = &'p FieldPath>, wild: bool, doc: &Doc<'d>) -> Option<&'d Value> {
    paths.find_map(|p| if wild && p.segments().iter().any(|s| s == "*") { lookup_wild(p.segments(), doc.map) } else { doc.lookup_event(p) })
}

/// An event document as matching reads it: its many lookups share what they learn about
/// literal dotted keys ([`field::DottedKeys`]), so a lookup that misses (most lookups of
/// most rules' fields, on SigmaHQ's rule set) does not scan the event's keys again to rule
/// them out.
///
/// It also remembers the values of numbered lookups ([`FieldCond`]s and prefilter fields of
/// a [`crate::RuleMatcher`] share the numbering): on SigmaHQ, the ~20 candidate rules an
/// event is checked against mostly read the same few fields (`Image`, `CommandLine`,
/// `ParentImage`, …), each lookup three hashed map probes deep.
pub(crate) struct Doc<'d> {
    pub(crate) map: &'d Map<String, Value>,
    dotted: field::DottedKeys<'d>,
    memo: [std::cell::Cell<(u32, Option<&'d Value>)>; MEMO],
}

/// Remembered lookups per event (an open-addressed table; a lookup that finds its probe
/// run full is simply made again).
const MEMO: usize = 64;
/// Probes before giving up on remembering a lookup.
const MEMO_PROBES: usize = 4;

impl<'d> Doc<'d> {
    pub(crate) fn new(map: &'d Map<String, Value>) -> Doc<'d> {
        Doc { map, dotted: field::DottedKeys::default(), memo: std::array::from_fn(|_| std::cell::Cell::new((NO_SLOT, None))) }
    }

    /// The value of lookup `slot`, from memory or by `lookup` (remembered when there is
    /// room). [`NO_SLOT`] always looks up.
    pub(crate) fn remembered(&self, slot: u32, lookup: impl FnOnce() -> Option<&'d Value>) -> Option<&'d Value> {
        if slot == NO_SLOT {
            return lookup();
        }
        let home = (slot.wrapping_mul(0x9E37_79B1) >> 26) as usize;
        for i in 0..MEMO_PROBES {
            let cell = &self.memo[(home + i) % MEMO];
            let (s, v) = cell.get();
            if s == slot {
                return v;
            }
            if s == NO_SLOT {
                let v = lookup();
                cell.set((slot, v));
                return v;
            }
        }
        lookup()
    }

    /// [`FieldPath::lookup_event`].
    pub(crate) fn lookup_event(&self, p: &FieldPath) -> Option<&'d Value> {
        p.lookup_event_cached(self.map, &self.dotted)
    }
}

/// Path lookup where a `*` segment stands for any key at its level (first hit wins, in
/// document order); paths without `*` resolve as [`FieldPath::lookup_event`] does.
fn lookup_wild<'d>(segs: &[String], doc: &'d Map<String, Value>) -> Option<&'d Value> {
    if !segs.iter().any(|s| s == "*") {
        return FieldPath::new(&segs.join(".")).lookup_event(doc);
    }
    fn go<'d>(segs: &[String], v: &'d Value) -> Option<&'d Value> {
        let Some((first, rest)) = segs.split_first() else { return Some(v) };
        let Value::Object(o) = v else { return None };
        if first == "*" {
            o.values().find_map(|x| go(rest, x))
        } else {
            field::get(o, first).and_then(|x| go(rest, x))
        }
    }
    let (first, rest) = segs.split_first()?;
    if first == "*" {
        return doc.values().find_map(|x| go(rest, x));
    }
    field::get(doc, first).and_then(|x| go(rest, x)).or_else(|| match field::get(doc, "details") {
        Some(Value::Object(d)) if first != "details" => field::get(d, first).and_then(|x| go(rest, x)),
        _ => None,
    })
}

/// Applies `f` to the text of a scalar, or of any scalar element of an array.
fn any_scalar(v: &Value, f: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().any(|x| !x.is_array() && any_scalar(x, f)),
        other => scalar_text(other).is_some_and(|t| f(&t)),
    }
}

fn any_leaf(v: &Value, f: &dyn Fn(&Value) -> bool) -> bool {
    match v {
        Value::Object(o) => o.values().any(|x| any_leaf(x, f)),
        Value::Array(a) => a.iter().any(|x| any_leaf(x, f)),
        Value::Null => false,
        leaf => f(leaf),
    }
}

impl Selection {
    pub(crate) fn matches(&self, doc: &Doc<'_>) -> bool {
        match &self.matcher {
            SelectionMatcher::Fields(alts) => alts.iter().any(|conds| conds.iter().all(|c| c.matches(doc))),
            SelectionMatcher::Keywords(kws) => {
                kws.iter().any(|k| doc.map.values().any(|x| crate::matcher::keyword_in(x, k)))
            }
        }
    }
}

impl Detection {
    /// Numbers every field condition's lookup (keyword conditions excepted) with `slot`.
    pub(crate) fn number_lookups(&mut self, slot: &mut dyn FnMut(&FieldCond) -> u32) {
        for sel in &mut self.selections {
            if let SelectionMatcher::Fields(alts) = &mut sel.matcher {
                for c in alts.iter_mut().flatten().filter(|c| !c.keyword) {
                    c.slot = slot(c);
                }
            }
        }
    }

    /// Does the event match? (`logsource` is not consulted.)
    pub fn matches(&self, event: &rampart_core::Event) -> bool {
        self.matches_doc(&event.doc)
    }

    /// Same as [`Detection::matches`] on a bare document.
    pub fn matches_doc(&self, doc: &Map<String, Value>) -> bool {
        self.matches_in(&Doc::new(doc))
    }

    pub(crate) fn matches_in(&self, doc: &Doc<'_>) -> bool {
        self.condition.eval(&|i| self.selections.get(i).is_some_and(|s| s.matches(doc)))
    }
}

impl Detection {
    /// Why the event does or does not match: every selection with each field condition's
    /// result and the value seen, then the condition and its result. Same semantics as
    /// [`Detection::matches_doc`] (a test keeps them equal).
    pub fn explain(&self, doc: &Map<String, Value>) -> (bool, String) {
        use std::fmt::Write;
        let mut out = String::new();
        let d = &Doc::new(doc);
        for s in &self.selections {
            let hit = s.matches(d);
            let _ = writeln!(out, "selection {}: {}", s.name, if hit { "matched" } else { "no match" });
            match &s.matcher {
                SelectionMatcher::Keywords(k) => {
                    let _ = writeln!(out, "  keywords ({} patterns) searched in every string of the event", k.len());
                }
                SelectionMatcher::Fields(alts) => {
                    for (i, conds) in alts.iter().enumerate() {
                        if alts.len() > 1 {
                            let all = conds.iter().all(|c| c.matches(d));
                            let _ = writeln!(out, "  alternative {} of {}: {}", i + 1, alts.len(), if all { "matched" } else { "no match" });
                        }
                        for c in conds {
                            let ok = c.matches(d);
                            let paths: Vec<&str> = c.paths().map(FieldPath::as_str).collect();
                            let seen = if c.keyword {
                                "(any string of the event)".to_string()
                            } else {
                                match c.lookup(doc) {
                                    None => "absent".to_string(),
                                    Some(v) => {
                                        let t = v.to_string();
                                        if t.chars().count() > 200 { format!("{}…", t.chars().take(200).collect::<String>()) } else { t }
                                    }
                                }
                            };
                            let at = if c.keyword || paths == [c.key.split('|').next().unwrap_or("")] { String::new() } else { format!(" → {}", paths.join(" | ")) };
                            let _ = writeln!(out, "    [{}] {}{at}: seen {seen}", if ok { "x" } else { " " }, c.key);
                        }
                    }
                }
            }
        }
        let names: Vec<&str> = self.selections.iter().map(|s| s.name.as_str()).collect();
        let result = self.matches_doc(doc);
        let _ = writeln!(out, "condition: {} → {}", render(&self.condition, &names), if result { "MATCH" } else { "no match" });
        (result, out)
    }
}

/// The condition as text over selection names (pipelines' added selections included).
fn render(c: &Cond, names: &[&str]) -> String {
    let name = |i: &usize| names.get(*i).map(|n| if n.contains(' ') { format!("`{n}`") } else { n.to_string() }).unwrap_or_default();
    let group = |c: &Cond| match c {
        Cond::And(_) | Cond::Or(_) => format!("({})", render(c, names)),
        _ => render(c, names),
    };
    match c {
        Cond::Sel(i) => name(i),
        Cond::Not(inner) => format!("not {}", group(inner)),
        Cond::And(cs) => cs.iter().map(group).collect::<Vec<_>>().join(" and "),
        Cond::Or(cs) => cs.iter().map(group).collect::<Vec<_>>().join(" or "),
        Cond::AtLeast(n, idx) => {
            let list = idx.iter().map(name).collect::<Vec<_>>().join(", ");
            if *n == idx.len() && *n > 1 { format!("all of ({list})") } else { format!("{n} of ({list})") }
        }
    }
}

/// Every modifier name we know, for "valid modifiers" hints.
pub(crate) const MODIFIERS: &[&str] = &[
    "contains", "startswith", "endswith", "all", "re", "i", "m", "s", "cidr", "exists", "gt", "gte", "lt", "lte",
    "neq", "cased", "windash", "base64", "base64offset", "utf16le", "wide", "utf16be", "utf16", "fieldref", "expand",
    "minute", "hour", "day", "week", "month", "year",
];

/// What compiling a value may consult besides the rule: the placeholders of `expand`.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub pipelines: &'a Pipelines,
    pub logsource: &'a LogSource,
}

/// Compiles `detection:`; all problems go to `sink`. `None` when anything was wrong.
pub(crate) fn compile(node: &Node, key_at: (usize, usize), logsource: LogSource, pipelines: &Pipelines, sink: &mut Sink) -> Option<Detection> {
    let ctx = Ctx { pipelines, logsource: &logsource };
    let Some(map) = node.as_mapping() else {
        sink.error("R100", key_at, "detection", format!("`detection` must be a mapping of selections and a `condition`, found {}", kind_name(node)));
        return None;
    };
    let before = sink.diags.len();
    let mut selections = Vec::new();
    let mut cond_node = None;
    for (k, v) in map.iter() {
        let name = k.as_str();
        if name == "condition" {
            cond_node = Some(v);
            continue;
        }
        if name == "timeframe" {
            sink.error_hint("R113", spos(k), "detection.timeframe", "Sigma v1 `timeframe` is not supported", "use a correlation rule with `timespan`");
            continue;
        }
        if let Some(m) = compile_selection(name, v, ctx, sink) {
            selections.push(Selection { name: name.to_string(), matcher: m });
        }
    }
    let names: Vec<String> = map.iter().map(|(k, _)| k.as_str().to_string()).filter(|n| n != "condition" && n != "timeframe").collect();
    let Some(cond_node) = cond_node else {
        sink.error_hint("R100", key_at, "detection", "`detection` has no `condition`", "add e.g. `condition: selection`");
        return None;
    };
    let condition = compile_condition(cond_node, &names, sink);
    if sink.diags.len() > before || selections.len() != names.len() {
        return None;
    }
    Some(Detection { logsource, selections, condition: condition? })
}

fn compile_condition(node: &Node, names: &[String], sink: &mut Sink) -> Option<Cond> {
    let one = |s: &MarkedScalarNode, path: &str, sink: &mut Sink| match condition::parse(s.as_str(), names) {
        Ok(c) => Some(c),
        Err(e) => {
            let at = sink.inside(spos(s), e.offset);
            sink.push(crate::Severity::Error, e.code, at, path, e.message, e.hint);
            None
        }
    };
    match node {
        Node::Scalar(s) => one(s, "detection.condition", sink),
        Node::Sequence(seq) if !seq.is_empty() => {
            let mut out = Vec::new();
            for (i, n) in seq.iter().enumerate() {
                let path = format!("detection.condition[{i}]");
                match n {
                    Node::Scalar(s) => out.push(one(s, &path, sink)),
                    other => {
                        sink.error("R110", pos(other), &path, format!("a condition must be a string, found {}", kind_name(other)));
                        out.push(None);
                    }
                }
            }
            let out: Option<Vec<Cond>> = out.into_iter().collect();
            out.map(|mut v| if v.len() == 1 { v.remove(0) } else { Cond::Or(v) })
        }
        other => {
            sink.error("R110", pos(other), "detection.condition", format!("`condition` must be a string or a list of strings, found {}", kind_name(other)));
            None
        }
    }
}

fn compile_selection(name: &str, node: &Node, ctx: Ctx<'_>, sink: &mut Sink) -> Option<SelectionMatcher> {
    compile_selection_at(name, &format!("detection.{name}"), node, ctx, sink)
}

/// Compiles one selection whose diagnostics carry `path` (pipelines' `add_condition` reuse it).
pub(crate) fn compile_selection_at(name: &str, path: &str, node: &Node, ctx: Ctx<'_>, sink: &mut Sink) -> Option<SelectionMatcher> {
    let path = path.to_string();
    match node {
        Node::Mapping(_) => compile_map(node, &path, ctx, sink).map(|c| SelectionMatcher::Fields(vec![c])),
        Node::Sequence(seq) if seq.iter().all(|n| matches!(n, Node::Mapping(_))) && !seq.is_empty() => {
            let mut alts = Vec::new();
            let mut ok = true;
            for (i, n) in seq.iter().enumerate() {
                match compile_map(n, &format!("{path}[{i}]"), ctx, sink) {
                    Some(c) => alts.push(c),
                    None => ok = false,
                }
            }
            ok.then_some(SelectionMatcher::Fields(alts))
        }
        Node::Sequence(seq) if seq.iter().all(|n| matches!(n, Node::Scalar(_))) && !seq.is_empty() => {
            let kws = seq
                .iter()
                .filter_map(|n| n.as_scalar())
                .map(|s| compile_str(tokenize(s.as_str()), Anchor::Contains, false))
                .collect();
            Some(SelectionMatcher::Keywords(kws))
        }
        Node::Scalar(s) if s.may_coerce() && s.as_str().is_empty() => {
            sink.error_hint("R101", pos(node), &path, format!("selection `{name}` is empty"), "give it field conditions or keywords");
            None
        }
        Node::Scalar(s) => Some(SelectionMatcher::Keywords(vec![compile_str(tokenize(s.as_str()), Anchor::Contains, false)])),
        Node::Sequence(_) => {
            sink.error_hint(
                "R101",
                pos(node),
                &path,
                format!("selection `{name}` mixes shapes (or is empty)"),
                "a selection is a map of field conditions, a list of such maps, or a list of keywords",
            );
            None
        }
    }
}

fn compile_map(node: &Node, path: &str, ctx: Ctx<'_>, sink: &mut Sink) -> Option<Vec<FieldCond>> {
    let map = node.as_mapping()?;
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in map.iter() {
        match compile_field(k, v, &format!("{path}.{}", k.as_str()), ctx, sink) {
            Some(c) => out.push(c),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

#[derive(Default)]
struct Mods {
    anchor: Option<(Anchor, &'static str)>,
    all: bool,
    cased: bool,
    re: bool,
    re_flags: String,
    cidr: bool,
    exists: bool,
    cmp: Option<NumOp>,
    fieldref: bool,
    windash: bool,
    base64: Option<bool>, // Some(true) = base64offset
    utf16: Option<&'static str>,
    neq: bool,
    time: Option<TimePart>,
    expand: bool,
}

fn compile_field(key: &MarkedScalarNode, value: &Node, path: &str, ctx: Ctx<'_>, sink: &mut Sink) -> Option<FieldCond> {
    let raw = key.as_str();
    let mut parts = raw.split('|');
    let field = parts.next().unwrap_or("");
    let kpos = spos(key);
    let mut mods = Mods::default();
    let mut offset = field.chars().count();
    let mut ok = true;
    for m in parts {
        let at = sink.inside(kpos, offset);
        offset += 1 + m.chars().count();
        let set_anchor = |mods: &mut Mods, a: Anchor, n: &'static str, sink: &mut Sink| {
            if let Some((_, prev)) = mods.anchor {
                sink.error("R109", at, path, format!("modifiers `{prev}` and `{n}` cannot be combined"));
                false
            } else {
                mods.anchor = Some((a, n));
                true
            }
        };
        let good = match m {
            "contains" => set_anchor(&mut mods, Anchor::Contains, "contains", sink),
            "startswith" => set_anchor(&mut mods, Anchor::StartsWith, "startswith", sink),
            "endswith" => set_anchor(&mut mods, Anchor::EndsWith, "endswith", sink),
            "all" => {
                mods.all = true;
                true
            }
            "cased" => {
                mods.cased = true;
                true
            }
            "re" => {
                mods.re = true;
                true
            }
            "i" | "m" | "s" => {
                mods.re_flags.push_str(m);
                true
            }
            "cidr" => {
                mods.cidr = true;
                true
            }
            "exists" => {
                mods.exists = true;
                true
            }
            "gt" | "gte" | "lt" | "lte" => {
                mods.cmp = Some(match m {
                    "gt" => NumOp::Gt,
                    "gte" => NumOp::Gte,
                    "lt" => NumOp::Lt,
                    _ => NumOp::Lte,
                });
                true
            }
            "fieldref" => {
                mods.fieldref = true;
                true
            }
            "windash" => {
                mods.windash = true;
                true
            }
            "base64" => {
                mods.base64 = Some(false);
                true
            }
            "base64offset" => {
                mods.base64 = Some(true);
                true
            }
            "utf16le" | "wide" => {
                mods.utf16 = Some("utf16le");
                true
            }
            "utf16be" => {
                mods.utf16 = Some("utf16be");
                true
            }
            "utf16" => {
                mods.utf16 = Some("utf16");
                true
            }
            "expand" => {
                mods.expand = true;
                true
            }
            "neq" => {
                mods.neq = true;
                true
            }
            "minute" | "hour" | "day" | "week" | "month" | "year" => {
                mods.time = TimePart::from_name(m);
                true
            }
            other => {
                let near = MODIFIERS.iter().find(|v| strsim::levenshtein(v, other) <= 2);
                let msg = match near {
                    Some(n) => format!("unknown modifier `{other}`, did you mean `{n}`?"),
                    None => format!("unknown modifier `{other}`"),
                };
                sink.error_hint("R104", at, path, msg, format!("valid modifiers: {}", MODIFIERS.join(", ")));
                false
            }
        };
        ok &= good;
    }
    if !ok {
        return None;
    }
    if !mods.re_flags.is_empty() && !mods.re {
        sink.error("R109", kpos, path, "regex flags `i`, `m`, `s` need the `re` modifier");
        return None;
    }
    // A time part is read from the field, then compared (`=` or a `gt`-family modifier).
    let kinds = [mods.re, mods.cidr, mods.exists, mods.cmp.is_some() || mods.time.is_some(), mods.fieldref].iter().filter(|b| **b).count();
    if kinds > 1 || (kinds == 1 && (mods.anchor.is_some() || mods.windash || mods.base64.is_some() || mods.utf16.is_some())) {
        sink.error("R109", kpos, path, format!("modifiers in `{raw}` cannot be combined"));
        return None;
    }
    if mods.utf16.is_some() && mods.base64.is_none() {
        sink.error_hint("R109", kpos, path, "`utf16*`/`wide` only make sense before `base64`/`base64offset`", "e.g. `CommandLine|wide|base64offset|contains`");
        return None;
    }
    if mods.neq && (mods.all || mods.exists) {
        sink.error_hint("R109", kpos, path, format!("`neq` cannot be combined with `all` or `exists` in `{raw}`"), "`neq` with a list already means: equal to none of them");
        return None;
    }
    let keyword = field.is_empty();
    if keyword && (mods.cidr || mods.exists || mods.cmp.is_some() || mods.fieldref || mods.neq || mods.time.is_some()) {
        sink.error_hint("R109", kpos, path, format!("modifiers in `{raw}` need a field name"), "write `Field|modifier: value`");
        return None;
    }
    if keyword && mods.anchor.is_none() {
        // A keyword is a substring search unless a modifier says otherwise.
        mods.anchor = Some((Anchor::Contains, "contains"));
    }
    let values: Vec<&Node> = match value {
        Node::Sequence(seq) => seq.iter().collect(),
        other => vec![other],
    };
    if values.is_empty() {
        sink.error("R102", pos(value), path, "empty list of values");
        return None;
    }
    let mut out = Vec::new();
    for v in values {
        let Some(s) = v.as_scalar() else {
            sink.error("R102", pos(v), path, format!("a field value must be a scalar or a list of scalars, found {}", kind_name(v)));
            ok = false;
            continue;
        };
        if mods.expand {
            match expand(s, ctx, path, sink) {
                Some(texts) => {
                    for t in texts {
                        match compile_text(&t, None, spos(s), &mods, path, sink) {
                            Some(ms) => out.extend(ms),
                            None => ok = false,
                        }
                    }
                }
                None => ok = false,
            }
            continue;
        }
        match compile_value(s, &mods, path, sink) {
            Some(ms) => out.extend(ms),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    // windash/base64offset expand one value into alternatives: with `all` the alternatives
    // of one value must stay an OR, so the expansion is limited to the non-`all` case.
    if mods.all && (mods.windash || mods.base64 == Some(true)) {
        sink.error("R109", kpos, path, "`all` with `windash`/`base64offset` is not supported yet");
        return None;
    }
    let str_only = out.iter().all(|m| matches!(m, ValueMatcher::Str(_)));
    let contains = (str_only && !mods.all && !keyword).then(|| contains_set(&out)).flatten();
    Some(FieldCond { key: raw.to_string(), field: FieldPath::new(field), fallbacks: Vec::new(), values: out, all: mods.all, negate: mods.neq, keyword, str_only, wild: false, contains, slot: NO_SLOT })
}

/// `expand`: every `%name%` in the value replaced by each configured value (the cross
/// product when there are several). An unknown placeholder refuses the rule (R114).
fn expand(s: &MarkedScalarNode, ctx: Ctx<'_>, path: &str, sink: &mut Sink) -> Option<Vec<String>> {
    let text = s.as_str();
    let mut out = vec![String::new()];
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        let Some(len) = rest[start + 1..].find('%') else { break };
        let name = &rest[start + 1..start + 1 + len];
        let Some(values) = ctx.pipelines.placeholder(name, ctx.logsource) else {
            let offset = text[..text.len() - rest.len() + start].chars().count();
            let at = sink.inside(spos(s), offset);
            sink.error_hint(
                "R114",
                at,
                path,
                format!("placeholder `%{name}%` has no configured values"),
                "give its values with `--placeholders FILE` (name: [values]) or a pipeline's `vars` with a `value_placeholders` transformation",
            );
            return None;
        };
        let lit = &rest[..start];
        out = out.iter().flat_map(|prefix| values.iter().map(move |v| format!("{prefix}{lit}{v}"))).collect();
        rest = &rest[start + 2 + len..];
    }
    Some(out.into_iter().map(|p| format!("{p}{rest}")).collect())
}

fn compile_value(s: &MarkedScalarNode, mods: &Mods, path: &str, sink: &mut Sink) -> Option<Vec<ValueMatcher>> {
    let typed = s.may_coerce().then(|| crate::yaml::scalar_json(s));
    compile_text(s.as_str(), typed, spos(s), mods, path, sink)
}

/// Compiles one value's text; `typed` is the YAML reading of a plain (unquoted) scalar.
fn compile_text(text: &str, typed: Option<Value>, at: (usize, usize), mods: &Mods, path: &str, sink: &mut Sink) -> Option<Vec<ValueMatcher>> {
    let plain = typed.is_some();
    if let Some(part) = mods.time {
        return match text.trim().parse::<i64>() {
            Ok(n) => Some(vec![ValueMatcher::TimePart(part, mods.cmp, n)]),
            Err(_) => {
                sink.error_hint("R107", at, path, format!("`{}` needs a whole number, found `{text}`", part.name()), "e.g. `EventTime|hour|gte: 22`");
                None
            }
        };
    }
    if mods.exists {
        return match (plain, text) {
            (true, "true") => Some(vec![ValueMatcher::Exists(true)]),
            (true, "false") => Some(vec![ValueMatcher::Exists(false)]),
            _ => {
                sink.error("R108", at, path, format!("`exists` needs `true` or `false`, found `{text}`"));
                None
            }
        };
    }
    if let Some(op) = mods.cmp {
        return match text.trim().parse::<f64>() {
            Ok(x) => Some(vec![ValueMatcher::Compare(op, x)]),
            Err(_) => {
                sink.error("R107", at, path, format!("numeric comparison needs a number, found `{text}`"));
                None
            }
        };
    }
    if mods.re {
        let flags = &mods.re_flags;
        let pattern = if flags.is_empty() { text.to_string() } else { format!("(?{flags}){text}") };
        return match crate::matcher::match_regex(&pattern) {
            Ok(re) => Some(vec![ValueMatcher::Regex(re)]),
            Err(e) => {
                sink.error("R105", at, path, format!("invalid regular expression: {e}"));
                None
            }
        };
    }
    if mods.cidr {
        return match text.trim().parse::<ipnet::IpNet>() {
            Ok(n) => Some(vec![ValueMatcher::Cidr(n)]),
            Err(e) => {
                sink.error_hint("R106", at, path, format!("invalid CIDR `{text}`: {e}"), "e.g. 10.0.0.0/8 or 2001:db8::/32");
                None
            }
        };
    }
    if mods.fieldref {
        return Some(vec![ValueMatcher::FieldRef(FieldPath::new(text))]);
    }
    let anchor = mods.anchor.map(|(a, _)| a).unwrap_or(Anchor::Exact);
    if let (Some(typed), true) = (typed, mods.anchor.is_none() && !mods.windash && mods.base64.is_none()) {
        match typed {
            Value::Null => return Some(vec![ValueMatcher::Null]),
            Value::Bool(b) => return Some(vec![ValueMatcher::Bool(b)]),
            Value::Number(n) => {
                if let Some(f) = n.as_f64() {
                    return Some(vec![ValueMatcher::Number { value: f, text: text.to_string() }]);
                }
            }
            _ => {}
        }
    }
    if let Some(offset) = mods.base64 {
        let bytes = match mods.utf16 {
            Some("utf16le") => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Some("utf16be") => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            Some(_) => [0xffu8, 0xfe].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect(),
            None => text.as_bytes().to_vec(),
        };
        let encoded = if offset { base64_offsets(&bytes) } else { vec![base64(&bytes)] };
        // Encoded text has no wildcards; escape nothing (base64 has no `*`, `?`, `\`).
        return Some(
            encoded
                .into_iter()
                .map(|e| ValueMatcher::Str(compile_str(vec![crate::matcher::GlobTok::Lit(e)], anchor, true)))
                .collect(),
        );
    }
    let variants = if mods.windash { windash(text) } else { vec![text.to_string()] };
    Some(variants.into_iter().map(|t| ValueMatcher::Str(compile_str(tokenize(&t), anchor, mods.cased))).collect())
}

/// Sigma `windash`: a `-` or `/` that starts a word (not preceded by a word character,
/// followed by one) may be written with any dash or slash (`-`, `/`, en dash, em dash,
/// horizontal bar). We substitute one replacement for all positions at once (5 variants)
/// rather than pySigma's cross product: mixed spellings in one command line are rare and
/// the product grows as 5^n.
fn windash(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let starts: Vec<usize> = (0..chars.len())
        .filter(|&i| {
            let word = |c: &char| c.is_alphanumeric() || *c == '_';
            matches!(chars[i], '-' | '/') && (i == 0 || !word(&chars[i - 1])) && chars.get(i + 1).is_some_and(word)
        })
        .collect();
    if starts.is_empty() {
        return vec![text.to_string()];
    }
    ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}']
        .iter()
        .map(|r| {
            let mut c = chars.clone();
            for &i in &starts {
                c[i] = *r;
            }
            c.into_iter().collect()
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The three encodings of `data` as it may appear at byte offsets 0, 1, 2 inside a longer
/// base64 text, with the characters that depend on unknown neighbours cut off.
pub(crate) fn base64_offsets(data: &[u8]) -> Vec<String> {
    (0..3usize)
        .map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(data);
            let enc = base64(&padded);
            let start = [0, 2, 3][i];
            let end_cut = [0, 3, 2][(data.len() + i) % 3];
            let end = enc.len().saturating_sub(end_cut);
            enc.get(start..end.max(start)).unwrap_or("").to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_lookup_is_the_value_of_its_own_slot_or_looked_up_again() {
        let map = Map::new();
        let values: Vec<Value> = (0..200).map(Value::from).collect();
        let wrong = Value::Null;
        let doc = Doc::new(&map);
        // First pass: every slot looked up; as many remembered as the table has room for.
        for (slot, v) in values.iter().enumerate() {
            assert_eq!(doc.remembered(slot as u32, || Some(v)), Some(v));
        }
        // Second pass: a slot gives its own first value (remembered) or is looked up again
        // (`wrong`), never another slot's value.
        let mut kept = 0;
        for (slot, v) in values.iter().enumerate() {
            let got = doc.remembered(slot as u32, || Some(&wrong));
            assert!(got == Some(v) || got == Some(&wrong), "slot {slot} gave {got:?}");
            kept += usize::from(got == Some(v));
        }
        assert!((MEMO * 3 / 4..=MEMO).contains(&kept), "{kept} of {MEMO} remembered");
        // Unnumbered lookups are never remembered.
        assert_eq!(doc.remembered(NO_SLOT, || Some(&values[1])), Some(&values[1]));
        assert_eq!(doc.remembered(NO_SLOT, || None), None);
        // A remembered absence stays an absence.
        let doc = Doc::new(&map);
        assert_eq!(doc.remembered(7, || None), None);
        assert_eq!(doc.remembered(7, || Some(&wrong)), None);
    }

    #[test]
    fn many_contains_values_are_searched_at_once_with_the_same_answers() {
        let rule = "title: t\ndetection:\n  sel:\n    cmd|contains: [' -NoP', 'Hidden', 'ÉVIL', 'iex(', 'downloadstring']\n  other:\n    img|contains|cased: [Aa, Bb, Cc, Dd]\n  mixed:\n    x: [a*b, exact, 'C:\\x']\n    y|contains: [one, two, three, four]\n    y|startswith: five\n  homoglyph:\n    u|contains: ['\u{410}', '\u{412}', '\u{415}', '\u{41d}']\n  condition: sel or other or mixed or homoglyph\n";
        let set = crate::load_str("r.yml", rule).unwrap_or_else(|d| panic!("{d}"));
        let crate::RuleKind::Detection(d) = &set.rules[0].kind else { panic!("not a detection") };
        let conds: Vec<&FieldCond> = d.selections.iter().flat_map(|s| match &s.matcher {
            SelectionMatcher::Fields(alts) => alts.iter().flatten().collect::<Vec<_>>(),
            SelectionMatcher::Keywords(_) => Vec::new(),
        }).collect();
        let by_key = |k: &str| conds.iter().find(|c| c.key == k).copied().unwrap_or_else(|| panic!("{k}"));
        assert!(by_key("cmd|contains").contains.is_some(), "five uncased contains values share one automaton");
        assert!(by_key("img|contains|cased").contains.is_none(), "cased values keep their own search");
        assert!(by_key("x").contains.is_none());
        let y = by_key("y|contains");
        assert!(y.contains.is_some());
        let u = by_key("u|contains");
        assert!(u.contains.as_ref().is_some_and(|set| !set.ascii), "Cyrillic needles only: ASCII texts are not searched");
        assert!(by_key("cmd|contains").contains.as_ref().is_some_and(|set| set.ascii));
        let texts = ["", "a", "powershell -nop -w hidden", "X IEX( y", "évil", "l'ÉVIL", "Évil", "DownloadString", "one", "xxTHREEyy", "fivex", "zzz", "ÅÄÖ twO", "ABEH", "abeh", "x\u{410}y", "x\u{430}y", "\u{41d}", "H\u{435}llo"];
        for c in [by_key("cmd|contains"), y, u] {
            for t in texts {
                let doc = serde_json::json!({"cmd": t, "y": t, "u": t});
                let got = c.matches(&Doc::new(doc.as_object().unwrap_or_else(|| panic!())));
                let want = c.values.iter().any(|m| matches!(m, ValueMatcher::Str(s) if s.is_match(t)));
                assert_eq!(got, want, "{} on {t:?}", c.key);
            }
        }
        // And a few answers spelled out.
        let m = |c: &FieldCond, t: &str| c.matches(&Doc::new(serde_json::json!({"cmd": t}).as_object().unwrap_or_else(|| panic!())));
        let cmd = by_key("cmd|contains");
        assert!(m(cmd, "l'évil") && m(cmd, "L'ÉVIL") && m(cmd, "x -NOP") && !m(cmd, "a") && !m(cmd, "hidde"));
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn base64_offsets_are_found_in_shifted_encodings() {
        let needle = b"/bin/sh";
        let offs = base64_offsets(needle);
        assert_eq!(offs.len(), 3);
        for prefix in ["", "x", "xy", "xyz", "abcd"] {
            let mut data = prefix.as_bytes().to_vec();
            data.extend_from_slice(needle);
            data.extend_from_slice(b" -c id");
            let enc = base64(&data);
            assert!(offs.iter().any(|o| enc.contains(o.as_str())), "prefix {prefix:?}: {enc} vs {offs:?}");
        }
        assert!(!offs.iter().any(|o| base64(b"/usr/bin/python").contains(o.as_str())));
    }

    #[test]
    fn windash_variants() {
        let v = windash("-enc foo /c");
        assert_eq!(v.len(), 5);
        assert!(v.contains(&"/enc foo /c".to_string()));
        assert!(v.contains(&"\u{2013}enc foo \u{2013}c".to_string()));
        assert_eq!(windash("a-b"), vec!["a-b".to_string()]);
        assert!(windash("\"-enc").contains(&"\"/enc".to_string()), "a quote is a word boundary");
    }
}
