#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs the system packages
# the tests use when they are missing (as root, through apt-get), then runs
# every test of every crate with every feature (git, redis-server,
# PostgreSQL and pgbouncer are among what it installs), under an empty home (scripts/fresh-home.sh) so no test
# leans on the developer's git identity, configuration or approvals.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
# The Redis backends' tests start their own redis-server; without one they
# print a loud skip (or fail, with FF_REQUIRE_REDIS=1).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The Sentinel tests read their servers' state with redis-cli.
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
# The dashboard's tests drive a headless Chromium; promtool (package
# prometheus) checks /metrics and the example alerting rules. Without them
# those tests print a loud skip (or fail, with FF_REQUIRE_CHROMIUM=1 or
# FF_REQUIRE_PROMTOOL=1).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The PostgreSQL backends' tests start their own cluster (initdb, which
# Debian keeps under /usr/lib/postgresql/<version>/bin) and pgbouncer;
# without them they print a loud skip (or fail, with FF_REQUIRE_POSTGRES=1).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || [ -n "${FF_PG_BINDIR:-}" ] || missing+=(postgresql)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # The prometheus and pgbouncer packages may start servers; the tests
    # start their own.
    pkill -x prometheus 2>/dev/null || true
    pkill -x pgbouncer 2>/dev/null || true
  elif ! command -v git >/dev/null 2>&1; then
    echo "test.sh: please install: ${missing[*]}" >&2
    exit 1
  else
    echo "test.sh: WARNING: ${missing[*]} missing; the tests that need them will be skipped" >&2
  fi
fi

# The MCP client tests drive `ff mcp` with clients nobody here wrote (the
# official TypeScript SDK, the MCP Inspector's CLI), pinned in
# ff-cli/tests/mcp-client/package-lock.json and installed with the
# machine's own Node.js and npm (never apt-get's npm, which replaces that
# Node). Without npm they print a loud skip (or fail, with FF_REQUIRE_NODE=1).
if command -v npm >/dev/null 2>&1; then
  (cd ff-cli/tests/mcp-client && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "test.sh: WARNING: npm missing; the MCP client tests will be skipped" >&2
fi

# As on a fresh machine: an empty home, no git identity, no approvals.
# shellcheck source=scripts/fresh-home.sh
. scripts/fresh-home.sh
echo "test.sh: running as a fresh machine (HOME=$HOME)" >&2

cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
