#!/usr/bin/env bash
# rsyslog with its Elasticsearch output (omelasticsearch) for Rampart's real-shipper test
# (tests/tests/http_shippers.rs), which runs its own rsyslogd with its own config and work
# directory; nothing here starts or touches the system's syslog daemon.
# Usage: scripts/services/rsyslog.sh install|status
#   install  installs Debian's rsyslog and rsyslog-elasticsearch with apt-get (needs root)
#            when rsyslogd or the omelasticsearch module is missing; does nothing otherwise.
#            A package postinst that tries to start the system service is harmless here; if
#            it started one, it is left alone (the test uses its own ports and files).
#   status   exit 0 and print the version when rsyslogd and omelasticsearch are installed.
set -euo pipefail

module_present() {
  # The module directory is rsyslog's compiled-in one (multiarch on Debian).
  find /usr/lib /usr/lib64 -name omelasticsearch.so -path '*rsyslog*' 2>/dev/null | grep -q .
}

installed() { command -v rsyslogd >/dev/null 2>&1 && module_present; }

install() {
  if installed; then
    echo "rsyslog: rsyslogd and omelasticsearch already installed"
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "rsyslog: installing needs root: run 'apt-get install -y rsyslog rsyslog-elasticsearch' as root" >&2
    exit 1
  fi
  echo "rsyslog: installing Debian's rsyslog and rsyslog-elasticsearch"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends rsyslog rsyslog-elasticsearch >/dev/null
  installed || { echo "rsyslog: apt-get ran but rsyslogd or omelasticsearch.so is still missing" >&2; exit 1; }
  echo "rsyslog: installed $(rsyslogd -v | head -n 1)"
}

status() {
  if installed; then rsyslogd -v | head -n 1; else echo "rsyslog: not installed (run $0 install)"; return 3; fi
}

case "${1:-}" in
  install) install ;;
  status) status ;;
  *) echo "usage: $0 install|status" >&2; exit 2 ;;
esac
