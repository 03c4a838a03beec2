//! `rampart kibana`: the Kibana saved objects Rampart ships and their upload.
//!
//! [`SAVED_OBJECTS`] is `kibana/rampart.ndjson`, embedded: data views (`index-pattern`) for
//! `events-*` and `alerts-*` with `@timestamp` as time field, a saved search of alerts,
//! legacy aggregation-based visualizations and the "Rampart: overview" dashboard. They are
//! written in Kibana 7.10's export format (`migrationVersion` equal to 7.10's latest
//! migration of each type, which is also OpenSearch Dashboards'), so one file imports into
//! Kibana 7.10 to 9 (which migrate it forward) and into OpenSearch Dashboards. Objects refer
//! to each other by stable id through `references`, so importing again replaces them in place.
//!
//! [`import`] posts the file to `{url}[/s/{space}]/api/saved_objects/_import` as multipart
//! field `file`, with the `kbn-xsrf` (Kibana) and `osd-xsrf` (OpenSearch Dashboards) headers,
//! and reads the per-object answer. See `docs/kibana.md`.

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

/// The shipped saved objects, one JSON object per line.
pub const SAVED_OBJECTS: &str = include_str!("../kibana/rampart.ndjson");

/// The file name the objects are uploaded under (Kibana requires the `.ndjson` extension).
const FILE_NAME: &str = "rampart.ndjson";

/// How long to wait for a TCP/TLS connection, and for the whole import.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest part of an unexpected answer's body quoted in an error.
const EXCERPT_CHARS: usize = 500;

/// Where and how to import.
#[derive(Debug)]
pub struct ImportOptions {
    /// Kibana's (or OpenSearch Dashboards') base URL, with its base path if it has one.
    pub url: String,
    /// A Kibana space id; `None` for the default space.
    pub space: Option<String>,
    /// HTTP basic authentication `(user, password)`.
    pub credentials: Option<(String, String)>,
    /// Replace existing objects with the same ids.
    pub overwrite: bool,
}

/// The import endpoint for a base URL and space. Errors are the user's input, worded for them.
pub fn import_url(base: &str, space: Option<&str>, overwrite: bool) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base.trim()).map_err(|e| format!("--url `{base}` is not a URL ({e}); expected e.g. http://localhost:5601"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("--url `{base}`: the scheme must be http or https, not `{}`", url.scheme()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("--url `{base}`: give the base URL only, without `?` or `#` parts"));
    }
    let mut path = url.path().trim_end_matches('/').to_string();
    if let Some(space) = space {
        let valid = !space.is_empty() && space.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(format!("--space `{space}` is not a Kibana space id (lower-case letters, digits, `_` and `-`; the id, not the display name)"));
        }
        let _ = write!(path, "/s/{space}");
    }
    path.push_str("/api/saved_objects/_import");
    url.set_path(&path);
    if overwrite {
        url.set_query(Some("overwrite=true"));
    }
    Ok(url)
}

/// Number of objects in an NDJSON text.
pub fn object_count(ndjson: &str) -> usize {
    ndjson.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Uploads [`SAVED_OBJECTS`]; prints one line per object and a total on stdout. Fails when
/// Kibana cannot be reached, answers with an HTTP error or something that is not an import
/// result, or rejects any object.
pub fn import(opts: &ImportOptions) -> Result<()> {
    let url = import_url(&opts.url, opts.space.as_deref(), opts.overwrite).map_err(|e| anyhow!(e))?;
    let shown = rampart_connectors::redact_url(url.as_str());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the HTTP client's runtime")?;
    // reqwest's errors quote the URL as given, password and all: drop it, `shown` names it.
    let (status, body) = runtime.block_on(post(url, opts.credentials.as_ref())).map_err(reqwest::Error::without_url).with_context(|| format!("cannot reach Kibana at {shown}: is the address right and Kibana up?"))?;
    if !status.is_success() {
        bail!("Kibana at {shown} answered {status}: {}{}", excerpt(&body), status_hint(status));
    }
    let answer: ImportAnswer = serde_json::from_str(&body)
        .with_context(|| format!("Kibana at {shown} answered {status} with something that is not an import result: {}", excerpt(&body)))?;
    let total = object_count(SAVED_OBJECTS);
    println!("imported into {shown}");
    let (text, ok) = render(&answer, total, opts.overwrite);
    print!("{text}");
    if !ok {
        bail!("Kibana at {shown} imported {} of {total} saved objects; the errors are listed above", answer.success_count);
    }
    Ok(())
}

async fn post(url: reqwest::Url, credentials: Option<&(String, String)>) -> reqwest::Result<(reqwest::StatusCode, String)> {
    let client = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT).build()?;
    let part = reqwest::multipart::Part::text(SAVED_OBJECTS).file_name(FILE_NAME).mime_str("application/ndjson")?;
    let form = reqwest::multipart::Form::new().part("file", part);
    let mut request = client.post(url).header("kbn-xsrf", "true").header("osd-xsrf", "true").multipart(form);
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.text().await?;
    Ok((status, body))
}

