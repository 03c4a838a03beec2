//! The real `rampart` binary, run with a generated config for the end-to-end scenarios
//! (`http`, `amqp`): the load generator and Rampart are separate processes, so Rampart's CPU
//! and memory are read from `/proc/<pid>` without the generator's, and the engine's own CPU
//! from its dataflow worker threads (`timely:work-*`).

use crate::measure::{self, ProcCpu};
use anyhow::{bail, Context, Result};
use rampart_core::time::{parse_timestamp, NaiveZone};
use rampart_core::EventTime;
use crate::hist::Latency;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `rampart` binary: `--rampart`, else `$CARGO_TARGET_DIR/release/rampart`, else
/// `target/release/rampart`.
pub fn rampart_bin(explicit: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => {
            let mut c = Vec::new();
            if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
                c.push(PathBuf::from(t).join("release/rampart"));
            }
            c.push(PathBuf::from("target/release/rampart"));
            c
        }
    };
    candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!("the rampart binary is not at {} — build it with `cargo build --release --bin rampart` or pass --rampart PATH", candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or "))
    })
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// A scratch directory for one run (removed by [`Scratch::drop`]).
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// `$TMPDIR/rampart-perf-<name>-<pid>`, fresh.
    pub fn new(name: &str) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("rampart-perf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `rampart run --config …`.
#[derive(Debug)]
pub struct Rampart {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// `127.0.0.1:<port>` of its HTTP input (health, metrics).
    pub http: String,
    log: PathBuf,
}

impl Rampart {
    /// Writes `config` to `dir/rampart.yml`, starts the binary and waits (≤ 60 s) until
    /// `GET /ready` on `http` says every input takes events (an AMQP input consumes its
    /// queue, so nothing published from then on is unroutable).
    pub fn start(bin: &Path, config: &str, dir: &Path, http: &str) -> Result<Rampart> {
        let cfg = dir.join("rampart.yml");
        std::fs::write(&cfg, config)?;
        let log = dir.join("rampart.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let mut r = Rampart { child, pid, http: http.to_string(), log };
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if get(&r.http, "/ready").is_ok_and(|b| b.contains("\"ready\":true")) {
                return Ok(r);
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                bail!("rampart exited during startup ({status}); its log:\n{}", r.log_text());
            }
            if Instant::now() > until {
                let _ = r.child.kill();
                let why = get(&r.http, "/ready").err().map(|e| format!(" ({e})")).unwrap_or_default();
                bail!("rampart was not ready (GET http://{}/ready) within 60 s{why}; its log:\n{}", r.http, r.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /metrics`.
    pub fn metrics(&self) -> Result<String> {
        get(&self.http, "/metrics")
    }

    /// CPU so far: total and the dataflow workers'.
    pub fn cpu(&self) -> ProcCpu {
        measure::proc_cpu(self.pid, "timely:work").unwrap_or_default()
    }

    /// Peak resident set (VmHWM), bytes.
    pub fn peak_rss(&self) -> u64 {
        measure::status_bytes(self.pid, "VmHWM").unwrap_or(0)
    }

    /// Ctrl-C (ordered shutdown), then kill after 20 s.
    pub fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill").args(["-INT", &self.pid.to_string()]).status();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        let _ = self.child.wait();
        Ok(())
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A plain HTTP/1.1 GET on `addr` (no client library: this runs on sampler threads).
pub fn get(addr: &str, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET http://{addr}{path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}

/// A Prometheus sample: `name value` or `name{labels} value` when `labels` is given.
pub fn metric(text: &str, name: &str, labels: Option<&str>) -> Option<f64> {
    let want = match labels {
        Some(l) => format!("{name}{{{l}}} "),
        None => format!("{name} "),
    };
    text.lines().find_map(|l| l.strip_prefix(want.as_str())).and_then(|v| v.trim().parse().ok())
}

/// Rampart's own accept → X summary from `/metrics`, in ms: `{p50_ms, p99_ms, p999_ms, max_ms, count}`.
pub fn summary_ms(text: &str, name: &str) -> serde_json::Value {
    let q = |q: &str| metric(text, name, Some(&format!("quantile=\"{q}\""))).map_or(0.0, |s| s * 1e3);
    serde_json::json!({"p50_ms": q("0.5"), "p99_ms": q("0.99"), "p999_ms": q("0.999"), "max_ms": q("1"), "count": metric(text, &format!("{name}_count"), None).unwrap_or(0.0)})
}

/// Wall-clock ms now.
pub fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Follows `dir/alerts-*.ndjson` as the `file` output writes them and records, per alert,
/// now − its `utctimestamp` (the event time of the event that completed it, which the load
/// generator sets to that event's scheduled send time): scheduled send → alert on disk, at
/// millisecond resolution.
pub struct AlertTail {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    hist: Arc<Mutex<Latency>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for AlertTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertTail").field("count", &self.count.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl AlertTail {
    /// Starts following `dir`.
    pub fn start(dir: PathBuf) -> AlertTail {
        let (stop, count, hist) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(Latency::new())));
        let (s, c, h) = (stop.clone(), count.clone(), hist.clone());
        let thread = std::thread::Builder::new()
            .name("perf-alert-tail".into())
            .spawn(move || {
                let mut offsets: std::collections::HashMap<PathBuf, (u64, String)> = std::collections::HashMap::new();
                while !s.load(Ordering::Relaxed) {
                    let files = std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("alerts-")));
                    for f in files.collect::<Vec<_>>() {
                        let (off, partial) = offsets.entry(f.clone()).or_default();
                        let Ok(mut file) = std::fs::File::open(&f) else { continue };
                        let mut buf = Vec::new();
                        use std::io::Seek;
                        if file.seek(std::io::SeekFrom::Start(*off)).is_err() || file.read_to_end(&mut buf).is_err() {
                            continue;
                        }
                        *off += buf.len() as u64;
                        partial.push_str(&String::from_utf8_lossy(&buf));
                        let now = wall_ms();
                        while let Some(nl) = partial.find('\n') {
                            let line: String = partial.drain(..=nl).collect();
                            let ts = serde_json::from_str::<serde_json::Value>(&line)
                                .ok()
                                .and_then(|v| v.get("utctimestamp").and_then(|t| t.as_str()).and_then(|t| parse_timestamp(t, NaiveZone::default(), EventTime(0))));
                            if let Some(t) = ts {
                                c.fetch_add(1, Ordering::Relaxed);
                                if let Ok(mut h) = h.lock() {
                                    h.record(((now - t.0 as f64).max(0.0) * 1e6) as u64);
                                }
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .ok();
        AlertTail { stop, count, hist, thread }
    }

    /// Alerts seen so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Stops and returns the histogram.
    pub fn finish(mut self) -> Latency {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.hist.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_samples_are_read() {
        let text = "# HELP x\nrampart_events_written_total 42\nrampart_accept_to_written_seconds{quantile=\"0.99\"} 0.0125\nrampart_accept_to_written_seconds_count 7\n";
        assert_eq!(metric(text, "rampart_events_written_total", None), Some(42.0));
        let s = summary_ms(text, "rampart_accept_to_written_seconds");
        assert!((s["p99_ms"].as_f64().unwrap() - 12.5).abs() < 1e-9);
        assert_eq!(s["count"], 7.0);
    }

    #[test]
    fn alert_tail_reads_appended_lines() {
        let dir = Scratch::new("tail-test").unwrap();
        let tail = AlertTail::start(dir.0.clone());
        let t = EventTime((wall_ms() as u64).saturating_sub(5));
        let path = dir.0.join("alerts-20260101.ndjson");
        std::fs::write(&path, format!("{{\"utctimestamp\": \"{}\"}}\n{{\"utctimestamp\": \"{}\"", t.to_rfc3339(), t.to_rfc3339())).unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while tail.count() < 1 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(f, "}}").unwrap();
        while tail.count() < 2 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let h = tail.finish();
        assert_eq!(h.len(), 2);
        assert!(h.0.min() >= 4_000_000, "{}", h.0.min());
    }
}
