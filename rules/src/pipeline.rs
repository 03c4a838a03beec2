//! Logsource processing pipelines: a rule's `logsource` becomes event conditions, and Sigma's
//! field names become the paths where a given event shape keeps them.
//!
//! The file format follows pySigma's processing-pipeline YAML where it fits (`name`,
//! `priority`, `vars`, `transformations:` with `type`, `rule_conditions`,
//! `field_name_conditions`); see docs/rules.md for what is supported. Everything happens at
//! load time: a pipeline rewrites the compiled [`Detection`] (renamed [`FieldPath`]s, extra
//! selections AND-ed to the condition), so matching costs what it cost before.
//!
//! What must stay true: a rule's result depends only on the pipelines' order (priority, then
//! the order given), never on the events seen; a pipeline file with any error is refused
//! whole, like a rule file.

use crate::condition::Cond;
use crate::detection::{self, Detection, FieldCond, LogSource, Selection, SelectionMatcher};
use crate::error::{Diagnostic, Diagnostics, Severity};
use crate::matcher::ValueMatcher;
use crate::yaml::{self, kind_name, pos, spos, Sink};
use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;
use rampart_core::FieldPath;
use std::collections::BTreeMap;
use std::path::Path;

/// The pipelines shipped in the binary: `(name, YAML text)`.
pub const BUILTINS: &[(&str, &str)] = &[
    ("windows-evtx", include_str!("../pipelines/windows-evtx.yml")),
    ("ecs-windows", include_str!("../pipelines/ecs-windows.yml")),
    ("mozdef", include_str!("../pipelines/mozdef.yml")),
];

const TOP_KEYS: &[&str] = &["name", "description", "priority", "vars", "transformations", "postprocessing", "finalizers"];
const ITEM_KEYS: &[&str] = &[
    "id", "type", "rule_conditions", "rule_cond_op", "rule_cond_not", "field_name_conditions", "field_name_cond_op",
    "field_name_cond_not", "mapping", "prefix", "conditions", "include", "exclude",
];
const TYPES: &[&str] = &["field_name_mapping", "field_name_prefix", "add_condition", "value_placeholders"];

/// One parsed pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// `name`.
    pub name: String,
    /// `description` (Rampart's key; one line shown by `rampart pipelines`).
    pub description: String,
    /// `priority`: lower runs first (pySigma's convention); default 0.
    pub priority: i64,
    /// `vars`: placeholder name → values, for the `expand` modifier.
    pub vars: BTreeMap<String, Vec<String>>,
    /// Where it came from (file path or `<builtin>/NAME`).
    pub source: String,
    items: Vec<Item>,
}

#[derive(Clone, Debug)]
struct Item {
    id: Option<String>,
    transform: Transform,
    rule_conds: Vec<RuleCond>,
    rule_cond_or: bool,
    rule_cond_not: bool,
    field_conds: Vec<FieldNameCond>,
    field_cond_or: bool,
    field_cond_not: bool,
}

#[derive(Clone, Debug)]
enum Transform {
    /// Sigma name → one or more paths (alternatives: the first present wins).
    Mapping(BTreeMap<String, Vec<String>>),
    /// Prepended to the name; several prefixes make alternatives.
    Prefix(Vec<String>),
    /// A selection AND-ed to the rule's condition.
    AddCondition(SelectionMatcher),
    /// Marks `vars` as usable by `expand` (include/exclude: which placeholders).
    Placeholders { include: Vec<String>, exclude: Vec<String> },
}

/// A `rule_conditions` entry.
#[derive(Clone, Debug)]
enum RuleCond {
    /// `type: logsource`: the rule's logsource has these (unset: any).
    LogSource(LogSource),
    /// `type: processing_item_applied`: an earlier item with this `id` applied to the rule.
    Applied(String),
}

#[derive(Clone, Debug)]
enum FieldNameCond {
    Include(Vec<NamePattern>),
    Exclude(Vec<NamePattern>),
    Applied(String),
}

#[derive(Clone, Debug)]
enum NamePattern {
    Plain(String),
    Re(regex::Regex),
}

impl NamePattern {
    fn is_match(&self, name: &str) -> bool {
        match self {
            NamePattern::Plain(p) => p == name,
            NamePattern::Re(r) => r.is_match(name),
        }
    }
}

impl Pipeline {
    /// Parses one pipeline file; every problem is reported (codes P0xx, and R1xx for the
    /// selections inside `add_condition`).
    pub fn parse(file: &str, text: &str) -> Result<Pipeline, Diagnostics> {
        let mut sink = Sink::new(file, text);
        let docs = yaml::split_documents(text);
        let parsed = match docs.as_slice() {
            [doc] => match yaml::parse_document(doc) {
                Ok(node) => parse_pipeline(&node, file, &mut sink),
                Err((line, col, msg)) => {
                    sink.error("R001", (line, col), "", msg);
                    None
                }
            },
            [] => {
                sink.error_hint("P001", (1, 1), "", "the pipeline file is empty", "a pipeline needs `name` and `transformations`");
                None
            }
            [_, second, ..] => {
                sink.error_hint("P001", (second.line, 1), "", "a pipeline file holds one YAML document", "put each pipeline in its own file");
                None
            }
        };
        let errors = sink.diags.iter().any(|d| d.severity == Severity::Error);
        match parsed {
            Some(p) if !errors => Ok(p),
            _ => {
                let mut d = sink.diags;
                d.sort_by_key(|d| (d.line, d.column));
                Err(Diagnostics(d))
            }
        }
    }

