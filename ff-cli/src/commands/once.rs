//! `ff once -- CMD`: run a command at most once successfully per key.

use std::sync::Arc;
use std::time::Duration;

use ff_idempotency::{IdempotencyManager, ManagerConfig, Reason, Start};
use ff_model::cli::{ForgottenView, OnceOutput, OnceView};
use ff_traits::{IdempotencyKey, RecordedError};
use ff_worktree::display::{escape, escape_path};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::supervise;
use crate::config::Settings;
use crate::output::{Failure, Out};

/// `ff once`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The key [default: a hash of the command line and the working directory].
    #[arg(long)]
    pub(crate) key: Option<String>,
    /// Stop retrying a failing command after this many attempts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_attempts: u32,
    /// Wait at least this long after a failure before retrying (doubling each time).
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "1s")]
    pub(crate) backoff: Duration,
    /// A completed run counts for this long; after it the command may
    /// run again [default: forever].
    #[arg(long, value_parser = crate::cli::parse_nonzero_duration, value_name = "DURATION")]
    pub(crate) ttl: Option<Duration>,
    /// Accept the key's completed run of another command (or from
    /// another directory) as this one's; by default that is refused (65).
    #[arg(long, requires = "key")]
    pub(crate) allow_different_command: bool,
    /// Remove the key's record (refused while its command runs), so the
    /// command may run again; needs --key, takes no command.
    #[arg(long, requires = "key", conflicts_with_all = ["command", "allow_different_command"])]
    pub(crate) forget: bool,
    /// If the claim is lost while CMD runs, how long CMD has to stop
    /// after SIGTERM before SIGKILL.
    #[arg(long, value_parser = crate::cli::parse_duration, default_value = "10s", value_name = "DURATION")]
    pub(crate) kill_after: Duration,
    /// The command and its arguments.
    #[arg(last = true, required_unless_present = "forget", value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

