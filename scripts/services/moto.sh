#!/usr/bin/env bash
# A local S3/SQS-compatible server for Rampart's AWS input tests: moto (PyPI, `moto[server]`)
# on 127.0.0.1:4566, serving S3 and SQS on one port. Nothing here talks to AWS.
# Usage: scripts/services/moto.sh start|stop|status
#   start  installs moto[server] with pip when `moto_server` is missing, starts it detached
#          unless something already answers on 4566, and waits (bounded) until it answers.
#          Fails loudly, with the log tail, if it cannot.
# Users with their own server skip this and set RAMPART_TEST_S3_URL / RAMPART_TEST_SQS_URL.
set -euo pipefail

PORT="${RAMPART_MOTO_PORT:-4566}"
LOG="${TMPDIR:-/tmp}/rampart-moto.log"
PIDFILE="${TMPDIR:-/tmp}/rampart-moto.pid"

answers() { curl -fsS -o /dev/null "http://127.0.0.1:${PORT}/moto-api/" 2>/dev/null; }

start() {
  if answers; then
    echo "moto: something already answers on 127.0.0.1:${PORT}; using it"
    return 0
  fi
  if ! command -v moto_server >/dev/null 2>&1; then
    echo "moto: installing moto[server] from PyPI"
    python3 -m pip install --quiet 'moto[server]' >/dev/null || { echo "moto: pip could not install moto[server]" >&2; exit 1; }
    hash -r
    command -v moto_server >/dev/null 2>&1 || { echo "moto: moto_server is not on PATH after pip install" >&2; exit 1; }
  fi
  # setsid: the server outlives this script (CI starts it, then runs the tests).
  setsid nohup moto_server -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 < /dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 60); do
    if answers; then
      echo "moto: ready on 127.0.0.1:${PORT}"
      return 0
    fi
    sleep 0.5
  done
  echo "moto: did not answer within 30 s" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}

stop() {
  if [[ -f "$PIDFILE" ]]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi
  echo "moto: stopped"
}

status() {
  if answers; then echo "moto: running on 127.0.0.1:${PORT}"; else echo "moto: not running"; return 1; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
