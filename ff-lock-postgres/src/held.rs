//! A held PostgreSQL lock: its watchdog and its release.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ff_postgres::Type;
use ff_traits::{Error, HeldLock, LockGuard, LockInfo, LossNotifier, Result, loss_channel};
use tokio::task::JoinHandle;

use crate::Shared;

#[derive(Debug)]
pub(crate) struct Held {
    shared: Arc<Shared>,
    name: String,
    holder: String,
    watchdog: Option<JoinHandle<()>>,
    loss: LossNotifier,
}

/// What the clocks of client and server may disagree by over one TTL.
fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

impl Held {
    /// Wraps a fresh grant in a guard and starts its watchdog. `sent` is
    /// when the grant request left: validity counts from then.
    pub(crate) fn start(
        shared: Arc<Shared>,
        info: LockInfo,
        ttl: Duration,
        sent: Instant,
    ) -> LockGuard {
        let (loss, watch) = loss_channel();
        let watchdog = tokio::spawn(watchdog(
            Arc::clone(&shared),
            info.name.clone(),
            info.id.clone(),
            ttl,
            sent + ttl.saturating_sub(drift(ttl)),
            loss.clone(),
        ));
        let held = Self {
            shared,
            name: info.name.clone(),
            holder: info.id.clone(),
            watchdog: Some(watchdog),
            loss,
        };
        LockGuard::new(info, watch, Box::new(held))
    }
}

/// Renews the lease every third of its TTL until stopped; reports the loss
/// the moment a renewal finds the lease gone, or when validity runs out
/// without a renewal getting through.
async fn watchdog(
    shared: Arc<Shared>,
    name: String,
    holder: String,
    ttl: Duration,
    mut valid_until: Instant,
    loss: LossNotifier,
) {
    let period = (ttl / 3).max(Duration::from_millis(3));
    let ttl_ms = ff_postgres::millis(ttl);
    let mut next = Instant::now() + period;
    loop {
        tokio::time::sleep_until(next.min(valid_until).into()).await;
        if Instant::now() >= valid_until {
            loss.notify_lost(format!(
                "its lease ran out without a renewal getting through to PostgreSQL {}",
                shared.db.endpoint()
            ));
            return;
        }
        let sent = Instant::now();
        // A call may hang longer than the grant is valid (a partition
        // swallows it until the call timeout): the loss is reported when
        // validity runs out, not when the call gives up.
        let (name_ref, holder_ref) = (name.as_str(), holder.as_str());
        let params: [ff_postgres::Param<'_>; 3] = [
            (&name_ref, Type::TEXT),
            (&holder_ref, Type::TEXT),
            (&ttl_ms, Type::INT8),
        ];
        let renewal = shared.query("renewing a lock", &shared.sql.renew, &params);
        let Ok(renewed) = tokio::time::timeout_at(valid_until.into(), renewal).await else {
            loss.notify_lost(format!(
                "its lease ran out while a renewal to PostgreSQL {} was still unanswered",
                shared.db.endpoint()
            ));
            return;
        };
        match renewed {
            Ok(rows) if !rows.is_empty() => {
                valid_until = sent + ttl.saturating_sub(drift(ttl));
                next = sent + period;
            }
            Ok(_) => {
                loss.notify_lost("the lease was revoked, taken over or had run out");
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
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        let lost = self.loss.is_lost();
        let deleted = match self.shared.delete(&self.name, &self.holder).await {
            Ok(deleted) => deleted,
            // The server may have closed the connection under the call (a
            // restart, an idle timeout): once more, on a new connection. If
            // the first call did delete the grant, the second finds it
            // gone; while no loss was seen the grant was ours until now, so
            // gone then means released.
            Err(e) => {
                tracing::debug!(lock = %self.name, error = %e, "releasing failed; once more");
                self.shared.delete(&self.name, &self.holder).await? || !lost
            }
        };
        if deleted && !lost {
            Ok(())
        } else {
            Err(Error::LockLost {
                name: self.name.clone(),
                reason: "it had been revoked, taken over or had run out before the release"
                    .to_owned(),
            })
        }
    }

    fn release_on_drop(&mut self) {
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        // Best effort: release in the background if a runtime is running;
        // otherwise the lease runs out.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (shared, name, holder) = (
                Arc::clone(&self.shared),
                self.name.clone(),
                self.holder.clone(),
            );
            handle.spawn(async move {
                shared.delete_in_background(&name, &holder).await;
            });
        }
    }
}
