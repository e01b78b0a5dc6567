#!/bin/sh
# Bus throughput (1 -> 1, 1 -> 10) and publish-to-deliver latency, release build.
# Usage: scripts/bench-bus.sh   (figures go to stdout; README "Benchmarks / bus" records them)
set -eu
cd "$(dirname "$0")/.."
exec cargo bench --bench bus "$@"
