//! What shippers ask an Elasticsearch node before (and while) they send, answered with
//! minimal valid bodies. Nothing is stored: templates, policies and pipelines a shipper
//! installs are acknowledged and ignored (Rampart normalizes events itself).
//!
//! Who calls what (from their sources and docs):
//!
//! - rsyslog `omelasticsearch` (Debian's 8.2302): `GET /_cat/health` before each bulk
//!   request (its connection check), then `POST /_bulk`. Newer versions read `GET /` for
//!   the major version.
//! - syslog-ng `elasticsearch-http`: only `POST /_bulk` (the configured URL).
//! - Vector's `elasticsearch` sink: health check `GET /_cluster/health` (200 is healthy);
//!   `api_version: auto` reads `version.number` from `GET /`; then `POST /_bulk`.
//! - Filebeat 8.x: `GET /` (refuses a version older than its own unless
//!   `allow_older_versions`), `GET /_license` (must be active), `GET /_xpack` (ILM
//!   available), `GET|HEAD /_ilm/policy/<name>` then `PUT` when missing, `GET|HEAD
//!   /_index_template/<name>` then `PUT` when missing, then `POST /_bulk?filter_path=…`.
//! - Elasticsearch clients: the `X-Elastic-Product: Elasticsearch` header (set on every
//!   response by the server), `HEAD /` as a ping.
//!
//! Answered: `GET|HEAD /`, `GET /_cluster/health[/<index>]`, `GET /_cat/health`
//! (`?format=json`, `?h=`), `GET /_license`, `GET /_xpack`, `GET /_nodes[/…]`, and for
//! `/_index_template/<n>`, `/_template/<n>`, `/_component_template/<n>`, `/_ilm/policy/<n>`,
//! `/_ingest/pipeline/<n>`: `GET`/`HEAD` → 404 (so a shipper installs it), `PUT`/`POST` →
//! `{"acknowledged": true}`.

use super::{read_body, BodyError, State};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use rampart_core::EventId;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The node Rampart claims to be.
pub(crate) struct Identity {
    version: String,
    major: u64,
    cluster_uuid: String,
    node_id: String,
}

/// `major.minor.patch` (a `-suffix` such as `-SNAPSHOT` is allowed).
pub(crate) fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split('-').next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let t = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(t)
}

impl Identity {
    /// The identity for `es_version`, with ids stable for a given bind address.
    pub(crate) fn new(version: &str, bind: &str) -> Identity {
        let major = parse_version(version).map(|v| v.0).unwrap_or(8);
        Identity {
            version: version.to_string(),
            major,
            cluster_uuid: EventId::derive("rampart-cluster", 0, bind.as_bytes()).to_string(),
            node_id: EventId::derive("rampart-node", 0, bind.as_bytes()).to_string(),
        }
    }

    /// Lucene and compatibility versions of a real release of that major.
    fn lineage(&self) -> (&'static str, &'static str, &'static str) {
        match self.major {
            0..=7 => ("8.11.3", "6.8.0", "6.0.0-beta1"),
            8 => ("9.12.2", "7.17.0", "7.0.0"),
            _ => ("10.2.2", "8.18.0", "8.0.0"),
        }
    }

    fn license_uid(&self) -> String {
        let h = &self.cluster_uuid;
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

const NAME: &str = "rampart";
const BUILD_HASH: &str = concat!("rampart-", env!("CARGO_PKG_VERSION"));
const BUILD_DATE: &str = "2025-07-01T00:00:00.000000000Z";

/// An Elasticsearch-shaped error.
pub(crate) fn es_error(status: StatusCode, kind: &str, reason: impl Into<String>) -> HttpResponse {
    let reason = reason.into();
    HttpResponse::build(status).json(json!({
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status.as_u16(),
    }))
}

/// A body that could not be read, as Elasticsearch would say it.
pub(crate) fn body_error(e: BodyError) -> HttpResponse {
    let kind = match e.status {
        StatusCode::PAYLOAD_TOO_LARGE => "content_too_long_exception",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "media_type_header_exception",
        _ => "parse_exception",
    };
    es_error(e.status, kind, e.message)
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string()).map(|q| q.into_inner()).unwrap_or_default()
}

pub(super) async fn root(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if req.method() == Method::HEAD {
        return HttpResponse::Ok().content_type("application/json").finish();
    }
    let id = &state.es;
    let (lucene, wire, index) = id.lineage();
    HttpResponse::Ok().json(json!({
        "name": NAME,
        "cluster_name": NAME,
        "cluster_uuid": id.cluster_uuid,
        "version": {
            "number": id.version,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": BUILD_HASH,
            "build_date": BUILD_DATE,
            "build_snapshot": false,
            "lucene_version": lucene,
            "minimum_wire_compatibility_version": wire,
            "minimum_index_compatibility_version": index,
        },
        "tagline": "You Know, for Search",
    }))
}

pub(super) async fn cluster_health() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "cluster_name": NAME, "status": "green", "timed_out": false,
        "number_of_nodes": 1, "number_of_data_nodes": 1,
        "active_primary_shards": 0, "active_shards": 0, "relocating_shards": 0, "initializing_shards": 0,
        "unassigned_shards": 0, "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0,
    }))
}

