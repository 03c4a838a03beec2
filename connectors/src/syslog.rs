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

use crate::error::ConnectorError;
use crate::events::{EventsAccepted, EventsDropped, RecordInvalid};
use crate::source::{Shutdown, SourceContext, MAX_BATCH};
use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone};
use rampart_core::normalize::SYNONYMS;
use rampart_core::time::{parse_timestamp, NaiveZone};
use rampart_core::{Event, EventId, EventTime, Normalizer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::ops::Range;
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

// ---------------------------------------------------------------------------------------
// TCP framing (RFC 6587)

/// Splits a TCP byte stream into frames, octet-counted or newline-delimited, in at most
/// `max` bytes of message plus one read of buffer.
#[derive(Debug)]
struct Framer {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    skip: Skip,
}

#[derive(Debug, PartialEq)]
enum Skip {
    Nothing,
    /// The rest of an octet-counted frame that was too long.
    Bytes(u64),
    /// The rest of a line that was too long.
    Line,
}

/// What the framer found.
#[derive(Debug, PartialEq)]
enum Framed {
    /// A frame: [`Framer::bytes`] gives its bytes until the next `push`.
    Frame(Range<usize>),
    /// Longer than `max` (its length, when the framing tells it); skipped.
    TooLong { len: Option<u64> },
    /// The stream ended inside an octet-counted frame.
    Truncated { want: u64, got: usize },
}

/// More digits than this cannot be an octet count (and the frame is read as a line).
const MAX_COUNT_DIGITS: usize = 10;

fn is_separator(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | b'\0')
}

impl Framer {
    fn new(max: usize) -> Framer {
        Framer { buf: Vec::new(), start: 0, max, skip: Skip::Nothing }
    }

    fn push(&mut self, data: &[u8]) {
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(data);
    }

    fn bytes(&self, r: Range<usize>) -> &[u8] {
        self.buf.get(r).unwrap_or_default()
    }

