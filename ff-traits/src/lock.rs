//! The lock contract: [`LockProvider`], its options, holder information and
//! the RAII [`LockGuard`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::changes::ChangeFeed;
use crate::error::{Error, Result};
use crate::identity;
use crate::lock_name::LockName;
use crate::time::Timestamp;

/// How a lock is held: exclusive (one writer), shared (many readers), or
/// one of the intention modes of multiple-granularity locking, which a
/// lock hierarchy takes on a node's ancestors to announce what it holds
/// beneath them.
///
/// Which modes may be held together ([`compatible`](Self::compatible)):
///
/// | held \ asked | IS | IX | S | SIX | X |
/// |---|---|---|---|---|---|
/// | IS (`IntentShared`) | yes | yes | yes | yes | no |
/// | IX (`IntentExclusive`) | yes | yes | no | no | no |
/// | S (`Shared`) | yes | no | yes | no | no |
/// | SIX (`SharedIntentExclusive`) | yes | no | no | no | no |
/// | X (`Exclusive`) | no | no | no | no | no |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// One holder at a time; excludes every other mode.
    #[default]
    Exclusive,
    /// Any number of shared holders at once; excludes exclusive holders
    /// and those that intend to write beneath (IX, SIX).
    Shared,
    /// IS: the holder reads (S) somewhere beneath this node.
    IntentShared,
    /// IX: the holder writes (X) somewhere beneath this node.
    IntentExclusive,
    /// SIX: the holder reads the whole node and writes somewhere beneath.
    SharedIntentExclusive,
}

impl LockMode {
    /// Every mode, for iterating (tests, matrices).
    pub const ALL: [Self; 5] = [
        Self::IntentShared,
        Self::IntentExclusive,
        Self::Shared,
        Self::SharedIntentExclusive,
        Self::Exclusive,
    ];

    /// Whether a grant in mode `self` and one in mode `other` may be held
    /// at once (the matrix in the type's documentation; symmetric).
    #[must_use]
    pub fn compatible(self, other: Self) -> bool {
        use LockMode::{Exclusive, IntentExclusive, IntentShared, Shared, SharedIntentExclusive};
        match (self, other) {
            (Exclusive, _) | (_, Exclusive) => false,
            (IntentShared, _) | (_, IntentShared) => true,
            (IntentExclusive, IntentExclusive) | (Shared, Shared) => true,
            (IntentExclusive | Shared | SharedIntentExclusive, _) => false,
        }
    }

    /// The short name used in the matrix (`X`, `S`, `IS`, `IX`, `SIX`).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Exclusive => "X",
            Self::Shared => "S",
            Self::IntentShared => "IS",
            Self::IntentExclusive => "IX",
            Self::SharedIntentExclusive => "SIX",
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exclusive => "exclusive",
            Self::Shared => "shared",
            Self::IntentShared => "intent_shared",
            Self::IntentExclusive => "intent_exclusive",
            Self::SharedIntentExclusive => "shared_intent_exclusive",
        })
    }
}

