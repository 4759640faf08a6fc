//! The command line, as clap parses it.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::{
    agent, cleanup, completions, create, delete_removed, doctor, exec, gc, get, hooks, list, lock,
    locks, man, mcp, once, path, pool, prune, recover, serve, shell_init, stats, status, switch,
    sync, top, trust, unlock,
};

/// Exit codes, also listed in `--help`, README.md and docs/cli.md.
pub(crate) const EXIT_CODES: &str = r#"EXIT CODES:
    0   success
    1   other failure (git failed, a conflict, corrupt state)
    2   usage error (unknown flag, missing argument, no target given
        outside every worktree)
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
{"error":{"kind","message",…facts}}; kinds and facts are in docs/cli.md."#;

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
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
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
    /// Lock backend: `file`, `redis://HOST:PORT[/DB]` or
    /// `postgres://USER@HOST[:PORT]/DB` [default: file].
    #[arg(long, env = "FF_LOCK", global = true, value_name = "BACKEND")]
    pub(crate) lock: Option<String>,
    /// Record store: `sqlite`, `json`, `redis://…` or `postgres://…`
    /// [default: sqlite].
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
    #[command(
        after_help = "EXAMPLES:\n    ff create 12                  make issue 12's worktree (or print the one it has)
    ff create 12 --base develop   branch from develop
    cd \"$(ff create 12 --print-path)\"
    ff create 12 --retry-hooks    run a failed post_create again"
    )]
    Create(Deferred<create::Args>),
    /// Print the path of an issue's (or id's) worktree; exit 65 when it has none.
    #[command(
        after_help = "EXAMPLES:\n    ff path 12                    the path of issue 12's worktree
    ff path                       the path of the worktree you are in
    ff path ff-12-mx5qglpu-c7e5   by branch (or id, or a path inside it)"
    )]
    Path(Deferred<path::Args>),
    /// Where to go to work on a worktree (its path), `-` for the main
    /// tree; with `ff shell-init`, `ff switch` changes directory.
    Switch(Deferred<switch::Args>),
    /// Print shell functions: `ff switch` that changes directory, and
    /// `ffcd` (the same): `eval "$(ff shell-init bash)"`.
    #[command(
        after_help = "EXAMPLES:\n    ff shell-init bash            print it; eval \"$(ff shell-init bash)\" in ~/.bashrc
    ff shell-init fish | source   in ~/.config/fish/config.fish
    ff switch -c 12; ff switch -  then: into issue 12's worktree, and back"
    )]
    ShellInit(Deferred<shell_init::Args>),
    /// Show one worktree, by id or issue.
    #[command(
        after_help = "EXAMPLES:\n    ff get 12                     issue 12's worktree
    ff get                        the worktree you are in
    ff get 12 --json              every field"
    )]
    Get(Deferred<get::Args>),
    /// Fetch, then rebase (or merge) a worktree's branch onto its base.
    #[command(
        after_help = "EXAMPLES:\n    ff sync                       the worktree you are in, onto its base
    ff sync 12 --strategy merge   merge instead of rebase
    ff sync 12 --autostash        with uncommitted changes set aside"
    )]
    Sync(Deferred<sync::Args>),
    /// Remove a worktree and its branch (refuses to lose work unless --force).
    #[command(
        after_help = "EXAMPLES:\n    ff cleanup                    the worktree you are in (refused if work would be lost)
    ff cleanup 12 --force         work kept under refs/ff/archive/<id> first"
    )]
    Cleanup(Deferred<cleanup::Args>),
    /// Remove, one issue at a time, every worktree whose work is merged
    /// (squash and rebase merges count) or, with --older-than, that is
    /// older than that with nothing to lose. Never forces: a worktree with
    /// uncommitted changes, unmerged commits or a held issue lock is kept,
    /// and the answer says why.
    #[command(
        after_help = "EXAMPLES:\n    ff prune --dry-run            what would go, and why the rest stays
    ff prune                      every worktree whose work is merged
    ff prune --older-than 14d     also those older than 14 days with nothing to lose"
    )]
    Prune(Deferred<prune::Args>),
    /// List the worktrees.
    List(Deferred<list::Args>),
    /// What the agent in a worktree says it is doing; `ff status set
    /// working|waiting|done|blocked [--note TEXT] [ISSUE]` says it.
    #[command(
        after_help = "EXAMPLES:\n    ff status                     what the agent in this worktree says
    ff status set waiting --note \"needs a review\"
    ff status set done 12"
    )]
    Status(Deferred<status::Args>),
    /// The warm pool: worktrees made and prepared ahead of time (`[pool]
    /// size`), which `ff create` hands out at once.
    #[command(
        after_help = "EXAMPLES:\n    ff pool fill                  make pool worktrees up to [pool] size
    ff pool status                what is ready
    ff pool drain                 remove the ready ones"
    )]
    Pool(Deferred<pool::Args>),
    /// Repair what crashes left: roll back half-done operations, reconcile
    /// records with git and the disk.
    #[command(
        after_help = "EXAMPLES:\n    ff recover --dry-run          what crashes left, and what recover would do
    ff recover                    repair it"
    )]
    Recover(Deferred<recover::Args>),
    /// List locks and their holders.
    #[command(
        after_help = "EXAMPLES:\n    ff locks                      held locks and their holders
    ff locks --all --tree         every lock, as a tree"
    )]
    Locks(Deferred<locks::Args>),
    /// Release a lock whose holder is gone (or, with --force, any lock).
    #[command(
        after_help = "EXAMPLES:\n    ff unlock deploy              free it if its holder is gone
    ff unlock deploy --force      stop its live holder (here) or revoke it (Redis)
    ff unlock --all"
    )]
    Unlock(Deferred<unlock::Args>),
    /// Statistics over the idempotency records.
    #[command(after_help = "EXAMPLES:\n    ff stats
    ff stats --json")]
    Stats(Deferred<stats::Args>),
    /// Serve metrics, a JSON API, live events and a dashboard over HTTP.
    ///
    /// GET /metrics (Prometheus), /api/locks, /api/worktrees,
    /// /api/operations, /api/stats, /api/alerts, /api/events (server-sent
    /// events) and / (the dashboard). Read-only unless --admin. Alert
    /// rules come from ff.toml [alerts].
    #[command(
        after_help = "EXAMPLES:\n    ff serve                      http://127.0.0.1:7878, read-only
    ff serve --listen 0.0.0.0:7878 --admin"
    )]
    Serve(Deferred<serve::Args>),
    /// A live view of locks, operations, worktrees and alerts in the terminal.
    #[command(
        after_help = "EXAMPLES:\n    ff top                        refreshed every 2s; q quits
    ff top -n1 --json             one picture, for programs"
    )]
    Top(Deferred<top::Args>),
    /// Serve the repository to coding agents over the Model Context
    /// Protocol, on stdin and stdout: worktrees, locks held across calls,
    /// exactly-once operations.
    ///
    /// Point an MCP client at `ff mcp` (run in the repository). Tools:
    /// worktree_create, worktree_get, worktree_list, worktree_sync,
    /// worktree_cleanup, worktree_prune, lock_acquire, lock_renew,
    /// lock_release, lock_list, operation_claim, operation_complete,
    /// operation_fail, operation_status, agent_status_set,
    /// agent_status_get. The repository's settings and
    /// hooks need approval as for every command.
    #[command(
        after_help = "EXAMPLES:\n    ff mcp                        an MCP server on stdin/stdout
    claude mcp add forgeflow -- ff mcp"
    )]
    Mcp(Deferred<mcp::Args>),
    /// ff behind coding agents' own hooks: Claude Code's worktree hooks
    /// (`ff agent claude worktree-create|worktree-remove`, JSON on stdin),
    /// and `ff agent install claude` to merge them into
    /// `.claude/settings.json`.
    #[command(
        after_help = "EXAMPLES:\n    ff agent install claude       Claude Code's worktree hooks, into .claude/settings.json"
    )]
    Agent(Deferred<agent::Args>),
    /// Remove finished records older than --max-age (0: every finished record).
    #[command(
        after_help = "EXAMPLES:\n    ff gc                         records finished over 7 days ago, free lock files
    ff gc --max-age 0             every finished record"
    )]
    Gc(Deferred<gc::Args>),
    /// Run a command while holding a lock (like flock(1), on any backend).
    #[command(after_help = "EXAMPLES:\n    ff lock deploy -- ./deploy.sh
    ff lock db --shared --timeout 5m -- ./read-report.sh
    ff lock gpu --permits 2 -- ./train.sh")]
    Lock(Deferred<lock::Args>),
    /// Run a command in an issue's worktree (created if needed), holding
    /// the issue's lock shared: `ff cleanup` waits for it to finish.
    #[command(
        after_help = "EXAMPLES:\n    ff exec 12 -- cargo test      in issue 12's worktree (made if needed)
    ff exec 12 --no-create -- make lint"
    )]
    Exec(Deferred<exec::Args>),
    /// Run a command at most once successfully per key.
    #[command(after_help = "EXAMPLES:\n    ff once --key migrate-42 -- ./migrate.sh
    ff once -- ./setup.sh         keyed by the command line and directory (told on stderr)
    ff once --forget --key migrate-42")]
    Once(Deferred<once::Args>),
    /// Show what the repository's ff.toml would decide (hooks, state_dir,
    /// base_path, symlink, lock, store, alerts.webhook) and whether this
    /// machine approved it; `ff trust allow` approves it.
    #[command(long_about = crate::trust::TRUST_HELP)]
    #[command(
        after_help = "EXAMPLES:\n    ff trust                      what this repository's ff.toml would decide
    ff trust allow                approve it on this machine"
    )]
    Trust(Deferred<trust::Args>),
    /// Show the repository's hooks (ff.toml [hooks]) and whether they are
    /// approved on this machine; `ff hooks allow` approves them.
    #[command(
        after_help = "EXAMPLES:\n    ff hooks                      the hooks, and whether they are approved
    ff hooks allow"
    )]
    Hooks(Deferred<hooks::Args>),
    /// Check what a newcomer gets wrong and say what to do about each: git,
    /// the repository, approvals waiting, the state directory, each
    /// backend, what crashes left, the clock against Redis, the shell.
    ///
    /// Nothing an unapproved ff.toml names is contacted or opened. Exits 1
    /// when a check fails, 0 otherwise (warnings included).
    #[command(after_help = "EXAMPLES:\n    ff doctor
    ff doctor --json")]
    Doctor(Deferred<doctor::Args>),
    /// Print a shell completion script.
    #[command(
        after_help = "EXAMPLES:\n    ff completions bash > ~/.local/share/bash-completion/completions/ff
    ff completions zsh > \"${fpath[1]}/_ff\""
    )]
    Completions(Deferred<completions::Args>),
    /// Print the manual page (or, with --out DIR, write one per command).
    #[command(after_help = "EXAMPLES:\n    ff man | man -l -
    ff man --out ./man")]
    Man(Deferred<man::Args>),
    /// Delete removed worktrees' directories (ff starts this itself, in
    /// the background, after a removal).
    #[command(hide = true)]
    DeleteRemoved(Deferred<delete_removed::Args>),
}

