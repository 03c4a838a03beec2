//! MozDef loginput's endpoints.
//!
//! `POST|PUT /events`, `/nxlog`, `/cef` (and with a trailing `/`): a JSON object, an array
//! of objects, or NDJSON; each object is normalized into MozDef's schema with a top-level
//! `endpoint` naming where it was posted, which the normalizer keeps as
//! `details.endpoint` (`events`, `nxlog`, `cef`). MozDef did the same, except that it wrote
//! `events` for `/nxlog` too (one handler served both); Rampart names the real endpoint.
//!
//! `POST|PUT /custom/<app>`: each object is stored as sent, not normalized, with exactly
//! these additions, as MozDef's loginput made them: `endpoint: "<app>"` and
//! `customendpoint: true` (replacing any the sender set), plus `utctimestamp` (the event
//! time: the first parseable time field, else the receive time) and `receivedtimestamp`
//! when the object has none ([`rampart_core::Normalizer::verbatim_at`]).
//!
//! A request is atomic on input: one record that is not a JSON object rejects the whole
//! request (400, with its line and column) and nothing of it is accepted. Once accepted it
//! is answered when the outputs have settled every event: 200 `{"accepted": n}` when all
//! are stored; 400 (`"retry": false`) when an output rejected one, whatever happened to
//! the others (a resend would be rejected again); otherwise 503 with `"retry": true` and
//! `Retry-After` when any failed or was not confirmed within `ack_timeout`.
//!
//! `GET /status`: `{"status": "ok", "service": "loginput"}`, as MozDef answered; 503 once
//! shutdown has begun.

use super::ack::Outcome;
use super::{deliver, origin, read_body, State};
use crate::events::RecordInvalid;
use crate::json::{Scan, Scanner};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use rampart_core::{Event, EventTime};
use serde_json::{json, Value};
use std::time::Instant;

/// Where a request was posted.
enum Endpoint<'a> {
    /// `/events`, `/nxlog`, `/cef`: normalized, with this `endpoint`.
    Normalized(&'static str),
    /// `/custom/<app>`: stored as sent.
    Custom(&'a str),
}

pub(super) async fn events(req: HttpRequest, body: web::Payload, state: web::Data<State>) -> HttpResponse {
    ingest(&req, body, &state, Endpoint::Normalized("events")).await
}

pub(super) async fn nxlog(req: HttpRequest, body: web::Payload, state: web::Data<State>) -> HttpResponse {
    ingest(&req, body, &state, Endpoint::Normalized("nxlog")).await
}

pub(super) async fn cef(req: HttpRequest, body: web::Payload, state: web::Data<State>) -> HttpResponse {
    ingest(&req, body, &state, Endpoint::Normalized("cef")).await
}

pub(super) async fn custom(req: HttpRequest, body: web::Payload, state: web::Data<State>, app: web::Path<String>) -> HttpResponse {
    ingest(&req, body, &state, Endpoint::Custom(&app)).await
}

pub(super) async fn status(state: web::Data<State>) -> HttpResponse {
    if state.shutdown.is_triggered() {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "shutting down", "service": "loginput"}));
    }
    HttpResponse::Ok().json(json!({"status": "ok", "service": "loginput"}))
}

fn error(status: StatusCode, msg: impl Into<String>, invalid: u64) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": msg.into(), "accepted": 0, "invalid": invalid}))
}

async fn ingest(req: &HttpRequest, body: web::Payload, state: &State, endpoint: Endpoint<'_>) -> HttpResponse {
    let started = Instant::now();
    let bytes = match read_body(req, body, state.max_body).await {
        Ok(b) => b,
        Err(e) => return error(e.status, e.message, 0),
    };
    let parsed = parse(state, &bytes, &endpoint);
    if let Some(msg) = parsed.problem {
        RecordInvalid { input: "http", message: &msg, count: parsed.invalid, loud: false }.emit(&state.metrics);
        return error(StatusCode::BAD_REQUEST, msg, parsed.invalid);
    }
    if parsed.events.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty body: send a JSON object, an array of objects, or NDJSON", 0);
    }
    let outcomes = deliver(state, parsed.events, started).await;
    answer(&outcomes, &parsed.positions)
}

/// The answer to an accepted request, from its events' outcomes.
fn answer(outcomes: &[Outcome], positions: &[(u64, u64)]) -> HttpResponse {
    let n = outcomes.len();
    let delivered = outcomes.iter().filter(|o| **o == Outcome::Delivered).count();
    if delivered == n {
        return HttpResponse::Ok().json(json!({"accepted": n}));
    }
    let at = |i: usize| positions.get(i).map(|(l, c)| format!("line {l}, column {c}")).unwrap_or_else(|| format!("record {}", i + 1));
    if let Some((i, Outcome::Rejected(why))) = outcomes.iter().enumerate().find(|(_, o)| matches!(o, Outcome::Rejected(_))) {
        let rejected = outcomes.iter().filter(|o| matches!(o, Outcome::Rejected(_))).count();
        return HttpResponse::BadRequest().json(json!({
            "error": format!("{}: an output rejected the event: {why}", at(i)),
            "accepted": n, "delivered": delivered, "rejected": rejected, "retry": false,
        }));
    }
    let failed = n - delivered;
    let (i, why) = outcomes.iter().enumerate().find(|(_, o)| o.retryable()).map(|(i, o)| (i, o.reason())).unwrap_or((0, "not stored"));
    HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "1")).json(json!({
        "error": format!("{failed} of {n} events not stored (first at {}: {why}); send the request again", at(i)),
        "accepted": n, "delivered": delivered, "retry": true,
    }))
}

/// A body read into events.
struct Parsed {
    events: Vec<Event>,
    /// Line and column of each event's record.
    positions: Vec<(u64, u64)>,
    /// The first problem, as `line L, column C: message`.
    problem: Option<String>,
    /// How many records were invalid.
    invalid: u64,
}

fn parse(state: &State, bytes: &[u8], endpoint: &Endpoint<'_>) -> Parsed {
    let received = EventTime::now();
    let mut scanner = Scanner::new(origin(state, ""), bytes.len().max(1));
    scanner.push(bytes);
    scanner.finish();
    let mut out = Parsed { events: Vec::new(), positions: Vec::new(), problem: None, invalid: 0 };
    loop {
        let (made, line, column) = match scanner.next() {
            Scan::Record { value, id, line, column } => {
                let made = match (value, endpoint) {
                    (Value::Object(mut m), Endpoint::Normalized(name)) => {
                        m.insert("endpoint".into(), Value::String((*name).into()));
                        state.normalizer.normalize_at(Value::Object(m), id, received)
                    }
                    (Value::Object(mut m), Endpoint::Custom(app)) => {
                        m.insert("endpoint".into(), Value::String((*app).into()));
                        m.insert("customendpoint".into(), Value::Bool(true));
                        state.normalizer.verbatim_at(Value::Object(m), id, received)
                    }
                    (other, Endpoint::Normalized(_)) => state.normalizer.normalize_at(other, id, received),
                    (other, Endpoint::Custom(_)) => state.normalizer.verbatim_at(other, id, received),
                };
                (made.map_err(|e| e.to_string()), line, column)
            }
            Scan::Invalid { line, column, message } => (Err(message), line, column),
            Scan::NeedMore | Scan::End => break,
        };
        match made {
            Ok(e) => {
                out.events.push(e);
                out.positions.push((line, column));
            }
            Err(message) => {
                out.invalid += 1;
                out.problem.get_or_insert_with(|| format!("line {line}, column {column}: {message}"));
            }
        }
    }
    out
}
