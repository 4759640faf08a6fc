//! `ff shell-init`: the `ffcd` shell function.

use clap::ValueEnum;

/// `ff shell-init`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: Shell,
}

/// Shells `ff shell-init` writes for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Prints the function for `args.shell`.
pub(crate) fn run(args: &Args) -> u8 {
    print!("{}", script(args.shell));
    0
}

/// The `ffcd ISSUE` function for `shell`: creates the worktree if needed
/// (reusing it otherwise) and changes into it; on failure `ff`'s message
/// stands and the directory stays.
fn script(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash | Shell::Zsh => {
            "# ForgeFlow: `ffcd ISSUE` creates the issue's worktree if needed and cds into it.\n\
             ffcd() {\n  \
               if [ \"$#\" -ne 1 ]; then echo 'usage: ffcd ISSUE' >&2; return 2; fi\n  \
               local ff_path\n  \
               ff_path=\"$(command ff create \"$1\" --print-path)\" || return\n  \
               cd \"$ff_path\"\n\
             }\n"
        }
        Shell::Fish => {
            "# ForgeFlow: `ffcd ISSUE` creates the issue's worktree if needed and cds into it.\n\
             function ffcd --description 'create the issue worktree if needed and cd into it'\n    \
                 if test (count $argv) -ne 1\n        \
                     echo 'usage: ffcd ISSUE' >&2\n        \
                     return 2\n    \
                 end\n    \
                 set -l ff_path (command ff create $argv[1] --print-path); or return\n    \
                 cd $ff_path\n\
             end\n"
        }
    }
}
