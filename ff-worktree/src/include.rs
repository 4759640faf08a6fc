//! Local files for new worktrees: `.worktreeinclude` at the repository's
//! root names, in gitignore syntax, the files a checkout lacks that each
//! new worktree needs (`.env`, `config/local.toml`): ignored or untracked
//! files of the main working tree, copied copy-on-write where the
//! filesystem can (a reflink), byte for byte otherwise.
//!
//! ```text
//! # .worktreeinclude
//! .env
//! config/*.local.toml
//! !config/secret.local.toml
//! ```
//!
//! Rules, for safety:
//! * The list is made, and checked, before the worktree is: a bad line, a
//!   symlink pointing out of the repository or too many files refuse the
//!   create before anything exists.
//! * `.git` (at any depth), the worktrees' base path and linked worktrees
//!   are never walked into; symlinks are never followed. A symlink the
//!   list names is recreated as the same link when its target lies inside
//!   the repository, and refused otherwise.
//! * A file the new checkout already has (a tracked file) is left as the
//!   branch has it.
//! * Each file is copied with its permissions; a file that changes while
//!   it is copied (its length or modification time moved) is copied again,
//!   so each copy holds one state of it.
//! * Only regular files and symlinks are copied (a FIFO, socket or device
//!   is passed over), at most [`MAX_INCLUDED_BYTES`] together (1 GiB by
//!   default, [`Limits`]): more is refused before anything is made.
//! * Nothing swapped in after the scan is copied, and nothing is written
//!   through a link (on Unix): each source is opened component by
//!   component without following a link, without blocking
//!   (`O_NOFOLLOW | O_NONBLOCK`), and must be the same regular file
//!   (device and inode) the scan saw; the copy reads that descriptor
//!   (cloning it where the filesystem can). Every destination directory
//!   and file is made relative to the worktree's own descriptor, without
//!   following a link; a link anywhere on the way (a directory the branch
//!   tracks as a symlink) refuses the create. On other platforms files are
//!   copied by path, and a file changed between scan and copy is caught
//!   only by its length and time.
//!
//! Large directories (dependencies, build output) are better linked than
//! copied: [`link_into`] makes symlinks to the main working tree's copies.

use std::path::{Component, Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::{Error, Result};

/// The file at the repository's root that lists what to copy.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// Most files one `.worktreeinclude` may name: more is a mistake (a
/// pattern that matches a dependency tree), refused before anything is
/// made.
pub const MAX_INCLUDED_FILES: usize = 100_000;

/// Most bytes the named files may hold together by default: a pattern
/// that names a disk image or a build cache is a mistake, refused before
/// anything is made.
pub const MAX_INCLUDED_BYTES: u64 = 1 << 30;

/// How much one `.worktreeinclude` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Most files and symlinks ([`MAX_INCLUDED_FILES`] by default).
    pub files: usize,
    /// Most bytes of files together ([`MAX_INCLUDED_BYTES`] by default).
    pub bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            files: MAX_INCLUDED_FILES,
            bytes: MAX_INCLUDED_BYTES,
        }
    }
}

impl Limits {
    /// Sets [`files`](Self::files).
    #[must_use]
    pub fn with_files(mut self, files: usize) -> Self {
        self.files = files;
        self
    }

    /// Sets [`bytes`](Self::bytes).
    #[must_use]
    pub fn with_bytes(mut self, bytes: u64) -> Self {
        self.bytes = bytes;
        self
    }
}

/// How often a file that keeps changing while copied is tried.
const COPY_ATTEMPTS: usize = 3;

/// What `.worktreeinclude` names, listed and checked.
#[derive(Debug, Clone, Default)]
pub struct Included {
    root: PathBuf,
    entries: Vec<Entry>,
    bytes: u64,
}

impl Included {
    /// The files and links to copy, relative to the repository's root.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().map(|e| e.path.as_path())
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// Relative to the root.
    path: PathBuf,
    /// A symlink's target, as written; none for a file.
    link: Option<PathBuf>,
    /// A file's length and modification time when listed: a copy that
    /// finds them unchanged afterwards saw one state of the file (where
    /// files are copied by path; on Unix the copy checks its descriptor).
    #[cfg_attr(unix, allow(dead_code))]
    seen: Option<(u64, Option<std::time::SystemTime>)>,
    /// A file's device and inode when listed: the copy reads that file or
    /// none (Unix).
    #[cfg_attr(not(unix), allow(dead_code))]
    identity: Option<(u64, u64)>,
}

