//! A held Redis lock: its watchdog and its release.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ff_traits::{
    Error, HeldLock, LockGuard, LockInfo, LockMode, LossNotifier, Result, loss_channel,
};

use crate::renewals::Renewal;
use crate::{Shared, scripts};

#[derive(Debug)]
pub(crate) struct Held {
    shared: Arc<Shared>,
    name: String,
    token: String,
    mode: LockMode,
    /// Its entry with the provider's renewals, until released.
    renewal: Option<u64>,
    loss: LossNotifier,
}

/// What the clocks of client and server may disagree by over one TTL.
fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

impl Held {
    /// Wraps a fresh grant in a guard and schedules its watchdog (it
    /// starts when the first renewal is due). `sent` is when the grant
    /// request left: validity counts from then.
    pub(crate) fn start(
        shared: Arc<Shared>,
        info: LockInfo,
        token: String,
        ttl: Duration,
        sent: Instant,
    ) -> LockGuard {
        let (loss, watch) = loss_channel();
        let renewal = shared.renewals.add(
            &shared,
            Renewal {
                name: info.name.clone(),
                token: token.clone(),
                mode: info.mode,
                ttl,
                valid_until: sent + ttl.saturating_sub(drift(ttl)),
                due: Instant::now() + period(ttl),
                loss: loss.clone(),
            },
        );
        let held = Self {
            shared,
            name: info.name.clone(),
            token,
            mode: info.mode,
            renewal: Some(renewal),
            loss,
        };
        LockGuard::new(info, watch, Box::new(held))
    }

    /// Its renewals stop (the watchdog, or its place in the schedule).
    fn stop_renewing(&mut self) {
        if let Some(id) = self.renewal.take() {
            self.shared.renewals.forget(id);
        }
    }

    /// Deletes the grant of `token` (exclusive, or one shared hold) if it
    /// still stands.
    pub(crate) async fn delete(
        shared: &Shared,
        name: &str,
        token: &str,
        mode: LockMode,
    ) -> Result<bool> {
        let mut conn = shared.conn();
        // Every mode but exclusive is a field of the readers' hash.
        let mut script = if mode == LockMode::Exclusive {
            scripts::RELEASE_SCRIPT.key(shared.key(name))
        } else {
            scripts::RELEASE_SHARED_SCRIPT.key(shared.aux(name, "readers"))
        };
        let deleted: i64 = shared
            .call_write(
                "releasing a lock",
                script
                    .arg(token)
                    .arg(shared.channel(name))
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(deleted == 1)
    }

    /// [`delete`](Self::delete), made once more when the call fails (the
    /// server may have closed the connection under it, which is then
    /// reconnected); for the background releases, which nobody waits on.
    pub(crate) async fn delete_in_background(
        shared: &Shared,
        name: &str,
        token: &str,
        mode: LockMode,
    ) {
        if Self::delete(shared, name, token, mode).await.is_err() {
            let _ = Self::delete(shared, name, token, mode).await;
        }
    }
}

/// How often a grant is renewed: every third of its TTL.
fn period(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(3))
}

/// Renews the grant every third of its TTL, from its first renewal on,
/// until stopped; reports the loss the moment a renewal finds the lock
/// gone or another holder's, or when validity runs out without a renewal
/// getting through.
pub(crate) async fn watchdog(shared: Arc<Shared>, grant: Renewal) {
    let Renewal {
        name,
        token,
        mode,
        ttl,
        mut valid_until,
        due,
        loss,
    } = grant;
    let period = period(ttl);
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let mut next = due;
    loop {
        tokio::time::sleep_until(next.min(valid_until).into()).await;
        if Instant::now() >= valid_until {
            loss.notify_lost(format!(
                "its validity ran out without a renewal getting through to {}",
                shared.config.prefix
            ));
            return;
        }
        let sent = Instant::now();
        let mut conn = shared.conn();
        let mut script = if mode == LockMode::Exclusive {
            scripts::EXTEND_SCRIPT.key(shared.key(&name))
        } else {
            scripts::EXTEND_SHARED_SCRIPT.key(shared.aux(&name, "readers"))
        };
        // A call may hang longer than the grant is valid (a partition
        // swallows it until the call timeout): the loss is reported when
        // validity runs out, not when the call gives up, or another holder
        // could be granted the lock while this one still counts it its own.
        let Ok(renewed): std::result::Result<Result<i64>, _> = tokio::time::timeout_at(
            valid_until.into(),
            shared.call_write(
                "renewing a lock",
                script.arg(&token).arg(ttl_ms).invoke_async(&mut conn),
            ),
        )
        .await
        else {
            loss.notify_lost(format!(
                "its validity ran out while a renewal to {} was still unanswered",
                shared.config.prefix
            ));
            return;
        };
        match renewed {
            Ok(1) => {
                valid_until = sent + ttl.saturating_sub(drift(ttl));
                next = sent + period;
            }
            Ok(_) => {
                loss.notify_lost("the lock was deleted or taken by another holder");
                return;
            }
            Err(e) => {
                tracing::warn!(name, error = %e, "lock renewal failed; retrying");
                next = Instant::now() + period / 4;
            }
        }
    }
}

#[async_trait]
impl HeldLock for Held {
    async fn release(&mut self) -> Result<()> {
        self.stop_renewing();
        let lost = self.loss.is_lost();
        let deleted = match Held::delete(&self.shared, &self.name, &self.token, self.mode).await {
            Ok(deleted) => deleted,
            // The server may have closed the connection under the call (its
            // idle timeout, a failover): once more, on the reconnected
            // connection. If the first call did delete the grant, the second
            // finds it gone; while no loss was seen the grant was ours until
            // now, so gone then means released.
            Err(e) => {
                tracing::debug!(lock = %self.name, error = %e, "releasing failed; once more");
                Held::delete(&self.shared, &self.name, &self.token, self.mode).await? || !lost
            }
        };
        if deleted && !lost {
            Ok(())
        } else {
            Err(Error::LockLost {
                name: self.name.clone(),
                reason: "it had been deleted, taken over or had expired before the release"
                    .to_owned(),
            })
        }
    }

    fn release_on_drop(&mut self) {
        self.stop_renewing();
        // Best effort: release in the background if a runtime is running;
        // otherwise the TTL frees the lock.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (shared, name, token, mode) = (
                Arc::clone(&self.shared),
                self.name.clone(),
                self.token.clone(),
                self.mode,
            );
            handle.spawn(async move {
                Held::delete_in_background(&shared, &name, &token, mode).await;
            });
        }
    }
}
