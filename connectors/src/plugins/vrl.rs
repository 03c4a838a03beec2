//! `vrl`: user scripts in the Vector Remap Language (the `vrl` crate, its standard library
//! without the network, system, environment and crypto functions). The program is read from
//! a file and compiled once when the chain is built; a compile error names the file, line
//! and column with VRL's message and stops the load.
//!
//! Per event the script sees the document as `.` and may change it freely (`.user =
//! del(.details.username)`, `.tags = push(.tags, "vpn")`). Besides:
//!
//! - `abort` drops the event (counted, acked as handled; the reason is the script's name);
//! - metadata `%index` and `%doc_id` set the route (target index prefix and document id);
//!   they start as the current route, or null;
//! - `lookup("table", key)` returns a lookup table's row (an object) or null, and
//!   `in_cidr_list("list", ip)` whether an address is in a CIDR list; the names must exist
//!   when the script compiles, and the contents are read live, so reloads are seen.
//!
//! A runtime error (a fallible call that failed without `!`/`??` handling) leaves the event as
//! it was before the script and is counted as a plugin error.
//!
//! Time budget: VRL cannot be interrupted mid-program, so the budget is checked after each
//! run: a run that took longer is counted ([`Counter::PluginOverBudget`]), logged at debug
//! level, and, with `on_budget: drop`, its event is dropped. A script that loops forever is
//! not possible in VRL (it has no unbounded loops), but a slow regex over a huge field is; put
//! `field_limit` before it.

use super::lookup::Lookups;
use super::{Plugin, PluginEvent, Verdict};
use crate::error::ConnectorError;
use rampart_core::{Counter, Metrics};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vrl::compiler::prelude::*;
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{Program, TargetValue};
use vrl::value::Secrets;

/// What to do with an event whose script run took longer than the budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBudget {
    /// Keep the script's result (the overrun is still counted).
    #[default]
    Keep,
    /// Drop the event.
    Drop,
}

/// `type: vrl` options.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VrlConfig {
    /// The VRL program file. Required.
    pub file: PathBuf,
    /// Longest a run may take, e.g. `500us`, `2ms`. Default `1ms`.
    #[serde(default = "default_budget", with = "crate::registry::human_duration")]
    pub budget: Duration,
    /// `keep` or `drop` an event whose run exceeded the budget. Default `keep`.
    #[serde(default)]
    pub on_budget: OnBudget,
}

fn default_budget() -> Duration {
    Duration::from_millis(1)
}

impl VrlConfig {
    /// Every problem (the program itself is checked when it compiles).
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.file.is_file() {
            p.push(format!("file: {} does not exist", self.file.display()));
        }
        if self.budget.is_zero() {
            p.push("budget: must be more than 0".to_string());
        }
        p
    }
}

/// The plugin: a compiled program.
pub struct Vrl {
    name: String,
    program: Program,
    budget: Duration,
    on_budget: OnBudget,
    metrics: Arc<Metrics>,
    terms: Vec<String>,
}

impl std::fmt::Debug for Vrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vrl").field("name", &self.name).field("budget", &self.budget).finish()
    }
}