    /// A placeholders file (`name: [values]`, or `name: value`) as a pipeline that provides
    /// them to every rule: what `--placeholders FILE` loads.
    pub fn placeholders(file: &str, text: &str) -> Result<Pipeline, Diagnostics> {
        let mut sink = Sink::new(file, text);
        let mut vars = BTreeMap::new();
        let docs = yaml::split_documents(text);
        match docs.first().map(yaml::parse_document) {
            None => {}
            Some(Ok(Node::Mapping(m))) => {
                for (k, v) in m.iter() {
                    if let Some(list) = strings(v, k.as_str(), "a placeholder value", &mut sink) {
                        vars.insert(k.as_str().to_string(), list);
                    }
                }
            }
            Some(Ok(other)) => sink.error_hint("P007", pos(&other), "", format!("a placeholders file must be a mapping, found {}", kind_name(&other)), "Admins_Workstations: [ws-admin-1, ws-admin-2]"),
            Some(Err((line, col, msg))) => sink.error("R001", (line, col), "", msg),
        }
        if sink.diags.iter().any(|d| d.severity == Severity::Error) {
            return Err(Diagnostics(sink.diags));
        }
        let item = Item {
            id: None,
            transform: Transform::Placeholders { include: Vec::new(), exclude: Vec::new() },
            rule_conds: Vec::new(),
            rule_cond_or: false,
            rule_cond_not: false,
            field_conds: Vec::new(),
            field_cond_or: false,
            field_cond_not: false,
        };
        Ok(Pipeline { name: format!("placeholders {file}"), description: String::new(), priority: 0, vars, source: file.to_string(), items: vec![item] })
    }

    /// A built-in pipeline by name.
    pub fn builtin(name: &str) -> Option<Result<Pipeline, Diagnostics>> {
        BUILTINS.iter().find(|(n, _)| *n == name).map(|(n, text)| Pipeline::parse(&format!("<builtin>/pipelines/{n}.yml"), text))
    }

    /// `NAME|FILE` as given to `--pipeline`: a built-in name, else a file path.
    pub fn resolve(spec: &str) -> Result<Pipeline, Diagnostics> {
        if let Some(p) = Pipeline::builtin(spec) {
            return p;
        }
        let path = Path::new(spec);
        match std::fs::read_to_string(path) {
            Ok(text) => Pipeline::parse(spec, &text),
            Err(e) => {
                let names: Vec<&str> = BUILTINS.iter().map(|(n, _)| *n).collect();
                Err(Diagnostics(vec![Diagnostic {
                    severity: Severity::Error,
                    code: "P006",
                    message: format!("pipeline `{spec}` is not a built-in and cannot be read as a file: {e}"),
                    hint: Some(format!("built-in pipelines: {} (see `rampart pipelines`)", names.join(", "))),
                    file: spec.to_string(),
                    line: 0,
                    column: 0,
                    rule_id: None,
                    key_path: String::new(),
                    source_line: None,
                }]))
            }
        }
    }
}

/// The pipelines a load applies, in application order (priority, then the order given).
#[derive(Clone, Debug, Default)]
pub struct Pipelines(Vec<Pipeline>);

impl Pipelines {
    /// Orders `list` by priority; equal priorities keep their order.
    pub fn new(mut list: Vec<Pipeline>) -> Pipelines {
        list.sort_by_key(|p| p.priority);
        Pipelines(list)
    }

    /// Resolves every `NAME|FILE`; all problems of all of them are reported.
    pub fn resolve<S: AsRef<str>>(specs: &[S]) -> Result<Pipelines, Diagnostics> {
        let mut out = Vec::new();
        let mut diags = Vec::new();
        for s in specs {
            match Pipeline::resolve(s.as_ref()) {
                Ok(p) => out.push(p),
                Err(d) => diags.extend(d.0),
            }
        }
        if diags.is_empty() {
            Ok(Pipelines::new(out))
        } else {
            Err(Diagnostics(diags))
        }
    }

    /// The pipelines in application order.
    pub fn list(&self) -> &[Pipeline] {
        &self.0
    }

    /// No pipeline at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Values for `%name%` from the first pipeline (in order) that provides them here.
    pub fn placeholder(&self, name: &str, ls: &LogSource) -> Option<&[String]> {
        self.0.iter().find_map(|p| p.placeholder(name, ls))
    }

    /// Rewrites a compiled detection: each pipeline in order, each transformation in order.
    pub(crate) fn apply(&self, det: &mut Detection) {
        for p in &self.0 {
            p.apply(det);
        }
    }

    /// The path(s) a field named `field` in a detection rule with logsource `ls` ends up
    /// at: what [`Pipelines::apply`] does to a field condition, for the fields a correlation
    /// reads from that rule's events (`group-by`, `aliases`, `condition.field`). Several
    /// paths are alternatives (the first present wins), as in a detection.
    pub(crate) fn rename(&self, ls: &LogSource, field: &FieldPath) -> Vec<FieldPath> {
        self.0.iter().fold(vec![field.clone()], |paths, p| p.rename_paths(ls, paths))
    }
}

impl Pipeline {
    fn apply(&self, det: &mut Detection) {
        // Per field condition (flat index, see `conds_mut`), the items already applied to it.
        let mut applied: Vec<Vec<usize>> = Vec::new();
        for ii in self.items_for(&det.logsource) {
            let item = &self.items[ii];
            match &item.transform {
                Transform::AddCondition(m) => {
                    let idx = det.selections.len();
                    let label = item.id.clone().unwrap_or_else(|| format!("transformations[{ii}]"));
                    det.selections.push(Selection { name: format!("pipeline {}: {label}", self.name), matcher: m.clone() });
                    let old = std::mem::replace(&mut det.condition, Cond::Sel(idx));
                    det.condition = Cond::And(vec![old, Cond::Sel(idx)]);
                }
                Transform::Mapping(_) | Transform::Prefix(_) => {
                    for (ci, c) in conds_mut(det).into_iter().enumerate() {
                        if applied.len() <= ci {
                            applied.resize(ci + 1, Vec::new());
                        }
                        if c.keyword || !item.field_applies(c.paths(), &applied[ci], &self.items) {
                            continue;
                        }
                        let new = item.rename(c.paths());
                        if let Some(new) = new {
                            for m in &mut c.values {
                                if let ValueMatcher::FieldRef(r) = m {
                                    if let Some(to) = item.rename(std::iter::once(&*r)).and_then(|v| v.into_iter().next()) {
                                        *r = to;
                                    }
                                }
                            }
                            c.set_paths(new);
                            applied[ci].push(ii);
                        }
                    }
                }
                Transform::Placeholders { .. } => {}
            }
        }
    }

