//! The manager's configuration and the values its operations return.

use std::path::PathBuf;
use std::time::Duration;

use ff_traits::Timestamp;
use serde::{Deserialize, Serialize};

/// What [`create_worktree`](super::WorktreeManager::create_worktree) does
/// when the base path already holds
/// [`max_worktrees`](WorktreeConfig::max_worktrees) worktrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LimitPolicy {
    /// Refuse the new worktree (the default).
    #[default]
    Refuse,
    /// Remove the oldest worktree that has no uncommitted changes and no
    /// commits missing from its base, then create; refuse when none
    /// qualifies. Work is never lost to make room.
    EvictOldest,
}

/// How [`sync_worktree`](super::WorktreeManager::sync_worktree) brings a
/// branch up to date with its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyncStrategy {
    /// `git rebase` onto the base (the default).
    #[default]
    Rebase,
    /// `git merge` of the base into the branch.
    Merge,
}

impl SyncStrategy {
    /// `rebase` or `merge`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rebase => "rebase",
            Self::Merge => "merge",
        }
    }
}

/// Options of a [`WorktreeManager`](super::WorktreeManager).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorktreeConfig {
    /// Any directory inside the repository.
    pub repo: PathBuf,
    /// Where worktrees go (default `<repository top>/.ff-worktrees`).
    pub base_path: Option<PathBuf>,
    /// How worktree branches are named (default
    /// [`DEFAULT_BRANCH_TEMPLATE`](crate::DEFAULT_BRANCH_TEMPLATE),
    /// `ff/{issue}`); see [`crate::names`].
    pub branch_template: crate::BranchTemplate,
    /// Where the local backends keep their state, for the constructors
    /// that open them ([`open_embedded`](crate::open_embedded), …): default
    /// [`StateDir::of_repository`](crate::StateDir::of_repository).
    pub state_dir: Option<PathBuf>,
    /// Most worktrees under the base path at once (default 10).
    pub max_worktrees: usize,
    /// What happens at the limit (default: refuse).
    pub limit_policy: LimitPolicy,
    /// Whether a failed create removes what it made (default `true`). When
    /// `false`, the half-made worktree stays for inspection (its record is
    /// withdrawn, so a retry makes a new one) until
    /// [`recover`](super::WorktreeManager::recover) removes it.
    pub cleanup_on_error: bool,
    /// What new branches start from and sync onto (default: the branch HEAD
    /// points at).
    pub base_ref: Option<String>,
    /// How sync updates a branch (default: rebase).
    pub sync_strategy: SyncStrategy,
    /// The remote sync fetches from (default: the base branch's upstream
    /// remote, if it has one; none otherwise).
    pub remote: Option<String>,
    /// Names this repository in locks and records; the same in every clone
    /// (default: its root commit).
    pub namespace: Option<String>,
    /// Longest wait for an issue or registry lock (default 30 s).
    pub lock_timeout: Duration,
    /// Longest a git call may run (default 120 s).
    pub git_timeout: Duration,
    /// How many slots worktrees number themselves from (`0..slots`,
    /// default [`max_worktrees`](Self::max_worktrees)): each worktree
    /// holds the smallest free one while it exists, unique across every
    /// process and server sharing the store. Servers sharing one store
    /// need room for all their worktrees together.
    pub slots: Option<usize>,
    /// The port of slot 0 ([`Worktree::port`] is `port_base + slot ×
    /// port_stride`); no ports without it.
    pub port_base: Option<u16>,
    /// Ports between consecutive slots (default 1).
    pub port_stride: u16,
    /// Lifecycle hooks (none by default; see [`crate::hooks`]).
    pub hooks: crate::hooks::Hooks,
    /// Paths (relative to the repository's root) each new worktree gets as
    /// a symlink to the main working tree's copy instead of a copy: large
    /// directories such as dependencies (see [`crate::include`]).
    pub symlinks: Vec<PathBuf>,
    /// Most bytes the files `.worktreeinclude` names may hold together
    /// (default [`MAX_INCLUDED_BYTES`](crate::include::MAX_INCLUDED_BYTES),
    /// 1 GiB): more is refused before anything is made.
    pub include_max_bytes: u64,
    /// Told when an operation starts waiting for a lock someone else holds
    /// (the CLI says on stderr what it waits for).
    pub wait_report: Option<WaitReport>,
    /// How long a cleanup waits, after SIGTERM, for the processes it stops
    /// before it sends SIGKILL (default 5 s): the process groups ff started
    /// in the worktree, and with [`OnRunning::Stop`](crate::OnRunning::Stop)
    /// any other process working in it.
    pub cleanup_grace: Duration,
    /// What a cleanup does about processes working in the worktree that ff
    /// did not start (default: refuse, naming them).
    pub on_running: crate::OnRunning,
    /// Whether a removal leaves the deletion of the worktree's files to
    /// [`WorktreeManager::finish_deletions`](super::WorktreeManager::finish_deletions)
    /// (default: no, they are deleted before the removal returns). Either
    /// way the directory is first moved out of the way by one rename
    /// (`<base>/.ff-deleting-…`) and git's registration dropped; a deletion
    /// cut short is finished by `recover`. The CLI defers, and deletes in
    /// a process of its own, so `ff cleanup` returns at once on a large
    /// tree.
    pub deferred_deletion: bool,
    /// What new worktrees check out (default: what git gives them, every
    /// file unless the main worktree is sparse). A sparse
    /// checkout writes only the top-level files and the directories named
    /// (see [`Checkout`](crate::Checkout)); a worktree that exists already
    /// keeps what it has.
    pub checkout: crate::Checkout,
    /// How many warm pool worktrees to keep ready (default 0: no pool).
    /// Counted apart from [`max_worktrees`](Self::max_worktrees); see
    /// [`fill_pool`](super::WorktreeManager::fill_pool). A create with
    /// the default checkout takes one when the pool has one for its base.
    pub pool_size: usize,
}

