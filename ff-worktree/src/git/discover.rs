//! Repository discovery without running git, for the layouts nearly every
//! call meets: a directory inside a main worktree (`<top>/.git` a
//! directory) or inside a linked one (`<top>/.git` a file naming
//! `<common dir>/worktrees/<name>`). It reads what git itself reads
//! (`.git`, `commondir`, `HEAD`, the branch's ref) and answers what
//! [`Git::repository`](super::Git::repository) answers.
//!
//! Anything else goes to git, which stays the authority: configuration
//! or discovery settings in the environment, a bare repository or a call from inside a
//! git directory, a search that would cross a filesystem boundary, a
//! repository owned by another user (git's `safe.directory` check), a
//! configuration that sets `core.bare` or `core.worktree` or includes other
//! files, reftable refs, a git directory outside its main worktree
//! (`--separate-git-dir`), or a file that does not read as expected. Every
//! `None` below means "ask git".
//!
//! Why not gitoxide's `gix-discover`: it would answer the same few
//! questions from the same files, at the price of a dozen crates in every
//! build; these four reads are all we need, and the fallback keeps every
//! unusual layout exact.

use std::path::{Path, PathBuf};

use super::RepoInfo;

/// Environment variables that change how the git calls would discover the
/// repository: when one is set, git decides. (`GIT_DIR` and the other
/// repository overrides are not here: [`Git`](super::Git) removes them from
/// every call, so both paths ignore them alike. `GIT_CONFIG_COUNT` is
/// judged by the keys it sets: [`config_env_changes_discovery`].)
const DISCOVERY_ENV: [&str; 2] = ["GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_CONFIG_PARAMETERS"];

/// Sections of configuration that play no part in finding a repository:
/// keys set through `GIT_CONFIG_COUNT` in these (an identity for CI,
/// `user.useConfigOnly` on a fresh machine) leave discovery in-process.
const SECTIONS_DISCOVERY_IGNORES: [&str; 8] = [
    "user.",
    "author.",
    "committer.",
    "color.",
    "advice.",
    "init.",
    "commit.",
    "gpg.",
];

/// Whether `GIT_CONFIG_COUNT` sets a key that could change discovery (or
/// is malformed): then git decides.
fn config_env_changes_discovery() -> bool {
    let Some(count) = std::env::var_os("GIT_CONFIG_COUNT") else {
        return false;
    };
    let Some(count) = count.to_str().and_then(|c| c.trim().parse::<u32>().ok()) else {
        return true;
    };
    (0..count).any(|i| {
        std::env::var(format!("GIT_CONFIG_KEY_{i}")).map_or(true, |key| {
            let key = key.to_ascii_lowercase();
            !SECTIONS_DISCOVERY_IGNORES
                .iter()
                .any(|s| key.starts_with(s))
        })
    })
}

/// What in-process discovery found.
#[derive(Debug)]
pub(crate) enum Discovery {
    /// The repository, as git would describe it.
    Found(RepoInfo),
    /// No `.git` in the directory or any parent, on one filesystem: git
    /// would find none either.
    NoRepository,
    /// Something unusual: git must be asked.
    AskGit,
}

/// Describes the repository containing `dir` as git would.
pub(crate) fn in_process(dir: &Path) -> Discovery {
    if DISCOVERY_ENV.iter().any(|v| std::env::var_os(v).is_some()) || config_env_changes_discovery()
    {
        return Discovery::AskGit;
    }
    let Some(start) = crate::paths::canonical(dir).ok() else {
        return Discovery::AskGit;
    };
    let mut reached_root = false;
    let found = find(&start, &mut reached_root);
    match found {
        Some(info) => Discovery::Found(info),
        None if reached_root => Discovery::NoRepository,
        None => Discovery::AskGit,
    }
}

