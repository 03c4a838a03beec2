//! Lookup tables and CIDR lists: named files (`lookups:` in the config), loaded at start and
//! reloaded in place when they change, for plugins (`enrich`, `drop`), VRL scripts
//! (`lookup(table, key)`, `in_cidr_list(list, ip)`) and rules (each list's networks and each
//! table's keys are `expand` placeholder values under the lookup's name).
//!
//! - A **table** is a CSV file with a header row (the `key` column, default the first, is the
//!   key; each row becomes an object of column → text) or a YAML mapping (key → mapping of
//!   fields, or key → a scalar, stored as `{value: …}`).
//! - A **CIDR list** is one network (`10.0.0.0/8`) or address per line; `#` starts a comment.
//!
//! Reload: a watcher thread checks each file's modification time and size every
//! `reload_every`; a changed file is parsed whole and swapped in atomically. A file that no
//! longer parses (or vanished) keeps the previous contents in use; the error, naming the file
//! and line, is logged and counted ([`Counter::LookupReloadFailed`]).

use crate::error::ConnectorError;
use ipnet::IpNet;
use parking_lot::{Mutex, RwLock};
use rampart_core::{Counter, Metrics};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The `lookups:` section.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LookupsConfig {
    /// How often each file's modification time and size are checked, e.g. `10s`. Default `10s`.
    #[serde(default = "default_reload_every", with = "crate::registry::human_duration")]
    pub reload_every: Duration,
    /// Lookup tables (CSV or YAML). Default none.
    #[serde(default)]
    pub tables: Vec<TableConfig>,
    /// CIDR lists. Default none.
    #[serde(default)]
    pub lists: Vec<ListConfig>,
}

impl Default for LookupsConfig {
    fn default() -> Self {
        LookupsConfig { reload_every: default_reload_every(), tables: Vec::new(), lists: Vec::new() }
    }
}

fn default_reload_every() -> Duration {
    Duration::from_secs(10)
}

/// One lookup table.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The name plugins, VRL (`lookup("NAME", key)`) and rules (`%NAME%`) use. Required.
    pub name: String,
    /// The file: `.csv` (header row) or `.yml`/`.yaml` (a mapping). Required.
    pub path: PathBuf,
    /// CSV only: the column holding the key. Default: the first column.
    #[serde(default)]
    pub key: Option<String>,
}

/// One CIDR list.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListConfig {
    /// The name plugins, VRL (`in_cidr_list("NAME", ip)`) and rules (`%NAME%`) use. Required.
    pub name: String,
    /// The file: one network or address per line, `#` comments. Required.
    pub path: PathBuf,
}

impl LookupsConfig {
    /// Every problem: empty or repeated names, missing files, unknown table formats.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.reload_every < Duration::from_millis(10) {
            p.push("reload_every: must be at least 10ms".to_string());
        }
        let mut names: Vec<&str> = Vec::new();
        let entries = self.tables.iter().map(|t| ("tables", &t.name, &t.path)).chain(self.lists.iter().map(|l| ("lists", &l.name, &l.path)));
        for (i, (section, name, path)) in entries.enumerate() {
            let at = format!("{section}[{}]", if section == "tables" { i } else { i - self.tables.len() });
            if name.trim().is_empty() {
                p.push(format!("{at}: name must not be empty"));
            } else if names.contains(&name.as_str()) {
                p.push(format!("{at}: the name `{name}` is used twice (tables and lists share one namespace)"));
            } else {
                names.push(name);
            }
            if !path.is_file() {
                p.push(format!("{at}: {} does not exist", path.display()));
            }
            if section == "tables" && table_format(path).is_none() {
                p.push(format!("{at}: {} must end in .csv, .yml or .yaml", path.display()));
            }
        }
        p
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Yaml,
}

fn table_format(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => Some(Format::Csv),
        Some("yml" | "yaml") => Some(Format::Yaml),
        _ => None,
    }
}

/// A loaded table: key → row.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Table {
    rows: HashMap<String, Map<String, Value>>,
    /// Keys in file order (for `expand` placeholders).
    keys: Vec<String>,
}

