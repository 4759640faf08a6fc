//! What is on disk under a directory, to prove an operation changed nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every path under a root with its size (directories have none), except
/// git's `index` files, whose stat cache git refreshes on mere reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(BTreeMap<PathBuf, Option<u64>>);

impl Snapshot {
    /// Takes the snapshot of `root`, without following links.
    ///
    /// # Panics
    /// When a directory cannot be read.
    #[must_use]
    pub fn of(root: &Path) -> Self {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
                let path = entry.path();
                if path.file_name().is_some_and(|n| n == "index") {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(path.clone());
                    out.insert(path, None);
                } else {
                    out.insert(path, Some(meta.len()));
                }
            }
        }
        Self(out)
    }

    /// The paths added, removed or resized since `before`.
    #[must_use]
    pub fn changed_since(&self, before: &Self) -> Vec<PathBuf> {
        self.0
            .iter()
            .filter(|(p, size)| before.0.get(*p) != Some(size))
            .map(|(p, _)| p.clone())
            .chain(
                before
                    .0
                    .keys()
                    .filter(|p| !self.0.contains_key(*p))
                    .cloned(),
            )
            .collect()
    }
}
