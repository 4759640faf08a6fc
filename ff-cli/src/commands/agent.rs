//! `ff agent`: ff behind coding agents' own hooks.
//!
//! - `ff agent claude worktree-create` / `worktree-remove`: Claude Code's
//!   `WorktreeCreate` and `WorktreeRemove` hooks, which replace its own
//!   `git worktree add` and removal: the issue's worktree is made (or
//!   cleaned up) through the worktree manager, with ff's hooks, includes,
//!   slots and no-loss cleanup.
//! - `ff agent install claude`: merges those hooks into the project's
//!   `.claude/settings.json`, keeping everything already there.
//!
//! The hooks read Claude Code's JSON on stdin and print on stdout only
//! what the hook contract expects (the worktree's absolute path, on
//! create); everything else goes to stderr.

use std::io::Read;
use std::path::{Path, PathBuf};

use ff_worktree::display::escape_path;
use serde_json::Value;

use crate::cli::Global;
use crate::config::{Review, Settings};
use crate::output::{Failure, Out, Stage};

mod install;

/// `ff agent`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: AgentCommand,
}

/// What `ff agent` does.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AgentCommand {
    /// Claude Code's worktree hooks (run by Claude Code, JSON on stdin).
    #[command(subcommand)]
    Claude(ClaudeHook),
    /// Merge ff's hooks into an agent's settings, keeping what is there.
    Install(install::Args),
}

/// Claude Code's hook events ff answers.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ClaudeHook {
    /// `WorktreeCreate`: makes (or finds) the issue's worktree; prints its
    /// absolute path alone on stdout.
    ///
    /// The worktree's name (`name`, or `worktree_name`) is the issue: a
    /// character outside A-Z a-z 0-9 . _ - becomes '-', leading and
    /// trailing '-' and '.' go, and it is cut at 64 characters. `base_commit`
    /// (or `base_ref`) is the base; `cwd` is where the repository is.
    WorktreeCreate,
    /// `WorktreeRemove`: cleans up the worktree at `worktree_path`,
    /// refusing (exit 77, reason on stderr) when work would be lost.
    WorktreeRemove(RemoveArgs),
}

/// `ff agent claude worktree-remove`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct RemoveArgs {
    /// Remove it even with unmerged work (kept under refs/ff/archive/
    /// first): put it in the hook's command to make it the configuration.
    #[arg(long)]
    pub(crate) force: bool,
}

/// Runs `ff agent`. The hooks find their repository through the payload's
/// `cwd`, so settings are loaded here, not before.
pub(crate) async fn run(global: &Global, out: Out, args: Args) -> Result<u8, Failure> {
    match args.command {
        // The agent waits for its hook: a removal (or a create's eviction)
        // leaves the deletion of the files to a process of its own, as
        // `ff cleanup` does, started once the hook's answer is written.
        AgentCommand::Claude(ClaudeHook::WorktreeCreate) => {
            let payload = read_payload()?;
            let mut settings = settings_at(global, payload_dir(&payload)).await?;
            settings.defer_deletion = cfg!(unix);
            settings.refill_pool = true;
            let done = worktree_create(&settings, &payload).await;
            settings.start_deferred_deletion();
            settings.start_pool_fill();
            done
        }
        AgentCommand::Claude(ClaudeHook::WorktreeRemove(remove)) => {
            let payload = read_payload()?;
            let path = string(&payload, &["worktree_path"]).ok_or_else(|| {
                Failure::invalid("the hook's JSON has no worktree_path: which worktree to remove?")
            })?;
            let dir = payload_dir(&payload).or_else(|| Some(PathBuf::from(&path)));
            let mut settings = settings_at(global, dir).await?;
            settings.defer_deletion = cfg!(unix);
            let done = worktree_remove(&settings, Path::new(&path), remove.force).await;
            settings.start_deferred_deletion();
            done
        }
        AgentCommand::Install(install) => {
            let settings = Settings::load(global, Review::Enforce).await?;
            install::run(&settings, out, &install)
        }
    }
}

/// The hook's JSON: one object on stdin (read up to its end, not to EOF).
fn read_payload() -> Result<Value, Failure> {
    let stdin = std::io::stdin().lock();
    let mut values =
        serde_json::Deserializer::from_reader(stdin.take(1 << 20)).into_iter::<Value>();
    match values.next() {
        Some(Ok(v @ Value::Object(_))) => Ok(v),
        Some(Ok(_)) => Err(Failure::invalid(
            "the hook's input is JSON but not an object",
        )),
        Some(Err(e)) => Err(Failure::invalid(format!(
            "the hook's input is not JSON: {e}"
        ))),
        None => Err(Failure::invalid(
            "no hook input on stdin: Claude Code sends its JSON there",
        )),
    }
}

