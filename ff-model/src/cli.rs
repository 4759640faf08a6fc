//! What the commands print with `--json`, and the error a failing command
//! prints on stderr. Each type is one documented shape (docs/cli.md's JSON
//! table; `ff-cli/schemas/<command>.schema.json`).
//!
//! Fields are declared in name order, so the JSON they give keeps the key
//! order the hand-built objects they replaced had.

use std::collections::BTreeMap;

use ff_traits::{LockInfo, LockStatus, Timestamp};
use ff_worktree::{Worktree, WorktreeStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ms;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One worktree, as `ff get` prints it and `ff list` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorktreeView {
    /// What the agent working in it last said it is doing (`ff status
    /// set`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "crate::AgentStatusView")]
    pub agent_status: Option<crate::AgentStatusView>,
    /// What its branch started from.
    pub base: String,
    /// Its branch.
    #[schemars(regex(pattern = r"^[A-Za-z][A-Za-z0-9._/@-]*$"))]
    pub branch: String,
    /// When it was made (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// Present when its `post_create` hook failed and
    /// `hooks.on_failure = "keep"` kept it.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("const" = true))]
    pub hook_failed: bool,
    /// Its id.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(@[1-9][0-9]*)?$"))]
    pub id: String,
    /// Its issue.
    #[schemars(length(min = 1))]
    pub issue: String,
    /// Its directory.
    pub path: String,
    /// `port_base + slot × port_stride`, when `ff.toml` sets `port_base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    #[schemars(with = "u16")]
    pub port: Option<u16>,
    /// Present when `recover` rebuilt its record from git.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("const" = true))]
    pub recovered: bool,
    /// The smallest slot free when it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    pub slot: Option<u32>,
    /// What it checks out, when it is a sparse worktree (absent: every
    /// file), as its git directory says now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "SparseView")]
    pub sparse: Option<SparseView>,
    /// Where its directory is: `active`, `missing` or `elsewhere`.
    pub status: WorktreeStatus,
}

/// What a sparse worktree checks out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SparseView {
    /// `true` in cone mode (what `ff create --sparse` sets up): `paths`
    /// are directories, checked out whole beside the top-level files.
    /// `false`: `paths` are git's patterns, as someone set them.
    pub cone: bool,
    /// The directories (cone mode) or patterns; empty in cone mode: only
    /// the top-level files (`ff create --no-checkout`).
    pub paths: Vec<String>,
}

impl WorktreeView {
    /// `w` as the commands show it.
    #[must_use]
    pub fn new(w: &Worktree) -> Self {
        Self {
            agent_status: w.agent_status.as_ref().map(crate::AgentStatusView::new),
            base: w.base.clone(),
            branch: w.branch.clone(),
            created_at: w.created_at.to_string(),
            hook_failed: w.hook_failed,
            id: w.id.clone(),
            issue: w.issue.clone(),
            path: w.path.to_string_lossy().into_owned(),
            port: w.port,
            recovered: w.recovered,
            slot: w.slot,
            sparse: w.sparse.as_ref().map(|s| SparseView {
                cone: s.cone,
                paths: s.paths.clone(),
            }),
            status: match w.status {
                s @ (WorktreeStatus::Missing | WorktreeStatus::Elsewhere) => s,
                _ => WorktreeStatus::Active,
            },
        }
    }
}

/// What `ff create` prints: the worktree, and whether the issue had it
/// already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("unevaluatedProperties" = false))]
#[non_exhaustive]
pub struct CreatedView {
    /// The worktree.
    #[serde(flatten)]
    pub worktree: WorktreeView,
    /// `true` when the issue already had this worktree.
    pub reused: bool,
    /// Where files found at the issue's old worktree path, which git no
    /// longer listed as a worktree, were moved, whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(min = 1))]
    pub set_aside: Option<String>,
    /// The warm pool worktree it was made from (`.ff-pool-…`), when it
    /// was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(min = 1))]
    pub from_pool: Option<String>,
}

impl CreatedView {
    /// What `created` shows.
    #[must_use]
    pub fn new(created: &ff_worktree::Created) -> Self {
        Self {
            worktree: WorktreeView::new(&created.worktree),
            reused: created.reused,
            set_aside: created
                .set_aside
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            from_pool: created.from_pool.clone(),
        }
    }
}

