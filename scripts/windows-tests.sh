#!/usr/bin/env bash
# Builds the Windows test binaries of ff-traits, ff-lock-file, ff-store-json
# and ff-store-sqlite with mingw-w64 and runs them under Wine, then prints
# tests passed / failed / not run per binary and in all.
#
#   bash scripts/windows-tests.sh
#
# Installs mingw-w64 and wine64 with apt-get when missing (as root). Debian
# 12's Wine 8 lacks bcryptprimitives.dll, which Rust's standard library
# imports; scripts/wine/bcryptprimitives.c is a shim built beside the test
# binaries. Exit status: 0 when every binary ran and no test failed.
set -uo pipefail
cd "$(dirname "$0")/.."

target=x86_64-pc-windows-gnu
wine=/usr/lib/wine/wine64
missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing+=(mingw-w64)
[ -x "$wine" ] || command -v wine64 >/dev/null 2>&1 || missing+=(wine64)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "windows-tests.sh: please install: ${missing[*]}" >&2
    exit 1
  fi
fi
[ -x "$wine" ] || wine=$(command -v wine64)
rustup target add "$target" >/dev/null

exes=$(cargo test --no-run --target "$target" --all-features \
    -p ff-traits -p ff-process -p ff-fs-watch -p ff-metrics -p ff-hierarchy -p ff-idempotency -p ff-conformance -p ff-lock-file -p ff-store-json -p ff-store-sqlite \
    --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
[ -n "$exes" ] || { echo "windows-tests.sh: the Windows test build failed" >&2; exit 1; }

deps="target/$target/debug/deps"
x86_64-w64-mingw32-gcc -shared -O2 -o "$deps/bcryptprimitives.dll" scripts/wine/bcryptprimitives.c -lbcrypt

export WINEPREFIX="$PWD/target/wine-prefix" WINEDEBUG=-all
status=0
total_pass=0 total_fail=0 total_ignored=0 not_run=0
for exe in $exes; do
  name=$(basename "$exe" .exe)
  out=$(timeout 600 "$wine" "$exe" 2>&1)
  rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^test result:' | tail -1)
  if [ -z "$line" ]; then
    echo "NOT RUN  $name (exit $rc)"; printf '%s\n' "$out" | tail -5 | sed 's/^/    /'
    not_run=$((not_run + 1)); status=1; continue
  fi
  pass=$(echo "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
  fail=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  ign=$(echo "$line" | sed -E 's/.* ([0-9]+) ignored.*/\1/')
  total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail)); total_ignored=$((total_ignored + ign))
  echo "$( [ "$fail" -eq 0 ] && echo 'ok      ' || echo 'FAILED  ') $name: $pass passed, $fail failed, $ign ignored"
  if [ "$fail" -ne 0 ]; then
    printf '%s\n' "$out" | grep -E '^(test .* FAILED|---- |thread .* panicked)' | head -20 | sed 's/^/    /'
    status=1
  fi
done
echo "windows tests under Wine: $total_pass passed, $total_fail failed, $total_ignored ignored, $not_run binaries not run"
exit $status