    /// An octet count at `start`: `Some(Some((digits, len)))` for `LEN SP`, `Some(None)`
    /// when only digits have arrived so far, `None` when this is not one.
    fn octet_count(&self) -> Option<Option<(usize, u64)>> {
        let rest = &self.buf[self.start..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > MAX_COUNT_DIGITS {
            return None;
        }
        match rest.get(digits) {
            None => Some(None),
            Some(b' ') => {
                let len = rest[..digits].iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                Some(Some((digits, len)))
            }
            Some(_) => None,
        }
    }

    /// The next complete frame, or `None` until more bytes arrive.
    fn next_frame(&mut self) -> Option<Framed> {
        loop {
            match self.skip {
                Skip::Bytes(n) => {
                    let k = n.min((self.buf.len() - self.start) as u64);
                    self.start += k as usize;
                    if k < n {
                        self.skip = Skip::Bytes(n - k);
                        return None;
                    }
                    self.skip = Skip::Nothing;
                }
                Skip::Line => match memchr::memchr2(b'\n', b'\0', &self.buf[self.start..]) {
                    Some(i) => {
                        self.start += i + 1;
                        self.skip = Skip::Nothing;
                    }
                    None => {
                        self.start = self.buf.len();
                        return None;
                    }
                },
                Skip::Nothing => {}
            }
            while self.buf.get(self.start).is_some_and(|b| is_separator(*b)) {
                self.start += 1;
            }
            if self.start == self.buf.len() {
                return None;
            }
            match self.octet_count() {
                Some(None) => return None,
                Some(Some((digits, len))) => {
                    let body = self.start + digits + 1;
                    if len > self.max as u64 {
                        self.start = body;
                        self.skip = Skip::Bytes(len);
                        return Some(Framed::TooLong { len: Some(len) });
                    }
                    let end = body + len as usize;
                    if end > self.buf.len() {
                        return None;
                    }
                    self.start = end;
                    if len == 0 {
                        continue;
                    }
                    return Some(Framed::Frame(body..end));
                }
                None => {}
            }
            let begin = self.start;
            let Some(i) = memchr::memchr2(b'\n', b'\0', &self.buf[begin..]) else {
                if self.buf.len() - begin > self.max {
                    self.start = self.buf.len();
                    self.skip = Skip::Line;
                    return Some(Framed::TooLong { len: None });
                }
                return None;
            };
            self.start = begin + i + 1;
            let end = if i > 0 && self.buf[begin + i - 1] == b'\r' { begin + i - 1 } else { begin + i };
            if end - begin > self.max {
                return Some(Framed::TooLong { len: Some((end - begin) as u64) });
            }
            return Some(Framed::Frame(begin..end));
        }
    }

    /// At the end of the stream (after [`Framer::next_frame`] returned `None`): the last
    /// line even without a newline, or the octet-counted frame it cut off.
    fn finish(&mut self) -> Option<Framed> {
        if self.skip != Skip::Nothing {
            return None;
        }
        let begin = self.start;
        self.start = self.buf.len();
        if begin == self.buf.len() {
            return None;
        }
        let rest = &self.buf[begin..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if (1..=MAX_COUNT_DIGITS).contains(&digits) && rest.get(digits) == Some(&b' ') {
            let want = rest[..digits].iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            return Some(Framed::Truncated { want, got: rest.len() - digits - 1 });
        }
        let end = if rest.last() == Some(&b'\r') { self.buf.len() - 1 } else { self.buf.len() };
        Some(Framed::Frame(begin..end))
    }
}

// ---------------------------------------------------------------------------------------
// Parsing (RFC 5424, RFC 3164)

/// RFC 5424 facility names, by code.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
/// Severity names (as syslog.conf writes them), by code.
const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
/// The same severities in MozDef's words: emerg, alert and crit are all `CRITICAL`.
const MOZDEF_SEVERITIES: [&str; 8] = ["CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// One syslog message, parsed; its text borrows the line.
#[derive(Debug, PartialEq)]
struct Message<'a> {
    format: &'static str,
    pri: Option<u8>,
    /// The timestamp as sent (`None` when absent or NILVALUE).
    stamp: Option<&'a str>,
    /// The timestamp read, when it could be.
    time: Option<EventTime>,
    hostname: Option<&'a str>,
    app: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    /// `{SD-ID: {PARAM: value}}`; a repeated PARAM becomes an array.
    sd: Map<String, Value>,
    msg: &'a str,
}

/// A frame as the JSON the normalizer takes, and whether it parsed as syslog; `None` for
/// a blank frame.
fn to_value(frame: &[u8], sender: &str, transport: &str, zone: NaiveZone, received: EventTime) -> Option<(Value, bool)> {
    let text = String::from_utf8_lossy(frame);
    let line = text.trim_end_matches(is_separator_char);
    if line.trim().is_empty() {
        return None;
    }
    Some(match parse(line, zone, received) {
        Some(m) => (m.into_value(sender, transport), true),
        None => (json!({"category": "syslog", "summary": line, "tags": ["syslog_unparsed"], "details": {"syslog": {"sender": sender, "transport": transport}}}), false),
    })
}

fn is_separator_char(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\0')
}

/// Parses a line as RFC 5424 or RFC 3164; `None` when it is neither.
fn parse(line: &str, zone: NaiveZone, received: EventTime) -> Option<Message<'_>> {
    let (pri, rest) = match line.strip_prefix('<') {
        Some(r) => {
            let end = r.find('>')?;
            let digits = &r[..end];
            if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let pri: u8 = digits.parse().ok().filter(|p| *p <= 191)?;
            (Some(pri), &r[end + 1..])
        }
        None => (None, line),
    };
    // `1 ` after PRI is RFC 5424's VERSION; a 3164 stamp starts with a month or a year.
    let version_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if pri.is_some() && (1..=3).contains(&version_len) && rest.as_bytes().get(version_len) == Some(&b' ') {
        return parse_5424(pri, &rest[version_len + 1..], zone, received);
    }
    parse_3164(pri, rest, zone, received)
}

/// `TIMESTAMP HOST APP PROCID MSGID SD [MSG]`, after `<PRI>VERSION `.
fn parse_5424(pri: Option<u8>, rest: &str, zone: NaiveZone, received: EventTime) -> Option<Message<'_>> {
    fn field(s: &str) -> Option<(&str, &str)> {
        let (tok, after) = s.split_once(' ').unwrap_or((s, ""));
        (!tok.is_empty()).then_some((tok, after))
    }
    fn nil(s: &str) -> Option<&str> {
        (s != "-").then_some(s)
    }
    let (stamp, rest) = field(rest)?;
    let (hostname, rest) = field(rest)?;
    let (app, rest) = field(rest)?;
    let (procid, rest) = field(rest)?;
    let (msgid, rest) = field(rest)?;
    let (sd, msg) = if rest == "-" || rest.starts_with("- ") {
        (Map::new(), rest.get(2..).unwrap_or(""))
    } else if rest.starts_with('[') {
        let (sd, after) = parse_sd(rest)?;
        match after.strip_prefix(' ') {
            Some(msg) => (sd, msg),
            None if after.is_empty() => (sd, after),
            None => return None,
        }
    } else {
        // No STRUCTURED-DATA at all (a common sender mistake): the rest is the message.
        (Map::new(), rest)
    };
    let stamp = nil(stamp);
    Some(Message {
        format: "rfc5424",
        pri,
        stamp,
        time: stamp.and_then(|s| parse_timestamp(s, zone, received)),
        hostname: nil(hostname),
        app: nil(app),
        procid: nil(procid),
        msgid: nil(msgid),
        sd,
        msg: msg.strip_prefix('\u{feff}').unwrap_or(msg),
    })
}

