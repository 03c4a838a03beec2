//! The parser and the framer on literal input, and the input over real UDP and TCP sockets.

use super::*;
use crate::source::shutdown_pair;
use crate::{InputConfig, ShutdownTrigger};
use rampart_core::time::{parse_timestamp, NaiveZone};
use rampart_core::{Counter, Metrics, NormalizerConfig};
use serde_json::json;
use tokio::io::AsyncWriteExt;

const SENDER: &str = "192.0.2.7";

fn at(text: &str) -> EventTime {
    parse_timestamp(text, NaiveZone::default(), EventTime(0)).unwrap()
}

fn zone(text: &str) -> NaiveZone {
    NaiveZone(text.parse().unwrap())
}

/// A frame through the parser and the normalizer, as the input makes it.
fn event_in(frame: &[u8], zone: NaiveZone, received: EventTime) -> Event {
    let (value, _) = to_value(frame, SENDER, "udp", zone, received).unwrap();
    Normalizer::new(NormalizerConfig { naive_zone: zone, ..Default::default() }).normalize_at(value, EventId(1), received).unwrap()
}

fn event(line: &str) -> Event {
    event_in(line.as_bytes(), NaiveZone::default(), at("2026-11-27T19:00:00Z"))
}

fn time_of(line: &str, zone: NaiveZone, received: &str) -> String {
    event_in(line.as_bytes(), zone, at(received)).doc["utctimestamp"].as_str().unwrap().to_string()
}

#[test]
fn rfc3164_sshd_line() {
    let e = event("<38>Nov 27 18:59:09 web1 sshd[811]: Failed password for root from 10.0.0.9 port 2222 ssh2");
    let d = &e.doc;
    assert_eq!(d["utctimestamp"], "2026-11-27T18:59:09.000+00:00");
    assert_eq!(d["summary"], "Failed password for root from 10.0.0.9 port 2222 ssh2");
    assert_eq!((&d["hostname"], &d["processname"], &d["processid"]), (&json!("web1"), &json!("sshd"), &json!(811)));
    assert_eq!((&d["severity"], &d["category"], &d["tags"]), (&json!("INFO"), &json!("syslog"), &json!([])));
    assert_eq!(d["details"], json!({"syslog": {"format": "rfc3164", "facility": "auth", "severity": "info", "pri": 38, "sender": SENDER, "transport": "udp"}}));
}

#[test]
fn rfc3164_without_pri_host_or_tag() {
    let e = event("Nov  7 08:01:02 gw kernel: [12.345] eth0: link up");
    assert_eq!((&e.doc["hostname"], &e.doc["processname"], &e.doc["summary"]), (&json!("gw"), &json!("kernel"), &json!("[12.345] eth0: link up")));
    assert_eq!(e.doc["utctimestamp"], "2026-11-07T08:01:02.000+00:00");
    assert_eq!(e.doc["severity"], "INFO", "no PRI: the normalizer's default");
    assert!(e.doc["details"]["syslog"].get("pri").is_none());

    let e = event("<13>Nov  7 08:01:02 su: 'su root' failed for bob on /dev/pts/0");
    assert_eq!((&e.doc["hostname"], &e.doc["processname"], &e.doc["severity"]), (&json!(""), &json!("su"), &json!("NOTICE")));
    assert_eq!(e.doc["summary"], "'su root' failed for bob on /dev/pts/0");

    let e = event("<13>Nov 27 18:59:09 web1 last message repeated 3 times");
    assert_eq!((&e.doc["hostname"], &e.doc["processname"], &e.doc["summary"]), (&json!("web1"), &json!(""), &json!("last message repeated 3 times")));
    let e = event("<13>Nov 27 18:59:09 web1 10.0.0.1:22 refused");
    assert_eq!((&e.doc["processname"], &e.doc["summary"]), (&json!(""), &json!("10.0.0.1:22 refused")));

    let e = event("<13>Nov 27 2025 18:59:09.250 web1 app: with a year");
    assert_eq!(e.doc["utctimestamp"], "2025-11-27T18:59:09.250+00:00");
}