/// A number handed out with every grant of a lock, strictly greater than that
/// of any earlier grant of the same name. A resource that remembers the
/// highest token it has seen can reject writes from a holder whose lock was
/// lost in the meantime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FencingToken(pub u64);

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How to take a lock. The defaults (30 s timeout, 100 ms retry interval
/// for polling backends, 5 min stale threshold) are those docs/idempotency.md and docs/locks.md list.
///
/// ```
/// use std::time::Duration;
/// use ff_traits::{LockMode, LockOptions};
///
/// let opts = LockOptions::default()
///     .with_timeout(Duration::from_secs(5))
///     .with_operation("createWorktree")
///     .with_mode(LockMode::Shared);
/// assert_eq!(opts.retry_interval, Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LockOptions {
    /// Longest time to wait for the lock (default 30 s): the whole budget
    /// of the wait, on every backend. Zero means one try.
    pub timeout: Duration,
    /// For backends that must poll: the longest pause between two tries
    /// (default 100 ms). It paces the polling only; it never ends a wait
    /// before `timeout`. Backends that can be woken (kernel locks, pub/sub)
    /// do not sleep it between tries.
    pub retry_interval: Duration,
    /// How long a holder may go without refreshing before its lock may be
    /// judged abandoned (default 5 min). Backends refresh a held lock at most
    /// a third of this apart; it is also the TTL of lease-based locks.
    pub stale_threshold: Duration,
    /// What the holder is doing; shown to people who wait.
    pub operation: String,
    /// Free-form holder metadata; shown to people who wait.
    pub metadata: serde_json::Value,
    /// Exclusive or shared.
    pub mode: LockMode,
    /// A process group acting under the lock (a command the holder runs):
    /// a holder that dies without releasing is judged alive, by waiters on
    /// its host, for as long as any process of this group runs. Unix only.
    pub process_group: Option<u32>,
    /// A counting semaphore: at most this many shared holders at once
    /// (1 to [`MAX_PERMITS`]); each holder has its own grant, fencing token
    /// and loss notice, and an exclusive holder of the name excludes them
    /// all, as with any shared lock. `None`: shared holders are unlimited.
    /// Every holder of one name should ask for the same number: each grant
    /// checks the count against its own. Only with [`LockMode::Shared`]
    /// (set by [`with_permits`](Self::with_permits)).
    pub permits: Option<u32>,
    /// Told when an [`acquire`](LockProvider::acquire) begins to wait:
    /// see [`waiting`](Self::waiting).
    pub wait_notice: Option<WaitNotice>,
}

/// A callback a caller hands a lock through
/// [`LockOptions::with_wait_notice`], run when its acquire finds the lock
/// taken and begins to wait: to tell a person ("waiting for deploy…"), or
/// for a test to release the holder only once the waiter is in place.
///
/// It runs on the acquiring task, so it must return at once (send on a
/// channel, set a flag).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use ff_traits::{LockOptions, WaitNotice};
///
/// let waited = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&waited);
/// let opts = LockOptions::default()
///     .with_wait_notice(WaitNotice::new(move || flag.store(true, Ordering::SeqCst)));
/// opts.waiting(); // what a backend calls
/// assert!(waited.load(Ordering::SeqCst));
/// ```
#[derive(Clone)]
pub struct WaitNotice(Arc<dyn Fn() + Send + Sync>);

impl WaitNotice {
    /// A notice that runs `f`.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A notice and the receiver it tells of its first wait: await the
    /// receiver to act once a waiter is in place (it fails, closed, when
    /// every copy of the notice is dropped untold).
    #[must_use]
    pub fn first() -> (Self, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let notice = Self::new(move || {
            if let Some(tx) = crate::lock_unpoisoned(&tx).take() {
                let _ = tx.send(());
            }
        });
        (notice, rx)
    }
}

impl fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WaitNotice")
    }
}

/// Two notices are equal when they are the same callback.
impl PartialEq for WaitNotice {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The most permits a semaphore may have.
pub const MAX_PERMITS: u32 = 10_000;

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retry_interval: Duration::from_millis(100),
            stale_threshold: Duration::from_secs(300),
            operation: String::new(),
            metadata: serde_json::Value::Null,
            mode: LockMode::Exclusive,
            process_group: None,
            permits: None,
            wait_notice: None,
        }
    }
}

