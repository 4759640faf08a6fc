//! The worktree layer's errors: every contract error, plus the states of
//! the world only worktrees have (a limit reached, work a cleanup would
//! lose, a worktree that lives in another clone, a rebase that stopped on
//! conflicts).

use std::fmt;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a [`WorktreeManager`](crate::WorktreeManager) call.
///
/// Lock and store failures arrive unchanged as [`Error::Contract`], the
/// idempotency lifecycle's verdicts (in progress, attempts exhausted,
/// backoff) as [`Error::Idempotency`]; the other variants are the worktree
/// layer's own.
/// Match on [`Error::kind`] for a stable meaning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A failure of the contracts below: a lock timeout, bad input, a
    /// backend failure, corrupt state.
    #[error(transparent)]
    Contract(#[from] ff_traits::Error),

    /// A verdict of the idempotency lifecycle: the operation is in progress
    /// elsewhere, failed too often, or waits out its backoff. (A contract
    /// error the idempotency manager passes on is [`Error::Contract`].)
    #[error(transparent)]
    Idempotency(ff_idempotency::Error),

    /// git failed: it is missing or too old, a call timed out, or git
    /// refused (its own message is in the error). A repository that is not
    /// one, or bare, is [`ff_traits::Error::InvalidInput`] instead.
    #[error(transparent)]
    Git(crate::git::GitError),

    /// The configured worktree limit is reached and nothing could be
    /// evicted. Nothing was created.
    #[error(
        "the limit of {limit} worktrees under {base} is reached (`{setting} = {limit}`){why}. \
         Nothing was created. `ff prune --dry-run` lists the worktrees that could go, `ff cleanup \
         ISSUE` removes one, or raise `{setting}` in ff.toml"
    )]
    LimitReached {
        /// The configured maximum.
        limit: usize,
        /// The base path the worktrees are counted under.
        base: String,
        /// Why nothing was evicted (empty, or a clause starting with `; `).
        why: String,
        /// The setting that sets the limit: `max_worktrees`, or `slots`.
        setting: String,
    },

    /// A cleanup would destroy uncommitted changes or commits not merged
    /// into the base. Nothing was removed; forcing keeps the work under
    /// `refs/ff/archive/<id>` and removes the worktree.
    #[error("{}", WouldLose::new(worktree, files, *commits, base))]
    WouldLoseWork {
        /// The worktree's id.
        worktree: String,
        /// Paths with uncommitted changes (untracked files included).
        files: Vec<String>,
        /// Commits on the branch that `base` does not contain.
        commits: u64,
        /// What the commits were counted against.
        base: String,
    },

    /// The state of the world forbids the operation here: the worktree
    /// lives in another clone, has uncommitted changes a sync would mix
    /// with, or is on disk but unknown to git. Nothing was changed.
    #[error("{what}: {reason}")]
    Refused {
        /// What was refused (for example `sync of wt-12-…`).
        what: String,
        /// Why, and what to do.
        reason: String,
    },

    /// A rebase or merge stopped on conflicts; it was aborted and the
    /// worktree is exactly as before.
    #[error(
        "{what} stopped on conflicts in {} file(s): {}. It was aborted: the branch and the \
         worktree are exactly as they were. To resolve by hand, in the worktree: {resolve}",
        .paths.len(),
        ConflictList(.paths)
    )]
    Conflict {
        /// What was attempted (for example `rebase of ff-123-… onto main`).
        what: String,
        /// The conflicting paths.
        paths: Vec<String>,
        /// How to do it by hand (the git commands, in order).
        resolve: String,
    },

    /// The operation would make commits in the user's name (a sync's
    /// rebase or merge) and git knows no committer identity. Nothing was
    /// changed: no rebase in progress, the branch where it was. ForgeFlow
    /// never invents an identity for the user's commits.
    #[error(
        "{what} would make commits, and git has no committer identity here ({detail}); set one \
         with `git config user.name \"Your Name\"` and `git config user.email you@example.com` \
         (add --global for every repository), or GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL in \
         the environment"
    )]
    NoIdentity {
        /// What needed it (for example `rebase of ff-123-… onto main`).
        what: String,
        /// git's own words.
        detail: String,
    },

    /// A lifecycle hook failed (see [`crate::hooks`]).
    #[error(
        "the {hook} hook failed{}: `{command}` {status}{}",
        HookNote(.hook),
        OutputTail(.output)
    )]
    HookFailed {
        /// Which hook (`post_create`, `pre_cleanup`, …).
        hook: String,
        /// The command that failed.
        command: String,
        /// How it ended (`exit status: 1`, killed after its timeout).
        status: String,
        /// The last 4 KiB of its output.
        output: String,
    },
}

