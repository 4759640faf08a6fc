//! Checks of the [`IdempotencyManager`] rules over a given store. They
//! exercise the store's conditional writes the way the manager uses them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::unique_prefix;
use ff_idempotency::{Error, ExecuteError, IdempotencyManager, ManagerConfig, Reason, Start};
use ff_traits::{
    IdempotencyKey, IdempotencyStorage, ManualClock, RecordStatus, RecordedError, Timestamp,
};

type Store = Arc<dyn IdempotencyStorage>;

fn key(check: &str) -> IdempotencyKey {
    IdempotencyKey::new(
        unique_prefix(check),
        json!({"issueId": "123", "path": "/project"}),
        json!({"basePath": ".worktrees"}),
    )
}

fn manual(s: &Store) -> (IdempotencyManager<Store>, ManualClock) {
    let clock = ManualClock::new(Timestamp::now());
    let config = ManagerConfig::default()
        .with_max_attempts(3)
        .with_retry_backoff(Duration::from_secs(1))
        .with_max_age(Duration::from_secs(3_600))
        .with_lease(Duration::from_secs(30));
    let m = IdempotencyManager::new(Arc::clone(s), config).with_clock(Arc::new(clock.clone()));
    (m, clock)
}

fn claimed(start: ff_idempotency::Result<Start>) -> ff_idempotency::Claim {
    match start {
        Ok(Start::Claimed(c)) => c,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn boom(retryable: bool) -> RecordedError {
    RecordedError::new("operation", "boom", retryable)
}

/// 64 concurrent `start_operation`s of one key: exactly one claim.
pub async fn claim_race_has_one_winner(s: Store) {
    for _ in 0..super::race_rounds() {
        claim_race_round(&s).await;
    }
}

async fn claim_race_round(s: &Store) {
    let k = key("claimrace");
    let mut tasks = JoinSet::new();
    let start = Arc::new(Barrier::new(64));
    for _ in 0..64 {
        let m = IdempotencyManager::new(Arc::clone(s), ManagerConfig::default());
        let (k, start) = (k.clone(), Arc::clone(&start));
        tasks.spawn(async move {
            start.wait().await;
            m.start_operation(&k, Some(json!({"n": 1}))).await
        });
    }
    let (mut won, mut busy) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.expect("task panicked") {
            Ok(Start::Claimed(_)) => won += 1,
            Err(Error::InProgress { .. }) => busy += 1,
            other => panic!("unexpected answer in a claim race: {other:?}"),
        }
    }
    assert_eq!(
        (won, busy),
        (1, 63),
        "exactly one concurrent claimant may win"
    );
}

/// Failures, backoff, max attempts, expiry, replay, permanent failures and
/// rollback, as specified.
pub async fn lifecycle_rules(s: Store) {
    let (m, clock) = manual(&s);
    let k = key("lifecycle");

    let d = m.should_execute(&k).await.expect("decide");
    assert!(d.execute && d.reason == Reason::NoPreviousExecution && d.record.is_none());

    let c1 = claimed(m.start_operation(&k, None).await);
    assert_eq!(c1.reason, Reason::NoPreviousExecution);
    m.fail_operation(&c1, boom(true)).await.expect("fail");
    let d = m.should_execute(&k).await.expect("decide");
    assert_eq!(
        d.reason,
        Reason::BackoffNotElapsed {
            remaining: Duration::from_secs(1)
        }
    );
    assert_eq!(
        d.reason.to_string(),
        "Retry backoff period not elapsed (1000 ms remaining)"
    );
    assert!(matches!(
        m.start_operation(&k, None).await,
        Err(Error::BackoffNotElapsed { .. })
    ));

    clock.advance(Duration::from_secs(1));
    let c2 = claimed(m.start_operation(&k, None).await);
    assert_eq!(c2.reason, Reason::RetryingAfterFailure);
    assert!(c2.fencing_token > c1.fencing_token);
    m.fail_operation(&c2, boom(true)).await.expect("fail");
    // Second failure: backoff doubles to 2 s.
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        m.should_execute(&k).await.expect("decide").reason,
        Reason::BackoffNotElapsed {
            remaining: Duration::from_secs(1)
        }
    );
    clock.advance(Duration::from_secs(1));
    let c3 = claimed(m.start_operation(&k, None).await);
    assert_eq!(
        m.store()
            .load(&c3.key)
            .await
            .expect("load")
            .expect("record")
            .attempts,
        3
    );
    m.fail_operation(&c3, boom(true)).await.expect("fail");
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        m.should_execute(&k).await.expect("decide").reason,
        Reason::MaxAttemptsExceeded
    );
    match m.start_operation(&k, None).await {
        Err(Error::MaxAttemptsExceeded {
            attempts: 3,
            max_attempts: 3,
            ..
        }) => {}
        other => panic!("expected MaxAttemptsExceeded, got {other:?}"),
    }

    // Past max_age the record starts afresh.
    clock.advance(Duration::from_secs(3_600));
    let c4 = claimed(m.start_operation(&k, None).await);
    assert_eq!(c4.reason, Reason::PreviousRecordExpired);
    assert_eq!(
        m.store()
            .load(&c4.key)
            .await
            .expect("load")
            .expect("record")
            .attempts,
        1
    );
    m.complete_operation(&c4, json!({"id": "wt-1"}))
        .await
        .expect("complete");
    let d = m.should_execute(&k).await.expect("decide");
    assert_eq!(d.reason, Reason::AlreadyCompleted);
    match m.start_operation(&k, None).await {
        Ok(Start::AlreadyCompleted(r)) => assert_eq!(r.result, Some(json!({"id": "wt-1"}))),
        other => panic!("expected the completed record, got {other:?}"),
    }

    // An abandoned claim leaves nothing: the next attempt starts at once.
    let ka = key("abandon");
    let ca = claimed(m.start_operation(&ka, None).await);
    m.abandon_operation(&ca).await.expect("abandon");
    assert!(m.store().load(&ca.key).await.expect("load").is_none());
    let again = claimed(m.start_operation(&ka, None).await);
    assert_eq!(again.reason, Reason::NoPreviousExecution);
    assert!(matches!(
        m.abandon_operation(&ca).await,
        Err(Error::Contract(ff_traits::Error::LockLost { .. }))
    ));
    m.complete_operation(&again, json!("done"))
        .await
        .expect("complete");

    // A permanent failure is not retried.
    let kp = key("permanent");
    let cp = claimed(m.start_operation(&kp, None).await);
    m.fail_operation(&cp, boom(false)).await.expect("fail");
    clock.advance(Duration::from_secs(10));
    assert!(matches!(
        m.start_operation(&kp, None).await,
        Err(Error::FailedPermanently { .. })
    ));

    // Rollback runs on the rollback data and marks the record.
    let kr = key("rollback");
    let cr = claimed(m.start_operation(&kr, Some(json!({"path": "/wt"}))).await);
    m.fail_operation(&cr, boom(true)).await.expect("fail");
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Option<Value>>::new()));
    let seen2 = Arc::clone(&seen);
    let rolled = m
        .rollback_operation(&kr, move |data| {
            let seen = Arc::clone(&seen2);
            async move {
                seen.lock().expect("mutex").push(data);
                Ok::<(), String>(())
            }
        })
        .await
        .expect("rollback");
    assert_eq!(rolled.status, RecordStatus::RolledBack);
    assert_eq!(
        *seen.lock().expect("mutex"),
        vec![Some(json!({"path": "/wt"}))]
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        m.should_execute(&kr).await.expect("decide").reason,
        Reason::PreviousRolledBack
    );
    // A failing rollback keeps the original error.
    let kf = key("rollbackfail");
    let cf = claimed(m.start_operation(&kf, Some(json!(1))).await);
    m.fail_operation(&cf, boom(true)).await.expect("fail");
    match m
        .rollback_operation(&kf, |_| async { Err::<(), _>("disk gone".to_owned()) })
        .await
    {
        Err(ff_idempotency::RollbackError::Rollback { source, original }) => {
            assert_eq!(source, "disk gone");
            assert_eq!(original.map(|e| e.message), Some("boom".to_owned()));
        }
        other => panic!("expected a rollback error, got {other:?}"),
    }
    let after = m
        .store()
        .load(&cf.key)
        .await
        .expect("load")
        .expect("record");
    assert_eq!(after.status, RecordStatus::Failed);
    assert_eq!(after.rollback_data, Some(json!(1)));

    // Stats and cleanup: cleanup(0) removes every finished record.
    let stats = m.stats().await.expect("stats");
    assert!(stats.total >= 4);
    assert!(stats.success_rate > 0.0 && stats.success_rate < 100.0);
    let removed = m.cleanup(Duration::ZERO).await.expect("cleanup");
    assert!(removed >= 4, "cleanup(0) removed only {removed}");
    assert_eq!(m.stats().await.expect("stats").total, 0);
}

