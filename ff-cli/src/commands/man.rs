//! `ff man`: manual pages, generated from the command-line definition.

use std::path::PathBuf;

use crate::output::{Failure, Problem};

/// `ff man`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write a page for `ff` and one for each command (`ff-create.1`, …)
    /// into DIR (for example `/usr/local/share/man/man1`); without it,
    /// `ff.1` is printed.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

/// Writes or prints the pages.
pub(crate) fn run(args: &Args) -> Result<u8, Failure> {
    let cmd = crate::cli::whole_command();
    let cannot = |e: std::io::Error| {
        Failure::new(
            Problem::CannotWrite,
            format!("cannot write the manual pages: {e}"),
        )
    };
    match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(cannot)?;
            clap_mangen::generate_to(cmd, dir).map_err(cannot)?;
            eprintln!("ff: manual pages written to {}", dir.display());
        }
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout().lock())
            .map_err(cannot)?,
    }
    Ok(0)
}
