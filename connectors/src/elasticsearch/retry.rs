//! The retry policy: a pure function from a `_bulk` response (HTTP status and body) to what
//! happens to each document that was in the request. Nothing here does IO, so the policy is
//! tested on literal Elasticsearch and OpenSearch responses.
//!
//! | response | action |
//! |---|---|
//! | item 2xx, or 409 (`create` of an id that exists: stored by an earlier try or delivery) | [`Action::Done`] |
//! | item or request 408, 429, 5xx; a body that is not a bulk response | [`Action::Retry`] |
//! | item 400 whose error type says the document itself is bad (mapping, parsing) | [`Action::DeadLetter`] |
//! | anything else (401/403, a missing or closed index, 413) | [`Action::Fail`] |

use serde::Deserialize;
use serde_json::{Map, Value};

/// What to do with one document after a bulk attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// It is stored (or was already: 409 on `create`).
    Done,
    /// A transient failure (overload, a node restarting, no connection): send it again later.
    Retry(String),
    /// The cluster can never index this document as it is: write it to the dead-letter
    /// index with the reason and reject it.
    DeadLetter(String),
    /// Not the document's fault, and not something a retry right now fixes (credentials,
    /// privileges, a closed index): give up on it with the reason (its source may redeliver).
    Fail(String),
}

/// The outcome of one bulk request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every document was stored.
    AllDone,
    /// One action per document, in request order.
    Items(Vec<Action>),
    /// The request as a whole failed: this action applies to every document.
    Whole(Action),
}

/// Error types of a 400 item that mean the document does not fit the index (its mapping,
/// its field limits) and never will: dead-letter it. Other 400s (a bad index name, a closed
/// index) are the deployment's fault, not the document's.
const DOCUMENT_ERRORS: &[&str] = &[
    "mapper_parsing_exception",
    "document_parsing_exception",
    "strict_dynamic_mapping_exception",
    "illegal_argument_exception",
    "mapper_exception",
    "parse_exception",
    "json_parse_exception",
    "x_content_parse_exception",
    "number_format_exception",
    "date_time_parse_exception",
    "document_source_missing_exception",
];

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<Map<String, Value>>,
}

/// Classifies a `_bulk` response to a request of `sent` documents.
pub fn classify_bulk(status: u16, body: &[u8], sent: usize) -> Outcome {
    if !(200..300).contains(&status) {
        return Outcome::Whole(classify_request_status(status, body));
    }
    let response: BulkResponse = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Outcome::Whole(Action::Retry(format!("HTTP {status} with a body that is not a bulk response ({e}): {}", preview(body)))),
    };
    if !response.errors {
        return Outcome::AllDone;
    }
    if response.items.len() != sent {
        return Outcome::Whole(Action::Retry(format!("the bulk response lists {} items for {sent} documents", response.items.len())));
    }
    Outcome::Items(
        response
            .items
            .iter()
            .map(|item| {
                // One key: the operation (`create`), holding `status` and maybe `error`.
                let result = item.values().next();
                let status = result.and_then(|r| r.get("status")).and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
                match status {
                    Some(s) => classify_item(s, result.and_then(|r| r.get("error"))),
                    None => Action::Retry(format!("a bulk item without a status: {}", Value::Object(item.clone()))),
                }
            })
            .collect(),
    )
}

/// Classifies one bulk item by its status and `error` object.
pub fn classify_item(status: u16, error: Option<&Value>) -> Action {
    let reason = || error.map_or_else(|| "no error details".to_string(), error_reason);
    match status {
        200..=299 | 409 => Action::Done,
        408 | 429 | 500..=599 => Action::Retry(format!("HTTP {status}: {}", reason())),
        400 if error.and_then(error_type).is_some_and(|t| DOCUMENT_ERRORS.contains(&t)) => Action::DeadLetter(reason()),
        _ => Action::Fail(format!("HTTP {status}: {}", reason())),
    }
}

/// Classifies a non-2xx answer to a whole request (`_bulk` or any other call).
pub fn classify_request_status(status: u16, body: &[u8]) -> Action {
    let reason = body_reason(body);
    match status {
        200..=299 => Action::Done,
        408 | 429 | 500..=599 => Action::Retry(format!("HTTP {status}: {reason}")),
        401 | 403 => Action::Fail(format!("HTTP {status}: {reason}; check user and password, and that the user may create documents and indices (or manage them, for templates and aliases)")),
        413 => Action::Fail(format!("HTTP 413: {reason}; the request is larger than the cluster accepts (http.max_content_length): lower bulk_max_bytes")),
        _ => Action::Fail(format!("HTTP {status}: {reason}")),
    }
}

