# Sourced by scripts/test.sh and .ci/run: makes this shell a fresh
# machine's, so nothing depends on the developer's own configuration,
# approvals or git identity (a CI runner or a new laptop has none).
#
# - HOME and XDG_CONFIG_HOME: new empty directories (ff's approvals and
#   config.toml live there). CARGO_HOME and RUSTUP_HOME keep their real
#   values first: rustup keeps the toolchain under the home.
# - git reads no global or system configuration, and user.useConfigOnly
#   keeps it from guessing an identity from the host name.
# - No identity in the environment, no FF_* setting, umask 022.

: "${CARGO_HOME:=$HOME/.cargo}"
: "${RUSTUP_HOME:=$HOME/.rustup}"
export CARGO_HOME RUSTUP_HOME
FF_FRESH_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ff-fresh-home.XXXXXX")
export FF_FRESH_ROOT
export HOME="$FF_FRESH_ROOT/home" XDG_CONFIG_HOME="$FF_FRESH_ROOT/config"
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=user.useConfigOnly GIT_CONFIG_VALUE_0=true
unset GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL EMAIL
unset FF_CONFIG_DIR FF_HOOKS FF_TRUST FF_LOCK FF_STORE FF_STATE_DIR FF_BASE_PATH FF_REPO
umask 022
