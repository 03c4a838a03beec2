//! Config defaults and validation, message parsing and routing keys, on literal input; the
//! tests against a real broker are in `tests/tests/services_amqp.rs`.

use super::*;
use rampart_core::{Event, EventId, Normalizer};
use serde_json::json;

fn parse(body: &[u8], id: Option<&str>) -> Result<Vec<Event>, String> {
    parse_message(body, id, "amqp:eventtask", 1024, &Normalizer::default())
}

#[test]
fn defaults_are_mozdefs_topology_and_validation_reports_every_problem() {
    let c = AmqpConfig::default();
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    assert_eq!((c.exchange.as_str(), c.queue.as_str(), c.routing_key.as_str()), ("eventtask", "eventtask", "eventtask"));
    assert_eq!(c.exchange_type, ExchangeType::Direct);
    assert_eq!(c.describe(), "amqp:eventtask");
    let bad = AmqpConfig {
        url: Secret::new("http://x"),
        queue: String::new(),
        prefetch: 0,
        max_message: 0,
        reconnect_min: Duration::from_secs(5),
        reconnect_max: Duration::from_secs(1),
        dead_letter_exchange: "eventtask".into(),
        ..Default::default()
    };
    let p = bad.validate();
    assert_eq!(p.len(), 6, "{p:?}");
    assert!(p[0].starts_with("url: `http://x` is not an AMQP URL"), "{p:?}");
    assert!(p.iter().any(|m| m.starts_with("queue: must not be empty")));
    assert!(p.iter().any(|m| m.contains("dead letters would come back")));
    let tls = AmqpConfig { url: Secret::new("amqps://u:secret@host/%2f"), ..Default::default() }.validate();
    assert!(tls[0].contains("amqps") && !tls[0].contains("secret"), "{tls:?}");

    let o = AmqpOutputConfig::default();
    assert!(o.validate().is_empty(), "{:?}", o.validate());
    assert_eq!((o.exchange.as_str(), o.routing_key.as_str(), o.exchange_type), ("alerts", "mozdef.alert", ExchangeType::Topic));
    let bad = AmqpOutputConfig { routing_key: "alert.{severity".into(), alerts: true, events: false, confirm_timeout: Duration::ZERO, ..Default::default() };
    let p = bad.validate();
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("unmatched brace"), "{p:?}");
}

#[test]
fn ids_come_from_the_message_id_or_the_body_never_from_the_delivery() {
    let body = br#"{"summary":"login failed","hostname":"web1"}"#;
    let a = parse(body, None).unwrap();
    let b = parse(body, None).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].id, b[0].id, "a redelivered body keeps its id");
    assert_eq!(a[0].id, EventId::derive("amqp:eventtask", 0, body));
    assert_eq!(a[0].doc["summary"], "login failed");
    assert_eq!(a[0].doc["hostname"], "web1");

    let m1 = parse(body, Some("m-1")).unwrap();
    let m1_other_body = parse(br#"{"summary":"changed"}"#, Some("m-1")).unwrap();
    assert_eq!(m1[0].id, m1_other_body[0].id, "the publisher's message_id decides");
    assert_ne!(m1[0].id, a[0].id);
    assert_ne!(m1[0].id, parse(body, Some("m-2")).unwrap()[0].id);

    // An array (or NDJSON) holds several events with distinct ids.
    let many = parse(br#"[{"summary":"a"},{"summary":"b"}]"#, None).unwrap();
    assert_eq!(many.len(), 2);
    assert_ne!(many[0].id, many[1].id);
    let nd = parse(b"{\"summary\":\"a\"}\n{\"summary\":\"b\"}\n", Some("x")).unwrap();
    assert_eq!(nd.len(), 2);
    assert_ne!(nd[0].id, nd[1].id);
}

#[test]
fn unreadable_messages_are_rejected_whole_with_a_reason() {
    let too_big = vec![b' '; 2000];
    assert!(parse(&too_big, None).unwrap_err().contains("larger than max_message (1024 bytes)"));
    assert!(parse(b"{\"a\":\"\xff\"}", None).unwrap_err().starts_with("not UTF-8 text (invalid byte at offset 6)"));
    assert_eq!(parse(b"{\"a\": ?}", None).unwrap_err(), "not JSON: line 1, column 7: expected value");
    assert!(parse(b"[{\"a\":1}, 3]", None).unwrap_err().contains("must be a JSON object, found a number"));
    assert!(parse(b"\"just text\"", None).unwrap_err().contains("found a string"));
    assert!(parse(b"  \n", None).unwrap_err().starts_with("no event"));
    assert!(parse(b"[]", None).unwrap_err().starts_with("no event"));
    // One bad line in NDJSON rejects the whole message (it is atomic).
    assert!(parse(b"{\"a\":1}\n{bad}\n", None).is_err());
}

#[test]
fn routing_keys_render_from_the_document() {
    let doc = json!({"severity": "WARNING", "rule": {"id": "ssh-bf", "level": null}, "value": 10});
    assert_eq!(render_key("mozdef.alert", &doc), "mozdef.alert");
    assert_eq!(render_key("alert.{severity}.{rule.id}", &doc), "alert.WARNING.ssh-bf");
    assert_eq!(render_key("{rule.level}.{missing}.{value}", &doc), "..10");
    assert_eq!(render_key("{{literal}}", &doc), "{literal}");
    assert_eq!(binding_key("mozdef.alert"), "mozdef.alert");
    assert_eq!(binding_key("alert.{severity}"), "#");
    let mut p = Vec::new();
    check_template(&mut p, "k", "a.{b}.{{c}}");
    assert!(p.is_empty(), "{p:?}");
    check_template(&mut p, "k", "a.}b");
    assert_eq!(p.len(), 1);
}

#[test]
fn refusals_only_the_user_can_fix_are_not_retried() {
    use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPSoftError};
    let refused: lapin::Error = lapin::ErrorKind::ProtocolError(AMQPError::new(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED), "ACCESS_REFUSED".into())).into();
    let e = peer_error("amqp:q", "amqp://guest:***@h/%2f", "cannot connect", &refused);
    assert_eq!((e.domain(), e.retry()), (Domain::User, Retry::Never));
    assert!(e.to_string().contains("password"), "{e}");
    let reset: lapin::Error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
    let e = peer_error("amqp:q", "amqp://guest:***@h/%2f", "cannot connect", &reset);
    assert_eq!((e.domain(), e.retry()), (Domain::External, Retry::Later));
    assert!(e.to_string().starts_with("amqp input: amqp://guest:***@h/%2f: amqp:q: cannot connect"), "{e}");
}
