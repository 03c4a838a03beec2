//! The compiled value matchers a detection is made of, and the per-event checks.
//!
//! What must stay true: needles are lowercased once at compile time and an event
//! string is compared ASCII-case-insensitively in place; only a non-ASCII event
//! string is lowercased (allocated) before comparison. Wildcard patterns that are
//! really equals/contains/startswith/endswith compile to those.

use ipnet::IpNet;
use serde_json::Value;
use std::borrow::Cow;
use std::net::IpAddr;

/// How a string pattern compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrKind {
    /// Whole value.
    Equals,
    /// Substring.
    Contains,
    /// Prefix.
    StartsWith,
    /// Suffix.
    EndsWith,
    /// General Sigma wildcard pattern (`*`, `?`).
    Glob(Vec<GlobTok>),
    /// `*` alone: any string (any present, non-null value).
    Any,
}

/// One token of a general wildcard pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobTok {
    /// Literal text (lowercased when case-insensitive).
    Lit(String),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A compiled string pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrMatch {
    /// The comparison.
    pub kind: StrKind,
    /// The literal (lowercased unless `cased`); unused for `Glob`/`Any`.
    pub needle: String,
    /// Case-sensitive (`cased` modifier).
    pub cased: bool,
}

/// Numeric comparison of the `gt`/`gte`/`lt`/`lte` modifiers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NumOp {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

/// A part of a timestamp, for the `minute` … `year` modifiers (UTC; `week` is the ISO week).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimePart {
    /// 0–59
    Minute,
    /// 0–23
    Hour,
    /// Day of the month, 1–31.
    Day,
    /// ISO 8601 week number, 1–53.
    Week,
    /// 1–12
    Month,
    /// The year.
    Year,
}

impl TimePart {
    pub(crate) fn from_name(n: &str) -> Option<TimePart> {
        Some(match n {
            "minute" => TimePart::Minute,
            "hour" => TimePart::Hour,
            "day" => TimePart::Day,
            "week" => TimePart::Week,
            "month" => TimePart::Month,
            "year" => TimePart::Year,
            _ => return None,
        })
    }

    /// The modifier's name.
    pub fn name(self) -> &'static str {
        match self {
            TimePart::Minute => "minute",
            TimePart::Hour => "hour",
            TimePart::Day => "day",
            TimePart::Week => "week",
            TimePart::Month => "month",
            TimePart::Year => "year",
        }
    }

    /// This part of a timestamp value: an RFC 3339 / ISO 8601 string (`2026-01-02T03:04:05Z`,
    /// `2026-01-02 03:04:05.123`, with or without a UTC offset; none means UTC) or epoch
    /// seconds/milliseconds (by magnitude, as a number or numeric string).
    pub fn of(self, v: &Value) -> Option<i64> {
        let secs = match v {
            Value::Number(n) => epoch_secs(n.as_f64()?),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) => epoch_secs(f),
                Err(_) => parse_timestamp(s.trim())?,
            },
            _ => return None,
        };
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        Some(match self {
            TimePart::Minute => tod / 60 % 60,
            TimePart::Hour => tod / 3600,
            TimePart::Day => d,
            TimePart::Month => m,
            TimePart::Year => y,
            TimePart::Week => iso_week(y, days),
        })
    }
}

