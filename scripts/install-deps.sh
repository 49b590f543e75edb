#!/usr/bin/env bash
# Installs everything sysdig-forwarder needs to build, run and test on Debian 12.
# Idempotent: packages already present are left alone.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev clang-format valgrind
  libcurl4-openssl-dev libuv1-dev libyaml-dev libcjson-dev libssl-dev
  libhttp-parser-dev libsystemd-dev check librdkafka-dev
  rsyslog rsyslog-openssl openssl python3 python3-jsonschema python3-prometheus-client
  prometheus
  yamllint python3-yaml systemd curl strace logrotate kcat
  buildah mmdebstrap
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
