use rampart_core::EventTime;
use rand::SeedableRng;
fn main() {
    let root = std::path::Path::new("../shared/corpora/sigma");
    let mut list = rampart_rules::Pipelines::resolve(&["windows-evtx"]).unwrap().list().to_vec();
    let ph = std::fs::read_to_string("rules/tests/sigmahq-placeholders.yml").unwrap();
    list.push(rampart_rules::Pipeline::placeholders("p", &ph).unwrap());
    let dirs = rampart_perf::scenarios::sigma::rule_dirs(root).unwrap();
    let set = rampart_rules::load_paths_with(&dirs, &rampart_rules::Pipelines::new(list)).unwrap();
    let m = rampart_rules::RuleMatcher::new(&set);
    println!("{}", m.stats());
    let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
    let t = EventTime(1_767_225_600_000);
    let evs = rampart_perf::gen::normalize(vec![rampart_perf::gen::windows_benign(&mut rng, t)], t, 1);
    println!("{}", serde_json::to_string(&evs[0].doc).unwrap());
    for c in m.candidates(&evs[0].doc) {
        let r = &set.rules[c];
        let rampart_rules::RuleKind::Detection(d) = &r.kind else { continue };
        let t = std::time::Instant::now();
        for _ in 0..2000 { std::hint::black_box(d.matches_doc(&evs[0].doc)); }
        println!("cand {:6.0} ns {} | {:?}", t.elapsed().as_nanos() as f64 / 2000.0, r.title, d.selections.iter().map(|s| s.name.clone()).collect::<Vec<_>>());
    }
    let n = 20000;
    let t0 = std::time::Instant::now();
    let mut out = Vec::new();
    for _ in 0..n { out.clear(); m.matches(&evs[0].doc, &mut out); }
    println!("matches {:?}: {:.0} ns", out, t0.elapsed().as_nanos() as f64 / n as f64);
}
#[allow(dead_code)]
fn unused() {}