/// The functions a script may call: VRL's standard library plus Rampart's lookups.
pub fn functions(lookups: &Arc<Lookups>) -> Vec<Box<dyn Function>> {
    let mut fns = vrl::stdlib::all();
    fns.push(Box::new(LookupFn { lookups: lookups.clone() }));
    fns.push(Box::new(InCidrListFn { lookups: lookups.clone() }));
    fns
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

impl Vrl {
    /// Reads and compiles the program. `name` is the plugin's name (for errors and drops).
    pub fn load(name: &str, cfg: &VrlConfig, lookups: &Arc<Lookups>, metrics: Arc<Metrics>) -> Result<Vrl, ConnectorError> {
        let file = cfg.file.display().to_string();
        let source = std::fs::read_to_string(&cfg.file).map_err(|e| ConnectorError::Plugin { plugin: name.into(), message: format!("cannot read {file}: {e}") })?;
        Vrl::compile(name, &file, &source, cfg, lookups, metrics)
    }

    /// Compiles program text; `file` names it in errors.
    pub fn compile(name: &str, file: &str, source: &str, cfg: &VrlConfig, lookups: &Arc<Lookups>, metrics: Arc<Metrics>) -> Result<Vrl, ConnectorError> {
        let compiled = vrl::compiler::compile(source, &functions(lookups)).map_err(|diags| {
            let mut msgs = Vec::new();
            for d in diags.errors() {
                let at = d.labels.iter().find(|l| l.primary).or(d.labels.first());
                let (line, col) = at.map(|l| line_col(source, l.span.start())).unwrap_or((1, 1));
                let labels: Vec<&str> = d.labels.iter().map(|l| l.message.as_str()).filter(|m| !m.is_empty() && *m != d.message).collect();
                let labels = if labels.is_empty() { String::new() } else { format!(" ({})", labels.join("; ")) };
                msgs.push(format!("{file}:{line}:{col}: error[E{}]: {}{labels}", d.code, d.message));
            }
            ConnectorError::Plugin { plugin: name.into(), message: format!("the VRL program does not compile:\n{}", msgs.join("\n")) }
        })?;
        for w in compiled.warnings.iter() {
            tracing::warn!(plugin = name, "{file}: VRL warning: {}", w.message);
        }
        Ok(Vrl { name: name.into(), program: compiled.program, budget: cfg.budget, on_budget: cfg.on_budget, metrics, terms: vec!["*".into()] })
    }
}

impl Plugin for Vrl {
    fn name(&self) -> &str {
        &self.name
    }
    fn terms(&self) -> Vec<String> {
        self.terms.clone()
    }
    fn priority(&self) -> i32 {
        100
    }
    fn process(&self, e: &mut PluginEvent<'_>) -> Verdict {
        let doc = std::mem::take(e.doc);
        let original = Json::Object(doc);
        let mut metadata = ObjectMap::new();
        metadata.insert("index".into(), e.route.index.clone().map(Value::from).unwrap_or(Value::Null));
        metadata.insert("doc_id".into(), e.route.doc_id.clone().map(Value::from).unwrap_or(Value::Null));
        let mut target = TargetValue { value: Value::from(&original), metadata: Value::Object(metadata), secrets: Secrets::default() };
        let start = Instant::now();
        let result = Runtime::default().resolve(&mut target, &self.program, &TimeZone::default());
        let took = start.elapsed();
        let restore = |e: &mut PluginEvent<'_>, original: Json| {
            if let Json::Object(m) = original {
                *e.doc = m;
            }
        };
        let over = took > self.budget;
        if over {
            self.metrics.add(Counter::PluginOverBudget, 1);
            tracing::debug!(plugin = %self.name, "VRL run took {took:?}, over its budget of {:?}", self.budget);
        }
        match result {
            Ok(_) => {}
            Err(Terminate::Abort(_)) => {
                restore(e, original);
                return Verdict::Drop(format!("VRL `{}` aborted", self.name));
            }
            Err(Terminate::Error(err)) => {
                restore(e, original);
                self.metrics.add(Counter::PluginErrors, 1);
                tracing::debug!(plugin = %self.name, "VRL runtime error, event left unchanged: {err}");
                return Verdict::Keep;
            }
        }
        let value: Result<Json, _> = target.value.try_into();
        match value {
            Ok(Json::Object(m)) => *e.doc = m,
            _ => {
                restore(e, original);
                self.metrics.add(Counter::PluginErrors, 1);
                tracing::debug!(plugin = %self.name, "VRL program left `.` as something other than an object; event left unchanged");
                return Verdict::Keep;
            }
        }
        if let Value::Object(meta) = &target.metadata {
            let text = |k: &str| meta.get(k).and_then(|v| v.as_str().map(|s| s.to_string())).filter(|s| !s.is_empty());
            e.route.index = text("index");
            e.route.doc_id = text("doc_id");
        }
        if over && self.on_budget == OnBudget::Drop {
            return Verdict::Drop(format!("VRL `{}` took {took:?}, over its budget", self.name));
        }
        Verdict::Keep
    }
}

static LOOKUP_PARAMS: [Parameter; 2] = [Parameter::required("table", kind::BYTES, "The lookup table's name."), Parameter::required("key", kind::ANY, "The key to look up.")];
static LIST_PARAMS: [Parameter; 2] = [Parameter::required("list", kind::BYTES, "The CIDR list's name."), Parameter::required("ip", kind::ANY, "The address to test.")];

/// `lookup(table, key)`: a lookup table's row, or null.
#[derive(Debug, Clone)]
struct LookupFn {
    lookups: Arc<Lookups>,
}

/// `in_cidr_list(list, ip)`: whether an address is in a CIDR list.
#[derive(Debug, Clone)]
struct InCidrListFn {
    lookups: Arc<Lookups>,
}

fn literal_name(arguments: &ArgumentList, keyword: &'static str, state: &TypeState) -> Result<String, Box<dyn DiagnosticMessage>> {
    let v = arguments.required_literal(keyword, state).map_err(|e| Box::new(e) as Box<dyn DiagnosticMessage>)?;
    Ok(v.as_str().map(|s| s.to_string()).unwrap_or_default())
}

