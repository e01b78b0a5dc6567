#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test.
# Tests that need Docker print "SKIP: no docker engine" where none runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --locked "$@"