/// What a failed hook means for the operation around it.
struct HookNote<'a>(&'a str);

impl fmt::Display for HookNote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            "post_sync" => f.write_str(
                " after the sync itself succeeded (the branch is up to date; only what the hook \
                 should have done afterwards is missing)",
            ),
            "pre_sync" => f.write_str(", so nothing was synced"),
            "pre_cleanup" => f.write_str(", so nothing was removed (--force removes it anyway)"),
            _ => Ok(()),
        }
    }
}

/// A hook's output tail, on lines of its own after the message.
struct OutputTail<'a>(&'a str);

impl fmt::Display for OutputTail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "; its output ended with:\n{}", self.0)
        }
    }
}

/// The meaning of an [`Error`], stable for matching, logs and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Contract`], with the contract error's own kind.
    Contract(ff_traits::ErrorKind),
    /// [`Error::Idempotency`], with the lifecycle's own kind.
    Idempotency(ff_idempotency::ErrorKind),
    /// [`Error::Git`]
    Git,
    /// [`Error::LimitReached`]
    LimitReached,
    /// [`Error::WouldLoseWork`]
    WouldLoseWork,
    /// [`Error::Refused`]
    Refused,
    /// [`Error::Conflict`]
    Conflict,
    /// [`Error::HookFailed`].
    HookFailed,
    /// [`Error::NoIdentity`].
    NoIdentity,
}

impl ErrorKind {
    /// A stable snake_case name, used in JSON output (a contract error's
    /// own name for [`ErrorKind::Contract`]).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contract(kind) => kind.as_str(),
            Self::Idempotency(kind) => kind.as_str(),
            Self::Git => "git",
            Self::LimitReached => "limit_reached",
            Self::WouldLoseWork => "would_lose_work",
            Self::Refused => "refused",
            Self::Conflict => "conflict",
            Self::HookFailed => "hook_failed",
            Self::NoIdentity => "git_identity",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ff_traits::ErrorKind> for ErrorKind {
    fn from(kind: ff_traits::ErrorKind) -> Self {
        Self::Contract(kind)
    }
}

impl From<ff_idempotency::Error> for Error {
    fn from(e: ff_idempotency::Error) -> Self {
        match e {
            ff_idempotency::Error::Contract(e) => Self::Contract(e),
            verdict => Self::Idempotency(verdict),
        }
    }
}

impl From<ff_idempotency::ErrorKind> for ErrorKind {
    fn from(kind: ff_idempotency::ErrorKind) -> Self {
        match kind {
            ff_idempotency::ErrorKind::Contract(kind) => Self::Contract(kind),
            verdict => Self::Idempotency(verdict),
        }
    }
}

impl Error {
    /// The error's meaning.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Contract(e) => ErrorKind::Contract(e.kind()),
            Self::Idempotency(e) => ErrorKind::Idempotency(e.kind()),
            Self::Git(_) => ErrorKind::Git,
            Self::LimitReached { .. } => ErrorKind::LimitReached,
            Self::WouldLoseWork { .. } => ErrorKind::WouldLoseWork,
            Self::Refused { .. } => ErrorKind::Refused,
            Self::Conflict { .. } => ErrorKind::Conflict,
            Self::HookFailed { .. } => ErrorKind::HookFailed,
            Self::NoIdentity { .. } => ErrorKind::NoIdentity,
        }
    }

    /// The contract error inside, if this is one.
    #[must_use]
    pub fn as_contract(&self) -> Option<&ff_traits::Error> {
        match self {
            Self::Contract(e) => Some(e),
            _ => None,
        }
    }

    /// Whether trying again later may succeed without anyone changing
    /// anything (as [`ff_traits::Error::is_temporary`]; a git call that
    /// timed out too).
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Contract(e) => e.is_temporary(),
            Self::Idempotency(e) => e.is_temporary(),
            Self::Git(e) => matches!(e, crate::git::GitError::Timeout { .. }),
            _ => false,
        }
    }

    /// Shorthand for a contract [`ff_traits::Error::InvalidInput`].
    pub fn invalid_input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        ff_traits::Error::invalid_input(what, reason).into()
    }

    /// Shorthand for [`Error::Refused`].
    pub fn refused(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Refused {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// A contract [`ff_traits::Error::Backend`] for an I/O failure (see
    /// [`ff_traits::Error::io`]).
    #[must_use]
    pub fn io(backend: &str, context: &str, e: &std::io::Error) -> Self {
        ff_traits::Error::io(backend, context, e).into()
    }

    /// Shorthand for a contract [`ff_traits::Error::Corrupt`].
    pub fn corrupt(
        what: impl Into<String>,
        location: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ff_traits::Error::corrupt(what, location, reason).into()
    }

    /// Shorthand for a contract [`ff_traits::Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        ff_traits::Error::NotFound { what: what.into() }.into()
    }
}

