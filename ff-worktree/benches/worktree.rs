//! WorktreeManager create and cleanup against bare git on the same
//! repository, interleaved round by round (this disk slows file creation
//! for minutes after mass deletion, so sequential runs would mislead).
//!
//! * create: `create_worktree` (file lock + SQLite store) vs
//!   `git worktree add --no-track -b <branch> -- <path> main`.
//! * cleanup: `cleanup_worktree` vs `git worktree remove` + `git branch -D`.
//!
//! Run: `cargo bench -p ff-worktree --bench worktree`. Without `--bench`
//! (under `cargo test`) it runs three rounds as a smoke test.

#![allow(missing_docs, clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use ff_lock_file::FileLockProvider;
use ff_store_sqlite::SqliteStore;
use ff_testkit::bench::median;
use ff_worktree::git::Git;
use ff_worktree::{WorktreeConfig, WorktreeManager};

async fn setup_repo(dir: &Path, files: usize) {
    let git = Git::new(dir);
    git.run(["init", "-q", "-b", "main"]).await.expect("init");
    for i in 0..files {
        let sub = dir.join(format!("src/m{}", i % 10));
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(
            sub.join(format!("f{i}.rs")),
            format!("// file {i}\n").repeat(20),
        )
        .expect("write");
    }
    git.run(["add", "-A"]).await.expect("add");
    git.run([
        "-c",
        "user.name=b",
        "-c",
        "user.email=b@example.invalid",
        "commit",
        "-q",
        "-m",
        "init",
    ])
    .await
    .expect("commit");
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 40 } else { 3 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        setup_repo(&repo, 200).await;
        let state = tmp.path().join("state");
        let manager = WorktreeManager::open(
            WorktreeConfig::new(&repo).with_max_worktrees(1_000),
            FileLockProvider::new(state.join("locks")),
            SqliteStore::open(state.join("ff.sqlite3")).expect("store"),
        )
        .await
        .expect("open");
        let git = Git::new(&repo);
        let bare_base = tmp.path().join("bare");
        std::fs::create_dir_all(&bare_base).expect("mkdir");

        let (mut ours_create, mut bare_create) = (Vec::new(), Vec::new());
        let (mut ours_clean, mut bare_clean) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            let issue = format!("bench-{i}");
            let t = Instant::now();
            manager.create_worktree(&issue).await.expect("create");
            ours_create.push(t.elapsed());

            let path = bare_base.join(format!("wt-{i}"));
            let branch = format!("bare-{i}");
            let t = Instant::now();
            let args: [&std::ffi::OsStr; 9] = [
                "worktree".as_ref(),
                "add".as_ref(),
                "--quiet".as_ref(),
                "--no-track".as_ref(),
                "-b".as_ref(),
                branch.as_ref(),
                "--".as_ref(),
                path.as_os_str(),
                "main".as_ref(),
            ];
            git.run(args).await.expect("bare add");
            bare_create.push(t.elapsed());

            let t = Instant::now();
            manager
                .cleanup_worktree(&issue, ff_worktree::Cleanup::Safe)
                .await
                .expect("cleanup");
            ours_clean.push(t.elapsed());

            let t = Instant::now();
            let args: [&std::ffi::OsStr; 4] = [
                "worktree".as_ref(),
                "remove".as_ref(),
                "--".as_ref(),
                path.as_os_str(),
            ];
            git.run(args).await.expect("bare remove");
            git.run(["branch", "-D", "--", branch.as_str()])
                .await
                .expect("bare branch -D");
            bare_clean.push(t.elapsed());
        }
        let (oc, bc) = (median(&mut ours_create), median(&mut bare_create));
        let (ol, bl) = (median(&mut ours_clean), median(&mut bare_clean));
        println!(
            "## WorktreeManager vs bare git, {rounds} interleaved rounds, 200-file repository"
        );
        println!("| | ff-worktree | bare git | ratio |");
        println!("|---|---|---|---|");
        println!(
            "| create | {} | {} | {:.2}× |",
            ms(oc),
            ms(bc),
            oc.as_secs_f64() / bc.as_secs_f64()
        );
        println!(
            "| cleanup | {} | {} | {:.2}× |",
            ms(ol),
            ms(bl),
            ol.as_secs_f64() / bl.as_secs_f64()
        );
    });
}