/// The first of `keys` that holds a string.
fn string(payload: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

fn payload_dir(payload: &Value) -> Option<PathBuf> {
    string(payload, &["cwd"]).map(PathBuf::from)
}

/// The settings of the repository at `dir` (an explicit `--repo` wins).
async fn settings_at(global: &Global, dir: Option<PathBuf>) -> Result<Settings, Failure> {
    let mut at = global.clone();
    if at.repo.is_none() {
        at.repo = dir;
    }
    Settings::load(&at, Review::Enforce).await
}

/// The issue a worktree name stands for (see `ClaudeHook::WorktreeCreate`).
fn issue_for(name: &str) -> Result<String, Failure> {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut issue = mapped.replace("..", "-");
    issue = issue
        .trim_matches(|c| c == '-' || c == '.' || c == '_')
        .chars()
        .take(ff_worktree::MAX_ISSUE_ID_LEN)
        .collect();
    while issue.ends_with('.') || issue.ends_with(".lock") {
        issue = issue
            .trim_end_matches(".lock")
            .trim_end_matches('.')
            .to_owned();
    }
    ff_worktree::IssueId::parse(&issue).map_err(|_| {
        Failure::invalid(format!(
            "the worktree name {name:?} gives no issue id; name the worktree with letters or \
             digits"
        ))
    })?;
    Ok(issue)
}

async fn worktree_create(settings: &Settings, payload: &Value) -> Result<u8, Failure> {
    let name = string(payload, &["name", "worktree_name"]).ok_or_else(|| {
        Failure::invalid("the hook's JSON has no name (or worktree_name) for the worktree")
    })?;
    let issue = issue_for(&name)?;
    let mut config = settings.worktree_config_with_hooks()?;
    if let Some(base) = string(payload, &["base_commit", "base_ref"]) {
        config = config.with_base_ref(base);
    }
    let manager = settings.manager_with(config).await?;
    let created = manager
        .create_worktree(&issue)
        .await
        .map_err(|e| Failure::of(e, Stage::Create))?;
    let w = &created.worktree;
    eprintln!(
        "ff: {} {} for issue {issue} (worktree name {name:?})",
        if created.reused { "reusing" } else { "created" },
        w.id
    );
    // The hook's contract: the absolute path, alone, on stdout.
    let path = std::path::absolute(&w.path).unwrap_or_else(|_| w.path.clone());
    println!("{}", path.display());
    Ok(0)
}

async fn worktree_remove(settings: &Settings, path: &Path, force: bool) -> Result<u8, Failure> {
    let manager = settings.manager_running_hooks().await?;
    let all = manager.list_worktrees().await?;
    // Worktrees' paths are canonical; the hook's may not be.
    let wanted = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Some(w) = all.iter().find(|w| w.path == wanted || w.path == path) else {
        eprintln!(
            "ff: no worktree of ff's at {}; nothing to remove",
            escape_path(path)
        );
        return Ok(0);
    };
    let mode = if force {
        ff_worktree::Cleanup::Force
    } else {
        ff_worktree::Cleanup::Safe
    };
    let done = manager.cleanup_worktree(&w.id, mode).await?;
    match (&done.removed, &done.archived_at) {
        (Some(w), Some(a)) => eprintln!("ff: removed {}; its commits are kept at {a}", w.id),
        (Some(w), None) => eprintln!("ff: removed {}", w.id),
        (None, _) => eprintln!("ff: nothing to remove"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::issue_for;

    #[test]
    fn a_worktree_name_maps_to_an_issue_by_the_stated_rule() {
        for (name, issue) in [
            ("auth-refactor", "auth-refactor"),
            ("agent-a1b2c3", "agent-a1b2c3"),
            ("feature/login page", "feature-login-page"),
            ("..hidden..", "hidden"),
            ("x.lock", "x"),
            ("PROJ-42", "PROJ-42"),
        ] {
            assert_eq!(issue_for(name).expect(name), issue, "{name}");
        }
        assert_eq!(issue_for(&"a".repeat(100)).expect("long").len(), 64);
        for bad in ["", "///", "..", "-"] {
            assert!(issue_for(bad).is_err(), "{bad:?}");
        }
    }
}
