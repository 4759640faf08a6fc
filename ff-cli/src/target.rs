//! Which worktree a command acts on: the one named (a path, a worktree
//! id, a branch or an issue, tried in that order), or, named none, the one
//! the current directory is in.
//!
//! A name that two worktrees answer to in different ways (one's issue,
//! another's branch) is refused naming both, never guessed. A name nothing
//! answers to says so with the closest name that does.

use std::path::{Path, PathBuf};

use ff_worktree::Worktree;
use ff_worktree::display::escape;

use crate::config::Manager;
use crate::output::{Failure, Problem};

/// How a name matched a worktree, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Path,
    Id,
    Branch,
    Issue,
}

impl Match {
    fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Id => "id",
            Self::Branch => "branch",
            Self::Issue => "issue",
        }
    }
}

/// The worktree `target` names, or (`None`) the one the current directory
/// is in.
///
/// # Errors
/// Usage (2) with no target outside every worktree; not found (65), with
/// the closest name, when nothing answers; invalid input (65) naming the
/// candidates when two worktrees answer.
pub(crate) async fn resolve(manager: &Manager, target: Option<&str>) -> Result<Worktree, Failure> {
    match find(manager, target).await? {
        Some(w) => Ok(w),
        None => Err(Failure::new(
            Problem::NotFound,
            nothing_answers(target.unwrap_or_default(), &manager.list_worktrees().await?),
        )),
    }
}

/// As [`resolve`], but a name nothing answers to is `None` (said on stderr,
/// with the closest name): for commands whose retry must succeed, such as
/// a cleanup of what is gone already.
///
/// # Errors
/// As [`resolve`], but for a name nothing answers to.
pub(crate) async fn resolve_if_any(
    manager: &Manager,
    target: Option<&str>,
) -> Result<Option<Worktree>, Failure> {
    let found = find(manager, target).await?;
    // Only a name that could have named one (an issue id): anything else
    // the command refuses as invalid itself, with that error alone.
    if found.is_none()
        && let Some(name) = target
        && ff_worktree::IssueId::parse(name).is_ok()
    {
        eprintln!(
            "ff: {}",
            nothing_answers(name, &manager.list_worktrees().await?)
        );
    }
    Ok(found)
}

async fn find(manager: &Manager, target: Option<&str>) -> Result<Option<Worktree>, Failure> {
    let Some(name) = target else {
        return here(manager).await.map(Some);
    };
    // The common case, at the cost of one record read: a plain issue id
    // that cannot also be a path, id or branch.
    if plain_issue(manager, name) {
        return Ok(manager.get(name).await?);
    }
    let all = manager.list_worktrees().await?;
    let mut found: Vec<(Match, &Worktree)> = Vec::new();
    if let Some(dir) = as_directory(name) {
        found.extend(containing(&all, &dir).into_iter().map(|w| (Match::Path, w)));
    }
    for w in &all {
        if w.id == name {
            found.push((Match::Id, w));
        }
        if w.branch == name {
            found.push((Match::Branch, w));
        }
        if w.issue == name {
            found.push((Match::Issue, w));
        }
    }
    let first = found.first().map(|(_, w)| w.id.clone());
    if found.iter().any(|(_, w)| Some(&w.id) != first.as_ref()) {
        let candidates: Vec<String> = found
            .iter()
            .map(|(how, w)| format!("{} (its {})", w.id, how.as_str()))
            .collect();
        return Err(Failure::invalid(format!(
            "{:?} names more than one worktree: {}; name one by its id",
            escape(name),
            candidates.join(", ")
        )));
    }
    Ok(found.first().map(|(_, w)| (*w).clone()))
}

/// Whether `name` can only be an issue: no path separator, not `.`/`..`,
/// not of an id's or a branch's shape (the branch template's prefix, or an earlier
/// release's), and no directory of that name here. Such a name needs no
/// resolving: the manager's own lookup by issue is the one read it costs.
/// (An issue's plain worktree id is the issue itself: the same worktree.)
pub(crate) fn plain_issue(manager: &Manager, name: &str) -> bool {
    let branch_prefix = manager.branch_template().prefix();
    ff_worktree::IssueId::parse(name).is_ok()
        && !name.starts_with("wt-")
        && !name.starts_with("ff-")
        && !name.starts_with(branch_prefix)
        && !name.contains('/')
        && !name.starts_with('.')
        && !Path::new(name).is_dir()
}

/// `name` as an existing directory, made absolute and canonical.
fn as_directory(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if !path.is_dir() {
        return None;
    }
    std::fs::canonicalize(path).ok()
}

/// The worktrees `dir` is inside of (the deepest first would be one: ff's
/// worktrees do not nest).
fn containing<'a>(all: &'a [Worktree], dir: &Path) -> Vec<&'a Worktree> {
    all.iter()
        .filter(|w| {
            let root = std::fs::canonicalize(&w.path).unwrap_or_else(|_| w.path.clone());
            dir.starts_with(root)
        })
        .collect()
}

/// The worktree the current directory is in.
async fn here(manager: &Manager) -> Result<Worktree, Failure> {
    let cwd = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Failure::invalid(format!("cannot read the current directory: {e}")))?;
    let all = manager.list_worktrees().await?;
    containing(&all, &cwd)
        .first()
        .map(|w| (*w).clone())
        .ok_or_else(|| {
            Failure::new(
                Problem::Usage,
                "not inside one of ff's worktrees: name one (an issue, worktree id, branch or \
                 path; `ff list` shows them)",
            )
        })
}

/// Says on stderr that no worktree answers to `name`, with the closest
/// name that does (a command that found nothing by a plain issue id).
///
/// # Errors
/// When the store cannot be read.
pub(crate) async fn say_nothing_answers(manager: &Manager, name: &str) -> Result<(), Failure> {
    eprintln!(
        "ff: {}",
        nothing_answers(name, &manager.list_worktrees().await?)
    );
    Ok(())
}

/// No worktree answers to `name`: say so, with the closest name that does.
fn nothing_answers(name: &str, all: &[Worktree]) -> String {
    let closest = all
        .iter()
        .flat_map(|w| [(&w.issue, w), (&w.id, w), (&w.branch, w)])
        .map(|(candidate, w)| (strsim::jaro_winkler(name, candidate), candidate, w))
        .filter(|(score, _, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, candidate, w)) => format!(
            "no worktree answers to {:?}; did you mean {:?} ({})? `ff list` shows them all",
            escape(name),
            escape(candidate),
            w.id
        ),
        None => format!(
            "no worktree answers to {:?}; `ff list` shows what exists",
            escape(name)
        ),
    }
}
