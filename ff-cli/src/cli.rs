//! The command line, as clap parses it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit codes, also listed in `--help` and the README.
pub(crate) const EXIT_CODES: &str = r#"EXIT CODES:
    0   success
    1   other failure (git failed, a conflict, corrupt state)
    2   usage error (unknown flag, missing argument)
    65  invalid input (bad issue id, malformed URL, unknown worktree, not a
        git repository)
    69  backend unavailable (not compiled in, unreachable, cannot be opened,
        git missing)
    73  cannot create (worktree limit reached, git could not add it)
    75  temporary failure: try again later (lock timeout, operation in
        progress, backoff not elapsed, max attempts reached)
    77  refused: cleanup would lose work (--force keeps it under
        refs/ff/archive/<id>), the worktree lives in another clone, a dirty
        worktree to sync without --autostash, the repository's ff.toml
        settings or hooks are not approved here (ff help trust)
    78  not configured: sync would make commits and git has no committer
        identity (git config user.name / user.email, or GIT_COMMITTER_NAME
        and GIT_COMMITTER_EMAIL); nothing was changed
    79  ff lock / ff once: the lock or claim was lost while CMD ran; CMD
        was stopped (SIGTERM, then SIGKILL after --kill-after)
    126 ff lock / ff once: CMD could not be run
    127 ff lock / ff once: CMD was not found
    128+N  ff lock / ff once: CMD died of signal N
    Otherwise ff lock / ff once exit with CMD's own status.

With --json, errors go to stderr as
{"error":{"kind","message",…facts}}; kinds and facts are in the README."#;

