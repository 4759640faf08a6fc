//! One function per command; each returns the exit code or a failure.

mod admin;
mod exec;
mod run;
mod serve;
mod supervise;
mod trust;
mod worktree;

use crate::cli::{Cli, Command};
use crate::config::{Review, Settings};
use crate::output::{Failure, Out};

pub(crate) async fn run(cli: Cli) -> Result<u8, Failure> {
    let out = Out {
        json: cli.global.json,
    };
    if let Command::Completions { shell } = cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "ff", &mut std::io::stdout());
        return Ok(0);
    }
    if let Command::ShellInit { shell } = cli.command {
        print!("{}", worktree::shell_init(shell));
        return Ok(0);
    }
    // `ff trust` and `ff hooks` show what waits for approval; every other
    // command refuses it.
    let review = if matches!(cli.command, Command::Trust { .. } | Command::Hooks { .. }) {
        Review::Show
    } else {
        Review::Enforce
    };
    let settings = Settings::load(&cli.global, review).await?;
    match cli.command {
        Command::Create {
            issue,
            base,
            print_path,
        } => worktree::create(&settings, out, &issue, base, print_path).await,
        Command::Exec {
            issue,
            no_create,
            kill_after,
            command,
        } => exec::exec(&settings, out, &issue, !no_create, kill_after, &command).await,
        Command::Path { target } => worktree::path(&settings, out, &target).await,
        Command::Get { target } => worktree::get(&settings, out, &target).await,
        Command::Sync {
            target,
            strategy,
            autostash,
        } => worktree::sync(&settings, out, &target, strategy, autostash).await,
        Command::Cleanup { target, force } => {
            worktree::cleanup(&settings, out, &target, force).await
        }
        Command::Prune {
            merged,
            older_than,
            dry_run,
        } => worktree::prune(&settings, out, merged, older_than, dry_run).await,
        Command::List => worktree::list(&settings, out).await,
        Command::Recover { dry_run } => admin::recover(&settings, out, dry_run).await,
        Command::Locks { tree } => admin::locks(&settings, out, tree).await,
        Command::Unlock { name, all, force } => {
            admin::unlock(&settings, out, name.as_deref(), all, force).await
        }
        Command::Stats => admin::stats(&settings, out).await,
        Command::Serve {
            listen,
            allow_hosts,
            admin,
            poll_interval,
            record_interval,
            history_interval,
            max_connections,
            header_timeout,
        } => {
            let how = serve::ServeOptions {
                listen,
                allow_hosts,
                admin,
                poll_interval,
                record_interval,
                history_interval,
                max_connections,
                header_timeout,
            };
            serve::serve(&settings, out, how).await
        }
        Command::Top { interval, count } => serve::top(&settings, out, interval, count).await,
        Command::Hooks { action } => admin::hooks(&settings, out, action),
        Command::Trust { action } => trust::trust(&settings, out, action).await,
        Command::Gc { max_age } => admin::gc(&settings, out, max_age).await,
        Command::Lock {
            name,
            timeout,
            shared,
            permits,
            kill_after,
            lease,
            command,
        } => {
            let how = run::LockRun {
                timeout,
                shared,
                permits,
                kill_after,
                lease,
            };
            run::lock(&settings, out, &name, &how, &command).await
        }
        Command::Once {
            key,
            max_attempts,
            backoff,
            ttl,
            allow_different_command,
            forget,
            kill_after,
            command,
        } => {
            if forget {
                return run::forget(&settings, out, key.unwrap_or_default()).await;
            }
            let options = run::OnceOptions {
                max_attempts,
                backoff,
                ttl,
                allow_different_command,
                kill_after,
            };
            run::once(&settings, out, key, options, &command).await
        }
        Command::Completions { .. } | Command::ShellInit { .. } => Ok(0),
    }
}
