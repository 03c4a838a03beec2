//! [`Chain`]: the plugins of one process, ordered by priority, with one index of all their
//! registration terms so that deciding which plugins an event wakes is one walk of the event.
//!
//! Per event: walk the document once, lower-casing each key and string value that could be
//! a term (its length is within the terms' lengths) into one reused buffer and looking it up
//! in a hash map from term to a bit mask of plugins; OR the masks. Plugins registered on
//! `*` are always in the mask. Then run the plugins in the mask, lowest priority first.
//! Because a plugin may add fields that wake a later plugin (a parser sets
//! `sourceipaddress`, then GeoIP runs on it, as MozDef re-read the message before each
//! plugin), the event is walked again after a plugin ran, but only while later plugins
//! remain unmatched, and each walk stops as soon as every one of them is found.
//!
//! What must stay true: a drop is counted ([`Counter::EventsPluginDropped`]) and logged with
//! the plugin and its reason; a plugin that panics is caught, counted
//! ([`Counter::PluginErrors`]) and the event goes on; each kept event that a plugin ran on
//! lists the plugins in its `plugins` field, in the order they ran.

use super::{Plugin, PluginEvent, Verdict};
use rampart_core::{Counter, Event, Metrics};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The most plugins one chain holds (the term index keeps one bit per plugin).
pub const MAX_PLUGINS: usize = 128;

/// The field each processed event gets: the names of the plugins that ran on it, in order.
pub const PLUGINS_FIELD: &str = "plugins";

type Mask = u128;

/// One plugin in the chain with its effective name, terms and priority (the config may
/// override the plugin's own).
pub struct Registered {
    /// The plugin.
    pub plugin: Box<dyn Plugin>,
    /// Its name in the config, the `plugins` field and the logs.
    pub name: String,
    /// Its registration terms (`*` = every event).
    pub terms: Vec<String>,
    /// Lower runs first; equal priorities keep config order.
    pub priority: i32,
}

impl Registered {
    /// A plugin with its own name, terms and priority.
    pub fn new(plugin: Box<dyn Plugin>) -> Registered {
        Registered { name: plugin.name().to_string(), terms: plugin.terms(), priority: plugin.priority(), plugin }
    }
}

struct Slot {
    reg: Registered,
    runs: AtomicU64,
    drops: AtomicU64,
    errors: AtomicU64,
}

/// What the chain decided about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainOutcome {
    /// Keep it (possibly changed).
    Keep,
    /// A plugin dropped it.
    Dropped {
        /// The plugin.
        plugin: String,
        /// Its reason.
        reason: String,
    },
}

/// Counts for one plugin since the chain was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginStats {
    /// The plugin's name.
    pub name: String,
    /// Events it ran on.
    pub runs: u64,
    /// Events it dropped.
    pub drops: u64,
    /// Runs that failed (panicked).
    pub errors: u64,
}

/// A small multiply-rotate hash (FxHash's) for the term index. SipHash's DoS resistance buys
/// nothing here: the table is built once from the config and never grows, so event text can
/// only probe it, and SipHash was a tenth of the chain's time per event.
#[derive(Default, Clone, Copy)]
struct TermHasher(u64);

impl std::hash::Hasher for TermHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type TermMap = HashMap<Box<str>, Mask, std::hash::BuildHasherDefault<TermHasher>>;

/// The term index: lower-cased term → the plugins registered on it.
struct TermIndex {
    terms: TermMap,
    /// Plugins registered on `*`.
    always: Mask,
    /// Byte lengths of the shortest and longest term (ASCII strings outside are skipped
    /// without lower-casing).
    min_len: usize,
    max_len: usize,
    /// Which byte lengths (below 128) and which lower-cased first bytes the terms have: an
    /// ASCII string failing either cannot be a term, so most keys and values are rejected
    /// without being copied, lower-cased and hashed (that was most of the chain's own cost).
    lens: u128,
    firsts: [bool; 256],
}

/// The ordered plugin chain. Cheap to share (`Arc<Chain>`): running it takes `&self`.
pub struct Chain {
    slots: Vec<Slot>,
    index: TermIndex,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.slots.iter().map(|s| (&s.reg.name, s.reg.priority))).finish()
    }
}

