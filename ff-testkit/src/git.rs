//! Real git repositories for tests: made in a temporary directory, removed
//! on drop. Plain blocking `std::process::Command` calls, so they work from
//! sync and async tests alike (they are short).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A git repository with one commit on `main` (a `README`) and a committer
/// identity configured, so commits, rebases and merges work anywhere.
#[derive(Debug)]
pub struct TestRepo {
    root: PathBuf,
    path: PathBuf,
}

/// Runs git in `dir`; returns its trimmed stdout.
///
/// # Panics
/// When git fails; the message has git's stderr.
#[must_use]
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {} failed in {}: {}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs git in `dir` and returns whatever it did.
///
/// # Panics
/// When git cannot be started.
#[must_use]
pub fn git_output(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("run git")
}

/// Writes `content` to `dir/name` and commits it.
///
/// # Panics
/// When writing or git fails.
pub fn commit_file(dir: &Path, name: &str, content: &str, message: &str) {
    std::fs::write(dir.join(name), content).expect("write file");
    let _ = git_in(dir, &["add", "--", name]);
    let _ = git_in(dir, &["commit", "-q", "-m", message]);
}

impl TestRepo {
    /// A new repository in a fresh temporary directory.
    ///
    /// # Panics
    /// When git fails.
    #[must_use]
    pub fn new() -> Self {
        Self::new_in(&std::env::temp_dir())
    }

    /// A new repository in a fresh directory under `parent` (a small
    /// filesystem, say).
    ///
    /// # Panics
    /// When git fails.
    #[must_use]
    pub fn new_in(parent: &Path) -> Self {
        let root = parent.join(format!("ff-test-{}", ff_traits::identity::unique_id()));
        let path = root.join("repo");
        std::fs::create_dir_all(&path).expect("create repository directory");
        init(&path, &["init", "-q", "-b", "main"]);
        commit_file(&path, "README", "hello\n", "first");
        Self { root, path }
    }