/// `[ID PARAM="value" …][…]…`; returns the elements and what follows them.
fn parse_sd(mut s: &str) -> Option<(Map<String, Value>, &str)> {
    let mut out = Map::new();
    while let Some(r) = s.strip_prefix('[') {
        let id_end = r.find([' ', ']'])?;
        let id = &r[..id_end];
        if id.is_empty() || id.contains(['=', '"']) {
            return None;
        }
        let mut params = match out.shift_remove(id) {
            Some(Value::Object(p)) => p,
            _ => Map::new(),
        };
        let mut r = &r[id_end..];
        loop {
            if let Some(after) = r.strip_prefix(']') {
                r = after;
                break;
            }
            r = r.strip_prefix(' ')?;
            let eq = r.find('=')?;
            let name = &r[..eq];
            if name.is_empty() || name.contains([' ', ']', '"']) {
                return None;
            }
            let (value, after) = sd_value(r[eq + 1..].strip_prefix('"')?)?;
            match params.get_mut(name) {
                Some(Value::Array(a)) => a.push(Value::String(value)),
                Some(first) => *first = Value::Array(vec![first.take(), Value::String(value)]),
                None => {
                    params.insert(name.to_string(), Value::String(value));
                }
            }
            r = after;
        }
        out.insert(id.to_string(), Value::Object(params));
        s = r;
    }
    Some((out, s))
}

/// A PARAM-VALUE up to its closing quote, unescaping `\"`, `\\` and `\]` (a backslash
/// before anything else is kept, as RFC 5424 says).
fn sd_value(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => match chars.clone().next() {
                Some((_, e @ ('"' | '\\' | ']'))) => {
                    value.push(e);
                    chars.next();
                }
                _ => value.push('\\'),
            },
            c => value.push(c),
        }
    }
    None
}

/// `STAMP [HOST] [TAG[PID]:] MSG`, PRI already taken (or absent).
fn parse_3164(pri: Option<u8>, rest: &str, zone: NaiveZone, received: EventTime) -> Option<Message<'_>> {
    let (stamp, time, rest) = bsd_stamp(rest, zone, received).or_else(|| iso_stamp(rest, zone, received))?;
    let rest = rest.trim_start_matches(' ');
    let (first, after) = rest.split_once(' ').unwrap_or((rest, ""));
    // Local senders leave HOST out: then the first word is already the tag.
    let (hostname, rest) = if first.ends_with(':') || (first.contains('[') && first.ends_with(']')) { (None, rest) } else { (Some(first).filter(|h| !h.is_empty()), after) };
    let (app, procid, msg) = split_tag(rest);
    Some(Message { format: "rfc3164", pri, stamp: Some(stamp), time, hostname, app, procid, msgid: None, sd: Map::new(), msg })
}

