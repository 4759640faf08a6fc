//! Every state a removal racing an agent's writes can leave is one the
//! next ordinary call settles by itself, keeping what it finds. Each test
//! makes one such state on purpose (as `git worktree remove` leaves it
//! when an agent writes during the removal, or when it is killed), then
//! calls what an agent or a person would call next.

use std::path::{Path, PathBuf};

use ff_testkit::git::{TestRepo, commit_file, git_in};
use ff_worktree::{Cleanup, Recover, RepairKind, Worktree, WorktreeConfig};

async fn open(repo: &TestRepo) -> crate::common::Manager {
    crate::common::manager(repo, WorktreeConfig::new(repo.path())).await
}

/// What `git worktree remove` leaves when an agent writes a file while it
/// deletes: git's registration gone, the directory still there with its
/// `.git` pointer (when git had not reached it) and the agent's file.
fn removal_cut_short(repo: &TestRepo, wt: &Worktree, keep_pointer: bool) {
    std::fs::remove_dir_all(repo.path().join(".git/worktrees").join(&wt.id)).expect("admin");
    std::fs::remove_file(wt.path.join("README")).expect("a file git deleted");
    if !keep_pointer {
        std::fs::remove_file(wt.path.join(".git")).expect("pointer");
    }
    std::fs::create_dir_all(wt.path.join("notes")).expect("mkdir -p");
    std::fs::write(wt.path.join("notes/late.txt"), "late work\n").expect("agent's file");
}

fn kept_file(kept: &Path) -> String {
    std::fs::read_to_string(kept.join("notes/late.txt")).expect("the agent's file, kept")
}

/// Git refuses to run in `dir` (rather than finding the main checkout),
/// naming ForgeFlow's guard, or (when a dead worktree's `.git` pointer is
/// still there) the registration that is gone.
fn git_refuses(dir: &Path) {
    let out = ff_testkit::git::git_output(dir, &["status"]);
    assert!(!out.status.success(), "git ran in {}", dir.display());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("ForgeFlow") || said.contains("/.git/worktrees/"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_after_a_removal_cut_short_brings_the_worktree_back_and_keeps_the_files() {
    for keep_pointer in [true, false] {
        let repo = TestRepo::new();
        let m = open(&repo).await;
        let wt = m.create_worktree("1").await.expect("create").worktree;
        commit_file(&wt.path, "work.txt", "committed\n", "agent work");
        removal_cut_short(&repo, &wt, keep_pointer);
        git_refuses(&wt.path.join("notes"));

        let again = m.create_worktree("1").await.expect("create settles it");
        assert!(again.reused, "made again from its branch");
        assert_eq!(again.worktree.path, wt.path);
        assert_eq!(
            std::fs::read_to_string(wt.path.join("work.txt")).expect("committed work"),
            "committed\n"
        );
        let kept = again.set_aside.expect("where the files went");
        assert_eq!(kept_file(&kept), "late work\n");
        git_refuses(&kept);
        assert!(
            crate::common::recover_as_foreseen(&m)
                .await
                .expect("recover")
                .repairs
                .is_empty(),
            "nothing left to settle"
        );
        crate::common::assert_consistent(&repo, &m).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_after_a_removal_cut_short_finishes_it_and_keeps_everything() {
    for mode in [Cleanup::Safe, Cleanup::Force] {
        let repo = TestRepo::new();
        let m = open(&repo).await;
        let wt = m.create_worktree("2").await.expect("create").worktree;
        commit_file(&wt.path, "work.txt", "committed\n", "agent work");
        let head = git_in(&wt.path, &["rev-parse", "HEAD"]);
        removal_cut_short(&repo, &wt, true);

        let done = m.cleanup_worktree("2", mode).await.expect("cleanup");
        assert_eq!(done.removed.map(|w| w.id), Some(wt.id.clone()));
        assert_eq!(
            kept_file(&done.set_aside.expect("set aside")),
            "late work\n"
        );
        assert_eq!(
            git_in(
                repo.path(),
                &["rev-parse", &format!("refs/ff/archive/{}", wt.id)]
            ),
            head,
            "the branch's commits are kept"
        );
        assert!(!wt.path.exists());
        let again = m.create_worktree("2").await.expect("the issue goes on");
        assert!(!again.reused);
        crate::common::assert_consistent(&repo, &m).await;
    }
}

/// Git deleted the `.git` pointer and some files and was killed before it
/// dropped the registration: the worktree is registered, its directory no
/// worktree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_worktree_without_its_pointer_is_settled_by_create() {
    let repo = TestRepo::new();
    let m = open(&repo).await;
    let wt = m.create_worktree("3").await.expect("create").worktree;
    // As git leaves it while it adds (or restores) a worktree: marked.
    std::fs::write(
        repo.path()
            .join(".git/worktrees")
            .join(&wt.id)
            .join("locked"),
        "initializing",
    )
    .expect("locked");
    std::fs::remove_file(wt.path.join(".git")).expect("pointer");
    std::fs::write(wt.path.join("late.txt"), "late\n").expect("agent's file");
    let again = m.create_worktree("3").await.expect("create settles it");
    assert!(again.reused);
    assert!(again.worktree.path.join(".git").is_file());
    let kept = again.set_aside.expect("set aside");
    assert_eq!(
        std::fs::read_to_string(kept.join("late.txt")).expect("kept"),
        "late\n"
    );
    crate::common::assert_consistent(&repo, &m).await;
}

/// After a forced cleanup, an agent's `mkdir -p` makes the directory again
/// at the old path. Git run there fails; the next create is not
/// held up; recover keeps the files, and removes a directory holding none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_made_again_after_removal_is_kept_by_recover() {
    let repo = TestRepo::new();
    let m = open(&repo).await;
    let wt = m.create_worktree("4").await.expect("create").worktree;
    let hollow = m.create_worktree("5").await.expect("create").worktree;
    m.cleanup_worktree("4", Cleanup::Force)
        .await
        .expect("cleanup");
    m.cleanup_worktree("5", Cleanup::Force)
        .await
        .expect("cleanup");
    std::fs::create_dir_all(wt.path.join("notes")).expect("mkdir -p");
    std::fs::write(wt.path.join("notes/late.txt"), "late work\n").expect("write");
    std::fs::create_dir_all(hollow.path.join("empty/dirs")).expect("mkdir -p");
    git_refuses(&wt.path.join("notes"));

    let next = m.create_worktree("4").await.expect("create");
    assert_ne!(next.worktree.path, wt.path);

    let dry = m.recover(Recover::DryRun).await.expect("dry run");
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    let kinds = |r: &ff_worktree::Recovery| -> Vec<(RepairKind, String)> {
        r.repairs
            .iter()
            .map(|r| (r.kind, r.subject.clone()))
            .collect()
    };
    assert_eq!(
        kinds(&dry),
        kinds(&report),
        "the dry run said what was done"
    );
    let set_aside = report
        .repairs
        .iter()
        .find(|r| r.kind == RepairKind::SetAsideDirectory)
        .unwrap_or_else(|| panic!("{report:#?}"));
    assert_eq!(set_aside.subject, wt.path.display().to_string());
    let kept = PathBuf::from(set_aside.detail.rsplit(' ').next().expect("path"));
    assert_eq!(kept_file(&kept), "late work\n");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == RepairKind::RemovedStrayDirectory
                && r.subject == hollow.path.display().to_string()),
        "{report:#?}"
    );
    assert!(!hollow.path.exists() && !wt.path.exists());
    crate::common::assert_consistent(&repo, &m).await;
}

