//! Directories ForgeFlow cannot judge are set aside, never deleted; and
//! nothing under the base path that is not a worktree lets git find the
//! main checkout above it.
//!
//! Agents write in their worktrees holding none of our locks, so a
//! directory git just removed can come back (an agent's `mkdir -p`), or
//! outlive its removal (git unregisters a worktree even when it could not
//! delete every file, because an agent wrote one meanwhile). Such a
//! directory may hold the only copy of an agent's file: it is moved to
//! `<base>/.ff-kept/<id>-<unique>`, whole, by one rename within the base
//! path, and the issue goes on. And git run in it must fail rather than
//! walk up to the main checkout (whose branch an agent's `git commit -a`
//! would then change): a `.git` *file* naming no repository stops git's
//! search where it stands, with a message that says why.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where set-aside directories go, under the base path. A dot name:
/// nothing of ForgeFlow's shape, so `recover` never takes it for a stray.
pub(crate) const KEPT_DIR: &str = ".ff-kept";

/// The guard at the base path: git started anywhere beneath it that is not
/// a worktree stops here and prints this "repository" as the one it could
/// not read.
const BASE_GUARD: &str = "gitdir: .ff-not-a-worktree (ForgeFlow: this directory is not a \
                          worktree; it was removed or never made: ask `ff path ISSUE` for the \
                          issue's worktree)\n";

/// The guard written into a directory set aside.
const KEPT_GUARD: &str = "gitdir: .ff-set-aside (ForgeFlow set this directory aside: it is no \
                          longer a worktree; its files are kept here, copy out what you need)\n";

/// Writes the base path's guard (`<base>/.git`) unless something named
/// `.git` is there already (a guard written before, or a repository the
/// base path is: then git finds that first, and nothing is changed).
///
/// # Errors
/// When the file cannot be written.
pub(crate) fn guard_base(base: &Path) -> Result<()> {
    write_guard(&base.join(".git"), BASE_GUARD, false)
}