/// A subcommand's arguments, added to the parser only when that
/// subcommand is the one being parsed (or its help, a completion script
/// or a manual page asks for them): clap's [`Command::defer`].
///
/// Building every subcommand's arguments, and dropping them again, was
/// two thirds of the instructions `ff --version` ran, and the same for
/// every command, which an agent starts thousands of times a day
/// (BENCHMARKS.md, "Start-up").
///
/// [`Command::defer`]: clap::Command::defer
#[derive(Debug)]
pub(crate) struct Deferred<T>(pub(crate) T);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        if WHOLE.get() {
            return T::augment_args(cmd);
        }
        cmd.defer(|cmd| keep_about(cmd, T::augment_args))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        if WHOLE.get() {
            return T::augment_args_for_update(cmd);
        }
        cmd.defer(|cmd| keep_about(cmd, T::augment_args_for_update))
    }
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

thread_local! {
    /// Set by [`whole_command`] while it builds: every subcommand at once.
    static WHOLE: Cell<bool> = const { Cell::new(false) };
}

/// The whole command tree, every subcommand built, for what describes
/// all of it (completion scripts, manual pages): a deferred subcommand
/// gets its arguments only after its parent is built, so the parent's
/// `help` subcommand and its completions would miss the nested ones,
/// and global options would come before a command's own.
pub(crate) fn whole_command() -> clap::Command {
    WHOLE.set(true);
    let command = <Cli as clap::CommandFactory>::command();
    WHOLE.set(false);
    command
}

