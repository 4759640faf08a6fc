//! [`WorktreeManager`]: create, sync, find, list, clean up and recover
//! per-issue worktrees. `DESIGN.md` beside this crate has the reasoning.

mod admin;
mod agent;
mod aside;
mod cleanup;
mod create;
mod deletion;
pub use deletion::{awaiting_deletion, delete_removed_directory};
mod hooks;
mod local;
mod pool;
pub use pool::{POOL_PREFIX, PoolDrain, PoolEntry, PoolFill};
mod prune;
mod recover;
mod slots;
mod sync;
mod types;
mod undo;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ff_idempotency::{IdempotencyManager, ManagerConfig};
use ff_traits::{
    IdempotencyKey, IdempotencyStorage, LockGuard, LockName, LockOptions, LockProvider,
    RecordStatus,
};

use crate::lock_names::{HolderMetadata, RepositoryLocks};
use crate::{Error, Result};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::git::{Git, GitError, RepoInfo, repair};
use crate::issue::IssueId;

pub use admin::cleanup_records_without_repository;
pub use prune::{PruneAction, PruneOptions, Pruned};
pub use recover::{Recovery, Repair, RepairKind};
pub use types::{
    AgentState, AgentStatus, Cleaned, Cleanup, Created, LimitPolicy, MAX_AGENT_NOTE_LEN, Recover,
    SyncOptions, SyncStrategy, Synced, WaitReport, Waiting, WorkingState, Worktree, WorktreeConfig,
    WorktreeStatus,
};

/// Operation names in idempotency records.
const CREATE_OPERATION: &str = "createWorktree";
const SYNC_OPERATION: &str = "syncWorktree";

/// Per-issue git worktrees over any lock provider and idempotency store.
///
/// Every create, sync and cleanup of an issue runs under that issue's lock
/// and re-reads its record inside it; git registry changes (`worktree add`,
/// `worktree remove`, `branch -D`) run under one lock per repository, held
/// only around them.
///
/// Issue locks form a lock hierarchy ([`ff_hierarchy`]) beneath
/// the repository's node: `ff-<repo key>/issue-<id>`. Issues never wait
/// for each other (their intention locks on the repository node are
/// compatible), and [`lock_repository`](Self::lock_repository) takes the
/// node itself: exclusively, it waits for every issue operation of the
/// repository in flight and keeps new ones out (say, for maintenance).
#[derive(Debug)]
pub struct WorktreeManager<L, S> {
    git: Git,
    info: RepoInfo,
    base: PathBuf,
    config: WorktreeConfig,
    locks: L,
    /// Kernel file locks in this clone's `<common dir>/ff/locks`, for what
    /// guards this clone's git state (see `local.rs`).
    local: ff_lock_file::FileLockProvider,
    records: IdempotencyManager<S>,
    repo_key: String,
    /// The names of the repository's locks.
    lock_names: RepositoryLocks,
    /// How worktrees and their branches are named.
    names: crate::names::Names,
    location: String,
}

