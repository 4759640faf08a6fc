//! Running the configured lifecycle hooks (see [`crate::hooks`]) at their
//! points: `post_create` exactly once per worktree, by a record of its own.

use ff_idempotency::Start;
use ff_traits::{IdempotencyKey, IdempotencyStorage, LockProvider, RecordedError};
use serde_json::json;

use super::{Worktree, WorktreeManager};
use crate::hooks::{self, Hook, OnHookFailure};
use crate::issue::IssueId;
use crate::{Error, Result};

/// The operation name of hook-run records.
pub(crate) const HOOK_OPERATION: &str = "worktreeHook";

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// The key of `wt`'s `post_create` run.
    fn post_create_key(&self, wt: &Worktree) -> IdempotencyKey {
        IdempotencyKey::new(
            HOOK_OPERATION,
            json!({"hook": Hook::PostCreate.as_str(), "worktree": wt.id}),
            json!({"repo": self.repo_key}),
        )
    }

    /// The environment hooks run with.
    fn hook_env(&self, wt: &Worktree, attempt: u32) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("FF_HOOK_ATTEMPT", attempt.to_string()),
            ("FF_ISSUE", wt.issue.clone()),
            ("FF_WORKTREE_ID", wt.id.clone()),
            ("FF_WORKTREE_PATH", wt.path.display().to_string()),
            ("FF_BRANCH", wt.branch.clone()),
            ("FF_BASE", wt.base.clone()),
            ("FF_REPO", self.info.toplevel.display().to_string()),
        ];
        if let Some(slot) = wt.slot {
            env.push(("FF_SLOT", slot.to_string()));
        }
        if let Some(port) = self.port_of(wt.slot) {
            env.push(("FF_PORT", port.to_string()));
        }
        env
    }

    /// The log file of `wt`'s hooks, when output goes to files.
    fn hook_log(&self, wt: &Worktree) -> Option<std::path::PathBuf> {
        self.config
            .hooks
            .log_dir
            .as_ref()
            .map(|d| d.join(format!("{}.log", wt.id)))
    }

    /// Runs `hook` (any but `post_create`) in `wt`, if configured.
    pub(super) async fn run_hook(&self, hook: Hook, wt: &Worktree) -> Result<()> {
        let commands = self.config.hooks.commands(hook);
        if commands.is_empty() {
            return Ok(());
        }
        let groups = self.groups();
        hooks::run(
            hook,
            &self.config.hooks,
            &wt.path,
            &self.hook_env(wt, 1),
            self.hook_log(wt).as_deref(),
            Some((&groups, wt.id.as_str())),
        )
        .await
    }

    /// Runs `post_create` in `wt` unless it already succeeded there; call
    /// under the issue's lock. A claim left by a process that died
    /// mid-hook is taken over and the hook runs again (its attempt number
    /// in `FF_HOOK_ATTEMPT`). On failure, rolls the worktree back or keeps
    /// it marked, as configured, and returns the failure.
    pub(super) async fn post_create(&self, issue: &IssueId, mut wt: Worktree) -> Result<Worktree> {
        let commands = &self.config.hooks.post_create;
        if commands.is_empty() || !self.is_local(&wt) {
            return Ok(wt);
        }
        let key = self.post_create_key(&wt);
        let claim = match self.records.start_operation_exclusive(&key, None).await {
            Ok(Start::AlreadyCompleted(_)) => {
                // A retry that succeeded, killed before it cleared the mark.
                if wt.hook_failed {
                    self.set_hook_failed(issue, false).await?;
                    wt.hook_failed = false;
                }
                return Ok(wt);
            }
            Ok(Start::Claimed(claim)) => claim,
            // It failed before and the worktree was kept: not again.
            Err(ff_idempotency::Error::FailedPermanently { .. }) => {
                wt.hook_failed = true;
                return Ok(wt);
            }
            Err(e) => return Err(e.into()),
        };
        crate::crash::point("create.hook_claimed");
        let attempt = self
            .records
            .store()
            .load(&claim.key)
            .await?
            .map_or(1, |r| r.attempts.max(1));
        let groups = self.groups();
        let ran = hooks::run(
            Hook::PostCreate,
            &self.config.hooks,
            &wt.path,
            &self.hook_env(&wt, attempt),
            self.hook_log(&wt).as_deref(),
            Some((&groups, wt.id.as_str())),
        )
        .await;
        crate::crash::point("create.hook_ran");
        let Err(failure) = ran else {
            self.records.complete_operation(&claim, json!({})).await?;
            // A retry that succeeded: the mark goes only now, so a crash
            // before this point leaves it (and the next create retries).
            if wt.hook_failed {
                self.set_hook_failed(issue, false).await?;
                wt.hook_failed = false;
            }
            return Ok(wt);
        };
        match self.config.hooks.on_failure {
            OnHookFailure::Keep => {
                self.records
                    .fail_operation(
                        &claim,
                        RecordedError::new("hook_failed", failure.to_string(), false),
                    )
                    .await?;
                self.set_hook_failed(issue, true).await?;
                tracing::warn!(id = %wt.id, "post_create failed; the worktree is kept, marked hook_failed");
            }
            _ => {
                self.records.abandon_operation(&claim).await?;
                self.cleanup_locked(issue, &wt.id, true).await?;
                tracing::warn!(id = %wt.id, "post_create failed; the worktree was rolled back");
            }
        }
        Err(failure)
    }

    /// Removes the record of `wt`'s `post_create` run (when the worktree
    /// goes: a new worktree of the issue runs it afresh).
    pub(super) async fn forget_hook_runs(&self, wt: &Worktree) -> Result<()> {
        let key = self.post_create_key(wt).record_key()?;
        if let Some(record) = self.records.store().load(&key).await? {
            self.remove_record(&record).await?;
        }
        Ok(())
    }

    /// Runs `post_create` again in the issue's worktree, whose earlier run
    /// failed and was kept (`on_failure = "keep"`): the failed run's record
    /// is withdrawn under the issue lock, the hook runs as at create, and
    /// the worktree is `hook_failed` until it succeeds. A worktree whose
    /// hook did not fail is returned as it is, nothing run.
    ///
    /// # Errors
    /// As [`create_worktree`](Self::create_worktree), whose path this takes
    /// (a worktree is made when the issue has none);
    /// [`Error::HookFailed`] when the hook fails again.
    pub async fn retry_post_create(&self, issue: &str) -> Result<super::Created> {
        let issue = IssueId::parse(issue)?;
        self.with_issue(&issue, super::CREATE_OPERATION, async || {
            if let Some(wt) = self.get(issue.as_str()).await?
                && wt.hook_failed
                && self.is_local(&wt)
            {
                self.forget_hook_runs(&wt).await?;
            }
            self.create_locked(&issue).await
        })
        .await
    }

    /// Marks the issue's worktree record `hook_failed`, or clears the mark.
    async fn set_hook_failed(&self, issue: &IssueId, failed: bool) -> Result<()> {
        let key = self.create_key(issue).record_key()?;
        let store = self.records.store();
        let Some(mut record) = store.load(&key).await? else {
            return Ok(());
        };
        let expected = record.revision;
        if let Some(result) = record.result.as_mut() {
            if result.get("hook_failed") == Some(&json!(failed)) {
                return Ok(());
            }
            result["hook_failed"] = json!(failed);
        }
        match store.compare_and_swap(expected, record).await {
            Ok(_) | Err(ff_traits::Error::PreconditionFailed { .. }) => Ok(()),
            Err(e) => Err(Error::from(e)),
        }
    }
}
