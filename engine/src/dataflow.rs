//! The dataflow one worker runs, built from a [`Plan`]:
//!
//! ```text
//! input (Arc<Event> at the watermark)
//!   └─ Match ─┬─ detection candidates ───────────────────────────────┐
//!             ├─ (slot, group) → event  ── WindowedCount ─────────────┤ Crossing → candidate
//!             ├─ (slot, group) → value  ── WindowedDistinctCount ─────┤
//!             ├─ (slot, group) → number ── WindowedAggregate ─────────┤
//!             ├─ (slot, group) → step   ── WindowedSequence ──────────┤
//!             ├─ (slot, group) → step   ── Absence ───────────────────┤
//!             ├─ (slot, step key) → step ── FollowSequences ──────────┤
//!             ├─ session slots: event / value / number ── SessionWindows (×3) ─┤
//!             ├─ (slot, group) → event  ── Deadman (processing time) ─┤
//!             ├─ (slot, group ++ term)  ── NewTerms (state kept) ─────┤
//!             └─ (slot, group) → event  ── Spikes (state kept) ───────┤
//!                                                                     └─ Suppress (worker 0) ─ Emit → alert channel
//! ```
//!
//! One chain per correlation *type* the rules use, keyed by `(slot, group)`: thousands of rules share the
//! same handful of operators. The four numeric types (`value_sum`, `value_avg`,
//! `value_percentile`, `value_median`) share one chain: the slot's spec says how to fold.
//! `temporal` is a distinct count of the referenced rules that matched (the rule's position
//! is the value); `temporal_ordered` follows the rules' order in `WindowedSequence`. Records live at their event time (a differential update may
//! sit at or after its message's capability, which is the watermark the event entered at).

use crate::plan::{group_key, text, Feed, KindPlan, Measure, Plan, RulePlan};
use crate::state::WorkerKeep;
use rampart_core::alert::{AlertRule, AlertWindow};
use rampart_core::{Alert, Counter, Event, EventId, EventRef, EventTime, FieldPath, Metrics, Stage};
use rampart_correlation::{
    Absence, Candidate, Candidates, Contribution, Crossing, Crossings, Deadman, FollowSequences, Key, NewTerms, Number, SessionWindows, Slot, Spikes, Suppress,
    Window, WindowedAggregate, WindowedCount, WindowedDistinctCount, WindowedSequence,
};
use differential_dataflow::AsCollection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Input as _, Map as _, Partition as _};
use timely::dataflow::operators::{Concat, Inspect};

/// The worker's input: events, given at the worker's watermark.
pub(crate) type EventInput = timely::dataflow::InputHandleVec<u64, Arc<Event>>;

/// Totals for [`crate::EngineReport`], shared by the handle and every worker.
#[derive(Default)]
pub(crate) struct Counters {
    pub events: AtomicU64,
    pub late: AtomicU64,
    pub alerts: AtomicU64,
    pub suppressed: AtomicU64,
}

/// What an alert candidate carries to worker 0. Ordered, so that equal candidates sort the
/// same way everywhere.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Payload {
    /// A detection match; the summary is rendered at match time, while the event is at hand.
    Detection { event: u128, summary: String, accepted_ns: u64 },
    /// A correlation crossing; rendered at emission from the group and the aggregate.
    Correlation { window_start: u64, value: Number, events: Vec<Contribution>, trigger_accepted_ns: u64 },
}

/// What Match routes an event to.
#[derive(Clone)]
enum Routed {
    Alert(Candidate<Payload>),
    Count((Key, Contribution)),
    Distinct((Key, (String, Contribution))),
    Numeric((Key, (Number, Contribution))),
    Step((Key, (u32, Contribution))),
    Absent((Key, (u32, Contribution))),
    Term((Key, Contribution)),
    Spike((Key, Contribution)),
    Follow((Key, (u32, Contribution))),
    Deadman((Key, Contribution)),
}

