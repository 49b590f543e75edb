#!/usr/bin/env bash
# The daemon under valgrind, end to end: --once against the fake API into a file sink (raw and
# stix), then follow mode stopped by SIGTERM, then --demo stopped by SIGINT. Any leak or memory
# error fails the test (valgrind --error-exitcode). Skipped in the sanitizer build.
set -euo pipefail
if [ "${SF_SANITIZE:-0}" = 1 ]; then echo "skipped: valgrind does not run ASan binaries"; exit 0; fi
command -v valgrind >/dev/null || { echo "valgrind missing (scripts/install-deps.sh installs it)"; exit 1; }
: "${SF_BIN:?SF_BIN must point at the daemon}" "${SF_SRC:?}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/sf-valgrind-XXXXXX")
api_pid=""
cleanup() {
  # (set -e applies here too: no failing command may end the cleanup before the rm)
  if [ -n "$api_pid" ]; then kill "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true; fi
  if [ "${SF_KEEP_TMP:-0}" = 1 ]; then echo "SF_KEEP_TMP=1: kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
VG=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --track-fds=no)

/usr/bin/python3 "$SF_SRC/tests/fakeapi/sysdig_api.py" --port-file "$dir/port" --token vg-token-123 \
    --events 600 --span 1800 --live-rate 5 >"$dir/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 50); do [ -s "$dir/port" ] && break; sleep 0.1; done
port=$(cat "$dir/port")
cat >"$dir/cfg.yaml" <<YAML
source:
  url: http://127.0.0.1:$port
  token: \${VG_TOKEN}
  page_size: 100
  poll_interval: 1s
  retry: { initial: 100ms, max: 1s }
checkpoint: { path: $dir/checkpoint.json }
sinks:
  - name: raw
    type: file
    path: $dir/raw.ndjson
  - name: stix
    type: file
    format: stix
    path: $dir/stix.ndjson
YAML
export VG_TOKEN=vg-token-123

echo "== --once under valgrind"
"${VG[@]}" "$SF_BIN" -c "$dir/cfg.yaml" --once 2>"$dir/once.err" || { cat "$dir/once.err"; exit 1; }
n=$(wc -l <"$dir/raw.ndjson")
[ "$n" -ge 600 ] || { echo "only $n events delivered"; exit 1; }
[ "$(wc -l <"$dir/stix.ndjson")" -eq "$n" ] || { echo "stix sink count differs"; exit 1; }

echo "== follow mode + SIGTERM under valgrind"
"${VG[@]}" "$SF_BIN" -c "$dir/cfg.yaml" 2>"$dir/follow.err" &
pid=$!
sleep 6
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "follow mode exit $rc"; cat "$dir/follow.err"; exit 1; }

echo "== --demo + SIGINT under valgrind"
"${VG[@]}" "$SF_BIN" --demo >"$dir/demo.out" 2>"$dir/demo.err" &
pid=$!
sleep 5
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "demo exit $rc"; cat "$dir/demo.err"; exit 1; }
[ -s "$dir/demo.out" ] || { echo "demo printed no events"; exit 1; }
echo "1 passed, 0 failed"
