#!/usr/bin/env bash
# Real single-node OpenSearch 2.19 for local runs and CI, built only from Maven Central
# artifacts (no Docker, no tarball download): scripts/services/opensearch/ holds a tiny Java
# launcher that embeds org.opensearch.node.Node with the netty4/analysis-common/mapper-extras/
# reindex/painless/parent-join modules as classpath plugins.
#
# Usage: scripts/services/opensearch.sh start|stop|status|restart
#   start   build the launcher if needed (mvn offline first, then online), start the node in the
#           background and wait until http://HOST:PORT answers with the version JSON.
#           Does nothing if something already answers there.
#   stop    stop the node this script started (pid file), TERM then KILL after 30 s.
#   status  exit 0 and print the version JSON if the port answers, exit 3 otherwise.
# Environment (all optional):
#   OPENSEARCH_HOST (127.0.0.1)  OPENSEARCH_PORT (9200)  OPENSEARCH_TRANSPORT_PORT (9300-9399)
#   OPENSEARCH_HEAP (1g)  OPENSEARCH_WAIT seconds (120)  OPENSEARCH_WIPE=1 wipes data on start
#   OPENSEARCH_STATE (target/services): pid file, log and data; a second node needs its own
# "Up" means the root answers with the version JSON and _cluster/health is at least yellow.
# State: target/services/opensearch.{pid,log}, data in target/services/opensearch/home.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SRC="$ROOT/scripts/services/opensearch"
STATE="${OPENSEARCH_STATE:-$ROOT/target/services}"
PIDFILE="$STATE/opensearch.pid"
LOG="$STATE/opensearch.log"
HOME_DIR="$STATE/opensearch/home"
HOST="${OPENSEARCH_HOST:-127.0.0.1}"
PORT="${OPENSEARCH_PORT:-9200}"
TPORT="${OPENSEARCH_TRANSPORT_PORT:-9300-9399}"
HEAP="${OPENSEARCH_HEAP:-1g}"
WAIT="${OPENSEARCH_WAIT:-120}"
JAR="$SRC/target/opensearch-launcher-0.1.0.jar"
CPFILE="$SRC/target/classpath.txt"

say() { echo "opensearch.sh: $*" >&2; }

# Ready = the root answers AND the cluster is at least yellow (after a restart the root answers
# a few hundred ms before the existing shards are recovered, and searches then fail with 503).
ready() {
  answering || return 1
  curl -s --max-time 3 "http://$HOST:$PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null \
    | grep -q '"timed_out":false'
}

answering() {
  curl -s --max-time 2 "http://$HOST:$PORT" 2>/dev/null | grep -q '"number"'
}

our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

needs_build() {
  [[ -f "$JAR" && -f "$CPFILE" ]] || return 0
  # Sources or pom newer than the jar?
  [[ -n "$(find "$SRC/pom.xml" "$SRC/src" -newer "$JAR" -type f 2>/dev/null | head -1)" ]] && return 0
  # Every classpath entry still in ~/.m2?
  local entry
  while IFS= read -r entry; do
    [[ -e "$entry" ]] || return 0
  done < <(tr ':' '\n' < "$CPFILE")
  return 1
}

build() {
  command -v mvn >/dev/null || { say "mvn not found (apt-get install maven)"; exit 2; }
  command -v java >/dev/null || { say "java not found (apt-get install openjdk-17-jdk-headless)"; exit 2; }
  mkdir -p "$STATE"
  say "building launcher (mvn package)"
  if ! (cd "$SRC" && mvn -q -o -B package -DskipTests >"$STATE/opensearch-build.log" 2>&1); then
    say "offline build failed, retrying online"
    if ! (cd "$SRC" && mvn -q -B package -DskipTests >"$STATE/opensearch-build.log" 2>&1); then
      say "build FAILED; tail of $STATE/opensearch-build.log:"
      tail -40 "$STATE/opensearch-build.log" >&2
      exit 1
    fi
  fi
}

start() {
  if answering; then
    say "already answering on $HOST:$PORT; nothing to do"
    return 0
  fi
  local pid
  if pid="$(our_pid)"; then
    say "node pid $pid is alive but not answering yet; waiting for it"
  else
    if needs_build; then build; fi
    mkdir -p "$STATE" "$HOME_DIR"
    if [[ "${OPENSEARCH_WIPE:-0}" == 1 ]]; then rm -rf "$HOME_DIR/data"; fi
    : >"$LOG"
    # setsid: own process group, so the node survives the caller's shell and job control.
    setsid java \
      "-Xms512m" "-Xmx$HEAP" \
      -XX:+UseG1GC \
      -Djava.awt.headless=true \
      -Dfile.encoding=UTF-8 \
      -Dlog4j2.disable.jmx=true \
      -Dlog4j.shutdownHookEnabled=false \
      -Dopensearch.set.netty.runtime.available.processors=false \
      -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
      -Dio.netty.recycler.maxCapacityPerThread=0 \
      -Drampart.os.home="$HOME_DIR" \
      -Drampart.os.host="$HOST" \
      -Drampart.os.http.port="$PORT" \
      -Drampart.os.transport.port="$TPORT" \
      -cp "$JAR:$(cat "$CPFILE")" \
      dev.rampart.opensearch.Launcher </dev/null >>"$LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    say "started pid $pid, log $LOG"
  fi
  local t0=$SECONDS
  while (( SECONDS - t0 < WAIT )); do
    if ready; then
      say "up on http://$HOST:$PORT after $(( SECONDS - t0 )) s (pid $pid)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "node process $pid DIED during startup; tail of $LOG:"
      tail -60 "$LOG" >&2
      rm -f "$PIDFILE"
      exit 1
    fi
    sleep 1
  done
  say "node did not answer on $HOST:$PORT within $WAIT s; stopping it; tail of $LOG:"
  tail -60 "$LOG" >&2
  stop || true
  exit 1
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PIDFILE"
    if answering; then
      say "something answers on $HOST:$PORT but was not started by this script; leaving it alone"
    else
      say "not running"
    fi
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; say "stopped pid $pid"; return 0; }
    sleep 1
  done
  say "pid $pid ignored TERM for 30 s; killing"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

status() {
  local pid=""
  pid="$(our_pid)" || true
  if answering; then
    curl -s --max-time 2 "http://$HOST:$PORT"
    say "running on http://$HOST:$PORT${pid:+ (pid $pid)}"
    return 0
  fi
  say "not answering on $HOST:$PORT${pid:+ (pid $pid alive, still starting?)}"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  build) build ;;
  *) echo "usage: $0 start|stop|status|restart|build" >&2; exit 2 ;;
esac
