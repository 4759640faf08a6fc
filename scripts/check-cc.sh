#!/usr/bin/env bash
# A stand-in C compiler for `cargo check` of a target this machine has no C
# toolchain for (macOS, Windows): build scripts of C-bundling crates
# (bundled SQLite, criterion's alloca, ring's C and assembly) must compile
# *something*, and `check` never links, so the host compiler's object will
# do. Drops the flags only Apple's clang knows; assembly written for
# another target's assembler becomes an empty object. Never use it for a
# build that links.
args=()
skip=0
out=""
asm=0
prev=""
for a in "$@"; do
  if [ "$prev" = "-o" ]; then out="$a"; fi
  prev="$a"
  if [ $skip -eq 1 ]; then skip=0; continue; fi
  case "$a" in
    -arch) skip=1 ;;
    -mmacosx-version-min=*|-mios-version-min=*|-gfull) ;;
    *.S|*.s|*.asm) asm=1; args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done
if [ $asm -eq 1 ] && [ -n "$out" ]; then
  exec cc -x c -c /dev/null -o "$out"
fi
exec cc "${args[@]}"
