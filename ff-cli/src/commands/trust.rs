//! `ff trust [allow]`: what the repository's `ff.toml` would decide, and
//! whether this machine approved it.

use std::path::PathBuf;

use ff_model::cli::{HookView, PinView, TrustView};
use ff_worktree::display::{escape, escape_path};

use crate::config::Settings;
use crate::output::{Failure, Out};
use crate::trust::Part;

/// The repository's main working tree and common directory, or 65.
pub(super) fn repository(settings: &Settings) -> Result<(PathBuf, PathBuf), Failure> {
    match (settings.toplevel(), settings.common_dir()) {
        (Some(top), Some(common)) => Ok((top.to_path_buf(), common.to_path_buf())),
        _ => Err(Failure::invalid(format!(
            "{} is not inside a git repository",
            escape_path(&settings.dir)
        ))),
    }
}

/// `ff trust`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// `allow`: approve exactly these settings and hooks for this clone.
    #[arg(value_enum)]
    pub(crate) action: Option<crate::cli::Approve>,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    let action = args.action;
    let (top, common_dir) = repository(settings)?;
    let state = &settings.trust;
    let mut parts: Vec<(Part, String)> = state
        .steering
        .digests()
        .into_iter()
        .map(|(key, digest)| (Part::Setting(key), digest))
        .collect();
    if let Some(digest) = state.hooks_digest() {
        parts.push((Part::Hooks, digest));
    }
    let recorded = match action {
        Some(crate::cli::Approve::Allow) if !parts.is_empty() => {
            Some(crate::trust::approve(&parts, &common_dir)?)
        }
        _ => None,
    };
    // Approving the settings adopts the state directory they name (or
    // that flags, variables or the user's config name), records and all.
    if matches!(action, Some(crate::cli::Approve::Allow)) {
        let state = settings.state_dir().await?;
        if !state.starts_with(&common_dir) && state.is_dir() {
            crate::trust::vouch_for_store(&state, crate::trust::Adopt::Yes)?;
        }
    }
    let settings_approved = recorded.is_some() || state.settings_approved();
    let hooks_approved = recorded.is_some() || state.hooks_approved;
    let entries = state.steering.entries();
    let hooks: Vec<(&str, &str)> = state
        .hooks
        .as_ref()
        .map(|h| h.commands())
        .unwrap_or_default();
    out.emit(
        &TrustView::new(
            top.to_string_lossy(),
            common_dir.to_string_lossy(),
            state.steering.view(),
            hooks
                .iter()
                .map(|(hook, command)| HookView::new(*hook, *command))
                .collect(),
            state
                .pins
                .iter()
                .map(|p| PinView::new(p.path().to_string_lossy(), p.sha256().map(str::to_owned)))
                .collect(),
            (settings_approved, hooks_approved),
        ),
        || {
            if entries.is_empty() && hooks.is_empty() {
                return "this repository's ff.toml sets nothing that needs approval".to_owned();
            }
            let mut text = String::new();
            for (key, value) in &entries {
                text.push_str(&format!("{key} = {value}\n"));
            }
            for (hook, command) in &hooks {
                text.push_str(&format!("hook {hook}: {}\n", escape(command)));
            }
            text.push_str(&super::hooks::pinned_files(&state.pins));
            match &recorded {
                Some(at) => text.push_str(&format!(
                    "approved for {} (recorded in {})",
                    escape_path(&common_dir),
                    escape_path(at)
                )),
                None if settings_approved && hooks_approved => {
                    text.push_str("approved on this machine");
                }
                None => text.push_str("not approved: `ff trust allow` approves them"),
            }
            text
        },
    );
    Ok(0)
}
