//! Rampart's `sequence` correlation: ordered steps, each a referenced rule or an inline
//! detection, each with its own `by` key, within `maxspan`, cancelled by `until`.
//!
//! ```yaml
//! correlation:
//!   type: sequence
//!   maxspan: 10m                           # first step to last, event time
//!   group-by: [ip]                         # optional: the key's names in alerts
//!   steps:
//!     - rule: ssh_failed                   # a rule's name or id (any file)
//!       by: details.sourceipaddress
//!     - rule: ssh_accepted
//!       by: details.sourceipaddress
//!     - detection:                         # an inline detection (the rule's logsource,
//!         selection:                       #   unless the step has its own `logsource`)
//!           category: useradd
//!         condition: selection
//!       by: details.ip                     # fields may differ per step
//!   until:                                 # optional: cancels the key's partial matches
//!     rule: host_rebooted
//!     by: details.ip
//! ```
//!
//! Every `by` has the same number of fields (they are matched position by position); a step
//! without `by` uses `group-by` (without it, the first step's `by`). Inline detections become rules of their own, named
//! `<rule id>#step<N>` (from 1) and `<rule id>#until`, that do not alert.

use crate::correlation::{CorrelationType, Pending, Threshold, ThresholdOp, WindowKind};
use crate::detection::{Detection, LogSource};
use crate::pipeline::Pipelines;
use crate::yaml::{kind_name, pos, spos, Sink};
use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;
use rampart_core::FieldPath;

/// The keys `type: sequence` takes (besides `type`).
pub(crate) const KEYS: &[&str] = &["steps", "until", "maxspan"];

/// Keys of the correlation section a sequence does not take, with what to write instead.
const NOT_FOR_SEQUENCE: &[(&str, &str)] = &[
    ("rules", "list the rules under `steps`, one `rule:` (or inline `detection:`) per step"),
    ("timespan", "a sequence's span is `maxspan`"),
    ("condition", "a sequence fires when its last step completes it"),
    ("window", "a sequence has no window; `maxspan` bounds it"),
    ("aliases", "give each step its own `by` fields"),
];

/// An inline detection of a step: the id it is loaded under and the compiled detection.
pub(crate) type Inline = (String, Detection);

/// Field names with where each is written.
type Fields = (Vec<FieldPath>, Vec<(usize, usize)>);

/// One parsed step (or `until`): its reference, where it is written, and its key fields.
struct Step {
    reference: String,
    at: (usize, usize),
    by: Option<(Vec<FieldPath>, (usize, usize))>,
}

/// What a sequence's rule brings along: its id (for inline detections' ids), its
/// logsource (their default) and the pipelines (to compile them).
pub(crate) struct Context<'a> {
    pub rule_id: &'a str,
    pub logsource: &'a LogSource,
    pub pipelines: &'a Pipelines,
}

