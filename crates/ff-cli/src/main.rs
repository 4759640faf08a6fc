//! The `ff` command. Not implemented yet (tracked as the `ff` command
//! issue): it says so and fails, rather than pretending to work.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "ff: the command-line interface is not implemented yet; \
         see the README for what works today (the ff-traits library and its examples)"
    );
    // EX_SOFTWARE would blame a bug; this is a known gap: "other failure".
    ExitCode::from(1)
}
