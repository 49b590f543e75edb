#!/usr/bin/env bash
# Builds sysdig-forwarder into build/ (or $BUILD_DIR). Extra arguments go to cmake.
# Used by the README's demo command, by scripts/test.sh and by docker/Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
