//! Mending what a killed git leaves in `.git`, and the few files of `.git`
//! ForgeFlow writes itself. Everything here that touches `.git` directly
//! lives in this module, so the rest of the crate reaches git only through
//! [`Git`].
//!
//! Each repair is narrow: it touches only what ForgeFlow's own worktrees
//! and refs left, and only once the evidence says the git that left it is
//! dead (a lock file old and unchanged, a `commondir` git never leaves
//! empty).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Git, GitError};

/// How old a git lock file on one of ForgeFlow's refs must be before it
/// counts as left by a killed git: git holds a ref lock for milliseconds.
const STALE_REF_LOCK: Duration = Duration::from_secs(2);

/// How old the repository-wide `packed-refs.lock` must be before it counts
/// as a killed git's: far above the second git itself waits for it.
const STALE_PACKED_REFS_LOCK: Duration = Duration::from_secs(10);

/// Removes the git lock file `lock` if it is at least `min_age` old
/// (waiting until it is) and unchanged meanwhile; returns whether it did.
async fn clear_stale_lock(lock: &Path, min_age: Duration) -> bool {
    let Ok(first) = std::fs::metadata(lock).and_then(|m| m.modified()) else {
        return false;
    };
    let age = first.elapsed().unwrap_or_default();
    if age < min_age {
        tokio::time::sleep(min_age - age).await;
    }
    if std::fs::metadata(lock).and_then(|m| m.modified()).ok() != Some(first) {
        return false;
    }
    match std::fs::remove_file(lock) {
        Ok(()) => {
            tracing::warn!(lock = %lock.display(), "removed a stale git lock a killed git left");
            true
        }
        Err(e) => {
            tracing::warn!(lock = %lock.display(), error = %e, "cannot remove a stale git lock");
            false
        }
    }
}

/// How old the repository's `config.lock` must be before it counts as a
/// killed git's: git holds it for milliseconds.
const STALE_CONFIG_LOCK: Duration = Duration::from_secs(10);

/// Whether the repository reads per-worktree configuration
/// (`extensions.worktreeConfig`), read from its `config` in-process.
pub(crate) fn worktree_config_enabled(common_dir: &Path) -> bool {
    std::fs::read_to_string(common_dir.join("config")).is_ok_and(|text| {
        crate::sparse::config_bool(&text, "extensions", "worktreeconfig") == Some(true)
    })
}

/// Runs `args` in `git`, a call that writes the repository's shared
/// `config`; when it fails on a `config.lock` a killed git left (old and
/// unchanged), removes that lock and runs it once more. Call under the
/// registry lock, which serializes ForgeFlow's own writes of it.
///
/// # Errors
/// [`GitError`] with git's message.
pub(crate) async fn run_writing_config(
    git: &Git,
    common_dir: &Path,
    args: &[&str],
) -> Result<(), GitError> {
    let out = git.output(args, false).await?;
    if out.success() {
        return Ok(());
    }
    let lock = common_dir.join("config.lock");
    if out.stderr.contains("config") && clear_stale_lock(&lock, STALE_CONFIG_LOCK).await {
        git.run(args).await?;
        return Ok(());
    }
    Err(GitError::Failed {
        args: args.join(" "),
        code: out.code,
        stderr: out.stderr,
    })
}

/// Removes `<ref>.lock` left by a git process killed while updating
/// `refname`, which would make every later update of it fail ("cannot lock
/// ref"). Only a lock at least two seconds old and unchanged meanwhile is
/// removed. Call only for ForgeFlow's own refs, under the lock that
/// serializes ForgeFlow's changes to them.
pub(crate) async fn clear_stale_ref_lock(common_dir: &Path, refname: &str) {
    clear_stale_lock(&common_dir.join(format!("{refname}.lock")), STALE_REF_LOCK).await;
}

