//! [`Plan`]: what the dataflow needs to know about the rules, as plain data plus two
//! closures per rule (match, render). Rules are indexed by their position in the rule set;
//! that index is both the correlation slot and the suppression slot.
//!
//! Keeping the dataflow on this narrow shape (instead of the rules crate's types) keeps the
//! rules crate's internals out of the dataflow and lets tests drive the dataflow with
//! hand-made rules.

use rampart_core::{Event, FieldPath};
use rampart_correlation::{Aggregate, Condition, Durations, SequenceSpec, SequenceSpecs, SpikeSpec, SpikeSpecs, Specs, TermSpec, TermSpecs, Window, WindowSpec};
use serde_json::Value;
use std::sync::Arc;

/// Does an event match a detection?
pub(crate) type Matcher = Box<dyn Fn(&Event) -> bool + Send + Sync>;

/// Appends the positions of the detections an event matches, in rule order (the rules
/// crate's prefiltered [`rampart_rules::RuleMatcher`]).
pub(crate) type Selector = Box<dyn Fn(&Event, &mut Vec<usize>) + Send + Sync>;

/// Renders a summary template against a field lookup.
pub(crate) type Renderer = Box<dyn Fn(&dyn Fn(&str) -> Option<String>) -> String + Send + Sync>;

/// One rule, as the dataflow sees it.
pub(crate) struct RulePlan {
    pub id: String,
    pub title: String,
    pub level: Option<String>,
    pub severity: String,
    pub category: String,
    pub tags: Vec<String>,
    pub summary: Renderer,
    /// 0: never suppress.
    pub suppress_ms: u64,
    pub kind: KindPlan,
}

pub(crate) enum KindPlan {
    Detection {
        matcher: Matcher,
        /// Whether a match is an alert of its own (besides feeding correlations).
        generate: bool,
        /// Correlation rules that reference this detection.
        feeds: Vec<Feed>,
        /// Rampart's top-level `group-by`: the alert's group (and so `suppress`'s key), as
        /// written.
        group_by: Vec<FieldPath>,
        /// Where events keep those fields (renamed by pipelines); same length.
        read_group_by: Vec<FieldPath>,
    },
    Correlation {
        /// The rule's `type` as written (`event_count`, `value_median`, …).
        type_name: &'static str,
        /// Whether a crossing is an alert (false for an inner link of a chain).
        generate: bool,
        /// Correlations that reference this one (chains): its crossings feed them.
        feeds: Vec<Feed>,
        /// Its level in a chain: 0 over detections only, else one more than the highest
        /// correlation it references. Each level has its own operator chains.
        level: u32,
        measure: Measure,
        group_by: Vec<FieldPath>,
        /// Sliding or tumbling.
        window: Window,
        window_ms: u64,
        /// When a non-empty window's measure fires.
        condition: Condition,
    },
}

/// A detection's link to a correlation that references it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Feed {
    /// The referencing correlation's index.
    pub slot: u32,
    /// The referenced rule's position in the correlation's `rules` (its step, for temporal
    /// types).
    pub step: u32,
    /// The fields the referenced rule's events (or alert groups) are grouped by when they
    /// differ from the correlation's `group-by` (`aliases`).
    pub group_by: Option<Vec<FieldPath>>,
}

impl Feed {
    /// A feed grouped by the correlation's own `group-by`.
    #[cfg(test)]
    pub fn to(slot: u32, step: u32) -> Feed {
        Feed { slot, step, group_by: None }
    }
}

pub(crate) enum Measure {
    /// `event_count`.
    Events,
    /// `value_count` of this field.
    Distinct(FieldPath),
    /// `value_sum`, `value_avg`, `value_percentile`, `value_median` of this field.
    Numeric(FieldPath, Aggregate),
    /// `temporal`: distinct referenced rules.
    Rules,
    /// `temporal_ordered`: ordered progress through the referenced rules.
    Sequence,
    /// `absence`: the first rule not followed by the second.
    Absence,
    /// `new_term`: these fields (as read: renamed by pipelines) are the term; the
    /// correlation's `group_by` ends with their names as written (the alert shows them).
    NewTerm(Vec<FieldPath>, TermSpec),
    /// `spike`.
    Spike(SpikeSpec),
    /// Rampart's `sequence`: ordered steps (feeds' `step`), the last feed being `until`
    /// when there is one.
    Follow(SequenceSpec),
    /// Rampart's `deadman`: the window is the silence, in processing time.
    Deadman,
}

impl KindPlan {
    /// The alert's `rule.type`.
    pub fn name(&self) -> &'static str {
        match self {
            KindPlan::Detection { .. } => "detection",
            KindPlan::Correlation { type_name, .. } => type_name,
        }
    }
}

