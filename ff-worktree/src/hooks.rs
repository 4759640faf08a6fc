//! Lifecycle hooks: commands run with `sh -c` in a worktree at set points
//! of its life, with the worktree's facts in the environment.
//!
//! | hook | when | if it fails |
//! |---|---|---|
//! | `post_create` | once per worktree, after it is made (and its local files copied) | the worktree is rolled back, or kept and marked `hook_failed` ([`OnHookFailure`]) |
//! | `pre_sync` | before each sync | the sync is refused |
//! | `post_sync` | after each sync that succeeded | the sync's answer is the failure (the sync stands) |
//! | `pre_cleanup` | before each cleanup | the cleanup is refused unless forced |
//! | `pool_prepare` | once per warm pool worktree, after its checkout (no issue yet) | the pool worktree is removed |
//!
//! `post_create` runs exactly once per worktree: its run is an operation
//! with its own record, claimed under the lock, so concurrent
//! creates of one issue run it once; a process killed mid-hook leaves the
//! claim, which the next create of the issue takes over and runs again
//! with `FF_HOOK_ATTEMPT` = 2; once it succeeded it never runs again.
//!
//! Environment: `FF_HOOK`, `FF_HOOK_ATTEMPT`, `FF_ISSUE`,
//! `FF_WORKTREE_ID`, `FF_WORKTREE_PATH`, `FF_BRANCH`, `FF_BASE`, `FF_REPO`,
//! `FF_SLOT`, `FF_PORT` (when ports are configured). Output goes to
//! stderr as it comes (or to a log file per worktree, [`Hooks::log_dir`]);
//! its last 4 KiB are kept for the error.
//!
//! Whether hooks from a repository's own configuration may run at all is
//! the caller's decision (the `ff` command asks for approval first): this
//! layer runs the hooks its configuration holds.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ff_process::group::{Spawned, tee_tail};

use crate::{Error, Result};

/// How much of a hook's output an error keeps.
pub const OUTPUT_TAIL: usize = 4 * 1024;

/// The hooks of a [`WorktreeConfig`](crate::WorktreeConfig); empty by
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hooks {
    /// Run once per worktree, after it is made.
    pub post_create: Vec<String>,
    /// Run before each sync; a failure refuses the sync.
    pub pre_sync: Vec<String>,
    /// Run after each sync that succeeded.
    pub post_sync: Vec<String>,
    /// Run before each cleanup; a failure refuses the cleanup unless
    /// forced.
    pub pre_cleanup: Vec<String>,
    /// Run once in each warm pool worktree, after its checkout and before
    /// it is handed out (the expensive dependency install belongs here);
    /// a failure removes that pool worktree. It should write only files
    /// git ignores: a tracked file it changes shows as changed in the
    /// issue's worktree.
    pub pool_prepare: Vec<String>,
    /// Longest one command may run (default 10 minutes); then its process
    /// group is killed and the hook has failed.
    pub timeout: Duration,
    /// What a failed `post_create` does to the new worktree.
    pub on_failure: OnHookFailure,
    /// Where hook output goes instead of stderr: `<log_dir>/<worktree
    /// id>.log`, appended to (for callers whose stderr is machine-read).
    pub log_dir: Option<std::path::PathBuf>,
    /// Files of the repository the commands run, with the content that was
    /// approved: a hook runs in a worktree only where each is the same
    /// there (see [`PinnedFile`]).
    pub pinned_files: Vec<PinnedFile>,
}

/// A file of the repository that a hook command runs (`./setup.sh`), with
/// the content its approval covered.
///
/// Hooks run in the worktree, whose files are its branch's: approving
/// `./setup.sh` on `main` must not approve the `setup.sh` a pull request's
/// branch brings. Before any command of a hook runs, each pinned file is
/// read in the worktree; a different content (or a file that appeared
/// where none was approved) refuses the hook
/// ([`Error::Refused`]) and nothing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    path: std::path::PathBuf,
    sha256: Option<String>,
}

impl PinnedFile {
    /// `path`, relative to the worktree, approved with the content whose
    /// hex SHA-256 is `sha256`, or approved as absent (`None`).
    #[must_use]
    pub fn new(path: impl Into<std::path::PathBuf>, sha256: Option<String>) -> Self {
        Self {
            path: path.into(),
            sha256,
        }
    }

    /// The file, relative to the worktree.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hex SHA-256 of the approved content; `None`: approved absent.
    #[must_use]
    pub fn sha256(&self) -> Option<&str> {
        self.sha256.as_deref()
    }

    /// Whether the file in `dir` is the one approved.
    fn holds_in(&self, dir: &Path) -> bool {
        use sha2::Digest as _;
        let now = std::fs::read(dir.join(&self.path))
            .ok()
            .map(|bytes| ff_traits::hex_lower(&sha2::Sha256::digest(&bytes)));
        now.as_deref() == self.sha256()
    }
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            post_create: Vec::new(),
            pre_sync: Vec::new(),
            post_sync: Vec::new(),
            pre_cleanup: Vec::new(),
            pool_prepare: Vec::new(),
            timeout: Duration::from_secs(600),
            on_failure: OnHookFailure::Rollback,
            log_dir: None,
            pinned_files: Vec::new(),
        }
    }
}

impl Hooks {
    /// Whether there is no hook at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.post_create.is_empty()
            && self.pre_sync.is_empty()
            && self.post_sync.is_empty()
            && self.pre_cleanup.is_empty()
            && self.pool_prepare.is_empty()
    }

    /// The commands of `hook`.
    #[must_use]
    pub fn commands(&self, hook: Hook) -> &[String] {
        match hook {
            Hook::PostCreate => &self.post_create,
            Hook::PreSync => &self.pre_sync,
            Hook::PostSync => &self.post_sync,
            Hook::PreCleanup => &self.pre_cleanup,
            Hook::PoolPrepare => &self.pool_prepare,
        }
    }
}