/// Deletes `refname` only if it still points at `old`
/// (`git update-ref -d <ref> <old>`), after clearing a stale lock a killed
/// git left on it. A git killed while deleting a ref leaves the
/// repository-wide `packed-refs.lock`, and then every ref deletion fails:
/// one that is old and unchanged is a dead git's, so it is removed and the
/// deletion tried once more.
/// Returns `false` when the ref moved, or vanished, meanwhile: the caller
/// reads it again and judges anew.
///
/// # Errors
/// [`GitError`] with git's message for any other failure.
pub(crate) async fn delete_ref_at(
    git: &Git,
    common_dir: &Path,
    refname: &str,
    old: &str,
) -> Result<bool, GitError> {
    clear_stale_ref_lock(common_dir, refname).await;
    let mut out = git
        .output(["update-ref", "-d", refname, old], false)
        .await?;
    if !out.success()
        && out.stderr.contains("packed-refs.lock")
        && clear_stale_lock(&common_dir.join("packed-refs.lock"), STALE_PACKED_REFS_LOCK).await
    {
        out = git
            .output(["update-ref", "-d", refname, old], false)
            .await?;
    }
    if out.success() {
        return Ok(true);
    }
    // "cannot lock ref '…': is at X but expected Y", or the ref is gone.
    if out.stderr.contains("but expected")
        || out.stderr.contains("unable to resolve reference")
        || out.stderr.contains("does not exist")
    {
        return Ok(false);
    }
    Err(GitError::Failed {
        args: format!("update-ref -d {refname} {old}"),
        code: out.code,
        stderr: out.stderr,
    })
}

/// `git worktree remove --force --force` of a registered worktree, even one
/// a killed git left half-made or half-removed: then its directory lacks a
/// valid `.git` file and git refuses to touch it, so the directory (the
/// caller's own) is deleted and git's registration of a missing directory
/// goes cleanly.
///
/// # Errors
/// [`GitError`] with git's message, or [`GitError::Io`] when the directory
/// cannot be deleted.
pub(crate) async fn remove_worktree(git: &Git, path: &Path) -> Result<(), GitError> {
    let args: [&std::ffi::OsStr; 6] = [
        "worktree".as_ref(),
        "remove".as_ref(),
        "--force".as_ref(),
        "--force".as_ref(),
        "--".as_ref(),
        path.as_os_str(),
    ];
    let out = git.output(args, false).await?;
    if out.success() {
        return Ok(());
    }
    if !out.stderr.contains("validation failed") {
        return Err(GitError::Failed {
            args: format!("worktree remove --force --force -- {}", path.display()),
            code: out.code,
            stderr: out.stderr,
        });
    }
    tracing::warn!(path = %path.display(), reason = %out.stderr, "removing a half-removed worktree by hand");
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|source| GitError::Io {
            args: format!("(removing {} by hand)", path.display()),
            source,
        })?;
    }
    git.run(args).await.map(|_| ())
}

/// The length of the `commondir` file git writes for a linked worktree:
/// `../..` and a newline.
const WHOLE_COMMONDIR_LEN: u64 = "../..\n".len() as u64;

/// The admin directories (`.git/worktrees/<id>`) of the worktrees under
/// `base` whose `commondir` file a `git worktree add` killed mid-write left
/// empty; with `mend`, rewritten first.
///
/// Git writes that file (always `../..`) without a rename, and one left
/// empty makes every `git worktree` and `git branch -D` in the whole
/// repository die ("failed to read .../commondir"). Writing the same
/// `../..` git writes is safe without any lock: a live `worktree add`
/// racing with this writes the same bytes. Only admin directories whose
/// `gitdir` (written before `commondir`) points into `base` are touched;
/// anyone else's is left for its owner.
pub(crate) async fn torn_commondirs(common_dir: &Path, base: &Path, mend: bool) -> Vec<PathBuf> {
    let admin = common_dir.join("worktrees");
    let base = base.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let Ok(entries) = std::fs::read_dir(&admin) else {
            return Vec::new();
        };
        let mut torn = Vec::new();
        for dir in entries.flatten().map(|e| e.path()) {
            let commondir = dir.join("commondir");
            // One `stat` each: whole, the file is `../..` and a newline,
            // and only a shorter one can be torn. (Every registry lock
            // looks, and at 1,000 worktrees reading each file was 5,000
            // system calls.)
            if std::fs::metadata(&commondir).is_ok_and(|m| m.len() >= WHOLE_COMMONDIR_LEN) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&commondir) else {
                continue;
            };
            if !text.trim().is_empty() {
                continue;
            }
            let gitdir = std::fs::read(dir.join("gitdir")).unwrap_or_default();
            let gitdir = super::porcelain::bytes_to_path(gitdir.trim_ascii());
            let ours = gitdir
                .parent()
                .and_then(Path::parent)
                .is_some_and(|p| crate::paths::same_path(p, &base));
            if !ours {
                tracing::warn!(admin = %dir.display(), "a worktree that is not ForgeFlow's has an empty commondir; left alone");
                continue;
            }
            if !mend {
                torn.push(dir);
                continue;
            }
            let tmp = dir.join("commondir.ff-tmp");
            match std::fs::write(&tmp, "../..\n").and_then(|()| std::fs::rename(&tmp, &commondir))
            {
                Ok(()) => {
                    tracing::warn!(admin = %dir.display(), "rewrote the commondir a killed `git worktree add` left empty");
                    torn.push(dir);
                }
                Err(e) => {
                    tracing::warn!(admin = %dir.display(), error = %e, "cannot rewrite an empty commondir");
                }
            }
        }
        torn
    })
    .await
    .unwrap_or_default()
}