/// What an operation waits for, told to a [`WaitReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Waiting {
    /// The operation (`cleanupWorktree`, `createWorktree`, …).
    pub operation: String,
    /// The issue whose lock it waits for; `None` for the repository's own
    /// locks.
    pub issue: Option<String>,
    /// The lock it waits for (the issue's, or the repository's).
    pub lock: ff_traits::LockName,
}

/// A callback told when an operation starts waiting for a lock: see
/// [`WorktreeConfig::wait_report`].
#[derive(Clone)]
pub struct WaitReport(std::sync::Arc<dyn Fn(&Waiting) + Send + Sync>);

impl WaitReport {
    /// A report that calls `f` (from inside the lock backend's wait: it
    /// must not block).
    pub fn new(f: impl Fn(&Waiting) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    /// Tells `waiting`.
    pub fn tell(&self, waiting: &Waiting) {
        (self.0)(waiting);
    }
}

impl std::fmt::Debug for WaitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitReport")
    }
}

/// Two reports are equal when they are the same callback.
impl PartialEq for WaitReport {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for WaitReport {}

impl WorktreeConfig {
    /// Defaults for the repository containing `repo`.
    pub fn new(repo: impl Into<PathBuf>) -> Self {
        Self {
            repo: repo.into(),
            base_path: None,
            branch_template: crate::BranchTemplate::default(),
            state_dir: None,
            max_worktrees: 10,
            limit_policy: LimitPolicy::Refuse,
            cleanup_on_error: true,
            base_ref: None,
            sync_strategy: SyncStrategy::Rebase,
            remote: None,
            namespace: None,
            slots: None,
            port_base: None,
            port_stride: 1,
            symlinks: Vec::new(),
            include_max_bytes: crate::include::MAX_INCLUDED_BYTES,
            hooks: crate::hooks::Hooks::default(),
            lock_timeout: Duration::from_secs(30),
            git_timeout: Duration::from_secs(120),
            wait_report: None,
            cleanup_grace: Duration::from_secs(5),
            on_running: crate::OnRunning::Refuse,
            deferred_deletion: false,
            checkout: crate::Checkout::GitDefault,
            pool_size: 0,
        }
    }

