//! `ff completions`: a shell completion script.

/// `ff completions`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell.
    pub(crate) shell: clap_complete::Shell,
}

/// Prints the script for `args.shell`.
pub(crate) fn run(args: &Args) -> u8 {
    let mut cmd = crate::cli::whole_command();
    clap_complete::generate(args.shell, &mut cmd, "ff", &mut std::io::stdout());
    0
}