/// `type: reason`, with the first `caused_by` when there is one:
/// `mapper_parsing_exception: failed to parse field [x] … (caused by illegal_argument_exception: …)`.
pub fn error_reason(error: &Value) -> String {
    let one = |e: &Value| match (error_type(e), e.get("reason").and_then(Value::as_str)) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        (Some(t), None) => t.to_string(),
        (None, Some(r)) => r.to_string(),
        (None, None) => e.to_string(),
    };
    match error.get("caused_by") {
        Some(cause) if cause.is_object() => format!("{} (caused by {})", one(error), one(cause)),
        _ => one(error),
    }
}

fn error_type(error: &Value) -> Option<&str> {
    error.get("type").and_then(Value::as_str)
}

/// The reason in an error body (`{"error": {…}, "status": n}`), or a preview of the text.
pub fn body_reason(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("error") {
            Some(e @ Value::Object(_)) => error_reason(e),
            Some(Value::String(s)) => s.clone(),
            _ => preview(body),
        },
        Err(_) => preview(body),
    }
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Verbatim shapes of OpenSearch 2.19 and Elasticsearch 8 bulk answers (ids shortened).
    const OS_MIXED: &str = r#"{"took":30,"errors":true,"items":[
        {"create":{"_index":"events-20260301","_id":"a1","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
        {"create":{"_index":"events-20260301","_id":"a2","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[a2]: version conflict, document already exists (current version [1])","index":"events-20260301","shard":"0","index_uuid":"Xq1"}}},
        {"create":{"_index":"events-20260301","_id":"a3","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [details.n] of type [long] in document with id 'a3'. Preview of field's value: '{a=1}'","caused_by":{"type":"illegal_argument_exception","reason":"Cannot parse object as number"}}}},
        {"create":{"_index":"events-20260301","_id":"a4","status":429,"error":{"type":"rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]"}}},
        {"create":{"_index":"events-20260301","_id":"a5","status":503,"error":{"type":"unavailable_shards_exception","reason":"[events-20260301][0] primary shard is not active Timeout: [1m]"}}},
        {"create":{"_index":"events-20260301","_id":"a6","status":404,"error":{"type":"index_not_found_exception","reason":"no such index [events-20260301] and [action.auto_create_index] ([false]) doesn't match","index":"events-20260301"}}}
    ]}"#;

    const ES8_DOC_PARSING: &str = r#"{"errors":true,"took":3,"items":[
        {"create":{"_index":"alerts-202603","_id":"b1","status":400,"error":{"type":"document_parsing_exception","reason":"[1:42] failed to parse field [value] of type [long] in document with id 'b1'. Preview of field's value: 'many'","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"many\""}}}},
        {"create":{"_index":"alerts-202603","_id":"b2","status":400,"error":{"type":"strict_dynamic_mapping_exception","reason":"[1:9] mapping set to strict, dynamic introduction of [zz] within [_doc] is not allowed"}}},
        {"create":{"_index":"alerts-202603","_id":"b3","status":400,"error":{"type":"illegal_argument_exception","reason":"Limit of total fields [1000] has been exceeded while adding new fields [3]"}}},
        {"create":{"_index":"alerts-202603","_id":"b4","status":400,"error":{"type":"index_closed_exception","reason":"closed","index":"alerts-202603"}}},
        {"create":{"_index":"alerts-202603","_id":"b5","status":201,"result":"created"}}
    ]}"#;

    #[test]
    fn per_item_actions_on_a_literal_opensearch_response() {
        let Outcome::Items(actions) = classify_bulk(200, OS_MIXED.as_bytes(), 6) else { panic!("expected items") };
        assert_eq!(actions[0], Action::Done);
        assert_eq!(actions[1], Action::Done, "409 on create: already stored by an earlier delivery");
        assert_eq!(
            actions[2],
            Action::DeadLetter("mapper_parsing_exception: failed to parse field [details.n] of type [long] in document with id 'a3'. Preview of field's value: '{a=1}' (caused by illegal_argument_exception: Cannot parse object as number)".into())
        );
        assert!(matches!(&actions[3], Action::Retry(r) if r.starts_with("HTTP 429: rejected_execution_exception: ")));
        assert!(matches!(&actions[4], Action::Retry(r) if r.contains("primary shard is not active")));
        assert!(matches!(&actions[5], Action::Fail(r) if r.starts_with("HTTP 404: index_not_found_exception")));
    }

    #[test]
    fn elasticsearch_8_document_errors_dead_letter_and_deployment_errors_fail() {
        let Outcome::Items(a) = classify_bulk(200, ES8_DOC_PARSING.as_bytes(), 5) else { panic!("expected items") };
        assert!(matches!(&a[0], Action::DeadLetter(r) if r.starts_with("document_parsing_exception: [1:42]") && r.contains("For input string")));
        assert!(matches!(&a[1], Action::DeadLetter(r) if r.starts_with("strict_dynamic_mapping_exception")));
        assert!(matches!(&a[2], Action::DeadLetter(r) if r.contains("Limit of total fields")));
        assert_eq!(a[3], Action::Fail("HTTP 400: index_closed_exception: closed".into()));
        assert_eq!(a[4], Action::Done);
    }

    #[test]
    fn a_clean_response_is_done_without_looking_at_items() {
        let body = br#"{"took":5,"errors":false,"items":[{"create":{"_index":"e","_id":"1","status":201}}]}"#;
        assert_eq!(classify_bulk(200, body, 1), Outcome::AllDone);
        // filter_path=errors,items.*.status,items.*.error trims a clean answer to this:
        assert_eq!(classify_bulk(200, br#"{"errors":false}"#, 1000), Outcome::AllDone);
    }

    #[test]
    fn whole_request_failures() {
        let es429 = br#"{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}],"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"},"status":429}"#;
        assert!(matches!(classify_bulk(429, es429, 3), Outcome::Whole(Action::Retry(r)) if r == "HTTP 429: es_rejected_execution_exception: rejected execution of coordinating operation"));
        let os503 = br#"{"error":{"root_cause":[{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"}],"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"},"status":503}"#;
        assert!(matches!(classify_bulk(503, os503, 3), Outcome::Whole(Action::Retry(r)) if r.contains("state not recovered")));
        assert!(matches!(classify_bulk(502, b"<html>Bad Gateway</html>", 3), Outcome::Whole(Action::Retry(r)) if r == "HTTP 502: <html>Bad Gateway</html>"));
        let unauthorized = br#"{"error":{"root_cause":[{"type":"security_exception","reason":"missing authentication credentials for REST request [/_bulk]"}],"type":"security_exception","reason":"missing authentication credentials for REST request [/_bulk]"},"status":401}"#;
        assert!(matches!(classify_bulk(401, unauthorized, 3), Outcome::Whole(Action::Fail(r)) if r.contains("missing authentication credentials") && r.contains("check user and password")));
        assert!(matches!(classify_bulk(413, b"", 3), Outcome::Whole(Action::Fail(r)) if r.contains("bulk_max_bytes") && r.contains("(empty body)")));
        let bad = br#"{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"Malformed action/metadata line [1]"}],"type":"illegal_argument_exception","reason":"Malformed action/metadata line [1]"},"status":400}"#;
        assert!(matches!(classify_bulk(400, bad, 3), Outcome::Whole(Action::Fail(r)) if r.contains("Malformed action")), "a bad request as a whole is our bug, not the documents'");
    }

    #[test]
    fn answers_that_do_not_add_up_are_retried() {
        assert!(matches!(classify_bulk(200, b"not json", 1), Outcome::Whole(Action::Retry(r)) if r.contains("not a bulk response")));
        let short = br#"{"errors":true,"items":[{"create":{"status":201}}]}"#;
        assert!(matches!(classify_bulk(200, short, 2), Outcome::Whole(Action::Retry(r)) if r.contains("1 items for 2")));
        let no_status = br#"{"errors":true,"items":[{"create":{"_id":"x"}}]}"#;
        assert!(matches!(classify_bulk(200, no_status, 1), Outcome::Items(a) if matches!(&a[0], Action::Retry(_))));
    }

    #[test]
    fn item_statuses_without_error_bodies() {
        assert_eq!(classify_item(201, None), Action::Done);
        assert_eq!(classify_item(200, None), Action::Done);
        assert_eq!(classify_item(500, None), Action::Retry("HTTP 500: no error details".into()));
        assert_eq!(classify_item(400, None), Action::Fail("HTTP 400: no error details".into()));
        let long = "x".repeat(1000);
        assert_eq!(body_reason(long.as_bytes()).chars().count(), 301);
    }
}
