//! `rampart-core`: the vocabulary every other Rampart crate speaks, and nothing else.
//!
//! It depends on no workspace crate (see `STYLE.md`'s crate map), so it stays small:
//!
//! - [`time`]: event time ([`EventTime`], milliseconds since the Unix epoch, UTC), watermarks,
//!   durations, and the timestamp parser used by normalization.
//! - [`event`]: [`Event`] (a normalized MozDef-schema document plus its id, times, ack
//!   token and [`Route`]) and [`EventId`] (a deterministic 128-bit id).
//! - [`normalize`]: turns any JSON object a shipper sent into an [`Event`], adding MozDef's
//!   fields and moving nothing out of reach.
//! - [`alert`]: [`Alert`], what a rule emits.
//! - [`cmp`]: [`Cmp`], a threshold comparison (`gt` … `neq`), written by rules and tested by
//!   the correlation operators.
//! - [`field`]: [`FieldPath`], dotted paths into nested events (`details.sourceipaddress`).
//! - [`ack`]: [`AckToken`], the end-to-end acknowledgement a source hands to every sink.
//! - [`metrics`]: metric names (one enum), counters and the per-stage latency histograms.
//! - [`error`]: the error domain and retry hint that supervisors act on.

pub mod ack;
pub mod alert;
pub mod cmp;
pub mod error;
pub mod event;
pub mod field;
pub mod metrics;
pub mod normalize;
pub mod time;

pub use ack::{AckStatus, AckToken};
pub use alert::{Alert, EventRef};
pub use cmp::Cmp;
pub use error::{Domain, Retry};
pub use event::{Event, EventId, Route};
pub use field::FieldPath;
pub use metrics::{Counter, Metrics, Stage};
pub use normalize::{NormalizeError, Normalizer, NormalizerConfig};
pub use time::{EventTime, Watermark};
