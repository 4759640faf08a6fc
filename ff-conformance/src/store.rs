//! Checks of the [`IdempotencyStorage`] contract.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::unique_prefix;
use ff_traits::{
    ClaimOwner, Error, FencingToken, IdempotencyKey, IdempotencyRecord, IdempotencyStorage,
    RecordKey, RecordStatus, RecordedError, Revision, ScanFilter, Timestamp,
};

type Store = Arc<dyn IdempotencyStorage>;

/// A pending record for a fresh key of `operation`, started at `at`.
#[must_use]
pub fn sample_record(operation: &str, n: u32, at: Timestamp) -> IdempotencyRecord {
    let key = IdempotencyKey::new(
        operation,
        json!({"n": n, "text": "ünïcødé \"quoted\"", "nested": {"list": [1, 2.5, null]}}),
        json!({"basePath": ".ff-worktrees"}),
    );
    let record_key = key.record_key().expect("sample key");
    let owner = ClaimOwner::new(
        ff_traits::identity::unique_id(),
        FencingToken(1),
        at.saturating_add(Duration::from_secs(30)),
        std::process::id(),
        ff_traits::identity::hostname().to_owned(),
    );
    IdempotencyRecord::new_pending(&key, record_key, owner, Some(json!({"path": "/tmp/x"})), at)
}

fn finished(mut r: IdempotencyRecord, status: RecordStatus, at: Timestamp) -> IdempotencyRecord {
    r.status = status;
    r.ended_at = Some(at);
    match status {
        RecordStatus::Completed => r.result = Some(json!({"ok": true})),
        RecordStatus::Failed => r.error = Some(RecordedError::new("operation", "boom", true)),
        _ => {}
    }
    r
}

/// Loading an absent key gives `None`, not an error.
pub async fn load_absent_is_none(s: Store) {
    let r = sample_record(&unique_prefix("absent"), 0, Timestamp::now());
    assert!(s.load(&r.key).await.expect("load").is_none());
}

/// What is created is read back field for field, at revision 1.
pub async fn create_then_load_round_trips(s: Store) {
    let mut r = sample_record(&unique_prefix("roundtrip"), 1, Timestamp::now());
    r.abandoned_rollbacks.push(json!({"path": "/tmp/old"}));
    r.revision = Revision(77); // ignored by the store
    let stored = s.create(r.clone()).await.expect("create");
    assert_eq!(
        stored.revision,
        Revision::FIRST,
        "create must set revision 1"
    );
    let loaded = s
        .load(&r.key)
        .await
        .expect("load")
        .expect("created record missing");
    r.revision = Revision::FIRST;
    assert_eq!(loaded, r, "record changed on the way through the store");
}

/// 64 concurrent creates of one key: exactly one succeeds.
pub async fn create_if_absent_race_has_one_winner(s: Store) {
    for _ in 0..super::race_rounds() {
        create_race_round(&s).await;
    }
}

async fn create_race_round(s: &Store) {
    let r = sample_record(&unique_prefix("race"), 2, Timestamp::now());
    let mut tasks = JoinSet::new();
    let start = Arc::new(Barrier::new(64));
    for i in 0..64u32 {
        let (s, mut r, start) = (Arc::clone(s), r.clone(), Arc::clone(&start));
        r.rollback_data = Some(json!({"writer": i}));
        tasks.spawn(async move {
            start.wait().await;
            s.create(r).await
        });
    }
    let (mut won, mut lost) = (0, 0);
    while let Some(res) = tasks.join_next().await {
        match res.expect("task panicked") {
            Ok(_) => won += 1,
            Err(Error::AlreadyExists { .. }) => lost += 1,
            Err(e) => panic!("create failed: {e}"),
        }
    }
    assert_eq!(
        (won, lost),
        (1, 63),
        "create-if-absent must have exactly one winner"
    );
}

