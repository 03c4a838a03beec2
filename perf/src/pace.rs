//! The open-loop schedule. Send `i` is due at `start + i / rate`, fixed before the run, never
//! moved by how long earlier sends took; latency is measured from the due time. A sender
//! that falls behind sends what is due as soon as it can, and those events' latency includes
//! the wait, which is exactly what a closed-loop load generator would hide (coordinated
//! omission).

use rampart_core::metrics::clock_ns;
use std::time::Duration;

/// Due times for a fixed rate.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// `clock_ns` at which send 0 is due.
    pub start_ns: u64,
    /// Nanoseconds between sends.
    pub interval_ns: f64,
}

impl Schedule {
    /// Sends at `rate` per second, the first one `lead` from now.
    pub fn new(rate: f64, lead: Duration) -> Schedule {
        Schedule { start_ns: clock_ns() + u64::try_from(lead.as_nanos()).unwrap_or(0), interval_ns: 1e9 / rate.max(1e-9) }
    }

    /// When send `i` is due (`clock_ns`).
    pub fn due(&self, i: usize) -> u64 {
        self.start_ns + (i as f64 * self.interval_ns) as u64
    }

    /// Offset of send `i` from the start, in ns.
    pub fn offset(&self, i: usize) -> u64 {
        (i as f64 * self.interval_ns) as u64
    }

    /// How many sends are due by `now_ns`.
    pub fn due_by(&self, now_ns: u64) -> usize {
        if now_ns < self.start_ns {
            0
        } else {
            ((now_ns - self.start_ns) as f64 / self.interval_ns) as usize + 1
        }
    }
}

/// Waits until `clock_ns() >= due`: sleeps while far, then yields (sleep alone overshoots by
/// ~50–100 µs, which would add to every measured latency).
pub fn wait_until(due: u64) {
    loop {
        let now = clock_ns();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > 300_000 {
            std::thread::sleep(Duration::from_nanos(left - 200_000));
        } else {
            std::thread::yield_now();
        }
    }
}

/// Waits until `clock_ns() >= due` by sleeping only: it overshoots by the timer slack
/// (~50–100 µs) but leaves the core to other threads.
pub fn sleep_until(due: u64) {
    let now = clock_ns();
    if due > now {
        std::thread::sleep(Duration::from_nanos(due - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_fixed_by_rate() {
        let s = Schedule { start_ns: 1_000, interval_ns: 10.0 };
        assert_eq!(s.due(0), 1_000);
        assert_eq!(s.due(5), 1_050);
        assert_eq!(s.due_by(999), 0);
        assert_eq!(s.due_by(1_000), 1);
        assert_eq!(s.due_by(1_049), 5);
        let t = Schedule::new(1_000_000.0, Duration::from_millis(1));
        wait_until(t.due(10));
        assert!(clock_ns() >= t.due(10));
        sleep_until(t.due(500));
        assert!(clock_ns() >= t.due(500));
    }
}
