//! EVTX input: every SigmaHQ regression case's `.evtx` file, read by the file input's EVTX
//! reader, gives the same records and the same detections (through the `windows-evtx`
//! pipeline) as its JSON twin. The corpus is read from `../shared/corpora/sigma` (or
//! `$RAMPART_SIGMA_CORPUS`); a missing corpus fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_tests::workspace_root;
use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    match std::env::var_os("RAMPART_SIGMA_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("../shared/corpora/sigma"),
    }
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

#[test]
fn regression_evtx_files_match_their_json_twins() {
    let root = corpus_root();
    let reg = root.join("regression_data");
    assert!(reg.is_dir(), "SigmaHQ regression data missing at {}", reg.display());
    let pipelines = rampart_rules::Pipelines::resolve(&["windows-evtx"]).unwrap();
    let mut rules = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("rules") {
            files(&p, "yml", &mut rules);
        }
    }
    let mut by_id = std::collections::HashMap::new();
    for f in &rules {
        let text = std::fs::read_to_string(f).unwrap();
        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("id: ")) {
            by_id.insert(id.trim().to_string(), (f.display().to_string(), text));
        }
    }
    let mut evtx_files = Vec::new();
    files(&reg, "evtx", &mut evtx_files);
    evtx_files.sort();
    let (mut cases, mut events, mut hits) = (0usize, 0usize, 0usize);
    for evtx in &evtx_files {
        let twin = evtx.with_extension("json");
        let raw = std::fs::read_to_string(&twin).unwrap_or_else(|e| panic!("{}: {e}", twin.display()));
        let json: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&raw).into_iter().map(Result::unwrap).collect();
        let read: Vec<serde_json::Value> = rampart_connectors::file::evtx_records(evtx.to_str().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", evtx.display()))
            .into_iter()
            .map(|r| {
                let mut doc = r.unwrap_or_else(|e| panic!("{}: {e}", evtx.display())).1;
                assert!(doc["utctimestamp"].is_string(), "record time carried");
                doc.as_object_mut().unwrap().remove("utctimestamp");
                doc
            })
            .collect();
        assert_eq!(read.len(), json.len(), "{}: record count", evtx.display());
        // The twins were rendered by an older evtx_dump: GUIDs without braces in upper case,
        // SystemTime with 6 fraction digits. Same events otherwise; detections must agree.
        for (r, j) in read.iter().zip(&json) {
            assert_eq!(r["Event"]["System"]["EventRecordID"], j["Event"]["System"]["EventRecordID"], "{}: record order", evtx.display());
            assert_eq!(r["Event"]["EventData"].as_object().map(|o| o.len()), j["Event"]["EventData"].as_object().map(|o| o.len()), "{}", evtx.display());
        }
        // The rule of the case (its id is the file stem), through the pipeline.
        let id = evtx.file_stem().unwrap().to_string_lossy().to_string();
        let Some((file, text)) = by_id.get(&id) else { panic!("{}: no rule {id}", evtx.display()) };
        let set = rampart_rules::load_sources_with(&[(file.clone(), text.clone())], &pipelines).unwrap();
        let rampart_rules::RuleKind::Detection(det) = &set.rules[0].kind else { panic!("{file}: not a detection") };
        let of = |docs: &[serde_json::Value]| docs.iter().map(|d| det.matches_doc(d.as_object().unwrap())).collect::<Vec<_>>();
        let (a, b) = (of(&read), of(&json));
        assert_eq!(a, b, "{}: detections differ", evtx.display());
        assert!(a.iter().any(|x| *x), "{}: the rule detects nothing", evtx.display());
        cases += 1;
        events += read.len();
        hits += a.iter().filter(|x| **x).count();
    }
    println!("EVTX regression files: {cases} cases, {events} records, {hits} detections, the same as from the JSON twins");
    assert!(cases >= 149, "only {cases} EVTX cases found");
}