    /// The items whose rule conditions hold for a rule with logsource `ls`, in order. An
    /// item's `processing_item_applied` rule condition sees the items before it (pySigma:
    /// an item applies to a rule when its rule conditions hold).
    fn items_for(&self, ls: &LogSource) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for (ii, item) in self.items.iter().enumerate() {
            if item.rule_applies(ls, &out, &self.items) {
                out.push(ii);
            }
        }
        out
    }

    /// The renaming half of [`Pipeline::apply`] for one field outside a detection.
    fn rename_paths(&self, ls: &LogSource, mut paths: Vec<FieldPath>) -> Vec<FieldPath> {
        let mut applied = Vec::new();
        for ii in self.items_for(ls) {
            let item = &self.items[ii];
            if !matches!(item.transform, Transform::Mapping(_) | Transform::Prefix(_)) || !item.field_applies(paths.iter(), &applied, &self.items) {
                continue;
            }
            if let Some(new) = item.rename(paths.iter()) {
                paths = new;
                applied.push(ii);
            }
        }
        paths
    }

    /// Values for an `expand` placeholder (`%name%` → `name`), from `vars` through a
    /// `value_placeholders` transformation that applies to this logsource.
    pub fn placeholder(&self, name: &str, ls: &LogSource) -> Option<&[String]> {
        let values = self.vars.get(name)?;
        self.items_for(ls)
            .into_iter()
            .any(|ii| match &self.items[ii].transform {
                Transform::Placeholders { include, exclude } => (include.is_empty() || include.iter().any(|x| x == name)) && !exclude.iter().any(|x| x == name),
                _ => false,
            })
            .then_some(values.as_slice())
    }

    /// The transformations as `type` strings, for `rampart pipelines show`.
    pub fn summary(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|i| {
                let t = match &i.transform {
                    Transform::Mapping(m) => format!("field_name_mapping ({} fields)", m.len()),
                    Transform::Prefix(p) => format!("field_name_prefix {}", p.join(" | ")),
                    Transform::AddCondition(_) => "add_condition".to_string(),
                    Transform::Placeholders { .. } => "value_placeholders".to_string(),
                };
                let when: Vec<String> = i
                    .rule_conds
                    .iter()
                    .map(|c| match c {
                        RuleCond::LogSource(l) => [("category", &l.category), ("product", &l.product), ("service", &l.service)]
                            .iter()
                            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                            .collect::<Vec<_>>()
                            .join(","),
                        RuleCond::Applied(id) => format!("{id} applied"),
                    })
                    .collect();
                let when = match (i.rule_cond_not, i.rule_cond_or) {
                    (false, _) => when,
                    (true, true) => vec![format!("none of ({})", when.join(", "))],
                    (true, false) => vec![format!("not all of ({})", when.join(", "))],
                };
                match (&i.id, when.is_empty()) {
                    (Some(id), true) => format!("{id}: {t}"),
                    (Some(id), false) => format!("{id}: {t} when {}", when.join(" or ")),
                    (None, true) => t,
                    (None, false) => format!("{t} when {}", when.join(" or ")),
                }
            })
            .collect()
    }
}

/// Every field condition of a detection, in a stable order (selections, alternatives,
/// conditions); selections added later come last, so earlier indices stay valid.
fn conds_mut(det: &mut Detection) -> Vec<&mut FieldCond> {
    let mut out = Vec::new();
    for s in &mut det.selections {
        if let SelectionMatcher::Fields(alts) = &mut s.matcher {
            for conds in alts {
                out.extend(conds.iter_mut());
            }
        }
    }
    out
}