pub(super) async fn cat_health(req: HttpRequest) -> HttpResponse {
    let now = chrono::Utc::now();
    let row: Vec<(&str, String)> = vec![
        ("epoch", now.timestamp().to_string()),
        ("timestamp", now.format("%H:%M:%S").to_string()),
        ("cluster", NAME.to_string()),
        ("status", "green".to_string()),
        ("node.total", "1".to_string()),
        ("node.data", "1".to_string()),
        ("shards", "0".to_string()),
        ("pri", "0".to_string()),
        ("relo", "0".to_string()),
        ("init", "0".to_string()),
        ("unassign", "0".to_string()),
        ("pending_tasks", "0".to_string()),
        ("max_task_wait_time", "-".to_string()),
        ("active_shards_percent", "100.0%".to_string()),
    ];
    let q = query(&req);
    let wanted: Vec<(&str, String)> = match q.get("h") {
        Some(h) => h.split(',').filter_map(|c| row.iter().find(|(k, _)| *k == c.trim()).cloned()).collect(),
        None => row,
    };
    if q.get("format").map(String::as_str) == Some("json") {
        let obj: serde_json::Map<String, Value> = wanted.into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
        return HttpResponse::Ok().json(json!([obj]));
    }
    let mut text = String::new();
    if q.contains_key("v") {
        text.push_str(&wanted.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" "));
        text.push('\n');
    }
    text.push_str(&wanted.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" "));
    text.push('\n');
    HttpResponse::Ok().content_type("text/plain; charset=UTF-8").body(text)
}

pub(super) async fn license(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"license": {
        "status": "active",
        "uid": state.es.license_uid(),
        "type": "basic",
        "issue_date": "2025-07-01T00:00:00.000Z",
        "issue_date_in_millis": 1_751_328_000_000u64,
        "max_nodes": 1000,
        "max_resource_units": null,
        "issued_to": NAME,
        "issuer": "elasticsearch",
        "start_date_in_millis": -1,
    }}))
}

pub(super) async fn xpack(state: web::Data<State>) -> HttpResponse {
    let on = json!({"available": true, "enabled": true});
    let off = json!({"available": false, "enabled": false});
    HttpResponse::Ok().json(json!({
        "build": {"hash": BUILD_HASH, "date": BUILD_DATE},
        "license": {"uid": state.es.license_uid(), "type": "basic", "mode": "basic", "status": "active"},
        "features": {
            "ilm": on, "data_streams": on, "slm": on, "monitoring": on,
            "security": {"available": true, "enabled": false},
            "ml": off, "watcher": off, "graph": off, "transform": off,
        },
        "tagline": "You know, for X",
    }))
}

pub(super) async fn nodes(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let addr = req.app_config().local_addr().to_string();
    let id = &state.es;
    HttpResponse::Ok().json(json!({
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": NAME,
        "nodes": { id.node_id.clone(): {
            "name": NAME,
            "transport_address": addr,
            "host": req.app_config().local_addr().ip().to_string(),
            "ip": req.app_config().local_addr().ip().to_string(),
            "version": id.version,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": BUILD_HASH,
            "roles": ["data", "ingest", "master"],
            "http": {"bound_address": [addr], "publish_address": addr, "max_content_length_in_bytes": 0},
        }},
    }))
}

/// Templates, ILM policies and ingest pipelines: reported missing, acknowledged when sent.
pub(super) async fn setup_object(req: HttpRequest, body: web::Payload, state: web::Data<State>, name: web::Path<String>) -> HttpResponse {
    let what = req.path().trim_start_matches('/').split('/').next().unwrap_or("").trim_start_matches('_').replace('_', " ");
    let what = if req.path().starts_with("/_ilm/") { "ILM policy".to_string() } else { what };
    match *req.method() {
        Method::PUT | Method::POST => match read_body(&req, body, state.max_body).await {
            Ok(_) => {
                tracing::debug!(path = req.path(), "acknowledged and ignored a shipper's setup request");
                HttpResponse::Ok().json(json!({"acknowledged": true}))
            }
            Err(e) => body_error(e),
        },
        Method::HEAD => HttpResponse::NotFound().content_type("application/json").finish(),
        _ => es_error(StatusCode::NOT_FOUND, "resource_not_found_exception", format!("{what} [{name}] not found (Rampart keeps none; a PUT is acknowledged and ignored)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(parse_version("8.19.0"), Some((8, 19, 0)));
        assert_eq!(parse_version("9.1.0-SNAPSHOT"), Some((9, 1, 0)));
        assert_eq!(parse_version("8.19"), None);
        assert_eq!(parse_version("8.x.0"), None);
        assert_eq!(parse_version("8.1.0.1"), None);
    }

    #[test]
    fn identity_is_stable_per_bind_and_follows_the_major() {
        let a = Identity::new("8.19.0", "127.0.0.1:9200");
        assert_eq!(a.cluster_uuid, Identity::new("8.19.0", "127.0.0.1:9200").cluster_uuid);
        assert_ne!(a.cluster_uuid, Identity::new("8.19.0", "127.0.0.1:9201").cluster_uuid);
        assert_eq!(a.lineage().0, "9.12.2");
        assert_eq!(Identity::new("7.17.0", "x").lineage().1, "6.8.0");
        assert_eq!(a.license_uid().len(), 36);
    }
}