impl From<crate::git::GitError> for Error {
    fn from(e: crate::git::GitError) -> Self {
        use crate::git::GitError;
        match e {
            GitError::NotARepository { .. } | GitError::Bare { .. } => {
                Self::invalid_input("repository", e.to_string())
            }
            other => Self::Git(other),
        }
    }
}

/// The text of [`Error::WouldLoseWork`].
struct WouldLose<'a> {
    worktree: &'a str,
    files: &'a [String],
    commits: u64,
    base: &'a str,
}

impl<'a> WouldLose<'a> {
    fn new(worktree: &'a str, files: &'a [String], commits: u64, base: &'a str) -> Self {
        Self {
            worktree,
            files,
            commits,
            base,
        }
    }
}

impl fmt::Display for WouldLose<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut what = Vec::new();
        if !self.files.is_empty() {
            what.push(format!(
                "{} uncommitted file(s) ({})",
                self.files.len(),
                ConflictList(self.files)
            ));
        }
        if self.commits > 0 {
            what.push(format!(
                "{} commit(s) not merged into {}",
                self.commits, self.base
            ));
        }
        write!(
            f,
            "worktree {} has {}; commit and merge the work, or force the cleanup (the work is \
             then kept under refs/ff/archive/{})",
            self.worktree,
            what.join(" and "),
            self.worktree
        )
    }
}

/// Lists paths in a message: the first five, then a count.
struct ConflictList<'a>(&'a [String]);

impl fmt::Display for ConflictList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<&str> = self.0.iter().take(5).map(String::as_str).collect();
        f.write_str(&shown.join(", "))?;
        if self.0.len() > 5 {
            write!(f, " and {} more", self.0.len() - 5)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_stable_strings() {
        let e = Error::invalid_input("issue id", "empty");
        assert_eq!(e.kind().as_str(), "invalid_input");
        let e = Error::WouldLoseWork {
            worktree: "wt-1-a-b".into(),
            files: vec!["a".into()],
            commits: 2,
            base: "main".into(),
        };
        assert_eq!(e.kind(), ErrorKind::WouldLoseWork);
        assert_eq!(
            e.to_string(),
            "worktree wt-1-a-b has 1 uncommitted file(s) (a) and 2 commit(s) not merged into \
             main; commit and merge the work, or force the cleanup (the work is then kept under \
             refs/ff/archive/wt-1-a-b)"
        );
        assert_eq!(ErrorKind::LimitReached.as_str(), "limit_reached");
        assert_eq!(ErrorKind::Refused.as_str(), "refused");
        assert_eq!(ErrorKind::Conflict.as_str(), "conflict");
    }
}