/// `TAG[PID]: MSG` or `TAG: MSG`; anything else is all message.
fn split_tag(s: &str) -> (Option<&str>, Option<&str>, &str) {
    let end = s.find(|c: char| c == '[' || c == ':' || c.is_whitespace()).unwrap_or(s.len());
    let (tag, after) = s.split_at(end);
    if tag.is_empty() {
        return (None, None, s);
    }
    /// The message after a tag: nothing, or a space and the text.
    fn msg(r: &str) -> Option<&str> {
        (r.is_empty() || r.starts_with(' ')).then(|| r.strip_prefix(' ').unwrap_or(r))
    }
    if let Some(r) = after.strip_prefix('[') {
        if let Some((pid, r)) = r.split_once(']') {
            if let Some(m) = msg(r.strip_prefix(':').unwrap_or(r)) {
                return (Some(tag), Some(pid).filter(|p| !p.is_empty()), m);
            }
        }
    } else if let Some(m) = after.strip_prefix(':').and_then(msg) {
        return (Some(tag), None, m);
    }
    (None, None, s)
}

/// `Mmm dd [yyyy] hh:mm:ss[.fff]`: the stamp's text, its time, and what follows.
fn bsd_stamp(s: &str, zone: NaiveZone, received: EventTime) -> Option<(&str, Option<EventTime>, &str)> {
    let b = s.as_bytes();
    let month = MONTHS.iter().position(|m| b.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(m.as_bytes())))? as u32 + 1;
    let mut i = 3;
    let spaces = b[i..].iter().take_while(|c| **c == b' ').count();
    if spaces == 0 {
        return None;
    }
    i += spaces;
    let day = number(b, &mut i, 1, 2)?;
    byte(b, &mut i, b' ')?;
    let mut year = None;
    if b.get(i + 4) == Some(&b' ') {
        year = Some(number(b, &mut i, 4, 4)? as i32);
        byte(b, &mut i, b' ')?;
    }
    let hour = number(b, &mut i, 2, 2)?;
    byte(b, &mut i, b':')?;
    let minute = number(b, &mut i, 2, 2)?;
    byte(b, &mut i, b':')?;
    let second = number(b, &mut i, 2, 2)?;
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let frac = number(b, &mut i, 1, 9)?;
        nanos = frac * 10u32.pow(9 - (i - start) as u32);
    }
    if i < b.len() && b[i] != b' ' {
        return None;
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos);
    let at = |y: i32| {
        let local = NaiveDate::from_ymd_opt(y, month, day)?.and_time(time?);
        zone.0.from_local_datetime(&local).single().map(EventTime::from_datetime)
    };
    let time = match year {
        Some(y) => at(y),
        None => {
            // The year that puts the stamp closest to when it arrived: a December line
            // read on 1 January is last year's, a clock a little ahead stays this year.
            let this = received.to_datetime().with_timezone(&zone.0).year();
            [this - 1, this, this + 1].into_iter().filter_map(at).min_by_key(|t| t.0.abs_diff(received.0))
        }
    };
    Some((&s[..i], time, &s[i..]))
}

/// An ISO-8601 stamp (`2026-11-27T18:59:09.123456+01:00`) as rsyslog's high-precision
/// format sends it.
fn iso_stamp(s: &str, zone: NaiveZone, received: EventTime) -> Option<(&str, Option<EventTime>, &str)> {
    let b = s.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let (stamp, rest) = s.split_at(s.find(' ').unwrap_or(s.len()));
    Some((stamp, parse_timestamp(stamp, zone, received), rest))
}

