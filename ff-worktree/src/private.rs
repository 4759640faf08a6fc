//! Private state on disk: directories only their owner can enter (0700),
//! files only their owner can read (0600), whatever the umask, and no
//! symbolic link followed where state lives.
//!
//! State holds what commands printed (`ff once` replays it), hook logs,
//! lock holders' command lines and the user's approvals: often a secret.
//! And a state directory a repository could choose (approved or not) may
//! ship a link at `records.sqlite3` that points at a file of the user's,
//! so a link is refused, never followed.

use std::io::{self, Write as _};
use std::path::Path;

/// Makes `dir` and its missing parents, each new one private.
///
/// # Errors
/// As [`std::fs::DirBuilder::create`].
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes sure `dir` is a private directory of its own, not a link: made
/// (0700) when missing; an existing one that others may enter is made
/// private (state written by earlier releases was 0755).
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] when `dir` is a symbolic link or not a
/// directory; otherwise as the filesystem calls.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(link_refused(dir)),
        Ok(m) if !m.is_dir() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", crate::display::escape_path(dir)),
        )),
        Ok(m) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                if m.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
                }
            }
            #[cfg(not(unix))]
            let _ = m;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_dir_all(dir),
        Err(e) => Err(e),
    }
}

/// Refuses `path` when it is a symbolic link; anything else (missing
/// included) passes.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] for a link.
pub fn refuse_link(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(link_refused(path)),
        _ => Ok(()),
    }
}

fn link_refused(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is a symbolic link; state is never read or written through a link (remove it, \
             or name the real directory)",
            crate::display::escape_path(path)
        ),
    )
}

/// Options that create a private file (0600) and never follow a link at
/// the last component.
#[must_use]
pub fn file_options() -> std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut o = std::fs::OpenOptions::new();
        o.mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        o
    }
    #[cfg(not(unix))]
    std::fs::OpenOptions::new()
}

/// Writes `bytes` to `path` whole: a private temporary file beside it,
/// fsynced, then renamed over it (a link at `path` is replaced, not
/// followed).
///
/// # Errors
/// As the filesystem calls; the temporary file is removed on failure.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}", ff_traits::identity::unique_id()));
    let written = (|| {
        let mut f = file_options().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