impl Function for LookupFn {
    fn identifier(&self) -> &'static str {
        "lookup"
    }
    fn usage(&self) -> &'static str {
        "Returns the row of a Rampart lookup table whose key equals `key`, or null."
    }
    fn category(&self) -> &'static str {
        "Enrichment"
    }
    fn return_kind(&self) -> u16 {
        kind::OBJECT | kind::NULL
    }
    fn parameters(&self) -> &'static [Parameter] {
        &LOOKUP_PARAMS
    }
    fn examples(&self) -> &'static [Example] {
        &[]
    }
    fn compile(&self, state: &TypeState, _ctx: &mut FunctionCompileContext, arguments: ArgumentList) -> Compiled {
        let table = literal_name(&arguments, "table", state)?;
        if !self.lookups.has_table(&table) {
            return Err(Box::new(function::Error::InvalidArgument { keyword: "table", value: Value::from(table), error: "no lookup table of that name (see `lookups.tables` in the config)" }));
        }
        Ok(LookupExpr { lookups: self.lookups.clone(), table, key: arguments.required("key") }.as_expr())
    }
}

#[derive(Debug, Clone)]
struct LookupExpr {
    lookups: Arc<Lookups>,
    table: String,
    key: Box<dyn Expression>,
}

fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Bytes(_) => v.as_str().map(|s| s.to_string()),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

impl FunctionExpression for LookupExpr {
    fn resolve(&self, ctx: &mut Context) -> Resolved {
        let key = self.key.resolve(ctx)?;
        let Some(key) = key_text(&key) else { return Ok(Value::Null) };
        let row = self.lookups.table(&self.table).and_then(|t| t.get(&key).cloned());
        Ok(row.map(|r| Value::from(Json::Object(r))).unwrap_or(Value::Null))
    }
    fn type_def(&self, _: &TypeState) -> TypeDef {
        TypeDef::object(Collection::any()).or_null().infallible()
    }
}

impl Function for InCidrListFn {
    fn identifier(&self) -> &'static str {
        "in_cidr_list"
    }
    fn usage(&self) -> &'static str {
        "Whether `ip` is an address inside one of the networks of a Rampart CIDR list."
    }
    fn category(&self) -> &'static str {
        "Enrichment"
    }
    fn return_kind(&self) -> u16 {
        kind::BOOLEAN
    }
    fn parameters(&self) -> &'static [Parameter] {
        &LIST_PARAMS
    }
    fn examples(&self) -> &'static [Example] {
        &[]
    }
    fn compile(&self, state: &TypeState, _ctx: &mut FunctionCompileContext, arguments: ArgumentList) -> Compiled {
        let list = literal_name(&arguments, "list", state)?;
        if !self.lookups.has_list(&list) {
            return Err(Box::new(function::Error::InvalidArgument { keyword: "list", value: Value::from(list), error: "no CIDR list of that name (see `lookups.lists` in the config)" }));
        }
        Ok(InCidrListExpr { lookups: self.lookups.clone(), list, ip: arguments.required("ip") }.as_expr())
    }
}

#[derive(Debug, Clone)]
struct InCidrListExpr {
    lookups: Arc<Lookups>,
    list: String,
    ip: Box<dyn Expression>,
}

