//! `ff create`: the worktree of an issue, made once.

use ff_model::cli::CreatedView;

use crate::config::Settings;
use crate::output::{Failure, Out, Problem, Stage};
use ff_worktree::display::escape;

/// `ff create`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The issue id: [A-Za-z0-9][A-Za-z0-9._-]{0,63}, no "..", not ending in ".lock".
    pub(crate) issue: String,
    /// What the new branch starts from [default: the branch HEAD points at].
    #[arg(long, value_name = "REF")]
    pub(crate) base: Option<String>,
    /// Print only the worktree's path, for `cd "$(ff create 12 --print-path)"`.
    #[arg(long, conflicts_with = "json")]
    pub(crate) print_path: bool,
    /// Run post_create again in a worktree whose post_create failed and
    /// was kept (`on_failure = "keep"`); without it, such a worktree is a
    /// failure (exit 73), as it was when it was made.
    #[arg(long)]
    pub(crate) retry_hooks: bool,
    /// Check out only the top-level files and these directories, whole
    /// (git's cone mode; relative to the repository's top). Overrides
    /// `sparse` in ff.toml. `git sparse-checkout add DIR` widens it later.
    #[arg(long, value_name = "DIR", num_args = 1.., value_parser = sparse_dir,
          conflicts_with_all = ["no_checkout", "no_sparse"])]
    pub(crate) sparse: Vec<ff_worktree::SparseDir>,
    /// Check out only the top-level files: a sparse worktree with no
    /// directories yet, for `git sparse-checkout add DIR` to fill.
    #[arg(long, conflicts_with = "no_sparse")]
    pub(crate) no_checkout: bool,
    /// Check out every file, whatever `sparse` in ff.toml says (and even
    /// when the main worktree is sparse, whose set git would copy).
    #[arg(long)]
    pub(crate) no_sparse: bool,
}

/// `--sparse`'s values, checked as clap parses them (a bad one is a usage
/// error, 2).
fn sparse_dir(dir: &str) -> Result<ff_worktree::SparseDir, String> {
    ff_worktree::SparseDir::parse(dir).map_err(|e| e.to_string())
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let Args {
        issue,
        base,
        print_path,
        retry_hooks,
        sparse,
        no_checkout,
        no_sparse,
    } = args;
    let issue = issue.as_str();
    // Reject a bad id before touching anything, backends included.
    ff_worktree::IssueId::parse(issue)?;
    let checkout = if no_sparse {
        Some(ff_worktree::Checkout::Full)
    } else if no_checkout {
        Some(ff_worktree::Checkout::sparse([]))
    } else if sparse.is_empty() {
        None
    } else {
        Some(ff_worktree::Checkout::sparse(sparse))
    };
    let mut config = settings.worktree_config_with_hooks()?;
    if let Some(b) = base {
        config = config.with_base_ref(b);
    }
    if let Some(checkout) = checkout {
        config = config.with_checkout(checkout);
    }
    let manager = settings.manager_with(config).await?;
    let created = if retry_hooks {
        manager.retry_post_create(issue).await
    } else {
        manager.create_worktree(issue).await
    }
    .map_err(|e| Failure::of(e, Stage::Create))?;
    let w = &created.worktree;
    refuse_hook_failed(&created)?;
    if print_path {
        println!("{}", w.path.display());
        return Ok(0);
    }
    out.emit(&CreatedView::new(&created), || {
        let mut text = if created.reused {
            format!("{} already has worktree {}", w.issue, w.id)
        } else {
            format!("created worktree {}", w.id)
        };
        text.push_str(&format!(
            "\n  path    {}\n  branch  {} (from {})",
            w.path.display(),
            w.branch,
            w.base
        ));
        text.push_str(&super::show::slot_and_port(w));
        if w.hook_failed {
            text.push_str(
                "\n  status  hook_failed: its post_create hook failed; kept for inspection",
            );
        }
        if let Some(kept) = &created.set_aside {
            text.push_str(&format!(
                "\n  kept    files found at the old worktree path, which git no longer listed: {}",
                ff_worktree::display::escape_path(kept)
            ));
        }
        for e in &created.evicted {
            text.push_str(&format!("\n  evicted {} to stay within the limit", e.id));
        }
        text
    });
    Ok(0)
}

/// A worktree whose `post_create` failed when it was made, asked for
/// again: what an agent would build on is not ready, so this is no
/// success, whoever asks (`ff create`, `ff switch --create`).
pub(crate) fn refuse_hook_failed(created: &ff_worktree::Created) -> Result<(), Failure> {
    let w = &created.worktree;
    if created.reused && w.hook_failed {
        return Err(Failure::new(
            Problem::HookFailed,
            format!(
                "issue {}'s worktree {} exists, but its post_create hook failed when it was \
                 made (on_failure = \"keep\" kept it as it was): nothing was run now. Fix what \
                 failed, then `ff create {} --retry-hooks` runs the hook again, or `ff cleanup {}` \
                 removes the worktree. It is at {}",
                escape(&w.issue),
                w.id,
                escape(&w.issue),
                escape(&w.issue),
                ff_worktree::display::escape_path(&w.path)
            ),
        ));
    }
    Ok(())
}
