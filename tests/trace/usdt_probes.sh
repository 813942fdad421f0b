#!/bin/sh
# The USDT probes of memd and libmemd exist in the built binaries: each
# `readelf -n` shows a stapsdt note per probe site, with its provider and
# name (docs/operations.md lists them). Usage: usdt_probes.sh MEMD LIBMEMD
set -eu
memd=$1
libmemd=$2
fail=0
check() {  # binary provider name...
  binary=$1
  provider=$2
  shift 2
  notes=$(readelf -n "$binary")
  for name in "$@"; do
    if ! printf '%s\n' "$notes" | grep -A1 "Provider: $provider\$" | grep -q "Name: $name\$"; then
      echo "missing USDT probe $provider:$name in $binary"
      fail=1
    fi
  done
}
check "$memd" memd allocate retain send receive release
check "$libmemd" libmemd allocate retain send receive release arena_allocate arena_release
if [ "$fail" -ne 0 ]; then exit 1; fi
echo "USDT probes present in $memd and $libmemd"
