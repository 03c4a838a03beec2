//! Elasticsearch's bulk and single-document APIs, as shippers use them.
//!
//! `POST|PUT /_bulk` and `/<index>/_bulk` (`?filter_path=`, `?pipeline=`, `?refresh=` and
//! other parameters are ignored) take:
//!
//! - Elasticsearch bulk NDJSON: an action line (`{"index": {...}}` or `{"create": {...}}`)
//!   followed by its source line. `delete` (no source line) and `update` (its source line is
//!   skipped) are answered with a per-item 400 "not supported": Rampart stores events, it
//!   does not change them.
//! - A JSON array, whose elements are read as the lines would be.
//! - Bare documents: an object at an action position that is not an action (exactly one
//!   key, `index`/`create`/`delete`/`update`, holding an object) is a document with an
//!   implied `index` action, as MozDef's loginput read `/_bulk`.
//!
//! Each document is normalized like a `/events` record, with the index it was sent to —
//! the action's `_index`, else the path's `<index>` — kept as `details.bulkindex` (absent
//! when neither names one; the answer then says `events`). With an `_id`, the event id is
//! derived from the index and the `_id` alone, so a shipper's retry of the same document
//! gets the same event id (and overwrites, not duplicates, in an id-keyed store); without
//! one it is derived from the request and the record's position.
//!
//! The answer is Elasticsearch's: `200 {"took", "errors", "items"}`, one item per action in
//! order: `201 created` once every output stored the event, `400 mapper_parsing_exception`
//! for a source line that is not a JSON object (the others are still taken: partial success
//! is what shippers expect from `_bulk`, unlike `/events`), `429
//! es_rejected_execution_exception` when an output failed or did not confirm within
//! `ack_timeout` (Beats, Logstash, Vector and rsyslog retry 429 items), `400
//! illegal_argument_exception` when an output rejected it. A malformed action line, or
//! something other than an object where an action belongs, refuses the whole request with
//! 400 and its line and column, as Elasticsearch does; nothing of it is taken.
//!
//! `POST /<index>/_doc`, `POST|PUT /<index>/_doc/<id>`, `POST|PUT /<index>/_create/<id>`:
//! one document, answered like one bulk item (`201 {"_index", "_id", "result": "created",
//! …}` or an Elasticsearch error with the item's status).

use super::ack::Outcome;
use super::es::{body_error, es_error};
use super::{deliver, origin, read_body, State};
use crate::events::RecordInvalid;
use crate::json::{Scan, Scanner};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use rampart_core::{EventId, EventTime};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The index named in answers when neither the action nor the path names one.
const DEFAULT_INDEX: &str = "events";

/// A bulk operation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Index,
    Create,
    Delete,
    Update,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Index => "index",
            Op::Create => "create",
            Op::Delete => "delete",
            Op::Update => "update",
        }
    }

    fn from_name(name: &str) -> Option<Op> {
        match name {
            "index" => Some(Op::Index),
            "create" => Some(Op::Create),
            "delete" => Some(Op::Delete),
            "update" => Some(Op::Update),
            _ => None,
        }
    }
}

/// Why one item was not stored: its status and Elasticsearch's error type and reason.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ItemError {
    pub(crate) status: u16,
    pub(crate) kind: &'static str,
    pub(crate) reason: String,
}

impl ItemError {
    fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> ItemError {
        ItemError { status, kind, reason: reason.into() }
    }
}

/// One action of a bulk request, with its source document.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) op: Op,
    /// The index named by the action or the path.
    pub(crate) index: Option<String>,
    /// The action's `_id`.
    pub(crate) id: Option<String>,
    /// The source and the id derived from its position, or why there is none to store.
    pub(crate) source: Result<(Value, EventId), ItemError>,
}

