#!/usr/bin/env bash
# The whole test suite (what CI runs through .ci/run): installs dependencies, then
#  1. gcc build (-Werror) + every unit and integration test (ctest)
#  2. clang build (-Werror)
#  3. ASan + UBSan build + the test suite again
#  4. libFuzzer targets, a few seconds each over the checked-in corpus
#  5. formatting check (clang-format, .clang-format)
# Set SF_QUICK=1 to run only step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
JOBS=$(nproc)
export CTEST_OUTPUT_ON_FAILURE=1

echo "== gcc build + tests"
BUILD_DIR=build-test BUILD_TYPE=RelWithDebInfo scripts/build.sh -DCMAKE_C_COMPILER=gcc
(cd build-test && ctest -j"$JOBS" --timeout 900)

[ "${SF_QUICK:-0}" = 1 ] && exit 0

echo "== clang build"
BUILD_DIR=build-clang BUILD_TYPE=Debug scripts/build.sh -DCMAKE_C_COMPILER=clang

echo "== ASan + UBSan build + tests"
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DCMAKE_C_COMPILER=clang -DSF_SANITIZE=ON
(cd build-asan && ctest -j"$JOBS" --timeout 900 -LE no-sanitize)

echo "== fuzz (libFuzzer, a few seconds per target over tests/fuzz/corpus)"
# (a fuzz tree instruments the library for libFuzzer: only the fuzz targets link in it)
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DSF_FUZZ=ON >/dev/null
fuzz_targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
cmake --build build-fuzz -j"$JOBS" --target $fuzz_targets
(cd build-fuzz && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest -j"$JOBS" -R '^fuzz\.')

echo "== clang-format"
files=$(git ls-files 'daemon/*.c' 'daemon/*.h' 'tests/*.c' 'tests/*.h' 2>/dev/null || true)
if [ -n "$files" ]; then
  clang-format --dry-run --Werror $files
fi
echo "all checks passed"
