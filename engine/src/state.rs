//! Correlation state on disk, so that a restart does not flood: what `new_term` knows and
//! where `spike`'s windows stand.
//!
//! One file, `<dir>/correlation-state.json`: a format name and version, the rules it holds
//! state for (id, type and a fingerprint of what the state means: group-by, term fields,
//! window), and the operators' [`Saved`] entries. Entries are keyed by rule and group, never
//! by worker, so a snapshot written by 4 workers is restored by 1 (or 3): at start every
//! worker is handed a share and each entry travels to the worker owning its key.
//!
//! The [`Store`] takes each operator instance's state as it is offered (periodically and
//! when input ends) and writes the file when it has every instance's part: as a temporary
//! file, synced, then renamed over the old one, so a crash leaves the old snapshot or the
//! new one, never half of one.
//!
//! A file that cannot be used (corrupt, another format, a newer version) stops the start
//! with an error naming it and what to do, unless the configuration says to set it aside
//! (`discard_invalid`). A rule whose fingerprint changed (or that is gone) loses its state,
//! with a warning: its old state would mean something else.

use crate::plan::{KindPlan, Measure, Plan};
use crate::EngineError;
use parking_lot::Mutex;
use crate::events::{StateSnapshotFailed, StateSnapshotWritten};
use rampart_core::Metrics;
use rampart_correlation::{Keep, OnEvict, Part, Saved, Snapshots};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state file's name in the state directory.
pub const FILE_NAME: &str = "correlation-state.json";
const FORMAT: &str = "rampart-correlation-state";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;

/// Where correlation state is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateConfig {
    /// The directory (created if missing).
    pub dir: PathBuf,
    /// How often to snapshot while running; a final snapshot is written at shutdown.
    pub interval: Duration,
    /// Set an unusable state file aside (renamed `*.invalid-<ms>`) and start empty instead
    /// of refusing to start.
    pub discard_invalid: bool,
}

impl StateConfig {
    /// The state file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    written_at: String,
    rules: Vec<RuleEntry>,
    entries: Vec<Saved>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RuleEntry {
    slot: u32,
    id: String,
    #[serde(rename = "type")]
    kind: String,
    fingerprint: String,
}

/// The stateful rules of a plan, with what their state means.
fn stateful_rules(plan: &Plan) -> Vec<RuleEntry> {
    plan.rules
        .iter()
        .enumerate()
        .filter_map(|(slot, r)| {
            let KindPlan::Correlation { measure, group_by, type_name, .. } = &r.kind else { return None };
            let names = |v: &[rampart_core::FieldPath]| v.iter().map(|f| f.as_str().to_string()).collect::<Vec<_>>().join(",");
            let fingerprint = match measure {
                Measure::NewTerm(fields, spec) => format!("group-by=[{}] fields=[{}]", names(&group_by[..spec.group_len.min(group_by.len())]), names(fields)),
                Measure::Spike(spec) => format!("group-by=[{}] timespan_ms={} reference_windows={}", names(group_by), spec.window_ms, spec.reference_windows),
                _ => return None,
            };
            Some(RuleEntry { slot: slot as u32, id: r.id.clone(), kind: (*type_name).to_string(), fingerprint })
        })
        .collect()
}

fn state_error(file: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::State {
        file: file.display().to_string(),
        reason: reason.into(),
        hint: "move it away (or delete it) to start with empty correlation state (new_term learns again, spike windows start empty), or set `engine.discard_invalid_state: true` (`--discard-invalid-state`) to have Rampart set it aside".into(),
    }
}

/// Reads and checks the file.
fn read(file: &Path) -> Result<Option<File>, EngineError> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::State { file: file.display().to_string(), reason: format!("cannot be read: {e}"), hint: "check the path and its permissions (`engine.state_dir`, `--state-dir`)".into() })
        }
    };
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
        version: Option<u64>,
    }
    let corrupt = |e: serde_json::Error| state_error(file, format!("is corrupt (line {}, column {}: {e})", e.line(), e.column()));
    let head: Head = match serde_json::from_slice(&bytes) {
        Ok(h) => h,
        Err(e) if e.is_syntax() || e.is_eof() => return Err(corrupt(e)),
        Err(_) => Head { format: None, version: None },
    };
    match (head.format.as_deref(), head.version) {
        (Some(FORMAT), Some(v)) if v == u64::from(VERSION) => {}
        (Some(FORMAT), Some(v)) => return Err(state_error(file, format!("has format version {v}; this Rampart reads version {VERSION}"))),
        _ => return Err(state_error(file, format!("is not a Rampart correlation state file (no `format: {FORMAT}` and `version`)"))),
    }
    serde_json::from_slice(&bytes).map(Some).map_err(corrupt)
}

