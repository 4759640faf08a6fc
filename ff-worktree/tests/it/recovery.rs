//! Crashes and recover(): a create SIGKILLed midway, worktrees removed by
//! hand, strays, orphan branches; recover puts everything back in
//! agreement and touches nothing ForgeFlow does not own.

#![cfg(unix)] // SIGKILL of process groups, shell hooks
#![allow(clippy::print_stdout)] // child processes report to their parent on stdout

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ff_testkit::git::{TestRepo, commit_file, git_in, git_output};
use ff_worktree::{RepairKind, WorktreeConfig};

/// Child process: writes its pid to the file `role[1]`, then creates the
/// worktree of issue `role[3]` in the repository `role[2]`, its state in
/// `role[4]`. It is killed before it returns.
#[test]
fn child() {
    let Some(role) = ff_testkit::child_role() else {
        return;
    };
    std::fs::write(&role[1], std::process::id().to_string()).expect("pid file");
    let rt = ff_testkit::runtime();
    rt.block_on(async {
        let m = crate::common::open(Path::new(&role[4]), WorktreeConfig::new(&role[2])).await;
        let out = m.create_worktree(&role[3]).await;
        println!("finished: {out:?}");
    });
}

/// Waits for `path` to appear while `child` runs.
fn wait_for_file(path: &Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut said = String::new();
            if let Some(out) = child.stdout.as_mut() {
                let _ = std::io::Read::read_to_string(out, &mut said);
            }
            panic!("the child ended ({status}) first: {said}");
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill_group(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid")).expect("pid");
    rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).expect("kill");
}

/// Starts a child creating `issue` and returns it with its pid file.
fn start_create(repo: &TestRepo, state: &Path, issue: &str) -> (std::process::Child, PathBuf) {
    let pid_file = repo.scratch("pids").join(issue);
    let child = ff_testkit::spawn_self_in_group(
        &ff_testkit::test_entry!("child"),
        &[
            "create",
            &pid_file.to_string_lossy(),
            &repo.path().to_string_lossy(),
            issue,
            &state.to_string_lossy(),
        ],
    );
    (child, pid_file)
}

