//! Syslog input: RFC 5424 and RFC 3164 (BSD) messages over UDP and TCP.
//!
//! - UDP: one message per datagram.
//! - TCP (RFC 6587): octet counting (`LEN SP MSG`) and non-transparent framing (LF; CRLF
//!   and NUL tolerated), decided frame by frame, so one connection may mix them: a frame
//!   that starts with a run of digits and a space is octet-counted.
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`, with NILVALUE `-`,
//!   structured data (`\"`, `\\`, `\]` escapes) and a BOM before MSG.
//! - RFC 3164: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`, also without PRI, without HOST,
//!   and with an ISO-8601 stamp (rsyslog's high-precision forwarding format). A year-less
//!   stamp takes the year that puts it closest to the receive time; a stamp without a zone
//!   is read in `normalizer.timezone`.
//!
//! A MSG that is a JSON object becomes the event itself (the header fills only the schema
//! fields it lacks, and goes under `details.syslog`). Anything else becomes `summary`,
//! `hostname`, `processname`, `processid`, `severity` and `utctimestamp`, with facility,
//! severity name, PRI, MSGID, structured data and the sender in `details.syslog`
//! (`category` is `syslog`). A line that is not syslog is still an event: the whole line as
//! `summary`, tagged `syslog_unparsed`. Bytes that are not UTF-8 are replaced.
//!
//! Delivery: at most once. TCP pushes back (a connection is not read while the pipeline is
//! full, so its sender waits); UDP cannot, so while the pipeline is full datagrams are still
//! read but dropped, counted in `rampart_events_dropped_total` with a warning at most every
//! 10 s. A TCP frame or datagram longer than `max_message` is counted in
//! `rampart_events_invalid_total`, reported, and skipped; the connection carries on. On
//! shutdown the listeners close, what the kernel already holds is read, and every complete
//! message is delivered (waiting up to 5 s for the pipeline). Event ids hash `origin`, the
//! listener's start time, a sequence number and the raw bytes: unique per message, new on
//! every start (a network input has no position to replay from).

mod framing;
mod parse;

use crate::error::ConnectorError;
use crate::events::{EventsAccepted, EventsDropped, RecordInvalid};
use crate::source::{Shutdown, SourceContext, MAX_BATCH};
use framing::{Framed, Framer};
use parse::to_value;
use rampart_core::{Event, EventId, EventTime, Normalizer};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// `type: syslog` input.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// UDP address to listen on, `host:port` (e.g. `127.0.0.1:5514`). Default: no UDP.
    /// At least one of `udp` and `tcp` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<String>,
    /// TCP address to listen on, `host:port`. Default: no TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// Longest message in bytes. Default 64 KiB. A longer TCP frame or UDP datagram is
    /// reported and skipped.
    #[serde(default = "default_max_message", deserialize_with = "crate::registry::lenient")]
    pub max_message: usize,
    /// Most TCP connections at once; more are closed on arrival, with a warning.
    /// Default 256.
    #[serde(default = "default_max_connections", deserialize_with = "crate::registry::lenient")]
    pub max_connections: usize,
    /// The origin hashed into event ids. Default `syslog`.
    #[serde(default = "default_origin")]
    pub origin: String,
}

fn default_max_message() -> usize {
    64 * 1024
}
fn default_max_connections() -> usize {
    256
}
fn default_origin() -> String {
    "syslog".to_string()
}

/// Most connections `max_connections` may allow.
const MAX_CONNECTIONS_LIMIT: usize = 65_536;
/// Largest UDP payload (IPv4).
const MAX_DATAGRAM: usize = 65_507;
/// A partly filled batch goes out this long after its first event.
const FLUSH_AFTER: Duration = Duration::from_millis(5);
/// How long shutdown waits for the pipeline to take what was read.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// At most one warning per kind this often (drops, refused connections, socket errors).
const WARN_EVERY_NS: u64 = 10_000_000_000;
/// Problems kept for the report.
const MAX_ERRORS: usize = 20;
/// Bytes asked of a TCP connection per read.
const READ_CHUNK: usize = 16 * 1024;
/// On shutdown, how long each socket is still read for what the kernel already holds, and
/// at most how many reads (a sender that keeps writing cannot hold shutdown up).
const DRAIN_WAIT: Duration = Duration::from_millis(20);
const DRAIN_READS: usize = 1024;