impl LockOptions {
    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`retry_interval`](Self::retry_interval).
    #[must_use]
    pub fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Sets [`stale_threshold`](Self::stale_threshold).
    #[must_use]
    pub fn with_stale_threshold(mut self, threshold: Duration) -> Self {
        self.stale_threshold = threshold;
        self
    }

    /// Sets [`operation`](Self::operation).
    #[must_use]
    pub fn with_operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = operation.into();
        self
    }

    /// Sets [`metadata`](Self::metadata).
    #[must_use]
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets [`mode`](Self::mode).
    #[must_use]
    pub fn with_mode(mut self, mode: LockMode) -> Self {
        self.mode = mode;
        self
    }

    /// Makes the lock a counting semaphore of `permits` (see
    /// [`permits`](Self::permits)); sets [`LockMode::Shared`].
    #[must_use]
    pub fn with_permits(mut self, permits: u32) -> Self {
        self.permits = Some(permits);
        self.mode = LockMode::Shared;
        self
    }

    /// Sets [`process_group`](Self::process_group).
    #[must_use]
    pub fn with_process_group(mut self, group: u32) -> Self {
        self.process_group = Some(group);
        self
    }

    /// Sets [`wait_notice`](Self::wait_notice).
    #[must_use]
    pub fn with_wait_notice(mut self, notice: WaitNotice) -> Self {
        self.wait_notice = Some(notice);
        self
    }

    /// Runs the [`wait_notice`](Self::wait_notice), if any.
    ///
    /// The contract for backends: an [`acquire`](LockProvider::acquire)
    /// that finds the lock taken calls this once, when it is in place to
    /// see a release (subscribed, queued, or about to poll): a release from
    /// then on is one the wait sees. An acquire that is granted at once, and every
    /// [`try_acquire`](LockProvider::try_acquire), does not call it. The
    /// conformance suite checks both.
    pub fn waiting(&self) {
        if let Some(notice) = &self.wait_notice {
            (notice.0)();
        }
    }

    /// The longest a waiter may wait: `timeout`, whole. (It once was cut to
    /// `retry_interval × max_retries`, which ended every default wait at
    /// 30 s whatever the timeout said.)
    #[must_use]
    pub fn wait_budget(&self) -> Duration {
        self.timeout
    }

    /// The longest pause a holder may leave between two refreshes: a third of
    /// the stale threshold.
    #[must_use]
    pub fn refresh_interval(&self) -> Duration {
        self.stale_threshold / 3
    }

    /// Checks the options make sense.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a zero stale threshold or a zero retry
    /// interval with retries.
    pub fn validate(&self) -> Result<()> {
        if self.stale_threshold.is_zero() {
            return Err(Error::invalid_input(
                "lock options",
                "stale_threshold must be greater than zero",
            ));
        }
        if let Some(n) = self.permits {
            if n == 0 || n > MAX_PERMITS {
                return Err(Error::invalid_input(
                    "lock options",
                    format!("permits must be 1 to {MAX_PERMITS}, not {n}"),
                ));
            }
            if self.mode != LockMode::Shared {
                return Err(Error::invalid_input(
                    "lock options",
                    "permits make a shared lock (a semaphore); an exclusive lock has one holder",
                ));
            }
        }
        if self.retry_interval.is_zero() && !self.timeout.is_zero() {
            return Err(Error::invalid_input(
                "lock options",
                "retry_interval must be greater than zero when the wait may last",
            ));
        }
        Ok(())
    }
}

/// Who holds a lock, as shown to people and to waiters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LockInfo {
    /// Unique id of this grant.
    pub id: String,
    /// The lock's name.
    pub name: String,
    /// Exclusive or shared.
    #[serde(default)]
    pub mode: LockMode,
    /// Holder's process id.
    pub pid: u32,
    /// Holder's host name.
    pub hostname: String,
    /// Holder's process start time (OS-specific ticks), where the OS tells
    /// it; with `pid` it identifies a process even when pids are reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
    /// The pid space (boot and pid namespace) the holder's pid belongs to,
    /// where the OS tells it: see [`identity::pid_space`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_space: Option<String>,
    /// A process group acting under the lock: see
    /// [`LockOptions::process_group`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_group: Option<u32>,
    /// The semaphore's permits, when the grant is one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permits: Option<u32>,
    /// When the lock was granted.
    pub acquired_at: Timestamp,
    /// When the holder last refreshed it.
    pub refreshed_at: Timestamp,
    /// What the holder is doing.
    #[serde(default)]
    pub operation: String,
    /// Free-form metadata from [`LockOptions::metadata`].
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// This grant's fencing token.
    pub fencing_token: FencingToken,
}

