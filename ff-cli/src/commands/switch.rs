//! `ff switch`: where to go to work on a worktree (or back to the main
//! tree). A process cannot change its shell's directory: `ff shell-init`
//! wraps `ff switch` in the shell so that it does.

use ff_model::cli::SwitchView;

use crate::config::Settings;
use crate::output::{Failure, Out, Stage};

/// `ff switch`'s arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
    ff switch 12             the worktree of issue 12 (id, branch or path work too)
    ff switch --create 12    the same, made first if issue 12 has none
    ff switch -              back to the main working tree
    eval \"$(ff shell-init bash)\"   then `ff switch` changes directory")]
pub(crate) struct Args {
    /// The worktree: an issue, worktree id (its directory's name), branch or path; `-` for
    /// the main working tree.
    pub(crate) target: String,
    /// Make the issue's worktree if it has none (TARGET is then an issue).
    #[arg(short, long)]
    pub(crate) create: bool,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let view = if args.target == "-" {
        let manager = settings.manager().await?;
        SwitchView::main_tree(manager.main_tree())
    } else if args.create {
        ff_worktree::IssueId::parse(&args.target)?;
        let manager = settings
            .manager_with(settings.worktree_config_with_hooks()?)
            .await?;
        let created = manager
            .create_worktree(&args.target)
            .await
            .map_err(|e| Failure::of(e, Stage::Create))?;
        super::create::refuse_hook_failed(&created)?;
        SwitchView::worktree(&created.worktree, !created.reused)
    } else {
        let manager = settings.manager().await?;
        let w = crate::target::resolve(&manager, Some(&args.target)).await?;
        SwitchView::worktree(&w, false)
    };
    if view.created {
        eprintln!(
            "ff: created worktree {}",
            view.id.as_deref().unwrap_or_default()
        );
    }
    out.emit(&view, || view.path.clone());
    Ok(0)
}
