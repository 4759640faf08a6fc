//! `ff doctor`: what a newcomer gets wrong, checked, each with what to do.
//!
//! It reads the repository's settings without acting on them: a backend or
//! directory an unapproved `ff.toml` names is not contacted or opened
//! (those checks say `skipped` and why). Nothing is repaired: `ff recover`
//! is named when there is something to repair.

use std::time::Duration;

use ff_model::cli::{CheckOutcome, CheckView, DoctorView};

use crate::backend::{LockBackend, StoreBackend};
use crate::config::Settings;
use crate::output::{self, Failure, Out};

/// `ff doctor`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Clock differences up to this are harmless: leases are judged by one
/// clock, and takeovers wait far longer than this.
const SKEW_OK: Duration = Duration::from_millis(500);

struct Checks(Vec<CheckView>);

impl Checks {
    fn add(
        &mut self,
        check: &str,
        outcome: CheckOutcome,
        detail: impl Into<String>,
        fix: Option<&str>,
    ) {
        self.0.push(CheckView::new(
            check,
            outcome,
            detail,
            fix.map(str::to_owned),
        ));
    }

    fn failure(&mut self, check: &str, f: &Failure) {
        self.add(
            check,
            CheckOutcome::Fail,
            format!("{}: {}", f.error.kind, f.error.message),
            None,
        );
    }
}

pub(crate) async fn run(settings: &Settings, out: Out, _args: Args) -> Result<u8, Failure> {
    let mut c = Checks(Vec::new());
    git_version(&mut c);
    let Some(top) = settings.toplevel() else {
        c.add(
            "repository",
            CheckOutcome::Fail,
            format!("{} is not inside a git repository", settings.dir.display()),
            Some("cd into a repository, or pass -C DIR"),
        );
        return finish(out, c);
    };
    c.add(
        "repository",
        CheckOutcome::Ok,
        top.display().to_string(),
        None,
    );

    let trust = &settings.trust;
    let approved = trust.settings_approved();
    if approved {
        c.add(
            "settings",
            CheckOutcome::Ok,
            "nothing waits for approval",
            None,
        );
    } else {
        c.add(
            "settings",
            CheckOutcome::Warn,
            format!(
                "ff.toml sets {}, not approved on this machine: every command refuses until then",
                trust.unapproved.join(", ")
            ),
            Some("`ff trust` shows what they decide; `ff trust allow` approves them"),
        );
    }
    match (&trust.hooks, trust.hooks_approved) {
        (None, _) => c.add("hooks", CheckOutcome::Ok, "the repository has none", None),
        (Some(_), true) => c.add("hooks", CheckOutcome::Ok, "approved", None),
        (Some(h), false) => c.add(
            "hooks",
            CheckOutcome::Warn,
            format!(
                "{} hook command(s) not approved: create, sync and cleanup refuse until then",
                h.commands().len()
            ),
            Some("`ff hooks` shows them; `ff hooks allow` approves them (or run with --no-hooks)"),
        ),
    }

    if approved {
        backends(settings, &mut c).await;
    } else {
        for check in ["state_dir", "locks", "store", "worktrees", "clock"] {
            c.add(
                check,
                CheckOutcome::Skipped,
                "not looked at: it may be what the unapproved settings name",
                Some("approve the settings first (`ff trust allow`)"),
            );
        }
    }
    shell(&mut c);
    finish(out, c)
}

fn finish(out: Out, c: Checks) -> Result<u8, Failure> {
    let failed = c.0.iter().any(|x| x.outcome == CheckOutcome::Fail);
    let view = DoctorView::new(c.0);
    out.emit(&view, || {
        let rows: Vec<Vec<String>> = view
            .checks
            .iter()
            .map(|x| {
                vec![
                    x.check.clone(),
                    match x.outcome {
                        CheckOutcome::Ok => "ok",
                        CheckOutcome::Warn => "warn",
                        CheckOutcome::Fail => "FAIL",
                        _ => "skipped",
                    }
                    .to_owned(),
                    match &x.fix {
                        Some(fix) => format!("{} → {fix}", x.detail),
                        None => x.detail.clone(),
                    },
                ]
            })
            .collect();
        output::table(&["CHECK", "", "FOUND"], &rows)
    });
    Ok(if failed { output::FAILURE } else { 0 })
}

fn git_version(c: &mut Checks) {
    let (major, minor) = ff_worktree::git::MIN_GIT_VERSION;
    let found = std::process::Command::new("git").arg("--version").output();
    let text = match found {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => {
            c.add(
                "git",
                CheckOutcome::Fail,
                "git is not installed (or not on PATH)",
                Some("install git"),
            );
            return;
        }
    };
    let version: Vec<u32> = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .split('.')
        .take(2)
        .filter_map(|p| p.parse().ok())
        .collect();
    match version.as_slice() {
        [a, b] if (*a, *b) >= (major, minor) => c.add("git", CheckOutcome::Ok, text, None),
        _ => c.add(
            "git",
            CheckOutcome::Fail,
            format!("{text}: ff needs git {major}.{minor} or newer"),
            Some("upgrade git"),
        ),
    }
}

