//! Load generators and generated rule sets.
//!
//! - [`mixed`]: MozDef-style traffic (sshd, sudo, firewall, web, process creation) with
//!   planted attacks, from the demo input's generator (`rampart_connectors::demo`).
//! - [`keyed_auth`]: sshd failed passwords from `keys` distinct sources (each key gets a few
//!   per window) plus attacking sources, one after another, that each cross the threshold.
//! - [`windows`]: Sysmon process-creation events (benign: browsers, Office, system
//!   processes) mixed with SigmaHQ's regression events replayed at volume.
//! - [`window_rules`], [`threshold_rules`]: the rule sets of scenarios 1 and 2, as YAML.
//! - [`normalize`]: sender JSON → engine events, as an input would make them.
//! - [`flatten_windows`]: the flat field layout rsigma reads Windows events in.

use anyhow::{Context, Result};
use rampart_connectors::demo::Generator;
use rampart_core::{Event, EventId, EventTime, Normalizer, NormalizerConfig};
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::Duration;

/// Event time of event `i` when events are `step_us` apart from `start`.
pub fn time_of(start: EventTime, i: usize, step_us: u64) -> EventTime {
    EventTime(start.0 + (i as u64).saturating_mul(step_us) / 1000)
}

/// `n` events of demo traffic with planted attacks (an attack every 20 s of event time).
pub fn mixed(seed: u64, n: usize, start: EventTime, step_us: u64) -> Vec<Value> {
    let mut g = Generator::new(seed, Duration::from_secs(20));
    (0..n).map(|i| g.next_at(time_of(start, i, step_us))).collect()
}

/// The source address of window key `k`: `10.a.b.c`.
pub fn key_ip(k: usize) -> String {
    format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255)
}

/// Share of keyed traffic that comes from attacking sources.
pub const ATTACK_SHARE: f64 = 0.01;
/// Failed passwords each attacking source sends (in a burst) before the next one starts: more
/// than the threshold of [`window_rules`], so every attacker fires exactly once.
pub const ATTACK_BURST: usize = 60;

/// The address of attacking source `a`: 198.18.0.0/15 (the benchmarking range).
pub fn attacker_ip(a: usize) -> String {
    format!("198.{}.{}.{}", 18 + ((a >> 16) & 1), (a >> 8) & 255, a & 255)
}

/// `n` sshd failed passwords: sources drawn uniformly from `keys` addresses (10.0.0.0/8), and
/// a share [`ATTACK_SHARE`] from attacking sources, one after another, each sending
/// [`ATTACK_BURST`] failures: with [`window_rules`] each attacker fires once, so a run gets a
/// steady stream of alerts (about `rate · share / burst` per second) to measure latency on.
pub fn keyed_auth(seed: u64, keys: usize, n: usize, start: EventTime, step_us: u64) -> Vec<Value> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let users = ["root", "admin", "oracle", "postgres", "ubuntu", "deploy"];
    let mut attack_events = 0usize;
    (0..n)
        .map(|i| {
            let ip = if rng.random_bool(ATTACK_SHARE) {
                attack_events += 1;
                attacker_ip(attack_events / ATTACK_BURST)
            } else {
                key_ip(rng.random_range(0..keys.max(1)))
            };
            let user = *users.choose(&mut rng).unwrap_or(&"root");
            let port = rng.random_range(32768..61000u32);
            json!({
                "utctimestamp": time_of(start, i, step_us).to_rfc3339(), "hostname": "bastion1", "processname": "sshd", "category": "authentication",
                "summary": format!("Failed password for {user} from {ip} port {port} ssh2"),
                "details": {"sourceipaddress": ip, "sourceport": port, "username": user, "success": false, "authmethod": "password"}
            })
        })
        .collect()
}

