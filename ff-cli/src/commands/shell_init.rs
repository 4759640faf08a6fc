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

/// The shell functions for `shell`: `ff` itself, so that `ff switch …`
/// changes directory (every other command runs as it is), and `ffcd`, the
/// same as `ff switch`. On failure `ff`'s message stands and the directory
/// stays. A typo never makes a worktree: only `--create` (`-c`) does.
fn script(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash | Shell::Zsh => {
            "# ForgeFlow: `ff switch TARGET` (or `ffcd TARGET`) changes into a worktree;\n\
             # `-c ISSUE` makes the issue's first, `-` goes back to the main tree.\n\
             ff() {\n  \
               if [ \"$1\" = switch ]; then\n    \
                 shift\n    \
                 ffcd \"$@\"\n  \
               else\n    \
                 command ff \"$@\"\n  \
               fi\n\
             }\n\
             ffcd() {\n  \
               if [ \"$#\" -eq 0 ]; then echo 'usage: ffcd [-c] TARGET | ffcd -' >&2; return 2; fi\n  \
               local ff_path\n  \
               ff_path=\"$(command ff switch \"$@\")\" || return\n  \
               cd \"$ff_path\" || return\n\
             }\n"
        }
        Shell::Fish => {
            "# ForgeFlow: `ff switch TARGET` (or `ffcd TARGET`) changes into a worktree;\n\
             # `-c ISSUE` makes the issue's first, `-` goes back to the main tree.\n\
             function ff --wraps ff --description 'ForgeFlow; ff switch changes directory'\n    \
                 if test (count $argv) -ge 1; and test $argv[1] = switch\n        \
                     ffcd $argv[2..-1]\n    \
                 else\n        \
                     command ff $argv\n    \
                 end\n\
             end\n\
             function ffcd --description 'change into a ForgeFlow worktree'\n    \
                 if test (count $argv) -eq 0\n        \
                     echo 'usage: ffcd [-c] TARGET | ffcd -' >&2\n        \
                     return 2\n    \
                 end\n    \
                 set -l ff_path (command ff switch $argv); or return\n    \
                 cd $ff_path\n\
             end\n"
        }
    }
}