impl Chain {
    /// A chain of `plugins`, sorted by priority (stable: equal priorities keep their order).
    /// More than [`MAX_PLUGINS`] is refused by config validation; extra ones are ignored
    /// here with an error logged.
    pub fn new(mut plugins: Vec<Registered>, metrics: Arc<Metrics>) -> Chain {
        plugins.sort_by_key(|p| p.priority);
        if plugins.len() > MAX_PLUGINS {
            tracing::error!("plugins: {} plugins configured, at most {MAX_PLUGINS} run; the rest are ignored", plugins.len());
            plugins.truncate(MAX_PLUGINS);
        }
        let mut index = TermIndex { terms: TermMap::default(), always: 0, min_len: usize::MAX, max_len: 0, lens: 0, firsts: [false; 256] };
        for (i, p) in plugins.iter().enumerate() {
            let bit: Mask = 1 << i;
            for t in &p.terms {
                if t == "*" {
                    index.always |= bit;
                    continue;
                }
                let lower = t.to_lowercase();
                index.min_len = index.min_len.min(lower.len());
                index.max_len = index.max_len.max(lower.len());
                // A long term lets every length through; a term that is not ASCII can only
                // equal a string that is not ASCII either, which skips this filter.
                index.lens |= if lower.len() < 128 { 1 << lower.len() } else { u128::MAX };
                if let Some(b) = lower.as_bytes().first() {
                    index.firsts[usize::from(*b)] = true;
                }
                *index.terms.entry(lower.into_boxed_str()).or_insert(0) |= bit;
            }
        }
        let slots = plugins.into_iter().map(|reg| Slot { reg, runs: AtomicU64::new(0), drops: AtomicU64::new(0), errors: AtomicU64::new(0) }).collect();
        Chain { slots, index, metrics }
    }

    /// A chain that does nothing.
    pub fn empty(metrics: Arc<Metrics>) -> Chain {
        Chain::new(Vec::new(), metrics)
    }

    /// Whether the chain has no plugins.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The plugins' names in the order they run.
    pub fn names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.reg.name.as_str()).collect()
    }

    /// Per-plugin counts.
    pub fn stats(&self) -> Vec<PluginStats> {
        self.slots
            .iter()
            .map(|s| PluginStats { name: s.reg.name.clone(), runs: s.runs.load(Ordering::Relaxed), drops: s.drops.load(Ordering::Relaxed), errors: s.errors.load(Ordering::Relaxed) })
            .collect()
    }

    /// Runs the chain over a batch in place, removing dropped events (their ack tokens are
    /// released, which settles the delivery as handled). Returns how many were dropped.
    pub fn apply(&self, batch: &mut Vec<Event>) -> usize {
        if self.slots.is_empty() {
            return 0;
        }
        let before = batch.len();
        batch.retain_mut(|e| self.run(e) == ChainOutcome::Keep);
        before - batch.len()
    }

    /// Runs the chain over one event.
    pub fn run(&self, event: &mut Event) -> ChainOutcome {
        if self.slots.is_empty() {
            return ChainOutcome::Keep;
        }
        let full: Mask = if self.slots.len() == MAX_PLUGINS { Mask::MAX } else { (1 << self.slots.len()) - 1 };
        let mut mask = self.index.always;
        let mut buf = String::new();
        if mask != full {
            self.index.scan(&event.doc, full & !mask, &mut mask, &mut buf);
        }
        // Which plugins ran: they run in slot order, so the bits give the order too.
        let mut ran: Mask = 0;
        for (i, slot) in self.slots.iter().enumerate() {
            let bit: Mask = 1 << i;
            if mask & bit == 0 {
                continue;
            }
            slot.runs.fetch_add(1, Ordering::Relaxed);
            ran |= bit;
            let verdict = catch_unwind(AssertUnwindSafe(|| slot.reg.plugin.process(&mut PluginEvent { doc: &mut event.doc, route: &mut event.route })));
            match verdict {
                Ok(Verdict::Keep) => {}
                Ok(Verdict::Drop(reason)) => {
                    slot.drops.fetch_add(1, Ordering::Relaxed);
                    self.metrics.add(Counter::EventsPluginDropped, 1);
                    tracing::debug!(plugin = %slot.reg.name, event = %event.id, "plugin dropped an event: {reason}");
                    return ChainOutcome::Dropped { plugin: slot.reg.name.clone(), reason };
                }
                Err(panic) => {
                    slot.errors.fetch_add(1, Ordering::Relaxed);
                    self.metrics.add(Counter::PluginErrors, 1);
                    let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
                    tracing::warn!(plugin = %slot.reg.name, event = %event.id, "plugin panicked (event kept as the plugin left it): {what}");
                }
            }
            // Later plugins not woken yet may be woken by what this one added.
            let later = full & !mask & !((bit << 1).wrapping_sub(1));
            if later != 0 {
                self.index.scan(&event.doc, later, &mut mask, &mut buf);
            }
        }
        if ran != 0 {
            let names = self.slots.iter().enumerate().filter(|(i, _)| ran & (1 << i) != 0).map(|(_, s)| s.reg.name.as_str());
            record_plugins(&mut event.doc, names);
        }
        ChainOutcome::Keep
    }
}

