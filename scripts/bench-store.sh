#!/usr/bin/env bash
# Attack-log throughput: parse, octet-counting codec, and SQLite commits through the
# store's writer task, with ~200-byte lines, next to the raw rate of the same rows inserted
# with plain SQL into the same schema, and the ratio of the two (the figure that survives
# a noisy machine). Prints figures; asserts nothing.
# Knobs: BENCH_ROWS (200000), BENCH_SENDERS (4), BENCH_BATCH (500), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench store "$@"
