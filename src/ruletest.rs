//! `rampart rules test`: runs the `tests:` written inside rule files through the real engine.
//!
//! Each test's events are normalized like live input (events without a time get
//! `2026-01-01T00:00:00Z` plus one second per position) and replayed through a fresh engine
//! holding the whole loaded rule set, so correlations over rules in other files work. The
//! alerts of the rule carrying the test, plus those of any rule an expectation names, must
//! match the expectations one to one: same number, and each expectation's `group` (a
//! subset), `value` and `summary` equal to a distinct alert's.

use anyhow::Result;
use rampart_core::{Alert, Event, EventId, EventTime, Normalizer, NormalizerConfig};
use rampart_engine::EngineConfig;
use rampart_rules::{ExpectedAlert, Rule, RuleSet, RuleTest};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Base time for test events that carry none.
const TEST_EPOCH_MS: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// The result of one inline test.
#[derive(Debug)]
pub struct Outcome {
    /// `file:line` of the rule.
    pub location: String,
    /// The rule's title.
    pub rule_title: String,
    /// The test's name.
    pub test: String,
    /// Empty when the test passed; otherwise what differed.
    pub failures: Vec<String>,
}

impl Outcome {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every inline test of every rule in `rules`.
pub fn run_all(rules: &Arc<RuleSet>, workers: usize) -> Result<Vec<Outcome>> {
    let mut out = Vec::new();
    for rule in &rules.rules {
        for test in &rule.tests {
            out.push(run_one(rules, rule, test, workers)?);
        }
    }
    Ok(out)
}

fn has_time(v: &Value) -> bool {
    let Some(obj) = v.as_object() else { return false };
    rampart_core::normalize::SYNONYMS[0].1.iter().any(|k| obj.contains_key(*k))
}

/// Builds the events of one test.
pub fn test_events(rule: &Rule, test: &RuleTest) -> Vec<Event> {
    let normalizer = Normalizer::new(NormalizerConfig::default());
    let origin = format!("test:{}:{}", rule.id, test.name);
    let mut events = Vec::new();
    for (i, raw) in test.events.iter().enumerate() {
        let mut raw = raw.clone();
        if !has_time(&raw) {
            if let Some(obj) = raw.as_object_mut() {
                let t = EventTime(TEST_EPOCH_MS + 1000 * i as u64);
                obj.insert("utctimestamp".into(), Value::String(t.to_rfc3339()));
            }
        }
        let bytes = raw.to_string();
        let id = EventId::derive(&origin, i as u64, bytes.as_bytes());
        // Shapes were validated at load; a non-object cannot get here, but stay total.
        if let Ok(ev) = normalizer.normalize_at(raw, id, EventTime(TEST_EPOCH_MS)) {
            events.push(ev);
        }
    }
    events
}

fn run_one(rules: &Arc<RuleSet>, rule: &Rule, test: &RuleTest, workers: usize) -> Result<Outcome> {
    let events = test_events(rule, test);
    // Tests list events in any order; a day of lateness lets all of them correlate.
    let cfg = EngineConfig { workers, lateness: Duration::from_secs(86_400), ..EngineConfig::default() };
    let alerts = rampart_engine::replay(rules.clone(), cfg, events)?;

    let mut considered: BTreeSet<String> = BTreeSet::new();
    considered.insert(rule.id.clone());
    let mut failures = Vec::new();
    for e in &test.expect {
        if let Some(r) = &e.rule {
            match resolve(rules, r) {
                Some(id) => {
                    considered.insert(id);
                }
                None => failures.push(format!("expectation names rule `{r}`, which is not loaded")),
            }
        }
    }
    let relevant: Vec<&Alert> = alerts.iter().filter(|a| considered.contains(&a.rule.id)).collect();
    failures.extend(compare(rules, rule, &test.expect, &relevant));
    Ok(Outcome {
        location: format!("{}:{}", rule.loc.file, rule.loc.line),
        rule_title: rule.title.clone(),
        test: test.name.clone(),
        failures,
    })
}

fn resolve(rules: &RuleSet, name_or_id: &str) -> Option<String> {
    rules.rules.iter().find(|r| r.id == name_or_id || r.name.as_deref() == Some(name_or_id)).map(|r| r.id.clone())
}

fn loosely_equal(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), Value::String(a)) => e == a,
        (Value::String(e), a) | (a, Value::String(e)) => a.to_string().as_str() == e.as_str(),
        (e, a) => e == a,
    }
}

fn satisfies(rules: &RuleSet, default_rule: &Rule, e: &ExpectedAlert, a: &Alert) -> bool {
    let rule_id = e.rule.as_deref().and_then(|r| resolve(rules, r)).unwrap_or_else(|| default_rule.id.clone());
    a.rule.id == rule_id
        && e.group.iter().all(|(k, v)| a.group.get(k).is_some_and(|av| loosely_equal(v, av)))
        && e.value.is_none_or(|v| v == a.value)
        && e.summary.as_ref().is_none_or(|s| *s == a.summary)
}

fn describe(a: &Alert) -> String {
    format!(
        "{} at {} group={} value={} summary={:?}",
        a.rule.id,
        a.utctimestamp,
        Value::Object(a.group.clone()),
        a.value,
        a.summary
    )
}

fn compare(rules: &RuleSet, rule: &Rule, expect: &[ExpectedAlert], actual: &[&Alert]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut used = vec![false; actual.len()];
    for (i, e) in expect.iter().enumerate() {
        match (0..actual.len()).find(|j| !used[*j] && satisfies(rules, rule, e, actual[*j])) {
            Some(j) => used[j] = true,
            None => failures.push(format!(
                "expected alert #{} (rule={}, group={}, value={}, summary={}) did not fire",
                i + 1,
                e.rule.as_deref().unwrap_or(&rule.id),
                Value::Object(e.group.clone()),
                e.value.map_or("any".into(), |v| v.to_string()),
                e.summary.as_deref().map_or("any".into(), |s| format!("{s:?}"))
            )),
        }
    }
    for (j, a) in actual.iter().enumerate() {
        if !used[j] {
            failures.push(format!("unexpected alert: {}", describe(a)));
        }
    }
    failures
}
