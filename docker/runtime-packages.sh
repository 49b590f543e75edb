#!/bin/sh
# Prints the Debian packages providing the shared libraries BINARY links against directly (its
# DT_NEEDED entries; their own dependencies come with apt), one per line, sorted. The
# Dockerfile's build stage uses it to check that the runtime stage installs every one of them;
# tests/integration/test_docker.py runs it on the host build for the same check.
set -eu
bin=${1:?usage: runtime-packages.sh BINARY}
[ -f "$bin" ] || { echo "runtime-packages.sh: $bin: no such file" >&2; exit 1; }
pkgs=$(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}' |
while read -r soname; do
  lib=$(ldd "$bin" | awk -v n="$soname" '$1 == n && $3 ~ /^\// {print $3; exit}')
  if [ -z "$lib" ]; then
    echo "runtime-packages.sh: $soname not found by ldd" >&2
    exit 1
  fi
  real=$(readlink -f "$lib")
  found=
  for p in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    if pkg=$(dpkg -S "$p" 2>/dev/null); then
      printf '%s\n' "${pkg%%:*}" | cut -d, -f1
      found=1
      break
    fi
  done
  if [ -z "$found" ]; then
    echo "runtime-packages.sh: no Debian package owns $lib" >&2
    exit 1
  fi
done)
[ -n "$pkgs" ] || { echo "runtime-packages.sh: $bin: no shared libraries found" >&2; exit 1; }
printf '%s\n' "$pkgs" | sort -u