impl LockInfo {
    /// Holder information for a grant to the current process, now.
    #[must_use]
    pub fn for_current_process(
        name: &str,
        fencing_token: FencingToken,
        options: &LockOptions,
        now: Timestamp,
    ) -> Self {
        Self {
            id: identity::unique_id(),
            name: name.to_owned(),
            mode: options.mode,
            pid: identity::pid(),
            hostname: identity::hostname().to_owned(),
            process_start: identity::own_start_time(),
            pid_space: identity::pid_space().map(str::to_owned),
            process_group: options.process_group,
            permits: options.permits,
            acquired_at: now,
            refreshed_at: now,
            operation: options.operation.clone(),
            metadata: options.metadata.clone(),
            fencing_token,
        }
    }

    /// How long ago the lock was granted.
    #[must_use]
    pub fn age(&self, now: Timestamp) -> Duration {
        now.saturating_duration_since(self.acquired_at)
    }
}

/// A lock as listed by [`LockProvider::locks`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LockStatus {
    /// The lock's name.
    pub name: String,
    /// Whether anyone holds it right now.
    pub held: bool,
    /// Mode of the current (or last known) holders.
    pub mode: Option<LockMode>,
    /// Current holders (several for a shared lock). When `held` is false
    /// this may still show the last holder's leftover metadata.
    pub holders: Vec<LockInfo>,
}

impl LockStatus {
    /// A status entry.
    #[must_use]
    pub fn new(name: impl Into<String>, held: bool, holders: Vec<LockInfo>) -> Self {
        let mode = holders.first().map(|h| h.mode);
        Self {
            name: name.into(),
            held,
            mode,
            holders,
        }
    }
}

/// What [`LockProvider::force_release`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ForceOutcome {
    /// Nobody held the lock; leftover state (if any) was cleared.
    NotHeld,
    /// The holders were provably gone (dead process, lapsed lease); their
    /// state was cleared.
    Cleared {
        /// The holders whose state was cleared.
        previous: Vec<LockInfo>,
    },
    /// Live holders were revoked. Each of them learns of it through its
    /// guard ([`LockGuard::ensure_held`]) and later grants carry greater
    /// fencing tokens.
    Revoked {
        /// The holders revoked.
        previous: Vec<LockInfo>,
    },
    /// Live holders hold the lock and the backend cannot take it from them
    /// safely (for example a kernel lock owned by a running process).
    Refused {
        /// The live holders.
        holders: Vec<LockInfo>,
        /// Why it was refused and what to do instead.
        reason: String,
    },
}

/// The result of forcing one lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ForceRelease {
    /// The lock's name.
    pub name: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: ForceOutcome,
}

impl ForceRelease {
    /// A result entry.
    #[must_use]
    pub fn new(name: impl Into<String>, outcome: ForceOutcome) -> Self {
        Self {
            name: name.into(),
            outcome,
        }
    }
}

/// A provider of named locks.
///
/// Contract, for every implementation:
///
/// * **Mutual exclusion.** While an exclusive grant of a name is held, no
///   other grant of that name (exclusive or shared) exists, in this process
///   or any other that uses the same backend configuration. Shared grants
///   coexist with each other only.
/// * **Fencing.** Every grant carries a [`FencingToken`] strictly greater
///   than that of every earlier grant of the same name.
/// * **Liveness.** A holder that dies, or drops its guard without
///   [`LockGuard::release`], does not block the lock forever: the backend
///   frees it at once (kernel locks) or once the holder's lease lapses
///   (`stale_threshold`).
/// * **Loss is reported.** If a grant ends without its holder releasing it
///   (lease lapsed, revoked by force), the guard's
///   [`LockGuard::ensure_held`] fails from then on.
/// * **Names** arrive validated as [`LockName`]s; backends never let a
///   name reach outside their own namespace.
#[async_trait]
pub trait LockProvider: Send + Sync + fmt::Debug {
    /// A short backend name for messages (`memory`, `file`, `redis`).
    fn backend_name(&self) -> &str;