pub(crate) async fn run(settings: &Settings, out: Out, args: Args) -> Result<u8, Failure> {
    if args.forget {
        return forget(settings, out, args.key.unwrap_or_default()).await;
    }
    let (key, command, options) = (args.key.clone(), &args.command[..], &args);
    // Messages name the key the user gave, not its hash.
    let label = key.as_deref().map_or_else(
        || format!("of command {:?}", command.join(" ")),
        |k| format!("{k:?}"),
    );
    let given = key.is_some();
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::invalid(format!("cannot read the current directory: {e}")))?;
    let fingerprint = json!({"command": command, "cwd": cwd});
    let (key, key_text) = once_key(key, command)?;
    let forget_hint = Some(format!("ff once --forget --key {key_text:?}"));
    let store = settings.store().await?;
    let config = ManagerConfig::default()
        .with_max_attempts(options.max_attempts)
        .with_retry_backoff(options.backoff)
        .with_max_age(
            options
                .ttl
                .unwrap_or(Duration::from_secs(100 * 365 * 86_400)),
        );
    let lease = config.lease;
    let reader = IdempotencyManager::new(Arc::clone(&store), config.clone());
    // A completed run of this command is replayed; of another, refused
    // unless allowed.
    let checked = |record: &ff_traits::IdempotencyRecord| -> Result<u8, Failure> {
        let done = record.result.clone().unwrap_or_default();
        let same = done.get("command") == fingerprint.get("command")
            && done.get("cwd") == fingerprint.get("cwd");
        // A record with no fingerprint says nothing of what ran: it
        // matches no command (a store can hold records ff did not
        // write), so its output is never replayed as this command's.
        if done.get("command").is_none() && !options.allow_different_command {
            return Err(Failure::invalid(format!(
                "key {label} has a completed record that does not say which command ran (not \
                 written by this ff, or by a release before fingerprints), so it is not \
                 taken as a run of `{}`: use another key, forget it ({}), or pass \
                 --allow-different-command",
                escape(&command.join(" ")),
                forget_hint
                    .as_deref()
                    .unwrap_or("ff once --forget --key KEY")
            )));
        }
        if !same && !options.allow_different_command {
            return Err(Failure::invalid(format!(
                "key {label} already ran `{}` in {}; this is `{}` in {}: use another key, \
                 or pass --allow-different-command",
                escape(&shell_words(done.get("command"))),
                escape(done.get("cwd").and_then(Value::as_str).unwrap_or("?")),
                escape(&command.join(" ")),
                escape_path(&cwd)
            )));
        }
        Ok(replay(out, record, &done, &key_text))
    };
    // A completed run is replayed after one read.
    let decision = reader
        .should_execute(&key)
        .await
        .map_err(crate::output::before_work)?;
    if decision.reason == Reason::AlreadyCompleted
        && let Some(record) = &decision.record
    {
        return checked(record);
    }
    // The command's process group exists before the claim, and the claim
    // names it: an `ff` that died is taken for dead (its claim taken over
    // at once by the next call on this host, not after the lease) only
    // once its command has been stopped too.
    let supervisor = supervise::Supervisor::start()?;
    let manager = IdempotencyManager::new(store, config.with_process_group(supervisor.group()));
    let claim = match manager
        .start_operation(&key, Some(fingerprint.clone()))
        .await
        .map_err(|e| {
            let mut f = crate::output::before_work(naming_key(e, &label));
            if f.error.kind == "max_attempts_exceeded"
                && let Some(hint) = &forget_hint
            {
                f.error.message.push_str(&format!("; or now: {hint}"));
            }
            f
        })? {
        Start::Claimed(claim) => claim,
        // Completed since the read above.
        Start::AlreadyCompleted(record) => return checked(&record),
    };
    // A key the user did not choose is told, so it can be forgotten.
    if !given && !out.json {
        eprintln!("ff: key {key_text} (this command line in this directory; --key names your own)");
    }
    ff_worktree::crash::point("once.claimed");
    // Keep the claim alive while the command runs, however long; a claim
    // that cannot be renewed (taken over, removed) is protection lost.
    let renewing = async {
        let mut tick = tokio::time::interval(lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            match manager.renew(&claim).await {
                Ok(()) => {}
                Err(e) if e.kind() == ff_traits::ErrorKind::Backend.into() => {
                    tracing::warn!(error = %e, "could not renew the claim; trying again");
                }
                Err(e) => return format!("the claim on key {label} was lost: {e}"),
            }
        }
    };
    let env = [
        ("FF_ONCE_KEY", key_text.clone()),
        ("FF_FENCING_TOKEN", claim.fencing_token.0.to_string()),
    ];
    let job = supervise::Job {
        command,
        cwd: None,
        env: &env,
        kill_after: options.kill_after,
        output: supervise::Output::PassThroughAndKeep,
    };
    let ran = supervise::run(supervisor, job, renewing).await;
    ff_worktree::crash::point("once.ran");
    let (code, stdout, stderr) = match ran {
        Ok(r) if r.lost.is_some() => return Ok(r.code),
        Ok(r) => (r.code, r.stdout, r.stderr),
        Err(f) => {
            let _ = manager
                .fail_operation(
                    &claim,
                    RecordedError::new(&f.error.kind, &f.error.message, false),
                )
                .await;
            return Err(f);
        }
    };
    let recorded = if code == 0 {
        let mut result = fingerprint.clone();
        result["exit_code"] = json!(0);
        result["stdout"] = json!(String::from_utf8_lossy(&stdout));
        result["stderr"] = json!(String::from_utf8_lossy(&stderr));
        manager.complete_operation(&claim, result).await
    } else {
        manager
            .fail_operation(
                &claim,
                RecordedError::new("exit", format!("exited with {code}"), true),
            )
            .await
    };
    ff_worktree::crash::point("once.completed");
    recorded?;
    if out.json {
        out.emit(
            &OnceOutput::Run(OnceView::ran(code).with_key(&key_text)),
            String::new,
        );
    }
    Ok(code)
}

/// `e` with the user's name for the key (`--key`, or the command) in place
/// of the record key's hash.
fn naming_key(e: ff_idempotency::Error, label: &str) -> ff_idempotency::Error {
    use ff_idempotency::Error as E;
    match e {
        E::InProgress {
            operation,
            lease_remaining,
            ..
        } => E::InProgress {
            operation,
            key: label.to_owned(),
            lease_remaining,
        },
        E::MaxAttemptsExceeded {
            operation,
            attempts,
            max_attempts,
            last_error,
            ..
        } => E::MaxAttemptsExceeded {
            operation,
            key: label.to_owned(),
            attempts,
            max_attempts,
            last_error,
        },
        E::BackoffNotElapsed {
            operation,
            remaining,
            ..
        } => E::BackoffNotElapsed {
            operation,
            key: label.to_owned(),
            remaining,
        },
        E::FailedPermanently {
            operation,
            last_error,
            ..
        } => E::FailedPermanently {
            operation,
            key: label.to_owned(),
            last_error,
        },
        other => other,
    }
}

