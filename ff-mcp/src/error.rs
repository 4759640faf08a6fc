//! A tool's failure: the error `ff --json` prints, as the call's text
//! content (JSON) with `isError` set.
//!
//! Not as structured content: clients check structured content against
//! the tool's output schema whether or not the call failed (the official
//! TypeScript SDK does), and an error is not the tool's output.

use ff_model::cli::{ErrorBody, ErrorView};
use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult};

/// A failed tool call: `kind` and message always, the facts of the error
/// where it has them, as `ff --json` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(Box<ErrorBody>);

impl ToolError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorBody::new(kind, message)))
    }

    /// The error `body` (as a command's failure carries it).
    #[must_use]
    pub fn from_body(body: ErrorBody) -> Self {
        Self(Box::new(body))
    }

    /// Bad arguments (`invalid_input`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid_input", message)
    }

    /// What went wrong.
    #[must_use]
    pub fn body(&self) -> &ErrorBody {
        &self.0
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.kind, self.0.message)
    }
}

impl std::error::Error for ToolError {}

impl From<ff_worktree::Error> for ToolError {
    fn from(e: ff_worktree::Error) -> Self {
        Self(Box::new(
            ErrorBody::new(e.kind().as_str(), e.to_string()).with_facts_of(&e),
        ))
    }
}

impl From<ff_traits::Error> for ToolError {
    fn from(e: ff_traits::Error) -> Self {
        ff_worktree::Error::from(e).into()
    }
}

impl From<ff_idempotency::Error> for ToolError {
    fn from(e: ff_idempotency::Error) -> Self {
        ff_worktree::Error::from(e).into()
    }
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        let view = serde_json::to_string(&ErrorView::new(*self.0))
            .map_err(|e| rmcp::ErrorData::internal_error(e.to_string(), None))?;
        Ok(CallToolResult::error(vec![rmcp::model::ContentBlock::text(view)]).into())
    }
}