/// Parses a `type: sequence` correlation; every problem goes to `sink`.
pub(crate) fn parse(map: &MarkedMappingNode, key_at: (usize, usize), ctx: &Context<'_>, sink: &mut Sink) -> Option<Pending> {
    let before = sink.diags.len();
    for (key, hint) in NOT_FOR_SEQUENCE {
        if let Some(at) = crate::yaml::key_pos(map, key) {
            sink.error_hint("R210", at, &format!("correlation.{key}"), format!("`{key}` is not a key of `type: sequence`"), *hint);
        }
    }
    let maxspan = match map.get_node("maxspan") {
        Some(n) => crate::correlation::positive_duration(n, "maxspan", sink),
        None => {
            sink.error_hint("R210", key_at, "correlation", "a sequence needs `maxspan`: the longest time from its first step to its last", "e.g. `maxspan: 10m`");
            None
        }
    };
    // group-by: the names alerts give the key.
    let mut names: Option<Fields> = None;
    match map.get_node("group-by") {
        None => {}
        Some(n) => match fields(n, "correlation.group-by", sink) {
            Some((f, at)) => names = Some((f, at)),
            None => return None,
        },
    }
    let mut inline: Vec<Inline> = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    match map.get_node("steps") {
        Some(Node::Sequence(seq)) if seq.len() >= 2 => {
            for (i, n) in seq.iter().enumerate() {
                let path = format!("correlation.steps[{i}]");
                let id = format!("{}#step{}", ctx.rule_id, i + 1);
                if let Some(s) = step(n, &path, &id, ctx, &mut inline, sink) {
                    steps.push(s);
                }
            }
        }
        Some(Node::Sequence(seq)) => {
            let at = seq.first().map_or(key_at, pos);
            sink.error_hint("R210", at, "correlation.steps", "a sequence needs at least two steps", "for a single rule, use a detection rule (with `suppress` if needed)");
        }
        Some(other) => sink.error_hint("R210", pos(other), "correlation.steps", format!("`steps` must be a list, found {}", kind_name(other)), "steps: [{rule: a, by: user}, {rule: b, by: user}]"),
        None => sink.error_hint("R210", key_at, "correlation", "a sequence needs `steps`", "steps: [{rule: a, by: user}, {rule: b, by: user}]"),
    }
    let until = match map.get_node("until") {
        None => None,
        Some(n) => step(n, "correlation.until", &format!("{}#until", ctx.rule_id), ctx, &mut inline, sink),
    };
    if sink.diags.len() > before {
        return None;
    }
    // Every `by` (and `group-by`) has one length; a step without `by` uses `group-by`.
    let width = names.as_ref().map(|(f, _)| f.len()).or_else(|| steps.iter().chain(&until).find_map(|s| s.by.as_ref().map(|b| b.0.len()))).unwrap_or(0);
    let (names, names_at) = match names {
        Some(n) => n,
        // Without `group-by`, alerts name the key by the first step's fields.
        None => match steps.iter().find_map(|s| s.by.as_ref()) {
            Some((f, at)) => (f.clone(), vec![*at; f.len()]),
            None => (Vec::new(), Vec::new()),
        },
    };
    let mut per_step = Vec::new();
    for (i, s) in steps.iter().chain(&until).enumerate() {
        let path = if i < steps.len() { format!("correlation.steps[{i}].by") } else { "correlation.until.by".to_string() };
        let by = match &s.by {
            Some((f, at)) if f.len() != width => {
                sink.error_hint("R210", *at, &path, format!("`by` has {} field(s), the sequence's key has {width}", f.len()), "every step's `by` (and `group-by`) lists the same number of fields, matched in order");
                continue;
            }
            Some((f, _)) => f.clone(),
            None if names.len() == width => names.clone(),
            None => {
                sink.error_hint("R210", s.at, &path, "this step has no `by`, and the sequence has no `group-by`", "give it `by:` fields like the other steps'");
                continue;
            }
        };
        per_step.push((s.reference.clone(), by));
    }
    if sink.diags.len() > before {
        return None;
    }
    let n = steps.len();
    let refs: Vec<(String, usize, usize)> = steps.iter().chain(&until).map(|s| (s.reference.clone(), s.at.0, s.at.1)).collect();
    let generate = match map.get_node("generate") {
        None => false,
        Some(Node::Scalar(s)) if s.may_coerce() && (s.as_str() == "true" || s.as_str() == "false") => s.as_str() == "true",
        Some(other) => {
            sink.error("R201", pos(other), "correlation.generate", "`generate` must be true or false");
            return None;
        }
    };
    Some(Pending {
        kind: CorrelationType::Sequence { steps: u32::try_from(n).unwrap_or(u32::MAX), until: until.is_some() },
        refs,
        group_by: names,
        group_by_at: names_at,
        group_by_per_rule: per_step,
        field_at: None,
        fields_at: Vec::new(),
        timespan: maxspan?,
        window: WindowKind::Sliding,
        threshold: Threshold { ops: vec![(ThresholdOp::Gte, n as f64)] },
        generate,
        inline,
    })
}

