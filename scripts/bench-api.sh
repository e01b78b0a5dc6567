#!/usr/bin/env bash
# Master API speed: requests/s, p50 and p99 with 256 keep-alive connections over a store
# of 1,000,000 events (written through the store writer first), for /api/v1/logs?limit=50,
# /api/v1/stats, the dashboard's own mix and login (argon2id), next to a minimal hyper
# "hello JSON" server as the reference (each route's ratio to it), and the master's RSS
# idle and at peak. Builds release once (cargo bench builds decnet too). Prints figures
# and the targets; asserts nothing.
# Knobs: BENCH_ROWS (1000000), BENCH_SECS (10), BENCH_CONNS (256), BENCH_DB (a store file
# to reuse between runs; built there if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench api "$@"
