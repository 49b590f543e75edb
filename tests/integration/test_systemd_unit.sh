#!/usr/bin/env bash
# The systemd unit: required directives, `systemd-analyze verify` clean, and
# `systemd-analyze security --offline=yes` exposure <= 2.0; the files the example configs write
# are in its StateDirectory/LogsDirectory; systemd/logrotate.conf rotates the LogsDirectory,
# reloads the unit and passes `logrotate -d` (tests/integration/test_logrotate.py runs it).
# Skips (exit 0, clear message) only when systemd-analyze is not installed.
set -euo pipefail
SRC=${SF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
UNIT="$SRC/systemd/sysdig-forwarder.service"
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
fail=0
# scratch directory: removed on any exit (kept with SF_KEEP_TMP=1)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sf-systemd-XXXXXX")
cleanup() {
  if [ "${SF_KEEP_TMP:-0}" = 1 ]; then echo "SF_KEEP_TMP=1: kept $scratch" >&2; else rm -rf "$scratch"; fi
}
trap cleanup EXIT
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fail=1; }

[ -f "$UNIT" ] || { echo "FAIL - $UNIT missing"; exit 1; }

# ---- directives the operations docs promise (static checks, no systemd needed)
need() { # need 'Key=value regex'
  if grep -Eq "^$1\$" "$UNIT"; then ok "unit has $1"; else bad "unit lacks a line matching ^$1\$"; fi
}
need 'Type=notify'
need 'NotifyAccess=main'
need 'WatchdogSec=30s'
need 'ExecStart=/usr/local/bin/sysdig-forwarder -c /etc/sysdig-forwarder/config.yaml'
need 'ExecReload=/bin/kill -HUP \$MAINPID'
need 'StateDirectory=sysdig-forwarder'
need 'LogsDirectory=sysdig-forwarder'
need 'LoadCredential=sysdig-token:/etc/sysdig-forwarder/token'
need 'DynamicUser=yes'
need 'Restart=on-failure'
need 'TimeoutStopSec=30s'
need 'ProtectSystem=strict'
need 'NoNewPrivileges=yes'
need 'CapabilityBoundingSet='
need 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'
need 'SystemCallFilter=@system-service'
need 'SystemCallArchitectures=native'
need 'MemoryDenyWriteExecute=yes'
need 'UMask=0077'
# the stop timeout must leave room for the daemon's own shutdown_timeout (20s default)
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$UNIT")
if [ -n "$stop" ] && [ "$stop" -gt 20 ]; then ok "TimeoutStopSec ${stop}s > shutdown_timeout 20s"
else bad "TimeoutStopSec must exceed pipeline.shutdown_timeout (20s)"; fi

# ---- every file the shipped configs and the README's example write is in a directory the
# unit makes writable (ProtectSystem=strict leaves the rest of /var read-only)
writable="$(sed -n 's#^StateDirectory=\(.*\)#/var/lib/\1/#p; s#^LogsDirectory=\(.*\)#/var/log/\1/#p' "$UNIT")"
paths=$(grep -hE '^ *(path|dead_letter_path): */var/' "$SRC/systemd/config.yaml" "$SRC/README.md" |
  sed -E 's/^ *[a-z_]+: *//; s/ .*//')
[ -n "$paths" ] || bad "no /var paths found in systemd/config.yaml and README.md"
for p in $paths; do
  in=0
  for w in $writable; do case "$p" in "$w"*) in=1 ;; esac; done
  if [ $in = 1 ]; then ok "$p is in the unit's StateDirectory/LogsDirectory"
  else bad "$p is outside StateDirectory= and LogsDirectory= (read-only under ProtectSystem=strict)"; fi
done
# ---- the logrotate snippet rotates the LogsDirectory and reloads this unit
LR="$SRC/systemd/logrotate.conf"
if grep -q '^/var/log/sysdig-forwarder/\*\.ndjson {$' "$LR"; then ok "logrotate.conf rotates /var/log/sysdig-forwarder/*.ndjson"
else bad "logrotate.conf should rotate /var/log/sysdig-forwarder/*.ndjson"; fi
if grep -q 'systemctl reload sysdig-forwarder.service' "$LR"; then ok "logrotate.conf reloads the unit (SIGHUP)"
else bad "logrotate.conf must reload sysdig-forwarder.service after rotating"; fi
if command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ]; then
  if out=$(PATH=$PATH:/usr/sbin logrotate -d -s "$scratch/logrotate.state" "$LR" 2>&1); then
    ok "logrotate -d reads logrotate.conf"
  else
    bad "logrotate -d fails on logrotate.conf:"; echo "$out"
  fi
else
  echo "SKIP - logrotate not installed (Debian package 'logrotate'): logrotate.conf syntax not checked"
fi

# ---- the example config in the docs uses the credential
if grep -q 'token_file: ${CREDENTIALS_DIRECTORY}/sysdig-token' "$SRC/systemd/config.yaml"; then
  ok "systemd/config.yaml reads the token from the credential"
else
  bad "systemd/config.yaml should use token_file: \${CREDENTIALS_DIRECTORY}/sysdig-token"
fi
if [ -n "${SF_BIN:-}" ] && [ -x "${SF_BIN}" ]; then
  # the example config must pass the daemon's own validation (with a stand-in credential dir)
  cred=$scratch/cred
  mkdir "$cred"
  echo "test-token-value" > "$cred/sysdig-token"
  if out=$(CREDENTIALS_DIRECTORY=$cred "$SF_BIN" -c "$SRC/systemd/config.yaml" --check-config --syntax-only 2>&1); then
    ok "systemd/config.yaml passes --check-config"
  else
    bad "systemd/config.yaml fails --check-config: $out"
  fi
fi

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIP - systemd-analyze not installed (Debian package 'systemd'): verify/security not run"
  exit $fail
fi

# ---- systemd-analyze verify: ExecStart must name an existing executable, so check a copy
# pointing at the built binary (or at /bin/true when SF_BIN is not set)
tmp=$scratch/unit
mkdir "$tmp"
bin=${SF_BIN:-/bin/true}
sed "s#/usr/local/bin/sysdig-forwarder#$bin#g" "$UNIT" >"$tmp/sysdig-forwarder.service"
if out=$(systemd-analyze verify "$tmp/sysdig-forwarder.service" 2>&1); then
  if [ -n "$out" ]; then bad "systemd-analyze verify printed warnings:"; echo "$out"
  else ok "systemd-analyze verify: clean"; fi
else
  bad "systemd-analyze verify failed:"; echo "$out"
fi

# ---- security exposure (offline: judges the unit file alone)
if out=$(systemd-analyze security --offline=yes "$tmp/sysdig-forwarder.service" 2>&1); then :; fi
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -1)
if [ -z "$level" ]; then
  bad "could not read the exposure level from systemd-analyze security:"; echo "$out" | tail -5
elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN{exit !(l+0 <= m+0)}'; then
  ok "systemd-analyze security exposure $level <= $MAX_EXPOSURE"
else
  bad "systemd-analyze security exposure $level > $MAX_EXPOSURE"
  printf '%s\n' "$out" | grep '✗' | head -30
fi
exit $fail
