//! The SigmaHQ corpus as the corpus tests and `examples/corpus_bench.rs` read it: every rule
//! folder (`rules*/`) loaded as one set with the `windows-evtx` pipeline and the SigmaHQ
//! placeholders, and the regression events, as exported and as the engine sees them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // shared by tests that use parts of it

use rampart_core::{EventId, EventTime, Normalizer};
use rampart_rules::{Pipeline, Pipelines, RuleSet};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The SigmaHQ corpus: `$RAMPART_SIGMA_CORPUS`, or `shared/corpora/sigma` beside the
/// repository (where CI and every developer machine have it).
pub fn corpus_root() -> PathBuf {
    match std::env::var_os("RAMPART_SIGMA_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/sigma"),
    }
}

/// Every file under `dir` whose extension is one of `exts`, depth first.
pub fn files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, exts, out);
        } else if p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)) {
            out.push(p);
        }
    }
}

/// The corpus's rule folders (`rules`, `rules-emerging-threats`, …), sorted.
pub fn rule_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("rules"))
        .collect();
    dirs.sort();
    dirs
}

/// The SigmaHQ placeholder values (`tests/sigmahq-placeholders.yml`) as a pipeline.
pub fn placeholders() -> Pipeline {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigmahq-placeholders.yml");
    Pipeline::placeholders("sigmahq-placeholders.yml", &std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Every corpus rule as one set, with `windows-evtx` and the placeholders.
pub fn load_windows_set(root: &Path) -> RuleSet {
    let mut list = Pipelines::resolve(&["windows-evtx"]).unwrap().list().to_vec();
    list.push(placeholders());
    rampart_rules::load_paths_with(&rule_dirs(root), &Pipelines::new(list)).unwrap_or_else(|d| panic!("{d}"))
}

/// The regression events (`regression_data/**/*.json`), as exported, in file order.
pub fn regression_events(root: &Path) -> Vec<Map<String, Value>> {
    let mut jsons = Vec::new();
    files(&root.join("regression_data"), &["json"], &mut jsons);
    jsons.sort();
    jsons
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            serde_json::Deserializer::from_str(&text)
                .into_iter::<Value>()
                .map(|v| match v.unwrap() {
                    Value::Object(m) => m,
                    other => panic!("{}: not an object: {other}", p.display()),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The events normalized as the engine sees them (ids by position, time 0).
pub fn normalized(exported: &[Map<String, Value>]) -> Vec<Map<String, Value>> {
    let norm = Normalizer::default();
    exported.iter().enumerate().map(|(i, d)| norm.normalize_at(Value::Object(d.clone()), EventId(i as u128), EventTime(0)).unwrap().doc).collect()
}
