//! Span-preserving YAML reading: documents, nodes with positions, and the
//! diagnostic sink that turns a node and a key path into a [`Diagnostic`].
//!
//! marked-yaml 0.8 keeps a line/column on every node, and (with `prevent_coercion`)
//! remembers whether a scalar was plain, which Sigma needs: `4444` is a number,
//! `'4444'` a string, `null` a null, `''` the empty string. It reads only the first
//! document of a stream, though, so [`split_documents`] cuts the text at `---`
//! lines and each document is parsed with its preceding lines blanked out: line
//! numbers then come out right without any offset arithmetic.

use crate::error::{Diagnostic, Severity};
use marked_yaml::{LoaderOptions, Node};

/// One YAML document of a file.
pub(crate) struct Document {
    /// 1-based line of the document's first content line.
    pub line: usize,
    /// The file text with every other document's lines blanked out.
    pub text: String,
}

/// Splits a multi-document stream on lines that are exactly `---` or start with `--- `.
/// Documents holding only blank lines and comments are dropped.
pub(crate) fn split_documents(text: &str) -> Vec<Document> {
    let lines: Vec<&str> = text.lines().collect();
    let mut docs = Vec::new();
    let mut start = 0usize;
    let flush = |from: usize, to: usize, docs: &mut Vec<Document>| {
        let has_content = lines[from..to].iter().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && t != "..."
        });
        if !has_content {
            return;
        }
        let first = (from..to)
            .find(|&i| {
                let t = lines[i].trim();
                !t.is_empty() && !t.starts_with('#')
            })
            .unwrap_or(from);
        let mut buf = String::with_capacity(text.len());
        for _ in 0..from {
            buf.push('\n');
        }
        for l in &lines[from..to] {
            buf.push_str(l);
            buf.push('\n');
        }
        docs.push(Document { line: first + 1, text: buf });
    };
    for (i, l) in lines.iter().enumerate() {
        let l = l.trim_end();
        if l == "---" || l.starts_with("--- ") {
            flush(start, i, &mut docs);
            start = i + 1;
        }
    }
    flush(start, lines.len(), &mut docs);
    docs
}

/// Parses one document into a marked node tree.
pub(crate) fn parse_document(doc: &Document) -> Result<Node, (usize, usize, String)> {
    let opts = LoaderOptions::default().prevent_coercion(true).error_on_duplicate_keys(true);
    marked_yaml::parse_yaml_with_options(0, &doc.text, opts).map_err(|e| {
        use marked_yaml::LoadError as E;
        let (m, msg) = match &e {
            E::TopLevelMustBeMapping(m) => (*m, "a rule document must be a YAML mapping".to_string()),
            E::TopLevelMustBeSequence(m) => (*m, "unexpected sequence".to_string()),
            E::UnexpectedAnchor(m) => (*m, "YAML anchors and aliases are not supported in rules".to_string()),
            E::MappingKeyMustBeScalar(m) => (*m, "mapping keys must be plain scalars".to_string()),
            E::UnexpectedTag(m) => (*m, "YAML tags (`!foo`) are not supported in rules".to_string()),
            E::ScanError(m, se) => (*m, format!("YAML syntax error: {}", se.info())),
            E::DuplicateKey(d) => {
                let m = d.key.span().start().copied().unwrap_or_else(|| marked_yaml::Marker::new(0, 0, 0, 0));
                (m, format!("duplicate key `{}`", d.key.as_str()))
            }
        };
        (m.line(), m.column(), msg)
    })
}

/// Line and column (1-based) where a node starts. yaml-rust2 marks a block collection
/// where its first token was recognised (after the first key), so collections are
/// located by their first entry instead.
pub(crate) fn pos(node: &Node) -> (usize, usize) {
    match node {
        Node::Mapping(m) => {
            if let Some((k, _)) = m.iter().next() {
                return spos(k);
            }
        }
        Node::Sequence(s) => {
            if let Some(first) = s.iter().next() {
                return pos(first);
            }
        }
        Node::Scalar(_) => {}
    }
    node.span().start().map(|m| (m.line(), m.column())).unwrap_or((0, 0))
}

/// Position of `key` itself in a mapping (falls back to the mapping's position).
pub(crate) fn key_pos(map: &marked_yaml::types::MarkedMappingNode, key: &str) -> Option<(usize, usize)> {
    map.iter().find(|(k, _)| k.as_str() == key).map(|(k, _)| spos(k))
}

/// Line and column of a scalar (keys are scalars too).
pub(crate) fn spos(s: &marked_yaml::types::MarkedScalarNode) -> (usize, usize) {
    s.span().start().map(|m| (m.line(), m.column())).unwrap_or((0, 0))
}

/// Collects diagnostics for one file, filling in file name, source line and rule id.
pub(crate) struct Sink<'a> {
    pub file: &'a str,
    lines: Vec<&'a str>,
    pub rule_id: Option<String>,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Sink<'a> {
        Sink { file, lines: text.lines().collect(), rule_id: None, diags: Vec::new() }
    }

    /// The source text of a 1-based line.
    pub fn line_text(&self, line: usize) -> Option<&'a str> {
        line.checked_sub(1).and_then(|i| self.lines.get(i)).copied()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        at: (usize, usize),
        key_path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (line, column) = at;
        self.diags.push(Diagnostic {
            severity,
            code,
            message: message.into(),
            hint,
            file: self.file.to_string(),
            line,
            column,
            rule_id: self.rule_id.clone(),
            key_path: key_path.to_string(),
            source_line: self.line_text(line).map(str::to_string),
        });
    }

    pub fn error(&mut self, code: &'static str, at: (usize, usize), key_path: &str, message: impl Into<String>) {
        self.push(Severity::Error, code, at, key_path, message, None);
    }

    pub fn error_hint(
        &mut self,
        code: &'static str,
        at: (usize, usize),
        key_path: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Error, code, at, key_path, message, Some(hint.into()));
    }

    /// Position of a column offset inside a scalar: skips an opening quote so the caret
    /// lands on the character meant, for single-line scalars.
    pub fn inside(&self, at: (usize, usize), offset_chars: usize) -> (usize, usize) {
        let quoted = self
            .line_text(at.0)
            .and_then(|l| l.chars().nth(at.1.saturating_sub(1)))
            .is_some_and(|c| c == '\'' || c == '"');
        (at.0, at.1 + offset_chars + usize::from(quoted))
    }
}

/// Converts a node to JSON: plain scalars are typed (null, bool, integer, float),
/// quoted scalars stay strings.
pub(crate) fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Scalar(s) => scalar_json(s),
        Node::Sequence(seq) => Value::Array(seq.iter().map(to_json).collect()),
        Node::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map.iter() {
                out.insert(k.as_str().to_string(), to_json(v));
            }
            Value::Object(out)
        }
    }
}

/// Typed reading of one scalar (see [`to_json`]).
pub(crate) fn scalar_json(s: &marked_yaml::types::MarkedScalarNode) -> serde_json::Value {
    use serde_json::Value;
    let text = s.as_str();
    if !s.may_coerce() {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    if looks_like_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(text.to_string())
}

fn looks_like_float(t: &str) -> bool {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    !t.is_empty() && t.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '.') && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

/// A short name for a node's kind, for "expected X, found Y" messages.
pub(crate) fn kind_name(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) => "a scalar",
        Node::Sequence(_) => "a list",
        Node::Mapping(_) => "a mapping",
    }
}
