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

/// First position of `needle` in `hay` (needle already lowercased when `ci`).
fn find(hay: &[u8], needle: &[u8], ci: bool) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    (0..=last_start).find(|&i| {
        let c = if ci { hay[i].to_ascii_lowercase() } else { hay[i] };
        c == first && eq(&hay[i..i + needle.len()], needle, ci)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, a: Anchor) -> StrMatch {
        compile_str(tokenize(p), a, false)
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
