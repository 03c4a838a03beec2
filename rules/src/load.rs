//! Loading: files → documents → rules, then the cross-file pass (unique ids, correlation
//! references, `generate`). Every problem is collected; nothing stops at the first one.

use crate::correlation::{self, Correlation, Pending};
use crate::detection::{self, LogSource};
use crate::error::{Diagnostic, Diagnostics, Severity};
use crate::pipeline::Pipelines;
use crate::template::Template;
use crate::yaml::{self, kind_name, pos, spos, Sink};
use crate::{ExpectedAlert, Rule, RuleKind, RuleSet, RuleTest, SourceLoc};
use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const KNOWN_KEYS: &[&str] = &[
    "title", "id", "name", "status", "description", "references", "author", "date", "modified", "tags",
    "logsource", "detection", "correlation", "fields", "falsepositives", "level", "related", "license",
    "scope", "taxonomy", "summary", "severity", "category", "suppress", "group-by", "tests",
];

const LEVELS: &[&str] = &["informational", "low", "medium", "high", "critical"];
const SEVERITIES: &[&str] = &["INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"];
const CORRELATION_BUILTINS: &[&str] = &["count", "value", "rule.title", "rule.id", "window.start", "window.end"];

/// Loads files and directories (directories recursively: `*.yml` and `*.yaml`, sorted).
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, Diagnostics> {
    load_paths_with(paths, &Pipelines::default())
}

/// [`load_paths`] with logsource pipelines applied to every detection rule.
pub fn load_paths_with<P: AsRef<Path>>(paths: &[P], pipelines: &Pipelines) -> Result<RuleSet, Diagnostics> {
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
    let result = load_sources_with(&sources, pipelines);
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
    load_sources_with(sources, &Pipelines::default())
}

