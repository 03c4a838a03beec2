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

echo "== build"
cargo build --workspace --all-targets --locked

echo "== cargo test"
cargo test --workspace --locked --no-fail-fast -- --test-threads=2

echo "== shipped rule library: rampart rules test"
./target/debug/rampart rules test