/// What [`Included::copy_into`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Copied {
    /// Files copied (or, on a copy-on-write filesystem, cloned).
    pub files: usize,
    /// Symlinks recreated.
    pub links: usize,
    /// Bytes of the files copied.
    pub bytes: u64,
    /// Entries the worktree had already (tracked files), left alone.
    pub skipped: usize,
}

fn bad(why: impl Into<String>) -> Error {
    ff_traits::Error::invalid_input(INCLUDE_FILE, why).into()
}

impl Included {
    /// Reads `root/.worktreeinclude` and lists the files of `root` it
    /// names, never entering `skip` (the base path) or any `.git`. `None`
    /// without the file.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) (saying which line
    /// or file) for a `.worktreeinclude` that is a symlink or unreadable, a
    /// pattern with a `..` segment or that gitignore syntax rejects, a
    /// named symlink pointing out of the repository, or more than
    /// [`MAX_INCLUDED_FILES`] files.
    pub fn scan(root: &Path, skip: &[&Path]) -> Result<Option<Self>> {
        Self::scan_with_limit(root, skip, MAX_INCLUDED_FILES)
    }

    /// [`scan`](Self::scan) with another limit than
    /// [`MAX_INCLUDED_FILES`].
    ///
    /// # Errors
    /// As [`scan`](Self::scan), with `limit` for the limit.
    pub fn scan_with_limit(root: &Path, skip: &[&Path], limit: usize) -> Result<Option<Self>> {
        Self::scan_with_limits(root, skip, Limits::default().with_files(limit))
    }