impl Item {
    /// Whether the rule conditions hold for a rule with logsource `ls` to which the items
    /// `applied` (indices into `items`) have applied.
    fn rule_applies(&self, ls: &LogSource, applied: &[usize], items: &[Item]) -> bool {
        if self.rule_conds.is_empty() {
            return true;
        }
        let one = |c: &RuleCond| match c {
            RuleCond::LogSource(c) => {
                let eq = |want: &Option<String>, have: &Option<String>| match want {
                    None => true,
                    Some(w) => have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(w)),
                };
                eq(&c.category, &ls.category) && eq(&c.product, &ls.product) && eq(&c.service, &ls.service)
            }
            RuleCond::Applied(id) => applied.iter().any(|&i| items.get(i).and_then(|x| x.id.as_deref()) == Some(id.as_str())),
        };
        let hit = if self.rule_cond_or { self.rule_conds.iter().any(one) } else { self.rule_conds.iter().all(one) };
        hit != self.rule_cond_not
    }

    fn field_applies<'p>(&self, paths: impl Iterator<Item = &'p FieldPath>, applied: &[usize], items: &[Item]) -> bool {
        if self.field_conds.is_empty() {
            return true;
        }
        let names: Vec<&str> = paths.map(FieldPath::as_str).collect();
        let one = |fc: &FieldNameCond| match fc {
            FieldNameCond::Include(ps) => names.iter().any(|n| ps.iter().any(|p| p.is_match(n))),
            FieldNameCond::Exclude(ps) => !names.iter().any(|n| ps.iter().any(|p| p.is_match(n))),
            FieldNameCond::Applied(id) => applied.iter().any(|&i| items.get(i).and_then(|x| x.id.as_deref()) == Some(id.as_str())),
        };
        let hit = if self.field_cond_or { self.field_conds.iter().any(one) } else { self.field_conds.iter().all(one) };
        hit != self.field_cond_not
    }

    /// New paths for a field, or `None` when this item leaves it alone.
    fn rename<'p>(&self, paths: impl Iterator<Item = &'p FieldPath>) -> Option<Vec<FieldPath>> {
        let paths: Vec<&FieldPath> = paths.collect();
        let mut changed = false;
        let mut out: Vec<FieldPath> = Vec::new();
        for p in paths {
            let news: Vec<FieldPath> = match &self.transform {
                Transform::Mapping(m) => match m.get(p.as_str()) {
                    Some(targets) => {
                        changed = true;
                        targets.iter().map(|t| FieldPath::new(t)).collect()
                    }
                    None => vec![p.clone()],
                },
                Transform::Prefix(prefixes) => {
                    changed = true;
                    prefixes.iter().map(|x| FieldPath::new(&format!("{x}{}", p.as_str()))).collect()
                }
                _ => vec![p.clone()],
            };
            for n in news {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        changed.then_some(out)
    }
}

fn near(key: &str, known: &[&str]) -> Option<String> {
    known.iter().min_by_key(|k| strsim::levenshtein(k, key)).filter(|k| strsim::levenshtein(k, key) <= 2).map(|k| k.to_string())
}

fn unknown_key(sink: &mut Sink, k: &marked_yaml::types::MarkedScalarNode, path: &str, known: &[&str]) {
    let key = k.as_str();
    let hint = match near(key, known) {
        Some(n) => format!("did you mean `{n}`? valid keys: {}", known.join(", ")),
        None => format!("valid keys: {}", known.join(", ")),
    };
    sink.error_hint("P002", spos(k), path, format!("unknown key `{key}`"), hint);
}

/// A string, or a list of strings (`what` names it in messages).
fn strings(node: &Node, path: &str, what: &str, sink: &mut Sink) -> Option<Vec<String>> {
    match node {
        Node::Scalar(s) => Some(vec![s.as_str().to_string()]),
        Node::Sequence(seq) if !seq.is_empty() => {
            let mut out = Vec::new();
            for (i, n) in seq.iter().enumerate() {
                match n.as_scalar() {
                    Some(s) => out.push(s.as_str().to_string()),
                    None => {
                        sink.error("P004", pos(n), &format!("{path}[{i}]"), format!("{what} must be a string, found {}", kind_name(n)));
                        return None;
                    }
                }
            }
            Some(out)
        }
        other => {
            sink.error("P004", pos(other), path, format!("{what} must be a string or a non-empty list of strings, found {}", kind_name(other)));
            None
        }
    }
}

fn parse_pipeline(node: &Node, file: &str, sink: &mut Sink) -> Option<Pipeline> {
    let Some(map) = node.as_mapping() else {
        sink.error("P001", pos(node), "", format!("a pipeline must be a YAML mapping, found {}", kind_name(node)));
        return None;
    };
    for (k, _) in map.iter() {
        if !TOP_KEYS.contains(&k.as_str()) {
            unknown_key(sink, k, k.as_str(), TOP_KEYS);
        }
    }
    let name = match map.get_node("name") {
        Some(Node::Scalar(s)) if !s.as_str().trim().is_empty() => s.as_str().to_string(),
        Some(other) => {
            sink.error("P001", pos(other), "name", "`name` must be a non-empty string");
            String::new()
        }
        None => {
            sink.error_hint("P001", pos(node), "", "pipeline has no `name`", "add e.g. `name: my-pipeline`");
            String::new()
        }
    };
    let description = match map.get_node("description") {
        None => String::new(),
        Some(Node::Scalar(s)) => s.as_str().trim().to_string(),
        Some(other) => {
            sink.error("P001", pos(other), "description", "`description` must be a string");
            String::new()
        }
    };
    let priority = match map.get_node("priority") {
        None => 0,
        Some(Node::Scalar(s)) => match s.as_str().trim().parse::<i64>() {
            Ok(p) => p,
            Err(_) => {
                sink.error_hint("P001", spos(s), "priority", format!("`priority` must be an integer, found `{}`", s.as_str()), "e.g. `priority: 20` (lower runs first)");
                0
            }
        },
        Some(other) => {
            sink.error("P001", pos(other), "priority", "`priority` must be an integer");
            0
        }
    };
    let mut vars = BTreeMap::new();
    match map.get_node("vars") {
        None => {}
        Some(Node::Mapping(m)) => {
            for (k, v) in m.iter() {
                let path = format!("vars.{}", k.as_str());
                match strings(v, &path, "a placeholder value", sink) {
                    Some(list) => {
                        vars.insert(k.as_str().to_string(), list);
                    }
                    None => sink.error_hint("P007", spos(k), &path, format!("placeholder `{}` has no usable values", k.as_str()), "give a list of strings"),
                }
            }
        }
        Some(other) => sink.error_hint("P007", pos(other), "vars", format!("`vars` must be a mapping of placeholder name to values, found {}", kind_name(other)), "vars: {Admins_Workstations: [ws-1, ws-2]}"),
    }
    let mut items = Vec::new();
    match map.get_node("transformations") {
        Some(Node::Sequence(seq)) => {
            for (i, t) in seq.iter().enumerate() {
                // Ids of the items before this one, parsed or not (for `processing_item_applied`).
                let earlier: Vec<&str> = seq[..i].iter().filter_map(|n| n.as_mapping()?.get_scalar("id")).map(|s| s.as_str()).collect();
                if let Some(item) = parse_item(t, &format!("transformations[{i}]"), &earlier, sink) {
                    items.push(item);
                }
            }
        }
        Some(other) => sink.error("P001", pos(other), "transformations", format!("`transformations` must be a list, found {}", kind_name(other))),
        None => sink.error_hint("P001", pos(node), "", "pipeline has no `transformations`", "add a list of transformations (see docs/rules.md)"),
    }
    Some(Pipeline { name, description, priority, vars, source: file.to_string(), items })
}

fn parse_item(node: &Node, path: &str, earlier: &[&str], sink: &mut Sink) -> Option<Item> {
    let Some(map) = node.as_mapping() else {
        sink.error("P004", pos(node), path, format!("a transformation must be a mapping, found {}", kind_name(node)));
        return None;
    };
    for (k, _) in map.iter() {
        if !ITEM_KEYS.contains(&k.as_str()) {
            let hint_keys = if k.as_str() == "detection_item_conditions" { &["(not supported)"][..] } else { ITEM_KEYS };
            unknown_key(sink, k, &format!("{path}.{}", k.as_str()), hint_keys);
        }
    }
    let before = sink.diags.len();
    let id = map.get_scalar("id").map(|s| s.as_str().to_string());
    let ty = match map.get_node("type") {
        Some(Node::Scalar(s)) if TYPES.contains(&s.as_str()) => s.as_str(),
        Some(Node::Scalar(s)) => {
            let msg = match near(s.as_str(), TYPES) {
                Some(n) => format!("unknown transformation type `{}`, did you mean `{n}`?", s.as_str()),
                None => format!("transformation type `{}` is not supported", s.as_str()),
            };
            sink.error_hint("P003", spos(s), &format!("{path}.type"), msg, format!("supported types: {}", TYPES.join(", ")));
            return None;
        }
        Some(other) => {
            sink.error("P003", pos(other), &format!("{path}.type"), "`type` must be a string");
            return None;
        }
        None => {
            sink.error_hint("P003", pos(node), path, "transformation has no `type`", format!("supported types: {}", TYPES.join(", ")));
            return None;
        }
    };
    let required = |key: &str, sink: &mut Sink| -> Option<&Node> {
        let n = map.get_node(key);
        if n.is_none() {
            sink.error_hint("P004", pos(node), path, format!("`{ty}` needs `{key}`"), "see docs/rules.md, Pipelines");
        }
        n
    };
    let transform = match ty {
        "field_name_mapping" => {
            let m = required("mapping", sink)?;
            let Some(mm) = m.as_mapping() else {
                sink.error("P004", pos(m), &format!("{path}.mapping"), format!("`mapping` must map Sigma field names to paths, found {}", kind_name(m)));
                return None;
            };
            let mut out = BTreeMap::new();
            for (k, v) in mm.iter() {
                let kp = format!("{path}.mapping.{}", k.as_str());
                if let Some(targets) = strings(v, &kp, "a mapping target", sink) {
                    out.insert(k.as_str().to_string(), targets);
                }
            }
            Transform::Mapping(out)
        }
        "field_name_prefix" => Transform::Prefix(strings(required("prefix", sink)?, &format!("{path}.prefix"), "`prefix`", sink)?),
        "add_condition" => {
            let c = required("conditions", sink)?;
            let cp = format!("{path}.conditions");
            if !matches!(c, Node::Mapping(_) | Node::Sequence(_)) {
                sink.error_hint("P004", pos(c), &cp, format!("`conditions` must be a mapping of field conditions, found {}", kind_name(c)), "e.g. conditions: {EventID: 1, Channel: Security}");
                return None;
            }
            let (none, ls) = (Pipelines::default(), LogSource::default());
            let ctx = detection::Ctx { pipelines: &none, logsource: &ls };
            Transform::AddCondition(detection::compile_selection_at("conditions", &cp, c, ctx, sink)?)
        }
        _ => {
            let list = |key: &str, sink: &mut Sink| match map.get_node(key) {
                None => Some(Vec::new()),
                Some(n) => strings(n, &format!("{path}.{key}"), "a placeholder name", sink),
            };
            Transform::Placeholders { include: list("include", sink)?, exclude: list("exclude", sink)? }
        }
    };
    let (rule_conds, rule_cond_or, rule_cond_not) = parse_rule_conds(map, path, earlier, sink);
    let (field_conds, field_cond_or, field_cond_not) = parse_field_conds(map, path, sink);
    (sink.diags.len() == before).then_some(Item { id, transform, rule_conds, rule_cond_or, rule_cond_not, field_conds, field_cond_or, field_cond_not })
}

fn parse_op(map: &MarkedMappingNode, key: &str, path: &str, sink: &mut Sink) -> bool {
    match map.get_node(key) {
        None => false,
        Some(Node::Scalar(s)) if s.as_str() == "and" => false,
        Some(Node::Scalar(s)) if s.as_str() == "or" => true,
        Some(other) => {
            sink.error_hint("P005", pos(other), &format!("{path}.{key}"), format!("`{key}` must be `and` or `or`"), "default: and");
            false
        }
    }
}

fn parse_not(map: &MarkedMappingNode, key: &str, path: &str, sink: &mut Sink) -> bool {
    match map.get_node(key) {
        None => false,
        Some(Node::Scalar(s)) if s.may_coerce() && matches!(s.as_str(), "true" | "false") => s.as_str() == "true",
        Some(other) => {
            sink.error("P005", pos(other), &format!("{path}.{key}"), format!("`{key}` must be true or false"));
            false
        }
    }
}

fn cond_list<'n>(map: &'n MarkedMappingNode, key: &str, path: &str, sink: &mut Sink) -> Vec<(&'n MarkedMappingNode, String)> {
    match map.get_node(key) {
        None => Vec::new(),
        Some(Node::Sequence(seq)) => seq
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let p = format!("{path}.{key}[{i}]");
                match n.as_mapping() {
                    Some(m) => Some((m, p)),
                    None => {
                        sink.error("P005", pos(n), &p, format!("a condition must be a mapping with `type`, found {}", kind_name(n)));
                        None
                    }
                }
            })
            .collect(),
        Some(other) => {
            sink.error("P005", pos(other), &format!("{path}.{key}"), format!("`{key}` must be a list, found {}", kind_name(other)));
            Vec::new()
        }
    }
}