impl Routed {
    /// The correlation a record is for.
    fn slot(&self) -> Option<Slot> {
        match self {
            Routed::Alert(_) => None,
            Routed::Count((k, _)) => Some(k.0),
            Routed::Distinct((k, _)) => Some(k.0),
            Routed::Numeric((k, _)) => Some(k.0),
            Routed::Step((k, _)) => Some(k.0),
            Routed::Absent((k, _)) | Routed::Follow((k, _)) => Some(k.0),
            Routed::Term((k, _)) | Routed::Spike((k, _)) | Routed::Deadman((k, _)) => Some(k.0),
        }
    }
}

/// Routed records with their times and diffs.
type RoutedStream<'s> = timely::dataflow::StreamVec<'s, u64, (Routed, u64, isize)>;

/// Which chain (partition part) a correlation's records go to.
fn part_of(measure: &Measure, window: Window) -> u64 {
    let session = matches!(window, Window::Session { .. });
    match measure {
        Measure::Events if session => 8,
        Measure::Distinct(_) | Measure::Rules if session => 9,
        Measure::Numeric(..) if session => 10,
        Measure::Events => 0,
        Measure::Distinct(_) | Measure::Rules => 1,
        Measure::Numeric(..) => 2,
        Measure::Sequence => 3,
        Measure::Absence => 4,
        Measure::NewTerm(..) => 5,
        Measure::Spike(_) => 6,
        Measure::Follow(_) => 7,
        Measure::Deadman => 11,
    }
}

/// How many chains a level may have.
const PARTS: u64 = 12;

/// The correlation chains of one level, one per type (the numeric types share one), built
/// only for the types the level's rules use: every operator is scheduled on every watermark
/// step, so a chain nobody feeds would still cost time per batch. Level 0's operators carry
/// the plain names; higher levels append `[level]`. `keep` gives the stateful chains
/// (new_term, spike) their restored entries and where to save.
fn correlate<'s>(routed: RoutedStream<'s>, plan: &Plan, keep: &WorkerKeep, level: u32) -> Crossings<'s> {
    let specs = &plan.specs;
    let name = |n: &str| if level == 0 { n.to_string() } else { format!("{n}[{level}]") };
    let mut used = [false; PARTS as usize];
    let mut part = vec![0u64; plan.rules.len()];
    for (slot, rule) in plan.rules.iter().enumerate() {
        if let KindPlan::Correlation { measure, window, level: l, .. } = &rule.kind {
            part[slot] = part_of(measure, *window);
            if *l == level {
                used[part[slot] as usize] = true;
            }
        }
    }
    let scope = routed.scope();
    // One pass sends each record to its chain (a cloned stream would copy every record
    // to every chain and have each throw the others' away).
    let parts = routed.partition(PARTS, move |(r, t, d)| (r.slot().and_then(|s| part.get(s as usize).copied()).unwrap_or(0), (r, t, d)));
    let mut out: Crossings<'s> = timely::dataflow::operators::generic::operator::empty(scope);
    for (i, stream) in parts.into_iter().enumerate() {
        if !used[i] {
            continue;
        }
        let crossings = match i {
            0 => stream.flat_map(|(r, t, d)| if let Routed::Count(x) = r { Some((x, t, d)) } else { None }).as_collection().windowed_count_core(&name("WindowedCount"), specs),
            1 => stream
                .flat_map(|(r, t, d)| if let Routed::Distinct(x) = r { Some((x, t, d)) } else { None })
                .as_collection()
                .windowed_distinct_count_core(&name("WindowedDistinctCount"), specs),
            2 => stream.flat_map(|(r, t, d)| if let Routed::Numeric(x) = r { Some((x, t, d)) } else { None }).as_collection().windowed_aggregate_core(&name("WindowedAggregate"), specs),
            3 => stream.flat_map(|(r, t, d)| if let Routed::Step(x) = r { Some((x, t, d)) } else { None }).as_collection().windowed_sequence_core(&name("WindowedSequence"), specs),
            4 => stream.flat_map(|(r, t, d)| if let Routed::Absent(x) = r { Some((x, t, d)) } else { None }).as_collection().absence_core(&name("Absence"), specs),
            5 => stream
                .flat_map(|(r, t, d)| if let Routed::Term(x) = r { Some((x, t, d)) } else { None })
                .as_collection()
                .new_terms_core(&name("NewTerms"), &plan.terms, keep.for_operator(plan, level, true)),
            6 => stream
                .flat_map(|(r, t, d)| if let Routed::Spike(x) = r { Some((x, t, d)) } else { None })
                .as_collection()
                .spikes_core(&name("Spikes"), &plan.spikes, keep.for_operator(plan, level, false)),
            7 => stream
                .flat_map(|(r, t, d)| if let Routed::Follow(x) = r { Some((x, t, d)) } else { None })
                .as_collection()
                .follow_sequences_core(&name("FollowSequences"), &plan.sequences),
            8 => stream.flat_map(|(r, t, d)| if let Routed::Count(x) = r { Some((x, t, d)) } else { None }).as_collection().session_windows_core(&name("SessionCount"), specs),
            9 => stream
                .flat_map(|(r, t, d)| if let Routed::Distinct(x) = r { Some((x, t, d)) } else { None })
                .as_collection()
                .session_windows_core(&name("SessionDistinctCount"), specs),
            10 => stream.flat_map(|(r, t, d)| if let Routed::Numeric(x) = r { Some((x, t, d)) } else { None }).as_collection().session_windows_core(&name("SessionAggregate"), specs),
            _ => stream.flat_map(|(r, t, d)| if let Routed::Deadman(x) = r { Some((x, t, d)) } else { None }).as_collection().deadman_core(&name("Deadman"), specs),
        };
        out = out.concat(crossings);
    }
    out
}

