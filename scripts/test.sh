#!/usr/bin/env bash
# The whole test suite (what CI runs through .ci/run): installs dependencies, then
#  1. gcc build (-Werror) + every unit and integration test (ctest)
#  2. clang build (-Werror)
#  3. ASan + UBSan build + the test suite again
#  4. libFuzzer targets, a few seconds each over the checked-in corpus
#  5. formatting check (clang-format, .clang-format)
#  6. mutant check: every planted bug in tests/mutants/ must be caught (scripts/mutants.sh)
# Set SF_QUICK=1 to run only step 1. Set SF_KEEP_TMP=1 to keep the tests' scratch files.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
JOBS=$(nproc)
export CTEST_OUTPUT_ON_FAILURE=1

# Every step runs with TMPDIR in a fresh directory of this run. A test removes what it makes
# there (directories, files, sockets), passed or failed, so anything left after a ctest run
# fails the suite (check_tmp). With SF_KEEP_TMP=1 the tests keep theirs: not checked, kept.
export TMPDIR
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/sf-testrun-XXXXXX")
keep_tmp() { [ "${SF_KEEP_TMP:-0}" = 1 ]; }
trap 'if keep_tmp; then echo "SF_KEEP_TMP=1: kept $TMPDIR"; else rm -rf "$TMPDIR"; fi' EXIT
check_tmp() {
  keep_tmp && return 0
  local left
  left=$(find "$TMPDIR" -mindepth 1 -maxdepth 2 | sort)
  [ -z "$left" ] || { printf 'FAIL: the tests left this behind in TMPDIR:\n%s\n' "$left"; exit 1; }
}

echo "== gcc build + tests"
BUILD_DIR=build-test BUILD_TYPE=RelWithDebInfo scripts/build.sh -DCMAKE_C_COMPILER=gcc
(cd build-test && ctest -j"$JOBS" --timeout 900)
check_tmp

[ "${SF_QUICK:-0}" = 1 ] && exit 0

echo "== clang build"
BUILD_DIR=build-clang BUILD_TYPE=Debug scripts/build.sh -DCMAKE_C_COMPILER=clang

echo "== ASan + UBSan build + tests"
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DCMAKE_C_COMPILER=clang -DSF_SANITIZE=ON
(cd build-asan && ctest -j"$JOBS" --timeout 900 -LE no-sanitize)
check_tmp

echo "== fuzz (libFuzzer, a few seconds per target over tests/fuzz/corpus)"
# (a fuzz tree instruments the library for libFuzzer: only the fuzz targets link in it)
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DSF_FUZZ=ON >/dev/null
fuzz_targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
cmake --build build-fuzz -j"$JOBS" --target $fuzz_targets
(cd build-fuzz && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest -j"$JOBS" -R '^fuzz\.')
check_tmp

echo "== clang-format"
files=$(git ls-files 'daemon/*.c' 'daemon/*.h' 'tests/*.c' 'tests/*.h' 2>/dev/null || true)
if [ -n "$files" ]; then
  clang-format --dry-run --Werror $files
fi
echo "== mutants (tests/mutants/: each planted bug must be caught by the tests it names)"
scripts/mutants.sh
check_tmp

echo "all checks passed"