/// What `ff path --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PathView {
    /// The worktree's id.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(@[1-9][0-9]*)?$"))]
    pub id: String,
    /// Its directory.
    #[schemars(length(min = 1))]
    pub path: String,
}

impl PathView {
    /// `w`'s id and path.
    #[must_use]
    pub fn new(w: &Worktree) -> Self {
        Self {
            id: w.id.clone(),
            path: w.path.to_string_lossy().into_owned(),
        }
    }
}

/// What `ff switch --json` prints: where to go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SwitchView {
    /// The directory to change to.
    #[schemars(length(min = 1))]
    pub path: String,
    /// The worktree's id; `null` for the main working tree (`ff switch -`).
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(@[1-9][0-9]*)?$"))]
    pub id: Option<String>,
    /// Whether `--create` made the worktree now.
    pub created: bool,
}

impl SwitchView {
    /// The worktree `w` (`created` now or not).
    #[must_use]
    pub fn worktree(w: &Worktree, created: bool) -> Self {
        Self {
            path: w.path.to_string_lossy().into_owned(),
            id: Some(w.id.clone()),
            created,
        }
    }

    /// The main working tree at `path`.
    #[must_use]
    pub fn main_tree(path: &std::path::Path) -> Self {
        Self {
            path: path.to_string_lossy().into_owned(),
            id: None,
            created: false,
        }
    }
}

/// What `ff cleanup` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CleanupView {
    /// Where its commits were kept (`refs/ff/archive/…`), when they were.
    #[schemars(regex(pattern = "^refs/ff/archive/"))]
    pub archived_at: Option<String>,
    /// The removed worktree's id.
    pub id: Option<String>,
    /// Why commits the base's history lacks were judged merged (their
    /// changes are in the base); they are archived all the same.
    pub merged_because: Option<String>,
    /// Whether a worktree was removed.
    pub removed: bool,
    /// Where files found in its directory after git no longer listed it
    /// (an agent wrote into it during the removal) were moved, whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String", length(min = 1))]
    pub set_aside: Option<String>,
}

impl CleanupView {
    /// What `done` shows.
    #[must_use]
    pub fn new(done: &ff_worktree::Cleaned) -> Self {
        Self {
            archived_at: done.archived_at.clone(),
            id: done.removed.as_ref().map(|w| w.id.clone()),
            merged_because: done.merged_because.clone(),
            removed: done.removed.is_some(),
            set_aside: done
                .set_aside
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
        }
    }
}

/// What `ff prune` did with one worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PruneActionView {
    /// Removed.
    Removed,
    /// Would be removed (`--dry-run`).
    WouldRemove,
    /// Kept; the reason says why.
    Kept,
}

impl PruneActionView {
    /// As written in JSON (`would_remove`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Removed => "removed",
            Self::WouldRemove => "would_remove",
            Self::Kept => "kept",
        }
    }
}

/// One worktree `ff prune` looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PrunedView {
    /// What was done.
    pub action: PruneActionView,
    /// Where its commits were kept, when they were.
    #[schemars(regex(pattern = "^refs/ff/archive/"))]
    pub archived_at: Option<String>,
    /// Its id.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(@[1-9][0-9]*)?$"))]
    pub id: String,
    /// Its issue.
    pub issue: String,
    /// Its directory.
    pub path: String,
    /// Why.
    #[schemars(length(min = 1))]
    pub reason: String,
}

impl PrunedView {
    /// What `p` shows.
    #[must_use]
    pub fn new(p: &ff_worktree::Pruned) -> Self {
        Self {
            action: match p.action {
                ff_worktree::PruneAction::Removed => PruneActionView::Removed,
                ff_worktree::PruneAction::WouldRemove => PruneActionView::WouldRemove,
                _ => PruneActionView::Kept,
            },
            archived_at: p.archived_at.clone(),
            id: p.worktree.id.clone(),
            issue: p.worktree.issue.clone(),
            path: p.worktree.path.to_string_lossy().into_owned(),
            reason: p.reason.clone(),
        }
    }
}

/// Who holds a lock, as `ff locks` and errors show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HolderView {
    /// When the grant was made (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub acquired_at: String,
    /// How long it has been held, in ms.
    pub age_ms: u64,
    /// The grant's fencing token.
    pub fencing_token: u64,
    /// The holder's host.
    pub hostname: String,
    /// The grant's id.
    pub id: String,
    /// What the holder said it was doing.
    pub operation: String,
    /// The semaphore's permits, when the holder holds one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000))]
    #[schemars(with = "u32")]
    pub permits: Option<u32>,
    /// The holder's pid.
    pub pid: u32,
    /// The process group of the command run under the lock (`ff lock`):
    /// a holder that died is alive, to waiters on its host, while this
    /// group runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    pub process_group: Option<u32>,
}

