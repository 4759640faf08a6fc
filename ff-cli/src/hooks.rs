//! `[hooks]` in a repository's `ff.toml`, and their approval.
//!
//! A repository's hooks are commands its authors would have every user
//! run: like `direnv allow`, none runs until the user approves that exact
//! configuration (`ff hooks allow`), which records a hash of it, with the
//! repository's path, in the user's own configuration directory, never in
//! the repository. A changed configuration needs approval again. CI and
//! scripts approve explicitly with `FF_HOOKS=allow`; `--no-hooks` runs
//! without them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ff_worktree::hooks::{Hooks, OnHookFailure};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::output::{self, Failure};

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
    }

    /// Every command, by hook, for people.
    pub(crate) fn commands(&self) -> Vec<(&'static str, &str)> {
        [
            ("post_create", &self.post_create),
            ("pre_sync", &self.pre_sync),
            ("post_sync", &self.post_sync),
            ("pre_cleanup", &self.pre_cleanup),
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

    /// The library's hooks.
    pub(crate) fn to_hooks(&self) -> Result<Hooks, Failure> {
        let mut hooks = Hooks::default();
        hooks.post_create.clone_from(&self.post_create);
        hooks.pre_sync.clone_from(&self.pre_sync);
        hooks.post_sync.clone_from(&self.post_sync);
        hooks.pre_cleanup.clone_from(&self.pre_cleanup);
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

/// Where approvals live: `$FF_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/forgeflow`, else `~/.config/forgeflow`; the file
/// `approved-hooks`, one `<hash> <repository>` per line.
pub(crate) fn approvals_file() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = var("FF_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("forgeflow")))
        .or_else(|| var("HOME").map(|h| h.join(".config").join("forgeflow")))?;
    Some(dir.join("approved-hooks"))
}

/// Whether the user approved exactly this configuration for `repo`.
pub(crate) fn is_approved(repo: &Path, digest: &str) -> bool {
    let Some(file) = approvals_file() else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    let wanted = line(repo, digest);
    text.lines().any(|l| l == wanted)
}

fn line(repo: &Path, digest: &str) -> String {
    format!("{digest} {}", repo.display())
}

/// Records the user's approval of this configuration for `repo`,
/// replacing any earlier one for it; written whole and renamed into place.
pub(crate) fn approve(repo: &Path, digest: &str) -> Result<PathBuf, Failure> {
    let file = approvals_file().ok_or_else(|| {
        Failure::invalid(
            "no configuration directory to record the approval in: set HOME, XDG_CONFIG_HOME \
             or FF_CONFIG_DIR",
        )
    })?;
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| write_failed(dir, &e))?;
    let suffix = format!(" {}", repo.display());
    let mut lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.ends_with(&suffix))
        .map(str::to_owned)
        .collect();
    lines.push(line(repo, digest));
    let temp = dir.join(format!(".approved-hooks.{}", ff_traits::unique_id()));
    std::fs::write(&temp, lines.join("\n") + "\n").map_err(|e| write_failed(&temp, &e))?;
    std::fs::rename(&temp, &file).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        write_failed(&file, &e)
    })?;
    Ok(file)
}

fn write_failed(path: &Path, e: &std::io::Error) -> Failure {
    Failure::new(
        output::CANNOT_CREATE,
        "cannot_write",
        format!("cannot write {}: {e}", path.display()),
    )
}

/// The refusal for hooks nobody approved: shows them and how to approve.
pub(crate) fn not_approved(file: &HooksFile, repo: &Path) -> Failure {
    let mut text = format!(
        "{}/ff.toml has hooks that have not been approved on this machine; they would run:\n",
        repo.display()
    );
    for (hook, command) in file.commands() {
        text.push_str(&format!("  {hook}: {command}\n"));
    }
    text.push_str(
        "run `ff hooks allow` to approve them (again after any change), or pass --no-hooks \
         to go on without them (FF_HOOKS=allow approves for one run, for CI)",
    );
    Failure::new(output::REFUSED, "hooks_not_approved", text)
}

/// The default timeout, for `ff hooks`.
pub(crate) fn timeout_of(file: &HooksFile) -> Duration {
    file.to_hooks()
        .map_or(Hooks::default().timeout, |h| h.timeout)
}