/// ForgeFlow: per-issue git worktrees for many processes and servers at
/// once, without corrupting git state or running anything twice.
#[derive(Debug, Parser)]
#[command(name = "ff", version, after_help = EXIT_CODES, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Run as if started in DIR (any directory inside the repository).
    #[arg(
        short = 'C',
        long = "repo",
        env = "FF_REPO",
        global = true,
        value_name = "DIR"
    )]
    pub(crate) repo: Option<PathBuf>,
    /// Run without the repository's hooks (ff.toml [hooks]).
    #[arg(long, global = true)]
    pub(crate) no_hooks: bool,
    /// Where worktrees go [default: <repository>/.ff-worktrees].
    #[arg(long, env = "FF_BASE_PATH", global = true, value_name = "DIR")]
    pub(crate) base_path: Option<PathBuf>,
    /// Lock backend: `file`, or `redis://HOST:PORT[/DB]` [default: file].
    #[arg(long, env = "FF_LOCK", global = true, value_name = "BACKEND")]
    pub(crate) lock: Option<String>,
    /// Record store: `sqlite`, `json`, or `redis://…` [default: sqlite].
    #[arg(long, env = "FF_STORE", global = true, value_name = "BACKEND")]
    pub(crate) store: Option<String>,
    /// Where file locks and local stores live [default: <repository>/.git/ff].
    #[arg(long, env = "FF_STATE_DIR", global = true, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Print JSON (errors go to stderr as {"error":{"kind","message",…}}).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// More logs on stderr: -v info, -vv debug (or set RUST_LOG).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the worktree of an issue (or print the one it has).
    Create {
        /// The issue id: [A-Za-z0-9][A-Za-z0-9._-]{0,63}, no "..", not ending in ".lock".
        issue: String,
        /// What the new branch starts from [default: the branch HEAD points at].
        #[arg(long, value_name = "REF")]
        base: Option<String>,
        /// Print only the worktree's path, for `cd "$(ff create 12 --print-path)"`.
        #[arg(long, conflicts_with = "json")]
        print_path: bool,
    },
    /// Print the path of an issue's (or id's) worktree; exit 65 when it has none.
    Path {
        /// A worktree id (wt-…) or an issue id.
        target: String,
    },
    /// Print a shell function `ffcd ISSUE` that creates the issue's
    /// worktree if needed and changes into it: `eval "$(ff shell-init bash)"`.
    ShellInit {
        /// The shell.
        #[arg(value_enum)]
        shell: InitShell,
    },
    /// Show one worktree, by id or issue.
    Get {
        /// A worktree id (wt-…) or an issue id.
        target: String,
    },
    /// Fetch, then rebase (or merge) a worktree's branch onto its base.
    Sync {
        /// A worktree id (wt-…) or an issue id.
        target: String,
        /// How to bring the branch up to date [default: rebase, or ff.toml's].
        #[arg(long, value_enum)]
        strategy: Option<Strategy>,
        /// Set uncommitted changes aside and restore them afterwards.
        #[arg(long)]
        autostash: bool,
    },
    /// Remove a worktree and its branch (refuses to lose work unless --force).
    Cleanup {
        /// A worktree id (wt-…) or an issue id.
        target: String,
        /// Remove even with uncommitted or unmerged work; the work is kept
        /// under refs/ff/archive/<id> first.
        #[arg(long)]
        force: bool,
    },
    /// Remove, one issue at a time, every worktree whose work is merged
    /// (squash and rebase merges count) or, with --older-than, that is
    /// older than that with nothing to lose. Never forces: a worktree with
    /// uncommitted changes, unmerged commits or a held issue lock is kept,
    /// and the answer says why.
    Prune {
        /// Worktrees whose commits are in the base (the default unless
        /// --older-than is given).
        #[arg(long)]
        merged: bool,
        /// Worktrees created longer ago than this (7d, 12h…) with nothing
        /// to lose, used or not.
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        older_than: Option<Duration>,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the worktrees.
    List,
    /// Repair what crashes left: roll back half-done operations, reconcile
    /// records with git and the disk.
    Recover {
        /// Only report what would be done.
        #[arg(long)]
        dry_run: bool,
    },
    /// List locks and their holders.
    Locks {
        /// Show names with '/' as a tree (--json keeps the flat list, each
        /// entry with its `parent`).
        #[arg(long)]
        tree: bool,
    },
    /// Release a lock whose holder is gone (or, with --force, any lock).
    Unlock {
        /// The lock's name.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Every lock of the state directory.
        #[arg(long)]
        all: bool,
        /// Also revoke holders that look alive.
        #[arg(long)]
        force: bool,
    },
    /// Statistics over the idempotency records.
    Stats,
    /// Serve metrics, a JSON API, live events and a dashboard over HTTP.
    ///
    /// GET /metrics (Prometheus), /api/locks, /api/worktrees,
    /// /api/operations, /api/stats, /api/alerts, /api/events (server-sent
    /// events) and / (the dashboard). Read-only unless --admin. Alert
    /// rules come from ff.toml [alerts].
    Serve {
        /// Where to listen: IP:PORT (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
        listen: String,
        /// A host name the dashboard may be reached by, besides IP
        /// addresses and localhost (repeat for more); other names are
        /// refused, so a web page cannot read it through DNS rebinding.
        #[arg(long = "allow-host", value_name = "NAME")]
        allow_hosts: Vec<String>,
        /// Allow admin actions (clearing dead holders' locks, gc) to
        /// requests with the bearer token from FF_SERVE_TOKEN, or a new one
        /// printed at start.
        #[arg(long)]
        admin: bool,
        /// How often locks are read for live events.
        #[arg(long, value_parser = parse_duration, default_value = "100ms", value_name = "DURATION")]
        poll_interval: Duration,
        /// How often records and worktrees are read.
        #[arg(long, value_parser = parse_duration, default_value = "500ms", value_name = "DURATION")]
        record_interval: Duration,
        /// How often a point of the success-rate and latency plots is taken.
        #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
        history_interval: Duration,
        /// Most connections open at once; at the cap a new one evicts the
        /// oldest connection that is not being answered.
        #[arg(long, default_value_t = 512, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_connections: u32,
        /// How long a client has to send a request's headers, and how
        /// long an idle connection stays open.
        #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
        header_timeout: Duration,
    },
    /// A live view of locks, operations, worktrees and alerts in the terminal.
    Top {
        /// Time between refreshes.
        #[arg(long, value_parser = parse_duration, default_value = "2s", value_name = "DURATION")]
        interval: Duration,
        /// Stop after N refreshes (default: until interrupted).
        #[arg(long, short = 'n', value_name = "N")]
        count: Option<u64>,
    },
    /// Remove finished records older than --max-age (0: every finished record).
    Gc {
        /// For example 7d, 12h, 30m, 0.
        #[arg(long, value_parser = parse_duration, default_value = "7d")]
        max_age: Duration,
    },
    /// Run a command while holding a lock (like flock(1), on any backend).
    Lock {
        /// The lock's name.
        name: String,
        /// Give up after waiting this long.
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Take the lock shared (readers) instead of exclusive.
        #[arg(long)]
        shared: bool,
        /// A counting semaphore: at most N holders of NAME at once (1 to
        /// 10000; every holder should give the same N); not with --shared.
        #[arg(long, value_name = "N")]
        permits: Option<u32>,
        /// If the lock is lost while CMD runs, how long CMD has to stop
        /// after SIGTERM before SIGKILL.
        #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
        kill_after: Duration,
        /// How long the lock outlives ff should ff stop renewing it (paused,
        /// cut off from Redis): lease-based backends free it after this, and
        /// ff then stops CMD (exit 79) [default: 5m, capped at 30s on Redis].
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        lease: Option<Duration>,
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Run a command in an issue's worktree (created if needed), holding
    /// the issue's lock shared: `ff cleanup` waits for it to finish.
    Exec {
        /// The issue id.
        issue: String,
        /// Fail (exit 65) instead of creating the worktree when it has none.
        #[arg(long)]
        no_create: bool,
        /// If the lock is lost while CMD runs, how long CMD has to stop
        /// after SIGTERM before SIGKILL.
        #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
        kill_after: Duration,
        /// The command and its arguments; it runs in the worktree with
        /// FF_ISSUE, FF_WORKTREE_ID, FF_WORKTREE_PATH, FF_BRANCH, FF_BASE,
        /// FF_SLOT and FF_PORT (with ports configured) set.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Run a command at most once successfully per key.
    Once {
        /// The key [default: a hash of the command line and the working directory].
        #[arg(long)]
        key: Option<String>,
        /// Stop retrying a failing command after this many attempts.
        #[arg(long, default_value_t = 3)]
        max_attempts: u32,
        /// Wait at least this long after a failure before retrying (doubling each time).
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        backoff: Duration,
        /// A completed run counts for this long; after it the command may
        /// run again [default: forever].
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        ttl: Option<Duration>,
        /// Accept the key's completed run of another command (or from
        /// another directory) as this one's; by default that is refused (65).
        #[arg(long, requires = "key")]
        allow_different_command: bool,
        /// Remove the key's record (refused while its command runs), so the
        /// command may run again; needs --key, takes no command.
        #[arg(long, requires = "key", conflicts_with_all = ["command", "allow_different_command"])]
        forget: bool,
        /// If the claim is lost while CMD runs, how long CMD has to stop
        /// after SIGTERM before SIGKILL.
        #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
        kill_after: Duration,
        /// The command and its arguments.
        #[arg(last = true, required_unless_present = "forget", value_name = "CMD")]
        command: Vec<String>,
    },
    /// Show what the repository's ff.toml would decide (hooks, state_dir,
    /// base_path, symlink, lock, store, alerts.webhook) and whether this
    /// machine approved it; `ff trust allow` approves it.
    #[command(long_about = crate::trust::TRUST_HELP)]
    Trust {
        /// `allow`: approve exactly these settings and hooks for this clone.
        #[arg(value_enum)]
        action: Option<HooksAction>,
    },
    /// Show the repository's hooks (ff.toml [hooks]) and whether they are
    /// approved on this machine; `ff hooks allow` approves them.
    Hooks {
        /// `allow`: approve exactly this configuration for this repository.
        #[arg(value_enum)]
        action: Option<HooksAction>,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// What `ff hooks` does.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum HooksAction {
    /// Approve the hooks as they are now.
    Allow,
}

/// Shells `ff shell-init` writes for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum InitShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Strategy {
    Rebase,
    Merge,
}

/// `7d`, `30s`, `1h 30m`, or `0`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 12h, 7d, 0)"))
}
