//! Demo traffic: realistic background events with planted attacks, live or offline.
//!
//! Background: sshd logins (mostly accepted public keys, a few failed passwords), sudo
//! commands, firewall ACCEPT/DROP, web access, process creation. Attacks, one at a time in a
//! fixed rotation every `attack_every` of event time, deterministic from the seed:
//!
//! | attack | shape |
//! |---|---|
//! | SSH brute force | one source (203.0.113.0/24), 30–40 failed passwords for one user on `bastion1`, then one accepted |
//! | password spraying | one source (192.0.2.0/24), one failure each for 15–20 distinct users |
//! | port scan | one source (198.51.100.0/24), 50–60 distinct destination ports, DROPped by `fw1` |
//! | sudo abuse | one user, 5–8 "user NOT in sudoers" on `app2` |
//! | promiscuous mode | one kernel message on `db1` |
//! | web scanner | one source (203.0.113.0/24), 40–50 requests answered 404 by `web1` |
//!
//! An attack's events take four slots out of five while it runs, so each fits its window
//! (the port scan, the longest, spans under 80 events) whenever events are at most 750 ms
//! apart, i.e. at any live rate of 2 events/s or more. Addresses are private or RFC 5737
//! documentation ranges only.
//!
//! Delivery: generated, so nothing to lose; the live source waits on backpressure and
//! drops the backlog it could not send rather than bursting.

use crate::error::ConnectorError;
use crate::source::SourceContext;
use rampart_core::{EventId, EventTime};
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;

/// `type: demo` input.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Events per second. Default 200.
    #[serde(default = "default_rate", deserialize_with = "crate::registry::lenient")]
    pub rate: u32,
    /// Seed of the generator: the same seed gives the same traffic and attacks. Default 42.
    #[serde(default = "default_seed", deserialize_with = "crate::registry::lenient")]
    pub seed: u64,
    /// Stop after this long (`30s`, `5m`); absent: run until shut down.
    #[serde(default, with = "crate::registry::human_duration_opt", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Event time between the starts of two planted attacks. Default `20s`.
    #[serde(default = "default_attack_every", with = "crate::registry::human_duration")]
    pub attack_every: Duration,
}

fn default_rate() -> u32 {
    200
}
fn default_seed() -> u64 {
    42
}
fn default_attack_every() -> Duration {
    Duration::from_secs(20)
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { rate: default_rate(), seed: default_seed(), duration: None, attack_every: default_attack_every() }
    }
}

impl DemoConfig {
    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.rate == 0 || self.rate > 1_000_000 {
            p.push(format!("rate: must be between 1 and 1000000 events per second, got {}", self.rate));
        }
        if self.attack_every < Duration::from_secs(1) {
            p.push("attack_every: must be at least 1s".to_string());
        }
        if self.duration == Some(Duration::ZERO) {
            p.push("duration: must be more than 0s (omit it to run until stopped)".to_string());
        }
        p
    }
}

/// What a live demo run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemoStats {
    /// Events handed to the pipeline.
    pub accepted: u64,
}

const USERS: &[(&str, &str)] = &[("alice", "10.0.1.5"), ("bob", "10.0.1.17"), ("carol", "10.0.2.9"), ("dave", "10.0.2.33"), ("erin", "10.0.3.12")];
const SPRAY_USERS: &[&str] = &[
    "admin", "administrator", "test", "guest", "user", "oracle", "postgres", "mysql", "ftp", "www", "ubuntu", "pi", "git", "jenkins", "deploy", "backup", "support",
    "info", "nagios", "hadoop", "tomcat", "ec2-user", "vagrant", "docker", "minecraft",
];
const SUDO_COMMANDS: &[&str] = &["/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update", "/usr/bin/journalctl -u sshd", "/usr/bin/tail /var/log/syslog", "/usr/sbin/service cron status"];
const PORTS: &[u64] = &[22, 53, 80, 123, 443, 3306, 8080];
const URIS: &[&str] = &["/", "/index.html", "/login", "/api/v1/orders", "/static/app.js", "/static/site.css", "/favicon.ico", "/about"];
const SCAN_URIS: &[&str] = &[
    "/wp-login.php", "/wp-admin/", "/.env", "/.git/config", "/phpmyadmin/", "/admin.php", "/config.php.bak", "/server-status", "/cgi-bin/test.cgi", "/xmlrpc.php",
    "/backup.zip", "/db.sql", "/.aws/credentials", "/actuator/env", "/console", "/solr/admin", "/manager/html", "/vendor/phpunit/", "/owa/", "/boaform/admin",
];
const AGENTS: &[&str] = &["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15", "curl/8.5.0"];
const PROCESSES: &[(&str, &str)] = &[
    ("/usr/bin/curl", "curl -s -o /tmp/x.sh http://example.org/x.sh"),
    ("/usr/bin/ls", "ls -la /var/log"),
    ("/usr/bin/git", "git pull --ff-only"),
    ("/usr/bin/python3", "python3 manage.py migrate"),
    ("/usr/bin/ssh", "ssh deploy@10.0.4.20"),
    ("/usr/bin/vim", "vim /etc/hosts"),
];

