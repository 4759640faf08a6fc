//! One module per command (cargo's layout): each owns its `Args`, parsed
//! once by clap, and its `run`.

pub(crate) mod agent;
pub(crate) mod cleanup;
pub(crate) mod completions;
pub(crate) mod create;
pub(crate) mod delete_removed;
pub(crate) mod doctor;
pub(crate) mod exec;
pub(crate) mod gc;
pub(crate) mod get;
pub(crate) mod hooks;
pub(crate) mod list;
pub(crate) mod lock;
pub(crate) mod locks;
pub(crate) mod man;
pub(crate) mod mcp;
pub(crate) mod once;
pub(crate) mod path;
pub(crate) mod pool;
pub(crate) mod prune;
pub(crate) mod recover;
pub(crate) mod serve;
pub(crate) mod shell_init;
mod show;
pub(crate) mod stats;
pub(crate) mod status;
mod supervise;
pub(crate) mod switch;
pub(crate) mod sync;
pub(crate) mod top;
pub(crate) mod trust;
pub(crate) mod unlock;

use crate::cli::{Cli, Command, Deferred};
use crate::config::{Review, Settings};
use crate::output::{Failure, Out};

pub(crate) async fn run(cli: Cli) -> Result<u8, Failure> {
    let out = Out {
        json: cli.global.json,
    };
    // The agent hooks find their repository in their input.
    if let Command::Agent(Deferred(args)) = cli.command {
        return agent::run(&cli.global, out, args).await;
    }
    // Commands that need no repository, no settings and no backend.
    match &cli.command {
        Command::Completions(Deferred(args)) => return Ok(completions::run(args)),
        Command::Man(Deferred(args)) => return man::run(args),
        Command::ShellInit(Deferred(args)) => return Ok(shell_init::run(args)),
        Command::DeleteRemoved(Deferred(args)) => return Ok(delete_removed::run(args)),
        _ => {}
    }
    // `ff trust` and `ff hooks` show what waits for approval; every other
    // command refuses it.
    let review = if matches!(
        cli.command,
        Command::Trust(_) | Command::Hooks(_) | Command::Doctor(_)
    ) {
        Review::Show
    } else {
        Review::Enforce
    };
    let mut settings = Settings::load(&cli.global, review).await?;
    // Commands that remove worktrees and then exit leave the deletion of
    // their files to a process of its own (see `delete_removed`), started
    // below; servers, which do not exit, delete as they go.
    settings.defer_deletion = cfg!(unix)
        && matches!(
            cli.command,
            Command::Create(_)
                | Command::Exec(_)
                | Command::Switch(_)
                | Command::Cleanup(_)
                | Command::Prune(_)
        );
    // Commands that may take a warm pool worktree refill the pool in the
    // background when they are done.
    settings.refill_pool = matches!(
        cli.command,
        Command::Create(_) | Command::Exec(_) | Command::Switch(_)
    );
    // The MCP server keeps the settings for as long as it serves.
    let command = match cli.command {
        Command::Mcp(Deferred(args)) => return mcp::run(settings, args).await,
        other => other,
    };
    let s = &settings;
    let done = match command {
        Command::Create(Deferred(args)) => create::run(s, out, args).await,
        Command::Exec(Deferred(args)) => exec::run(s, out, args).await,
        Command::Path(Deferred(args)) => path::run(s, out, args).await,
        Command::Switch(Deferred(args)) => switch::run(s, out, args).await,
        Command::Get(Deferred(args)) => get::run(s, out, args).await,
        Command::Sync(Deferred(args)) => sync::run(s, out, args).await,
        Command::Cleanup(Deferred(args)) => cleanup::run(s, out, args).await,
        Command::Prune(Deferred(args)) => prune::run(s, out, args).await,
        Command::Pool(Deferred(args)) => pool::run(s, out, args).await,
        Command::List(Deferred(args)) => list::run(s, out, args).await,
        Command::Recover(Deferred(args)) => recover::run(s, out, args).await,
        Command::Locks(Deferred(args)) => locks::run(s, out, args).await,
        Command::Unlock(Deferred(args)) => unlock::run(s, out, args).await,
        Command::Stats(Deferred(args)) => stats::run(s, out, args).await,
        Command::Status(Deferred(args)) => status::run(s, out, args).await,
        Command::Serve(Deferred(args)) => serve::run(s, out, args).await,
        Command::Top(Deferred(args)) => top::run(s, out, args).await,
        Command::Hooks(Deferred(args)) => hooks::run(s, out, &args),
        Command::Trust(Deferred(args)) => trust::run(s, out, args).await,
        Command::Gc(Deferred(args)) => gc::run(s, out, args).await,
        Command::Doctor(Deferred(args)) => doctor::run(s, out, args).await,
        Command::Lock(Deferred(args)) => lock::run(s, out, args).await,
        Command::Once(Deferred(args)) => once::run(s, out, args).await,
        Command::Completions(_)
        | Command::Man(_)
        | Command::ShellInit(_)
        | Command::Mcp(_)
        | Command::Agent(_)
        | Command::DeleteRemoved(_) => Ok(0),
    };
    // Failed or not: a removal may have happened before the failure.
    settings.start_deferred_deletion();
    settings.start_pool_fill();
    done
}