impl HolderView {
    /// `h` as shown at `now`.
    #[must_use]
    pub fn new(h: &LockInfo, now: Timestamp) -> Self {
        Self {
            acquired_at: h.acquired_at.to_string(),
            age_ms: ms(h.age(now)),
            fencing_token: h.fencing_token.0,
            hostname: h.hostname.clone(),
            id: h.id.clone(),
            operation: h.operation.clone(),
            permits: h.permits,
            pid: h.pid,
            process_group: h.process_group,
        }
    }
}

/// How a lock mode is written, for its schema.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // a schema's stand-in, never made
enum LockModeName {
    Exclusive,
    Shared,
    IntentShared,
    IntentExclusive,
    SharedIntentExclusive,
}

/// One lock, as `ff locks` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LockEntryView {
    /// Whether anyone holds it.
    pub held: bool,
    /// Its first holder.
    pub holder: Option<HolderView>,
    /// Every holder: one for an exclusive lock, each shared holder or
    /// semaphore permit otherwise.
    pub holders: Vec<HolderView>,
    /// The issue it is for, when the worktree manager took it.
    pub issue: Option<String>,
    /// Its holders' mode, when held.
    #[schemars(with = "Option<LockModeName>")]
    pub mode: Option<String>,
    /// Its name.
    pub name: String,
    /// The name's parent in a hierarchy (the part before its last `/`).
    pub parent: Option<String>,
    /// The repository it is for, when the worktree manager took it.
    pub repository: Option<String>,
}

impl LockEntryView {
    /// `l` as shown at `now`.
    #[must_use]
    pub fn new(l: &LockStatus, now: Timestamp) -> Self {
        let (issue, repository) = ff_worktree::lock_names::described(&l.name, l.holders.first());
        let holders: Vec<HolderView> = l.holders.iter().map(|h| HolderView::new(h, now)).collect();
        Self {
            held: l.held,
            holder: holders.first().cloned(),
            holders,
            issue,
            mode: l.mode.map(|m| m.to_string()),
            name: l.name.clone(),
            parent: l.name.rsplit_once('/').map(|(parent, _)| parent.to_owned()),
            repository,
        }
    }
}

/// What `ff gc` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GcView {
    /// Finished records removed.
    pub removed: u64,
    /// Lock files removed: free file locks last granted before
    /// `--max-age` (file lock backend).
    #[serde(default)]
    pub lock_files_removed: u64,
}

impl GcView {
    /// `removed` records were removed.
    #[must_use]
    pub fn new(removed: u64) -> Self {
        Self {
            removed,
            lock_files_removed: 0,
        }
    }

    /// The same, with `n` lock files removed.
    #[must_use]
    pub fn with_lock_files_removed(mut self, n: u64) -> Self {
        self.lock_files_removed = n;
        self
    }
}

/// What `ff stats` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StatsView {
    /// Mean duration of finished operations, in ms.
    #[schemars(range(min = 0.0))]
    pub avg_duration_ms: f64,
    /// Records per operation.
    pub by_operation: BTreeMap<String, u64>,
    /// Records per status.
    pub by_status: BTreeMap<String, u64>,
    /// Entries that could not be read.
    pub corrupt: u64,
    /// Percent of finished operations that succeeded.
    #[schemars(range(min = 0.0, max = 100.0))]
    pub success_rate: f64,
    /// Readable records.
    pub total: u64,
}

impl StatsView {
    /// What `s` shows.
    #[must_use]
    pub fn new(s: &ff_idempotency::IdempotencyStats) -> Self {
        Self {
            avg_duration_ms: s.avg_duration_ms,
            by_operation: s.by_operation.clone(),
            by_status: s.by_status.clone(),
            corrupt: s.corrupt,
            success_rate: s.success_rate,
            total: s.total,
        }
    }
}

/// What `ff lock --json` prints once its command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LockRunView {
    /// The command's exit code.
    pub exit_code: u8,
    /// The lock held while it ran.
    pub lock: String,
}

