//! [`Event`]: one normalized security event, [`EventId`], its deterministic identity, and
//! [`Route`], where a plugin asked for it to be stored.

use crate::ack::AckToken;
use crate::field::FieldPath;
use crate::time::EventTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// A 128-bit event identity, shown as 32 lower-case hex digits.
///
/// It is derived from where the event came from and its raw bytes
/// ([`EventId::derive`]), so replaying the same input gives the same ids, and a
/// redelivered message gets the id it had the first time (a store can then index it
/// idempotently).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(pub u128);

impl EventId {
    /// Hashes the origin (input name, file path), a sequence number within it (line or
    /// byte offset, delivery tag) and the raw bytes of the event.
    pub fn derive(origin: &str, seq: u64, raw: &[u8]) -> EventId {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(origin.as_bytes());
        h.update(&[0xff]);
        h.update(&seq.to_le_bytes());
        h.update(raw);
        EventId(h.digest128())
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl FromStr for EventId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err(format!("event id `{s}` is not 32 hex digits"));
        }
        u128::from_str_radix(s, 16).map(EventId).map_err(|e| format!("event id `{s}`: {e}"))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A normalized event: the MozDef-schema document plus what the engine needs beside it.
///
/// Events travel through Rampart behind an `Arc`; nothing on the hot path clones `doc`.
#[derive(Clone, Debug)]
pub struct Event {
    /// Deterministic identity (see [`EventId`]).
    pub id: EventId,
    /// When it happened (`utctimestamp`), the time correlation windows use.
    pub time: EventTime,
    /// When Rampart received it (`receivedtimestamp`).
    pub received: EventTime,
    /// Monotonic nanoseconds ([`crate::metrics::clock_ns`]) at acceptance, for latency.
    pub accepted_ns: u64,
    /// The normalized document (MozDef's schema: `utctimestamp`, `summary`, `details`, …).
    pub doc: Map<String, Value>,
    /// Acknowledgement owed to the source once every output has the event.
    pub ack: Option<AckToken>,
    /// Where the event is stored, when a plugin chose (default: the output's own index and
    /// the event id).
    pub route: Route,
}

/// Where an event will be stored, which a plugin may change (MozDef plugins returned a new
/// `metadata` with `index` and `id`). Empty means the output's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The index prefix to store the event under instead of the output's default: the
    /// Elasticsearch output writes `{index}-YYYYMMDD`, the file output `{index}-YYYYMMDD.ndjson`.
    pub index: Option<String>,
    /// The document id to store the event under instead of the event id (Elasticsearch
    /// `_id`; the file output writes it as `_id`).
    pub doc_id: Option<String>,
}

impl Route {
    /// Whether nothing is overridden.
    pub fn is_default(&self) -> bool {
        self.index.is_none() && self.doc_id.is_none()
    }
}

impl Event {
    /// Looks a field up by path, with MozDef's convention that anything not at the top
    /// level lives in `details` (see [`FieldPath::lookup_event`]).
    pub fn get(&self, path: &FieldPath) -> Option<&Value> {
        path.lookup_event(&self.doc)
    }

    /// The document as a JSON value (for outputs).
    pub fn to_value(&self) -> Value {
        Value::Object(self.doc.clone())
    }
}
