//! Latency histograms and throughput over time.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A latency histogram in nanoseconds: 1 µs to 1 h, 3 significant digits.
#[derive(Clone, Debug)]
pub struct Latency(pub Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Latency {
        // Constant, valid bounds: the fallback is never taken.
        Latency(Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))))
    }

    /// Records one latency in nanoseconds (clamped into range).
    pub fn record(&mut self, ns: u64) {
        self.0.saturating_record(ns.clamp(1_000, 3_600_000_000_000));
    }

    /// Samples.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// No samples.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn q_ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            0.0
        } else {
            self.0.value_at_quantile(q) as f64 / 1e6
        }
    }

    /// `{count, p50_ms, p99_ms, p999_ms, max_ms, mean_ms}`.
    pub fn to_json(&self) -> Value {
        json!({
            "count": self.0.len(),
            "p50_ms": self.q_ms(0.5),
            "p99_ms": self.q_ms(0.99),
            "p999_ms": self.q_ms(0.999),
            "max_ms": if self.0.is_empty() { 0.0 } else { self.0.max() as f64 / 1e6 },
            "mean_ms": self.0.mean() / 1e6,
        })
    }

    /// `p50 … p99 … p99.9 … max` for the summary line.
    pub fn short(&self) -> String {
        if self.0.is_empty() {
            return "no samples".into();
        }
        format!("p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms", self.q_ms(0.5), self.q_ms(0.99), self.q_ms(0.999), self.q_ms(1.0))
    }

    /// The percentile curve: (percentile, ms) at HdrHistogram's usual points.
    pub fn curve(&self) -> Vec<(f64, f64)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for nines in 0..=50 {
            // 0%, then ever closer to 100%: 1 - 10^(-k/10).
            let q = 1.0 - 10f64.powf(-(nines as f64) / 10.0);
            if q > 1.0 - 1.0 / self.0.len() as f64 {
                break;
            }
            out.push((q * 100.0, self.q_ms(q)));
        }
        out.push((100.0, self.q_ms(1.0)));
        out
    }
}

/// Samples a monotonic counter every `interval` on its own thread, for throughput over time.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(f64, u64)>>>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").finish_non_exhaustive()
    }
}

impl Sampler {
    /// Starts sampling `read` now.
    pub fn start(interval: Duration, read: impl Fn() -> u64 + Send + 'static) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("perf-sampler".into())
            .spawn(move || {
                let t0 = Instant::now();
                let mut out = vec![(0.0, read())];
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    out.push((t0.elapsed().as_secs_f64(), read()));
                }
                out
            })
            .ok();
        Sampler { stop, thread }
    }

    /// Stops and returns (seconds since start, events/s over the last interval).
    pub fn finish(self) -> Vec<(f64, f64)> {
        rates(&self.finish_raw())
    }

    /// Stops and returns the samples: (seconds since start, counter value).
    pub fn finish_raw(mut self) -> Vec<(f64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

/// Rates between consecutive `(seconds, count)` samples.
pub fn rates(samples: &[(f64, u64)]) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].0 - w[0].0;
            (dt > 0.0).then(|| (w[1].0, w[1].1.saturating_sub(w[0].1) as f64 / dt))
        })
        .collect()
}

/// The rate between the first sample above zero and the last sample: throughput once the
/// pipeline is warm (index creation, connection setup and the like excluded).
pub fn sustained(samples: &[(f64, u64)]) -> f64 {
    let Some(first) = samples.iter().position(|s| s.1 > 0) else { return 0.0 };
    // The first sample at the final count: trailing idle samples do not dilute the rate.
    let end = samples.last().map_or(0, |s| s.1);
    let last = samples.iter().position(|s| s.1 >= end).unwrap_or(first);
    // The interval before the first non-zero sample is when the first events landed.
    let from = first.saturating_sub(1);
    let dt = samples[last].0 - samples[from].0;
    if dt <= 0.0 {
        0.0
    } else {
        (samples[last].1 - samples[from].1) as f64 / dt
    }
}

/// A latency histogram several threads record into.
pub type SharedLatency = Arc<Mutex<Latency>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_curve() {
        let mut l = Latency::new();
        for i in 1..=1000u64 {
            l.record(i * 1_000_000);
        }
        let j = l.to_json();
        assert!((j["p50_ms"].as_f64().unwrap() - 500.0).abs() < 1.0, "{j}");
        assert!((j["p99_ms"].as_f64().unwrap() - 990.0).abs() < 1.0, "{j}");
        let c = l.curve();
        assert!(c.len() > 10 && c.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{c:?}");
        assert_eq!(c.last().unwrap().0, 100.0);
    }

    #[test]
    fn sustained_rate_skips_warm_up() {
        assert_eq!(sustained(&[(0.0, 0), (1.0, 0), (2.0, 0), (3.0, 100), (4.0, 200), (5.0, 200)]), 100.0);
        assert_eq!(sustained(&[(0.0, 0), (1.0, 0)]), 0.0);
    }

    #[test]
    fn rates_between_samples() {
        assert_eq!(rates(&[(0.0, 0), (0.5, 100), (1.0, 300)]), vec![(0.5, 200.0), (1.0, 400.0)]);
    }
}