/// Builds the dataflow in `scope` and returns its input.
pub(crate) fn build(
    scope: timely::dataflow::Scope<'_, u64>,
    plan: &Arc<Plan>,
    metrics: &Arc<Metrics>,
    counters: &Arc<Counters>,
    alerts: flume::Sender<Alert>,
    keep: &WorkerKeep,
) -> EventInput {
    let (input, events) = scope.new_input::<Arc<Event>>();

    let (p, m, c) = (plan.clone(), metrics.clone(), counters.clone());
    let routed = events.unary::<CapacityContainerBuilder<Vec<(Routed, u64, isize)>>, _, _, _>(Pipeline, "Match", move |_, _| {
        move |input, output| {
            input.for_each(|cap, data| {
                let Some(cap) = cap.retain_least(0) else { return };
                let now = *cap.time();
                let mut session = output.session(&cap);
                for event in data.drain(..) {
                    if event.time.0 < now {
                        // The handle filters late events; this catches any that slip past a
                        // concurrent sender's watermark. Counted, never correlated.
                        c.late.fetch_add(1, Ordering::Relaxed);
                        m.add(Counter::EventsLate, 1);
                        continue;
                    }
                    route(&p, &m, &event, &mut |r| session.give((r, event.time.0, 1)));
                }
            });
        }
    });

    // Part 0: detection alerts; part 1 + l: records for the correlations of level l. One
    // pass, no copies (anything routed to a level the plan does not have lands in part 0,
    // which keeps only alerts).
    let p = plan.clone();
    let levels_n = u64::from(plan.levels);
    let mut parts = routed
        .partition(levels_n + 1, move |(r, t, d)| {
            let part = r.slot().map_or(0, |s| u64::from(p.level(s)) + 1);
            (if part > levels_n { 0 } else { part }, (r, t, d))
        })
        .into_iter();
    let mut next = || parts.next().unwrap_or_else(|| unreachable!("partition gives levels + 1 streams"));
    let detections: Candidates<'_, Payload> = next().flat_map(|(r, _, _)| match r {
        Routed::Alert(c) => Some(c),
        _ => None,
    });
    // One set of chains per level of chained correlations: level 0 reads events, level
    // `l` also reads the crossings of the levels below that its correlations reference.
    let mut levels: Vec<Crossings<'_>> = Vec::new();
    for level in 0..plan.levels {
        let mut input = next();
        for below in &levels {
            let p = plan.clone();
            let chained = below.clone().flat_map(move |c| {
                let mut out = Vec::new();
                chain(&p, &c, &mut |r| {
                    if r.slot().is_some_and(|s| p.level(s) == level) {
                        out.push((r, c.time, 1));
                    }
                });
                out
            });
            input = input.concat(chained);
        }
        levels.push(correlate(input, plan, keep, level));
    }
    let p = plan.clone();
    let mut correlated: Candidates<'_, Payload> = timely::dataflow::operators::generic::operator::empty(scope);
    for crossings in levels {
        let p = p.clone();
        // Inner links of a chain alert only with `generate: true`.
        let alerts = crossings.flat_map(move |c: Crossing| {
            matches!(p.rules.get(c.slot as usize).map(|r| &r.kind), Some(KindPlan::Correlation { generate: true, .. })).then(|| Candidate {
                time: c.time,
                slot: c.slot,
                key: c.key,
                payload: Payload::Correlation { window_start: c.window_start, value: c.value, events: c.events, trigger_accepted_ns: c.trigger_accepted_ns },
            })
        });
        correlated = correlated.concat(alerts);
    }

    let (m, c) = (metrics.clone(), counters.clone());
    let (p, m2, c2) = (plan.clone(), metrics.clone(), counters.clone());
    detections
        .concat(correlated)
        .suppress(plan.durations.clone(), move |_| {
            c.suppressed.fetch_add(1, Ordering::Relaxed);
            m.add(Counter::AlertsSuppressed, 1);
        })
        .inspect(move |cand| {
            let (alert, accepted_ns) = to_alert(&p, cand);
            m2.add(Counter::AlertsFired, 1);
            m2.record_since(Stage::AcceptToAlert, accepted_ns);
            c2.alerts.fetch_add(1, Ordering::Relaxed);
            // Blocks while the channel is full: alert consumers pace the dataflow. An error
            // means every receiver is gone (nobody wants alerts); dropping them is all we can do.
            let _ = alerts.send(alert);
        });
    input
}