/// The prefix of a default key as `--key` takes it: `command:` and the
/// SHA-256 of the command line and directory, in hex.
const DEFAULT_KEY_PREFIX: &str = "command:";

/// The key of a command, and how `--key` names it: the one given, or a hash
/// of the command line and the working directory (`command:<hex>`, which
/// `--key` maps back, so `--forget` reaches a default key too).
fn once_key(key: Option<String>, command: &[String]) -> Result<(IdempotencyKey, String), Failure> {
    let default_of = |hex: &str| {
        (
            IdempotencyKey::new("once", json!({"command": hex}), json!({})),
            format!("{DEFAULT_KEY_PREFIX}{hex}"),
        )
    };
    match key {
        Some(k) if k.is_empty() => Err(Failure::invalid("--key must not be empty")),
        Some(k) => match k.strip_prefix(DEFAULT_KEY_PREFIX) {
            Some(hex)
                if hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(default_of(hex))
            }
            _ => Ok((IdempotencyKey::new("once", json!({"key": k}), json!({})), k)),
        },
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| Failure::invalid(format!("cannot read the current directory: {e}")))?;
            let mut h = Sha256::new();
            h.update(cwd.to_string_lossy().as_bytes());
            for a in command {
                h.update([0]);
                h.update(a.as_bytes());
            }
            Ok(default_of(&ff_traits::hex_lower(&h.finalize())))
        }
    }
}

/// A completed run, told again: its output replayed (stdout to stdout,
/// stderr to stderr) and its exit code.
fn replay(out: Out, record: &ff_traits::IdempotencyRecord, done: &Value, key: &str) -> u8 {
    let at = record.ended_at.unwrap_or(record.last_attempt_at);
    let text = |k: &str| {
        done.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let code = done
        .get("exit_code")
        .and_then(Value::as_u64)
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(0);
    if out.json {
        out.emit(
            &OnceOutput::Run(
                OnceView::replayed(at, code, text("stdout"), text("stderr")).with_key(key),
            ),
            String::new,
        );
    } else {
        use std::io::Write;
        let _ = std::io::stdout()
            .lock()
            .write_all(text("stdout").as_bytes());
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text("stderr").as_bytes());
        let _ = writeln!(
            err,
            "ff: key {key} already completed {}; not run again (its output is replayed above)",
            crate::output::ago(at)
        );
    }
    code
}

fn shell_words(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `ff once --forget --key K`: removes the key's record, unless its command
/// is running now (a live claim whose claimant is not known dead): then 75.
async fn forget(settings: &Settings, out: Out, key: String) -> Result<u8, Failure> {
    let label = format!("{key:?}");
    let (key, _) = once_key(Some(key), &[])?;
    let record_key = key.record_key()?;
    let store = settings.store().await?;
    let Some(record) = store
        .load(&record_key)
        .await
        .map_err(crate::output::before_work)?
    else {
        out.emit(&OnceOutput::Forgotten(ForgottenView::new(false)), || {
            format!("nothing to forget: key {label} has no record")
        });
        return Ok(0);
    };
    // Running: pending, its lease live, and its claimant not known dead
    // (on this host, its process and its command gone).
    let live = record.status == ff_traits::RecordStatus::Pending
        && record.owner.as_ref().is_some_and(|o| {
            o.lease_deadline > ff_traits::Timestamp::now()
                && ff_process::claimant_liveness(o) != ff_process::Liveness::Dead
        });
    if live {
        return Err(Failure::new(
            crate::output::Problem::InProgress,
            format!("key {label} is running now; forget it once it ends"),
        ));
    }
    store.remove(&record_key, record.revision).await?;
    out.emit(&OnceOutput::Forgotten(ForgottenView::new(true)), || {
        format!("forgot key {label}: its command may run again")
    });
    Ok(0)
}
