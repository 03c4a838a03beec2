//! Real log shippers pointed at Rampart's HTTP input as if it were Elasticsearch.
//!
//! rsyslog with Debian's `omelasticsearch` (package `rsyslog-elasticsearch`) forwards
//! syslog lines it receives over TCP to the built `rampart` binary's `/_bulk`; the events
//! must land, normalized, in Rampart's events file and, searchable, in OpenSearch
//! (`RAMPART_TEST_ES_URL`). rsyslogd runs as a child with its own
//! config, work directory and ports; it is not the system's syslog daemon. When rsyslogd or
//! its module is missing the test fails naming `scripts/services/rsyslog.sh install`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_tests::services::{self, free_port};
use rampart_tests::{rampart_bin, wait_for, workspace_root};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "run `bash scripts/services/rsyslog.sh install` (Debian's rsyslog and rsyslog-elasticsearch)";

/// A child process killed when the test ends, however it ends.
struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    /// What it logged, for failure messages.
    fn log(&self) -> String {
        format!("[{} log {}]\n{}", self.name, self.log.display(), std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Starts `rampart run` with an HTTP input on a free port and the given `outputs:` YAML;
/// returns it and the port once it listens.
fn start_rampart(dir: &Path, outputs: &str) -> (Running, u16) {
    let bin = rampart_bin();
    assert!(bin.exists(), "{} not built: run `cargo build` first (scripts/test.sh does)", bin.display());
    let port = free_port();
    let cfg = dir.join("rampart.yml");
    std::fs::write(&cfg, format!("inputs:\n  - type: http\n    bind: \"127.0.0.1:{port}\"\n    ack_timeout: 20s\noutputs:\n{outputs}")).unwrap();
    let log = dir.join("rampart.log");
    let child = Command::new(bin)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .current_dir(workspace_root())
        .env("RAMPART_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let r = Running { name: "rampart", child, log };
    assert!(wait_for(Duration::from_secs(20), || listening(port)), "rampart did not listen on 127.0.0.1:{port}: {}", r.log());
    (r, port)
}

fn rsyslogd() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("rsyslogd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("rsyslogd is not installed: {INSTALL_HINT}"))
}

/// Starts rsyslogd receiving syslog over TCP on a free port and forwarding everything to
/// `rampart_port`'s `/_bulk` with omelasticsearch (bulk mode, index `index`), one JSON
/// document per message. Returns it and its TCP port once it listens.
fn start_rsyslog(dir: &Path, rampart_port: u16, index: &str) -> (Running, u16) {
    let bin = rsyslogd();
    let port = free_port();
    let work = dir.join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
module(load="omelasticsearch")
template(name="rampart-json" type="list" option.jsonf="on") {{
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="program" name="programname" format="jsonf")
  property(outname="pid" name="procid" format="jsonf")
  property(outname="severity" name="syslogseverity-text" format="jsonf")
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
action(type="omelasticsearch" server="127.0.0.1" serverport="{rampart_port}" template="rampart-json"
       searchIndex="{index}" bulkmode="on" errorFile="{errors}"
       action.resumeRetryCount="-1" action.resumeInterval="1")
"#,
            work = work.display(),
            errors = dir.join("es-errors.json").display(),
        ),
    )
    .unwrap();
    let check = Command::new(&bin).args(["-N1", "-f", conf.to_str().unwrap()]).output().unwrap();
    assert!(
        check.status.success(),
        "rsyslogd rejects the test config (is omelasticsearch installed? {INSTALL_HINT}):\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let log = dir.join("rsyslogd.log");
    let child = Command::new(&bin)
        .args(["-n", "-f", conf.to_str().unwrap(), "-i", dir.join("rsyslogd.pid").to_str().unwrap()])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("rsyslogd.err")).unwrap())
        .spawn()
        .unwrap();
    let r = Running { name: "rsyslogd", child, log };
    assert!(wait_for(Duration::from_secs(20), || listening(port)), "rsyslogd did not listen on 127.0.0.1:{port}: {}", r.log());
    (r, port)
}

/// Every event line of the file output's daily files.
fn events_in(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("events-") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            out.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
        }
    }
    out
}

fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    rampart_core::EventTime(ms).to_rfc3339()
}