    /// Sets [`pool_size`](Self::pool_size).
    #[must_use]
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// Sets [`checkout`](Self::checkout).
    #[must_use]
    pub fn with_checkout(mut self, checkout: crate::Checkout) -> Self {
        self.checkout = checkout;
        self
    }

    /// Sets [`deferred_deletion`](Self::deferred_deletion).
    #[must_use]
    pub fn with_deferred_deletion(mut self, deferred: bool) -> Self {
        self.deferred_deletion = deferred;
        self
    }

    /// Sets [`cleanup_grace`](Self::cleanup_grace).
    #[must_use]
    pub fn with_cleanup_grace(mut self, grace: Duration) -> Self {
        self.cleanup_grace = grace;
        self
    }

    /// Sets [`on_running`](Self::on_running).
    #[must_use]
    pub fn with_on_running(mut self, on: crate::OnRunning) -> Self {
        self.on_running = on;
        self
    }

    /// Sets [`wait_report`](Self::wait_report).
    #[must_use]
    pub fn with_wait_report(mut self, report: WaitReport) -> Self {
        self.wait_report = Some(report);
        self
    }

    /// Sets [`base_path`](Self::base_path).
    #[must_use]
    pub fn with_base_path(mut self, p: impl Into<PathBuf>) -> Self {
        self.base_path = Some(p.into());
        self
    }

    /// Sets [`state_dir`](Self::state_dir).
    #[must_use]
    pub fn with_state_dir(mut self, p: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(p.into());
        self
    }

    /// Sets [`hooks`](Self::hooks).
    #[must_use]
    pub fn with_hooks(mut self, hooks: crate::hooks::Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Sets [`symlinks`](Self::symlinks).
    #[must_use]
    pub fn with_symlinks(mut self, paths: Vec<PathBuf>) -> Self {
        self.symlinks = paths;
        self
    }

    /// Sets [`include_max_bytes`](Self::include_max_bytes).
    #[must_use]
    pub fn with_include_max_bytes(mut self, bytes: u64) -> Self {
        self.include_max_bytes = bytes;
        self
    }

    /// Sets [`slots`](Self::slots).
    #[must_use]
    pub fn with_slots(mut self, n: usize) -> Self {
        self.slots = Some(n);
        self
    }

    /// Sets [`port_base`](Self::port_base) and
    /// [`port_stride`](Self::port_stride).
    #[must_use]
    pub fn with_ports(mut self, base: u16, stride: u16) -> Self {
        self.port_base = Some(base);
        self.port_stride = stride;
        self
    }

    /// The number of slots: [`slots`](Self::slots), else
    /// [`max_worktrees`](Self::max_worktrees).
    #[must_use]
    pub fn slot_count(&self) -> usize {
        self.slots.unwrap_or(self.max_worktrees)
    }

    /// Sets [`max_worktrees`](Self::max_worktrees).
    #[must_use]
    pub fn with_max_worktrees(mut self, n: usize) -> Self {
        self.max_worktrees = n;
        self
    }

    /// Sets [`limit_policy`](Self::limit_policy).
    #[must_use]
    pub fn with_limit_policy(mut self, policy: LimitPolicy) -> Self {
        self.limit_policy = policy;
        self
    }

    /// Sets [`cleanup_on_error`](Self::cleanup_on_error).
    #[must_use]
    pub fn with_cleanup_on_error(mut self, on: bool) -> Self {
        self.cleanup_on_error = on;
        self
    }

    /// Sets [`base_ref`](Self::base_ref).
    #[must_use]
    pub fn with_base_ref(mut self, r: impl Into<String>) -> Self {
        self.base_ref = Some(r.into());
        self
    }

    /// Sets [`sync_strategy`](Self::sync_strategy).
    #[must_use]
    pub fn with_sync_strategy(mut self, s: SyncStrategy) -> Self {
        self.sync_strategy = s;
        self
    }

    /// Sets [`remote`](Self::remote).
    #[must_use]
    pub fn with_remote(mut self, r: impl Into<String>) -> Self {
        self.remote = Some(r.into());
        self
    }

    /// Sets [`branch_template`](Self::branch_template).
    #[must_use]
    pub fn with_branch_template(mut self, template: crate::BranchTemplate) -> Self {
        self.branch_template = template;
        self
    }

    /// Sets [`namespace`](Self::namespace).
    #[must_use]
    pub fn with_namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Sets [`lock_timeout`](Self::lock_timeout).
    #[must_use]
    pub fn with_lock_timeout(mut self, d: Duration) -> Self {
        self.lock_timeout = d;
        self
    }

    /// Sets [`git_timeout`](Self::git_timeout).
    #[must_use]
    pub fn with_git_timeout(mut self, d: Duration) -> Self {
        self.git_timeout = d;
        self
    }
}

/// Whether a worktree's directory is where its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub enum WorktreeStatus {
    /// Its directory is there.
    #[default]
    Active,
    /// Its directory is gone (removed outside ForgeFlow);
    /// [`recover`](super::WorktreeManager::recover) or a cleanup tidies up.
    Missing,
    /// It lives in another clone or on another server sharing the same
    /// store (see [`Worktree::location`]); only that one can change it.
    Elsewhere,
}

/// What the agent working in a worktree says it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub enum AgentState {
    /// At work.
    Working,
    /// Waiting for a person's input.
    Waiting,
    /// Finished.
    Done,
    /// Stuck on something it cannot settle.
    Blocked,
}

