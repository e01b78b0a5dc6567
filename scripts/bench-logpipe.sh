#!/usr/bin/env bash
# End-to-end attack-log pipeline: `decnet forwarder` → loopback mTLS → `decnet listener`
# → SQLite, as separate processes. Prints committed events/s (from forwarder
# start until the store holds every line) and the peak RSS (VmHWM) of both processes.
# Measures the binary operators run: the static `dist` build of scripts/build-static.sh.
# Knobs: BENCH_LINES (1000000), BENCH_BIN (another decnet binary to measure instead, e.g.
# target/release/decnet). Lines are 200 bytes, decnet RFC 5424 events.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${BENCH_LINES:-1000000}

if [ -n "${BENCH_BIN:-}" ]; then
  bin=$BENCH_BIN
else
  bin=$(scripts/build-static.sh | tail -n 1)
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export DECNET_HOME=$work/home DECNET_LOG_DIR=$work/log DECNET_BUS_ENABLED=false DECNET_LOG_LEVEL=warn
mkdir -p "$DECNET_LOG_DIR"
"$bin" pki init >/dev/null
"$bin" pki issue master >/dev/null
"$bin" pki issue worker bench --out "$work/agent" >/dev/null
"$bin" listener allow bench --cert "$work/agent/worker.crt" >/dev/null

echo "generating $lines lines of 200 bytes" >&2
awk -v n="$lines" 'BEGIN {
  pad = sprintf("%200s", ""); gsub(/ /, "x", pad)
  for (i = 0; i < n; i++) {
    line = sprintf("<134>1 2026-11-29T12:00:00.000000+00:00 decky-%d ssh - login [relay@55555 src_ip=\"10.0.%d.%d\" username=\"root\" n=\"%d\"] attempt %d ", i % 7, int(i / 250) % 250, i % 250, i, i)
    print substr(line pad, 1, 200)
  }
}' >"$DECNET_LOG_DIR/decnet.log"

port=$((20000 + RANDOM % 20000))
"$bin" listener --host 127.0.0.1 --port "$port" 2>"$work/listener.log" &
lpid=$!; pids+=("$lpid")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

start=$(date +%s.%N)
"$bin" forwarder --master-host 127.0.0.1 --master-port "$port" --agent-dir "$work/agent" \
  --log-file "$DECNET_LOG_DIR/decnet.log" --max-lag-mib 1024 2>"$work/forwarder.log" &
fpid=$!; pids+=("$fpid")
"$bin" logs count --at-least "$lines" --timeout 900 >/dev/null
end=$(date +%s.%N)
rss() { awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }
awk -v n="$lines" -v s="$start" -v e="$end" 'BEGIN {
  printf "committed %d events in %.2f s: %.0f events/s\n", n, e - s, n / (e - s) }'
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f s", ($14 + $15) / hz }' "/proc/$1/stat"; }
echo "listener peak RSS: $(rss "$lpid"), CPU: $(cpu "$lpid")"
echo "forwarder peak RSS: $(rss "$fpid"), CPU: $(cpu "$fpid")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