/// The repository, and the base path, that `config` names; checked.
/// `discovered` is the repository found from `config.repo` already, if
/// the caller looked (it is not looked for again).
pub(crate) async fn resolve(
    config: &WorktreeConfig,
    discovered: Option<RepoInfo>,
) -> Result<(Git, RepoInfo, PathBuf)> {
    crate::runtime::check()?;
    crate::paths::refuse_nul("repository path", &config.repo)?;
    // Checked here: git started in a missing directory fails to spawn,
    // which would read as "git was not found".
    if !config.repo.is_dir() {
        return Err(Error::invalid_input(
            "repository path",
            format!(
                "{} is not a directory; name a directory inside a git repository",
                config.repo.display()
            ),
        ));
    }
    if let Some(base) = &config.base_path {
        crate::paths::refuse_nul("base path", base)?;
    }
    let git = Git::new(&config.repo).with_timeout(config.git_timeout);
    // The version is checked when a git call fails (see `Git`), not here:
    // every `ff` run would pay a process for it.
    let info = match discovered {
        Some(info) => info,
        None => git.repository().await?,
    };
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
    // A configured base that names nothing is bad input: say so before
    // anything is made (a lock file, the base path).
    if let Some(base_ref) = &config.base_ref
        && git.resolve_commit(base_ref).await?.is_none()
    {
        return Err(Error::invalid_input(
            "base ref",
            format!("{base_ref:?} does not name a commit"),
        ));
    }
    let base = config
        .base_path
        .clone()
        .unwrap_or_else(|| info.toplevel.join(".ff-worktrees"));
    if let Ok(m) = std::fs::symlink_metadata(&base)
        && (m.file_type().is_symlink() || !m.is_dir())
    {
        return Err(Error::invalid_input(
            "base path",
            format!(
                "{} exists and is not a plain directory; name a directory",
                base.display()
            ),
        ));
    }
    std::fs::create_dir_all(&base)
        .map_err(|e| Error::io("worktree", &format!("cannot create {}", base.display()), &e))?;
    let base = crate::paths::canonical(&base).map_err(|e| {
        Error::io(
            "worktree",
            &format!("cannot resolve {}", base.display()),
            &e,
        )
    })?;
    // Whatever is left under the base path that is not a worktree (a
    // directory an agent wrote into while it was removed) must not let
    // git find the main checkout above it.
    aside::guard_base(&base)?;
    Ok((git, info, base))
}

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// Opens the manager for the repository in `config.repo`.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) when the directory is not in a git
    /// repository, the repository is bare or has no commits, or the base
    /// path is a file or a symbolic link; [`Backend`](ff_traits::Error::Backend) when git is
    /// missing or too old, or the base path cannot be created.
    pub async fn open(config: WorktreeConfig, locks: L, store: S) -> Result<Self> {
        let at = crate::locate(&config).await?;
        Self::open_at(config, at, locks, store).await
    }

    /// Opens the manager for the repository `at` names, as
    /// [`locate`](crate::locate) (or
    /// [`locate_discovered`](crate::locate_discovered)) resolved it from
    /// `config`: nothing is discovered or checked again.
    ///
    /// # Errors
    /// As [`open`](Self::open), for what `locate` leaves: the
    /// repository's key, the namespace, the slot settings.
    pub async fn open_at(
        config: WorktreeConfig,
        at: crate::Location,
        locks: L,
        store: S,
    ) -> Result<Self> {
        slots::check_settings(&config)?;
        let (git, info, base) = at.into_parts();
        let repo_key = match &config.namespace {
            Some(ns) => ns.clone(),
            None => repository_key(&git, &info.common_dir).await?,
        };
        let common = Sha256::digest(info.common_dir.to_string_lossy().as_bytes());
        let common = ff_traits::hex_lower(&common[..8]);
        // Worktree records describe worktrees that exist: they must not
        // expire while the worktree does.
        let records = IdempotencyManager::new(
            store,
            ManagerConfig::default().with_max_age(Duration::from_secs(100 * 365 * 86_400)),
        );
        let location = format!(
            "{}:{}",
            ff_traits::identity::hostname(),
            info.common_dir.display()
        );
        let lock_names = RepositoryLocks::new(&repo_key, &common)?;
        let local = ff_lock_file::FileLockProvider::new(
            crate::StateDir::of_repository(&info.common_dir).locks(),
        );
        let names = crate::names::Names::new(base.clone(), config.branch_template.clone());
        let manager = Self {
            location,
            names,
            git,
            info,
            base,
            config,
            locks,
            local,
            records,
            repo_key,
            lock_names,
        };
        manager.exclude_base_path().await?;
        Ok(manager)
    }

    /// The record of the process groups ff started in this clone's
    /// worktrees.
    pub(crate) fn groups(&self) -> crate::processes::Groups {
        crate::processes::Groups::of(&self.info.common_dir)
    }

    /// Writes down that process group `group` was started in `wt` (as
    /// `ff exec` does), so a cleanup of `wt` stops whatever of it still
    /// runs. Best effort: a failure is logged.
    pub fn record_process_group(&self, wt: &Worktree, group: u32) {
        if self.is_local(wt) {
            self.groups().record(&wt.id, group);
        }
    }

    /// How this manager names worktree branches.
    pub fn branch_template(&self) -> &crate::BranchTemplate {
        self.names.template()
    }

    /// The top of the repository's main working tree (where `ff switch -`
    /// goes back to), whichever worktree this manager was opened from.
    pub fn main_tree(&self) -> &Path {
        &self.info.toplevel
    }

    /// The base path (canonical).
    pub fn base_path(&self) -> &Path {
        &self.base
    }

    /// The configuration.
    pub fn config(&self) -> &WorktreeConfig {
        &self.config
    }

    /// The lock provider.
    pub fn lock_provider(&self) -> &L {
        &self.locks
    }

    /// The idempotency manager over the store.
    pub fn idempotency(&self) -> &IdempotencyManager<S> {
        &self.records
    }

    /// The key naming this repository in locks and records.
    pub fn repo_key(&self) -> &str {
        &self.repo_key
    }

    /// The issue's lock: a leaf beneath the repository's node.
    fn issue_lock(&self, issue: &IssueId) -> Result<LockName> {
        self.lock_names.issue(issue)
    }

    /// The repository's node of the lock hierarchy (`ff-<repo key>`),
    /// beneath which every issue lock lies.
    pub fn repository_lock_name(&self) -> &LockName {
        self.lock_names.node()
    }

    /// The names of every lock this manager takes.
    pub fn lock_names(&self) -> &RepositoryLocks {
        &self.lock_names
    }

    fn create_key(&self, issue: &IssueId) -> IdempotencyKey {
        IdempotencyKey::new(
            CREATE_OPERATION,
            json!({"issue": issue.as_str()}),
            json!({"repo": self.repo_key}),
        )
    }

    /// Whether a record belongs to this repository.
    fn ours(&self, context: &Value) -> bool {
        context.get("repo").and_then(Value::as_str) == Some(&self.repo_key)
    }

    /// Options of every lock this manager takes. The holder metadata says
    /// which repository (and issue) the lock is for, so `ff locks` can show
    /// it beside a name made of hashes.
    fn lock_options(&self, operation: &str, issue: Option<&IssueId>) -> LockOptions {
        let options = LockOptions::default()
            .with_timeout(self.config.lock_timeout)
            .with_operation(operation)
            .with_metadata(
                HolderMetadata::new(self.info.toplevel.to_string_lossy(), issue).to_value(),
            );
        let Some(report) = self.config.wait_report.clone() else {
            return options;
        };
        let lock = match issue {
            Some(i) => self.lock_names.issue(i).ok(),
            None => Some(self.lock_names.registry().clone()),
        };
        let Some(lock) = lock else {
            return options;
        };
        let waiting = Waiting {
            operation: operation.to_owned(),
            issue: issue.map(ToString::to_string),
            lock,
        };
        // Told once per call, however many locks of a path it waits on.
        let told = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        options.with_wait_notice(ff_traits::WaitNotice::new(move || {
            if !told.swap(true, std::sync::atomic::Ordering::Relaxed) {
                report.tell(&waiting);
            }
        }))
    }

    /// Takes an issue's lock if its whole path, and its local lock, are
    /// free now.
    async fn try_lock_issue(&self, issue: &IssueId, operation: &str) -> Result<Option<LockGuard>> {
        let options = self.lock_options(operation, Some(issue));
        match ff_hierarchy::try_acquire(&self.locks, &self.issue_lock(issue)?, &options).await? {
            Some(outer) => self.try_with_local_issue(outer, issue, &options).await,
            None => Ok(None),
        }
    }

    /// Takes an issue's lock, then its local lock (see `local.rs`).
    async fn lock_issue_path(&self, issue: &IssueId, options: &LockOptions) -> Result<LockGuard> {
        let outer = ff_hierarchy::acquire(&self.locks, &self.issue_lock(issue)?, options).await?;
        self.with_local_issue(outer, issue, options).await
    }

    /// Takes the repository's node of the lock hierarchy in `mode`
    /// ([`LockMode::Exclusive`](ff_traits::LockMode::Exclusive): no issue
    /// of this repository is created, synced or cleaned up while it is
    /// held, and it waits for those in flight;
    /// [`LockMode::Shared`](ff_traits::LockMode::Shared): issue work goes
    /// on, other holders of the node in shared mode too), waiting up to
    /// the configured lock timeout.
    ///
    /// # Errors
    /// [`LockTimeout`](ff_traits::Error::LockTimeout) naming the holder in
    /// the way; whatever the lock provider reports.
    pub async fn lock_repository(&self, mode: ff_traits::LockMode) -> Result<LockGuard> {
        let options = self.lock_options("repository", None).with_mode(mode);
        Ok(ff_hierarchy::acquire(&self.locks, self.lock_names.node(), &options).await?)
    }

    /// Takes the issue's lock, the one every create, sync and cleanup of
    /// the issue holds: work done in the worktree while holding it (say,
    /// an agent's commit) cannot interleave with a forced cleanup.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) for a bad issue id; [`LockTimeout`](ff_traits::Error::LockTimeout)
    /// after the configured lock timeout.
    pub async fn lock_issue(&self, issue: &str) -> Result<LockGuard> {
        let issue = IssueId::parse(issue)?;
        let options = self.lock_options("work", Some(&issue));
        self.lock_issue_path(&issue, &options).await
    }

    /// Takes the issue's lock in shared mode, for work inside its worktree
    /// that may run beside other such work (a command `ff exec` runs):
    /// create, sync and cleanup take the lock exclusively, so a cleanup
    /// waits for the work instead of removing the directory under it. On a
    /// backend without shared locks it is taken exclusively. The work's
    /// process group, when given, is recorded with the holder, so waiters
    /// on this host judge the holder alive while the group runs.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) for a bad issue id;
    /// [`LockTimeout`](ff_traits::Error::LockTimeout) naming the holder in
    /// the way after the configured lock timeout; whatever the lock
    /// provider reports.
    pub async fn lock_issue_shared(
        &self,
        issue: &str,
        operation: &str,
        process_group: Option<u32>,
    ) -> Result<LockGuard> {
        let issue = IssueId::parse(issue)?;
        let name = self.issue_lock(&issue)?;
        let mut options = self.lock_options(operation, Some(&issue));
        if let Some(group) = process_group {
            options = options.with_process_group(group);
        }
        let shared = options.clone().with_mode(ff_traits::LockMode::Shared);
        let outer = match ff_hierarchy::acquire(&self.locks, &name, &shared).await {
            Err(ff_traits::Error::Unsupported { .. }) => {
                tracing::debug!(
                    issue = issue.as_str(),
                    "no shared locks on this backend; taking the issue's lock exclusively"
                );
                ff_hierarchy::acquire(&self.locks, &name, &options).await?
            }
            taken => taken?,
        };
        // Kernel locks are shared alike: work beside work, never beside a
        // create, sync or cleanup of the issue.
        self.with_local_issue(outer, &issue, &shared).await
    }

    /// Runs `f` holding the lock `name`, and releases it whatever happens.
    async fn holding<T>(&self, guard: LockGuard, f: impl AsyncFnOnce() -> Result<T>) -> Result<T> {
        let out = f().await;
        let released = guard.release().await;
        let out = out?;
        released?;
        Ok(out)
    }

    /// Runs `f` under the issue's lock.
    async fn with_issue<T>(
        &self,
        issue: &IssueId,
        operation: &str,
        f: impl AsyncFnOnce() -> Result<T>,
    ) -> Result<T> {
        let options = self.lock_options(operation, Some(issue));
        let guard = self.lock_issue_path(issue, &options).await?;
        self.holding(guard, f).await
    }

    /// Runs `f` under the repository's registry lock.
    async fn with_registry<T>(
        &self,
        operation: &str,
        f: impl AsyncFnOnce() -> Result<T>,
    ) -> Result<T> {
        let guard = self
            .lock_local(self.lock_names.registry(), operation)
            .await?;
        // A `worktree add` killed mid-write would fail every registry
        // change that follows; mending it first costs a directory read and
        // a `stat` per worktree.
        self.torn_commondirs(true).await;
        self.holding(guard, f).await
    }

    /// Adds the base path to `.git/info/exclude`, once, when it lies inside
    /// the working tree, so it never shows in `git status`.
    async fn exclude_base_path(&self) -> Result<()> {
        let Ok(rel) = self.base.strip_prefix(
            crate::paths::canonical(&self.info.toplevel).unwrap_or(self.info.toplevel.clone()),
        ) else {
            return Ok(());
        };
        let line = format!("/{}/", rel.to_string_lossy());
        self.exclude(vec![line]).await
    }

    /// Makes `.git/info/exclude` list `lines` (one read when it does
    /// already; else under the registry lock).
    pub(crate) async fn exclude(&self, lines: Vec<String>) -> Result<()> {
        if repair::not_excluded(&self.info.common_dir, &lines).is_empty() {
            return Ok(());
        }
        self.with_registry("exclude", async || {
            repair::exclude(&self.info.common_dir, &lines)
        })
        .await
    }

    /// `git worktree list`, after mending what a killed `worktree add` of
    /// ours may have left (see [`Self::torn_commondirs`]).
    ///
    /// A `commondir` git could not read may also be one a live `worktree
    /// add` (another process's, under the registry lock this reader does
    /// not take) is writing right now: git writes it in place, so for an
    /// instant it is empty. Nothing is torn then, and the list is asked
    /// again after a moment (seen in CI: "failed to read
    /// .git/worktrees/104/commondir: Success" while agents created
    /// worktrees at once).
    pub(crate) async fn worktrees(&self) -> Result<Vec<crate::git::WorktreeEntry>> {
        let mut attempt = 0u64;
        loop {
            match self.git.worktrees().await {
                Err(GitError::Failed { stderr, .. })
                    if stderr.contains("commondir") && attempt < 8 =>
                {
                    attempt += 1;
                    if self.torn_commondirs(true).await.is_empty() {
                        tokio::time::sleep(std::time::Duration::from_millis(10 * attempt)).await;
                    }
                }
                other => return Ok(other?),
            }
        }
    }

    /// The admin directories of ForgeFlow's own worktrees whose `commondir`
    /// file a `git worktree add` killed mid-write left empty; with
    /// `repair`, rewritten first.
    ///
    /// Git writes that file (always `../..`) without a rename, and one left
    /// empty makes every `git worktree` and `git branch -D` in the whole
    /// repository die ("failed to read .../commondir"). Writing the same
    /// `../..` git writes is safe without any lock: a live `worktree add`
    /// racing with this writes the same bytes. Only admin directories whose
    /// `gitdir` (written before `commondir`) points into the base path are
    /// touched; anyone else's is left for its owner.
    pub(crate) async fn torn_commondirs(&self, mend: bool) -> Vec<PathBuf> {
        repair::torn_commondirs(&self.info.common_dir, &self.base, mend).await
    }

    async fn is_registered(&self, path: &Path) -> Result<bool> {
        Ok(self
            .worktrees()
            .await?
            .iter()
            .any(|w| crate::paths::same_path(&w.path, path)))
    }

    async fn branch_exists(&self, branch: &str) -> Result<bool> {
        Ok(self
            .resolve_branch(&format!("refs/heads/{branch}"))
            .await?
            .is_some())
    }

    /// The commit a branch (`refs/heads/…`) points at: read in-process
    /// where the ref files read plainly, else asked of git.
    pub(crate) async fn resolve_branch(&self, reference: &str) -> Result<Option<String>> {
        if let Some(id) = crate::git::discover::read_branch(&self.info.common_dir, reference) {
            return Ok(id);
        }
        Ok(self.git.resolve_commit(reference).await?)
    }

    /// Removes `<ref>.lock` left by a killed git on one of ForgeFlow's
    /// own refs (see [`repair::clear_stale_ref_lock`]). Call under the
    /// registry or issue lock.
    pub(crate) async fn clear_stale_ref_lock(&self, refname: &str) {
        repair::clear_stale_ref_lock(&self.info.common_dir, refname).await;
    }

    /// Unregisters and deletes the worktree directory at `path`, which must
    /// be `<base>/<id>`, even when git marks it locked (a `worktree add`
    /// killed midway leaves it so); the deletion may be deferred (see
    /// `deletion`). Call under the registry lock, only for ForgeFlow's own
    /// worktrees.
    async fn remove_registered(&self, path: &Path, id: &str) -> Result<()> {
        let named = path.file_name().and_then(|n| n.to_str()) == Some(id);
        let parent = path.parent().filter(|_| named);
        // Under the base path, or under an earlier one (the base path was
        // changed since), where git still lists it.
        let Some(parent) = parent.filter(|p| *p == self.base || self.registered_in_git(path))
        else {
            return Err(Error::invalid_input(
                "worktree path",
                format!(
                    "{} is not ForgeFlow's (not {}/{id})",
                    path.display(),
                    self.base.display()
                ),
            ));
        };
        // Moved out of the way first, by one rename within its parent: a
        // process still writing there (a git that outlived the ff that
        // started it, an agent) cannot make the removal fail, and the path
        // is free at once. Git then drops only the registration (its
        // directory is missing), and the moved directory is deleted (see
        // `deletion`).
        let moved = deletion::move_to_deletion(parent, path, id)?;
        crate::crash::point("cleanup.moved");
        // Git's registry read in-process (a `git worktree list` here was
        // one more process on every cleanup).
        if self.registered_in_git(path) {
            repair::remove_worktree(&self.git, path).await?;
        }
        match moved {
            Some(moved) if parent == self.base => self.delete_moved(&moved),
            // Under an earlier base path nothing looks for it later:
            // deleted now.
            Some(moved) => {
                if let Err(e) = deletion::delete_removed_directory(parent, &moved) {
                    tracing::warn!(dir = %moved.display(), error = %e, "a removed worktree's directory under an earlier base path could not be deleted");
                }
            }
            None => {}
        }
        Ok(())
    }

    /// The worktree of an issue, or with an id.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) when `id_or_issue` is neither a valid issue
    /// id nor of a worktree id's shape; [`Backend`](ff_traits::Error::Backend) when the store
    /// cannot be read.
    pub async fn get(&self, id_or_issue: &str) -> Result<Option<Worktree>> {
        let issue = match IssueId::parse(id_or_issue) {
            Ok(issue) => Some(issue),
            // A worktree id that is not an issue id: a taken name's
            // successor (`PROJ-1@2`), an issue with a `/` (`a+b`), an
            // earlier release's (`wt-…`).
            Err(_) if self.names.recognise_id(id_or_issue).is_some() => None,
            // Neither an issue id nor a worktree id: say so, rather than
            // "not found" for something that could never be found.
            Err(refused) => return Err(refused.into()),
        };
        if let Some(issue) = issue {
            let key = self.create_key(&issue).record_key()?;
            if let Some(r) = self.records.store().load(&key).await?
                && r.status == RecordStatus::Completed
            {
                return self
                    .worktree_of(r.result.as_ref())
                    .map(|w| Some(self.with_status(w)));
            }
        }
        Ok(self
            .list_worktrees()
            .await?
            .into_iter()
            .find(|w| w.id == id_or_issue))
    }

    /// The worktree a create record holds, checked: a local one must bear
    /// exactly the names ForgeFlow gives ([`check_ours`](Self::check_ours)),
    /// else the record is corrupt and nothing acts on it.
    fn worktree_of(&self, result: Option<&Value>) -> Result<Worktree> {
        let wt = parse_worktree(result)?;
        self.check_ours(&wt)
            .map_err(|why| Error::corrupt("worktree record", wt.id.clone(), why))?;
        Ok(wt)
    }

    /// Whether a local record's worktree has the names ForgeFlow gives:
    /// its path is its id's directory directly under the base path, its
    /// branch the one named for the same issue and attempt, its issue the
    /// one in its id. A store may hold records nobody here wrote (a state
    /// directory a repository ships, a shared server): no git command may
    /// run on a path or branch a record names unless this holds. Another
    /// clone's worktree is that clone's to judge and is never changed here.
    pub(crate) fn check_ours(&self, wt: &Worktree) -> std::result::Result<(), String> {
        if !self.is_local(wt) {
            return Ok(());
        }
        check_names(
            &self.names,
            &wt.id,
            &wt.path,
            &wt.branch,
            Some(&wt.issue),
            &|p| self.registered_in_git(p),
            &|p| repair::checked_out_branch(&self.info.common_dir, p),
        )
    }

    /// Whether git's own registry of this repository lists a worktree at
    /// `path` (read in-process). A repository cannot ship entries there:
    /// a clone copies none.
    pub(crate) fn registered_in_git(&self, path: &std::path::Path) -> bool {
        crate::git::repair::is_registered(&self.info.common_dir, path)
    }

    /// Whether `w` lives in this manager's clone (records written before
    /// locations were recorded count as local).
    fn is_local(&self, w: &Worktree) -> bool {
        w.location.is_empty() || w.location == self.location
    }

    /// Refuses to change a worktree that lives elsewhere.
    fn ensure_local(&self, w: &Worktree, doing: &str) -> Result<()> {
        if self.is_local(w) {
            return Ok(());
        }
        Err(Error::refused(
            format!("{doing} of {}", w.id),
            format!(
                "it lives in {}, not in this clone ({}); {doing} it there",
                w.location, self.location
            ),
        ))
    }

    fn with_status(&self, w: Worktree) -> Worktree {
        self.with_status_using(w, &crate::sparse::SharedConfig::read(&self.info.common_dir))
    }

    /// As [`with_status`](Self::with_status), with the repository's shared
    /// configuration read once for a whole listing.
    fn with_status_using(&self, mut w: Worktree, shared: &crate::sparse::SharedConfig) -> Worktree {
        w.status = if !self.is_local(&w) {
            WorktreeStatus::Elsewhere
        } else if w.path.join(".git").exists() {
            WorktreeStatus::Active
        } else {
            WorktreeStatus::Missing
        };
        w.port = self.port_of(w.slot);
        w.sparse = match w.status {
            WorktreeStatus::Active => crate::sparse::read_with(&w.path, shared),
            _ => None,
        };
        w
    }

    /// The worktree of an issue or with an id, or a clear error.
    async fn find(&self, id_or_issue: &str) -> Result<Worktree> {
        self.get(id_or_issue).await?.ok_or_else(|| {
            Error::not_found(format!(
                "worktree for {id_or_issue:?} (create it first; `list` shows what exists)"
            ))
        })
    }

    /// Every worktree this manager's repository has, oldest first.
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) when the store cannot be read.
    pub async fn list_worktrees(&self) -> Result<Vec<Worktree>> {
        let shared = crate::sparse::SharedConfig::read(&self.info.common_dir);
        let mut out: Vec<Worktree> = self
            .records
            .records(CREATE_OPERATION)
            .await?
            .into_iter()
            .filter(|r| r.status == RecordStatus::Completed && self.ours(&r.context))
            .filter_map(|r| self.worktree_of(r.result.as_ref()).ok())
            .map(|w| self.with_status_using(w, &shared))
            .collect();
        out.sort_by_key(|w| w.created_at);
        Ok(out)
    }
    /// Worktrees of ForgeFlow's shape that git lists under the base path
    /// but this manager's records do not name: made under another
    /// namespace, state directory or store, or left when the store lost
    /// its records. Read in-process from git's registry, without a git
    /// process. Each comes with the namespace (repository key) whose
    /// record names it in this store, if one does.
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) when the store cannot be read.
    pub async fn unknown_worktrees(&self) -> Result<Vec<UnknownWorktree>> {
        self.unknown_among(&[], None).await
    }

    /// [`unknown_worktrees`](Self::unknown_worktrees) beside `listed`, the
    /// worktrees [`list_worktrees`](Self::list_worktrees) just gave: the
    /// store is read again only when git lists others.
    ///
    /// # Errors
    /// As [`unknown_worktrees`](Self::unknown_worktrees).
    pub async fn unknown_besides(&self, listed: &[Worktree]) -> Result<Vec<UnknownWorktree>> {
        self.unknown_among(listed, None).await
    }

    /// [`unknown_worktrees`](Self::unknown_worktrees), knowing `known`
    /// (worktrees just listed: no record scan is needed when git lists no
    /// others) and, with `issue`, only that issue's (a create: no scan at
    /// all unless one is there).
    pub(crate) async fn unknown_among(
        &self,
        known: &[Worktree],
        issue: Option<&str>,
    ) -> Result<Vec<UnknownWorktree>> {
        self.unknown_in(
            &repair::registered_paths(&self.info.common_dir),
            known,
            issue,
        )
        .await
    }

    /// [`unknown_among`](Self::unknown_among) in `registered`, git's
    /// registry as read just before.
    pub(crate) async fn unknown_in(
        &self,
        registered: &[PathBuf],
        known: &[Worktree],
        issue: Option<&str>,
    ) -> Result<Vec<UnknownWorktree>> {
        let shaped: Vec<(String, PathBuf, create::Plan)> = registered
            .iter()
            .filter(|p| p.parent() == Some(self.base.as_path()))
            .filter_map(|p| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                let plan = self.names.recognise_id(&name)?;
                Some((name, p.clone(), plan))
            })
            .filter(|(name, _, plan)| {
                !known.iter().any(|w| w.id == *name)
                    && issue.is_none_or(|i| plan.issue().as_deref() == Some(i))
            })
            .collect();
        if shaped.is_empty() {
            return Ok(Vec::new());
        }
        let records = self.records.records(CREATE_OPERATION).await?;
        // The key a repository goes by with no namespace set, where cached.
        let default_key = std::fs::read_to_string(
            crate::StateDir::of_repository(&self.info.common_dir)
                .root()
                .join("repository-key"),
        )
        .map(|k| k.trim().to_owned())
        .ok();
        let recorded_by = |id: &str| {
            records.iter().find_map(|r| {
                let w = parse_worktree(r.result.as_ref()).ok()?;
                (w.id == id).then(|| {
                    r.context
                        .get("repo")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                })
            })
        };
        Ok(shaped
            .into_iter()
            .filter_map(|(id, path, plan)| {
                let namespace = recorded_by(&id);
                if namespace.as_deref() == Some(self.repo_key.as_str()) {
                    return None;
                }
                Some(UnknownWorktree {
                    issue: plan.issue(),
                    id,
                    path,
                    default_namespace: namespace.is_some() && namespace == default_key,
                    namespace,
                })
            })
            .collect())
    }
}

