//! Correlation rules (Sigma v2 `correlation:`), compiled to plain data the engine turns
//! into windowed operators.

use crate::detection::LogSource;
use crate::pipeline::Pipelines;
use crate::yaml::{kind_name, pos, spos, Sink};
use marked_yaml::Node;
use rampart_core::FieldPath;
use std::time::Duration;

/// What is measured per group and window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorrelationType {
    /// Number of matching events.
    EventCount,
    /// Number of distinct values of `field`.
    ValueCount {
        /// The counted field.
        field: FieldPath,
    },
    /// Sum of the numeric values of `field`.
    ValueSum {
        /// The summed field.
        field: FieldPath,
    },
    /// Arithmetic mean of the numeric values of `field`.
    ValueAvg {
        /// The averaged field.
        field: FieldPath,
    },
    /// The median (the 50th percentile by nearest rank) of the numeric values of `field`.
    ValueMedian {
        /// The field.
        field: FieldPath,
    },
    /// How many of the referenced rules matched in the window (Sigma `temporal`; by default
    /// it fires when all have).
    Temporal,
    /// How many of the referenced rules matched in the window in the order listed: the
    /// longest prefix of `rules` matched by events whose times do not decrease (Sigma
    /// `temporal_ordered`; by default it fires when all have, in order).
    TemporalOrdered,
    /// Rampart's `absence`: an event of the first rule not followed, within the timespan,
    /// by one of the second for the same group; fires at the deadline.
    Absence,
    /// The `percentile`-th percentile (nearest rank: the smallest value with at least
    /// `percentile`% of the values at or below it) of the numeric values of `field`.
    ValuePercentile {
        /// The field.
        field: FieldPath,
        /// 0–100.
        percentile: u8,
    },
    /// Rampart's `new_term`: the first time a value of `fields` (a combination when there
    /// are several) is seen in a group, once `learning` has passed since the rule's first
    /// event (see [`crate::stateful`]).
    NewTerm {
        /// The term's fields.
        fields: Vec<FieldPath>,
        /// Learning period (event time) from the rule's first event.
        learning: Duration,
        /// A term not seen for longer than this is new again.
        forget_after: Option<Duration>,
        /// Most terms remembered per group (least recently seen ones are forgotten).
        max_terms: usize,
    },
    /// Rampart's `spike`: the count in the current window (`timespan`) against the
    /// reference window(s) before it.
    Spike(SpikeParams),
    /// Rampart's `sequence`: `steps` referenced rules (or inline detections) matched in
    /// order by events of one key within `timespan` (its `maxspan`), each step keyed by its
    /// own fields (`group_by_per_rule`, one entry per step); with `until`, one more
    /// reference whose events cancel the key's partial matches (see [`crate::sequence`]).
    Sequence {
        /// How many steps (the first `steps` of the correlation's `rules`).
        steps: u32,
        /// Whether the last of `rules` is the `until` rule.
        until: bool,
    },
    /// Rampart's `deadman`: a group that had events of the referenced rules has had none
    /// for `timespan` of processing time (wall clock); fired by a timer.
    Deadman,
}

/// Which way a `spike` goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SpikeDirection {
    /// The current count is at least `ratio` times the reference.
    Up,
    /// The reference is at least `ratio` times the current count.
    Down,
    /// Either.
    Both,
}

/// A `spike`'s reference and condition.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SpikeParams {
    /// The reference is the mean of this many windows before the current one (≥ 1).
    pub reference_windows: u32,
    /// Up, down or both.
    pub direction: SpikeDirection,
    /// Greater than 1.
    pub ratio: f64,
    /// The current count must be at least this (default 1).
    pub min_current: u64,
    /// The reference (per window) must be at least this (default 1).
    pub min_reference: u64,
}

// `ratio` is finite (validated), so equality is total.
impl Eq for SpikeParams {}

impl CorrelationType {
    /// The type's name as written in rules.
    pub fn name(&self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount { .. } => "value_count",
            CorrelationType::ValueSum { .. } => "value_sum",
            CorrelationType::ValueAvg { .. } => "value_avg",
            CorrelationType::ValueMedian { .. } => "value_median",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
            CorrelationType::Absence => "absence",
            CorrelationType::ValuePercentile { .. } => "value_percentile",
            CorrelationType::NewTerm { .. } => "new_term",
            CorrelationType::Spike(_) => "spike",
            CorrelationType::Sequence { .. } => "sequence",
            CorrelationType::Deadman => "deadman",
        }
    }

    /// The fields a type reads besides `group-by`: the field a value type measures, a
    /// new_term's term fields.
    fn fields_mut(&mut self) -> Vec<&mut FieldPath> {
        match self {
            CorrelationType::ValueCount { field }
            | CorrelationType::ValueSum { field }
            | CorrelationType::ValueAvg { field }
            | CorrelationType::ValueMedian { field }
            | CorrelationType::ValuePercentile { field, .. } => vec![field],
            CorrelationType::NewTerm { fields, .. } => fields.iter_mut().collect(),
            CorrelationType::EventCount | CorrelationType::Temporal | CorrelationType::TemporalOrdered | CorrelationType::Absence | CorrelationType::Spike(_) | CorrelationType::Sequence { .. } | CorrelationType::Deadman => Vec::new(),
        }
    }

    /// Does the measure count something (always a whole number, at least 1 in a non-empty
    /// window)?
    pub fn is_count(&self) -> bool {
        matches!(self, CorrelationType::EventCount | CorrelationType::ValueCount { .. } | CorrelationType::Temporal | CorrelationType::TemporalOrdered)
    }
}

/// How a correlation's windows move (Rampart's `window:` key).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum WindowKind {
    /// Every window ending at any instant, `timespan` long (the default).
    #[default]
    Sliding,
    /// Fixed buckets of `timespan` aligned to the Unix epoch.
    Tumbling,
    /// A group's events at most `gap` apart form one session, at most `timespan` long;
    /// the measure is over the session so far (`window: session(5m)`).
    Session(Duration),
}

/// One comparison of a threshold (the same type the correlation operators test).
pub type ThresholdOp = rampart_core::Cmp;

/// `condition: {gte: 10}` or a range such as `{gt: 100, lte: 200}`: every comparison must
/// hold. At most one lower bound (`gt`/`gte`), one upper bound (`lt`/`lte`), and `eq` only
/// with `neq`-free, bound-free conditions.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Threshold {
    /// The comparisons, in the order written.
    pub ops: Vec<(ThresholdOp, f64)>,
}

impl Threshold {
    /// Does `v` meet every comparison?
    pub fn is_met(&self, v: f64) -> bool {
        self.ops.iter().all(|&(op, b)| op.holds(v, b))
    }

