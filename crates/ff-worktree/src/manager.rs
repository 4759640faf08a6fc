//! [`WorktreeManager`]: create, find, list and clean up per-issue worktrees.
//! See `DESIGN.md` for the reasoning; sync and recovery are still to come.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ff_traits::{
    Error, IdempotencyKey, IdempotencyManager, IdempotencyStorage, LockGuard, LockOptions,
    LockProvider, ManagerConfig, RecordStatus, Result, Start, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::git::{Git, RepoInfo};
use crate::issue::IssueId;

const CREATE_OPERATION: &str = "createWorktree";

/// Options of a [`WorktreeManager`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorktreeConfig {
    /// Any directory inside the repository.
    pub repo: PathBuf,
    /// Where worktrees go (default `<repository top>/.ff-worktrees`).
    pub base_path: Option<PathBuf>,
    /// Most worktrees under the base path at once (default 10); creating
    /// one more is refused.
    pub max_worktrees: usize,
    /// What new branches start from (default: the branch HEAD points at).
    pub base_ref: Option<String>,
    /// Names this repository in locks and records; the same in every clone
    /// (default: its root commit).
    pub namespace: Option<String>,
    /// Longest wait for an issue or registry lock (default 30 s).
    pub lock_timeout: Duration,
    /// Longest a git call may run (default 120 s).
    pub git_timeout: Duration,
}

impl WorktreeConfig {
    /// Defaults for the repository containing `repo`.
    pub fn new(repo: impl Into<PathBuf>) -> Self {
        Self {
            repo: repo.into(),
            base_path: None,
            max_worktrees: 10,
            base_ref: None,
            namespace: None,
            lock_timeout: Duration::from_secs(30),
            git_timeout: Duration::from_secs(120),
        }
    }

    /// Sets [`base_path`](Self::base_path).
    #[must_use]
    pub fn with_base_path(mut self, p: impl Into<PathBuf>) -> Self {
        self.base_path = Some(p.into());
        self
    }

    /// Sets [`max_worktrees`](Self::max_worktrees).
    #[must_use]
    pub fn with_max_worktrees(mut self, n: usize) -> Self {
        self.max_worktrees = n;
        self
    }

    /// Sets [`base_ref`](Self::base_ref).
    #[must_use]
    pub fn with_base_ref(mut self, r: impl Into<String>) -> Self {
        self.base_ref = Some(r.into());
        self
    }

    /// Sets [`lock_timeout`](Self::lock_timeout).
    #[must_use]
    pub fn with_lock_timeout(mut self, d: Duration) -> Self {
        self.lock_timeout = d;
        self
    }
}

/// A worktree made for one issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Worktree {
    /// `wt-<issue>-<time base36>-<random>`; also its directory name.
    pub id: String,
    /// The issue.
    pub issue: String,
    /// Its directory.
    pub path: PathBuf,
    /// Its branch (`ff-<issue>-<suffix>`).
    pub branch: String,
    /// The ref it started from.
    pub base: String,
    /// The commit it started from.
    pub base_commit: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What [`WorktreeManager::create_worktree`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Created {
    /// The issue's worktree.
    pub worktree: Worktree,
    /// Whether it existed already (the call changed nothing).
    pub reused: bool,
}

/// What [`WorktreeManager::cleanup_worktree`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cleanup {
    /// The worktree removed, or `None` when there was nothing to clean.
    pub removed: Option<Worktree>,
    /// Where work that would have been lost was kept (forced cleanup).
    pub archived_at: Option<String>,
}

/// The names one create attempt uses; unique to the attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Plan {
    id: String,
    path: PathBuf,
    branch: String,
}

