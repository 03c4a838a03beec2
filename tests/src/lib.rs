//! `rampart-tests`: integration tests that span crates or run the built `rampart` binary.
//! The tests live in `tests/tests/`:
//!
//! - `crate_graph.rs`: the dependency map of `STYLE.md` holds (no forbidden edge).
//! - `golden.rs`: cases under `tests/cases/<case>/` replayed at 1, 2 and 4 workers.
//! - `workers.rs`: 1 and 4 workers (and a restart onto another worker count) give the same
//!   alerts over the shipped library, new_term and spike rules and the demo traffic.
//! - `cli.rs`: `rampart replay`, `rules validate`, `rules test` and the HTTP input,
//!   through the real binary.
//! - `kibana.rs`: `rampart kibana import/export` against a stand-in for Kibana's import API.
//! - `http_shippers.rs`: real log shippers (rsyslog's `omelasticsearch`) sending to the
//!   binary's HTTP input as if it were Elasticsearch.
//! - `services_elasticsearch.rs`: the Elasticsearch output against a real OpenSearch node.
//! - `services_amqp.rs`: the AMQP input and output against a real RabbitMQ
//!   (`RAMPART_TEST_AMQP_URL`): acks after the outputs settle, requeue, dead letters,
//!   reconnection, prefetch, publisher confirms.
//! - `services_aws.rs`: the `cloudtrail` and `sqs` inputs against moto, a local
//!   S3/SQS-compatible server (`RAMPART_TEST_S3_URL`, `RAMPART_TEST_SQS_URL`), and
//!   `rampart run` reading a bucket end to end.
//!
//! This library holds only the helpers those tests share ([`services`] for the real
//! services).

use std::path::PathBuf;

pub mod services;

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Path of the `rampart` binary built by cargo for this test run: `$RAMPART_BIN` when set,
/// otherwise `target/<profile>/rampart` next to the test executable.
pub fn rampart_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RAMPART_BIN") {
        return PathBuf::from(p);
    }
    // The test executable is target/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(|d| d.parent()).map(PathBuf::from).unwrap_or_default();
    profile_dir.join("rampart")
}

/// Calls `f` every 100 ms until it returns true or `deadline` passes; whether it did.
pub fn wait_for(deadline: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}