impl SyslogConfig {
    /// A config listening on these addresses, with every other default.
    pub fn new(udp: Option<&str>, tcp: Option<&str>) -> SyslogConfig {
        SyslogConfig {
            udp: udp.map(str::to_string),
            tcp: tcp.map(str::to_string),
            max_message: default_max_message(),
            max_connections: default_max_connections(),
            origin: default_origin(),
        }
    }

    /// The listeners as `udp:ADDR,tcp:ADDR` (for logs and reports).
    pub fn listeners(&self) -> String {
        let udp = self.udp.as_ref().map(|a| format!("udp:{a}"));
        let tcp = self.tcp.as_ref().map(|a| format!("tcp:{a}"));
        udp.into_iter().chain(tcp).collect::<Vec<_>>().join(",")
    }

    /// Every problem with this config.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.udp.is_none() && self.tcp.is_none() {
            p.push("set `udp:` and/or `tcp:` to the host:port to listen on (e.g. \"127.0.0.1:5514\")".to_string());
        }
        for (key, addr) in [("udp", &self.udp), ("tcp", &self.tcp)] {
            if let Some(a) = addr {
                let host_port = a.rsplit_once(':').is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok());
                if a.parse::<SocketAddr>().is_err() && !host_port {
                    p.push(format!("{key}: `{a}` is not host:port"));
                }
            }
        }
        if self.max_message == 0 {
            p.push("max_message: must be at least 1 byte".to_string());
        }
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS_LIMIT {
            p.push(format!("max_connections: must be between 1 and {MAX_CONNECTIONS_LIMIT}, got {}", self.max_connections));
        }
        if self.origin.trim().is_empty() {
            p.push("origin: must not be empty".to_string());
        }
        p
    }
}

/// What a syslog input did while it ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyslogStats {
    /// Events handed to the pipeline.
    pub accepted: u64,
    /// Of those, lines that were not syslog (tagged `syslog_unparsed`).
    pub unparsed: u64,
    /// Frames and datagrams skipped as longer than `max_message`, or cut off.
    pub invalid: u64,
    /// UDP messages dropped while the pipeline was full.
    pub dropped: u64,
    /// TCP connections closed on arrival because `max_connections` were open.
    pub refused_connections: u64,
    /// The first problems, as `syslog tcp:ADDR from PEER: message`.
    pub errors: Vec<String>,
}

impl SyslogStats {
    /// The problems for an input report: the first ones verbatim, then the totals.
    pub fn problems(self, input: &str) -> Vec<String> {
        let mut p = self.errors;
        if self.invalid > p.len() as u64 {
            p.push(format!("{input}: … {} invalid frames in all", self.invalid));
        }
        if self.dropped > 0 {
            p.push(format!("{input}: {} UDP messages dropped while the pipeline was full", self.dropped));
        }
        if self.refused_connections > 0 {
            p.push(format!("{input}: {} TCP connections refused (max_connections)", self.refused_connections));
        }
        p
    }
}

/// Bound syslog sockets, not yet read.
#[derive(Debug)]
pub struct SyslogServer {
    udp: Option<(UdpSocket, SocketAddr)>,
    tcp: Option<(TcpListener, SocketAddr)>,
}

impl SyslogServer {
    /// Binds the configured sockets. A failure is [`ConnectorError::Bind`] (retryable: the
    /// port may be freed).
    pub async fn bind(cfg: &SyslogConfig) -> Result<SyslogServer, ConnectorError> {
        fn err<'a>(kind: &'static str, addr: &'a str) -> impl FnOnce(std::io::Error) -> ConnectorError + 'a {
            move |source| ConnectorError::Bind { component: "syslog", bind: format!("{kind}:{addr}"), source }
        }
        let udp = match &cfg.udp {
            Some(a) => {
                let s = UdpSocket::bind(a.as_str()).await.map_err(err("udp", a))?;
                let local = s.local_addr().map_err(err("udp", a))?;
                Some((s, local))
            }
            None => None,
        };
        let tcp = match &cfg.tcp {
            Some(a) => {
                let l = TcpListener::bind(a.as_str()).await.map_err(err("tcp", a))?;
                let local = l.local_addr().map_err(err("tcp", a))?;
                Some((l, local))
            }
            None => None,
        };
        Ok(SyslogServer { udp, tcp })
    }

