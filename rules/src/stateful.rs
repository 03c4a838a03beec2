//! Rampart's stateful correlation types, `new_term` and `spike`: their keys under
//! `correlation:` (beside the Sigma ones, which [`crate::correlation`] parses).
//!
//! ```yaml
//! correlation:
//!   type: new_term
//!   rules: [ssh_login]
//!   group-by: [details.username]          # optional: a new value per user
//!   fields: [details.sourceipaddress]     # the term: one field or a combination
//!   learning: 7d                          # remember, do not alert, for 7 days of event time
//!   forget_after: 30d                     # optional: unseen this long, a term is new again
//!   max_terms: 10000                      # optional: per group (default 10000)
//! ---
//! correlation:
//!   type: spike
//!   rules: [login_failure]
//!   group-by: [details.sourceipaddress]
//!   timespan: 1h                          # the current window; the reference is the hour before
//!   reference_windows: 1                  # optional: the mean of this many windows before
//!   condition: {direction: up, ratio: 3, min_current: 10, min_reference: 2}
//! ```

use crate::correlation::{CorrelationType, SpikeDirection, SpikeParams};
use crate::yaml::{kind_name, pos, spos, Sink};
use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;
use rampart_core::FieldPath;
use std::time::Duration;

/// Keys only these types take: `(key, the type)`.
pub(crate) const KEYS: &[(&str, &str)] = &[("fields", "new_term"), ("learning", "new_term"), ("forget_after", "new_term"), ("max_terms", "new_term"), ("reference_windows", "spike")];

/// Default `max_terms`.
pub const DEFAULT_MAX_TERMS: usize = 10_000;

/// Reports keys of one stateful type used under another type.
pub(crate) fn check_keys(ty: Option<&str>, map: &MarkedMappingNode, sink: &mut Sink) {
    let Some(ty) = ty else { return };
    for (k, _) in map.iter() {
        if let Some((_, owner)) = KEYS.iter().find(|(key, _)| *key == k.as_str()) {
            if *owner != ty {
                sink.error_hint("R201", spos(k), &format!("correlation.{}", k.as_str()), format!("`{}` is a key of `type: {owner}`, not of {ty}", k.as_str()), "remove it");
            }
        }
    }
}

/// Where each `fields` entry is written, for diagnostics about it.
pub(crate) type FieldsAt = Vec<(usize, usize)>;

/// The type `new_term` or `spike` (`ty`, written at `ty_at`) of the correlation `map`.
pub(crate) fn parse(ty: &str, ty_at: (usize, usize), map: &MarkedMappingNode, key_at: (usize, usize), sink: &mut Sink) -> Option<(CorrelationType, FieldsAt)> {
    if let Some(w) = map.get_node("window") {
        sink.error_hint("R208", pos(w), "correlation.window", format!("{ty} has its own windows"), "remove `window`");
    }
    match ty {
        "new_term" => new_term(map, key_at, sink),
        _ => spike(map, ty_at, key_at, sink).map(|t| (t, Vec::new())),
    }
}

fn duration(map: &MarkedMappingNode, key: &str, sink: &mut Sink) -> Result<Option<Duration>, ()> {
    match map.get_node(key) {
        None => Ok(None),
        Some(Node::Scalar(s)) => match rampart_core::time::parse_duration(s.as_str()) {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                sink.error_hint("R205", spos(s), &format!("correlation.{key}"), e, "e.g. 1h, 7d, 30d");
                Err(())
            }
        },
        Some(other) => {
            sink.error_hint("R205", pos(other), &format!("correlation.{key}"), format!("`{key}` must be a duration, found {}", kind_name(other)), "e.g. 7d");
            Err(())
        }
    }
}

/// A whole number at least `min` under `key_path`, or the default.
fn whole(node: Option<&Node>, key_path: &str, min: u64, default: u64, sink: &mut Sink) -> Option<u64> {
    let Some(node) = node else { return Some(default) };
    match node.as_scalar().and_then(|s| s.as_str().trim().parse::<u64>().ok()).filter(|n| *n >= min) {
        Some(n) => Some(n),
        None => {
            sink.error_hint("R204", pos(node), key_path, format!("must be a whole number of at least {min}"), "e.g. 5");
            None
        }
    }
}

