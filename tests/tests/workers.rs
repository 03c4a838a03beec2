//! The number of workers never changes the alerts: the shipped rule library plus
//! new_term and spike rules over the demo traffic give the same alerts, in the same order,
//! on 1 and 4 workers, through the engine and through `rampart replay --workers`; and the
//! stateful rules give the same alerts when the run is split by a restart onto another
//! number of workers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_core::{Alert, Event, EventId, EventTime, Normalizer, NormalizerConfig};
use rampart_engine::{EngineConfig, StateConfig};
use rampart_rules::RuleSet;
use rampart_tests::{rampart_bin, workspace_root};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// new_term and spike rules the demo traffic exercises.
const STATEFUL: &str = r#"
title: SSH login
name: ssh_login
detection:
  s:
    processname: sshd
    details.success: true
  condition: s
---
title: New source address for an SSH user
id: ssh-new-source
correlation:
  type: new_term
  rules: ssh_login
  group-by: [details.username]
  fields: [details.sourceipaddress]
  learning: 20s
summary: '{{ details.username }} logged in from {{ details.sourceipaddress }} for the first time'
---
title: Process
name: process
detection:
  s:
    category: process
  condition: s
---
title: New program on a host
id: new-program
correlation:
  type: new_term
  rules: process
  group-by: [hostname]
  fields: [details.image, details.username]
  learning: 1m
  forget_after: 5m
  max_terms: 50
---
title: Failed SSH
name: ssh_failed
detection:
  s:
    processname: sshd
    details.success: false
  condition: s
---
title: Failed SSH spike on a host
id: ssh-failed-spike
correlation:
  type: spike
  rules: ssh_failed
  group-by: [hostname]
  timespan: 5s
  condition: {direction: up, ratio: 3, min_current: 5, min_reference: 1}
---
title: Firewall drop
name: fw
detection:
  s:
    category: firewall
    details.action: DROP
  condition: s
---
title: Firewall traffic dropped
id: fw-drop
correlation:
  type: spike
  rules: fw
  timespan: 10s
  reference_windows: 3
  condition: {direction: down, ratio: 2, min_current: 0, min_reference: 2}
"#;

/// Ten minutes of demo traffic (50 events/s) with attacks every 20 s, normalized.
fn demo() -> Vec<Event> {
    let n = Normalizer::new(NormalizerConfig::default());
    rampart_connectors::demo::generate(7, EventTime(1_790_000_000_000), 30_000, 20)
        .into_iter()
        .enumerate()
        .map(|(i, v)| n.normalize_at(v, EventId::derive("demo", i as u64, b""), EventTime(1_790_000_000_000)).unwrap())
        .collect()
}

fn rules() -> Arc<RuleSet> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stateful.yml");
    std::fs::write(&file, STATEFUL).unwrap();
    Arc::new(rampart_rules::load_paths(&[workspace_root().join("rules/library"), file]).unwrap_or_else(|d| panic!("{d}")))
}

fn replay(rules: &Arc<RuleSet>, events: Vec<Event>, workers: usize, state: Option<&Path>) -> Vec<Alert> {
    let state = state.map(|dir| StateConfig { dir: dir.to_path_buf(), interval: Duration::from_secs(3600), discard_invalid: false });
    let cfg = EngineConfig { workers, lateness: Duration::from_secs(5), state, ..EngineConfig::default() };
    rampart_engine::replay(rules.clone(), cfg, events).unwrap()
}

fn count(alerts: &[Alert], kind: &str) -> usize {
    alerts.iter().filter(|a| a.rule.kind == kind).count()
}

#[test]
fn one_and_four_workers_give_the_same_alerts_on_the_library_and_stateful_rules() {
    let rules = rules();
    let events = demo();
    let one = replay(&rules, events.clone(), 1, None);
    for kind in ["detection", "event_count", "value_count", "new_term", "spike", "sequence"] {
        assert!(count(&one, kind) > 0, "the demo traffic exercises {kind}: {:?}", one.iter().map(|a| &a.rule.id).collect::<std::collections::BTreeSet<_>>());
    }
    let mut by_rule = std::collections::BTreeMap::new();
    for a in &one {
        *by_rule.entry(a.rule.id.as_str()).or_insert(0) += 1;
    }
    eprintln!("alerts on 1 worker: {} {by_rule:?}", one.len());
    // Every demo user logs in from its one home address, learnt in the first 20 s; the only
    // new sources are the planted brute forces that end in a successful login.
    let new_sources: Vec<_> = one.iter().filter(|a| a.rule.id == "ssh-new-source").map(|a| a.group["details.sourceipaddress"].as_str().unwrap_or_default().to_string()).collect();
    assert!(!new_sources.is_empty() && new_sources.iter().all(|ip| ip.starts_with("203.0.113.")), "{new_sources:?}");
    assert!(by_rule.get("fw-drop").is_some_and(|n| *n > 3) && by_rule.get("ssh-failed-spike").is_some_and(|n| *n > 3), "{by_rule:?}");
    let four = replay(&rules, events, 4, None);
    assert_eq!(one.len(), four.len());
    assert_eq!(one, four, "1 and 4 workers");
}

#[test]
fn stateful_rules_across_a_restart_onto_another_worker_count_alert_as_one_run() {
    let rules = rules();
    let events = demo();
    let whole = replay(&rules, events.clone(), 2, None);
    let stateful = |v: &[Alert]| v.iter().filter(|a| matches!(a.rule.kind.as_str(), "new_term" | "spike")).map(|a| (a.rule.id.clone(), a.utctimestamp, a.group.clone(), a.value)).collect::<Vec<_>>();
    let (before, after) = events.split_at(events.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    let mut split = replay(&rules, before.to_vec(), 4, Some(dir.path()));
    split.extend(replay(&rules, after.to_vec(), 1, Some(dir.path())));
    assert!(!stateful(&whole).is_empty());
    assert_eq!(stateful(&split), stateful(&whole));
}

#[test]
fn rampart_replay_with_1_and_4_workers_prints_the_same_alerts() {
    let bin = rampart_bin();
    assert!(bin.exists(), "{} not built: run `cargo build` first (scripts/test.sh does)", bin.display());
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("demo.ndjson");
    let text: Vec<String> = rampart_connectors::demo::generate(11, EventTime(1_790_000_000_000), 6_000, 50).iter().map(|v| v.to_string()).collect();
    std::fs::write(&events, text.join("\n") + "\n").unwrap();
    let rules = dir.path().join("stateful.yml");
    std::fs::write(&rules, STATEFUL).unwrap();
    let run = |workers: &str| {
        let out = std::process::Command::new(&bin)
            .current_dir(workspace_root())
            .env("RAMPART_LOG", "warn")
            .args(["replay", "--rules", "rules/library", "--rules", rules.to_str().unwrap(), "--workers", workers, "--lateness", "5s", events.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let one = run("1");
    assert!(one.lines().count() > 10, "{one}");
    assert_eq!(one, run("4"));
}
