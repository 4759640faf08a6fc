#!/usr/bin/env bash
# Checks that the workspace builds for Windows and macOS: `cargo check` and
# `cargo clippy -D warnings` on every target and feature, per target. A
# target whose standard library cannot be downloaded is skipped with a loud
# warning; a build failure fails.
#
# There is no Windows or macOS C toolchain here, and crates that bundle C
# (SQLite, criterion's alloca) compile it in their build scripts, so
# scripts/check-cc.sh stands in as the target's C compiler: `check` never
# links, so any object will do.
set -euo pipefail
cd "$(dirname "$0")/.."

cc_wrapper="$PWD/scripts/check-cc.sh"
for target in x86_64-pc-windows-gnu x86_64-apple-darwin; do
  if ! rustup target list --installed | grep -qx "$target"; then
    if ! rustup target add "$target" >/dev/null 2>&1; then
      echo "check-targets.sh: WARNING: cannot download the $target standard library; $target NOT CHECKED" >&2
      continue
    fi
  fi
  var=$(echo "$target" | tr '-' '_')
  echo "check-targets.sh: $target" >&2
  env "CC_$var=$cc_wrapper" "AR_$var=ar" cargo check --workspace --all-targets --all-features --target "$target"
  env "CC_$var=$cc_wrapper" "AR_$var=ar" cargo clippy --workspace --all-targets --all-features --target "$target" -- -D warnings
done