/// Whether a plugin's route index can name an index (and a file): 1 to 100 of `a-z 0-9 _ - .`,
/// not starting with `-`, `_` or `.`. Outputs fall back to their default for anything else.
pub fn valid_route_index(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && !s.starts_with(['-', '_', '.']) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
}

/// Appends the names to the document's `plugins` list (created if absent; a non-list value
/// there is replaced).
fn record_plugins<'a>(doc: &mut Map<String, Value>, ran: impl Iterator<Item = &'a str>) {
    let names = ran.map(|n| Value::String(n.to_string()));
    match doc.get_mut(PLUGINS_FIELD) {
        Some(Value::Array(list)) => list.extend(names),
        _ => {
            doc.insert(PLUGINS_FIELD.to_string(), Value::Array(names.collect()));
        }
    }
}

impl TermIndex {
    /// ORs into `mask` the plugins whose terms occur in `doc`, looking only for those in
    /// `wanted`; returns early once all of them are found.
    fn scan(&self, doc: &Map<String, Value>, wanted: Mask, mask: &mut Mask, buf: &mut String) {
        if self.terms.is_empty() {
            return;
        }
        let mut found: Mask = 0;
        self.walk_map(doc, wanted, &mut found, buf);
        *mask |= found;
    }

    fn walk_map(&self, m: &Map<String, Value>, wanted: Mask, found: &mut Mask, buf: &mut String) -> bool {
        for (k, v) in m {
            if self.test(k, wanted, found, buf) || self.walk_value(v, wanted, found, buf) {
                return true;
            }
        }
        false
    }

    fn walk_value(&self, v: &Value, wanted: Mask, found: &mut Mask, buf: &mut String) -> bool {
        match v {
            Value::String(s) => self.test(s, wanted, found, buf),
            Value::Object(m) => self.walk_map(m, wanted, found, buf),
            Value::Array(a) => a.iter().any(|x| self.walk_value(x, wanted, found, buf)),
            _ => false,
        }
    }

    /// Tests one key or value; true when everything wanted is found (stop walking).
    #[inline]
    fn test(&self, s: &str, wanted: Mask, found: &mut Mask, buf: &mut String) -> bool {
        if s.is_ascii() {
            if s.len() < self.min_len || s.len() > self.max_len {
                return false;
            }
            let len_ok = s.len() >= 128 || self.lens & (1 << s.len()) != 0;
            if !len_ok || !s.as_bytes().first().is_some_and(|b| self.firsts[usize::from(b.to_ascii_lowercase())]) {
                return false;
            }
            buf.clear();
            buf.push_str(s);
            buf.make_ascii_lowercase();
        } else {
            buf.clear();
            buf.extend(s.chars().flat_map(char::to_lowercase));
        }
        if let Some(bits) = self.terms.get(buf.as_str()) {
            *found |= bits & wanted;
        }
        *found & wanted == wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{AckToken, EventId, Normalizer};
    use serde_json::json;
    use std::sync::Mutex;

    /// A plugin that appends its name to `trace` and does what it is told.
    struct Probe {
        name: String,
        terms: Vec<String>,
        priority: i32,
        action: Action,
    }

    #[derive(Clone)]
    enum Action {
        Keep,
        Add(&'static str, &'static str),
        Drop,
        Route,
        Panic,
    }

    impl Plugin for Probe {
        fn name(&self) -> &str {
            &self.name
        }
        fn terms(&self) -> Vec<String> {
            self.terms.clone()
        }
        fn priority(&self) -> i32 {
            self.priority
        }
        fn process(&self, e: &mut PluginEvent<'_>) -> Verdict {
            match &self.action {
                Action::Keep => Verdict::Keep,
                Action::Add(k, v) => {
                    e.doc.insert((*k).into(), json!(v));
                    Verdict::Keep
                }
                Action::Drop => Verdict::Drop("noise".into()),
                Action::Route => {
                    e.route.index = Some("special".into());
                    e.route.doc_id = Some("doc-1".into());
                    Verdict::Keep
                }
                #[allow(clippy::panic)]
                Action::Panic => panic!("probe exploded"),
            }
        }
    }

    fn probe(name: &str, terms: &[&str], priority: i32, action: Action) -> Registered {
        Registered::new(Box::new(Probe { name: name.into(), terms: terms.iter().map(|s| s.to_string()).collect(), priority, action }))
    }

    fn event(v: Value) -> Event {
        Normalizer::default().normalize(v, EventId(1)).unwrap()
    }

    fn ran(e: &Event) -> Vec<String> {
        e.doc.get(PLUGINS_FIELD).and_then(Value::as_array).map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect()).unwrap_or_default()
    }

