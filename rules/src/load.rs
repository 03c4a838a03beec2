//! Loading: files → documents → rules, then the cross-file pass (unique ids, correlation
//! references, `generate`). Every problem is collected; nothing stops at the first one.

use crate::correlation::{self, Correlation, Pending};
use crate::detection::{self, LogSource};
use crate::error::{Diagnostic, Diagnostics, Severity};
use crate::template::Template;
use crate::yaml::{self, kind_name, pos, spos, Sink};
use crate::{ExpectedAlert, Rule, RuleKind, RuleSet, RuleTest, SourceLoc};
use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

const KNOWN_KEYS: &[&str] = &[
    "title", "id", "name", "status", "description", "references", "author", "date", "modified", "tags",
    "logsource", "detection", "correlation", "fields", "falsepositives", "level", "related", "license",
    "scope", "taxonomy", "summary", "severity", "category", "suppress", "tests",
];

const LEVELS: &[&str] = &["informational", "low", "medium", "high", "critical"];
const SEVERITIES: &[&str] = &["INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"];
const CORRELATION_BUILTINS: &[&str] = &["count", "value", "rule.title", "rule.id", "window.start", "window.end"];

/// Loads files and directories (directories recursively: `*.yml` and `*.yaml`, sorted).
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, Diagnostics> {
    let mut sources = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let mut files = Vec::new();
        if p.is_dir() {
            collect_dir(p, &mut files, &mut diags);
            files.sort();
        } else {
            files.push(p.to_path_buf());
        }
        for f in files {
            let name = f.display().to_string();
            match std::fs::read_to_string(&f) {
                Ok(text) => sources.push((name, text)),
                Err(e) => diags.push(io_diag(&name, &e)),
            }
        }
    }
    let result = load_sources(&sources);
    if diags.is_empty() {
        return result;
    }
    match result {
        Ok(set) => {
            diags.extend(set.warnings);
            Err(Diagnostics(diags))
        }
        Err(Diagnostics(more)) => {
            diags.extend(more);
            Err(Diagnostics(diags))
        }
    }
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(io_diag(&dir.display().to_string(), &e));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_dir(&path, out, diags);
        } else if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(path);
        }
    }
}

fn io_diag(file: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code: "R000",
        message: format!("cannot read rules: {e}"),
        hint: None,
        file: file.to_string(),
        line: 0,
        column: 0,
        rule_id: None,
        key_path: String::new(),
        source_line: None,
    }
}

/// Loads one file's text.
pub fn load_str(file_name: &str, text: &str) -> Result<RuleSet, Diagnostics> {
    load_sources(&[(file_name.to_string(), text.to_string())])
}

/// A rule before the cross-file pass.
struct Candidate {
    rule: Rule,
    pending: Option<Pending>,
    name_at: (usize, usize),
    id_at: (usize, usize),
    /// Index in `sinks`, to report cross-file problems against the right file.
    file: usize,
}

enum Body {
    Detection(crate::Detection),
    Correlation(Pending),
}

