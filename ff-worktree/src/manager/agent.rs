//! The agent status of a worktree: what the agent working in it says it
//! is doing, kept in the worktree's own record so every process and
//! server sharing the store sees it.

use ff_traits::{IdempotencyStorage, LockProvider, RecordStatus};
use serde_json::json;

use super::{AgentStatus, MAX_AGENT_NOTE_LEN, Worktree, WorktreeManager};
use crate::{Error, Result};

/// How many times a status write retries when another write to the
/// record came between its read and its write.
const RACE_ROUNDS: usize = 16;

impl<L, S> WorktreeManager<L, S>
where
    L: LockProvider,
    S: IdempotencyStorage,
{
    /// Sets the agent status of the worktree `target` (an id or an issue)
    /// names; returns the worktree as it is now.
    ///
    /// A compare-and-swap on the worktree's record, so it never undoes a
    /// change another process made to it meanwhile; it takes no lock, so
    /// an agent's status call never waits behind a sync or cleanup.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) for a note longer
    /// than [`MAX_AGENT_NOTE_LEN`] or with control characters, or a bad
    /// target; [`NotFound`](ff_traits::Error::NotFound) when no worktree
    /// answers to it; what the store reports.
    pub async fn set_agent_status(&self, target: &str, status: AgentStatus) -> Result<Worktree> {
        if let Some(note) = &status.note {
            if note.len() > MAX_AGENT_NOTE_LEN {
                return Err(Error::invalid_input(
                    "agent status note",
                    format!("{} bytes; at most {MAX_AGENT_NOTE_LEN}", note.len()),
                ));
            }
            if note.chars().any(char::is_control) {
                return Err(Error::invalid_input(
                    "agent status note",
                    "it holds control characters (a newline, say); write one line",
                ));
            }
        }
        let Some(found) = self.get(target).await? else {
            return Err(Error::not_found(format!("worktree {target:?}")));
        };
        let issue = crate::IssueId::parse(&found.issue)?;
        let key = self.create_key(&issue).record_key()?;
        let store = self.records.store();
        for _ in 0..RACE_ROUNDS {
            let Some(mut record) = store.load(&key).await? else {
                break;
            };
            if record.status != RecordStatus::Completed {
                break;
            }
            let expected = record.revision;
            if let Some(result) = record.result.as_mut() {
                result["agent_status"] = json!(status);
            }
            match store.compare_and_swap(expected, record).await {
                Ok(stored) => {
                    let wt = self.worktree_of(stored.result.as_ref())?;
                    tracing::info!(id = %wt.id, state = status.state.as_str(), "agent status set");
                    return Ok(self.with_status(wt));
                }
                Err(ff_traits::Error::PreconditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::not_found(format!(
            "worktree {target:?} (it was removed meanwhile)"
        )))
    }
}
