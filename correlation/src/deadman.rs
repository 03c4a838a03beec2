//! [`Deadman`]: "no events from X for T" per key, fired by processing-time (wall clock)
//! timers that the operator asks timely for, with no polling.
//!
//! Unlike every other operator in this crate, a deadman does not fire on event time: a
//! source that stops sending also stops the watermark it would have moved, so silence can
//! only be noticed on the wall clock. The price is that its output depends on when records
//! are processed, not only on what they are; the tests drive a live dataflow for that reason.

use crate::{Contribution, Crossing, Crossings, Events, Key, Number, Specs, Time};
use differential_dataflow::Hashable;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

/// Reports keys that have gone quiet: no record for the slot's window (`window_ms`, the
/// silence length `T`) of processing time.
///
/// Each record with a positive count, of a slot that has a spec, (re)arms its key: the
/// key's deadline becomes *now + T*, now being the wall clock when the operator processes
/// the record, and the record's [`Contribution`] becomes the key's last one (of several
/// records of a key processed together, the greatest by `(time, id)`). Records with no
/// spec, or with a count of zero or less, are ignored. When a deadline passes with no newer
/// record of its key, the operator emits one [`Crossing`] and forgets the key: a key that
/// comes back is armed again, a key never seen never fires. The crossing carries
///
/// - `time`: the watermark at the moment it fires (the least time of the operator's input
///   frontier), so the same silence gets a different stamp on a different run;
/// - `window_start`: the event time of the key's last contribution;
/// - `value`: the silence `T` in milliseconds;
/// - `events`: the last contribution alone;
/// - `trigger_accepted_ns`: [`rampart_core::metrics::clock_ns`] at firing.
///
/// The operator holds one capability, kept at the input frontier, so it never holds the
/// output back beyond its input. When the input closes it drops that capability and every
/// armed key: nothing fires after shutdown, and so a replay of a file, whose input closes
/// at its end, never fires a deadman (unless the replay itself is slower than `T`). A `T`
/// too long to add to the clock never fires. Records are exchanged by key, so each key is
/// watched by one worker.
///
/// Wake-ups are timely timers (`Activator::activate_after`) at the earliest deadline: a
/// parked worker (`Worker::step_or_park`) wakes for them, and an idle operator is not
/// scheduled in between.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Event};
/// use rampart_correlation::{Contribution, Deadman, WindowSpec};
///
/// // Slot 0: a host is silent after 20 ms without events.
/// let specs = Arc::new(vec![WindowSpec::at_least(20, 1, 1)]);
/// let fired = timely::execute_directly(move |worker| {
///     let (send, recv) = std::sync::mpsc::channel();
///     let mut input = worker.dataflow::<u64, _, _>(|scope| {
///         let (input, events) = scope.new_collection();
///         events.deadman(&specs).capture_into(send);
///         input
///     });
///     input.insert(((0u32, vec!["host-1".to_string()]), Contribution { time: 5, id: 1, accepted_ns: 0 }));
///     input.flush();
///     // The input stays open and nothing else arrives: only the operator's timer wakes it.
///     let start = Instant::now();
///     let mut fired = Vec::new();
///     while fired.is_empty() && start.elapsed() < Duration::from_secs(5) {
///         worker.step_or_park(Some(Duration::from_millis(5)));
///         for event in recv.try_iter() {
///             if let Event::Messages(_, batch) = event {
///                 fired.extend(batch);
///             }
///         }
///     }
///     fired
/// });
/// assert_eq!(fired.len(), 1);
/// assert_eq!((fired[0].key.as_slice(), fired[0].window_start), (&["host-1".to_string()][..], 5));
/// ```
pub trait Deadman<'scope> {
    /// Watches for silent keys (operator named `Deadman`).
    fn deadman(self, specs: &Specs) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.deadman_core("Deadman", specs)
    }

    /// As [`Deadman::deadman`], with the operator named `name`.
    fn deadman_core(self, name: &str, specs: &Specs) -> Crossings<'scope>;
}

/// A key being watched.
struct Armed {
    /// When it goes quiet, unless a record comes first.
    deadline: Instant,
    /// Its silence length `T` in ms.
    silence_ms: u64,
    /// Its last contribution.
    last: Contribution,
}