/// What to try for an HTTP error status.
fn status_hint(status: reqwest::StatusCode) -> &'static str {
    match status.as_u16() {
        401 => " (check --user/--password or RAMPART_KIBANA_USER/RAMPART_KIBANA_PASSWORD)",
        403 => " (the user needs the privilege to manage saved objects in this space)",
        404 => " (is --url Kibana's base URL, with its base path if any, and does the --space exist?)",
        _ => "",
    }
}

/// The start of a body, on one line, for an error message.
fn excerpt(body: &str) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(empty body)".to_string();
    }
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Kibana's `_import` answer (the same shape in OpenSearch Dashboards).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportAnswer {
    /// Whether every object was imported.
    #[serde(default)]
    pub success: bool,
    /// Objects imported.
    #[serde(default)]
    pub success_count: u64,
    /// One entry per imported object (Kibana 7.10+).
    #[serde(default)]
    pub success_results: Vec<ImportedObject>,
    /// One entry per object not imported.
    #[serde(default)]
    pub errors: Vec<ObjectError>,
    /// Kibana 8's notes about the import as a whole.
    #[serde(default)]
    pub warnings: Vec<Value>,
}

/// An imported object.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportedObject {
    /// Saved object type.
    #[serde(default)]
    pub r#type: String,
    /// Its id in the file.
    #[serde(default)]
    pub id: String,
    /// The id Kibana stored it under when it differs (e.g. a copy in another space).
    #[serde(default)]
    pub destination_id: Option<String>,
    /// `title` and `icon`.
    #[serde(default)]
    pub meta: Value,
}

/// An object Kibana did not import, and why.
#[derive(Debug, Deserialize)]
pub struct ObjectError {
    /// Saved object type.
    #[serde(default)]
    pub r#type: String,
    /// Its id.
    #[serde(default)]
    pub id: String,
    /// Its title (older versions put it here, newer ones under `meta.title`).
    #[serde(default)]
    pub title: Option<String>,
    /// `title` and `icon`.
    #[serde(default)]
    pub meta: Value,
    /// `{type: conflict | ambiguous_conflict | missing_references | unsupported_type | unknown, …}`.
    #[serde(default)]
    pub error: Value,
}

impl ObjectError {
    fn title(&self) -> Option<&str> {
        self.title.as_deref().or_else(|| self.meta.get("title").and_then(Value::as_str))
    }

    /// The reason in words, from the error's type and fields.
    fn reason(&self, overwrite: bool) -> String {
        let kind = self.error.get("type").and_then(Value::as_str).unwrap_or("unknown");
        let message = self.error.get("message").and_then(Value::as_str);
        match kind {
            "missing_references" => {
                let refs: Vec<String> = self
                    .error
                    .get("references")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|r| format!("{} {}", r.get("type").and_then(Value::as_str).unwrap_or("?"), r.get("id").and_then(Value::as_str).unwrap_or("?"))).collect())
                    .unwrap_or_default();
                format!("missing_references: it refers to {} which neither the file nor Kibana has", if refs.is_empty() { "objects".to_string() } else { refs.join(", ") })
            }
            "conflict" if !overwrite => "conflict: an object with this id exists (run with --overwrite true to replace it)".to_string(),
            "conflict" | "ambiguous_conflict" => format!("{kind}: {}", message.unwrap_or("an object with this id already exists")),
            "unsupported_type" => "unsupported_type: this Kibana does not know this saved object type".to_string(),
            _ => {
                let status = self.error.get("statusCode").and_then(Value::as_u64).map(|s| format!(" (status {s})")).unwrap_or_default();
                format!("{kind}: {}{status}", message.unwrap_or("no message"))
            }
        }
    }
}

