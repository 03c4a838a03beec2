//! Parsing (RFC 5424, RFC 3164) and the JSON a parsed message becomes.

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone};
use rampart_core::normalize::SYNONYMS;
use rampart_core::time::{parse_timestamp, NaiveZone};
use rampart_core::EventTime;
use serde_json::{json, Map, Value};

/// RFC 5424 facility names, by code.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
/// Severity names (as syslog.conf writes them), by code.
const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
/// The same severities in MozDef's words: emerg, alert and crit are all `CRITICAL`.
const MOZDEF_SEVERITIES: [&str; 8] = ["CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// One syslog message, parsed; its text borrows the line.
#[derive(Debug, PartialEq)]
struct Message<'a> {
    format: &'static str,
    pri: Option<u8>,
    /// The timestamp as sent (`None` when absent or NILVALUE).
    stamp: Option<&'a str>,
    /// The timestamp read, when it could be.
    time: Option<EventTime>,
    hostname: Option<&'a str>,
    app: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    /// `{SD-ID: {PARAM: value}}`; a repeated PARAM becomes an array.
    sd: Map<String, Value>,
    msg: &'a str,
}

/// A frame as the JSON the normalizer takes, and whether it parsed as syslog; `None` for
/// a blank frame.
pub(super) fn to_value(frame: &[u8], sender: &str, transport: &str, zone: NaiveZone, received: EventTime) -> Option<(Value, bool)> {
    let text = String::from_utf8_lossy(frame);
    let line = text.trim_end_matches(is_separator_char);
    if line.trim().is_empty() {
        return None;
    }
    Some(match parse(line, zone, received) {
        Some(m) => (m.into_value(sender, transport), true),
        None => (json!({"category": "syslog", "summary": line, "tags": ["syslog_unparsed"], "details": {"syslog": {"sender": sender, "transport": transport}}}), false),
    })
}

fn is_separator_char(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\0')
}

/// Parses a line as RFC 5424 or RFC 3164; `None` when it is neither.
fn parse(line: &str, zone: NaiveZone, received: EventTime) -> Option<Message<'_>> {
    let (pri, rest) = match line.strip_prefix('<') {
        Some(r) => {
            let end = r.find('>')?;
            let digits = &r[..end];
            if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let pri: u8 = digits.parse().ok().filter(|p| *p <= 191)?;
            (Some(pri), &r[end + 1..])
        }
        None => (None, line),
    };
    // `1 ` after PRI is RFC 5424's VERSION; a 3164 stamp starts with a month or a year.
    let version_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if pri.is_some() && (1..=3).contains(&version_len) && rest.as_bytes().get(version_len) == Some(&b' ') {
        return parse_5424(pri, &rest[version_len + 1..], zone, received);
    }
    parse_3164(pri, rest, zone, received)
}

/// `TIMESTAMP HOST APP PROCID MSGID SD [MSG]`, after `<PRI>VERSION `.
fn parse_5424(pri: Option<u8>, rest: &str, zone: NaiveZone, received: EventTime) -> Option<Message<'_>> {
    fn field(s: &str) -> Option<(&str, &str)> {
        let (tok, after) = s.split_once(' ').unwrap_or((s, ""));
        (!tok.is_empty()).then_some((tok, after))
    }
    fn nil(s: &str) -> Option<&str> {
        (s != "-").then_some(s)
    }
    let (stamp, rest) = field(rest)?;
    let (hostname, rest) = field(rest)?;
    let (app, rest) = field(rest)?;
    let (procid, rest) = field(rest)?;
    let (msgid, rest) = field(rest)?;
    let (sd, msg) = if rest == "-" || rest.starts_with("- ") {
        (Map::new(), rest.get(2..).unwrap_or(""))
    } else if rest.starts_with('[') {
        let (sd, after) = parse_sd(rest)?;
        match after.strip_prefix(' ') {
            Some(msg) => (sd, msg),
            None if after.is_empty() => (sd, after),
            None => return None,
        }
    } else {
        // No STRUCTURED-DATA at all (a common sender mistake): the rest is the message.
        (Map::new(), rest)
    };
    let stamp = nil(stamp);
    Some(Message {
        format: "rfc5424",
        pri,
        stamp,
        time: stamp.and_then(|s| parse_timestamp(s, zone, received)),
        hostname: nil(hostname),
        app: nil(app),
        procid: nil(procid),
        msgid: nil(msgid),
        sd,
        msg: msg.strip_prefix('\u{feff}').unwrap_or(msg),
    })
}