    /// The UDP address actually bound (its port is known even when the config said `:0`).
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(|(_, a)| *a)
    }

    /// The TCP address actually bound.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|(_, a)| *a)
    }

    /// Reads messages until `ctx.shutdown` fires (or the pipeline closes), then delivers
    /// what was read and returns.
    pub async fn run(self, cfg: &SyslogConfig, ctx: SourceContext) -> SyslogStats {
        let bound = SyslogConfig::new(self.udp_addr().map(|a| a.to_string()).as_deref(), self.tcp_addr().map(|a| a.to_string()).as_deref());
        tracing::info!(listeners = %bound.listeners(), "syslog input listening");
        let shared = Arc::new(Shared::new(cfg, &ctx));
        let (tx, rx) = flume::bounded(MAX_BATCH);
        let SyslogServer { udp, tcp } = self;
        let udp = {
            let (tx, shared, shutdown) = (tx.clone(), shared.clone(), ctx.shutdown.clone());
            async move {
                if let Some((socket, addr)) = udp {
                    read_udp(socket, addr, shared, tx, shutdown).await;
                }
            }
        };
        let tcp = {
            let (shared, shutdown, max) = (shared.clone(), ctx.shutdown.clone(), cfg.max_connections);
            async move {
                if let Some((listener, addr)) = tcp {
                    accept_tcp(listener, addr, max, shared, tx, shutdown).await;
                }
            }
        };
        tokio::join!(udp, tcp, deliver(rx, ctx, &shared));
        shared.stats()
    }
}

/// Binds and runs a syslog input until shutdown.
pub async fn run(cfg: &SyslogConfig, ctx: SourceContext) -> Result<SyslogStats, ConnectorError> {
    Ok(SyslogServer::bind(cfg).await?.run(cfg, ctx).await)
}

/// What the readers share: the event factory and the counters.
struct Shared {
    /// `origin@start-nanos`: new on every start, so a restart does not reuse ids.
    origin: String,
    seq: AtomicU64,
    max_message: usize,
    normalizer: Normalizer,
    metrics: Arc<rampart_core::Metrics>,
    accepted: AtomicU64,
    unparsed: AtomicU64,
    invalid: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    errors: Mutex<Vec<String>>,
    last_drop_warning: AtomicU64,
    last_refusal_warning: AtomicU64,
    last_socket_warning: AtomicU64,
}

impl Shared {
    fn new(cfg: &SyslogConfig, ctx: &SourceContext) -> Shared {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        Shared {
            origin: format!("{}@{nanos}", cfg.origin),
            seq: AtomicU64::new(0),
            max_message: cfg.max_message,
            normalizer: ctx.normalizer.clone(),
            metrics: ctx.metrics.clone(),
            accepted: AtomicU64::new(0),
            unparsed: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            last_drop_warning: AtomicU64::new(0),
            last_refusal_warning: AtomicU64::new(0),
            last_socket_warning: AtomicU64::new(0),
        }
    }

    /// One frame as an event (`None` for a blank one).
    fn event(&self, frame: &[u8], peer: SocketAddr, transport: &str, received: EventTime) -> Option<Event> {
        let id = EventId::derive(&self.origin, self.seq.fetch_add(1, Relaxed), frame);
        let (value, parsed) = to_value(frame, &peer.ip().to_canonical().to_string(), transport, self.normalizer.naive_zone(), received)?;
        if !parsed {
            self.unparsed.fetch_add(1, Relaxed);
            tracing::debug!(%peer, transport, "not a syslog message; kept whole, tagged syslog_unparsed");
        }
        // Only a non-object can fail to normalize, and `to_value` makes objects.
        self.normalizer.normalize_at(value, id, received).ok()
    }

    fn invalid(&self, message: String) {
        self.invalid.fetch_add(1, Relaxed);
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        let loud = errors.len() < MAX_ERRORS;
        RecordInvalid { input: "syslog", message: &message, count: 1, loud }.emit(&self.metrics);
        if loud {
            errors.push(message);
        }
    }

    fn dropped(&self, count: u64) {
        let total = self.dropped.fetch_add(count, Relaxed) + count;
        EventsDropped { input: "syslog", count, total, loud: due(&self.last_drop_warning) }.emit(&self.metrics);
    }

    fn refused(&self, peer: SocketAddr, max: usize) {
        let total = self.refused.fetch_add(1, Relaxed) + 1;
        if due(&self.last_refusal_warning) {
            tracing::warn!(%peer, "syslog: {max} TCP connections are open (max_connections); closing new ones ({total} so far)");
        }
    }

