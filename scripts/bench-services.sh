#!/usr/bin/env bash
# Service throughput and memory against one decky process each, run from the binary the
# decky images carry: the static `dist` build of scripts/build-static.sh (BENCH_BIN names
# another, e.g. target/release/decnet):
#   http   requests/s with wrk (keep-alive, GET /), and the process's VmHWM under that load
#   https  the same over TLS (wrk, HTTP/1.1)
#   ssh    failed-password logins/s, each a full handshake (new TCP connection, key
#          exchange, one wrong password, disconnect) from the Rust load generator
#          benches/ssh (russh client, BENCH_SSH_CONNS concurrent), p50/p99, and VmHWM:
#          once at the decky's default auth delay, once with SSH_AUTH_DELAY_MS=0 (the
#          server's own cost) — only where ssh is emulated ("needs ssh" else)
# Usage: scripts/bench-services.sh [seconds per run, default 10]
# Targets (issue 10): http >= 20,000 req/s, ssh >= 300 failed logins/s, RSS <= 16 MiB.
# Figures go to stdout with the load average; README "Benchmarks / services" records them.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
threads=${BENCH_WRK_THREADS:-2}
conns=${BENCH_WRK_CONNS:-64}
ssh_conns=${BENCH_SSH_CONNS:-768}
seed=$(printf 'b3%.0s' $(seq 32))

for t in wrk; do
  command -v "$t" >/dev/null || { echo "bench-services: $t missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

if [ -n "${BENCH_BIN:-}" ]; then
  bin=$BENCH_BIN
else
  bin=$(scripts/build-static.sh | tail -n 1)
fi
cargo bench --no-run --bench ssh >&2
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts `decnet decky --service $1` on a free port; sets $pid and $port. Event lines
# go to a file, as a container's stdout goes to the engine's log.
start() {
  local svc=$1 log="$work/$1.log"
  shift
  env "$@" "$bin" decky --service "$svc" --port tcp/0 --seed "$seed" --node bench-01 --distro debian \
    >"$log" 2>"$work/$svc.err" &
  pid=$!
  pids+=("$pid")
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's/.*ports="tcp\/\([0-9]*\)".*/\1/p' "$log" | head -n 1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "bench-services: $svc did not start: $(cat "$work/$svc.err")" >&2; exit 1; }
}

kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

echo "# bench-services $(date -u +%FT%TZ), load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "# binary: $bin"

web() {
  local svc=$1 scheme=$2
  start "$svc"
  local idle; idle=$(kib "$pid" VmRSS)
  wrk -t "$threads" -c "$conns" -d "${secs}s" --latency "$scheme://127.0.0.1:$port/" >"$work/$svc.wrk"
  local rps p99 events
  rps=$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\)/\1/p' "$work/$svc.wrk")
  p99=$(awk '$1 == "99%" { print $2 }' "$work/$svc.wrk")
  events=$(grep -c ' request ' "$work/$svc.log" || true)
  echo "$svc: $(printf '%.0f' "$rps") requests/s (wrk -t$threads -c$conns ${secs}s, p99 $p99), VmHWM $(mib "$(kib "$pid" VmHWM)") (idle RSS $(mib "$idle")), $events event lines"
  grep -m1 'Socket errors' "$work/$svc.wrk" || true
  kill "$pid"
}

web http http
web https https

# One ssh run: $1 names it, the rest are the decky's environment.
ssh_run() {
  local what=$1
  shift
  start ssh "$@"
  local idle; idle=$(kib "$pid" VmRSS)
  local out
  out=$(BENCH_SSH_ADDR="127.0.0.1:$port" BENCH_SECS="$secs" BENCH_CONNS="$ssh_conns" \
    cargo bench -q --bench ssh 2>/dev/null | grep '^ssh-load:')
  local logged; logged=$(grep -c 'secret_b64=' "$work/ssh.log" || true)
  echo "ssh ($what): ${out#ssh-load: }; $logged auth_attempt lines; VmHWM $(mib "$(kib "$pid" VmHWM)") (idle RSS $(mib "$idle"))"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  : >"$work/ssh.log"
}

if "$bin" services | awk '$1 == "ssh"' | grep -q ' emulated '; then
  # No RSA host key: the client picks ssh-ed25519 (as OpenSSH's does) and the key made in
  # the background would only add its generation to the first seconds.
  ssh_run "default auth delay" SSH_RSA_HOST_KEY=0
  ssh_run "SSH_AUTH_DELAY_MS=0" SSH_RSA_HOST_KEY=0 SSH_AUTH_DELAY_MS=0
else
  echo "ssh: needs ssh (the ssh service is still a stand-in here)"
fi
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
