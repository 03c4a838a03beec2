//! The built `rampart` binary end to end: replay on a fixture, rules validate/test, the
//! HTTP input under `rampart run`. The binary is `target/<profile>/rampart` (built by
//! `cargo build`/`cargo test --workspace`) or `$RAMPART_BIN`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use rampart_tests::{rampart_bin, wait_for, workspace_root};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rampart() -> Command {
    let bin = rampart_bin();
    assert!(bin.exists(), "{} not built: run `cargo build` first (scripts/test.sh does)", bin.display());
    let mut c = Command::new(bin);
    c.current_dir(workspace_root()).env("RAMPART_LOG", "warn");
    c
}

fn alerts_of(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout).lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect()
}

fn fixture() -> String {
    "tests/cases/library_mixed/events.ndjson".to_string()
}

#[test]
fn replay_fixture_finds_every_planted_attack() {
    let out = rampart().args(["replay", "--rules", "rules/library", &fixture()]).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let alerts = alerts_of(&out.stdout);
    let by_title = |t: &str| alerts.iter().filter(|a| a["rule"]["title"] == t).collect::<Vec<_>>();

    let brute = by_title("SSH brute force from one source");
    assert_eq!(brute.len(), 1, "{alerts:#?}");
    assert_eq!(brute[0]["group"]["details.sourceipaddress"], "203.0.113.7");
    assert_eq!(brute[0]["value"], 10);
    assert_eq!(brute[0]["events"].as_array().unwrap().len(), 10);
    assert_eq!(brute[0]["summary"], "SSH brute force from 203.0.113.7: 10 failed passwords in 2 minutes");

    let spray = by_title("SSH password spraying");
    assert_eq!(spray.len(), 1);
    assert_eq!(spray[0]["group"]["details.sourceipaddress"], "192.0.2.44");
    assert_eq!(spray[0]["value"], 10);

    let scan = by_title("Port scan from one source");
    assert_eq!(scan.len(), 1);
    assert_eq!(scan[0]["group"]["details.sourceipaddress"], "198.51.100.23");

    assert_eq!(by_title("User not in sudoers").len(), 6);
    assert_eq!(by_title("Repeated sudo refusals for one user").len(), 1);
    assert_eq!(by_title("Network interface in promiscuous mode").len(), 1);
    assert_eq!(by_title("Web scanner").len(), 1);
    assert_eq!(by_title("Direct root login over SSH").len(), 1);
    assert_eq!(alerts.len(), 13, "no other alert on background traffic: {alerts:#?}");

    // Alerts come out in event-time order.
    let times: Vec<&str> = alerts.iter().map(|a| a["utctimestamp"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);

    // Latency summary on stderr.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rampart_accept_to_alert") && err.contains("p99="), "stderr: {err}");
}

#[test]
fn replay_is_identical_across_workers_and_stdin() {
    let one = rampart().args(["replay", "--workers", "1", &fixture()]).output().unwrap();
    let four = rampart().args(["replay", "--workers", "4", &fixture()]).output().unwrap();
    assert!(one.status.success() && four.status.success());
    assert!(!one.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&one.stdout), String::from_utf8_lossy(&four.stdout));

    let mut child = rampart().args(["replay", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let data = std::fs::read(workspace_root().join(fixture())).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let piped = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(piped.status.success());
    assert_eq!(String::from_utf8_lossy(&one.stdout), String::from_utf8_lossy(&piped.stdout));
}

#[test]
fn replay_reports_bad_lines_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&format!(
            "{{\"utctimestamp\":\"2026-03-02T10:00:{i:02}Z\",\"processname\":\"sshd\",\"summary\":\"Failed password for root from 203.0.113.9 port 1 ssh2\",\"details\":{{\"sourceipaddress\":\"203.0.113.9\"}}}}\n"
        ));
        if i == 4 {
            text.push_str("{\"utctimestamp\": oops}\n[1,2]\n");
        }
    }
    std::fs::write(&input, text).unwrap();
    let out = rampart().args(["replay", input.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.ndjson:6:"), "names file and line of the bad record: {err}");
    assert!(err.contains("in.ndjson:7:") && err.contains("array"), "names the non-object: {err}");
    let alerts = alerts_of(&out.stdout);
    assert_eq!(alerts.len(), 1, "the ten good events still correlate: {alerts:?}");
    assert_eq!(alerts[0]["value"], 10);
}

/// A Sigma process_creation rule over EVTX-rendered JSON: it fires only through the
/// `windows-evtx` pipeline (field paths and the Sysmon channel/EventID condition), and a bad
/// pipeline file is refused with its position before anything runs.
#[test]
fn replay_with_the_windows_evtx_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("cmd.yml");
    std::fs::write(
        &rule,
        "title: Cmd from Word
id: 55555555-0000-4000-8000-000000000001
logsource:
  category: process_creation
  product: windows
detection:
  sel:
    Image|endswith: '\\cmd.exe'
    ParentImage|endswith: '\\winword.exe'
  condition: sel
level: high
",
    )
    .unwrap();
    let event = |eid: u32, channel: &str, image_key: &str| {
        serde_json::json!({"Event": {"System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "EventID": eid, "Channel": channel,
            "TimeCreated": {"#attributes": {"SystemTime": "2026-01-01T00:00:00Z"}}},
            "EventData": {image_key: "C:\\Windows\\System32\\cmd.exe", "ParentImage": "C:\\Office\\WINWORD.EXE"}}})
        .to_string()
    };
    let events = dir.path().join("events.json");
    let lines = [
        event(1, "Microsoft-Windows-Sysmon/Operational", "Image"),      // fires
        event(3, "Microsoft-Windows-Sysmon/Operational", "Image"),      // network connection: no
        event(1, "Microsoft-Windows-PowerShell/Operational", "Image"),  // wrong channel: no
        event(4688, "Security", "NewProcessName"),                      // Security 4688: fires
    ];
    std::fs::write(&events, lines.join("\n")).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["replay", "--rules", rule.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(events.to_str().unwrap());
        rampart().args(&args).output().unwrap()
    };
    let out = run(&["--pipeline", "windows-evtx"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(alerts_of(&out.stdout).len(), 2, "{}", String::from_utf8_lossy(&out.stdout));
    let out = run(&[]);
    assert!(out.status.success());
    assert!(alerts_of(&out.stdout).is_empty(), "without the pipeline the Sigma names match nothing");

    let bad = dir.path().join("bad-pipeline.yml");
    std::fs::write(&bad, "name: bad\ntransformations:\n  - type: field_name_maping\n    mapping: {a: b}\n").unwrap();
    let out = run(&["--pipeline", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-pipeline.yml:3:11") && err.contains("P003") && err.contains("field_name_mapping"), "{err}");

    let out = rampart().args(["pipelines"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    for name in ["windows-evtx", "ecs-windows", "mozdef"] {
        assert!(list.lines().any(|l| l.starts_with(name) && l.len() > name.len() + 10), "{name} listed with a description: {list}");
    }
    let out = rampart().args(["pipelines", "show", "mozdef"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("name: mozdef"));
}

/// `rampart replay FILE.evtx`: a SigmaHQ regression EVTX file (read from the shared corpus)
/// through its rule and the windows-evtx pipeline gives the alert.
#[test]
fn replay_reads_evtx_files() {
    let corpus = workspace_root().join("../shared/corpora/sigma");
    let case = "regression_data/rules-threat-hunting/windows/image_load/image_load_win_werfaultsecure_dbgcore_dbghelp_load/8a2f4b1c-3d5e-4f7a-9b2c-1e4f6d8a9c2b.evtx";
    let rule = "rules-threat-hunting/windows/image_load/image_load_win_werfaultsecure_dbgcore_dbghelp_load.yml";
    assert!(corpus.join(case).is_file(), "SigmaHQ corpus missing at {}", corpus.display());
    let out = rampart()
        .args(["replay", "--pipeline", "windows-evtx", "--rules", corpus.join(rule).to_str().unwrap(), corpus.join(case).to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let alerts = alerts_of(&out.stdout);
    assert_eq!(alerts.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(alerts[0]["rule"]["id"], "8a2f4b1c-3d5e-4f7a-9b2c-1e4f6d8a9c2b", "{}", alerts[0]);
}

/// `rules explain`: selection by selection, field by field, with the values seen, honouring
/// --rules and --pipeline; exit 0 on a match, 1 otherwise.
#[test]
fn rules_explain_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("r.yml");
    std::fs::write(
        &rule,
        "title: Cmd from Word\nid: 66666666-0000-4000-8000-000000000001\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  sel:\n    Image|endswith: '\\\\cmd.exe'\n    ParentImage|endswith: '\\\\winword.exe'\n  filter:\n    User: SYSTEM\n  condition: sel and not filter\n",
    )
    .unwrap();
    let ev = dir.path().join("ev.json");
    std::fs::write(
        &ev,
        r#"{"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational"}, "EventData": {"Image": "C:\\Windows\\cmd.exe", "ParentImage": "C:\\explorer.exe"}}}"#,
    )
    .unwrap();
    let out = rampart()
        .args(["rules", "explain", "--rules", rule.to_str().unwrap(), "--pipeline", "windows-evtx", "Cmd from Word", ev.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "no match exits 1: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("selection sel: no match"), "{text}");
    assert!(text.contains("[x] Image|endswith → Event.EventData.Image"), "{text}");
    assert!(text.contains(r#"[ ] ParentImage|endswith → Event.EventData.ParentImage | Event.EventData.ParentProcessName: seen "C:\\explorer.exe""#), "{text}");
    assert!(text.contains("[ ] User → Event.EventData.User | Event.UserData.*.User: seen absent"), "{text}");
    assert!(text.contains("logsource_process_creation: matched"), "the pipeline's condition is shown: {text}");
    assert!(text.contains("condition: (sel and not filter) and `pipeline windows-evtx: logsource_process_creation` → no match"), "{text}");
    std::fs::write(&ev, std::fs::read_to_string(&ev).unwrap().replace("explorer.exe", "WINWORD.EXE")).unwrap();
    let out = rampart().args(["rules", "explain", "--rules", rule.to_str().unwrap(), "--pipeline", "windows-evtx", "66666666-0000-4000-8000-000000000001", ev.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("→ MATCH"));
    let out = rampart().args(["rules", "explain", "--rules", rule.to_str().unwrap(), "nope", ev.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope`"));
}

/// `expand` needs placeholder values: refused with R114 without them, loaded with
/// `--placeholders FILE`.
#[test]
fn rules_validate_with_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("admins.yml");
    std::fs::write(&rule, "title: Admin logon from elsewhere\ndetection:\n  sel:\n    user|expand: '%Admins%'\n  condition: sel\n").unwrap();
    let out = rampart().args(["rules", "validate", rule.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("R114") && err.contains("%Admins%") && err.contains("admins.yml:4:"), "{err}");
    let vars = dir.path().join("vars.yml");
    std::fs::write(&vars, "Admins: [alice, bob]\n").unwrap();
    let out = rampart().args(["rules", "validate", "--placeholders", vars.to_str().unwrap(), rule.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn rules_validate_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "title: Broken\nid: 33333333-0000-4000-8000-000000000001\ndetection:\n  selection:\n    summary|contians: x\n  condition: selection and missing\n",
    )
    .unwrap();
    let out = rampart().args(["rules", "validate", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yml:5:"), "modifier error located: {err}");
    assert!(err.contains("contians"), "{err}");
    assert!(err.contains("bad.yml:6:") && err.contains("missing"), "both problems reported in one run: {err}");

    let ok = rampart().args(["rules", "validate", "rules/library"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: "));
}

#[test]
fn rules_test_passes_on_the_library_and_fails_on_a_wrong_expectation() {
    let out = rampart().args(["rules", "test", "rules/library"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("wrong.yml");
    std::fs::write(
        &f,
        "title: Root\nid: 44444444-0000-4000-8000-000000000001\ndetection:\n  sel:\n    details.user: root\n  condition: sel\ntests:\n  - name: expects nothing but gets an alert\n    events:\n      - {details: {user: root}}\n    expect: []\n",
    )
    .unwrap();
    let out = rampart().args(["rules", "test", f.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED") && stdout.contains("unexpected alert"), "{stdout}");
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn read_alerts_dir(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("alerts-") {
            out.extend(alerts_of(&std::fs::read(e.path()).unwrap()));
        }
    }
    out
}

#[test]
fn run_serves_http_events_and_metrics_and_writes_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("rampart.yml");
    std::fs::write(
        &cfg,
        format!(
            "engine:\n  lateness: 1s\ninputs:\n  - type: http\n    bind: \"{addr}\"\noutputs:\n  - type: file\n    dir: \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = rampart().args(["run", "--config", cfg.to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let up = wait_for(Duration::from_secs(20), || TcpStream::connect(&addr).is_ok());
    if !up {
        let _ = child.kill();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        panic!("rampart run did not listen on {addr}: {err}");
    }

    // Twelve failures from one source, stamped now, as an array body; a root login as a
    // single object; NDJSON too.
    let now = chrono_like_now();
    let fails: Vec<String> = (0..12)
        .map(|i| format!("{{\"utctimestamp\":\"{now}\",\"processname\":\"sshd\",\"summary\":\"Failed password for root from 203.0.113.77 port {i} ssh2\",\"details\":{{\"sourceipaddress\":\"203.0.113.77\"}}}}"))
        .collect();
    let (code, body) = http(&addr, "POST", "/events", &format!("[{}]", fails.join(",")));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("12"), "{body}");
    let (code, _) = http(&addr, "POST", "/events", &format!("{{\"utctimestamp\":\"{now}\",\"processname\":\"sshd\",\"summary\":\"Accepted password for root from 10.0.1.5 port 2 ssh2\",\"details\":{{\"username\":\"root\",\"sourceipaddress\":\"10.0.1.5\"}}}}"));
    assert_eq!(code, 200);
    let (code, _) = http(&addr, "POST", "/events", "{\"a\":1}\n{\"b\":2}\n");
    assert_eq!(code, 200);
    let (code, body) = http(&addr, "POST", "/events", "{\"a\": nope}");
    assert_eq!(code, 400, "{body}");

    let data = dir.path().join("data");
    let fired = wait_for(Duration::from_secs(20), || {
        let a = read_alerts_dir(&data);
        a.iter().any(|x| x["rule"]["title"] == "SSH brute force from one source") && a.iter().any(|x| x["rule"]["title"] == "Direct root login over SSH")
    });
    let (code, metrics) = http(&addr, "GET", "/metrics", "");
    let _ = child.kill();
    let _ = child.wait();
    assert!(fired, "alerts written under {}: {:?}", data.display(), read_alerts_dir(&data));
    assert_eq!(code, 200);
    assert!(metrics.contains("rampart_events_accepted_total 15"), "{metrics}");
    assert!(metrics.contains("rampart_accept_to_alert_seconds{quantile=\"0.99\"}"), "{metrics}");
}

/// RFC 3339 "now" without pulling chrono into the tests.
fn chrono_like_now() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    rampart_core::EventTime(ms).to_rfc3339()
}

#[test]
fn docs_cli_md_matches_help() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/cli.md")).unwrap();
    for args in [vec!["--help"], vec!["run", "--help"], vec!["replay", "--help"], vec!["demo", "--help"], vec!["rules", "validate", "--help"], vec!["rules", "test", "--help"], vec!["rules", "explain", "--help"], vec!["config", "validate", "--help"], vec!["kibana", "import", "--help"], vec!["kibana", "export", "--help"], vec!["pipelines", "--help"], vec!["pipelines", "show", "--help"]] {
        let out = rampart().args(&args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(doc.contains(help.trim_end()), "docs/cli.md is stale for `rampart {}`: regenerate it from --help", args.join(" "));
    }
}

#[test]
fn run_fails_fast_when_the_http_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("busy.yml");
    std::fs::write(&cfg, format!("inputs:\n  - type: http\n    bind: \"{addr}\"\noutputs:\n  - type: stdout\n")).unwrap();
    let start = Instant::now();
    let out = rampart().args(["run", "--config", cfg.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("cannot listen"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20), "must not keep retrying");
}

/// `replay --state-dir`: what a new_term rule learnt in one replay is known in the next; a
/// corrupt state file stops the run naming the file, unless `--discard-invalid-state`.
#[test]
fn replay_keeps_new_term_state_in_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("new_term.yml");
    std::fs::write(
        &rules,
        "title: SSH login\nname: ssh_login\ndetection:\n  s:\n    processname: sshd\n  condition: s\n---\n\
title: New source for a user\nid: ssh-new-source\ncorrelation:\n  type: new_term\n  rules: ssh_login\n  group-by: [details.username]\n  fields: [details.sourceipaddress]\n  learning: 1m\n",
    )
    .unwrap();
    let login = |t: &str, user: &str, ip: &str| format!("{{\"utctimestamp\": \"2026-01-01T00:{t}Z\", \"processname\": \"sshd\", \"summary\": \"login\", \"details\": {{\"username\": \"{user}\", \"sourceipaddress\": \"{ip}\"}}}}\n");
    let first = dir.path().join("first.ndjson");
    std::fs::write(&first, login("00:00", "alice", "10.0.0.1") + &login("00:30", "bob", "10.0.0.2")).unwrap();
    let second = dir.path().join("second.ndjson");
    std::fs::write(&second, login("05:00", "alice", "10.0.0.1") + &login("05:10", "bob", "10.0.0.9")).unwrap();
    let state = dir.path().join("state");
    let replay = |file: &Path, extra: &[&str]| {
        let mut args = vec!["replay", "--rules", rules.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
        args.extend(extra);
        args.push(file.to_str().unwrap());
        rampart().args(&args).output().unwrap()
    };
    let out = replay(&first, &[]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(alerts_of(&out.stdout).is_empty(), "learning");
    assert!(state.join("correlation-state.json").is_file());
    let out = replay(&second, &[]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let alerts = alerts_of(&out.stdout);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!((alerts[0]["group"]["details.username"].as_str(), alerts[0]["group"]["details.sourceipaddress"].as_str()), (Some("bob"), Some("10.0.0.9")));

    std::fs::write(state.join("correlation-state.json"), "{\"format\": \"rampart-correlation-state\", \"version\": 1, \"ent").unwrap();
    let out = replay(&second, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("correlation-state.json") && stderr.contains("corrupt") && stderr.contains("--discard-invalid-state"), "{stderr}");
    let out = replay(&second, &["--discard-invalid-state"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn replay_runs_the_plugin_chain_of_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("watch.txt"), "# the brute-forcer\n203.0.113.0/24\n").unwrap();
    std::fs::write(d.join("route.vrl"), "if .processname == \"sshd\" {\n  %index = \"ssh\"\n}\n").unwrap();
    std::fs::create_dir(d.join("rules")).unwrap();
    std::fs::write(
        d.join("rules/watch.yml"),
        "title: Watched source\nid: 0b3c5d1e-2f4a-4b6c-8d9e-0f1a2b3c4d5e\nlogsource: {product: linux}\ndetection:\n  sel:\n    sourceipaddress|cidr|expand: '%watch%'\n  condition: sel\n",
    )
    .unwrap();
    let config = format!(
        "lookups:\n  lists:\n    - name: watch\n      path: {d}/watch.txt\nplugins:\n  - type: drop\n    name: no_sprayer\n    match: {{details.sourceipaddress: 192.0.2.44}}\n  - type: ipfixup\n  - type: vrl\n    name: route\n    file: {d}/route.vrl\n",
        d = d.display()
    );
    std::fs::write(d.join("plugins.yml"), &config).unwrap();
    let data = d.join("data");
    let out = rampart()
        .args(["replay", "--rules", "rules/library", "--rules"])
        .arg(d.join("rules"))
        .arg("--config")
        .arg(d.join("plugins.yml"))
        .arg("--data-dir")
        .arg(&data)
        .arg(fixture())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("rampart: plugins no_sprayer, ipfixup, route"), "{stderr}");
    assert!(stderr.contains("rampart_events_plugin_dropped_total"), "drops are counted: {stderr}");
    let alerts = alerts_of(&out.stdout);
    let titles: Vec<&str> = alerts.iter().filter_map(|a| a["rule"]["title"].as_str()).collect();
    assert!(!titles.contains(&"SSH password spraying"), "the sprayer's events were dropped: {titles:?}");
    assert!(titles.contains(&"SSH brute force from one source"), "{titles:?}");
    assert!(titles.contains(&"Watched source"), "the lookup list fills the rule's placeholder: {titles:?}");
    // The VRL script routed sshd events to their own daily files; each lists its plugins.
    let files: Vec<String> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let ssh = files.iter().find(|f| f.starts_with("ssh-")).unwrap_or_else(|| panic!("no ssh-*.ndjson in {files:?}"));
    let first: Value = serde_json::from_str(std::fs::read_to_string(data.join(ssh)).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["processname"], "sshd");
    assert!(first["plugins"].as_array().unwrap().iter().any(|p| p == "route"), "{first}");

    // A script that does not compile stops the replay with its file, line and column.
    std::fs::write(d.join("route.vrl"), "if .processname == \"sshd\" {\n  %index = nope(.x)\n}\n").unwrap();
    let out = rampart().args(["replay", "--config"]).arg(d.join("plugins.yml")).arg(fixture()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{}:2:", d.join("route.vrl").display())) && stderr.contains("undefined function"), "{stderr}");
}
