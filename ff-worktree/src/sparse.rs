//! Sparse worktrees: only the files at the top of the tree and a few
//! directories, whole, checked out (git's cone mode). On a large
//! repository an agent that works in `services/api` need not wait for, or
//! store, the other 99 %.
//!
//! A sparse worktree is made as every worktree is (registered without a
//! checkout), then given its directories (`git sparse-checkout set --cone`,
//! which keeps them in the worktree's own git directory) before the
//! checkout, so the files outside them are never written. Everything
//! after is git's: `git status`, a rebase or merge by `ff sync`, the
//! snapshot a forced cleanup keeps, all leave the files outside the cone
//! alone, and the agent may widen the set itself (`git sparse-checkout
//! add DIR`, or `disable` for the whole tree). What a worktree checks out
//! now is read from those files when it is shown ([`Sparse`]), not
//! remembered from its creation.

use std::path::Path;

use crate::{Error, Result};

/// Longest directory name accepted, in bytes.
const MAX_LEN: usize = 4096;

/// A directory a sparse worktree checks out, relative to the top of the
/// repository, with `/` between its parts: `services/api`.
///
/// ```
/// use ff_worktree::SparseDir;
///
/// assert_eq!(SparseDir::parse("services/api/").unwrap().as_str(), "services/api");
/// assert!(SparseDir::parse("../elsewhere").is_err());
/// assert!(SparseDir::parse("/etc").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SparseDir(String);

impl SparseDir {
    /// Checks `dir`: relative, inside the tree (no `.` or `..` part, no
    /// `.git`), `/` between parts (a trailing one is dropped), no control
    /// characters or backslashes, at most 4,096 bytes.
    ///
    /// # Errors
    /// [`InvalidInput`](ff_traits::Error::InvalidInput) naming what is
    /// wrong with it.
    pub fn parse(dir: &str) -> Result<Self> {
        let bad = |why: &str| {
            Err(Error::invalid_input(
                "sparse directory",
                format!(
                    "{}: {why}; name a directory of the repository relative to its top, such as \
                     services/api",
                    crate::display::escape(dir)
                ),
            ))
        };
        let trimmed = dir.strip_suffix('/').unwrap_or(dir);
        if trimmed.is_empty() {
            return bad("empty (the top-level files are always checked out)");
        }
        if trimmed.len() > MAX_LEN {
            return bad("longer than 4096 bytes");
        }
        if trimmed.starts_with('/') || trimmed.as_bytes().get(1) == Some(&b':') {
            return bad("absolute");
        }
        if trimmed.chars().any(|c| c.is_control() || c == '\\') {
            return bad("control characters and backslashes are not accepted");
        }
        for part in trimmed.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return bad("every part must be a name (no empty, `.` or `..` part)");
            }
            if part.eq_ignore_ascii_case(".git") {
                return bad("git's own directory is never checked out");
            }
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The directory, as given (without a trailing `/`).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SparseDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SparseDir {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// What a new worktree checks out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Checkout {
    /// What git gives a new worktree (default): every file, unless the
    /// main worktree is sparse, whose set git then copies to it.
    #[default]
    GitDefault,
    /// Every file, even when the main worktree is sparse.
    Full,
    /// The files at the top level and these directories, whole (git's
    /// cone mode). None: the top-level files alone (`ff create
    /// --no-checkout`); `git sparse-checkout add DIR` brings more.
    Sparse(Vec<SparseDir>),
}

impl Checkout {
    /// The sparse checkout of `dirs`, in order, each once.
    #[must_use]
    pub fn sparse(dirs: impl IntoIterator<Item = SparseDir>) -> Self {
        let mut seen = std::collections::BTreeSet::new();
        Self::Sparse(
            dirs.into_iter()
                .filter(|d| seen.insert(d.clone()))
                .collect(),
        )
    }
}

/// What a sparse worktree checks out now, read from its git directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Sparse {
    /// Cone mode (what ff sets up): `paths` are directories, checked out
    /// whole beside the top-level files. Otherwise `paths` are git's
    /// patterns, as someone set them.
    pub cone: bool,
    /// The directories (cone mode) or patterns.
    pub paths: Vec<String>,
}