/// The directories of the linked worktrees git has registered, read from
/// `<common dir>/worktrees/*/gitdir` (each names `<worktree>/.git`),
/// without running git. Entries git could not read either are skipped.
pub(crate) fn registered_paths(common_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(common_dir.join("worktrees")) else {
        return Vec::new();
    };
    let mut parents = Parents::default();
    entries
        .flatten()
        .filter_map(|e| registered_dir(&e.path(), &mut parents))
        .collect()
}

/// Whether git's registry lists a worktree at `path` (a canonical path).
/// Git names a worktree's admin directory after the worktree's own
/// directory, so that entry is read first and a registered worktree is
/// found without reading the others; the whole registry is read only to
/// say no (or for an admin directory git had to number).
pub(crate) fn is_registered(common_dir: &Path, path: &Path) -> bool {
    let mut parents = Parents::default();
    if let Some(name) = path.file_name() {
        let admin = common_dir.join("worktrees").join(name);
        if registered_dir(&admin, &mut parents)
            .is_some_and(|dir| crate::paths::same_path(&dir, path))
        {
            return true;
        }
    }
    registered_paths(common_dir)
        .iter()
        .any(|p| crate::paths::same_path(p, path))
}

/// The worktree directory the admin directory `admin` registers, made
/// canonical; `None` when its `gitdir` cannot be read.
fn registered_dir(admin: &Path, parents: &mut Parents) -> Option<PathBuf> {
    let bytes = read_small(&admin.join("gitdir")).ok()?;
    let gitdir = super::porcelain::bytes_to_path(bytes.trim_ascii());
    let dir = gitdir.parent()?;
    Some(parents.canonical(dir).unwrap_or_else(|| dir.to_path_buf()))
}

/// A small file's bytes: open, read to the end, close. (`std::fs::read`
/// first asks the file's size too: one more system call, which a
/// registry read at 1,000 worktrees paid 1,000 times.)
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(512);
    // Through `Take`'s generic reading, which asks no size.
    std::io::Read::take(file, u64::MAX).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Canonical forms of parent directories, looked up once each: an
/// issue's worktrees all sit in one base path, and making each of a
/// thousand entries canonical from the root up (a `readlink` per
/// component) was most of what a create spent on the registry there.
#[derive(Default)]
struct Parents(std::collections::HashMap<PathBuf, Option<PathBuf>>);

impl Parents {
    /// `dir` made canonical. On Linux, a last component that is no
    /// symbolic link is joined to its parent's canonical form, which is
    /// what resolving the whole path gives; elsewhere (case-insensitive
    /// and short names) and for a link, the whole path is resolved.
    fn canonical(&mut self, dir: &Path) -> Option<PathBuf> {
        let plain_last = cfg!(target_os = "linux")
            && dir.is_absolute()
            && std::fs::symlink_metadata(dir).is_ok_and(|m| !m.file_type().is_symlink());
        match (dir.parent(), dir.file_name()) {
            (Some(parent), Some(name)) if plain_last => {
                let parent = self
                    .0
                    .entry(parent.to_path_buf())
                    .or_insert_with(|| crate::paths::canonical(parent).ok())
                    .as_ref()?;
                Some(parent.join(name))
            }
            _ => crate::paths::canonical(dir).ok(),
        }
    }
}

/// The branch git's registry says the worktree at `path` has checked out
/// (read in-process from `<common dir>/worktrees/*/HEAD`); `None` when no
/// worktree is registered there or its HEAD is detached.
pub(crate) fn checked_out_branch(common_dir: &Path, path: &Path) -> Option<String> {
    let entries = std::fs::read_dir(common_dir.join("worktrees")).ok()?;
    entries.flatten().find_map(|e| {
        let bytes = std::fs::read(e.path().join("gitdir")).ok()?;
        let gitdir = super::porcelain::bytes_to_path(bytes.trim_ascii());
        let dir = gitdir.parent()?;
        let dir = crate::paths::canonical(dir).unwrap_or_else(|_| dir.to_path_buf());
        if !crate::paths::same_path(&dir, path) {
            return None;
        }
        let head = std::fs::read_to_string(e.path().join("HEAD")).ok()?;
        head.trim()
            .strip_prefix("ref: refs/heads/")
            .map(str::to_owned)
    })
}