/// Git writes a new worktree's `commondir` in place, so while anyone's
/// `git worktree add` runs, `git worktree list` may find it empty for an
/// instant and fail ("failed to read …/commondir", seen in CI while agents
/// created worktrees at once). Readers take no registry lock: they ask
/// again, and never fail on it. Here the instant is made long: someone
/// else's worktree (not under the base path, so not ff's to mend) has its
/// `commondir` empty until 40 ms after ff starts asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worktree_git_is_adding_meanwhile_never_fails_a_reader() {
    let repo = TestRepo::new();
    let m = open(&repo).await;
    let wt = m.create_worktree("1").await.expect("create").worktree;
    let elsewhere = repo.scratch("elsewhere").join("theirs");
    std::fs::create_dir_all(&elsewhere).expect("their directory");
    let admin = repo.path().join(".git/worktrees/theirs");
    std::fs::create_dir_all(&admin).expect("admin");
    let head = git_in(repo.path(), &["rev-parse", "HEAD"]);
    std::fs::write(admin.join("HEAD"), format!("{head}\n")).expect("HEAD");
    std::fs::write(
        admin.join("gitdir"),
        format!("{}\n", elsewhere.join(".git").display()),
    )
    .expect("gitdir");
    std::fs::write(admin.join("commondir"), "").expect("commondir, not yet written");
    let writer = {
        let commondir = admin.join("commondir");
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(40));
            std::fs::write(commondir, "../..\n").expect("commondir written");
        })
    };
    let again = m
        .create_worktree("1")
        .await
        .expect("create while an add runs");
    assert_eq!(again.worktree.path, wt.path);
    writer.join().expect("writer");
    assert_eq!(
        std::fs::read_to_string(admin.join("commondir")).expect("theirs"),
        "../..\n",
        "someone else's worktree is theirs: only they write it"
    );
}

/// An agent's empty repository in a folder of its worktree makes
/// `git add` fail, so no snapshot of its uncommitted files can be made: a
/// forced cleanup still removes the worktree, keeping the directory whole
/// (set aside, the agent's file in it) and the agent's commit archived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_cleanup_of_files_git_cannot_snapshot_keeps_the_directory() {
    let repo = TestRepo::new();
    let m = open(&repo).await;
    let wt = m.create_worktree("1").await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "work\n", "agent work");
    let agent = git_in(&wt.path, &["rev-parse", "HEAD"]);
    let _ = git_in(&wt.path, &["init", "-q", "nested"]);
    std::fs::create_dir_all(wt.path.join("notes")).expect("mkdir");
    std::fs::write(wt.path.join("notes/late.txt"), "late work\n").expect("agent's file");
    let cleaned = m
        .cleanup_worktree("1", Cleanup::Force)
        .await
        .expect("forced cleanup");
    let kept = cleaned.set_aside.expect("the directory was set aside");
    assert_eq!(kept_file(&kept), "late work\n");
    assert!(cleaned.archived_at.is_some(), "the commit was not archived");
    let reachable = git_in(repo.path(), &["rev-list", "--all"]);
    assert!(
        reachable.lines().any(|c| c == agent),
        "the agent's commit is lost"
    );
    assert!(!wt.path.exists());
    crate::common::assert_consistent(&repo, &m).await;
}