    /// Where the locks live, for operators: the directory, the server
    /// that answers (for a replicated deployment, the node calls go to
    /// now). `None` (the default) when there is nothing to say.
    fn endpoint(&self) -> Option<String> {
        None
    }

    /// Takes the lock `name`, waiting up to [`LockOptions::wait_budget`].
    ///
    /// Cancel-safe: dropping the returned future before it completes leaves
    /// no grant behind.
    ///
    /// # Errors
    /// * [`Error::LockTimeout`] when the wait ends, naming the holder when
    ///   the backend can tell.
    /// * [`Error::InvalidInput`] for bad options; nothing is created.
    /// * [`Error::Unsupported`] for a mode the backend lacks.
    /// * [`Error::Backend`] when the backend fails.
    async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard>;

    /// Takes the lock `name` if that is possible without waiting.
    ///
    /// Returns `Ok(None)` when somebody else holds it.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire), but never [`Error::LockTimeout`].
    async fn try_acquire(
        &self,
        name: &LockName,
        options: &LockOptions,
    ) -> Result<Option<LockGuard>>;

    /// Lists the locks this provider knows (held ones at least, and where
    /// the backend keeps them, idle ones with their last holder).
    ///
    /// # Errors
    /// [`Error::Backend`] when the backend cannot be read.
    async fn locks(&self) -> Result<Vec<LockStatus>>;

    /// Emergency release of one lock.
    ///
    /// Force always clears the state of holders that are provably gone. What
    /// it does to a *live* holder depends on the backend and is reported in
    /// the outcome: a backend that can revoke (leases) revokes and the holder
    /// learns of it through its guard ([`ForceOutcome::Revoked`]); one that
    /// cannot take the lock safely reports [`ForceOutcome::Refused`] and
    /// changes nothing. Force never makes two live grants of one exclusive
    /// lock both believe they hold it without a way to find out.
    ///
    /// # Errors
    /// [`Error::Backend`] on failure.
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease>;

    /// A feed of wake-ups when what [`locks`](Self::locks) returns may
    /// have changed (a grant, a release, a holder's death), for watchers
    /// that would otherwise poll. Taken before the first read, so nothing
    /// between the two goes unannounced. The contract is
    /// [`ChangeFeed`]'s; a lease lapsing is not announced.
    ///
    /// The default, `Ok(None)`, means the backend cannot notify: watchers
    /// poll it.
    ///
    /// # Errors
    /// [`Error::Backend`] when the backend offers a feed but cannot start
    /// one now (the watcher polls).
    async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(None)
    }

    /// [`force_release`](Self::force_release) for every lock in
    /// [`locks`](Self::locks).
    ///
    /// # Errors
    /// The first error met; locks handled before it stay handled.
    async fn force_release_all(&self) -> Result<Vec<ForceRelease>> {
        let mut out = Vec::new();
        for status in self.locks().await? {
            out.push(self.force_release(&LockName::new(status.name)?).await?);
        }
        Ok(out)
    }
}

macro_rules! forward_lock_provider {
    ($ty:ty) => {
        #[async_trait]
        impl<T: LockProvider + ?Sized> LockProvider for $ty {
            fn backend_name(&self) -> &str {
                (**self).backend_name()
            }
            fn endpoint(&self) -> Option<String> {
                (**self).endpoint()
            }
            async fn acquire(&self, name: &LockName, options: &LockOptions) -> Result<LockGuard> {
                (**self).acquire(name, options).await
            }
            async fn try_acquire(
                &self,
                name: &LockName,
                options: &LockOptions,
            ) -> Result<Option<LockGuard>> {
                (**self).try_acquire(name, options).await
            }
            async fn locks(&self) -> Result<Vec<LockStatus>> {
                (**self).locks().await
            }
            async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
                (**self).force_release(name).await
            }
            async fn force_release_all(&self) -> Result<Vec<ForceRelease>> {
                (**self).force_release_all().await
            }
            async fn watch(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
                (**self).watch().await
            }
        }
    };
}