    fn socket_error(&self, what: &str, e: &std::io::Error) {
        if due(&self.last_socket_warning) {
            tracing::warn!("syslog: {what}: {e}");
        } else {
            tracing::debug!("syslog: {what}: {e}");
        }
    }

    fn stats(&self) -> SyslogStats {
        SyslogStats {
            accepted: self.accepted.load(Relaxed),
            unparsed: self.unparsed.load(Relaxed),
            invalid: self.invalid.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            refused_connections: self.refused.load(Relaxed),
            errors: self.errors.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

/// Whether a rate-limited warning may be written now (and notes that it was).
fn due(last: &AtomicU64) -> bool {
    let now = rampart_core::metrics::clock_ns().max(1);
    let prev = last.load(Relaxed);
    (prev == 0 || now.saturating_sub(prev) >= WARN_EVERY_NS) && last.compare_exchange(prev, now, Relaxed, Relaxed).is_ok()
}

/// Reads datagrams until shutdown, then what the kernel already holds. Never waits for
/// the pipeline: a message that finds the queue full is dropped and counted.
async fn read_udp(socket: UdpSocket, local: SocketAddr, shared: Arc<Shared>, tx: flume::Sender<Event>, mut shutdown: Shutdown) {
    // One byte more than the limit, to tell a datagram of exactly `max_message` bytes
    // from a longer one the kernel cut.
    let mut buf = vec![0u8; shared.max_message.min(MAX_DATAGRAM) + 1];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(got) => got,
                Err(e) => {
                    shared.socket_error(&format!("receiving on udp:{local}"), &e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        if tx.is_full() {
            shared.dropped(1);
            continue;
        }
        if let Some(event) = datagram(&shared, &buf[..n], local, peer) {
            match tx.try_send(event) {
                Ok(()) => {}
                Err(flume::TrySendError::Full(_)) => shared.dropped(1),
                Err(flume::TrySendError::Disconnected(_)) => return,
            }
        }
    }
    // Not `try_recv_from`: it trusts readiness the runtime may not have seen yet.
    let until = Instant::now() + DRAIN_WAIT;
    for _ in 0..DRAIN_READS {
        let Ok(Ok((n, peer))) = tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await else { break };
        if let Some(event) = datagram(&shared, &buf[..n], local, peer) {
            if tx.send_async(event).await.is_err() {
                return;
            }
        }
    }
}

fn datagram(shared: &Shared, bytes: &[u8], local: SocketAddr, peer: SocketAddr) -> Option<Event> {
    if bytes.len() > shared.max_message {
        shared.invalid(format!("syslog udp:{local} from {peer}: a datagram longer than max_message ({} bytes); skipped", shared.max_message));
        return None;
    }
    shared.event(bytes, peer, "udp", EventTime::now())
}

/// Accepts connections until shutdown, then waits for them to deliver what they read.
async fn accept_tcp(listener: TcpListener, local: SocketAddr, max: usize, shared: Arc<Shared>, tx: flume::Sender<Event>, mut shutdown: Shutdown) {
    let permits = Arc::new(Semaphore::new(max));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(read_tcp(stream, local, peer, shared.clone(), tx.clone(), shutdown.clone(), permit));
                    }
                    Err(_) => shared.refused(peer, max),
                },
                Err(e) => {
                    // Out of file descriptors and the like: wait for connections to close.
                    shared.socket_error(&format!("accepting on tcp:{local}"), &e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.wait() => break,
        }
    }
    drop(listener);
    drop(tx);
    while connections.join_next().await.is_some() {}
}

/// Reads one connection to its end or shutdown; waits for the pipeline between reads.
async fn read_tcp(mut stream: TcpStream, local: SocketAddr, peer: SocketAddr, shared: Arc<Shared>, tx: flume::Sender<Event>, mut shutdown: Shutdown, _permit: OwnedSemaphorePermit) {
    let mut framer = Framer::new(shared.max_message);
    let mut chunk = vec![0u8; READ_CHUNK];
    let conn = Conn { shared: &shared, local, peer, tx: &tx };
    loop {
        let n = tokio::select! {
            r = stream.read(&mut chunk) => match r {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(%peer, "syslog tcp:{local}: connection failed: {e}");
                    return;
                }
            },
            _ = shutdown.wait() => {
                // Deliver what the sender already sent; a frame still being written is
                // not complete and is left out.
                let until = Instant::now() + DRAIN_WAIT;
                for _ in 0..DRAIN_READS {
                    match tokio::time::timeout_at(until, stream.read(&mut chunk)).await {
                        Ok(Ok(0)) => {
                            conn.finish(&mut framer).await;
                            return;
                        }
                        Ok(Ok(n)) => {
                            framer.push(&chunk[..n]);
                            if !conn.pump(&mut framer).await {
                                return;
                            }
                        }
                        _ => break,
                    }
                }
                return;
            }
        };
        if n == 0 {
            if conn.pump(&mut framer).await {
                conn.finish(&mut framer).await;
            }
            return;
        }
        framer.push(&chunk[..n]);
        if !conn.pump(&mut framer).await {
            return;
        }
    }
}

/// One TCP connection's side of the shared state.
struct Conn<'a> {
    shared: &'a Shared,
    local: SocketAddr,
    peer: SocketAddr,
    tx: &'a flume::Sender<Event>,
}