impl<'scope> Deadman<'scope> for Events<'scope> {
    fn deadman_core(self, name: &str, specs: &Specs) -> Crossings<'scope> {
        let specs = specs.clone();
        let scope = self.inner.scope();
        let pact = Exchange::new(|((k, _), _, _): &((Key, Contribution), Time, isize)| k.hashed());
        self.inner.unary_frontier::<CapacityContainerBuilder<Vec<Crossing>>, _, _, _>(pact, name, move |cap, info| {
            let activator = scope.activator_for(info.address);
            // The one capability, at the input frontier; `None` once the input has closed.
            let mut cap = Some(cap);
            let mut armed: HashMap<Key, Armed> = HashMap::new();
            // The armed keys by deadline: exactly one entry per key in `armed`.
            let mut deadlines: BTreeSet<(Instant, Key)> = BTreeSet::new();
            // The wake-up last asked for. Timely keeps every timer until it fires, so asking
            // again on every activation would grow its queue with the input rate.
            let mut scheduled: Option<Instant> = None;
            let mut arrived: HashMap<Key, Contribution> = HashMap::new();
            move |(input, frontier), output| {
                let now = Instant::now();
                input.for_each(|_, data| {
                    for ((key, c), _, r) in data.drain(..) {
                        if r <= 0 || specs.get(key.0 as usize).is_none() {
                            continue;
                        }
                        match arrived.entry(key) {
                            Entry::Occupied(mut e) => {
                                if (c.time, c.id) > (e.get().time, e.get().id) {
                                    e.insert(c);
                                }
                            }
                            Entry::Vacant(e) => {
                                e.insert(c);
                            }
                        }
                    }
                });
                let Some(least) = frontier.frontier().iter().min().copied() else {
                    // Input closed: no more records, so no more deadman alerts.
                    cap = None;
                    arrived.clear();
                    armed.clear();
                    deadlines.clear();
                    return;
                };
                let Some(held) = cap.as_mut() else { return };
                if *held.time() < least && held.try_downgrade(&least).is_err() {
                    return;
                }
                for (key, last) in arrived.drain() {
                    let Some(spec) = specs.get(key.0 as usize) else { continue };
                    // Borrow the key for the lookup and take it back, rather than clone it.
                    let key = match armed.remove(&key) {
                        Some(old) => {
                            let probe = (old.deadline, key);
                            deadlines.remove(&probe);
                            probe.1
                        }
                        None => key,
                    };
                    let Some(deadline) = now.checked_add(Duration::from_millis(spec.window_ms)) else { continue };
                    deadlines.insert((deadline, key.clone()));
                    armed.insert(key, Armed { deadline, silence_ms: spec.window_ms, last });
                }
                let mut session = output.session(held);
                while let Some(first) = deadlines.first() {
                    if first.0 > now {
                        break;
                    }
                    let Some((_, key)) = deadlines.pop_first() else { break };
                    let Some(gone) = armed.remove(&key) else { continue };
                    session.give(Crossing {
                        slot: key.0,
                        key: key.1,
                        time: least,
                        window_start: gone.last.time,
                        value: Number::from(gone.silence_ms),
                        events: vec![gone.last],
                        trigger_accepted_ns: rampart_core::metrics::clock_ns(),
                    });
                }
                if let Some(&(next, _)) = deadlines.first() {
                    // A wake-up still to come at or before `next` will do; otherwise ask.
                    if !scheduled.is_some_and(|s| s > now && s <= next) {
                        activator.activate_after(next.saturating_duration_since(now));
                        scheduled = Some(next);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WindowSpec;
    use differential_dataflow::input::Input;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::capture::{Capture, Event};

    /// The longest any run may take; a run still waiting then fails.
    const LIMIT: Duration = Duration::from_secs(5);

    /// What the workers do: feed each record (with its count) once `at` has passed since the
    /// start, worker `i % peers` feeding the `i`th; optionally advance the input time to
    /// the elapsed milliseconds as they go; optionally close their inputs at `close_at`.
    struct Script {
        specs: Specs,
        feeds: Vec<(Duration, Key, Contribution, isize)>,
        advance: bool,
        close_at: Option<Duration>,
    }

    /// A crossing, when it fired (from its `trigger_accepted_ns`) after the start, and the
    /// time of the batch it came in.
    #[derive(Debug)]
    struct Fired {
        after: Duration,
        stamp: Time,
        crossing: Crossing,
    }

    /// Runs `script` on `workers` workers, keeping inputs open (unless closed by the script)
    /// and stepping; collects crossings until `enough(fired, all workers done)` holds, then
    /// for `quiet` longer. Fails if `enough` does not hold within [`LIMIT`].
    fn drive(workers: usize, script: Script, enough: impl Fn(&[Fired], bool) -> bool, quiet: Duration) -> Vec<Fired> {
        let start = Instant::now();
        let start_ns = rampart_core::metrics::clock_ns();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let (send, recv) = std::sync::mpsc::channel();
        let send = Arc::new(Mutex::new(send));
        let script = Arc::new(script);
        let stuck = Arc::new(AtomicBool::new(false));
        let (stop2, done2, stuck2) = (stop.clone(), done.clone(), stuck.clone());
        let guards = timely::execute(timely::Config::process(workers), move |worker| {
            let send = send.lock().unwrap().clone();
            let (index, peers) = (worker.index(), worker.peers());
            let specs = script.specs.clone();
            let mut input = Some(worker.dataflow::<Time, _, _>(|scope| {
                let (input, events) = scope.new_collection();
                events.deadman(&specs).capture_into(send);
                input
            }));
            let mut next = 0;
            while !stop2.load(Ordering::SeqCst) && start.elapsed() < LIMIT {
                let elapsed = start.elapsed();
                if let Some(session) = input.as_mut() {
                    let ms = elapsed.as_millis() as Time;
                    if script.advance && ms > *session.time() {
                        session.advance_to(ms);
                    }
                    while let Some((_, key, c, r)) = script.feeds.get(next).filter(|f| f.0 <= elapsed) {
                        if next % peers == index {
                            session.update((key.clone(), c.clone()), *r);
                        }
                        next += 1;
                    }
                    session.flush();
                    if script.close_at.is_some_and(|at| elapsed >= at) {
                        input = None;
                    }
                }
                if !worker.step_or_park(Some(Duration::from_millis(5))) {
                    done2.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
            // Close the input and let the dataflow finish; one that does not (a capability
            // never let go) is dropped and reported, so a broken operator fails the test
            // instead of hanging it in timely's own drain.
            drop(input);
            while worker.has_dataflows() && start.elapsed() < LIMIT + Duration::from_secs(1) {
                worker.step_or_park(Some(Duration::from_millis(5)));
            }
            if worker.has_dataflows() {
                stuck2.store(true, Ordering::SeqCst);
                for id in worker.installed_dataflows() {
                    worker.drop_dataflow(id);
                }
            }
        })
        .unwrap();
        let mut fired = Vec::new();
        let take = |event: Event<Time, Vec<Crossing>>, fired: &mut Vec<Fired>| {
            if let Event::Messages(stamp, batch) = event {
                let stamp = *stamp.as_singleton().unwrap();
                for crossing in batch {
                    let after = Duration::from_nanos(crossing.trigger_accepted_ns - start_ns);
                    fired.push(Fired { after, stamp, crossing });
                }
            }
        };
        let mut until: Option<Instant> = None;
        let mut timed_out = false;
        loop {
            if let Ok(event) = recv.recv_timeout(Duration::from_millis(5)) {
                take(event, &mut fired);
            }
            if until.is_none() && enough(&fired, done.load(Ordering::SeqCst) == workers) {
                until = Some(Instant::now() + quiet);
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                break;
            }
            if start.elapsed() >= LIMIT {
                timed_out = true;
                break;
            }
        }
        // Stop the workers before any assertion, so a failure reports instead of hanging.
        stop.store(true, Ordering::SeqCst);
        for r in guards.join() {
            r.unwrap();
        }
        while let Ok(event) = recv.try_recv() {
            take(event, &mut fired);
        }
        assert!(!timed_out, "no result within {LIMIT:?} on {workers} workers; fired so far: {fired:#?}");
        assert!(!stuck.load(Ordering::SeqCst), "a dataflow did not finish after its input closed on {workers} workers");
        fired
    }

    fn key(slot: u32, name: &str) -> Key {
        (slot, vec![name.to_string()])
    }

    fn c(id: u128, t: Time) -> Contribution {
        Contribution { time: t, id, accepted_ns: id as u64 }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn specs(silences_ms: &[u64]) -> Specs {
        Arc::new(silences_ms.iter().map(|&w| WindowSpec::at_least(w, 1, 1)).collect())
    }

    #[test]
    fn a_silent_key_fires_once_after_the_silence_with_its_last_contribution() {
        // Three records of A arrive together: the greatest by (time, id) is the last one.
        // The input time never moves, so only the operator's own timer can wake it.
        let script = Script {
            specs: specs(&[100]),
            feeds: vec![(ms(0), key(0, "A"), c(1, 7), 1), (ms(0), key(0, "A"), c(2, 9), 1), (ms(0), key(0, "A"), c(3, 8), 1)],
            advance: false,
            close_at: None,
        };
        let fired = drive(1, script, |f, _| !f.is_empty(), ms(250));
        assert_eq!(fired.len(), 1, "{fired:#?}");
        let f = &fired[0];
        assert!(f.after >= ms(100), "fired after {:?}, before the silence", f.after);
        assert_eq!(f.stamp, 0, "stamped with the (unmoved) watermark");
        let expected = Crossing { slot: 0, key: vec!["A".into()], time: 0, window_start: 9, value: Number::from(100u64), events: vec![c(2, 9)], trigger_accepted_ns: f.crossing.trigger_accepted_ns };
        assert_eq!(f.crossing, expected);
    }

    #[test]
    fn a_fed_key_stays_quiet_and_fires_once_after_it_stops() {
        // B every 20 ms for 400 ms (alternating between the workers), silence 150 ms.
        let feeds = (0..=20u64).map(|i| (ms(i * 20), key(0, "B"), c(u128::from(i), i * 20), 1)).collect();
        let script = Script { specs: specs(&[150]), feeds, advance: true, close_at: None };
        let fired = drive(2, script, |f, _| !f.is_empty(), ms(300));
        assert_eq!(fired.len(), 1, "{fired:#?}");
        let f = &fired[0];
        assert!(f.after >= ms(400 + 150), "fired after {:?}, while B was still fed", f.after);
        assert_eq!((f.crossing.key.as_slice(), &f.crossing.events), (&["B".to_string()][..], &vec![c(20, 400)]));
        assert_eq!(f.crossing.time, f.stamp);
        // The watermark had passed the last record and not the firing moment.
        assert!(f.stamp >= 400 && u128::from(f.stamp) <= f.after.as_millis(), "stamp {} at {:?}", f.stamp, f.after);
    }

    #[test]
    fn unseen_and_fired_keys_stay_quiet_until_fed_again() {
        // A at 0 and again at 400; X has no spec (slot 1); D only retracted; C never seen.
        let feeds = vec![
            (ms(0), key(0, "A"), c(1, 0), 1),
            (ms(0), key(1, "X"), c(2, 0), 1),
            (ms(0), key(0, "D"), c(3, 0), -1),
            (ms(400), key(0, "A"), c(4, 400), 1),
        ];
        let script = Script { specs: specs(&[80]), feeds, advance: true, close_at: None };
        let fired = drive(1, script, |f, _| f.len() >= 2, ms(250));
        let seen: Vec<_> = fired.iter().map(|f| (f.crossing.key[0].as_str(), f.crossing.events.clone())).collect();
        assert_eq!(seen, vec![("A", vec![c(1, 0)]), ("A", vec![c(4, 400)])], "{fired:#?}");
        assert!(fired[0].after >= ms(80) && fired[1].after >= ms(400 + 80), "{fired:#?}");
    }

    #[test]
    fn one_and_two_workers_fire_the_same_keys() {
        // Six keys over two slots (60 and 120 ms), fed once each, 10 ms apart.
        let feeds: Vec<_> = (0..6u64).map(|i| (ms(i * 10), key((i % 2) as u32, &format!("k{i}")), c(u128::from(i), i * 10), 1)).collect();
        let expected: BTreeSet<_> = feeds.iter().map(|(_, k, c, _)| (k.clone(), c.clone())).collect();
        for workers in [1, 2] {
            let script = Script { specs: specs(&[60, 120]), feeds: feeds.clone(), advance: true, close_at: None };
            let fired = drive(workers, script, |f, _| f.len() >= 6, ms(200));
            let got: Vec<_> = fired.iter().map(|f| ((f.crossing.slot, f.crossing.key.clone()), f.crossing.events[0].clone())).collect();
            assert_eq!(got.len(), 6, "{workers} workers: {fired:#?}");
            assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected, "{workers} workers");
        }
    }

    #[test]
    fn closing_the_input_before_the_silence_fires_nothing_and_ends_the_dataflow() {
        for workers in [1, 2] {
            let script = Script { specs: specs(&[300]), feeds: vec![(ms(0), key(0, "A"), c(1, 0), 1)], advance: true, close_at: Some(ms(20)) };
            // `enough` once every worker has run out of dataflows: the operator let go.
            let fired = drive(workers, script, |_, done| done, ms(0));
            assert!(fired.is_empty(), "{workers} workers: {fired:#?}");
        }
    }
}
