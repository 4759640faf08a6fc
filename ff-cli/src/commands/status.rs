//! `ff status`: what the agent working in a worktree says it is doing.

use clap::ValueEnum;
use ff_model::cli::AgentStatusOfView;
use ff_worktree::{AgentState, AgentStatus, Worktree};

use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff status`'s arguments.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Option<StatusCommand>,
    /// The worktree: an issue, worktree id (its directory's name), branch or path
    /// [default: the worktree you are in].
    pub(crate) target: Option<String>,
}

/// `ff status set`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum StatusCommand {
    /// Say what the agent in a worktree is doing: shown by `ff list`,
    /// `ff top`, the dashboard and its events.
    Set {
        /// The state.
        #[arg(value_enum)]
        state: State,
        /// One line of context (at most 500 bytes).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// A worktree id or an issue [default: the worktree you are
        /// in].
        target: Option<String>,
        /// Outside one of ff's worktrees (and with no target), do nothing
        /// and exit 0: for agents' hooks, which run wherever the agent is.
        #[arg(long)]
        if_in_worktree: bool,
    },
}

/// The states an agent may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum State {
    /// At work.
    Working,
    /// Waiting for a person's input.
    Waiting,
    /// Finished.
    Done,
    /// Stuck on something it cannot settle.
    Blocked,
}

impl From<State> for AgentState {
    fn from(s: State) -> Self {
        match s {
            State::Working => Self::Working,
            State::Waiting => Self::Waiting,
            State::Done => Self::Done,
            State::Blocked => Self::Blocked,
        }
    }
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let manager = settings.manager().await?;
    let (target, set, if_in_worktree) = match args.command {
        Some(StatusCommand::Set {
            state,
            note,
            target,
            if_in_worktree,
        }) => (
            target,
            Some(AgentStatus::new(state.into(), note)),
            if_in_worktree,
        ),
        None => (args.target, None, false),
    };
    let found = match crate::target::resolve(&manager, target.as_deref()).await {
        Ok(w) => w,
        // Agents' hooks run wherever the agent is: outside every worktree,
        // there is nothing to say.
        Err(e) if target.is_none() && if_in_worktree && e.code == 2 => return Ok(0),
        Err(e) => return Err(e),
    };
    let w = match set {
        Some(status) => manager.set_agent_status(&found.issue, status).await?,
        None => found,
    };
    out.emit(&AgentStatusOfView::new(&w), || match &w.agent_status {
        None => format!("{} ({}): no agent status yet", w.issue, w.id),
        Some(s) => format!(
            "{} ({}): {} (set {}){}",
            w.issue,
            w.id,
            s.state.as_str(),
            output::ago(s.since),
            s.note
                .as_ref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        ),
    });
    Ok(0)
}

/// An agent status for a table cell.
pub(crate) fn cell(w: &Worktree) -> String {
    w.agent_status.as_ref().map_or_else(
        || "-".to_owned(),
        |s| format!("{} {}", s.state.as_str(), output::ago(s.since)),
    )
}