/// Scenario 1's rules: sshd failed password, and 50 or more from one source in a 30 s
/// sliding window.
pub fn window_rules() -> String {
    r#"title: perf sshd failed password
id: 6f0e4a52-0000-4000-8000-000000000001
name: perf_sshd_failed
status: test
logsource:
  product: linux
  service: sshd
detection:
  selection:
    processname: sshd
    summary|startswith: 'Failed password for '
  condition: selection
level: low
---
title: perf brute force by source
id: 6f0e4a52-0000-4000-8000-000000000002
status: test
correlation:
  type: event_count
  rules:
    - perf_sshd_failed
  group-by:
    - details.sourceipaddress
  timespan: 30s
  condition:
    gte: 50
level: high
"#
    .to_string()
}

const TOKENS: &[&str] = &[
    "wp-login", "wp-admin", ".env", ".git", "phpmyadmin", "admin.php", ".bak", "server-status", "cgi-bin", "xmlrpc", "backup", ".sql", ".aws", "actuator", "console", "solr",
    "manager", "phpunit", "owa", "boaform", "login", "api", "static", "favicon", "about", "index", "orders", "shell", "cmd", "eval",
];
const USERS: &[&str] = &["root", "admin", "administrator", "test", "guest", "user", "oracle", "postgres", "mysql", "ftp", "ubuntu", "pi", "git", "jenkins", "deploy", "backup", "alice", "bob", "carol", "dave"];
const IMAGES: &[&str] = &["/usr/bin/curl", "/usr/bin/wget", "/usr/bin/python3", "/usr/bin/ssh", "/usr/bin/git", "/usr/bin/ls", "/usr/bin/vim", "/usr/bin/nc", "/bin/bash", "/usr/bin/perl"];
const COMMANDS: &[&str] = &["/bin/bash", "shadow", "sudoers", "systemctl", "apt-get", "journalctl", "tail", "service", "cat", "vi"];

/// Scenario 2's rules: `count` threshold rules over the demo traffic, each a detection and an
/// `event_count` correlation over it, in five families (firewall drops to one port, web 404s
/// for one kind of path, sshd failures for one user, process creation of one kind, sudo
/// refusals of one command), with thresholds and windows that vary by rule.
pub fn threshold_rules(count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        let k = i / 5;
        let (logsource, selection, group, gte, span) = match i % 5 {
            0 => ("product: linux\n  service: iptables", format!("processname: iptables\n    details.action: DROP\n    details.destinationport: {}", 1 + k), "details.sourceipaddress", 3 + k % 5, "1m"),
            1 => (
                "category: webserver",
                format!("processname: nginx\n    details.status: 404\n    details.uri|contains: '{}'", TOKENS[k % TOKENS.len()]),
                "details.sourceipaddress",
                5 + k % 20,
                if k % 2 == 0 { "1m" } else { "5m" },
            ),
            2 => (
                "product: linux\n  service: sshd",
                format!("processname: sshd\n    summary|contains: 'Failed password for {}'\n    details.username: {}", USERS[k % USERS.len()], USERS[k % USERS.len()]),
                "details.sourceipaddress",
                3 + k % 10,
                "2m",
            ),
            3 => (
                "product: linux\n  category: process_creation",
                format!("category: process\n    details.image|endswith: '{}'\n    details.commandline|contains: '{}'", IMAGES[k % IMAGES.len()], TOKENS[(k / IMAGES.len()) % TOKENS.len()]),
                "hostname",
                2 + k % 4,
                "5m",
            ),
            _ => (
                "product: linux\n  service: sudo",
                format!("processname: sudo\n    summary|contains: 'NOT in sudoers'\n    details.command|contains: '{}'", COMMANDS[k % COMMANDS.len()]),
                "details.username",
                2 + k % 6,
                "10m",
            ),
        };
        out.push_str(&format!(
            "title: perf detection {i}\nid: 7a1c0000-0000-4000-8000-{det:012}\nname: perf_det_{i}\nstatus: test\nlogsource:\n  {logsource}\ndetection:\n  selection:\n    {selection}\n  condition: selection\nlevel: low\n---\n\
             title: perf threshold {i}\nid: 7a1c0000-0000-4000-9000-{cor:012}\nstatus: test\ncorrelation:\n  type: event_count\n  rules:\n    - perf_det_{i}\n  group-by:\n    - {group}\n  timespan: {span}\n  condition:\n    gte: {gte}\nlevel: medium\n---\n",
            det = i,
            cor = i
        ));
    }
    out
}