/// Reads a bulk body into items; `Err` (the whole request is refused) names the line and
/// column of a malformed action line.
pub(crate) fn parse(bytes: &[u8], origin: String, path_index: Option<&str>) -> Result<Vec<Item>, String> {
    let mut scanner = Scanner::new(origin, bytes.len().max(1));
    scanner.push(bytes);
    scanner.finish();
    let mut items = Vec::new();
    // The action waiting for its source line, and where it was.
    let mut pending: Option<(Item, u64)> = None;
    loop {
        let scan = scanner.next();
        if matches!(scan, Scan::NeedMore | Scan::End) {
            break;
        }
        if let Some((mut item, _)) = pending.take() {
            item.source = match (item.op, scan) {
                (Op::Update, _) => Err(ItemError::new(400, "illegal_argument_exception", "update is not supported: Rampart stores events, it does not change them")),
                (_, Scan::Record { value, id, .. }) => Ok((value, id)),
                (_, Scan::Invalid { line, column, message }) => Err(ItemError::new(400, "mapper_parsing_exception", format!("failed to parse: line {line}, column {column}: {message}"))),
                (_, Scan::NeedMore | Scan::End) => continue,
            };
            items.push(item);
            continue;
        }
        match scan {
            Scan::Record { value, id, line, column } => match action(&value, path_index) {
                Some(Ok(item)) if item.op == Op::Delete => items.push(Item { source: Err(ItemError::new(400, "illegal_argument_exception", "delete is not supported: Rampart stores events, it does not remove them")), ..item }),
                Some(Ok(item)) => pending = Some((item, line)),
                Some(Err(why)) => return Err(format!("line {line}, column {column}: malformed action line: {why}")),
                None if value.is_object() => items.push(Item { op: Op::Index, index: path_index.map(str::to_string), id: None, source: Ok((value, id)) }),
                None => return Err(format!("line {line}, column {column}: expected an action line such as {{\"index\":{{}}}} or a document object, found {}", rampart_core::normalize::json_type(&value))),
            },
            Scan::Invalid { line, column, message } => return Err(format!("line {line}, column {column}: malformed action line: {message}")),
            Scan::NeedMore | Scan::End => break,
        }
    }
    if let Some((mut item, line)) = pending {
        item.source = Err(ItemError::new(400, "illegal_argument_exception", format!("the {} action on line {line} has no source line", item.op.name())));
        items.push(item);
    }
    Ok(items)
}

/// The action a value is, if it is one (`None`: a bare document).
fn action(v: &Value, path_index: Option<&str>) -> Option<Result<Item, String>> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (name, meta) = obj.iter().next()?;
    let op = Op::from_name(name)?;
    let meta = meta.as_object()?;
    Some(action_meta(op, meta, path_index))
}

fn action_meta(op: Op, meta: &Map<String, Value>, path_index: Option<&str>) -> Result<Item, String> {
    let index = match meta.get("_index") {
        None | Some(Value::Null) => path_index.map(str::to_string),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(other) => return Err(format!("`_index` must be a non-empty string, found {other}")),
    };
    let id = match meta.get("_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => return Err(format!("`_id` must be a non-empty string, found {other}")),
    };
    Ok(Item { op, index, id, source: Err(ItemError::new(400, "illegal_argument_exception", "no source line")) })
}

/// The id of an event from a bulk action with `_id`: the index and the `_id` alone, so a
/// retry of the same document gets the same id.
pub(crate) fn id_for(index: &str, id: &str) -> EventId {
    EventId::derive(&format!("http/_bulk/{index}"), 0, id.as_bytes())
}

/// What became of one item.
#[derive(Debug)]
pub(crate) struct Answer {
    op: Op,
    index: String,
    id: Option<String>,
    result: Result<(), ItemError>,
}

/// Normalizes the items' documents, delivers them, and answers each item in order.
async fn process(state: &State, items: Vec<Item>, started: Instant) -> Vec<Answer> {
    let received = EventTime::now();
    let mut answers = Vec::with_capacity(items.len());
    let mut events = Vec::new();
    // For each event, the answer it settles.
    let mut owners = Vec::new();
    for item in items {
        let index = item.index.clone().unwrap_or_else(|| DEFAULT_INDEX.to_string());
        let made = item.source.and_then(|(value, position_id)| {
            let event_id = item.id.as_deref().map(|id| id_for(&index, id)).unwrap_or(position_id);
            let value = match (value, &item.index) {
                (Value::Object(mut m), Some(named)) => {
                    m.insert("bulkindex".into(), Value::String(named.clone()));
                    Value::Object(m)
                }
                (v, _) => v,
            };
            state.normalizer.normalize_at(value, event_id, received).map_err(|e| ItemError::new(400, "mapper_parsing_exception", format!("failed to parse: {e}")))
        });
        let (id, result) = match made {
            Ok(event) => {
                let id = item.id.clone().unwrap_or_else(|| event.id.to_string());
                owners.push(answers.len());
                events.push(event);
                (Some(id), Ok(()))
            }
            Err(e) => (item.id.clone(), Err(e)),
        };
        answers.push(Answer { op: item.op, index, id, result });
    }
    let invalid = answers.iter().filter(|a| a.result.is_err()).count() as u64;
    if invalid > 0 {
        RecordInvalid { input: "http", message: "bulk items refused", count: invalid, loud: false }.emit(&state.metrics);
    }
    if events.is_empty() {
        return answers;
    }
    for (outcome, owner) in deliver(state, events, started).await.into_iter().zip(owners) {
        let result = match outcome {
            Outcome::Delivered => Ok(()),
            Outcome::Errored(why) | Outcome::Unconfirmed(why) => Err(ItemError::new(429, "es_rejected_execution_exception", format!("rampart could not store the event yet ({why}); retry"))),
            Outcome::Rejected(why) => Err(ItemError::new(400, "illegal_argument_exception", format!("an output rejected the event: {why}"))),
        };
        if let Some(a) = answers.get_mut(owner) {
            a.result = result;
        }
    }
    answers
}