/// [`load_sources`] with logsource pipelines applied to every detection rule.
pub fn load_sources_with(sources: &[(String, String)], pipelines: &Pipelines) -> Result<RuleSet, Diagnostics> {
    let mut sinks: Vec<Sink> = sources.iter().map(|(f, t)| Sink::new(f, t)).collect();
    let mut cands: Vec<Candidate> = Vec::new();
    // Ids of documents that had errors, so references to them say so instead of "unknown".
    // Value: (file index, line, "file:line") to order and name the first definition.
    let mut broken: HashMap<String, (usize, usize, String)> = HashMap::new();
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
            let parsed = parse_rule(&node, file, di, doc.line, pipelines, sink);
            let after = sink.diags.iter().filter(|d| d.severity == Severity::Error).count();
            match parsed {
                Some(mut c) if after == before => {
                    // A sequence's inline detections are rules of their own (they never
                    // alert: only the sequence references them).
                    let inline = c.pending.as_mut().map(|p| std::mem::take(&mut p.inline)).unwrap_or_default();
                    let mut extra = Vec::with_capacity(inline.len());
                    for (id, det) in inline {
                        let mut rule = c.rule.clone();
                        rule.title = format!("{} ({})", c.rule.title, id.rsplit('#').next().unwrap_or("step"));
                        rule.part_of = Some(c.rule.id.clone());
                        rule.id = id;
                        rule.name = None;
                        rule.tests = Vec::new();
                        rule.group_by = Vec::new();
                        rule.read_group_by = Vec::new();
                        rule.category = "detection".to_string();
                        rule.kind = RuleKind::Detection(det);
                        extra.push(Candidate { rule, pending: None, name_at: c.name_at, id_at: c.id_at, file: fi });
                    }
                    cands.push(Candidate { file: fi, ..c });
                    cands.extend(extra);
                }
                Some(c) => {
                    let at = (fi, doc.line, format!("{file}:{}", doc.line));
                    broken.entry(c.rule.id.clone()).or_insert_with(|| at.clone());
                    if let Some(n) = c.rule.name {
                        broken.entry(n).or_insert(at);
                    }
                }
                None => {
                    let at = (fi, doc.line, format!("{file}:{}", doc.line));
                    let name = node.as_mapping().and_then(|m| m.get_scalar("name")).map(|s| s.as_str().to_string());
                    for key in sink.rule_id.clone().into_iter().chain(name) {
                        broken.entry(key).or_insert_with(|| at.clone());
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
            let earlier_broken = broken.get(&key).filter(|(f, l, _)| (*f, *l) < (cands[i].file, cands[i].rule.loc.line)).map(|b| b.2.clone());
            let first = match by_key.get(&key) {
                Some(&j) if j != i => Some(format!("{}:{}", cands[j].rule.loc.file, cands[j].rule.loc.line)),
                Some(_) => None,
                None => earlier_broken,
            };
            if let Some(first) = first {
                {
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
                // A detection, or a correlation (a chain; cycles are refused below).
                Some(&t) if !dup[t] => {
                    if let Some(&f) = final_index.get(&t) {
                        // A sequence's steps are positions: one rule may be two steps.
                        if !idx.contains(&f) || matches!(p.kind, crate::CorrelationType::Sequence { .. }) {
                            idx.push(f);
                        }
                    }
                }
                _ if broken.contains_key(r) => sink.error_hint(
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

    // Chains must end in detection rules: a correlation reaching itself is refused.
    for &ci in &keep {
        let Some(p) = &cands[ci].pending else { continue };
        let mut stack: Vec<usize> = resolved.get(&ci).into_iter().flatten().map(|&f| keep[f]).collect();
        let mut seen = std::collections::HashSet::new();
        let mut cyclic = false;
        while let Some(x) = stack.pop() {
            if x == ci {
                cyclic = true;
                break;
            }
            if seen.insert(x) {
                stack.extend(resolved.get(&x).into_iter().flatten().map(|&f| keep[f]));
            }
        }
        if let (true, Some((_, line, col))) = (cyclic, p.refs.first()) {
            let sink = &mut sinks[cands[ci].file];
            sink.rule_id = Some(cands[ci].rule.id.clone());
            sink.error_hint(
                "R203",
                (*line, *col),
                "correlation.rules",
                "this correlation references itself through a chain of correlations",
                "a chain must end in detection rules",
            );
        }
    }

    // Pipelines rename what each correlation reads from its detections' events.
    if !pipelines.is_empty() {
        for &ci in &keep {
            let Some(p) = &cands[ci].pending else { continue };
            let logsources: Vec<Option<crate::detection::LogSource>> = p
                .refs
                .iter()
                .map(|(r, _, _)| match by_key.get(r).map(|&t| &cands[t].rule.kind) {
                    Some(RuleKind::Detection(d)) => Some(d.logsource.clone()),
                    _ => None,
                })
                .collect();
            let sink = &mut sinks[cands[ci].file];
            sink.rule_id = Some(cands[ci].rule.id.clone());
            if let Some(p) = cands[ci].pending.as_mut() {
                correlation::apply_pipelines(p, &logsources, pipelines, sink);
            }
        }
    }

    // Within a file, in source order (keys are checked in a fixed order, not as written).
    let mut all: Vec<Diagnostic> = sinks
        .into_iter()
        .flat_map(|s| {
            let mut d = s.diags;
            d.sort_by_key(|d| (d.line, d.column));
            d
        })
        .collect();
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
                group_by_per_rule: p.group_by_per_rule,
                timespan: p.timespan,
                window: p.window,
                threshold: p.threshold,
            });
            // Only the outermost correlation of a chain alerts, unless asked to.
            rule.generate = !referenced[f] || generated[f];
        } else {
            rule.generate = !referenced[f] || generated[f];
        }
        rules.push(rule);
    }
    Ok(RuleSet { rules, warnings: all })
}

/// A new_term's term fields: part of its alerts' group, after the `group-by` fields.
fn term_fields(kind: &crate::CorrelationType) -> &[rampart_core::FieldPath] {
    match kind {
        crate::CorrelationType::NewTerm { fields, .. } => fields,
        _ => &[],
    }
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

fn parse_rule(node: &Node, file: &str, doc_index: usize, doc_line: usize, pipelines: &Pipelines, sink: &mut Sink) -> Option<Candidate> {
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
    let mut misspelt_section = false;
    for (k, _) in map.iter() {
        let key = k.as_str();
        if KNOWN_KEYS.contains(&key) {
            continue;
        }
        let near = KNOWN_KEYS.iter().min_by_key(|c| strsim::levenshtein(c, key)).filter(|c| strsim::levenshtein(c, key) <= 2);
        match near {
            Some(n) => {
                misspelt_section |= *n == "detection" || *n == "correlation";
                sink.error_hint("R005", spos(k), key, format!("unknown key `{key}`, did you mean `{n}`?"), format!("rename it to `{n}`"))
            }
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
        (Some(d), None) => detection::compile(d, yaml::key_pos(map, "detection").unwrap_or(at_doc), logsource, pipelines, sink).map(|mut d| {
            pipelines.apply(&mut d);
            Body::Detection(d)
        }),
        (None, Some(c)) => {
            let ctx = crate::sequence::Context { rule_id: &rule_id, logsource: &logsource, pipelines };
            correlation::parse(c, yaml::key_pos(map, "correlation").unwrap_or(at_doc), &ctx, sink).map(Body::Correlation)
        }
        // A misspelt section was already reported; "neither" would only repeat it.
        (None, None) if misspelt_section => None,
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
    // Rampart's top-level `group-by` on a detection rule: the fields that make an alert's
    // group, so `suppress` can apply per host (or user, …) instead of per rule.
    let group_by_at: Vec<(rampart_core::FieldPath, (usize, usize))> = match map.get_node("group-by") {
        None => Vec::new(),
        Some(n) if is_correlation => {
            sink.error_hint("R201", pos(n), "group-by", "a correlation's `group-by` belongs under `correlation:`", "move it into the correlation section");
            Vec::new()
        }
        Some(Node::Sequence(items)) => items
            .iter()
            .filter_map(|i| match i {
                Node::Scalar(f) if !f.as_str().is_empty() => Some((rampart_core::FieldPath::new(f.as_str()), spos(f))),
                other => {
                    sink.error("R003", pos(other), "group-by", "`group-by` entries must be field names");
                    None
                }
            })
            .collect(),
        Some(Node::Scalar(f)) => vec![(rampart_core::FieldPath::new(f.as_str()), spos(f))],
        Some(other) => {
            sink.error("R003", pos(other), "group-by", format!("`group-by` must be a list of field names, found {}", kind_name(other)));
            Vec::new()
        }
    };
    let detection_group_by: Vec<rampart_core::FieldPath> = group_by_at.iter().map(|(f, _)| f.clone()).collect();
    // Pipelines rename where the events keep those fields, as they rename the detection's
    // own fields and a correlation's `group-by`; alerts keep the names as written.
    let read_group_by: Vec<rampart_core::FieldPath> = match &body {
        Some(Body::Detection(d)) => group_by_at
            .iter()
            .enumerate()
            .map(|(i, (f, at))| match pipelines.rename(&d.logsource, f).as_slice() {
                [one] => one.clone(),
                paths => {
                    let list: Vec<&str> = paths.iter().map(rampart_core::FieldPath::as_str).collect();
                    sink.error_hint(
                        "R209",
                        *at,
                        &format!("group-by[{i}]"),
                        format!("the pipelines map `{f}` to several paths ({}); an alert's group reads one path per field", list.join(", ")),
                        format!("give `{f}` a single target in a `field_name_mapping` for this rule's logsource"),
                    );
                    f.clone()
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let group_by: Vec<String> = match &body {
        Some(Body::Correlation(p)) => p.group_by.iter().chain(term_fields(&p.kind)).map(|f| f.as_str().to_string()).collect(),
        _ => detection_group_by.iter().map(|f| f.as_str().to_string()).collect(),
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
                sink.error_hint("R300", at, "summary", e.message, "placeholders look like `{{ details.sourceipaddress }}`");
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
                group_by_per_rule: p.group_by_per_rule.clone(),
                timespan: p.timespan,
                window: p.window,
                threshold: p.threshold.clone(),
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
            group_by: match &kind {
                RuleKind::Correlation(c) => c.group_by.iter().chain(term_fields(&c.kind)).cloned().collect(),
                RuleKind::Detection(_) => detection_group_by,
            },
            read_group_by,
            generate: true,
            loc: SourceLoc { file: file.to_string(), line: doc_line },
            kind,
            tests,
            part_of: None,
        },
        pending,
        name_at,
        id_at,
        file: 0,
    })
}

pub(crate) fn parse_logsource(map: &MarkedMappingNode, sink: &mut Sink) -> LogSource {
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
            ("value", Node::Scalar(s)) => match s.as_str().trim().parse::<f64>() {
                Ok(n) if n.is_finite() => x.value = Some(n),
                _ => sink.error("R400", pos(v), &kp, "`value` must be a number"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CorrelationType, ThresholdOp};
    use serde_json::json;
    use std::time::Duration;

    fn errs(text: &str) -> Vec<Diagnostic> {
        match load_str("t.yml", text) {
            Ok(set) => panic!("expected errors, loaded {} rules", set.len()),
            Err(d) => d.0.into_iter().filter(|d| d.severity == Severity::Error).collect(),
        }
    }

    fn one_err(text: &str) -> Diagnostic {
        let e = errs(text);
        assert_eq!(e.len(), 1, "expected one error, got: {}", Diagnostics(e.clone()));
        e.into_iter().next().unwrap()
    }

    fn ok(text: &str) -> RuleSet {
        match load_str("t.yml", text) {
            Ok(s) => s,
            Err(d) => panic!("unexpected errors:\n{d}"),
        }
    }

    /// A detection rule around `detection` (indented two spaces already).
    fn det(detection: &str) -> crate::Detection {
        let set = ok(&format!("title: t\nid: r1\ndetection:\n{detection}"));
        match &set.rules[0].kind {
            RuleKind::Detection(d) => d.clone(),
            RuleKind::Correlation(_) => panic!("not a detection"),
        }
    }

    fn m(d: &crate::Detection, doc: serde_json::Value) -> bool {
        d.matches_doc(doc.as_object().unwrap())
    }

    #[test]
    fn detection_group_by_is_rampart_s_alert_group() {
        let set = ok("title: t\nid: r1\ngroup-by: [hostname, details.user]\nsuppress: 1h\ndetection:\n  s:\n    a: 1\n  condition: s\n");
        let names: Vec<&str> = set.rules[0].group_by.iter().map(|f| f.as_str()).collect();
        assert_eq!(names, ["hostname", "details.user"]);
        let set = ok("title: t\nid: r2\ndetection:\n  s:\n    a: 1\n  condition: s\n");
        assert!(set.rules[0].group_by.is_empty());
        let e = one_err("title: c\nid: c1\ngroup-by: [x]\ncorrelation:\n  type: event_count\n  rules: [r]\n  group-by: [x]\n  timespan: 1m\n  condition: {gte: 2}\n---\ntitle: r\nname: r\ndetection:\n  s:\n    a: 1\n  condition: s\n");
        assert_eq!((e.code, e.line, e.key_path.as_str()), ("R201", 3, "group-by"));
        let e = one_err("title: t\nid: r3\ngroup-by: {a: 1}\ndetection:\n  s:\n    a: 1\n  condition: s\n");
        assert_eq!((e.code, e.line), ("R003", 3));
    }

    #[test]
    fn parses_a_detection_rule() {
        let set = ok(concat!(
            "# leading comment\n",
            "title: SSH root login\n",
            "id: abc-1\n",
            "name: ssh_root\n",
            "level: high\n",
            "tags: [attack.t1078, attack.initial_access]\n",
            "logsource: {product: linux, service: sshd}\n",
            "detection:\n",
            "  selection:\n",
            "    details.username: root\n",
            "  condition: selection\n",
            "suppress: 10m\n"
        ));
        assert_eq!(set.len(), 1);
        let r = set.get("abc-1").unwrap();
        assert_eq!(set.index_of("abc-1"), Some(0));
        assert_eq!(r.name.as_deref(), Some("ssh_root"));
        assert_eq!(r.title, "SSH root login");
        assert_eq!(r.severity, "ERROR");
        assert_eq!(r.category, "detection");
        assert_eq!(r.tags, vec!["attack.t1078", "attack.initial_access"]);
        assert_eq!(r.suppress, Some(Duration::from_secs(600)));
        assert_eq!(r.loc, crate::SourceLoc { file: "t.yml".into(), line: 2 });
        assert!(r.generate);
        assert_eq!(r.summary.render(&|_| None), "SSH root login");
        let RuleKind::Detection(d) = &r.kind else { panic!() };
        assert_eq!(d.logsource.product.as_deref(), Some("linux"));
        assert_eq!(d.logsource.service.as_deref(), Some("sshd"));
        assert!(m(d, json!({"details": {"username": "ROOT"}})));
        assert!(!m(d, json!({"details": {"username": "bob"}})));
        assert!(set.warnings.is_empty());
    }

    #[test]
    fn severity_level_category_and_id_defaults() {
        let base = "detection:\n  s:\n    a: 1\n  condition: s\n";
        let cases = [("informational", "INFO"), ("low", "NOTICE"), ("medium", "WARNING"), ("high", "ERROR"), ("critical", "CRITICAL")];
        for (level, sev) in cases {
            let set = ok(&format!("title: t\nlevel: {level}\n{base}"));
            assert_eq!(set.rules[0].severity, sev);
            assert_eq!(set.rules[0].id, "t.yml#0", "no id and no name: file#index");
        }
        let set = ok(&format!("title: t\n{base}"));
        assert_eq!(set.rules[0].severity, "WARNING");
        let set = ok(&format!("title: t\nname: nm\nlevel: low\nseverity: critical\ncategory: bruteforce\n{base}"));
        assert_eq!(set.rules[0].id, "nm");
        assert_eq!(set.rules[0].severity, "CRITICAL", "explicit severity wins, any case");
        assert_eq!(set.rules[0].category, "bruteforce");
        let e = one_err(&format!("title: t\nlevel: severe\n{base}"));
        assert_eq!((e.code, e.line, e.column), ("R007", 2, 8));
        let e = one_err(&format!("title: t\nseverity: loud\n{base}"));
        assert_eq!((e.code, e.line, e.column), ("R008", 2, 11));
        let e = one_err(&format!("title: t\nsuppress: often\n{base}"));
        assert_eq!((e.code, e.line, e.column), ("R009", 2, 11));
        let e = one_err(&format!("id: x\n{base}"));
        assert_eq!((e.code, e.line, e.rule_id.as_deref()), ("R003", 1, Some("x")));
    }

    #[test]
    fn unknown_modifier_points_at_the_modifier() {
        let text = "title: t\nid: r1\ndetection:\n  selection:\n    summary|contians: 'Failed password'\n  condition: selection\n";
        let e = one_err(text);
        assert_eq!((e.code, e.line, e.column), ("R104", 5, 12));
        assert_eq!(e.key_path, "detection.selection.summary|contians");
        assert_eq!(e.rule_id.as_deref(), Some("r1"));
        assert!(e.message.contains("did you mean `contains`"), "{}", e.message);
        assert!(e.hint.as_deref().unwrap().contains("startswith"));
        let shown = e.to_string();
        assert!(shown.contains("error[R104]: unknown modifier `contians`"), "{shown}");
        assert!(shown.contains("--> t.yml:5:12 (rule r1, detection.selection.summary|contians)"), "{shown}");
        assert!(shown.contains("5 |     summary|contians: 'Failed password'\n  |            ^^^^^^^^^\n"), "{shown}");
        assert!(shown.contains("= hint: valid modifiers:"), "{shown}");
    }

    #[test]
    fn condition_errors_carry_their_column() {
        let base = "title: t\ndetection:\n  selection:\n    a: 1\n";
        let e = one_err(&format!("{base}  condition: selection and nope\n"));
        assert_eq!((e.code, e.line, e.column), ("R111", 5, 28));
        assert_eq!(e.key_path, "detection.condition");
        let e = one_err(&format!("{base}  condition: 'selection and nope'\n"));
        assert_eq!((e.code, e.line, e.column), ("R111", 5, 29), "quotes are skipped");
        let e = one_err(&format!("{base}  condition: 1 of sel_*\n"));
        assert_eq!((e.code, e.line, e.column), ("R112", 5, 19));
        let e = one_err(&format!("{base}  condition: selection | count() by host > 5\n"));
        assert_eq!((e.code, e.line, e.column), ("R113", 5, 24));
        assert!(e.hint.unwrap().contains("correlation: type: event_count"));
        let e = one_err(&format!("{base}  condition:\n    - selection\n    - nope\n"));
        assert_eq!((e.code, e.line, e.column, e.key_path.as_str()), ("R111", 7, 7, "detection.condition[1]"));
        let e = one_err(&format!("{base}  timeframe: 5m\n  condition: selection\n"));
        assert_eq!(e.code, "R113");
        let e = one_err("title: t\ndetection:\n  selection:\n    a: 1\n");
        assert_eq!((e.code, e.line, e.column), ("R100", 2, 1));
    }

    #[test]
    fn value_errors_point_at_the_value() {
        let e = one_err("title: t\ndetection:\n  s:\n    a|re: 'foo(bar'\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R105", 4, 11));
        assert!(e.message.contains("invalid regular expression"));
        let e = one_err("title: t\ndetection:\n  s:\n    ip|cidr:\n      - 10.0.0.0/8\n      - 10.0.0.300/8\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R106", 6, 9));
        let e = one_err("title: t\ndetection:\n  s:\n    n|gt: many\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R107", 4, 11));
        let e = one_err("title: t\ndetection:\n  s:\n    n|exists: maybe\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R108", 4, 15));
        let e = one_err("title: t\ndetection:\n  s:\n    n|expand: '%list%'\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R114", 4, 16));
        assert!(e.message.contains("`%list%` has no configured values"), "{e}");
        let e = one_err("title: t\ndetection:\n  s:\n    n|contains|startswith: x\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R109", 4, 15));
        let e = one_err("title: t\ndetection:\n  s:\n    n|re|contains: x\n  condition: s\n");
        assert_eq!(e.code, "R109");
        let e = one_err("title: t\ndetection:\n  s:\n    n:\n      x: 1\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R102", 5, 7));
    }

    #[test]
    fn unknown_top_level_keys() {
        let e = one_err("title: t\ndetetion:\n  s:\n    a: 1\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R005", 2, 1));
        assert_eq!(e.message, "unknown key `detetion`, did you mean `detection`?");
        let e = one_err("title: t\nlevle: high\ndetection:\n  s:\n    a: 1\n  condition: s\n");
        assert_eq!((e.code, e.message.as_str()), ("R005", "unknown key `levle`, did you mean `level`?"));
        let set = ok("title: t\nsimulation: [x]\nregression_tests_path: a/b\ndetection:\n  s:\n    a: 1\n  condition: s\n");
        assert_eq!(set.warnings.len(), 2);
        assert!(set.warnings.iter().all(|w| w.severity == Severity::Warning && w.code == "W001"));
        assert_eq!(set.warnings[0].line, 2);
    }

    #[test]
    fn yaml_syntax_errors_have_positions() {
        let e = one_err("title: t\ndetection:\n  s:\n    a: [1, 2\n  condition: s\n");
        assert_eq!(e.code, "R001");
        assert!(e.line >= 4, "{e:?}");
        let e = one_err("title: t\ntitle: u\ndetection:\n  s:\n    a: 1\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R001", 2, 1));
        assert!(e.message.contains("duplicate key `title`"));
        let e = one_err("- a\n- b\n");
        assert_eq!(e.code, "R001");
    }

    #[test]
    fn all_problems_are_reported_in_one_run() {
        let a = "title: a\nid: a\ndetection:\n  s:\n    x|contians: 1\n    y|re: '('\n  condition: s and t\n---\ntitle: b\nid: b\nlevel: huge\ndetection:\n  s:\n    x: 1\n  condition: s\n---\ntitle: c\nid: c\ndetection:\n  s:\n    x: 1\n  condition: s\n";
        let b = "title: d\nid: a\ndetection:\n  s:\n    x: 1\n  condition: s\n";
        let d = load_sources(&[("a.yml".into(), a.into()), ("b.yml".into(), b.into())]).unwrap_err();
        let got: Vec<(&str, &str, usize, usize)> = d.errors().map(|e| (e.file.as_str(), e.code, e.line, e.column)).collect();
        assert_eq!(
            got,
            vec![("a.yml", "R104", 5, 6), ("a.yml", "R105", 6, 11), ("a.yml", "R111", 7, 20), ("a.yml", "R007", 11, 8), ("b.yml", "R006", 2, 5)]
        );
        let rule_ids: Vec<_> = d.errors().map(|e| e.rule_id.clone().unwrap_or_default()).collect();
        assert_eq!(rule_ids, vec!["a", "a", "a", "b", "a"]);
        assert!(d.to_string().ends_with("5 error(s), 0 warning(s)"));
    }

    const FAILED: &str = "title: Failed login\nid: 11111111-0000-0000-0000-000000000001\nname: failed_login\ndetection:\n  s:\n    details.success: false\n  condition: s\n";

    #[test]
    fn multi_document_correlation_by_name_and_generate() {
        let text = format!(
            "{FAILED}---\ntitle: Unrelated\nid: other\ndetection:\n  s:\n    x: 1\n  condition: s\n---\n\
title: Brute force\nid: bf\ncorrelation:\n  type: event_count\n  rules: [failed_login]\n  group-by: [details.sourceipaddress]\n  timespan: 5m\n  condition: {{gte: 10}}\n\
summary: 'Brute force from {{{{ details.sourceipaddress }}}}: {{{{count}}}} failures'\n"
        );
        let set = ok(&text);
        assert_eq!(set.len(), 3);
        let bf = set.get("bf").unwrap();
        assert_eq!(bf.loc.line, 16);
        assert_eq!(bf.category, "correlation");
        assert!(bf.generate);
        let RuleKind::Correlation(c) = &bf.kind else { panic!() };
        assert_eq!(c.kind, CorrelationType::EventCount);
        assert_eq!(c.rules, vec![0]);
        assert_eq!(c.group_by, vec![rampart_core::FieldPath::new("details.sourceipaddress")]);
        assert_eq!(c.timespan, Duration::from_secs(300));
        assert_eq!(c.threshold.ops, vec![(ThresholdOp::Gte, 10.0)]);
        assert!(!set.rules[0].generate, "referenced without generate: true");
        assert!(set.rules[1].generate, "unreferenced detection alerts on its own");
        let with_gen = text.replace("timespan: 5m", "timespan: 5m\n  generate: true");
        assert!(ok(&with_gen).rules[0].generate);
    }

    #[test]
    fn correlation_by_id_across_files_and_value_count() {
        let corr = "title: Spray\nid: spray\ncorrelation:\n  type: value_count\n  rules:\n    - 11111111-0000-0000-0000-000000000001\n  group-by:\n    - src\n  timespan: 1h 30m\n  condition:\n    field: User\n    gt: 4\nsummary: '{{ value }} users from {{src}}'\n";
        let set = load_sources(&[("c.yml".into(), corr.into()), ("d.yml".into(), FAILED.into())]).unwrap();
        let RuleKind::Correlation(c) = &set.rules[0].kind else { panic!() };
        assert_eq!(c.rules, vec![1]);
        assert_eq!(c.kind, CorrelationType::ValueCount { field: rampart_core::FieldPath::new("User") });
        assert_eq!(c.timespan, Duration::from_secs(5400));
        assert_eq!(c.threshold.ops, vec![(ThresholdOp::Gt, 4.0)]);
        assert!(!set.rules[1].generate);
    }

    #[test]
    fn correlation_errors() {
        let corr = |body: &str| format!("{FAILED}---\ntitle: C\nid: c\ncorrelation:\n{body}");
        let e = one_err(&corr("  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition: {gte: 3}\n"));
        assert_eq!((e.code, e.line, e.column), ("R202", 13, 11));
        assert_eq!(e.rule_id.as_deref(), Some("c"));
        let e = one_err(&corr("  type: temporal_unordered\n  rules: [failed_login]\n  timespan: 5m\n  condition: {gte: 3}\n"));
        assert_eq!((e.code, e.line, e.column), ("R200", 12, 9));
        assert_eq!(e.message, "correlation type `temporal_unordered` is not supported");
        let e = one_err(&corr("  type: event_count\n  rules: [failed_login]\n  timespan: 5m\n  condition:\n    lt: 1\n"));
        assert_eq!((e.code, e.line, e.column), ("R204", 15, 3));
        assert!(e.hint.unwrap().contains("absence"));
        let e = one_err(&corr("  type: event_count\n  rules: [failed_login]\n  timespan: soon\n  condition: {gte: 3}\n"));
        assert_eq!((e.code, e.line, e.column), ("R205", 14, 13));
        let e = one_err(&corr("  type: value_count\n  rules: [failed_login]\n  timespan: 5m\n  condition: {gte: 3}\n"));
        assert_eq!(e.code, "R201");
        let e = one_err(&corr("  type: event_count\n  rules: [failed_login]\n  timespan: 5m\n  condition: {gte: 3}\nsummary: '{{ details.username }} x'\n"));
        assert_eq!((e.code, e.line, e.column), ("R301", 16, 14));
        assert!(e.hint.unwrap().contains("count, value, rule.title"));
        // Chained correlations load; a cycle does not.
        let chained = format!("{}---\ntitle: D\nid: d\ncorrelation:\n  type: event_count\n  rules: [c]\n  timespan: 5m\n  condition: {{gte: 3}}\n", corr("  type: event_count\n  rules: [failed_login]\n  timespan: 5m\n  condition: {gte: 3}\n"));
        let set = ok(&chained);
        let RuleKind::Correlation(d) = &set.rules[2].kind else { panic!() };
        assert_eq!(d.rules, vec![1]);
        assert!(!set.rules[1].generate && set.rules[2].generate, "only the outermost correlation alerts");
        // Every correlation on the cycle is reported.
        let e = errs(&chained.replace("rules: [failed_login]", "rules: [failed_login, d]"));
        assert_eq!(e.iter().map(|e| (e.code, e.line, e.column)).collect::<Vec<_>>(), vec![("R203", 13, 11), ("R203", 21, 11)]);
        // Reference to a rule that failed to load.
        let broken = format!("{}---\ntitle: C\nid: c\ncorrelation:\n  type: event_count\n  rules: [failed_login]\n  timespan: 5m\n  condition: {{gte: 3}}\n", FAILED.replace("success: false", "success|nope: false"));
        let e = errs(&broken);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].code, "R202");
        assert!(e[1].message.contains("has errors"), "{}", Diagnostics(e.clone()));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let e = one_err(&format!("{FAILED}---\n{}", FAILED.replace("name: failed_login", "name: other")));
        assert_eq!((e.code, e.line, e.column), ("R006", 10, 5));
        assert!(e.hint.unwrap().contains("t.yml:1"));
    }

    #[test]
    fn templates_in_detection_rules() {
        let set = ok("title: t\ndetection:\n  s:\n    a: 1\n  condition: s\nsummary: 'user {{ details.user }} on {{hostname}}'\n");
        assert_eq!(set.rules[0].summary.fields(), vec!["details.user", "hostname"]);
        let e = one_err("title: t\ndetection:\n  s:\n    a: 1\n  condition: s\nsummary: 'user {{ details.user'\n");
        assert_eq!((e.code, e.line, e.column), ("R300", 6, 16));
    }

    #[test]
    fn in_file_tests_are_parsed_strictly() {
        let base = "title: t\nid: r\ndetection:\n  s:\n    a: 1\n  condition: s\n";
        let set = ok(&format!(
            "{base}tests:\n  - name: fires\n    events:\n      - {{\"a\": 1, \"b\": {{\"c\": 'x'}}}}\n    expect:\n      - {{rule: r, group: {{src: 10.0.0.1}}, value: 3, summary: hi}}\n  - name: quiet\n    events: []\n    expect: []\n"
        ));
        let tests = &set.rules[0].tests;
        assert_eq!(tests.len(), 2);
        assert_eq!(tests[0].name, "fires");
        assert_eq!(tests[0].events, vec![json!({"a": 1, "b": {"c": "x"}})]);
        assert_eq!(tests[0].loc.line, 8);
        let x = &tests[0].expect[0];
        assert_eq!(x.rule.as_deref(), Some("r"));
        assert_eq!(x.group.get("src"), Some(&json!("10.0.0.1")));
        assert_eq!(x.value, Some(3.0));
        assert_eq!(x.summary.as_deref(), Some("hi"));
        assert!(tests[1].expect.is_empty());
        let e = errs(&format!("{base}tests:\n  - name: x\n    event: []\n    expect: [{{valu: 3}}]\n"));
        let codes: Vec<_> = e.iter().map(|d| (d.code, d.line, d.column)).collect();
        assert_eq!(codes, vec![("R400", 8, 5), ("R400", 9, 5), ("R400", 10, 15)]);
    }

    #[test]
    fn both_or_neither_section() {
        let e = one_err("title: t\ndescription: nothing\n");
        assert_eq!((e.code, e.line), ("R002", 1));
        let e = one_err("title: t\ndetection:\n  s:\n    a: 1\n  condition: s\ncorrelation:\n  type: event_count\n");
        assert_eq!(e.code, "R002");
    }

    #[test]
    fn load_paths_walks_directories_sorted_and_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let rule = |id: &str| format!("title: {id}\nid: {id}\ndetection:\n  s:\n    a: 1\n  condition: s\n");
        std::fs::write(dir.path().join("b.yml"), rule("b")).unwrap();
        std::fs::write(dir.path().join("a.yaml"), rule("a")).unwrap();
        std::fs::write(sub.join("c.yml"), rule("c")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a rule").unwrap();
        let set = load_paths(&[dir.path()]).unwrap();
        let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c"]);
        assert!(set.rules[2].loc.file.ends_with("sub/c.yml"));
        let missing = dir.path().join("missing.yml");
        let d = load_paths(&[dir.path().join("b.yml"), missing]).unwrap_err();
        let e: Vec<_> = d.errors().collect();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].code, e[0].line), ("R000", 0));
        assert!(e[0].file.ends_with("missing.yml"));
    }

    #[test]
    fn nested_lookup_fast_path_agrees_with_core() {
        let d = det("  s:\n    details.user: bob\n  condition: s\n");
        assert!(m(&d, json!({"details": {"user": "bob"}})));
        assert!(m(&d, json!({"details.user": "bob"})), "literal dotted key");
        assert!(m(&d, json!({"details": {"x": 1}, "details.user": "bob"})), "nested miss falls back to core");
        let d = det("  s:\n    user: bob\n  condition: s\n");
        assert!(m(&d, json!({"details": {"user": "bob"}})), "MozDef details fallback");
        assert!(!m(&d, json!({"details": {"user": "alice"}})));
    }

    #[test]
    fn odd_yaml_never_panics_and_always_explains() {
        let inputs = [
            "", "---", "---\n---\n", "...", "- a", "a", "{", "[", "a: &x 1\nb: *x", "b: *x", "!!str a: b", "? [a]\n: b",
            "title: t\ndetection: !!map {}", "\t- x", "title: 'unterminated", "title: t\ndetection:\n  s: [\n", "a: b: c",
            "title: t\ndetection:\n  s:\n    - a: 1\n    - b\n  condition: s\n", "title: t\ndetection:\n  s: ''\n  condition: s\n",
            "title: t\ndetection:\n  s: []\n  condition: s\n", "title: t\ndetection:\n  s:\n    a: []\n  condition: s\n",
            "title: t\ndetection:\n  s:\n    a: 1\n  condition: [[s]]\n", "title: t\ncorrelation: []\n",
            "title: t\ndetection:\n  s:\n    a: 1\n  condition: '0 of them'\n",
        ];
        for text in inputs {
            match load_str("odd.yml", text) {
                Ok(set) => assert!(set.is_empty() || text.contains("title"), "{text:?} loaded {set:?}"),
                Err(d) => {
                    assert!(d.has_errors(), "{text:?}");
                    for e in d.errors() {
                        assert!(!e.message.is_empty() && e.line >= 1 && e.column >= 1, "{text:?}: {e:?}");
                    }
                }
            }
        }
        assert!(load_str("empty.yml", "").unwrap().is_empty(), "an empty file is an empty set");
        assert!(load_str("c.yml", "# only a comment\n---\n").unwrap().is_empty());
    }

    // ---- matching semantics ----

    #[test]
    fn contains_startswith_endswith_all() {
        let d = det("  s:\n    cmd|contains: 'ShadowCopy'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "vssadmin delete shadowcopy /all"})));
        assert!(!m(&d, json!({"cmd": "vssadmin list"})));
        let d = det("  s:\n    cmd|startswith: 'C:\\Windows\\'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "c:\\windows\\system32\\cmd.exe"})));
        assert!(!m(&d, json!({"cmd": "d:\\c:\\windows\\"})));
        let d = det("  s:\n    img|endswith:\n      - '\\cmd.exe'\n      - '\\powershell.exe'\n  condition: s\n");
        assert!(m(&d, json!({"img": "C:\\Windows\\System32\\PowerShell.exe"})));
        assert!(!m(&d, json!({"img": "C:\\cmd.exe.bak"})));
        let d = det("  s:\n    cmd|contains|all:\n      - ' -enc '\n      - 'bypass'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "powershell -ExecutionPolicy Bypass -enc AAA "})));
        assert!(!m(&d, json!({"cmd": "powershell -enc AAA"})));
    }

    #[test]
    fn regex_cidr_exists_compare_cased_fieldref() {
        let d = det("  s:\n    cmd|re: '^ab+c$'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "abbbc"})));
        assert!(!m(&d, json!({"cmd": "ABC"})), "re is case-sensitive");
        let d = det("  s:\n    cmd|re|i: '^ab+c$'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "ABC"})));
        let d = det("  s:\n    cmd|re|m: '^x$'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "a\nx\nb"})));
        let d = det("  s:\n    cmd|re|s: 'a.b'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "a\nb"})));
        let d = det("  s:\n    ip|cidr:\n      - 10.0.0.0/8\n      - '2001:db8::/32'\n  condition: s\n");
        assert!(m(&d, json!({"ip": "10.1.2.3"})));
        assert!(m(&d, json!({"ip": "2001:db8::1"})));
        assert!(!m(&d, json!({"ip": "11.0.0.1"})));
        assert!(!m(&d, json!({"ip": "not an ip"})));
        let d = det("  s:\n    user|exists: true\n  condition: s\n");
        assert!(m(&d, json!({"user": "x"})));
        assert!(!m(&d, json!({"other": "x"})));
        let d = det("  s:\n    user|exists: false\n  condition: s\n");
        assert!(m(&d, json!({"other": "x"})));
        assert!(!m(&d, json!({"user": ""})));
        for (op, yes, no) in [("gt", 6, 5), ("gte", 5, 4), ("lt", 4, 5), ("lte", 5, 6)] {
            let d = det(&format!("  s:\n    n|{op}: 5\n  condition: s\n"));
            assert!(m(&d, json!({"n": yes})), "{op} {yes}");
            assert!(m(&d, json!({"n": yes.to_string()})), "{op} numeric string");
            assert!(!m(&d, json!({"n": no})), "{op} {no}");
            assert!(!m(&d, json!({"n": "abc"})));
        }
        let d = det("  s:\n    user|cased: Admin\n  condition: s\n");
        assert!(m(&d, json!({"user": "Admin"})));
        assert!(!m(&d, json!({"user": "admin"})));
        let d = det("  s:\n    src|fieldref: dst\n  condition: s\n");
        assert!(m(&d, json!({"src": "a", "dst": "a"})));
        assert!(!m(&d, json!({"src": "a", "dst": "b"})));
        assert!(!m(&d, json!({"src": "a"})));
    }

    #[test]
    fn windash_and_base64_family() {
        let d = det("  s:\n    cmd|windash|contains: ' -enc '\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "powershell /enc AAA"})));
        assert!(m(&d, json!({"cmd": "powershell \u{2013}enc AAA"})));
        assert!(!m(&d, json!({"cmd": "powershell enc AAA"})));
        let d = det("  s:\n    cmd|base64|contains: 'http://'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "echo aHR0cDovLw== | base64 -d"})));
        assert!(!m(&d, json!({"cmd": "echo AHR0cDovLw=="})), "base64 is case-sensitive");
        let d = det("  s:\n    cmd|base64offset|contains: '/bin/sh'\n  condition: s\n");
        for prefix in ["", "a", "ab"] {
            let enc = crate::detection::base64(format!("{prefix}/bin/sh -i").as_bytes());
            assert!(m(&d, json!({ "cmd": enc })), "prefix {prefix:?}");
        }
        assert!(!m(&d, json!({"cmd": crate::detection::base64(b"/usr/bin/id")})));
        let d = det("  s:\n    cmd|wide|base64offset|contains: 'IEX'\n  condition: s\n");
        let wide: Vec<u8> = "x IEX(".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert!(m(&d, json!({ "cmd": crate::detection::base64(&wide) })));
        assert!(!m(&d, json!({ "cmd": crate::detection::base64(b"x IEX(") })));
    }

    #[test]
    fn neq_means_present_and_none_of_the_values() {
        let d = det("  s:\n    user|neq:\n      - root\n      - admin\n  condition: s\n");
        assert!(m(&d, json!({"user": "bob"})));
        assert!(!m(&d, json!({"user": "ROOT"})), "case-insensitive like equality");
        assert!(!m(&d, json!({"user": "admin"})));
        assert!(!m(&d, json!({})), "an absent field is not `not equal`");
        assert!(!m(&d, json!({"user": null})));
        let d = det("  s:\n    port|neq: 22\n  condition: s\n");
        assert!(m(&d, json!({"port": 2222})));
        assert!(!m(&d, json!({"port": 22})));
        assert!(!m(&d, json!({"port": "22"})));
        let d = det("  s:\n    path|neq|startswith: 'C:\\Windows\\'\n  condition: s\n");
        assert!(m(&d, json!({"path": "D:\\x.exe"})));
        assert!(!m(&d, json!({"path": "c:\\windows\\x.exe"})));
        assert_eq!(one_err("title: t\ndetection:\n  s:\n    a|neq|all: [x, y]\n  condition: s\n").code, "R109");
        assert_eq!(one_err("title: t\ndetection:\n  s:\n    '|neq': x\n  condition: s\n").code, "R109");
    }

    #[test]
    fn time_part_modifiers() {
        let d = det("  s:\n    ts|hour|gte: 22\n  condition: s\n");
        assert!(m(&d, json!({"ts": "2026-01-01T22:00:00Z"})));
        assert!(m(&d, json!({"ts": "2026-01-01 23:59:59.999"})));
        assert!(!m(&d, json!({"ts": "2026-01-01T21:59:59Z"})), "edge: 21:59:59 is hour 21");
        assert!(!m(&d, json!({"ts": "not a time"})));
        assert!(!m(&d, json!({})));
        let d = det("  s:\n    ts|month: 12\n    ts|day: 31\n    ts|year: 2026\n    ts|minute: 59\n    ts|week: 53\n  condition: s\n");
        assert!(m(&d, json!({"ts": "2026-12-31T23:59:00Z"})));
        assert!(!m(&d, json!({"ts": "2026-12-31T23:58:59Z"})), "minute 58");
        let d = det("  s:\n    ts|day:\n      - 6\n      - 7\n  condition: s\n");
        assert!(m(&d, json!({"ts": 1_767_657_600_000u64})), "2026-01-06T00:00:00Z in epoch ms");
        assert!(!m(&d, json!({"ts": 1_767_571_199})), "2026-01-04T23:59:59Z in epoch seconds");
        let e = one_err("title: t\ndetection:\n  s:\n    ts|hour: late\n  condition: s\n");
        assert_eq!((e.code, e.line, e.column), ("R107", 4, 14));
        assert_eq!(one_err("title: t\ndetection:\n  s:\n    ts|hour|contains: 1\n  condition: s\n").code, "R109");
    }

    #[test]
    fn expand_uses_configured_placeholders_and_refuses_unknown_ones() {
        let vars = crate::Pipeline::placeholders("vars.yml", "Admins: [alice, 'bob*']\nDomain: corp\n").unwrap();
        let with = crate::Pipelines::new(vec![vars]);
        let load = |rule: &str| crate::load_sources_with(&[("r.yml".to_string(), rule.to_string())], &with);
        let set = load("title: t\ndetection:\n  s:\n    user|expand: '%Admins%'\n    cmd|contains|expand: '\\\\%Domain%\\\\%Admins%'\n  condition: s\n").unwrap();
        let RuleKind::Detection(d) = &set.rules[0].kind else { panic!() };
        assert!(m(d, json!({"user": "alice", "cmd": "x \\corp\\alice y"})));
        assert!(m(d, json!({"user": "bobby", "cmd": "\\CORP\\bob2"})), "placeholder values are Sigma strings (wildcards)");
        assert!(!m(d, json!({"user": "eve", "cmd": "\\corp\\alice"})));
        // Unknown placeholder: the whole rule is refused, with the position of the name.
        let e = load("title: t\ndetection:\n  s:\n    user|expand: 'x%Nope%'\n  condition: s\n").unwrap_err();
        let e: Vec<_> = e.errors().collect();
        assert_eq!((e.len(), e[0].code, e[0].line, e[0].column), (1, "R114", 4, 20));
        // Pipeline vars apply only through a value_placeholders transformation for the logsource.
        let p = crate::Pipeline::parse(
            "p.yml",
            "name: p\nvars:\n  DCs: [dc1, dc2]\ntransformations:\n  - type: value_placeholders\n    rule_conditions:\n      - type: logsource\n        product: windows\n",
        )
        .unwrap();
        let pl = crate::Pipelines::new(vec![p]);
        let rule = |product: &str| format!("title: t\nlogsource:\n  product: {product}\ndetection:\n  s:\n    host|expand: '%DCs%'\n  condition: s\n");
        let set = crate::load_sources_with(&[("r.yml".to_string(), rule("windows"))], &pl).unwrap();
        let RuleKind::Detection(d) = &set.rules[0].kind else { panic!() };
        assert!(m(d, json!({"host": "DC2"})));
        assert_eq!(crate::load_sources_with(&[("r.yml".to_string(), rule("linux"))], &pl).unwrap_err().0[0].code, "R114");
        let bad = crate::Pipeline::placeholders("v.yml", "ok: [a]\nbad: {b: c}\n").unwrap_err();
        assert_eq!((bad.0[0].code, bad.0[0].line), ("P004", 2));
    }

    /// Sigma's three kinds of "nothing", as docs/rules.md states them.
    #[test]
    fn null_vs_empty_vs_absent() {
        let null = det("  s:\n    f: null\n  condition: s\n");
        let empty = det("  s:\n    f: ''\n  condition: s\n");
        let exists = det("  s:\n    f|exists: true\n  condition: s\n");
        let not_null = det("  s:\n    f: null\n  condition: not s\n");
        let any = det("  s:\n    f: '*'\n  condition: s\n");
        let neq = det("  s:\n    f|neq: ''\n  condition: s\n");
        //            absent, JSON null, "",   "x"
        let docs = [json!({}), json!({"f": null}), json!({"f": ""}), json!({"f": "x"})];
        let row = |d: &crate::Detection| docs.iter().map(|doc| m(d, doc.clone())).collect::<Vec<_>>();
        assert_eq!(row(&null), [true, true, false, false]);
        assert_eq!(row(&empty), [false, false, true, false]);
        assert_eq!(row(&exists), [false, false, true, true]);
        assert_eq!(row(&not_null), [false, false, true, true]);
        assert_eq!(row(&any), [false, false, true, true]);
        assert_eq!(row(&neq), [false, false, false, true]);
    }

    #[test]
    fn null_empty_absent_numbers_booleans_arrays() {
        let d = det("  s:\n    user: null\n  condition: s\n");
        assert!(m(&d, json!({})));
        assert!(m(&d, json!({"user": null})));
        assert!(!m(&d, json!({"user": ""})));
        let d = det("  s:\n    user: ''\n  condition: s\n");
        assert!(m(&d, json!({"user": ""})));
        assert!(!m(&d, json!({})));
        assert!(!m(&d, json!({"user": null})));
        assert!(!m(&d, json!({"user": "x"})));
        let d = det("  s:\n    port: 4444\n  condition: s\n");
        assert!(m(&d, json!({"port": 4444})));
        assert!(m(&d, json!({"port": 4444.0})));
        assert!(m(&d, json!({"port": "4444"})));
        assert!(!m(&d, json!({"port": 44444})));
        let d = det("  s:\n    port: '4444'\n  condition: s\n");
        assert!(m(&d, json!({"port": 4444})), "string pattern compares with the number's text");
        let d = det("  s:\n    port|startswith: 44\n  condition: s\n");
        assert!(m(&d, json!({"port": 4480})));
        let d = det("  s:\n    ok: false\n  condition: s\n");
        assert!(m(&d, json!({"ok": false})));
        assert!(m(&d, json!({"ok": "False"})));
        assert!(!m(&d, json!({"ok": true})));
        assert!(!m(&d, json!({})));
        let d = det("  s:\n    tags: admin\n  condition: s\n");
        assert!(m(&d, json!({"tags": ["x", "Admin"]})));
        assert!(!m(&d, json!({"tags": ["x", "y"]})));
        let d = det("  s:\n    a.b.c: deep\n  condition: s\n");
        assert!(m(&d, json!({"a": {"b": {"c": "deep"}}})));
        assert!(m(&d, json!({"a.b": {"c": "deep"}})));
    }

    #[test]
    fn string_lists_share_one_prepared_value() {
        let d = det("  s:\n    user:\n      - 'ÄDMIN'\n      - root\n  condition: s\n");
        assert!(m(&d, json!({"user": ["x", "ädmin"]})));
        assert!(m(&d, json!({"user": "ROOT"})));
        assert!(!m(&d, json!({"user": ["x", ["root"]]})), "nested arrays are not flattened");
        assert!(!m(&d, json!({"user": {"name": "root"}})));
        let d = det("  s:\n    n|startswith:\n      - '1'\n      - 'tr'\n  condition: s\n");
        assert!(m(&d, json!({"n": 12})));
        assert!(m(&d, json!({"n": true})));
        assert!(!m(&d, json!({"n": null})));
    }

    #[test]
    fn wildcards_and_escapes_in_rules() {
        let d = det("  s:\n    cmd: 'net* user ?dmin'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "net.exe user admin"})));
        assert!(m(&d, json!({"cmd": "NET USER Admin"})));
        assert!(!m(&d, json!({"cmd": "net user aadmin"})));
        let d = det("  s:\n    cmd: 'what\\?'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "what?"})));
        assert!(!m(&d, json!({"cmd": "whats"})));
        let d = det("  s:\n    cmd|contains: '\\*'\n  condition: s\n");
        assert!(m(&d, json!({"cmd": "a*b"})));
        assert!(!m(&d, json!({"cmd": "ab"})));
    }

    #[test]
    fn selection_shapes_and_condition_forms() {
        // list of maps = OR of ANDs
        let d = det("  s:\n    - a: 1\n      b: 2\n    - c: 3\n  condition: s\n");
        assert!(m(&d, json!({"a": 1, "b": 2})));
        assert!(m(&d, json!({"c": 3})));
        assert!(!m(&d, json!({"a": 1})));
        // keywords: substring over every string value, recursively
        let d = det("  keywords:\n    - 'mimikatz'\n    - 'sekurlsa*logon'\n  condition: keywords\n");
        assert!(m(&d, json!({"summary": "ran MimiKatz.exe"})));
        assert!(m(&d, json!({"details": {"argv": ["x", "sekurlsa::logonpasswords"]}})));
        assert!(!m(&d, json!({"details": {"mimikatz": "key names are not searched"}})));
        // condition forms
        let base = "  sel:\n    a: 1\n  filter_x:\n    b: 1\n  filter_y:\n    c: 1\n  _h:\n    d: 1\n";
        let cases: [(&str, serde_json::Value, bool); 8] = [
            ("sel and not 1 of filter_*", json!({"a": 1}), true),
            ("sel and not 1 of filter_*", json!({"a": 1, "c": 1}), false),
            ("all of filter_*", json!({"b": 1, "c": 1}), true),
            ("all of filter_*", json!({"b": 1}), false),
            ("1 of them", json!({"d": 1}), false),
            ("all of them", json!({"a": 1, "b": 1, "c": 1}), true),
            ("2 of them", json!({"a": 1, "c": 1}), true),
            ("(sel or _h) and filter_x", json!({"d": 1, "b": 1}), true),
        ];
        for (cond, doc, want) in cases {
            let d = det(&format!("{base}  condition: {cond}\n"));
            assert_eq!(m(&d, doc.clone()), want, "{cond} on {doc}");
        }
        // '|all' keyword lists: every keyword somewhere in the event
        let d = det("  keywords:\n    '|all':\n      - 'bash -c'\n      - '/dev/tcp/'\n  condition: keywords\n");
        assert!(m(&d, json!({"details": {"cmd": "BASH -c 'x >& /dev/tcp/1.2.3.4/80'"}})));
        assert!(m(&d, json!({"a": "bash -c", "b": ["/dev/tcp/x"]})), "keywords may sit in different fields");
        assert!(!m(&d, json!({"a": "bash -c id"})));
        let d = det("  k:\n    '|re': 'ab+c'\n  condition: k\n");
        assert!(m(&d, json!({"x": {"y": "zabbc"}})));
        assert!(!m(&d, json!({"x": "ac"})));
        assert_eq!(one_err("title: t\ndetection:\n  k:\n    '|cidr': 10.0.0.0/8\n  condition: k\n").code, "R109");
        let d = det(&format!("{base}  condition:\n    - sel\n    - filter_y\n"));
        assert!(m(&d, json!({"c": 1})), "a condition list is an OR");
        assert!(!m(&d, json!({"b": 1})));
    }

    #[test]
    fn library_detection_tests_hold_on_raw_events() {
        let lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
        let set = load_paths(&[lib]).unwrap();
        let mut checked = 0;
        for r in &set.rules {
            let RuleKind::Detection(d) = &r.kind else { continue };
            for t in &r.tests {
                let hits = t.events.iter().filter(|e| d.matches_doc(e.as_object().unwrap())).count();
                assert_eq!(hits > 0, !t.expect.is_empty(), "{}: test `{}`", r.id, t.name);
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} detection tests found");
    }
}