/// Adds a subcommand's arguments and keeps the description its variant
/// gave it: the arguments' own doc comment (written for rustdoc, "`ff
/// create`'s arguments") would otherwise replace it, since a deferred
/// part is added after the variant's attributes.
fn keep_about(cmd: clap::Command, augment: fn(clap::Command) -> clap::Command) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let mut cmd = augment(cmd).about(None::<&str>).long_about(None::<&str>);
    if let Some(about) = about {
        cmd = cmd.about(about);
    }
    if let Some(long_about) = long_about {
        cmd = cmd.long_about(long_about);
    }
    cmd
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }
    fn from_arg_matches_mut(matches: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
    fn update_from_arg_matches_mut(
        &mut self,
        matches: &mut clap::ArgMatches,
    ) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

/// What `ff trust` and `ff hooks` may do besides showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Approve {
    /// Approve what is shown, as it is now.
    Allow,
}

/// `7d`, `30s`, `1h 30m`, or `0`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 12h, 7d, 0)"))
}

/// A duration longer than zero: a usage error (exit 2) otherwise.
pub(crate) fn parse_nonzero_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero (examples: 30s, 5m, 12h)".to_owned()),
        d => Ok(d),
    }
}

/// A refresh or wait of at least 100 ms: a usage error (exit 2) otherwise.
pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d < Duration::from_millis(100) => {
            Err("give at least 100ms (examples: 500ms, 2s)".to_owned())
        }
        d => Ok(d),
    }
}