/// Loads (file name, text) pairs as one set: correlations may reference rules in any file.
pub fn load_sources(sources: &[(String, String)]) -> Result<RuleSet, Diagnostics> {
    let mut sinks: Vec<Sink> = sources.iter().map(|(f, t)| Sink::new(f, t)).collect();
    let mut cands: Vec<Candidate> = Vec::new();
    // Ids of documents that had errors, so references to them say so instead of "unknown".
    let mut broken: HashSet<String> = HashSet::new();
    for (fi, (file, text)) in sources.iter().enumerate() {
        let sink = &mut sinks[fi];
        for (di, doc) in yaml::split_documents(text).iter().enumerate() {
            sink.rule_id = None;
            let before = sink.diags.iter().filter(|d| d.severity == Severity::Error).count();
            let node = match yaml::parse_document(doc) {
                Ok(n) => n,
                Err((line, col, msg)) => {
                    sink.error("R001", (line, col), "", msg);
                    continue;
                }
            };
            let parsed = parse_rule(&node, file, di, doc.line, sink);
            let after = sink.diags.iter().filter(|d| d.severity == Severity::Error).count();
            match parsed {
                Some(c) if after == before => cands.push(Candidate { file: fi, ..c }),
                Some(c) => {
                    broken.insert(c.rule.id.clone());
                    if let Some(n) = c.rule.name {
                        broken.insert(n);
                    }
                }
                None => {
                    if let Some(id) = &sink.rule_id {
                        broken.insert(id.clone());
                    }
                }
            }
        }
    }

    // Unique ids and names.
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut dup = vec![false; cands.len()];
    for i in 0..cands.len() {
        let keys: Vec<(String, (usize, usize), &str)> = std::iter::once((cands[i].rule.id.clone(), cands[i].id_at, "id"))
            .chain(cands[i].rule.name.clone().filter(|n| *n != cands[i].rule.id).map(|n| (n, cands[i].name_at, "name")))
            .collect();
        for (key, at, what) in keys {
            if let Some(&j) = by_key.get(&key) {
                if j != i {
                    let first = format!("{}:{}", cands[j].rule.loc.file, cands[j].rule.loc.line);
                    let sink = &mut sinks[cands[i].file];
                    sink.rule_id = Some(cands[i].rule.id.clone());
                    sink.error_hint("R006", at, what, format!("duplicate rule {what} `{key}`"), format!("first defined at {first}"));
                    dup[i] = true;
                }
            } else {
                by_key.insert(key, i);
            }
        }
    }

    // Resolve correlation references against the final (error-free) rule order.
    let keep: Vec<usize> = (0..cands.len()).filter(|&i| !dup[i]).collect();
    let final_index: HashMap<usize, usize> = keep.iter().enumerate().map(|(fi, &ci)| (ci, fi)).collect();
    let mut resolved: HashMap<usize, Vec<usize>> = HashMap::new();
    for &ci in &keep {
        let Some(p) = &cands[ci].pending else { continue };
        let mut idx = Vec::new();
        for (r, line, col) in &p.refs {
            let sink = &mut sinks[cands[ci].file];
            sink.rule_id = Some(cands[ci].rule.id.clone());
            match by_key.get(r) {
                Some(&t) if !dup[t] && cands[t].pending.is_none() => {
                    if let Some(&f) = final_index.get(&t) {
                        if !idx.contains(&f) {
                            idx.push(f);
                        }
                    }
                }
                Some(&t) if cands[t].pending.is_some() => sink.error_hint(
                    "R203",
                    (*line, *col),
                    "correlation.rules",
                    format!("`{r}` is a correlation rule; chained correlations are not supported yet"),
                    "reference detection rules only",
                ),
                _ if broken.contains(r) => sink.error_hint(
                    "R202",
                    (*line, *col),
                    "correlation.rules",
                    format!("referenced rule `{r}` has errors and was not loaded"),
                    "fix the referenced rule first",
                ),
                _ => sink.error_hint(
                    "R202",
                    (*line, *col),
                    "correlation.rules",
                    format!("correlation references unknown rule `{r}`"),
                    "reference a detection rule by its `name` or `id` (in any loaded file)",
                ),
            }
        }
        resolved.insert(ci, idx);
    }

    let mut all: Vec<Diagnostic> = sinks.into_iter().flat_map(|s| s.diags).collect();
    if all.iter().any(|d| d.severity == Severity::Error) {
        // Errors first, in file order; warnings after them.
        all.sort_by_key(|d| d.severity == Severity::Warning);
        return Err(Diagnostics(all));
    }

    // Assemble; `generate` needs every correlation's references first.
    let mut referenced = vec![false; keep.len()];
    let mut generated = vec![false; keep.len()];
    for (&ci, idx) in &resolved {
        let gen = cands[ci].pending.as_ref().is_some_and(|p| p.generate);
        for &f in idx {
            referenced[f] = true;
            generated[f] |= gen;
        }
    }
    let mut rules = Vec::with_capacity(keep.len());
    for (f, ci) in keep.into_iter().enumerate() {
        let c = &mut cands[ci];
        let mut rule = c.rule.clone();
        if let Some(p) = c.pending.take() {
            rule.kind = RuleKind::Correlation(Correlation {
                kind: p.kind,
                rules: resolved.remove(&ci).unwrap_or_default(),
                group_by: p.group_by,
                timespan: p.timespan,
                threshold: p.threshold,
            });
            rule.generate = true;
        } else {
            rule.generate = !referenced[f] || generated[f];
        }
        rules.push(rule);
    }
    Ok(RuleSet { rules, warnings: all })
}

