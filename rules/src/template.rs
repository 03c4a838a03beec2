//! [`Template`]: alert summaries with `{{ field.path }}` placeholders.

/// A parsed summary template: literal text interleaved with placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

/// A template syntax error: what, and the 0-based character offset in the template text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Parses `text`; placeholders are `{{ path }}` (spaces optional). An unclosed `{{`
    /// or an empty placeholder is an error naming its character offset.
    pub fn parse(text: &str) -> Result<Template, String> {
        Template::parse_at(text).map_err(|e| format!("{} (at character {})", e.message, e.offset + 1))
    }

    pub(crate) fn parse_at(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut consumed = 0usize; // characters of `text` before `rest`
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let open_chars = consumed + rest[..open].chars().count();
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError { offset: open_chars, message: "unclosed `{{` in template".into() });
            };
            let name = after[..close].trim();
            if name.is_empty() {
                return Err(TemplateError { offset: open_chars, message: "empty placeholder `{{}}` in template".into() });
            }
            if name.contains("{{") || name.chars().any(char::is_whitespace) {
                return Err(TemplateError {
                    offset: open_chars,
                    message: format!("invalid placeholder `{{{{{}}}}}`: a placeholder is one field path", &after[..close]),
                });
            }
            parts.push(Part::Field(name.to_string()));
            let used = open + 2 + close + 2;
            consumed += rest[..used].chars().count();
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// A template that renders `text` verbatim (no placeholder parsing).
    pub fn literal(text: &str) -> Template {
        Template { parts: if text.is_empty() { Vec::new() } else { vec![Part::Text(text.to_string())] } }
    }

    /// Renders with `lookup`; a placeholder the lookup cannot resolve renders as `-`
    /// (an alert with a hole is more useful than no alert).
    pub fn render(&self, lookup: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => out.push_str(lookup(f).as_deref().unwrap_or("-")),
            }
        }
        out
    }

    /// The placeholder paths, in order of appearance (repeats included).
    pub fn fields(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Field(f) => Some(f.as_str()),
                Part::Text(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(k: &str) -> Option<String> {
        match k {
            "details.sourceipaddress" => Some("10.0.0.1".into()),
            "count" => Some("7".into()),
            _ => None,
        }
    }

    #[test]
    fn renders_placeholders_with_and_without_spaces() {
        let t = Template::parse("SSH brute force from {{details.sourceipaddress}}: {{ count }} failures").unwrap();
        assert_eq!(t.fields(), vec!["details.sourceipaddress", "count"]);
        assert_eq!(t.render(&lookup), "SSH brute force from 10.0.0.1: 7 failures");
    }

    #[test]
    fn missing_value_renders_dash() {
        let t = Template::parse("user {{ details.username }}!").unwrap();
        assert_eq!(t.render(&lookup), "user -!");
    }

    #[test]
    fn unclosed_placeholder_names_offset() {
        let e = Template::parse_at("abc {{ x").unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(e.message.contains("unclosed"));
        assert!(Template::parse("{{ }}").is_err());
        assert!(Template::parse("{{ a b }}").is_err());
    }

    #[test]
    fn literal_does_not_interpret_braces() {
        let t = Template::literal("a {{ b }}");
        assert!(t.fields().is_empty());
        assert_eq!(t.render(&lookup), "a {{ b }}");
        assert_eq!(Template::parse("plain").unwrap().render(&lookup), "plain");
    }
}
