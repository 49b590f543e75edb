#!/usr/bin/env bash
# sysdig-forwarder benchmarks: one command, a table on stdout, bench/results.json and
# bench/catchup.png (see bench/README.md). Not part of the test suite: timings depend on the
# machine. Phases: translate (events/s per format, one core), catch-up (a fast API double with
# a backlog, per-request latency 0/50/100 ms, a rate limit, the sequential bound, a sweep over
# source.max_concurrency), fetch floor (curl alone), steady state (idle and live CPU/RSS,
# delivery latency).
#
# Usage: bench/run.sh [--quick] [--build-dir DIR] [--only PHASES] [driver options...]
#   --quick            smaller sizes (~3 min); writes bench/results-quick.json and
#                      bench/catchup-quick.png (not committed), leaves the README alone
#   --build-dir DIR    where sysdig-forwarder is (default build-rel, else build)
#   --only LIST        comma list of translate,catchup,filter,floor,steady
#   --no-deps          do not install missing tools (gnuplot-nox, curl, time)
#   anything else goes to bench/driver.py (e.g. --latencies 0,100 --concurrency 1,4
#   --rate-limit 50 --backlog-0ms 1000000 --steady-seconds 60; see driver.py --help)
set -euo pipefail
cd "$(dirname "$0")/.."

build="" quick=0 deps=1 pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; pass+=(--quick) ;;
    --build-dir) build=$2; shift ;;
    --no-deps) deps=0 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pass+=("$1") ;;
  esac
  shift
done

# bench-deps: the tools this script needs beyond scripts/install-deps.sh (same way: apt, idempotent)
bench_deps() {
  local pkgs=(gnuplot-nox curl time util-linux python3) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$deps" -eq 0 ]; then echo "bench: missing ${missing[*]} (--no-deps given)" >&2; return 0; fi
  local SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "bench: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
command -v dpkg-query >/dev/null && bench_deps

if [ -z "$build" ]; then
  for d in build-rel build; do [ -x "$d/sysdig-forwarder" ] && { build=$d; break; }; done
fi
BIN=${build:-build-rel}/sysdig-forwarder
[ -x "$BIN" ] || { echo "build first: BUILD_DIR=build-rel BUILD_TYPE=RelWithDebInfo scripts/build.sh" >&2; exit 1; }

if [ "$quick" -eq 1 ]; then
  out=(--results bench/results-quick.json --png bench/catchup-quick.png)
else
  out=(--results bench/results.json --png bench/catchup.png --readme bench/README.md)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sf-bench.XXXXXX")
driver=""
cleanup() {
  set +e
  # the driver stops what it started; this is for a driver that died hard (kill -9)
  [ -n "$driver" ] && kill "$driver" 2>/dev/null && wait "$driver" 2>/dev/null
  if [ -f "$work/pids" ]; then
    while read -r pg; do kill -KILL -- "-$pg" 2>/dev/null || true; done <"$work/pids"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 bench/driver.py --bin "$BIN" --work "$work" "${out[@]}" ${pass[@]+"${pass[@]}"} &
driver=$!
rc=0
wait "$driver" || rc=$?
driver=""
exit "$rc"
