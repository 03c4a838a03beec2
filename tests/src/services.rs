//! Helpers for the tests that talk to the real services: a plain OpenSearch client for
//! checking what Rampart wrote, a second OpenSearch node a test can stop and start, and the
//! RabbitMQ side (a confirmed publisher, queue depths through `rabbitmqctl`).
//!
//! Everything here fails loudly, naming the service, the variable that points at it and
//! the script that starts it: a missing service is a failed test, never a skipped one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::transport::Transport;
use elasticsearch::http::Method;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// `RAMPART_TEST_ES_URL`, default `http://127.0.0.1:9200`.
pub fn es_url() -> String {
    std::env::var("RAMPART_TEST_ES_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".into())
}

/// `RAMPART_TEST_AMQP_URL`, default `amqp://guest:guest@127.0.0.1:5672/%2f`.
pub fn amqp_url() -> String {
    std::env::var("RAMPART_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// `RAMPART_TEST_RABBITMQ_NODE`, default `rabbit@localhost` (what the start script runs).
pub fn rabbit_node() -> String {
    std::env::var("RAMPART_TEST_RABBITMQ_NODE").unwrap_or_else(|_| "rabbit@localhost".to_string())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A name (queue, exchange, index prefix) no other test or earlier run uses; lower case,
/// safe for index names.
pub fn unique(what: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("t{}-{what}-{}{:x}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst), nanos % 1_000_000_000)
}

/// A plain client for checking what an output wrote.
pub struct Es {
    transport: Transport,
}

impl Es {
    /// Connects and checks the node answers.
    pub async fn connect(url: &str) -> Es {
        let es = Es { transport: Transport::single_node(url).unwrap() };
        match es.transport.send(Method::Get, "/", HeaderMap::new(), None::<&()>, None::<Vec<u8>>, Some(Duration::from_secs(5))).await {
            Ok(r) if r.status_code().is_success() => es,
            other => panic!(
                "OpenSearch is not answering at {url} ({:?}); start it with `bash scripts/services/opensearch.sh start`, or point RAMPART_TEST_ES_URL at a running node",
                other.map(|r| r.status_code())
            ),
        }
    }

    /// Any call; (status, JSON body or the text as a string).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes());
        let r = self.transport.send(method, path, HeaderMap::new(), None::<&()>, body, None).await.unwrap();
        let status = r.status_code().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A GET that must answer 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(Method::Get, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// Documents in `index` (a name, pattern or alias) after a refresh; 0 when none exists.
    pub async fn count(&self, index: &str) -> u64 {
        self.call(Method::Post, &format!("/{index}/_refresh"), None).await;
        let (_, v) = self.call(Method::Get, &format!("/{index}/_count"), None).await;
        v["count"].as_u64().unwrap_or(0)
    }

    /// Every document of `index` (up to 1,000) as `_id` → source.
    pub async fn docs(&self, index: &str) -> BTreeMap<String, Value> {
        self.call(Method::Post, &format!("/{index}/_refresh"), None).await;
        let v = self.get(&format!("/{index}/_search?size=1000")).await;
        v["hits"]["hits"].as_array().unwrap().iter().map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone())).collect()
    }

    /// Index name → alias names, for the aliases named.
    pub async fn aliases(&self, names: &str) -> BTreeMap<String, Vec<String>> {
        let (_, v) = self.call(Method::Get, &format!("/_alias/{names}"), None).await;
        let mut out = BTreeMap::new();
        for (index, a) in v.as_object().unwrap() {
            if let Some(a) = a.get("aliases").and_then(Value::as_object) {
                out.insert(index.clone(), a.keys().cloned().collect());
            }
        }
        out
    }

    /// Deletes the indices and templates under `prefix`.
    pub async fn cleanup(&self, prefix: &str) {
        self.call(Method::Delete, &format!("/{prefix}-*"), None).await;
        for t in ["events", "alerts", "deadletter"] {
            self.call(Method::Delete, &format!("/_index_template/{prefix}-{t}"), None).await;
        }
    }
}

/// A second OpenSearch node for one test, on free ports with its own state directory,
/// started by `scripts/services/opensearch.sh` and stopped when dropped.
pub struct Node {
    env: Vec<(&'static str, String)>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _state: tempfile::TempDir,
}

impl Node {
    /// Starts the node and waits until it is up (yellow health).
    pub fn start() -> Node {
        let state = tempfile::tempdir().unwrap();
        let port = free_port();
        let tport = free_port();
        let env = vec![
            ("OPENSEARCH_PORT", port.to_string()),
            ("OPENSEARCH_TRANSPORT_PORT", tport.to_string()),
            ("OPENSEARCH_STATE", state.path().display().to_string()),
            ("OPENSEARCH_HEAP", "512m".to_string()),
        ];
        let node = Node { env, url: format!("http://127.0.0.1:{port}"), _state: state };
        node.script("start");
        node
    }

    /// Runs `opensearch.sh VERB` (`start`, `stop`) for this node.
    pub fn script(&self, verb: &str) {
        let script = crate::workspace_root().join("scripts/services/opensearch.sh");
        let out = Command::new("bash").arg(&script).arg(verb).envs(self.env.iter().map(|(k, v)| (k, v))).output().unwrap();
        assert!(out.status.success(), "{} {verb} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.script("stop");
    }
}

/// The test's own RabbitMQ connection, with publisher confirms on its channel.
pub async fn broker() -> (Connection, Channel) {
    let url = amqp_url();
    let conn = match tokio::time::timeout(Duration::from_secs(10), Connection::connect(&url, ConnectionProperties::default())).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "RabbitMQ is not reachable at {} (RAMPART_TEST_AMQP_URL): {e}. Start it with `bash scripts/services/rabbitmq.sh start`, or point RAMPART_TEST_AMQP_URL at a broker.",
            rampart_connectors::redact_url(&url)
        ),
        Err(_) => panic!("RabbitMQ at {} (RAMPART_TEST_AMQP_URL) did not answer within 10 s. Start it with `bash scripts/services/rabbitmq.sh start`.", rampart_connectors::redact_url(&url)),
    };
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    (conn, ch)
}

/// Publishes a persistent JSON message and waits for the broker's confirm.
pub async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8], message_id: Option<&str>) {
    let mut props = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2);
    if let Some(m) = message_id {
        props = props.with_message_id(m.into());
    }
    let confirm = ch.basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props).await.unwrap().await.unwrap();
    assert!(confirm.is_ack(), "the broker refused a test message");
}