    /// The repository's top directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A scratch directory beside the repository, removed with it.
    ///
    /// # Panics
    /// When it cannot be created.
    #[must_use]
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        dir
    }

    /// Runs git in the repository; returns its trimmed stdout.
    ///
    /// # Panics
    /// When git fails.
    #[must_use]
    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.path, args)
    }

    /// Adds a worktree at `path` on a new branch `branch`, as a person (or
    /// an earlier release) would with `git worktree add -b`; `--no-checkout`
    /// when `checkout` is false (a create cut short).
    ///
    /// # Panics
    /// When git fails.
    pub fn add_worktree(&self, branch: &str, path: &Path, checkout: bool) {
        let path = path.to_string_lossy();
        let mut args = vec!["worktree", "add", "-q"];
        if !checkout {
            args.push("--no-checkout");
        }
        args.extend(["-b", branch, "--", &path]);
        let _ = git_in(&self.path, &args);
    }

    /// Adds a bare repository as remote `origin`, pushes `main` to it and
    /// makes it `main`'s upstream. Returns a second clone of it, where
    /// tests can push commits the repository has not seen.
    ///
    /// # Panics
    /// When git fails.
    #[must_use]
    pub fn with_remote(&self) -> PathBuf {
        let bare = self.root.join("origin.git");
        init(
            &self.root,
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        let bare = bare.to_string_lossy().into_owned();
        let _ = self.git(&["remote", "add", "origin", &bare]);
        let _ = self.git(&["push", "-q", "-u", "origin", "main"]);
        let _ = git_in(&self.root, &["clone", "-q", &bare, "other"]);
        let other = self.root.join("other");
        configure(&other);
        other
    }

    /// ForgeFlow's branches with the default template (`ff/…`) and of the
    /// earlier releases' shape (`ff-…`).
    ///
    /// # Panics
    /// When git fails.
    #[must_use]
    pub fn ff_branches(&self) -> Vec<String> {
        lines(&self.git(&[
            "for-each-ref",
            "--format=%(refname:lstrip=2)",
            "refs/heads/ff-*",
            "refs/heads/ff/",
        ]))
    }

    /// The refs under `refs/ff/archive/`.
    ///
    /// # Panics
    /// When git fails.
    #[must_use]
    pub fn archives(&self) -> Vec<String> {
        lines(&self.git(&["for-each-ref", "--format=%(refname)", "refs/ff/archive/"]))
    }

    /// The worktree paths git lists (the main one included).
    ///
    /// # Panics
    /// When git fails.
    #[must_use]
    pub fn worktree_paths(&self) -> Vec<PathBuf> {
        self.git(&["worktree", "list", "--porcelain"])
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(PathBuf::from)
            .collect()
    }

    /// What git's registration of each linked worktree says (its admin
    /// files, and whether the directory it names is there), to explain a
    /// failed check.
    #[must_use]
    pub fn registrations(&self) -> String {
        let mut said = String::from("registrations:\n");
        let Ok(admins) = std::fs::read_dir(self.path.join(".git/worktrees")) else {
            return said;
        };
        for admin in admins.flatten() {
            let path = admin.path();
            let file = |name: &str| {
                std::fs::read_to_string(path.join(name))
                    .map_or_else(|_| "-".to_owned(), |s| s.trim().to_owned())
            };
            let gitdir = file("gitdir");
            said.push_str(&format!(
                "  {}: HEAD={} locked={} gitdir={} (exists: {})\n",
                admin.file_name().to_string_lossy(),
                file("HEAD"),
                file("locked"),
                gitdir,
                Path::new(&gitdir).exists()
            ));
        }
        said
    }

    /// Asserts `git fsck --full` finds nothing wrong and that no worktree
    /// git lists is missing its directory.
    ///
    /// # Panics
    /// When it does.
    pub fn assert_fsck_clean(&self) {
        self.wait_for_gc();
        let out = git_output(&self.path, &["fsck", "--full", "--no-dangling"]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "git fsck failed: {said}\n{}",
            self.registrations()
        );
        assert!(
            !said.contains("error") && !said.contains("missing") && !said.contains("broken"),
            "git fsck: {said}"
        );
        let prunable = self.git(&["worktree", "list", "--porcelain"]);
        assert!(
            !prunable.contains("prunable"),
            "a registered worktree lost its directory: {prunable}"
        );
    }

    /// Waits (up to two minutes) for a `git gc` still running in the
    /// repository: commits past `gc.auto`'s threshold start one in the
    /// background, and it packs loose objects (and removes them) while
    /// `fsck` reads them, which `fsck` reports as missing objects.
    fn wait_for_gc(&self) {
        let pid_file = self.path.join(".git").join("gc.pid");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while let Ok(text) = std::fs::read_to_string(&pid_file) {
            let pid = text.split_whitespace().next().and_then(|p| p.parse().ok());
            let running = pid
                .is_some_and(|pid| ff_process::liveness(pid, None) == ff_process::Liveness::Alive);
            if !running || std::time::Instant::now() > deadline {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Installs a hook script (`#!/bin/sh` is prepended) and makes it
    /// executable.
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn install_hook(&self, name: &str, body: &str) {
        let hooks = self.path.join(".git").join("hooks");
        std::fs::create_dir_all(&hooks).expect("hooks directory");
        let file = hooks.join(name);
        std::fs::write(&file, format!("#!/bin/sh\n{body}\n")).expect("write hook");
        // Git for Windows runs hooks through its own sh, whatever the mode.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                .expect("chmod hook");
        }
    }

    /// Removes a hook.
    pub fn remove_hook(&self, name: &str) {
        let _ = std::fs::remove_file(self.path.join(".git").join("hooks").join(name));
    }
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn init(dir: &Path, args: &[&str]) {
    let _ = git_in(dir, args);
    if !args.contains(&"--bare") {
        configure(dir);
    }
}

/// git in `dir` as an agent runs it (its own identity, none of the
/// caller's `GIT_DIR`, `GIT_WORK_TREE` or `GIT_INDEX_FILE`); `None` when it
/// cannot even start (the directory is gone).
#[must_use]
pub fn agent_git(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .args(["-c", "user.name=agent", "-c", "user.email=agent@localhost"])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .ok()
}

/// What an agent does in its worktree, holding none of ForgeFlow's
/// locks: writes `file` (relative to `dir`; its directories made as
/// `mkdir -p` makes them), then `git add -A` and `git commit` as
/// `agent`, with no hooks; the full id of the commit when git says it
/// made it. `None` when any step fails (the worktree was removed under
/// the agent, as happens), and when `HEAD` is not the commit just made
/// (a check that may then miss a loss, never invent one).
#[must_use]
pub fn agent_commit(dir: &Path, file: &str, tag: &str) -> Option<String> {
    let path = dir.join(file);
    if let Some(parent) = std::path::Path::new(file)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir.join(parent)).ok()?;
    }
    std::fs::write(path, tag).ok()?;
    let git = |args: &[&str]| agent_git(dir, args);
    if !git(&["add", "-A"])?.status.success() {
        return None;
    }
    if !git(&["commit", "-q", "--no-verify", "-m", tag])?
        .status
        .success()
    {
        return None;
    }
    let head = git(&["log", "-1", "--format=%H %s"])?;
    let text = String::from_utf8_lossy(&head.stdout).into_owned();
    let (sha, subject) = text.trim().split_once(' ')?;
    (subject == tag).then(|| sha.to_owned())
}

/// Gives the repository at `dir` a committer identity in its own config
/// (tests run as on a fresh machine, with no global one): for a
/// repository a test made with `git init` or `git clone` itself.
///
/// # Panics
/// When git fails.
pub fn configure(dir: &Path) {
    let _ = git_in(dir, &["config", "user.name", "ForgeFlow Test"]);
    let _ = git_in(dir, &["config", "user.email", "test@example.invalid"]);
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// Adds `pattern` to the repository's `.git/info/exclude` (shared by every
/// worktree): files a test's hooks write there then show nowhere.
///
/// # Panics
/// When the file cannot be written.
pub fn exclude(repo: &Path, pattern: &str) {
    use std::io::Write as _;
    let info = repo.join(".git/info");
    std::fs::create_dir_all(&info).expect("create .git/info");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(info.join("exclude"))
        .expect("open .git/info/exclude");
    writeln!(file, "{pattern}").expect("write .git/info/exclude");
}