/// The search proper; `None` with `reached_root` set when there is no
/// repository at all.
fn find(start: &Path, reached_root: &mut bool) -> Option<RepoInfo> {
    let device = device_of(start)?;
    let mut here = start;
    let (worktree, git_dir) = loop {
        let dot_git = here.join(".git");
        match std::fs::symlink_metadata(&dot_git) {
            Ok(m) if m.is_dir() => break (here.to_path_buf(), dot_git),
            Ok(m) if m.is_file() => break (here.to_path_buf(), read_gitdir_file(&dot_git)?),
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
        // Inside a git directory, or a bare repository: git decides.
        if here.join("HEAD").is_file() && here.join("objects").is_dir() {
            return None;
        }
        let Some(parent) = here.parent() else {
            *reached_root = true;
            return None;
        };
        here = parent;
        if device_of(here)? != device {
            return None;
        }
    };
    if !owned_by_us(&worktree) {
        return None;
    }
    let git_dir = crate::paths::canonical(&git_dir).ok()?;
    if !git_dir.join("HEAD").is_file() {
        return None;
    }
    let common_dir = match std::fs::read(git_dir.join("commondir")) {
        Ok(bytes) => {
            let named = super::porcelain::bytes_to_path(bytes.trim_ascii());
            crate::paths::canonical(git_dir.join(named)).ok()?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => git_dir.clone(),
        Err(_) => return None,
    };
    if !plain_config(&common_dir, &git_dir) || common_dir.join("reftable").exists() {
        return None;
    }
    let toplevel = if crate::paths::same_path(&git_dir, &common_dir) {
        if common_dir.file_name()? != ".git" {
            return None;
        }
        worktree.clone()
    } else if common_dir.file_name()? == ".git" {
        common_dir.parent()?.to_path_buf()
    } else {
        return None;
    };
    let (head_branch, has_commits) = head_of(&common_dir)?;
    Some(RepoInfo {
        toplevel,
        worktree,
        common_dir,
        head_branch,
        has_commits,
    })
}

/// The git directory a `.git` file names (`gitdir: <path>`, relative to the
/// file's directory).
fn read_gitdir_file(dot_git: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(dot_git).ok()?;
    let named = bytes.trim_ascii().strip_prefix(b"gitdir: ")?;
    let named = super::porcelain::bytes_to_path(named.trim_ascii());
    Some(dot_git.parent()?.join(named))
}

/// Whether the repository's configuration leaves discovery to the layout:
/// no `core.bare`, no `core.worktree`, no includes (which could set them),
/// no reftable; with per-worktree configuration on
/// (`extensions.worktreeConfig`, which sparse worktrees turn on), the same
/// of the worktree's own `config.worktree` in `git_dir`.
fn plain_config(common_dir: &Path, git_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(common_dir.join("config")) else {
        return false;
    };
    if !plain_config_text(&text) {
        return false;
    }
    if crate::sparse::config_bool(&text, "extensions", "worktreeconfig") != Some(true) {
        return true;
    }
    match std::fs::read_to_string(git_dir.join("config.worktree")) {
        Ok(own) => plain_config_text(&own),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// [`plain_config`] of one file's text, judged section by section.
fn plain_config_text(text: &str) -> bool {
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim().to_ascii_lowercase();
        if let Some(header) = line.strip_prefix('[') {
            // A key after the header on the same line: git decides.
            let Some((name, rest)) = header.split_once(']') else {
                return false;
            };
            let rest = rest.trim_start();
            if !rest.is_empty() && !rest.starts_with(['#', ';']) {
                return false;
            }
            section = name.trim().to_owned();
            if section.starts_with("include") {
                return false;
            }
            continue;
        }
        let unplain = match section.as_str() {
            "core" => {
                line.starts_with("worktree")
                    || (line.starts_with("bare") && !line.ends_with("false"))
            }
            "extensions" => line.starts_with("refstorage"),
            _ => false,
        };
        if unplain {
            return false;
        }
    }
    true
}

/// The main worktree's HEAD: the branch it names (short) and whether it
/// resolves to a commit; `None` when it does not read plainly.
fn head_of(common_dir: &Path) -> Option<(Option<String>, bool)> {
    let head = std::fs::read_to_string(common_dir.join("HEAD")).ok()?;
    let head = head.trim_end();
    let Some(reference) = head.strip_prefix("ref: ") else {
        // Detached: an object id.
        return is_object_id(head).then_some((None, true));
    };
    let branch = reference.strip_prefix("refs/heads/")?;
    Some((Some(branch.to_owned()), ref_exists(common_dir, reference)?))
}

/// Whether `reference` (e.g. `refs/heads/main`) names an object, loose or
/// packed; `None` when the files do not read plainly.
fn ref_exists(common_dir: &Path, reference: &str) -> Option<bool> {
    read_branch(common_dir, reference).map(|id| id.is_some())
}

/// Where a worktree's HEAD points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// On a branch: its full ref (`refs/heads/…`).
    Branch(String),
    /// Detached at this object id.
    Detached(String),
}

/// The git directory of the linked worktree at `worktree`, as its `.git`
/// file names it; `None` when there is no such file or it does not read
/// plainly (the callers then ask git, or judge as git would without one).
/// Read once and handed to the readers below, which each look at one file
/// in it.
pub(crate) fn worktree_git_dir(worktree: &Path) -> Option<PathBuf> {
    read_gitdir_file(&worktree.join(".git"))
}

/// The HEAD of a worktree whose git directory is `git_dir`, as git reads
/// it; `None` when git must be asked (reftable, a HEAD that does not read
/// plainly).
pub(crate) fn head_in(git_dir: &Path) -> Option<Head> {
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim_end();
    match head.strip_prefix("ref: ") {
        // (Under reftable HEAD names `refs/heads/.invalid`: ask git.)
        Some(reference)
            if reference.starts_with("refs/heads/") && reference != "refs/heads/.invalid" =>
        {
            Some(Head::Branch(reference.to_owned()))
        }
        Some(_) => None,
        None => is_object_id(head).then(|| Head::Detached(head.to_owned())),
    }
}

/// Why git marks the worktree whose git directory is `git_dir` locked
/// (`git worktree lock`), when it does: the reason it keeps, or "no reason
/// given".
pub(crate) fn lock_reason_in(git_dir: &Path) -> Option<String> {
    let reason = std::fs::read_to_string(git_dir.join("locked")).ok()?;
    let reason = reason.trim();
    Some(if reason.is_empty() {
        "no reason given".to_owned()
    } else {
        reason.escape_debug().to_string()
    })
}

/// `rebase` or `merge` when one is unfinished in the worktree whose git
/// directory is `git_dir`: the state git keeps for one is there.
pub(crate) fn unfinished_in(git_dir: &Path) -> Option<&'static str> {
    if git_dir.join("rebase-merge").exists() || git_dir.join("rebase-apply").exists() {
        Some("rebase")
    } else if git_dir.join("MERGE_HEAD").exists() {
        Some("merge")
    } else {
        None
    }
}

/// The object a branch (`refs/heads/…`, shared by all worktrees) points
/// at, read from its loose file or `packed-refs` as git reads them:
/// `Some(None)` when there is no such branch, `None` when git must be
/// asked (a symbolic ref, reftable, a name that is not a plain branch, an
/// unreadable file).
pub(crate) fn read_branch(common_dir: &Path, reference: &str) -> Option<Option<String>> {
    let name = reference.strip_prefix("refs/heads/")?;
    if name.is_empty()
        || name
            .split('/')
            .any(|part| part.is_empty() || part.starts_with('.') || part.ends_with(".lock"))
        || name.contains(['\\', ':', '?', '*', '[', '^', '~', ' ', '\0'])
        || name.contains("..")
        || name.contains("@{")
        || common_dir.join("reftable").exists()
    {
        return None;
    }
    match std::fs::read_to_string(common_dir.join(reference)) {
        Ok(text) => {
            let id = text.trim_end();
            return is_object_id(id).then(|| Some(id.to_owned()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // A directory of that name, or unreadable: git decides.
        Err(_) => return None,
    }
    match std::fs::read_to_string(common_dir.join("packed-refs")) {
        Ok(text) => Some(text.lines().find_map(|line| {
            line.split_once(' ')
                .filter(|(id, name)| *name == reference && is_object_id(id))
                .map(|(id, _)| id.to_owned())
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(None),
        Err(_) => None,
    }
}

/// A branch that nests with `branch` (git keeps branches as paths, so
/// `a/b` cannot be made while `a` exists, nor `a` while `a/b` does): one
/// of its parents, or one beneath it. Read from the loose files and
/// `packed-refs` as git keeps them: `Some(None)` when none nests, `None`
/// when git must be asked (reftable, an unreadable file).
pub(crate) fn nesting_branch(common_dir: &Path, branch: &str) -> Option<Option<String>> {
    if common_dir.join("reftable").exists() {
        return None;
    }
    let heads = common_dir.join("refs").join("heads");
    let packed = match std::fs::read_to_string(common_dir.join("packed-refs")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(_) => return None,
    };
    let packed_names = || {
        packed
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, name)| name))
            .filter_map(|name| name.strip_prefix("refs/heads/"))
    };
    let mut parent = String::new();
    let parts: Vec<&str> = branch.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !parent.is_empty() {
            parent.push('/');
        }
        parent.push_str(part);
        if heads.join(&parent).is_file() || packed_names().any(|n| n == parent) {
            return Some(Some(parent));
        }
    }
    let beneath = format!("{branch}/");
    if let Some(n) = packed_names().find(|n| n.starts_with(&beneath)) {
        return Some(Some(n.to_owned()));
    }
    let dir = heads.join(branch);
    if dir.is_dir() {
        let mut stack = vec![(dir, branch.to_owned())];
        while let Some((dir, name)) = stack.pop() {
            for entry in std::fs::read_dir(&dir).ok()?.flatten() {
                let child = format!("{name}/{}", entry.file_name().to_string_lossy());
                match entry.file_type() {
                    Ok(t) if t.is_dir() => stack.push((entry.path(), child)),
                    Ok(_) if !child.ends_with(".lock") => return Some(Some(child)),
                    _ => {}
                }
            }
        }
    }
    Some(None)
}

/// SHA-1 or SHA-256 hex.
fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(unix)]
fn device_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.dev())
}

