#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the forwarder against its built-in simulator of
# the Sysdig Secure Events API, printing events on stdout (Ctrl-C to stop).
# Extra arguments go to the daemon, e.g. scripts/demo.sh --format stix
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/sysdig-forwarder --demo "$@"