/// The traffic generator: call [`Generator::next_at`] with each event's time.
pub struct Generator {
    rng: SmallRng,
    attack_every_ms: u64,
    next_attack: Option<u64>,
    /// Event time at which the next queued attack event may be released: attacks unfold
    /// at [`ATTACK_PACE_MS`] whatever the background rate, so a fast demo still shows a
    /// brute force as a sequence that crosses its threshold, not a single burst.
    next_attack_event: u64,
    queue: VecDeque<Value>,
    kind: usize,
}

/// Event time between two events of one planted attack (4 per second): the longest attack
/// (50+ ports) then fits in 13 s, inside every rule's window and the 20 s rotation.
const ATTACK_PACE_MS: u64 = 250;

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator").field("queued_attack_events", &self.queue.len()).finish_non_exhaustive()
    }
}

impl Generator {
    /// A generator whose output depends only on `seed`, `attack_every` and the times asked.
    pub fn new(seed: u64, attack_every: Duration) -> Generator {
        Generator {
            rng: SmallRng::seed_from_u64(seed),
            attack_every_ms: u64::try_from(attack_every.as_millis()).unwrap_or(u64::MAX).max(1),
            next_attack: None,
            next_attack_event: 0,
            queue: VecDeque::new(),
            kind: 0,
        }
    }

    /// The next event, stamped `t`.
    pub fn next_at(&mut self, t: EventTime) -> Value {
        // The first attack comes half an interval in, so a demo shows an alert quickly.
        let due = *self.next_attack.get_or_insert(t.0.saturating_add(self.attack_every_ms / 2));
        if self.queue.is_empty() && t.0 >= due {
            self.plant();
            self.next_attack = Some(t.0.saturating_add(self.attack_every_ms));
        }
        let mut v = if !self.queue.is_empty() && t.0 >= self.next_attack_event {
            self.next_attack_event = t.0.saturating_add(ATTACK_PACE_MS);
            self.queue.pop_front().unwrap_or(Value::Null)
        } else {
            self.background()
        };
        if let Some(m) = v.as_object_mut() {
            m.insert("utctimestamp".into(), Value::String(t.to_rfc3339()));
        }
        v
    }

    fn ip(&mut self, prefix: &str) -> String {
        format!("{prefix}.{}", self.rng.random_range(2..=254))
    }

    fn port(&mut self) -> u64 {
        self.rng.random_range(32768..=60999)
    }

