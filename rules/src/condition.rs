//! The Sigma condition language: `sel1 and not (filter_* or 1 of x*)`, compiled to a tree
//! over selection indices.
//!
//! Precedence is not > and > or. `them` excludes selections whose name starts with `_`.
//! Sigma v1 aggregations (`| count() by x > 5`) are refused: correlation rules replace them.

/// A compiled condition: selections are indices into `Detection::selections`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// One named selection.
    Sel(usize),
    /// Negation.
    Not(Box<Cond>),
    /// All must hold.
    And(Vec<Cond>),
    /// Any must hold.
    Or(Vec<Cond>),
    /// At least `n` of the selections hold (`1 of x*`, `N of x*`, `all of x*`).
    AtLeast(usize, Vec<usize>),
}

impl Cond {
    /// Evaluates with a per-selection oracle.
    pub fn eval(&self, sel: &dyn Fn(usize) -> bool) -> bool {
        match self {
            Cond::Sel(i) => sel(*i),
            Cond::Not(c) => !c.eval(sel),
            Cond::And(cs) => cs.iter().all(|c| c.eval(sel)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(sel)),
            Cond::AtLeast(n, idx) => {
                let mut hits = 0;
                for i in idx {
                    if sel(*i) {
                        hits += 1;
                        if hits >= *n {
                            return true;
                        }
                    }
                }
                false
            }
        }
    }
}

/// A condition error: character offset in the condition text, code, message, hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CondError {
    pub offset: usize,
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    LParen,
    RParen,
    Pipe,
}

fn lex(text: &str) -> Vec<(usize, Tok)> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((i, Tok::LParen));
            i += 1;
        } else if c == ')' {
            out.push((i, Tok::RParen));
            i += 1;
        } else if c == '|' {
            out.push((i, Tok::Pipe));
            break;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '(' | ')' | '|') {
                i += 1;
            }
            out.push((start, Tok::Word(chars[start..i].iter().collect())));
        }
    }
    out
}

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    names: &'a [String],
    end: usize,
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

/// Parses `text` against the selection names (in definition order).
pub(crate) fn parse(text: &str, names: &[String]) -> Result<Cond, CondError> {
    let toks = lex(text);
    if let Some((off, _)) = toks.iter().find(|(_, t)| *t == Tok::Pipe) {
        return Err(CondError {
            offset: *off,
            code: "R113",
            message: "Sigma v1 aggregation (`| count() ...`) in a condition is not supported".into(),
            hint: Some("use a correlation rule (correlation: type: event_count)".into()),
        });
    }
    let mut p = Parser { toks, pos: 0, names, end: text.chars().count() };
    if p.toks.is_empty() {
        return Err(p.err(0, "empty condition"));
    }
    let c = p.or()?;
    if let Some((off, t)) = p.toks.get(p.pos) {
        let what = match t {
            Tok::RParen => "unbalanced `)`".to_string(),
            Tok::Word(w) => format!("unexpected `{w}`: expected `and`, `or` or the end of the condition"),
            _ => "unexpected token".to_string(),
        };
        return Err(p.err(*off, what));
    }
    Ok(c)
}

impl Parser<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> CondError {
        CondError { offset, code: "R110", message: message.into(), hint: None }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn here(&self) -> usize {
        self.toks.get(self.pos).map(|(o, _)| *o).unwrap_or(self.end)
    }

