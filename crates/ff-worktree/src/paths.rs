//! Path normalisation, the one place where platforms differ for paths.
//!
//! On Windows, `std::fs::canonicalize` returns verbatim paths
//! (`\\?\C:\…`), which git does not understand and would then print back
//! in a different form, so paths would stop comparing equal to what
//! `git worktree list` says. `dunce` returns the plain form whenever one
//! exists (and behaves like `std` elsewhere).

use std::io;
use std::path::{Path, PathBuf};

/// The canonical form of `path`, without a verbatim prefix where possible.
pub(crate) fn canonical(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    dunce::canonicalize(path)
}
