//! Path normalisation, the one place where platforms differ for paths.
//!
//! On Windows, `std::fs::canonicalize` returns verbatim paths
//! (`\\?\C:\…`), which git does not understand and would then print back
//! in a different form, so paths would stop comparing equal to what
//! `git worktree list` says. `dunce` returns the plain form whenever one
//! exists (and behaves like `std` elsewhere). Windows paths also compare
//! without regard to case ([`same_path`]); the porcelain parser turns git's
//! `/` separators into `\`.

use std::io;
use std::path::{Path, PathBuf};

/// The canonical form of `path`, without a verbatim prefix where possible.
pub(crate) fn canonical(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    dunce::canonicalize(path)
}

/// Whether two paths name the same place as git and this crate write them:
/// exactly on Unix; ignoring ASCII case on Windows, whose filesystems do.
pub(crate) fn same_path(a: &Path, b: &Path) -> bool {
    if cfg!(windows) {
        a.as_os_str().eq_ignore_ascii_case(b.as_os_str())
    } else {
        a == b
    }
}

/// Refuses a path with a NUL byte, which no filesystem call can take: said
/// as bad input up front rather than as an I/O failure halfway through.
pub(crate) fn refuse_nul(what: &str, path: &Path) -> ff_traits::Result<()> {
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(ff_traits::Error::invalid_input(
            what,
            format!(
                "{:?} contains a NUL byte; name a real directory",
                path.display()
            ),
        ));
    }
    Ok(())
}
