//! Each change a file backend makes wakes the feed; reads and other files
//! do not. Linux only: elsewhere there is no feed (the watcher polls).

#![cfg(target_os = "linux")]

use std::fs::{self, OpenOptions};
use std::io::Read as _;
use std::time::Duration;

use ff_traits::ChangeFeed;

/// Long enough for an event to arrive if one were coming: inotify delivers
/// in microseconds, notify's thread forwards at once.
const QUIET: Duration = Duration::from_millis(300);

async fn wakes(feed: &mut Box<dyn ChangeFeed>) -> bool {
    match tokio::time::timeout(QUIET, feed.changed()).await {
        Ok(r) => {
            r.unwrap();
            true
        }
        Err(_) => false,
    }
}

fn feed(dir: &std::path::Path) -> Box<dyn ChangeFeed> {
    ff_fs_watch::watch_dir(dir, ff_fs_watch::Lapses::Never, |name| {
        name.ends_with(".lock")
    })
    .unwrap()
    .expect("a feed on Linux")
}

#[tokio::test]
async fn creating_writing_and_removing_a_file_each_wake_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut feed = feed(dir.path());
    let file = dir.path().join("a.lock");
    fs::write(&file, "one").unwrap();
    assert!(wakes(&mut feed).await, "a created file");
    while wakes(&mut feed).await {}
    fs::write(&file, "two").unwrap();
    assert!(wakes(&mut feed).await, "a rewritten file");
    while wakes(&mut feed).await {}
    fs::remove_file(&file).unwrap();
    assert!(wakes(&mut feed).await, "a removed file");
}

#[tokio::test]
async fn closing_a_file_opened_for_writing_wakes_it_even_unwritten() {
    // A kernel lock is released when its file is closed, by its holder or
    // by the kernel when the holder dies: no write at all.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.lock");
    fs::write(&file, "meta").unwrap();
    let held = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    let mut feed = feed(dir.path());
    assert!(!wakes(&mut feed).await, "nothing happened yet");
    drop(held);
    assert!(wakes(&mut feed).await, "the close of a writable file");
}

#[tokio::test]
async fn a_process_that_dies_holding_a_writable_file_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.lock");
    fs::write(&file, "meta").unwrap();
    // sh opens the file for writing and waits; SIGKILL closes it.
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("exec 3<>\"$1\"; echo ready; exec sleep 60")
        .arg("sh")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    child.stdout.take().unwrap().read_exact(&mut ready).unwrap();
    let mut feed = feed(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wakes(&mut feed).await,
        "the kernel's close of a dead holder's file"
    );
}

#[tokio::test]
async fn reading_and_other_files_do_not_wake_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.lock");
    fs::write(&file, "meta").unwrap();
    let mut feed = feed(dir.path());
    // A watcher's own reads: open read-only, read, close.
    for _ in 0..3 {
        let mut s = String::new();
        fs::File::open(&file)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
    }
    // A file the backend does not own.
    fs::write(dir.path().join("notes.txt"), "x").unwrap();
    assert!(!wakes(&mut feed).await);
}

#[tokio::test]
async fn a_removed_directory_breaks_the_feed() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("locks");
    fs::create_dir(&dir).unwrap();
    let mut feed = feed(&dir);
    fs::remove_dir(&dir).unwrap();
    let told = tokio::time::timeout(QUIET, feed.changed()).await;
    assert!(matches!(told, Ok(Err(_))), "{told:?}");
}

#[test]
fn a_missing_directory_is_an_error_not_a_feed() {
    let parent = tempfile::tempdir().unwrap();
    let e = ff_fs_watch::watch_dir(
        &parent.path().join("absent"),
        ff_fs_watch::Lapses::Never,
        |_| true,
    )
    .unwrap_err();
    assert!(e.to_string().contains("absent"), "{e}");
}