impl LockRunView {
    /// `lock` held while a command ran and exited with `exit_code`.
    #[must_use]
    pub fn new(lock: impl Into<String>, exit_code: u8) -> Self {
        Self {
            exit_code,
            lock: lock.into(),
        }
    }
}

/// What `ff exec --json` prints once its command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExecView {
    /// The command's exit code.
    pub exit_code: u8,
    /// The worktree's id.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(@[1-9][0-9]*)?$"))]
    pub id: String,
    /// Its issue.
    #[schemars(length(min = 1))]
    pub issue: String,
    /// Where the command ran.
    #[schemars(length(min = 1))]
    pub path: String,
}

impl ExecView {
    /// A command that ran in `w` and exited with `exit_code`.
    #[must_use]
    pub fn new(w: &Worktree, exit_code: u8) -> Self {
        Self {
            exit_code,
            id: w.id.clone(),
            issue: w.issue.clone(),
            path: w.path.to_string_lossy().into_owned(),
        }
    }
}

/// What `ff once --json` prints: a run now, or a completed run told again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OnceView {
    /// When the completed run ended (RFC 3339), when not run now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    #[schemars(with = "String")]
    pub completed_at: Option<String>,
    /// The exit code: the run's now, or the completed run's.
    pub exit_code: u8,
    /// The key, as `--key` takes it (`--forget --key` forgets it): the one
    /// given, or `command:<sha-256>` of the command line and directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub key: String,
    /// Whether the command ran now.
    pub ran: bool,
    /// `already_completed`, when not run now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("const" = "already_completed"))]
    #[schemars(with = "String")]
    pub status: Option<String>,
    /// The last 64 KiB of the completed run's stderr (replayed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub stderr: Option<String>,
    /// The last 64 KiB of the completed run's stdout (replayed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub stdout: Option<String>,
}

impl OnceView {
    /// The command ran now and exited with `exit_code`.
    #[must_use]
    pub fn ran(exit_code: u8) -> Self {
        Self {
            completed_at: None,
            exit_code,
            key: String::new(),
            ran: true,
            status: None,
            stderr: None,
            stdout: None,
        }
    }

    /// A run completed at `at` is told again instead of run.
    #[must_use]
    pub fn replayed(at: Timestamp, exit_code: u8, stdout: String, stderr: String) -> Self {
        Self {
            completed_at: Some(at.to_string()),
            exit_code,
            key: String::new(),
            ran: false,
            status: Some("already_completed".to_owned()),
            stderr: Some(stderr),
            stdout: Some(stdout),
        }
    }
}

impl OnceView {
    /// The same, with the key it was run under.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }
}

/// What `ff once --forget --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ForgottenView {
    /// Whether a record was removed.
    pub forgotten: bool,
}

impl ForgottenView {
    /// Whether a record was removed.
    #[must_use]
    pub fn new(forgotten: bool) -> Self {
        Self { forgotten }
    }
}

/// A hook and its command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HookView {
    /// Its command line.
    pub command: String,
    /// Which hook.
    #[schemars(extend("enum" = ["post_create", "pre_sync", "post_sync", "pre_cleanup", "pool_prepare"]))]
    pub hook: String,
}

impl HookView {
    /// `hook` runs `command`.
    #[must_use]
    pub fn new(hook: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            hook: hook.into(),
        }
    }
}

/// What `ff hooks --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HooksView {
    /// Whether this machine approved them.
    pub approved: bool,
    /// The SHA-256 approval covers, when there are hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    #[schemars(with = "String")]
    pub digest: Option<String>,
    /// The hooks.
    pub hooks: Vec<HookView>,
    /// The repository's top directory.
    #[schemars(length(min = 1))]
    pub repository: String,
    /// How long a hook may run, in ms, when there are hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    #[schemars(with = "u64")]
    pub timeout_ms: Option<u64>,
}

impl HooksView {
    /// A repository with no hooks: nothing to approve.
    #[must_use]
    pub fn none(repository: impl Into<String>) -> Self {
        Self {
            approved: true,
            digest: None,
            hooks: Vec::new(),
            repository: repository.into(),
            timeout_ms: None,
        }
    }

    /// `hooks` in `repository`, approved or not, by `digest`.
    #[must_use]
    pub fn new(
        repository: impl Into<String>,
        hooks: Vec<HookView>,
        approved: bool,
        digest: impl Into<String>,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            approved,
            digest: Some(digest.into()),
            hooks,
            repository: repository.into(),
            timeout_ms: Some(ms(timeout)),
        }
    }
}

