//! ForgeFlow's MCP server: what `ff` does, as tools a coding agent calls
//! through the Model Context Protocol, with ff's guarantees behind them.
//!
//! - **worktrees** ([`worktrees`]): `worktree_create`, `worktree_get`,
//!   `worktree_list`, `worktree_sync`, `worktree_cleanup`,
//!   `worktree_prune`: the worktree manager's own operations (one worktree
//!   per issue whoever asks, hooks only when approved, no work lost);
//! - **leases** ([`leases`]): `lock_acquire` gives a handle and a fencing
//!   token; the lock stays held across calls until `lock_release`, or
//!   until its TTL lapses without `lock_renew`; `lock_list`;
//! - **exactly-once** ([`operations`]): `operation_claim` names an
//!   operation and what it acts on; the caller that wins the claim does
//!   the work and reports it (`operation_complete`, `operation_fail`);
//!   every other caller hears that it runs, or what it gave;
//!   `operation_status`.
//!
//! Every tool's arguments and results are types of
//! [`ff_model`]; a failing tool answers with the error `ff --json` prints
//! (its `kind` and facts), as JSON text flagged `isError`.
//!
//! The server serves one repository through a [`Repository`], which opens
//! the worktree manager: the `ff mcp` command opens it under the same
//! trust rules as every command, so a call never runs a hook this machine
//! has not approved.
//!
//! ```
//! use std::sync::Arc;
//! use ff_mcp::{ForgeFlowMcp, Manager, Options, Repository, ToolError};
//!
//! /// Leases and claims only: no repository to serve worktrees from.
//! struct NoRepository;
//!
//! #[async_trait::async_trait]
//! impl Repository for NoRepository {
//!     async fn manager(&self, _base: Option<&str>) -> Result<Arc<Manager>, ToolError> {
//!         Err(ToolError::new("not_found", "this server serves no repository"))
//!     }
//! }
//!
//! let server = ForgeFlowMcp::new(
//!     NoRepository,
//!     Arc::new(ff_traits::MemoryLockProvider::default()),
//!     Arc::new(ff_traits::MemoryStore::default()),
//!     Options::default(),
//! );
//! let tools = server.tools();
//! assert!(tools.iter().any(|t| t.name == "lock_acquire" && t.output_schema.is_some()));
//! // Serve it with `server.serve_stdio().await`, or over any rmcp transport.
//! ```

#![forbid(unsafe_code)]

mod error;
pub mod leases;
pub mod operations;
pub mod worktrees;

use std::sync::Arc;

use async_trait::async_trait;
use ff_idempotency::{IdempotencyManager, ManagerConfig};
use ff_traits::{IdempotencyStorage, LockProvider};
use ff_worktree::WorktreeManager;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, tool_handler};

pub use error::ToolError;

/// The lock provider the tools use.
pub type Locks = Arc<dyn LockProvider>;
/// The store the tools use.
pub type Store = Arc<dyn IdempotencyStorage>;
/// The worktree manager the tools use.
pub type Manager = WorktreeManager<Locks, Store>;

/// Opens the worktree manager of the repository the server serves.
#[async_trait]
pub trait Repository: Send + Sync + 'static {
    /// The manager; with `base`, one whose new worktrees start from that
    /// ref.
    ///
    /// # Errors
    /// The error to answer the call with (the repository or a backend
    /// cannot be opened, the settings are not approved, …).
    async fn manager(&self, base: Option<&str>) -> Result<Arc<Manager>, ToolError>;

    /// The manager whose new worktrees start from `base` and check out
    /// `checkout` (`None`: as configured). The default serves only
    /// `None`, and refuses a sparse request rather than ignore it.
    ///
    /// # Errors
    /// As [`manager`](Self::manager); `invalid_input` for a checkout this
    /// server cannot make.
    async fn manager_for(
        &self,
        base: Option<&str>,
        checkout: Option<ff_worktree::Checkout>,
    ) -> Result<Arc<Manager>, ToolError> {
        match checkout {
            None => self.manager(base).await,
            Some(_) => Err(ToolError::invalid(
                "this server makes no sparse worktrees; call worktree_create without sparse",
            )),
        }
    }
}

/// What the server allows beyond the safe defaults.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Options {
    /// `worktree_cleanup` may force (remove a worktree with unmerged work,
    /// archived first). Off unless the server was started with it.
    pub allow_force: bool,
}

impl Options {
    /// Sets [`allow_force`](Self::allow_force).
    #[must_use]
    pub fn with_allow_force(mut self, allow: bool) -> Self {
        self.allow_force = allow;
        self
    }
}

/// The MCP server: a [`ServerHandler`] to serve over any rmcp transport,
/// or over stdio with [`serve_stdio`](Self::serve_stdio).
#[derive(Clone)]
pub struct ForgeFlowMcp {
    inner: Arc<Inner>,
    tool_router: ToolRouter<Self>,
}

struct Inner {
    repository: Box<dyn Repository>,
    locks: Locks,
    claims: IdempotencyManager<Store>,
    options: Options,
    leases: leases::Leases,
    held_claims: operations::Claims,
}

impl std::fmt::Debug for ForgeFlowMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeFlowMcp")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl ForgeFlowMcp {
    /// A server for `repository`, taking leases on `locks` and keeping
    /// claims in `store`.
    pub fn new(repository: impl Repository, locks: Locks, store: Store, options: Options) -> Self {
        Self {
            inner: Arc::new(Inner {
                repository: Box::new(repository),
                locks,
                claims: IdempotencyManager::new(store, ManagerConfig::default()),
                options,
                leases: leases::Leases::default(),
                held_claims: operations::Claims::default(),
            }),
            tool_router: Self::worktree_router() + Self::lease_router() + Self::operation_router(),
        }
    }

    /// The tools, as `tools/list` gives them.
    #[must_use]
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }

    /// Serves MCP over stdin and stdout until the client closes them.
    /// Leases still held then are released.
    ///
    /// # Errors
    /// When the session cannot start (the client's first messages are not
    /// MCP).
    pub async fn serve_stdio(self) -> Result<(), ToolError> {
        let leases = Arc::clone(&self.inner);
        let service = self
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| ToolError::new("mcp", format!("cannot start the MCP session: {e}")))?;
        let ended = service.waiting().await;
        leases.leases.release_all().await;
        ended
            .map(|_| ())
            .map_err(|e| ToolError::new("mcp", format!("the MCP session failed: {e}")))
    }
}

/// The output schema of a result that is one of several objects (a
/// tagged enum): its root says `"type": "object"` besides the `oneOf`, as
/// clients of protocol versions before 2026 require of every output schema
/// (rmcp leaves a tool's output schema out for them otherwise).
pub(crate) fn object_output<T: schemars::JsonSchema + 'static>() -> Arc<rmcp::model::JsonObject> {
    let mut schema = (*rmcp::handler::server::tool::schema_for_output::<T>()).clone();
    schema.insert("type".to_owned(), serde_json::Value::from("object"));
    Arc::new(schema)
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ForgeFlowMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("forgeflow", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "ForgeFlow: one git worktree per issue for many agents at once, locks held \
                 across calls (lock_acquire gives a lease handle and a fencing token; renew \
                 it before its TTL lapses, release it when done), and exactly-once \
                 operations (operation_claim: do the work only when the answer is \
                 'claimed', then report it with operation_complete or operation_fail).",
            )
    }
}
