//! `ff agent install claude`: ff's hooks merged into Claude Code's
//! project settings.
//!
//! Everything already in the file is kept as it was, byte for byte: each
//! top-level value, and each event's existing hook groups, are carried as
//! raw JSON text, and ff's groups are appended only to events that lack
//! them. A second run finds them and changes nothing.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use ff_model::cli::AgentInstallView;
use ff_worktree::display::escape_path;
use indexmap::IndexMap;
use serde_json::value::RawValue;

use crate::config::Settings;
use crate::output::{Failure, Out, Problem};

/// `ff agent install`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agent whose settings to change.
    #[arg(value_enum)]
    pub(crate) agent: Agent,
    /// Print the settings as they would be; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Write `.claude/settings.local.json` (yours alone, not committed)
    /// instead of `.claude/settings.json` (the team's).
    #[arg(long)]
    pub(crate) local: bool,
}

/// The agents ff installs hooks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Agent {
    /// Claude Code.
    Claude,
}

/// ff's hooks: the event, and the command Claude Code runs for it. The
/// status hooks say what the agent does (a prompt sent: working; asking
/// for input: waiting; its turn ended: done), in the worktree the session
/// runs in, and nothing elsewhere.
const HOOKS: [(&str, &str); 5] = [
    ("WorktreeCreate", "ff agent claude worktree-create"),
    ("WorktreeRemove", "ff agent claude worktree-remove"),
    ("UserPromptSubmit", "ff status set working --if-in-worktree"),
    ("Notification", "ff status set waiting --if-in-worktree"),
    ("Stop", "ff status set done --if-in-worktree"),
];

type Object = IndexMap<String, Box<RawValue>>;

pub(crate) fn run(settings: &Settings, out: Out, args: &Args) -> Result<u8, Failure> {
    let Agent::Claude = args.agent;
    let top = settings.toplevel().ok_or_else(|| {
        Failure::invalid("ff agent install runs inside a git repository's working tree")
    })?;
    let file = settings_file(top, args.local)?;
    let before = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Failure::new(
                Problem::CannotWrite,
                format!("cannot read {}: {e}", escape_path(&file)),
            ));
        }
    };
    let (text, added) = merged(before.as_deref(), &file)?;
    let changed = !added.is_empty();
    if changed && !args.dry_run {
        write_atomically(&file, &text)?;
    }
    let view = AgentInstallView::new(
        file.display().to_string(),
        added.iter().map(|s| (*s).to_owned()).collect(),
        args.dry_run,
    );
    out.emit(&view, || {
        if !changed {
            format!(
                "{}: ff's hooks are already there; nothing changed",
                file.display()
            )
        } else if args.dry_run {
            format!(
                "{} would get ff's {} hooks:\n{text}",
                file.display(),
                added.join(", ")
            )
        } else {
            format!("{}: added ff's {} hooks", file.display(), added.join(", "))
        }
    });
    Ok(0)
}

/// `.claude/settings.json` (or `settings.local.json`) under `top`; refused
/// when `.claude` or the file is a symbolic link: a cloned repository must
/// not steer where ff writes.
fn settings_file(top: &Path, local: bool) -> Result<PathBuf, Failure> {
    let dir = top.join(".claude");
    let file = dir.join(if local {
        "settings.local.json"
    } else {
        "settings.json"
    });
    for p in [&dir, &file] {
        if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Failure::new(
                Problem::NotApproved,
                format!(
                    "{} is a symbolic link; ff writes agent settings only to a real file in \
                     the repository (replace the link with the file it points to)",
                    escape_path(p)
                ),
            ));
        }
    }
    Ok(file)
}

/// `before` with ff's hooks added; and the events they were added to.
fn merged(before: Option<&str>, file: &Path) -> Result<(String, Vec<&'static str>), Failure> {
    let bad = |what: &str, e: &serde_json::Error| {
        Failure::invalid(format!(
            "{}: {what}: {e}; fix the file (or move it aside) and run again",
            escape_path(file)
        ))
    };
    let mut top: Object = match before {
        Some(text) if !text.trim().is_empty() => {
            serde_json::from_str(text).map_err(|e| bad("not a JSON object", &e))?
        }
        _ => Object::new(),
    };
    let mut hooks: Object = match top.get("hooks") {
        Some(raw) => {
            serde_json::from_str(raw.get()).map_err(|e| bad("\"hooks\" is not an object", &e))?
        }
        None => Object::new(),
    };
    let mut added = Vec::new();
    for (event, command) in HOOKS {
        let mut groups: Vec<Box<RawValue>> = match hooks.get(event) {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| bad(&format!("hooks.{event} is not a list"), &e))?,
            None => Vec::new(),
        };
        let present = groups.iter().any(|g| runs(g, command));
        if present {
            continue;
        }
        let group = serde_json::json!({"hooks": [{"type": "command", "command": command}]});
        groups.push(raw(&group)?);
        hooks.insert(event.to_owned(), raw(&groups)?);
        added.push(event);
    }
    if added.is_empty() {
        return Ok((before.unwrap_or_default().to_owned(), added));
    }
    top.insert("hooks".to_owned(), raw(&hooks)?);
    let mut text = serde_json::to_string_pretty(&top).unwrap_or_default();
    text.push('\n');
    Ok((text, added))
}

/// Whether the hook group `group` runs `command`.
fn runs(group: &RawValue, command: &str) -> bool {
    let Ok(group) = serde_json::from_str::<serde_json::Value>(group.get()) else {
        return false;
    };
    group["hooks"]
        .as_array()
        .is_some_and(|hooks| hooks.iter().any(|h| h["command"] == command))
}

fn raw(value: &impl serde::Serialize) -> Result<Box<RawValue>, Failure> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| Failure::new(Problem::Internal, format!("cannot write JSON: {e}")))
}

fn write_atomically(file: &Path, text: &str) -> Result<(), Failure> {
    let cannot = |e: std::io::Error| {
        Failure::new(
            Problem::CannotWrite,
            format!("cannot write {}: {e}", escape_path(file)),
        )
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(cannot)?;
    }
    let tmp = file.with_extension("json.ff-tmp");
    std::fs::write(&tmp, text).map_err(cannot)?;
    std::fs::rename(&tmp, file).map_err(cannot)
}

#[cfg(test)]
mod tests {
    use super::merged;
    use std::path::Path;

    #[test]
    fn other_settings_stay_byte_for_byte_and_a_second_run_changes_nothing() {
        let before = r#"{
  "permissions": {"allow": ["Bash(cargo test:*)"],   "deny": []},
  "hooks": {
    "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./check.sh"}]}],
    "WorktreeCreate": [{"hooks": [{"type": "command", "command": "./mine.sh"}]}]
  },
  "model": "opus"
}"#;
        let (after, added) = merged(Some(before), Path::new("s.json")).expect("merged");
        assert_eq!(
            added,
            [
                "WorktreeCreate",
                "WorktreeRemove",
                "UserPromptSubmit",
                "Notification",
                "Stop"
            ]
        );
        for kept in [
            r#"{"allow": ["Bash(cargo test:*)"],   "deny": []}"#,
            r#"[{"matcher": "Bash", "hooks": [{"type": "command", "command": "./check.sh"}]}]"#,
            r#"{"hooks": [{"type": "command", "command": "./mine.sh"}]}"#,
            r#""opus""#,
        ] {
            assert!(after.contains(kept), "{kept} lost from {after}");
        }
        let (again, added) = merged(Some(&after), Path::new("s.json")).expect("merged");
        assert!(added.is_empty());
        assert_eq!(again, after);
    }
}