    fn plant(&mut self) {
        let kind = self.kind;
        self.kind = (self.kind + 1) % 6;
        match kind {
            0 => {
                let ip = self.ip("203.0.113");
                let user = *["root", "admin", "ubuntu"].choose(&mut self.rng).unwrap_or(&"root");
                for _ in 0..self.rng.random_range(30..=40) {
                    let p = self.port();
                    let e = ssh_failed("bastion1", user, user != "root", &ip, p);
                    self.queue.push_back(e);
                }
                // ... and then the password works (the library's sequence rule sees it).
                self.queue.push_back(ssh_accepted("bastion1", user, &ip, 50_022));
            }
            1 => {
                let ip = self.ip("192.0.2");
                let n = self.rng.random_range(15..=20);
                let users: Vec<&str> = SPRAY_USERS.choose_multiple(&mut self.rng, n).copied().collect();
                for u in users {
                    let p = self.port();
                    self.queue.push_back(ssh_failed("bastion1", u, true, &ip, p));
                }
            }
            2 => {
                let ip = self.ip("198.51.100");
                let n = self.rng.random_range(50..=60);
                let ports = rand::seq::index::sample(&mut self.rng, 1024, n);
                for p in ports.iter() {
                    self.queue.push_back(firewall(&ip, "10.0.0.5", p as u64 + 1, "DROP"));
                }
            }
            3 => {
                let user = *["mallory", "trudy", "eve"].choose(&mut self.rng).unwrap_or(&"mallory");
                for _ in 0..self.rng.random_range(5..=8) {
                    let cmd = *["/bin/bash", "/usr/bin/cat /etc/shadow", "/usr/bin/vi /etc/sudoers"].choose(&mut self.rng).unwrap_or(&"/bin/bash");
                    self.queue.push_back(sudo("app2", user, cmd, false));
                }
            }
            4 => {
                let iface = *["eth0", "eth1"].choose(&mut self.rng).unwrap_or(&"eth0");
                self.queue.push_back(json!({
                    "utctimestamp": "", "hostname": "db1", "processname": "kernel", "category": "system",
                    "summary": format!("device {iface} entered promiscuous mode"), "details": {"interface": iface}
                }));
            }
            _ => {
                let ip = self.ip("203.0.113");
                let agent = *["Nikto/2.5.0", "sqlmap/1.8.2#stable", "Mozilla/5.0 (compatible; Nmap Scripting Engine)"].choose(&mut self.rng).unwrap_or(&"Nikto/2.5.0");
                for _ in 0..self.rng.random_range(40..=50) {
                    let uri = *SCAN_URIS.choose(&mut self.rng).unwrap_or(&"/");
                    self.queue.push_back(web(&ip, "GET", uri, 404, agent, 512));
                }
            }
        }
    }

    fn background(&mut self) -> Value {
        let roll = self.rng.random_range(0..100);
        let (user, home_ip) = *USERS.choose(&mut self.rng).unwrap_or(&USERS[0]);
        match roll {
            0..=17 => {
                let p = self.port();
                json!({
                    "utctimestamp": "", "hostname": "bastion1", "processname": "sshd", "category": "authentication",
                    "summary": format!("Accepted publickey for {user} from {home_ip} port {p} ssh2"),
                    "details": {"sourceipaddress": home_ip, "sourceport": p, "username": user, "success": true, "authmethod": "publickey"}
                })
            }
            18..=20 => {
                let ip = format!("10.0.{}.{}", self.rng.random_range(0..=255), self.rng.random_range(2..=254));
                let p = self.port();
                ssh_failed("bastion1", user, false, &ip, p)
            }
            21..=28 => {
                let cmd = *SUDO_COMMANDS.choose(&mut self.rng).unwrap_or(&SUDO_COMMANDS[0]);
                let host = *["app1", "app2"].choose(&mut self.rng).unwrap_or(&"app1");
                sudo(host, user, cmd, true)
            }
            29..=61 => {
                let port = *PORTS.choose(&mut self.rng).unwrap_or(&443);
                if self.rng.random_bool(0.15) {
                    let src = self.ip("198.51.100");
                    firewall(&src, "10.0.0.5", port, "DROP")
                } else {
                    let src = format!("10.0.{}.{}", self.rng.random_range(0..=255), self.rng.random_range(2..=254));
                    let dst = self.ip("10.0.0");
                    firewall(&src, &dst, port, "ACCEPT")
                }
            }
            62..=89 => {
                let src = format!("10.{}.{}.{}", self.rng.random_range(1..=255), self.rng.random_range(0..=255), self.rng.random_range(2..=254));
                let uri = *URIS.choose(&mut self.rng).unwrap_or(&"/");
                let agent = *AGENTS.choose(&mut self.rng).unwrap_or(&AGENTS[0]);
                let status = match self.rng.random_range(0..100) {
                    0..=2 => 404,
                    3..=9 => 304,
                    _ => 200,
                };
                let method = if uri.starts_with("/api") && self.rng.random_bool(0.3) { "POST" } else { "GET" };
                let bytes = self.rng.random_range(200..=90_000);
                web(&src, method, uri, status, agent, bytes)
            }
            _ => {
                let (image, cmd) = *PROCESSES.choose(&mut self.rng).unwrap_or(&PROCESSES[0]);
                let host = format!("ws{}", self.rng.random_range(10..=19));
                let pid = self.rng.random_range(1000..=65000);
                json!({
                    "utctimestamp": "", "hostname": host, "processname": "auditd", "category": "process",
                    "summary": format!("execve {image}"),
                    "details": {"image": image, "commandline": cmd, "parentimage": "/bin/bash", "username": user, "processid": pid}
                })
            }
        }
    }
}