fn new_term(map: &MarkedMappingNode, key_at: (usize, usize), sink: &mut Sink) -> Option<(CorrelationType, FieldsAt)> {
    let mut ok = true;
    if let Some(n) = map.get_node("timespan") {
        sink.error_hint("R205", pos(n), "correlation.timespan", "new_term has no `timespan`", "it remembers terms for as long as `forget_after` (or always); `learning` sets the learning period");
        ok = false;
    }
    if let Some(n) = map.get_node("condition") {
        sink.error_hint("R201", pos(n), "correlation.condition", "new_term takes no `condition`", "it fires the first time a term is seen after `learning`; the term is `fields`");
        ok = false;
    }
    let mut fields = Vec::new();
    let mut at = Vec::new();
    match map.get_node("fields") {
        Some(Node::Sequence(seq)) if !seq.is_empty() => {
            for (i, n) in seq.iter().enumerate() {
                match n.as_scalar().filter(|s| !s.as_str().is_empty()) {
                    Some(s) => {
                        fields.push(FieldPath::new(s.as_str()));
                        at.push(spos(s));
                    }
                    None => {
                        sink.error("R201", pos(n), &format!("correlation.fields[{i}]"), "a `fields` entry must be a field name");
                        ok = false;
                    }
                }
            }
        }
        Some(Node::Scalar(s)) if !s.as_str().is_empty() => {
            fields.push(FieldPath::new(s.as_str()));
            at.push(spos(s));
        }
        Some(other) => {
            sink.error_hint("R201", pos(other), "correlation.fields", "`fields` must be a field name or a non-empty list of them", "e.g. `fields: [details.sourceipaddress]`");
            ok = false;
        }
        None => {
            sink.error_hint("R201", key_at, "correlation", "new_term needs `fields`: the value (or combination) whose first sighting alerts", "e.g. `fields: [details.sourceipaddress]`");
            ok = false;
        }
    }
    let learning = match duration(map, "learning", sink) {
        Ok(Some(d)) => Some(d),
        Ok(None) => {
            sink.error_hint(
                "R201",
                key_at,
                "correlation",
                "new_term needs `learning`: how long (in event time, from the rule's first event) to remember terms without alerting",
                "e.g. `learning: 7d`; `learning: 0s` alerts from the first event",
            );
            None
        }
        Err(()) => None,
    };
    let forget_after = match duration(map, "forget_after", sink) {
        Ok(Some(d)) if d.is_zero() => {
            sink.error_hint("R205", crate::yaml::key_pos(map, "forget_after").unwrap_or(key_at), "correlation.forget_after", "`forget_after` must be longer than zero", "leave it out to remember terms until `max_terms` forces them out");
            ok = false;
            None
        }
        Ok(d) => d,
        Err(()) => {
            ok = false;
            None
        }
    };
    let max_terms = whole(map.get_node("max_terms"), "correlation.max_terms", 1, DEFAULT_MAX_TERMS as u64, sink);
    let kind = CorrelationType::NewTerm { fields, learning: learning?, forget_after, max_terms: usize::try_from(max_terms?).unwrap_or(usize::MAX) };
    ok.then_some((kind, at))
}