/// Swaps succeed only from the stored revision.
pub async fn compare_and_swap_is_conditional(s: Store) {
    let r = sample_record(&unique_prefix("cas"), 3, Timestamp::now());
    match s.compare_and_swap(Revision::FIRST, r.clone()).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("swap of an absent record: expected NotFound, got {other:?}"),
    }
    let v1 = s.create(r.clone()).await.expect("create");
    let mut next = v1.clone();
    next.status = RecordStatus::Completed;
    next.result = Some(json!("done"));
    let v2 = s
        .compare_and_swap(v1.revision, next.clone())
        .await
        .expect("swap");
    assert_eq!(v2.revision, Revision(2));
    match s.compare_and_swap(v1.revision, next).await {
        Err(Error::PreconditionFailed { expected, .. }) => assert_eq!(expected, v1.revision),
        other => panic!("stale swap: expected PreconditionFailed, got {other:?}"),
    }
    let loaded = s.load(&r.key).await.expect("load").expect("record");
    assert_eq!(loaded, v2, "a failed swap changed the record");
}

/// Owned swaps succeed only from the stored revision and only while the
/// stored owner is the claim named; a record removed and created again by
/// another claimant (back at revision 1) is never taken for the first
/// claimant's.
pub async fn compare_and_swap_owned_checks_the_owner(s: Store) {
    let r = sample_record(&unique_prefix("owned"), 4, Timestamp::now());
    let mine = r.owner.as_ref().expect("owner").claim_id.clone();
    match s
        .compare_and_swap_owned(Revision::FIRST, &mine, r.clone())
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!("owned swap of an absent record: expected NotFound, got {other:?}"),
    }
    let v1 = s.create(r.clone()).await.expect("create");
    let mut next = v1.clone();
    next.attempts += 1;
    match s
        .compare_and_swap_owned(v1.revision, "someone-else", next.clone())
        .await
    {
        Err(Error::PreconditionFailed { .. }) => {}
        other => panic!("owned swap by another claim: expected PreconditionFailed, got {other:?}"),
    }
    let v2 = s
        .compare_and_swap_owned(v1.revision, &mine, next.clone())
        .await
        .expect("owned swap by its claim");
    assert_eq!(v2.revision, Revision(2));
    match s.compare_and_swap_owned(v1.revision, &mine, next).await {
        Err(Error::PreconditionFailed { .. }) => {}
        other => panic!("stale owned swap: expected PreconditionFailed, got {other:?}"),
    }
    // Removed, then created again by another claimant: revision 1 again.
    s.remove(&r.key, v2.revision).await.expect("remove");
    let theirs = sample_record(&r.operation, 4, Timestamp::now());
    assert_eq!(theirs.key, r.key, "the same key");
    let again = s.create(theirs).await.expect("created again");
    assert_eq!(again.revision, Revision::FIRST);
    let mut stale = v1.clone();
    stale.status = RecordStatus::Completed;
    match s
        .compare_and_swap_owned(Revision::FIRST, &mine, stale)
        .await
    {
        Err(Error::PreconditionFailed { .. }) => {}
        other => panic!(
            "the first claimant's owned swap over another's record at revision 1: expected \
             PreconditionFailed, got {other:?}"
        ),
    }
    let loaded = s.load(&r.key).await.expect("load").expect("record");
    assert_eq!(loaded, again, "a refused owned swap changed the record");
}

/// 16 concurrent swaps from one revision: exactly one succeeds.
pub async fn compare_and_swap_race_has_one_winner(s: Store) {
    for _ in 0..super::race_rounds() {
        swap_race_round(&s).await;
    }
}