#[test]
fn year_less_stamps_take_the_year_closest_to_now_and_the_configured_zone() {
    let utc = NaiveZone::default();
    assert_eq!(time_of("<13>Dec 31 23:00:00 h a: x", utc, "2027-01-01T00:30:00Z"), "2026-12-31T23:00:00.000+00:00");
    assert_eq!(time_of("<13>Jan  1 00:01:00 h a: x", utc, "2026-12-31T23:59:00Z"), "2027-01-01T00:01:00.000+00:00", "a sender clock a little ahead");
    assert_eq!(time_of("<13>Jun 14 10:00:00 h a: x", utc, "2026-06-15T00:00:00Z"), "2026-06-14T10:00:00.000+00:00");
    assert_eq!(time_of("<13>Nov 27 20:59:09 h a: x", zone("+02:00"), "2026-11-27T19:00:00Z"), "2026-11-27T18:59:09.000+00:00");
    // 1 January 00:30 in +02:00 is still 31 December in UTC: the year comes from the
    // zone's calendar.
    assert_eq!(time_of("<13>Jan  1 00:10:00 h a: x", zone("+02:00"), "2026-12-31T22:30:00Z"), "2026-12-31T22:10:00.000+00:00");
    // No year near now has 29 February: the stamp is kept as text and the event tagged.
    let e = event_in(b"<13>Feb 29 12:00:00 h a: x", utc, at("2026-03-01T00:00:00Z"));
    assert_eq!(e.doc["tags"], json!(["timestamp-unparsed"]));
    assert_eq!(e.doc["details"]["utctimestamp"], "Feb 29 12:00:00");
    assert_eq!(e.doc["summary"], "x");
}

#[test]
fn rfc5424_with_structured_data_escapes_and_bom() {
    let line = format!(
        "{}{}",
        r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][meta note="say \"hi\" to C:\\temp \] ok" ip="10.0.0.1" ip="10.0.0.2" odd="a\b"] "#,
        "\u{feff}An application event log entry..."
    );
    let e = event(&line);
    let d = &e.doc;
    assert_eq!(d["utctimestamp"], "2003-10-11T22:14:15.003+00:00");
    assert_eq!((&d["hostname"], &d["processname"]), (&json!("mymachine.example.com"), &json!("evntslog")));
    assert!(d.get("processid").is_none(), "NILVALUE PROCID");
    assert_eq!((&d["severity"], &d["summary"]), (&json!("NOTICE"), &json!("An application event log entry...")));
    assert_eq!(
        d["details"]["syslog"],
        json!({
            "format": "rfc5424", "facility": "local4", "severity": "notice", "pri": 165, "msgid": "ID47",
            "structured_data": {
                "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
                "meta": {"note": r#"say "hi" to C:\temp ] ok"#, "ip": ["10.0.0.1", "10.0.0.2"], "odd": r"a\b"}
            },
            "sender": SENDER, "transport": "udp"
        })
    );
}

#[test]
fn rfc5424_nilvalues_and_offsets() {
    let e = event("<34>1 2026-11-27T19:59:09+01:00 - su - - - 'su root' failed for lonvick on /dev/pts/8");
    let d = &e.doc;
    assert_eq!(d["utctimestamp"], "2026-11-27T18:59:09.000+00:00");
    assert_eq!((&d["hostname"], &d["processname"], &d["severity"]), (&json!(""), &json!("su"), &json!("CRITICAL")));
    assert_eq!(d["summary"], "'su root' failed for lonvick on /dev/pts/8");
    assert!(d["details"]["syslog"].get("msgid").is_none() && d["details"]["syslog"].get("structured_data").is_none());

    let e = event("<14>1 - - - - - -");
    assert_eq!((&e.doc["summary"], &e.doc["tags"]), (&json!(""), &json!([])));
    assert_eq!(e.time, at("2026-11-27T19:00:00Z"), "no stamp: the receive time");
    // SD left out entirely (a common sender mistake) still parses.
    let e = event("<14>1 2026-11-27T18:59:09Z h app 42 - no structured data here");
    assert_eq!((&e.doc["processid"], &e.doc["summary"]), (&json!(42), &json!("no structured data here")));
}

