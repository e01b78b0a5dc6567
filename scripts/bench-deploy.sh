#!/usr/bin/env bash
# Times `decnet deploy` and `decnet teardown --all` of 10 and 50 deckies (one service
# each) and prints the RSS of one idle decky process (base container) and one service.
#
# Runs on a throw-away Linux bridge (MACVLAN parent) with 203.0.113.0/24 (or the /24
# given as BENCH_NET=a.b.c.0, never a network this host uses), under its own Docker
# network name and a temporary DECNET_HOME, so it touches nothing else on the host;
# everything is removed on exit. Needs root and a Docker engine.
#
# Usage: scripts/bench-deploy.sh [COUNT...]        (default: 10 50)
# The static binary: $DECNET_DECKY_BINARY, else built by scripts/build-static.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10 50)

bin=${DECNET_DECKY_BINARY:-$(scripts/build-static.sh | tail -1)}
bin=$(realpath "$bin")
net=${BENCH_NET:-203.0.113.0}
prefix=${net%.*}
tag=$(printf '%06x' $((RANDOM * RANDOM % 16777216)))
bridge=dnb$tag
network=decnet_bench$tag
home=$(mktemp -d)
export DECNET_HOME=$home DECNET_DECKY_BINARY=$bin

cleanup() {
  "$bin" teardown --all >/dev/null 2>&1 || true
  ids=$(docker ps -aq --filter "label=decnet.fleet.network=$network")
  [ -z "$ids" ] || { docker stop -t 2 $ids; docker rm -f $ids; } >/dev/null 2>&1 || true
  # Docker frees endpoints of removed containers asynchronously; pulling the parent
  # bridge away before the network is gone can leave Docker with a stuck endpoint count.
  for _ in $(seq 40); do
    docker network inspect "$network" >/dev/null 2>&1 || break
    docker network rm "$network" >/dev/null 2>&1 || sleep 0.25
  done
  ip link del "$bridge" 2>/dev/null || true
  rm -rf "$home"
}
trap cleanup EXIT

ip link add "$bridge" type bridge
ip addr add "$prefix.253/24" dev "$bridge"
ip link set "$bridge" up

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

deploy() { # deploy COUNT: COUNT deckies running ssh, at .10 upwards
  # Explicit addresses from .10 and the gateway at .254: a Docker 20.10 engine that lost
  # count of an older network's endpoints (moby/moby#42119) keeps its pool and its .1.
  local ini=$home/bench.ini i
  printf '[general]\nnet = %s/24\ngw = %s.254\ninterface = %s\n' "$net" "$prefix" "$bridge" >"$ini"
  for i in $(seq 1 "$1"); do
    printf '\n[b%s-%02d]\nip = %s.%d\nservices = ssh\n' "$tag" "$i" "$prefix" $((9 + i)) >>"$ini"
  done
  "$bin" deploy -c "$ini" --network-name "$network" --seed 1 >"$home/deploy.out" 2>"$home/deploy.err" \
    || { cat "$home/deploy.err" >&2; exit 1; }
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$(docker inspect -f '{{.State.Pid}}' "$1")/status"; }

echo "bench-deploy: $(nproc) cores, Docker $(docker version -f '{{.Server.Version}}'), binary $(stat -c %s "$bin") bytes"
# Warm-up: builds the image once, so the timings below are deploys, not builds.
deploy 1
"$bin" teardown --all >/dev/null

for n in "${counts[@]}"; do
  t0=$(now); deploy "$n"; t1=$(now)
  up=$(grep -c ' up$' "$home/deploy.out" || true)
  if [ "$n" = "${counts[0]}" ]; then
    base_rss=$(rss_kib "b$tag-01")
    svc_rss=$(rss_kib "b$tag-01-ssh")
  fi
  t2=$(now); "$bin" teardown --all >/dev/null; t3=$(now)
  echo "deckies=$n up=$up deploy_s=$(secs "$t0" "$t1") teardown_s=$(secs "$t2" "$t3")"
done
awk -v b="$base_rss" -v s="$svc_rss" 'BEGIN { printf "idle decky RSS: %.2f MiB (base, decky --idle); ssh service RSS: %.2f MiB\n", b / 1024, s / 1024 }'
