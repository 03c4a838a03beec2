//! Golden correlation cases: every directory `tests/cases/<case>/` holds `events.ndjson`,
//! optionally `rules.yml` (default: the shipped library in `rules/library/`), and
//! `alerts.json`, the expected alerts. Each case is replayed at 1, 2 and 4 workers, in
//! file order and in a shuffled order (within the allowed lateness; `lateness` in the case
//! directory sets it, default 1m), and every run must
//! give exactly the expected alerts in the same order.
//!
//! To re-bless after an intended change: `RAMPART_BLESS=1 cargo test -p rampart-tests --test golden`,
//! then review the diff of `alerts.json` before committing it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_core::{Alert, Event, EventId, EventTime, Normalizer, NormalizerConfig};
use rampart_engine::EngineConfig;
use rampart_tests::workspace_root;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Received time used for every golden event, so ids and documents are reproducible.
const RECEIVED: EventTime = EventTime(1_790_000_000_000);

fn cases() -> Vec<PathBuf> {
    let dir = workspace_root().join("tests/cases");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    v.sort();
    assert!(!v.is_empty(), "no golden cases under {}", dir.display());
    v
}

fn events(case: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(case.join("events.ndjson")).unwrap();
    let n = Normalizer::new(NormalizerConfig::default());
    let origin = case.file_name().unwrap().to_string_lossy().into_owned();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", case.display(), i + 1));
            n.normalize_at(v, EventId::derive(&origin, i as u64, l.as_bytes()), RECEIVED).unwrap()
        })
        .collect()
}

fn rules(case: &Path) -> Arc<rampart_rules::RuleSet> {
    let own = case.join("rules.yml");
    let set = if own.exists() {
        rampart_rules::load_paths(&[own])
    } else {
        rampart_rules::load_paths(&[workspace_root().join("rules/library")])
    };
    Arc::new(set.unwrap_or_else(|d| panic!("{d}")))
}

fn lateness(case: &Path) -> Duration {
    std::fs::read_to_string(case.join("lateness"))
        .ok()
        .map(|s| rampart_core::time::parse_duration(&s).unwrap())
        .unwrap_or(Duration::from_secs(60))
}

/// Deterministic shuffle that moves no event further than `max_shift` in event time behind
/// its successors: sort by time plus a pseudo-random jitter below the lateness.
fn shuffled(mut evs: Vec<Event>, max_shift: Duration) -> Vec<Event> {
    let span = u64::try_from(max_shift.as_millis()).unwrap().max(1);
    evs.sort_by_key(|e| e.time.0 + (e.id.0 as u64 % span));
    evs
}

fn run(rules: &Arc<rampart_rules::RuleSet>, evs: Vec<Event>, workers: usize, lateness: Duration) -> Vec<Alert> {
    let cfg = EngineConfig { workers, lateness, ..EngineConfig::default() };
    rampart_engine::replay(rules.clone(), cfg, evs).unwrap()
}

#[test]
fn golden_cases() {
    let bless = std::env::var_os("RAMPART_BLESS").is_some();
    for case in cases() {
        let rules = rules(&case);
        let evs = events(&case);
        let late = lateness(&case);
        let expected_path = case.join("alerts.json");
        let baseline = run(&rules, evs.clone(), 1, late);
        if bless {
            std::fs::write(&expected_path, serde_json::to_string_pretty(&baseline).unwrap() + "\n").unwrap();
        }
        let expected: Vec<Alert> = serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!("{} missing: run with RAMPART_BLESS=1 and review it", expected_path.display())
        }))
        .unwrap();
        assert_eq!(baseline, expected, "case {} (1 worker, file order)", case.display());
        for workers in [2, 4] {
            assert_eq!(run(&rules, evs.clone(), workers, late), expected, "case {} ({workers} workers)", case.display());
        }
        // Arrival order within lateness must not matter (except in cases that test
        // arrival beyond it, marked by a file `arrival-order-matters`).
        if case.join("arrival-order-matters").exists() {
            continue;
        }
        let shift = late.checked_div(2).unwrap_or_default();
        assert_eq!(run(&rules, shuffled(evs.clone(), shift), 2, late), expected, "case {} (shuffled within lateness)", case.display());
    }
}