/// Every event of SigmaHQ's regression data (`<corpus>/regression_data/**/*.json`, one or
/// more concatenated JSON records each).
pub fn regression_events(corpus: &Path) -> Result<Vec<Value>> {
    let root = corpus.join("regression_data");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {} (the SigmaHQ corpus; --corpus)", dir.display()))?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let raw = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        for v in serde_json::Deserializer::from_str(&raw).into_iter::<Value>() {
            out.push(v.with_context(|| format!("parsing {}", f.display()))?);
        }
    }
    Ok(out)
}

const WIN_PROCS: &[(&str, &str, &str)] = &[
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer --lang=en-US", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"),
    ("C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", "C:\\Windows\\System32\\userinit.exe"),
    ("C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule", "C:\\Windows\\System32\\services.exe"),
    ("C:\\Windows\\System32\\notepad.exe", "\"C:\\Windows\\System32\\notepad.exe\" C:\\Users\\alice\\Documents\\notes.txt", "C:\\Windows\\explorer.exe"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE\" /n \"C:\\Users\\bob\\Documents\\report.docx\"", "C:\\Windows\\explorer.exe"),
    ("C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", "\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" --single-argument https://intranet.example.com/", "C:\\Windows\\explorer.exe"),
    ("C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe Install $(Arg0)", "C:\\Windows\\System32\\svchost.exe"),
    ("C:\\Users\\carol\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe", "\"C:\\Users\\carol\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe\" --process-start-time", "C:\\Windows\\explorer.exe"),
    ("C:\\Windows\\System32\\SearchProtocolHost.exe", "\"C:\\Windows\\system32\\SearchProtocolHost.exe\" Global\\UsGthrFltPipeMssGthrPipe1_", "C:\\Windows\\System32\\SearchIndexer.exe"),
    ("C:\\Windows\\System32\\conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1", "C:\\Windows\\System32\\cmd.exe"),
];

/// One benign Sysmon process-creation event (EventID 1), as `evtx_dump` prints it.
pub fn windows_benign(rng: &mut SmallRng, t: EventTime) -> Value {
    let (image, cmd, parent) = *WIN_PROCS.choose(rng).unwrap_or(&WIN_PROCS[0]);
    let user = *["alice", "bob", "carol", "dave"].choose(rng).unwrap_or(&"alice");
    let host = format!("WS{:03}.corp.example.com", rng.random_range(1..200));
    let file = image.rsplit('\\').next().unwrap_or(image);
    json!({"Event": {
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9"}},
            "EventID": 1, "Version": 5, "Level": 4, "Task": 1, "Opcode": 0, "Keywords": "0x8000000000000000",
            "TimeCreated": {"#attributes": {"SystemTime": t.to_rfc3339()}},
            "EventRecordID": rng.random_range(1..10_000_000u64),
            "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": host,
            "Security": {"#attributes": {"UserID": "S-1-5-18"}}
        },
        "EventData": {
            "RuleName": "-", "UtcTime": t.to_rfc3339(), "ProcessGuid": format!("0197231E-61EF-693A-C812-{:012X}", rng.random_range(0..u32::MAX)),
            "ProcessId": rng.random_range(1000..60000u32), "Image": image, "FileVersion": "10.0.19041.1", "Description": file, "Product": "Microsoft Windows Operating System",
            "Company": "Microsoft Corporation", "OriginalFileName": file, "CommandLine": cmd, "CurrentDirectory": format!("C:\\Users\\{user}\\"),
            "User": format!("CORP\\{user}"), "LogonGuid": "0197231E-AB9F-67AA-4C14-030000000000", "LogonId": "0x3144c", "TerminalSessionId": 1,
            "IntegrityLevel": "Medium", "Hashes": "SHA256=8955D2A45404A59C2E3772F3C76AEEAE48AEDF100BE328C003D7A4DF5342B491",
            "ParentProcessGuid": "0197231E-BDEA-6937-AB0C-000000000800", "ParentProcessId": rng.random_range(500..6000u32), "ParentImage": parent,
            "ParentCommandLine": parent, "ParentUser": format!("CORP\\{user}")
        }
    }})
}

