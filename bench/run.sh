#!/usr/bin/env bash
# Benchmarks (not part of the test suite; timings vary with the machine):
#  1. translate: events/s per format over N synthetic events (NDJSON)
#  2. tail: events/s end to end (fake API -> daemon --once -> file sink, fsync per page)
# Usage: bench/run.sh [build-dir] [events]   (default: build, 50000)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build}/sysdig-forwarder
N=${2:-50000}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh"; exit 1; }
tmp=$(mktemp -d)
trap 'kill $api 2>/dev/null || true; rm -rf "$tmp"' EXIT
api=""

/usr/bin/python3 - "$N" >"$tmp/events.ndjson" <<'PY'
import json, sys
src = json.load(open("tests/fakeapi/seed_templates.json"))
tpl = src if isinstance(src, list) else src.get("data", src)
n = int(sys.argv[1])
for i in range(n):
    e = dict(tpl[i % len(tpl)])
    e["id"] = "%032x" % i
    e["timestamp"] = 1709626200000000000 + i * 1000
    print(json.dumps(e, separators=(",", ":")))
PY
echo "translate, $N events:"
for f in raw stix stix21 cef leef; do
  s=$(date +%s.%N)
  "$BIN" translate --format "$f" "$tmp/events.ndjson" >/dev/null
  e=$(date +%s.%N)
  awk -v n="$N" -v s="$s" -v e="$e" -v f="$f" 'BEGIN{printf "  %-7s %8.0f events/s (%.2fs)\n", f, n/(e-s), e-s}'
done

echo "tail (--once, legacy API, page_size 999, file sink fsync per page), $N events:"
/usr/bin/python3 tests/fakeapi/sysdig_api.py --port-file "$tmp/port" --token bench-token \
    --events "$N" --span 3000 >"$tmp/api.log" 2>&1 &
api=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
cat >"$tmp/cfg.yaml" <<YAML
source: { url: "http://127.0.0.1:$(cat "$tmp/port")", token: bench-token, page_size: 999 }
checkpoint: { path: $tmp/cp.json }
sinks: [ { name: f, type: file, path: $tmp/out.ndjson } ]
log: { level: warn }
YAML
s=$(date +%s.%N)
"$BIN" -c "$tmp/cfg.yaml" --once
e=$(date +%s.%N)
got=$(wc -l <"$tmp/out.ndjson")
awk -v n="$got" -v s="$s" -v e="$e" 'BEGIN{printf "  %d events in %.2fs: %.0f events/s (the Python fake API is the bottleneck)\n", n, e-s, n/(e-s)}'
