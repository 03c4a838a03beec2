//! Keeps STYLE.md's crate map true: each workspace crate's dependencies (direct and
//! transitive, normal dependencies only) must avoid the crates its row forbids.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const RULES: &[(&str, &[&str])] = &[
    ("rampart-core", &["rampart-rules", "rampart-correlation", "rampart-engine", "rampart-connectors", "rampart-actors", "rampart"]),
    ("rampart-rules", &["timely", "differential-dataflow", "actix", "tokio", "rampart-correlation", "rampart-engine", "rampart-connectors", "rampart-actors"]),
    ("rampart-correlation", &["rampart-rules", "rampart-connectors", "rampart-engine", "rampart-actors", "actix", "tokio"]),
    ("rampart-engine", &["rampart-connectors", "rampart-actors", "actix", "lapin", "elasticsearch"]),
    ("rampart-connectors", &["rampart-engine", "rampart-actors", "timely", "differential-dataflow", "actix"]),
];

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// name -> names of its normal (non-dev, non-build) dependencies, from the resolve graph.
fn graph(meta: &Value) -> (BTreeMap<String, String>, BTreeMap<String, Vec<String>>) {
    let mut names = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        names.insert(p["id"].as_str().unwrap().to_string(), p["name"].as_str().unwrap().to_string());
    }
    let mut edges = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap().to_string();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null()))
            .map(|d| d["pkg"].as_str().unwrap().to_string())
            .collect();
        edges.insert(id, deps);
    }
    (names, edges)
}

fn reachable(start: &str, edges: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![start.to_string()];
    while let Some(id) = stack.pop() {
        for d in edges.get(&id).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn crate_map_has_no_forbidden_edges() {
    let meta = metadata();
    let (names, edges) = graph(&meta);
    let id_of = |name: &str| names.iter().find(|(_, n)| n.as_str() == name).map(|(id, _)| id.clone());
    let mut violations = Vec::new();
    for (krate, forbidden) in RULES {
        let id = id_of(krate).unwrap_or_else(|| panic!("workspace crate {krate} not found"));
        let reach: BTreeSet<String> = reachable(&id, &edges).into_iter().filter_map(|d| names.get(&d).cloned()).collect();
        for f in *forbidden {
            if reach.contains(*f) {
                violations.push(format!("{krate} depends on {f}"));
            }
        }
    }
    // Nothing depends on perf or tests.
    for (id, deps) in &edges {
        for d in deps {
            let dn = names.get(d).map(String::as_str).unwrap_or("");
            if dn == "rampart-perf" || dn == "rampart-tests" {
                violations.push(format!("{} depends on {dn}", names[id]));
            }
        }
    }
    assert!(violations.is_empty(), "STYLE.md crate map violated:\n{}", violations.join("\n"));
}

#[test]
fn every_workspace_crate_depends_on_core() {
    let meta = metadata();
    let (names, edges) = graph(&meta);
    for krate in ["rampart-rules", "rampart-correlation", "rampart-engine", "rampart-connectors", "rampart-actors", "rampart"] {
        let id = names.iter().find(|(_, n)| n.as_str() == krate).map(|(id, _)| id.clone()).unwrap();
        let direct: Vec<&str> = edges[&id].iter().filter_map(|d| names.get(d).map(String::as_str)).collect();
        assert!(direct.contains(&"rampart-core"), "{krate} does not use rampart-core: {direct:?}");
    }
}