/// What a failed `post_create` does to the worktree it ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnHookFailure {
    /// Remove it: directory, branch, registration and records (default).
    #[default]
    Rollback,
    /// Keep it, marked `hook_failed`, for inspection.
    Keep,
}

/// The points hooks run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hook {
    /// After a worktree is made, once.
    PostCreate,
    /// Before a sync.
    PreSync,
    /// After a sync.
    PostSync,
    /// Before a cleanup.
    PreCleanup,
    /// In a warm pool worktree, once, before it is handed out.
    PoolPrepare,
}

impl Hook {
    /// Its name in configuration: `post_create`, `pre_sync`, `post_sync`,
    /// `pre_cleanup`, `pool_prepare`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostCreate => "post_create",
            Self::PreSync => "pre_sync",
            Self::PostSync => "post_sync",
            Self::PreCleanup => "pre_cleanup",
            Self::PoolPrepare => "pool_prepare",
        }
    }
}

/// Runs `hook`'s `commands` one after another in `dir` with `env`; the
/// first failure stops them. Each command's process group is written down
/// for the worktree in `groups`, so what it leaves running (a server
/// started in the background) is stopped when the worktree is cleaned up.
pub(crate) async fn run(
    hook: Hook,
    hooks: &Hooks,
    dir: &Path,
    env: &[(&str, String)],
    log: Option<&Path>,
    groups: Option<(&crate::processes::Groups, &str)>,
) -> Result<()> {
    let (commands, timeout) = (hooks.commands(hook), hooks.timeout);
    if let Some(changed) = hooks.pinned_files.iter().find(|p| !p.holds_in(dir)) {
        let now = match (dir.join(changed.path()).exists(), changed.sha256()) {
            (true, None) => {
                "was absent when the hooks were approved, and this worktree's branch adds it"
            }
            (true, Some(_)) => "is not the content approved on this machine",
            (false, _) => "is missing",
        };
        return Err(Error::refused(
            format!("the {} hook", hook.as_str()),
            format!(
                "it runs {}, which in {} {now}: approving a hook approves the files it runs, \
                 and this branch's copy differs. Review it, then run `ff hooks allow` with the \
                 main working tree holding that content, or pass --no-hooks",
                crate::display::escape_path(changed.path()),
                crate::display::escape_path(dir),
            ),
        ));
    }
    for command in commands {
        tracing::info!(hook = hook.as_str(), command, "running hook");
        let failed = |status: String, output: String| Error::HookFailed {
            hook: hook.as_str().to_owned(),
            command: command.clone(),
            status,
            output,
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("FF_HOOK", hook.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut spawned = Spawned::new_group(&mut cmd)
            .map_err(|e| failed(format!("could not start sh: {e}"), String::new()))?;
        if let (Some((groups, id)), Some(group)) =
            (groups, spawned.group.and_then(|g| u32::try_from(g).ok()))
        {
            groups.record(id, group);
        }
        let (out, err) = (spawned.child.stdout.take(), spawned.child.stderr.take());
        let sink = || async {
            match log {
                Some(path) => {
                    // Private, and never through a link planted there.
                    if let Some(dir) = path.parent() {
                        let _ = crate::private::ensure_private_dir(dir);
                    }
                    let file = crate::private::file_options()
                        .create(true)
                        .append(true)
                        .open(path);
                    match file {
                        Ok(f) => Sink::File(tokio::fs::File::from_std(f)),
                        Err(_) => Sink::Stderr(tokio::io::stderr()),
                    }
                }
                None => Sink::Stderr(tokio::io::stderr()),
            }
        };
        let (sink_out, sink_err) = (sink().await, sink().await);
        let output = async {
            let (a, b) = tokio::join!(tee(out, sink_out), tee(err, sink_err));
            let mut all = a;
            all.extend(b);
            all
        };
        let waited = tokio::time::timeout(timeout, async {
            let (status, output) = tokio::join!(spawned.child.wait(), output);
            (status, output)
        })
        .await;
        match waited {
            Ok((Ok(status), _)) if status.success() => {}
            Ok((status, output)) => {
                let status = match status {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(failed(status, tail(&output)));
            }
            Err(_) => {
                // Out of time: the whole group goes, at once.
                let _ = spawned.stop(Duration::ZERO).await;
                return Err(failed(
                    format!(
                        "killed after its timeout of {}",
                        ff_traits::fmt_duration(timeout)
                    ),
                    String::new(),
                ));
            }
        }
    }
    Ok(())
}

/// Copies a hook's output to `to` as it comes; returns its last
/// [`OUTPUT_TAIL`] bytes.
async fn tee(from: Option<impl tokio::io::AsyncRead + Unpin>, to: Sink) -> Vec<u8> {
    match (from, to) {
        (None, _) => Vec::new(),
        (Some(from), Sink::Stderr(to)) => tee_tail(from, to, OUTPUT_TAIL).await,
        (Some(from), Sink::File(to)) => tee_tail(from, to, OUTPUT_TAIL).await,
    }
}

/// Where a hook's output is copied to.
enum Sink {
    Stderr(tokio::io::Stderr),
    File(tokio::fs::File),
}

fn tail(output: &[u8]) -> String {
    let start = output.len().saturating_sub(OUTPUT_TAIL);
    String::from_utf8_lossy(&output[start..])
        .trim_end()
        .to_owned()
}
