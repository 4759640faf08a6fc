//! `ff mcp`: the repository served to coding agents over the Model
//! Context Protocol (stdio), through `ff-mcp`.

use std::sync::Arc;

use async_trait::async_trait;
use ff_mcp::{ForgeFlowMcp, Manager, Options, ToolError};
use tokio::sync::OnceCell;

use crate::config::Settings;
use crate::output::Failure;

/// `ff mcp`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Let `worktree_cleanup` force: remove a worktree with unmerged work
    /// (kept under refs/ff/archive/ first). Off by default: an agent's
    /// call never discards work without this.
    #[arg(long)]
    pub(crate) allow_force: bool,
}

/// The repository as every command opens it: its approved settings, its
/// backends, hooks only when approved.
struct CliRepository {
    settings: Settings,
    /// The manager for the configured base, opened at the first call.
    default: OnceCell<Arc<Manager>>,
}

impl CliRepository {
    async fn open(
        &self,
        base: Option<&str>,
        checkout: Option<ff_worktree::Checkout>,
    ) -> Result<Arc<Manager>, ToolError> {
        let mut config = self
            .settings
            .worktree_config_with_hooks()
            .map_err(tool_error)?;
        if let Some(b) = base {
            config = config.with_base_ref(b);
        }
        if let Some(checkout) = checkout {
            config = config.with_checkout(checkout);
        }
        let manager = self
            .settings
            .manager_with(config)
            .await
            .map_err(tool_error)?;
        Ok(Arc::new(manager))
    }
}

#[async_trait]
impl ff_mcp::Repository for CliRepository {
    async fn manager(&self, base: Option<&str>) -> Result<Arc<Manager>, ToolError> {
        match base {
            Some(b) => self.open(Some(b), None).await,
            None => self
                .default
                .get_or_try_init(|| self.open(None, None))
                .await
                .cloned(),
        }
    }

    async fn manager_for(
        &self,
        base: Option<&str>,
        checkout: Option<ff_worktree::Checkout>,
    ) -> Result<Arc<Manager>, ToolError> {
        match checkout {
            None => self.manager(base).await,
            Some(checkout) => self.open(base, Some(checkout)).await,
        }
    }
}

fn tool_error(f: Failure) -> ToolError {
    ToolError::from_body(*f.error)
}

pub(crate) async fn run(settings: Settings, args: Args) -> Result<u8, Failure> {
    // The backends are opened before the session starts: a bad one is an
    // error on stderr and an exit code, as for every command.
    let locks = settings.locks().await?;
    let store = settings.store().await?;
    let repository = CliRepository {
        settings,
        default: OnceCell::new(),
    };
    let server = ForgeFlowMcp::new(
        repository,
        locks,
        store,
        Options::default().with_allow_force(args.allow_force),
    );
    server
        .serve_stdio()
        .await
        .map_err(|e| Failure::new(crate::output::Problem::ServeFailed, e.to_string()))?;
    Ok(0)
}