/// After recovery: nothing of the killed create is left, and a create of
/// the same issue works at once.
async fn assert_recovered_and_retry_works(repo: &TestRepo, state: &Path, issue: &str) {
    let m = crate::common::open(state, WorktreeConfig::new(repo.path())).await;
    assert_eq!(
        crate::common::pending(&m).await,
        1,
        "the dead create left its record"
    );
    let dry = m
        .recover(ff_worktree::Recover::DryRun)
        .await
        .expect("dry run");
    assert!(
        dry.repairs
            .iter()
            .any(|r| r.kind == RepairKind::RolledBackCreate)
    );
    assert_eq!(
        crate::common::pending(&m).await,
        1,
        "a dry run changed something"
    );
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == RepairKind::RolledBackCreate),
        "{report:?}"
    );
    crate::common::assert_consistent(repo, &m).await;
    assert!(crate::common::ours(repo, &m).is_empty());
    let again = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover again");
    assert!(again.repairs.is_empty(), "a second recover found {again:?}");
    let made = m.create_worktree(issue).await.expect("retry");
    assert!(made.worktree.path.join("README").exists());
    crate::common::assert_consistent(repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_killed_with_git_mid_checkout_is_rolled_back() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    // A smudge filter that stalls the checkout, so the kill lands while git
    // is writing the new worktree's files.
    let marker = repo.scratch("marks").join("checkout-started");
    let _ = repo.git(&[
        "config",
        "filter.slow.smudge",
        &format!("touch '{}'; sleep 60; cat", marker.display()),
    ]);
    commit_file(
        repo.path(),
        ".gitattributes",
        "*.dat filter=slow\n",
        "attributes",
    );
    commit_file(repo.path(), "a.dat", "data\n", "filtered file");
    let (mut child, _) = start_create(&repo, &state, "KILL-1");
    wait_for_file(&marker, &mut child);
    kill_group(child.id());
    let _ = child.wait();
    let _ = repo.git(&["config", "--unset", "filter.slow.smudge"]);
    // git died while writing the worktree's files: it is registered, its
    // branch exists, its checkout is half done.
    let listed = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(listed.contains("KILL-1"), "{listed}");
    assert_eq!(repo.ff_branches().len(), 1);
    assert_recovered_and_retry_works(&repo, &state, "KILL-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_killed_after_git_finished_is_rolled_back() {
    let repo = TestRepo::new();
    let state = repo.scratch("state");
    // git has made the worktree and the branch when post-checkout runs; the
    // hook kills the ForgeFlow process before it records success.
    let pid_file = repo.scratch("pids").join("KILL-2");
    repo.install_hook(
        "post-checkout",
        &format!("kill -9 \"$(cat '{}')\"; exit 0", pid_file.display()),
    );
    let (mut child, _) = start_create(&repo, &state, "KILL-2");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the child was meant to die");
    repo.remove_hook("post-checkout");
    // The worktree is whole in git's eyes, but no record says it is done.
    assert_eq!(repo.ff_branches().len(), 1);
    assert_recovered_and_retry_works(&repo, &state, "KILL-2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_forgets_vanished_worktrees_and_removes_only_our_strays() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    // A worktree with an unmerged commit, whose directory is deleted by hand.
    let gone = m.create_worktree("gone").await.expect("create").worktree;
    commit_file(&gone.path, "work.txt", "work\n", "unmerged work");
    let work = git_in(&gone.path, &["rev-parse", "HEAD"]);
    std::fs::remove_dir_all(&gone.path).expect("rm -rf");
    // A healthy one, left alone.
    let kept = m.create_worktree("kept").await.expect("create").worktree;
    // Strays of our shape, and things that are not ours.
    let stray = m.base_path().join("wt-stray-mf3k2a-0a1b");
    std::fs::create_dir_all(stray.join("src")).expect("stray");
    // Named like an issue's worktree (every name under the base path is
    // one), but holding someone's file: set aside, the file kept.
    let notes = m.base_path().join("notes");
    std::fs::create_dir_all(&notes).expect("notes");
    std::fs::write(notes.join("todo.txt"), "mine\n").expect("a file");
    let _ = repo.git(&["branch", "ff-orphan-mf3k2a-beef"]);
    let _ = repo.git(&["branch", "ff-feature-of-a-human"]);
    let foreign = repo.scratch("elsewhere").join("foreign");
    repo.add_worktree("foreign", &foreign, true);

    let dry = m
        .recover(ff_worktree::Recover::DryRun)
        .await
        .expect("dry run");
    let kinds: Vec<RepairKind> = dry.repairs.iter().map(|r| r.kind).collect();
    assert!(kinds.contains(&RepairKind::ForgotVanished), "{dry:?}");
    assert!(stray.exists(), "a dry run removed something");

    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    let find = |kind| {
        report
            .repairs
            .iter()
            .find(|r| r.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} in {report:?}"))
    };
    assert_eq!(find(RepairKind::ForgotVanished).subject, gone.id);
    assert_eq!(
        find(RepairKind::RemovedOrphanBranch).subject,
        "ff-orphan-mf3k2a-beef"
    );
    assert!(
        find(RepairKind::RemovedStrayDirectory)
            .subject
            .ends_with("wt-stray-mf3k2a-0a1b")
    );
    let aside = find(RepairKind::SetAsideDirectory);
    assert!(aside.subject.ends_with("notes"), "{aside:?}");
    let kept_notes = std::fs::read_dir(m.base_path().join(".ff-kept"))
        .expect("kept files")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("notes-"))
        .expect("notes kept");
    assert_eq!(
        std::fs::read_to_string(kept_notes.path().join("todo.txt")).expect("the file, kept"),
        "mine\n"
    );
    // The unmerged commit is kept where git can find it.
    let archive = format!("refs/ff/archive/{}", gone.id);
    assert_eq!(repo.git(&["rev-parse", &archive]), work);
    assert!(!stray.exists());
    assert!(!notes.exists() && foreign.exists());
    assert!(
        repo.git(&["branch", "--list", "ff-feature-of-a-human"])
            .contains("ff-feature-of-a-human")
    );
    assert_eq!(
        repo.ff_branches(),
        vec!["ff-feature-of-a-human".to_owned(), kept.branch.clone()]
    );
    assert_eq!(m.list_worktrees().await.expect("list").len(), 1);
    let _ = repo.git(&["branch", "-D", "ff-feature-of-a-human"]);
    crate::common::assert_consistent(&repo, &m).await;
}

/// A create of issue `kept` that failed (git's `post-checkout` hook
/// refused it) with `cleanup_on_error` off: its worktree kept for
/// inspection, no record naming it. The hook is gone again afterwards.
async fn failed_create_kept(repo: &TestRepo) -> (crate::common::Manager, ff_worktree::Error) {
    let m = crate::common::manager(
        repo,
        WorktreeConfig::new(repo.path()).with_cleanup_on_error(false),
    )
    .await;
    repo.install_hook("post-checkout", "exit 1");
    let err = m.create_worktree("kept").await.expect_err("hook fails");
    repo.remove_hook("post-checkout");
    (m, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_kept_for_inspection_is_removed_by_recover() {
    let repo = TestRepo::new();
    let (m, err) = failed_create_kept(&repo).await;
    assert!(
        err.to_string().contains("post-checkout") || err.to_string().contains("exit"),
        "{err}"
    );
    assert_eq!(
        crate::common::ours(&repo, &m).len(),
        1,
        "kept for inspection"
    );
    assert!(
        m.get("kept").await.expect("get").is_none(),
        "no record claims it"
    );
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == RepairKind::RemovedUnrecordedWorktree),
        "{report:?}"
    );
    crate::common::assert_consistent(&repo, &m).await;
    assert!(crate::common::ours(&repo, &m).is_empty());
}

/// Files git cannot snapshot (beside an agent's empty repository in a
/// folder) in a failed create's worktree: `recover` still removes it,
/// keeping the directory whole, set aside with the agent's file in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_sets_aside_a_failed_creates_files_git_cannot_snapshot() {
    let repo = TestRepo::new();
    let (m, _) = failed_create_kept(&repo).await;
    let ours = crate::common::ours(&repo, &m);
    let [dir] = &ours[..] else {
        panic!("one worktree kept for inspection: {ours:?}");
    };
    let _ = git_in(dir, &["init", "-q", "nested"]);
    std::fs::write(dir.join("late.txt"), "late work\n").expect("agent's file");
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    let repair = report
        .repairs
        .iter()
        .find(|r| r.kind == RepairKind::RemovedUnrecordedWorktree)
        .unwrap_or_else(|| panic!("{report:?}"));
    assert!(repair.detail.contains("set aside"), "{repair:?}");
    let kept: Vec<PathBuf> = std::fs::read_dir(m.base_path().join(".ff-kept"))
        .expect("a directory was set aside")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("late.txt").exists())
        .collect();
    assert_eq!(kept.len(), 1, "the agent's file was not kept");
    crate::common::assert_consistent(&repo, &m).await;
    assert!(crate::common::ours(&repo, &m).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_ref_lock_left_by_a_killed_git_does_not_block_cleanup() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("stale").await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "work\n", "unmerged work");
    // As a git killed while updating the branch leaves it, a while ago.
    let lock = repo
        .path()
        .join(".git/refs/heads")
        .join(format!("{}.lock", wt.branch));
    let f = std::fs::File::create(&lock).expect("lock file");
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .expect("age it");
    drop(f);
    let done = m
        .cleanup_worktree("stale", ff_worktree::Cleanup::Force)
        .await
        .expect("cleanup");
    assert!(done.archived_at.is_some());
    assert!(!lock.exists(), "the stale lock was left");
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_packed_refs_lock_and_a_half_removed_worktree_are_recovered() {
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("half").await.expect("create").worktree;
    // As a git killed midway through `worktree remove` and `branch -D`
    // leaves things: the worktree's .git file gone, packed-refs locked.
    std::fs::remove_file(wt.path.join(".git")).expect("rm .git");
    let packed = repo.path().join(".git/packed-refs.lock");
    let f = std::fs::File::create(&packed).expect("lock file");
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .expect("age it");
    drop(f);
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == RepairKind::ForgotVanished),
        "{report:?}"
    );
    assert!(!packed.exists() && !wt.path.exists());
    crate::common::assert_consistent(&repo, &m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_commondir_left_by_a_killed_worktree_add_is_rewritten() {
    // Found by the chaos test: git writes `.git/worktrees/<id>/commondir`
    // in place, and a `worktree add` killed between creating and writing it
    // leaves it empty; then `git worktree list` and `git branch -D` die for
    // the whole repository.
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let torn = m.create_worktree("torn").await.expect("create").worktree;
    let other = m.create_worktree("other").await.expect("create").worktree;
    let commondir = repo
        .path()
        .join(".git/worktrees")
        .join(&torn.id)
        .join("commondir");
    std::fs::write(&commondir, "").expect("tear it");
    assert!(
        !git_output(repo.path(), &["worktree", "list"])
            .status
            .success(),
        "git no longer fails on an empty commondir: this test tests nothing"
    );
    // A dry run reports it and changes nothing.
    let dry = m
        .recover(ff_worktree::Recover::DryRun)
        .await
        .expect("dry run");
    assert_eq!(dry.repairs.len(), 1, "{dry:?}");
    assert_eq!(dry.repairs[0].kind, RepairKind::RewroteCommondir);
    assert_eq!(std::fs::read_to_string(&commondir).expect("read"), "");
    // Any operation mends it; cleanup of another issue needs `branch -D`.
    m.cleanup_worktree("other", ff_worktree::Cleanup::Safe)
        .await
        .expect("cleanup");
    assert!(!other.path.exists());
    assert_eq!(
        std::fs::read_to_string(&commondir).expect("read").trim(),
        "../.."
    );
    std::fs::write(&commondir, "").expect("tear it again");
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    assert!(
        report
            .repairs
            .iter()
            .any(|r| r.kind == RepairKind::RewroteCommondir),
        "{report:?}"
    );
    crate::common::assert_consistent(&repo, &m).await;
    assert_eq!(m.list_worktrees().await.expect("list").len(), 1);
}

/// What a `git worktree add` killed after registering a worktree and
/// before pointing its `HEAD` at the branch leaves (found by the chaos
/// test: a create restoring a vanished directory, killed mid-add): `HEAD`
/// all zeros, git's `initializing` lock, a directory with only `.git`.
fn half_make(repo: &TestRepo, wt: &ff_worktree::Worktree) -> PathBuf {
    let admin = repo.path().join(".git/worktrees").join(&wt.id);
    std::fs::write(admin.join("HEAD"), format!("{}\n", "0".repeat(40))).expect("zero HEAD");
    std::fs::write(admin.join("locked"), "initializing").expect("lock");
    let _ = std::fs::remove_file(admin.join("index"));
    for entry in std::fs::read_dir(&wt.path).expect("dir").flatten() {
        if entry.file_name() != ".git" {
            let p = entry.path();
            if p.is_dir() {
                std::fs::remove_dir_all(p).expect("empty it");
            } else {
                std::fs::remove_file(p).expect("empty it");
            }
        }
    }
    assert!(
        !git_output(repo.path(), &["fsck"]).status.success(),
        "git fsck accepts a zero HEAD now: this test tests nothing"
    );
    admin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_a_killed_worktree_add_left_half_made_is_finished() {
    let repo = TestRepo::new();
    commit_file(repo.path(), "tracked.txt", "base\n", "tracked");
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let wt = m.create_worktree("half").await.expect("create").worktree;
    commit_file(&wt.path, "work.txt", "an agent's commit\n", "work");
    let admin = half_make(&repo, &wt);

    // A dry run says so and changes nothing.
    let dry = m
        .recover(ff_worktree::Recover::DryRun)
        .await
        .expect("dry run");
    assert_eq!(dry.repairs.len(), 1, "{dry:?}");
    assert_eq!(dry.repairs[0].kind, RepairKind::RestoredWorktree);
    assert!(
        std::fs::read_to_string(admin.join("HEAD"))
            .expect("HEAD")
            .starts_with('0')
    );

    // recover finishes it: the branch, its commit and its files are back.
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    assert_eq!(report.repairs.len(), 1, "{report:?}");
    assert_eq!(report.repairs[0].kind, RepairKind::RestoredWorktree);
    assert!(!admin.join("locked").exists());
    assert_eq!(
        std::fs::read_to_string(wt.path.join("work.txt")).expect("the agent's file"),
        "an agent's commit\n"
    );
    crate::common::assert_consistent(&repo, &m).await;
    assert!(
        crate::common::recover_as_foreseen(&m)
            .await
            .expect("again")
            .repairs
            .is_empty()
    );

    // The next create settles it too, and keeps a file found in it.
    half_make(&repo, &wt);
    std::fs::write(wt.path.join("notes.txt"), "written meanwhile\n").expect("a file");
    let again = m.create_worktree("half").await.expect("create settles it");
    assert!(again.reused);
    assert_eq!(
        std::fs::read_to_string(wt.path.join("notes.txt")).expect("kept"),
        "written meanwhile\n"
    );
    let status = git_output(&wt.path, &["status", "--porcelain"]);
    assert!(status.status.success(), "git works in it again");
    crate::common::assert_consistent(&repo, &m).await;
}

/// A slot left held for a worktree that is gone (a process killed between
/// removing the worktree and freeing its slot) is freed by `recover`, and
/// the next create takes it; a slot of a live worktree stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_frees_a_leaked_slot() {
    use ff_traits::{IdempotencyKey, IdempotencyStorage};
    let repo = TestRepo::new();
    let m = crate::common::manager(&repo, WorktreeConfig::new(repo.path())).await;
    let live = m.create_worktree("live").await.expect("create").worktree;
    assert_eq!(live.slot, Some(0));
    // Slot 1, as a killed cleanup would leave it: its record, no worktree.
    let key = IdempotencyKey::new(
        "worktreeSlot",
        serde_json::json!({"slot": 1}),
        serde_json::json!({"repo": m.repo_key()}),
    );
    let record = crate::common::completed_record(
        &key,
        serde_json::json!({"worktree": "wt-gone-mf3k2a-0a1b", "issue": "gone"}),
    );
    m.idempotency().store().create(record).await.expect("leak");
    assert_eq!(m.slots().await.expect("slots").len(), 2);

    let dry = m
        .recover(ff_worktree::Recover::DryRun)
        .await
        .expect("dry run");
    assert!(dry.repairs.iter().any(|r| r.kind == RepairKind::FreedSlot));
    assert_eq!(
        m.slots().await.expect("slots").len(),
        2,
        "a dry run frees nothing"
    );
    let report = crate::common::recover_as_foreseen(&m)
        .await
        .expect("recover");
    let freed: Vec<_> = report
        .repairs
        .iter()
        .filter(|r| r.kind == RepairKind::FreedSlot)
        .collect();
    assert_eq!(freed.len(), 1, "{report:?}");
    assert_eq!(freed[0].subject, "slot 1");
    let next = m.create_worktree("next").await.expect("create").worktree;
    assert_eq!(next.slot, Some(1));
    crate::common::assert_consistent(&repo, &m).await;
}