/// `min..=max` ASCII digits at `*i`.
fn number(b: &[u8], i: &mut usize, min: usize, max: usize) -> Option<u32> {
    let n = b.get(*i..)?.iter().take(max).take_while(|c| c.is_ascii_digit()).count();
    if n < min {
        return None;
    }
    let v = b[*i..*i + n].iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    *i += n;
    Some(v)
}

fn byte(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (b.get(*i) == Some(&c)).then(|| *i += 1)
}

impl Message<'_> {
    /// The JSON the normalizer takes: MozDef's fields from the header, or, when MSG is a
    /// JSON object, that object with the header filling only what it lacks.
    fn into_value(self, sender: &str, transport: &str) -> Value {
        let mut meta = Map::new();
        meta.insert("format".into(), json!(self.format));
        if let Some(p) = self.pri {
            meta.insert("facility".into(), json!(FACILITIES[usize::from(p / 8)]));
            meta.insert("severity".into(), json!(SEVERITIES[usize::from(p % 8)]));
            meta.insert("pri".into(), json!(p));
        }
        if let Some(id) = self.msgid {
            meta.insert("msgid".into(), json!(id));
        }
        if !self.sd.is_empty() {
            meta.insert("structured_data".into(), Value::Object(self.sd));
        }
        meta.insert("sender".into(), json!(sender));
        meta.insert("transport".into(), json!(transport));

        // A stamp that could not be read goes to the normalizer as text: it keeps it in
        // `details` and tags the event `timestamp-unparsed`.
        let time = self.time.map(|t| json!(t.to_rfc3339())).or_else(|| self.stamp.map(|s| json!(s)));
        let mut header = vec![("category", json!("syslog"))];
        header.extend(time.map(|t| ("utctimestamp", t)));
        header.extend(self.pri.map(|p| ("severity", json!(MOZDEF_SEVERITIES[usize::from(p % 8)]))));
        header.extend(self.hostname.map(|h| ("hostname", json!(h))));
        header.extend(self.app.map(|a| ("processname", json!(a))));
        header.extend(self.procid.map(|p| ("processid", json!(p))));

        let body = self.msg.trim();
        if body.starts_with('{') {
            if let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(body) {
                for (k, v) in [("hostname", self.hostname), ("appname", self.app), ("procid", self.procid), ("timestamp", self.stamp)] {
                    if let Some(v) = v {
                        meta.insert(k.into(), json!(v));
                    }
                }
                for (field, v) in header {
                    let synonyms = SYNONYMS.iter().find(|(f, _)| *f == field).map(|(_, s)| *s).unwrap_or(&[]);
                    if !obj.contains_key(field) && !synonyms.iter().any(|k| obj.contains_key(*k)) {
                        obj.insert(field.into(), v);
                    }
                }
                add_syslog_details(&mut obj, meta);
                return Value::Object(obj);
            }
        }
        let mut doc: Map<String, Value> = header.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        doc.insert("summary".into(), json!(self.msg));
        doc.insert("details".into(), json!({ "syslog": meta }));
        Value::Object(doc)
    }
}

/// Puts the header under `details.syslog`, never over anything the sender sent there.
fn add_syslog_details(obj: &mut Map<String, Value>, meta: Map<String, Value>) {
    match obj.get_mut("details") {
        Some(Value::Object(details)) => match details.get_mut("syslog") {
            Some(Value::Object(theirs)) => {
                for (k, v) in meta {
                    theirs.entry(k).or_insert(v);
                }
            }
            Some(_) => {}
            None => {
                details.insert("syslog".into(), Value::Object(meta));
            }
        },
        Some(Value::Null) | None => {
            obj.insert("details".into(), json!({ "syslog": meta }));
        }
        // The normalizer keeps a non-object `details` as `details.details`; do the same
        // here so the header can sit beside it.
        Some(other) => {
            let theirs = other.take();
            *other = json!({ "details": theirs, "syslog": meta });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::shutdown_pair;
    use crate::{InputConfig, ShutdownTrigger};
    use rampart_core::{Counter, Metrics, NormalizerConfig};
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
}