/// Writes `content` to `path` when nothing is there, or, with `replace`,
/// over a plain file (a worktree's `.git` pointer, which holds nothing
/// but where its registration was).
fn write_guard(path: &Path, content: &str, replace: bool) -> Result<()> {
    let io = |e: std::io::Error| {
        Error::io(
            "worktree",
            &format!("cannot write the guard {}", path.display()),
            &e,
        )
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if replace && m.is_file() => std::fs::write(path, content).map_err(io),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => f.write_all(content.as_bytes()).map_err(io),
                // Someone else wrote one meanwhile: theirs stands.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// Moves the directory at `path` (which git does not list as a worktree)
/// to `<base>/.ff-kept/<id>-<unique>`, every file in it, and guards it;
/// returns where it went. A directory holding nothing (empty directories,
/// and a `.git` pointer file at its top) is removed instead, and `None`
/// returned; so is `None` when nothing is at `path`.
///
/// The removal deletes no other file: an empty directory is removed with
/// `rmdir`, which refuses one an agent just wrote into, and then the
/// directory is moved aside after all.
///
/// # Errors
/// When the directory can be neither removed nor moved.
pub(crate) fn set_aside(base: &Path, path: &Path, id: &str) -> Result<Option<PathBuf>> {
    if remove_hollow(path) {
        return Ok(None);
    }
    let kept = base.join(KEPT_DIR);
    std::fs::create_dir_all(&kept)
        .map_err(|e| Error::io("worktree", &format!("cannot create {}", kept.display()), &e))?;
    // Guarded itself too, in case the base path's guard could not be
    // written (something else named `.git` is there).
    write_guard(&kept.join(".git"), BASE_GUARD, false)?;
    let dest = kept.join(format!("{id}-{}", ff_traits::identity::unique_id()));
    if let Err(e) = std::fs::rename(path, &dest) {
        // Gone meanwhile (another process set it aside): nothing to keep.
        if !path.exists() {
            return Ok(None);
        }
        return Err(Error::io(
            "worktree",
            &format!("cannot move {} aside to {}", path.display(), dest.display()),
            &e,
        ));
    }
    write_guard(&dest.join(".git"), KEPT_GUARD, true)?;
    tracing::warn!(id, from = %path.display(), to = %dest.display(), "a directory git no longer lists was set aside, files and all");
    Ok(Some(dest))
}

/// Whether `path` holds nothing that could be anyone's work: only
/// directories, and at its top a `.git` file. Reads only.
pub(crate) fn is_hollow(path: &Path) -> bool {
    fn hollow(dir: &Path, top: bool) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().all(|e| match e.file_type() {
            Ok(t) if t.is_dir() => hollow(&e.path(), false),
            Ok(t) if t.is_file() => top && e.file_name() == ".git",
            _ => false,
        })
    }
    hollow(path, true)
}

/// Removes `path` when it is hollow ([`is_hollow`]); whether it is gone.
/// Files other than the top `.git` pointer are never deleted: directories
/// go by `rmdir`, which fails on anything written into them meanwhile.
fn remove_hollow(path: &Path) -> bool {
    fn rmdirs(dir: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) && !rmdirs(&e.path()) {
                return false;
            }
        }
        std::fs::remove_dir(dir).is_ok()
    }
    if !path.exists() {
        return true;
    }
    if !is_hollow(path) {
        return false;
    }
    let pointer = path.join(".git");
    if std::fs::symlink_metadata(&pointer).is_ok_and(|m| m.is_file()) {
        let _ = std::fs::remove_file(&pointer);
    }
    rmdirs(path) || !path.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ff-aside-{tag}-{}",
            ff_traits::identity::unique_id()
        ));
        std::fs::create_dir_all(&dir).expect("scratch");
        dir
    }

    #[test]
    fn a_directory_with_a_file_is_moved_whole_and_guarded() {
        let base = scratch("file");
        let wt = base.join("wt-1-x-abcd");
        std::fs::create_dir_all(wt.join("src")).expect("mkdir");
        std::fs::write(wt.join("src/work.txt"), "work").expect("write");
        std::fs::write(wt.join(".git"), "gitdir: /nowhere").expect("write");
        let kept = set_aside(&base, &wt, "wt-1-x-abcd")
            .expect("set aside")
            .expect("kept");
        assert!(!wt.exists());
        assert_eq!(
            std::fs::read_to_string(kept.join("src/work.txt")).expect("kept file"),
            "work"
        );
        assert_eq!(
            std::fs::read_to_string(kept.join(".git")).expect("guard"),
            KEPT_GUARD
        );
        assert!(kept.starts_with(base.join(KEPT_DIR)));
        std::fs::remove_dir_all(&base).expect("clean");
    }

    #[test]
    fn a_hollow_directory_is_removed_and_nothing_else_is() {
        let base = scratch("hollow");
        let wt = base.join("wt-2-x-abcd");
        std::fs::create_dir_all(wt.join("a/b")).expect("mkdir");
        std::fs::write(wt.join(".git"), "gitdir: /nowhere").expect("write");
        assert!(is_hollow(&wt));
        assert_eq!(set_aside(&base, &wt, "wt-2-x-abcd").expect("removed"), None);
        assert!(!wt.exists());
        assert!(!base.join(KEPT_DIR).exists(), "nothing was kept");
        // A `.git` file below the top is someone's file, not our pointer.
        std::fs::create_dir_all(wt.join("a")).expect("mkdir");
        std::fs::write(wt.join("a/.git"), "x").expect("write");
        assert!(!is_hollow(&wt));
        std::fs::remove_dir_all(&base).expect("clean");
    }

    #[test]
    fn the_base_guard_never_replaces_what_is_there() {
        let base = scratch("guard");
        std::fs::write(base.join(".git"), "mine").expect("write");
        guard_base(&base).expect("guard");
        assert_eq!(
            std::fs::read_to_string(base.join(".git")).expect("read"),
            "mine"
        );
        std::fs::remove_file(base.join(".git")).expect("rm");
        guard_base(&base).expect("guard");
        assert_eq!(
            std::fs::read_to_string(base.join(".git")).expect("read"),
            BASE_GUARD
        );
        std::fs::remove_dir_all(&base).expect("clean");
    }
}
