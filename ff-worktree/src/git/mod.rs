//! The git layer: every git call goes through [`Git`].
//!
//! * Argument vectors, never a shell; callers put `--` before paths and
//!   refs.
//! * A timeout on every call; the child is killed when it runs out (or when
//!   the call is cancelled).
//! * Read-only calls set `GIT_OPTIONAL_LOCKS=0`, so they never take the
//!   index lock that concurrent writers need.
//! * `LC_ALL=C` so messages are stable; no terminal prompts; `GIT_DIR`,
//!   `GIT_WORK_TREE` and friends from the caller's environment (set inside
//!   git hooks, for instance) are removed, so a call always addresses the
//!   repository it was given.
//! * Errors carry git's own message.

pub(crate) mod discover;
pub(crate) mod porcelain;
pub(crate) mod repair;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub use porcelain::{WorktreeEntry, parse_worktree_list};

/// The oldest git that has everything used here (`worktree list -z`
/// arrived in 2.36).
pub const MIN_GIT_VERSION: (u32, u32) = (2, 36);

/// Environment variables that would redirect git to another repository.
const REPO_OVERRIDES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
];

/// What went wrong with a git call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The git program could not be started.
    #[error(
        "git was not found ({program}): install git {}.{} or newer, or point FF_GIT at it",
        MIN_GIT_VERSION.0,
        MIN_GIT_VERSION.1
    )]
    NotInstalled {
        /// The program that was tried.
        program: String,
    },
    /// The git found is older than [`MIN_GIT_VERSION`].
    #[error(
        "git {found} is too old: ForgeFlow needs git {}.{} or newer",
        MIN_GIT_VERSION.0,
        MIN_GIT_VERSION.1
    )]
    TooOld {
        /// The version found.
        found: String,
    },
    /// The directory is not inside a git repository.
    #[error("{} is not inside a git repository: {stderr}", .path.display())]
    NotARepository {
        /// The directory.
        path: PathBuf,
        /// git's message.
        stderr: String,
    },
    /// The repository has no working tree.
    #[error("{} is a bare repository; worktrees need a repository with a working tree", .path.display())]
    Bare {
        /// The repository.
        path: PathBuf,
    },
    /// The call ran out of time and was killed.
    #[error("git {args} did not finish within {}; it was stopped", ff_traits::fmt_duration(*.after))]
    Timeout {
        /// The arguments.
        args: String,
        /// The timeout.
        after: Duration,
    },
    /// git exited with an error.
    #[error("git {args} failed{}: {stderr}", .code.map(|c| format!(" (exit {c})")).unwrap_or_default())]
    Failed {
        /// The arguments.
        args: String,
        /// The exit code, if it exited.
        code: Option<i32>,
        /// git's message.
        stderr: String,
    },
    /// git could not be run or its output read.
    #[error("cannot run git {args}: {source}")]
    Io {
        /// The arguments.
        args: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// git said something this layer does not understand.
    #[error("unexpected output from git {args}: {reason}")]
    Unexpected {
        /// The arguments.
        args: String,
        /// What was unexpected.
        reason: String,
    },
}

impl From<GitError> for ff_traits::Error {
    fn from(e: GitError) -> Self {
        match e {
            GitError::NotARepository { .. } | GitError::Bare { .. } => {
                ff_traits::Error::invalid_input("repository", e.to_string())
            }
            other => ff_traits::Error::Backend {
                backend: "git".into(),
                message: other.to_string(),
                source: Some(Box::new(other)),
            },
        }
    }
}

/// What git output a call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitOutput {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error, as text.
    pub stderr: String,
}

impl GitOutput {
    /// Whether git exited with 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Standard output as trimmed text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }
}

/// Facts about a repository, the same wherever in it they were asked: from
/// its main worktree, a subdirectory, or any linked worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepoInfo {
    /// The top of the repository's main working tree (not of the linked
    /// worktree the call may have started in).
    pub toplevel: PathBuf,
    /// The top of the worktree the call started in: `toplevel`, or a
    /// linked worktree's.
    pub worktree: PathBuf,
    /// The common git directory, shared by all worktrees (absolute). Locks
    /// that serialize registry changes are keyed by it.
    pub common_dir: PathBuf,
    /// The branch the main worktree's HEAD points at (short name), if not
    /// detached.
    pub head_branch: Option<String>,
    /// Whether the main worktree's HEAD resolves to a commit (a new
    /// repository has none).
    pub has_commits: bool,
}

/// Runs git in one directory.
#[derive(Debug, Clone)]
pub struct Git {
    program: OsString,
    dir: PathBuf,
    timeout: Duration,
    envs: Vec<(OsString, OsString)>,
}

