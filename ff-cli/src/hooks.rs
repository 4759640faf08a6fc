//! `[hooks]` in `ff.toml` (or the user's `config.toml`).
//!
//! A repository's hooks are commands its authors would have every user
//! run: none runs until the user approves that exact configuration and
//! the files it runs ([`crate::trust`]). CI and scripts approve
//! explicitly with `FF_HOOKS=allow`; `--no-hooks` runs without them.

use std::time::Duration;

use ff_worktree::hooks::{Hooks, OnHookFailure};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::output::Failure;

/// `[hooks]`: every key optional; an unknown one (a misspelt hook) is an
/// error.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HooksFile {
    #[serde(default)]
    post_create: Vec<String>,
    #[serde(default)]
    pre_sync: Vec<String>,
    #[serde(default)]
    post_sync: Vec<String>,
    #[serde(default)]
    pre_cleanup: Vec<String>,
    /// Left out of the approval hash when empty, so approvals recorded
    /// before the warm pool existed still count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pool_prepare: Vec<String>,
    timeout: Option<String>,
    on_failure: Option<OnFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum OnFailure {
    Rollback,
    Keep,
}

impl HooksFile {
    /// Whether no hook command is configured.
    pub(crate) fn is_empty(&self) -> bool {
        self.post_create.is_empty()
            && self.pre_sync.is_empty()
            && self.post_sync.is_empty()
            && self.pre_cleanup.is_empty()
            && self.pool_prepare.is_empty()
    }

    /// Every command, by hook, for people.
    pub(crate) fn commands(&self) -> Vec<(&'static str, &str)> {
        [
            ("post_create", &self.post_create),
            ("pre_sync", &self.pre_sync),
            ("post_sync", &self.post_sync),
            ("pre_cleanup", &self.pre_cleanup),
            ("pool_prepare", &self.pool_prepare),
        ]
        .into_iter()
        .flat_map(|(hook, commands)| commands.iter().map(move |c| (hook, c.as_str())))
        .collect()
    }

    /// The hash approval records: of the whole table, so any change (a
    /// command, the timeout, the failure policy) needs approval again.
    pub(crate) fn digest(&self) -> String {
        let canonical = serde_json::to_string(self).unwrap_or_default();
        ff_traits::hex_lower(&Sha256::digest(canonical.as_bytes()))
    }

    /// The hash the approval of these hooks records: of the table and
    /// of the content of every file its commands run (`pins`). Without
    /// such files it is [`digest`](Self::digest), which earlier releases
    /// recorded, so their approvals still count.
    pub(crate) fn digest_with(&self, pins: &[ff_worktree::hooks::PinnedFile]) -> String {
        if pins.is_empty() {
            return self.digest();
        }
        let mut text = self.digest();
        for pin in pins {
            text.push_str(&format!(
                "\n{} {}",
                pin.sha256().unwrap_or("absent"),
                pin.path().display()
            ));
        }
        ff_traits::hex_lower(&Sha256::digest(text.as_bytes()))
    }

    /// The library's hooks.
    pub(crate) fn to_hooks(&self) -> Result<Hooks, Failure> {
        let mut hooks = Hooks::default();
        hooks.post_create.clone_from(&self.post_create);
        hooks.pre_sync.clone_from(&self.pre_sync);
        hooks.post_sync.clone_from(&self.post_sync);
        hooks.pre_cleanup.clone_from(&self.pre_cleanup);
        hooks.pool_prepare.clone_from(&self.pool_prepare);
        if let Some(t) = &self.timeout {
            let t = humantime::parse_duration(t).map_err(|e| {
                Failure::invalid(format!("ff.toml: hooks.timeout {t:?}: {e} (say 90s, 10m)"))
            })?;
            if t.is_zero() {
                return Err(Failure::invalid(
                    "ff.toml: hooks.timeout must be longer than 0",
                ));
            }
            hooks.timeout = t;
        }
        if self.on_failure == Some(OnFailure::Keep) {
            hooks.on_failure = OnHookFailure::Keep;
        }
        Ok(hooks)
    }
}

/// The default timeout, for `ff hooks`.
pub(crate) fn timeout_of(file: &HooksFile) -> Duration {
    file.to_hooks()
        .map_or(Hooks::default().timeout, |h| h.timeout)
}
