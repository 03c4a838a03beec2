//! `enrich`: adds what a lookup table knows about a field's value, or whether an address is in
//! a CIDR list. Reads the lookups' current contents per event, so a reloaded file is used at
//! once.
//!
//! - with `table`: the row whose key equals the value at `key` is copied to `target`
//!   (default `details.<table>`);
//! - with `list`: `target` (default `details.<field>_in_<list>`) becomes `true` or `false`,
//!   and `tag`, when given, is added to `tags` on a hit.
//!
//! The plugin registers on the last segment of `key` (`details.username` → `username`), so
//! it runs only on events that carry the field.

use super::lookup::Lookups;
use super::{Plugin, PluginEvent, Verdict};
use crate::error::ConnectorError;
use rampart_core::FieldPath;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// `type: enrich` options.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// A table name from `lookups.tables` (give this or `list`).
    #[serde(default)]
    pub table: Option<String>,
    /// A list name from `lookups.lists` (give this or `table`).
    #[serde(default)]
    pub list: Option<String>,
    /// The field whose value is looked up, e.g. `details.username`. Required.
    pub key: String,
    /// Where the result goes. Default `details.<table>` or `details.<field>_in_<list>`.
    #[serde(default)]
    pub target: Option<String>,
    /// A tag added to `tags` when the address is in the list (lists only). Default none.
    #[serde(default)]
    pub tag: Option<String>,
}

impl EnrichConfig {
    /// Every problem (lookup names are checked when the plugin is built, against the loaded
    /// lookups).
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        match (&self.table, &self.list) {
            (Some(_), Some(_)) => p.push("give `table` or `list`, not both".to_string()),
            (None, None) => p.push("give a `table` or a `list` to look values up in".to_string()),
            _ => {}
        }
        if self.key.trim().is_empty() {
            p.push("key: must name a field, e.g. details.username".to_string());
        }
        if self.tag.is_some() && self.list.is_none() {
            p.push("tag: only applies with `list`".to_string());
        }
        p
    }
}

#[derive(Debug)]
enum Source {
    Table(String),
    List(String),
}

/// The plugin.
#[derive(Debug)]
pub struct Enrich {
    lookups: Arc<Lookups>,
    source: Source,
    key: FieldPath,
    target: Vec<String>,
    tag: Option<String>,
    terms: Vec<String>,
}

impl Enrich {
    /// Builds the plugin; an unknown table or list name is an error naming the known ones.
    pub fn new(cfg: &EnrichConfig, lookups: Arc<Lookups>) -> Result<Enrich, ConnectorError> {
        let err = |message: String| ConnectorError::Plugin { plugin: "enrich".into(), message };
        let leaf = cfg.key.rsplit('.').next().unwrap_or(&cfg.key).to_string();
        let (source, default_target) = match (&cfg.table, &cfg.list) {
            (Some(t), None) if lookups.has_table(t) => (Source::Table(t.clone()), format!("details.{t}")),
            (None, Some(l)) if lookups.has_list(l) => (Source::List(l.clone()), format!("details.{leaf}_in_{l}")),
            (Some(n), None) | (None, Some(n)) => return Err(err(format!("no lookup named `{n}` of that kind (known: {})", lookups.names().join(", ")))),
            _ => return Err(err("give `table` or `list`".into())),
        };
        let target = cfg.target.clone().unwrap_or(default_target).split('.').map(str::to_string).collect();
        Ok(Enrich { lookups, source, key: FieldPath::new(&cfg.key), target, tag: cfg.tag.clone(), terms: vec![leaf] })
    }
}

/// Sets `path` (dotted, intermediate objects created) in `doc`.
pub(crate) fn set_path(doc: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut m = doc;
    for p in parents {
        let slot = m.entry(p.clone()).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Some(next) = slot.as_object_mut() else { return };
        m = next;
    }
    m.insert(last.clone(), value);
}