impl AgentState {
    /// Its name, as written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Blocked => "blocked",
        }
    }
}

/// The longest note an agent status carries, in bytes.
pub const MAX_AGENT_NOTE_LEN: usize = 500;

/// An agent's status in a worktree: its state, an optional note, and
/// since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct AgentStatus {
    /// The state.
    pub state: AgentState,
    /// What the agent adds (at most [`MAX_AGENT_NOTE_LEN`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was set.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub since: Timestamp,
}

impl AgentStatus {
    /// `state` with `note`, from now.
    #[must_use]
    pub fn new(state: AgentState, note: Option<String>) -> Self {
        Self {
            state,
            note,
            since: Timestamp::now(),
        }
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
    /// Which clone it lives in: `<host>:<git common dir>`. Servers sharing
    /// one store see each other's worktrees but change only their own.
    #[serde(default)]
    pub location: String,
    /// Whether `recover` rebuilt this record from git after the store lost
    /// the original (its `base` is then the configured base, and
    /// `created_at` the time of the rebuild).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
    /// The slot it holds (see [`WorktreeConfig::slots`]); none for a
    /// worktree made before slots existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    /// Its `post_create` hook failed and it was kept for inspection
    /// ([`OnHookFailure::Keep`](crate::hooks::OnHookFailure::Keep)).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hook_failed: bool,
    /// What the agent working in it last said it is doing
    /// ([`set_agent_status`](super::WorktreeManager::set_agent_status)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_status: Option<AgentStatus>,
    /// `port_base + slot × port_stride` when ports are configured. Found
    /// when read, never stored.
    #[serde(default, skip_serializing)]
    pub port: Option<u16>,
    /// Found when read, never stored.
    #[serde(default, skip_serializing)]
    pub status: WorktreeStatus,
    /// What it checks out when it is a sparse worktree (none: every
    /// file). Read from its git directory when shown, never stored: the
    /// agent may widen it (`git sparse-checkout add`).
    #[serde(default, skip_serializing)]
    pub sparse: Option<crate::Sparse>,
}

/// What [`create_worktree`](super::WorktreeManager::create_worktree)
/// returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Created {
    /// The issue's worktree.
    pub worktree: Worktree,
    /// Whether it existed already (the call changed nothing).
    pub reused: bool,
    /// Worktrees removed to stay within the limit
    /// ([`LimitPolicy::EvictOldest`]).
    pub evicted: Vec<Worktree>,
    /// Where files found at the issue's worktree path, which git no longer
    /// listed as a worktree, were moved, whole (`<base>/.ff-kept/<id>-…`).
    pub set_aside: Option<std::path::PathBuf>,
    /// The warm pool worktree it was made from (its id, `.ff-pool-…`),
    /// when it was.
    pub from_pool: Option<String>,
}