/// Clap's usage errors, with ff's hint where clap's own misleads.
pub(crate) trait CommandAfterDashes {
    /// Prints the error (with a hint) and exits as clap does (2; 0 for
    /// `--help` and `--version`).
    fn exit_with_hint(self) -> !;
}

impl CommandAfterDashes for clap::Error {
    fn exit_with_hint(self) -> ! {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        // `ff exec 60 ls`: the command belongs after `--`, which clap
        // calls an unexpected argument.
        let command = std::env::args()
            .skip(1)
            .find(|a| matches!(a.as_str(), "exec" | "lock" | "once"));
        let wants_dashes = command.is_some() && !std::env::args().any(|a| a == "--");
        if self.kind() == ErrorKind::UnknownArgument && wants_dashes {
            let arg = match self.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(a)) => a.clone(),
                _ => "CMD".to_owned(),
            };
            let _ = self.print();
            eprintln!(
                "\nhint: the command to run goes after `--`, as in: ff {} … -- {arg} …",
                command.unwrap_or_default()
            );
            std::process::exit(2);
        }
        self.exit()
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::{Cli, whole_command};

    /// Every command path of the whole tree (`["pool", "fill"]`, …).
    fn paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            paths(sub, &path, out);
        }
    }

    /// What `ff PATH… FLAG` prints (help, or the usage error).
    fn printed(cmd: clap::Command, path: &[String], flag: &str) -> String {
        let args = std::iter::once("ff")
            .chain(path.iter().map(String::as_str))
            .chain([flag]);
        match cmd.try_get_matches_from(args) {
            Ok(_) => String::new(),
            Err(e) => e.render().to_string(),
        }
    }

    #[test]
    fn the_parser_is_clap_valid() {
        whole_command().debug_assert();
        Cli::command().debug_assert();
    }

    #[test]
    fn subcommands_are_built_only_when_used() {
        let cmd = Cli::command();
        let create = cmd.find_subcommand("create").expect("create");
        assert_eq!(
            create.get_arguments().count(),
            0,
            "ff create's arguments were built before it was invoked"
        );
        let whole = whole_command();
        let create = whole.find_subcommand("create").expect("create");
        assert!(create.get_arguments().count() > 0);
    }

    /// A deferred subcommand prints the same help and errors as one built
    /// whole: its description from its variant (not its arguments' doc
    /// comment), the same options in the same order.
    #[test]
    fn deferred_subcommands_print_what_whole_ones_do() {
        let mut all = Vec::new();
        paths(&whole_command(), &[], &mut all);
        assert!(all.len() > 30, "{all:?}");
        for path in std::iter::once(Vec::new()).chain(all) {
            for flag in ["--help", "-h", "--no-such-flag"] {
                assert_eq!(
                    printed(Cli::command(), &path, flag),
                    printed(whole_command(), &path, flag),
                    "ff {} {flag}",
                    path.join(" ")
                );
            }
        }
    }
}
