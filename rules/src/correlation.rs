//! Correlation rules (Sigma v2 `correlation:`), compiled to plain data the engine turns
//! into windowed operators.

use crate::yaml::{kind_name, pos, spos, Sink};
use marked_yaml::Node;
use rampart_core::FieldPath;
use std::time::Duration;

/// What is counted per group and window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorrelationType {
    /// Number of matching events.
    EventCount,
    /// Number of distinct values of `field`.
    ValueCount {
        /// The counted field.
        field: FieldPath,
    },
}

/// Comparison of a threshold; only rising ones, since falling ones need timers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ThresholdOp {
    /// `gte`
    Gte,
    /// `gt`
    Gt,
}

/// `condition: {gte: 10}`
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Threshold {
    /// The comparison.
    pub op: ThresholdOp,
    /// The bound.
    pub value: u64,
}

impl Threshold {
    /// Is `v` past the threshold?
    pub fn is_met(&self, v: u64) -> bool {
        match self.op {
            ThresholdOp::Gte => v >= self.value,
            ThresholdOp::Gt => v > self.value,
        }
    }

    /// Did going from `old` to `new` cross the threshold (not met before, met now)?
    pub fn crossed(&self, old: u64, new: u64) -> bool {
        !self.is_met(old) && self.is_met(new)
    }
}

/// A compiled correlation rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correlation {
    /// event_count or value_count.
    pub kind: CorrelationType,
    /// Indices into `RuleSet::rules` of the referenced detection rules.
    pub rules: Vec<usize>,
    /// Grouping fields (`group-by`).
    pub group_by: Vec<FieldPath>,
    /// Window length.
    pub timespan: Duration,
    /// When to fire.
    pub threshold: Threshold,
}

/// A correlation before references are resolved (they may point into other files).
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub kind: CorrelationType,
    /// (name or id, line, column)
    pub refs: Vec<(String, usize, usize)>,
    pub group_by: Vec<FieldPath>,
    pub timespan: Duration,
    pub threshold: Threshold,
    pub generate: bool,
}

const KEYS: &[&str] = &["type", "rules", "group-by", "timespan", "condition", "generate", "aliases"];