impl Table {
    /// The row for `key` (exact match).
    pub fn get(&self, key: &str) -> Option<&Map<String, Value>> {
        self.rows.get(key)
    }

    /// The keys in file order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn insert(&mut self, key: String, row: Map<String, Value>) {
        if self.rows.insert(key.clone(), row).is_none() {
            self.keys.push(key);
        }
    }
}

/// A loaded CIDR list: sorted, merged address ranges per family, searched by bisection.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CidrList {
    nets: Vec<IpNet>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl CidrList {
    /// A list of networks.
    pub fn new(nets: Vec<IpNet>) -> CidrList {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for n in &nets {
            match n {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        CidrList { nets, v4: merge(v4), v6: merge(v6) }
    }

    /// Whether `ip` is in any network of the list (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => within(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => within(&self.v4, u32::from(v4)),
                None => within(&self.v6, u128::from(a)),
            },
        }
    }

    /// Whether the text is an address in the list (false for anything that is not an address).
    pub fn contains_str(&self, ip: &str) -> bool {
        ip.trim().parse::<IpAddr>().is_ok_and(|ip| self.contains(ip))
    }

    /// The networks as written (addresses as /32 or /128).
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }
}

fn merge<T: Ord + Copy>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn within<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    let i = ranges.partition_point(|(s, _)| *s <= x);
    i > 0 && ranges[i - 1].1 >= x
}

/// One file and its current contents.
struct Source<T> {
    name: String,
    path: PathBuf,
    key: Option<String>,
    current: RwLock<Arc<T>>,
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl<T> Source<T> {
    fn get(&self) -> Arc<T> {
        self.current.read().clone()
    }
}

/// Every named table and list of one process. Shared (`Arc<Lookups>`); readers take a
/// snapshot (`Arc`) per use, so a reload never changes a table under a running plugin.
#[derive(Default)]
pub struct Lookups {
    tables: HashMap<String, Source<Table>>,
    lists: HashMap<String, Source<CidrList>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Lookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookups").field("tables", &self.tables.keys().collect::<Vec<_>>()).field("lists", &self.lists.keys().collect::<Vec<_>>()).finish()
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn lookup_error(name: &str, message: String) -> ConnectorError {
    ConnectorError::Plugin { plugin: format!("lookup {name}"), message }
}

impl Lookups {
    /// Loads every file; the first that cannot be read or parsed stops the load (at start a
    /// bad file is a configuration error, not something to run without).
    pub fn load(cfg: &LookupsConfig, metrics: Option<Arc<Metrics>>) -> Result<Lookups, ConnectorError> {
        let mut out = Lookups { metrics, ..Lookups::default() };
        for t in &cfg.tables {
            let st = stamp(&t.path);
            let table = load_table(&t.path, t.key.as_deref()).map_err(|m| lookup_error(&t.name, m))?;
            out.tables.insert(t.name.clone(), Source { name: t.name.clone(), path: t.path.clone(), key: t.key.clone(), current: RwLock::new(Arc::new(table)), stamp: Mutex::new(st) });
        }
        for l in &cfg.lists {
            let st = stamp(&l.path);
            let list = load_list(&l.path).map_err(|m| lookup_error(&l.name, m))?;
            out.lists.insert(l.name.clone(), Source { name: l.name.clone(), path: l.path.clone(), key: None, current: RwLock::new(Arc::new(list)), stamp: Mutex::new(st) });
        }
        Ok(out)
    }

    /// The current contents of a table.
    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables.get(name).map(Source::get)
    }

    /// The current contents of a CIDR list.
    pub fn list(&self, name: &str) -> Option<Arc<CidrList>> {
        self.lists.get(name).map(Source::get)
    }

    /// Whether a table of that name exists.
    pub fn has_table(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }

    /// Whether a list of that name exists.
    pub fn has_list(&self, name: &str) -> bool {
        self.lists.contains_key(name)
    }