/// Matches one event against every detection (through the plan's prefiltered selector
/// when it has one) and routes what it feeds.
fn route(plan: &Plan, metrics: &Metrics, event: &Event, give: &mut dyn FnMut(Routed)) {
    let contribution = || Contribution { time: event.time.0, id: event.id.0, accepted_ns: event.accepted_ns };
    // Allocates only when something matches.
    let mut hits: Vec<usize> = Vec::new();
    match &plan.select {
        Some(select) => select(event, &mut hits),
        None => hits.extend(
            plan.detections.iter().map(|&i| i as usize).filter(|&i| matches!(&plan.rules[i].kind, KindPlan::Detection { matcher, .. } if matcher(event))),
        ),
    }
    for index in hits {
        let rule = &plan.rules[index];
        let KindPlan::Detection { generate, feeds, read_group_by, .. } = &rule.kind else { continue };
        let index = index as u32;
        metrics.add(Counter::RuleMatches, 1);
        if *generate {
            let lookup = |name: &str| match name {
                "rule.title" => Some(rule.title.clone()),
                "rule.id" => Some(rule.id.clone()),
                _ => event.get(&FieldPath::new(name)).map(text),
            };
            let summary = (rule.summary)(&lookup);
            give(Routed::Alert(Candidate {
                time: event.time.0,
                slot: index,
                // Without a `group-by` the key is empty: `suppress` then covers the rule.
                key: group_key(event, read_group_by),
                payload: Payload::Detection { event: event.id.0, summary, accepted_ns: event.accepted_ns },
            }));
        }
        for feed in feeds {
            feed_record(plan, Some(metrics), feed, &|f| event.get(f).map(Cow::Borrowed), contribution(), give);
        }
    }
}