/// What a failing command prints on stderr with `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ErrorView {
    /// What went wrong.
    pub error: ErrorBody,
}

impl ErrorView {
    /// The error `error`.
    #[must_use]
    pub fn new(error: ErrorBody) -> Self {
        Self { error }
    }
}

/// What went wrong: its kind and message always; the facts a program may
/// act on where the kind has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
#[allow(missing_docs)] // each fact is named for what it is; docs/cli.md lists them by kind
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub base: Option<String>,
    /// `hook_failed`: the hook's command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub command: Option<String>,
    /// `would_lose_work`: commits the base lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub commits: Option<u64>,
    /// `would_lose_work`: uncommitted files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<String>")]
    pub files: Option<Vec<String>>,
    /// `lock_timeout`: who held the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "HolderView")]
    pub holder: Option<HolderView>,
    /// `hook_failed`: which hook (`post_create`, `pre_sync`, `post_sync`,
    /// `pre_cleanup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub hook: Option<String>,
    /// What went wrong, by meaning (`lock_timeout`, `would_lose_work`, …).
    #[schemars(regex(pattern = "^[a-z_]+$"))]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub limit: Option<u64>,
    /// `lock_timeout`: the lock waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    pub max_attempts: Option<u32>,
    /// For a person.
    #[schemars(length(min = 1))]
    pub message: String,
    /// `hook_failed`: the last 4 KiB of its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub output: Option<String>,
    /// `conflict`: the conflicting paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<String>")]
    pub paths: Option<Vec<String>>,
    /// When another try may succeed, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub retry_in_ms: Option<u64>,
    /// `hook_failed`: how the command ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub status: Option<String>,
    /// `lock_timeout`: how long ff waited, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub waited_ms: Option<u64>,
    /// `would_lose_work`: the worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub worktree: Option<String>,
}

impl ErrorBody {
    /// An error of `kind` saying `message`, with no facts.
    #[must_use]
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
            ..Self::default()
        }
    }

    /// Adds the facts `e` carries.
    #[must_use]
    pub fn with_facts_of(mut self, e: &ff_worktree::Error) -> Self {
        use ff_idempotency::Error as I;
        use ff_worktree::Error as W;
        match e {
            W::Contract(ff_traits::Error::LockTimeout {
                name,
                waited,
                holder,
                ..
            }) => {
                self.lock = Some(name.clone());
                self.waited_ms = Some(ms(*waited));
                self.holder = holder
                    .as_ref()
                    .map(|h| HolderView::new(h, Timestamp::now()));
            }
            W::Idempotency(I::BackoffNotElapsed { remaining, .. }) => {
                self.retry_in_ms = Some(ms(*remaining));
            }
            W::Idempotency(I::InProgress {
                lease_remaining: Some(d),
                ..
            }) => self.retry_in_ms = Some(ms(*d)),
            W::Idempotency(I::MaxAttemptsExceeded {
                attempts,
                max_attempts,
                ..
            }) => {
                self.attempts = Some(*attempts);
                self.max_attempts = Some(*max_attempts);
            }
            W::Conflict { paths, .. } => self.paths = Some(paths.clone()),
            W::HookFailed {
                hook,
                command,
                status,
                output,
            } => {
                self.hook = Some(hook.clone());
                self.command = Some(command.clone());
                self.status = Some(status.clone());
                self.output = Some(output.clone());
            }
            W::WouldLoseWork {
                worktree,
                files,
                commits,
                base,
            } => {
                self.worktree = Some(worktree.clone());
                self.files = Some(files.clone());
                self.commits = Some(*commits);
                self.base = Some(base.clone());
            }
            W::LimitReached { limit, .. } => {
                self.limit = Some(u64::try_from(*limit).unwrap_or(u64::MAX));
            }
            _ => {}
        }
        self
    }
}

/// The settings of a repository's `ff.toml` that need approval, as `ff
/// trust` shows them: each key only when the file sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
#[allow(missing_docs)] // each is the `ff.toml` key of its name
pub struct SettingsView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub base_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub state_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<String>")]
    pub symlink: Option<Vec<String>>,
    /// `alerts.webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub webhook: Option<String>,
}

/// A file an approved hook runs, pinned by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PinView {
    /// The file, relative to the repository.
    #[schemars(length(min = 1))]
    pub path: String,
    /// Its SHA-256 in the main working tree; `null` when absent there (a
    /// branch may not add it).
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
}

