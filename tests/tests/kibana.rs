//! `rampart kibana import` and `rampart kibana export` through the built binary.
//!
//! Neither Kibana nor OpenSearch Dashboards can run on this machine: Debian packages
//! neither, Maven Central has neither, npm has no `opensearch-dashboards` and its `kibana`
//! package is the 5.1 source, which predates the saved objects `_import` API and needs
//! Elasticsearch 5. So these tests talk to a STAND-IN: a small HTTP listener on 127.0.0.1
//! (std `TcpListener`) that records the request and answers the way Kibana's
//! `POST /api/saved_objects/_import` does (a success result, a result with per-object
//! errors, a 401). It checks what Rampart sends and how it reads the answers; it does not
//! prove that a real Kibana accepts the objects (the unit tests in `src/kibana.rs` check the
//! objects themselves, and docs/kibana.md says which versions they are written for).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_tests::{rampart_bin, workspace_root};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

fn rampart() -> Command {
    let bin = rampart_bin();
    assert!(bin.exists(), "{} not built: run `cargo build` first (scripts/test.sh does)", bin.display());
    let mut c = Command::new(bin);
    c.current_dir(workspace_root()).env("RAMPART_LOG", "warn").env_remove("RAMPART_KIBANA_USER").env_remove("RAMPART_KIBANA_PASSWORD");
    c
}

/// One HTTP request as the stand-in received it.
#[derive(Debug)]
struct Recorded {
    method: String,
    target: String,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Serves exactly one request on a fresh port with `status` and a JSON `body`, and hands
/// back what it received. The accept waits at most 30 s so a broken client fails the test
/// instead of hanging it.
fn stand_in(status: &'static str, body: String) -> (String, JoinHandle<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("stand-in Kibana got no request: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap().to_string(), parts.next().unwrap().to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut req_body = Vec::new();
        if let Some(len) = get("content-length") {
            req_body.resize(len.parse().unwrap(), 0);
            reader.read_exact(&mut req_body).unwrap();
        } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                req_body.extend_from_slice(&chunk[..n]);
            }
        }
        let mut stream = stream;
        write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        stream.flush().unwrap();
        Recorded { method, target, headers, body: req_body }
    });
    (format!("http://{addr}"), handle)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn shipped() -> String {
    std::fs::read_to_string(workspace_root().join("kibana/rampart.ndjson")).unwrap()
}

fn ids_and_types() -> Vec<(String, String)> {
    shipped()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["type"].as_str().unwrap().to_string(), v["id"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn export_prints_the_shipped_ndjson() {
    let out = rampart().args(["kibana", "export"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), shipped(), "export prints kibana/rampart.ndjson byte for byte");
}

/// Asserts the request is Kibana's import call: the path, the xsrf headers and one multipart
/// field `file` holding exactly the shipped NDJSON.
fn assert_import_request(req: &Recorded, target: &str) {
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, target);
    assert_eq!(req.header("kbn-xsrf"), Some("true"), "{:?}", req.headers);
    assert_eq!(req.header("osd-xsrf"), Some("true"), "{:?}", req.headers);
    let ctype = req.header("content-type").unwrap();
    let boundary = ctype.strip_prefix("multipart/form-data; boundary=").unwrap_or_else(|| panic!("content-type {ctype}"));
    let body = text(&req.body);
    let parts: Vec<&str> = body.split(&format!("--{boundary}")).collect();
    // preamble (empty), one part, the closing `--\r\n`.
    assert_eq!(parts.len(), 3, "one part: {body}");
    assert_eq!(parts[0], "");
    assert_eq!(parts[2].trim_end(), "--");
    let (head, content) = parts[1].split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Content-Disposition: form-data; name=\"file\"; filename=\"rampart.ndjson\""), "{head}");
    assert_eq!(content.strip_suffix("\r\n").unwrap(), shipped(), "the part holds exactly kibana/rampart.ndjson");
}