impl Plan {
    fn new(issue: &IssueId, base: &Path) -> Self {
        let now = Timestamp::now().as_millis();
        // 16 bits that differ between processes and between calls (a hash
        // of a process-unique id), after the time in milliseconds.
        let random = Sha256::digest(ff_traits::unique_id().as_bytes());
        let suffix = format!("{}-{}", base36(now), ff_traits::hex_lower(&random[..2]));
        let id = format!("wt-{issue}-{suffix}");
        Self {
            path: base.join(&id),
            branch: format!("ff-{issue}-{suffix}"),
            id,
        }
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Per-issue git worktrees over any lock provider and idempotency store.
///
/// Every create and cleanup of an issue runs under that issue's lock and
/// re-reads its record inside it; git registry changes (`worktree add`,
/// `worktree remove`, `branch -D`) run under one lock per repository, held
/// only around them.
#[derive(Debug)]
pub struct WorktreeManager<L, S> {
    git: Git,
    info: RepoInfo,
    base: PathBuf,
    config: WorktreeConfig,
    locks: L,
    records: IdempotencyManager<S>,
    repo_key: String,
    registry_lock: String,
}

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// Opens the manager for the repository in `config.repo`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the directory is not in a git
    /// repository, the repository is bare or has no commits, or the base
    /// path is a file or a symbolic link; [`Error::Backend`] when git is
    /// missing or too old.
    pub async fn open(config: WorktreeConfig, locks: L, store: S) -> Result<Self> {
        let git = Git::new(&config.repo).with_timeout(config.git_timeout);
        git.check_version().await?;
        let info = git.repository().await?;
        if !info.has_commits {
            return Err(Error::invalid_input(
                "repository",
                format!(
                    "{} has no commits yet; worktrees need one to start from (make a first commit)",
                    info.toplevel.display()
                ),
            ));
        }
        let git = git.in_dir(&info.toplevel);
        let base = config
            .base_path
            .clone()
            .unwrap_or_else(|| info.toplevel.join(".ff-worktrees"));
        if let Ok(m) = std::fs::symlink_metadata(&base)
            && (m.file_type().is_symlink() || !m.is_dir())
        {
            return Err(Error::invalid_input(
                "base path",
                format!("{} exists and is not a plain directory", base.display()),
            ));
        }
        std::fs::create_dir_all(&base)
            .map_err(|e| Error::io("worktree", &format!("cannot create {}", base.display()), &e))?;
        let base = std::fs::canonicalize(&base).map_err(|e| {
            Error::io(
                "worktree",
                &format!("cannot resolve {}", base.display()),
                &e,
            )
        })?;
        let repo_key = match &config.namespace {
            Some(ns) => ns.clone(),
            None => root_commit(&git).await?,
        };
        let registry = Sha256::digest(info.common_dir.to_string_lossy().as_bytes());
        let registry_lock = format!("ff-{}-registry", ff_traits::hex_lower(&registry[..8]));
        // Worktree records describe worktrees that exist: they must not
        // expire while the worktree does.
        let records = IdempotencyManager::new(
            store,
            ManagerConfig::default().with_max_age(Duration::from_secs(100 * 365 * 86_400)),
        );
        let manager = Self {
            git,
            info,
            base,
            config,
            locks,
            records,
            repo_key,
            registry_lock,
        };
        manager.exclude_base_path().await?;
        Ok(manager)
    }

    /// The base path (canonical).
    pub fn base_path(&self) -> &Path {
        &self.base
    }

    fn issue_lock(&self, issue: &IssueId) -> String {
        format!("ff-{}-issue-{issue}", self.repo_key)
    }

    fn create_key(&self, issue: &IssueId) -> IdempotencyKey {
        IdempotencyKey::new(
            CREATE_OPERATION,
            json!({"issue": issue.as_str()}),
            json!({"repo": self.repo_key}),
        )
    }

    async fn lock(&self, name: &str, operation: &str) -> Result<LockGuard> {
        let options = LockOptions::default()
            .with_timeout(self.config.lock_timeout)
            .with_operation(operation);
        self.locks.acquire(name, &options).await
    }

    /// Runs `f` under the repository's registry lock.
    async fn with_registry<T>(
        &self,
        operation: &str,
        f: impl AsyncFnOnce() -> Result<T>,
    ) -> Result<T> {
        let guard = self.lock(&self.registry_lock, operation).await?;
        let out = f().await;
        let released = guard.release().await;
        let out = out?;
        released?;
        Ok(out)
    }

    /// Adds the base path to `.git/info/exclude`, once, when it lies inside
    /// the working tree, so it never shows in `git status`.
    async fn exclude_base_path(&self) -> Result<()> {
        let Ok(rel) = self.base.strip_prefix(
            std::fs::canonicalize(&self.info.toplevel).unwrap_or(self.info.toplevel.clone()),
        ) else {
            return Ok(());
        };
        let line = format!("/{}/", rel.to_string_lossy());
        let file = self.info.common_dir.join("info").join("exclude");
        self.with_registry("exclude base path", async || {
            let current = std::fs::read_to_string(&file).unwrap_or_default();
            if current.lines().any(|l| l.trim() == line) {
                return Ok(());
            }
            let mut text = current;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&line);
            text.push('\n');
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io("worktree", "cannot create .git/info", &e))?;
            }
            std::fs::write(&file, text)
                .map_err(|e| Error::io("worktree", "cannot update .git/info/exclude", &e))
        })
        .await
    }

    async fn is_registered(&self, path: &Path) -> Result<bool> {
        Ok(self.git.worktrees().await?.iter().any(|w| w.path == path))
    }

    async fn branch_exists(&self, branch: &str) -> Result<bool> {
        Ok(self
            .git
            .resolve_commit(&format!("refs/heads/{branch}"))
            .await?
            .is_some())
    }

    /// Creates the worktree of `issue`, or returns the one it has.
    ///
    /// Idempotent and atomic: while the issue has a worktree, this returns
    /// it (`reused`); otherwise it makes one whole, or leaves no directory,
    /// registration, branch or record behind, so a retry works at once.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad issue id (before any side effect)
    /// or when the worktree limit is reached; [`Error::LockTimeout`];
    /// [`Error::InProgress`] for a create whose process died less than a
    /// lease ago; [`Error::Backend`] with git's message when git fails.
    pub async fn create_worktree(&self, issue: &str) -> Result<Created> {
        let issue = IssueId::parse(issue)?;
        let guard = self
            .lock(&self.issue_lock(&issue), "createWorktree")
            .await?;
        let out = self.create_locked(&issue).await;
        let released = guard.release().await;
        let out = out?;
        released?;
        Ok(out)
    }

    async fn create_locked(&self, issue: &IssueId) -> Result<Created> {
        let key = self.create_key(issue);
        for _ in 0..2 {
            let plan = Plan::new(issue, &self.base);
            let planned = serde_json::to_value(&plan)
                .map_err(|e| Error::invalid_input("worktree plan", e.to_string()))?;
            match self.records.start_operation(&key, Some(planned)).await? {
                Start::AlreadyCompleted(record) => {
                    let wt = worktree_of(record.result.as_ref())?;
                    if self.is_registered(&wt.path).await? {
                        return Ok(Created {
                            worktree: wt,
                            reused: true,
                        });
                    }
                    // Removed behind ForgeFlow's back: forget it, make anew.
                    tracing::warn!(id = %wt.id, "recorded worktree is gone; creating a new one");
                    match self
                        .records
                        .store()
                        .remove(&record.key, record.revision)
                        .await
                    {
                        Ok(()) | Err(Error::PreconditionFailed { .. } | Error::NotFound { .. }) => {
                        }
                        Err(e) => return Err(e),
                    }
                }
                Start::Claimed(claim) => {
                    for data in &claim.abandoned_rollbacks {
                        let abandoned: Plan =
                            serde_json::from_value(data.clone()).map_err(|e| {
                                Error::corrupt("rollback data", claim.key.short(), e.to_string())
                            })?;
                        self.undo(&abandoned).await?;
                    }
                    return match self.add(issue, &plan).await {
                        Ok(wt) => {
                            let value = serde_json::to_value(&wt)
                                .map_err(|e| Error::invalid_input("worktree", e.to_string()))?;
                            self.records.complete_operation(&claim, value).await?;
                            tracing::info!(issue = %issue, id = %wt.id, "worktree created");
                            Ok(Created {
                                worktree: wt,
                                reused: false,
                            })
                        }
                        Err(e) => {
                            // Leave nothing: undo what git may have made, then
                            // withdraw the claim so a retry starts fresh. If
                            // the undo fails, the pending record keeps the
                            // plan, and the attempt that takes it over once
                            // its lease lapses undoes it; the caller still
                            // learns why the create failed.
                            match self.undo(&plan).await {
                                Ok(()) => self.records.abandon_operation(&claim).await?,
                                Err(undo) => tracing::error!(
                                    id = %plan.id,
                                    error = %undo,
                                    "could not undo a failed create; the next attempt will"
                                ),
                            }
                            Err(e)
                        }
                    };
                }
            }
        }
        Err(Error::InProgress {
            operation: CREATE_OPERATION.into(),
            key: key.record_key()?.short().to_owned(),
            lease_remaining: None,
        })
    }

    /// `git worktree add` under the registry lock, after the limit check.
    async fn add(&self, issue: &IssueId, plan: &Plan) -> Result<Worktree> {
        let base = match &self.config.base_ref {
            Some(r) => r.clone(),
            None => self.info.head_branch.clone().ok_or_else(|| {
                Error::invalid_input(
                    "base ref",
                    "HEAD is detached and no base ref was configured; name one",
                )
            })?,
        };
        let base_commit = self.git.resolve_commit(&base).await?.ok_or_else(|| {
            Error::invalid_input("base ref", format!("{base:?} does not name a commit"))
        })?;
        self.with_registry("worktree add", async || {
            let ours = self
                .git
                .worktrees()
                .await?
                .iter()
                .filter(|w| w.path.starts_with(&self.base))
                .count();
            if ours >= self.config.max_worktrees {
                return Err(Error::invalid_input(
                    "worktree count",
                    format!(
                        "the limit of {} worktrees under {} is reached; clean one up or raise the limit",
                        self.config.max_worktrees,
                        self.base.display()
                    ),
                ));
            }
            if plan.path.exists() || self.branch_exists(&plan.branch).await? {
                return Err(Error::AlreadyExists {
                    what: format!("worktree path or branch of {}", plan.id),
                });
            }
            let path = plan.path.as_os_str();
            let args: [&std::ffi::OsStr; 9] = [
                "worktree".as_ref(),
                "add".as_ref(),
                "--quiet".as_ref(),
                "--no-track".as_ref(),
                "-b".as_ref(),
                plan.branch.as_ref(),
                "--".as_ref(),
                path,
                base_commit.as_ref(),
            ];
            self.git.run(args).await?;
            Ok(Worktree {
                id: plan.id.clone(),
                issue: issue.to_string(),
                path: plan.path.clone(),
                branch: plan.branch.clone(),
                base: base.clone(),
                base_commit: base_commit.clone(),
                created_at: Timestamp::now(),
            })
        })
        .await
    }

    /// Removes whatever one create attempt made, and only that (its names
    /// are unique to it). Idempotent.
    async fn undo(&self, plan: &Plan) -> Result<()> {
        self.with_registry("undo worktree add", async || {
            self.remove_registered(&plan.path, &plan.id).await?;
            self.delete_branch(&plan.branch).await
        })
        .await
    }

    /// Unregisters and deletes the worktree directory at `path`, which must
    /// be `<base>/<id>`. Call under the registry lock.
    async fn remove_registered(&self, path: &Path, id: &str) -> Result<()> {
        if path.parent() != Some(self.base.as_path())
            || path.file_name().and_then(|n| n.to_str()) != Some(id)
        {
            return Err(Error::invalid_input(
                "worktree path",
                format!(
                    "{} is not ForgeFlow's (not {}/{id})",
                    path.display(),
                    self.base.display()
                ),
            ));
        }
        if self.is_registered(path).await? {
            let args: [&std::ffi::OsStr; 5] = [
                "worktree".as_ref(),
                "remove".as_ref(),
                "--force".as_ref(),
                "--".as_ref(),
                path.as_os_str(),
            ];
            self.git.run(args).await?;
        }
        if path.exists() {
            std::fs::remove_dir_all(path).map_err(|e| {
                Error::io("worktree", &format!("cannot remove {}", path.display()), &e)
            })?;
        }
        Ok(())
    }

    /// The worktree of an issue, or with an id.
    ///
    /// # Errors
    /// [`Error::Backend`] when the store cannot be read.
    pub async fn get(&self, id_or_issue: &str) -> Result<Option<Worktree>> {
        if let Ok(issue) = IssueId::parse(id_or_issue) {
            let key = self.create_key(&issue).record_key()?;
            if let Some(r) = self.records.store().load(&key).await?
                && r.status == RecordStatus::Completed
            {
                return worktree_of(r.result.as_ref()).map(Some);
            }
        }
        Ok(self
            .list_worktrees()
            .await?
            .into_iter()
            .find(|w| w.id == id_or_issue))
    }

    /// Every worktree this manager's repository has, oldest first.
    ///
    /// # Errors
    /// [`Error::Backend`] when the store cannot be read.
    pub async fn list_worktrees(&self) -> Result<Vec<Worktree>> {
        let mut out: Vec<Worktree> = self
            .records
            .records(CREATE_OPERATION)
            .await?
            .into_iter()
            .filter(|r| {
                r.status == RecordStatus::Completed
                    && r.context.get("repo").and_then(Value::as_str) == Some(&self.repo_key)
            })
            .filter_map(|r| worktree_of(r.result.as_ref()).ok())
            .collect();
        out.sort_by_key(|w| w.created_at);
        Ok(out)
    }

    /// Removes a worktree and its branch.
    ///
    /// Refuses when that would destroy uncommitted changes or commits not
    /// merged into the base, unless `force`; forced, it first keeps the work
    /// under `refs/ff/archive/<id>` and says so. Cleaning what is already
    /// gone succeeds.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when work would be lost without `force`;
    /// [`Error::LockTimeout`]; [`Error::Backend`] with git's message.
    pub async fn cleanup_worktree(&self, id_or_issue: &str, force: bool) -> Result<Cleanup> {
        let Some(found) = self.get(id_or_issue).await? else {
            return Ok(Cleanup {
                removed: None,
                archived_at: None,
            });
        };
        let issue = IssueId::parse(&found.issue)?;
        let guard = self
            .lock(&self.issue_lock(&issue), "cleanupWorktree")
            .await?;
        let out = self.cleanup_locked(&issue, &found.id, force).await;
        let released = guard.release().await;
        let out = out?;
        released?;
        Ok(out)
    }

    async fn cleanup_locked(&self, issue: &IssueId, id: &str, force: bool) -> Result<Cleanup> {
        let key = self.create_key(issue).record_key()?;
        let nothing = Cleanup {
            removed: None,
            archived_at: None,
        };
        let Some(record) = self.records.store().load(&key).await? else {
            return Ok(nothing);
        };
        let wt = worktree_of(record.result.as_ref())?;
        if record.status != RecordStatus::Completed || wt.id != id {
            return Ok(nothing);
        }
        // Every ForgeFlow change to this worktree holds the issue lock, so
        // what is read here stays true until the removal below. The git
        // calls are kept few: removal costs about what bare git's does.
        let mut archived_at = None;
        let present = wt.path.join(".git").exists();
        if present {
            let unmerged = self.unmerged_commits(&wt).await?;
            if force {
                let dirty = self.dirty_files(&wt).await?;
                if !dirty.is_empty() || unmerged.1 > 0 {
                    archived_at = Some(self.archive(&wt, !dirty.is_empty()).await?);
                }
            } else if unmerged.1 > 0 {
                let dirty = self.dirty_files(&wt).await?;
                return Err(would_lose_work(&wt, &dirty, unmerged));
            }
        }
        self.with_registry("worktree remove", async || {
            if present {
                let mut args: Vec<&std::ffi::OsStr> = vec!["worktree".as_ref(), "remove".as_ref()];
                if force {
                    args.push("--force".as_ref());
                }
                args.extend(["--".as_ref(), wt.path.as_os_str()]);
                // Without force, git itself refuses a worktree with modified
                // or untracked files; then say which.
                if let Err(e) = self.git.run(&args).await {
                    let dirty = if force {
                        Vec::new()
                    } else {
                        self.dirty_files(&wt).await?
                    };
                    if !dirty.is_empty() {
                        return Err(would_lose_work(&wt, &dirty, (wt.base.clone(), 0)));
                    }
                    return Err(e.into());
                }
            } else {
                // The directory went away behind git's back: drop git's
                // registration of it, and nothing else.
                self.remove_registered(&wt.path, &wt.id).await?;
            }
            self.delete_branch(&wt.branch).await
        })
        .await?;
        match self.records.store().remove(&key, record.revision).await {
            Ok(()) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(issue = %issue, id = %wt.id, archived = ?archived_at, "worktree removed");
        Ok(Cleanup {
            removed: Some(wt),
            archived_at,
        })
    }

    /// Commits on the worktree's branch that its base does not contain, and
    /// the base they were counted against (the base ref, or the recorded
    /// base commit when the ref is gone).
    async fn unmerged_commits(&self, wt: &Worktree) -> Result<(String, u64)> {
        for base in [&wt.base, &wt.base_commit] {
            let range = format!("{base}..refs/heads/{}", wt.branch);
            let out = self
                .git
                .output(
                    ["rev-list", "--count", "--end-of-options", range.as_str()],
                    true,
                )
                .await?;
            if out.success() {
                return Ok((base.clone(), out.text().parse().unwrap_or(0)));
            }
        }
        Ok((wt.base.clone(), 0))
    }

    /// Paths with uncommitted changes (untracked files included).
    async fn dirty_files(&self, wt: &Worktree) -> Result<Vec<String>> {
        let status = self
            .git
            .in_dir(&wt.path)
            .read(["status", "--porcelain=v1", "-z", "--untracked-files=all"])
            .await?;
        Ok(status
            .stdout
            .split(|b| *b == 0)
            .filter(|e| e.len() > 3)
            .map(|e| String::from_utf8_lossy(&e[3..]).into_owned())
            .collect())
    }

    /// `git branch -D`, succeeding when the branch is already gone.
    async fn delete_branch(&self, branch: &str) -> Result<()> {
        let out = self
            .git
            .output(["branch", "-D", "--", branch], false)
            .await?;
        if out.success() || out.stderr.contains("not found") {
            Ok(())
        } else {
            Err(crate::git::GitError::Failed {
                args: format!("branch -D -- {branch}"),
                code: out.code,
                stderr: out.stderr,
            }
            .into())
        }
    }

    /// Keeps the worktree's work under `refs/ff/archive/<id>`: its branch
    /// head, or, with uncommitted changes, a commit of the whole working
    /// tree (untracked files included) on top of HEAD, made through a
    /// private index so nothing else is touched.
    async fn archive(&self, wt: &Worktree, dirty: bool) -> Result<String> {
        let name = format!("refs/ff/archive/{}", wt.id);
        let commit = if dirty {
            let index = std::env::temp_dir().join(format!("ff-index-{}", ff_traits::unique_id()));
            let private = self.git.in_dir(&wt.path).with_env("GIT_INDEX_FILE", &index);
            let made = async {
                private.run(["read-tree", "HEAD"]).await?;
                private.run(["add", "--all"]).await?;
                let tree = private.run(["write-tree"]).await?.text();
                let message = format!(
                    "ForgeFlow archive of {}: uncommitted work at cleanup",
                    wt.id
                );
                Ok::<_, Error>(
                    private
                        .run([
                            "-c",
                            "user.name=ForgeFlow",
                            "-c",
                            "user.email=forgeflow@localhost",
                            "commit-tree",
                            tree.as_str(),
                            "-p",
                            "HEAD",
                            "-m",
                            message.as_str(),
                        ])
                        .await?
                        .text(),
                )
            }
            .await;
            let _ = std::fs::remove_file(&index);
            made?
        } else {
            self.git
                .resolve_commit(&format!("refs/heads/{}", wt.branch))
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: format!("branch {}", wt.branch),
                })?
        };
        self.git
            .run(["update-ref", name.as_str(), commit.as_str()])
            .await?;
        tracing::warn!(id = %wt.id, archive = %name, "work kept before a forced cleanup");
        Ok(name)
    }
}

