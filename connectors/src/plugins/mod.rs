//! The plugin chain: small transforms that shape events between normalization and
//! correlation, as MozDef's `mq/plugins` did, but compiled in, ordered, and counted.
//!
//! A plugin declares **registration terms** and a **priority**. The chain runs a plugin on an
//! event when any of its terms equals (case-insensitively) any key or any string value of the
//! event, at any depth; plugins run lowest priority first. A plugin may change the document,
//! drop the event (counted with its reason, never silently), or change where the event is
//! stored (its target index and document id).
//!
//! Modules: [`chain`] (the ordered chain and its term index), [`registry`] (the `plugins:`
//! config entries and the one `match` that builds a plugin), [`lookup`] (lookup tables and
//! CIDR lists, reloaded when their files change), and one file per plugin: [`ipfixup`],
//! [`geoip`], [`fieldlimit`], [`drop`], [`enrich`], [`vrl`], and the parsers (ports of MozDef's,
//! sharing the private `fields` helpers): [`sshd`], [`su_sudo`], [`auditd`], [`zeek`],
//! [`suricata`], [`access_log`], [`cloudtrail`], [`guardduty`]. The user manual is
//! `docs/plugins.md`.
//!
//! Plugins live beside the sources and sinks (Vector keeps its transforms in the same crate as
//! its sources and sinks for the same reason): they are plain code on plain events and know
//! nothing of the engine or the actors.

pub mod access_log;
pub mod auditd;
pub mod chain;
pub mod cloudtrail;
pub mod drop;
pub mod enrich;
mod fields;
pub mod fieldlimit;
pub mod geoip;
pub mod guardduty;
pub mod ipfixup;
pub mod lookup;
pub mod registry;
pub mod sshd;
pub mod su_sudo;
pub mod suricata;
pub mod vrl;
pub mod zeek;

pub use chain::{Chain, ChainOutcome};
pub use lookup::{Lookups, LookupsConfig};
pub use registry::{build_chain, PluginConfig, PluginEntry};

use rampart_core::Metrics;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What a plugin decided about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the event (changed or not) and go on down the chain.
    Keep,
    /// Drop the event; the reason is counted and logged, and the event is acked to its source
    /// as handled (it will never be stored or correlated).
    Drop(String),
}

/// Where an event will be stored (defined in core: it travels on [`rampart_core::Event`]).
pub use rampart_core::Route;

/// One event as a plugin sees it: the normalized document and its route.
#[derive(Debug)]
pub struct PluginEvent<'a> {
    /// The MozDef-schema document (`summary`, `details`, `category`, `tags`, …).
    pub doc: &'a mut Map<String, Value>,
    /// Where the event will be stored.
    pub route: &'a mut Route,
}

/// A transform in the chain. Implementations are cheap to call and never block: the chain runs
/// on the ingest path for every event.
pub trait Plugin: Send + Sync {
    /// The plugin's name, as in the config file and in the event's `plugins` list.
    fn name(&self) -> &str;
    /// Registration terms: the plugin runs on an event when any of them equals a key or a
    /// string value of the event (case-insensitive, any depth). `["*"]` means every event.
    /// Asked once, when the chain is built; an entry's `terms` in the config replace them.
    fn terms(&self) -> Vec<String>;
    /// Lower runs first; asked once, when the chain is built (an entry's `priority` replaces it).
    fn priority(&self) -> i32;
    /// Transforms one event in place.
    fn process(&self, event: &mut PluginEvent<'_>) -> Verdict;
}

/// What building a plugin may use besides its own config.
#[derive(Clone, Debug)]
pub struct PluginContext {
    /// The named lookup tables and CIDR lists (`lookups:`), shared and reloaded in place.
    pub lookups: Arc<Lookups>,
    /// The process's metrics, for plugins that count.
    pub metrics: Arc<Metrics>,
}

impl PluginContext {
    /// A context with no lookups and fresh metrics (tests, `rules explain`).
    pub fn empty() -> PluginContext {
        PluginContext { lookups: Arc::new(Lookups::default()), metrics: Arc::new(Metrics::new()) }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Running one plugin on one document, for the plugins' unit tests.
    use super::{Plugin, PluginEvent, Route, Verdict};
    use serde_json::{Map, Value};

    /// Runs `plugin` on `doc` (an object) with the default route; returns the verdict, the
    /// document and the route as the plugin left them.
    pub fn process(plugin: &dyn Plugin, doc: Value) -> (Verdict, Map<String, Value>, Route) {
        let Value::Object(mut doc) = doc else { panic!("not an object: {doc}") };
        let mut route = Route::default();
        let verdict = plugin.process(&mut PluginEvent { doc: &mut doc, route: &mut route });
        (verdict, doc, route)
    }

    /// As [`process`], requiring the plugin to keep the event; returns the document.
    pub fn kept(plugin: &dyn Plugin, doc: Value) -> Map<String, Value> {
        let (verdict, doc, _) = process(plugin, doc);
        assert_eq!(verdict, Verdict::Keep);
        doc
    }
}
