#!/usr/bin/env bash
# SD-PARAM parse cost per byte for a 1 KiB and a 64 KiB line, and their ratio (about 1
# when parsing is linear in the line length). Prints figures; asserts nothing.
# Knob: BENCH_SECONDS (1) per size.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench parse "$@"