impl Conn<'_> {
    /// Sends every complete frame; `false` once the pipeline is gone.
    async fn pump(&self, framer: &mut Framer) -> bool {
        let received = EventTime::now();
        while let Some(f) = framer.next_frame() {
            if !self.handle(framer, f, received).await {
                return false;
            }
        }
        true
    }

    /// At the end of the stream: the last frame, even without its newline.
    async fn finish(&self, framer: &mut Framer) {
        if let Some(f) = framer.finish() {
            self.handle(framer, f, EventTime::now()).await;
        }
    }

    async fn handle(&self, framer: &Framer, f: Framed, received: EventTime) -> bool {
        let (local, peer, max) = (self.local, self.peer, self.shared.max_message);
        match f {
            Framed::Frame(r) => {
                if let Some(event) = self.shared.event(framer.bytes(r), peer, "tcp", received) {
                    return self.tx.send_async(event).await.is_ok();
                }
            }
            Framed::TooLong { len: Some(len) } => self.shared.invalid(format!("syslog tcp:{local} from {peer}: a frame of {len} bytes is longer than max_message ({max} bytes); skipped")),
            Framed::TooLong { len: None } => self.shared.invalid(format!("syslog tcp:{local} from {peer}: a line longer than max_message ({max} bytes); skipped to the next newline")),
            Framed::Truncated { want, got } => self.shared.invalid(format!("syslog tcp:{local} from {peer}: the connection closed {got} bytes into a {want}-byte frame; dropped it")),
        }
        true
    }
}

/// Collects events into batches (up to [`MAX_BATCH`], or [`FLUSH_AFTER`] after the first)
/// and hands them to the pipeline, until every reader is done.
async fn deliver(rx: flume::Receiver<Event>, ctx: SourceContext, shared: &Shared) {
    let mut shutdown = ctx.shutdown.clone();
    let mut grace: Option<Instant> = None;
    while let Ok(first) = rx.recv_async().await {
        let mut batch = vec![first];
        let flush_at = Instant::now() + FLUSH_AFTER;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(flume::TryRecvError::Disconnected) => break,
                Err(flume::TryRecvError::Empty) => match tokio::time::timeout_at(flush_at, rx.recv_async()).await {
                    Ok(Ok(e)) => batch.push(e),
                    _ => break,
                },
            }
        }
        let n = batch.len() as u64;
        let send = ctx.out.send_async(batch);
        tokio::pin!(send);
        let sent = match grace {
            None => tokio::select! {
                r = &mut send => Some(r.is_ok()),
                _ = shutdown.wait() => None,
            },
            Some(_) => None,
        };
        // Once shutdown has fired, what was read still goes out, for a bounded time.
        let sent = match sent {
            Some(ok) => ok,
            None => {
                let deadline = *grace.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
                matches!(tokio::time::timeout_at(deadline, send).await, Ok(Ok(())))
            }
        };
        if !sent {
            let lost = n + rx.drain().count() as u64;
            tracing::warn!("syslog: the pipeline did not take the last {lost} messages (it closed, or shutdown's {}s grace ran out)", SHUTDOWN_GRACE.as_secs());
            return;
        }
        shared.accepted.fetch_add(n, Relaxed);
        EventsAccepted { input: "syslog", count: n }.emit(&ctx.metrics);
    }
}

#[cfg(test)]
mod tests;
