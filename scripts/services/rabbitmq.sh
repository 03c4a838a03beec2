#!/usr/bin/env bash
# RabbitMQ for Rampart's integration tests: Debian's rabbitmq-server on 127.0.0.1:5672.
# Usage: scripts/services/rabbitmq.sh start|stop|status
#   start  installs rabbitmq-server with apt-get when missing (needs root), starts it
#          detached unless something already answers on 5672, and waits (bounded) until
#          `rabbitmqctl status` answers. Fails loudly, with the log tail, if it cannot.
# Users with their own broker skip this and set RAMPART_AMQP_URL.
set -euo pipefail

port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

start() {
  if port_open; then
    echo "rabbitmq: something already listens on 127.0.0.1:5672; using it"
    return 0
  fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "rabbitmq: installing Debian's rabbitmq-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # The package's postinst tries to start the service; without systemd that may fail
    # harmlessly, so we start it ourselves below.
    apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null || true
    command -v rabbitmq-server >/dev/null 2>&1 || { echo "rabbitmq: apt-get could not install rabbitmq-server" >&2; exit 1; }
  fi
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODENAME=rabbit@localhost
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 90); do
    if rabbitmqctl -n rabbit@localhost status >/dev/null 2>&1 && port_open; then
      echo "rabbitmq: ready on 127.0.0.1:5672"
      return 0
    fi
    sleep 1
  done
  echo "rabbitmq: did not become ready within 90 s" >&2
  tail -n 40 /var/log/rabbitmq/*.log 2>/dev/null >&2 || true
  exit 1
}

stop() { rabbitmqctl -n rabbit@localhost stop >/dev/null 2>&1 || true; echo "rabbitmq: stopped"; }

status() {
  if rabbitmqctl -n rabbit@localhost status >/dev/null 2>&1; then echo "rabbitmq: running"; else echo "rabbitmq: not running"; return 1; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
