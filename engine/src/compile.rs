//! Rule set → [`Plan`]: the one place that reads `rampart-rules` types, and the public
//! entry points that take a rule set.

use crate::plan::{Feed, KindPlan, Matcher, Measure, Plan, RulePlan, Renderer};
use crate::{replay_plan, start_plan, Engine, EngineConfig, EngineError};
use rampart_core::{Alert, Event, Metrics};
use rampart_correlation::{Aggregate, Condition, Direction, SequenceSpec, SpikeSpec, TermSpec, Window};
use rampart_rules::{CorrelationType, RuleKind, RuleSet, SpikeDirection, Threshold, WindowKind};
use std::sync::Arc;
use std::time::Duration;

/// Compiles `rules` into one dataflow and starts `cfg.workers` workers.
///
/// Fails on an invalid configuration or a rule the engine cannot run (a correlation
/// referencing a non-detection, which validation already rejects).
pub fn start(rules: Arc<RuleSet>, cfg: EngineConfig, metrics: Arc<Metrics>) -> Result<Engine, EngineError> {
    let plan = compile(&rules, cfg.max_refs)?;
    start_plan(plan, cfg, metrics)
}

/// Runs `events`, in the given order, through a fresh engine and returns every alert, in
/// order, once all windows are flushed. Synchronous: it starts and joins its own threads.
pub fn replay(rules: Arc<RuleSet>, cfg: EngineConfig, events: Vec<Event>) -> Result<Vec<Alert>, EngineError> {
    let plan = compile(&rules, cfg.max_refs)?;
    replay_plan(plan, cfg, events)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The rules' threshold as the operators' condition.
fn condition(t: &Threshold) -> Condition {
    Condition(t.ops.clone())
}

/// Each correlation's level in its chain: 0 when it references only detections, else one
/// more than the highest correlation it references. Fails on a cycle (which loading refuses).
fn levels(rules: &RuleSet) -> Result<Vec<u32>, EngineError> {
    let n = rules.rules.len();
    let mut level = vec![0u32; n];
    // Longest paths by relaxation; more than n rounds of change means a cycle.
    for _ in 0..=n {
        let mut changed = false;
        for (i, rule) in rules.rules.iter().enumerate() {
            let RuleKind::Correlation(c) = &rule.kind else { continue };
            for &d in &c.rules {
                if matches!(rules.rules.get(d).map(|r| &r.kind), Some(RuleKind::Correlation(_))) && level[i] <= level[d] {
                    level[i] = level[d] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            return Ok(level);
        }
    }
    Err(EngineError::Rule { rule: String::new(), reason: "correlations reference each other in a cycle".into() })
}

/// Builds the plan. Matching and rendering call back into the shared rule set, so nothing
/// of a rule is copied but its plain fields.
pub(crate) fn compile(rules: &Arc<RuleSet>, max_refs: usize) -> Result<Plan, EngineError> {
    let n = rules.rules.len();
    let mut feeds: Vec<Vec<Feed>> = vec![Vec::new(); n];
    for (i, rule) in rules.rules.iter().enumerate() {
        if let RuleKind::Correlation(c) = &rule.kind {
            for (step, &d) in c.rules.iter().enumerate() {
                match rules.rules.get(d) {
                    Some(r) if d != i => {
                        let group_by = match c.kind {
                            // A sequence's steps are positions, each with its own fields.
                            CorrelationType::Sequence { .. } => c.group_by_per_rule.get(step).map(|(_, fields)| fields.clone()),
                            // With aliases, the entry whose reference (name or id) is this rule.
                            _ => c
                                .group_by_per_rule
                                .iter()
                                .find(|(reference, _)| *reference == r.id || r.name.as_deref() == Some(reference.as_str()))
                                .map(|(_, fields)| fields.clone()),
                        };
                        feeds[d].push(Feed { slot: i as u32, step: step as u32, group_by });
                    }
                    _ => return Err(EngineError::Rule { rule: rule.id.clone(), reason: format!("references rule #{d}, which does not exist") }),
                }
            }
        }
    }
    let levels = levels(rules)?;
    let mut plans = Vec::with_capacity(n);
    for (i, rule) in rules.rules.iter().enumerate() {
        let rs = rules.clone();
        let summary: Renderer = Box::new(move |lookup| rs.rules.get(i).map(|r| r.summary.render(lookup)).unwrap_or_default());
        let kind = match &rule.kind {
            RuleKind::Detection(_) => {
                let rs = rules.clone();
                let matcher: Matcher = Box::new(move |e| matches!(rs.rules.get(i).map(|r| &r.kind), Some(RuleKind::Detection(d)) if d.matches(e)));
                KindPlan::Detection {
                    matcher,
                    generate: rule.generate,
                    feeds: std::mem::take(&mut feeds[i]),
                    group_by: rule.group_by.clone(),
                    read_group_by: if rule.read_group_by.len() == rule.group_by.len() { rule.read_group_by.clone() } else { rule.group_by.clone() },
                }
            }
            RuleKind::Correlation(c) => {
                let measure = match &c.kind {
                    CorrelationType::EventCount => Measure::Events,
                    CorrelationType::ValueCount { field } => Measure::Distinct(field.clone()),
                    CorrelationType::ValueSum { field } => Measure::Numeric(field.clone(), Aggregate::Sum),
                    CorrelationType::ValueAvg { field } => Measure::Numeric(field.clone(), Aggregate::Avg),
                    CorrelationType::Temporal => Measure::Rules,
                    CorrelationType::TemporalOrdered => Measure::Sequence,
                    CorrelationType::Absence => Measure::Absence,
                    CorrelationType::ValueMedian { field } => Measure::Numeric(field.clone(), Aggregate::Percentile(50)),
                    CorrelationType::ValuePercentile { field, percentile } => Measure::Numeric(field.clone(), Aggregate::Percentile(*percentile)),
                    CorrelationType::NewTerm { fields, learning, forget_after, max_terms } => Measure::NewTerm(
                        fields.clone(),
                        TermSpec { group_len: c.group_by.len(), learning_ms: ms(*learning), forget_ms: forget_after.map(ms), max_terms: *max_terms },
                    ),
                    CorrelationType::Deadman => Measure::Deadman,
                    CorrelationType::Sequence { steps, .. } => Measure::Follow(SequenceSpec { steps: *steps, maxspan_ms: ms(c.timespan), max_refs }),
                    CorrelationType::Spike(p) => Measure::Spike(SpikeSpec {
                        window_ms: ms(c.timespan).max(1),
                        reference_windows: p.reference_windows,
                        direction: match p.direction {
                            SpikeDirection::Up => Direction::Up,
                            SpikeDirection::Down => Direction::Down,
                            SpikeDirection::Both => Direction::Both,
                        },
                        ratio: p.ratio,
                        min_current: p.min_current,
                        min_reference: p.min_reference,
                        max_refs,
                    }),
                };
                KindPlan::Correlation {
                    type_name: c.kind.name(),
                    generate: rule.generate,
                    feeds: std::mem::take(&mut feeds[i]),
                    level: levels[i],
                    measure,
                    // A new_term alert's group also names the term (as written).
                    group_by: rule.group_by.clone(),
                    window: match c.window {
                        WindowKind::Sliding => Window::Sliding,
                        WindowKind::Tumbling => Window::Tumbling,
                        WindowKind::Session(gap) => Window::Session { gap_ms: ms(gap).max(1) },
                    },
                    window_ms: ms(c.timespan),
                    condition: condition(&c.threshold),
                }
            }
        };
        plans.push(RulePlan {
            id: rule.id.clone(),
            title: rule.title.clone(),
            level: rule.level.clone(),
            severity: rule.severity.clone(),
            category: rule.category.clone(),
            tags: rule.tags.clone(),
            summary,
            suppress_ms: rule.suppress.map_or(0, ms),
            kind,
        });
    }
    let mut plan = Plan::new(plans, max_refs);
    let matcher = rampart_rules::RuleMatcher::new(rules);
    plan.select = Some(Box::new(move |e: &Event, out: &mut Vec<usize>| matcher.matches(&e.doc, out)));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{cfg, event};
    use rampart_core::{Cmp, EventTime};

    const RULES: &str = r#"
title: Login failure
id: fail
name: login_failure
detection:
  selection:
    details.result: fail
  condition: selection
---
title: Three failures in ten seconds
id: brute
correlation:
  type: event_count
  rules: [login_failure]
  group-by: [details.user]
  timespan: 10s
  condition:
    gte: 3
level: high
category: bruteforce
suppress: 1m
summary: '{{ details.user }}: {{ count }} failures ({{ rule.title }})'
---
title: Several users from one source
id: spray
correlation:
  type: value_count
  rules: [login_failure]
  group-by: [details.src]
  timespan: 10s
  condition:
    field: details.user
    gt: 1
summary: '{{ details.src }}: {{ value }} users'
---
title: Root activity
id: rootact
detection:
  selection:
    details.result: root
  condition: selection
summary: 'root from {{ details.src }} ({{ rule.id }})'
"#;

    fn rules() -> Arc<RuleSet> {
        Arc::new(rampart_rules::load_str("test.yml", RULES).unwrap_or_else(|d| panic!("{d:?}")))
    }

    #[test]
    fn compiles_rules_to_a_plan() {
        let rules = rules();
        let plan = compile(&rules, 7).unwrap();
        assert_eq!(plan.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["fail", "brute", "spray", "rootact"]);
        assert_eq!(plan.detections, vec![0, 3]);
        match &plan.rules[0].kind {
            KindPlan::Detection { feeds, .. } => assert_eq!(feeds, &vec![Feed::to(1, 0), Feed::to(2, 0)]),
            KindPlan::Correlation { .. } => panic!("rule 0 is a detection"),
        }
        assert_eq!((plan.specs[1].window_ms, &plan.specs[1].condition, plan.specs[1].max_refs), (10_000, &Condition(vec![(Cmp::Gte, 3.0)]), 7));
        assert_eq!(plan.specs[2].condition, Condition(vec![(Cmp::Gt, 1.0)]));
        assert_eq!(plan.durations[1], 60_000);
        assert_eq!(plan.durations[2], 0);
    }

    #[test]
    fn replays_a_rules_file() {
        let events = vec![
            event(1, 1_000, "fail", "10.0.0.1", "alice"),
            event(2, 2_000, "fail", "10.0.0.1", "alice"),
            event(3, 3_000, "fail", "10.0.0.2", "alice"),
            event(4, 4_000, "root", "10.0.0.3", "root"),
            event(5, 5_000, "fail", "10.0.0.1", "bob"),
            // A second crossing for alice inside the minute of suppression.
            event(6, 30_000, "fail", "10.0.0.4", "alice"),
            event(7, 30_001, "fail", "10.0.0.4", "alice"),
            event(8, 30_002, "fail", "10.0.0.4", "alice"),
        ];
        let alerts = replay(rules(), cfg(1, 60_000), events.clone()).unwrap();
        let brief: Vec<_> = alerts.iter().map(|a| (a.rule.id.as_str(), a.utctimestamp.0, a.summary.as_str())).collect();
        assert_eq!(
            brief,
            vec![
                ("brute", 3_000, "alice: 3 failures (Three failures in ten seconds)"),
                ("rootact", 4_000, "root from 10.0.0.3 (rootact)"),
                ("spray", 5_000, "10.0.0.1: 2 users"),
            ]
        );
        assert_eq!((alerts[0].category.as_str(), alerts[0].rule.level.as_deref()), ("bruteforce", Some("high")));
        assert_eq!(alerts[0].window.start, EventTime(0));
        let mut reversed = events.clone();
        reversed.reverse();
        assert_eq!(replay(rules(), cfg(4, 60_000), reversed).unwrap(), alerts);
    }

    #[test]
    fn aliases_give_each_feed_its_own_group_fields_and_steps_follow_rules_order() {
        let text = "title: A\nname: a\ndetection:\n  s:\n    k: a\n  condition: s\n---\ntitle: B\nid: b-id\ndetection:\n  s:\n    k: b\n  condition: s\n---\n\
title: C\nid: c\ncorrelation:\n  type: temporal_ordered\n  rules: [b-id, a]\n  group-by: [ip, user]\n  timespan: 1m\n  aliases:\n    ip:\n      a: src\n      b-id: dst\n";
        let rules = Arc::new(rampart_rules::load_str("t.yml", text).unwrap_or_else(|d| panic!("{d}")));
        let plan = compile(&rules, 10).unwrap();
        let feeds = |i: usize| match &plan.rules[i].kind {
            KindPlan::Detection { feeds, .. } => feeds.clone(),
            KindPlan::Correlation { .. } => panic!("rule {i} is a correlation"),
        };
        let path = |v: &[&str]| Some(v.iter().map(|f| rampart_core::FieldPath::new(f)).collect::<Vec<_>>());
        assert_eq!(feeds(0), vec![Feed { slot: 2, step: 1, group_by: path(&["src", "user"]) }]);
        assert_eq!(feeds(1), vec![Feed { slot: 2, step: 0, group_by: path(&["dst", "user"]) }]);
        assert_eq!(plan.rules[2].kind.name(), "temporal_ordered");
        assert_eq!(plan.specs[2].condition, Condition(vec![(Cmp::Gte, 2.0)]), "all rules by default");
    }

    #[test]
    fn chained_correlations_get_levels_and_only_the_outer_ones_alert() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases/chained/rules.yml");
        let rules = Arc::new(rampart_rules::load_paths(&[path]).unwrap_or_else(|d| panic!("{d}")));
        let plan = compile(&rules, 10).unwrap();
        let brief: Vec<_> = plan
            .rules
            .iter()
            .filter_map(|r| match &r.kind {
                KindPlan::Correlation { level, generate, feeds, .. } => Some((*level, *generate, feeds.iter().map(|f| (f.slot, f.step)).collect::<Vec<_>>())),
                KindPlan::Detection { .. } => None,
            })
            .collect();
        // brute_force (level 0, silent) feeds the value_count (step 0) and the
        // temporal_ordered (step 0), both level 1.
        assert_eq!(brief, vec![(0, false, vec![(3, 0), (4, 0)]), (1, true, vec![]), (1, true, vec![])]);
        assert_eq!(plan.levels, 2);
    }

    /// A sequence can complete twice for one key in one millisecond (a match consumes its
    /// events, and the next one starts and ends at that time): two alerts, two ids.
    #[test]
    fn two_sequence_matches_in_one_millisecond_are_two_alerts() {
        let text = "title: A\nname: a\ndetection:\n  s:\n    details.result: a\n  condition: s\n---\n\
title: B\nname: b\ndetection:\n  s:\n    details.result: b\n  condition: s\n---\n\
title: A then B\nid: ab\ncorrelation:\n  type: sequence\n  maxspan: 1m\n  steps:\n    - {rule: a, by: details.src}\n    - {rule: b, by: details.src}\n";
        let rules = Arc::new(rampart_rules::load_str("t.yml", text).unwrap_or_else(|d| panic!("{d}")));
        // At 5 ms, by id: b (completes the match begun at 0), a (starts another), b (completes it).
        let events = vec![event(1, 0, "a", "h", "u"), event(2, 5, "b", "h", "u"), event(3, 5, "a", "h", "u"), event(4, 5, "b", "h", "u")];
        let alerts = replay(rules.clone(), cfg(1, 60_000), events.clone()).unwrap();
        let brief: Vec<_> = alerts.iter().map(|a| (a.utctimestamp.0, a.window.start.0, a.events.iter().map(|e| e.id.0).collect::<Vec<_>>())).collect();
        assert_eq!(brief, vec![(5, 0, vec![1, 2]), (5, 5, vec![3, 4])]);
        assert_ne!(alerts[0].id, alerts[1].id);
        let mut reversed = events;
        reversed.reverse();
        assert_eq!(replay(rules, cfg(2, 60_000), reversed).unwrap(), alerts);
    }

    /// Deadman runs on the wall clock: a quiet source alerts once, after its silence, while
    /// a source that keeps sending stays quiet until it stops.
    #[test]
    fn deadman_fires_for_a_quiet_source_only_after_its_silence() {
        let text = "title: Syslog\nname: syslog\ndetection:\n  s:\n    details.result: log\n  condition: s\n---\n\
title: Quiet host\nid: quiet\ncorrelation:\n  type: deadman\n  rules: syslog\n  group-by: [details.src]\n  timespan: 300ms\nsummary: '{{ details.src }} went quiet'\n";
        let rules = Arc::new(rampart_rules::load_str("t.yml", text).unwrap_or_else(|d| panic!("{d}")));
        let engine = start(rules, cfg(2, 0), Arc::new(Metrics::new())).unwrap();
        let (handle, alerts) = (engine.handle(), engine.alerts());
        let now = || EventTime::now().0;
        let begin = std::time::Instant::now();
        let mut id = 0;
        let mut send = |src: &str| {
            id += 1;
            handle.send_blocking(vec![Arc::new(event(id, now(), "log", src, "u"))]).unwrap();
            handle.advance_to(EventTime::now());
        };
        send("a");
        let mut got: Vec<(String, std::time::Duration)> = Vec::new();
        // b keeps talking for 1.2 s; a said one thing.
        while begin.elapsed() < std::time::Duration::from_millis(1_200) {
            send("b");
            std::thread::sleep(std::time::Duration::from_millis(40));
            got.extend(alerts.try_iter().map(|a| (a.summary, begin.elapsed())));
        }
        assert_eq!(got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), vec!["a went quiet"]);
        assert!(got[0].1 >= std::time::Duration::from_millis(300), "fired after {:?}, before the silence was over", got[0].1);
        // b stops: it fires once, after its own silence.
        let stopped = std::time::Instant::now();
        while got.len() < 2 && stopped.elapsed() < std::time::Duration::from_secs(5) {
            engine.handle().advance_to(EventTime::now());
            std::thread::sleep(std::time::Duration::from_millis(20));
            got.extend(alerts.try_iter().map(|a| (a.summary, begin.elapsed())));
        }
        assert_eq!(got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), vec!["a went quiet", "b went quiet"]);
        assert!(stopped.elapsed() >= std::time::Duration::from_millis(250), "b fired {:?} after it stopped", stopped.elapsed());
        let report = engine.shutdown().unwrap();
        assert_eq!(report.alerts, 2);
    }

    /// A pipeline renames a correlation's group-by field: the plan reads the mapped path,
    /// and replay groups events carrying it (alerts name the field as the rule wrote it).
    #[test]
    fn a_pipeline_renames_the_group_by_that_events_are_read_by() {
        let pipeline = rampart_rules::Pipeline::parse(
            "p.yml",
            "name: m\ntransformations:\n  - type: field_name_mapping\n    mapping:\n      SourceIp: details.sourceipaddress\n      Result: details.result\n",
        )
        .unwrap_or_else(|d| panic!("{d}"));
        let text = "title: Fail\nname: fail\ndetection:\n  s:\n    Result: fail\n  condition: s\n---\n\
title: Brute\nid: brute\ncorrelation:\n  type: event_count\n  rules: fail\n  group-by: [SourceIp]\n  timespan: 10s\n  condition: {gte: 2}\n";
        let rules = Arc::new(rampart_rules::load_sources_with(&[("t.yml".to_string(), text.to_string())], &rampart_rules::Pipelines::new(vec![pipeline])).unwrap_or_else(|d| panic!("{d}")));
        let plan = compile(&rules, 10).unwrap();
        let KindPlan::Detection { feeds, .. } = &plan.rules[0].kind else { panic!("rule 0 is a detection") };
        assert_eq!(feeds, &vec![Feed { slot: 1, step: 0, group_by: Some(vec![rampart_core::FieldPath::new("details.sourceipaddress")]) }]);
        let ev = |id: u128, ms: u64, ip: &str| {
            let mut e = event(id, ms, "fail", "unused", "u");
            e.doc.insert("details".into(), serde_json::json!({"result": "fail", "sourceipaddress": ip}));
            e
        };
        let alerts = replay(rules, cfg(1, 60_000), vec![ev(1, 1_000, "10.0.0.1"), ev(2, 2_000, "10.0.0.2"), ev(3, 3_000, "10.0.0.1")]).unwrap();
        let brief: Vec<_> = alerts.iter().map(|a| (a.rule.id.as_str(), a.utctimestamp.0, a.group.get("SourceIp").cloned())).collect();
        assert_eq!(brief, vec![("brute", 3_000, Some(serde_json::json!("10.0.0.1")))]);
    }

    /// Rampart's top-level `group-by` on a detection rule is renamed too: alerts are grouped
    /// (and suppressed) by the mapped path and name the field as written.
    #[test]
    fn a_pipeline_renames_a_detection_rules_group_by() {
        let pipeline = rampart_rules::Pipeline::parse("p.yml", "name: m\ntransformations:\n  - type: field_name_mapping\n    mapping:\n      SourceIp: details.sourceipaddress\n      Result: details.result\n")
            .unwrap_or_else(|d| panic!("{d}"));
        let text = "title: Root\nid: root\ngroup-by: [SourceIp]\nsuppress: 1m\ndetection:\n  s:\n    Result: root\n  condition: s\n";
        let rules = Arc::new(rampart_rules::load_sources_with(&[("t.yml".to_string(), text.to_string())], &rampart_rules::Pipelines::new(vec![pipeline])).unwrap_or_else(|d| panic!("{d}")));
        assert_eq!(rules.rules[0].group_by, vec![rampart_core::FieldPath::new("SourceIp")]);
        assert_eq!(rules.rules[0].read_group_by, vec![rampart_core::FieldPath::new("details.sourceipaddress")]);
        let ev = |id: u128, ms: u64, ip: &str| {
            let mut e = event(id, ms, "root", "unused", "u");
            e.doc.insert("details".into(), serde_json::json!({"result": "root", "sourceipaddress": ip}));
            e
        };
        let alerts = replay(rules.clone(), cfg(1, 60_000), vec![ev(1, 1_000, "10.0.0.1"), ev(2, 2_000, "10.0.0.2"), ev(3, 3_000, "10.0.0.1")]).unwrap();
        let brief: Vec<_> = alerts.iter().map(|a| (a.utctimestamp.0, a.group.get("SourceIp").cloned())).collect();
        // Without the rename every event would group as `null`: one alert, the rest suppressed.
        assert_eq!(brief, vec![(1_000, Some(serde_json::json!("10.0.0.1"))), (2_000, Some(serde_json::json!("10.0.0.2")))]);
        // A field mapped to two paths cannot be one group value: refused where it is written.
        let two = rampart_rules::Pipeline::parse("p.yml", "name: m\ntransformations:\n  - type: field_name_prefix\n    prefix: [a., b.]\n").unwrap_or_else(|d| panic!("{d}"));
        let e = rampart_rules::load_sources_with(&[("t.yml".to_string(), text.to_string())], &rampart_rules::Pipelines::new(vec![two])).unwrap_err();
        assert_eq!((e.0[0].code, e.0[0].line, e.0[0].column, e.0[0].key_path.as_str()), ("R209", 3, 12, "group-by[0]"));
    }
}
