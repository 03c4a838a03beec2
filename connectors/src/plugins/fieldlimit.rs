//! `field_limit`: cuts huge strings down so that one runaway field (a base64 blob, a whole
//! HTTP body) cannot bloat the store or slow every later stage. A string longer than
//! `max_bytes` is cut at a character boundary; the event gets the tag `truncated` and
//! `details.truncated_fields` lists the paths cut (`details.body`, `summary`).

use super::ipfixup::details_mut;
use super::{Plugin, PluginEvent, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `type: field_limit` options.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldLimitConfig {
    /// Longest string kept whole, in bytes. Default 32768 (32 KiB).
    #[serde(default = "default_max", deserialize_with = "crate::registry::lenient")]
    pub max_bytes: usize,
}

fn default_max() -> usize {
    32 * 1024
}

impl Default for FieldLimitConfig {
    fn default() -> Self {
        FieldLimitConfig { max_bytes: default_max() }
    }
}

impl FieldLimitConfig {
    /// Every problem.
    pub fn validate(&self) -> Vec<String> {
        if self.max_bytes < 16 {
            vec![format!("max_bytes: {} is too small to keep anything useful; use at least 16", self.max_bytes)]
        } else {
            Vec::new()
        }
    }
}

/// The plugin.
#[derive(Debug)]
pub struct FieldLimit {
    max: usize,
    terms: Vec<String>,
}

impl FieldLimit {
    /// The plugin with its options.
    pub fn new(cfg: &FieldLimitConfig) -> FieldLimit {
        FieldLimit { max: cfg.max_bytes, terms: vec!["*".into()] }
    }

    fn cut(&self, v: &mut Value, path: &mut String, cut: &mut Vec<String>) {
        match v {
            Value::String(s) if s.len() > self.max => {
                let mut end = self.max;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                cut.push(path.clone());
            }
            Value::Object(m) => self.cut_map(m, path, cut),
            Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.cut(x, path, cut);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn cut_map(&self, m: &mut Map<String, Value>, path: &mut String, cut: &mut Vec<String>) {
        for (k, v) in m.iter_mut() {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            self.cut(v, path, cut);
            path.truncate(len);
        }
    }
}

impl Plugin for FieldLimit {
    fn name(&self) -> &str {
        "field_limit"
    }
    fn terms(&self) -> Vec<String> {
        self.terms.clone()
    }
    fn priority(&self) -> i32 {
        0
    }
    fn process(&self, e: &mut PluginEvent<'_>) -> Verdict {
        let mut cut = Vec::new();
        let mut path = String::new();
        self.cut_map(e.doc, &mut path, &mut cut);
        if cut.is_empty() {
            return Verdict::Keep;
        }
        match e.doc.get_mut("tags") {
            Some(Value::Array(tags)) => {
                if !tags.iter().any(|t| t == "truncated") {
                    tags.push(Value::String("truncated".into()));
                }
            }
            _ => {
                e.doc.insert("tags".into(), Value::Array(vec![Value::String("truncated".into())]));
            }
        }
        if let Some(details) = details_mut(e.doc) {
            details.insert("truncated_fields".into(), Value::Array(cut.into_iter().map(Value::String).collect()));
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Route;
    use serde_json::json;

    fn run(max: usize, v: Value) -> Map<String, Value> {
        let Value::Object(mut doc) = v else { unreachable!() };
        FieldLimit::new(&FieldLimitConfig { max_bytes: max }).process(&mut PluginEvent { doc: &mut doc, route: &mut Route::default() });
        doc
    }

    #[test]
    fn long_strings_are_cut_at_a_char_boundary_and_marked() {
        let body = format!("GET /{} HTTP/1.1", "A".repeat(100));
        let d = run(32, json!({"summary": "short", "tags": ["nginx"], "details": {"request": body, "list": ["ééééééééééééééééééééé"]}}));
        assert_eq!(d["details"]["request"].as_str().unwrap().len(), 32);
        let cut = d["details"]["list"][0].as_str().unwrap();
        assert!(cut.len() <= 32 && cut.chars().all(|c| c == 'é'), "{cut}");
        assert_eq!(d["details"]["truncated_fields"], json!(["details.request", "details.list[0]"]));
        assert_eq!(d["tags"], json!(["nginx", "truncated"]));
    }

    #[test]
    fn small_events_are_untouched() {
        let v = json!({"summary": "fine", "details": {"a": "b", "n": 5}});
        assert_eq!(Value::Object(run(32, v.clone())), v);
    }
}