/// One step (or `until`) at `path`: `rule:` or an inline `detection:` (compiled under `id`),
/// plus optional `by` and, with a detection, `logsource`.
fn step(node: &Node, path: &str, id: &str, ctx: &Context<'_>, inline: &mut Vec<Inline>, sink: &mut Sink) -> Option<Step> {
    let Some(m) = node.as_mapping() else {
        sink.error_hint("R210", pos(node), path, format!("a step must be a mapping, found {}", kind_name(node)), "e.g. `{rule: ssh_failed, by: details.sourceipaddress}`");
        return None;
    };
    let mut ok = true;
    for (k, _) in m.iter() {
        if !["rule", "detection", "by", "logsource"].contains(&k.as_str()) {
            sink.error_hint("R210", spos(k), &format!("{path}.{}", k.as_str()), format!("unknown step key `{}`", k.as_str()), "valid keys: rule, detection, by, logsource");
            ok = false;
        }
    }
    let by = match m.get_node("by") {
        None => None,
        Some(n) => match fields(n, &format!("{path}.by"), sink) {
            Some((f, at)) => Some((f, at.first().copied().unwrap_or_else(|| pos(n)))),
            None => {
                ok = false;
                None
            }
        },
    };
    let at = pos(node);
    let reference = match (m.get_node("rule"), m.get_node("detection")) {
        (Some(_), Some(d)) => {
            sink.error_hint("R210", pos(d), &format!("{path}.detection"), "a step has either `rule` or `detection`, not both", "reference a rule, or write the detection inline");
            None
        }
        (Some(Node::Scalar(s)), None) if !s.as_str().is_empty() => {
            if let Some(at) = crate::yaml::key_pos(m, "logsource") {
                sink.error_hint("R210", at, &format!("{path}.logsource"), "`logsource` belongs to an inline `detection`", "the referenced rule has its own logsource");
                ok = false;
            }
            Some((s.as_str().to_string(), spos(s)))
        }
        (Some(other), None) => {
            sink.error("R210", pos(other), &format!("{path}.rule"), "`rule` must be a rule's name or id");
            None
        }
        (None, Some(d)) => {
            let logsource = match m.get_node("logsource") {
                Some(_) => crate::load::parse_logsource(m, sink),
                None => ctx.logsource.clone(),
            };
            let key_at = crate::yaml::key_pos(m, "detection").unwrap_or(at);
            let compiled = crate::detection::compile(d, key_at, logsource, ctx.pipelines, sink).map(|mut d| {
                ctx.pipelines.apply(&mut d);
                d
            });
            match compiled {
                Some(det) => {
                    inline.push((id.to_string(), det));
                    Some((id.to_string(), key_at))
                }
                None => None,
            }
        }
        (None, None) => {
            sink.error_hint("R210", at, path, "a step needs `rule` (a name or id) or an inline `detection`", "e.g. `{rule: ssh_failed, by: details.sourceipaddress}`");
            None
        }
    };
    let (reference, at) = reference?;
    ok.then_some(Step { reference, at, by })
}