fn parse_rule_conds(map: &MarkedMappingNode, path: &str, earlier: &[&str], sink: &mut Sink) -> (Vec<RuleCond>, bool, bool) {
    let mut out = Vec::new();
    for (m, p) in cond_list(map, "rule_conditions", path, sink) {
        match m.get_scalar("type").map(|s| s.as_str()) {
            Some("logsource") => {
                let mut ls = LogSource::default();
                for (k, v) in m.iter() {
                    let slot = match k.as_str() {
                        "type" => continue,
                        "category" => &mut ls.category,
                        "product" => &mut ls.product,
                        "service" => &mut ls.service,
                        _ => {
                            unknown_key(sink, k, &format!("{p}.{}", k.as_str()), &["type", "category", "product", "service"]);
                            continue;
                        }
                    };
                    match v.as_scalar() {
                        Some(s) => *slot = Some(s.as_str().to_string()),
                        None => sink.error("P005", pos(v), &format!("{p}.{}", k.as_str()), format!("`{}` must be a string", k.as_str())),
                    }
                }
                out.push(RuleCond::LogSource(ls));
            }
            Some("processing_item_applied") => {
                for (k, _) in m.iter() {
                    if !matches!(k.as_str(), "type" | "processing_item_id") {
                        unknown_key(sink, k, &format!("{p}.{}", k.as_str()), &["type", "processing_item_id"]);
                    }
                }
                match m.get_scalar("processing_item_id") {
                    Some(id) if earlier.contains(&id.as_str()) => out.push(RuleCond::Applied(id.as_str().to_string())),
                    Some(id) => sink.error_hint(
                        "P005",
                        spos(id),
                        &format!("{p}.processing_item_id"),
                        format!("no transformation before this one has id `{}`", id.as_str()),
                        match earlier {
                            [] => "give the earlier transformation an `id`".to_string(),
                            few if few.len() <= 8 => format!("earlier ids: {}", few.join(", ")),
                            many => format!("earlier ids: {}, … ({} in all)", many[..8].join(", "), many.len()),
                        },
                    ),
                    None => sink.error_hint("P005", pos(&Node::Mapping(m.clone())), &p, "`processing_item_applied` needs `processing_item_id`", "the `id` of an earlier transformation"),
                }
            }
            Some(other) => {
                let at = m.get_scalar("type").map(spos).unwrap_or_else(|| pos(&Node::Mapping(m.clone())));
                sink.error_hint("P005", at, &format!("{p}.type"), format!("rule condition type `{other}` is not supported"), "supported: logsource, processing_item_applied");
            }
            None => sink.error_hint("P005", pos(&Node::Mapping(m.clone())), &p, "a rule condition needs `type`", "e.g. {type: logsource, product: windows}"),
        }
    }
    (out, parse_op(map, "rule_cond_op", path, sink), parse_not(map, "rule_cond_not", path, sink))
}