/// A worktree of ForgeFlow's shape this manager's records do not name:
/// see [`WorktreeManager::unknown_worktrees`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownWorktree {
    /// Its id (its directory's name).
    pub id: String,
    /// The issue its name carries, when it carries one.
    pub issue: Option<String>,
    /// Where it is.
    pub path: PathBuf,
    /// The namespace (repository key) whose record in this store names
    /// it; `None` when no record here does.
    pub namespace: Option<String>,
    /// Whether that namespace is the repository's own key, the one used
    /// when ff.toml sets no `namespace`.
    pub default_namespace: bool,
}

impl UnknownWorktree {
    /// Why this manager does not know it, and what to do, for people.
    #[must_use]
    pub fn why(&self) -> String {
        match &self.namespace {
            Some(_) if self.default_namespace => "it is recorded under the repository's default \
                 namespace (ff.toml without `namespace`): work on it without one, or clean it up \
                 there first"
                .to_owned(),
            Some(ns) => format!(
                "it is recorded under namespace '{}': work on it with `namespace = \"{}\"` in \
                 ff.toml, or clean it up there first",
                crate::display::escape(ns),
                crate::display::escape(ns)
            ),
            None => "no record in this store names it (the store lost its records, or it was \
                     made with another store or state directory); `ff recover` rebuilds its \
                     record from git, keeping it and its work"
                .to_owned(),
        }
    }
}