/// Elasticsearch's answer for one item (the inside of `{"<op>": …}`).
fn item_body(state: &State, a: &Answer) -> Value {
    let mut m = Map::new();
    m.insert("_index".into(), Value::String(a.index.clone()));
    if let Some(id) = &a.id {
        m.insert("_id".into(), Value::String(id.clone()));
    }
    match &a.result {
        Ok(()) => {
            m.insert("_version".into(), json!(1));
            m.insert("result".into(), json!("created"));
            m.insert("_shards".into(), json!({"total": 1, "successful": 1, "failed": 0}));
            m.insert("_seq_no".into(), json!(state.seq.fetch_add(1, Ordering::Relaxed)));
            m.insert("_primary_term".into(), json!(1));
            m.insert("status".into(), json!(201));
        }
        Err(e) => {
            m.insert("status".into(), json!(e.status));
            m.insert("error".into(), json!({"type": e.kind, "reason": e.reason, "index": a.index}));
        }
    }
    Value::Object(m)
}

pub(super) async fn bulk(req: HttpRequest, body: web::Payload, state: web::Data<State>) -> HttpResponse {
    bulk_request(&req, body, &state, None).await
}

pub(super) async fn bulk_index(req: HttpRequest, body: web::Payload, state: web::Data<State>, index: web::Path<String>) -> HttpResponse {
    bulk_request(&req, body, &state, Some(&index)).await
}