impl Plugin for Enrich {
    fn name(&self) -> &str {
        "enrich"
    }
    fn terms(&self) -> Vec<String> {
        self.terms.clone()
    }
    fn priority(&self) -> i32 {
        30
    }
    fn process(&self, e: &mut PluginEvent<'_>) -> Verdict {
        let Some(value) = self.key.lookup_event(e.doc) else { return Verdict::Keep };
        let key = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Verdict::Keep,
        };
        match &self.source {
            Source::Table(name) => {
                let Some(table) = self.lookups.table(name) else { return Verdict::Keep };
                if let Some(row) = table.get(&key) {
                    set_path(e.doc, &self.target, Value::Object(row.clone()));
                }
            }
            Source::List(name) => {
                let Some(list) = self.lookups.list(name) else { return Verdict::Keep };
                let hit = list.contains_str(&key);
                set_path(e.doc, &self.target, Value::Bool(hit));
                if let (true, Some(tag)) = (hit, &self.tag) {
                    match e.doc.get_mut("tags") {
                        Some(Value::Array(tags)) => tags.push(Value::String(tag.clone())),
                        _ => {
                            e.doc.insert("tags".into(), Value::Array(vec![Value::String(tag.clone())]));
                        }
                    }
                }
            }
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::lookup::{ListConfig, LookupsConfig, TableConfig};
    use crate::plugins::Route;
    use serde_json::json;

    fn lookups(dir: &std::path::Path) -> (Arc<Lookups>, std::path::PathBuf) {
        let users = dir.join("users.csv");
        std::fs::write(&users, "username,team,manager\nalice,payments,carol\n").unwrap();
        let nets = dir.join("nets.txt");
        std::fs::write(&nets, "10.0.0.0/8\n").unwrap();
        let cfg = LookupsConfig { tables: vec![TableConfig { name: "users".into(), path: users.clone(), key: None }], lists: vec![ListConfig { name: "internal".into(), path: nets }], ..Default::default() };
        (Arc::new(Lookups::load(&cfg, None).unwrap()), users)
    }

    fn run(p: &Enrich, v: Value) -> Map<String, Value> {
        let Value::Object(mut doc) = v else { unreachable!() };
        p.process(&mut PluginEvent { doc: &mut doc, route: &mut Route::default() });
        doc
    }

    #[test]
    fn table_rows_are_copied_and_reloads_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let (lk, users) = lookups(dir.path());
        let p = Enrich::new(&EnrichConfig { table: Some("users".into()), key: "details.username".into(), ..Default::default() }, lk.clone()).unwrap();
        assert_eq!(p.terms(), ["username"]);
        let d = run(&p, json!({"details": {"username": "alice"}}));
        assert_eq!(d["details"]["users"]["team"], "payments");
        let d = run(&p, json!({"details": {"username": "mallory"}}));
        assert!(d["details"].get("users").is_none());
        std::fs::write(&users, "username,team,manager\nalice,platform,carol\nmallory,none,nobody\n").unwrap();
        lk.reload();
        assert_eq!(run(&p, json!({"details": {"username": "alice"}}))["details"]["users"]["team"], "platform");
        assert_eq!(run(&p, json!({"details": {"username": "mallory"}}))["details"]["users"]["manager"], "nobody");
    }

    #[test]
    fn list_membership_and_tag() {
        let dir = tempfile::tempdir().unwrap();
        let (lk, _) = lookups(dir.path());
        let p = Enrich::new(&EnrichConfig { list: Some("internal".into()), key: "details.sourceipaddress".into(), tag: Some("internal_source".into()), ..Default::default() }, lk.clone()).unwrap();
        let d = run(&p, json!({"tags": [], "details": {"sourceipaddress": "10.2.3.4"}}));
        assert_eq!(d["details"]["sourceipaddress_in_internal"], true);
        assert_eq!(d["tags"], json!(["internal_source"]));
        let d = run(&p, json!({"details": {"sourceipaddress": "8.8.8.8"}}));
        assert_eq!(d["details"]["sourceipaddress_in_internal"], false);
        assert!(d.get("tags").is_none());
        let e = Enrich::new(&EnrichConfig { table: Some("nope".into()), key: "x".into(), ..Default::default() }, lk).unwrap_err().to_string();
        assert!(e.contains("`nope`") && e.contains("internal, users"), "{e}");
    }
}
