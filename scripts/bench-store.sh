#!/usr/bin/env bash
# Attack-log throughput: parse, octet-counting codec, and SQLite commits through the
# store's writer task, with ~200-byte lines. Prints figures; asserts nothing.
# Knobs: BENCH_ROWS (200000), BENCH_SENDERS (4), BENCH_BATCH (100).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench store "$@"