fn scalar_str<'n>(map: &'n MarkedMappingNode, key: &str, sink: &mut Sink) -> Option<&'n str> {
    match map.get_node(key)? {
        Node::Scalar(s) => Some(s.as_str()),
        other => {
            sink.error("R003", pos(other), key, format!("`{key}` must be a string, found {}", kind_name(other)));
            None
        }
    }
}

fn parse_rule(node: &Node, file: &str, doc_index: usize, doc_line: usize, sink: &mut Sink) -> Option<Candidate> {
    let Some(map) = node.as_mapping() else {
        sink.error("R002", pos(node), "", format!("a rule must be a YAML mapping, found {}", kind_name(node)));
        return None;
    };
    let at_doc = (doc_line, 1);
    let id = scalar_str(map, "id", sink).map(str::to_string);
    let name = scalar_str(map, "name", sink).map(str::to_string);
    let rule_id = id.clone().or_else(|| name.clone()).unwrap_or_else(|| format!("{file}#{doc_index}"));
    sink.rule_id = Some(rule_id.clone());
    let id_at = map.get_node("id").or_else(|| map.get_node("name")).map(pos).unwrap_or(at_doc);
    let name_at = map.get_node("name").map(pos).unwrap_or(at_doc);

    // Unknown top-level keys: a near miss of a known key is a typo (error), anything else
    // is a custom key (SigmaHQ has several) and only warned about.
    for (k, _) in map.iter() {
        let key = k.as_str();
        if KNOWN_KEYS.contains(&key) {
            continue;
        }
        let near = KNOWN_KEYS.iter().min_by_key(|c| strsim::levenshtein(c, key)).filter(|c| strsim::levenshtein(c, key) <= 2);
        match near {
            Some(n) => sink.error_hint("R005", spos(k), key, format!("unknown key `{key}`, did you mean `{n}`?"), format!("rename it to `{n}`")),
            None => sink.push(Severity::Warning, "W001", spos(k), key, format!("unknown key `{key}` is ignored"), None),
        }
    }

    let title = match map.get_node("title") {
        Some(Node::Scalar(s)) if !s.as_str().trim().is_empty() => s.as_str().to_string(),
        Some(other) => {
            sink.error("R003", pos(other), "title", "`title` must be a non-empty string");
            String::new()
        }
        None => {
            sink.error_hint("R003", at_doc, "", "rule has no `title`", "every rule needs a `title`");
            String::new()
        }
    };

    let level = match map.get_node("level") {
        None => None,
        Some(Node::Scalar(s)) if LEVELS.contains(&s.as_str()) => Some(s.as_str().to_string()),
        Some(other) => {
            let shown = other.as_scalar().map(|s| s.as_str().to_string()).unwrap_or_else(|| kind_name(other).to_string());
            sink.error_hint("R007", pos(other), "level", format!("invalid level `{shown}`"), format!("valid levels: {}", LEVELS.join(", ")));
            None
        }
    };
    let severity = match map.get_node("severity") {
        Some(Node::Scalar(s)) if SEVERITIES.contains(&s.as_str().to_ascii_uppercase().as_str()) => s.as_str().to_ascii_uppercase(),
        Some(other) => {
            let shown = other.as_scalar().map(|s| s.as_str().to_string()).unwrap_or_else(|| kind_name(other).to_string());
            sink.error_hint("R008", pos(other), "severity", format!("invalid severity `{shown}`"), format!("valid severities: {}", SEVERITIES.join(", ")));
            "WARNING".to_string()
        }
        None => match level.as_deref() {
            Some("informational") => "INFO",
            Some("low") => "NOTICE",
            Some("high") => "ERROR",
            Some("critical") => "CRITICAL",
            _ => "WARNING",
        }
        .to_string(),
    };
    let tags = match map.get_node("tags") {
        None => Vec::new(),
        Some(Node::Sequence(seq)) => seq
            .iter()
            .filter_map(|n| match n.as_scalar() {
                Some(s) => Some(s.as_str().to_string()),
                None => {
                    sink.error("R003", pos(n), "tags", "a tag must be a string");
                    None
                }
            })
            .collect(),
        Some(other) => {
            sink.error("R003", pos(other), "tags", format!("`tags` must be a list, found {}", kind_name(other)));
            Vec::new()
        }
    };
    let suppress = match map.get_node("suppress") {
        None => None,
        Some(Node::Scalar(s)) => match rampart_core::time::parse_duration(s.as_str()) {
            Ok(d) => Some(d),
            Err(e) => {
                sink.error_hint("R009", spos(s), "suppress", e, "e.g. suppress: 10m");
                None
            }
        },
        Some(other) => {
            sink.error("R009", pos(other), "suppress", "`suppress` must be a duration such as 10m");
            None
        }
    };

    let logsource = parse_logsource(map, sink);
    let body = match (map.get_node("detection"), map.get_node("correlation")) {
        (Some(_), Some(c)) => {
            sink.error_hint("R002", pos(c), "correlation", "a rule has either `detection` or `correlation`, not both", "split it into two documents with `---`");
            None
        }
        (Some(d), None) => detection::compile(d, logsource, sink).map(Body::Detection),
        (None, Some(c)) => correlation::parse(c, sink).map(Body::Correlation),
        (None, None) => {
            sink.error_hint("R002", at_doc, "", "document is neither a detection rule nor a correlation rule", "add a `detection:` or a `correlation:` section");
            None
        }
    };
    let is_correlation = map.get_node("correlation").is_some();
    let category = match scalar_str(map, "category", sink) {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => if is_correlation { "correlation" } else { "detection" }.to_string(),
    };
    let group_by: Vec<String> = match &body {
        Some(Body::Correlation(p)) => p.group_by.iter().map(|f| f.as_str().to_string()).collect(),
        _ => Vec::new(),
    };
    let summary = match map.get_node("summary") {
        None => Template::literal(&title),
        Some(Node::Scalar(s)) => match Template::parse_at(s.as_str()) {
            Ok(t) => {
                for f in t.fields() {
                    let ok = if is_correlation {
                        group_by.iter().any(|g| g == f) || CORRELATION_BUILTINS.contains(&f)
                    } else {
                        true
                    };
                    if !ok {
                        let mut allowed: Vec<&str> = group_by.iter().map(String::as_str).collect();
                        allowed.extend(CORRELATION_BUILTINS);
                        let offset = s.as_str().find(f).map(|b| s.as_str()[..b].chars().count()).unwrap_or(0);
                        let at = sink.inside(spos(s), offset);
                        sink.error_hint(
                            "R301",
                            at,
                            "summary",
                            format!("placeholder `{f}` is not available in a correlation alert"),
                            format!("allowed: {}", allowed.join(", ")),
                        );
                    }
                }
                t
            }
            Err(e) => {
                let at = sink.inside(spos(s), e.offset);
                sink.error("R300", at, "summary", e.message);
                Template::literal(&title)
            }
        },
        Some(other) => {
            sink.error("R300", pos(other), "summary", "`summary` must be a string");
            Template::literal(&title)
        }
    };
    let tests = match map.get_node("tests") {
        None => Vec::new(),
        Some(t) => parse_tests(t, file, sink),
    };

    let (kind, pending) = match body? {
        Body::Detection(d) => (RuleKind::Detection(d), None),
        Body::Correlation(p) => (
            // Placeholder until references are resolved in the cross-file pass.
            RuleKind::Correlation(Correlation {
                kind: p.kind.clone(),
                rules: Vec::new(),
                group_by: p.group_by.clone(),
                timespan: p.timespan,
                threshold: p.threshold,
            }),
            Some(p),
        ),
    };
    Some(Candidate {
        rule: Rule {
            id: rule_id,
            name,
            title,
            level,
            severity,
            category,
            tags,
            summary,
            suppress,
            generate: true,
            loc: SourceLoc { file: file.to_string(), line: doc_line },
            kind,
            tests,
        },
        pending,
        name_at,
        id_at,
        file: 0,
    })
}