/// How [`cleanup_worktree`](super::WorktreeManager::cleanup_worktree)
/// treats work it would destroy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cleanup {
    /// Refuse ([`Error::WouldLoseWork`](crate::Error::WouldLoseWork)) when
    /// the worktree has uncommitted changes or commits its base lacks.
    #[default]
    Safe,
    /// Remove it all the same, keeping that work under
    /// `refs/ff/archive/<id>` first.
    Force,
}

/// Whether [`recover`](super::WorktreeManager::recover) changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Recover {
    /// Repair what it finds.
    #[default]
    Repair,
    /// Only report what it would repair.
    DryRun,
}

/// What [`cleanup_worktree`](super::WorktreeManager::cleanup_worktree) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cleaned {
    /// The worktree removed, or `None` when there was nothing to clean.
    pub removed: Option<Worktree>,
    /// Where work that would have been lost was kept (forced cleanup), or
    /// the branch's commits kept anyway because they were judged merged by
    /// their content, not by history (see `merged_because`).
    pub archived_at: Option<String>,
    /// Why commits the base's history lacks were judged merged: their
    /// changes are in the base already (a squash or rebase merge).
    pub merged_because: Option<String>,
    /// Where files found in the worktree's directory after git no longer
    /// listed it were moved, whole (`<base>/.ff-kept/<id>-…`): an agent
    /// wrote into it while it was removed, or a removal was cut short.
    pub set_aside: Option<std::path::PathBuf>,
}

/// Options of one [`sync_worktree`](super::WorktreeManager::sync_worktree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Overrides the configured [`SyncStrategy`].
    pub strategy: Option<SyncStrategy>,
    /// Set uncommitted changes aside and put them back afterwards
    /// (`--autostash`) instead of refusing a dirty worktree.
    pub autostash: bool,
}

impl SyncOptions {
    /// Sets [`strategy`](Self::strategy).
    #[must_use]
    pub fn with_strategy(mut self, s: SyncStrategy) -> Self {
        self.strategy = Some(s);
        self
    }

    /// Sets [`autostash`](Self::autostash).
    #[must_use]
    pub fn with_autostash(mut self, on: bool) -> Self {
        self.autostash = on;
        self
    }
}

/// What [`sync_worktree`](super::WorktreeManager::sync_worktree) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Synced {
    /// The worktree's id.
    pub id: String,
    /// Its branch.
    pub branch: String,
    /// The remote fetched from, if any.
    pub fetched_from: Option<String>,
    /// The ref synced onto (`refs/remotes/<remote>/<branch>` or the base).
    pub onto: String,
    /// The commit of `onto`.
    pub onto_commit: String,
    /// How.
    pub strategy: SyncStrategy,
    /// The branch head before.
    pub head_before: String,
    /// The branch head after (equal to `head_before` when it was up to date).
    pub head_after: String,
}

impl Synced {
    /// Whether the branch moved.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.head_before != self.head_after
    }
}

/// A worktree's working state, as `ff list` shows it
/// ([`WorktreeManager::working_state`](super::WorktreeManager::working_state)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WorkingState {
    /// Files changed, untracked ones included.
    pub changed: usize,
    /// Commits on its branch its base lacks (`None`: the base cannot be
    /// read).
    pub ahead: Option<u64>,
    /// Commits on its base its branch lacks.
    pub behind: Option<u64>,
}