    /// Names of the tables and lists, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.tables.keys().chain(self.lists.keys()).cloned().collect();
        n.sort();
        n
    }

    /// `expand` placeholder values for rules: each list's networks (`10.0.0.0/8`, an address
    /// as `/32`) and each table's keys, under the lookup's name. Rules are compiled once, so
    /// they see the contents at load time.
    pub fn placeholders(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for (name, s) in &self.lists {
            out.insert(name.clone(), s.get().networks().iter().map(ToString::to_string).collect());
        }
        for (name, s) in &self.tables {
            out.insert(name.clone(), s.get().keys().to_vec());
        }
        out
    }

    /// Reloads every file whose modification time or size changed. A file that fails keeps
    /// its previous contents; the errors (naming file and line) are logged, counted and
    /// returned. Returns the names reloaded and the errors.
    pub fn reload(&self) -> (Vec<String>, Vec<String>) {
        let mut reloaded = Vec::new();
        let mut errors = Vec::new();
        for s in self.tables.values() {
            self.reload_one(s, load_table, &mut reloaded, &mut errors);
        }
        for s in self.lists.values() {
            self.reload_one(s, |p, _| load_list(p), &mut reloaded, &mut errors);
        }
        (reloaded, errors)
    }

    fn reload_one<T>(&self, s: &Source<T>, load: impl Fn(&Path, Option<&str>) -> Result<T, String>, reloaded: &mut Vec<String>, errors: &mut Vec<String>) {
        let now = stamp(&s.path);
        let mut last = s.stamp.lock();
        if now == *last {
            return;
        }
        *last = now;
        let result = if now.is_none() { Err(format!("{}: cannot read the file (removed?)", s.path.display())) } else { load(&s.path, s.key.as_deref()) };
        match result {
            Ok(v) => {
                *s.current.write() = Arc::new(v);
                tracing::info!(lookup = %s.name, "reloaded {}", s.path.display());
                reloaded.push(s.name.clone());
            }
            Err(e) => {
                tracing::error!(lookup = %s.name, "reload failed, keeping the previous contents: {e}");
                if let Some(m) = &self.metrics {
                    m.add(Counter::LookupReloadFailed, 1);
                }
                errors.push(format!("lookup {}: {e}", s.name));
            }
        }
    }

    /// Starts a thread that calls [`Lookups::reload`] every `every` until the returned
    /// [`Watcher`] is dropped. Nothing is started when there is nothing to watch.
    pub fn watch(self: &Arc<Self>, every: Duration) -> Watcher {
        if self.tables.is_empty() && self.lists.is_empty() {
            return Watcher { stop: None, thread: None };
        }
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let me = self.clone();
        let thread = std::thread::Builder::new().name("rampart-lookups".into()).spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                me.reload();
            }
        });
        match thread {
            Ok(t) => Watcher { stop: Some(stop), thread: Some(t) },
            Err(e) => {
                tracing::error!("lookups: cannot start the reload thread ({e}); files will not be reloaded");
                Watcher { stop: None, thread: None }
            }
        }
    }
}

/// Stops the reload thread when dropped.
#[derive(Debug)]
pub struct Watcher {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Parses a table file; errors name the file and line.
pub fn load_table(path: &Path, key: Option<&str>) -> Result<Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    match table_format(path) {
        Some(Format::Csv) => parse_csv(path, &text, key),
        Some(Format::Yaml) => parse_yaml_table(path, &text),
        None => Err(format!("{}: a table must be a .csv, .yml or .yaml file", path.display())),
    }
}