    fn or(&mut self) -> Result<Cond, CondError> {
        let mut items = vec![self.and()?];
        while self.peek().is_some_and(|t| is_kw(t, "or")) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Cond::Or(items) })
    }

    fn and(&mut self) -> Result<Cond, CondError> {
        let mut items = vec![self.not()?];
        while self.peek().is_some_and(|t| is_kw(t, "and")) {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Cond::And(items) })
    }

    fn not(&mut self) -> Result<Cond, CondError> {
        if self.peek().is_some_and(|t| is_kw(t, "not")) {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Cond, CondError> {
        let at = self.here();
        let Some((_, tok)) = self.toks.get(self.pos).cloned() else {
            return Err(self.err(at, "condition ends too early: expected a selection name, `not` or `(`"));
        };
        self.pos += 1;
        match tok {
            Tok::LParen => {
                let c = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    let here = self.here();
                    return Err(self.err(here, "missing `)`"));
                }
                self.pos += 1;
                Ok(c)
            }
            Tok::RParen => Err(self.err(at, "unexpected `)`")),
            Tok::Pipe => Err(self.err(at, "unexpected `|`")),
            Tok::Word(w) => {
                let quant = if w.eq_ignore_ascii_case("all") {
                    Some(None)
                } else if let Ok(n) = w.parse::<usize>() {
                    Some(Some(n))
                } else {
                    None
                };
                if let (Some(q), true) = (quant, self.peek().is_some_and(|t| is_kw(t, "of"))) {
                    self.pos += 1;
                    return self.quantified(at, q);
                }
                for kw in ["and", "or", "of", "them"] {
                    if w.eq_ignore_ascii_case(kw) {
                        return Err(self.err(at, format!("unexpected `{w}`: expected a selection name, `not` or `(`")));
                    }
                }
                match self.names.iter().position(|n| *n == w) {
                    Some(i) => Ok(Cond::Sel(i)),
                    None => Err(CondError {
                        offset: at,
                        code: "R111",
                        message: format!("condition refers to undefined selection `{w}`"),
                        hint: Some(format!("defined selections: {}", self.names.join(", "))),
                    }),
                }
            }
        }
    }

    fn quantified(&mut self, at: usize, n: Option<usize>) -> Result<Cond, CondError> {
        let pat_at = self.here();
        let Some((_, Tok::Word(pat))) = self.toks.get(self.pos).cloned() else {
            return Err(self.err(pat_at, "expected a selection pattern or `them` after `of`"));
        };
        self.pos += 1;
        let idx: Vec<usize> = if pat.eq_ignore_ascii_case("them") {
            (0..self.names.len()).filter(|&i| !self.names[i].starts_with('_')).collect()
        } else {
            (0..self.names.len()).filter(|&i| name_matches(&pat, &self.names[i])).collect()
        };
        if idx.is_empty() {
            return Err(CondError {
                offset: pat_at,
                code: "R112",
                message: format!("pattern `{pat}` matches no selection"),
                hint: Some(format!("defined selections: {}", self.names.join(", "))),
            });
        }
        let need = match n {
            None => idx.len(),
            Some(0) => return Err(self.err(at, "`0 of` is always true; write the condition without it")),
            Some(k) => k,
        };
        Ok(Cond::AtLeast(need, idx))
    }
}

/// Condition patterns use `*` (any run) and `?` (one char), case-sensitively.
fn name_matches(pat: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["sel", "filter_a", "filter_b", "_helper", "x1"].iter().map(|s| s.to_string()).collect()
    }

    fn eval(cond: &str, truth: &[bool]) -> bool {
        let c = parse(cond, &names()).unwrap();
        c.eval(&|i| truth[i])
    }

    #[test]
    fn precedence_not_and_or() {
        // sel or filter_a and not filter_b == sel or (filter_a and (not filter_b))
        assert!(eval("sel or filter_a and not filter_b", &[false, true, false, false, false]));
        assert!(!eval("sel or filter_a and not filter_b", &[false, true, true, false, false]));
        assert!(eval("sel or filter_a and not filter_b", &[true, true, true, false, false]));
        assert!(!eval("(sel or filter_a) and not filter_b", &[true, true, true, false, false]));
        assert!(eval("not not sel", &[true, false, false, false, false]));
    }

    #[test]
    fn quantifiers() {
        assert!(eval("1 of filter_*", &[false, false, true, false, false]));
        assert!(!eval("all of filter_*", &[false, false, true, false, false]));
        assert!(eval("all of filter_*", &[false, true, true, false, false]));
        assert!(eval("2 of them", &[true, false, false, false, true]));
        assert!(!eval("2 of them", &[true, false, false, true, false]), "them excludes _helper");
        assert!(!eval("all of them", &[true, true, true, false, true]) || names()[3].starts_with('_'));
        assert!(eval("all of them", &[true, true, true, false, true]));
        assert!(eval("1 of x?", &[false, false, false, false, true]));
        assert!(eval("sel and not 1 of filter_*", &[true, false, false, false, false]));
    }

    #[test]
    fn errors_carry_offsets() {
        let e = parse("sel and nope", &names()).unwrap_err();
        assert_eq!((e.code, e.offset), ("R111", 8));
        let e = parse("sel and 1 of zz*", &names()).unwrap_err();
        assert_eq!((e.code, e.offset), ("R112", 13));
        let e = parse("sel | count() by host > 5", &names()).unwrap_err();
        assert_eq!((e.code, e.offset), ("R113", 4));
        assert!(e.hint.unwrap().contains("correlation"));
        let e = parse("(sel and filter_a", &names()).unwrap_err();
        assert_eq!((e.code, e.offset), ("R110", 17));
        let e = parse("sel filter_a", &names()).unwrap_err();
        assert_eq!((e.code, e.offset), ("R110", 4));
        let e = parse("sel and", &names()).unwrap_err();
        assert_eq!(e.code, "R110");
        assert!(parse("", &names()).is_err());
    }
}
