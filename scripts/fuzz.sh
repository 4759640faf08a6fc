#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECS seconds each (default 300) and
# prints, per target, how many inputs it ran and whether it found a crash.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Not part of CI. New inputs go to fuzz/corpus/<target> (ignored by git);
# the committed seeds are in fuzz/seeds/<target>; a crash is written to
# fuzz/artifacts/<target>/ and reproduced with
#   cargo +nightly fuzz run -O <target> fuzz/artifacts/<target>/<file>
# Usage: scripts/fuzz.sh [SECS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(canonical_key record_parse lock_metadata names_and_git_output)
fi
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="$(mktemp)"
    cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -max_len=8192 >"$log" 2>&1
    code=$?
    runs="$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1)"
    if [ "$code" -eq 0 ]; then
        echo "$t: ${runs:-no summary}; 0 crashes"
    else
        echo "$t: CRASH (exit $code); see fuzz/artifacts/$t/ and the log below"
        tail -40 "$log"
        status=1
    fi
    rm -f "$log"
done
exit "$status"