impl PinView {
    /// `path`, pinned at `sha256`.
    #[must_use]
    pub fn new(path: impl Into<String>, sha256: Option<String>) -> Self {
        Self {
            path: path.into(),
            sha256,
        }
    }
}

/// What `ff trust --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TrustView {
    /// Whether both settings and hooks are approved.
    pub approved: bool,
    /// The clone's common git directory, where approvals are recorded.
    #[schemars(length(min = 1))]
    pub common_dir: String,
    /// The hooks.
    pub hooks: Vec<HookView>,
    /// Whether the hooks are approved.
    pub hooks_approved: bool,
    /// The repository's top directory.
    #[schemars(length(min = 1))]
    pub repository: String,
    /// The files the hooks run.
    pub runs: Vec<PinView>,
    /// The settings that need approval.
    pub settings: SettingsView,
    /// Whether the settings are approved.
    pub settings_approved: bool,
}

impl TrustView {
    /// What `ff trust` found in `repository` (common directory
    /// `common_dir`), and what of it is approved.
    #[must_use]
    pub fn new(
        repository: impl Into<String>,
        common_dir: impl Into<String>,
        settings: SettingsView,
        hooks: Vec<HookView>,
        runs: Vec<PinView>,
        (settings_approved, hooks_approved): (bool, bool),
    ) -> Self {
        Self {
            approved: settings_approved && hooks_approved,
            common_dir: common_dir.into(),
            hooks,
            hooks_approved,
            repository: repository.into(),
            runs,
            settings,
            settings_approved,
        }
    }
}

/// The one line `ff serve --json` prints once it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ListeningView {
    /// Whether admin routes are on.
    pub admin: bool,
    /// The bearer token admin routes require (`null` without `--admin`).
    pub admin_token: Option<String>,
    /// The dashboard's address; the API is under it.
    #[schemars(regex(pattern = "^http://.+/$"))]
    pub listening: String,
}

impl ListeningView {
    /// Listening at `url`, with admin routes behind `admin_token` when on.
    #[must_use]
    pub fn new(url: impl Into<String>, admin: bool, admin_token: Option<String>) -> Self {
        Self {
            admin,
            admin_token,
            listening: url.into(),
        }
    }
}

/// How `ff sync` brought a branch up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyncStrategyView {
    /// `git rebase` onto the base.
    Rebase,
    /// `git merge` of the base.
    Merge,
}

/// What `ff sync` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncView {
    /// The worktree's id.
    pub id: String,
    /// Its branch.
    pub branch: String,
    /// The remote fetched first, when one was.
    pub fetched_from: Option<String>,
    /// What it was brought onto.
    pub onto: String,
    /// That ref's commit.
    #[schemars(regex(pattern = "^[0-9a-f]{40,64}$"))]
    pub onto_commit: String,
    /// How.
    pub strategy: SyncStrategyView,
    /// The branch's commit before.
    pub head_before: String,
    /// The branch's commit after.
    pub head_after: String,
    /// Whether the branch moved.
    pub changed: bool,
}

impl SyncView {
    /// What `s` shows.
    #[must_use]
    pub fn new(s: &ff_worktree::Synced) -> Self {
        Self {
            id: s.id.clone(),
            branch: s.branch.clone(),
            fetched_from: s.fetched_from.clone(),
            onto: s.onto.clone(),
            onto_commit: s.onto_commit.clone(),
            strategy: match s.strategy {
                ff_worktree::SyncStrategy::Merge => SyncStrategyView::Merge,
                _ => SyncStrategyView::Rebase,
            },
            head_before: s.head_before.clone(),
            head_after: s.head_after.clone(),
            changed: s.changed(),
        }
    }
}

/// One thing `ff recover` found, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RepairView {
    /// What kind of repair.
    pub kind: ff_worktree::RepairKind,
    /// What it is about (an issue, a path, a key).
    pub subject: String,
    /// What was found and done, for people.
    pub detail: String,
}

/// What `ff recover` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RecoverView {
    /// Whether nothing was changed (`--dry-run`).
    pub dry_run: bool,
    /// Everything found, in order.
    pub repairs: Vec<RepairView>,
}

