//! `rampart-rules`: rule files in, a validated and compiled [`RuleSet`] out.
//!
//! Rules are a superset of Sigma (spec v2): detection rules with selections, modifiers and a
//! condition; correlation rules (`event_count`, `value_count`, `value_sum`, `value_avg`,
//! `value_percentile`, `value_median`, `temporal`, `temporal_ordered`, with `aliases` and
//! chains; Rampart's `absence`, `new_term`, `spike`, `sequence` and tumbling windows); plus Rampart's `summary`, `severity`,
//! `category`, `suppress` and in-file `tests`. Loading is parse → validate → compile to
//! plain data; nothing here knows about dataflows, so `rampart rules validate`
//! runs in milliseconds and the plan is tested as data.
//!
//! Modules, in the order data flows through them:
//! - [`yaml`](crate::yaml) (private): span-preserving YAML documents and the diagnostic sink.
//! - [`load`](crate::load) (private): top-level keys, rule assembly, cross-file references.
//! - [`detection`]: selections and field conditions compiled to a [`Detection`] matcher.
//! - [`matcher`]: the value matchers (wildcards, regex, CIDR, numbers) and their hot path.
//! - [`pipeline`]: logsource processing pipelines (pySigma-style YAML) that add event
//!   conditions and rename fields at load time; the built-ins are embedded.
//! - [`condition`]: the condition language (`sel and not 1 of filter_*`).
//! - [`correlation`]: [`Correlation`] plans and [`Threshold`]s.
//! - [`stateful`]: the keys of Rampart's `new_term` and `spike` correlations.
//! - [`sequence`]: Rampart's `sequence` correlation: steps, per-step keys, inline detections.
//! - [`template`]: [`Template`], alert summaries with `{{ field }}` placeholders.
//! - [`error`]: [`Diagnostic`]s with file, line, column, rule id, key path, code and hint.
//!
//! ```
//! let set = rampart_rules::load_str("ssh.yml", r#"
//! title: SSH login as root
//! id: ssh-root
//! detection:
//!   selection:
//!     details.username: root
//!     summary|contains: 'Accepted password'
//!   condition: selection
//! "#).expect("valid rule");
//! let rampart_rules::RuleKind::Detection(det) = &set.rules[0].kind else { unreachable!() };
//! let event = serde_json::json!({"summary": "accepted password for root", "details": {"username": "root"}});
//! assert!(det.matches_doc(event.as_object().expect("object")));
//!
//! let err = rampart_rules::load_str("bad.yml", "title: t\ndetection:\n  s:\n    a|contians: x\n  condition: s\n").unwrap_err();
//! assert_eq!(err.0[0].code, "R104");
//! assert_eq!((err.0[0].line, err.0[0].column), (4, 6));
//! ```
//!
//! Diagnostic codes (stable): R000 unreadable file, R001 YAML syntax, R002 document shape,
//! R003 missing/ill-typed key, R005 unknown key that looks like a typo, W001 unknown key,
//! R006 duplicate id/name, R007 level, R008 severity, R009 suppress, R100 detection shape,
//! R101 selection shape, R102 field value, R104 unknown modifier, R105 regex, R106 CIDR,
//! R107 numeric comparison, R108 exists, R109 modifier combination / unsupported modifier,
//! R110 condition syntax, R111 undefined selection, R112 pattern matches nothing,
//! R113 Sigma v1 aggregation, R114 `expand` placeholder without configured values,
//! R200 unsupported correlation type, R201 correlation shape, R202 unknown rule reference,
//! R203 correlation cycle, R204 threshold (not a number, two bounds on one side, never
//! met), R205 timespan, R206 `percentile`, R207 `aliases`, R208 `window`, R209 correlation field a pipeline cannot map to one path, R210 `sequence` shape (steps, `by`, `until`, `maxspan`), R300 template
//! syntax, R301 template placeholder not allowed, R400 `tests` shape. Pipeline files: P001
//! pipeline shape, P002 unknown key, P003 unknown transformation type, P004 transformation
//! shape, P005 rule/field-name condition, P006 unknown pipeline (not a built-in, unreadable
//! file), P007 `vars`.