/// A claim whose lease lapsed is taken over, with its rollback data handed
/// on; the old claimant can no longer finish or renew.
pub async fn stuck_claim_is_taken_over(s: Store) {
    let (m, clock) = manual(&s);
    let k = key("stuck");
    let dead = claimed(
        m.start_operation(&k, Some(json!({"path": "/half-made"})))
            .await,
    );
    match m.start_operation(&k, None).await {
        Err(Error::InProgress {
            lease_remaining, ..
        }) => {
            assert_eq!(lease_remaining, Some(Duration::from_secs(30)));
        }
        other => panic!("expected InProgress, got {other:?}"),
    }
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        m.should_execute(&k).await.expect("decide").reason,
        Reason::StuckPendingReset
    );
    let heir = claimed(m.start_operation(&k, Some(json!({"path": "/new"}))).await);
    assert_eq!(heir.reason, Reason::StuckPendingReset);
    assert_eq!(
        heir.abandoned_rollbacks,
        vec![json!({"path": "/half-made"})]
    );
    assert!(heir.fencing_token > dead.fencing_token);
    assert!(matches!(
        m.renew(&dead).await,
        Err(Error::Contract(ff_traits::Error::LockLost { .. }))
    ));
    assert!(matches!(
        m.complete_operation(&dead, json!("late")).await,
        Err(Error::Contract(ff_traits::Error::LockLost { .. }))
    ));
    let done = m
        .complete_operation(&heir, json!("ok"))
        .await
        .expect("complete");
    assert!(done.abandoned_rollbacks.is_empty());
    assert_eq!(done.result, Some(json!("ok")));
}

