//! One correlation step: a single keyed record into a `WindowedCount` (30 s sliding window,
//! threshold 50, 100,000 keys in rotation) and the time advanced past it, stepping the
//! dataflow until the probe says the step is done. This is the engine's per-epoch cost
//! floor for one record, differential's progress tracking included.

use criterion::Criterion;
use differential_dataflow::input::Input;
use rampart_correlation::{Contribution, WindowSpec, WindowedCount};
use std::sync::Arc;
use timely::dataflow::operators::Probe;

fn main() {
    // Criterion is made inside the worker's closure: `execute_directly` wants a `Send`
    // closure and a `Criterion` is not one.
    timely::execute_directly(move |worker| {
        let mut criterion = Criterion::default().configure_from_args();
        let c = &mut criterion;
        let specs = Arc::new(vec![WindowSpec::at_least(30_000, 50, 100)]);
        let (mut input, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, events) = scope.new_collection();
            let (probe, _) = events.windowed_count(&specs).probe();
            (input, probe)
        });
        let keys: Vec<(u32, Vec<String>)> = (0..100_000).map(|k| (0u32, vec![format!("\"{}\"", rampart_perf::gen::key_ip(k))])).collect();
        let mut t = 1u64;
        let mut id = 0u128;
        c.bench_function("correlation/windowed_count_one_record_one_step", |b| {
            b.iter(|| {
                let key = keys[(id as usize) % keys.len()].clone();
                id += 1;
                input.update_at((key, Contribution { time: t, id, accepted_ns: 0 }), t, 1);
                t += 1;
                input.advance_to(t);
                input.flush();
                while probe.less_than(input.time()) {
                    worker.step();
                }
            })
        });
        let mut batch_t = t;
        c.bench_function("correlation/windowed_count_1024_records_one_step", |b| {
            b.iter(|| {
                for _ in 0..1024 {
                    let key = keys[(id as usize) % keys.len()].clone();
                    id += 1;
                    input.update_at((key, Contribution { time: batch_t, id, accepted_ns: 0 }), batch_t, 1);
                }
                batch_t += 1;
                input.advance_to(batch_t);
                input.flush();
                while probe.less_than(input.time()) {
                    worker.step();
                }
            })
        });
        criterion.final_summary();
    });
}