/// `[ID PARAM="value" …][…]…`; returns the elements and what follows them.
fn parse_sd(mut s: &str) -> Option<(Map<String, Value>, &str)> {
    let mut out = Map::new();
    while let Some(r) = s.strip_prefix('[') {
        let id_end = r.find([' ', ']'])?;
        let id = &r[..id_end];
        if id.is_empty() || id.contains(['=', '"']) {
            return None;
        }
        let mut params = match out.shift_remove(id) {
            Some(Value::Object(p)) => p,
            _ => Map::new(),
        };
        let mut r = &r[id_end..];
        loop {
            if let Some(after) = r.strip_prefix(']') {
                r = after;
                break;
            }
            r = r.strip_prefix(' ')?;
            let eq = r.find('=')?;
            let name = &r[..eq];
            if name.is_empty() || name.contains([' ', ']', '"']) {
                return None;
            }
            let (value, after) = sd_value(r[eq + 1..].strip_prefix('"')?)?;
            match params.get_mut(name) {
                Some(Value::Array(a)) => a.push(Value::String(value)),
                Some(first) => *first = Value::Array(vec![first.take(), Value::String(value)]),
                None => {
                    params.insert(name.to_string(), Value::String(value));
                }
            }
            r = after;
        }
        out.insert(id.to_string(), Value::Object(params));
        s = r;
    }
    Some((out, s))
}

/// A PARAM-VALUE up to its closing quote, unescaping `\"`, `\\` and `\]` (a backslash
/// before anything else is kept, as RFC 5424 says).
fn sd_value(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => match chars.clone().next() {
                Some((_, e @ ('"' | '\\' | ']'))) => {
                    value.push(e);
                    chars.next();
                }
                _ => value.push('\\'),
            },
            c => value.push(c),
        }
    }
    None
}

/// `STAMP [HOST] [TAG[PID]:] MSG`, PRI already taken (or absent).
fn parse_3164(pri: Option<u8>, rest: &str, zone: NaiveZone, received: EventTime) -> Option<Message<'_>> {
    let (stamp, time, rest) = bsd_stamp(rest, zone, received).or_else(|| iso_stamp(rest, zone, received))?;
    let rest = rest.trim_start_matches(' ');
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    // Local senders leave HOST out: then the first word is already the tag.
    let (hostname, rest) = if first.ends_with(':') || (first.contains('[') && first.ends_with(']')) { (None, rest) } else { (Some(first).filter(|h| !h.is_empty()), after) };
    let (app, procid, msg) = split_tag(rest);
    Some(Message { format: "rfc3164", pri, stamp: Some(stamp), time, hostname, app, procid, msgid: None, sd: Map::new(), msg })
}

/// `TAG[PID]: MSG` or `TAG: MSG`; anything else is all message.
fn split_tag(s: &str) -> (Option<&str>, Option<&str>, &str) {
    let end = s.find(|c: char| c == '[' || c == ':' || c.is_whitespace()).unwrap_or(s.len());
    let (tag, after) = s.split_at(end);
    if tag.is_empty() {
        return (None, None, s);
    }
    /// The message after a tag: nothing, or a space and the text.
    fn msg(r: &str) -> Option<&str> {
        (r.is_empty() || r.starts_with(' ')).then(|| r.strip_prefix(' ').unwrap_or(r))
    }
    if let Some(r) = after.strip_prefix('[') {
        if let Some((pid, r)) = r.split_once(']') {
            if let Some(m) = msg(r.strip_prefix(':').unwrap_or(r)) {
                return (Some(tag), Some(pid).filter(|p| !p.is_empty()), m);
            }
        }
    } else if let Some(m) = after.strip_prefix(':').and_then(msg) {
        return (Some(tag), None, m);
    }
    (None, None, s)
}

/// `Mmm dd [yyyy] hh:mm:ss[.fff]`: the stamp's text, its time, and what follows.
fn bsd_stamp(s: &str, zone: NaiveZone, received: EventTime) -> Option<(&str, Option<EventTime>, &str)> {
    let b = s.as_bytes();
    let month = MONTHS.iter().position(|m| b.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(m.as_bytes())))? as u32 + 1;
    let mut i = 3;
    let spaces = b[i..].iter().take_while(|c| **c == b' ').count();
    if spaces == 0 {
        return None;
    }
    i += spaces;
    let day = number(b, &mut i, 1, 2)?;
    byte(b, &mut i, b' ')?;
    let mut year = None;
    if b.get(i + 4) == Some(&b' ') {
        year = Some(number(b, &mut i, 4, 4)? as i32);
        byte(b, &mut i, b' ')?;
    }
    let hour = number(b, &mut i, 2, 2)?;
    byte(b, &mut i, b':')?;
    let minute = number(b, &mut i, 2, 2)?;
    byte(b, &mut i, b':')?;
    let second = number(b, &mut i, 2, 2)?;
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let frac = number(b, &mut i, 1, 9)?;
        nanos = frac * 10u32.pow(9 - (i - start) as u32);
    }
    if i < b.len() && b[i] != b' ' {
        return None;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos);
    let at = |y: i32| {
        let local = NaiveDate::from_ymd_opt(y, month, day)?.and_time(time?);
        zone.0.from_local_datetime(&local).single().map(EventTime::from_datetime)
    };
    let time = match year {
        Some(y) => at(y),
        None => {
            // The year that puts the stamp closest to when it arrived: a December line
            // read on 1 January is last year's, a clock a little ahead stays this year.
            let this = received.to_datetime().with_timezone(&zone.0).year();
            [this - 1, this, this + 1].into_iter().filter_map(at).min_by_key(|t| t.0.abs_diff(received.0))
        }
    };
    Some((&s[..i], time, &s[i..]))
}