#[test]
fn rsyslog_high_precision_iso_form() {
    let e = event("<86>2026-11-27T19:59:09.123456+01:00 web1 sudo[4242]: pam_unix(sudo:session): session opened for user root");
    let d = &e.doc;
    assert_eq!(d["utctimestamp"], "2026-11-27T18:59:09.123+00:00");
    assert_eq!((&d["hostname"], &d["processname"], &d["processid"]), (&json!("web1"), &json!("sudo"), &json!(4242)));
    assert_eq!(d["summary"], "pam_unix(sudo:session): session opened for user root");
    assert_eq!((&d["details"]["syslog"]["facility"], &d["severity"]), (&json!("authpriv"), &json!("INFO")));
    // No PRI, no zone: read in the configured zone.
    assert_eq!(time_of("2026-11-27T20:59:09 web1 cron[1]: tick", zone("+02:00"), "2026-11-27T19:00:00Z"), "2026-11-27T18:59:09.000+00:00");
}

#[test]
fn a_json_body_becomes_the_event() {
    let e = event(r#"<14>Nov 27 18:59:09 web1 app[7]: {"summary":"login ok","sourceipaddress":"10.0.0.9","details":{"user":"bob"}}"#);
    let d = &e.doc;
    assert_eq!(d["summary"], "login ok");
    assert_eq!((&d["hostname"], &d["processname"], &d["processid"], &d["category"]), (&json!("web1"), &json!("app"), &json!(7), &json!("syslog")));
    assert_eq!(d["utctimestamp"], "2026-11-27T18:59:09.000+00:00");
    assert_eq!((&d["details"]["user"], &d["details"]["sourceipaddress"]), (&json!("bob"), &json!("10.0.0.9")));
    assert_eq!(
        d["details"]["syslog"],
        json!({"format": "rfc3164", "facility": "user", "severity": "info", "pri": 14, "sender": SENDER, "transport": "udp",
               "hostname": "web1", "appname": "app", "procid": "7", "timestamp": "Nov 27 18:59:09"})
    );

    // The sender's own fields win; its details.syslog is kept and only filled in.
    let e = event(r#"<11>Nov 27 18:59:09 web1 app: {"host":"db2","level":"warning","timestamp":"2026-11-27T10:00:00Z","category":"audit","details":{"syslog":{"facility":"custom"}}}"#);
    let d = &e.doc;
    assert_eq!((&d["hostname"], &d["severity"], &d["category"]), (&json!("db2"), &json!("WARNING"), &json!("audit")));
    assert_eq!(d["utctimestamp"], "2026-11-27T10:00:00.000+00:00");
    assert_eq!((&d["details"]["syslog"]["facility"], &d["details"]["syslog"]["pri"]), (&json!("custom"), &json!(11)));

    // Not an object, or not JSON: an ordinary message.
    assert_eq!(event(r#"<14>Nov 27 18:59:09 web1 app: {not json"#).doc["summary"], "{not json");
    assert_eq!(event(r#"<14>Nov 27 18:59:09 web1 app: [1,2]"#).doc["summary"], "[1,2]");
}

#[test]
fn garbage_is_kept_whole_and_tagged() {
    let e = event_in(b"hello \xff world\r\n", NaiveZone::default(), at("2026-11-27T19:00:00Z"));
    assert_eq!(e.doc["summary"], "hello \u{fffd} world");
    assert_eq!((&e.doc["tags"], &e.doc["category"]), (&json!(["syslog_unparsed"]), &json!("syslog")));
    assert_eq!(e.doc["details"], json!({"syslog": {"sender": SENDER, "transport": "udp"}}));
    assert_eq!(e.time, at("2026-11-27T19:00:00Z"));
    for line in ["<999>oops", "<13>just text", "<x>y", r#"<165>1 2003-10-11T22:14:15Z host app - - [broken sd"#, r#"{"summary":"raw json is not syslog"}"#] {
        let e = event(line);
        assert_eq!((&e.doc["summary"], &e.doc["tags"]), (&json!(line), &json!(["syslog_unparsed"])), "{line}");
    }
    assert!(to_value(b"\r\n", SENDER, "udp", NaiveZone::default(), EventTime(0)).is_none(), "a blank frame is no event");
    assert!(to_value(b"", SENDER, "udp", NaiveZone::default(), EventTime(0)).is_none());
}

/// Every frame of `input`, pushed in pieces of `step` bytes; errors as `Err`.
fn frames(max: usize, input: &[u8], step: usize) -> Vec<Result<String, String>> {
    let mut f = Framer::new(max);
    let mut out = Vec::new();
    let mut take = |f: &mut Framer, item: Framed| match item {
        Framed::Frame(r) => out.push(Ok(String::from_utf8_lossy(f.bytes(r)).into_owned())),
        Framed::TooLong { .. } => out.push(Err("too long".to_string())),
        other => out.push(Err(format!("{other:?}"))),
    };
    for piece in input.chunks(step) {
        f.push(piece);
        while let Some(item) = f.next_frame() {
            take(&mut f, item);
        }
    }
    if let Some(item) = f.finish() {
        take(&mut f, item);
    }
    out
}

fn octets(msg: &str) -> String {
    format!("{} {msg}", msg.len())
}

#[test]
fn framing_mixes_octet_counting_and_delimiters_at_any_split() {
    let input = [
        octets("<13>one"),
        "<13>two\r\n".into(),
        "<13>three\0".into(),
        octets("<13>four"),
        "\n".into(), // some senders end octet-counted frames with a newline too
        octets(&"x".repeat(20)),
        "<13>five\n".into(),
        format!("{}\n", "y".repeat(30)),
        "12345\n".into(),
        "<13>six\n\n\n".into(),
        "<13>seven".into(),
    ]
    .concat();
    let want: Vec<Result<String, String>> =
        vec![Ok("<13>one".into()), Ok("<13>two".into()), Ok("<13>three".into()), Ok("<13>four".into()), Err("too long".into()), Ok("<13>five".into()), Err("too long".into()), Ok("12345".into()), Ok("<13>six".into()), Ok("<13>seven".into())];
    for step in [1, 2, 3, 7, 16, input.len()] {
        assert_eq!(frames(16, input.as_bytes(), step), want, "pieces of {step} bytes");
    }
    assert_eq!(frames(16, b"10 <13>ab", 4), [Err("Truncated { want: 10, got: 6 }".to_string())]);
}

fn ctx(cap: usize) -> (SourceContext, flume::Receiver<Vec<Event>>, Arc<Metrics>, ShutdownTrigger) {
    let (tx, rx) = flume::bounded(cap);
    let (t, s) = shutdown_pair();
    let m = Arc::new(Metrics::new());
    (SourceContext { out: tx, metrics: m.clone(), normalizer: Normalizer::default(), shutdown: s }, rx, m, t)
}

struct Running {
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    task: tokio::task::JoinHandle<SyslogStats>,
    rx: flume::Receiver<Vec<Event>>,
    metrics: Arc<Metrics>,
    trigger: ShutdownTrigger,
}

async fn start(cfg: SyslogConfig, cap: usize) -> Running {
    let (c, rx, metrics, trigger) = ctx(cap);
    let server = SyslogServer::bind(&cfg).await.unwrap();
    let (udp, tcp) = (server.udp_addr(), server.tcp_addr());
    let task = tokio::spawn(async move { server.run(&cfg, c).await });
    Running { udp, tcp, task, rx, metrics, trigger }
}

impl Running {
    async fn stop(self) -> (SyslogStats, flume::Receiver<Vec<Event>>, Arc<Metrics>) {
        self.trigger.trigger();
        let stats = tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("the input stops on shutdown").unwrap();
        (stats, self.rx, self.metrics)
    }
}

async fn recv(rx: &flume::Receiver<Vec<Event>>, n: usize) -> Vec<Event> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv_async()).await {
            Ok(Ok(batch)) => got.extend(batch),
            _ => panic!("received {} of {n} events", got.len()),
        }
    }
    got
}

fn summaries(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.doc["summary"].as_str().unwrap().to_string()).collect()
}

fn bsd(msg: &str) -> String {
    format!("<13>Nov 27 18:59:09 web1 app: {msg}")
}

#[tokio::test]
async fn udp_end_to_end() {
    let r = start(SyslogConfig::new(Some("127.0.0.1:0"), None), 16).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = r.udp.unwrap();
    client.send_to(b"<38>Nov 27 18:59:09 web1 sshd[811]: Failed password for root", to).await.unwrap();
    client.send_to(b"<165>1 2003-10-11T22:14:15.003Z host app - - - five424\n", to).await.unwrap();
    client.send_to(b"", to).await.unwrap();
    client.send_to(b"garbage \xff", to).await.unwrap();
    let events = recv(&r.rx, 3).await;
    assert_eq!(summaries(&events), ["Failed password for root", "five424", "garbage \u{fffd}"]);
    assert!(events.iter().all(|e| e.doc["details"]["syslog"]["sender"] == "127.0.0.1" && e.doc["details"]["syslog"]["transport"] == "udp"));
    assert_eq!(events[2].doc["tags"], json!(["syslog_unparsed"]));
    assert!(events[0].id != events[1].id && events[1].id != events[2].id);
    let (stats, _rx, m) = r.stop().await;
    assert_eq!((stats.accepted, stats.unparsed, stats.invalid), (3, 1, 0));
    assert_eq!(m.get(Counter::EventsAccepted), 3);
}

#[tokio::test]
async fn tcp_mixes_framings_in_one_connection_and_skips_long_frames() {
    let mut cfg = SyslogConfig::new(None, Some("127.0.0.1:0"));
    cfg.max_message = 64;
    let r = start(cfg, 16).await;
    let mut s = TcpStream::connect(r.tcp.unwrap()).await.unwrap();
    let stream = [
        octets(&bsd("one")),
        format!("{}\r\n", bsd("two")),
        octets(&bsd(&"x".repeat(60))),
        format!("{}\n", bsd("three")),
        format!("{}\n", "y".repeat(100)),
        format!("{}\0", bsd("four")),
        bsd("five"), // the last line needs no newline
    ]
    .concat();
    for piece in stream.as_bytes().chunks(10) {
        s.write_all(piece).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let events = recv(&r.rx, 5).await;
    assert_eq!(summaries(&events), ["one", "two", "three", "four", "five"]);
    assert!(events.iter().all(|e| e.doc["details"]["syslog"]["transport"] == "tcp" && e.doc["hostname"] == "web1"));
    let (stats, _rx, m) = r.stop().await;
    assert_eq!((stats.accepted, stats.invalid), (5, 2));
    assert_eq!(m.get(Counter::EventsInvalid), 2);
    assert!(stats.errors[0].contains("a frame of 90 bytes is longer than max_message (64 bytes); skipped"), "{:?}", stats.errors);
    assert!(stats.errors[1].contains("longer than max_message (64 bytes)"), "{:?}", stats.errors);
}

#[tokio::test]
async fn udp_keeps_reading_and_counts_drops_while_the_pipeline_is_full() {
    // Nobody reads the pipeline (one batch deep): UDP cannot wait, so it drops.
    let r = start(SyslogConfig::new(Some("127.0.0.1:0"), None), 1).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = r.udp.unwrap();
    let mut sent = 0u64;
    while r.metrics.get(Counter::EventsDropped) == 0 {
        assert!(sent < 50_000, "nothing was dropped after {sent} datagrams");
        client.send_to(bsd(&format!("n{sent}")).as_bytes(), to).await.unwrap();
        sent += 1;
        if sent.is_multiple_of(20) {
            tokio::task::yield_now().await;
        }
    }
    // Still reading: a message sent after the drops arrives once the pipeline drains.
    client.send_to(bsd("after").as_bytes(), to).await.unwrap();
    let mut received = 0u64;
    let mut after = false;
    while !after {
        let batch = tokio::time::timeout(Duration::from_secs(5), r.rx.recv_async()).await.expect("the pipeline drains").unwrap();
        received += batch.len() as u64;
        after = batch.iter().any(|e| e.doc["summary"] == "after");
    }
    let (stats, _rx, m) = r.stop().await;
    assert!(stats.dropped > 0 && stats.dropped == m.get(Counter::EventsDropped));
    assert!(received + stats.dropped <= sent + 1, "received {received}, dropped {}, sent {}", stats.dropped, sent + 1);
    assert!(stats.problems("syslog:udp").iter().any(|p| p.contains("UDP messages dropped while the pipeline was full")));
}

#[tokio::test]
async fn shutdown_delivers_what_was_read_and_stops() {
    // A pipeline one batch deep that nobody reads yet: what is read after the first
    // batch waits in the input, and must still arrive after shutdown.
    let r = start(SyslogConfig::new(Some("127.0.0.1:0"), Some("127.0.0.1:0")), 1).await;
    let mut s = TcpStream::connect(r.tcp.unwrap()).await.unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.write_all(format!("{}\n", bsd("first")).as_bytes()).await.unwrap();
    while r.rx.is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.write_all(format!("{}\n{}\n", bsd("second"), bsd("third")).as_bytes()).await.unwrap();
    client.send_to(bsd("udp one").as_bytes(), r.udp.unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Sent just before shutdown, possibly not yet read: taken from the kernel's buffers.
    client.send_to(bsd("udp two").as_bytes(), r.udp.unwrap()).await.unwrap();
    s.write_all(format!("{}\n{}", bsd("fourth"), bsd("partial")).as_bytes()).await.unwrap();
    let rx = r.rx.clone();
    let consumer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut all = Vec::new();
        while let Ok(batch) = rx.recv_async().await {
            all.extend(batch);
        }
        all
    });
    let (stats, rx, _m) = r.stop().await;
    drop(rx);
    let mut got = summaries(&consumer.await.unwrap());
    got.sort();
    assert_eq!(got, ["first", "fourth", "second", "third", "udp one", "udp two"], "an unfinished line is left out");
    assert_eq!(stats.accepted, 6);
    drop(s); // the connection stayed open: shutdown did not wait for the sender
}

#[tokio::test]
async fn connections_over_max_connections_are_closed() {
    let mut cfg = SyslogConfig::new(None, Some("127.0.0.1:0"));
    cfg.max_connections = 1;
    let r = start(cfg, 16).await;
    let addr = r.tcp.unwrap();
    let mut a = TcpStream::connect(addr).await.unwrap();
    a.write_all(format!("{}\n", bsd("a1")).as_bytes()).await.unwrap();
    recv(&r.rx, 1).await;
    let mut b = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), b.read(&mut buf)).await.expect("the second connection is closed");
    assert!(matches!(closed, Ok(0) | Err(_)));
    a.write_all(format!("{}\n", bsd("a2")).as_bytes()).await.unwrap();
    assert_eq!(summaries(&recv(&r.rx, 1).await), ["a2"]);
    drop(a);
    // The slot frees when the first connection ends.
    let mut delivered = false;
    for _ in 0..100 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        if c.write_all(format!("{}\n", bsd("c")).as_bytes()).await.is_ok() && c.shutdown().await.is_ok() {
            if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(100), r.rx.recv_async()).await {
                delivered = summaries(&batch) == ["c"];
                break;
            }
        }
    }
    assert!(delivered);
    let (stats, _rx, _m) = r.stop().await;
    assert!(stats.refused_connections >= 1);
}

