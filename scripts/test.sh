#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test (arguments go to
# `cargo test`). Tests that cannot run here (no Docker engine, no rsyslog, …) pass with a
# `SKIP: <test>: <what is missing>` line, which this script collects into a summary at the
# end; under CI=true those tests fail instead. The exit code is cargo test's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

log=$(mktemp "${TMPDIR:-/tmp}/decnet-test.XXXXXX")
trap 'rm -f "$log"' EXIT

status=0
cargo test --locked "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}

# A SKIP line can land mid-line next to libtest's own output: match it anywhere.
skipped=$(grep -ao 'SKIP: .*' "$log" | sed 's/^SKIP: //' | sort -u || true)
if [ -n "$skipped" ]; then
  echo
  echo "Skipped tests: $(printf '%s\n' "$skipped" | wc -l)"
  printf '%s\n' "$skipped" | sed 's/^/  /'
fi
exit "$status"