impl FunctionExpression for InCidrListExpr {
    fn resolve(&self, ctx: &mut Context) -> Resolved {
        let ip = self.ip.resolve(ctx)?;
        let hit = ip.as_str().is_some_and(|s| self.lookups.list(&self.list).is_some_and(|l| l.contains_str(&s)));
        Ok(Value::Boolean(hit))
    }
    fn type_def(&self, _: &TypeState) -> TypeDef {
        TypeDef::boolean().infallible()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::lookup::{ListConfig, LookupsConfig, TableConfig};
    use crate::plugins::Route;
    use serde_json::json;

    fn cfg() -> VrlConfig {
        VrlConfig { file: "t.vrl".into(), budget: Duration::from_secs(1), on_budget: OnBudget::Keep }
    }

    fn compile(src: &str) -> Result<Vrl, ConnectorError> {
        Vrl::compile("script", "scripts/t.vrl", src, &cfg(), &Arc::new(Lookups::default()), Arc::new(Metrics::new()))
    }

    fn run(p: &Vrl, v: Json) -> (Verdict, Json, Route) {
        let Json::Object(mut doc) = v else { unreachable!() };
        let mut route = Route::default();
        let verdict = p.process(&mut PluginEvent { doc: &mut doc, route: &mut route });
        (verdict, Json::Object(doc), route)
    }

    #[test]
    fn renames_tags_and_deletes_fields() {
        let p = compile(".details.username = del(.details.user)\n.tags = push(array(.tags) ?? [], \"vpn\")\ndel(.details.password)\n").unwrap();
        let (v, doc, _) = run(&p, json!({"summary": "vpn login", "tags": ["openvpn"], "details": {"user": "alice", "password": "hunter2"}}));
        assert_eq!(v, Verdict::Keep);
        assert_eq!(doc, json!({"summary": "vpn login", "tags": ["openvpn", "vpn"], "details": {"username": "alice"}}));
    }

    #[test]
    fn abort_drops_and_metadata_routes() {
        let p = compile("if .category == \"noise\" { abort }\n%index = \"vpn\"\n%doc_id = \"vpn-\" + string!(.details.session)\n").unwrap();
        let (v, doc, _) = run(&p, json!({"category": "noise"}));
        assert!(matches!(v, Verdict::Drop(ref r) if r.contains("script")), "{v:?}");
        assert_eq!(doc, json!({"category": "noise"}), "an aborted run leaves the event as it was");
        let (v, _, route) = run(&p, json!({"category": "vpn", "details": {"session": "42"}}));
        assert_eq!(v, Verdict::Keep);
        assert_eq!(route, Route { index: Some("vpn".into()), doc_id: Some("vpn-42".into()) });
    }

    #[test]
    fn compile_errors_name_file_line_and_column() {
        let e = compile(".a = 1\n.b = = 1\n").unwrap_err().to_string();
        assert!(e.contains("scripts/t.vrl:2:6: error[E203]: syntax error"), "{e}");
        let e = compile(".a = 1\n\n  .b = no_such_function(.a)\n").unwrap_err().to_string();
        assert!(e.contains("scripts/t.vrl:3:8: error[E105]") && e.contains("undefined function"), "{e}");
    }

    #[test]
    fn runtime_errors_leave_the_event_unchanged_and_count() {
        let metrics = Arc::new(Metrics::new());
        let p = Vrl::compile("script", "t.vrl", ".a = 1\n.n = parse_int(.text) ?? 0\n.x = to_int!(.text)\n", &cfg(), &Arc::new(Lookups::default()), metrics.clone()).unwrap();
        let (v, doc, _) = run(&p, json!({"text": "abc"}));
        assert_eq!(v, Verdict::Keep);
        assert_eq!(doc, json!({"text": "abc"}));
        assert_eq!(metrics.get(Counter::PluginErrors), 1);
    }

    #[test]
    fn budget_overrun_is_counted_and_may_drop() {
        let metrics = Arc::new(Metrics::new());
        let c = VrlConfig { budget: Duration::from_nanos(1), on_budget: OnBudget::Drop, ..cfg() };
        let p = Vrl::compile("slow", "t.vrl", ".a = 1\n", &c, &Arc::new(Lookups::default()), metrics.clone()).unwrap();
        let (v, _, _) = run(&p, json!({}));
        assert!(matches!(v, Verdict::Drop(ref r) if r.contains("budget")), "{v:?}");
        assert_eq!(metrics.get(Counter::PluginOverBudget), 1);
    }

    #[test]
    fn lookup_functions_read_live_tables_and_unknown_names_do_not_compile() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.csv");
        std::fs::write(&users, "username,team\nalice,red\n").unwrap();
        let nets = dir.path().join("nets.txt");
        std::fs::write(&nets, "10.0.0.0/8\n").unwrap();
        let lk = Arc::new(Lookups::load(&LookupsConfig { tables: vec![TableConfig { name: "users".into(), path: users.clone(), key: None }], lists: vec![ListConfig { name: "internal".into(), path: nets }], ..Default::default() }, None).unwrap());
        let src = "row = lookup(\"users\", .details.username)\nif row != null { .details.team = row.team }\n.details.internal = in_cidr_list(\"internal\", .details.sourceipaddress)\n";
        let p = Vrl::compile("s", "t.vrl", src, &cfg(), &lk, Arc::new(Metrics::new())).unwrap();
        let (_, doc, _) = run(&p, json!({"details": {"username": "alice", "sourceipaddress": "10.9.9.9"}}));
        assert_eq!(doc["details"]["team"], "red");
        assert_eq!(doc["details"]["internal"], true);
        std::fs::write(&users, "username,team\nalice,blue\n").unwrap();
        lk.reload();
        let (_, doc, _) = run(&p, json!({"details": {"username": "alice", "sourceipaddress": "8.8.8.8"}}));
        assert_eq!(doc["details"]["team"], "blue");
        assert_eq!(doc["details"]["internal"], false);
        let e = Vrl::compile("s", "t.vrl", "x = lookup(\"nope\", .a)\n", &cfg(), &lk, Arc::new(Metrics::new())).unwrap_err().to_string();
        assert!(e.contains("t.vrl:1:") && e.contains("nope"), "{e}");
    }
}
