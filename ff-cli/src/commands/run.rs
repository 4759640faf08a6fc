//! `ff lock` and `ff once`: run a command under a lock, or at most once.

use std::time::Duration;

use ff_traits::{
    IdempotencyKey, IdempotencyManager, LockMode, LockOptions, ManagerConfig, RecordedError, Start,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::output::{Failure, Out};

/// Runs `command` with the terminal's stdio; returns its exit code
/// (128 + the signal number when a signal ended it, as shells report).
async fn run_child(command: &[String]) -> Result<u8, Failure> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::invalid("no command given after --"))?;
    // std opens every file, the lock files included, close-on-exec: the
    // child never inherits the lock.
    let status = tokio::process::Command::new(program)
        .args(args)
        .status()
        .await
        .map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            Failure::new(code, "cannot_run", format!("cannot run {program:?}: {e}"))
        })?;
    if let Some(code) = status.code() {
        return Ok(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Ok(u8::try_from(128 + signal).unwrap_or(1));
        }
    }
    Ok(1)
}

pub(super) async fn lock(
    settings: &Settings,
    out: Out,
    name: &str,
    timeout: Duration,
    shared: bool,
    command: &[String],
) -> Result<u8, Failure> {
    let name = ff_traits::LockName::new(name)?;
    let locks = settings.locks().await?;
    let mode = if shared {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    let options = LockOptions::default()
        .with_timeout(timeout)
        .with_mode(mode)
        .with_operation(format!("ff lock -- {}", command.join(" ")));
    let guard = locks
        .acquire(&name, &options)
        .await
        .map_err(crate::output::before_work)?;
    tracing::info!(
        name = name.as_str(),
        fencing_token = guard.fencing_token().0,
        "lock taken"
    );
    let code = run_child(command).await;
    let released = guard.release().await;
    let code = code?;
    released?;
    if out.json {
        out.emit(&json!({"lock": name, "exit_code": code}), String::new);
    }
    Ok(code)
}

/// `e` with the user's name for the key (`--key`, or the command) in place
/// of the record key's hash.
fn naming_key(e: ff_traits::Error, label: &str) -> ff_traits::Error {
    use ff_traits::Error as E;
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

/// The key of a command: the one given, or a hash of the command line and
/// the working directory.
fn once_key(key: Option<String>, command: &[String]) -> Result<IdempotencyKey, Failure> {
    let params = match key {
        Some(k) if k.is_empty() => return Err(Failure::invalid("--key must not be empty")),
        Some(k) => json!({"key": k}),
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| Failure::invalid(format!("cannot read the current directory: {e}")))?;
            let mut h = Sha256::new();
            h.update(cwd.to_string_lossy().as_bytes());
            for a in command {
                h.update([0]);
                h.update(a.as_bytes());
            }
            json!({"command": ff_traits::hex_lower(&h.finalize())})
        }
    };
    Ok(IdempotencyKey::new("once", params, json!({})))
}

pub(super) async fn once(
    settings: &Settings,
    out: Out,
    key: Option<String>,
    max_attempts: u32,
    backoff: Duration,
    command: &[String],
) -> Result<u8, Failure> {
    if max_attempts == 0 {
        return Err(Failure::invalid("--max-attempts must be at least 1"));
    }
    // Messages name the key the user gave, not its hash.
    let label = key.as_deref().map_or_else(
        || format!("of command {:?}", command.join(" ")),
        |k| format!("{k:?}"),
    );
    let key = once_key(key, command)?;
    let store = settings.store().await?;
    let config = ManagerConfig::default()
        .with_max_attempts(max_attempts)
        .with_retry_backoff(backoff)
        .with_max_age(Duration::from_secs(100 * 365 * 86_400));
    let lease = config.lease;
    let manager = IdempotencyManager::new(store, config);
    let claim = match manager
        .start_operation(&key, None)
        .await
        .map_err(|e| crate::output::before_work(naming_key(e, &label)))?
    {
        Start::AlreadyCompleted(record) => {
            let at = record.ended_at.unwrap_or(record.last_attempt_at);
            out.emit(
                &json!({"ran": false, "status": "already_completed", "exit_code": 0, "completed_at": crate::output::rfc3339(at)}),
                || format!("already completed {}; not run again", crate::output::ago(at)),
            );
            return Ok(0);
        }
        Start::Claimed(claim) => claim,
    };
    // Keep the claim alive while the command runs, however long.
    let renewing = async {
        let mut tick = tokio::time::interval(lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = manager.renew(&claim).await {
                tracing::warn!(error = %e, "could not renew the claim");
            }
        }
    };
    let code = tokio::select! {
        code = run_child(command) => code,
        () = renewing => unreachable!("renewal never ends"),
    };
    let code = match code {
        Ok(c) => c,
        Err(f) => {
            let _ = manager
                .fail_operation(&claim, RecordedError::new(&f.kind, &f.message, false))
                .await;
            return Err(f);
        }
    };
    if code == 0 {
        manager
            .complete_operation(&claim, json!({"exit_code": 0}))
            .await?;
    } else {
        manager
            .fail_operation(
                &claim,
                RecordedError::new("exit", format!("exited with {code}"), true),
            )
            .await?;
    }
    if out.json {
        out.emit(&json!({"ran": true, "exit_code": code}), String::new);
    }
    Ok(code)
}
