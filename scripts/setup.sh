#!/usr/bin/env bash
# Installs what building and testing decnet needs, idempotently: Debian packages and
# rustup components. Safe to run on every CI run; does nothing when all is present.
set -euo pipefail

log() { echo "setup: $*" >&2; }

# Debian packages the tests use as real peers and tools.
packages=(openssl file musl-tools iproute2 rsyslog curl redis-tools swaks mariadb-client postgresql-client expect telnet python3 openssh-client openssh-server sshpass nmap wrk chromium chromium-driver python3-selenium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing packages ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PyPI tools the tests run (schemathesis: the API property test), each only if missing.
for p in schemathesis; do
  python3 -m pip show -q "$p" >/dev/null 2>&1 || { log "pip installing $p"; python3 -m pip install -q "$p" >/dev/null 2>&1 || log "could not install $p"; }
done

if command -v rustup >/dev/null 2>&1; then
  for c in clippy rustfmt; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || { log "adding $c"; rustup component add "$c" >/dev/null 2>&1 || log "could not add $c"; }
  done
  rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    || { log "adding target x86_64-unknown-linux-musl"; timeout 300 rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 || log "musl target unavailable; static builds fall back to glibc"; }
fi

# The Docker engine: the Docker tests need one. Start it when installed but not running
# (a machine whose daemon was stopped), and wait until it answers.
if command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    log "starting dockerd"
    (setsid nohup dockerd > /var/log/dockerd.log 2>&1 < /dev/null &)
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || log "dockerd did not come up; see /var/log/dockerd.log"
  else
    log "the Docker engine is not running; start it with: sudo systemctl start docker"
  fi
fi
