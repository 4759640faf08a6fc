//! The lease tools: a lock held across calls.
//!
//! `lock_acquire` takes the lock and keeps its guard here, under a handle;
//! the lock stays held until `lock_release`, or until `ttl_seconds` pass
//! without `lock_renew`: then the server releases it, so an agent that
//! stopped never keeps others out for longer than its TTL. The backend's
//! own lease is the TTL too: if the server itself dies, the lock lapses
//! as it would here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ff_model::cli::LockEntryView;
use ff_model::mcp::{
    AcquireArgs, AcquireView, LeaseArgs, LeaseMode, LeaseView, LockList, NoArgs, ReleasedView,
};
use ff_traits::{LockGuard, LockMode, LockName, LockOptions, Timestamp, lock_unpoisoned};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use tokio::time::Instant;

use crate::{ForgeFlowMcp, ToolError};

/// How long a lease lasts without renewal when the caller does not say.
const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The leases held for the server's callers, by handle.
#[derive(Default)]
pub(crate) struct Leases(Arc<Mutex<HashMap<String, Lease>>>);

struct Lease {
    name: String,
    mode: LeaseMode,
    ttl: Duration,
    expires: Instant,
    guard: LockGuard,
}

impl Leases {
    /// Keeps `lease` under a new handle, and watches its TTL.
    fn keep(&self, lease: Lease) -> LeaseView {
        let handle = format!("lease-{}", ff_traits::identity::unique_id());
        let view = LeaseView::new(
            handle.clone(),
            lease.name.clone(),
            lease.mode,
            lease.guard.fencing_token().0,
            lease.ttl,
            Timestamp::now(),
        );
        lock_unpoisoned(&self.0).insert(handle.clone(), lease);
        tokio::spawn(lapse_when_unrenewed(Arc::downgrade(&self.0), handle));
        view
    }

    /// Releases every lease (the session ended).
    pub(crate) async fn release_all(&self) {
        let all: Vec<Lease> = lock_unpoisoned(&self.0).drain().map(|(_, l)| l).collect();
        for lease in all {
            if let Err(e) = lease.guard.release().await {
                tracing::warn!(lock = %lease.name, error = %e, "releasing a lease at the session's end failed");
            }
        }
    }
}

/// Releases the lease `handle` once its deadline passes unrenewed.
async fn lapse_when_unrenewed(leases: Weak<Mutex<HashMap<String, Lease>>>, handle: String) {
    loop {
        let Some(map) = leases.upgrade() else { return };
        // Lapsed: taken out to release; renewed: the new deadline to sleep
        // until (the map's lock is not held across the sleep).
        let next = {
            let mut map = lock_unpoisoned(&map);
            match map.get(&handle) {
                None => return,
                Some(l) if l.expires <= Instant::now() => Err(map.remove(&handle)),
                Some(l) => Ok(l.expires),
            }
        };
        drop(map);
        match next {
            Ok(until) => tokio::time::sleep_until(until).await,
            Err(lapsed) => {
                if let Some(lease) = lapsed {
                    tracing::info!(lock = %lease.name, lease = %handle, "a lease lapsed without renewal; released");
                    if let Err(e) = lease.guard.release().await {
                        tracing::warn!(lock = %lease.name, error = %e, "releasing a lapsed lease failed");
                    }
                }
                return;
            }
        }
    }
}

fn unknown(handle: &str) -> ToolError {
    ToolError::new(
        "not_found",
        format!(
            "no lease {handle:?} is held: it was released, or its TTL lapsed without \
             lock_renew; acquire the lock again"
        ),
    )
}

