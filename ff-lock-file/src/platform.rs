//! What differs by operating system: opening lock files safely. (Whether
//! a holder still runs is `ff_traits::LockInfo::holder_liveness`.)

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens (creating if needed) a lock file for reading and writing, never
/// following a symbolic link at its last component. Rust opens files
/// close-on-exec, so child processes never inherit a lock.
pub(crate) fn open_lock_file(path: &Path, create_new: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Lock files hold the holder's command line: the owner's alone.
        opts.custom_flags(libc::O_NOFOLLOW).mode(0o600);
    }
    opts.open(path)
}

/// Whether the error says the path was a symbolic link we refused to follow.
pub(crate) fn is_symlink_refusal(err: &io::Error, path: &Path) -> bool {
    #[cfg(unix)]
    if err.raw_os_error() == Some(libc::ELOOP) {
        return true;
    }
    let _ = err;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}