fn ssh_failed(host: &str, user: &str, invalid: bool, ip: &str, port: u64) -> Value {
    let who = if invalid { format!("invalid user {user}") } else { user.to_string() };
    json!({
        "utctimestamp": "", "hostname": host, "processname": "sshd", "category": "authentication",
        "summary": format!("Failed password for {who} from {ip} port {port} ssh2"),
        "details": {"sourceipaddress": ip, "sourceport": port, "username": user, "success": false, "authmethod": "password"}
    })
}

fn ssh_accepted(host: &str, user: &str, ip: &str, port: u64) -> Value {
    json!({
        "utctimestamp": "", "hostname": host, "processname": "sshd", "category": "authentication",
        "summary": format!("Accepted password for {user} from {ip} port {port} ssh2"),
        "details": {"sourceipaddress": ip, "sourceport": port, "username": user, "success": true, "authmethod": "password"}
    })
}

fn firewall(src: &str, dst: &str, port: u64, action: &str) -> Value {
    json!({
        "utctimestamp": "", "hostname": "fw1", "processname": "iptables", "category": "firewall",
        "summary": format!("{action} IN=eth0 SRC={src} DST={dst} PROTO=TCP DPT={port}"),
        "details": {"sourceipaddress": src, "destinationipaddress": dst, "destinationport": port, "protocol": "tcp", "action": action}
    })
}

fn sudo(host: &str, user: &str, command: &str, allowed: bool) -> Value {
    let summary = if allowed {
        format!("{user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND={command}")
    } else {
        format!("{user} : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/{user} ; USER=root ; COMMAND={command}")
    };
    json!({
        "utctimestamp": "", "hostname": host, "processname": "sudo", "category": "authorization", "summary": summary,
        "details": {"username": user, "targetuser": "root", "command": command, "success": allowed}
    })
}

fn web(src: &str, method: &str, uri: &str, status: u64, agent: &str, bytes: u64) -> Value {
    json!({
        "utctimestamp": "", "hostname": "web1", "processname": "nginx", "category": "web",
        "summary": format!("{method} {uri} {status}"),
        "details": {"sourceipaddress": src, "method": method, "uri": uri, "status": status, "useragent": agent, "bytes": bytes}
    })
}

/// `count` events starting at `start`, `step_ms` apart, with attacks every 20 s of event
/// time (the default `attack_every`). For tests, fixtures and `rampart demo` offline.
pub fn generate(seed: u64, start: EventTime, count: usize, step_ms: u64) -> Vec<Value> {
    let mut g = Generator::new(seed, default_attack_every());
    (0..count as u64).map(|i| g.next_at(EventTime(start.0.saturating_add(i.saturating_mul(step_ms))))).collect()
}

