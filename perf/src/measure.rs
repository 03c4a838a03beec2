//! CPU time and memory, from the kernel.
//!
//! CPU is `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` (user + system time of every thread, what
//! `getrusage(RUSAGE_SELF)` sums, at nanosecond resolution) and `CLOCK_THREAD_CPUTIME_ID` for
//! one thread. Other processes and their threads are read from `/proc/<pid>/stat` and
//! `/proc/<pid>/task/*/stat` (clock ticks; Linux's `USER_HZ` is 100 on every mainstream
//! build). Memory is `VmHWM` (peak resident set) and `VmRSS` from `/proc/<pid>/status`.

use rustix::time::{clock_gettime, ClockId};

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`).
const TICKS: f64 = 100.0;

fn secs(t: rustix::time::Timespec) -> f64 {
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// User + system CPU seconds of this process so far.
pub fn process_cpu() -> f64 {
    secs(clock_gettime(ClockId::ProcessCPUTime))
}

/// User + system CPU seconds of the calling thread so far.
pub fn thread_cpu() -> f64 {
    secs(clock_gettime(ClockId::ThreadCPUTime))
}

/// The fields of a `stat` line after the command name (which may contain spaces).
fn stat_fields(text: &str) -> Vec<String> {
    text.rsplit_once(')').map(|(_, r)| r.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// utime + stime (fields 14 and 15) of a `/proc/.../stat` file, in seconds.
fn stat_cpu(path: &str) -> Option<f64> {
    let f = stat_fields(&std::fs::read_to_string(path).ok()?);
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok());
    Some((tick(11)? + tick(12)?) / TICKS)
}

/// CPU seconds of the children this process has waited for (cutime + cstime): read before
/// spawning and after `wait`, the difference is what the child used.
pub fn waited_children_cpu() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    let f = stat_fields(&text);
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (tick(13) + tick(14)) / TICKS
}

/// CPU seconds of another process, in total and summed over its threads whose name starts
/// with `thread_prefix` (e.g. `timely:work` for the engine's dataflow workers).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcCpu {
    /// Every thread.
    pub total: f64,
    /// The threads named with the prefix.
    pub named: f64,
}

/// Reads [`ProcCpu`] of `pid`; `None` once the process is gone.
pub fn proc_cpu(pid: u32, thread_prefix: &str) -> Option<ProcCpu> {
    let total = stat_cpu(&format!("/proc/{pid}/stat"))?;
    let mut named = 0.0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let dir = t.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.starts_with(thread_prefix) {
                named += stat_cpu(&dir.join("stat").display().to_string()).unwrap_or(0.0);
            }
        }
    }
    Some(ProcCpu { total, named })
}

/// CPU seconds of this process's threads whose name starts with `prefix`.
pub fn own_threads_cpu(prefix: &str) -> f64 {
    proc_cpu(std::process::id(), prefix).map_or(f64::NAN, |c| c.named)
}

/// A `kB` line of `/proc/<pid>/status`, in bytes (`VmHWM`, `VmRSS`).
pub fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

/// Peak resident set of this process (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    status_bytes(std::process::id(), "VmHWM").unwrap_or(0)
}

/// Resident set of this process now (VmRSS), in bytes.
pub fn rss() -> u64 {
    status_bytes(std::process::id(), "VmRSS").unwrap_or(0)
}

/// What the machine is: CPU model, logical CPUs, memory, kernel, and the load average when
/// the run started (a loaded machine gives noisy figures).
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string())).unwrap_or_default();
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or(0, |kib| kib / 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    serde_json::json!({"cpu": model, "cpus": cpus, "memory_mib": mem, "kernel": kernel, "loadavg_at_start": load, "speed_probe_ms": speed_probe_ms()})
}

/// How fast this machine is right now: the CPU milliseconds of one thread for a fixed piece of
/// work (hashing, inserting into and looking up a map of 200,000 keys, sorting a million
/// numbers), the best of three. A shared VM's speed drifts from hour to hour with its
/// neighbours; two results are comparable when their probes are close, and a figure can be
/// scaled by the ratio of the probes when they are not. The work does not change between
/// versions of Rampart, so neither does the probe on a steady machine.
pub fn speed_probe_ms() -> f64 {
    let once = || {
        let start = thread_cpu();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut map = std::collections::HashMap::with_capacity(200_000);
        for _ in 0..200_000 {
            map.insert(next() % 1_000_000, next());
        }
        let mut hits = 0u64;
        for _ in 0..1_000_000 {
            hits += u64::from(map.contains_key(&(next() % 1_000_000)));
        }
        let mut v: Vec<u64> = (0..1_000_000).map(|_| next()).collect();
        v.sort_unstable();
        std::hint::black_box((hits, v[v.len() / 2]));
        (thread_cpu() - start) * 1e3
    };
    (0..3).map(|_| once()).fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_are_read() {
        let before = process_cpu();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu() > before);
        assert!(thread_cpu() > 0.0);
        // Current first: the peak read after it can only be at least as high.
        let now = rss();
        assert!(now > 0 && peak_rss() >= now);
        let me = proc_cpu(std::process::id(), "").unwrap();
        assert!(me.total >= 0.0 && me.named >= 0.0);
        assert!(waited_children_cpu() >= 0.0);
    }

    #[test]
    fn the_speed_probe_measures_work() {
        let ms = speed_probe_ms();
        // A million sorted numbers and a million map lookups take milliseconds on any machine,
        // never nothing and never minutes.
        assert!(ms > 1.0 && ms < 60_000.0, "{ms}");
        assert!(machine()["speed_probe_ms"].as_f64().is_some_and(|m| m > 1.0));
    }
}