    /// Did going from `old` to `new` enter the condition (not met before, met now)?
    /// `None` is an empty window, which never meets a condition.
    pub fn crossed(&self, old: Option<f64>, new: Option<f64>) -> bool {
        !old.is_some_and(|v| self.is_met(v)) && new.is_some_and(|v| self.is_met(v))
    }

    /// Can any value at least `min` (a whole number when `whole`) meet it?
    ///
    /// The values meeting it form an interval minus at most one point (`neq`), so one of a
    /// few candidates does if any value does: `min`, the bounds, one past them, and the
    /// midpoints between them (rounded when whole).
    fn satisfiable(&self, min: f64, whole: bool) -> bool {
        let mut points = vec![min];
        points.extend(self.ops.iter().map(|(_, b)| *b));
        let mut candidates = Vec::new();
        for (i, &a) in points.iter().enumerate() {
            candidates.extend([a - 1.0, a, a + 1.0]);
            for &b in &points[i + 1..] {
                candidates.push((a + b) / 2.0);
            }
        }
        if whole {
            candidates = candidates.into_iter().flat_map(|c| [c.floor(), c.ceil(), c.floor() + 1.0, c.ceil() - 1.0]).collect();
        }
        candidates.into_iter().filter(|c| *c >= min).any(|c| self.is_met(c))
    }
}

/// A compiled correlation rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlation {
    /// What is measured.
    pub kind: CorrelationType,
    /// Indices into `RuleSet::rules` of the referenced detection rules.
    pub rules: Vec<usize>,
    /// Grouping fields (`group-by`) as written, alias names included: the names alerts
    /// show (pipelines rename what is read, in `group_by_per_rule`, not these).
    pub group_by: Vec<FieldPath>,
    /// For each referenced rule, as written in `rules`, the fields its events are grouped
    /// by: the `group-by` with every alias replaced by that rule's field (`aliases`), then
    /// renamed by the pipelines that apply to that rule's logsource. Empty when neither
    /// changes anything: every rule is grouped by `group_by`.
    pub group_by_per_rule: Vec<(String, Vec<FieldPath>)>,
    /// Window length.
    pub timespan: Duration,
    /// Sliding (default) or tumbling.
    pub window: WindowKind,
    /// When to fire: on entering the threshold (see `docs/rules.md`).
    pub threshold: Threshold,
}

/// A correlation before references are resolved (they may point into other files).
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub kind: CorrelationType,
    /// (name or id, line, column)
    pub refs: Vec<(String, usize, usize)>,
    pub group_by: Vec<FieldPath>,
    /// Where each `group-by` entry is written (for pipeline diagnostics).
    pub group_by_at: Vec<(usize, usize)>,
    pub group_by_per_rule: Vec<(String, Vec<FieldPath>)>,
    /// Where `condition.field` is written, when there is one.
    pub field_at: Option<(usize, usize)>,
    /// Where each new_term `fields` entry is written.
    pub fields_at: Vec<(usize, usize)>,
    pub timespan: Duration,
    pub window: WindowKind,
    pub threshold: Threshold,
    pub generate: bool,
    /// A sequence's inline detections, loaded as rules of their own.
    pub inline: Vec<crate::sequence::Inline>,
}

const KEYS: &[&str] = &["type", "rules", "group-by", "timespan", "condition", "generate", "aliases", "window", "fields", "learning", "forget_after", "max_terms", "reference_windows", "steps", "until", "maxspan"];

/// Supported `type`s.
const TYPES: &[&str] = &["event_count", "value_count", "value_sum", "value_avg", "value_percentile", "value_median", "temporal", "temporal_ordered", "absence", "new_term", "spike", "sequence", "deadman"];

