//! Checks of the [`LockProvider`] contract.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;

use crate::unique_prefix;
use ff_traits::{
    Error, ForceOutcome, LockGuard, LockMode, LockName, LockOptions, LockProvider, WaitNotice,
};

type Provider = Arc<dyn LockProvider>;

/// A fresh lock name, unique to this run.
fn lock_name(prefix: &str) -> LockName {
    LockName::new(unique_prefix(prefix)).expect("a valid lock name")
}

fn opts() -> LockOptions {
    LockOptions::default()
        .with_timeout(Duration::from_secs(20))
        .with_stale_threshold(Duration::from_secs(2))
}

/// Exclusive grants never overlap: 8 tasks × 25 critical sections each.
pub async fn mutual_exclusion(p: Provider) {
    let name = lock_name("mutex");
    let inside = Arc::new(AtomicU32::new(0));
    let total = Arc::new(AtomicU32::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (p, name, inside, total) = (
            Arc::clone(&p),
            name.clone(),
            Arc::clone(&inside),
            Arc::clone(&total),
        );
        tasks.spawn(async move {
            for _ in 0..25 {
                let guard = p.acquire(&name, &opts()).await.expect("acquire");
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two exclusive holders of one lock at once"
                );
                // A non-atomic read-modify-write, as protected code does.
                let seen = total.load(Ordering::SeqCst);
                tokio::task::yield_now().await;
                total.store(seen + 1, Ordering::SeqCst);
                inside.fetch_sub(1, Ordering::SeqCst);
                guard.release().await.expect("release");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task panicked");
    }
    assert_eq!(
        total.load(Ordering::SeqCst),
        200,
        "lost updates under the lock"
    );
}

/// A wait that ends fails with `LockTimeout` naming the holder.
pub async fn timeout_names_holder(p: Provider) {
    let name = lock_name("timeout");
    let held = p
        .acquire(&name, &opts().with_operation("conformance-holder"))
        .await
        .expect("acquire");
    let err = p
        .acquire(&name, &opts().with_timeout(Duration::from_millis(200)))
        .await
        .expect_err("a second exclusive grant while the first is held");
    match err {
        Error::LockTimeout {
            name: n,
            waited,
            holder,
            ..
        } => {
            assert_eq!(n, name);
            assert!(
                waited >= Duration::from_millis(150),
                "gave up after {waited:?}, before the timeout"
            );
            let holder = holder.expect("the timeout error must name the holder");
            assert_eq!(holder.pid, std::process::id(), "holder pid");
            assert_eq!(holder.operation, "conformance-holder", "holder operation");
            assert!(!holder.hostname.is_empty(), "holder host");
        }
        other => panic!("expected LockTimeout, got {other:?}"),
    }
    held.release().await.expect("release");
}

/// `try_acquire` returns `None` at once while held, a guard once free.
pub async fn try_acquire_does_not_wait(p: Provider) {
    let name = lock_name("try");
    let held = p.acquire(&name, &opts()).await.expect("acquire");
    let started = std::time::Instant::now();
    let second = p.try_acquire(&name, &opts()).await.expect("try_acquire");
    assert!(second.is_none(), "try_acquire granted a held lock");
    assert!(
        started.elapsed() < opts().timeout,
        "try_acquire waited for the timeout"
    );
    held.release().await.expect("release");
    let again = p.try_acquire(&name, &opts()).await.expect("try_acquire");
    let again = again.expect("try_acquire refused a free lock");
    again.release().await.expect("release");
}

/// Shared grants coexist; exclusive excludes shared and vice versa.
pub async fn shared_and_exclusive(p: Provider) {
    let name = lock_name("rw");
    let shared = opts().with_mode(LockMode::Shared);
    let first = match p.acquire(&name, &shared).await {
        Ok(g) => g,
        Err(Error::Unsupported { .. }) => panic!(
            "{} answered shared mode with Unsupported; a backend without shared mode declares \
             it (`lock_conformance_tests!(exclusive_only …)`) so the skip shows",
            p.backend_name()
        ),
        Err(e) => panic!("shared acquire failed: {e}"),
    };
    let second = p
        .try_acquire(&name, &shared)
        .await
        .expect("try shared")
        .expect("two shared grants must coexist");
    assert!(
        p.try_acquire(&name, &opts()).await.expect("try").is_none(),
        "exclusive granted while shared holders exist"
    );
    first.release().await.expect("release");
    assert!(
        p.try_acquire(&name, &opts()).await.expect("try").is_none(),
        "exclusive granted while a shared holder remains"
    );
    second.release().await.expect("release");
    let exclusive = p
        .try_acquire(&name, &opts())
        .await
        .expect("try")
        .expect("exclusive refused on a free lock");
    assert!(
        p.try_acquire(&name, &shared).await.expect("try").is_none(),
        "shared granted while an exclusive holder exists"
    );
    exclusive.release().await.expect("release");
}

/// A semaphore of 3 permits: three holders at once, each with its own
/// rising fencing token, all listed; a fourth waits until one leaves and
/// then gets in; an exclusive holder excludes every permit and waits for
/// all of them.
pub async fn semaphore_caps_holders(p: Provider) {
    let name = lock_name("sem");
    let three = opts().with_permits(3);
    let mut held = Vec::new();
    for i in 0..3 {
        let g = p
            .try_acquire(&name, &three)
            .await
            .expect("try a permit")
            .unwrap_or_else(|| panic!("permit {} of 3 refused", i + 1));
        if let Some(last) = held.last().map(LockGuard::fencing_token) {
            assert!(g.fencing_token() > last, "permits share or reuse a token");
        }
        held.push(g);
    }
    assert!(
        p.try_acquire(&name, &three).await.expect("try").is_none(),
        "a fourth permit of 3 was granted"
    );
    let listed = p.locks().await.expect("locks");
    let status = listed
        .iter()
        .find(|l| l.name == name.as_str())
        .expect("the semaphore is listed");
    assert_eq!(status.holders.len(), 3, "every permit holder is listed");
    assert!(
        p.try_acquire(&name, &opts()).await.expect("try").is_none(),
        "exclusive granted beside permits"
    );
    let (waiter_p, waiter_name, waiter_opts) = (p.clone(), name.clone(), three.clone());
    let fourth = tokio::spawn(async move { waiter_p.acquire(&waiter_name, &waiter_opts).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!fourth.is_finished(), "a fourth permit did not wait");
    held.pop()
        .expect("a permit")
        .release()
        .await
        .expect("release");
    let fourth = fourth
        .await
        .expect("task")
        .expect("the waiting permit got the freed place");
    held.push(fourth);
    for g in held {
        g.release().await.expect("release");
    }
    let exclusive = p
        .try_acquire(&name, &opts())
        .await
        .expect("try")
        .expect("exclusive refused once every permit was released");
    assert!(
        p.try_acquire(&name, &three).await.expect("try").is_none(),
        "a permit granted beside an exclusive holder"
    );
    exclusive.release().await.expect("release");
}

/// The multiple-granularity modes follow their matrix
/// ([`LockMode::compatible`]), cell by cell: with a grant held in one mode,
/// a try in each mode is granted exactly when the two are compatible.
pub async fn intention_modes_follow_the_matrix(p: Provider) {
    for held_mode in LockMode::ALL {
        let name = lock_name(&format!("mgl-{}", held_mode.code()));
        let held = p
            .try_acquire(&name, &opts().with_mode(held_mode))
            .await
            .unwrap_or_else(|e| panic!("{} on a free lock: {e}", held_mode.code()))
            .unwrap_or_else(|| panic!("{} refused on a free lock", held_mode.code()));
        for asked in LockMode::ALL {
            let got = p
                .try_acquire(&name, &opts().with_mode(asked))
                .await
                .unwrap_or_else(|e| {
                    panic!("{} asked beside {}: {e}", asked.code(), held_mode.code())
                });
            assert_eq!(
                got.is_some(),
                held_mode.compatible(asked),
                "{} asked while {} is held: granted = {}, the matrix says {}",
                asked.code(),
                held_mode.code(),
                got.is_some(),
                held_mode.compatible(asked)
            );
            if let Some(g) = got {
                g.release().await.expect("release");
            }
        }
        held.release().await.expect("release");
    }
}

/// Lock hierarchies ([`ff_hierarchy`]) over the backend: an exclusive
/// node excludes its ancestors' exclusive and shared locks and everything
/// beneath it, but not its siblings; a shared node excludes exclusive
/// locks beneath it and admits shared ones; one timeout covers the whole
/// path and a path that times out leaves nothing held; losing an
/// ancestor's lock is the loss of the whole path.
pub async fn hierarchy_follows_the_tree(p: Provider) {
    use ff_hierarchy as hierarchy;
    let root = lock_name("tree");
    let n = |rest: &str| {
        LockName::new(format!("{}/{rest}", root.as_str())).expect("a hierarchical name")
    };
    let x = opts();
    let s = opts().with_mode(LockMode::Shared);
    let try_take = |name: LockName, o: LockOptions| {
        let p = Arc::clone(&p);
        async move {
            hierarchy::try_acquire(&*p, &name, &o)
                .await
                .expect("try a path")
        }
    };
    let a = hierarchy::acquire(&*p, &n("a"), &x).await.expect("X on a");
    let b = try_take(n("b"), x.clone())
        .await
        .expect("a sibling of an exclusive node was refused");
    assert!(
        try_take(root.clone(), x.clone()).await.is_none(),
        "X on the parent granted while a child is held"
    );
    assert!(
        try_take(root.clone(), s.clone()).await.is_none(),
        "S on the parent granted while a child is held exclusively"
    );
    assert!(
        try_take(n("a/deeper"), s.clone()).await.is_none(),
        "a lock beneath an exclusive node was granted"
    );
    b.release().await.expect("release");
    a.release().await.expect("release");

    let reading = hierarchy::acquire(&*p, &root, &s)
        .await
        .expect("S on the root");
    assert!(
        try_take(n("a"), x.clone()).await.is_none(),
        "X beneath a shared node was granted"
    );
    let beneath = try_take(n("a"), s.clone())
        .await
        .expect("S beneath a shared node was refused");
    beneath.release().await.expect("release");
    reading.release().await.expect("release");

    // One budget for the whole path; nothing left held when it runs out.
    let blocker = hierarchy::acquire(&*p, &root, &x)
        .await
        .expect("X on the root");
    let short = opts().with_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    match hierarchy::acquire(&*p, &n("a/b"), &short).await {
        Err(Error::LockTimeout { .. }) => {}
        other => panic!("a path under an exclusive root gave {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the path's timeout was not one budget"
    );
    blocker.release().await.expect("release");
    let deep = try_take(n("a/b"), x.clone())
        .await
        .expect("a path that timed out left a lock held");

    // An ancestor's lock revoked: the whole path is lost.
    let mut loss = deep.loss_watch();
    let ancestor = n("a");
    let revoked = p.force_release(&ancestor).await.expect("force release");
    if matches!(revoked.outcome, ForceOutcome::Revoked { .. }) {
        let reason = tokio::time::timeout(Duration::from_secs(10), loss.lost())
            .await
            .expect("the path's loss was reported");
        assert!(
            reason.contains(ancestor.as_str()),
            "the loss does not name the ancestor: {reason}"
        );
    }
    let _ = deep.release().await;
}

/// Every grant's fencing token exceeds all earlier ones of the name.
pub async fn fencing_tokens_increase(p: Provider) {
    let name = lock_name("fence");
    let mut last = None;
    for _ in 0..20 {
        let g = p.acquire(&name, &opts()).await.expect("acquire");
        let token = g.fencing_token();
        assert_eq!(g.info().fencing_token, token);
        if let Some(prev) = last {
            assert!(token > prev, "fencing token {token} after {prev}");
        }
        last = Some(token);
        g.release().await.expect("release");
    }
}

/// A waiter gets the lock after the holder releases it.
pub async fn release_wakes_waiter(p: Provider) {
    let name = lock_name("wake");
    let held = p.acquire(&name, &opts()).await.expect("acquire");
    // The holder lets go only once the waiter says it waits (the contract
    // of `LockOptions::waiting`), so the release is one a waiting acquire
    // must see: a backend that misses it times out here.
    let (notice, waiting) = WaitNotice::first();
    let waiter = {
        let (p, name) = (Arc::clone(&p), name.clone());
        let options = opts().with_wait_notice(notice);
        tokio::spawn(async move {
            let g = p.acquire(&name, &options).await.expect("waiter acquire");
            let token = g.fencing_token();
            g.release().await.expect("release");
            token
        })
    };
    tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect(
            "the waiter never said it waits: an acquire that finds the lock taken must call \
             LockOptions::waiting before it waits",
        )
        .expect("the waiter ended without saying it waits");
    let holder_token = held.fencing_token();
    held.release().await.expect("release");
    let waiter_token = waiter.await.expect("waiter panicked");
    assert!(waiter_token > holder_token);
}

/// The wait notice is told only of waits: not by an acquire granted at
/// once, not by a `try_acquire` that finds the lock taken, and once by an
/// acquire that waits.
pub async fn wait_notice_only_when_waiting(p: Provider) {
    let name = lock_name("notice");
    let told = Arc::new(AtomicU32::new(0));
    let counted = {
        let told = Arc::clone(&told);
        opts().with_wait_notice(WaitNotice::new(move || {
            told.fetch_add(1, Ordering::SeqCst);
        }))
    };
    let held = p.acquire(&name, &counted).await.expect("acquire");
    assert_eq!(
        told.load(Ordering::SeqCst),
        0,
        "told of a wait when granted at once"
    );
    assert!(
        p.try_acquire(&name, &counted)
            .await
            .expect("try_acquire")
            .is_none()
    );
    assert_eq!(told.load(Ordering::SeqCst), 0, "try_acquire told of a wait");
    let short = counted.clone().with_timeout(Duration::from_millis(300));
    match p.acquire(&name, &short).await {
        Err(e) if e.kind() == ff_traits::ErrorKind::LockTimeout => {}
        other => panic!("a taken lock must time out: {other:?}"),
    }
    assert_eq!(
        told.load(Ordering::SeqCst),
        1,
        "an acquire that waited must be told once"
    );
    held.release().await.expect("release");
}

/// A guard dropped without release does not block the lock forever.
pub async fn drop_frees_lock(p: Provider) {
    let name = lock_name("drop");
    let short_lease = opts().with_stale_threshold(Duration::from_secs(1));
    drop(p.acquire(&name, &short_lease).await.expect("acquire"));
    let g = p
        .acquire(&name, &opts().with_timeout(Duration::from_secs(15)))
        .await
        .expect("a dropped guard still blocks the lock");
    g.release().await.expect("release");
}

/// `locks()` lists a held lock with its holder.
pub async fn listing_shows_holder(p: Provider) {
    let name = lock_name("list");
    let g = p
        .acquire(
            &name,
            &opts()
                .with_operation("conformance-list")
                .with_metadata(serde_json::json!({"issue": "42"})),
        )
        .await
        .expect("acquire");
    let all = p.locks().await.expect("locks");
    let status = all
        .iter()
        .find(|s| s.name == name)
        .expect("a held lock is missing from locks()");
    assert!(status.held, "held lock listed as free");
    let holder = status.holders.first().expect("held lock lists no holder");
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(holder.operation, "conformance-list");
    assert_eq!(holder.fencing_token, g.fencing_token());
    assert_eq!(holder.metadata, serde_json::json!({"issue": "42"}));
    g.release().await.expect("release");
    let after = p.locks().await.expect("locks");
    assert!(
        after.iter().filter(|s| s.name == name).all(|s| !s.held),
        "released lock still listed as held"
    );
}

/// Force-release either revokes (the holder learns of it) or refuses
/// (the holder keeps the lock); never a silent double grant.
pub async fn force_release_is_reported(p: Provider) {
    let name = lock_name("force");
    let held = p.acquire(&name, &opts()).await.expect("acquire");
    let forced = p.force_release(&name).await.expect("force_release");
    assert_eq!(forced.name, name);
    match forced.outcome {
        ForceOutcome::Revoked { previous } => {
            assert!(
                previous.iter().any(|h| h.id == held.info().id),
                "revoked holders do not include the live holder"
            );
            // Loss may be noticed asynchronously (a lease backend's
            // watchdog); give it a bounded moment.
            for _ in 0..200 {
                if !held.is_held() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(
                !held.is_held(),
                "a revoked holder still believes it holds the lock"
            );
            assert!(matches!(held.ensure_held(), Err(Error::LockLost { .. })));
            let next = p
                .acquire(&name, &opts())
                .await
                .expect("acquire after force");
            assert!(next.fencing_token() > held.fencing_token());
            next.release().await.expect("release");
            assert!(
                matches!(held.release().await, Err(Error::LockLost { .. })),
                "releasing a revoked grant must report the loss"
            );
        }
        ForceOutcome::Refused { holders, reason } => {
            assert!(!reason.is_empty(), "a refusal must say why");
            assert!(holders.iter().any(|h| h.id == held.info().id));
            assert!(
                held.is_held(),
                "refused force must leave the holder holding"
            );
            assert!(
                p.try_acquire(&name, &opts()).await.expect("try").is_none(),
                "refused force, yet the lock was granted again"
            );
            held.release().await.expect("release");
        }
        other => panic!("force_release of a live holder reported {other:?}"),
    }
    let idle = p
        .force_release(&lock_name("idle"))
        .await
        .expect("force idle");
    assert!(
        matches!(
            idle.outcome,
            ForceOutcome::NotHeld | ForceOutcome::Cleared { .. }
        ),
        "force on a free lock reported {:?}",
        idle.outcome
    );
}

/// A backend without shared mode refuses shared requests with
/// `Unsupported`, both waiting and not, and grants nothing meanwhile: the
/// lock stays free for an exclusive holder.
pub async fn shared_mode_refused(p: Provider) {
    let name = lock_name("noshared");
    for mode in LockMode::ALL
        .into_iter()
        .filter(|m| *m != LockMode::Exclusive)
    {
        let shared = opts().with_mode(mode);
        match p.acquire(&name, &shared).await {
            Err(Error::Unsupported { .. }) => {}
            other => panic!("{mode} acquire on an exclusive-only backend gave {other:?}"),
        }
        match p.try_acquire(&name, &shared).await {
            Err(Error::Unsupported { .. }) => {}
            other => panic!("{mode} try_acquire on an exclusive-only backend gave {other:?}"),
        }
    }
    let exclusive = p
        .try_acquire(&name, &opts())
        .await
        .expect("try_acquire")
        .expect("a refused shared request left a grant behind");
    exclusive.release().await.expect("release");
}

/// Names that look like paths, escapes or reserved words are ordinary
/// names: each is its own lock, distinct from the names it resembles, and
/// listed under its exact name. (Invalid names cannot reach a backend:
/// [`LockName::new`] refuses them.)
pub async fn hostile_names_stay_distinct(p: Provider) {
    let prefix = unique_prefix("hostile");
    let names: Vec<LockName> = [
        "../../etc/passwd",
        "a/b",
        "a_b",
        "a\\b",
        ".",
        "..",
        "CON",
        " lead",
        "ünï",
    ]
    .iter()
    .map(|n| LockName::new(format!("{prefix}{n}")).expect("a valid lock name"))
    .collect();
    let mut held = Vec::new();
    for name in &names {
        // Each is free although every one before it is held: no two names
        // share a lock.
        let guard = p
            .try_acquire(name, &opts())
            .await
            .expect("try_acquire")
            .unwrap_or_else(|| {
                panic!("lock {name:?} looked held: it shares a lock with another name")
            });
        assert!(
            p.try_acquire(name, &opts()).await.expect("try").is_none(),
            "lock {name:?} was granted twice"
        );
        held.push(guard);
    }
    let listed = p.locks().await.expect("locks");
    for name in &names {
        assert!(
            listed.iter().any(|s| s.name == *name && s.held),
            "lock {name:?} is not listed under its exact name as held"
        );
    }
    for guard in held {
        guard.release().await.expect("release");
    }
}

/// The timeout is the whole budget of a wait: the polling pace never ends
/// it sooner. (A 1 ms retry interval once ended the wait after 300 tries,
/// 0.3 s, whatever the timeout said.)
pub async fn timeout_is_the_whole_budget(p: Provider) {
    let name = lock_name("budget");
    let held = p.acquire(&name, &opts()).await.expect("acquire");
    let timeout = Duration::from_millis(1_200);
    let started = std::time::Instant::now();
    let err = p
        .acquire(
            &name,
            &opts()
                .with_timeout(timeout)
                .with_retry_interval(Duration::from_millis(1)),
        )
        .await
        .expect_err("held");
    let waited = started.elapsed();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    assert!(
        waited >= timeout - Duration::from_millis(20),
        "a {timeout:?} wait ended after {waited:?}: the timeout must be the whole budget"
    );
    held.release().await.expect("release");
}

/// On a paused tokio clock (`#[tokio::test(start_paused = true)]`, a
/// current-thread runtime): a 10-minute timeout waits 10 minutes and a 1 s
/// one gives up at 1 s, without real waiting. Not in the macros (they run
/// on a real clock); call it from such a test. Backends whose waits reach
/// the network cannot run it (their own call timeouts would fire on the
/// paused clock); [`timeout_is_the_whole_budget`] checks them in real time.
pub async fn timeout_is_kept_on_a_paused_clock(p: Provider) {
    let name = lock_name("paused-budget");
    let held = p.acquire(&name, &opts()).await.expect("holder");
    for timeout in [Duration::from_secs(600), Duration::from_secs(1)] {
        let started = tokio::time::Instant::now();
        let err = p
            .acquire(&name, &opts().with_timeout(timeout))
            .await
            .expect_err("held");
        let waited = started.elapsed();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        assert!(
            waited >= timeout && waited < timeout + Duration::from_secs(5),
            "a {timeout:?} timeout waited {waited:?} on the paused clock"
        );
    }
    held.release().await.expect("release");
}

/// Dropping a waiting `acquire` leaves no grant behind.
pub async fn cancelled_wait_leaves_no_grant(p: Provider) {
    let name = lock_name("cancel");
    let held = p.acquire(&name, &opts()).await.expect("acquire");
    let waited = tokio::time::timeout(Duration::from_millis(100), p.acquire(&name, &opts())).await;
    assert!(waited.is_err(), "the waiter was granted a held lock");
    held.release().await.expect("release");
    // Give a backend that releases asynchronously a moment, then the lock
    // must be free: the cancelled waiter must not own it.
    let mut free = None;
    for _ in 0..50 {
        free = p.try_acquire(&name, &opts()).await.expect("try");
        if free.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    free.expect("a cancelled waiter left a grant behind")
        .release()
        .await
        .expect("release");
}

/// A change feed, where the backend offers one ([`LockProvider::watch`]),
/// wakes for a grant and for a release, and stays quiet while a watcher
/// reads (or every idle watcher would read forever). Backends without a
/// feed pass at once.
pub async fn change_feed_announces_grants_not_reads(p: Provider) {
    let Some(mut feed) = p.watch().await.expect("watch") else {
        return;
    };
    let name = lock_name("feed");
    crate::feed_settles(&mut feed).await;
    let guard = p.acquire(&name, &opts()).await.expect("acquire");
    assert!(
        crate::feed_wakes(&mut feed, "a grant").await,
        "a grant went unannounced"
    );
    crate::feed_settles(&mut feed).await;
    for _ in 0..3 {
        p.locks().await.expect("locks");
    }
    assert!(
        crate::feed_stays_quiet(&mut feed).await,
        "reading the locks woke the feed"
    );
    guard.release().await.expect("release");
    assert!(
        crate::feed_wakes(&mut feed, "a release").await,
        "a release went unannounced"
    );
    crate::feed_settles(&mut feed).await;
    // A guard dropped without release: as a holder that dies.
    drop(p.acquire(&name, &opts()).await.expect("acquire"));
    assert!(
        crate::feed_wakes(&mut feed, "a dropped guard").await,
        "a dropped guard went unannounced"
    );
}

/// For a backend whose feed leaves renewals unannounced (the contract
/// allows it of a feed whose state lapses; not part of the suite): a
/// grant wakes the feed, the renewals of the lease that follow do not,
/// the release does. `p` must renew its leases at least every 500 ms
/// (a TTL of at most 1.5 s, renewed every third).
///
/// # Panics
/// When the backend offers no feed, or the feed misbehaves as said.
pub async fn renewals_do_not_wake_the_feed(p: Provider) {
    let mut feed = p.watch().await.expect("watch").expect("a feed");
    let g = p
        .acquire(&lock_name("renewed"), &opts())
        .await
        .expect("acquire");
    assert!(
        crate::feed_wakes(&mut feed, "a grant").await,
        "a grant went unannounced"
    );
    // The grant's writes may come as more than one wake-up.
    crate::feed_settles(&mut feed).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), feed.changed())
            .await
            .is_err(),
        "renewals woke the feed"
    );
    assert!(g.is_held(), "the lease was renewed meanwhile");
    g.release().await.expect("release");
    assert!(
        crate::feed_wakes(&mut feed, "a release").await,
        "a release went unannounced"
    );
}
