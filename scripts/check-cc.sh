#!/usr/bin/env bash
# A stand-in C compiler for `cargo check` of a target this machine has no C
# toolchain for (macOS): build scripts of C-bundling crates (bundled SQLite,
# criterion's alloca) must compile *something*, and `check` never links, so
# the host compiler's object will do. Drops the flags only Apple's clang
# knows. Never use it for a build that links.
args=()
skip=0
for a in "$@"; do
  if [ $skip -eq 1 ]; then skip=0; continue; fi
  case "$a" in
    -arch) skip=1 ;;
    -mmacosx-version-min=*|-mios-version-min=*) ;;
    *) args+=("$a") ;;
  esac
done
exec cc "${args[@]}"
