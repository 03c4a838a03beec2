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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/sigma");
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
    let (mut loaded, mut refused) = (0usize, 0usize);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut examples: BTreeMap<String, String> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        match rampart_rules::load_str(&f.display().to_string(), &text) {
            Ok(set) => {
                assert!(!set.is_empty(), "{} loaded no rule", f.display());
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
    println!("SigmaHQ corpus: {total} files, {loaded} loaded, {refused} refused");
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