    #[test]
    fn runs_lowest_priority_first_and_records_the_order() {
        let m = Arc::new(Metrics::new());
        let chain = Chain::new(vec![probe("late", &["*"], 50, Action::Keep), probe("early", &["*"], -5, Action::Keep), probe("middle", &["*"], 10, Action::Keep)], m);
        assert_eq!(chain.names(), ["early", "middle", "late"]);
        let mut e = event(json!({"summary": "x"}));
        assert_eq!(chain.run(&mut e), ChainOutcome::Keep);
        assert_eq!(ran(&e), ["early", "middle", "late"]);
    }

    #[test]
    fn terms_match_keys_and_string_values_nested_and_case_insensitively() {
        let m = Arc::new(Metrics::new());
        let chain = Chain::new(
            vec![
                probe("by_key", &["SourceIPAddress"], 1, Action::Keep),
                probe("by_value", &["sshd"], 2, Action::Keep),
                probe("in_list", &["needle"], 3, Action::Keep),
                probe("never", &["absent", "nope"], 4, Action::Keep),
                probe("number", &["22"], 5, Action::Keep),
            ],
            m,
        );
        let mut e = event(json!({"summary": "x", "details": {"deep": {"sourceipaddress": "10.0.0.1", "program": "SSHD"}, "list": [{"x": "Needle"}]}, "port": 22}));
        chain.run(&mut e);
        assert_eq!(ran(&e), ["by_key", "by_value", "in_list"], "numbers are not string values; absent terms do not wake");
        let mut plain = event(json!({"summary": "nothing to see"}));
        chain.run(&mut plain);
        assert!(plain.doc.get(PLUGINS_FIELD).is_none(), "no plugin ran, no field: {:?}", plain.doc);
    }

    #[test]
    fn a_field_added_by_one_plugin_wakes_a_later_one() {
        let m = Arc::new(Metrics::new());
        let chain = Chain::new(vec![probe("parser", &["sshd"], 1, Action::Add("sourceipaddress", "1.2.3.4")), probe("geo", &["sourceipaddress"], 2, Action::Keep)], m);
        let mut e = event(json!({"summary": "Accepted password", "program": "sshd"}));
        chain.run(&mut e);
        assert_eq!(ran(&e), ["parser", "geo"]);
    }

    #[test]
    fn drop_is_counted_settles_the_ack_as_handled_and_stops_the_chain() {
        let m = Arc::new(Metrics::new());
        let chain = Chain::new(vec![probe("dropper", &["noise"], 1, Action::Drop), probe("after", &["*"], 2, Action::Keep)], m.clone());
        let settled = Arc::new(Mutex::new(None));
        let s = settled.clone();
        let mut noisy = event(json!({"summary": "noise"}));
        noisy.ack = Some(AckToken::new(move |status, _| *s.lock().unwrap() = Some(status)));
        let mut batch = vec![noisy, event(json!({"summary": "signal"}))];
        assert_eq!(chain.apply(&mut batch), 1);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].doc["summary"], "signal");
        assert_eq!(ran(&batch[0]), ["after"]);
        assert_eq!(m.get(Counter::EventsPluginDropped), 1);
        assert_eq!(*settled.lock().unwrap(), Some(rampart_core::AckStatus::Delivered), "a dropped event is acked as handled");
        let stats = chain.stats();
        assert_eq!((stats[0].runs, stats[0].drops, stats[1].runs), (1, 1, 1), "the dropper's term is only in the noisy event");
    }

    #[test]
    fn reroute_is_carried_on_the_event() {
        let chain = Chain::new(vec![probe("router", &["special"], 1, Action::Route)], Arc::new(Metrics::new()));
        let mut e = event(json!({"summary": "x", "category": "special"}));
        chain.run(&mut e);
        assert_eq!(e.route.index.as_deref(), Some("special"));
        assert_eq!(e.route.doc_id.as_deref(), Some("doc-1"));
    }

    #[test]
    fn a_panicking_plugin_is_counted_and_the_event_goes_on() {
        let m = Arc::new(Metrics::new());
        let chain = Chain::new(vec![probe("bad", &["*"], 1, Action::Panic), probe("good", &["*"], 2, Action::Keep)], m.clone());
        let mut e = event(json!({"summary": "x"}));
        assert_eq!(chain.run(&mut e), ChainOutcome::Keep);
        assert_eq!(ran(&e), ["bad", "good"]);
        assert_eq!(m.get(Counter::PluginErrors), 1);
    }

    #[test]
    fn existing_plugins_list_is_extended() {
        let chain = Chain::new(vec![probe("p", &["*"], 1, Action::Keep)], Arc::new(Metrics::new()));
        let mut e = event(json!({"summary": "x"}));
        e.doc.insert(PLUGINS_FIELD.into(), json!(["upstream"]));
        chain.run(&mut e);
        assert_eq!(ran(&e), ["upstream", "p"]);
    }
}
