#!/usr/bin/env bash
# Runs every Rampart test from a fresh clone: the workspace's unit and integration tests,
# then the inline tests of the shipped rule library through the built binary.
# Usage: scripts/test.sh            (CI calls exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust toolchain: CI machines have rustup's cargo; fail with a clear message otherwise.
if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo is not installed (install Rust with rustup)" >&2
  exit 2
fi

export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1

# Real services for the integration tests (tests/tests/services_*.rs). Each script installs what
# is missing (apt-get, Maven Central) and does nothing when the service already answers. A
# service that cannot be brought up fails the run here, saying which and why; the tests
# themselves fail (never skip) when they cannot reach it. Point the tests at your own services
# with RAMPART_TEST_AMQP_URL, RAMPART_TEST_ES_URL and RAMPART_TEST_S3_URL/RAMPART_TEST_SQS_URL
# (docs/testing.md).
echo "== services"
if [[ -z "${RAMPART_TEST_AMQP_URL:-}" ]]; then bash scripts/services/rabbitmq.sh start; fi
if [[ -z "${RAMPART_TEST_ES_URL:-}" ]]; then bash scripts/services/opensearch.sh start; fi
if [[ -z "${RAMPART_TEST_S3_URL:-}" || -z "${RAMPART_TEST_SQS_URL:-}" ]]; then bash scripts/services/moto.sh start; fi   # S3 + SQS for tests/tests/services_aws.rs
bash scripts/services/rsyslog.sh install   # rsyslogd + omelasticsearch for tests/tests/http_shippers.rs

echo "== build"
# Every locked package, other platforms' too: the crate-map test reads `cargo metadata
# --offline`, which needs them all, and a build downloads only this platform's.
cargo fetch --locked
cargo build --workspace --all-targets --locked

echo "== cargo test"
cargo test --workspace --locked --no-fail-fast -- --test-threads=2

echo "== shipped rule library: rampart rules test"
"${CARGO_TARGET_DIR:-target}/debug/rampart" rules test