/// A field name or a non-empty list of them, with where each is written.
fn fields(node: &Node, path: &str, sink: &mut Sink) -> Option<Fields> {
    match node {
        Node::Scalar(s) if !s.as_str().is_empty() => Some((vec![FieldPath::new(s.as_str())], vec![spos(s)])),
        Node::Sequence(seq) if !seq.is_empty() => {
            let mut out = (Vec::new(), Vec::new());
            for (i, n) in seq.iter().enumerate() {
                match n.as_scalar().filter(|s| !s.as_str().is_empty()) {
                    Some(s) => {
                        out.0.push(FieldPath::new(s.as_str()));
                        out.1.push(spos(s));
                    }
                    None => {
                        sink.error("R210", pos(n), &format!("{path}[{i}]"), "an entry must be a field name");
                        return None;
                    }
                }
            }
            Some(out)
        }
        other => {
            sink.error_hint("R210", pos(other), path, "must be a field name or a non-empty list of them", "e.g. `[details.sourceipaddress, details.username]`");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{load_str, CorrelationType, RuleKind};
    use rampart_core::FieldPath;

    const DETECTIONS: &str = "title: A\nname: a\ndetection:\n  s:\n    k: a\n  condition: s\n---\ntitle: B\nname: b\ndetection:\n  s:\n    k: b\n  condition: s\n---\n";

    fn load(correlation: &str) -> Result<crate::RuleSet, crate::Diagnostics> {
        load_str("s.yml", &format!("{DETECTIONS}title: S\nid: s\nlogsource: {{product: linux}}\ncorrelation:\n  type: sequence\n{correlation}"))
    }

    fn paths(v: &[&str]) -> Vec<FieldPath> {
        v.iter().map(|f| FieldPath::new(f)).collect()
    }

    #[test]
    fn steps_with_their_own_keys_inline_detections_and_until() {
        let set = load(
            "  maxspan: 10m\n  group-by: [ip]\n  steps:\n    - {rule: a, by: src}\n    - {rule: a, by: src}\n    - detection:\n        s:\n          k: c\n        condition: s\n      by: [dst]\n  until:\n    rule: b\n    by: src\n",
        )
        .unwrap_or_else(|d| panic!("{d}"));
        let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "s", "s#step3"]);
        let RuleKind::Correlation(c) = &set.rules[2].kind else { panic!("rule 2 is the sequence") };
        assert_eq!(c.kind, CorrelationType::Sequence { steps: 3, until: true });
        assert_eq!(c.rules, vec![0, 0, 3, 1], "one rule may be two steps; until comes last");
        assert_eq!(c.timespan, std::time::Duration::from_secs(600));
        let by: Vec<Vec<FieldPath>> = c.group_by_per_rule.iter().map(|(_, f)| f.clone()).collect();
        assert_eq!(by, vec![paths(&["src"]), paths(&["src"]), paths(&["dst"]), paths(&["src"])]);
        assert_eq!(set.rules[2].group_by, paths(&["ip"]));
        // The inline step is a detection of the sequence's logsource that does not alert.
        let RuleKind::Detection(d) = &set.rules[3].kind else { panic!("the inline step is a detection") };
        assert_eq!(d.logsource.product.as_deref(), Some("linux"));
        assert!(!set.rules[3].generate && set.rules[2].generate);
        assert_eq!((set.rules[3].part_of.as_deref(), set.rules[2].part_of.as_deref()), (Some("s"), None));
        assert!(d.matches_doc(serde_json::json!({"k": "c"}).as_object().unwrap()));
    }

    #[test]
    fn without_group_by_alerts_name_the_first_steps_fields() {
        let set = load("  maxspan: 1m\n  steps:\n    - {rule: a, by: [src, user]}\n    - {rule: b, by: [dst, user]}\n").unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(set.rules[2].group_by, paths(&["src", "user"]));
        let set = load("  maxspan: 1m\n  group-by: user\n  steps:\n    - rule: a\n    - rule: b\n").unwrap_or_else(|d| panic!("{d}"));
        let RuleKind::Correlation(c) = &set.rules[2].kind else { panic!("a sequence") };
        assert_eq!(c.group_by_per_rule.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(), vec![paths(&["user"]), paths(&["user"])]);
    }

    #[test]
    fn diagnostics_name_the_key() {
        let first = |text: &str| {
            let e = load(text).unwrap_err();
            (e.0[0].code, e.0[0].line, e.0[0].key_path.clone(), e.0[0].message.clone())
        };
        let (code, line, path, msg) = first("  steps:\n    - rule: a\n    - rule: b\n");
        assert_eq!((code, line, path.as_str()), ("R210", 18, "correlation"));
        assert!(msg.contains("maxspan"), "{msg}");
        let (code, line, path, _) = first("  maxspan: 1m\n  steps:\n    - {rule: a, by: src}\n    - {rule: b, by: [src, user]}\n");
        assert_eq!((code, line, path.as_str()), ("R210", 23, "correlation.steps[1].by"));
        let (code, _, path, _) = first("  maxspan: 1m\n  rules: [a, b]\n  steps:\n    - rule: a\n    - rule: b\n");
        assert_eq!((code, path.as_str()), ("R210", "correlation.rules"));
        let (code, _, path, _) = first("  maxspan: 1m\n  steps:\n    - rule: a\n");
        assert_eq!((code, path.as_str()), ("R210", "correlation.steps"));
        let (code, line, path, _) = first("  maxspan: 1m\n  steps:\n    - {rule: a, when: x}\n    - rule: b\n");
        assert_eq!((code, line, path.as_str()), ("R210", 22, "correlation.steps[0].when"));
        let (code, _, path, _) = first("  maxspan: 1m\n  steps:\n    - {rule: a, detection: {s: {k: x}, condition: s}}\n    - rule: b\n");
        assert_eq!((code, path.as_str()), ("R210", "correlation.steps[0].detection"));
        let (code, _, _, msg) = first("  maxspan: 1m\n  steps:\n    - rule: a\n    - rule: nowhere\n");
        assert_eq!(code, "R202");
        assert!(msg.contains("nowhere"), "{msg}");
        let (code, _, path, _) = first("  maxspan: 1m\n  steps:\n    - rule: a\n    - detection: {s: {k|bogus: x}, condition: s}\n");
        assert_eq!((code, path.as_str()), ("R104", "detection.s.k|bogus"));
        // Without `group-by`, a step without `by` uses the first step's fields.
        let set = load("  maxspan: 1m\n  steps:\n    - {rule: a, by: src}\n    - rule: b\n").unwrap_or_else(|d| panic!("{d}"));
        let RuleKind::Correlation(c) = &set.rules[2].kind else { panic!("a sequence") };
        assert_eq!(c.group_by_per_rule[1].1, paths(&["src"]));
        // Sequence keys under another type.
        let e = load_str("s.yml", &format!("{DETECTIONS}title: S\ncorrelation:\n  type: event_count\n  rules: a\n  timespan: 1m\n  condition: {{gte: 2}}\n  maxspan: 1m\n")).unwrap_err();
        assert_eq!((e.0[0].code, e.0[0].key_path.as_str()), ("R201", "correlation.maxspan"));
    }
}