/// What the repository's shared `config` says about sparse checkouts,
/// read once for a whole listing rather than once per worktree.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SharedConfig {
    /// `extensions.worktreeConfig`: git reads each worktree's
    /// `config.worktree` only when it is on.
    worktree_config: bool,
    sparse: Option<bool>,
    cone: Option<bool>,
}

impl SharedConfig {
    /// Reads `<common_dir>/config`; a missing or unreadable file says
    /// nothing (as git takes it).
    pub(crate) fn read(common_dir: &Path) -> Self {
        let text = std::fs::read_to_string(common_dir.join("config")).unwrap_or_default();
        Self {
            worktree_config: config_bool(&text, "extensions", "worktreeconfig") == Some(true),
            sparse: config_bool(&text, "core", "sparsecheckout"),
            cone: config_bool(&text, "core", "sparsecheckoutcone"),
        }
    }

    /// Whether some worktree may be sparse: without per-worktree
    /// configuration, only the shared setting can make one so.
    fn any_may_be_sparse(&self) -> bool {
        self.worktree_config || self.sparse == Some(true)
    }
}

/// What the worktree at `worktree` checks out, when it is sparse: `None`
/// for a full checkout, or when its git directory does not read plainly.
/// Read in-process from what git keeps (`config.worktree`, the
/// repository's `config`, `info/sparse-checkout`).
pub(crate) fn read(worktree: &Path, common_dir: &Path) -> Option<Sparse> {
    read_with(worktree, &SharedConfig::read(common_dir))
}

/// As [`read`], with the repository's shared configuration already read;
/// a repository where no worktree can be sparse costs no file read here.
pub(crate) fn read_with(worktree: &Path, shared: &SharedConfig) -> Option<Sparse> {
    if !shared.any_may_be_sparse() {
        return None;
    }
    let git_dir = crate::git::discover::worktree_git_dir(worktree)?;
    // Git reads `config.worktree` only under `extensions.worktreeConfig`.
    let own = if shared.worktree_config {
        std::fs::read_to_string(git_dir.join("config.worktree")).unwrap_or_default()
    } else {
        String::new()
    };
    let setting = |key: &str, shared: Option<bool>| config_bool(&own, "core", key).or(shared);
    if setting("sparsecheckout", shared.sparse) != Some(true) {
        return None;
    }
    let patterns = std::fs::read_to_string(git_dir.join("info").join("sparse-checkout")).ok()?;
    // Git reads the patterns as a cone only when they have its shape.
    let cone = setting("sparsecheckoutcone", shared.cone).unwrap_or(true);
    Some(match cone.then(|| cone_dirs(&patterns)).flatten() {
        Some(paths) => Sparse { cone: true, paths },
        None => Sparse {
            cone: false,
            paths: patterns
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect(),
        },
    })
}

/// The directories a cone-mode pattern file checks out whole: each `/D/`
/// that no `!/D/*/` follows (those are the parents git adds to reach a
/// directory). `None` when the file is not in the cone shape.
fn cone_dirs(patterns: &str) -> Option<Vec<String>> {
    let mut included = Vec::new();
    let mut parents = std::collections::HashSet::new();
    for line in patterns.lines().map(str::trim_end) {
        if line.is_empty() || line.starts_with('#') || line == "/*" || line == "!/*/" {
            continue;
        }
        if let Some(parent) = line.strip_prefix("!/").and_then(|l| l.strip_suffix("/*/")) {
            parents.insert(unescape(parent));
        } else if let Some(dir) = line.strip_prefix('/').and_then(|l| l.strip_suffix('/')) {
            included.push(unescape(dir));
        } else {
            return None;
        }
    }
    Some(
        included
            .into_iter()
            .filter(|d| !parents.contains(d))
            .collect(),
    )
}