fn describe(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `FF_GIT`, else `git` found on the `PATH` once per process (each spawn
/// would search the `PATH` again), else plain `git`.
fn default_program() -> &'static OsStr {
    static PROGRAM: std::sync::OnceLock<OsString> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(|| {
        if let Some(p) = std::env::var_os("FF_GIT") {
            return p;
        }
        #[cfg(unix)]
        if let Some(found) = std::env::var_os("PATH").and_then(|path| {
            use std::os::unix::fs::PermissionsExt;
            std::env::split_paths(&path)
                .filter(|dir| dir.is_absolute())
                .map(|dir| dir.join("git"))
                .find(|p| {
                    std::fs::metadata(p)
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
        }) {
            return found.into_os_string();
        }
        OsString::from("git")
    })
}

/// Whether the git version was checked, and what the check said: done once
/// per process, and only when a git call fails (a git too old for us shows
/// itself by failing; the check then names the cause).
static VERSION_CHECK: tokio::sync::OnceCell<Result<String, String>> =
    tokio::sync::OnceCell::const_new();

impl Git {
    /// git (the `FF_GIT` environment variable, else `git` on the `PATH`)
    /// running in `dir`, with a 120 s timeout per call.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            program: default_program().to_owned(),
            dir: dir.into(),
            timeout: Duration::from_secs(120),
            envs: Vec::new(),
        }
    }

    /// The same git with one more environment variable set on every call
    /// (after the repository overrides are removed), for example a private
    /// `GIT_INDEX_FILE`.
    #[must_use]
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Uses another git program.
    #[must_use]
    pub fn with_program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// Sets the timeout of each call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same git in another directory.
    #[must_use]
    pub fn in_dir(&self, dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            ..self.clone()
        }
    }

    /// The directory calls run in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs git and returns whatever it said, successful or not.
    ///
    /// # Errors
    /// [`GitError::NotInstalled`], [`GitError::Io`], [`GitError::Timeout`].
    pub async fn output<I, S>(&self, args: I, read_only: bool) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let mut cmd = tokio::process::Command::new(&self.program);
        // Worktree paths nest deep inside the repository: let git for
        // Windows use paths past MAX_PATH.
        #[cfg(windows)]
        cmd.args(["-c", "core.longpaths=true"]);
        cmd.args(&args)
            .current_dir(&self.dir)
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for var in REPO_OVERRIDES {
            cmd.env_remove(var);
        }
        if read_only {
            cmd.env("GIT_OPTIONAL_LOCKS", "0");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let started = std::time::Instant::now();
        let subcommand = crate::metrics::git_subcommand(&args);
        let result = self.spawn_and_wait(cmd, &args).await;
        crate::metrics::git_call(
            subcommand,
            started,
            matches!(&result, Ok(out) if out.code == Some(0)),
        );
        result
    }

    async fn spawn_and_wait(
        &self,
        mut cmd: tokio::process::Command,
        args: &[OsString],
    ) -> Result<GitOutput, GitError> {
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                GitError::NotInstalled {
                    program: self.program.to_string_lossy().into_owned(),
                }
            } else {
                GitError::Io {
                    args: describe(args),
                    source: e,
                }
            }
        })?;
        tracing::trace!(args = %describe(args), dir = %self.dir.display(), "git");
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| GitError::Timeout {
                args: describe(args),
                after: self.timeout,
            })?
            .map_err(|e| GitError::Io {
                args: describe(args),
                source: e,
            })?;
        Ok(GitOutput {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    async fn checked<I, S>(&self, args: I, read_only: bool) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.output(&args, read_only).await?;
        if out.success() {
            return Ok(out);
        }
        // A git older than we need fails somewhere: say so, not just how.
        let version = VERSION_CHECK
            .get_or_init(|| async {
                self.check_version().await.map_err(|e| match e {
                    GitError::TooOld { found } => found,
                    _ => String::new(),
                })
            })
            .await;
        if let Err(found) = version
            && !found.is_empty()
        {
            return Err(GitError::TooOld {
                found: found.clone(),
            });
        }
        Err(GitError::Failed {
            args: describe(&args),
            code: out.code,
            stderr: out.stderr,
        })
    }

    /// Runs a git command that may change the repository.
    ///
    /// # Errors
    /// As [`output`](Self::output), and [`GitError::Failed`] on a non-zero
    /// exit.
    pub async fn run<I, S>(&self, args: I) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.checked(args, false).await
    }

    /// Runs a read-only git command (`GIT_OPTIONAL_LOCKS=0`).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub async fn read<I, S>(&self, args: I) -> Result<GitOutput, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.checked(args, true).await
    }

    /// The git version, checked against [`MIN_GIT_VERSION`].
    ///
    /// # Errors
    /// [`GitError::NotInstalled`], [`GitError::TooOld`],
    /// [`GitError::Unexpected`] for an unparsable version.
    pub async fn check_version(&self) -> Result<String, GitError> {
        let out = self.output(["--version"], true).await?;
        if !out.success() {
            return Err(GitError::Failed {
                args: "--version".into(),
                code: out.code,
                stderr: out.stderr,
            });
        }
        let text = out.text();
        let version = text
            .strip_prefix("git version ")
            .unwrap_or(&text)
            .to_owned();
        let mut parts = version.split(|c: char| !c.is_ascii_digit());
        let major: Option<u32> = parts.next().and_then(|p| p.parse().ok());
        let minor: Option<u32> = parts.next().and_then(|p| p.parse().ok());
        let (Some(major), Some(minor)) = (major, minor) else {
            return Err(GitError::Unexpected {
                args: "--version".into(),
                reason: format!("cannot read a version in {text:?}"),
            });
        };
        if (major, minor) < MIN_GIT_VERSION {
            return Err(GitError::TooOld { found: version });
        }
        Ok(version)
    }

    /// Describes the repository that contains [`dir`](Self::dir), through
    /// its common directory: the same repository, main worktree and HEAD
    /// whether `dir` is in the main worktree or in a linked one (an agent
    /// calls from inside its worktree; `--show-toplevel` there names the
    /// worktree, not the repository).
    ///
    /// # Errors
    /// [`GitError::NotARepository`], [`GitError::Bare`], or a failed call.
    pub async fn repository(&self) -> Result<RepoInfo, GitError> {
        // The usual layouts are read in-process (no git spawned); anything
        // unusual is asked of git.
        match discover::in_process(&self.dir) {
            discover::Discovery::Found(info) => Ok(info),
            discover::Discovery::NoRepository => Err(GitError::NotARepository {
                path: self.dir.clone(),
                stderr: "fatal: not a git repository (or any of the parent directories): .git"
                    .into(),
            }),
            discover::Discovery::AskGit => self.repository_by_git().await,
        }
    }

    /// [`repository`](Self::repository), asking git.
    pub(crate) async fn repository_by_git(&self) -> Result<RepoInfo, GitError> {
        let out = self
            .output(
                [
                    "rev-parse",
                    "--is-bare-repository",
                    "--path-format=absolute",
                    "--git-common-dir",
                    "--git-dir",
                    "--show-toplevel",
                ],
                true,
            )
            .await?;
        let text = out.text();
        let mut lines = text.lines();
        // A bare repository answers the first questions, then fails at
        // --show-toplevel.
        if lines.next() == Some("true") {
            return Err(GitError::Bare {
                path: self.dir.clone(),
            });
        }
        if !out.success() {
            return Err(GitError::NotARepository {
                path: self.dir.clone(),
                stderr: out.stderr,
            });
        }
        let absolute = |line: Option<&str>, what: &str| {
            let path = PathBuf::from(line.unwrap_or_default());
            crate::paths::canonical(&path).map_err(|e| GitError::Io {
                args: format!("rev-parse {what}"),
                source: e,
            })
        };
        let common_dir = absolute(lines.next(), "--git-common-dir")?;
        let git_dir = absolute(lines.next(), "--git-dir")?;
        let worktree = PathBuf::from(lines.next().unwrap_or_default());
        let toplevel = if crate::paths::same_path(&git_dir, &common_dir) {
            worktree.clone()
        } else if common_dir.file_name().is_some_and(|n| n == ".git") {
            common_dir
                .parent()
                .map_or_else(|| worktree.clone(), Path::to_path_buf)
        } else {
            // A main worktree whose git directory lives elsewhere
            // (`--separate-git-dir`): git lists it first.
            self.worktrees()
                .await?
                .into_iter()
                .next()
                .map_or_else(|| worktree.clone(), |w| w.path)
        };
        let main = self.in_dir(&toplevel);
        let head = main
            .output(["symbolic-ref", "--quiet", "--short", "HEAD"], true)
            .await?;
        let head_branch = head.success().then(|| head.text());
        let has_commits = main
            .output(["rev-parse", "--quiet", "--verify", "HEAD^{commit}"], true)
            .await?
            .success();
        Ok(RepoInfo {
            toplevel,
            worktree,
            common_dir,
            head_branch,
            has_commits,
        })
    }

    /// The repository's worktrees, from `git worktree list --porcelain -z`.
    ///
    /// # Errors
    /// A failed call, or [`GitError::Unexpected`] for output that does not
    /// parse.
    pub async fn worktrees(&self) -> Result<Vec<WorktreeEntry>, GitError> {
        let out = self.read(["worktree", "list", "--porcelain", "-z"]).await?;
        parse_worktree_list(&out.stdout).map_err(|reason| GitError::Unexpected {
            args: "worktree list --porcelain -z".into(),
            reason,
        })
    }

    /// The commit `rev` names, or `None` when it names none.
    ///
    /// # Errors
    /// A failed call (other than "no such revision").
    pub async fn resolve_commit(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let out = self
            .output(
                [
                    "rev-parse",
                    "--quiet",
                    "--verify",
                    "--end-of-options",
                    &spec,
                ],
                true,
            )
            .await?;
        match out.code {
            Some(0) => Ok(Some(out.text())),
            Some(1) if out.stderr.is_empty() => Ok(None),
            code => Err(GitError::Failed {
                args: format!("rev-parse --verify {spec}"),
                code,
                stderr: out.stderr,
            }),
        }
    }
}
