//! Metrics, named once: every counter is a [`Counter`] variant and every latency a
//! [`Stage`] variant; names follow `rampart_<name>_<unit>`.
//!
//! Latencies are recorded in nanoseconds into one hdrhistogram per stage (3 significant
//! digits, 1 µs … 1 h). [`Metrics::render_prometheus`] writes Prometheus text for `/metrics`
//! and [`Metrics::summary`] the p50/p99/p99.9/max table printed on exit.
//!
//! Inputs that must reach a peer before they take events (an AMQP consumer) say whether
//! they are ready ([`Metrics::input_waiting`], [`Metrics::input_ready`]): `GET /ready` and
//! the `rampart_input_ready` gauge read it.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Monotonic nanoseconds since the first call in this process.
pub fn clock_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => ($metric:literal, $help:literal)),* $(,)? }) => {
        $(#[$m])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),* }
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// The Prometheus metric name.
            pub fn metric(self) -> &'static str { match self { $($name::$variant => $metric),* } }
            /// The Prometheus help text.
            pub fn help(self) -> &'static str { match self { $($name::$variant => $help),* } }
        }
    };
}

named_enum!(
    /// Monotonic counters.
    Counter {
        /// Events accepted by an input and normalized.
        EventsAccepted => ("rampart_events_accepted_total", "Events accepted by inputs"),
        /// Inputs that could not be read as events (not JSON, not an object).
        EventsInvalid => ("rampart_events_invalid_total", "Inputs rejected as invalid events"),
        /// Events an input received but had to drop because the pipeline was full and the
        /// protocol cannot push back (UDP syslog).
        EventsDropped => ("rampart_events_dropped_total", "Events received but dropped because the pipeline was full (inputs that cannot push back, e.g. UDP syslog)"),
        /// Events older than the watermark: stored, not correlated.
        EventsLate => ("rampart_events_late_total", "Events later than the allowed lateness (stored, not correlated)"),
        /// Events written by an output.
        EventsWritten => ("rampart_events_written_total", "Events durably written by outputs"),
        /// Rule matches (single-event detections) before correlation.
        RuleMatches => ("rampart_rule_matches_total", "Detection matches"),
        /// Field values a numeric correlation (`value_sum`, `value_avg`, …) could not use:
        /// absent, not a number, or not finite.
        CorrelationValuesIgnored => ("rampart_correlation_values_ignored_total", "Values numeric correlations ignored (absent or not a number)"),
        /// Alerts emitted.
        AlertsFired => ("rampart_alerts_fired_total", "Alerts emitted"),
        /// Alerts withheld by a rule's `suppress`.
        AlertsSuppressed => ("rampart_alerts_suppressed_total", "Alerts withheld by suppression"),
        /// Alerts written by an output.
        AlertsWritten => ("rampart_alerts_written_total", "Alerts durably written by outputs"),
        /// Output write failures.
        OutputErrors => ("rampart_output_errors_total", "Output write failures"),
        /// AMQP messages published to the input's dead-letter exchange (never storable).
        AmqpDeadLettered => ("rampart_amqp_dead_lettered_total", "AMQP messages sent to the dead-letter exchange"),
        /// AMQP messages handed back to the broker for redelivery (an output failed).
        AmqpRequeued => ("rampart_amqp_requeued_total", "AMQP messages requeued for redelivery after an output failure"),
        /// AMQP deliveries the broker marked as redelivered.
        AmqpRedelivered => ("rampart_amqp_redelivered_total", "AMQP deliveries marked redelivered by the broker"),
        /// AMQP connections re-established after a loss.
        AmqpReconnects => ("rampart_amqp_reconnects_total", "AMQP connections re-established after a loss"),
        /// Terms a `new_term` correlation forgot because a group held `max_terms` (they
        /// alert again if seen).
        NewTermsEvicted => ("rampart_new_terms_evicted_total", "Terms new_term correlations forgot to stay within max_terms"),
        /// Correlation state snapshots written to the state directory.
        StateSnapshotsWritten => ("rampart_state_snapshots_written_total", "Correlation state snapshots written"),
        /// Correlation state snapshots that could not be written.
        StateSnapshotsFailed => ("rampart_state_snapshots_failed_total", "Correlation state snapshots that failed to write"),
        /// Events a plugin dropped (the plugin and its reason are logged at debug level); their
        /// deliveries are acked as handled.
        EventsPluginDropped => ("rampart_events_plugin_dropped_total", "Events dropped by a plugin (acked as handled, never stored or correlated)"),
        /// Plugin runs that failed (a VRL runtime error, a plugin that panicked); the event goes
        /// on as it was.
        PluginErrors => ("rampart_plugin_errors_total", "Plugin runs that failed; the event went on unchanged by that plugin"),
        /// Plugin runs that took longer than their time budget (VRL scripts).
        PluginOverBudget => ("rampart_plugin_over_budget_total", "Plugin runs that exceeded their time budget"),
        /// Lookup table or CIDR list reloads that failed (the previous contents stay in use).
        LookupReloadFailed => ("rampart_lookup_reload_failed_total", "Lookup file reloads that failed; the previous contents stay in use"),
    }
);