#[test]
fn rsyslog_omelasticsearch_bulk_lands_in_the_events_file_and_is_searchable_in_opensearch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prefix = services::unique("shipper");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let es = rt.block_on(services::Es::connect(&services::es_url()));
    let outputs = format!(
        "  - type: file\n    dir: \"{}\"\n  - type: elasticsearch\n    url: \"{}\"\n    events_index: {prefix}-events\n    alerts_index: {prefix}-alerts\n    dead_letter_index: {prefix}-deadletter\n    replicas: 0\n    flush_interval: 100ms\n",
        data.display(),
        services::es_url()
    );
    let (rampart, http_port) = start_rampart(dir.path(), &outputs);
    let (rsyslog, syslog_port) = start_rsyslog(dir.path(), http_port, "rsyslog-rampart");

    let run = format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let ts = now_rfc3339();
    // (priority, host, program, pid, message): auth.info, auth.warning, authpriv.err.
    let sent = [
        (38, "web1", "sshd", 811, format!("Failed password for root from 203.0.113.9 port 2201 ssh2 run={run} n=1")),
        (36, "web1", "sshd", 812, format!("Invalid user admin from 203.0.113.9 port 2202 run={run} n=2")),
        (83, "db2", "sudo", 900, format!("alice : user NOT in sudoers ; TTY=pts/0 ; COMMAND=/bin/sh run={run} n=3")),
    ];
    let mut s = TcpStream::connect(("127.0.0.1", syslog_port)).unwrap();
    for (pri, host, program, pid, msg) in &sent {
        writeln!(s, "<{pri}>1 {ts} {host} {program} {pid} - - {msg}").unwrap();
    }
    s.flush().unwrap();
    drop(s);

    let mine = |e: &Value| e["summary"].as_str().is_some_and(|m| m.contains(&format!("run={run}")));
    let arrived = wait_for(Duration::from_secs(30), || events_in(&data).iter().filter(|e| mine(e)).count() >= sent.len());
    let events: Vec<Value> = events_in(&data).into_iter().filter(|e| mine(e)).collect();
    assert!(
        arrived,
        "{} of {} events reached {}\nrampart: {}\nrsyslogd: {}\nrsyslog errors: {}",
        events.len(),
        sent.len(),
        data.display(),
        rampart.log(),
        rsyslog.log(),
        std::fs::read_to_string(dir.path().join("es-errors.json")).unwrap_or_default()
    );
    assert_eq!(events.len(), sent.len(), "each message once: {events:#?}");
    for ((_, host, program, pid, msg), severity) in sent.iter().zip(["INFO", "WARNING", "ERR"]) {
        let e = events.iter().find(|e| e["summary"] == msg.as_str()).unwrap_or_else(|| panic!("no event for {msg:?}: {events:#?}"));
        assert_eq!(e["hostname"], *host, "{e}");
        assert_eq!(e["processname"], *program, "{e}");
        assert_eq!(e["processid"], *pid, "{e}");
        assert_eq!(e["severity"], severity, "{e}");
        assert_eq!(e["utctimestamp"], ts.as_str(), "the syslog timestamp is the event time: {e}");
        assert_eq!(e["details"]["bulkindex"], "rsyslog-rampart", "{e}");
        assert!(e["details"]["facility"] == "auth" || e["details"]["facility"] == "authpriv", "{e}");
        assert_eq!(e["id"].as_str().map(str::len), Some(32), "{e}");
    }
    assert!(!dir.path().join("es-errors.json").exists(), "rsyslog saw item errors: {}", std::fs::read_to_string(dir.path().join("es-errors.json")).unwrap_or_default());

    // The bulk requests were counted as accepted events.
    let mut m = TcpStream::connect(("127.0.0.1", http_port)).unwrap();
    write!(m, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut metrics = String::new();
    m.read_to_string(&mut metrics).unwrap();
    let accepted: u64 = metrics.lines().find_map(|l| l.strip_prefix("rampart_events_accepted_total ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    assert!(accepted >= 3, "{metrics}");

    // The same events are searchable in OpenSearch (the file output may have written them
    // a moment before the bulk request to OpenSearch returned): by id, and by a word of
    // the message.
    rt.block_on(async {
        let index = format!("{prefix}-events-*");
        let start = Instant::now();
        while es.count(&index).await < sent.len() as u64 && start.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(es.count(&index).await, sent.len() as u64, "{}", rampart.log());
        let stored = es.docs(&index).await;
        for e in &events {
            assert!(stored.contains_key(e["id"].as_str().unwrap()), "{e} is not in {index}");
        }
        let (status, hits) = es.call(elasticsearch::http::Method::Post, &format!("/{index}/_search"), Some(serde_json::json!({"query": {"match": {"summary": "sudoers"}}}))).await;
        assert_eq!(status, 200, "{hits}");
        assert_eq!(hits["hits"]["total"]["value"], 1, "{hits}");
        assert_eq!(hits["hits"]["hits"][0]["_source"]["processname"], "sudo", "{hits}");
        es.cleanup(&prefix).await;
    });
    drop(rsyslog);
    drop(rampart);
}