    /// [`scan`](Self::scan) with other [`Limits`].
    ///
    /// # Errors
    /// As [`scan`](Self::scan), with `limits`; also when the files named
    /// hold more than `limits.bytes` together.
    pub fn scan_with_limits(root: &Path, skip: &[&Path], limits: Limits) -> Result<Option<Self>> {
        let limit = limits.files;
        let file = root.join(INCLUDE_FILE);
        let meta = match std::fs::symlink_metadata(&file) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(format!("cannot read {}: {e}", file.display()))),
        };
        if meta.file_type().is_symlink() || !meta.is_file() {
            return Err(bad(format!(
                "{} is a symlink or not a regular file; it must be a file of the repository itself",
                file.display()
            )));
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| bad(format!("cannot read {}: {e}", file.display())))?;
        let matcher = matcher(root, &text)?;
        let mut included = Self {
            root: root.to_path_buf(),
            ..Self::default()
        };
        let skip: Vec<PathBuf> = skip.iter().map(|p| p.to_path_buf()).collect();
        let walk = ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .hidden(false)
            .follow_links(false)
            .filter_entry(move |e| {
                // Not git's own files, not the worktrees, and not a linked
                // worktree or nested repository elsewhere: none is ours.
                let nested = e.depth() > 0
                    && e.file_type().is_some_and(|t| t.is_dir())
                    && e.path().join(".git").exists();
                e.file_name() != ".git" && !nested && !skip.iter().any(|s| e.path() == s.as_path())
            })
            .build();
        for entry in walk {
            let entry = entry.map_err(|e| bad(format!("walking {}: {e}", root.display())))?;
            let Some(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                continue;
            }
            let path = entry.path();
            if !matcher.matched_path_or_any_parents(path, false).is_ignore() {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap_or(path).to_path_buf();
            if relative.as_os_str() == INCLUDE_FILE {
                continue;
            }
            let (link, seen, identity) = if kind.is_symlink() {
                (Some(check_link(root, path)?), None, None)
            } else if kind.is_file() {
                let meta = entry.metadata().ok();
                let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
                included.bytes += len;
                if included.bytes > limits.bytes {
                    return Err(bad(format!(
                        "the files it names hold more than {} bytes (the walk stopped at {}, {len} \
                         bytes); narrow its patterns, link large directories instead (`symlink` \
                         in ff.toml), or raise include_max_bytes",
                        limits.bytes,
                        crate::display::escape_path(path)
                    )));
                }
                (
                    None,
                    Some((len, meta.as_ref().and_then(|m| m.modified().ok()))),
                    meta.as_ref().and_then(identity_of),
                )
            } else {
                // A FIFO, socket or device: reading one could block
                // forever or never end. Not a file to copy.
                tracing::debug!(path = %path.display(), "not a regular file; not copied");
                continue;
            };
            included.entries.push(Entry {
                path: relative,
                link,
                seen,
                identity,
            });
            if included.entries.len() > limit {
                return Err(bad(format!(
                    "it names more than {limit} files (the walk stopped at {}); \
                     narrow its patterns, and link large directories instead (`symlink` in ff.toml)",
                    path.display()
                )));
            }
        }
        Ok(Some(included))
    }

    /// How many files and symlinks it names.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it names nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bytes of the files it names.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Copies every named file into `dest` (a fresh checkout of the same
    /// repository), at the same relative path; what `dest` has already
    /// stays as it is.
    ///
    /// # Errors
    /// [`Backend`](ff_traits::Error::Backend) naming the file when reading,
    /// writing or renaming fails, or when a file kept changing while it
    /// was copied.
    pub fn copy_into(&self, dest: &Path) -> Result<Copied> {
        #[cfg(unix)]
        return unix::copy_into(self, dest);
        #[cfg(not(unix))]
        self.copy_by_path(dest)
    }

    /// The copy by path, for platforms without descriptor-relative calls.
    #[cfg(not(unix))]
    fn copy_by_path(&self, dest: &Path) -> Result<Copied> {
        let mut copied = Copied::default();
        // Copy-on-write clones are tried until the filesystem says it has
        // none; then plain copies (which the kernel may still share).
        let mut cloning = true;
        for entry in &self.entries {
            let to = dest.join(&entry.path);
            if std::fs::symlink_metadata(&to).is_ok() {
                copied.skipped += 1;
                continue;
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_error("creating", parent, &e))?;
            }
            match &entry.link {
                Some(target) => {
                    symlink(target, &to)?;
                    copied.links += 1;
                }
                None => {
                    copied.bytes +=
                        copy_whole(&self.root.join(&entry.path), &to, entry.seen, &mut cloning)?;
                    copied.files += 1;
                }
            }
        }
        Ok(copied)
    }
}

/// The matcher of `.worktreeinclude`'s lines, refusing lines that could
/// name something outside the repository.
fn matcher(root: &Path, text: &str) -> Result<Gitignore> {
    let mut builder = GitignoreBuilder::new(root);
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let pattern = trimmed.trim_start_matches('!');
        if pattern.split(['/', '\\']).any(|segment| segment == "..") {
            return Err(bad(format!(
                "line {}: {trimmed:?} has a `..` segment; patterns name files inside the repository",
                n + 1
            )));
        }
        builder
            .add_line(None, line)
            .map_err(|e| bad(format!("line {}: {trimmed:?}: {e}", n + 1)))?;
    }
    builder
        .build()
        .map_err(|e| bad(format!("cannot be read as gitignore patterns: {e}")))
}

/// A named symlink's target, when it resolves inside the repository.
fn check_link(root: &Path, path: &Path) -> Result<PathBuf> {
    let target = std::fs::read_link(path).map_err(|e| io_error("reading", path, &e))?;
    let outside = || {
        bad(format!(
            "{} is a symlink to {}, outside the repository (or to nothing); \
             copy what it points to into the repository, or drop it from {INCLUDE_FILE}",
            path.display(),
            target.display()
        ))
    };
    let resolved = std::fs::canonicalize(path).map_err(|_| outside())?;
    let root = std::fs::canonicalize(root).map_err(|e| io_error("reading", root, &e))?;
    let inside = resolved.starts_with(&root)
        && !resolved.strip_prefix(&root).is_ok_and(|r| {
            r.components()
                .any(|c| c == Component::Normal(".git".as_ref()))
        });
    if !inside || target.is_absolute() {
        // An absolute target inside the repository would point every
        // worktree at the main one's file: not a copy either.
        return Err(outside());
    }
    Ok(target)
}

