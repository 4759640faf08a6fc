//! `.worktreeinclude` copying against `cp -r --reflink=auto` of the same
//! files, in the same run, interleaved round by round: 1,000 ignored files
//! of 100 KB (100 MB) in `data/`, named by a `.worktreeinclude` of one
//! line.
//!
//! * **ff**: [`Included::scan`] (reads the include file, walks the
//!   working tree, matches) + [`Included::copy_into`] (copy beside, check
//!   unchanged, set mode, rename) into an empty directory.
//! * **cp**: `cp -r --reflink=auto data DEST/data`, one process.
//!
//! Prints each side's median and the ratio. Run: `cargo bench -p
//! ff-worktree --bench include`. Without `--bench` (under `cargo test`)
//! it runs one round of 20 files as a smoke test.

#![allow(missing_docs, clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ff_worktree::include::Included;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (files, rounds) = if full { (1_000, 15) } else { (20, 1) };
    let size = 100 * 1024;
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    let _ = Command::new("git").args(["init", "-q"]).arg(root).status();
    std::fs::write(root.join(".worktreeinclude"), "data/\n").expect("include");
    std::fs::create_dir(root.join("data")).expect("data");
    let block: Vec<u8> = (0..size)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect();
    for i in 0..files {
        std::fs::write(root.join("data").join(format!("f{i:04}.bin")), &block).expect("file");
    }
    let dests = tempfile::tempdir().expect("tempdir");
    let (mut ff, mut cp) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so neither always meets a disk busy
        // with the other's writes.
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let dest = dests.path().join(format!("{round}-{side}"));
            std::fs::create_dir(&dest).expect("dest");
            let started = Instant::now();
            if side == 0 {
                let listed = Included::scan(root, &[])
                    .expect("scan")
                    .expect("include file");
                let copied = listed.copy_into(&dest).expect("copy");
                assert_eq!(copied.files, files);
                ff.push(started.elapsed());
            } else {
                let ok = Command::new("cp")
                    .args(["-r", "--reflink=auto"])
                    .arg(root.join("data"))
                    .arg(dest.join("data"))
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "cp failed");
                cp.push(started.elapsed());
            }
            check(&dest, files);
        }
    }
    let (f, c) = (median(ff), median(cp));
    println!(
        "copy {files} files / {} MB, {rounds} rounds interleaved: ff {f:?}, cp -r --reflink=auto {c:?}, ratio {:.2}x",
        files * size / 1_000_000,
        f.as_secs_f64() / c.as_secs_f64()
    );
}

fn check(dest: &Path, files: usize) {
    let n = std::fs::read_dir(dest.join("data")).map_or(0, Iterator::count);
    assert_eq!(n, files, "{}", dest.display());
}