/// Parses `correlation:`; every problem goes to `sink`.
pub(crate) fn parse(node: &Node, key_at: (usize, usize), ctx: &crate::sequence::Context<'_>, sink: &mut Sink) -> Option<Pending> {
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
    // type
    let ty = match map.get_node("type") {
        Some(Node::Scalar(s)) => match s.as_str() {
            t if TYPES.contains(&t) => Some((t.to_string(), spos(s))),
            other => {
                sink.error_hint("R200", spos(s), "correlation.type", format!("correlation type `{other}` is not supported"), format!("supported types: {}", TYPES.join(", ")));
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
    // Rampart's sequence has its own shape (`steps`, `until`, `maxspan`).
    match ty.as_ref().map(|t| t.0.as_str()) {
        Some("sequence") => return crate::sequence::parse(map, key_at, ctx, sink),
        Some(t) => {
            for key in crate::sequence::KEYS {
                if let Some(at) = crate::yaml::key_pos(map, key) {
                    sink.error_hint("R201", at, &format!("correlation.{key}"), format!("`{key}` is a key of `type: sequence`, not of {t}"), "remove it");
                }
            }
        }
        None => {}
    }
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
    let mut group_by_at = Vec::new();
    match map.get_node("group-by") {
        Some(Node::Sequence(seq)) => {
            for (i, n) in seq.iter().enumerate() {
                match n.as_scalar() {
                    Some(s) if !s.as_str().is_empty() => {
                        group_by.push(FieldPath::new(s.as_str()));
                        group_by_at.push(spos(s));
                    }
                    _ => sink.error("R201", pos(n), &format!("correlation.group-by[{i}]"), "a group-by entry must be a field name"),
                }
            }
        }
        Some(Node::Scalar(s)) => {
            group_by.push(FieldPath::new(s.as_str()));
            group_by_at.push(spos(s));
        }
        Some(other) => sink.error("R201", pos(other), "correlation.group-by", format!("`group-by` must be a list of fields, found {}", kind_name(other))),
        None => {}
    }
    // Rampart's new_term and spike take their own keys (`stateful`).
    let stateful: Option<String> = ty.as_ref().map(|t| t.0.clone()).filter(|t| matches!(t.as_str(), "new_term" | "spike"));
    crate::stateful::check_keys(ty.as_ref().map(|t| t.0.as_str()), map, sink);
    // timespan
    let timespan = match map.get_node("timespan") {
        Some(n) => positive_duration(n, "timespan", sink),
        None if stateful.as_deref() == Some("new_term") => Some(Duration::ZERO),
        None => {
            sink.error("R201", key_at, "correlation", "correlation has no `timespan`");
            None
        }
    };
    // condition
    let temporal = matches!(ty.as_ref().map(|t| t.0.as_str()), Some("temporal" | "temporal_ordered"));
    let absence = matches!(ty.as_ref().map(|t| t.0.as_str()), Some("absence"));
    let deadman = matches!(ty.as_ref().map(|t| t.0.as_str()), Some("deadman"));
    let counts = temporal || matches!(ty.as_ref().map(|t| t.0.as_str()), Some("event_count" | "value_count"));
    let mut field = None;
    let mut percentile: Option<(u8, (usize, usize))> = None;
    let mut threshold = Threshold::default();
    let mut cond_ok = true;
    let cond_at = crate::yaml::key_pos(map, "condition").unwrap_or(key_at);
    match map.get_node("condition") {
        // Parsed with the type's other keys, below.
        _ if stateful.is_some() => {}
        Some(c) if absence => {
            sink.error_hint("R201", pos(c), "correlation.condition", "`absence` takes no `condition`", "it fires when the second rule does not follow the first within `timespan`");
            cond_ok = false;
        }
        Some(c) if deadman => {
            sink.error_hint("R201", pos(c), "correlation.condition", "`deadman` takes no `condition`", "it fires when a group has had no events for `timespan`");
            cond_ok = false;
        }
        Some(Node::Mapping(cm)) => {
            let mut lower: Option<&str> = None;
            let mut upper: Option<&str> = None;
            for (k, v) in cm.iter() {
                let kp = format!("correlation.condition.{}", k.as_str());
                if let Some(op) = ThresholdOp::from_key(k.as_str()) {
                    let text = v.as_scalar().map(|s| s.as_str().trim());
                    let bound = match text.and_then(|t| t.parse::<f64>().ok()).filter(|b| b.is_finite()) {
                        Some(b) if counts && (b < 0.0 || b.fract() != 0.0) => {
                            sink.error_hint("R204", pos(v), &kp, "a count threshold must be a non-negative whole number", "counts are whole numbers; e.g. `gte: 10`");
                            None
                        }
                        Some(b) => Some(b),
                        None => {
                            sink.error_hint("R204", pos(v), &kp, "a threshold must be a number", "e.g. `gte: 10`");
                            None
                        }
                    };
                    // One lower bound, one upper bound; `eq` stands alone.
                    let side = match op {
                        ThresholdOp::Gt | ThresholdOp::Gte => Some(&mut lower),
                        ThresholdOp::Lt | ThresholdOp::Lte => Some(&mut upper),
                        ThresholdOp::Eq | ThresholdOp::Neq => None,
                    };
                    if let Some(side) = side {
                        if let Some(prev) = side.replace(k.as_str()) {
                            sink.error_hint("R204", spos(k), &kp, format!("`{}` and `{prev}` are both bounds on the same side", k.as_str()), "keep one; a range combines a lower (gt/gte) and an upper (lt/lte) bound");
                            cond_ok = false;
                        }
                    }
                    match bound {
                        Some(b) => threshold.ops.push((op, b)),
                        None => cond_ok = false,
                    }
                    continue;
                }
                match k.as_str() {
                    "field" => match v.as_scalar() {
                        Some(s) if !s.as_str().is_empty() => field = Some((FieldPath::new(s.as_str()), spos(k), spos(s))),
                        _ => {
                            sink.error("R201", pos(v), &kp, "`field` must be a field name");
                            cond_ok = false;
                        }
                    },
                    "percentile" => match v.as_scalar().and_then(|s| s.as_str().trim().parse::<u8>().ok()).filter(|p| *p <= 100) {
                        Some(p) => percentile = Some((p, spos(k))),
                        None => {
                            sink.error_hint("R206", pos(v), &kp, "`percentile` must be a whole number from 0 to 100", "e.g. `percentile: 95`");
                            cond_ok = false;
                        }
                    },
                    other => {
                        sink.error_hint("R201", spos(k), &kp, format!("unknown condition key `{other}`"), "valid: field, percentile, gt, gte, lt, lte, eq, neq");
                        cond_ok = false;
                    }
                }
            }
            let has_eq = threshold.ops.iter().any(|(op, _)| *op == ThresholdOp::Eq);
            if has_eq && threshold.ops.len() > 1 {
                sink.error_hint("R204", cond_at, "correlation.condition", "`eq` cannot be combined with other comparisons", "use `eq` alone, or a range with gt/gte and lt/lte");
                cond_ok = false;
            } else if threshold.ops.is_empty() && cond_ok {
                sink.error_hint("R201", cond_at, "correlation.condition", "correlation condition has no threshold", "e.g. `condition: {gte: 10}`");
                cond_ok = false;
            } else if cond_ok && !threshold.satisfiable(if counts { 1.0 } else { f64::MIN }, counts) {
                let hint = if counts {
                    "a group is only measured while its window holds events, so its count is at least 1; to detect missing events use `absence`"
                } else {
                    "check the bounds: the range is empty"
                };
                sink.error_hint("R204", cond_at, "correlation.condition", "this condition can never be met", hint);
                cond_ok = false;
            }
        }
        Some(other) => {
            sink.error_hint("R201", pos(other), "correlation.condition", "`condition` must be a mapping", "e.g. `condition: {gte: 10}`");
            cond_ok = false;
        }
        // temporal types default to "all of them", below; absence has no threshold.
        None if temporal => {}
        None if deadman => threshold.ops.push((ThresholdOp::Gte, 1.0)),
        None if absence => {
            threshold.ops.push((ThresholdOp::Gte, 1.0));
            if refs.len() != 2 {
                sink.error_hint("R201", key_at, "correlation.rules", "`absence` takes exactly two rules", "rules: [first, expected_follow_up]");
                cond_ok = false;
            }
        }
        None => {
            sink.error("R201", key_at, "correlation", "correlation has no `condition`");
            cond_ok = false;
        }
    }
    if temporal {
        if threshold.ops.is_empty() {
            threshold.ops.push((ThresholdOp::Gte, refs.len() as f64));
        } else if cond_ok && !refs.is_empty() && !(1..=refs.len()).any(|n| threshold.is_met(n as f64)) {
            sink.error_hint("R204", cond_at, "correlation.condition", "this condition can never be met", format!("a temporal correlation counts the referenced rules that matched: 1 to {}", refs.len()));
            cond_ok = false;
        }
    }
    let field_at = field.as_ref().map(|f| f.2);
    let field = field.map(|(f, key_at, _)| (f, key_at));
    let mut fields_at = Vec::new();
    let kind = match ty {
        Some((t, t_at)) if stateful.is_some() => crate::stateful::parse(&t, t_at, map, key_at, sink).map(|(kind, at)| {
            fields_at = at;
            kind
        }),
        Some((t, t_at)) => {
            if let Some((_, at)) = percentile.filter(|_| t != "value_percentile") {
                sink.error_hint("R206", at, "correlation.condition.percentile", format!("`percentile` is only meaningful for value_percentile, not {t}"), "remove it");
            }
            match (t.as_str(), field) {
                ("event_count", Some((_, at))) => {
                    sink.error_hint("R201", at, "correlation.condition.field", "`field` is not used by event_count", "remove it, or use value_count to count distinct values");
                    None
                }
                ("event_count", None) => Some(CorrelationType::EventCount),
                ("temporal" | "temporal_ordered" | "absence" | "deadman", Some((_, at))) => {
                    sink.error_hint("R201", at, "correlation.condition.field", format!("`field` is not used by {t}"), "remove it");
                    None
                }
                ("temporal", None) => Some(CorrelationType::Temporal),
                ("absence", None) => Some(CorrelationType::Absence),
                ("deadman", None) => Some(CorrelationType::Deadman),
                ("temporal_ordered", None) => Some(CorrelationType::TemporalOrdered),
                // A `field` or `percentile` with an error was reported already.
                (_, None) if !cond_ok => None,
                (_, None) => {
                    sink.error_hint("R201", cond_at, "correlation.condition", format!("{t} needs the field it measures"), format!("e.g. `condition: {{field: details.bytes, gte: 5}}` under `type: {t}`"));
                    None
                }
                ("value_count", Some((field, _))) => Some(CorrelationType::ValueCount { field }),
                ("value_sum", Some((field, _))) => Some(CorrelationType::ValueSum { field }),
                ("value_avg", Some((field, _))) => Some(CorrelationType::ValueAvg { field }),
                ("value_median", Some((field, _))) => Some(CorrelationType::ValueMedian { field }),
                (_, Some((field, _))) => match percentile {
                    Some((percentile, _)) => Some(CorrelationType::ValuePercentile { field, percentile }),
                    None if !cond_ok => None,
                    None => {
                        sink.error_hint("R206", t_at, "correlation.condition", "value_percentile needs `percentile`", "e.g. `condition: {field: details.bytes, percentile: 95, gt: 100000}`");
                        None
                    }
                },
            }
        }
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
    let group_by_per_rule = aliases(map, &refs, &group_by, sink);
    let window = match map.get_node("window") {
        None => WindowKind::Sliding,
        Some(w) if deadman => {
            sink.error_hint("R208", pos(w), "correlation.window", "`deadman` has no window", "`timespan` is the silence that fires it");
            WindowKind::Sliding
        }
        Some(Node::Scalar(w)) if w.as_str() == "sliding" => WindowKind::Sliding,
        Some(Node::Scalar(w)) if w.as_str() == "tumbling" => WindowKind::Tumbling,
        Some(Node::Scalar(w)) if w.as_str().starts_with("session") => session(w, kind.as_ref(), timespan, sink),
        Some(other) => {
            sink.error_hint("R208", pos(other), "correlation.window", "`window` must be sliding, tumbling or session(gap)", "e.g. `window: tumbling`");
            WindowKind::Sliding
        }
    };
    if !cond_ok {
        return None;
    }
    Some(Pending { kind: kind?, refs, group_by, group_by_at, group_by_per_rule, field_at, fields_at, timespan: timespan?, window, threshold, generate, inline: Vec::new() })
}

/// The duration under `correlation.<key>`, which must be longer than zero (R205).
pub(crate) fn positive_duration(node: &Node, key: &str, sink: &mut Sink) -> Option<Duration> {
    let path = format!("correlation.{key}");
    match node {
        Node::Scalar(s) => match rampart_core::time::parse_duration(s.as_str()) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                sink.error("R205", spos(s), &path, format!("`{key}` must be longer than zero"));
                None
            }
            Err(e) => {
                sink.error_hint("R205", spos(s), &path, e, "e.g. 30s, 5m, 1h, 1d");
                None
            }
        },
        other => {
            sink.error_hint("R205", pos(other), &path, format!("`{key}` must be a duration, found {}", kind_name(other)), "e.g. 5m");
            None
        }
    }
}

/// `window: session(gap)`: only for the counts and value aggregates; `gap` is a duration
/// longer than zero and at most `timespan` (the longest a session may last).
fn session(w: &marked_yaml::types::MarkedScalarNode, kind: Option<&CorrelationType>, timespan: Option<Duration>, sink: &mut Sink) -> WindowKind {
    let text = w.as_str().trim();
    let inner = text.strip_prefix("session").map(str::trim).and_then(|r| r.strip_prefix('(')).and_then(|r| r.strip_suffix(')'));
    let Some(inner) = inner else {
        sink.error_hint("R208", spos(w), "correlation.window", format!("`{text}` is not a session window"), "write the gap in parentheses: `session(5m)`");
        return WindowKind::Sliding;
    };
    let gap = match rampart_core::time::parse_duration(inner.trim()) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            sink.error_hint("R208", spos(w), "correlation.window", "a session gap must be longer than zero", "e.g. `session(5m)`");
            return WindowKind::Sliding;
        }
        Err(e) => {
            sink.error_hint("R208", spos(w), "correlation.window", format!("session gap: {e}"), "e.g. `session(5m)`");
            return WindowKind::Sliding;
        }
    };
    let fits = matches!(
        kind,
        None | Some(
            CorrelationType::EventCount
                | CorrelationType::ValueCount { .. }
                | CorrelationType::ValueSum { .. }
                | CorrelationType::ValueAvg { .. }
                | CorrelationType::ValueMedian { .. }
                | CorrelationType::ValuePercentile { .. }
                | CorrelationType::Temporal
        )
    );
    if !fits {
        let name = kind.map_or("this type", CorrelationType::name);
        sink.error_hint("R208", spos(w), "correlation.window", format!("{name} has no session windows"), "session windows apply to event_count, value_count, temporal and the value aggregates");
        return WindowKind::Sliding;
    }
    if timespan.is_some_and(|t| gap > t) {
        sink.error_hint("R208", spos(w), "correlation.window", "the session gap is longer than `timespan`", "`timespan` is the longest a session may last: make it at least the gap");
    }
    WindowKind::Session(gap)
}