async fn bulk_request(req: &HttpRequest, body: web::Payload, state: &State, path_index: Option<&str>) -> HttpResponse {
    let started = Instant::now();
    let bytes = match read_body(req, body, state.max_body).await {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let items = match parse(&bytes, origin(state, "/_bulk"), path_index) {
        Ok(items) if items.is_empty() => return es_error(StatusCode::BAD_REQUEST, "action_request_validation_exception", "Validation Failed: 1: no requests added: send action and source lines (NDJSON) or a JSON array"),
        Ok(items) => items,
        Err(why) => {
            RecordInvalid { input: "http", message: &why, count: 1, loud: false }.emit(&state.metrics);
            return es_error(StatusCode::BAD_REQUEST, "illegal_argument_exception", why);
        }
    };
    let answers = process(state, items, started).await;
    let errors = answers.iter().any(|a| a.result.is_err());
    let items: Vec<Value> = answers.iter().map(|a| json!({ a.op.name(): item_body(state, a) })).collect();
    HttpResponse::Ok().json(json!({"took": started.elapsed().as_millis() as u64, "errors": errors, "items": items}))
}

pub(super) async fn doc_auto_id(req: HttpRequest, body: web::Payload, state: web::Data<State>, index: web::Path<String>) -> HttpResponse {
    single(&req, body, &state, Op::Index, index.into_inner(), None).await
}

pub(super) async fn doc_index(req: HttpRequest, body: web::Payload, state: web::Data<State>, path: web::Path<(String, String)>) -> HttpResponse {
    let (index, id) = path.into_inner();
    single(&req, body, &state, Op::Index, index, Some(id)).await
}

pub(super) async fn doc_create(req: HttpRequest, body: web::Payload, state: web::Data<State>, path: web::Path<(String, String)>) -> HttpResponse {
    let (index, id) = path.into_inner();
    single(&req, body, &state, Op::Create, index, Some(id)).await
}

/// One document through the bulk machinery, answered as Elasticsearch's document APIs do.
async fn single(req: &HttpRequest, body: web::Payload, state: &State, op: Op, index: String, id: Option<String>) -> HttpResponse {
    let started = Instant::now();
    let bytes = match read_body(req, body, state.max_body).await {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let source = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => Ok((v, EventId::derive(&origin(state, "/_doc"), 0, &bytes))),
        Err(e) => Err(ItemError::new(400, "mapper_parsing_exception", format!("failed to parse: line {}, column {}: {}", e.line(), e.column(), crate::json::strip_position(&e.to_string())))),
    };
    let answers = process(state, vec![Item { op, index: Some(index), id, source }], started).await;
    let Some(a) = answers.first() else {
        return es_error(StatusCode::INTERNAL_SERVER_ERROR, "exception", "no answer for the document");
    };
    match &a.result {
        Ok(()) => {
            let mut body = item_body(state, a);
            if let Some(m) = body.as_object_mut() {
                m.remove("status");
            }
            HttpResponse::Created().json(body)
        }
        Err(e) => es_error(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.kind, e.reason.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(body: &str, path: Option<&str>) -> Vec<Item> {
        parse(body.as_bytes(), "t".into(), path).unwrap()
    }

    fn summary(it: &Item) -> (Op, Option<&str>, Option<&str>, Result<Value, u16>) {
        (it.op, it.index.as_deref(), it.id.as_deref(), it.source.as_ref().map(|(v, _)| v.clone()).map_err(|e| e.status))
    }

    #[test]
    fn actions_and_sources_pair_up_in_order() {
        let body = "{\"index\":{\"_index\":\"syslog\",\"_id\":\"a1\"}}\n{\"msg\":\"one\"}\n{\"create\":{\"_id\":7}}\n{\"msg\":\"two\"}\n{\"delete\":{\"_index\":\"x\",\"_id\":\"9\"}}\n{\"update\":{\"_id\":\"3\"}}\n{\"doc\":{\"msg\":\"u\"}}\n{\"index\":{}}\n{\"msg\": broken}\n{\"index\":{}}\n{\"msg\":\"three\"}\n";
        let got = items(body, Some("path-idx"));
        let s: Vec<_> = got.iter().map(summary).collect();
        assert_eq!(s[0], (Op::Index, Some("syslog"), Some("a1"), Ok(json!({"msg": "one"}))));
        assert_eq!(s[1], (Op::Create, Some("path-idx"), Some("7"), Ok(json!({"msg": "two"}))), "the path names the index; a numeric _id is text");
        assert_eq!(s[2], (Op::Delete, Some("x"), Some("9"), Err(400)));
        assert_eq!(s[3], (Op::Update, Some("path-idx"), Some("3"), Err(400)), "the update's body line is skipped, not read as an action");
        assert_eq!(s[4].3, Err(400));
        assert_eq!(got[4].source.as_ref().unwrap_err().kind, "mapper_parsing_exception");
        assert!(got[4].source.as_ref().unwrap_err().reason.contains("line 9, column 9"), "{:?}", got[4].source);
        assert_eq!(s[5], (Op::Index, Some("path-idx"), None, Ok(json!({"msg": "three"}))), "the bad source line costs only its item");
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn arrays_and_bare_documents_are_read_like_lines() {
        let got = items("[{\"index\":{\"_index\":\"a\"}},{\"m\":1},{\"m\":2}]", None);
        let s: Vec<_> = got.iter().map(summary).collect();
        assert_eq!(s, [(Op::Index, Some("a"), None, Ok(json!({"m": 1}))), (Op::Index, None, None, Ok(json!({"m": 2})))]);
        // MozDef's style: documents without action lines.
        let got = items("{\"m\":1}\n{\"m\":2,\"index\":\"not an action\"}\n", None);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|i| i.op == Op::Index && i.source.is_ok()));
    }

    #[test]
    fn malformed_action_lines_refuse_the_request_with_their_position() {
        let e = parse(b"{\"index\":{}}\n{\"m\":1}\n{\"index\":{\"_index\":5}}\n{\"m\":2}\n", "t".into(), None).unwrap_err();
        assert_eq!(e, "line 3, column 1: malformed action line: `_index` must be a non-empty string, found 5");
        let e = parse(b"{\"index\":{}\n{\"m\":1}\n", "t".into(), None).unwrap_err();
        assert!(e.starts_with("line 2, column 1: malformed action line:"), "{e}");
        let e = parse(b"{\"index\":{}}\n{\"m\":1}\n42\n", "t".into(), None).unwrap_err();
        assert_eq!(e, "line 3, column 1: expected an action line such as {\"index\":{}} or a document object, found a number");
    }

    #[test]
    fn a_trailing_action_without_source_is_an_item_error() {
        let got = items("{\"create\":{\"_id\":\"z\"}}\n", None);
        assert_eq!(got.len(), 1);
        let e = got[0].source.as_ref().unwrap_err();
        assert_eq!((e.status, e.reason.as_str()), (400, "the create action on line 1 has no source line"));
        assert!(items("\n\n", None).is_empty());
    }

    #[test]
    fn bulk_ids_depend_on_index_and_id_only() {
        assert_eq!(id_for("syslog", "a1"), id_for("syslog", "a1"));
        assert_ne!(id_for("syslog", "a1"), id_for("other", "a1"));
        assert_ne!(id_for("syslog", "a1"), id_for("syslog", "a2"));
    }
}