fn parse_logsource(map: &MarkedMappingNode, sink: &mut Sink) -> LogSource {
    let mut ls = LogSource::default();
    match map.get_node("logsource") {
        None => {}
        Some(Node::Mapping(m)) => {
            let get = |k: &str| m.get_scalar(k).map(|s| s.as_str().to_string());
            ls.product = get("product");
            ls.category = get("category");
            ls.service = get("service");
        }
        Some(other) => sink.error("R003", pos(other), "logsource", format!("`logsource` must be a mapping, found {}", kind_name(other))),
    }
    ls
}

fn parse_tests(node: &Node, file: &str, sink: &mut Sink) -> Vec<RuleTest> {
    let Some(seq) = node.as_sequence() else {
        sink.error_hint("R400", pos(node), "tests", format!("`tests` must be a list, found {}", kind_name(node)), "tests: [{name: ..., events: [...], expect: [...]}]");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, t) in seq.iter().enumerate() {
        let path = format!("tests[{i}]");
        let Some(m) = t.as_mapping() else {
            sink.error("R400", pos(t), &path, format!("a test must be a mapping with name, events and expect, found {}", kind_name(t)));
            continue;
        };
        for (k, _) in m.iter() {
            if !["name", "events", "expect"].contains(&k.as_str()) {
                sink.error_hint("R400", spos(k), &format!("{path}.{}", k.as_str()), format!("unknown test key `{}`", k.as_str()), "valid keys: name, events, expect");
            }
        }
        let name = match m.get_node("name") {
            Some(Node::Scalar(s)) if !s.as_str().is_empty() => s.as_str().to_string(),
            _ => {
                sink.error("R400", pos(t), &format!("{path}.name"), "a test needs a `name`");
                String::new()
            }
        };
        let mut events = Vec::new();
        match m.get_node("events") {
            Some(Node::Sequence(evs)) => {
                for (j, e) in evs.iter().enumerate() {
                    if e.as_mapping().is_some() {
                        events.push(yaml::to_json(e));
                    } else {
                        sink.error("R400", pos(e), &format!("{path}.events[{j}]"), format!("an event must be a mapping, found {}", kind_name(e)));
                    }
                }
            }
            Some(other) => sink.error("R400", pos(other), &format!("{path}.events"), "`events` must be a list of event objects"),
            None => sink.error("R400", pos(t), &format!("{path}.events"), "a test needs `events`"),
        }
        let mut expect = Vec::new();
        match m.get_node("expect") {
            Some(Node::Sequence(exs)) => {
                for (j, e) in exs.iter().enumerate() {
                    let ep = format!("{path}.expect[{j}]");
                    if let Some(x) = parse_expect(e, &ep, sink) {
                        expect.push(x);
                    }
                }
            }
            Some(other) => sink.error_hint("R400", pos(other), &format!("{path}.expect"), "`expect` must be a list", "use `expect: []` for no alert"),
            None => sink.error_hint("R400", pos(t), &format!("{path}.expect"), "a test needs `expect`", "use `expect: []` for no alert"),
        }
        let (line, _) = pos(t);
        out.push(RuleTest { name, events, expect, loc: SourceLoc { file: file.to_string(), line } });
    }
    out
}

