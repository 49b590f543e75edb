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
# The working tree (committed or not) is copied to scratch trees, each built once; each patch
# is applied there, rebuilt incrementally, its tests run (with ctest's command and
# environment), and the patch reverted. Fails if a patch no longer applies or no longer
# builds (a refactor must update its mutants), or if any mutant survives. Prints a table.
#
# Usage: scripts/mutants.sh [NAME...]      (NAME: a patch file name, with or without .patch)
# Env:   SF_MUTANTS_DIR  scratch directory (default: build-mutants), kept for incremental runs
#        SF_MUTANT_WORKERS  scratch trees run at once (default 3; each builds once)
#        SF_MUTANT_TIMEOUT  seconds per selector run (default 300: a hang counts as caught)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${SF_MUTANTS_DIR:-$ROOT/build-mutants}
case "$WORK" in /*) ;; *) WORK=$ROOT/$WORK ;; esac
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

# Mutants run in SF_MUTANT_WORKERS scratch trees at once (default 3): most of a mutant's time
# is its tests waiting (timeouts, retries, peers), not CPU.
WORKERS=${SF_MUTANT_WORKERS:-3}
[ "$WORKERS" -ge 1 ] 2>/dev/null || WORKERS=1
[ "$WORKERS" -le ${#patches[@]} ] || WORKERS=${#patches[@]}

# 1. scratch trees = the working tree's tracked and new (not ignored) files. Unchanged files
# keep their mtimes, so the scratch builds stay incremental across runs.
sync_tree() { # $1 = worker dir
    local src=$1/src
    mkdir -p "$src"
    # a run interrupted while a mutant was applied may have left mutated objects behind
    [ ! -e "$1/dirty" ] || rm -rf "$1/build" "$1/dirty"
    (cd "$src" && find . -type f -printf '%P\0') |
        while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] || rm -f "$src/$f"; done
    git ls-files -z --cached --others --exclude-standard | grep -zv '^build' |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf - | tar -xf - -C "$src"
}
build_tree() { # $1 = worker dir
    cmake -S "$1/src" -B "$1/build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc >/dev/null &&
        cmake --build "$1/build" -j"$JOBS" >"$1/build.log" 2>&1 &&
        (cd "$1/build" && ctest --show-only=json-v1) >"$1/tests.json"
}
echo "== mutants: building $WORKERS scratch trees ($WORK/w*)"
pids=()
for ((k = 0; k < WORKERS; k++)); do
    mkdir -p "$WORK/w$k"
    sync_tree "$WORK/w$k"
    build_tree "$WORK/w$k" &
    pids+=($!)
done
for ((k = 0; k < WORKERS; k++)); do
    wait "${pids[$k]}" || {
        tail -30 "$WORK/w$k/build.log"; echo "mutants: the unmutated tree does not build" >&2; exit 1; }
done

# Runs one selector in a worker's build ($1 = worker dir); prints nothing; exit status of the test.
run_selector() {
    python3 - "$1/tests.json" "$2" "$TIMEOUT" <<'EOF'
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

# One mutant in worker dir $1: prints its row "name|result|time".
run_mutant() {
    local w=$1 p=$2 src=$1/src build=$1/build
    local name what sels start secs s rc
    name=$(basename "$p" .patch)
    what=$(sed -n 's/^Mutant: *//p' "$p" | head -1)
    sels=$(sed -n 's/^Tests: *//p' "$p" | head -1)
    if [ -z "$what" ] || [ -z "$sels" ]; then
        echo "$name|BROKEN: no Mutant:/Tests: header|"; return
    fi
    if ! patch -d "$src" -p1 --dry-run -s -f <"$p" >/dev/null 2>&1; then
        echo "$name|BROKEN: patch does not apply (update it)|"; return
    fi
    touch "$w/dirty"
    patch -d "$src" -p1 -s -f --no-backup-if-mismatch <"$p" >/dev/null
    start=$(date +%s)
    if ! cmake --build "$build" -j"$JOBS" >"$w/build-$name.log" 2>&1; then
        patch -d "$src" -p1 -R -s -f --no-backup-if-mismatch <"$p" >/dev/null
        echo "$name|BROKEN: does not build (see $w/build-$name.log)|"; return
    fi
    local caught=() missed=()
    for s in $sels; do
        set +e
        run_selector "$w" "$s"
        rc=$?
        set -e
        case $rc in
            0) missed+=("$s") ;;
            125) missed+=("$s(unknown test)") ;;
            124) caught+=("$s(timeout)") ;;
            *) caught+=("$s") ;;
        esac
    done
    patch -d "$src" -p1 -R -s -f --no-backup-if-mismatch <"$p" >/dev/null
    secs=$(($(date +%s) - start))
    if [ ${#missed[@]} -eq 0 ]; then
        echo "$name|caught by ${caught[*]}|${secs}s"
    else
        echo "$name|SURVIVED ${missed[*]}${caught:+ (caught by ${caught[*]})}|${secs}s"
    fi
}

# Worker k takes patches k, k+WORKERS, ...; its rows go to $WORK/w$k/rows as "index|row".
worker() {
    local k=$1 w=$WORK/w$1 i row
    : >"$w/rows"
    for ((i = k; i < ${#patches[@]}; i += WORKERS)); do
        row=$(run_mutant "$w" "${patches[$i]}")
        printf '%d|%s\n' "$i" "$row" >>"$w/rows"
        echo "mutant ${row%%|*}: $(cut -d'|' -f2- <<<"$row")"
    done
    # leave the scratch build unmutated for the next incremental run
    cmake --build "$w/build" -j"$JOBS" >"$w/build.log" 2>&1 && rm -f "$w/dirty"
}
pids=()
for ((k = 0; k < WORKERS; k++)); do
    worker "$k" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done

declare -a rows=()
while IFS= read -r line; do rows+=("${line#*|}"); done < <(for ((k = 0; k < WORKERS; k++)); do cat "$WORK/w$k/rows"; done | sort -t'|' -k1,1n)
failed=0
if [ ${#rows[@]} -ne ${#patches[@]} ]; then
    echo "mutants: a worker did not report every mutant" >&2
    failed=1
fi
if printf '%s\n' "${rows[@]}" | grep -q '|SURVIVED\||BROKEN'; then failed=1; fi

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
