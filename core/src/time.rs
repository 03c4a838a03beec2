//! Event time: milliseconds since the Unix epoch in UTC, the watermark that closes windows,
//! and the timestamp parser that normalization uses.
//!
//! Every time inside Rampart is an [`EventTime`]; text forms are produced only at the edges
//! (ISO-8601 with millisecond precision and a `Z`/`+00:00` offset, as MozDef stored them).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A point in event time: milliseconds since 1970-01-01T00:00:00Z.
///
/// Times before the epoch are clamped to it; a SIEM has no use for them and an unsigned
/// time is what timely's progress tracking wants.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTime(pub u64);

impl EventTime {
    /// The largest time; a watermark here has closed every window.
    pub const MAX: EventTime = EventTime(u64::MAX);

    /// Now, by the wall clock.
    pub fn now() -> EventTime {
        Self::from_datetime(Utc::now())
    }

    /// From milliseconds since the epoch.
    pub fn from_millis(ms: u64) -> EventTime {
        EventTime(ms)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// From a chrono date-time in any zone (clamped at the epoch).
    pub fn from_datetime<Tz: TimeZone>(dt: DateTime<Tz>) -> EventTime {
        EventTime(u64::try_from(dt.timestamp_millis()).unwrap_or(0))
    }

    /// As a chrono UTC date-time (saturating far in the future).
    pub fn to_datetime(self) -> DateTime<Utc> {
        let ms = i64::try_from(self.0).unwrap_or(i64::MAX);
        Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// ISO-8601 / RFC 3339 text in UTC with milliseconds, e.g. `2026-11-27T18:59:09.123+00:00`
    /// (MozDef's `utctimestamp` form).
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
    }

    /// The UTC calendar day as `YYYYMMDD` (daily file and index names).
    pub fn day_stamp(self) -> String {
        self.to_datetime().format("%Y%m%d").to_string()
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> EventTime {
        EventTime(self.0.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> EventTime {
        EventTime(self.0.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The watermark: every event with a time below it is late. It is the highest event time
/// seen minus the allowed lateness, and it only moves forward.
#[derive(Clone, Debug)]
pub struct Watermark {
    lateness: Duration,
    max_seen: Option<EventTime>,
    current: EventTime,
}

impl Watermark {
    /// A watermark that trails the newest event by `lateness`.
    pub fn new(lateness: Duration) -> Watermark {
        Watermark { lateness, max_seen: None, current: EventTime(0) }
    }

    /// The allowed lateness.
    pub fn lateness(&self) -> Duration {
        self.lateness
    }

    /// The current watermark: events strictly below it are late.
    pub fn current(&self) -> EventTime {
        self.current
    }

    /// Whether an event at `t` is late (it would land in a window already closed).
    pub fn is_late(&self, t: EventTime) -> bool {
        t < self.current
    }

    /// Notes an event time; returns the new watermark if it moved.
    pub fn observe(&mut self, t: EventTime) -> Option<EventTime> {
        if self.max_seen.is_none_or(|m| t > m) {
            self.max_seen = Some(t);
        }
        self.advance_to(t.saturating_sub(self.lateness))
    }

    /// Moves the watermark to at least `t` (processing-time ticks, end of input); returns
    /// the new watermark if it moved.
    pub fn advance_to(&mut self, t: EventTime) -> Option<EventTime> {
        if t > self.current {
            self.current = t;
            Some(t)
        } else {
            None
        }
    }
}

/// Parses a human duration such as `30s`, `5m`, `1h 30m`, `250ms` (humantime's syntax),
/// plus Sigma's bare forms `30s`/`5m`/`1h`/`2d`/`1w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("invalid duration `{text}`: {e} (examples: 250ms, 30s, 5m, 1h, 2d)"))
}

/// Formats a duration the way a user would write it (`5m`, `1h 30m`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// How to read times that carry no zone.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NaiveZone(pub FixedOffset);

impl Default for NaiveZone {
    fn default() -> Self {
        NaiveZone(chrono::Offset::fix(&Utc))
    }
}

/// Epoch numbers are read by magnitude: seconds below 1e11 (year 5138), milliseconds below
/// 1e14, microseconds below 1e17, nanoseconds above.
pub fn epoch_number_to_time(n: f64) -> Option<EventTime> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n < 1e11 {
        n * 1000.0
    } else if n < 1e14 {
        n
    } else if n < 1e17 {
        n / 1000.0
    } else {
        n / 1_000_000.0
    };
    Some(EventTime(ms as u64))
}

/// Parses the timestamp forms shippers send: RFC 3339 / ISO-8601 (with or without zone,
/// `T` or space, fractions), RFC 2822, epoch seconds/ms/µs/ns as text, syslog's
/// `Mon DD HH:MM:SS` (year taken from `reference`), Apache's `10/Oct/2000:13:55:36 -0700`
/// and `YYYY/MM/DD HH:MM:SS`. A time without a zone is read in `naive` (UTC by default).
pub fn parse_timestamp(text: &str, naive: NaiveZone, reference: EventTime) -> Option<EventTime> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s.parse::<f64>().ok().and_then(epoch_number_to_time);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(EventTime::from_datetime(dt));
    }
    const ZONED: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%d/%b/%Y:%H:%M:%S %z",
        "%a, %d %b %Y %H:%M:%S %z",
    ];
    for f in ZONED {
        if let Ok(dt) = DateTime::parse_from_str(s, f) {
            return Some(EventTime::from_datetime(dt));
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Some(EventTime::from_datetime(dt));
    }
    let trimmed_z = s.strip_suffix(" UTC").or_else(|| s.strip_suffix(" GMT"));
    let (body, zone) = match trimmed_z {
        Some(b) => (b, NaiveZone::default()),
        None => (s, naive),
    };
    const NAIVE: &[&str] = &[
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%d/%b/%Y:%H:%M:%S",
        "%b %d %Y %H:%M:%S",
        "%d %b %Y %H:%M:%S",
    ];
    for f in NAIVE {
        if let Ok(n) = NaiveDateTime::parse_from_str(body, f) {
            return naive_to_time(n, zone);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(body, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).and_then(|n| naive_to_time(n, zone));
    }
    // Syslog (RFC 3164): `Nov 27 18:59:09`, day possibly space-padded, no year.
    let collapsed = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let year = reference.to_datetime().format("%Y").to_string();
    let with_year = format!("{year} {collapsed}");
    for f in ["%Y %b %d %H:%M:%S%.f", "%Y %b %d %H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&with_year, f) {
            let t = naive_to_time(n, zone)?;
            // A December line read in January belongs to last year.
            if t.0 > reference.0.saturating_add(2 * 86_400_000) {
                let prev = format!("{} {collapsed}", year.parse::<i32>().ok()? - 1);
                return NaiveDateTime::parse_from_str(&prev, f).ok().and_then(|n| naive_to_time(n, zone));
            }
            return Some(t);
        }
    }
    None
}

fn naive_to_time(n: NaiveDateTime, zone: NaiveZone) -> Option<EventTime> {
    zone.0.from_local_datetime(&n).single().map(EventTime::from_datetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> NaiveZone {
        NaiveZone::default()
    }
    const REF: EventTime = EventTime(1_795_000_000_000); // 2026-11-18

    #[test]
    fn parses_rfc3339_and_offsets() {
        let t = parse_timestamp("2026-11-27T18:59:09.123Z", utc(), REF).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T18:59:09.123+00:00");
        let t = parse_timestamp("2026-11-27T19:59:09+01:00", utc(), REF).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T18:59:09.000+00:00");
        let t = parse_timestamp("2026-11-27 18:59:09.5+0000", utc(), REF).unwrap();
        assert_eq!(t.as_millis() % 1000, 500);
    }

    #[test]
    fn naive_times_are_utc_unless_configured() {
        let t = parse_timestamp("2026-11-27 18:59:09", utc(), REF).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T18:59:09.000+00:00");
        let plus2 = NaiveZone(FixedOffset::east_opt(7200).unwrap());
        let t2 = parse_timestamp("2026-11-27 18:59:09", plus2, REF).unwrap();
        assert_eq!(t.0 - t2.0, 7_200_000);
    }

    #[test]
    fn epoch_units_by_magnitude() {
        let s = parse_timestamp("1795000000", utc(), REF).unwrap();
        let ms = parse_timestamp("1795000000000", utc(), REF).unwrap();
        let us = parse_timestamp("1795000000000000", utc(), REF).unwrap();
        let frac = parse_timestamp("1795000000.25", utc(), REF).unwrap();
        assert_eq!(s, ms);
        assert_eq!(ms, us);
        assert_eq!(frac.0, 1_795_000_000_250);
        assert_eq!(epoch_number_to_time(1.795e18), Some(EventTime(1_795_000_000_000)));
    }

    #[test]
    fn syslog_apache_and_rfc2822() {
        let t = parse_timestamp("Nov  7 08:01:02", utc(), REF).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-07T08:01:02.000+00:00");
        let t = parse_timestamp("10/Oct/2000:13:55:36 -0700", utc(), REF).unwrap();
        assert_eq!(t.to_rfc3339(), "2000-10-10T20:55:36.000+00:00");
        let t = parse_timestamp("Tue, 1 Jul 2003 10:52:37 +0200", utc(), REF).unwrap();
        assert_eq!(t.to_rfc3339(), "2003-07-01T08:52:37.000+00:00");
    }

    #[test]
    fn syslog_december_in_january_is_last_year() {
        let jan2 = parse_timestamp("2027-01-02T00:00:00Z", utc(), REF).unwrap();
        let t = parse_timestamp("Dec 31 23:00:00", utc(), jan2).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-31T23:00:00.000+00:00");
    }

    #[test]
    fn garbage_is_none() {
        assert!(parse_timestamp("yesterday-ish", utc(), REF).is_none());
        assert!(parse_timestamp("", utc(), REF).is_none());
    }

    #[test]
    fn watermark_trails_max_and_never_goes_back() {
        let mut w = Watermark::new(Duration::from_secs(60));
        assert_eq!(w.observe(EventTime(120_000)), Some(EventTime(60_000)));
        assert_eq!(w.observe(EventTime(100_000)), None);
        assert!(w.is_late(EventTime(59_999)));
        assert!(!w.is_late(EventTime(60_000)));
        assert_eq!(w.advance_to(EventTime(10)), None);
        assert_eq!(w.current(), EventTime(60_000));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("5 parsecs").unwrap_err().contains("invalid duration"));
    }
}