/// `n` Windows events: a `regression_share` of them SigmaHQ's regression events in turn (each
/// restamped), the rest benign process creation.
pub fn windows(seed: u64, n: usize, regression: &[Value], regression_share: f64, start: EventTime, step_us: u64) -> Vec<Value> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut next = 0usize;
    (0..n)
        .map(|i| {
            let t = time_of(start, i, step_us);
            if !regression.is_empty() && rng.random_bool(regression_share.clamp(0.0, 1.0)) {
                next += 1;
                let mut v = regression[next % regression.len()].clone();
                if let Some(tc) = v.pointer_mut("/Event/System/TimeCreated/#attributes/SystemTime") {
                    *tc = Value::String(t.to_rfc3339());
                }
                v
            } else {
                windows_benign(&mut rng, t)
            }
        })
        .collect()
}

/// Sender JSON → events, as an input normalizes them; event `i` gets time `start + i·step`.
pub fn normalize(values: Vec<Value>, start: EventTime, step_us: u64) -> Vec<Event> {
    let normalizer = Normalizer::new(NormalizerConfig::default());
    values
        .into_iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let mut e = normalizer.normalize_at(v, EventId::derive("perf", i as u64, &[]), start).ok()?;
            e.time = time_of(start, i, step_us);
            Some(e)
        })
        .collect()
}

/// A Windows event in the flat layout rsigma's Windows rules read: `EventData`'s fields at
/// the top, with the `System` fields rules test (`EventID`, `Channel`, `Computer`,
/// `Provider_Name`, `Level`, …).
pub fn flatten_windows(v: &Value) -> Value {
    let mut out = Map::new();
    if let Some(sys) = v.pointer("/Event/System").and_then(Value::as_object) {
        for (k, x) in sys {
            match (k.as_str(), x) {
                ("Provider", _) => {
                    if let Some(n) = x.pointer("/#attributes/Name") {
                        out.insert("Provider_Name".into(), n.clone());
                    }
                }
                (_, Value::Object(_)) | (_, Value::Null) => {}
                _ => {
                    out.insert(k.clone(), x.clone());
                }
            }
        }
    }
    for section in ["/Event/EventData", "/Event/UserData"] {
        if let Some(d) = v.pointer(section).and_then(Value::as_object) {
            for (k, x) in d {
                out.insert(k.clone(), x.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rules_load() {
        let w = rampart_rules::load_str("window.yml", &window_rules()).unwrap();
        assert_eq!(w.len(), 2);
        let t = rampart_rules::load_str("rules.yml", &threshold_rules(50)).unwrap();
        assert_eq!(t.len(), 100);
    }

    #[test]
    fn keyed_traffic_spreads_over_keys_with_a_few_attackers() {
        let start = EventTime(1_700_000_000_000);
        let values = keyed_auth(1, 1000, 50_000, start, 50);
        let ips: Vec<&str> = values.iter().map(|v| v["details"]["sourceipaddress"].as_str().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = ips.iter().collect();
        let attacks = ips.iter().filter(|ip| ip.starts_with("198.18.")).count();
        assert!(distinct.len() > 1000 && distinct.len() <= 1000 + attacks / ATTACK_BURST + 1, "{}", distinct.len());
        assert!((300..700).contains(&attacks), "{attacks}");
        let events = normalize(values, start, 50);
        assert_eq!(events.len(), 50_000);
        assert_eq!(events[20].time, EventTime(start.0 + 1));
    }

    #[test]
    fn windows_events_flatten() {
        let mut rng = SmallRng::seed_from_u64(3);
        let v = windows_benign(&mut rng, EventTime(0));
        let f = flatten_windows(&v);
        assert_eq!(f["EventID"], 1);
        assert_eq!(f["Channel"], "Microsoft-Windows-Sysmon/Operational");
        assert_eq!(f["Provider_Name"], "Microsoft-Windows-Sysmon");
        assert!(f["Image"].as_str().unwrap().ends_with(".exe"));
    }
}
