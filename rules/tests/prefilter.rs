//! The prefilter of [`rampart_rules::RuleMatcher`] is exact: over every SigmaHQ rule (one
//! set, `windows-evtx` pipeline, SigmaHQ placeholders) and every regression event — as
//! exported, normalized the way the engine sees them, and generated variants that plant
//! the rules' own literals in other events — prefiltered matching gives exactly what
//! evaluating every detection gives. The corpus must be present (`../shared/corpora/sigma`
//! or `$RAMPART_SIGMA_CORPUS`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test-only helpers

use rampart_rules::detection::SelectionMatcher;
use rampart_rules::matcher::{StrKind, ValueMatcher};
use rampart_rules::{RuleKind, RuleMatcher};
use serde_json::Value;

mod common;
use common::{corpus_root, load_windows_set, normalized, regression_events};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn prefiltered_matching_equals_brute_force_over_the_sigmahq_corpus() {
    let root = corpus_root();
    assert!(root.is_dir(), "SigmaHQ corpus missing at {}", root.display());
    let set = load_windows_set(&root);
    assert!(set.len() >= 3780, "{} rules", set.len());
    let m = RuleMatcher::new(&set);
    println!("{}", m.stats());

    let exported = regression_events(&root);
    assert!(exported.len() >= 149, "{} regression events", exported.len());
    let normalized = normalized(&exported);

    // The rules' own literals, by the last segment of the field they test: planted into
    // other events (exact, inside longer text, upper-cased), with the rules' channels and
    // event ids, they make events that match rules the regression data never exercises.
    let mut literals: Vec<(String, String)> = Vec::new();
    for r in &set.rules {
        let RuleKind::Detection(d) = &r.kind else { continue };
        for s in &d.selections {
            let SelectionMatcher::Fields(alts) = &s.matcher else { continue };
            for c in alts.iter().flatten() {
                let name = c.field.as_str().rsplit('.').next().unwrap_or("").to_string();
                for v in &c.values {
                    match v {
                        ValueMatcher::Str(sm) if !matches!(sm.kind, StrKind::Glob(_) | StrKind::Any) => literals.push((name.clone(), sm.needle.clone())),
                        ValueMatcher::Number { text, .. } => literals.push((name.clone(), text.clone())),
                        _ => {}
                    }
                }
            }
        }
    }
    literals.sort();
    literals.dedup();
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let mut generated = Vec::new();
    for _ in 0..500 {
        let mut e = exported[rng.below(exported.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let (field, lit) = &literals[rng.below(literals.len())];
            let text = match rng.below(4) {
                0 => lit.clone(),
                1 => format!("C:\\x\\{lit} /y"),
                2 => lit.to_uppercase(),
                _ => format!("{}{lit}", lit.chars().take(3).collect::<String>()),
            };
            let value = match (field.as_str(), text.parse::<i64>()) {
                ("EventID", Ok(n)) if rng.below(2) == 0 => Value::from(n),
                _ => Value::String(text),
            };
            let ev = e.get_mut("Event").and_then(Value::as_object_mut).unwrap();
            let place = if matches!(field.as_str(), "EventID" | "Channel" | "Provider_Name" | "Computer") { "System" } else { "EventData" };
            if let Some(Value::Object(o)) = ev.get_mut(place) {
                o.insert(field.clone(), value);
            }
        }
        generated.push(e);
    }
    // The same events without a channel (or with a null one): the rules of other products
    // (`other_logsources`: Channel absent) become candidates, the Windows ones do not.
    let channel_less: Vec<_> = generated
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut e = e.clone();
            if let Some(Value::Object(sys)) = e.get_mut("Event").and_then(|ev| ev.get_mut("System")) {
                if i % 2 == 0 {
                    sys.remove("Channel");
                } else {
                    sys.insert("Channel".to_string(), Value::Null);
                }
            }
            e
        })
        .collect();

    // The oracle: the loaded detections themselves, each on its own. The matcher's copies
    // share one remembered value per field lookup across an event's rules; these do not.
    let plain: Vec<(usize, &rampart_rules::Detection)> = set
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.kind {
            RuleKind::Detection(d) => Some((i, d)),
            _ => None,
        })
        .collect();
    let (mut out_p, mut out_b) = (Vec::new(), Vec::new());
    for (label, events) in [("exported", &exported), ("normalized", &normalized), ("generated", &generated), ("without a channel", &channel_less)] {
        let mut hits = 0usize;
        for (i, e) in events.iter().enumerate() {
            out_p.clear();
            out_b.clear();
            m.matches(e, &mut out_p);
            m.matches_all(e, &mut out_b);
            assert_eq!(out_p, out_b, "{label} event #{i}: prefiltered vs brute force\n{}", Value::Object(e.clone()));
            let oracle: Vec<usize> = plain.iter().filter(|(_, d)| d.matches_doc(e)).map(|(i, _)| *i).collect();
            assert_eq!(out_p, oracle, "{label} event #{i}: the matcher vs each detection alone\n{}", Value::Object(e.clone()));
            hits += out_b.len();
        }
        println!("{label}: {} events, {hits} matches, identical", events.len());
        assert!(hits >= events.len(), "{label}: only {hits} matches over {} events; the comparison proves little", events.len());
    }
}