/// The record a correlation `feed` gets from one event (or one alert of a chained
/// correlation), whose fields `get` reads (borrowed from an event: no copy per field).
fn feed_record<'v>(plan: &Plan, metrics: Option<&Metrics>, feed: &Feed, get: &dyn Fn(&FieldPath) -> Option<Cow<'v, Value>>, contribution: Contribution, give: &mut dyn FnMut(Routed)) {
    let KindPlan::Correlation { measure, group_by, .. } = &plan.rules[feed.slot as usize].kind else { return };
    // A new_term's group-by names end with its term's.
    let group_len = match measure {
        Measure::NewTerm(terms, _) => group_by.len().saturating_sub(terms.len()),
        _ => group_by.len(),
    };
    let fields = feed.group_by.as_deref().unwrap_or(&group_by[..group_len]);
    let mut key: Key = (feed.slot, fields.iter().map(|p| get(p).map_or_else(|| "null".to_string(), |v| v.to_string())).collect());
    match measure {
        Measure::Events => give(Routed::Count((key, contribution))),
        Measure::Distinct(field) => {
            // An event without the counted field has no value to count.
            if let Some(v) = get(field) {
                give(Routed::Distinct((key, (text(&v), contribution))));
            }
        }
        Measure::Rules => give(Routed::Distinct((key, (feed.step.to_string(), contribution)))),
        Measure::Sequence => give(Routed::Step((key, (feed.step, contribution)))),
        Measure::Absence => give(Routed::Absent((key, (feed.step, contribution)))),
        Measure::Spike(_) => give(Routed::Spike((key, contribution))),
        Measure::Follow(_) => give(Routed::Follow((key, (feed.step, contribution)))),
        Measure::Deadman => give(Routed::Deadman((key, contribution))),
        Measure::NewTerm(terms, _) => {
            for f in terms {
                match get(f) {
                    Some(v) => key.1.push(v.to_string()),
                    // Without every term field there is no term: counted, not remembered.
                    None => {
                        if let Some(m) = metrics {
                            m.add(Counter::CorrelationValuesIgnored, 1);
                        }
                        return;
                    }
                }
            }
            give(Routed::Term((key, contribution)));
        }
        Measure::Numeric(field, _) => match get(field).as_deref().and_then(number) {
            Some(n) => give(Routed::Numeric((key, (n, contribution)))),
            // Absent, non-numeric or non-finite: not part of the aggregate, counted.
            None => {
                if let Some(m) = metrics {
                    m.add(Counter::CorrelationValuesIgnored, 1);
                }
            }
        },
    }
}

/// What a correlation's crossing feeds the correlations that reference it: the crossing
/// stands for one event at its time, with the alert's id, whose fields are the alert's
/// group (and `value`, the measure).
fn chain(plan: &Plan, c: &Crossing, give: &mut dyn FnMut(Routed)) {
    let Some(rule) = plan.rules.get(c.slot as usize) else { return };
    let KindPlan::Correlation { feeds, group_by, .. } = &rule.kind else { return };
    let group = group_map(group_by, &c.key);
    let id = correlation_alert_id(rule, &group, c.time, &c.events);
    let contribution = Contribution { time: c.time, id: u128::from_str_radix(&id, 16).unwrap_or(0), accepted_ns: c.trigger_accepted_ns };
    let get = |f: &FieldPath| match f.as_str() {
        "value" => serde_json::Number::from_f64(c.value.get()).map(|n| Cow::Owned(Value::Number(n))),
        name => group.get(name).map(Cow::Borrowed),
    };
    for feed in feeds {
        // The ignored-values counter is about events; an alert's group lacking a number is
        // the rule's shape, not bad input.
        feed_record(plan, None, feed, &get, contribution.clone(), give);
    }
}

