//! The race-proof copy on Unix: every open is relative to a directory
//! descriptor and follows no link, so what a scan approved is what is
//! read, and what is written lands in the worktree and nowhere else.
//!
//! Between the scan and the copy, anyone who can write the main working
//! tree (an agent, a script of the repository's) may swap a listed file
//! for a symlink to `~/.ssh/id_ed25519`, a directory on the way for a
//! link, or a file for a FIFO. And the new checkout may itself hold a
//! tracked symlink where a listed file's directory would go (`config ->
//! /somewhere`). Each is refused here, never followed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek as _, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::{COPY_ATTEMPTS, Copied, Included, io_error};
use crate::display::escape_path;
use crate::{Error, Result};

/// Flags of every directory opened on the way: no link, no blocking.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

pub(super) fn copy_into(included: &Included, dest: &Path) -> Result<Copied> {
    let mut copied = Copied::default();
    let src_root = rustix::fs::open(&included.root, dir_flags(), Mode::empty())
        .map_err(|e| io_error("opening", &included.root, &e.into()))?;
    let dest_root = rustix::fs::open(dest, dir_flags(), Mode::empty())
        .map_err(|e| io_error("opening", dest, &e.into()))?;
    // Copy-on-write clones are tried until the filesystem says it has
    // none; then plain copies (which the kernel may still share).
    let mut cloning = true;
    // Directories opened once for all the entries beneath them (most
    // includes name a few directories' files).
    let mut dest_dirs: HashMap<Vec<&std::ffi::OsStr>, OwnedFd> = HashMap::new();
    let mut src_dirs: HashMap<Vec<&std::ffi::OsStr>, OwnedFd> = HashMap::new();
    for entry in &included.entries {
        let (parents, name) = split(&entry.path)?;
        let to = dest.join(&entry.path);
        if !dest_dirs.contains_key(&parents) {
            let dir = walk(&dest_root, &parents, Some(dest), &entry.path)?;
            dest_dirs.insert(parents.clone(), dir);
        }
        let dest_dir = &dest_dirs[&parents];
        match rustix::fs::statat(dest_dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            // The checkout has it (a tracked file): the branch's stays.
            Ok(_) => {
                copied.skipped += 1;
                continue;
            }
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(io_error("reading", &to, &e.into())),
        }
        match &entry.link {
            Some(target) => {
                rustix::fs::symlinkat(target, dest_dir, name)
                    .map_err(|e| io_error("linking", &to, &e.into()))?;
                copied.links += 1;
            }
            None => {
                if !src_dirs.contains_key(&parents) {
                    let dir = walk(&src_root, &parents, None, &entry.path)?;
                    src_dirs.insert(parents.clone(), dir);
                }
                copied.bytes += copy_file(
                    &src_dirs[&parents],
                    name,
                    dest_dir,
                    &included.root.join(&entry.path),
                    &to,
                    entry.identity,
                    &mut cloning,
                )?;
                copied.files += 1;
            }
        }
    }
    Ok(copied)
}

/// `path`'s directories and its last component, each a plain name.
fn split(path: &Path) -> Result<(Vec<&std::ffi::OsStr>, &std::ffi::OsStr)> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            _ => {
                return Err(super::bad(format!(
                    "{} is not a plain relative path",
                    escape_path(path)
                )));
            }
        }
    }
    let name = parts
        .pop()
        .ok_or_else(|| super::bad("an empty path".to_owned()))?;
    Ok((parts, name))
}

/// Opens each directory of `parents` under `root` without following a
/// link; with `create` (the destination root, for messages), makes the
/// missing ones (0755, as a checkout would).
fn walk(
    root: &OwnedFd,
    parents: &[&std::ffi::OsStr],
    create: Option<&Path>,
    for_path: &Path,
) -> Result<OwnedFd> {
    let mut at = rustix::fs::openat(root, ".", dir_flags(), Mode::empty())
        .map_err(|e| io_error("opening", for_path, &e.into()))?;
    for (i, part) in parents.iter().enumerate() {
        let opened = match rustix::fs::openat(&at, *part, dir_flags(), Mode::empty()) {
            Err(rustix::io::Errno::NOENT) if create.is_some() => {
                match rustix::fs::mkdirat(&at, *part, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(io_error("creating", for_path, &e.into())),
                }
                rustix::fs::openat(&at, *part, dir_flags(), Mode::empty())
            }
            other => other,
        };
        at = opened.map_err(|e| {
            let so_far: std::path::PathBuf = parents[..=i].iter().collect();
            match (e, create) {
                (rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR, Some(dest)) => {
                    link_in_the_way(&dest.join(so_far), for_path)
                }
                (rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR, None) => {
                    changed_since_scan(&so_far, "is no longer a directory (a link now?)")
                }
                (e, _) => io_error("opening", &so_far, &e.into()),
            }
        })?;
    }
    Ok(at)
}