/// Git escapes `*`, `?`, `[`, `]` and `\` in cone patterns with a backslash.
fn unescape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A boolean `key` of `section` in git configuration text, as git spells
/// them (case-insensitive names; `true`/`yes`/`on`/`1`, `false`/`no`/`off`/
/// `0`, a bare key is true); the last one wins. `None` when unset or not a
/// plain boolean.
pub(crate) fn config_bool(text: &str, section: &str, key: &str) -> Option<bool> {
    let mut in_section = false;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or_default().trim();
            in_section = name.eq_ignore_ascii_case(section);
            continue;
        }
        if !in_section {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap_or((line, "true"));
        if !name.trim().eq_ignore_ascii_case(key) {
            continue;
        }
        let value = value.split(['#', ';']).next().unwrap_or_default().trim();
        found = match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" | "" => Some(false),
            _ => None,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_checked_as_relative_names_inside_the_tree() {
        for good in ["a", "a/b", "services/api/", "with space", "ünï"] {
            assert!(SparseDir::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/", "/etc", "C:/x", "a//b", "./a", "a/../b", "..", ".git", "a/.GIT/x", "a\\b",
            "a\nb",
        ] {
            let e = SparseDir::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("sparse directory"), "{e}");
        }
        let checkout = Checkout::sparse(
            ["b", "a", "b/"]
                .iter()
                .map(|d| SparseDir::parse(d).expect("valid")),
        );
        assert_eq!(
            checkout,
            Checkout::Sparse(vec![
                SparseDir::parse("b").expect("b"),
                SparseDir::parse("a").expect("a")
            ])
        );
    }

    #[test]
    fn a_cone_file_reads_back_as_its_directories() {
        let file = "/*\n!/*/\n/d1/\n!/d1/*/\n/d1/x/\n/top\\*dir/\n";
        assert_eq!(
            cone_dirs(file),
            Some(vec!["d1/x".to_owned(), "top*dir".to_owned()])
        );
        assert_eq!(cone_dirs("/*\n!/*/\n"), Some(Vec::new()));
        assert_eq!(cone_dirs("*.rs\n"), None);
    }

    #[test]
    fn a_worktree_own_setting_counts_only_under_per_worktree_configuration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let common = dir.path().join("common");
        let git_dir = common.join("worktrees").join("w");
        let worktree = dir.path().join("w");
        std::fs::create_dir_all(git_dir.join("info")).expect("git dir");
        std::fs::create_dir_all(&worktree).expect("worktree");
        std::fs::write(
            worktree.join(".git"),
            format!("gitdir: {}\n", git_dir.display()),
        )
        .expect(".git");
        std::fs::write(
            git_dir.join("config.worktree"),
            "[core]\n\tsparseCheckout = true\n",
        )
        .expect("config.worktree");
        std::fs::write(
            git_dir.join("info").join("sparse-checkout"),
            "/*\n!/*/\n/docs/\n",
        )
        .expect("patterns");
        let config = common.join("config");
        // Git ignores `config.worktree` unless the extension is on.
        std::fs::write(&config, "[core]\n\tbare = false\n").expect("config");
        assert_eq!(read(&worktree, &common), None);
        std::fs::write(&config, "[extensions]\n\tworktreeConfig = true\n").expect("config");
        assert_eq!(
            read(&worktree, &common),
            Some(Sparse {
                cone: true,
                paths: vec!["docs".to_owned()]
            })
        );
        // The shared setting alone makes every worktree with patterns sparse.
        std::fs::remove_file(git_dir.join("config.worktree")).expect("rm");
        std::fs::write(
            &config,
            "[core]\n\tsparseCheckout = true\n\tsparseCheckoutCone = false\n",
        )
        .expect("config");
        assert_eq!(
            read(&worktree, &common),
            Some(Sparse {
                cone: false,
                paths: vec!["/*".to_owned(), "!/*/".to_owned(), "/docs/".to_owned()]
            })
        );
    }

    #[test]
    fn booleans_read_as_git_reads_them() {
        let text = "[core]\n\tsparseCheckout = true\n[other]\n\tsparsecheckout = false\n";
        assert_eq!(config_bool(text, "core", "sparsecheckout"), Some(true));
        assert_eq!(
            config_bool("[CORE]\nSparseCheckout\n", "core", "sparsecheckout"),
            Some(true)
        );
        assert_eq!(
            config_bool(
                "[core]\nsparseCheckout = off ; no\n",
                "core",
                "sparsecheckout"
            ),
            Some(false)
        );
        assert_eq!(
            config_bool("[core]\nbare = false\n", "core", "sparsecheckout"),
            None
        );
    }
}