#[tool_router(router = lease_router, vis = "pub(crate)")]
impl ForgeFlowMcp {
    /// Takes a lock and keeps it across calls: gives a lease handle and a
    /// fencing token. Renew it (`lock_renew`) before `ttl_seconds` pass, and
    /// release it (`lock_release`) when done. A lock held by others past
    /// `wait_seconds` answers `busy`.
    #[tool(
        name = "lock_acquire",
        output_schema = crate::object_output::<AcquireView>(),
        annotations(destructive_hint = false)
    )]
    async fn lock_acquire(
        &self,
        Parameters(args): Parameters<AcquireArgs>,
    ) -> Result<Json<AcquireView>, ToolError> {
        let name = LockName::new(&args.name)?;
        let ttl = args.ttl_seconds.map_or(DEFAULT_TTL, Duration::from_secs);
        let wait = Duration::from_secs(args.wait_seconds.unwrap_or(0).min(50));
        let mut options = LockOptions::default()
            .with_timeout(wait)
            .with_stale_threshold(ttl)
            .with_operation("mcp lock_acquire")
            .with_mode(match args.mode {
                LeaseMode::Shared => LockMode::Shared,
                _ => LockMode::Exclusive,
            });
        if let Some(n) = args.permits {
            if args.mode != LeaseMode::Shared {
                return Err(ToolError::invalid(
                    "permits make a counting semaphore of shared holders; pass mode \"shared\"",
                ));
            }
            options = options.with_permits(n);
        }
        options.validate()?;
        let locks = &*self.inner.locks;
        let started = std::time::Instant::now();
        // A name with '/' is a node of a hierarchy: intention locks on its
        // ancestors first, as `ff lock` takes them.
        let taken = if wait.is_zero() {
            ff_hierarchy::try_acquire(locks, &name, &options).await
        } else {
            match ff_hierarchy::acquire(locks, &name, &options).await {
                Ok(g) => Ok(Some(g)),
                Err(ff_traits::Error::LockTimeout { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }?;
        let Some(guard) = taken else {
            return Ok(Json(AcquireView::Busy {
                name: args.name,
                waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }));
        };
        Ok(Json(AcquireView::Acquired(self.inner.leases.keep(Lease {
            name: args.name,
            mode: args.mode,
            ttl,
            expires: Instant::now() + ttl,
            guard,
        }))))
    }

    /// Extends a lease by its TTL from now; fails when it lapsed or the
    /// lock was lost (then stop: another holder may have it).
    #[tool(
        name = "lock_renew",
        annotations(destructive_hint = false, idempotent_hint = true)
    )]
    async fn lock_renew(
        &self,
        Parameters(args): Parameters<LeaseArgs>,
    ) -> Result<Json<LeaseView>, ToolError> {
        let mut map = lock_unpoisoned(&self.inner.leases.0);
        let Some(lease) = map.get_mut(&args.lease) else {
            return Err(unknown(&args.lease));
        };
        if let Err(e) = lease.guard.ensure_held() {
            map.remove(&args.lease);
            return Err(e.into());
        }
        lease.expires = Instant::now() + lease.ttl;
        Ok(Json(LeaseView::new(
            args.lease.clone(),
            lease.name.clone(),
            lease.mode,
            lease.guard.fencing_token().0,
            lease.ttl,
            Timestamp::now(),
        )))
    }

    /// Releases a lease.
    #[tool(
        name = "lock_release",
        annotations(destructive_hint = false, idempotent_hint = false)
    )]
    async fn lock_release(
        &self,
        Parameters(args): Parameters<LeaseArgs>,
    ) -> Result<Json<ReleasedView>, ToolError> {
        let lease = lock_unpoisoned(&self.inner.leases.0).remove(&args.lease);
        let Some(lease) = lease else {
            return Err(unknown(&args.lease));
        };
        lease.guard.release().await?;
        Ok(Json(ReleasedView::new(args.lease, lease.name)))
    }

    /// Every lock and its holders, as `ff locks --json` shows them.
    #[tool(name = "lock_list", annotations(read_only_hint = true))]
    async fn lock_list(
        &self,
        Parameters(_): Parameters<NoArgs>,
    ) -> Result<Json<LockList>, ToolError> {
        let now = Timestamp::now();
        let all = self.inner.locks.locks().await?;
        Ok(Json(LockList::new(
            all.iter().map(|l| LockEntryView::new(l, now)).collect(),
        )))
    }
}