/// A claim whose claimant is known dead (it ran on this host, in this pid
/// space, and its process is gone) is taken over at once, before its lease
/// ends; a live claimant's, or one on another host, keeps its lease.
pub async fn dead_claimant_is_taken_over_at_once(s: Store) {
    let (m, _clock) = manual(&s);
    let k = key("dead-claimant");
    let first = claimed(m.start_operation(&k, Some(json!({"path": "/a"}))).await);
    // This process made it: alive.
    assert!(matches!(
        m.start_operation(&k, None).await,
        Err(Error::InProgress { .. })
    ));
    let Some(dead_pid) = exited_pid() else {
        return;
    };
    let record_key = k.record_key().expect("record key");
    let set_owner = |hostname: String| {
        let s = Arc::clone(&s);
        let record_key = record_key.clone();
        async move {
            let mut record = s.load(&record_key).await.expect("load").expect("record");
            let revision = record.revision;
            let owner = record.owner.as_mut().expect("owner");
            owner.pid = dead_pid;
            owner.process_start = None;
            owner.hostname = hostname;
            s.compare_and_swap(revision, record).await.expect("rewrite");
        }
    };
    // A dead pid on another host means nothing here: the lease counts.
    set_owner("elsewhere.invalid".to_owned()).await;
    assert!(matches!(
        m.start_operation(&k, None).await,
        Err(Error::InProgress { .. })
    ));
    // On this host, dead: taken over now.
    set_owner(ff_traits::identity::hostname().to_owned()).await;
    let heir = claimed(m.start_operation(&k, Some(json!({"path": "/b"}))).await);
    assert_eq!(heir.reason, Reason::StuckPendingReset);
    assert_eq!(heir.abandoned_rollbacks, vec![json!({"path": "/a"})]);
    assert!(heir.fencing_token > first.fencing_token);
    // The heir is alive: the next caller waits.
    assert!(matches!(
        m.start_operation(&k, None).await,
        Err(Error::InProgress { .. })
    ));
}

/// The pid of a process that has exited (and been reaped), where
/// processes can be started.
fn exited_pid() -> Option<u32> {
    #[cfg(unix)]
    {
        let mut child = std::process::Command::new("true").spawn().ok()?;
        let pid = child.id();
        child.wait().ok()?;
        Some(pid)
    }
    #[cfg(not(unix))]
    None
}