fn link_in_the_way(at: &Path, for_path: &Path) -> Error {
    ff_traits::Error::invalid_input(
        super::INCLUDE_FILE,
        format!(
            "{} in the new worktree is a symbolic link (or not a directory), so {} cannot be \
             copied beneath it without writing outside the worktree; drop that file from {}, or \
             the link from the branch",
            escape_path(at),
            escape_path(for_path),
            super::INCLUDE_FILE
        ),
    )
    .into()
}

fn changed_since_scan(path: &Path, how: &str) -> Error {
    ff_traits::Error::invalid_input(
        super::INCLUDE_FILE,
        format!(
            "{} {how} since {} was read; nothing of it is copied (create again once the main \
             working tree is still)",
            escape_path(path),
            super::INCLUDE_FILE
        ),
    )
    .into()
}

/// Copies the regular file `name` of `from_dir` (the one the scan saw:
/// `identity`) into the new file `name` of `to_dir`, with its mode; again
/// while it changed during the copy. Returns its length.
fn copy_file(
    from_dir: &OwnedFd,
    name: &std::ffi::OsStr,
    to_dir: &OwnedFd,
    from: &Path,
    to: &Path,
    identity: Option<(u64, u64)>,
    cloning: &mut bool,
) -> Result<u64> {
    // O_NONBLOCK: a FIFO swapped in opens at once (and is refused below)
    // instead of waiting forever for a writer.
    let source = rustix::fs::openat(
        from_dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => changed_since_scan(from, "is a symbolic link now"),
        e => io_error("opening", from, &e.into()),
    })?;
    let stat = rustix::fs::fstat(&source).map_err(|e| io_error("reading", from, &e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(changed_since_scan(from, "is no longer a regular file"));
    }
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    let now = (stat.st_dev as u64, stat.st_ino as u64);
    if identity.is_some_and(|seen| seen != now) {
        return Err(changed_since_scan(from, "is another file"));
    }
    let mode = Mode::from_raw_mode(stat.st_mode & 0o777);
    let target = rustix::fs::openat(
        to_dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    )
    .map_err(|e| io_error("creating", to, &e.into()))?;
    let mut source = File::from(source);
    let mut target = File::from(target);
    let state = |f: &File| -> std::io::Result<(u64, Option<std::time::SystemTime>)> {
        let m = f.metadata()?;
        Ok((m.len(), m.modified().ok()))
    };
    // The first state is the fstat above; the file is new and empty, and
    // both offsets are at 0, until a change forces another attempt.
    let mut before = (u64::try_from(stat.st_size).unwrap_or(0), mtime_of(&stat));
    for attempt in 0..COPY_ATTEMPTS {
        if attempt > 0 {
            before = state(&source).map_err(|e| io_error("reading", from, &e))?;
            target
                .set_len(0)
                .and_then(|()| target.seek(SeekFrom::Start(0)))
                .and_then(|_| source.seek(SeekFrom::Start(0)))
                .map_err(|e| io_error("writing", to, &e))?;
        }
        if !(*cloning && clone(&source, &target)) {
            *cloning = false;
            copy_contents(&mut source, &mut target).map_err(|e| io_error("copying", from, &e))?;
        }
        let after = state(&source).map_err(|e| io_error("reading", from, &e))?;
        if before == after {
            // The umask may have narrowed the mode it was made with.
            rustix::fs::fchmod(target.as_fd(), mode)
                .map_err(|e| io_error("writing", to, &e.into()))?;
            return Ok(after.0);
        }
    }
    Err(ff_traits::Error::Backend {
        backend: "worktree include".into(),
        message: format!(
            "{} changed each of {COPY_ATTEMPTS} times it was copied; create again once it is still",
            escape_path(from)
        ),
        source: None,
    }
    .into())
}

/// Copies what is left of `source` to `target`: in the kernel
/// (`copy_file_range`, which may share extents) where it can, else
/// through a buffer.
fn copy_contents(source: &mut File, target: &mut File) -> std::io::Result<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut copied = 0u64;
        loop {
            match rustix::fs::copy_file_range(&*source, None, &*target, None, 1 << 30) {
                Ok(0) => return Ok(copied),
                Ok(n) => copied += n as u64,
                // Not between these files (another filesystem, an old
                // kernel): the buffer, from where the kernel stopped.
                Err(
                    rustix::io::Errno::XDEV
                    | rustix::io::Errno::NOSYS
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::OPNOTSUPP,
                ) if copied == 0 => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    std::io::copy(source, target)
}

/// A file's modification time from its `fstat`, as `Metadata::modified`
/// gives it.
#[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
fn mtime_of(stat: &rustix::fs::Stat) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(stat.st_mtime as i64).ok()?;
    let nanos = u32::try_from(stat.st_mtime_nsec as i64).ok()?;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(secs, nanos))
}

/// A copy-on-write clone of `source` into `target`, where the filesystem
/// makes one.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn clone(source: &File, target: &File) -> bool {
    match rustix::fs::ioctl_ficlone(target, source) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "no copy-on-write clones here; copying");
            false
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn clone(_: &File, _: &File) -> bool {
    false
}