/// `rabbitmqctl -n <node> -q ARGS…`, off the runtime thread; fails loudly.
pub async fn rabbitmqctl(args: &[&str]) -> String {
    let node = rabbit_node();
    let mut all = vec!["-n".to_string(), node.clone(), "-q".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let shown = all.join(" ");
    let out = tokio::task::spawn_blocking(move || Command::new("rabbitmqctl").args(&all).output()).await.unwrap();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!(
            "`rabbitmqctl {shown}` failed: {}{} (RAMPART_TEST_RABBITMQ_NODE names the broker's node, default rabbit@localhost; `bash scripts/services/rabbitmq.sh start` starts one)",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run rabbitmqctl ({e}); install rabbitmq-server (`bash scripts/services/rabbitmq.sh start`)"),
    }
}

/// (ready, unacknowledged) messages of `queue`, as the broker counts them.
pub async fn depth(queue: &str) -> (u64, u64) {
    let text = rabbitmqctl(&["list_queues", "name", "messages_ready", "messages_unacknowledged"]).await;
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() == 3 && cols[0] == queue {
            return (cols[1].parse().unwrap(), cols[2].parse().unwrap());
        }
    }
    panic!("queue {queue} is not on the broker: {text}");
}

/// `rampart run --config <file>` as a child process, killed when dropped; its stderr goes
/// to a log file that failure messages quote.
pub struct RampartProcess {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl RampartProcess {
    /// Writes `config` to `dir/rampart.yml` and starts the built binary on it.
    pub fn start(dir: &std::path::Path, config: &str) -> RampartProcess {
        let bin = crate::rampart_bin();
        assert!(bin.exists(), "{} not built: run `cargo build` first (scripts/test.sh does)", bin.display());
        let cfg = dir.join("rampart.yml");
        std::fs::write(&cfg, config).unwrap();
        let check = Command::new(&bin).args(["config", "validate", cfg.to_str().unwrap()]).output().unwrap();
        assert!(check.status.success(), "config does not validate: {}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("rampart-{n}.log"));
        let child = Command::new(bin)
            .args(["run", "--config", cfg.to_str().unwrap()])
            .current_dir(crate::workspace_root())
            .env("RAMPART_LOG", "info")
            .stdout(std::fs::File::create(dir.join(format!("rampart-{n}.stdout"))).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        RampartProcess { child, log }
    }

    /// What it has logged (and printed) so far.
    pub fn log(&self) -> String {
        let out = self.log.with_extension("stdout");
        format!(
            "[rampart log {}]\n{}\n[rampart stdout]\n{}",
            self.log.display(),
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(out).unwrap_or_default()
        )
    }

    /// Kills it at once (SIGKILL): nothing is flushed or acknowledged on the way out.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks it to stop (SIGTERM) and waits up to `grace` for the ordered shutdown.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = std::time::Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        None
    }
}

impl Drop for RampartProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Consumers on `queue`, as the broker counts them (0 when the queue does not exist yet).
pub async fn consumers(queue: &str) -> u64 {
    let text = rabbitmqctl(&["list_queues", "name", "consumers"]).await;
    text.lines().filter_map(|l| l.split_once(char::is_whitespace)).find(|(n, _)| *n == queue).and_then(|(_, c)| c.trim().parse().ok()).unwrap_or(0)
}

/// A text header of an AMQP message; fails when it is absent or not text.
pub fn header(d: &lapin::message::Delivery, key: &str) -> String {
    match d.properties.headers().as_ref().and_then(|h| h.inner().get(key).cloned()) {
        Some(lapin::types::AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("header {key}: {other:?}"),
    }
}