async fn backends(settings: &Settings, c: &mut Checks) {
    match settings.state_root() {
        Ok(Some(state)) => {
            let root = state.root();
            if root.is_dir() {
                let probe = root.join(format!(".ff-doctor-{}", std::process::id()));
                match std::fs::write(&probe, b"") {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&probe);
                        c.add(
                            "state_dir",
                            CheckOutcome::Ok,
                            root.display().to_string(),
                            None,
                        );
                    }
                    Err(e) => c.add(
                        "state_dir",
                        CheckOutcome::Fail,
                        format!("{} cannot be written: {e}", root.display()),
                        Some("give ff a writable --state-dir, or fix the directory's permissions"),
                    ),
                }
            } else {
                c.add(
                    "state_dir",
                    CheckOutcome::Ok,
                    format!("{} (made at first use)", root.display()),
                    None,
                );
            }
        }
        Ok(None) => c.add("state_dir", CheckOutcome::Skipped, "no repository", None),
        Err(f) => c.failure("state_dir", &f),
    }
    match settings.locks().await {
        Ok(locks) => match locks.locks().await {
            Ok(all) => c.add(
                "locks",
                CheckOutcome::Ok,
                format!(
                    "{}: {} lock(s), {} held",
                    locks
                        .endpoint()
                        .unwrap_or_else(|| locks.backend_name().to_owned()),
                    all.len(),
                    all.iter().filter(|l| l.held).count()
                ),
                None,
            ),
            Err(e) => c.failure("locks", &e.into()),
        },
        Err(f) => c.failure("locks", &f),
    }
    match settings.store().await {
        Ok(store) => match store.stats().await {
            Ok(s) if s.corrupt > 0 => c.add(
                "store",
                CheckOutcome::Warn,
                format!(
                    "{}: {} record(s), {} unreadable",
                    store.backend_name(),
                    s.total,
                    s.corrupt
                ),
                Some("`ff stats` lists them; `ff recover` and `ff gc` tidy up"),
            ),
            Ok(s) => c.add(
                "store",
                CheckOutcome::Ok,
                format!("{}: {} record(s)", store.backend_name(), s.total),
                None,
            ),
            Err(e) => c.failure("store", &e.into()),
        },
        Err(f) => c.failure("store", &f),
    }
    match settings.manager().await {
        Ok(manager) => match manager.recover(ff_worktree::Recover::DryRun).await {
            Ok(r) if r.repairs.is_empty() => c.add(
                "worktrees",
                CheckOutcome::Ok,
                "records, git and the disk agree",
                None,
            ),
            Ok(r) => c.add(
                "worktrees",
                CheckOutcome::Warn,
                format!("{} thing(s) a crash or a hand left behind", r.repairs.len()),
                Some("`ff recover --dry-run` shows them; `ff recover` settles them"),
            ),
            Err(e) => c.failure("worktrees", &e.into()),
        },
        Err(f) => c.failure("worktrees", &f),
    }
    clock(settings, c).await;
}

async fn clock(settings: &Settings, c: &mut Checks) {
    let url = match (&settings.lock, &settings.store) {
        (LockBackend::Redis(u), _) | (_, StoreBackend::Redis(u)) => u,
        (LockBackend::Postgres(_), _) | (_, StoreBackend::Postgres(_)) => {
            c.add(
                "clock",
                CheckOutcome::Ok,
                "PostgreSQL judges leases and fencing tokens by its own clock",
                None,
            );
            return;
        }
        _ => {
            c.add(
                "clock",
                CheckOutcome::Ok,
                "one host's clock (no Redis): nothing to compare",
                None,
            );
            return;
        }
    };
    skew(url, c).await;
}

#[cfg(feature = "redis")]
async fn skew(url: &crate::backend::RedisTarget, c: &mut Checks) {
    use ff_worktree::backends::redis::Connection;
    let asked = ff_traits::Timestamp::now();
    let server = match Connection::connect(url, Duration::from_secs(5)).await {
        Ok(conn) => conn.server_time().await,
        Err(e) => Err(e),
    };
    let answered = ff_traits::Timestamp::now();
    match server {
        Ok(t) => {
            // The server read its clock somewhere in the round trip.
            let mid = asked.as_millis() / 2 + answered.as_millis() / 2;
            let skew = Duration::from_millis(mid.abs_diff(t.as_millis()));
            let detail = format!("this host and Redis differ by {} ms", skew.as_millis());
            if skew <= SKEW_OK {
                c.add("clock", CheckOutcome::Ok, detail, None);
            } else {
                c.add(
                    "clock",
                    CheckOutcome::Warn,
                    detail,
                    Some("run NTP (chrony, systemd-timesyncd) on this host and the server"),
                );
            }
        }
        Err(e) => c.failure("clock", &e.into()),
    }
}

#[cfg(not(feature = "redis"))]
async fn skew(_url: &crate::backend::RedisTarget, c: &mut Checks) {
    c.add(
        "clock",
        CheckOutcome::Skipped,
        "Redis is not compiled in",
        None,
    );
}

/// Whether the user's shell starts `ff shell-init` (the `ffcd` function).
fn shell(c: &mut Checks) {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let shell = std::env::var("SHELL").unwrap_or_default();
    let (name, files): (&str, &[&str]) = if shell.ends_with("zsh") {
        ("zsh", &[".zshrc"])
    } else if shell.ends_with("fish") {
        ("fish", &[".config/fish/config.fish"])
    } else {
        ("bash", &[".bashrc", ".bash_profile", ".profile"])
    };
    let set_up = home.as_ref().is_some_and(|h| {
        files
            .iter()
            .any(|f| std::fs::read_to_string(h.join(f)).is_ok_and(|t| t.contains("ff shell-init")))
    });
    if set_up {
        c.add(
            "shell",
            CheckOutcome::Ok,
            format!("{name} loads `ff shell-init`"),
            None,
        );
    } else {
        let fix = match name {
            "fish" => "add `ff shell-init fish | source` to ~/.config/fish/config.fish".to_owned(),
            other => format!("add `eval \"$(ff shell-init {other})\"` to ~/.{other}rc"),
        };
        c.0.push(CheckView::new(
            "shell",
            CheckOutcome::Warn,
            format!("{name} does not load `ff shell-init`: no `ffcd ISSUE` to create and enter a worktree"),
            Some(fix),
        ));
    }
}