fn spike(map: &MarkedMappingNode, ty_at: (usize, usize), key_at: (usize, usize), sink: &mut Sink) -> Option<CorrelationType> {
    let reference_windows = whole(map.get_node("reference_windows"), "correlation.reference_windows", 1, 1, sink).and_then(|n| {
        if n > 1000 {
            sink.error_hint("R204", map.get_node("reference_windows").map_or(key_at, pos), "correlation.reference_windows", "at most 1000 reference windows", "e.g. 1, or 24 hourly windows");
            None
        } else {
            u32::try_from(n).ok()
        }
    });
    let cond_at = crate::yaml::key_pos(map, "condition").unwrap_or(ty_at);
    let Some(cond) = map.get_node("condition") else {
        sink.error_hint("R201", key_at, "correlation", "spike needs a `condition`", "e.g. `condition: {direction: up, ratio: 3, min_current: 10, min_reference: 2}`");
        return None;
    };
    let Some(cm) = cond.as_mapping() else {
        sink.error_hint("R201", pos(cond), "correlation.condition", "`condition` must be a mapping", "e.g. `condition: {direction: up, ratio: 3}`");
        return None;
    };
    let mut ok = true;
    for (k, _) in cm.iter() {
        if !["direction", "ratio", "min_current", "min_reference"].contains(&k.as_str()) {
            sink.error_hint("R201", spos(k), &format!("correlation.condition.{}", k.as_str()), format!("unknown spike condition key `{}`", k.as_str()), "valid: direction, ratio, min_current, min_reference");
            ok = false;
        }
    }
    let direction = match cm.get_node("direction") {
        None => Some(SpikeDirection::Up),
        Some(n) => match n.as_scalar().map(|s| s.as_str()) {
            Some("up") => Some(SpikeDirection::Up),
            Some("down") => Some(SpikeDirection::Down),
            Some("both") => Some(SpikeDirection::Both),
            _ => {
                sink.error_hint("R204", pos(n), "correlation.condition.direction", "`direction` must be up, down or both", "up: the current window has at least `ratio` times the reference; down: the reference has at least `ratio` times the current");
                None
            }
        },
    };
    let ratio = match cm.get_node("ratio") {
        None => {
            sink.error_hint("R204", cond_at, "correlation.condition", "spike needs a `ratio`", "e.g. `ratio: 3`: three times the reference (up) or a third of it (down)");
            None
        }
        Some(n) => match n.as_scalar().and_then(|s| s.as_str().trim().parse::<f64>().ok()).filter(|r| r.is_finite() && *r > 1.0) {
            Some(r) => Some(r),
            None => {
                sink.error_hint("R204", pos(n), "correlation.condition.ratio", "`ratio` must be a number greater than 1", "e.g. `ratio: 3` or `ratio: 1.5`");
                None
            }
        },
    };
    let min_current = whole(cm.get_node("min_current"), "correlation.condition.min_current", 0, 1, sink);
    let min_reference = whole(cm.get_node("min_reference"), "correlation.condition.min_reference", 0, 1, sink);
    if !ok {
        return None;
    }
    Some(CorrelationType::Spike(SpikeParams { reference_windows: reference_windows?, direction: direction?, ratio: ratio?, min_current: min_current?, min_reference: min_reference? }))
}

#[cfg(test)]
mod tests {
    use crate::{load_str, CorrelationType, Diagnostic, RuleKind, SpikeDirection, SpikeParams};
    use rampart_core::FieldPath;
    use std::time::Duration;

    const BASE: &str = "title: Login\nname: login\ndetection:\n  s:\n    action: login\n  condition: s\n---\ntitle: C\nid: c\ncorrelation:\n";

    fn kind(body: &str) -> Result<(CorrelationType, Vec<FieldPath>), Vec<Diagnostic>> {
        let set = load_str("c.yml", &format!("{BASE}{body}")).map_err(|d| d.0)?;
        match &set.rules[1].kind {
            RuleKind::Correlation(c) => Ok((c.kind.clone(), set.rules[1].group_by.clone())),
            RuleKind::Detection(_) => panic!("rule 1 is a detection"),
        }
    }

    #[test]
    fn new_term_keys_and_defaults() {
        let (k, group) = kind("  type: new_term\n  rules: login\n  group-by: [details.user]\n  fields: details.src\n  learning: 7d\n").unwrap();
        assert_eq!(k, CorrelationType::NewTerm { fields: vec![FieldPath::new("details.src")], learning: Duration::from_secs(7 * 86_400), forget_after: None, max_terms: super::DEFAULT_MAX_TERMS });
        assert_eq!(group, vec![FieldPath::new("details.user"), FieldPath::new("details.src")], "the term is part of the alert's group");
        let text = format!("{BASE}  type: new_term\n  rules: login\n  group-by: [details.user]\n  fields: details.src\n  learning: 7d\n").replace("id: c\n", "id: c\nsummary: '{{ details.user }} from {{ details.src }}'\n");
        load_str("c.yml", &text).unwrap_or_else(|d| panic!("the summary may name the term: {d}"));
        let (k, _) = kind("  type: new_term\n  rules: login\n  fields: [details.src, details.user]\n  learning: 0s\n  forget_after: 30d\n  max_terms: 5\n").unwrap();
        assert_eq!(k, CorrelationType::NewTerm { fields: vec![FieldPath::new("details.src"), FieldPath::new("details.user")], learning: Duration::ZERO, forget_after: Some(Duration::from_secs(30 * 86_400)), max_terms: 5 });
    }