/// A correlation alert's id: rule, group and time, which one crossing per key and time makes
/// unique. A sequence may complete twice for one key at one millisecond (a match consumes its
/// events, and another can start and end at that same time), so its id also names the
/// match's first event.
fn correlation_alert_id(rule: &RulePlan, group: &Map<String, Value>, time: u64, events: &[Contribution]) -> String {
    match (&rule.kind, events.first()) {
        (KindPlan::Correlation { measure: Measure::Follow(_), .. }, Some(first)) => Alert::make_id(&format!("{}/{}", rule.id, EventId(first.id)), group, EventTime(time)),
        _ => Alert::make_id(&rule.id, group, EventTime(time)),
    }
}

/// An alert's group: each group-by field (as written) with its value from the key.
fn group_map(group_by: &[FieldPath], key: &[String]) -> Map<String, Value> {
    let mut group = Map::new();
    for (field, json) in group_by.iter().zip(key) {
        group.insert(field.as_str().to_string(), serde_json::from_str(json).unwrap_or(Value::Null));
    }
    group
}

/// A field value as a number: JSON numbers, and strings holding one (`"42"`, `" 2.5 "`).
fn number(v: &Value) -> Option<Number> {
    match v {
        Value::Number(n) => n.as_f64().and_then(Number::new),
        Value::String(s) => Number::parse(s),
        _ => None,
    }
}

/// Builds the alert for a released candidate; also returns the acceptance time of the
/// event that completed it.
fn to_alert(plan: &Plan, cand: &Candidate<Payload>) -> (Alert, u64) {
    let rule = &plan.rules[cand.slot as usize];
    let time = EventTime(cand.time);
    let group_by = match &rule.kind {
        KindPlan::Correlation { group_by, .. } | KindPlan::Detection { group_by, .. } => group_by,
    };
    let group = group_map(group_by, &cand.key);
    let rule_ref = AlertRule { id: rule.id.clone(), title: rule.title.clone(), level: rule.level.clone(), kind: rule.kind.name().to_string() };
    let (id, summary, window, value, events, accepted_ns) = match &cand.payload {
        Payload::Detection { event, summary, accepted_ns } => (
            // Two events of one rule may share a millisecond: the event id keeps ids apart.
            Alert::make_id(&format!("{}/{}", rule.id, EventId(*event)), &group, time),
            summary.clone(),
            AlertWindow { start: time, end: time },
            1.0,
            vec![EventRef { id: EventId(*event), utctimestamp: time }],
            *accepted_ns,
        ),
        Payload::Correlation { window_start, value, events, trigger_accepted_ns } => {
            let window = AlertWindow { start: EventTime(*window_start), end: time };
            let lookup = |name: &str| match name {
                "count" | "value" => Some(value.to_string()),
                "rule.title" => Some(rule.title.clone()),
                "rule.id" => Some(rule.id.clone()),
                "window.start" => Some(window.start.to_rfc3339()),
                "window.end" => Some(window.end.to_rfc3339()),
                _ => group.get(name).map(text),
            };
            let summary = (rule.summary)(&lookup);
            let refs = events.iter().map(|c| EventRef { id: EventId(c.id), utctimestamp: EventTime(c.time) }).collect();
            (correlation_alert_id(rule, &group, time.0, events), summary, window, value.get(), refs, *trigger_accepted_ns)
        }
    };
    let alert = Alert {
        id,
        utctimestamp: time,
        severity: rule.severity.clone(),
        category: rule.category.clone(),
        summary,
        tags: rule.tags.clone(),
        rule: rule_ref,
        group,
        window,
        value,
        events,
    };
    (alert, accepted_ns)
}
