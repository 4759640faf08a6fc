//! `LISTEN` on a connection of its own: notifications are session state,
//! so they need a connection no pool shares and no pgbouncer in
//! transaction mode sits in front of (`?listen_port=` names the server's
//! own port when the URL's is a pgbouncer's).

use futures_util::StreamExt as _;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;
use tokio_postgres::tls::MakeTlsConnect;

use crate::{Database, Result, backend};

/// Notifications kept for a slow receiver before it is told it lagged
/// (a receiver that lagged looks again, as after any wake-up).
const BACKLOG: usize = 1024;

/// A `LISTEN`ing connection: every notification's payload is sent to
/// each [`subscribe`](Self::subscribe)r. When the connection ends
/// (a restart, a failover), receivers see the channel closed and
/// [`is_closed`](Self::is_closed) turns true: open another.
#[derive(Debug)]
pub struct Listener {
    /// Kept so the connection stays open; dropping it ends the `LISTEN`
    /// (and frees the session's advisory locks).
    client: tokio_postgres::Client,
    /// Only the driver holds a sender, so receivers see the channel
    /// closed when the connection ends; new receivers are made from this
    /// one.
    receivers: broadcast::Receiver<String>,
    driver: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// A receiver of the payloads of notifications from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.receivers.resubscribe()
    }

    /// Whether the connection ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.driver.is_finished()
    }

    /// Tries to take, on this connection, the session-level exclusive
    /// advisory lock keyed by `hashtextextended(key, 0)`: held until the
    /// connection ends (taking it again only counts it twice).
    ///
    /// # Errors
    /// [`ff_traits::Error::Backend`] when the call fails.
    pub async fn try_advisory_lock(&self, db: &Database, key: &str) -> Result<bool> {
        let rows = db
            .bounded(
                "taking a watcher's advisory lock",
                self.client.query_typed(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    &[(&key, tokio_postgres::types::Type::TEXT)],
                ),
            )
            .await?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

pub(crate) async fn open(db: &Database, channel: &str) -> Result<Listener> {
    if !crate::url::plain_identifier(channel) {
        return Err(backend(format!(
            "cannot LISTEN on {channel:?}: not a plain identifier"
        )));
    }
    let (config, tls) = db.listen_config();
    let what = "listening for lock releases";
    let (sender, receivers) = broadcast::channel(BACKLOG);
    let (client, driver) = match tls {
        Some(tls) => connect(db, what, config, tls.clone(), sender).await?,
        None => connect(db, what, config, tokio_postgres::NoTls, sender).await?,
    };
    db.bounded(what, client.batch_execute(&format!("LISTEN {channel}")))
        .await?;
    Ok(Listener {
        client,
        receivers,
        driver,
    })
}

async fn connect<T>(
    db: &Database,
    what: &str,
    config: &tokio_postgres::Config,
    tls: T,
    sender: broadcast::Sender<String>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)>
where
    T: MakeTlsConnect<tokio_postgres::Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let (client, mut connection) = db.bounded(what, config.connect(tls)).await?;
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = sender.send(n.payload().to_owned());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "the LISTEN connection ended");
                    break;
                }
            }
        }
    });
    Ok((client, driver))
}
