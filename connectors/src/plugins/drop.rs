//! `drop`: drops events that are noise before they are stored or correlated, counted and
//! acked as handled. An event is dropped when it matches **any** of:
//!
//! - `match`: a mapping of field path → value; every field must equal its value
//!   (strings compare case-insensitively; numbers and booleans by value);
//! - `rules`: Sigma rule files; any of their detection rules matching drops the event
//!   (the rule's title is the reason).
//!
//! With only `match`, the plugin registers on the match's text values (or, for a number or
//! boolean, the field's name): an event without them cannot match, so the chain skips it
//! cheaply. With `rules` it runs on every event.

use super::{Plugin, PluginEvent, Verdict};
use crate::error::ConnectorError;
use rampart_core::FieldPath;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `type: drop` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropConfig {
    /// Field path → value; all must be equal for the event to be dropped (`details.` may be
    /// left out, as in rules). Default: none.
    #[serde(default, rename = "match")]
    pub match_fields: BTreeMap<String, Value>,
    /// Sigma rule files whose detections drop what they match. Default: none.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    /// The reason logged and counted when `match` drops an event. Default `matched drop fields`.
    #[serde(default)]
    pub reason: Option<String>,
}

impl DropConfig {
    /// Every problem.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.match_fields.is_empty() && self.rules.is_empty() {
            p.push("give `match` fields, `rules` files, or both: this drop would match nothing".into());
        }
        for (k, v) in &self.match_fields {
            if v.is_object() || v.is_array() || v.is_null() {
                p.push(format!("match.{k}: must be a string, number or boolean"));
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if !r.exists() {
                p.push(format!("rules[{i}]: {} does not exist", r.display()));
            }
        }
        p
    }
}

/// The plugin.
#[derive(Debug)]
pub struct DropFilter {
    fields: Vec<(FieldPath, Value)>,
    rules: Vec<(String, rampart_rules::Detection)>,
    reason: String,
    terms: Vec<String>,
}

impl DropFilter {
    /// Builds the plugin, loading and compiling its rule files (their diagnostics stop the load).
    pub fn new(cfg: &DropConfig) -> Result<DropFilter, ConnectorError> {
        let mut rules = Vec::new();
        if !cfg.rules.is_empty() {
            let set = rampart_rules::load_paths(&cfg.rules).map_err(|d| ConnectorError::Plugin { plugin: "drop".into(), message: format!("its rules do not load:\n{d}") })?;
            for r in set.rules {
                if let rampart_rules::RuleKind::Detection(det) = r.kind {
                    rules.push((r.title, det));
                }
            }
        }
        let fields: Vec<(FieldPath, Value)> = cfg.match_fields.iter().map(|(k, v)| (FieldPath::new(k), v.clone())).collect();
        // Any event that matches holds every field, so one term per field is enough: the
        // wanted text when it can only match text, else the field's own name.
        let term = |(path, want): (&String, &Value)| match want.as_str() {
            Some(s) if s.trim().parse::<f64>().is_err() && !["true", "false"].contains(&s.trim()) => s.to_string(),
            _ => path.rsplit('.').next().unwrap_or(path).to_string(),
        };
        let terms = if rules.is_empty() { cfg.match_fields.iter().map(term).collect() } else { vec!["*".to_string()] };
        Ok(DropFilter { fields, rules, reason: cfg.reason.clone().unwrap_or_else(|| "matched drop fields".into()), terms })
    }
}

fn equal(seen: &Value, want: &Value) -> bool {
    match (seen, want) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase(),
        (Value::String(a), Value::Number(n)) | (Value::Number(n), Value::String(a)) => a.trim().parse::<f64>().ok() == n.as_f64(),
        (Value::String(a), Value::Bool(b)) | (Value::Bool(b), Value::String(a)) => a.trim().parse::<bool>().ok() == Some(*b),
        (a, b) => a == b,
    }
}

impl Plugin for DropFilter {
    fn name(&self) -> &str {
        "drop"
    }
    fn terms(&self) -> Vec<String> {
        self.terms.clone()
    }
    fn priority(&self) -> i32 {
        5
    }
    fn process(&self, e: &mut PluginEvent<'_>) -> Verdict {
        if !self.fields.is_empty() && self.fields.iter().all(|(path, want)| path.lookup_event(e.doc).is_some_and(|v| equal(v, want))) {
            return Verdict::Drop(self.reason.clone());
        }
        for (title, det) in &self.rules {
            if det.matches_doc(e.doc) {
                return Verdict::Drop(format!("rule `{title}`"));
            }
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Route;
    use serde_json::json;

    fn verdict(p: &DropFilter, v: Value) -> Verdict {
        let Value::Object(mut doc) = v else { unreachable!() };
        p.process(&mut PluginEvent { doc: &mut doc, route: &mut Route::default() })
    }

    #[test]
    fn field_match_drops_only_when_every_field_matches() {
        let cfg = DropConfig { match_fields: BTreeMap::from([("program".to_string(), json!("CRON")), ("details.uid".to_string(), json!(0))]), rules: vec![], reason: Some("cron noise".into()) };
        assert!(cfg.validate().is_empty());
        let p = DropFilter::new(&cfg).unwrap();
        assert_eq!(p.terms(), ["uid", "CRON"], "text values, or the field's name for a number, by field name");
        assert_eq!(verdict(&p, json!({"summary": "pam_unix(cron:session): session opened for user root", "details": {"program": "cron", "uid": 0}})), Verdict::Drop("cron noise".into()));
        assert_eq!(verdict(&p, json!({"details": {"program": "cron", "uid": 1000}})), Verdict::Keep);
        assert_eq!(verdict(&p, json!({"details": {"program": "sshd", "uid": 0}})), Verdict::Keep);
    }

    #[test]
    fn sigma_rules_drop_what_they_match() {
        let dir = tempfile::tempdir().unwrap();
        let rule = dir.path().join("noise.yml");
        std::fs::write(&rule, "title: Load balancer health checks\nid: 5b0c7d8e-1111-4c1a-9d6e-000000000001\nlogsource: {category: webserver}\ndetection:\n  sel:\n    request|startswith: 'GET /healthz'\n    sourceipaddress|cidr: 10.0.0.0/8\n  condition: sel\n").unwrap();
        let p = DropFilter::new(&DropConfig { rules: vec![rule], ..Default::default() }).unwrap();
        assert_eq!(p.terms(), ["*"]);
        assert_eq!(verdict(&p, json!({"details": {"request": "GET /healthz HTTP/1.1", "sourceipaddress": "10.1.1.1"}})), Verdict::Drop("rule `Load balancer health checks`".into()));
        assert_eq!(verdict(&p, json!({"details": {"request": "GET /healthz HTTP/1.1", "sourceipaddress": "8.8.8.8"}})), Verdict::Keep);
    }

    #[test]
    fn broken_rules_stop_the_load_and_empty_config_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let rule = dir.path().join("bad.yml");
        std::fs::write(&rule, "title: t\ndetection:\n  sel:\n    a|cidr: nope\n  condition: sel\n").unwrap();
        let e = DropFilter::new(&DropConfig { rules: vec![rule], ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("bad.yml") && e.contains("nope"), "{e}");
        assert_eq!(DropConfig::default().validate().len(), 1);
    }
}