fn parse_field_conds(map: &MarkedMappingNode, path: &str, sink: &mut Sink) -> (Vec<FieldNameCond>, bool, bool) {
    let mut out = Vec::new();
    for (m, p) in cond_list(map, "field_name_conditions", path, sink) {
        let ty = m.get_scalar("type").map(|s| s.as_str().to_string());
        match ty.as_deref() {
            Some(t @ ("include_fields" | "exclude_fields")) => {
                let regex = match m.get_scalar("mode").map(|s| s.as_str()) {
                    None | Some("plain") => false,
                    Some("re") => true,
                    Some(other) => {
                        sink.error_hint("P005", m.get_scalar("mode").map(spos).unwrap_or((0, 0)), &format!("{p}.mode"), format!("unknown mode `{other}`"), "plain or re");
                        false
                    }
                };
                let Some(fields) = m.get_node("fields").and_then(|f| strings(f, &format!("{p}.fields"), "a field name", sink)) else {
                    sink.error_hint("P005", pos(&Node::Mapping(m.clone())), &p, format!("`{t}` needs `fields`"), "fields: [Image, ParentImage]");
                    continue;
                };
                let mut pats = Vec::new();
                for f in fields {
                    if regex {
                        match regex::Regex::new(&format!("^(?:{f})$")) {
                            Ok(r) => pats.push(NamePattern::Re(r)),
                            Err(e) => sink.error("P005", pos(&Node::Mapping(m.clone())), &format!("{p}.fields"), format!("invalid regular expression `{f}`: {e}")),
                        }
                    } else {
                        pats.push(NamePattern::Plain(f));
                    }
                }
                out.push(if t == "include_fields" { FieldNameCond::Include(pats) } else { FieldNameCond::Exclude(pats) });
            }
            Some("processing_item_applied") => match m.get_scalar("processing_item_id") {
                Some(id) => out.push(FieldNameCond::Applied(id.as_str().to_string())),
                None => sink.error_hint("P005", pos(&Node::Mapping(m.clone())), &p, "`processing_item_applied` needs `processing_item_id`", "the `id` of an earlier transformation"),
            },
            Some(other) => sink.error_hint(
                "P005",
                m.get_scalar("type").map(spos).unwrap_or((0, 0)),
                &format!("{p}.type"),
                format!("field name condition type `{other}` is not supported"),
                "supported: include_fields, exclude_fields, processing_item_applied",
            ),
            None => sink.error_hint("P005", pos(&Node::Mapping(m.clone())), &p, "a field name condition needs `type`", "e.g. {type: include_fields, fields: [Image]}"),
        }
    }
    (out, parse_op(map, "field_name_cond_op", path, sink), parse_not(map, "field_name_cond_not", path, sink))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleKind;
    use serde_json::json;

    fn pipe(text: &str) -> Pipeline {
        Pipeline::parse("p.yml", text).unwrap_or_else(|d| panic!("{d}"))
    }

    fn errs(text: &str) -> Vec<(&'static str, usize, usize)> {
        Pipeline::parse("p.yml", text).unwrap_err().errors().map(|d| (d.code, d.line, d.column)).collect()
    }

    fn det_with(pipes: Vec<Pipeline>, rule: &str) -> Detection {
        let set = crate::load_sources_with(&[("r.yml".to_string(), rule.to_string())], &Pipelines::new(pipes)).unwrap_or_else(|d| panic!("{d}"));
        let RuleKind::Detection(d) = &set.rules[0].kind else { panic!("not a detection") };
        d.clone()
    }

    fn m(d: &Detection, v: serde_json::Value) -> bool {
        d.matches_doc(v.as_object().unwrap())
    }

    const PROC: &str = "title: t\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel\n";

    #[test]
    fn builtins_parse_and_have_descriptions() {
        for (name, _) in BUILTINS {
            let p = Pipeline::builtin(name).unwrap().unwrap_or_else(|d| panic!("{name}: {d}"));
            assert_eq!(p.name, *name);
            assert!(!p.description.is_empty() && !p.description.contains('\n'), "{name}");
        }
        assert!(Pipeline::builtin("nope").is_none());
    }

    #[test]
    fn parse_errors_have_positions_and_codes() {
        assert_eq!(errs("name: x\ntransformations:\n  - type: field_name_maping\n    mapping: {a: b}\n"), vec![("P003", 3, 11)]);
        assert_eq!(errs("name: x\ntransfomations: []\n"), vec![("P001", 1, 1), ("P002", 2, 1)]);
        assert_eq!(errs("name: x\npriority: high\ntransformations: []\n"), vec![("P001", 2, 11)]);
        assert_eq!(errs("name: x\ntransformations:\n  - type: field_name_mapping\n"), vec![("P004", 3, 5)]);
        assert_eq!(
            errs("name: x\ntransformations:\n  - type: add_condition\n    conditions:\n      EventID|contians: 1\n"),
            vec![("R104", 5, 14)],
            "add_condition selections are checked like rule selections"
        );
        assert_eq!(
            errs("name: x\ntransformations:\n  - type: field_name_prefix\n    prefix: a.\n    rule_conditions:\n      - type: processing_state\n"),
            vec![("P005", 6, 15)]
        );
        assert_eq!(errs("name: x\ntransformations:\n  - type: field_name_prefix\n    prefix: a.\n    rule_cond_op: xor\n"), vec![("P005", 5, 19)]);
        assert_eq!(errs("name: x\nvars: [a]\ntransformations: []\n"), vec![("P007", 2, 8)]);
        assert_eq!(errs("name: x\ntransformations:\n  - type: field_name_mapping\n    mapping: {a: b}\n    detection_item_conditions: []\n"), vec![("P002", 5, 5)]);
        let d = Pipeline::resolve("/nonexistent/p.yml").unwrap_err();
        assert_eq!(d.0[0].code, "P006");
        assert!(d.0[0].hint.as_deref().unwrap_or("").contains("windows-evtx"));
        let text = Pipeline::parse("p.yml", "name: x\ntransformations:\n  - type: nope\n").unwrap_err().to_string();
        assert!(text.contains("p.yml:3:11") && text.contains("P003"), "{text}");
    }

    #[test]
    fn mapping_alternatives_and_prefix_with_field_conditions() {
        let p = pipe(
            "name: t\ntransformations:\n  - id: sys\n    type: field_name_mapping\n    mapping:\n      EventID: Event.System.EventID\n      Image: [Event.EventData.Image, Event.EventData.NewProcessName]\n  - type: field_name_prefix\n    prefix: Event.EventData.\n    field_name_conditions:\n      - type: processing_item_applied\n        processing_item_id: sys\n    field_name_cond_not: true\n",
        );
        let d = det_with(vec![p], "title: t\ndetection:\n  sel:\n    EventID: 1\n    Image|endswith: '\\cmd.exe'\n    User: bob\n  condition: sel\n");
        let sysmon = json!({"Event": {"System": {"EventID": 1}, "EventData": {"Image": "C:\\cmd.exe", "User": "bob"}}});
        let security = json!({"Event": {"System": {"EventID": 1}, "EventData": {"NewProcessName": "C:\\cmd.exe", "User": "bob"}}});
        assert!(m(&d, sysmon));
        assert!(m(&d, security), "second alternative");
        assert!(!m(&d, json!({"EventID": 1, "Image": "C:\\cmd.exe", "User": "bob"})), "old names no longer match");
        assert!(!m(&d, json!({"Event": {"System": {"EventID": 1}, "EventData": {"Image": "C:\\cmd.exe", "User": "eve"}}})));
    }

    #[test]
    fn wildcard_segment_and_include_exclude() {
        let p = pipe("name: t\ntransformations:\n  - type: field_name_prefix\n    prefix: [Event.EventData., Event.UserData.*.]\n    field_name_conditions:\n      - type: exclude_fields\n        fields: [keep]\n");
        let d = det_with(vec![p], "title: t\ndetection:\n  sel:\n    User: bob\n    keep: 1\n  condition: sel\n");
        assert!(m(&d, json!({"keep": 1, "Event": {"UserData": {"Op": {"User": "bob"}}}})));
        assert!(m(&d, json!({"keep": 1, "Event": {"EventData": {"User": "bob"}}})));
        assert!(!m(&d, json!({"keep": 1, "User": "bob"})));
    }

    #[test]
    fn add_condition_follows_logsource_and_is_mapped_by_later_items() {
        let p = pipe(
            "name: t\ntransformations:\n  - type: add_condition\n    conditions:\n      EventID: 1\n      Channel: Microsoft-Windows-Sysmon/Operational\n    rule_conditions:\n      - type: logsource\n        category: process_creation\n        product: windows\n  - type: field_name_mapping\n    mapping:\n      EventID: sys.id\n      Channel: sys.channel\n",
        );
        let d = det_with(vec![p.clone()], PROC);
        assert!(m(&d, json!({"sys": {"id": 1, "channel": "Microsoft-Windows-Sysmon/Operational"}, "Image": "c:\\cmd.exe"})));
        assert!(!m(&d, json!({"sys": {"id": 3, "channel": "Microsoft-Windows-Sysmon/Operational"}, "Image": "c:\\cmd.exe"})));
        assert!(!m(&d, json!({"Image": "c:\\cmd.exe"})));
        for doc in [json!({"sys": {"id": 1, "channel": "Microsoft-Windows-Sysmon/Operational"}, "Image": "c:\\cmd.exe"}), json!({"Image": "c:\\cmd.exe"})] {
            let (hit, text) = d.explain(doc.as_object().unwrap());
            assert_eq!(hit, m(&d, doc.clone()), "explain agrees with matching: {text}");
            assert!(text.contains("[x] Image|endswith") && text.contains("pipeline t: transformations[0]"), "{text}");
        }
        // Another logsource gets no condition.
        let other = det_with(vec![p], &PROC.replace("process_creation", "file_event"));
        assert!(m(&other, json!({"Image": "c:\\cmd.exe"})));
        // `not` in the rule's condition does not swallow the added one.
        let neg = det_with(vec![pipe("name: t\ntransformations:\n  - type: add_condition\n    conditions: {src: x}\n")], "title: t\ndetection:\n  sel:\n    a: 1\n  condition: not sel\n");
        assert!(m(&neg, json!({"src": "x", "a": 2})));
        assert!(!m(&neg, json!({"src": "y", "a": 2})));
    }

    #[test]
    fn processing_item_applied_as_a_rule_condition_sees_earlier_items() {
        // Rules the first item maps keep its condition; every other rule that is not a
        // Windows rule only matches events without `sys.channel`.
        let p = pipe(concat!(
            "name: t\ntransformations:\n",
            "  - id: proc\n    type: add_condition\n    conditions: {sys.channel: sysmon}\n",
            "    rule_conditions: [{type: logsource, category: process_creation, product: windows}]\n",
            "  - id: other\n    type: add_condition\n    conditions:\n      sys.channel|exists: false\n",
            "    rule_conditions:\n      - {type: processing_item_applied, processing_item_id: proc}\n      - {type: logsource, product: windows}\n",
            "    rule_cond_op: or\n    rule_cond_not: true\n",
        ));
        let (win, evtx) = (json!({"sys": {"channel": "sysmon"}, "Image": "c:\\cmd.exe"}), json!({"Image": "c:\\cmd.exe"}));
        let proc = det_with(vec![p.clone()], PROC);
        assert!(m(&proc, win.clone()) && !m(&proc, evtx.clone()));
        let linux = det_with(vec![p.clone()], &PROC.replace("process_creation", "file_event").replace("windows", "linux"));
        assert!(!m(&linux, win.clone()), "a Linux rule stays off events with a Windows channel");
        assert!(m(&linux, evtx.clone()), "and matches the others");
        let unmapped_windows = det_with(vec![p.clone()], &PROC.replace("process_creation", "file_event"));
        assert!(m(&unmapped_windows, win) && m(&unmapped_windows, evtx), "a Windows rule nothing maps gets no condition");
        assert!(p.summary().iter().any(|l| l == "other: add_condition when none of (proc applied, product=windows)"), "{:?}", p.summary());
        // The id must name an earlier item.
        let text = "name: t\ntransformations:\n  - id: a\n    type: add_condition\n    conditions: {x: 1}\n    rule_conditions:\n      - type: processing_item_applied\n        processing_item_id: b\n  - id: b\n    type: add_condition\n    conditions: {y: 1}\n";
        assert_eq!(errs(text), vec![("P005", 8, 29)]);
        let d = Pipeline::parse("p.yml", text).unwrap_err();
        assert!(d.to_string().contains("no transformation before this one has id `b`"), "{d}");
        assert_eq!(errs(&text.replace("processing_item_id: b", "item: b")).len(), 2, "unknown key, and the id is missing");
    }

    #[test]
    fn priority_orders_pipelines() {
        let a = pipe("name: a\npriority: 20\ntransformations:\n  - type: field_name_mapping\n    mapping: {mid: final}\n");
        let b = pipe("name: b\npriority: 10\ntransformations:\n  - type: field_name_mapping\n    mapping: {orig: mid}\n");
        let rule = "title: t\ndetection:\n  sel:\n    orig: 1\n  condition: sel\n";
        // Given a then b, priority runs b (10) first: orig → mid → final.
        let d = det_with(vec![a.clone(), b.clone()], rule);
        assert!(m(&d, json!({"final": 1})));
        assert!(!m(&d, json!({"mid": 1})));
        let mut a0 = a;
        a0.priority = 0;
        let d = det_with(vec![a0, b], rule);
        assert!(m(&d, json!({"mid": 1})), "a first does nothing, then b maps orig → mid");
    }

    #[test]
    fn fieldref_targets_are_renamed_too() {
        let p = pipe("name: t\ntransformations:\n  - type: field_name_prefix\n    prefix: d.\n");
        let d = det_with(vec![p], "title: t\ndetection:\n  sel:\n    a|fieldref: b\n  condition: sel\n");
        assert!(m(&d, json!({"d": {"a": 1, "b": 1}})));
        assert!(!m(&d, json!({"d": {"a": 1, "b": 2}})));
    }
}