/// An ISO-8601 stamp (`2026-11-27T18:59:09.123456+01:00`) as rsyslog's high-precision
/// format sends it.
fn iso_stamp(s: &str, zone: NaiveZone, received: EventTime) -> Option<(&str, Option<EventTime>, &str)> {
    let b = s.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let (stamp, rest) = s.split_at(s.find(' ').unwrap_or(s.len()));
    Some((stamp, parse_timestamp(stamp, zone, received), rest))
}

/// `min..=max` ASCII digits at `*i`.
fn number(b: &[u8], i: &mut usize, min: usize, max: usize) -> Option<u32> {
    let n = b.get(*i..)?.iter().take(max).take_while(|c| c.is_ascii_digit()).count();
    if n < min {
        return None;
    }
    let v = b[*i..*i + n].iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    *i += n;
    Some(v)
}

fn byte(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (b.get(*i) == Some(&c)).then(|| *i += 1)
}

impl Message<'_> {
    /// The JSON the normalizer takes: MozDef's fields from the header, or, when MSG is a
    /// JSON object, that object with the header filling only what it lacks.
    fn into_value(self, sender: &str, transport: &str) -> Value {
        let mut meta = Map::new();
        meta.insert("format".into(), json!(self.format));
        if let Some(p) = self.pri {
            meta.insert("facility".into(), json!(FACILITIES[usize::from(p / 8)]));
            meta.insert("severity".into(), json!(SEVERITIES[usize::from(p % 8)]));
            meta.insert("pri".into(), json!(p));
        }
        if let Some(id) = self.msgid {
            meta.insert("msgid".into(), json!(id));
        }
        if !self.sd.is_empty() {
            meta.insert("structured_data".into(), Value::Object(self.sd));
        }
        meta.insert("sender".into(), json!(sender));
        meta.insert("transport".into(), json!(transport));

        // A stamp that could not be read goes to the normalizer as text: it keeps it in
        // `details` and tags the event `timestamp-unparsed`.
        let time = self.time.map(|t| json!(t.to_rfc3339())).or_else(|| self.stamp.map(|s| json!(s)));
        let mut header = vec![("category", json!("syslog"))];
        header.extend(time.map(|t| ("utctimestamp", t)));
        header.extend(self.pri.map(|p| ("severity", json!(MOZDEF_SEVERITIES[usize::from(p % 8)]))));
        header.extend(self.hostname.map(|h| ("hostname", json!(h))));
        header.extend(self.app.map(|a| ("processname", json!(a))));
        header.extend(self.procid.map(|p| ("processid", json!(p))));

        let body = self.msg.trim();
        if body.starts_with('{') {
            if let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(body) {
                for (k, v) in [("hostname", self.hostname), ("appname", self.app), ("procid", self.procid), ("timestamp", self.stamp)] {
                    if let Some(v) = v {
                        meta.insert(k.into(), json!(v));
                    }
                }
                for (field, v) in header {
                    let synonyms = SYNONYMS.iter().find(|(f, _)| *f == field).map(|(_, s)| *s).unwrap_or(&[]);
                    if !obj.contains_key(field) && !synonyms.iter().any(|k| obj.contains_key(*k)) {
                        obj.insert(field.into(), v);
                    }
                }
                add_syslog_details(&mut obj, meta);
                return Value::Object(obj);
            }
        }
        let mut doc: Map<String, Value> = header.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        doc.insert("summary".into(), json!(self.msg));
        doc.insert("details".into(), json!({ "syslog": meta }));
        Value::Object(doc)
    }
}

/// Puts the header under `details.syslog`, never over anything the sender sent there.
fn add_syslog_details(obj: &mut Map<String, Value>, meta: Map<String, Value>) {
    match obj.get_mut("details") {
        Some(Value::Object(details)) => match details.get_mut("syslog") {
            Some(Value::Object(theirs)) => {
                for (k, v) in meta {
                    theirs.entry(k).or_insert(v);
                }
            }
            Some(_) => {}
            None => {
                details.insert("syslog".into(), Value::Object(meta));
            }
        },
        Some(Value::Null) | None => {
            obj.insert("details".into(), json!({ "syslog": meta }));
        }
        // The normalizer keeps a non-object `details` as `details.details`; do the same
        // here so the header can sit beside it.
        Some(other) => {
            let theirs = other.take();
            *other = json!({ "details": theirs, "syslog": meta });
        }
    }
}
