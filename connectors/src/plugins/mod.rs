//! The plugin chain: small transforms that shape events between normalization and
//! correlation, as MozDef's `mq/plugins` did, but compiled in, ordered, and counted.
//!
//! A plugin declares **registration terms** and a **priority**. The chain runs a plugin on an
//! event when any of its terms equals (case-insensitively) any key or any string value of the
//! event, at any depth; plugins run lowest priority first. A plugin may change the document,
//! drop the event (counted with its reason, never silently), or change where the event is
//! stored (its target index and document id).
//!
//! Plugins live beside the sources and sinks (Vector keeps its transforms in the same crate as
//! its sources and sinks for the same reason): they are plain code on plain events and know
//! nothing of the engine or the actors.

use serde_json::{Map, Value};

/// What a plugin decided about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the event (changed or not) and go on down the chain.
    Keep,
    /// Drop the event; the reason is counted and logged, and the event is acked to its source
    /// as handled (it will never be stored or correlated).
    Drop(String),
}

/// Where an event will be stored, which a plugin may change (MozDef plugins returned a new
/// `metadata` with `index` and `id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The index (or index prefix) to store the event in, instead of the output's default.
    pub index: Option<String>,
    /// The document id to store the event under, instead of the event id.
    pub doc_id: Option<String>,
}

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
    fn terms(&self) -> &[String];
    /// Lower runs first.
    fn priority(&self) -> i32;
    /// Transforms one event in place.
    fn process(&self, event: &mut PluginEvent<'_>) -> Verdict;
}