/// Copies `from` to the new file `to` (a clone while `cloning`), with
/// its permissions; again while `from` was not the same before and after
/// (`seen`: as listed), so the copy holds one state of it. Nobody sees `to`
/// before the worktree is handed out, and a failed create removes it.
/// Returns the bytes copied.
#[cfg(not(unix))]
fn copy_whole(
    from: &Path,
    to: &Path,
    mut seen: Option<(u64, Option<std::time::SystemTime>)>,
    cloning: &mut bool,
) -> Result<u64> {
    let state = |m: &std::fs::Metadata| (m.len(), m.modified().ok());
    for _ in 0..COPY_ATTEMPTS {
        let before = match seen.take() {
            Some(s) => s,
            None => state(&std::fs::metadata(from).map_err(|e| io_error("reading", from, &e))?),
        };
        let _ = std::fs::remove_file(to);
        let cloned = *cloning && {
            match reflink_copy::reflink(from, to) {
                Ok(()) => true,
                Err(e) => {
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                    ) {
                        return Err(io_error("copying", from, &e));
                    }
                    tracing::debug!(error = %e, "no copy-on-write clones here; copying");
                    *cloning = false;
                    false
                }
            }
        };
        if !cloned {
            std::fs::copy(from, to).map_err(|e| io_error("copying", from, &e))?;
        }
        let after = state(&std::fs::metadata(from).map_err(|e| io_error("reading", from, &e))?);
        if before == after {
            return Ok(after.0);
        }
    }
    let _ = std::fs::remove_file(to);
    Err(ff_traits::Error::Backend {
        backend: "worktree include".into(),
        message: format!(
            "{} changed each of {COPY_ATTEMPTS} times it was copied; create again once it is still",
            from.display()
        ),
        source: None,
    }
    .into())
}

#[cfg(unix)]
mod unix;

#[cfg(unix)]
fn symlink(target: &Path, at: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, at).map_err(|e| io_error("linking", at, &e))
}

#[cfg(not(unix))]
fn symlink(target: &Path, at: &Path) -> Result<()> {
    let _ = target;
    Err(ff_traits::Error::Unsupported {
        backend: "worktree include".into(),
        what: format!("symlinks ({}) on this platform", at.display()),
    }
    .into())
}

/// A file's device and inode (Unix).
#[allow(clippy::unnecessary_wraps, clippy::trivially_copy_pass_by_ref)]
fn identity_of(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

fn io_error(doing: &str, path: &Path, e: &std::io::Error) -> Error {
    ff_traits::Error::io(
        "worktree include",
        &format!("{doing} {}", path.display()),
        e,
    )
    .into()
}

/// Checks the paths `symlink` (in ff.toml) names: relative, inside the
/// repository, no `..`, not `.git`.
///
/// # Errors
/// [`InvalidInput`](ff_traits::Error::InvalidInput) naming the path.
pub fn check_links(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        let fine = !p.as_os_str().is_empty()
            && p.components()
                .all(|c| matches!(c, Component::Normal(n) if n != ".git"));
        if !fine {
            return Err(ff_traits::Error::invalid_input(
                "symlink",
                format!(
                    "{:?}: name a directory or file inside the repository by a relative path, \
                     without `..` or `.git`",
                    p.display().to_string()
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// Makes, in `dest`, a symlink to `root`'s copy of each path in `paths`
/// (for large directories: dependencies, caches); a path `root` lacks, or
/// `dest` has already, is skipped. Returns how many links were made.
///
/// # Errors
/// As [`check_links`]; [`Backend`](ff_traits::Error::Backend) when a link
/// cannot be made.
pub fn link_into(root: &Path, dest: &Path, paths: &[PathBuf]) -> Result<usize> {
    check_links(paths)?;
    let mut made = 0;
    for p in paths {
        let source = root.join(p);
        let at = dest.join(p);
        if std::fs::symlink_metadata(&source).is_err() || std::fs::symlink_metadata(&at).is_ok() {
            continue;
        }
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error("creating", parent, &e))?;
        }
        symlink(&source, &at)?;
        made += 1;
    }
    Ok(made)
}