/// The saved entries for the rules of `plan`, moved to their slots in it. Missing file:
/// nothing (a first start). Unusable file: an error, or with `discard_invalid` the file set
/// aside and nothing.
pub(crate) fn load(cfg: &StateConfig, plan: &Plan) -> Result<Vec<Saved>, EngineError> {
    let path = cfg.file();
    let file = match read(&path) {
        Ok(Some(f)) => f,
        Ok(None) => {
            tracing::info!(file = %path.display(), "no correlation state saved yet: new_term rules start learning");
            return Ok(Vec::new());
        }
        Err(e) if cfg.discard_invalid => {
            let aside = path.with_extension(format!("json.invalid-{}", rampart_core::EventTime::now().0));
            let moved = std::fs::rename(&path, &aside);
            tracing::warn!(error = %e, aside = %aside.display(), moved = moved.is_ok(), "correlation state set aside (discard_invalid_state): starting empty");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let now: HashMap<String, RuleEntry> = stateful_rules(plan).into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut slots = HashMap::new();
    for old in &file.rules {
        match now.get(&old.id) {
            Some(r) if r.kind == old.kind && r.fingerprint == old.fingerprint => {
                slots.insert(old.slot, r.slot);
            }
            Some(r) => tracing::warn!(rule = %old.id, was = %format!("{} {}", old.kind, old.fingerprint), now = %format!("{} {}", r.kind, r.fingerprint), "rule changed since its state was saved: its state is dropped"),
            None => tracing::info!(rule = %old.id, "rule no longer loaded: its saved state is dropped"),
        }
    }
    // Acceptance times are this process's monotonic clock: restored records count as
    // accepted now.
    let accepted = rampart_core::metrics::clock_ns();
    let entries: Vec<Saved> = file
        .entries
        .into_iter()
        .filter_map(|e| slots.get(&e.slot()).map(|&s| e.with_slot(s)))
        .map(|mut e| {
            match &mut e {
                Saved::Pending { contribution, .. } => contribution.accepted_ns = accepted,
                Saved::Spike { refs, .. } => refs.iter_mut().for_each(|c| c.accepted_ns = accepted),
                Saved::Extent { .. } | Saved::Terms { .. } => {}
            }
            e
        })
        .collect();
    tracing::info!(file = %path.display(), written_at = %file.written_at, rules = slots.len(), entries = entries.len(), "correlation state restored");
    Ok(entries)
}

/// Collects every operator instance's state and writes the file.
pub(crate) struct Store {
    path: PathBuf,
    interval: Duration,
    /// Instances that offer state: workers × levels × the two stateful operators.
    expected: usize,
    rules: Vec<RuleEntry>,
    metrics: Arc<Metrics>,
    inner: Mutex<Inner>,
}

struct Inner {
    parts: HashMap<(String, usize), Part>,
    last_write: Instant,
    finished: bool,
    /// The final write's failure, for [`crate::Engine::shutdown`].
    error: Option<String>,
}

impl Store {
    pub fn new(cfg: &StateConfig, plan: &Plan, expected: usize, metrics: Arc<Metrics>) -> Store {
        Store {
            path: cfg.file(),
            interval: cfg.interval,
            expected,
            rules: stateful_rules(plan),
            metrics,
            inner: Mutex::new(Inner { parts: HashMap::new(), last_write: Instant::now(), finished: false, error: None }),
        }
    }

    /// Whether the final snapshot was written (an error naming the file if not).
    pub fn finish(&self) -> Result<(), EngineError> {
        let g = self.inner.lock();
        match (&g.error, g.finished) {
            (None, true) => Ok(()),
            (Some(e), _) => Err(EngineError::State { file: self.path.display().to_string(), reason: format!("the final snapshot could not be written: {e}"), hint: "check the directory's space and permissions; the previous snapshot (if any) is intact".into() }),
            (None, false) => Err(EngineError::State { file: self.path.display().to_string(), reason: "not every worker handed in its final state".into(), hint: "the previous snapshot (if any) is intact".into() }),
        }
    }

    fn write(&self, parts: &HashMap<(String, usize), Part>) -> Result<(), String> {
        let mut extents: HashMap<u32, (u64, u64)> = HashMap::new();
        let mut entries = Vec::new();
        for part in parts.values() {
            for e in &part.entries {
                match e {
                    // Every worker knows every extent: keep one.
                    Saved::Extent { slot, first, newest } => {
                        let x = extents.entry(*slot).or_insert((*first, *newest));
                        *x = (x.0.min(*first), x.1.max(*newest));
                    }
                    other => entries.push(other.clone()),
                }
            }
        }
        let mut ext: Vec<_> = extents.into_iter().collect();
        ext.sort_unstable();
        let mut all: Vec<Saved> = ext.into_iter().map(|(slot, (first, newest))| Saved::Extent { slot, first, newest }).collect();
        all.extend(entries);
        let file = File { format: FORMAT.into(), version: VERSION, written_at: rampart_core::EventTime::now().to_rfc3339(), rules: self.rules.clone(), entries: all };
        let bytes = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        write_atomically(&self.path, &bytes).map_err(|e| e.to_string())
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or(FILE_NAME)));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    // The rename is durable once the directory is (not every platform can sync one).
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Snapshots for Store {
    fn offer(&self, part: Part) {
        let mut g = self.inner.lock();
        g.parts.insert((part.operator.clone(), part.worker), part);
        if g.finished || g.parts.len() < self.expected {
            return;
        }
        let last = g.parts.values().all(|p| p.last);
        if !last && g.last_write.elapsed() < self.interval {
            return;
        }
        let result = self.write(&g.parts);
        g.last_write = Instant::now();
        match result {
            Ok(()) => StateSnapshotWritten { file: &self.path, last }.emit(&self.metrics),
            Err(e) => {
                StateSnapshotFailed { file: &self.path, error: &e }.emit(&self.metrics);
                if last {
                    g.error = Some(e);
                }
            }
        }
        g.finished = last;
    }
}

/// What one worker's stateful operators start from and save to.
#[derive(Clone, Default)]
pub(crate) struct WorkerKeep {
    /// This worker's share of the restored entries.
    pub restore: Vec<Saved>,
    pub store: Option<Arc<Store>>,
    pub interval: Duration,
    pub on_evict: Option<OnEvict>,
}

impl WorkerKeep {
    /// The [`Keep`] of the new_term (`new_term`) or spike operator of `level`.
    pub fn for_operator(&self, plan: &Plan, level: u32, new_term: bool) -> Keep {
        let mine = |slot: u32| {
            let ours = if new_term { plan.terms.get(slot as usize).is_some_and(Option::is_some) } else { plan.spikes.get(slot as usize).is_some_and(Option::is_some) };
            plan.level(slot) == level && ours
        };
        Keep {
            restore: self.restore.iter().filter(|e| mine(e.slot())).cloned().collect(),
            snapshots: self.store.clone().map(|s| s as Arc<dyn Snapshots>),
            interval: self.interval,
            on_evict: self.on_evict.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::event;
    use crate::{EngineConfig, EngineError};
    use rampart_core::{Alert, Event};
    use rampart_rules::RuleSet;

    const RULES: &str = "title: Login\nname: login\ndetection:\n  s:\n    details.result: login\n  condition: s\n---\n\
title: New source for a user\nid: newsrc\ncorrelation:\n  type: new_term\n  rules: login\n  group-by: [details.user]\n  fields: [details.src]\n  learning: 10s\n\
summary: '{{ details.user }} from {{ details.src }}'\n---\n\
title: Login spike\nid: spike\ncorrelation:\n  type: spike\n  rules: login\n  timespan: 10s\n  condition: {ratio: 3, min_current: 3, min_reference: 1}\n";

    fn rules(text: &str) -> Arc<RuleSet> {
        Arc::new(rampart_rules::load_str("state.yml", text).unwrap_or_else(|d| panic!("{d}")))
    }

    fn state(dir: &Path) -> Option<StateConfig> {
        Some(StateConfig { dir: dir.to_path_buf(), interval: Duration::from_secs(3600), discard_invalid: false })
    }

    /// Feeds `events` (in order, no lateness) to a started engine, shuts it down, returns
    /// its alerts.
    fn run(rules: &Arc<RuleSet>, workers: usize, state: Option<StateConfig>, events: Vec<Event>) -> Result<Vec<Alert>, EngineError> {
        let cfg = EngineConfig { workers, lateness: Duration::ZERO, state, ..EngineConfig::default() };
        let engine = crate::start(rules.clone(), cfg, Arc::new(Metrics::new()))?;
        let rx = engine.alerts();
        let collector = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
        engine.handle().send_blocking(events.into_iter().map(Arc::new).collect())?;
        engine.shutdown()?;
        Ok(collector.join().unwrap())
    }

    fn login(id: u128, ms: u64, user: &str, src: &str) -> Event {
        event(id, ms, "login", src, user)
    }

    fn brief(alerts: &[Alert]) -> Vec<(String, u64, String)> {
        alerts.iter().map(|a| (a.rule.id.clone(), a.utctimestamp.0, a.summary.clone())).collect()
    }

    #[test]
    fn new_term_survives_a_restart_without_re_alerting() {
        let rules = rules(RULES);
        let dir = tempfile::tempdir().unwrap();
        // Learning is [1000, 11000): alice/10.0.0.1 and bob/10.0.0.2 are learnt; at 12000
        // alice/10.0.0.3 is new.
        let first = vec![login(1, 1_000, "alice", "10.0.0.1"), login(2, 2_000, "bob", "10.0.0.2"), login(3, 12_000, "alice", "10.0.0.3")];
        let a = run(&rules, 2, state(dir.path()), first).unwrap();
        assert_eq!(brief(&a), vec![("newsrc".into(), 12_000, "alice from 10.0.0.3".into())]);
        assert!(dir.path().join(FILE_NAME).is_file(), "a final snapshot at shutdown");
        // After the restart (on another number of workers): old terms stay quiet, a new one alerts.
        let second = vec![login(4, 20_000, "alice", "10.0.0.1"), login(5, 21_000, "alice", "10.0.0.3"), login(6, 22_000, "bob", "10.0.0.2"), login(7, 23_000, "bob", "10.0.0.9")];
        let b = run(&rules, 4, state(dir.path()), second.clone()).unwrap();
        let new_terms = |a: Vec<Alert>| brief(&a.into_iter().filter(|a| a.rule.id == "newsrc").collect::<Vec<_>>());
        assert_eq!(new_terms(b), vec![("newsrc".into(), 23_000, "bob from 10.0.0.9".into())]);
        // Without the saved state the same events would be a fresh start: learning again.
        assert!(new_terms(run(&rules, 1, None, second).unwrap()).is_empty());
    }

    #[test]
    fn spike_windows_survive_a_restart() {
        let rules = rules(RULES);
        let dir = tempfile::tempdir().unwrap();
        // One login at 30000 is the reference for the window ending at 43000: (33000, 43000]
        // holds three, (23000, 33000] one.
        let a = run(&rules, 1, state(dir.path()), vec![login(1, 30_000, "carol", "10.0.0.5")]).unwrap();
        assert!(a.iter().all(|a| a.rule.id != "spike"));
        let burst = vec![login(2, 41_000, "carol", "10.0.0.5"), login(3, 42_000, "carol", "10.0.0.5"), login(4, 43_000, "carol", "10.0.0.5")];
        let b = run(&rules, 3, state(dir.path()), burst.clone()).unwrap();
        let spikes: Vec<_> = b.iter().filter(|a| a.rule.id == "spike").map(|a| (a.utctimestamp.0, a.value, a.window.start.0)).collect();
        assert_eq!(spikes, vec![(43_000, 3.0, 33_001)]);
        // Without the reference window restored there is nothing to compare with.
        assert!(run(&rules, 1, None, burst).unwrap().iter().all(|a| a.rule.id != "spike"));
    }

    fn traffic(seed: u64, n: usize) -> Vec<Event> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut t = 1_000;
        (0..n)
            .map(|i| {
                // Quiet stretches and bursts.
                t += if rng.random_bool(0.2) { rng.random_range(3_000..15_000) } else { rng.random_range(0..800) };
                let user = ["alice", "bob", "carol"][rng.random_range(0..3)];
                let src = format!("10.0.0.{}", rng.random_range(1..8));
                login(i as u128, t, user, &src)
            })
            .collect()
    }

    #[test]
    fn a_run_split_by_a_restart_alerts_as_one_run_on_any_workers() {
        let rules = rules(RULES);
        for seed in 0..3 {
            let events = traffic(seed, 300);
            let whole = run(&rules, 1, None, events.clone()).unwrap();
            assert!(whole.iter().any(|a| a.rule.id == "newsrc") && whole.iter().any(|a| a.rule.id == "spike"), "seed {seed} exercises both");
            let (before, after) = events.split_at(170);
            for (w1, w2) in [(1, 4), (4, 1), (2, 2)] {
                let dir = tempfile::tempdir().unwrap();
                let mut split = run(&rules, w1, state(dir.path()), before.to_vec()).unwrap();
                split.extend(run(&rules, w2, state(dir.path()), after.to_vec()).unwrap());
                assert_eq!(brief(&split), brief(&whole), "seed {seed}: {w1} then {w2} workers");
            }
        }
    }

    #[test]
    fn an_unusable_state_file_stops_the_start_naming_it_unless_told_to_set_it_aside() {
        let rules = rules(RULES);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, "{\"format\": \"rampart-correlation-state\", \"version\": 1, \"rules\": [").unwrap();
        let e = run(&rules, 1, state(dir.path()), vec![]).unwrap_err().to_string();
        assert!(e.contains(&file.display().to_string()) && e.contains("corrupt") && e.contains("move it away") && e.contains("discard_invalid_state"), "{e}");
        std::fs::write(&file, "{\"format\": \"rampart-correlation-state\", \"version\": 99, \"rules\": [], \"entries\": []}").unwrap();
        let e = run(&rules, 1, state(dir.path()), vec![]).unwrap_err().to_string();
        assert!(e.contains("version 99") && e.contains("reads version 1"), "{e}");
        std::fs::write(&file, "[1, 2]").unwrap();
        let e = run(&rules, 1, state(dir.path()), vec![]).unwrap_err().to_string();
        assert!(e.contains("not a Rampart correlation state file"), "{e}");
        // Told to: set aside, start empty, write a fresh one at shutdown.
        let discard = Some(StateConfig { discard_invalid: true, ..state(dir.path()).unwrap() });
        run(&rules, 1, discard, vec![login(1, 1_000, "a", "b")]).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().any(|n| n.starts_with("correlation-state.json.invalid-")), "{names:?}");
        assert!(read(&file).unwrap().is_some(), "a fresh snapshot replaced it");
    }

    #[test]
    fn a_changed_rule_loses_its_state_and_others_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        run(&rules(RULES), 1, state(dir.path()), vec![login(1, 1_000, "alice", "10.0.0.1"), login(2, 30_000, "alice", "10.0.0.2")]).unwrap();
        // The new_term now groups by source and watches users: its old terms mean nothing.
        let changed = rules(&RULES.replace("group-by: [details.user]\n  fields: [details.src]", "group-by: [details.src]\n  fields: [details.user]").replace("{{ details.user }} from {{ details.src }}", "{{ details.src }}"));
        let a = run(&changed, 1, state(dir.path()), vec![login(3, 31_000, "alice", "10.0.0.1")]).unwrap();
        assert!(a.is_empty(), "learning starts again for the changed rule: {a:?}");
        let file = read(&dir.path().join(FILE_NAME)).unwrap().unwrap();
        let newsrc = file.rules.iter().find(|r| r.id == "newsrc").unwrap();
        assert_eq!(newsrc.fingerprint, "group-by=[details.src] fields=[details.user]");
        assert!(file.entries.iter().any(|e| matches!(e, Saved::Extent { first: 31_000, .. })), "the changed rule's learning starts at its first event after the change");
        assert!(file.entries.iter().any(|e| matches!(e, Saved::Extent { first: 1_000, .. })), "the spike rule kept its extent");
    }

    #[test]
    fn evictions_past_max_terms_are_counted() {
        let text = RULES.replace("  learning: 10s\n", "  learning: 0s\n  max_terms: 1\n");
        let metrics = Arc::new(Metrics::new());
        let cfg = EngineConfig { workers: 2, lateness: Duration::ZERO, ..EngineConfig::default() };
        let events = vec![login(1, 1_000, "alice", "10.0.0.1"), login(2, 2_000, "alice", "10.0.0.2"), login(3, 3_000, "alice", "10.0.0.1")];
        let engine = crate::start(rules(&text), cfg, metrics.clone()).unwrap();
        let rx = engine.alerts();
        let collector = std::thread::spawn(move || rx.iter().filter(|a| a.rule.id == "newsrc").count());
        engine.handle().send_blocking(events.into_iter().map(Arc::new).collect()).unwrap();
        engine.shutdown().unwrap();
        assert_eq!(collector.join().unwrap(), 3, "10.0.0.1 was forgotten for 10.0.0.2, so it is new again");
        assert_eq!(metrics.get(rampart_core::Counter::NewTermsEvicted), 2);
    }

    #[test]
    fn snapshots_are_written_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EngineConfig { workers: 2, lateness: Duration::ZERO, state: Some(StateConfig { dir: dir.path().to_path_buf(), interval: Duration::from_millis(10), discard_invalid: false }), ..EngineConfig::default() };
        let metrics = Arc::new(Metrics::new());
        let engine = crate::start(rules(RULES), cfg, metrics.clone()).unwrap();
        let rx = engine.alerts();
        let collector = std::thread::spawn(move || rx.iter().count());
        let handle = engine.handle();
        handle.send_blocking(vec![Arc::new(login(1, 1_000, "alice", "10.0.0.1"))]).unwrap();
        let known = |f: &Path| read(f).ok().flatten().is_some_and(|f| f.entries.iter().any(|e| matches!(e, Saved::Terms { terms, .. } if terms.iter().any(|(t, _)| t == &vec!["\"10.0.0.1\"".to_string()]))));
        let file = dir.path().join(FILE_NAME);
        let start = Instant::now();
        let mut t = 2_000;
        // Operators offer their state when they run: keep time moving until a snapshot holds the term.
        while !known(&file) && start.elapsed() < Duration::from_secs(20) {
            handle.advance_to(rampart_core::EventTime(t));
            t += 1_000;
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(known(&file), "a periodic snapshot while running");
        assert!(metrics.get(rampart_core::Counter::StateSnapshotsWritten) >= 1);
        engine.shutdown().unwrap();
        collector.join().unwrap();
    }

    #[test]
    fn the_snapshot_is_written_atomically_and_nothing_is_written_without_stateful_rules() {
        let dir = tempfile::tempdir().unwrap();
        let only_detections = rules("title: Login\nid: login\ndetection:\n  s:\n    details.result: login\n  condition: s\n");
        run(&only_detections, 2, state(dir.path()), vec![login(1, 1_000, "a", "b")]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        run(&rules(RULES), 2, state(&dir.path().join("nested")), vec![login(1, 1_000, "a", "b")]).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path().join("nested")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec![FILE_NAME.to_string()], "created the directory; no temporary file left behind");
    }
}
