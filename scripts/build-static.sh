#!/usr/bin/env bash
# Builds the statically linked release binary and proves it is static.
#
# Prefers x86_64-unknown-linux-musl (installing musl-tools and the rustup target when
# missing); falls back to glibc with +crt-static where the musl target can't be had.
# Prints the absolute path of the binary on the last line of stdout, wherever cargo put it
# (CARGO_TARGET_DIR, build.target-dir): the path is the one cargo reports for the artifact.
#
# Usage: scripts/build-static.sh [--profile dist|release]
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dist
if [ "${1:-}" = "--profile" ] && [ -n "${2:-}" ]; then profile=$2; fi

log() { echo "build-static: $*" >&2; }

artifacts=$(mktemp "${TMPDIR:-/tmp}/decnet-build.XXXXXX")
trap 'rm -f "$artifacts"' EXIT

have_musl_target() { rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; }

if ! command -v musl-gcc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing musl-tools"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null 2>&1; } \
    || log "musl-tools unavailable"
fi
if ! have_musl_target && command -v rustup >/dev/null 2>&1; then
  log "adding rustup target x86_64-unknown-linux-musl"
  timeout 300 rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 || log "musl target unavailable"
fi

if have_musl_target && command -v musl-gcc >/dev/null 2>&1; then
  target=x86_64-unknown-linux-musl
  export CC_x86_64_unknown_linux_musl=musl-gcc
  log "building $target (profile $profile)"
  cargo build --locked --profile "$profile" --target "$target" \
    --message-format=json-render-diagnostics >"$artifacts"
else
  target=x86_64-unknown-linux-gnu
  log "musl not available: building $target with +crt-static (profile $profile)"
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --locked --profile "$profile" --target "$target" \
    --message-format=json-render-diagnostics >"$artifacts"
fi

# The compiler-artifact message of the decnet binary names its executable.
bin=$(grep -o '"executable":"[^"]*/decnet"' "$artifacts" | tail -n 1 | sed 's/^"executable":"//; s/"$//')
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  log "FAIL: cargo reported no decnet executable"
  exit 1
fi
file "$bin" >&2
if ldd "$bin" >/dev/null 2>&1 && ! ldd "$bin" 2>&1 | grep -q 'statically linked'; then
  log "FAIL: $bin is dynamically linked:"
  ldd "$bin" >&2
  exit 1
fi
file "$bin" | grep -Eq 'static(ally|-pie) linked' || { log "FAIL: file does not report a static binary"; exit 1; }
"$bin" --version >&2
log "OK: $(stat -c %s "$bin") bytes, statically linked"
echo "$bin"
