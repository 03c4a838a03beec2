//! Diagnostics: every problem found while loading rules, with enough position
//! information to put a caret under it.
//!
//! Codes are stable (tests and users grep for them); the message may be reworded.

use std::fmt;

/// How bad a [`Diagnostic`] is: errors keep the rule (and the load) from succeeding.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The rule is refused and `load_*` returns `Err`.
    Error,
    /// Reported in [`crate::RuleSet::warnings`]; the rule still loads.
    Warning,
}

/// One problem in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code such as `R104` (see the table in `lib.rs`).
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to do about it, when we know.
    pub hint: Option<String>,
    /// The file as given to the loader.
    pub file: String,
    /// 1-based line (0 when the problem has no position, e.g. an unreadable file).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The rule's id when it was known at the time.
    pub rule_id: Option<String>,
    /// Dotted path of the YAML key, e.g. `detection.selection.CommandLine|contains`.
    pub key_path: String,
    /// The offending source line, for the caret display.
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// Width of the caret run: the token starting at `column` (a key, a modifier, a word).
    fn caret_width(&self) -> usize {
        let Some(line) = &self.source_line else { return 1 };
        let rest: Vec<char> = line.chars().skip(self.column.saturating_sub(1)).collect();
        let mut n = 0;
        for (i, c) in rest.iter().enumerate() {
            let stop = c.is_whitespace() || matches!(c, ':' | ',' | ']' | '}') || (i > 0 && matches!(c, '|' | ')' | '(' | '\'' | '"'));
            if stop && i > 0 {
                break;
            }
            n = i + 1;
            if stop {
                break;
            }
        }
        n.max(1)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{level}[{}]: {}", self.code, self.message)?;
        let mut ctx = Vec::new();
        if let Some(id) = &self.rule_id {
            ctx.push(format!("rule {id}"));
        }
        if !self.key_path.is_empty() {
            ctx.push(self.key_path.clone());
        }
        let ctx = if ctx.is_empty() { String::new() } else { format!(" ({})", ctx.join(", ")) };
        if self.line > 0 {
            writeln!(f, "  --> {}:{}:{}{ctx}", self.file, self.line, self.column)?;
        } else {
            writeln!(f, "  --> {}{ctx}", self.file)?;
        }
        if let (Some(src), true) = (&self.source_line, self.line > 0) {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {src}")?;
            let lead: String = src
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {lead}{}", "^".repeat(self.caret_width()))?;
        }
        if let Some(h) = &self.hint {
            writeln!(f, "   = hint: {h}")?;
        }
        Ok(())
    }
}

/// Every diagnostic from one load, errors and warnings; the `Err` side of `load_*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let errors = self.errors().count();
        let warnings = self.0.len() - errors;
        write!(f, "\n{errors} error(s), {warnings} warning(s)")
    }
}

impl std::error::Error for Diagnostics {}
