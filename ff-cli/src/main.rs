//! The `ff` command: per-issue git worktrees, locks and run-once commands
//! for many processes at once. `ff --help` lists the commands and exit
//! codes; each command's --help has examples; docs/ has the rest.

#![forbid(unsafe_code)]
// A command line prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// The doc comments in `cli` are clap's --help text, written for a terminal
// (`<id>`, `[A-Z]`), not rustdoc markup.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod backend;
mod background;
mod cli;
mod commands;
mod config;
mod hooks;
mod output;
mod target;
mod trust;

use std::process::ExitCode;

use crate::cli::CommandAfterDashes as _;

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => e.exit_with_hint(),
    };
    init_logs(cli.global.verbose);
    if matches!(cli.command, cli::Command::Serve(_)) {
        // Before the runtime's threads exist: it may start the process again.
        commands::serve::cap_malloc_arenas();
    }
    let out = output::Out {
        json: cli.global.json,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return out.fail(&output::Failure::new(
                output::Problem::Runtime,
                format!("cannot start: {e}"),
            ));
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => out.fail(&f),
    }
}

/// The command line, parsed once (as `Cli::try_parse`, which builds the
/// parser and then frees it).
///
/// The parser is read once and the process soon ends, so it is never
/// freed: freeing clap's tree of commands and arguments was a fifth of
/// the instructions `ff --version` ran (BENCHMARKS.md, "Start-up").
fn parse() -> Result<cli::Cli, clap::Error> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let mut command = cli::Cli::command();
    let parsed = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut matches| {
            cli::Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
        });
    std::mem::forget(command);
    parsed
}

/// Logs on stderr: off unless `-v` (info) or `-vv` (debug), or `RUST_LOG`.
fn init_logs(verbose: u8) {
    let default = match verbose {
        0 => "off",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal: a pipe or a log file gets
    // plain text, and NO_COLOR is honoured.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}