fn exclude_file(common_dir: &Path) -> PathBuf {
    common_dir.join("info").join("exclude")
}

/// Those of `lines` that `.git/info/exclude` does not list yet.
pub(crate) fn not_excluded(common_dir: &Path, lines: &[String]) -> Vec<String> {
    let text = std::fs::read_to_string(exclude_file(common_dir)).unwrap_or_default();
    let listed: std::collections::HashSet<&str> = text.lines().map(str::trim).collect();
    let mut missing: Vec<String> = lines
        .iter()
        .filter(|l| !listed.contains(l.as_str()))
        .cloned()
        .collect();
    missing.dedup();
    missing
}

/// Adds those of `lines` that `.git/info/exclude` does not list yet, the
/// file replaced whole (a crash leaves the old file or the new, never a
/// torn one) and keeping its permissions. Call under the lock that
/// serializes ForgeFlow's registry changes: git never writes this file,
/// but two ForgeFlow processes could.
///
/// # Errors
/// [`ff_traits::Error::Backend`] when the file cannot be written.
pub(crate) fn exclude(common_dir: &Path, lines: &[String]) -> crate::Result<()> {
    let missing = not_excluded(common_dir, lines);
    if missing.is_empty() {
        return Ok(());
    }
    let file = exclude_file(common_dir);
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for line in missing {
        text.push_str(&line);
        text.push('\n');
    }
    let fail =
        |e: &std::io::Error| crate::Error::io("worktree", "cannot update .git/info/exclude", e);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::Error::io("worktree", "cannot create .git/info", &e))?;
    }
    let mode = std::fs::metadata(&file).map(|m| m.permissions()).ok();
    let tmp = file.with_file_name(format!(".exclude.{}", ff_traits::identity::unique_id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        if let Some(mode) = &mode {
            f.set_permissions(mode.clone())?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &file)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&e));
    }
    Ok(())
}

/// `path` (relative to a worktree's root) as an exclude line matching it
/// alone: anchored, with gitignore's special characters escaped. `None`
/// for a path that is not plain UTF-8 or has a part git would not take.
pub(crate) fn exclude_line(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    if text.is_empty() || text.contains('\n') || text.contains('\r') {
        return None;
    }
    let mut line = String::from("/");
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '!' | '#') {
            line.push('\\');
        }
        line.push(c);
    }
    if line.ends_with(' ') {
        line.insert(line.len() - 1, '\\');
    }
    Some(line)
}

/// The admin directory (`.git/worktrees/<id>`) of the linked worktree at
/// `path` when a killed `git worktree add` left its registration half-made:
/// git writes a placeholder `HEAD` of zeros (and a `locked` file saying
/// `initializing`) before pointing `HEAD` at the branch, so a kill between
/// leaves a worktree every git command there rejects and `git fsck` flags
/// ("detached HEAD points at nothing").
pub(crate) fn half_made_registration(path: &Path) -> Option<PathBuf> {
    let dotgit = std::fs::read_to_string(path.join(".git")).ok()?;
    let admin = PathBuf::from(dotgit.trim().strip_prefix("gitdir:")?.trim());
    let admin = if admin.is_absolute() {
        admin
    } else {
        path.join(admin)
    };
    let head = std::fs::read_to_string(admin.join("HEAD")).ok()?;
    let head = head.trim();
    (!head.is_empty() && head.bytes().all(|b| b == b'0')).then_some(admin)
}

/// Finishes what a killed `git worktree add` of `branch` began in `admin`:
/// `HEAD` names the branch, and git's `initializing` lock goes (a lock
/// with any other reason is someone's, and stays). The caller holds the
/// worktree's issue lock, so no live add is racing with this.
///
/// # Errors
/// When the files cannot be written.
pub(crate) fn finish_registration(admin: &Path, branch: &str) -> std::io::Result<()> {
    let tmp = admin.join("HEAD.ff-tmp");
    std::fs::write(&tmp, format!("ref: refs/heads/{branch}\n"))?;
    std::fs::rename(&tmp, admin.join("HEAD"))?;
    let locked = admin.join("locked");
    if std::fs::read_to_string(&locked).is_ok_and(|reason| reason.trim() == "initializing") {
        std::fs::remove_file(&locked)?;
    }
    Ok(())
}
