//! Loads every SigmaHQ rule shipped in `../shared/corpora/sigma` (outside the repo) and
//! the Rampart rule library. The corpus must be present: a missing folder fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test-only helpers

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;
use common::corpus_root;

fn yml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    common::files(dir, &["yml", "yaml"], out);
}

/// Every SigmaHQ rule under `rules*/` must load. The 25 that use `expand` get their
/// placeholder values from `sigmahq-placeholders.yml` (what `--placeholders FILE` loads);
/// without it, exactly those are refused, each with R114 naming the placeholder, and nothing
/// else is. Loaded / refused counts and the reasons, grouped, are printed.
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
    let vars_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigmahq-placeholders.yml");
    let vars = rampart_rules::Pipeline::placeholders("sigmahq-placeholders.yml", &std::fs::read_to_string(vars_file).unwrap()).unwrap();
    let with_vars = rampart_rules::Pipelines::new(vec![vars]);
    let none = rampart_rules::Pipelines::default();
    let mut expand_refusals = 0usize;
    for (label, pipelines) in [("without placeholders", &none), ("with sigmahq-placeholders.yml", &with_vars)] {
        let (mut loaded, mut refused, mut warnings) = (0usize, 0usize, 0usize);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut examples: BTreeMap<String, String> = BTreeMap::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            match rampart_rules::load_sources_with(&[(f.display().to_string(), text)], pipelines) {
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
        println!("SigmaHQ corpus {label}: {total} files, {loaded} loaded ({warnings} warnings), {refused} refused");
        let mut by_count: Vec<_> = reasons.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1));
        for (reason, n) in by_count {
            println!("  {n:5}  {reason}");
        }
        for (k, ex) in examples.iter().take(5) {
            println!("--- example for {k}:\n{ex}");
        }
        if pipelines.is_empty() {
            assert!(reasons.keys().all(|k| k.starts_with("R114 ")), "refused for another reason than a placeholder: {reasons:?}");
            expand_refusals = refused;
        } else {
            assert_eq!(refused, 0, "{refused} of {total} SigmaHQ rules refused");
        }
    }
    assert!(expand_refusals >= 20, "only {expand_refusals} rules use `expand`? the corpus changed");
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