impl RecoverView {
    /// What `r` shows.
    #[must_use]
    pub fn new(r: &ff_worktree::Recovery) -> Self {
        Self {
            dry_run: r.dry_run,
            repairs: r
                .repairs
                .iter()
                .map(|x| RepairView {
                    kind: x.kind,
                    subject: x.subject.clone(),
                    detail: x.detail.clone(),
                })
                .collect(),
        }
    }
}

/// One warm pool worktree, as `ff pool` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolEntryView {
    /// Its directory's name under the base path.
    #[schemars(regex(pattern = r"^\.ff-pool-[A-Za-z0-9-]+$"))]
    pub id: String,
    /// Its directory.
    #[schemars(length(min = 1))]
    pub path: String,
    /// The base ref it was made from.
    pub base: String,
    /// The commit it is checked out at.
    pub base_commit: String,
    /// `ready`, or `filling` (a fill is making it, or died making it).
    #[schemars(extend("enum" = ["ready", "filling"]))]
    pub state: String,
    /// When its fill began.
    pub since: String,
}

impl PoolEntryView {
    /// What `e` shows.
    #[must_use]
    pub fn new(e: &ff_worktree::PoolEntry) -> Self {
        Self {
            id: e.id.clone(),
            path: e.path.to_string_lossy().into_owned(),
            base: e.base.clone(),
            base_commit: e.base_commit.clone(),
            state: if e.ready { "ready" } else { "filling" }.to_owned(),
            since: e.since.to_string(),
        }
    }
}

/// What `ff pool fill|status|drain --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolView {
    /// `[pool] size`: how many pool worktrees are kept ready.
    pub size: usize,
    /// The pool worktrees: all of them (`status`), those made (`fill`),
    /// or those removed (`drain`).
    pub entries: Vec<PoolEntryView>,
    /// What `fill` settled first (left by fills or claims that died).
    pub settled: Vec<RepairView>,
    /// `fill` only: another fill of this clone was running, and this one
    /// did nothing.
    pub busy: bool,
}

impl PoolView {
    /// `entries` of a pool of `size`, with what a fill settled and whether
    /// it found another running.
    #[must_use]
    pub fn new(
        size: usize,
        entries: &[ff_worktree::PoolEntry],
        settled: &ff_worktree::Recovery,
        busy: bool,
    ) -> Self {
        Self {
            size,
            entries: entries.iter().map(PoolEntryView::new).collect(),
            settled: RecoverView::new(settled).repairs,
            busy,
        }
    }
}

/// A holder as the lock backend records it: [`LockInfo`]'s own
/// serialization, for its schema (the fields every backend writes; the
/// rest by backend).
#[derive(JsonSchema)]
#[allow(dead_code)] // a schema's stand-in, never made
struct RecordedHolder {
    id: String,
    name: String,
    pid: u32,
    hostname: String,
    /// Milliseconds since the Unix epoch.
    acquired_at: u64,
    fencing_token: u64,
}

/// What `ff unlock` did with one lock, by outcome.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnlockOutcome {
    /// Nobody held it.
    NotHeld,
    /// Its holders were gone; their state was cleared.
    Cleared {
        /// The holders cleared.
        #[schemars(with = "Vec<RecordedHolder>")]
        previous: Vec<LockInfo>,
    },
    /// Its live holders were revoked (`--force`).
    Revoked {
        /// The holders revoked.
        #[schemars(with = "Vec<RecordedHolder>")]
        previous: Vec<LockInfo>,
    },
    /// Its live holders on this machine were stopped (`--force` on a lock
    /// no one can take from a running process, such as a kernel lock):
    /// `signal` (`SIGTERM`, then `SIGKILL` after the grace) went to each,
    /// and the lock freed.
    Stopped {
        /// The holders stopped.
        #[schemars(with = "Vec<RecordedHolder>")]
        previous: Vec<LockInfo>,
        /// The last signal sent: `SIGTERM` or `SIGKILL`.
        #[schemars(extend("enum" = ["SIGTERM", "SIGKILL"]))]
        signal: String,
    },
    /// Live holders keep it.
    Refused {
        /// The live holders.
        #[schemars(with = "Vec<RecordedHolder>")]
        holders: Vec<LockInfo>,
        /// Why, and what to do instead.
        reason: String,
    },
}

/// One lock `ff unlock` handled.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(extend("unevaluatedProperties" = false))]
#[non_exhaustive]
pub struct UnlockView {
    /// The lock's name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: UnlockOutcome,
    /// Locks beneath this node of a hierarchy that are still held (each
    /// its own lock; unlocking the node leaves them).
    pub held_beneath: Vec<String>,
}