pub mod condition;
pub mod correlation;
pub mod detection;
pub mod error;
mod load;
pub mod matcher;
pub mod pipeline;
pub mod sequence;
pub mod stateful;
pub mod prefilter;
pub mod template;
mod yaml;

pub use correlation::{Correlation, CorrelationType, SpikeDirection, SpikeParams, Threshold, ThresholdOp, WindowKind};
pub use detection::{Detection, LogSource};
pub use error::{Diagnostic, Diagnostics, Severity};
pub use load::{load_paths, load_paths_with, load_sources, load_sources_with, load_str};
pub use pipeline::{Pipeline, Pipelines};
pub use prefilter::RuleMatcher;
pub use template::Template;

use std::time::Duration;

/// Where a rule or test starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceLoc {
    /// File name as given to the loader.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

/// Every loaded rule plus the warnings found while loading.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    /// Rules in load order (files in the order given, directory entries sorted, documents in order).
    pub rules: Vec<Rule>,
    /// Warnings (e.g. unknown top-level keys); errors never reach a `RuleSet`.
    pub warnings: Vec<Diagnostic>,
}

impl RuleSet {
    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Position of the rule with this id in [`RuleSet::rules`].
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// One validated, compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Sigma `id`, else `name`, else `<file>#<document index from 0>`; unique in the set.
    pub id: String,
    /// Sigma `name` (what correlations usually reference).
    pub name: Option<String>,
    /// `title`.
    pub title: String,
    /// Sigma `level`: informational, low, medium, high or critical.
    pub level: Option<String>,
    /// MozDef severity: INFO, NOTICE, WARNING, ERROR or CRITICAL.
    pub severity: String,
    /// Alert category: explicit `category:` else `detection` / `correlation`.
    pub category: String,
    /// Sigma tags.
    pub tags: Vec<String>,
    /// Alert summary template (default: the title).
    pub summary: Template,
    /// Do not repeat an alert for the same rule and group within this long.
    pub suppress: Option<Duration>,
    /// The fields that make an alert's group: a correlation's `group-by`, or for a
    /// detection rule Rampart's top-level `group-by` (empty: the rule is one group).
    pub group_by: Vec<rampart_core::FieldPath>,
    /// For a detection rule, where its events keep the `group_by` fields: the same fields
    /// renamed by the pipelines for the rule's logsource (alerts still name them as written).
    /// Empty for a correlation (its per-rule paths are in the [`Correlation`]).
    pub read_group_by: Vec<rampart_core::FieldPath>,
    /// Does a match produce an alert of its own? (Detections referenced by correlations
    /// do only when some referencing correlation says `generate: true`.)
    pub generate: bool,
    /// Where the rule's document starts.
    pub loc: SourceLoc,
    /// Detection or correlation.
    pub kind: RuleKind,
    /// In-file tests.
    pub tests: Vec<RuleTest>,
    /// For a sequence's inline step (`<id>#stepN`, `<id>#until`): the sequence's id. Such a
    /// rule is tested through its sequence's tests.
    pub part_of: Option<String>,
}

/// What a rule does.
#[derive(Clone, Debug)]
pub enum RuleKind {
    /// Matches single events.
    Detection(Detection),
    /// Counts matches of detection rules in windows.
    Correlation(Correlation),
}

/// An in-file test: feed `events`, expect exactly `expect`.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleTest {
    /// `name`.
    pub name: String,
    /// Raw event documents.
    pub events: Vec<serde_json::Value>,
    /// Expected alerts; empty means no alert.
    pub expect: Vec<ExpectedAlert>,
    /// Where the test starts.
    pub loc: SourceLoc,
}

/// One expected alert; absent fields are not checked.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ExpectedAlert {
    /// Rule id or name (default: the rule holding the test).
    pub rule: Option<String>,
    /// Group-by values.
    pub group: serde_json::Map<String, serde_json::Value>,
    /// The alert's value (count, distinct count, sum, mean, percentile).
    pub value: Option<f64>,
    /// Rendered summary.
    pub summary: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RuleSet>();
        check::<Rule>();
        check::<Diagnostics>();
    }
}