fn parse_expect(e: &Node, path: &str, sink: &mut Sink) -> Option<ExpectedAlert> {
    let Some(m) = e.as_mapping() else {
        sink.error("R400", pos(e), path, format!("an expected alert must be a mapping (possibly `{{}}`), found {}", kind_name(e)));
        return None;
    };
    let mut x = ExpectedAlert::default();
    for (k, v) in m.iter() {
        let kp = format!("{path}.{}", k.as_str());
        match (k.as_str(), v) {
            ("rule", Node::Scalar(s)) => x.rule = Some(s.as_str().to_string()),
            ("summary", Node::Scalar(s)) => x.summary = Some(s.as_str().to_string()),
            ("value", Node::Scalar(s)) => match s.as_str().trim().parse::<u64>() {
                Ok(n) => x.value = Some(n),
                Err(_) => sink.error("R400", pos(v), &kp, "`value` must be a non-negative integer"),
            },
            ("group", Node::Mapping(_)) => {
                if let serde_json::Value::Object(g) = yaml::to_json(v) {
                    x.group = g;
                }
            }
            ("rule" | "summary" | "value" | "group", other) => {
                sink.error("R400", pos(other), &kp, format!("unexpected {} for `{}`", kind_name(other), k.as_str()))
            }
            (other, _) => sink.error_hint("R400", spos(k), &kp, format!("unknown expect key `{other}`"), "valid keys: rule, group, value, summary"),
        }
    }
    Some(x)
}
