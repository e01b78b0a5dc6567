#!/usr/bin/env bash
# Swarm controller speed: heartbeats/s the master's controller sustains from simulated
# agents (each enrolled, on one mTLS connection of its own with its worker certificate,
# the controller pinned, a snapshot of 3 deckies back to back, reconnecting) with p50, p99
# and max latency; the reconnect storm after a master restart (seconds until every agent
# had a 204 again); and the time to deploy 3 deckies to each of N simulated agents. The
# controller and the agents run on tokio runtimes of their own. Builds release once.
# Prints figures and the targets; asserts nothing.
# Knobs: BENCH_AGENTS (256), BENCH_SECS (10), BENCH_DEPLOY_AGENTS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench swarm "$@"