#[tokio::test]
async fn a_busy_port_is_a_retryable_bind_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = SyslogServer::bind(&SyslogConfig::new(Some(&addr), None)).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&format!("udp:{addr}")), "{err}");
    assert_eq!(err.retry(), rampart_core::Retry::Later);
}

#[test]
fn config_defaults_validation_and_names() {
    let c: SyslogConfig = serde_json::from_value(json!({"udp": "127.0.0.1:5514"})).unwrap();
    assert_eq!(c, SyslogConfig::new(Some("127.0.0.1:5514"), None));
    assert_eq!((c.max_message, c.max_connections, c.origin.as_str()), (65_536, 256, "syslog"));
    assert!(c.validate().is_empty());
    assert_eq!(InputConfig::Syslog(c).describe(), "syslog:udp:127.0.0.1:5514");
    let both = InputConfig::Syslog(SyslogConfig::new(Some("127.0.0.1:5514"), Some("localhost:6514")));
    assert_eq!(both.describe(), "syslog:udp:127.0.0.1:5514,tcp:localhost:6514");
    assert!(both.validate().is_empty() && !both.is_finite());
    assert_eq!(SyslogConfig::new(None, None).validate().len(), 1);
    let bad = SyslogConfig { udp: Some("nowhere".into()), tcp: Some("h:99999".into()), max_message: 0, max_connections: 0, origin: " ".into() };
    assert_eq!(bad.validate().len(), 5, "{:?}", bad.validate());
    assert!(serde_json::from_value::<SyslogConfig>(json!({"udp": "127.0.0.1:5514", "port": 514})).is_err());
}