/// The worktree a create record's result holds, as stored: parsed, not
/// yet checked (see [`WorktreeManager::worktree_of`]).
fn parse_worktree(result: Option<&Value>) -> Result<Worktree> {
    serde_json::from_value(result.cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::corrupt("worktree record", "createWorktree result", e.to_string()))
}

/// Whether `id`, `path` and `branch` are the names ForgeFlow gives one
/// create attempt (and `issue` the issue in `id`); else why not, for
/// people. The path is the id's directory under the base path, or, for a
/// worktree made under an earlier base path, a directory named by the id
/// that git itself lists as a worktree of the repository (`registered`).
/// The branch is the one the branch template gives the id, or, for a
/// worktree made under an earlier template, the branch git's own registry
/// says is checked out at the path (`checked_out`): a repository cannot
/// ship entries there, a clone copies none.
pub(crate) fn check_names(
    names: &crate::names::Names,
    id: &str,
    path: &std::path::Path,
    branch: &str,
    issue: Option<&str>,
    registered: &dyn Fn(&std::path::Path) -> bool,
    checked_out: &dyn Fn(&std::path::Path) -> Option<String>,
) -> std::result::Result<(), String> {
    use crate::display::{escape, escape_path};
    let Some(expected) = names.recognise_id(id) else {
        return Err(format!(
            "its id {:?} is not of the shape ForgeFlow gives (the issue id, '/' written '+', \
             then @N when that name was taken; or wt-<issue>-<time>-<random>)",
            escape(id)
        ));
    };
    let under_an_earlier_base = || {
        path.is_absolute()
            && path.file_name().and_then(|n| n.to_str()) == Some(id)
            && registered(path)
    };
    if !crate::paths::same_path(path, &expected.path) && !under_an_earlier_base() {
        return Err(format!(
            "it names the path {}, not {} (its id's directory under the base path) nor a \
             worktree git lists under that name: a record ForgeFlow did not write here; nothing \
             acts on it",
            escape_path(path),
            escape_path(&expected.path)
        ));
    }
    let under_an_earlier_template = || {
        crate::names::templated_for(branch, &expected)
            && checked_out(path).as_deref() == Some(branch)
    };
    if branch != expected.branch && !under_an_earlier_template() {
        return Err(format!(
            "it names the branch {:?}, not {:?}: nothing acts on it",
            escape(branch),
            expected.branch
        ));
    }
    if let Some(issue) = issue
        && expected.issue().as_deref() != Some(issue)
    {
        return Err(format!(
            "it names the issue {:?}, but its id is of issue {:?}",
            escape(issue),
            expected.issue().unwrap_or_default()
        ));
    }
    Ok(())
}

/// The repository's key: its root commit's, read once from git and then
/// from `<common dir>/ff/repository-key` (a root commit never changes; a
/// moved repository keeps the file, a new clone has none). Writing the
/// cache is best effort.
async fn repository_key(git: &Git, common_dir: &std::path::Path) -> Result<String> {
    let cache = crate::StateDir::of_repository(common_dir)
        .root()
        .join("repository-key");
    if let Ok(text) = std::fs::read_to_string(&cache) {
        let key = text.trim();
        if key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(key.to_owned());
        }
    }
    let key = root_commit(git).await?;
    let written = cache
        .parent()
        .map_or(Ok(()), crate::private::ensure_private_dir)
        .and_then(|()| {
            crate::private::write_file_atomically(&cache, format!("{key}\n").as_bytes())
        });
    if let Err(e) = written {
        tracing::debug!(error = %e, "could not cache the repository key");
    }
    Ok(key)
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
