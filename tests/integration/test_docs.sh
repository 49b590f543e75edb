#!/usr/bin/env bash
# docs/configuration.md is generated from the option tables; fail if it is stale, and check
# that the example configs in conf/ and docker/ still validate.
set -euo pipefail
: "${SF_BIN:?}" "${SF_SRC:?}"
tmp=$(mktemp "${TMPDIR:-/tmp}/sf-docs-XXXXXX")
cleanup() {
  if [ "${SF_KEEP_TMP:-0}" = 1 ]; then echo "SF_KEEP_TMP=1: kept $tmp" >&2; else rm -f "$tmp"; fi
}
trap cleanup EXIT
"$SF_BIN" --print-config-reference >"$tmp"
if ! diff -u "$SF_SRC/docs/configuration.md" "$tmp"; then
  echo "docs/configuration.md is stale: run build/sysdig-forwarder --print-config-reference > docs/configuration.md"
  exit 1
fi
export SYSDIG_SECURE_API_TOKEN=dummy-token-for-validation
# the examples name the target machine's directories: the syntax alone here, then the whole
# check (what start-up needs from the machine) with those directories in a scratch one
state=$(mktemp -d "${TMPDIR:-/tmp}/sf-docs-state-XXXXXX")
trap 'cleanup; rm -rf "$state"' EXIT
for f in "$SF_SRC"/conf/*.yaml; do
  "$SF_BIN" -c "$f" --check-config --syntax-only >/dev/null || { echo "$f does not validate"; exit 1; }
  sed -e "s#/var/lib/sysdig-forwarder#$state#g" -e "s#/var/log/sysdig-forwarder#$state#g" "$f" >"$state/c.yaml"
  # an example that leaves the checkpoint at its default (/var/lib/sysdig-forwarder) gets it here
  grep -q '^checkpoint:' "$state/c.yaml" || echo "checkpoint: { path: $state/checkpoint.json }" >>"$state/c.yaml"
  "$SF_BIN" -c "$state/c.yaml" --check-config >/dev/null || { echo "$f does not pass the full check"; exit 1; }
done
# and the full check is what refuses a missing output directory (start-up would, exit 2)
sed -e "s#/var/lib/sysdig-forwarder#$state/missing#g" -e "s#/var/log/sysdig-forwarder#$state/missing#g" \
  "$SF_SRC/conf/sysdig-forwarder.yaml" >"$state/c.yaml"
if out=$("$SF_BIN" -c "$state/c.yaml" --check-config 2>&1); then
  echo "a missing output directory passed --check-config"; exit 1
fi
case $out in *"$state/missing does not exist"*) ;; *) echo "unexpected: $out"; exit 1 ;; esac
echo "1 passed, 0 failed"
