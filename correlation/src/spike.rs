//! [`Spikes`]: the number of records per key in the current window against the reference
//! window(s) before it, fired when it rises (or falls) by a ratio. State can be saved and
//! restored ([`crate::Keep`]).

use crate::persist::{at_least, extents, In, Keep, Offers, Saved};
use crate::{Contribution, Crossing, Crossings, Events, Key, Number, Slot, Time};
use differential_dataflow::Hashable;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Map as _, ToStream as _};
use timely::dataflow::operators::{Capability, Concat};

/// Which way a spike goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The current count rose to at least `ratio` times the reference.
    Up,
    /// The reference is at least `ratio` times the current count.
    Down,
    /// Either.
    Both,
}

/// How one spike slot behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeSpec {
    /// Window length `w` (ms): the current window ending at `T` is `(T − w, T]`.
    pub window_ms: u64,
    /// Reference windows `n` (at least 1): `(T − (n+1)·w, T − w]`, measured per window
    /// (its count divided by `n`).
    pub reference_windows: u32,
    /// Which way.
    pub direction: Direction,
    /// The ratio (more than 1).
    pub ratio: f64,
    /// The current count must be at least this.
    pub min_current: u64,
    /// The reference (per window) must be at least this.
    pub min_reference: u64,
    /// At most this many of the current window's newest records are reported.
    pub max_refs: usize,
}

impl SpikeSpec {
    /// Does a current count and a reference total meet the spec?
    pub fn is_met(&self, current: u64, reference: u64) -> bool {
        let n = f64::from(self.reference_windows.max(1));
        let (c, r) = (current as f64, reference as f64 / n);
        if current < self.min_current || !at_least(r, self.min_reference as f64) {
            return false;
        }
        let up = current > 0 && at_least(c, self.ratio * r);
        let down = reference > 0 && at_least(r, self.ratio * c);
        match self.direction {
            Direction::Up => up,
            Direction::Down => down,
            Direction::Both => up || down,
        }
    }

    /// When a record at `t` moves from the current window to the reference, and when it
    /// leaves the reference.
    fn moves(&self, t: Time) -> (Time, Time) {
        let w = self.window_ms.max(1);
        (t.saturating_add(w), t.saturating_add(w.saturating_mul(u64::from(self.reference_windows.max(1)) + 1)))
    }
}

/// Specs indexed by slot; `None` (or a missing slot) is not a spike slot.
pub type SpikeSpecs = Arc<Vec<Option<SpikeSpec>>>;

/// Compares, per key, the records in the current window with the reference window(s).
///
/// The measure changes only when a record enters the current window (at its time), moves to
/// the reference (`w` later) or leaves it (`(n+1)·w` later); at each such time, once the
/// frontier has passed it, the condition ([`SpikeSpec::is_met`]) is evaluated, and going
/// from not met to met fires one [`Crossing`] (value: the current count; window: the
/// current window; events: its newest records). Nothing is evaluated past a slot's newest
/// record when input ends: the end of input is not a drop in traffic.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::capture::{Capture, Extract};
/// use rampart_correlation::{Contribution, Direction, Keep, SpikeSpec, Spikes};
///
/// // 10 ms windows, up by 3 times, at least 3 now and 1 before.
/// let spec = SpikeSpec { window_ms: 10, reference_windows: 1, direction: Direction::Up, ratio: 3.0, min_current: 3, min_reference: 1, max_refs: 10 };
/// let specs = Arc::new(vec![Some(spec)]);
/// let recv = timely::example(move |scope| {
///     let (mut input, records) = scope.new_collection();
///     for (id, t) in [(1u128, 5u64), (2, 12), (3, 13), (4, 14), (5, 20)] {
///         input.update_at(((0u32, vec!["web1".to_string()]), Contribution { time: t, id, accepted_ns: 0 }), t, 1);
///     }
///     records.spikes(&specs, Keep::default()).capture()
/// });
/// let fired: Vec<_> = recv.extract().into_iter().flat_map(|(_, v)| v).collect();
/// // Until 15 the record at 5 is still current (nothing before it). At 15 it moves to the
/// // reference: 3 records in (5, 15] against 1 in (-5, 5].
/// assert_eq!(fired.iter().map(|c| (c.time, c.value.get())).collect::<Vec<_>>(), vec![(15, 3.0)]);
/// ```
pub trait Spikes<'scope> {
    /// Watches for spikes (operators named `Spikes`).
    fn spikes(self, specs: &SpikeSpecs, keep: Keep) -> Crossings<'scope>
    where
        Self: Sized,
    {
        self.spikes_core("Spikes", specs, keep)
    }

    /// As [`Spikes::spikes`], with the operators named after `name`.
    fn spikes_core(self, name: &str, specs: &SpikeSpecs, keep: Keep) -> Crossings<'scope>;
}