forward_lock_provider!(Arc<T>);
forward_lock_provider!(Box<T>);
forward_lock_provider!(&T);

/// The backend side of a held lock, wrapped by [`LockGuard`].
#[async_trait]
pub trait HeldLock: Send + Sync + fmt::Debug {
    /// Ends the grant. Called at most once, by [`LockGuard::release`].
    ///
    /// # Errors
    /// [`Error::Backend`] when the backend could not be told; the grant then
    /// ends by itself (kernel lock closed, lease expiry).
    async fn release(&mut self) -> Result<()>;

    /// Ends the grant without waiting, from `Drop`, when the guard was not
    /// released. Best effort: closing a kernel lock is immediate; a lease
    /// may have to run out.
    fn release_on_drop(&mut self);
}

/// Sends the news that a grant was lost. Kept by the backend (for example its
/// refresh task); see [`loss_channel`].
#[derive(Debug, Clone)]
pub struct LossNotifier(Arc<watch::Sender<Option<Arc<str>>>>);

impl LossNotifier {
    /// Marks the grant as lost. The first reason given is kept.
    pub fn notify_lost(&self, reason: impl Into<String>) {
        let reason: Arc<str> = Arc::from(reason.into());
        self.0.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Whether the grant was already marked lost.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.0.borrow().is_some()
    }
}

/// Receives the news that a grant was lost; see [`loss_channel`].
#[derive(Debug, Clone)]
pub struct LossWatch(Watched);

/// The receiving end of one grant's loss channel: the reason, once lost.
type LossReceiver = watch::Receiver<Option<Arc<str>>>;

#[derive(Debug, Clone)]
enum Watched {
    One(LossReceiver),
    /// The first loss among several grants, each reported after its label.
    FirstOf(Arc<[(String, LossReceiver)]>),
}

impl LossWatch {
    /// A watch reporting the first loss among `watches`, each loss's reason
    /// after its label (`"{label}: {reason}"`): for a grant made of several
    /// (a hierarchy's path), without a task relaying their news.
    #[must_use]
    pub fn first_of(watches: Vec<(String, LossWatch)>) -> Self {
        let mut flat = Vec::with_capacity(watches.len());
        for (label, w) in watches {
            match w.0 {
                Watched::One(rx) => flat.push((label, rx)),
                Watched::FirstOf(inner) => flat.extend(
                    inner
                        .iter()
                        .map(|(l, rx)| (format!("{label}: {l}"), rx.clone())),
                ),
            }
        }
        Self(Watched::FirstOf(flat.into()))
    }

    /// Why the grant was lost, if it was.
    #[must_use]
    pub fn lost_reason(&self) -> Option<String> {
        match &self.0 {
            Watched::One(rx) => rx.borrow().as_deref().map(str::to_owned),
            Watched::FirstOf(watches) => watches.iter().find_map(|(label, rx)| {
                rx.borrow()
                    .as_deref()
                    .map(|reason| format!("{label}: {reason}"))
            }),
        }
    }

    /// Waits until the grant is lost and returns why. Never completes for a
    /// grant that is kept (use it in `tokio::select!` beside the work).
    pub async fn lost(&mut self) -> String {
        match &mut self.0 {
            Watched::One(rx) => Self::lost_one(rx).await,
            Watched::FirstOf(watches) => {
                type Wait = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;
                let mut waits: Vec<Wait> = watches
                    .iter()
                    .map(|(label, rx)| {
                        let (label, mut rx) = (label.clone(), rx.clone());
                        Box::pin(
                            async move { format!("{label}: {}", Self::lost_one(&mut rx).await) },
                        ) as Wait
                    })
                    .collect();
                std::future::poll_fn(|cx| {
                    for wait in &mut waits {
                        if let std::task::Poll::Ready(reason) = wait.as_mut().poll(cx) {
                            return std::task::Poll::Ready(reason);
                        }
                    }
                    std::task::Poll::Pending
                })
                .await
            }
        }
    }

