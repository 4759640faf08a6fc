//! The worktree tools: the worktree manager's operations, each answering
//! with the shape its command prints with `--json`.

use std::sync::Arc;
use std::time::Duration;

use ff_model::cli::{
    AgentStatusOfView, CleanupView, CreatedView, PrunedView, SyncView, WorktreeView,
};
use ff_model::mcp::{
    AgentStatusArgs, CleanupArgs, CreateArgs, NoArgs, PruneArgs, PrunedList, SyncArgs,
    SyncStrategyArg, TargetArgs, WorktreeList,
};
use ff_worktree::{Cleanup, PruneOptions, SyncOptions, SyncStrategy};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};

use crate::{ForgeFlowMcp, ToolError};

impl ForgeFlowMcp {
    /// The worktree `target` (an id or an issue) names.
    async fn find(&self, target: &str) -> Result<ff_worktree::Worktree, ToolError> {
        let manager = self.inner.repository.manager(None).await?;
        manager.get(target).await?.ok_or_else(|| {
            ToolError::new(
                "not_found",
                format!("no worktree for {target:?}; worktree_list shows what exists"),
            )
        })
    }
}

#[tool_router(router = worktree_router, vis = "pub(crate)")]
impl ForgeFlowMcp {
    /// Creates the issue's worktree, or gives the one it has: however many
    /// callers ask at once, an issue gets one worktree.
    #[tool(
        name = "worktree_create",
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn worktree_create(
        &self,
        Parameters(args): Parameters<CreateArgs>,
    ) -> Result<Json<CreatedView>, ToolError> {
        ff_worktree::IssueId::parse(&args.issue)?;
        let checkout = match &args.sparse {
            None => None,
            Some(dirs) => Some(ff_worktree::Checkout::sparse(
                dirs.iter()
                    .map(|d| ff_worktree::SparseDir::parse(d))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
        };
        let manager = self
            .inner
            .repository
            .manager_for(args.base.as_deref(), checkout)
            .await?;
        let created = manager.create_worktree(&args.issue).await?;
        if manager.config().pool_size > 0 && !created.reused {
            // The warm pool is refilled while the server goes on serving
            // (a server outlives the call; one fill runs per clone).
            let manager = Arc::clone(&manager);
            tokio::spawn(async move {
                if let Err(e) = manager.fill_pool().await {
                    tracing::warn!(error = %e, "the warm pool's refill failed");
                }
            });
        }
        Ok(Json(CreatedView::new(&created)))
    }

    /// One worktree, by its id (its directory's name) or its issue.
    #[tool(name = "worktree_get", annotations(read_only_hint = true))]
    async fn worktree_get(
        &self,
        Parameters(args): Parameters<TargetArgs>,
    ) -> Result<Json<WorktreeView>, ToolError> {
        Ok(Json(WorktreeView::new(&self.find(&args.target).await?)))
    }

    /// Every worktree of the repository.
    #[tool(name = "worktree_list", annotations(read_only_hint = true))]
    async fn worktree_list(
        &self,
        Parameters(_): Parameters<NoArgs>,
    ) -> Result<Json<WorktreeList>, ToolError> {
        let manager = self.inner.repository.manager(None).await?;
        let all = manager.list_worktrees().await?;
        Ok(Json(WorktreeList::new(
            all.iter().map(WorktreeView::new).collect(),
        )))
    }

    /// Fetches, then rebases (or merges) the worktree's branch onto its
    /// base.
    #[tool(name = "worktree_sync", annotations(destructive_hint = false))]
    async fn worktree_sync(
        &self,
        Parameters(args): Parameters<SyncArgs>,
    ) -> Result<Json<SyncView>, ToolError> {
        let manager = self.inner.repository.manager(None).await?;
        let mut options = SyncOptions::default().with_autostash(args.autostash);
        if let Some(s) = args.strategy {
            options = options.with_strategy(match s {
                SyncStrategyArg::Merge => SyncStrategy::Merge,
                _ => SyncStrategy::Rebase,
            });
        }
        let synced = manager.sync_worktree(&args.target, options).await?;
        Ok(Json(SyncView::new(&synced)))
    }

    /// Removes the worktree and its branch when nothing would be lost;
    /// refuses otherwise, saying what is at stake. `force` (only when the
    /// server allows it) keeps the work under `refs/ff/archive/` first.
    #[tool(name = "worktree_cleanup", annotations(destructive_hint = true))]
    async fn worktree_cleanup(
        &self,
        Parameters(args): Parameters<CleanupArgs>,
    ) -> Result<Json<CleanupView>, ToolError> {
        if args.force && !self.inner.options.allow_force {
            return Err(ToolError::new(
                "refused",
                "force is off on this server (start `ff mcp --allow-force` to allow it); \
                 commit and merge the work, then clean up without force",
            ));
        }
        let manager = self.inner.repository.manager(None).await?;
        let mode = if args.force {
            Cleanup::Force
        } else {
            Cleanup::Safe
        };
        let done = manager.cleanup_worktree(&args.target, mode).await?;
        Ok(Json(CleanupView::new(&done)))
    }

    /// Removes the worktrees that are merged (`merged`) or old
    /// (`older_than_seconds`) and have nothing to lose; `dry_run` only
    /// says which.
    #[tool(name = "worktree_prune", annotations(destructive_hint = true))]
    async fn worktree_prune(
        &self,
        Parameters(args): Parameters<PruneArgs>,
    ) -> Result<Json<PrunedList>, ToolError> {
        let manager = self.inner.repository.manager(None).await?;
        let mut options = PruneOptions::default()
            .with_merged(args.merged)
            .with_dry_run(args.dry_run);
        if let Some(s) = args.older_than_seconds {
            options = options.with_older_than(Duration::from_secs(s));
        }
        let all = manager.prune(options).await?;
        Ok(Json(PrunedList::new(
            all.iter().map(PrunedView::new).collect(),
        )))
    }

    /// Says what the agent in a worktree is doing (`working`, `waiting`
    /// for a person, `done`, `blocked`), with an optional one-line note:
    /// `ff list`, `ff top` and the dashboard show it.
    #[tool(
        name = "agent_status_set",
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn agent_status_set(
        &self,
        Parameters(args): Parameters<AgentStatusArgs>,
    ) -> Result<Json<AgentStatusOfView>, ToolError> {
        let manager = self.inner.repository.manager(None).await?;
        let status = ff_worktree::AgentStatus::new(args.state, args.note);
        let w = manager.set_agent_status(&args.target, status).await?;
        Ok(Json(AgentStatusOfView::new(&w)))
    }

    /// What the agent in a worktree last said it is doing.
    #[tool(name = "agent_status_get", annotations(read_only_hint = true))]
    async fn agent_status_get(
        &self,
        Parameters(args): Parameters<TargetArgs>,
    ) -> Result<Json<AgentStatusOfView>, ToolError> {
        Ok(Json(AgentStatusOfView::new(
            &self.find(&args.target).await?,
        )))
    }
}
