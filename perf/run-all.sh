#!/usr/bin/env bash
# Runs every perf scenario RUNS times (default 3) and records the median of each figure:
# perf/results/runs/<name>-<i>.json per run, perf/results/medians.json and a Markdown table
# (perf/results/medians.md) to paste into perf/RESULTS.md. Run it from the repository root on
# a quiet machine:   bash perf/run-all.sh            (RUNS=5 bash perf/run-all.sh for more)
# SCENARIOS="window rules" limits the set; SMALL=1 runs tiny sizes (a smoke test, minutes).
# Scenarios http and amqp need the release `rampart` binary, amqp also RabbitMQ and
# OpenSearch on this machine; the rsigma comparison runs when `rsigma` is on PATH
# (cargo install --locked rsigma@0.23.0).
set -euo pipefail
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -p rampart-perf --bin rampart-perf --bin rampart-perf-memory
cargo build --release --bin rampart
PERF="$TARGET/release/rampart-perf"
if ! command -v rsigma >/dev/null; then
  echo "run-all: rsigma is not on PATH, so the window and sigma cases run without the side-by-side rows (cargo install --locked rsigma@0.23.0)" >&2
fi
OUT=perf/results/runs
mkdir -p "$OUT"

if [[ "${SMALL:-0}" == 1 ]]; then
  declare -A CASES=(
    [engine]="--scenario engine --events 50000"
    [window]="--scenario window --events 100000 --keys 100000"
    [window-half]="--scenario window --events 100000 --keys 100000 --half-max --rsigma none"
    [rules]="--scenario rules --events 30000"
    [sigma]="--scenario sigma --events 5000"
    [http]="--scenario http --events 20000"
    [http-rate]="--scenario http --events 20000 --rate 5000"
    [amqp]="--scenario amqp --events 20000"
    [amqp-batch]="--scenario amqp --events 20000 --batch 100"
    [memory]="--scenario memory --keys 100000"
  )
else
  declare -A CASES=(
    [engine]="--scenario engine --events 500000"
    [window]="--scenario window --events 1000000 --keys 100000"
    [window-half]="--scenario window --events 1000000 --keys 100000 --half-max --rsigma none"
    [rules]="--scenario rules --events 300000"
    [rules-half]="--scenario rules --events 300000 --half-max"
    [sigma]="--scenario sigma --events 20000"
    [http]="--scenario http --events 300000"
    [http-rate]="--scenario http --events 300000 --rate 20000"
    [amqp]="--scenario amqp --events 300000"
    [amqp-batch]="--scenario amqp --events 300000 --batch 100"
    [memory]="--scenario memory --keys 1000000"
  )
fi
SCENARIOS=${SCENARIOS:-"engine window window-half rules rules-half sigma http http-rate amqp amqp-batch memory"}
for name in $SCENARIOS; do
  args=${CASES[$name]:-}
  [[ -z "$args" ]] && { echo "no case named $name" >&2; continue; }
  for i in $(seq 1 "$RUNS"); do
    echo "== $name run $i/$RUNS: rampart-perf $args"
    # shellcheck disable=SC2086
    "$PERF" $args --out "$OUT/$name-$i.json"
  done
done
"$PERF" --scenario summarize --out perf/results/medians.json -- "$OUT"