async fn swap_race_round(s: &Store) {
    let r = sample_record(&unique_prefix("casrace"), 4, Timestamp::now());
    let v1 = s.create(r).await.expect("create");
    let mut tasks = JoinSet::new();
    let start = Arc::new(Barrier::new(16));
    for i in 0..16u32 {
        let (s, mut next, start) = (Arc::clone(s), v1.clone(), Arc::clone(&start));
        next.result = Some(json!({"writer": i}));
        tasks.spawn(async move {
            start.wait().await;
            s.compare_and_swap(Revision::FIRST, next).await
        });
    }
    let mut winners = Vec::new();
    while let Some(res) = tasks.join_next().await {
        match res.expect("task panicked") {
            Ok(stored) => winners.push(stored),
            Err(Error::PreconditionFailed { .. }) => {}
            Err(e) => panic!("swap failed: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "compare-and-swap must have exactly one winner"
    );
    let loaded = s.load(&v1.key).await.expect("load").expect("record");
    assert_eq!(loaded, winners[0], "the stored record is not the winner's");
}

/// Removal succeeds only from the stored revision.
pub async fn remove_is_conditional(s: Store) {
    let r = sample_record(&unique_prefix("remove"), 5, Timestamp::now());
    match s.remove(&r.key, Revision::FIRST).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("remove of an absent record: expected NotFound, got {other:?}"),
    }
    let v1 = s.create(r.clone()).await.expect("create");
    match s.remove(&r.key, Revision(9)).await {
        Err(Error::PreconditionFailed { .. }) => {}
        other => panic!("stale remove: expected PreconditionFailed, got {other:?}"),
    }
    assert!(
        s.load(&r.key).await.expect("load").is_some(),
        "a failed remove removed"
    );
    s.remove(&r.key, v1.revision).await.expect("remove");
    assert!(
        s.load(&r.key).await.expect("load").is_none(),
        "removed record still there"
    );
}

/// A batch removal removes exactly the records still at the revision
/// given: one changed since, one removed since and one never made are
/// skipped, not errors, and nothing else is touched.
pub async fn remove_many_skips_changed_records(s: Store) {
    let op = unique_prefix("remove-many");
    let now = Timestamp::now();
    let mut made = Vec::new();
    for n in 0..5 {
        made.push(s.create(sample_record(&op, n, now)).await.expect("create"));
    }
    assert_eq!(s.remove_many(&[]).await.expect("empty batch"), 0);
    // Changed since: at revision 2 now.
    let mut changed = made[1].clone();
    changed.status = RecordStatus::Completed;
    changed.result = Some(json!("done"));
    s.compare_and_swap(made[1].revision, changed)
        .await
        .expect("swap");
    // Removed since.
    s.remove(&made[2].key, made[2].revision)
        .await
        .expect("remove");
    let never = sample_record(&op, 99, now);
    let batch: Vec<(RecordKey, Revision)> = made[..4]
        .iter()
        .map(|r| (r.key.clone(), r.revision))
        .chain([(never.key.clone(), Revision::FIRST)])
        .collect();
    let removed = s.remove_many(&batch).await.expect("remove_many");
    assert_eq!(
        removed, 2,
        "of 5 asked, 2 were still at their revision (the first and the fourth)"
    );
    for (i, present) in [(0, false), (1, true), (2, false), (3, false), (4, true)] {
        assert_eq!(
            s.load(&made[i].key).await.expect("load").is_some(),
            present,
            "record {i}: {}",
            if present {
                "removed though it was changed or not asked"
            } else {
                "still there"
            }
        );
    }
}

/// Scans filter by operation, status, age and change since an instant.
pub async fn scan_filters(s: Store) {
    let op_a = unique_prefix("scan-a");
    let op_b = unique_prefix("scan-b");
    let old = Timestamp::now().saturating_sub(Duration::from_secs(3_600));
    let new = Timestamp::now();
    s.create(finished(
        sample_record(&op_a, 1, old),
        RecordStatus::Completed,
        old,
    ))
    .await
    .expect("create");
    s.create(finished(
        sample_record(&op_a, 2, new),
        RecordStatus::Failed,
        new,
    ))
    .await
    .expect("create");
    s.create(sample_record(&op_a, 3, new))
        .await
        .expect("create");
    s.create(sample_record(&op_b, 1, new))
        .await
        .expect("create");

    let count = |f: ScanFilter| {
        let s = Arc::clone(&s);
        async move { s.scan(&f).await.expect("scan").records.len() }
    };
    assert_eq!(count(ScanFilter::default().operation(&op_a)).await, 3);
    assert_eq!(count(ScanFilter::default().operation(&op_b)).await, 1);
    assert_eq!(
        count(
            ScanFilter::default()
                .operation(&op_a)
                .status(RecordStatus::Failed)
        )
        .await,
        1
    );
    let cutoff = Timestamp::now().saturating_sub(Duration::from_secs(60));
    assert_eq!(
        count(ScanFilter::default().operation(&op_a).active_before(cutoff)).await,
        1,
        "age filter"
    );
    assert_eq!(
        count(ScanFilter::default().operation(&op_a).active_since(cutoff)).await,
        2,
        "changed-since filter"
    );
    assert_eq!(
        count(
            ScanFilter::default()
                .operation(&op_a)
                .active_since(cutoff)
                .status(RecordStatus::Failed)
        )
        .await,
        1,
        "changed-since filter with a status"
    );
    let later = Timestamp::now().saturating_add(Duration::from_secs(3_600));
    assert_eq!(
        count(ScanFilter::default().operation(&op_a).active_since(later)).await,
        0,
        "nothing is active after now"
    );
    let all = s.scan(&ScanFilter::default()).await.expect("scan");
    assert!(all.records.len() >= 4);
    assert!(
        all.corrupt.is_empty(),
        "an intact store reported corrupt entries"
    );
}

/// Stats count every record; cleanup removes old finished records only.
/// Needs an empty store.
pub async fn stats_and_cleanup(s: Store) {
    let op = unique_prefix("stats");
    let now = Timestamp::now();
    let old = now.saturating_sub(Duration::from_secs(7_200));
    let mut completed = finished(sample_record(&op, 1, old), RecordStatus::Completed, old);
    completed.last_attempt_at = old.saturating_sub(Duration::from_millis(400));
    s.create(completed).await.expect("create");
    let mut failed = finished(sample_record(&op, 2, old), RecordStatus::Failed, old);
    failed.last_attempt_at = old.saturating_sub(Duration::from_millis(200));
    s.create(failed).await.expect("create");
    s.create(finished(
        sample_record(&op, 3, now),
        RecordStatus::Completed,
        now,
    ))
    .await
    .expect("create");
    s.create(sample_record(&op, 4, old)).await.expect("create"); // pending, old

    let stats = s.stats().await.expect("stats");
    assert_eq!(stats.total, 4, "stats total (the store must start empty)");
    assert_eq!(stats.count(RecordStatus::Completed), 2);
    assert_eq!(stats.count(RecordStatus::Failed), 1);
    assert_eq!(stats.count(RecordStatus::Pending), 1);
    assert_eq!(stats.finished(), 3);
    assert_eq!(stats.by_operation.get(&op), Some(&4));
    assert_eq!(stats.finished_duration_ms, 600, "sum of finished durations");

    let cutoff = now.saturating_sub(Duration::from_secs(3_600));
    let removed = s.remove_finished_before(cutoff).await.expect("cleanup");
    assert_eq!(
        removed, 2,
        "cleanup must remove the two old finished records"
    );
    let left = s.scan(&ScanFilter::default()).await.expect("scan").records;
    assert_eq!(left.len(), 2);
    assert!(
        left.iter().any(|r| r.status == RecordStatus::Pending),
        "cleanup removed a pending record"
    );
    let removed = s
        .remove_finished_before(Timestamp::from_millis(u64::MAX))
        .await
        .expect("cleanup all");
    assert_eq!(removed, 1);
    let left = s.scan(&ScanFilter::default()).await.expect("scan").records;
    assert_eq!(left.len(), 1, "only the pending record may remain");
    assert_eq!(left[0].status, RecordStatus::Pending);
}

/// Keys are whole and exact. (Malformed keys cannot reach a store:
/// [`RecordKey::parse`] refuses them.) Records whose keys differ in one
/// character, first, middle or last, are stored apart; a key never
/// stored loads as `None` even when a stored key shares all but one of
/// its characters; listing shows each record under its own key. A store
/// that files records by a prefix of the key, a hash of part of it, or a
/// case-folded form fails here.
pub async fn keys_are_exact(s: Store) {
    let base = s
        .create(sample_record(&unique_prefix("exact"), 7, Timestamp::now()))
        .await
        .expect("create");
    let flip = |i: usize| {
        let mut k = base.key.as_str().as_bytes().to_vec();
        k[i] = if k[i] == b'0' { b'1' } else { b'0' };
        RecordKey::parse(std::str::from_utf8(&k).expect("hex")).expect("a valid key")
    };
    let siblings = [flip(63), flip(32), flip(0)];
    for sibling in &siblings {
        assert!(
            s.load(sibling).await.expect("load").is_none(),
            "load of never-stored key {} answered with another key's record",
            sibling.short()
        );
    }
    for (n, sibling) in siblings.iter().enumerate() {
        let mut r = base.clone();
        r.key = sibling.clone();
        r.result = Some(json!({"sibling": n}));
        s.create(r).await.unwrap_or_else(|e| {
            panic!("a key one character from a stored key is a different key, yet create said: {e}")
        });
    }
    let loaded = s.load(&base.key).await.expect("load").expect("record");
    assert_eq!(loaded.result, None, "a sibling's write changed this record");
    for (n, sibling) in siblings.iter().enumerate() {
        let got = s
            .load(sibling)
            .await
            .expect("load")
            .expect("sibling record");
        assert_eq!(&got.key, sibling, "load answered with another key's record");
        assert_eq!(got.result, Some(json!({"sibling": n})));
    }
    let listed = s.scan(&ScanFilter::default()).await.expect("scan");
    for key in siblings.iter().chain([&base.key]) {
        assert_eq!(
            listed.records.iter().filter(|r| &r.key == key).count(),
            1,
            "scan must list record {} once, under its own key",
            key.short()
        );
    }
}

/// A damaged entry is reported as corrupt, never as absent: `load` and
/// `compare_and_swap` fail with `Corrupt`, `create` does not overwrite it,
/// scans (filtered or not) list it by a location holding its key and still
/// return the intact records, stats count it.
/// `corrupt` damages the stored entry of the key it is given.
pub async fn corrupt_entries_reported<F, Fut>(s: Store, corrupt: F)
where
    F: FnOnce(RecordKey) -> Fut,
    Fut: Future<Output = ()>,
{
    let op = unique_prefix("corrupt");
    let now = Timestamp::now();
    let victim = s.create(sample_record(&op, 1, now)).await.expect("create");
    let intact = s.create(sample_record(&op, 2, now)).await.expect("create");
    corrupt(victim.key.clone()).await;

    match s.load(&victim.key).await {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("load of a corrupt entry: expected Corrupt, got {other:?}"),
    }
    match s.create(sample_record(&op, 1, now)).await {
        Err(Error::AlreadyExists { .. } | Error::Corrupt { .. }) => {}
        other => panic!("create over a corrupt entry: expected AlreadyExists, got {other:?}"),
    }
    match s.compare_and_swap(victim.revision, victim.clone()).await {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("swap of a corrupt entry: expected Corrupt, got {other:?}"),
    }
    let scan = s
        .scan(&ScanFilter::default())
        .await
        .expect("scan with a corrupt entry");
    assert!(
        scan.corrupt
            .iter()
            .any(|c| c.location.contains(victim.key.as_str())),
        "scan did not report the corrupt entry by a location holding its key: {:?}",
        scan.corrupt
    );
    let filtered = s
        .scan(&ScanFilter::default().operation(&op))
        .await
        .expect("scan by operation with a corrupt entry");
    assert!(
        !filtered.corrupt.is_empty(),
        "a scan filtered by operation hid the corrupt entry (its operation cannot be read, so \
         it may be one of them)"
    );
    assert!(
        scan.records.iter().any(|r| r.key == intact.key),
        "scan lost an intact record next to a corrupt one"
    );
    let stats = s.stats().await.expect("stats with a corrupt entry");
    assert!(stats.corrupt >= 1, "stats did not count the corrupt entry");
    assert_eq!(
        s.load(&intact.key).await.expect("load intact"),
        Some(intact),
        "an intact record changed"
    );
}

/// A change feed, where the backend offers one
/// ([`IdempotencyStorage::watch`]), wakes for a create, a swap and a
/// remove, and stays quiet while a watcher reads. Backends without a feed
/// pass at once.
pub async fn change_feed_announces_writes_not_reads(s: Store) {
    let Some(mut feed) = s.watch().await.expect("watch") else {
        return;
    };
    crate::feed_settles(&mut feed).await;
    let r = sample_record(&unique_prefix("feed"), 1, Timestamp::now());
    let v1 = s.create(r.clone()).await.expect("create");
    assert!(
        crate::feed_wakes(&mut feed, "a create").await,
        "a create went unannounced"
    );
    crate::feed_settles(&mut feed).await;
    for _ in 0..3 {
        s.load(&r.key).await.expect("load");
        s.scan(&ScanFilter::default()).await.expect("scan");
        s.stats().await.expect("stats");
    }
    assert!(
        crate::feed_stays_quiet(&mut feed).await,
        "reading the store woke the feed"
    );
    let mut next = v1.clone();
    next.status = RecordStatus::Completed;
    let v2 = s.compare_and_swap(v1.revision, next).await.expect("swap");
    assert!(
        crate::feed_wakes(&mut feed, "a swap").await,
        "a swap went unannounced"
    );
    crate::feed_settles(&mut feed).await;
    s.remove(&r.key, v2.revision).await.expect("remove");
    assert!(
        crate::feed_wakes(&mut feed, "a remove").await,
        "a remove went unannounced"
    );
}