/// A caller holding the key's lock takes a pending record over at once,
/// whatever its lease; the dead claim can no longer finish, and a completed
/// record is still replayed, not taken.
pub async fn exclusive_start_takes_over_at_once(s: Store) {
    let (m, _clock) = manual(&s);
    let k = key("exclusive");
    let dead = claimed(m.start_operation(&k, Some(json!({"path": "/a"}))).await);
    assert!(matches!(
        m.start_operation(&k, None).await,
        Err(Error::InProgress { .. })
    ));
    let heir = claimed(
        m.start_operation_exclusive(&k, Some(json!({"path": "/b"})))
            .await,
    );
    assert_eq!(heir.reason, Reason::StuckPendingReset);
    assert_eq!(heir.abandoned_rollbacks, vec![json!({"path": "/a"})]);
    assert!(heir.fencing_token > dead.fencing_token);
    assert!(matches!(
        m.complete_operation(&dead, json!("late")).await,
        Err(Error::Contract(ff_traits::Error::LockLost { .. }))
    ));
    m.complete_operation(&heir, json!("ok"))
        .await
        .expect("complete");
    match m.start_operation_exclusive(&k, None).await {
        Ok(Start::AlreadyCompleted(r)) => assert_eq!(r.result, Some(json!("ok"))),
        other => panic!("expected the completed record, got {other:?}"),
    }
}

/// A finished claim cannot be finished again; `execute` renews its lease
/// while the operation runs and replays afterwards.
pub async fn only_the_claimant_finishes(s: Store) {
    let (m, _clock) = manual(&s);
    let k = key("finish");
    let c = claimed(m.start_operation(&k, None).await);
    m.complete_operation(&c, json!(1)).await.expect("complete");
    assert!(matches!(
        m.complete_operation(&c, json!(2)).await,
        Err(Error::Contract(ff_traits::Error::LockLost { .. }))
    ));
    assert!(matches!(
        m.fail_operation(&c, boom(true)).await,
        Err(Error::Contract(ff_traits::Error::LockLost { .. }))
    ));

    // A record removed and created again starts over at revision 1; a claim
    // of the old record must still never write the new one (ABA).
    let kb = key("aba");
    let old = claimed(m.start_operation(&kb, None).await);
    m.complete_operation(&old, json!("first"))
        .await
        .expect("complete");
    m.cleanup(Duration::ZERO).await.expect("cleanup");
    let new = claimed(m.start_operation(&kb, None).await);
    assert!(matches!(
        m.complete_operation(&old, json!("stale")).await,
        Err(Error::Contract(ff_traits::Error::LockLost { .. }))
    ));
    assert!(matches!(
        m.abandon_operation(&old).await,
        Err(Error::Contract(ff_traits::Error::LockLost { .. }))
    ));
    let current = m
        .store()
        .load(&new.key)
        .await
        .expect("load")
        .expect("record");
    assert_eq!(
        current.status,
        RecordStatus::Pending,
        "a stale claim changed a newer record"
    );
    m.complete_operation(&new, json!("second"))
        .await
        .expect("complete");

    // execute() with a lease far shorter than the operation: renewal keeps
    // the claim alive, so a concurrent caller sees it in progress.
    let m = Arc::new(IdempotencyManager::new(
        Arc::clone(&s),
        ManagerConfig::default().with_lease(Duration::from_millis(300)),
    ));
    // The operation ends only once the probe below has looked (not after
    // a fixed time: under load the probe itself once took longer than the
    // margin, and found the operation already completed).
    let k = key("renew");
    let (started, probed) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let runner = {
        let (m, k) = (Arc::clone(&m), k.clone());
        let (started, probed) = (Arc::clone(&started), Arc::clone(&probed));
        tokio::spawn(async move {
            m.execute(&k, None, |attempt| async move {
                started.notify_one();
                probed.notified().await;
                attempt.ensure_claim_held()?;
                Ok::<_, Error>(7u32)
            })
            .await
        })
    };
    // Claimed, then three leases long: only renewal keeps the claim alive.
    started.notified().await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let probe = m.start_operation(&k, None).await;
    probed.notify_one();
    match probe {
        Err(Error::InProgress { .. }) => {}
        other => panic!("a renewed claim was not in progress: {other:?}"),
    }
    let first = runner.await.expect("runner panicked").expect("execute");
    assert_eq!(first, ff_idempotency::Execution::Executed(7));
    let again = m
        .execute(&k, None, |_| async { Ok::<u32, Error>(8) })
        .await
        .expect("replay");
    assert_eq!(again, ff_idempotency::Execution::Replayed(7));
    let failing = m
        .execute(&key("fails"), None, |_| async {
            Err::<u32, _>("nope".to_owned())
        })
        .await;
    assert!(matches!(failing, Err(ExecuteError::Operation(e)) if e == "nope"));
}