/// Renames what a correlation reads from each referenced detection's events by the
/// pipelines that apply to that rule's logsource, as pySigma's field name mappings do to a
/// correlation's `group-by`, `aliases` and `condition.field`. `logsources[i]` belongs to
/// `p.refs[i]`; `None` is a referenced correlation, whose alerts carry its `group-by` names
/// as written, so nothing read from them is renamed.
///
/// Each rule gets its own group-by paths (`group_by_per_rule`), so rules whose logsources map
/// a field differently still group together; alerts keep the names as written. The measured
/// field is one for all rules: it must map to the same path for every referenced detection.
/// A field that maps to several paths (alternatives) cannot be read as one value (R209).
pub(crate) fn apply_pipelines(p: &mut Pending, logsources: &[Option<LogSource>], pipelines: &Pipelines, sink: &mut Sink) {
    let several = |field: &FieldPath, rule: &str, paths: &[FieldPath]| {
        let list: Vec<&str> = paths.iter().map(FieldPath::as_str).collect();
        (
            format!("the pipelines map `{field}` to several paths for rule `{rule}` ({}); a correlation reads one path per field", list.join(", ")),
            format!("give `{field}` a single target in a `field_name_mapping` for that rule's logsource"),
        )
    };
    let mut per_rule = Vec::with_capacity(p.refs.len());
    let mut changed = false;
    // `group_by_per_rule`, when set, has one entry per reference, in order (a sequence may
    // reference one rule at two steps with different fields).
    for (ri, ((r, _, _), ls)) in p.refs.iter().zip(logsources).enumerate() {
        let base = p.group_by_per_rule.get(ri).map_or(&p.group_by, |(_, f)| f);
        let mut fields = Vec::with_capacity(base.len());
        for (gi, f) in base.iter().enumerate() {
            let paths = ls.as_ref().map_or_else(|| vec![f.clone()], |ls| pipelines.rename(ls, f));
            match paths.as_slice() {
                [one] => {
                    changed |= one != f;
                    fields.push(one.clone());
                }
                _ => {
                    let (msg, hint) = several(f, r, &paths);
                    sink.error_hint("R209", p.group_by_at.get(gi).copied().unwrap_or((0, 0)), &format!("correlation.group-by[{gi}]"), msg, hint);
                    fields.push(f.clone());
                }
            }
        }
        per_rule.push((r.clone(), fields));
    }
    if changed {
        p.group_by_per_rule = per_rule;
    }
    let field_at = p.field_at;
    let fields_at = p.fields_at.clone();
    for (i, field) in p.kind.fields_mut().into_iter().enumerate() {
        let (at, key_path) = match fields_at.get(i) {
            Some(at) => (*at, format!("correlation.fields[{i}]")),
            None => (field_at.unwrap_or((0, 0)), "correlation.condition.field".to_string()),
        };
        rename_measured(field, at, &key_path, &p.refs, logsources, pipelines, sink);
    }
}

