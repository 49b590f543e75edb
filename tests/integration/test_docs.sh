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
for f in "$SF_SRC"/conf/*.yaml; do
  "$SF_BIN" -c "$f" --check-config >/dev/null || { echo "$f does not validate"; exit 1; }
done
echo "1 passed, 0 failed"
