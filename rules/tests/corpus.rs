//! Loads every SigmaHQ rule shipped in `../shared/corpora/sigma` (outside the repo) and
//! the Rampart rule library. The corpus must be present: a missing folder fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test-only helpers

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn yml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn sigmahq_corpus_loads() {
    let root = corpus_root();
    assert!(root.is_dir(), "SigmaHQ corpus missing at {}", root.display());
    let mut files = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("rules") {
            yml_files(&p, &mut files);
        }
    }
    files.sort();
    assert!(files.len() > 3000, "expected ~3,800 rules, found {}", files.len());
    let (mut loaded, mut refused, mut warnings) = (0usize, 0usize, 0usize);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut examples: BTreeMap<String, String> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        match rampart_rules::load_str(&f.display().to_string(), &text) {
            Ok(set) => {
                assert!(!set.is_empty(), "{} loaded no rule", f.display());
                warnings += set.warnings.len();
                loaded += 1;
            }
            Err(d) => {
                refused += 1;
                let errors: Vec<_> = d.errors().collect();
                assert!(!errors.is_empty(), "{} refused without an error", f.display());
                for e in errors {
                    assert!(!e.message.is_empty() && e.line > 0, "refusal without a reason or position: {e:?}");
                    // Group by code and the message with quoted specifics removed.
                    let generic: String = e.message.split('`').enumerate().map(|(i, s)| if i % 2 == 1 { "…" } else { s }).collect();
                    let key = format!("{} {}", e.code, generic);
                    *reasons.entry(key.clone()).or_default() += 1;
                    examples.entry(key).or_insert_with(|| e.to_string());
                }
            }
        }
    }
    let total = loaded + refused;
    println!("SigmaHQ corpus: {total} files, {loaded} loaded ({warnings} warnings), {refused} refused");
    let mut by_count: Vec<_> = reasons.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1));
    for (reason, n) in by_count {
        println!("  {n:5}  {reason}");
    }
    for (k, ex) in examples.iter().take(40) {
        println!("--- example for {k}:\n{ex}");
    }
    assert!(loaded * 100 >= total * 95, "only {loaded} of {total} SigmaHQ rules load");
}

#[test]
fn shipped_library_loads() {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    let set = match rampart_rules::load_paths(&[lib]) {
        Ok(s) => s,
        Err(d) => panic!("library does not load:\n{d}"),
    };
    assert!(set.len() >= 14, "library has {} rules", set.len());
}

/// Flattens one exported EVTX record (`{"Event": {"System": ..., "EventData": ...}}`) the
/// way Sigma's Windows field names expect: EventData/UserData fields at the top level plus
/// `EventID`, `Channel`, `Provider_Name`, `Computer` from System.
fn flatten_evtx(v: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let mut doc = serde_json::Map::new();
    let ev = &v["Event"];
    for section in ["EventData", "UserData"] {
        if let Some(o) = ev[section].as_object() {
            for (k, v) in o {
                match v {
                    // UserData nests one level (`{"EventXML": {...}}`).
                    serde_json::Value::Object(inner) if section == "UserData" => {
                        for (k2, v2) in inner {
                            doc.insert(k2.clone(), v2.clone());
                        }
                    }
                    _ => {
                        doc.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    let sys = &ev["System"];
    doc.insert("EventID".into(), sys["EventID"].clone());
    doc.insert("Channel".into(), sys["Channel"].clone());
    doc.insert("Computer".into(), sys["Computer"].clone());
    doc.insert("Provider_Name".into(), sys["Provider"]["#attributes"]["Name"].clone());
    doc
}

/// SigmaHQ's regression data: for each rule with a positive test, the exported event must
/// match the compiled detection. This checks semantics, not just loading. The known miss
/// (RedSun/Defender 1119) writes `SourceName` while the event says `Source Name`: a field
/// mapping a pipeline would supply, not a matcher bug.
#[test]
fn sigmahq_regression_events_match() {
    let root = corpus_root();
    let reg = root.join("regression_data");
    assert!(reg.is_dir(), "SigmaHQ regression data missing at {}", reg.display());
    // Rule id -> file, over the rule folders.
    let mut files = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("rules") {
            yml_files(&p, &mut files);
        }
    }
    let mut by_id = std::collections::HashMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("id: ")) {
            by_id.insert(id.trim().to_string(), (f.clone(), text.clone()));
        }
    }
    let mut infos = Vec::new();
    yml_files(&reg, &mut infos);
    infos.retain(|p| p.file_name().is_some_and(|n| n == "info.yml"));
    infos.sort();
    let (mut matched, mut missed, mut skipped) = (0usize, Vec::new(), 0usize);
    for info in &infos {
        let text = std::fs::read_to_string(info).unwrap();
        let Some(rule_id) = text.lines().find_map(|l| l.trim().strip_prefix("- id: ")).map(str::trim) else { continue };
        let Some(json_path) = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .find_map(|l| l.trim().strip_prefix("path: "))
            .map(|p| root.join(p.trim().replace(".evtx", ".json")))
        else {
            continue;
        };
        let (Some((file, rule_text)), true) = (by_id.get(rule_id), json_path.is_file()) else {
            skipped += 1;
            continue;
        };
        let set = match rampart_rules::load_str(&file.display().to_string(), rule_text) {
            Ok(s) => s,
            Err(_) => {
                skipped += 1; // refusals are counted and explained by sigmahq_corpus_loads
                continue;
            }
        };
        let rampart_rules::RuleKind::Detection(det) = &set.rules[0].kind else { continue };
        // One or more concatenated JSON records.
        let raw = std::fs::read_to_string(&json_path).unwrap();
        let events: Vec<serde_json::Value> =
            serde_json::Deserializer::from_str(&raw).into_iter::<serde_json::Value>().map(Result::unwrap).collect();
        if events.iter().any(|e| det.matches_doc(&flatten_evtx(e))) {
            matched += 1;
        } else {
            missed.push(file.display().to_string());
        }
    }
    println!("SigmaHQ regression events: {matched} matched, {} missed, {skipped} skipped", missed.len());
    for m in &missed {
        println!("  missed: {m}");
    }
    assert!(matched >= 100, "only {matched} regression events matched");
    assert!(matched * 100 >= (matched + missed.len()) * 95, "{} of {} positive regression events did not match", missed.len(), matched + missed.len());
}

/// The SigmaHQ corpus: `$RAMPART_SIGMA_CORPUS`, or `shared/corpora/sigma` beside the
/// repository (where CI and every developer machine have it).
fn corpus_root() -> std::path::PathBuf {
    match std::env::var_os("RAMPART_SIGMA_CORPUS") {
        Some(p) => std::path::PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/sigma"),
    }
}