named_enum!(
    /// Latency stages; each has its own histogram.
    Stage {
        /// From acceptance of the event that completed an alert to the alert leaving the engine.
        AcceptToAlert => ("rampart_accept_to_alert_seconds", "Latency from accepting an event to the alert it completed"),
        /// From acceptance to the event being written by every output.
        AcceptToWritten => ("rampart_accept_to_written_seconds", "Latency from accepting an event to it being written"),
    }
);

/// Counters and latency histograms shared by every component of one Rampart process.
pub struct Metrics {
    counters: Vec<AtomicU64>,
    histograms: Vec<Mutex<Histogram<u64>>>,
    /// Inputs that registered a readiness: name → `None` when ready, else why not.
    readiness: Mutex<BTreeMap<String, Option<String>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

const LOWEST_NS: u64 = 1_000;
const HIGHEST_NS: u64 = 3_600 * 1_000_000_000;

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 1 h at 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, 3).unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_hist()))
}

#[allow(clippy::panic)]
fn unreachable_hist() -> Histogram<u64> {
    panic!("hdrhistogram rejected constant bounds")
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Metrics {
        Metrics {
            counters: Counter::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            histograms: Stage::ALL.iter().map(|_| Mutex::new(new_histogram())).collect(),
            readiness: Mutex::new(BTreeMap::new()),
        }
    }

    fn counter_index(c: Counter) -> usize {
        Counter::ALL.iter().position(|x| *x == c).unwrap_or(0)
    }

    fn stage_index(s: Stage) -> usize {
        Stage::ALL.iter().position(|x| *x == s).unwrap_or(0)
    }

    /// Adds `n` to a counter.
    pub fn add(&self, c: Counter, n: u64) {
        self.counters[Self::counter_index(c)].fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(&self, c: Counter) -> u64 {
        self.counters[Self::counter_index(c)].load(Ordering::Relaxed)
    }

    /// Records one latency, in nanoseconds (clamped into the histogram's range).
    pub fn record(&self, s: Stage, nanos: u64) {
        self.histograms[Self::stage_index(s)].lock().saturating_record(nanos.clamp(LOWEST_NS, HIGHEST_NS));
    }

    /// Records the latency from `accepted_ns` (a [`clock_ns`] reading) until now.
    pub fn record_since(&self, s: Stage, accepted_ns: u64) {
        self.record(s, clock_ns().saturating_sub(accepted_ns));
    }

    /// Input `name` is not taking events yet, or no longer: `why` says what it waits for
    /// (its connection, a reconnection) or what stopped it.
    pub fn input_waiting(&self, name: &str, why: impl Into<String>) {
        self.readiness.lock().insert(name.to_string(), Some(why.into()));
    }

    /// Input `name` takes events now (an AMQP input: its queue is declared, bound and
    /// consumed, so what is published from now on reaches it).
    pub fn input_ready(&self, name: &str) {
        self.readiness.lock().insert(name.to_string(), None);
    }

    /// Every input that registered a readiness, by name: `None` when it is ready, else why
    /// not. One snapshot, so a reader sees every input at the same moment.
    pub fn readiness(&self) -> BTreeMap<String, Option<String>> {
        self.readiness.lock().clone()
    }

    /// The inputs that are not ready, with why, by name; empty when every input that
    /// registered is ready.
    pub fn inputs_waiting(&self) -> Vec<(String, String)> {
        self.readiness().into_iter().filter_map(|(n, w)| w.map(|w| (n, w))).collect()
    }

    /// Every input that registered a readiness, and whether it is ready.
    pub fn inputs_ready(&self) -> Vec<(String, bool)> {
        self.readiness().into_iter().map(|(n, w)| (n, w.is_none())).collect()
    }

    /// A copy of one stage's histogram.
    pub fn histogram(&self, s: Stage) -> Histogram<u64> {
        self.histograms[Self::stage_index(s)].lock().clone()
    }

    /// Prometheus text exposition: counters, and each histogram as a summary with
    /// quantiles 0.5, 0.99, 0.999 and 1 (in seconds).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        for c in Counter::ALL {
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} counter\n{} {}", c.metric(), c.help(), c.metric(), c.metric(), self.get(*c));
        }
        for s in Stage::ALL {
            let h = self.histogram(*s);
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} summary", s.metric(), s.help(), s.metric());
            for q in [0.5, 0.99, 0.999, 1.0] {
                let v = if h.is_empty() { 0 } else { h.value_at_quantile(q) };
                let _ = writeln!(out, "{}{{quantile=\"{}\"}} {}", s.metric(), q, v as f64 / 1e9);
            }
            let sum: f64 = h.iter_recorded().map(|x| x.value_iterated_to() as f64 * x.count_at_value() as f64).sum::<f64>() / 1e9;
            let _ = writeln!(out, "{}_sum {}\n{}_count {}", s.metric(), sum, s.metric(), h.len());
        }
        let inputs = self.inputs_ready();
        if !inputs.is_empty() {
            let _ = writeln!(out, "# HELP rampart_input_ready 1 when the input takes events (an AMQP input consumes its queue), 0 while it connects or after it stopped\n# TYPE rampart_input_ready gauge");
            for (name, ready) in inputs {
                let _ = writeln!(out, "rampart_input_ready{{input=\"{}\"}} {}", name.replace('\\', "\\\\").replace('"', "\\\""), u8::from(ready));
            }
        }
        out
    }

    /// The human summary printed on exit: counters that are non-zero, then one line per
    /// stage with samples: `count p50 p99 p99.9 max`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for c in Counter::ALL {
            let v = self.get(*c);
            if v > 0 {
                let _ = writeln!(out, "{:<36} {v}", c.metric());
            }
        }
        for s in Stage::ALL {
            let h = self.histogram(*s);
            if h.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "{:<36} n={} p50={} p99={} p99.9={} max={}",
                s.metric().trim_end_matches("_seconds"),
                h.len(),
                fmt_ns(h.value_at_quantile(0.5)),
                fmt_ns(h.value_at_quantile(0.99)),
                fmt_ns(h.value_at_quantile(0.999)),
                fmt_ns(h.max())
            );
        }
        out
    }
}