/// SigmaHQ's regression data, through the built-in `windows-evtx` pipeline on the events
/// exactly as exported (`{"Event": {"System": ..., "EventData": ...}}`). Every case present must
/// pass the way SigmaHQ's own runner (tests/regression_tests_runner.py) passes it: at least
/// `match_count` matching events when the case gives one (more is reported, as SigmaHQ warns),
/// else at least one. Some case files hold events the rule rightly does not match (Shai-Hulud:
/// 1 of 6 is the malicious child), so "every event matches" would be wrong. This checks
/// matching semantics and the pipeline's logsource conditions and field mapping together.
#[test]
fn sigmahq_regression_events_match() {
    let root = corpus_root();
    let reg = root.join("regression_data");
    assert!(reg.is_dir(), "SigmaHQ regression data missing at {}", reg.display());
    let pipelines = rampart_rules::Pipelines::resolve(&["windows-evtx"]).unwrap();
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
    let (mut passed, mut failed, mut no_case, mut more) = (0usize, Vec::new(), Vec::new(), Vec::new());
    for info in &infos {
        let text = std::fs::read_to_string(info).unwrap();
        let live: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        let field = |key: &str| live.iter().find_map(|l| l.trim().strip_prefix(key)).map(|v| v.trim().to_string());
        let (Some(rule_id), Some(path)) = (field("- id: "), field("path: ")) else {
            no_case.push(info.display().to_string()); // e.g. a commented-out case
            continue;
        };
        let match_count: Option<usize> = field("match_count: ").map(|n| n.parse().unwrap());
        let json_path = root.join(path.replace(".evtx", ".json"));
        let (file, rule_text) = by_id.get(&rule_id).unwrap_or_else(|| panic!("{}: rule {rule_id} not in the corpus", info.display()));
        assert!(json_path.is_file(), "{}: {} missing", info.display(), json_path.display());
        let set = match rampart_rules::load_sources_with(&[(file.display().to_string(), rule_text.clone())], &pipelines) {
            Ok(s) => s,
            Err(d) => {
                failed.push(format!("{}: refused: {}", file.display(), d.errors().next().map(|e| e.message.clone()).unwrap_or_default()));
                continue;
            }
        };
        let rampart_rules::RuleKind::Detection(det) = &set.rules[0].kind else { panic!("{} is not a detection", file.display()) };
        // One or more concatenated JSON records.
        let raw = std::fs::read_to_string(&json_path).unwrap();
        let events: Vec<serde_json::Value> =
            serde_json::Deserializer::from_str(&raw).into_iter::<serde_json::Value>().map(Result::unwrap).collect();
        let hits = events.iter().filter(|e| det.matches_doc(e.as_object().unwrap())).count();
        // The logsource condition is live: the same events on another channel never match.
        let moved = events.iter().any(|e| {
            let mut e = e.clone();
            e["Event"]["System"]["Channel"] = serde_json::json!("Some-Other/Operational");
            det.matches_doc(e.as_object().unwrap())
        });
        if moved {
            failed.push(format!("{}: matches events from another channel (no logsource condition?)", file.display()));
            continue;
        }
        let want = match_count.unwrap_or(1);
        if hits >= want {
            passed += 1;
            if match_count.is_some_and(|n| hits > n) {
                more.push(format!("{}: {hits} of {} events matched, match_count {want}", file.display(), events.len()));
            }
        } else {
            failed.push(format!("{}: {hits} of {} events matched, expected at least {want}", file.display(), events.len()));
        }
    }
    println!(
        "SigmaHQ regression cases (windows-evtx pipeline): {passed} passed, {} failed, {} info.yml without a case",
        failed.len(),
        no_case.len()
    );
    for f in &failed {
        println!("  failed: {f}");
    }
    for m in &more {
        println!("  more than match_count: {m}");
    }
    for n in &no_case {
        println!("  no case: {n}");
    }
    assert!(passed >= 149, "only {passed} regression cases present and passing");
    assert!(failed.is_empty(), "{} regression cases failed:\n{}", failed.len(), failed.join("\n"));
}

/// With `windows-evtx`, a rule for another product (Linux, macOS, cloud, network, web:
/// SigmaHQ's tree holds them all) matches no Windows event: its logsource gets no
/// Channel/EventID condition, and the pipeline's `other_logsources` item keeps it to
/// events without a Windows channel. Without a pipeline, several of them match the same
/// events (an Azure sign-in rule and a Zeek RDP rule are all `not`, so they match nearly
/// everything), which is what the item is for.
#[test]
fn other_products_rules_stay_off_windows_events() {
    let root = corpus_root();
    let events = common::regression_events(&root);
    assert!(events.len() >= 149, "{} regression events", events.len());
    let windows = common::load_windows_set(&root);
    let bare = rampart_rules::load_paths_with(&common::rule_dirs(&root), &rampart_rules::Pipelines::new(vec![common::placeholders()])).unwrap_or_else(|d| panic!("{d}"));
    let foreign = |set: &rampart_rules::RuleSet| -> Vec<String> {
        let m = rampart_rules::RuleMatcher::new(set);
        let mut out = Vec::new();
        let mut hits = Vec::new();
        for e in &events {
            hits.clear();
            m.matches(e, &mut hits);
            for &i in &hits {
                let r = &set.rules[i];
                let rampart_rules::RuleKind::Detection(d) = &r.kind else { continue };
                let ls = &d.logsource;
                let windows_rule = ls.product.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("windows")) || (ls.product.is_none() && ls.category.as_deref() == Some("antivirus"));
                if !windows_rule {
                    out.push(format!("{} ({:?})", r.title, ls));
                }
            }
        }
        out
    };
    let without = foreign(&bare);
    assert!(without.len() >= events.len(), "without a pipeline other products' rules match Windows events ({} matches); else this test proves nothing", without.len());
    let with = foreign(&windows);
    assert!(with.is_empty(), "{} matches of other products' rules on Windows events, e.g. {:?}", with.len(), &with[..with.len().min(5)]);
}
