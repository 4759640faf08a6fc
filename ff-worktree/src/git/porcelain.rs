//! Parsing `git worktree list --porcelain -z`.
//!
//! Each worktree is a run of NUL-terminated attribute lines (`worktree
//! <path>`, `HEAD <oid>`, `branch <ref>`, `bare`, `detached`, `locked
//! [reason]`, `prunable [reason]`), and runs are separated by an empty
//! attribute (two NULs in a row). Paths may contain any byte but NUL, so
//! newline-separated output cannot be trusted and is never parsed.

use std::ffi::OsString;
use std::path::PathBuf;

/// One worktree as git lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WorktreeEntry {
    /// Its directory.
    pub path: PathBuf,
    /// The commit checked out (absent for a bare repository).
    pub head: Option<String>,
    /// The branch checked out (`refs/heads/…`), if not detached.
    pub branch: Option<String>,
    /// The main worktree of a bare repository.
    pub bare: bool,
    /// HEAD is detached.
    pub detached: bool,
    /// `git worktree lock`ed, with the reason if one was given.
    pub locked: Option<String>,
    /// git would prune it (its directory is gone), with the reason.
    pub prunable: Option<String>,
}

/// Parses the output of `git worktree list --porcelain -z`.
///
/// # Errors
/// A message naming the first attribute that is not understood.
pub fn parse_worktree_list(raw: &[u8]) -> Result<Vec<WorktreeEntry>, String> {
    let mut out = Vec::new();
    let mut current: Option<WorktreeEntry> = None;
    for field in raw.split(|b| *b == 0) {
        if field.is_empty() {
            out.extend(current.take());
            continue;
        }
        let (name, value) = match field.iter().position(|b| *b == b' ') {
            Some(i) => (&field[..i], Some(&field[i + 1..])),
            None => (field, None),
        };
        let text = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(v).into_owned());
        if name == b"worktree" {
            out.extend(current.take());
            let path = value.ok_or("a worktree attribute without a path")?;
            current = Some(WorktreeEntry {
                path: bytes_to_path(path),
                ..WorktreeEntry::default()
            });
            continue;
        }
        let entry = current.as_mut().ok_or_else(|| {
            format!(
                "attribute {:?} before any worktree",
                String::from_utf8_lossy(name)
            )
        })?;
        match name {
            b"HEAD" => entry.head = text(value),
            b"branch" => entry.branch = text(value),
            b"bare" => entry.bare = true,
            b"detached" => entry.detached = true,
            b"locked" => entry.locked = Some(text(value).unwrap_or_default()),
            b"prunable" => entry.prunable = Some(text(value).unwrap_or_default()),
            // Attributes added by later git versions are ignored.
            _ => {}
        }
    }
    out.extend(current);
    Ok(out)
}

/// A path as git wrote it (in its output or its files), as this platform
/// spells it.
#[cfg(unix)]
pub(crate) fn bytes_to_path(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(OsString::from_vec(b.to_vec()))
}

/// A path as git wrote it (in its output or its files), as this platform
/// spells it.
#[cfg(not(unix))]
pub(crate) fn bytes_to_path(b: &[u8]) -> PathBuf {
    // Git for Windows writes `C:/x/y`; Windows paths built here use `\`.
    let text = String::from_utf8_lossy(b).replace('/', "\\");
    PathBuf::from(OsString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_main_linked_detached_and_locked() {
        let raw = b"worktree /r\0HEAD aaa\0branch refs/heads/main\0\0\
worktree /r/.ff-worktrees/wt 1\nnewline\0HEAD bbb\0branch refs/heads/ff-1\0locked because\0\0\
worktree /gone\0HEAD ccc\0detached\0prunable gitdir file points to non-existent location\0\0";
        let list = parse_worktree_list(raw).expect("parse");
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].branch.as_deref(), Some("refs/heads/main"));
        assert_eq!(
            list[1].path,
            PathBuf::from("/r/.ff-worktrees/wt 1\nnewline")
        );
        assert_eq!(list[1].locked.as_deref(), Some("because"));
        assert!(list[2].detached);
        assert!(list[2].prunable.is_some());
    }

    #[test]
    fn bare_repository_and_unknown_attributes() {
        let raw = b"worktree /srv/repo.git\0bare\0\0worktree /w\0HEAD d\0branch refs/heads/x\0future-attr 1\0\0";
        let list = parse_worktree_list(raw).expect("parse");
        assert!(list[0].bare && list[0].head.is_none());
        assert_eq!(list[1].branch.as_deref(), Some("refs/heads/x"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_worktree_list(b"HEAD abc\0\0").is_err());
        assert!(parse_worktree_list(b"worktree\0").is_err());
        assert_eq!(parse_worktree_list(b"").expect("empty"), Vec::new());
    }
}