/// The refusal of a cleanup that would destroy work.
fn would_lose_work(wt: &Worktree, dirty: &[String], unmerged: (String, u64)) -> Error {
    let mut what = Vec::new();
    if !dirty.is_empty() {
        let shown: Vec<&str> = dirty.iter().take(5).map(String::as_str).collect();
        what.push(format!(
            "{} uncommitted file(s) ({}{})",
            dirty.len(),
            shown.join(", "),
            if dirty.len() > 5 { ", …" } else { "" }
        ));
    }
    if unmerged.1 > 0 {
        what.push(format!(
            "{} commit(s) not merged into {}",
            unmerged.1, unmerged.0
        ));
    }
    Error::invalid_input(
        "cleanup",
        format!(
            "worktree {} has {}; commit and merge the work, or force the cleanup (the work is \
             then kept under refs/ff/archive/{})",
            wt.id,
            what.join(" and "),
            wt.id
        ),
    )
}

fn worktree_of(result: Option<&Value>) -> Result<Worktree> {
    serde_json::from_value(result.cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::corrupt("worktree record", "createWorktree result", e.to_string()))
}

async fn root_commit(git: &Git) -> Result<String> {
    let out = git.read(["rev-list", "--max-parents=0", "HEAD"]).await?;
    let mut roots: Vec<String> = out.text().lines().map(str::to_owned).collect();
    roots.sort();
    roots
        .first()
        .map(|r| r[..16.min(r.len())].to_owned())
        .ok_or_else(|| Error::invalid_input("repository", "it has no root commit"))
}