    async fn lost_one(rx: &mut LossReceiver) -> String {
        // The borrow ends before any further await, so the future is
        // `Send` (it can be spawned).
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => Some(reason.as_deref().unwrap_or_default().to_owned()),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            // The notifier is gone without reporting a loss: the grant
            // ended normally, so there is nothing to report, ever.
            None => std::future::pending().await,
        }
    }
}

/// A connected [`LossNotifier`] / [`LossWatch`] pair.
#[must_use]
pub fn loss_channel() -> (LossNotifier, LossWatch) {
    let (tx, rx) = watch::channel(None);
    (LossNotifier(Arc::new(tx)), LossWatch(Watched::One(rx)))
}

/// A held lock. Release it with [`release`](Self::release).
///
/// Dropping the guard without releasing it also ends the grant, as soon as
/// the backend can: kernel locks are freed when their file is closed (at
/// once), lease-based locks when their lease runs out (at most the stale
/// threshold). Explicit release is the real path: it reports errors and
/// frees leases at once.
#[must_use = "a lock guard releases its lock when dropped"]
#[derive(Debug)]
pub struct LockGuard {
    info: LockInfo,
    loss: LossWatch,
    held: Option<Box<dyn HeldLock>>,
}

impl LockGuard {
    /// Wraps a backend grant.
    pub fn new(info: LockInfo, loss: LossWatch, held: Box<dyn HeldLock>) -> Self {
        Self {
            info,
            loss,
            held: Some(held),
        }
    }

    /// The same grant, with its backend side wrapped by `wrap`: for a
    /// layer that must see the grant end (a timer, an audit log), the way
    /// the `ff-metrics` crate times holds. The wrapper's
    /// [`HeldLock::release`] and [`HeldLock::release_on_drop`] must end
    /// the grant they wrap.
    pub fn wrap_held(mut self, wrap: impl FnOnce(Box<dyn HeldLock>) -> Box<dyn HeldLock>) -> Self {
        self.held = self.held.take().map(wrap);
        self
    }

    /// Holder information of this grant.
    #[must_use]
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The lock's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// This grant's fencing token.
    #[must_use]
    pub fn fencing_token(&self) -> FencingToken {
        self.info.fencing_token
    }

    /// Whether the grant is still ours (not lost).
    #[must_use]
    pub fn is_held(&self) -> bool {
        self.loss.lost_reason().is_none()
    }

    /// Call before acting under the lock.
    ///
    /// # Errors
    /// [`Error::LockLost`] with the reason when the grant was lost.
    pub fn ensure_held(&self) -> Result<()> {
        match self.loss.lost_reason() {
            None => Ok(()),
            Some(reason) => Err(Error::LockLost {
                name: self.info.name.clone(),
                reason,
            }),
        }
    }

    /// A watch that completes when the grant is lost, for `tokio::select!`.
    #[must_use]
    pub fn loss_watch(&self) -> LossWatch {
        self.loss.clone()
    }

    /// Ends the grant.
    ///
    /// # Errors
    /// [`Error::LockLost`] when the grant had already been lost (the work
    /// done under it was not protected to the end); [`Error::Backend`] when
    /// the backend failed to release (the grant then ends by itself).
    pub async fn release(mut self) -> Result<()> {
        let lost = self.ensure_held();
        if let Some(mut held) = self.held.take() {
            held.release().await?;
        }
        lost
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(mut held) = self.held.take() {
            tracing::debug!(lock = %self.info.name, "lock guard dropped without release");
            held.release_on_drop();
        }
    }
}
