#!/usr/bin/env bash
# Mutant check: the test suite must catch every known-bad behaviour in tests/mutants/.
#
# Each tests/mutants/*.patch is one planted bug: a header, then a unified diff (-p1):
#     Mutant: what the bug is, in one line
#     Tests: SELECTOR [SELECTOR...]      (every one of them must fail with the bug)
#     ---
#     --- a/daemon/x.c
#     +++ b/daemon/x.c
# A SELECTOR is a ctest test name, optionally narrowed to part of it:
#     unit.test_checkpoint              the whole test
#     unit.test_checkpoint:io           one Check test case (CK_RUN_CASE)
#     integration.test_durability:FsyncFailureTest.test_spool_fsync_eio
#                                       Python unittest names (several: comma-separated)
#
# The working tree (committed or not) is copied to a scratch tree and built once; each patch
# is applied there, rebuilt incrementally, its tests run (with ctest's command and
# environment), and the patch reverted. Fails if a patch no longer applies or no longer
# builds (a refactor must update its mutants), or if any mutant survives. Prints a table.
#
# Usage: scripts/mutants.sh [NAME...]      (NAME: a patch file name, with or without .patch)
# Env:   SF_MUTANTS_DIR  scratch directory (default: build-mutants), kept for incremental runs
#        SF_MUTANT_TIMEOUT  seconds per selector run (default 300: a hang counts as caught)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${SF_MUTANTS_DIR:-$ROOT/build-mutants}
case "$WORK" in /*) ;; *) WORK=$ROOT/$WORK ;; esac
SRC=$WORK/src
BUILD=$WORK/build
TIMEOUT=${SF_MUTANT_TIMEOUT:-300}
JOBS=$(nproc)

patches=()
if [ $# -gt 0 ]; then
    for n in "$@"; do
        p=tests/mutants/${n%.patch}.patch
        [ -f "$p" ] || { echo "mutants: no such mutant: $p" >&2; exit 2; }
        patches+=("$p")
    done
else
    for p in tests/mutants/*.patch; do patches+=("$p"); done
fi
[ ${#patches[@]} -gt 0 ] || { echo "mutants: no patches in tests/mutants/" >&2; exit 2; }

# 1. scratch tree = the working tree's tracked and new (not ignored) files. Unchanged files
# keep their mtimes, so the scratch build stays incremental across runs.
mkdir -p "$SRC"
# a run interrupted while a mutant was applied may have left mutated objects behind
[ ! -e "$WORK/dirty" ] || rm -rf "$BUILD" "$WORK/dirty"
(cd "$SRC" && find . -type f -printf '%P\0') |
    while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] || rm -f "$SRC/$f"; done
git ls-files -z --cached --others --exclude-standard | grep -zv '^build' |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -xf - -C "$SRC"

echo "== mutants: building the scratch tree ($BUILD)"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc >/dev/null
cmake --build "$BUILD" -j"$JOBS" >"$WORK/build.log" 2>&1 || {
    tail -30 "$WORK/build.log"; echo "mutants: the unmutated tree does not build" >&2; exit 1; }
(cd "$BUILD" && ctest --show-only=json-v1) >"$WORK/tests.json"

# Runs one selector in the scratch build; prints nothing; exit status of the test.
run_selector() {
    python3 - "$WORK/tests.json" "$1" "$TIMEOUT" <<'EOF'
import json, os, subprocess, sys
tests, sel, timeout = json.load(open(sys.argv[1]))["tests"], sys.argv[2], int(sys.argv[3])
name, _, part = sel.partition(":")
t = next((t for t in tests if t["name"] == name), None)
if t is None:
    print("mutants: no ctest test named %s" % name, file=sys.stderr)
    sys.exit(125)
env = dict(os.environ)
cwd = None
for p in t.get("properties", []):
    if p["name"] == "ENVIRONMENT":
        env.update(kv.split("=", 1) for kv in p["value"])
    if p["name"] == "WORKING_DIRECTORY":
        cwd = p["value"]
cmd = list(t["command"])
if part:
    if name.startswith("unit."):
        env["CK_RUN_CASE"] = part
    else:
        cmd += part.split(",")
try:
    r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout)
    sys.exit(0 if r.returncode == 0 else 1)
except subprocess.TimeoutExpired:
    sys.exit(124)
EOF
}

declare -a rows=()
failed=0
for p in "${patches[@]}"; do
    name=$(basename "$p" .patch)
    what=$(sed -n 's/^Mutant: *//p' "$p" | head -1)
    sels=$(sed -n 's/^Tests: *//p' "$p" | head -1)
    if [ -z "$what" ] || [ -z "$sels" ]; then
        rows+=("$name|BROKEN: no Mutant:/Tests: header|"); failed=1; continue
    fi
    if ! patch -d "$SRC" -p1 --dry-run -s -f <"$p" >/dev/null 2>&1; then
        rows+=("$name|BROKEN: patch does not apply (update it)|"); failed=1; continue
    fi
    touch "$WORK/dirty"
    patch -d "$SRC" -p1 -s -f --no-backup-if-mismatch <"$p" >/dev/null
    start=$(date +%s)
    if ! cmake --build "$BUILD" -j"$JOBS" >"$WORK/build-$name.log" 2>&1; then
        patch -d "$SRC" -p1 -R -s -f --no-backup-if-mismatch <"$p" >/dev/null
        rows+=("$name|BROKEN: does not build (see $WORK/build-$name.log)|"); failed=1; continue
    fi
    caught=() missed=()
    for s in $sels; do
        set +e
        run_selector "$s"
        rc=$?
        set -e
        case $rc in
            0) missed+=("$s") ;;
            125) missed+=("$s(unknown test)") ;;
            124) caught+=("$s(timeout)") ;;
            *) caught+=("$s") ;;
        esac
    done
    patch -d "$SRC" -p1 -R -s -f --no-backup-if-mismatch <"$p" >/dev/null
    secs=$(($(date +%s) - start))
    if [ ${#missed[@]} -eq 0 ]; then
        rows+=("$name|caught by ${caught[*]}|${secs}s")
    else
        rows+=("$name|SURVIVED ${missed[*]}${caught:+ (caught by ${caught[*]})}|${secs}s")
        failed=1
    fi
    echo "mutant $name: ${rows[-1]#*|}"
done
# leave the scratch build unmutated for the next incremental run
cmake --build "$BUILD" -j"$JOBS" >"$WORK/build.log" 2>&1 && rm -f "$WORK/dirty"

echo
printf '%-36s %-8s %s\n' "mutant" "time" "result"
for r in "${rows[@]}"; do
    IFS='|' read -r n res t <<<"$r"
    printf '%-36s %-8s %s\n' "$n" "$t" "$res"
done
total=${#rows[@]}
bad=$(printf '%s\n' "${rows[@]}" | grep -c '|SURVIVED\||BROKEN' || true)
echo "mutants: $((total - bad)) passed, $bad failed"
exit $failed