/// Renames a field every referenced rule's events are read by (the measured field, a
/// new_term's term fields): it must map to one path, the same for every rule.
fn rename_measured(field: &mut FieldPath, at: (usize, usize), key_path: &str, refs: &[(String, usize, usize)], logsources: &[Option<LogSource>], pipelines: &Pipelines, sink: &mut Sink) {
    let mut mapped: Vec<(&str, FieldPath)> = Vec::new();
    for ((r, _, _), ls) in refs.iter().zip(logsources) {
        let Some(ls) = ls else { continue };
        match pipelines.rename(ls, field).as_slice() {
            [one] => mapped.push((r, one.clone())),
            paths => {
                let list: Vec<&str> = paths.iter().map(FieldPath::as_str).collect();
                sink.error_hint(
                    "R209",
                    at,
                    key_path,
                    format!("the pipelines map `{field}` to several paths for rule `{r}` ({}); a correlation reads one path per field", list.join(", ")),
                    format!("give `{field}` a single target in a `field_name_mapping` for that rule's logsource"),
                );
                return;
            }
        }
    }
    match mapped.first() {
        Some((_, first)) if mapped.iter().all(|(_, f)| f == first) => *field = first.clone(),
        Some(_) => {
            let list: Vec<String> = mapped.iter().map(|(r, f)| format!("`{r}` → {f}")).collect();
            sink.error_hint(
                "R209",
                at,
                key_path,
                format!("the pipelines map `{field}` differently for the referenced rules: {}", list.join(", ")),
                "the measured field must be one path for every rule: map it the same way for their logsources",
            );
        }
        None => {}
    }
}

