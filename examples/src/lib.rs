//! Runnable examples of ForgeFlow; see the `examples/` folder of this crate.
//! Run one with `cargo run -p ff-examples --example NAME`.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::{Command, ExitCode};

/// Gives the repository at `repo` a committer identity of its own, in its
/// own config, so an example runs on a machine with none (a fresh one, a
/// CI runner): ForgeFlow's sync rebases in the user's name and refuses
/// when git knows no identity.
///
/// # Errors
/// When git cannot be run or refuses.
pub fn set_example_identity(repo: &Path) -> std::io::Result<()> {
    for (key, value) in [
        ("user.name", "ForgeFlow Example"),
        ("user.email", "example@localhost"),
    ] {
        let status = Command::new("git")
            .args(["config", key, value])
            .current_dir(repo)
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "git config {key} failed in {}",
                repo.display()
            )));
        }
    }
    Ok(())
}

/// An example's exit: its error told the way a person reads it (its
/// `Display`, which says what to do), not as a debug dump.
pub fn exit<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