/// Parses `correlation:`; every problem goes to `sink`.
pub(crate) fn parse(node: &Node, key_at: (usize, usize), sink: &mut Sink) -> Option<Pending> {
    let Some(map) = node.as_mapping() else {
        sink.error("R201", key_at, "correlation", format!("`correlation` must be a mapping, found {}", kind_name(node)));
        return None;
    };
    let before = sink.diags.len();
    for (k, _) in map.iter() {
        if !KEYS.contains(&k.as_str()) {
            let near = KEYS.iter().find(|n| strsim::levenshtein(n, k.as_str()) <= 2);
            let msg = match near {
                Some(n) => format!("unknown correlation key `{}`, did you mean `{n}`?", k.as_str()),
                None => format!("unknown correlation key `{}`", k.as_str()),
            };
            sink.error_hint("R201", spos(k), &format!("correlation.{}", k.as_str()), msg, format!("valid keys: {}", KEYS.join(", ")));
        }
    }
    if let Some(a) = map.get_node("aliases") {
        sink.error("R200", pos(a), "correlation.aliases", "correlation `aliases` are not supported yet");
    }
    // type
    let ty = match map.get_node("type") {
        Some(Node::Scalar(s)) => match s.as_str() {
            "event_count" | "value_count" => Some(s.as_str().to_string()),
            other => {
                sink.error_hint(
                    "R200",
                    spos(s),
                    "correlation.type",
                    format!("correlation type `{other}` is not supported yet"),
                    "supported types: event_count, value_count",
                );
                None
            }
        },
        Some(other) => {
            sink.error("R201", pos(other), "correlation.type", "`type` must be a string");
            None
        }
        None => {
            sink.error("R201", key_at, "correlation", "correlation has no `type`");
            None
        }
    };
    // rules
    let mut refs = Vec::new();
    match map.get_node("rules") {
        Some(Node::Sequence(seq)) if !seq.is_empty() => {
            for (i, n) in seq.iter().enumerate() {
                match n.as_scalar() {
                    Some(s) => {
                        let (l, c) = spos(s);
                        refs.push((s.as_str().to_string(), l, c));
                    }
                    None => sink.error("R201", pos(n), &format!("correlation.rules[{i}]"), "a rule reference must be a name or id"),
                }
            }
        }
        Some(Node::Scalar(s)) => {
            let (l, c) = spos(s);
            refs.push((s.as_str().to_string(), l, c));
        }
        Some(other) => sink.error("R201", pos(other), "correlation.rules", "`rules` must be a non-empty list of rule names or ids"),
        None => sink.error("R201", key_at, "correlation", "correlation has no `rules`"),
    }
    // group-by
    let mut group_by = Vec::new();
    match map.get_node("group-by") {
        Some(Node::Sequence(seq)) => {
            for (i, n) in seq.iter().enumerate() {
                match n.as_scalar() {
                    Some(s) if !s.as_str().is_empty() => group_by.push(FieldPath::new(s.as_str())),
                    _ => sink.error("R201", pos(n), &format!("correlation.group-by[{i}]"), "a group-by entry must be a field name"),
                }
            }
        }
        Some(Node::Scalar(s)) => group_by.push(FieldPath::new(s.as_str())),
        Some(other) => sink.error("R201", pos(other), "correlation.group-by", format!("`group-by` must be a list of fields, found {}", kind_name(other))),
        None => {}
    }
    // timespan
    let timespan = match map.get_node("timespan") {
        Some(Node::Scalar(s)) => match rampart_core::time::parse_duration(s.as_str()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                sink.error("R205", spos(s), "correlation.timespan", "`timespan` must be longer than zero");
                None
            }
            Err(e) => {
                sink.error_hint("R205", spos(s), "correlation.timespan", e, "e.g. 30s, 5m, 1h, 1d");
                None
            }
        },
        Some(other) => {
            sink.error("R205", pos(other), "correlation.timespan", "`timespan` must be a duration such as 5m");
            None
        }
        None => {
            sink.error("R201", key_at, "correlation", "correlation has no `timespan`");
            None
        }
    };
    // condition
    let mut field = None;
    let mut threshold = None;
    match map.get_node("condition") {
        Some(Node::Mapping(cm)) => {
            for (k, v) in cm.iter() {
                let kp = format!("correlation.condition.{}", k.as_str());
                match k.as_str() {
                    "field" => match v.as_scalar() {
                        Some(s) if !s.as_str().is_empty() => field = Some((FieldPath::new(s.as_str()), spos(k))),
                        _ => sink.error("R201", pos(v), &kp, "`field` must be a field name"),
                    },
                    op @ ("gte" | "gt") => {
                        let op = if op == "gte" { ThresholdOp::Gte } else { ThresholdOp::Gt };
                        match v.as_scalar().and_then(|s| s.as_str().trim().parse::<u64>().ok()) {
                            Some(n) if threshold.is_none() => threshold = Some(Threshold { op, value: n }),
                            Some(_) => sink.error_hint(
                                "R204",
                                spos(k),
                                &kp,
                                "only one threshold comparison is supported",
                                "ranges (gte and lte together) need timer-driven absence, not supported yet",
                            ),
                            None => sink.error("R201", pos(v), &kp, "a threshold must be a non-negative integer"),
                        }
                    }
                    op @ ("lt" | "lte" | "eq" | "neq") => sink.error_hint(
                        "R204",
                        spos(k),
                        &kp,
                        format!("threshold `{op}` is not supported"),
                        "needs timer-driven absence, not supported yet; use gte or gt",
                    ),
                    other => sink.error_hint("R201", spos(k), &kp, format!("unknown condition key `{other}`"), "valid: field, gte, gt"),
                }
            }
            if threshold.is_none() && !cm.iter().any(|(k, _)| matches!(k.as_str(), "lt" | "lte" | "eq" | "neq" | "gte" | "gt")) {
                sink.error_hint("R201", key_at, "correlation.condition", "correlation condition has no threshold", "e.g. `condition: {gte: 10}`");
            }
        }
        Some(other) => sink.error_hint("R201", pos(other), "correlation.condition", "`condition` must be a mapping", "e.g. `condition: {gte: 10}`"),
        None => sink.error("R201", key_at, "correlation", "correlation has no `condition`"),
    }
    let kind = match ty.as_deref() {
        Some("event_count") => {
            if let Some((_, at)) = &field {
                sink.error("R201", *at, "correlation.condition.field", "`field` is only meaningful for value_count");
            }
            Some(CorrelationType::EventCount)
        }
        Some(_) => match field {
            Some((f, _)) => Some(CorrelationType::ValueCount { field: f }),
            None => {
                sink.error_hint("R201", key_at, "correlation.condition", "value_count needs the counted field", "e.g. `condition: {field: User, gte: 5}`");
                None
            }
        },
        None => None,
    };
    let generate = match map.get_node("generate") {
        None => false,
        Some(Node::Scalar(s)) if s.may_coerce() && (s.as_str() == "true" || s.as_str() == "false") => s.as_str() == "true",
        Some(other) => {
            sink.error("R201", pos(other), "correlation.generate", "`generate` must be true or false");
            false
        }
    };
    if sink.diags.len() > before {
        return None;
    }
    Some(Pending { kind: kind?, refs, group_by, timespan: timespan?, threshold: threshold?, generate })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_crossing() {
        let t = Threshold { op: ThresholdOp::Gte, value: 3 };
        assert!(!t.is_met(2));
        assert!(t.is_met(3));
        assert!(t.crossed(2, 3));
        assert!(!t.crossed(3, 4));
        assert!(!t.crossed(1, 2));
        let g = Threshold { op: ThresholdOp::Gt, value: 3 };
        assert!(!g.is_met(3));
        assert!(g.crossed(3, 4));
    }
}
