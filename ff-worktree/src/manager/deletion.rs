//! Deleting the directory of a worktree that was removed.
//!
//! A removal moves the directory out of the way by one rename within the
//! base path (`<base>/.ff-deleting-<id>-<unique>`) and drops git's
//! registration, both under the registry lock; that is all a caller waits
//! for. Deleting the files, seconds on a large tree, comes after: inline by
//! default, or, with [`deferred_deletion`], by whoever calls
//! [`finish_deletions`] (the CLI: a process of its own, detached from the
//! command that removed it). A deletion cut short (a kill, a crash) is
//! finished by the next `recover`.
//!
//! The directory is no longer a worktree when its deletion starts: git run
//! in it fails (its registration is gone), and nothing can enter it by its
//! old path. A file written into it meanwhile by a process already working
//! there makes the deletion fail (`rmdir` of a directory that is not
//! empty), and what is left is set aside under `<base>/.ff-kept/`, as
//! after git's own removal.
//!
//! [`deferred_deletion`]: crate::WorktreeConfig::deferred_deletion
//! [`finish_deletions`]: super::WorktreeManager::finish_deletions

use std::path::{Path, PathBuf};

use ff_traits::{IdempotencyStorage, LockProvider};

use super::WorktreeManager;
use crate::{Error, Result};

/// The name prefix of a removed worktree's directory awaiting deletion. A
/// dot name: nothing of ForgeFlow's shape, so no scan takes it for a
/// worktree or a stray.
pub(crate) const DELETING_PREFIX: &str = ".ff-deleting-";

/// Moves the directory at `path` (a worktree's, `<base>/<id>`) to
/// `<base>/.ff-deleting-<id>-<unique>`; returns where, or `None` when
/// nothing was there.
///
/// # Errors
/// When the rename fails (and the directory is still there).
pub(crate) fn move_to_deletion(base: &Path, path: &Path, id: &str) -> Result<Option<PathBuf>> {
    let dest = base.join(format!(
        "{DELETING_PREFIX}{id}-{}",
        ff_traits::identity::unique_id()
    ));
    match std::fs::rename(path, &dest) {
        Ok(()) => Ok(Some(dest)),
        Err(_) if !path.exists() => Ok(None),
        Err(e) => Err(Error::io(
            "worktree",
            &format!("cannot move {} out of the way", path.display()),
            &e,
        )),
    }
}

/// The directories under `base` awaiting deletion.
#[must_use]
pub fn awaiting_deletion(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(DELETING_PREFIX))
                && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Deletes `dir`, a directory a removal left under `base` for deletion
/// (named `.ff-deleting-…` directly beneath `base`; anything else is
/// refused). When files appear in it during the deletion (a process
/// still working there), what is left is set aside under
/// `<base>/.ff-kept/` instead. Returns where the leftover went, if
/// anywhere.
///
/// # Errors
/// [`InvalidInput`](ff_traits::Error::InvalidInput) when `dir` is not
/// such a directory; an I/O error when it can be neither deleted nor set
/// aside.
pub fn delete_removed_directory(base: &Path, dir: &Path) -> Result<Option<PathBuf>> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let id = name
        .strip_prefix(DELETING_PREFIX)
        .and_then(|rest| rest.rsplit_once('-'))
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty());
    let (Some(id), true) = (id, dir.parent() == Some(base)) else {
        return Err(Error::invalid_input(
            "directory to delete",
            format!(
                "{} is not a removed worktree's directory (not {}/{DELETING_PREFIX}…)",
                dir.display(),
                base.display()
            ),
        ));
    };
    // Claimed first, by renaming it to a name of this call's own: of two
    // deleters (a background one and `recover`), one wins, and the other
    // finds nothing; so a failure below is never the other deleter at work.
    // One killed midway leaves a name the next one claims again.
    let Some(mine) = move_to_deletion(base, dir, id)? else {
        return Ok(None);
    };
    match std::fs::remove_dir_all(&mine) {
        Ok(()) => Ok(None),
        Err(_) if !mine.exists() => Ok(None),
        Err(e) => {
            tracing::warn!(dir = %mine.display(), error = %e, "a removed worktree's directory could not be deleted (something wrote into it meanwhile); what is left is set aside");
            super::aside::set_aside(base, &mine, id)
        }
    }
}

impl<L: LockProvider, S: IdempotencyStorage> WorktreeManager<L, S> {
    /// After a removal dropped git's registration: deletes the moved
    /// directory now, or leaves it for [`finish_deletions`](Self::finish_deletions)
    /// with [`deferred_deletion`](crate::WorktreeConfig::deferred_deletion).
    /// The removal has happened either way: a deletion that fails is
    /// logged and left for `recover`, never the removal's error.
    pub(super) fn delete_moved(&self, moved: &Path) {
        if self.config.deferred_deletion {
            return;
        }
        if let Err(e) = delete_removed_directory(&self.base, moved) {
            tracing::warn!(dir = %moved.display(), error = %e, "a removed worktree's directory is left for recover to delete");
        }
    }

    /// The directories of removed worktrees still awaiting deletion (with
    /// [`deferred_deletion`](crate::WorktreeConfig::deferred_deletion), or
    /// a deletion cut short).
    #[must_use]
    pub fn awaiting_deletion(&self) -> Vec<PathBuf> {
        awaiting_deletion(&self.base)
    }

    /// Deletes every removed worktree's directory still awaiting deletion
    /// ([`delete_removed_directory`] each); returns the ones handled.
    ///
    /// # Errors
    /// An I/O error when a directory can be neither deleted nor set aside
    /// (the others are still handled first).
    pub fn finish_deletions(&self) -> Result<Vec<PathBuf>> {
        let mut done = Vec::new();
        let mut failed = None;
        for dir in self.awaiting_deletion() {
            match delete_removed_directory(&self.base, &dir) {
                Ok(_) => done.push(dir),
                Err(e) => failed = Some(e),
            }
        }
        failed.map_or(Ok(done), Err)
    }
}