fn parse_csv(path: &Path, text: &str, key: Option<&str>) -> Result<Table, String> {
    let at = |line: Option<u64>| format!("{}:{}", path.display(), line.unwrap_or(1));
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| format!("{}: {e}", at(e.position().map(|p| p.line()))))?.clone();
    if headers.is_empty() {
        return Err(format!("{}: the header row is empty (a CSV table needs a header row naming its columns)", at(Some(1))));
    }
    let key_col = match key {
        None => 0,
        Some(k) => headers.iter().position(|h| h == k).ok_or_else(|| format!("{}: no column `{k}` (columns: {})", at(Some(1)), headers.iter().collect::<Vec<_>>().join(", ")))?,
    };
    let mut table = Table::default();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", at(e.position().map(|p| p.line()))))?;
        let line = rec.position().map(|p| p.line());
        if rec.len() != headers.len() {
            return Err(format!("{}: {} fields, the header has {}", at(line), rec.len(), headers.len()));
        }
        let k = rec.get(key_col).unwrap_or_default();
        if k.is_empty() {
            return Err(format!("{}: the key column `{}` is empty", at(line), headers.get(key_col).unwrap_or_default()));
        }
        let row: Map<String, Value> = headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), Value::String(v.to_string()))).collect();
        table.insert(k.to_string(), row);
    }
    Ok(table)
}

fn parse_yaml_table(path: &Path, text: &str) -> Result<Table, String> {
    use marked_yaml::Node;
    let node = marked_yaml::parse_yaml(0, text).map_err(|e| format!("{}: {e}", path.display()))?;
    let Node::Mapping(m) = node else { return Err(format!("{}:1: a YAML table must be a mapping of key to fields", path.display())) };
    let mut table = Table::default();
    for (k, v) in m.iter() {
        let row = match yaml_value(v) {
            Value::Object(o) => o,
            Value::Array(_) => {
                let line = v.span().start().map(|s| s.line()).unwrap_or(0);
                return Err(format!("{}:{line}: the value of `{}` is a list; give a mapping of fields or one value", path.display(), k.as_str()));
            }
            scalar => Map::from_iter([("value".to_string(), scalar)]),
        };
        table.insert(k.as_str().to_string(), row);
    }
    Ok(table)
}

fn yaml_value(n: &marked_yaml::Node) -> Value {
    use marked_yaml::Node;
    match n {
        Node::Scalar(s) => Value::String(s.as_str().to_string()),
        Node::Mapping(m) => Value::Object(m.iter().map(|(k, v)| (k.as_str().to_string(), yaml_value(v))).collect()),
        Node::Sequence(s) => Value::Array(s.iter().map(yaml_value).collect()),
    }
}

/// Parses a CIDR list file; errors name the file and line.
pub fn load_list(path: &Path) -> Result<CidrList, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse_list(path, &text)
}