/// `aliases: {alias: {rule: field, …}, …}`: for each reference in `refs`, the `group-by`
/// with every alias replaced by that rule's field. Every alias used in `group-by` must name
/// a field for every referenced rule (by the name or id written in `rules`); entries for
/// rules not referenced are errors, as are aliases `group-by` does not use (R207).
fn aliases(map: &marked_yaml::types::MarkedMappingNode, refs: &[(String, usize, usize)], group_by: &[FieldPath], sink: &mut Sink) -> Vec<(String, Vec<FieldPath>)> {
    let Some(node) = map.get_node("aliases") else { return Vec::new() };
    let Some(am) = node.as_mapping() else {
        sink.error_hint("R207", pos(node), "correlation.aliases", format!("`aliases` must be a mapping, found {}", kind_name(node)), "e.g. `aliases: {ip: {rule_a: source.ip, rule_b: destination.ip}}`");
        return Vec::new();
    };
    let mut table: Vec<(String, Vec<(String, FieldPath)>)> = Vec::new();
    for (alias, fields) in am.iter() {
        let kp = format!("correlation.aliases.{}", alias.as_str());
        if !group_by.iter().any(|g| g.as_str() == alias.as_str()) {
            sink.error_hint("R207", spos(alias), &kp, format!("alias `{}` is not used in `group-by`", alias.as_str()), "add it to `group-by` or remove it");
            continue;
        }
        let Some(fm) = fields.as_mapping() else {
            sink.error_hint("R207", pos(fields), &kp, "an alias maps each referenced rule to a field", "e.g. `ip: {rule_a: source.ip, rule_b: destination.ip}`");
            continue;
        };
        let mut per_rule = Vec::new();
        for (rule, field) in fm.iter() {
            let rkp = format!("{kp}.{}", rule.as_str());
            if !refs.iter().any(|(r, _, _)| r == rule.as_str()) {
                sink.error_hint("R207", spos(rule), &rkp, format!("`{}` is not one of this correlation's `rules`", rule.as_str()), "name the rules as they are written in `rules`");
                continue;
            }
            match field.as_scalar().filter(|f| !f.as_str().is_empty()) {
                Some(f) => per_rule.push((rule.as_str().to_string(), FieldPath::new(f.as_str()))),
                None => sink.error("R207", pos(field), &rkp, "an alias entry must be a field name"),
            }
        }
        for (r, _, _) in refs {
            if !fm.iter().any(|(k, _)| k.as_str() == r) {
                sink.error_hint("R207", spos(alias), &kp, format!("alias `{}` has no field for rule `{r}`", alias.as_str()), format!("add `{r}: <field>` under it"));
            }
        }
        table.push((alias.as_str().to_string(), per_rule));
    }
    refs.iter()
        .map(|(r, _, _)| {
            let fields = group_by
                .iter()
                .map(|g| {
                    table
                        .iter()
                        .find(|(a, _)| a == g.as_str())
                        .and_then(|(_, per)| per.iter().find(|(rule, _)| rule == r))
                        .map_or_else(|| g.clone(), |(_, f)| f.clone())
                })
                .collect();
            (r.clone(), fields)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_str, Diagnostic, RuleKind};

    fn t(ops: &[(ThresholdOp, f64)]) -> Threshold {
        Threshold { ops: ops.to_vec() }
    }

    #[test]
    fn threshold_crossing() {
        let gte = t(&[(ThresholdOp::Gte, 3.0)]);
        assert!(!gte.is_met(2.0) && gte.is_met(3.0));
        assert!(gte.crossed(Some(2.0), Some(3.0)));
        assert!(gte.crossed(None, Some(3.0)));
        assert!(!gte.crossed(Some(3.0), Some(4.0)));
        assert!(!gte.crossed(Some(1.0), Some(2.0)));
        let lt = t(&[(ThresholdOp::Lt, 3.0)]);
        assert!(lt.crossed(Some(3.0), Some(2.0)), "falling under the bound");
        assert!(lt.crossed(None, Some(1.0)), "a first event under the bound");
        assert!(!lt.crossed(Some(1.0), None), "an emptied window is not measured");
        let range = t(&[(ThresholdOp::Gt, 100.0), (ThresholdOp::Lte, 200.0)]);
        assert!(!range.is_met(100.0) && range.is_met(150.0) && range.is_met(200.0) && !range.is_met(201.0));
    }

    #[test]
    fn satisfiability_knows_counts_are_whole_and_positive() {
        assert!(!t(&[(ThresholdOp::Lt, 1.0)]).satisfiable(1.0, true));
        assert!(!t(&[(ThresholdOp::Eq, 0.0)]).satisfiable(1.0, true));
        assert!(t(&[(ThresholdOp::Lte, 1.0)]).satisfiable(1.0, true));
        assert!(!t(&[(ThresholdOp::Gt, 2.0), (ThresholdOp::Lt, 3.0)]).satisfiable(1.0, true));
        assert!(t(&[(ThresholdOp::Gt, 2.0), (ThresholdOp::Lt, 3.0)]).satisfiable(f64::MIN, false));
        assert!(!t(&[(ThresholdOp::Gt, 5.0), (ThresholdOp::Lt, 5.0)]).satisfiable(f64::MIN, false));
        assert!(t(&[(ThresholdOp::Gte, 5.0), (ThresholdOp::Lte, 5.0)]).satisfiable(f64::MIN, false));
        assert!(t(&[(ThresholdOp::Neq, 2.0), (ThresholdOp::Gte, 2.0), (ThresholdOp::Lte, 3.0)]).satisfiable(1.0, true));
        assert!(!t(&[(ThresholdOp::Neq, 2.0), (ThresholdOp::Gte, 2.0), (ThresholdOp::Lte, 2.0)]).satisfiable(1.0, true));
        assert!(t(&[(ThresholdOp::Lt, -3.5)]).satisfiable(f64::MIN, false));
    }

    const BASE: &str = "title: Transfer\nname: transfer\ndetection:\n  s:\n    action: transfer\n  condition: s\n---\ntitle: C\nid: c\ncorrelation:\n";

    fn corr(body: &str) -> Correlation {
        let set = load_str("c.yml", &format!("{BASE}{body}")).unwrap_or_else(|d| panic!("{d}"));
        match &set.rules[1].kind {
            RuleKind::Correlation(c) => c.clone(),
            RuleKind::Detection(_) => panic!("rule 1 is a detection"),
        }
    }

    fn errs(body: &str) -> Vec<Diagnostic> {
        load_str("c.yml", &format!("{BASE}{body}")).map(|_| ()).expect_err("must not load").0
    }

    const HEAD: &str = "  type: TYPE\n  rules: [transfer]\n  group-by: [user]\n  timespan: 1h\n  condition:\n";

    fn head(ty: &str) -> String {
        HEAD.replace("TYPE", ty)
    }

    #[test]
    fn parses_value_aggregates_and_ranges() {
        let c = corr(&format!("{}    field: bytes\n    gt: 100.5\n    lte: 200\n", head("value_sum")));
        assert_eq!(c.kind, CorrelationType::ValueSum { field: FieldPath::new("bytes") });
        assert_eq!(c.threshold.ops, vec![(ThresholdOp::Gt, 100.5), (ThresholdOp::Lte, 200.0)]);
        let c = corr(&format!("{}    field: bytes\n    lt: -2\n", head("value_avg")));
        assert_eq!(c.kind, CorrelationType::ValueAvg { field: FieldPath::new("bytes") });
        assert_eq!(c.threshold.ops, vec![(ThresholdOp::Lt, -2.0)]);
        let c = corr(&format!("{}    field: bytes\n    percentile: 95\n    gte: 1000\n", head("value_percentile")));
        assert_eq!(c.kind, CorrelationType::ValuePercentile { field: FieldPath::new("bytes"), percentile: 95 });
        let c = corr(&format!("{}    field: bytes\n    neq: 0\n", head("value_median")));
        assert_eq!(c.kind, CorrelationType::ValueMedian { field: FieldPath::new("bytes") });
        let c = corr(&format!("{}    lte: 2\n", head("event_count")));
        assert_eq!(c.threshold.ops, vec![(ThresholdOp::Lte, 2.0)]);
        let c = corr(&format!("{}    field: user\n    eq: 3\n", head("value_count")));
        assert_eq!(c.threshold.ops, vec![(ThresholdOp::Eq, 3.0)]);
    }

    #[test]
    fn condition_diagnostics_have_positions_and_codes() {
        // Line numbers: `correlation:` is on line 10, `type` on 11, `condition` on 15, the
        // first condition key on 16.
        let one = |body: String| {
            let e = errs(&body);
            assert_eq!(e.len(), 1, "{e:#?}");
            e.into_iter().next().unwrap()
        };
        let e = one(format!("{}    field: bytes\n    gte: 10\n", head("value_percentile")));
        assert_eq!((e.code, e.line, e.column, e.key_path.as_str()), ("R206", 11, 9, "correlation.condition"));
        let e = one(format!("{}    field: bytes\n    percentile: 101\n    gte: 10\n", head("value_percentile")));
        assert_eq!((e.code, e.line, e.column), ("R206", 17, 17));
        let e = one(format!("{}    field: bytes\n    percentile: 90\n    gte: 10\n", head("value_sum")));
        assert_eq!((e.code, e.line, e.column), ("R206", 17, 5));
        let e = one(format!("{}    gte: 10\n", head("value_avg")));
        assert_eq!((e.code, e.message.as_str()), ("R201", "value_avg needs the field it measures"));
        let e = one(format!("{}    gte: 2.5\n", head("event_count")));
        assert_eq!((e.code, e.line, e.column), ("R204", 16, 10));
        let e = one(format!("{}    field: b\n    gte: many\n", head("value_sum")));
        assert_eq!((e.code, e.line, e.column, e.key_path.as_str()), ("R204", 17, 10, "correlation.condition.gte"));
        let e = one(format!("{}    gte: 2\n    gt: 3\n", head("event_count")));
        assert_eq!((e.code, e.line, e.column), ("R204", 17, 5));
        let e = one(format!("{}    eq: 2\n    lt: 3\n", head("event_count")));
        assert_eq!(e.code, "R204");
        let e = one(format!("{}    lt: 1\n", head("event_count")));
        assert_eq!((e.code, e.line, e.column, e.message.as_str()), ("R204", 15, 3, "this condition can never be met"));
        assert!(e.hint.unwrap().contains("absence"));
        let e = one(format!("{}    field: b\n    gt: 5\n    lt: 5\n", head("value_avg")));
        assert_eq!(e.code, "R204");
        let e = one(format!("{}    field: b\n    above: 5\n", head("value_avg")));
        assert_eq!((e.code, e.line, e.column), ("R201", 17, 5));
        let e = one(head("value_mode") + "    gte: 1\n");
        assert_eq!((e.code, e.line, e.column), ("R200", 11, 9));
        assert!(e.hint.unwrap().contains("value_percentile"));
    }

    const TWO: &str = "title: Conn\nname: conn\ndetection:\n  s:\n    kind: conn\n  condition: s\n---\ntitle: Err\nid: err-id\ndetection:\n  s:\n    kind: err\n  condition: s\n---\ntitle: C\nid: c\ncorrelation:\n";

    fn two(body: &str) -> Result<Correlation, Vec<Diagnostic>> {
        let set = load_str("t.yml", &format!("{TWO}{body}")).map_err(|d| d.0)?;
        match &set.rules[2].kind {
            RuleKind::Correlation(c) => Ok(c.clone()),
            RuleKind::Detection(_) => panic!("rule 2 is a detection"),
        }
    }

    #[test]
    fn temporal_types_default_to_all_rules_and_take_counts() {
        let c = two("  type: temporal\n  rules: [conn, err-id]\n  group-by: [host]\n  timespan: 5m\n").unwrap();
        assert_eq!((c.kind, c.threshold.ops.clone()), (CorrelationType::Temporal, vec![(ThresholdOp::Gte, 2.0)]));
        assert_eq!(c.rules, vec![0, 1]);
        let c = two("  type: temporal_ordered\n  rules: [err-id, conn]\n  timespan: 5m\n  condition: {gte: 1}\n").unwrap();
        assert_eq!((c.kind, c.rules), (CorrelationType::TemporalOrdered, vec![1, 0]));
        let e = two("  type: temporal\n  rules: [conn, err-id]\n  timespan: 5m\n  condition: {gte: 3}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].column), ("R204", 21, 3));
        let e = two("  type: temporal\n  rules: [conn, err-id]\n  timespan: 5m\n  condition: {field: x, gte: 2}\n").unwrap_err();
        assert_eq!(e[0].code, "R201");
    }

    #[test]
    fn aliases_give_each_rule_its_own_group_fields() {
        let body = "  type: temporal\n  rules: [conn, err-id]\n  group-by: [ip, user]\n  timespan: 5m\n  aliases:\n    ip:\n      conn: source.ip\n      err-id: destination.ip\n";
        let c = two(body).unwrap();
        assert_eq!(c.group_by, vec![FieldPath::new("ip"), FieldPath::new("user")]);
        assert_eq!(
            c.group_by_per_rule,
            vec![
                ("conn".to_string(), vec![FieldPath::new("source.ip"), FieldPath::new("user")]),
                ("err-id".to_string(), vec![FieldPath::new("destination.ip"), FieldPath::new("user")]),
            ]
        );
        // A rule without its field, an alias group-by does not use, a rule not referenced.
        let e = two(&body.replace("      err-id: destination.ip\n", "")).unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].column, e[0].key_path.as_str()), ("R207", 23, 5, "correlation.aliases.ip"));
        assert!(e[0].message.contains("no field for rule `err-id`"), "{}", e[0].message);
        let e = two(&body.replace("[ip, user]", "[user]")).unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].column), ("R207", 23, 5));
        let e = two(&body.replace("      err-id: destination.ip\n", "      err-id: destination.ip\n      other: x\n")).unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].column, e[0].key_path.as_str()), ("R207", 26, 7, "correlation.aliases.ip.other"));
        let e = two(&body.replace("    ip:\n      conn: source.ip\n      err-id: destination.ip\n", "    ip: [source.ip]\n")).unwrap_err();
        assert_eq!(e[0].code, "R207");
    }

    #[test]
    fn windows_are_sliding_or_tumbling() {
        let c = corr(&format!("{}    gte: 2\n", head("event_count")));
        assert_eq!(c.window, WindowKind::Sliding);
        let c = corr(&format!("{}    gte: 2\n  window: tumbling\n", head("event_count")));
        assert_eq!(c.window, WindowKind::Tumbling);
        let c = corr(&format!("{}    gte: 2\n  window: session(30s)\n", head("event_count")));
        assert_eq!(c.window, WindowKind::Session(Duration::from_secs(30)));
        let e = errs(&format!("{}    gte: 2\n  window: session(5h)\n", head("event_count")));
        assert_eq!((e[0].code, e[0].line, e[0].column), ("R208", 17, 11));
        assert!(e[0].message.contains("longer than `timespan`"), "{}", e[0].message);
        let e = errs(&format!("{}    gte: 2\n  window: session 5m\n", head("event_count")));
        assert_eq!((e[0].code, e[0].line, e[0].column), ("R208", 17, 11));
        let e = errs(&format!("{}    gte: 2\n  window: session(0s)\n", head("event_count")));
        assert_eq!(e[0].code, "R208");
        let e = errs(&format!("{}    gte: 2\n  window: hopping\n", head("event_count")));
        assert_eq!((e[0].code, e[0].line, e[0].column), ("R208", 17, 11));
    }

    #[test]
    fn absence_takes_two_rules_and_no_condition() {
        let c = two("  type: absence\n  rules: [conn, err-id]\n  group-by: [host]\n  timespan: 5m\n").unwrap();
        assert_eq!((c.kind, c.rules), (CorrelationType::Absence, vec![0, 1]));
        let e = two("  type: absence\n  rules: [conn]\n  timespan: 5m\n").unwrap_err();
        assert_eq!((e[0].code, e[0].key_path.as_str()), ("R201", "correlation.rules"));
        let e = two("  type: absence\n  rules: [conn, err-id]\n  timespan: 5m\n  condition: {gte: 1}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].column), ("R201", 21, 15));
    }

    #[test]
    fn deadman_takes_a_silence_and_no_condition_or_window() {
        let c = two("  type: deadman\n  rules: [conn, err-id]\n  group-by: [host]\n  timespan: 15m\n").unwrap();
        assert_eq!((c.kind, c.rules, c.timespan), (CorrelationType::Deadman, vec![0, 1], Duration::from_secs(900)));
        let e = two("  type: deadman\n  rules: [conn]\n  timespan: 5m\n  condition: {gte: 1}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].key_path.as_str()), ("R201", "correlation.condition"));
        let e = two("  type: deadman\n  rules: [conn]\n  timespan: 5m\n  window: tumbling\n").unwrap_err();
        assert_eq!((e[0].code, e[0].key_path.as_str()), ("R208", "correlation.window"));
        let e = two("  type: deadman\n  rules: [conn]\n").unwrap_err();
        assert!(e[0].message.contains("timespan"), "{}", e[0].message);
        // Session windows only where a session's measure means something.
        let e = two("  type: absence\n  rules: [conn, err-id]\n  timespan: 5m\n  window: session(1m)\n").unwrap_err();
        assert_eq!((e[0].code, e[0].key_path.as_str()), ("R208", "correlation.window"));
        assert!(e[0].message.contains("absence has no session windows"), "{}", e[0].message);
    }

    /// Two detections with their own logsources, a correlation over them, and the pipeline.
    fn piped(pipeline: &str, body: &str) -> Result<crate::RuleSet, Vec<Diagnostic>> {
        let p = crate::Pipeline::parse("p.yml", pipeline).unwrap_or_else(|d| panic!("{d}"));
        let text = format!(
            "title: Fw\nname: fw\nlogsource:\n  product: fw\ndetection:\n  s:\n    Action: deny\n  condition: s\n---\n\
title: Proxy\nname: proxy\nlogsource:\n  product: proxy\ndetection:\n  s:\n    Action: block\n  condition: s\n---\n\
title: C\nid: c\ncorrelation:\n{body}"
        );
        crate::load_sources_with(&[("c.yml".to_string(), text)], &crate::Pipelines::new(vec![p])).map_err(|d| d.0)
    }

    fn corr_of(set: &crate::RuleSet, i: usize) -> Correlation {
        match &set.rules[i].kind {
            RuleKind::Correlation(c) => c.clone(),
            RuleKind::Detection(_) => panic!("rule {i} is a detection"),
        }
    }

    const MAP_IP: &str = "name: m\ntransformations:\n  - type: field_name_mapping\n    mapping:\n      SourceIp: details.sourceipaddress\n      Bytes: details.bytes\n";

    #[test]
    fn pipelines_rename_group_by_per_rule_and_alerts_keep_the_names() {
        let set = piped(MAP_IP, "  type: event_count\n  rules: fw\n  group-by: [SourceIp, host]\n  timespan: 5m\n  condition: {gte: 3}\n").unwrap();
        let c = corr_of(&set, 2);
        assert_eq!(c.group_by, vec![FieldPath::new("SourceIp"), FieldPath::new("host")], "alerts show the names as written");
        assert_eq!(c.group_by_per_rule, vec![("fw".to_string(), vec![FieldPath::new("details.sourceipaddress"), FieldPath::new("host")])]);
        // The same field in the Action of both rules is renamed too (a detection field).
        let RuleKind::Detection(d) = &set.rules[0].kind else { panic!("rule 0 is a detection") };
        assert!(d.matches_doc(serde_json::json!({"Action": "deny"}).as_object().unwrap()), "Action is not mapped");
        // Without a mapping that touches them, nothing changes.
        let set = piped(MAP_IP, "  type: event_count\n  rules: fw\n  group-by: [host]\n  timespan: 5m\n  condition: {gte: 3}\n").unwrap();
        assert!(corr_of(&set, 2).group_by_per_rule.is_empty());
    }

    #[test]
    fn pipelines_follow_each_referenced_rules_logsource_and_aliases() {
        let pipeline = "name: m\ntransformations:\n  - type: field_name_mapping\n    mapping: {SourceIp: fw.src, Bytes: fw.bytes}\n    rule_conditions: [{type: logsource, product: fw}]\n  - type: field_name_mapping\n    mapping: {SourceIp: proxy.client, Bytes: proxy.bytes}\n    rule_conditions: [{type: logsource, product: proxy}]\n";
        let set = piped(pipeline, "  type: temporal\n  rules: [fw, proxy]\n  group-by: [SourceIp]\n  timespan: 5m\n").unwrap();
        assert_eq!(
            corr_of(&set, 2).group_by_per_rule,
            vec![("fw".to_string(), vec![FieldPath::new("fw.src")]), ("proxy".to_string(), vec![FieldPath::new("proxy.client")])],
            "a rule's events are read where its logsource keeps the field"
        );
        // Alias fields are renamed, alias names are not.
        let set = piped(pipeline, "  type: temporal\n  rules: [fw, proxy]\n  group-by: [ip]\n  timespan: 5m\n  aliases:\n    ip: {fw: SourceIp, proxy: dst}\n").unwrap();
        let c = corr_of(&set, 2);
        assert_eq!(c.group_by, vec![FieldPath::new("ip")]);
        assert_eq!(c.group_by_per_rule, vec![("fw".to_string(), vec![FieldPath::new("fw.src")]), ("proxy".to_string(), vec![FieldPath::new("dst")])]);
        // The measured field is one for all rules: mapped alike it is renamed, else R209.
        let set = piped(MAP_IP, "  type: value_sum\n  rules: [fw, proxy]\n  timespan: 5m\n  condition: {field: Bytes, gt: 100}\n").unwrap();
        assert_eq!(corr_of(&set, 2).kind, CorrelationType::ValueSum { field: FieldPath::new("details.bytes") });
        let e = piped(pipeline, "  type: value_sum\n  rules: [fw, proxy]\n  timespan: 5m\n  condition: {field: Bytes, gt: 100}\n").unwrap_err();
        assert_eq!((e[0].code, e[0].line, e[0].column, e[0].key_path.as_str()), ("R209", 25, 22, "correlation.condition.field"));
        assert!(e[0].message.contains("`fw` → fw.bytes") && e[0].message.contains("`proxy` → proxy.bytes"), "{}", e[0].message);
    }

    #[test]
    fn a_field_mapped_to_several_paths_is_refused_where_it_is_written() {
        let pipeline = "name: m\ntransformations:\n  - type: field_name_prefix\n    prefix: [a., b.]\n";
        let e = piped(pipeline, "  type: event_count\n  rules: fw\n  group-by: [host, SourceIp]\n  timespan: 5m\n  condition: {gte: 3}\n").unwrap_err();
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!((e[0].code, e[0].line, e[0].column, e[0].key_path.as_str()), ("R209", 24, 14, "correlation.group-by[0]"));
        assert_eq!((e[1].code, e[1].line, e[1].column), ("R209", 24, 20));
        assert!(e[1].message.contains("(a.SourceIp, b.SourceIp)"), "{}", e[1].message);
    }

    #[test]
    fn a_chained_correlation_reads_the_inner_alerts_names_unrenamed() {
        let body = "  type: event_count\n  rules: fw\n  group-by: [SourceIp]\n  timespan: 5m\n  condition: {gte: 3}\n---\ntitle: Outer\nid: outer\ncorrelation:\n  type: event_count\n  rules: c\n  group-by: [SourceIp]\n  timespan: 1h\n  condition: {gte: 2}\n";
        let set = piped(MAP_IP, body).unwrap();
        assert_eq!(corr_of(&set, 2).group_by_per_rule[0].1, vec![FieldPath::new("details.sourceipaddress")]);
        assert!(corr_of(&set, 3).group_by_per_rule.is_empty(), "the inner alert's group holds `SourceIp`");
    }
}
