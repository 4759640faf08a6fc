//! `ff hooks [allow]`: the hooks in force and whether they are approved
//! here; `allow` approves exactly this configuration and the files it
//! runs, for this clone.

use ff_model::cli::{HookView, HooksView};
use ff_worktree::display::{escape, escape_path};

use crate::config::Settings;
use crate::output::{Failure, Out};

/// `ff hooks`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// `allow`: approve exactly this configuration for this repository.
    #[arg(value_enum)]
    pub(crate) action: Option<crate::cli::Approve>,
}

pub(crate) fn run(settings: &Settings, out: Out, args: &Args) -> Result<u8, Failure> {
    let action = args.action;
    let (top, common_dir) = super::trust::repository(settings)?;
    let Some(file) = settings.hooks_file() else {
        out.emit(&HooksView::none(top.to_string_lossy()), || {
            "no hooks in ff.toml".to_owned()
        });
        return Ok(0);
    };
    // Bad values are refused before anything is approved.
    file.to_hooks()?;
    // The user's own hooks need no approval; the repository's do.
    let digest = settings
        .trust
        .hooks_digest()
        .unwrap_or_else(|| file.digest());
    let recorded = match (action, settings.trust.hooks.is_some()) {
        (Some(crate::cli::Approve::Allow), true) => Some(crate::trust::approve(
            &[(crate::trust::Part::Hooks, digest.clone())],
            &common_dir,
        )?),
        _ => None,
    };
    let approved = recorded.is_some() || settings.trust.hooks_approved;
    let listed: Vec<HookView> = file
        .commands()
        .into_iter()
        .map(|(hook, command)| HookView::new(hook, command))
        .collect();
    out.emit(
        &HooksView::new(
            top.to_string_lossy(),
            listed,
            approved,
            digest.clone(),
            crate::hooks::timeout_of(file),
        ),
        || {
            let mut text = String::new();
            for (hook, command) in file.commands() {
                text.push_str(&format!("{hook}: {}\n", escape(command)));
            }
            text.push_str(&pinned_files(&settings.trust.pins));
            match &recorded {
                Some(at) => text.push_str(&format!(
                    "approved for {} (recorded in {})",
                    escape_path(&top),
                    escape_path(at)
                )),
                None if approved => text.push_str("approved on this machine"),
                None => text.push_str("not approved: `ff hooks allow` approves them"),
            }
            text
        },
    );
    Ok(0)
}

/// The files approved hooks run, one line each with its pinned digest, for
/// people (`ff hooks` and `ff trust` show them alike).
pub(super) fn pinned_files(pins: &[ff_worktree::hooks::PinnedFile]) -> String {
    pins.iter()
        .map(|pin| {
            format!(
                "  runs {} ({})\n",
                escape_path(pin.path()),
                pin.sha256()
                    .map_or("absent: a branch may not add it", |h| &h[..12])
            )
        })
        .collect()
}
