#!/usr/bin/env bash
# Service throughput and memory against one decky process each (release build):
#   http   requests/s with wrk (keep-alive, GET /), and the process's VmHWM under that load
#   https  the same over TLS (wrk, HTTP/1.1)
#   ssh    failed-password logins/s, each a full handshake (OpenSSH ssh via sshpass,
#          parallel clients), and VmHWM — only where ssh is emulated ("needs ssh" else)
# Usage: scripts/bench-services.sh [seconds per run, default 10]
# Targets (issue 10): http >= 20,000 req/s, ssh >= 300 failed logins/s, RSS <= 16 MiB.
# Figures go to stdout with the load average; README "Benchmarks / services" records them.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
threads=${BENCH_WRK_THREADS:-2}
conns=${BENCH_WRK_CONNS:-64}
ssh_attempts=${BENCH_SSH_ATTEMPTS:-600}
ssh_parallel=${BENCH_SSH_PARALLEL:-16}
seed=$(printf 'b3%.0s' $(seq 32))

for t in wrk; do
  command -v "$t" >/dev/null || { echo "bench-services: $t missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

cargo build --release --bin decnet >&2
bin=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/decnet
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
  "$bin" decky --service "$svc" --port tcp/0 --seed "$seed" --node bench-01 --distro debian \
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

if "$bin" services | awk '$1 == "ssh"' | grep -q ' emulated '; then
  for t in ssh sshpass; do
    command -v "$t" >/dev/null || { echo "bench-services: $t missing (scripts/setup.sh installs it)" >&2; exit 1; }
  done
  start ssh
  attempt() {
    sshpass -p "wrong password $1" ssh -p "$port" -o StrictHostKeyChecking=no \
      -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o PreferredAuthentications=password \
      -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -o ConnectTimeout=20 \
      "root@127.0.0.1" true 2>/dev/null || true
  }
  export -f attempt
  export port
  t0=$(date +%s.%N)
  seq "$ssh_attempts" | xargs -P "$ssh_parallel" -I{} bash -c 'attempt {}'
  t1=$(date +%s.%N)
  logged=$(grep -c 'secret_b64=' "$work/ssh.log" || true)
  rate=$(awk -v n="$logged" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  echo "ssh: $rate failed logins/s ($logged of $ssh_attempts attempts logged, $ssh_parallel parallel OpenSSH clients, full handshake each), VmHWM $(mib "$(kib "$pid" VmHWM)")"
  kill "$pid"
else
  echo "ssh: needs ssh (the ssh service is still a stand-in here)"
fi
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