/// One key's windows.
#[derive(Default)]
struct Group {
    current: u64,
    reference: u64,
    met: bool,
    /// The newest contributions, oldest first.
    refs: VecDeque<Contribution>,
}

/// Work due at one time: arrivals, and per key the records moving to the reference and
/// leaving it.
struct Due {
    cap: Option<Capability<Time>>,
    arrivals: Vec<(Key, Contribution)>,
    moves: HashMap<Key, (u32, u32)>,
}

impl Due {
    fn new(cap: Option<Capability<Time>>) -> Due {
        Due { cap, arrivals: Vec::new(), moves: HashMap::new() }
    }
}

/// Adds work at `t` (a capability for it taken from `cap`, which is not later).
fn at<'d>(due: &'d mut BTreeMap<Time, Due>, t: Time, cap: Option<&Capability<Time>>) -> &'d mut Due {
    due.entry(t).or_insert_with(|| Due::new(cap.map(|c| c.delayed(&t))))
}

impl<'scope> Spikes<'scope> for Events<'scope> {
    fn spikes_core(self, name: &str, specs: &SpikeSpecs, keep: Keep) -> Crossings<'scope> {
        let scope = self.inner.scope();
        let worker = scope.index();
        let records = self.inner.flat_map(|((k, c), _, r)| (r > 0).then_some(In::Record(k, c)));
        let restored = keep.restore.clone().into_iter().map(In::Saved).to_stream(scope);
        let all = records.concat(restored);
        let extent_stream = extents(name, all.clone());
        let pact = Exchange::new(|x: &In| match x {
            In::Record((slot, key), _) | In::Saved(Saved::Pending { slot, key, .. }) | In::Saved(Saved::Spike { slot, group: key, .. }) => (*slot, key.as_slice()).hashed(),
            In::Saved(_) => 0,
        });
        let specs = specs.clone();
        let own = name.to_string();
        all.binary_frontier::<_, CapacityContainerBuilder<Vec<Crossing>>, _, _, _, _>(extent_stream, pact, Pipeline, name, move |_, _| {
            let mut offers = Offers::new(&keep, &own, worker);
            let mut due: BTreeMap<Time, Due> = BTreeMap::new();
            let mut extent: HashMap<Slot, (Time, Time)> = HashMap::new();
            // Per slot, nothing is evaluated before this (from a restored snapshot).
            let mut floors: HashMap<Slot, Time> = HashMap::new();
            let mut groups: HashMap<Key, Group> = HashMap::new();
            move |(input, frontier), (ext, ext_frontier), output| {
                ext.for_each(|_, data| {
                    for (slot, first, newest) in data.drain(..) {
                        let e = extent.entry(slot).or_insert((first, newest));
                        *e = (e.0.min(first), e.1.max(newest));
                    }
                });
                input.for_each(|cap, data| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    for item in data.drain(..) {
                        match item {
                            In::Record((slot, key), c) | In::Saved(Saved::Pending { slot, key, contribution: c }) => {
                                if specs.get(slot as usize).and_then(Option::as_ref).is_some() {
                                    let t = c.time.max(*cap.time());
                                    at(&mut due, t, Some(&cap)).arrivals.push(((slot, key), c));
                                }
                            }
                            In::Saved(Saved::Spike { slot, group, current, reference, met, floor, refs, moves }) => {
                                let f = floors.entry(slot).or_insert(floor);
                                *f = (*f).max(floor);
                                let key = (slot, group);
                                for (t, to_reference, leaving) in moves {
                                    let m = at(&mut due, t, Some(&cap)).moves.entry(key.clone()).or_default();
                                    m.0 += to_reference;
                                    m.1 += leaving;
                                }
                                groups.insert(key, Group { current, reference, met, refs: refs.into() });
                            }
                            In::Saved(_) => {}
                        }
                    }
                });
                let ended = frontier.frontier().is_empty() && ext_frontier.frontier().is_empty();
                // Work past a slot's newest record when input has ended: kept, not done.
                let mut left: BTreeMap<Time, Due> = BTreeMap::new();
                while let Some(entry) = due.first_entry() {
                    let now = *entry.key();
                    if !ended && (frontier.less_equal(&now) || ext_frontier.less_equal(&now)) {
                        break;
                    }
                    let Due { cap, mut arrivals, moves } = entry.remove();
                    let past = |slot: Slot| ended && extent.get(&slot).is_none_or(|e| now > e.1);
                    arrivals.sort();
                    let mut touched = BTreeSet::new();
                    for (key, c) in arrivals {
                        let Some(spec) = specs.get(key.0 as usize).and_then(Option::as_ref) else { continue };
                        let floor = floors.get(&key.0).copied().unwrap_or(0);
                        if past(key.0) {
                            at(&mut left, now, None).arrivals.push((key, c));
                            continue;
                        }
                        if floor > now {
                            // Older than the restored state: counted where it still falls, evaluated from the floor.
                            at(&mut due, floor, cap.as_ref()).arrivals.push((key, c));
                            continue;
                        }
                        let (to_reference, leaving) = spec.moves(c.time);
                        let g = groups.entry(key.clone()).or_default();
                        if to_reference > now {
                            g.current += 1;
                            at(&mut due, to_reference, cap.as_ref()).moves.entry(key.clone()).or_default().0 += 1;
                        } else if leaving > now {
                            g.reference += 1;
                        } else {
                            continue;
                        }
                        at(&mut due, leaving, cap.as_ref()).moves.entry(key.clone()).or_default().1 += 1;
                        g.refs.push_back(c);
                        while g.refs.len() > spec.max_refs.max(1) {
                            g.refs.pop_front();
                        }
                        touched.insert(key);
                    }
                    for (key, (to_reference, leaving)) in moves {
                        if past(key.0) {
                            let m = at(&mut left, now, None).moves.entry(key).or_default();
                            m.0 += to_reference;
                            m.1 += leaving;
                            continue;
                        }
                        let g = groups.entry(key.clone()).or_default();
                        g.current = g.current.saturating_sub(u64::from(to_reference));
                        g.reference = (g.reference + u64::from(to_reference)).saturating_sub(u64::from(leaving));
                        touched.insert(key);
                    }
                    let mut fired = Vec::new();
                    for key in touched {
                        let Some(spec) = specs.get(key.0 as usize).and_then(Option::as_ref) else { continue };
                        let Some(g) = groups.get_mut(&key) else { continue };
                        let met = spec.is_met(g.current, g.reference);
                        if met && !g.met {
                            let start = now.saturating_add(1).saturating_sub(spec.window_ms);
                            let events: Vec<Contribution> = g.refs.iter().filter(|c| c.time >= start && c.time <= now).cloned().collect();
                            fired.push(Crossing {
                                slot: key.0,
                                key: key.1.clone(),
                                time: now,
                                window_start: start,
                                value: Number::from(g.current),
                                trigger_accepted_ns: events.iter().map(|c| c.accepted_ns).max().unwrap_or(0),
                                events,
                            });
                        }
                        g.met = met;
                        if g.current == 0 && g.reference == 0 {
                            groups.remove(&key);
                        }
                    }
                    if let (false, Some(cap)) = (fired.is_empty(), cap) {
                        output.session(&cap).give_iterator(fired.into_iter());
                    }
                }
                if offers.due(ended) {
                    // Times before the frontier are done; when input has ended, a slot is
                    // done up to its newest record.
                    let done = frontier.frontier().first().copied().unwrap_or(0);
                    let floor = |slot: Slot| {
                        let f = if ended { extent.get(&slot).map_or(0, |e| e.1.saturating_add(1)) } else { done };
                        f.max(floors.get(&slot).copied().unwrap_or(0))
                    };
                    let pending = due.iter().chain(left.iter());
                    let mut moves: HashMap<&Key, Vec<(Time, u32, u32)>> = HashMap::new();
                    let mut entries: Vec<Saved> = extent.iter().map(|(&slot, &(first, newest))| Saved::Extent { slot, first, newest }).collect();
                    for (t, d) in pending {
                        for (key, (a, b)) in &d.moves {
                            moves.entry(key).or_default().push((*t, *a, *b));
                        }
                        entries.extend(d.arrivals.iter().map(|((slot, key), c)| Saved::Pending { slot: *slot, key: key.clone(), contribution: c.clone() }));
                    }
                    for (key, g) in &groups {
                        entries.push(Saved::Spike {
                            slot: key.0,
                            group: key.1.clone(),
                            current: g.current,
                            reference: g.reference,
                            met: g.met,
                            floor: floor(key.0),
                            refs: g.refs.iter().cloned().collect(),
                            moves: moves.remove(key).unwrap_or_default(),
                        });
                    }
                    offers.offer(ended, entries);
                }
                if ended {
                    groups.clear();
                    due.clear();
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{run_kept, shuffled};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    type Rec = ((Key, Contribution), Time);

    fn run(workers: usize, records: Vec<Rec>, specs: SpikeSpecs, restore: Vec<Saved>) -> (Vec<Crossing>, Vec<Saved>) {
        let (out, parts) = run_kept(workers, records, specs, restore, |c, s, k| c.spikes(s, k));
        (out, parts.into_iter().filter(|p| p.last).flat_map(|p| p.entries).collect())
    }

    fn rec(id: u128, t: Time, key: &str) -> Rec {
        (((0, vec![key.to_string()]), Contribution { time: t, id, accepted_ns: id as u64 }), t)
    }

    fn spec(direction: Direction, ratio: f64, min_current: u64, min_reference: u64) -> SpikeSpec {
        SpikeSpec { window_ms: 10, reference_windows: 1, direction, ratio, min_current, min_reference, max_refs: 3 }
    }

    /// From scratch: every millisecond up to the slot's newest record.
    fn oracle(records: &[Rec], specs: &[Option<SpikeSpec>]) -> Vec<Crossing> {
        let keys: BTreeSet<&Key> = records.iter().map(|((k, _), _)| k).collect();
        let mut out = Vec::new();
        for key in keys {
            let Some(spec) = &specs[key.0 as usize] else { continue };
            let newest = records.iter().filter(|((k, _), _)| k.0 == key.0).map(|r| r.1).max().unwrap();
            let mine: Vec<&Contribution> = records.iter().filter(|((k, _), _)| k == key).map(|((_, c), _)| c).collect();
            let (w, n) = (spec.window_ms as i64, i64::from(spec.reference_windows));
            let mut before = false;
            for now in 0..=newest {
                let t = now as i64;
                let cur: Vec<&&Contribution> = mine.iter().filter(|c| (c.time as i64) > t - w && (c.time as i64) <= t).collect();
                let reference = mine.iter().filter(|c| (c.time as i64) > t - (n + 1) * w && (c.time as i64) <= t - w).count() as u64;
                let met = spec.is_met(cur.len() as u64, reference);
                if met && !before {
                    let mut events: Vec<Contribution> = cur.iter().map(|c| (**c).clone()).collect();
                    events.sort();
                    let events: Vec<Contribution> = events.split_off(events.len().saturating_sub(spec.max_refs));
                    out.push(Crossing {
                        slot: key.0,
                        key: key.1.clone(),
                        time: now,
                        window_start: (now + 1).saturating_sub(spec.window_ms),
                        value: Number::from(cur.len() as u64),
                        trigger_accepted_ns: events.iter().map(|c| c.accepted_ns).max().unwrap_or(0),
                        events,
                    });
                }
                before = met;
            }
        }
        out.sort();
        out
    }

    #[test]
    fn an_exact_ratio_fires_and_one_short_does_not() {
        let specs = Arc::new(vec![Some(spec(Direction::Up, 3.0, 1, 1))]);
        // Reference (0, 10]: 2 records; current (10, 20] reaches 6 at 16: exactly 3 times.
        let mut r = vec![rec(1, 1, "k"), rec(2, 2, "k")];
        r.extend((0..6).map(|i| rec(10 + i, 11 + i as u64, "k")));
        let (c, _) = run(1, r.clone(), specs.clone(), vec![]);
        assert_eq!(c.iter().map(|c| (c.time, c.value.get(), c.window_start)).collect::<Vec<_>>(), vec![(16, 6.0, 7)]);
        assert_eq!(c[0].events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![13, 14, 15], "the newest max_refs");
        r.pop();
        assert!(run(1, r, specs, vec![]).0.is_empty(), "5 against 2 is under 3 times");
    }

    #[test]
    fn minimum_counts_hold_back_tiny_numbers() {
        // 1 → 3 is three times, but min_current 4 holds it back; 1 → 4 fires.
        let r = |n: u64| -> Vec<Rec> { std::iter::once(rec(0, 1, "k")).chain((0..n).map(|i| rec(1 + i as u128, 11 + i, "k"))).collect() };
        let specs = Arc::new(vec![Some(spec(Direction::Up, 3.0, 4, 1))]);
        assert!(run(1, r(3), specs.clone(), vec![]).0.is_empty());
        assert_eq!(run(1, r(4), specs, vec![]).0.len(), 1);
        // Nothing before: min_reference 1 holds back the first burst.
        let specs = Arc::new(vec![Some(spec(Direction::Up, 3.0, 1, 1))]);
        assert!(run(1, (0..5).map(|i| rec(i as u128, 20 + i, "k")).collect(), specs, vec![]).0.is_empty());
        // Down by 4 with min_current 0: records at 1..=4 move to the reference at 11..=14;
        // at 13 it is 3 against 1 (short), at 14 4 against nothing: fires, as the slot has
        // a later record (at 40) to carry time that far.
        let specs = Arc::new(vec![Some(spec(Direction::Down, 4.0, 0, 2))]);
        let rs: Vec<Rec> = (0..4).map(|i| rec(i as u128, 1 + i, "k")).chain([rec(9, 40, "other")]).collect();
        let c = run(1, rs.clone(), specs.clone(), vec![]).0;
        assert_eq!(c.iter().map(|c| (c.key[0].as_str(), c.time, c.value.get())).collect::<Vec<_>>(), vec![("k", 14, 0.0)]);
        assert!(run(1, rs[..4].to_vec(), specs, vec![]).0.is_empty(), "the end of input is not a drop");
    }

    fn random(seed: u64, n: usize) -> Vec<Rec> {
        let mut rng = SmallRng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                // Bursty: most records in a few busy stretches.
                let t = if rng.random_bool(0.6) { 100 * rng.random_range(1..4) + rng.random_range(0..12) } else { rng.random_range(0..400) };
                let slot = rng.random_range(0..2u32);
                let key = ["a", "b"][rng.random_range(0..2)];
                (((slot, vec![key.to_string()]), Contribution { time: t, id: i as u128, accepted_ns: i as u64 }), t)
            })
            .collect()
    }

    fn two_specs() -> Vec<Option<SpikeSpec>> {
        vec![Some(spec(Direction::Both, 2.0, 2, 1)), Some(SpikeSpec { window_ms: 25, reference_windows: 2, direction: Direction::Up, ratio: 1.5, min_current: 3, min_reference: 1, max_refs: 4 })]
    }

    #[test]
    fn matches_from_scratch_on_1_2_and_4_workers_in_any_order() {
        for seed in 0..4 {
            let records = random(seed, 160);
            let expected = oracle(&records, &two_specs());
            assert!(expected.iter().any(|c| c.slot == 0) && expected.iter().any(|c| c.slot == 1), "seed {seed}");
            for workers in [1, 2, 4] {
                assert_eq!(run(workers, shuffled(&records, seed), Arc::new(two_specs()), vec![]).0, expected, "seed {seed}, {workers} workers");
            }
        }
    }

    #[test]
    fn a_restored_state_continues_the_run_on_any_number_of_workers() {
        for seed in 20..23 {
            let mut records = random(seed, 200);
            records.sort_by_key(|r| r.1);
            let expected = oracle(&records, &two_specs());
            let split = records.iter().position(|r| r.1 >= 205).unwrap();
            let (before, after) = records.split_at(split);
            for (w1, w2) in [(4, 1), (1, 4), (2, 3)] {
                let (mut c1, saved) = run(w1, before.to_vec(), Arc::new(two_specs()), vec![]);
                let (c2, _) = run(w2, after.to_vec(), Arc::new(two_specs()), saved);
                c1.extend(c2);
                c1.sort();
                assert_eq!(c1, expected, "seed {seed}, {w1} then {w2} workers");
            }
        }
    }
}