impl UnlockView {
    /// One lock with nothing held beneath it, and what happened to it.
    #[must_use]
    pub fn of(name: &str, outcome: UnlockOutcome) -> Self {
        Self {
            name: name.to_owned(),
            outcome,
            held_beneath: Vec::new(),
        }
    }

    /// What `r` shows, with what is still held beneath it.
    #[must_use]
    pub fn new(r: &ff_traits::ForceRelease, held_beneath: Vec<String>) -> Self {
        use ff_traits::ForceOutcome as F;
        Self {
            name: r.name.clone(),
            outcome: match &r.outcome {
                F::NotHeld => UnlockOutcome::NotHeld,
                F::Cleared { previous } => UnlockOutcome::Cleared {
                    previous: previous.clone(),
                },
                F::Revoked { previous } => UnlockOutcome::Revoked {
                    previous: previous.clone(),
                },
                F::Refused { holders, reason } => UnlockOutcome::Refused {
                    holders: holders.clone(),
                    reason: reason.clone(),
                },
                // An outcome this version does not know: say so rather
                // than claim the lock was freed.
                _ => UnlockOutcome::Refused {
                    holders: Vec::new(),
                    reason: "the backend answered with an outcome this ff does not know".to_owned(),
                },
            },
            held_beneath,
        }
    }
}

/// What `ff once --json` prints: a run, or (`--forget`) whether a record
/// was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
#[non_exhaustive]
pub enum OnceOutput {
    /// The command ran now, or its completed run was told again.
    Run(OnceView),
    /// `--forget`.
    Forgotten(ForgottenView),
}

/// What `ff agent install` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentInstallView {
    /// The settings file.
    pub path: String,
    /// The hook events ff's hooks were added to (none: they were there).
    pub added: Vec<String>,
    /// Whether the file was changed (false with `--dry-run`, or when
    /// nothing was missing).
    pub changed: bool,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl AgentInstallView {
    /// Hooks `added` to `path`, or not written when `dry_run`.
    #[must_use]
    pub fn new(path: String, added: Vec<String>, dry_run: bool) -> Self {
        Self {
            changed: !added.is_empty() && !dry_run,
            path,
            added,
            dry_run,
        }
    }
}

/// What `ff status` shows (and `ff status set` leaves): a worktree's agent
/// status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentStatusOfView {
    /// What the agent last said; `null` until one says something.
    pub agent_status: Option<crate::AgentStatusView>,
    /// The worktree's id.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(@[1-9][0-9]*)?$"))]
    pub id: String,
    /// Its issue.
    pub issue: String,
}

impl AgentStatusOfView {
    /// `w`'s agent status.
    #[must_use]
    pub fn new(w: &Worktree) -> Self {
        Self {
            agent_status: w.agent_status.as_ref().map(crate::AgentStatusView::new),
            id: w.id.clone(),
            issue: w.issue.clone(),
        }
    }
}

/// How one of `ff doctor`'s checks came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckOutcome {
    /// Fine.
    Ok,
    /// Worth a look: ff works, but something will bite (an approval
    /// waiting, a repair to make).
    Warn,
    /// Broken: ff cannot work until it is fixed.
    Fail,
    /// Not looked at (what it needs is missing or not approved).
    Skipped,
}

/// One of `ff doctor`'s checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CheckView {
    /// What was checked (`git`, `repository`, `settings`, `hooks`,
    /// `state_dir`, `locks`, `store`, `worktrees`, `clock`, `shell`).
    pub check: String,
    /// How it came out.
    pub outcome: CheckOutcome,
    /// What was found.
    pub detail: String,
    /// What to do about it, when something is to be done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub fix: Option<String>,
}

impl CheckView {
    /// Check `check` came out `outcome`: `detail`, and `fix` to do.
    #[must_use]
    pub fn new(
        check: &str,
        outcome: CheckOutcome,
        detail: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self {
            check: check.to_owned(),
            outcome,
            detail: detail.into(),
            fix,
        }
    }
}

/// What `ff doctor` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DoctorView {
    /// Every check, in the order made.
    pub checks: Vec<CheckView>,
}

impl DoctorView {
    /// `checks`.
    #[must_use]
    pub fn new(checks: Vec<CheckView>) -> Self {
        Self { checks }
    }
}