/// Every rule, plus the per-slot tables the correlation operators take.
pub(crate) struct Plan {
    pub rules: Vec<RulePlan>,
    /// Indices of detection rules, in order.
    pub detections: Vec<u32>,
    pub specs: Specs,
    pub durations: Durations,
    /// Levels of chained correlations (1 without chains; 0 without correlations).
    pub levels: u32,
    /// new_term specs by slot.
    pub terms: TermSpecs,
    /// spike specs by slot.
    pub spikes: SpikeSpecs,
    /// sequence specs by slot.
    pub sequences: SequenceSpecs,
    /// Which detections an event matches, all at once; without it, each detection's
    /// `matcher` is asked in turn (hand-made plans in tests).
    pub select: Option<Selector>,
}

impl Plan {
    /// Indexes `rules` (the detection list and the per-slot tables).
    pub fn new(rules: Vec<RulePlan>, max_refs: usize) -> Plan {
        let detections = rules.iter().enumerate().filter(|(_, r)| matches!(r.kind, KindPlan::Detection { .. })).map(|(i, _)| i as u32).collect();
        let specs = rules
            .iter()
            .map(|r| match &r.kind {
                KindPlan::Correlation { window, window_ms, condition, measure, .. } => WindowSpec {
                    window: *window,
                    window_ms: *window_ms,
                    condition: condition.clone(),
                    aggregate: match measure {
                        Measure::Numeric(_, a) => *a,
                        Measure::Events | Measure::Distinct(_) | Measure::Rules | Measure::Sequence | Measure::Absence | Measure::NewTerm(..) | Measure::Spike(_) | Measure::Follow(_) | Measure::Deadman => Aggregate::Sum,
                    },
                    max_refs,
                },
                // Never fed: detections have no window.
                KindPlan::Detection { .. } => WindowSpec { window: Window::Sliding, window_ms: 0, condition: Condition::default(), aggregate: Aggregate::Sum, max_refs: 0 },
            })
            .collect();
        let durations = rules.iter().map(|r| r.suppress_ms).collect();
        let levels = rules
            .iter()
            .filter_map(|r| match &r.kind {
                KindPlan::Correlation { level, .. } => Some(level + 1),
                KindPlan::Detection { .. } => None,
            })
            .max()
            .unwrap_or(0);
        let terms = rules
            .iter()
            .map(|r| match &r.kind {
                KindPlan::Correlation { measure: Measure::NewTerm(_, spec), .. } => Some(spec.clone()),
                _ => None,
            })
            .collect();
        let spikes = rules
            .iter()
            .map(|r| match &r.kind {
                KindPlan::Correlation { measure: Measure::Spike(spec), .. } => Some(spec.clone()),
                _ => None,
            })
            .collect();
        let sequences = rules
            .iter()
            .map(|r| match &r.kind {
                KindPlan::Correlation { measure: Measure::Follow(spec), .. } => Some(spec.clone()),
                _ => None,
            })
            .collect();
        Plan {
            rules,
            detections,
            specs: Arc::new(specs),
            durations: Arc::new(durations),
            levels,
            terms: Arc::new(terms),
            spikes: Arc::new(spikes),
            sequences: Arc::new(sequences),
            select: None,
        }
    }
}

impl Plan {
    /// Whether any rule keeps state worth saving (new_term, spike).
    pub fn keeps_state(&self) -> bool {
        self.terms.iter().any(Option::is_some) || self.spikes.iter().any(Option::is_some)
    }

    /// How many stateful operators (new_term, spike) each worker builds: one per type per
    /// level whose rules use it (the dataflow builds only the chains a level uses).
    pub fn stateful_operators(&self) -> usize {
        let mut chains = std::collections::BTreeSet::new();
        for r in &self.rules {
            match &r.kind {
                KindPlan::Correlation { measure: Measure::NewTerm(..), level, .. } => chains.insert((*level, true)),
                KindPlan::Correlation { measure: Measure::Spike(_), level, .. } => chains.insert((*level, false)),
                _ => false,
            };
        }
        chains.len()
    }

    /// A correlation's level in its chain (0 for anything else).
    pub fn level(&self, slot: u32) -> u32 {
        match self.rules.get(slot as usize).map(|r| &r.kind) {
            Some(KindPlan::Correlation { level, .. }) => *level,
            _ => 0,
        }
    }
}

/// A field's value as a template sees it: strings raw, anything else as JSON text.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The group key of an event for a correlation: each group-by field's JSON text, `null`
/// when the event lacks the field (such events are grouped together rather than dropped,
/// as a missing field is itself a value worth correlating on).
pub(crate) fn group_key(event: &Event, group_by: &[FieldPath]) -> Vec<String> {
    group_by.iter().map(|p| event.get(p).map_or_else(|| "null".to_string(), Value::to_string)).collect()
}
