//! The file lock passes the whole conformance suite, in both modes.

use std::path::PathBuf;
use std::sync::Arc;

use ff_lock_file::{FileLockMode, FileLockProvider};
use ff_traits::LockProvider;

fn fresh_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ff-lock-file-conformance")
        .join(ff_traits::identity::unique_id())
}

mod kernel {
    use super::*;
    ff_conformance::lock_conformance_tests!(async {
        Arc::new(FileLockProvider::new(fresh_dir())) as Arc<dyn LockProvider>
    });
}

mod lease {
    use super::*;
    // Lease files hold one holder: no shared mode, and the suite says so.
    ff_conformance::lock_conformance_tests!(exclusive_only async {
        Arc::new(FileLockProvider::new(fresh_dir()).with_mode(FileLockMode::Lease))
            as Arc<dyn LockProvider>
    });
}