    #[test]
    fn new_term_diagnostics() {
        let e = kind("  type: new_term\n  rules: login\n  fields: [details.src]\n").unwrap_err();
        assert_eq!((e[0].code, e[0].line), ("R201", 10));
        assert!(e[0].message.contains("learning"), "{}", e[0].message);
        let e = kind("  type: new_term\n  rules: login\n  learning: 1d\n").unwrap_err();
        assert!(e[0].message.contains("`fields`"), "{}", e[0].message);
        let e = kind("  type: new_term\n  rules: login\n  fields: [x]\n  learning: 1d\n  timespan: 5m\n").unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].column, e[0].key_path.as_str()), ("R205", 15, 13, "correlation.timespan"));
        let e = kind("  type: new_term\n  rules: login\n  fields: [x]\n  learning: 1d\n  max_terms: 0\n").unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].key_path.as_str()), ("R204", 15, "correlation.max_terms"));
        let e = kind("  type: new_term\n  rules: login\n  fields: [x]\n  learning: soon\n").unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].column), ("R205", 14, 13));
        let e = kind("  type: event_count\n  rules: login\n  timespan: 5m\n  learning: 1d\n  condition: {gte: 2}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].key_path.as_str()), ("R201", 14, "correlation.learning"));
    }

    #[test]
    fn pipelines_rename_new_term_fields_and_alerts_keep_the_names() {
        let p = crate::Pipeline::parse("p.yml", "name: m\ntransformations:\n  - type: field_name_mapping\n    mapping: {SourceIp: details.sourceipaddress, User: details.username}\n").unwrap_or_else(|d| panic!("{d}"));
        let text = format!("{BASE}  type: new_term\n  rules: login\n  group-by: [User]\n  fields: [SourceIp]\n  learning: 1d\n");
        let set = crate::load_sources_with(&[("c.yml".to_string(), text)], &crate::Pipelines::new(vec![p])).unwrap_or_else(|d| panic!("{d}"));
        let RuleKind::Correlation(c) = &set.rules[1].kind else { panic!("rule 1 is a correlation") };
        assert!(matches!(&c.kind, CorrelationType::NewTerm { fields, .. } if fields == &vec![FieldPath::new("details.sourceipaddress")]));
        assert_eq!(c.group_by_per_rule, vec![("login".to_string(), vec![FieldPath::new("details.username")])]);
        assert_eq!(set.rules[1].group_by, vec![FieldPath::new("User"), FieldPath::new("SourceIp")], "alerts name them as written");
    }

    #[test]
    fn spike_condition_and_defaults() {
        let (k, _) = kind("  type: spike\n  rules: login\n  timespan: 1h\n  condition: {ratio: 3}\n").unwrap();
        assert_eq!(k, CorrelationType::Spike(SpikeParams { reference_windows: 1, direction: SpikeDirection::Up, ratio: 3.0, min_current: 1, min_reference: 1 }));
        let (k, _) = kind("  type: spike\n  rules: login\n  timespan: 1h\n  reference_windows: 24\n  condition: {direction: down, ratio: 1.5, min_current: 0, min_reference: 20}\n").unwrap();
        assert_eq!(k, CorrelationType::Spike(SpikeParams { reference_windows: 24, direction: SpikeDirection::Down, ratio: 1.5, min_current: 0, min_reference: 20 }));
    }

    #[test]
    fn spike_diagnostics() {
        let e = kind("  type: spike\n  rules: login\n  timespan: 1h\n  condition: {ratio: 1}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].key_path.as_str()), ("R204", "correlation.condition.ratio"));
        let e = kind("  type: spike\n  rules: login\n  timespan: 1h\n  condition: {ratio: 2, direction: sideways}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].key_path.as_str()), ("R204", "correlation.condition.direction"));
        let e = kind("  type: spike\n  rules: login\n  timespan: 1h\n  condition: {ratio: 2, gte: 4}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].key_path.as_str()), ("R201", "correlation.condition.gte"));
        let e = kind("  type: spike\n  rules: login\n  condition: {ratio: 2}\n").unwrap_err();
        assert!(e[0].message.contains("timespan"), "{}", e[0].message);
        let e = kind("  type: spike\n  rules: login\n  timespan: 1h\n").unwrap_err();
        assert!(e[0].message.contains("condition"), "{}", e[0].message);
        let e = kind("  type: spike\n  rules: login\n  timespan: 1h\n  window: tumbling\n  condition: {ratio: 2}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].key_path.as_str()), ("R208", "correlation.window"));
    }
}