/// Generates live traffic stamped with the wall clock at `cfg.rate` events per second
/// until `cfg.duration` has passed or shutdown fires.
pub async fn run(cfg: &DemoConfig, mut ctx: SourceContext) -> Result<DemoStats, ConnectorError> {
    let mut g = Generator::new(cfg.seed, cfg.attack_every);
    let mut stats = DemoStats::default();
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut produced = 0u64;
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.shutdown.wait() => break,
        }
        let mut elapsed = start.elapsed();
        let finished = cfg.duration.is_some_and(|d| elapsed >= d);
        if let Some(d) = cfg.duration {
            elapsed = elapsed.min(d);
        }
        let due = (f64::from(cfg.rate) * elapsed.as_secs_f64()) as u64;
        // After a stall (backpressure) skip the backlog instead of bursting it.
        let n = due.saturating_sub(produced).min(u64::from(cfg.rate));
        produced = due;
        let now = EventTime::now();
        let mut batch = Vec::with_capacity(n as usize);
        // Spread this tick's events over the 50 ms it covers, in order.
        for i in 0..n {
            let v = g.next_at(EventTime(now.0.saturating_sub(50) + 50 * i / n.max(1)));
            let raw = serde_json::to_vec(&v).map_err(|source| ConnectorError::Serialize { component: "demo", source })?;
            seq += 1;
            if let Ok(e) = ctx.normalizer.normalize_at(v, EventId::derive("demo", seq, &raw), now) {
                batch.push(e);
            }
        }
        let sent = batch.len() as u64;
        if !ctx.send(batch).await {
            break;
        }
        stats.accepted += sent;
        if finished {
            break;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    const T0: EventTime = EventTime(1_795_000_000_000);

    fn s<'a>(v: &'a Value, path: &str) -> &'a str {
        path.split('.').fold(v, |v, k| &v[k]).as_str().unwrap_or("")
    }

    /// The largest number of events (or distinct `value`s) one key reaches within any
    /// window of `window_ms`, per key.
    fn per_key_window_max(events: &[Value], window_ms: u64, pick: impl Fn(&Value) -> Option<(String, String)>) -> HashMap<String, (usize, usize)> {
        let mut by_key: HashMap<String, Vec<(u64, String)>> = HashMap::new();
        for e in events {
            if let Some((k, val)) = pick(e) {
                let t = rampart_core::time::parse_timestamp(s(e, "utctimestamp"), Default::default(), T0).unwrap().0;
                by_key.entry(k).or_default().push((t, val));
            }
        }
        by_key
            .into_iter()
            .map(|(k, evs)| {
                let (mut max_n, mut max_d) = (0, 0);
                for (i, (t, _)) in evs.iter().enumerate() {
                    let inside: Vec<&(u64, String)> = evs[i..].iter().take_while(|(u, _)| *u < t + window_ms).collect();
                    max_n = max_n.max(inside.len());
                    max_d = max_d.max(inside.iter().map(|(_, v)| v.as_str()).collect::<BTreeSet<_>>().len());
                }
                (k, (max_n, max_d))
            })
            .collect()
    }

    fn ip_ok(ip: &str) -> bool {
        let Ok(a) = ip.parse::<std::net::Ipv4Addr>() else { return false };
        let o = a.octets();
        a.is_private() || (o[0], o[1], o[2]) == (192, 0, 2) || (o[0], o[1], o[2]) == (198, 51, 100) || (o[0], o[1], o[2]) == (203, 0, 113)
    }

    #[test]
    fn same_seed_same_traffic_other_seed_other_traffic() {
        let a = generate(42, T0, 3000, 100);
        assert_eq!(a, generate(42, T0, 3000, 100));
        assert_ne!(a, generate(43, T0, 3000, 100));
        assert_eq!(a.len(), 3000);
        assert_eq!(s(&a[10], "utctimestamp"), EventTime(T0.0 + 1000).to_rfc3339());
        assert_eq!(a[0].as_object().unwrap().keys().next().unwrap(), "utctimestamp", "time first, as shippers send it");
    }

    #[test]
    fn every_attack_is_planted_with_its_cardinality_and_background_stays_below() {
        // 20 minutes of event time at 4 events/s: each attack kind recurs ~10 times.
        let ev = generate(7, T0, 4800, 250);
        for e in &ev {
            for f in ["details.sourceipaddress", "details.destinationipaddress"] {
                let ip = s(e, f);
                assert!(ip.is_empty() || ip_ok(ip), "{ip} is not private or RFC 5737");
            }
        }
        let failed = |e: &Value| (s(e, "processname") == "sshd" && s(e, "summary").starts_with("Failed password")).then(|| (format!("{}|{}", s(e, "details.sourceipaddress"), s(e, "hostname")), s(e, "details.username").to_string()));

        let brute = per_key_window_max(&ev, 60_000, failed);
        let brute_keys: Vec<_> = brute.iter().filter(|(_, (n, _))| *n >= 30).map(|(k, _)| k.clone()).collect();
        assert!(!brute_keys.is_empty(), "a brute force: 30+ failures from one source on one host in a minute");
        assert!(brute_keys.iter().all(|k| k.starts_with("203.0.113.")), "{brute_keys:?}");
        assert!(brute.iter().filter(|(k, _)| k.starts_with("10.")).all(|(_, (n, _))| *n < 5), "background failures stay scattered");

        let spray = per_key_window_max(&ev, 300_000, failed);
        let spray_keys: Vec<_> = spray.iter().filter(|(_, (_, d))| *d >= 15).map(|(k, _)| k.clone()).collect();
        assert!(!spray_keys.is_empty(), "password spraying: 15+ users from one source in 5 minutes");
        assert!(spray_keys.iter().all(|k| k.starts_with("192.0.2.")), "{spray_keys:?}");

        let fw = |e: &Value| (s(e, "category") == "firewall").then(|| (s(e, "details.sourceipaddress").to_string(), e["details"]["destinationport"].to_string()));
        let scan = per_key_window_max(&ev, 60_000, fw);
        let scan_keys: Vec<_> = scan.iter().filter(|(_, (_, d))| *d >= 50).map(|(k, _)| k.clone()).collect();
        assert!(!scan_keys.is_empty(), "a port scan: 50+ distinct ports in a minute");
        assert!(scan.iter().filter(|(k, _)| !scan_keys.contains(k)).all(|(_, (_, d))| *d <= PORTS.len()), "background touches only common ports");

        let sudo_deny = |e: &Value| (s(e, "processname") == "sudo" && s(e, "summary").contains("user NOT in sudoers")).then(|| (s(e, "details.username").to_string(), String::new()));
        let sudo = per_key_window_max(&ev, 600_000, sudo_deny);
        assert!(sudo.values().any(|(n, _)| *n >= 5), "sudo abuse: 5+ refusals for one user in 10 minutes: {sudo:?}");
        assert!(sudo.keys().all(|u| ["mallory", "trudy", "eve"].contains(&u.as_str())));

        let promisc: Vec<_> = ev.iter().filter(|e| s(e, "processname") == "kernel" && s(e, "summary").ends_with("entered promiscuous mode")).collect();
        assert!(!promisc.is_empty());
        assert!(promisc.iter().all(|e| s(e, "hostname") == "db1" && !s(e, "details.interface").is_empty()));

        let nf = |e: &Value| (s(e, "category") == "web" && e["details"]["status"] == 404).then(|| (s(e, "details.sourceipaddress").to_string(), String::new()));
        let web = per_key_window_max(&ev, 60_000, nf);
        let web_keys: Vec<_> = web.iter().filter(|(_, (n, _))| *n >= 40).map(|(k, _)| k.clone()).collect();
        assert!(!web_keys.is_empty(), "a web scanner: 40+ 404s from one source in a minute");
        // The attack running when generation stops is cut short; leave it out.
        let tail: BTreeSet<&str> = ev[ev.len() - 400..].iter().map(|e| s(e, "details.sourceipaddress")).collect();
        let others: Vec<_> = web.iter().filter(|(k, _)| !web_keys.contains(k) && !tail.contains(k.as_str())).filter(|(_, (n, _))| *n >= 5).collect();
        assert!(others.is_empty(), "{others:?} {web_keys:?}");
    }

    #[test]
    fn event_shapes_match_the_documented_ones() {
        let ev = generate(42, T0, 2000, 200);
        let find = |p: &str| ev.iter().find(|e| s(e, "processname") == p).unwrap_or_else(|| panic!("no {p} event"));
        let ssh = find("sshd");
        assert_eq!(s(ssh, "category"), "authentication");
        for k in ["sourceipaddress", "sourceport", "username", "success", "authmethod"] {
            assert!(ssh["details"].get(k).is_some(), "sshd details.{k}");
        }
        let fw = find("iptables");
        assert!(fw["details"]["destinationport"].is_u64());
        assert!(["DROP", "ACCEPT"].contains(&s(fw, "details.action")));
        assert!(find("sudo")["details"]["success"].is_boolean());
        assert!(find("nginx")["details"]["status"].is_u64());
        assert!(find("auditd")["details"]["processid"].is_u64());
        assert_eq!(s(find("kernel"), "category"), "system");
    }

    #[tokio::test]
    async fn live_run_paces_and_stops_after_its_duration() {
        let (tx, rx) = flume::bounded(64);
        let (_t, sd) = crate::source::shutdown_pair();
        let m = std::sync::Arc::new(rampart_core::Metrics::new());
        let ctx = SourceContext { out: tx, metrics: m.clone(), normalizer: Default::default(), shutdown: sd };
        let cfg = DemoConfig { rate: 1000, duration: Some(Duration::from_millis(300)), ..Default::default() };
        assert!(cfg.validate().is_empty());
        let stats = run(&cfg, ctx).await.unwrap();
        let got: usize = rx.drain().map(|b| b.len()).sum();
        assert_eq!(got as u64, stats.accepted);
        assert!((250..=300).contains(&stats.accepted), "about rate × duration: {}", stats.accepted);
        assert_eq!(m.get(rampart_core::Counter::EventsAccepted), stats.accepted);
        let bad = DemoConfig { rate: 0, attack_every: Duration::from_millis(10), duration: Some(Duration::ZERO), ..Default::default() };
        assert_eq!(bad.validate().len(), 3);
    }
}