#[test]
fn import_posts_the_objects_and_reports_each_one() {
    let objs = ids_and_types();
    let results: Vec<String> = objs.iter().map(|(t, id)| format!("{{\"type\":\"{t}\",\"id\":\"{id}\",\"meta\":{{\"title\":\"T {id}\",\"icon\":\"x\"}}}}")).collect();
    let answer = format!("{{\"success\":true,\"successCount\":{},\"successResults\":[{}],\"warnings\":[]}}", objs.len(), results.join(","));
    let (url, server) = stand_in("200 OK", answer);
    // Credentials from the environment, space in the path.
    let out = rampart()
        .args(["kibana", "import", "--url", &format!("{url}/"), "--space", "secops"])
        .env("RAMPART_KIBANA_USER", "elastic")
        .env("RAMPART_KIBANA_PASSWORD", "s3cret")
        .output()
        .unwrap();
    let req = server.join().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    assert_import_request(&req, "/s/secops/api/saved_objects/_import?overwrite=true");
    // base64("elastic:s3cret")
    assert_eq!(req.header("authorization"), Some("Basic ZWxhc3RpYzpzM2NyZXQ="));
    for (t, id) in &objs {
        assert!(stdout.lines().any(|l| l.contains("ok") && l.contains(t.as_str()) && l.contains(id.as_str())), "{t} {id} reported: {stdout}");
    }
    assert!(stdout.contains(&format!("successCount: {n} of {n} objects, 0 errors", n = objs.len())), "{stdout}");
    assert!(!stdout.contains("s3cret") && !text(&out.stderr).contains("s3cret"));
}

#[test]
fn import_fails_on_a_per_object_error_and_names_the_object() {
    let n = ids_and_types().len();
    let answer = format!(
        "{{\"success\":false,\"successCount\":{},\"successResults\":[],\"errors\":[\
         {{\"id\":\"rampart-alerts-by-rule\",\"type\":\"visualization\",\"meta\":{{\"title\":\"Rampart: alerts over time by rule\"}},\"error\":{{\"type\":\"missing_references\",\"references\":[{{\"type\":\"index-pattern\",\"id\":\"rampart-alerts\"}}]}}}},\
         {{\"id\":\"rampart-overview\",\"type\":\"dashboard\",\"title\":\"Rampart: overview\",\"error\":{{\"type\":\"unknown\",\"message\":\"Saved object [dashboard/rampart-overview] is invalid\",\"statusCode\":400}}}}]}}",
        n - 2
    );
    let (url, server) = stand_in("200 OK", answer);
    let out = rampart().args(["kibana", "import", "--url", &url, "--overwrite", "false", "--user", "u", "--password", "p"]).output().unwrap();
    let req = server.join().unwrap();
    assert_import_request(&req, "/api/saved_objects/_import");
    assert_eq!(req.header("authorization"), Some("Basic dTpw"));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("FAILED") && stdout.contains("rampart-alerts-by-rule") && stdout.contains("missing_references") && stdout.contains("index-pattern rampart-alerts"), "{stdout}");
    assert!(stdout.contains("rampart-overview") && stdout.contains("Saved object [dashboard/rampart-overview] is invalid (status 400)"), "{stdout}");
    assert!(stdout.contains(&format!("successCount: {} of {n} objects, 2 errors", n - 2)), "{stdout}");
    assert!(stderr.contains(&url) && stderr.contains(&format!("imported {} of {n}", n - 2)), "{stderr}");
}

#[test]
fn import_fails_on_http_401_with_address_status_and_body() {
    let (url, server) = stand_in("401 Unauthorized", r#"{"statusCode":401,"error":"Unauthorized","message":"[security_exception] unable to authenticate user [elastic]"}"#.to_string());
    let out = rampart().args(["kibana", "import", "--url", &url]).output().unwrap();
    let req = server.join().unwrap();
    assert_import_request(&req, "/api/saved_objects/_import?overwrite=true");
    assert_eq!(req.header("authorization"), None, "no credentials given, none sent");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("{url}/api/saved_objects/_import")), "names the address: {stderr}");
    assert!(stderr.contains("401"), "names the status: {stderr}");
    assert!(stderr.contains("unable to authenticate user [elastic]"), "quotes the body: {stderr}");
    assert!(stderr.contains("RAMPART_KIBANA_USER"), "says what to do: {stderr}");
}

#[test]
fn import_fails_clearly_when_nothing_listens_or_input_is_wrong() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = rampart().args(["kibana", "import", "--url", &url]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach Kibana") && stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    let out = rampart().args(["kibana", "import", "--url", &format!("http://elastic:hunter2@127.0.0.1:{port}")]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("http://elastic:***@127.0.0.1:{port}/")) && !stderr.contains("hunter2"), "a password in --url is never printed: {stderr}");

    let out = rampart().args(["kibana", "import", "--url", &url, "--space", "My Space"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--space `My Space`"), "{}", text(&out.stderr));
    let out = rampart().args(["kibana", "import", "--url", &url, "--user", "u"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--user needs --password"), "{}", text(&out.stderr));
}
