#!/usr/bin/env bash
# Makes ff-cli/tests/fixtures/legacy-names.tar.gz with an ff binary of the
# release before readable names (worktrees wt-<issue>-<time>-<random> on
# branches ff-<issue>-<time>-<random>):
#
#     bash scripts/make-legacy-fixture.sh OLD_FF [OUT]
#
# The repository holds three worktrees made by OLD_FF with the JSON store
# (text, so paths can be put back): issue 1 clean, issue 2 with a commit,
# issue 3 with an uncommitted file. Absolute paths in text files become
# @ROOT@ and the host name @HOST@; the test writes its own back
# (ff-cli/tests/it/legacy_names.rs).
set -euo pipefail
old_ff=$(realpath "$1")
out=$(realpath -m "${2:-$(dirname "$0")/../ff-cli/tests/fixtures/legacy-names.tar.gz}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root/repo"
cd "$root/repo"
export GIT_AUTHOR_NAME=fixture GIT_AUTHOR_EMAIL=fixture@example.invalid
export GIT_COMMITTER_NAME=fixture GIT_COMMITTER_EMAIL=fixture@example.invalid
export GIT_AUTHOR_DATE="2026-12-01T00:00:00Z" GIT_COMMITTER_DATE="2026-12-01T00:00:00Z"
git init -q -b main
echo "fixture" > README
git add README
git commit -q -m "root"
for issue in 1 2 3; do
  FF_STORE=json "$old_ff" create "$issue" --json > /dev/null
done
path_of() { FF_STORE=json "$old_ff" path "$1"; }
(cd "$(path_of 2)" && echo two > two.txt && git add two.txt && git commit -q -m "work of issue 2")
echo three > "$(path_of 3)/three.txt"
FF_STORE=json "$old_ff" list --json > "$root/listed-by-old.json"
# Placeholders for what differs on the machine that unpacks it.
host=$(hostname)
grep -rIl --null -e "$root" -e "$host" "$root" | xargs -0 -r sed -i -e "s#$root#@ROOT@#g" -e "s#$host#@HOST@#g"
mkdir -p "$(dirname "$out")"
tar -C "$root" -czf "$out" .
echo "wrote $out"