/// The per-object report of an answer and whether the import is complete. `total` is the
/// number of objects sent.
pub fn render(answer: &ImportAnswer, total: usize, overwrite: bool) -> (String, bool) {
    let mut out = String::new();
    for o in &answer.success_results {
        let title = o.meta.get("title").and_then(Value::as_str).unwrap_or("");
        let moved = o.destination_id.as_deref().filter(|d| *d != o.id).map(|d| format!(" (stored as id {d})")).unwrap_or_default();
        let _ = writeln!(out, "  ok      {:<14} {:<28} {title}{moved}", o.r#type, o.id);
    }
    for e in &answer.errors {
        let title = e.title().map(|t| format!(" \"{t}\"")).unwrap_or_default();
        let _ = writeln!(out, "  FAILED  {:<14} {:<28}{title}: {}", e.r#type, e.id, e.reason(overwrite));
    }
    for w in &answer.warnings {
        let text = w.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| w.to_string());
        let _ = writeln!(out, "  warning {text}");
    }
    let ok = answer.success && answer.errors.is_empty() && answer.success_count as usize == total;
    let errors = answer.errors.len();
    let _ = writeln!(out, "successCount: {} of {total} objects, {errors} error{}", answer.success_count, if errors == 1 { "" } else { "s" });
    (out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::alert::{AlertRule, AlertWindow};
    use rampart_core::{Alert, EventId, EventRef, EventTime, Normalizer};
    use serde_json::{json, Map};
    use std::collections::{BTreeMap, BTreeSet};

    fn objects() -> Vec<Value> {
        SAVED_OBJECTS.lines().enumerate().map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("kibana/rampart.ndjson:{}: {e}", i + 1))).collect()
    }

    fn parse_json_attr(o: &Value, pointer: &str) -> Value {
        let text = o["attributes"].pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{} has no string {pointer}", o["id"]));
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{}{pointer} is not JSON: {e}", o["id"]))
    }

    /// Every leaf of a JSON document as a dotted path (`group.details.sourceipaddress`);
    /// arrays add no segment, as in Elasticsearch's mapping.
    fn flatten(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flatten(&p, v, out);
                }
            }
            Value::Array(a) if a.iter().any(|x| x.is_object()) => a.iter().for_each(|x| flatten(prefix, x, out)),
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }

    /// The fields of a normalized event, from a realistic sshd line as a shipper sends it.
    fn event_fields() -> BTreeSet<String> {
        let raw = json!({
            "timestamp": "2026-03-02T10:00:00.018Z",
            "host": "bastion1",
            "program": "sshd",
            "pid": 4242,
            "type": "authentication",
            "message": "Failed password for root from 203.0.113.7 port 52814 ssh2",
            "details": {"sourceipaddress": "203.0.113.7", "sourceport": 52814, "username": "root", "success": false, "authmethod": "password"},
            "destinationipaddress": "10.0.0.5"
        });
        let event = Normalizer::default().normalize(raw, EventId(1)).unwrap();
        let mut out = BTreeSet::new();
        flatten("", &event.to_value(), &mut out);
        out
    }

    /// The fields of a serialized alert whose group holds every group-by field of the shipped
    /// library, plus `@timestamp`, which the Elasticsearch output adds to every document.
    fn alert_fields() -> BTreeSet<String> {
        let rules = rampart_rules::load_sources(&crate::library::sources()).unwrap();
        let mut group = Map::new();
        for r in &rules.rules {
            for f in &r.group_by {
                group.insert(f.as_str().to_string(), json!("x"));
            }
        }
        assert!(group.len() >= 2, "the library groups by several fields: {group:?}");
        let alert = Alert {
            id: Alert::make_id("r", &group, EventTime(1_000)),
            utctimestamp: EventTime(1_000),
            severity: "ERROR".into(),
            category: "bruteforce".into(),
            summary: "s".into(),
            tags: vec!["attack.t1110".into()],
            rule: AlertRule { id: "r".into(), title: "t".into(), level: Some("high".into()), kind: "event_count".into() },
            group,
            window: AlertWindow { start: EventTime(0), end: EventTime(1_000) },
            value: 10.0,
            events: vec![EventRef { id: EventId(7), utctimestamp: EventTime(500) }],
        };
        let mut out = BTreeSet::new();
        flatten("", &serde_json::to_value(&alert).unwrap(), &mut out);
        out.insert("@timestamp".to_string());
        out
    }

    #[test]
    fn every_line_is_a_saved_object_with_a_unique_stable_id() {
        let objs = objects();
        assert_eq!(objs.len(), object_count(SAVED_OBJECTS));
        let mut ids = BTreeSet::new();
        for o in &objs {
            let (t, id) = (o["type"].as_str().unwrap(), o["id"].as_str().unwrap());
            assert!(["index-pattern", "search", "visualization", "dashboard"].contains(&t), "{id}: type {t}");
            assert!(id.starts_with("rampart-"), "{id}");
            assert!(o["attributes"].is_object() && o["attributes"]["title"].is_string(), "{id}: attributes.title");
            assert!(o["references"].is_array(), "{id}: references");
            assert!(o["migrationVersion"][t].is_string(), "{id}: migrationVersion.{t}");
            assert!(ids.insert((t.to_string(), id.to_string())), "duplicate {t} {id}");
        }
        let views: BTreeMap<&str, &str> = objs.iter().filter(|o| o["type"] == "index-pattern").map(|o| (o["id"].as_str().unwrap(), o["attributes"]["title"].as_str().unwrap())).collect();
        assert_eq!(views, BTreeMap::from([("rampart-alerts", "alerts-*"), ("rampart-events", "events-*")]));
        for o in objs.iter().filter(|o| o["type"] == "index-pattern") {
            assert_eq!(o["attributes"]["timeFieldName"], "@timestamp");
        }
        assert_eq!(objs.iter().filter(|o| o["type"] == "dashboard").count(), 1);
        assert_eq!(objs.iter().filter(|o| o["type"] == "search").count(), 1);
    }

    #[test]
    fn every_reference_resolves_and_every_ref_name_is_referenced() {
        let objs = objects();
        let present: BTreeSet<(String, String)> = objs.iter().map(|o| (o["type"].as_str().unwrap().to_string(), o["id"].as_str().unwrap().to_string())).collect();
        for o in &objs {
            let id = &o["id"];
            let refs = o["references"].as_array().unwrap();
            let mut names = BTreeSet::new();
            for r in refs {
                let key = (r["type"].as_str().unwrap().to_string(), r["id"].as_str().unwrap().to_string());
                assert!(present.contains(&key), "{id} refers to {key:?}, which is not in the file");
                assert!(names.insert(r["name"].as_str().unwrap().to_string()), "{id}: duplicate reference name");
            }
            // Every name the object uses must be one of its references, and vice versa.
            let mut used = BTreeSet::new();
            if let Some(s) = o["attributes"].pointer("/kibanaSavedObjectMeta/searchSourceJSON") {
                let source: Value = serde_json::from_str(s.as_str().unwrap()).unwrap();
                if let Some(n) = source.get("indexRefName") {
                    used.insert(n.as_str().unwrap().to_string());
                }
            }
            if o["type"] == "dashboard" {
                for p in parse_json_attr(o, "/panelsJSON").as_array().unwrap() {
                    used.insert(p["panelRefName"].as_str().unwrap().to_string());
                    assert!(p["gridData"]["w"].as_u64().unwrap() > 0 && p["panelIndex"].is_string(), "{id}: panel {p}");
                }
                parse_json_attr(o, "/optionsJSON");
            }
            assert_eq!(used, names, "{id}: reference names used vs declared");
            if o["type"] == "visualization" || o["type"] == "search" {
                assert!(refs.iter().any(|r| r["type"] == "index-pattern"), "{id} needs a data view");
            }
        }
    }

    #[test]
    fn embedded_json_strings_parse() {
        for o in objects() {
            if let Some(s) = o["attributes"].pointer("/kibanaSavedObjectMeta/searchSourceJSON") {
                let source: Value = serde_json::from_str(s.as_str().unwrap()).unwrap_or_else(|e| panic!("{}: searchSourceJSON: {e}", o["id"]));
                assert_eq!(source["query"]["language"], "kuery", "{}", o["id"]);
            }
            if o["type"] == "visualization" {
                let vis = parse_json_attr(&o, "/visState");
                assert_eq!(vis["title"], o["attributes"]["title"]);
                assert!(["histogram", "table"].contains(&vis["type"].as_str().unwrap()), "{}", o["id"]);
                assert!(vis["aggs"].as_array().unwrap().iter().any(|a| a["schema"] == "metric"));
                parse_json_attr(&o, "/uiStateJSON");
            }
        }
    }

    /// Every field a visualization or the saved search reads is one Rampart writes, so
    /// renaming a field in core (or a group-by in the library) breaks this test.
    #[test]
    fn every_field_used_is_a_field_rampart_writes() {
        let fields = BTreeMap::from([("rampart-events", event_fields()), ("rampart-alerts", alert_fields())]);
        // Sanity: the derived sets hold what the brief of each index says.
        for f in ["@timestamp", "utctimestamp", "receivedtimestamp", "category", "severity", "summary", "hostname", "processname", "source", "details.sourceipaddress", "details.username"] {
            assert!(fields["rampart-events"].contains(f), "normalized event lacks {f}: {:?}", fields["rampart-events"]);
        }
        let mut checked = 0;
        for o in objects() {
            let id = o["id"].as_str().unwrap().to_string();
            let view = o["references"].as_array().unwrap().iter().find(|r| r["type"] == "index-pattern").map(|r| r["id"].as_str().unwrap().to_string());
            let mut used: Vec<String> = Vec::new();
            match o["type"].as_str().unwrap() {
                "visualization" => {
                    for agg in parse_json_attr(&o, "/visState")["aggs"].as_array().unwrap() {
                        if let Some(f) = agg["params"]["field"].as_str() {
                            used.push(f.to_string());
                        }
                    }
                }
                "search" => {
                    used.extend(o["attributes"]["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()));
                    used.extend(o["attributes"]["sort"].as_array().unwrap().iter().map(|s| s[0].as_str().unwrap().to_string()));
                }
                "index-pattern" => {
                    let title = o["attributes"]["timeFieldName"].as_str().unwrap().to_string();
                    let known = &fields[id.as_str()];
                    assert!(known.contains(&title), "{id}: time field {title}");
                    continue;
                }
                _ => continue,
            }
            let view = view.unwrap_or_else(|| panic!("{id} has no data view"));
            let known = &fields[view.as_str()];
            for f in used {
                assert!(known.contains(&f), "{id} reads `{f}`, which documents of {view} do not have; they have {known:?}");
                checked += 1;
            }
        }
        assert!(checked >= 12, "fields checked: {checked}");
    }

    #[test]
    fn the_dashboard_shows_every_visualization_and_the_alerts_search() {
        let objs = objects();
        let dash = objs.iter().find(|o| o["type"] == "dashboard").unwrap();
        let shown: BTreeSet<&str> = dash["references"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        for o in objs.iter().filter(|o| o["type"] == "visualization" || o["type"] == "search") {
            assert!(shown.contains(o["id"].as_str().unwrap()), "dashboard lacks {}", o["id"]);
        }
        let aggs_of = |id: &str| -> Vec<String> {
            let o = objs.iter().find(|o| o["id"] == id).unwrap();
            parse_json_attr(o, "/visState")["aggs"].as_array().unwrap().iter().map(|a| format!("{}:{}", a["type"].as_str().unwrap(), a["params"]["field"].as_str().unwrap_or(""))).collect()
        };
        assert_eq!(aggs_of("rampart-alerts-by-rule"), ["count:", "date_histogram:@timestamp", "terms:rule.title"]);
        assert_eq!(aggs_of("rampart-alerts-by-severity"), ["count:", "date_histogram:@timestamp", "terms:severity"]);
        assert_eq!(aggs_of("rampart-top-event-sources"), ["count:", "terms:details.sourceipaddress"]);
        assert_eq!(aggs_of("rampart-top-alert-sources"), ["count:", "terms:group.details.sourceipaddress"]);
    }

    #[test]
    fn import_url_adds_space_and_overwrite_and_rejects_bad_input() {
        assert_eq!(import_url("http://kb:5601", None, true).unwrap().as_str(), "http://kb:5601/api/saved_objects/_import?overwrite=true");
        assert_eq!(import_url("https://kb.example/kibana/", Some("soc-2"), false).unwrap().as_str(), "https://kb.example/kibana/s/soc-2/api/saved_objects/_import");
        assert!(import_url("kb:5601", None, true).unwrap_err().contains("scheme"));
        assert!(import_url("not a url", None, true).unwrap_err().contains("not a URL"));
        assert!(import_url("http://kb:5601", Some("My Space"), true).unwrap_err().contains("space id"));
        assert!(import_url("http://kb:5601/?x=1", None, true).unwrap_err().contains("without"));
    }

    #[test]
    fn render_reports_each_object_and_fails_on_any_error() {
        let ok: ImportAnswer = serde_json::from_value(json!({
            "success": true, "successCount": 2,
            "successResults": [{"type": "index-pattern", "id": "rampart-events", "meta": {"title": "events-*"}}, {"type": "dashboard", "id": "rampart-overview", "destinationId": "abc", "meta": {"title": "Rampart: overview"}}]
        }))
        .unwrap();
        let (text, done) = render(&ok, 2, true);
        assert!(done, "{text}");
        assert!(text.contains("ok      index-pattern  rampart-events") && text.contains("events-*"), "{text}");
        assert!(text.contains("stored as id abc") && text.contains("successCount: 2 of 2 objects, 0 errors"), "{text}");
        // Fewer objects than sent is not success even when Kibana says so.
        assert!(!render(&ok, 3, true).1);

        let bad: ImportAnswer = serde_json::from_value(json!({
            "success": false, "successCount": 0,
            "errors": [
                {"type": "visualization", "id": "rampart-alerts-by-rule", "title": "Rampart: alerts over time by rule", "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": "rampart-alerts"}]}},
                {"type": "dashboard", "id": "rampart-overview", "meta": {"title": "Rampart: overview"}, "error": {"type": "conflict"}},
                {"type": "search", "id": "rampart-alerts-table", "error": {"type": "unknown", "message": "mapper_parsing_exception", "statusCode": 400}}
            ],
            "warnings": [{"type": "simple", "message": "legacy visualizations"}]
        }))
        .unwrap();
        let (text, done) = render(&bad, 3, false);
        assert!(!done);
        assert!(text.contains("FAILED  visualization  rampart-alerts-by-rule") && text.contains("missing_references") && text.contains("index-pattern rampart-alerts"), "{text}");
        assert!(text.contains("\"Rampart: overview\": conflict") && text.contains("--overwrite true"), "{text}");
        assert!(text.contains("unknown: mapper_parsing_exception (status 400)"), "{text}");
        assert!(text.contains("warning legacy visualizations") && text.contains("successCount: 0 of 3 objects, 3 errors"), "{text}");
    }

    #[test]
    fn excerpt_is_one_bounded_line() {
        assert_eq!(excerpt("  {\"a\":\n 1}  "), "{\"a\": 1}");
        assert_eq!(excerpt(""), "(empty body)");
        let long = "é".repeat(2 * EXCERPT_CHARS);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
    }
}