fn epoch_secs(f: f64) -> i64 {
    if f.abs() >= 1e11 {
        (f / 1000.0).floor() as i64
    } else {
        f.floor() as i64
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn iso_week(y: i64, days: i64) -> i64 {
    let weekday = |d: i64| (d + 3).rem_euclid(7) + 1; // 1 = Monday; 1970-01-01 was a Thursday
    let weeks_in = |year: i64| {
        let jan1 = weekday(days_from_civil(year, 1, 1));
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        if jan1 == 4 || (leap && jan1 == 3) { 53 } else { 52 }
    };
    let ordinal = days - days_from_civil(y, 1, 1) + 1;
    let w = (ordinal - weekday(days) + 10) / 7;
    if w < 1 {
        weeks_in(y - 1)
    } else if w > weeks_in(y) {
        1
    } else {
        w
    }
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z|±HH:MM|±HHMM]` → epoch seconds.
fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| s.get(r).filter(|t| t.bytes().all(|c| c.is_ascii_digit())).and_then(|t| t.parse::<i64>().ok());
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (mut h, mut mi, mut sec, mut i) = (0, 0, 0, 10);
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 16 || b[13] != b':' {
            return None;
        }
        h = num(11..13)?;
        mi = num(14..16)?;
        i = 16;
        if b.get(16) == Some(&b':') {
            sec = num(17..19)?;
            i = 19;
            if b.get(19).is_some_and(|c| *c == b'.' || *c == b',') {
                i = 20;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
        }
    }
    let offset = match &s[i..] {
        "" | "Z" | "z" => 0,
        z if z.starts_with('+') || z.starts_with('-') => {
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let mins = digits[..2].parse::<i64>().ok()? * 60 + digits[2..].parse::<i64>().ok()?;
            if z.starts_with('-') { -mins } else { mins }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset * 60)
}

/// One compiled value of a field condition.
#[derive(Clone, Debug)]
pub enum ValueMatcher {
    /// A string pattern, compared against string values and the text of numbers and booleans.
    Str(StrMatch),
    /// A plain YAML number: equal JSON number, or a string whose text equals `text`.
    Number { value: f64, text: String },
    /// A plain YAML boolean: equal JSON boolean, or the string `true`/`false` (any case).
    Bool(bool),
    /// `null`: the field is absent or JSON null.
    Null,
    /// `re` modifier.
    Regex(regex::Regex),
    /// `cidr` modifier: an IP address string inside the network.
    Cidr(IpNet),
    /// `gt`/`gte`/`lt`/`lte`.
    Compare(NumOp, f64),
    /// `exists: true|false`.
    Exists(bool),
    /// `fieldref`: equal to the value of another field.
    FieldRef(rampart_core::FieldPath),
    /// `minute` … `year`: a part of the timestamp value, equal to (or compared with, when a
    /// `gt`-family modifier is given) the number.
    TimePart(TimePart, Option<NumOp>, i64),
}

/// Text of a non-string scalar for string comparisons; `None` for null/objects/arrays.
pub(crate) fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// An event string prepared once for many [`StrMatch`]es: its ASCII-ness is checked once and
/// a non-ASCII string is lowercased at most once, on first need.
pub(crate) struct Hay<'a> {
    text: &'a str,
    ascii: bool,
    lower: std::cell::OnceCell<String>,
}

impl<'a> Hay<'a> {
    pub(crate) fn new(text: &'a str) -> Hay<'a> {
        Hay { text, ascii: text.is_ascii(), lower: std::cell::OnceCell::new() }
    }

    /// The text is ASCII.
    pub(crate) fn is_ascii(&self) -> bool {
        self.ascii
    }

    /// The text as uncased matching reads it: itself when ASCII (then compared
    /// ASCII-case-insensitively), else lowercased.
    pub(crate) fn folded(&self) -> &str {
        if self.ascii {
            self.text
        } else {
            self.lower.get_or_init(|| self.text.to_lowercase())
        }
    }
}

impl StrMatch {
    /// Does `hay` match? Allocation-free when `hay` is ASCII or the match is cased.
    pub fn is_match(&self, hay: &str) -> bool {
        self.is_match_hay(&Hay::new(hay))
    }

    pub(crate) fn is_match_hay(&self, hay: &Hay<'_>) -> bool {
        if self.cased {
            self.match_bytes(hay.text.as_bytes(), false)
        } else if hay.ascii {
            self.match_bytes(hay.text.as_bytes(), true)
        } else {
            self.match_bytes(hay.lower.get_or_init(|| hay.text.to_lowercase()).as_bytes(), false)
        }
    }

    fn match_bytes(&self, hay: &[u8], ci: bool) -> bool {
        let n = self.needle.as_bytes();
        match &self.kind {
            StrKind::Any => true,
            StrKind::Equals => hay.len() == n.len() && eq(hay, n, ci),
            StrKind::StartsWith => hay.len() >= n.len() && eq(&hay[..n.len()], n, ci),
            StrKind::EndsWith => hay.len() >= n.len() && eq(&hay[hay.len() - n.len()..], n, ci),
            StrKind::Contains => find(hay, n, ci).is_some(),
            StrKind::Glob(toks) => glob(hay, toks, ci),
        }
    }
}

#[inline]
fn eq(a: &[u8], b: &[u8], ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// First position of `needle` in `hay` (needle already lowercased when `ci`). Case-sensitive
/// search is `memmem`; case-insensitive search jumps between the two cases of the needle's
/// first byte with `memchr2` and compares the rest in place.
fn find(hay: &[u8], needle: &[u8], ci: bool) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else { return Some(0) };
    if hay.len() < needle.len() {
        return None;
    }
    if !ci {
        return memchr::memmem::find(hay, needle);
    }
    let upper = first.to_ascii_uppercase();
    let last_start = hay.len() - needle.len();
    let mut from = 0;
    while from <= last_start {
        let window = &hay[from..=last_start];
        let p = if upper == first { memchr::memchr(first, window) } else { memchr::memchr2(first, upper, window) }?;
        let i = from + p;
        if hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// Length in bytes of the UTF-8 character starting at `b[0]`.
fn char_len(b: u8) -> usize {
    match b {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Wildcard matching with the classic single-backtrack-point algorithm for `*`.
fn glob(hay: &[u8], toks: &[GlobTok], ci: bool) -> bool {
    fn go(hay: &[u8], toks: &[GlobTok], ci: bool) -> bool {
        match toks.split_first() {
            None => hay.is_empty(),
            Some((GlobTok::Lit(l), rest)) => {
                let l = l.as_bytes();
                hay.len() >= l.len() && eq(&hay[..l.len()], l, ci) && go(&hay[l.len()..], rest, ci)
            }
            Some((GlobTok::One, rest)) => !hay.is_empty() && go(&hay[char_len(hay[0]).min(hay.len())..], rest, ci),
            Some((GlobTok::Star, rest)) => {
                if rest.is_empty() {
                    return true;
                }
                // Anchor on the next literal to skip hopeless positions quickly.
                let mut i = 0;
                while i <= hay.len() {
                    if let Some(GlobTok::Lit(l)) = rest.first() {
                        match find(&hay[i..], l.as_bytes(), ci) {
                            Some(p) => i += p,
                            None => return false,
                        }
                    }
                    if go(&hay[i..], rest, ci) {
                        return true;
                    }
                    if i == hay.len() {
                        break;
                    }
                    i += char_len(hay[i]);
                }
                false
            }
        }
    }
    go(hay, toks, ci)
}

impl ValueMatcher {
    /// Does the (possibly absent) field value satisfy this matcher? Arrays match when any
    /// element does. `lookup` resolves other fields, for `fieldref` only.
    pub fn matches(&self, value: Option<&Value>, lookup: &dyn Fn(&rampart_core::FieldPath) -> Option<Value>) -> bool {
        match self {
            ValueMatcher::Null => matches!(value, None | Some(Value::Null)),
            ValueMatcher::Exists(want) => matches!(value, Some(v) if !v.is_null()) == *want,
            ValueMatcher::FieldRef(other) => match (value, lookup(other)) {
                (Some(a), Some(b)) if !a.is_null() => values_equal(a, &b),
                _ => false,
            },
            _ => match value {
                None => false,
                Some(Value::Array(items)) => items.iter().any(|v| self.matches_one(v)),
                Some(v) => self.matches_one(v),
            },
        }
    }

    fn matches_one(&self, v: &Value) -> bool {
        match self {
            ValueMatcher::Str(m) => match v {
                Value::String(s) => m.is_match(s),
                other => scalar_text(other).is_some_and(|t| m.is_match(&t)),
            },
            ValueMatcher::Number { value, text } => match v {
                Value::Number(n) => n.as_f64() == Some(*value),
                Value::String(s) => s == text,
                _ => false,
            },
            ValueMatcher::Bool(b) => match v {
                Value::Bool(x) => x == b,
                Value::String(s) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
                _ => false,
            },
            ValueMatcher::Regex(re) => scalar_text(v).is_some_and(|t| re.is_match(&t)),
            ValueMatcher::Cidr(net) => match v {
                Value::String(s) => s.trim().parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip)),
                _ => false,
            },
            ValueMatcher::Compare(op, x) => as_f64(v).is_some_and(|y| match op {
                NumOp::Gt => y > *x,
                NumOp::Gte => y >= *x,
                NumOp::Lt => y < *x,
                NumOp::Lte => y <= *x,
            }),
            ValueMatcher::TimePart(part, op, x) => part.of(v).is_some_and(|y| match op {
                None => y == *x,
                Some(NumOp::Gt) => y > *x,
                Some(NumOp::Gte) => y >= *x,
                Some(NumOp::Lt) => y < *x,
                Some(NumOp::Lte) => y <= *x,
            }),
            ValueMatcher::Null | ValueMatcher::Exists(_) | ValueMatcher::FieldRef(_) => false,
        }
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (scalar_text(a), scalar_text(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Keyword search: any string (or scalar text) anywhere in the document matches.
pub(crate) fn keyword_in(v: &Value, m: &StrMatch) -> bool {
    match v {
        Value::Object(o) => o.values().any(|x| keyword_in(x, m)),
        Value::Array(a) => a.iter().any(|x| keyword_in(x, m)),
        Value::Null => false,
        other => scalar_text(other).is_some_and(|t| m.is_match(&t)),
    }
}

/// Sigma string value → tokens: `*`/`?` are wildcards, `\*`, `\?`, `\\` escape them,
/// any other backslash is literal.
pub(crate) fn tokenize(value: &str) -> Vec<GlobTok> {
    let mut toks: Vec<GlobTok> = Vec::new();
    let mut lit = String::new();
    let mut chars = value.chars().peekable();
    let flush = |lit: &mut String, toks: &mut Vec<GlobTok>| {
        if !lit.is_empty() {
            toks.push(GlobTok::Lit(std::mem::take(lit)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' => {
                flush(&mut lit, &mut toks);
                if toks.last() != Some(&GlobTok::Star) {
                    toks.push(GlobTok::Star);
                }
            }
            '?' => {
                flush(&mut lit, &mut toks);
                toks.push(GlobTok::One);
            }
            c => lit.push(c),
        }
    }
    flush(&mut lit, &mut toks);
    toks
}

/// Where the implicit wildcards of `contains`/`startswith`/`endswith` go.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Anchor {
    Exact,
    Contains,
    StartsWith,
    EndsWith,
}

/// Compiles tokens plus the modifier's implicit wildcards into the cheapest matcher.
pub(crate) fn compile_str(mut toks: Vec<GlobTok>, anchor: Anchor, cased: bool) -> StrMatch {
    if matches!(anchor, Anchor::Contains | Anchor::EndsWith) && toks.first() != Some(&GlobTok::Star) {
        toks.insert(0, GlobTok::Star);
    }
    if matches!(anchor, Anchor::Contains | Anchor::StartsWith) && toks.last() != Some(&GlobTok::Star) {
        toks.push(GlobTok::Star);
    }
    let low = |s: &str| if cased { s.to_string() } else { s.to_lowercase() };
    let kind_needle = match toks.as_slice() {
        [] => (StrKind::Equals, String::new()),
        [GlobTok::Star] => (StrKind::Any, String::new()),
        [GlobTok::Lit(l)] => (StrKind::Equals, low(l)),
        [GlobTok::Star, GlobTok::Lit(l), GlobTok::Star] => (StrKind::Contains, low(l)),
        [GlobTok::Lit(l), GlobTok::Star] => (StrKind::StartsWith, low(l)),
        [GlobTok::Star, GlobTok::Lit(l)] => (StrKind::EndsWith, low(l)),
        _ => {
            let toks = toks
                .into_iter()
                .map(|t| match t {
                    GlobTok::Lit(l) => GlobTok::Lit(low(&l)),
                    other => other,
                })
                .collect();
            (StrKind::Glob(toks), String::new())
        }
    };
    StrMatch { kind: kind_needle.0, needle: kind_needle.1, cased }
}

/// Compiles a `re` value for [`ValueMatcher::Regex`], which only asks whether the regex
/// matches somewhere in a text: `pattern` is compiled as written (its errors are the
/// user's), then, when its end can be cut without changing that answer, as the cut regex.
///
/// A match's end is cut in two ways, repeatedly: a last part that matches the empty string
/// anywhere (no look-around in it: `(?:\s?(?:-p|-s))?`, `.*`) is dropped, and a last
/// repetition `x{m,n}` becomes `x{m}` (any match of `A x{m,n}` begins with a match of
/// `A x{m}`, and that one is a match too); an alternation's branches are cut each on its
/// own. An assertion at the end (`$`, `\b`) stops the cutting. SigmaHQ's
/// `-k\s\w{1,64}(?:\s?(?:-p|-s))?` took ~2.7 µs per command line in the regex crate, its
/// cut `-k\s\w` ~30 ns: sixty-four Unicode word classes in a row made its lazy DFA large.
pub(crate) fn match_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    let re = regex::Regex::new(pattern)?;
    let cut = regex_syntax::ParserBuilder::new().build().parse(pattern).ok().and_then(|hir| cut_end(&hir));
    Ok(cut.and_then(|hir| regex::Regex::new(&hir.to_string()).ok()).unwrap_or(re))
}

/// `hir` with its end cut (see [`match_regex`]); `None` when nothing can be cut.
fn cut_end(hir: &regex_syntax::hir::Hir) -> Option<regex_syntax::hir::Hir> {
    use regex_syntax::hir::{Hir, HirKind, Repetition};
    // Matches the empty string wherever it is tried.
    let empty_anywhere = |h: &Hir| h.properties().minimum_len() == Some(0) && h.properties().look_set().is_empty();
    match hir.kind() {
        HirKind::Concat(parts) => {
            let mut parts = parts.clone();
            let mut cut = false;
            while parts.len() > 1 && parts.last().is_some_and(empty_anywhere) {
                parts.pop();
                cut = true;
            }
            if let Some(last) = parts.last_mut() {
                if let Some(shorter) = cut_end(last) {
                    *last = shorter;
                    cut = true;
                }
            }
            cut.then(|| Hir::concat(parts))
        }
        HirKind::Repetition(r) if r.min >= 1 && r.max != Some(r.min) => Some(Hir::repetition(Repetition { min: r.min, max: Some(r.min), greedy: r.greedy, sub: r.sub.clone() })),
        HirKind::Alternation(branches) => {
            let cut: Vec<Option<Hir>> = branches.iter().map(cut_end).collect();
            cut.iter().any(Option::is_some).then(|| Hir::alternation(branches.iter().zip(cut).map(|(b, c)| c.unwrap_or_else(|| b.clone())).collect()))
        }
        HirKind::Capture(c) => cut_end(&c.sub),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, a: Anchor) -> StrMatch {
        compile_str(tokenize(p), a, false)
    }

    #[test]
    fn a_cut_regex_matches_the_same_texts_as_written() {
        // (pattern, whether its end can be cut)
        let cases = [
            (r"-k\s\w{1,64}(?:\s?(?:-p|-s))?", true),
            (r"ab{2,5}", true),
            (r"ab{2,5}$", false),
            (r"ab{2,}\b", false),
            (r"(?i)a[bc]+", true),
            (r"a.*", true),
            (r"^a(?:b|c{1,3})", true),
            (r"a(?:b|c{1,3}$)", false),
            (r"a(?:b|c{1,3}d?)", true),
            (r"(a)(b+)(c)?", true),
            (r"a\b(?:k|-)?", true),
            (r"ab", false),
            (r"a?", false),
            (r"\\[a-zA-Z0-9]{1,32}\.[a-zA-Z0-9]{1,6}\.[ ']{1}", false),
        ];
        let alphabet: Vec<char> = "ab-kc sAB\\.'\n".chars().collect();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut texts = Vec::new();
        for _ in 0..4000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            texts.push((0..len).map(|i| alphabet[((seed >> (i * 4 + 8)) % alphabet.len() as u64) as usize]).collect::<String>());
        }
        texts.extend(["C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule", "svchost.exe -k ", "abbbbbb", "abb", "a-", "ab\nb"].map(String::from));
        for (pattern, cuttable) in cases {
            let written = regex::Regex::new(pattern).unwrap();
            let cut = match_regex(pattern).unwrap();
            assert_eq!(cut.as_str() != pattern, cuttable, "{pattern} → {}", cut.as_str());
            for t in &texts {
                assert_eq!(cut.is_match(t), written.is_match(t), "{pattern} (cut to {}) on {t:?}", cut.as_str());
            }
        }
        assert!(match_regex("a(").is_err(), "the written pattern's errors are kept");
    }

    #[test]
    fn time_parts_of_strings_and_epochs() {
        let t = serde_json::json!("2026-12-31T23:59:58Z");
        let parts: Vec<i64> = [TimePart::Minute, TimePart::Hour, TimePart::Day, TimePart::Week, TimePart::Month, TimePart::Year].iter().map(|p| p.of(&t).unwrap()).collect();
        assert_eq!(parts, vec![59, 23, 31, 53, 12, 2026]);
        assert_eq!(TimePart::Hour.of(&serde_json::json!("2026-01-01T01:30:00+02:00")), Some(23), "offsets convert to UTC");
        assert_eq!(TimePart::Year.of(&serde_json::json!("2026-01-01T01:30:00+02:00")), Some(2025));
        assert_eq!(TimePart::Hour.of(&serde_json::json!("2025-11-27 07:40:10.132")), Some(7), "EVTX UtcTime form");
        assert_eq!(TimePart::Day.of(&serde_json::json!(0)), Some(1));
        assert_eq!(TimePart::Hour.of(&serde_json::json!(1_700_000_000_000u64)), Some(22), "epoch milliseconds");
        assert_eq!(TimePart::Week.of(&serde_json::json!("2027-01-01")), Some(53), "ISO week of the previous year");
        assert_eq!(TimePart::Week.of(&serde_json::json!("2024-12-30")), Some(1), "ISO week 1 of the next year");
        assert_eq!(TimePart::Hour.of(&serde_json::json!("yesterday")), None);
        assert_eq!(TimePart::Hour.of(&serde_json::json!("2026-13-01")), None);
        for z in [-800_000i64, -1, 0, 59, 60_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn plain_patterns_compile_to_simple_kinds() {
        assert_eq!(m("abc", Anchor::Exact).kind, StrKind::Equals);
        assert_eq!(m("*abc*", Anchor::Exact).kind, StrKind::Contains);
        assert_eq!(m("abc", Anchor::Contains).kind, StrKind::Contains);
        assert_eq!(m("abc*", Anchor::Exact).kind, StrKind::StartsWith);
        assert_eq!(m("*abc", Anchor::Exact).kind, StrKind::EndsWith);
        assert_eq!(m("ABC", Anchor::Exact).needle, "abc");
        assert!(matches!(m("a*b", Anchor::Exact).kind, StrKind::Glob(_)));
        assert_eq!(m("*", Anchor::Exact).kind, StrKind::Any);
    }

    #[test]
    fn case_insensitive_ascii_and_unicode() {
        let x = m("PowerShell", Anchor::Contains);
        assert!(x.is_match("c:\\windows\\POWERSHELL.exe"));
        assert!(!x.is_match("pwsh"));
        let u = m("ÄRGER", Anchor::Exact);
        assert!(u.is_match("ärger"));
        assert!(!u.is_match("arger"));
        let cased = compile_str(tokenize("Abc"), Anchor::Exact, true);
        assert!(cased.is_match("Abc"));
        assert!(!cased.is_match("abc"));
    }

    #[test]
    fn glob_semantics() {
        let g = m("a*b?d", Anchor::Exact);
        assert!(g.is_match("axxbcd"));
        assert!(g.is_match("abcd"));
        assert!(!g.is_match("abd"));
        assert!(!g.is_match("abcde"));
        let q = m("h?llo", Anchor::Exact);
        assert!(q.is_match("héllo"), "? consumes one character, not one byte");
        let multi = m("*a*b*c*", Anchor::Exact);
        assert!(multi.is_match("xxaxxbxxcxx"));
        assert!(!multi.is_match("xxcxxbxxaxx"));
    }

    #[test]
    fn escapes_are_literal() {
        let e = m("a\\*b", Anchor::Exact);
        assert_eq!(e.kind, StrKind::Equals);
        assert!(e.is_match("a*b"));
        assert!(!e.is_match("axxb"));
        let q = m("what\\?", Anchor::Exact);
        assert!(q.is_match("what?"));
        assert!(!q.is_match("whatx"));
        let bs = m("c:\\\\windows", Anchor::Exact);
        assert!(bs.is_match("c:\\windows"));
        let plain_bs = m("c:\\windows", Anchor::Exact);
        assert!(plain_bs.is_match("c:\\windows"), "a backslash before an ordinary char stays literal");
    }
}