/// Formats nanoseconds as a short human latency (`870µs`, `12.4ms`, `1.20s`).
pub fn fmt_ns(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{}µs", ns / 1_000)
    } else if ns < 1_000_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{:.2}s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_prometheus_text() {
        let m = Metrics::new();
        m.add(Counter::EventsAccepted, 3);
        m.add(Counter::EventsAccepted, 2);
        m.record(Stage::AcceptToAlert, 2_000_000);
        m.record(Stage::AcceptToAlert, 4_000_000);
        assert_eq!(m.get(Counter::EventsAccepted), 5);
        let text = m.render_prometheus();
        assert!(text.contains("rampart_events_accepted_total 5\n"), "{text}");
        assert!(text.contains("rampart_accept_to_alert_seconds_count 2\n"), "{text}");
        let p50_line = text.lines().find(|l| l.starts_with("rampart_accept_to_alert_seconds{quantile=\"0.5\"}")).unwrap();
        let p50: f64 = p50_line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((p50 - 0.002).abs() < 0.00001, "{p50}");
        let s = m.summary();
        assert!(s.contains("n=2 p50=2.0ms"), "{s}");
    }

    #[test]
    fn inputs_say_whether_they_are_ready() {
        let m = Metrics::new();
        assert!(m.inputs_waiting().is_empty() && !m.render_prometheus().contains("rampart_input_ready"));
        m.input_waiting("amqp:events", "connecting to amqp://127.0.0.1:5672");
        m.input_ready("amqp:other");
        assert_eq!(m.inputs_waiting(), vec![("amqp:events".to_string(), "connecting to amqp://127.0.0.1:5672".to_string())]);
        let text = m.render_prometheus();
        assert!(text.contains("rampart_input_ready{input=\"amqp:events\"} 0\n") && text.contains("rampart_input_ready{input=\"amqp:other\"} 1\n"), "{text}");
        m.input_ready("amqp:events");
        assert!(m.inputs_waiting().is_empty());
        m.input_waiting("amqp:other", "connection lost");
        assert_eq!(m.inputs_ready(), vec![("amqp:events".to_string(), true), ("amqp:other".to_string(), false)]);
    }

    #[test]
    fn names_follow_convention() {
        for c in Counter::ALL {
            assert!(c.metric().starts_with("rampart_") && c.metric().ends_with("_total"));
        }
        for s in Stage::ALL {
            assert!(s.metric().starts_with("rampart_") && s.metric().ends_with("_seconds"));
        }
    }
}