#[cfg(not(unix))]
fn device_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|_| 0)
}

/// git refuses repositories another user owns unless `safe.directory`
/// allows them: let git judge those.
#[cfg(unix)]
fn owned_by_us(worktree: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(worktree).is_ok_and(|m| m.uid() == rustix::process::geteuid().as_raw())
}

#[cfg(not(unix))]
fn owned_by_us(_worktree: &Path) -> bool {
    // Windows ownership rules differ; git judges.
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Git;
    use ff_testkit::git::{TestRepo, git_in};

    fn by_git(dir: &Path) -> RepoInfo {
        ff_testkit::runtime()
            .block_on(Git::new(dir).repository_by_git())
            .expect("git describes it")
    }

    /// In-process discovery answers exactly as git does.
    #[track_caller]
    fn agrees(dir: &Path, what: &str) {
        match in_process(dir) {
            Discovery::Found(info) => assert_eq!(info, by_git(dir), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }

    #[track_caller]
    fn asks_git(dir: &Path, what: &str) {
        assert!(
            matches!(in_process(dir), Discovery::AskGit),
            "{what}: read in-process"
        );
    }

    #[test]
    fn the_usual_layouts_read_as_git_reads_them() {
        let repo = TestRepo::new();
        let top = repo.path();
        agrees(top, "main worktree");
        let sub = top.join("a").join("b");
        std::fs::create_dir_all(&sub).expect("mkdir");
        agrees(&sub, "a subdirectory");
        let linked = repo.scratch("linked").join("wt");
        let _ = git_in(
            top,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "feature/y",
                linked.to_str().expect("utf8"),
            ],
        );
        agrees(&linked, "a linked worktree");
        std::fs::create_dir_all(linked.join("deep")).expect("mkdir");
        agrees(&linked.join("deep"), "inside a linked worktree");
        let _ = git_in(top, &["checkout", "-q", "-b", "topic/with/slashes"]);
        agrees(&linked, "HEAD on a branch with slashes");
        let _ = git_in(top, &["pack-refs", "--all"]);
        agrees(top, "packed refs");
        let _ = git_in(top, &["checkout", "-q", "--detach"]);
        agrees(&sub, "detached HEAD");
        // A sparse worktree turns on per-worktree configuration.
        let _ = git_in(&linked, &["sparse-checkout", "set", "--cone", "deep"]);
        agrees(&linked, "a sparse worktree");
        agrees(top, "beside a sparse worktree");
        assert!(
            matches!(in_process(&linked), Discovery::Found(_)),
            "read in-process"
        );
    }

    #[test]
    fn a_linked_worktrees_state_reads_as_git_keeps_it() {
        let repo = TestRepo::new();
        let top = repo.path();
        let linked = repo.scratch("state").join("wt");
        let path = linked.to_str().expect("utf8");
        let _ = git_in(top, &["worktree", "add", "-q", "-b", "side", path]);
        let dir = worktree_git_dir(&linked).expect("its .git file reads");
        assert_eq!(head_in(&dir), Some(Head::Branch("refs/heads/side".into())));
        assert_eq!(unfinished_in(&dir), None);
        assert_eq!(lock_reason_in(&dir), None);

        // A rebase stopped on a conflict: detached, and under way.
        std::fs::write(linked.join("f.txt"), "side\n").expect("write");
        let _ = git_in(&linked, &["add", "f.txt"]);
        let _ = git_in(&linked, &["commit", "-q", "-m", "side"]);
        std::fs::write(top.join("f.txt"), "main\n").expect("write");
        let _ = git_in(top, &["add", "f.txt"]);
        let _ = git_in(top, &["commit", "-q", "-m", "main"]);
        let main = git_in(top, &["rev-parse", "HEAD"]);
        let stopped = ff_testkit::git::git_output(&linked, &["rebase", "-q", &main]);
        assert!(
            !stopped.status.success(),
            "the rebase should stop on the conflict"
        );
        assert_eq!(unfinished_in(&dir), Some("rebase"));
        assert!(matches!(head_in(&dir), Some(Head::Detached(_))));

        let _ = git_in(top, &["worktree", "lock", "--reason", "on a\nstick", path]);
        assert_eq!(lock_reason_in(&dir).as_deref(), Some("on a\\nstick"));
    }

    #[test]
    fn an_unborn_branch_has_no_commits() {
        let repo = TestRepo::new();
        let dir = repo.scratch("unborn");
        let _ = git_in(&dir, &["init", "-q", "-b", "trunk"]);
        agrees(&dir, "a repository without commits");
        match in_process(&dir) {
            Discovery::Found(info) => assert!(!info.has_commits),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unusual_layouts_are_left_to_git() {
        let repo = TestRepo::new();
        let top = repo.path();
        asks_git(&top.join(".git"), "inside the git directory");
        let bare = repo.scratch("bare").join("r.git");
        let _ = git_in(
            top,
            &["clone", "-q", "--bare", ".", bare.to_str().expect("utf8")],
        );
        asks_git(&bare, "a bare repository");
        let linked = repo.scratch("of-bare").join("wt");
        let _ = git_in(
            &bare,
            &["worktree", "add", "-q", linked.to_str().expect("utf8")],
        );
        asks_git(&linked, "a worktree of a bare repository");
        let separate = repo.scratch("separate");
        let work = separate.join("work");
        let _ = git_in(
            &separate,
            &[
                "init",
                "-q",
                "--separate-git-dir",
                "gd",
                work.to_str().expect("utf8"),
            ],
        );
        asks_git(&work, "--separate-git-dir");
        let _ = git_in(
            top,
            &["config", "core.worktree", top.to_str().expect("utf8")],
        );
        asks_git(top, "core.worktree set");
        let _ = git_in(top, &["config", "--unset", "core.worktree"]);
        let _ = git_in(top, &["config", "extensions.worktreeConfig", "true"]);
        let own = repo.scratch("own-config").join("wt");
        let _ = git_in(
            top,
            &[
                "worktree",
                "add",
                "-q",
                "--detach",
                own.to_str().expect("utf8"),
            ],
        );
        agrees(&own, "per-worktree configuration on");
        let _ = git_in(
            &own,
            &[
                "config",
                "--worktree",
                "core.worktree",
                top.to_str().expect("utf8"),
            ],
        );
        asks_git(&own, "core.worktree in the worktree's own configuration");
    }
}
