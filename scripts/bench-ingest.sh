#!/usr/bin/env bash
# Ingestion throughput with the profiler running: BENCH_ROWS (1000000) representative
# events committed through the store's writer, then derived into credentials, bounties
# and attacker profiles by the master's pipeline; prints events/s and peak RSS.
# Knobs: BENCH_ROWS (1000000), BENCH_BATCH (rows per ingestion transaction, 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench ingest "$@"