fn parse_list(path: &Path, text: &str) -> Result<CidrList, String> {
    let mut nets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        let net = entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from));
        match net {
            Ok(n) => nets.push(n),
            Err(_) => return Err(format!("{}:{}: `{entry}` is not a network (10.0.0.0/8) or an address", path.display(), i + 1)),
        }
    }
    Ok(CidrList::new(nets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn cidr_lists_match_v4_v6_and_mapped_addresses() {
        let l = parse_list(Path::new("l.txt"), "# internal\n10.0.0.0/8\n192.168.1.7   # one host\n\n2001:db8::/32\n").unwrap();
        assert!(l.contains_str("10.200.3.4") && l.contains_str("192.168.1.7") && l.contains_str("2001:db8::1") && l.contains_str("::ffff:10.0.0.1"));
        assert!(!l.contains_str("11.0.0.1") && !l.contains_str("192.168.1.8") && !l.contains_str("not an ip"));
        assert_eq!(l.networks().iter().map(ToString::to_string).collect::<Vec<_>>(), ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32"]);
        let e = parse_list(Path::new("l.txt"), "10.0.0.0/8\n10.0.0.300/8\n").unwrap_err();
        assert_eq!(e, "l.txt:2: `10.0.0.300/8` is not a network (10.0.0.0/8) or an address");
    }

    #[test]
    fn csv_and_yaml_tables() {
        let t = parse_csv(Path::new("u.csv"), "username,team,owner\nalice,red,bob\nbob , blue , carol\n", Some("username")).unwrap();
        assert_eq!(t.get("bob").unwrap()["team"], "blue");
        assert_eq!(t.keys(), ["alice", "bob"]);
        let e = parse_csv(Path::new("u.csv"), "username,team\nalice,red\nbob\n", None).unwrap_err();
        assert!(e.starts_with("u.csv:3:"), "{e}");
        let e = parse_csv(Path::new("u.csv"), "username,team\n", Some("user")).unwrap_err();
        assert!(e.contains("no column `user`") && e.contains("username, team"), "{e}");
        let y = parse_yaml_table(Path::new("h.yml"), "web1: {owner: ops, tier: '1'}\ndb1: dba\n").unwrap();
        assert_eq!(y.get("web1").unwrap()["owner"], "ops");
        assert_eq!(y.get("db1").unwrap()["value"], "dba");
        let e = parse_yaml_table(Path::new("h.yml"), "web1: {owner: ops\n").unwrap_err();
        assert!(e.starts_with("h.yml: "), "{e}");
    }

    #[test]
    fn reload_picks_up_changes_and_a_bad_file_keeps_the_old_contents() {
        let dir = tempfile::tempdir().unwrap();
        let table = write(dir.path(), "users.csv", "user,team\nalice,red\n");
        let list = write(dir.path(), "nets.txt", "10.0.0.0/8\n");
        let cfg = LookupsConfig {
            reload_every: Duration::from_millis(20),
            tables: vec![TableConfig { name: "users".into(), path: table.clone(), key: None }],
            lists: vec![ListConfig { name: "internal".into(), path: list.clone() }],
        };
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let metrics = Arc::new(Metrics::new());
        let lk = Arc::new(Lookups::load(&cfg, Some(metrics.clone())).unwrap());
        assert_eq!(lk.table("users").unwrap().get("alice").unwrap()["team"], "red");
        assert!(!lk.list("internal").unwrap().contains_str("172.16.0.1"));

        // The watcher thread picks changes up without a restart.
        let _watcher = lk.watch(cfg.reload_every);
        std::fs::write(&table, "user,team\nalice,blue\nbob,green\n").unwrap();
        std::fs::write(&list, "10.0.0.0/8\n172.16.0.0/12\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while lk.table("users").unwrap().get("bob").is_none() || !lk.list("internal").unwrap().contains_str("172.16.0.1") {
            assert!(std::time::Instant::now() < deadline, "the watcher did not reload within 5s");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(lk.table("users").unwrap().get("alice").unwrap()["team"], "blue");
        drop(_watcher);

        // A bad file keeps the previous contents and reports file and line.
        std::fs::write(&list, "10.0.0.0/8\n172.16.0.0/12\nbogus\n").unwrap();
        let (reloaded, errors) = lk.reload();
        assert!(reloaded.is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains(&format!("{}:3: `bogus`", list.display())), "{errors:?}");
        assert!(lk.list("internal").unwrap().contains_str("172.16.0.1"), "old contents still in use");
        assert_eq!(metrics.get(Counter::LookupReloadFailed), 1);
        // Unchanged files are not reloaded again.
        assert_eq!(lk.reload(), (Vec::new(), Vec::new()));
        assert_eq!(lk.placeholders()["users"], ["alice", "bob"]);
        assert_eq!(lk.placeholders()["internal"], ["10.0.0.0/8", "172.16.0.0/12"]);
    }

    #[test]
    fn validation_reports_every_problem() {
        let cfg = LookupsConfig {
            reload_every: Duration::from_millis(1),
            tables: vec![TableConfig { name: "".into(), path: "/nope/t.txt".into(), key: None }],
            lists: vec![ListConfig { name: "a".into(), path: "/nope/a".into() }, ListConfig { name: "a".into(), path: "/nope/b".into() }],
        };
        let p = cfg.validate();
        assert!(p.iter().any(|m| m.starts_with("reload_every")), "{p:?}");
        assert!(p.iter().any(|m| m == "tables[0]: name must not be empty"), "{p:?}");
        assert!(p.iter().any(|m| m.contains("must end in .csv")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("lists[1]: the name `a` is used twice")), "{p:?}");
        assert_eq!(p.iter().filter(|m| m.contains("does not exist")).count(), 3, "{p:?}");
    }
}
