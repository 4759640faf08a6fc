//! Wake-ups of waiters: one `LISTEN`ing connection per provider, shared by
//! its waiters, opened by the first wait and again after it ends. Before
//! it is trusted, the path is checked once: a `NOTIFY` sent through the
//! pool must come back on it. Behind a transaction-pooling pgbouncer it
//! does not (the session that listened is not the client's), and waiters
//! poll instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ff_postgres::Listener;
use tokio::sync::{Mutex, broadcast};

use crate::Shared;

/// How long a failed or unproven `LISTEN` is left alone before it is
/// tried again.
const RETRY_LISTEN_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Wakeups {
    mode: ff_postgres::Wakeups,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    listener: Option<Arc<Listener>>,
    /// When listening last failed (or was found not to deliver).
    failed_at: Option<Instant>,
    /// Whether the poll fallback was already reported.
    warned: bool,
}

/// What a wait ended with.
pub(crate) enum Woke {
    /// A release of the lock (or missed messages: look again).
    Released,
    /// The time given.
    Timer,
    /// The listening connection ended.
    Lost,
}

impl Wakeups {
    pub(crate) fn new(mode: ff_postgres::Wakeups) -> Self {
        Self {
            mode,
            state: Mutex::new(State::default()),
        }
    }

    /// A receiver of release notices, or `None` when waiters must poll.
    pub(crate) async fn subscribe(&self, shared: &Shared) -> Option<broadcast::Receiver<String>> {
        if self.mode == ff_postgres::Wakeups::Poll {
            return None;
        }
        let mut state = self.state.lock().await;
        if let Some(l) = &state.listener {
            if !l.is_closed() {
                return Some(l.subscribe());
            }
            state.listener = None;
        }
        if state
            .failed_at
            .is_some_and(|t| t.elapsed() < RETRY_LISTEN_AFTER)
        {
            return None;
        }
        match open_checked(shared).await {
            Ok(listener) => {
                let rx = listener.subscribe();
                state.listener = Some(Arc::new(listener));
                state.failed_at = None;
                Some(rx)
            }
            Err(why) => {
                if !state.warned {
                    state.warned = true;
                    tracing::warn!(
                        endpoint = %shared.db.endpoint(),
                        "lock waiters poll instead of listening: {why} (behind a transaction-pooling \
                         pgbouncer, name the server's own port with ?listen_port=, or say \
                         ?wakeups=poll)"
                    );
                }
                state.failed_at = Some(Instant::now());
                None
            }
        }
    }
}

/// Listens, then proves the path with a `NOTIFY` of its own.
async fn open_checked(shared: &Shared) -> Result<Listener, String> {
    let listener = shared
        .db
        .listen(&shared.channel)
        .await
        .map_err(|e| e.to_string())?;
    let mut rx = listener.subscribe();
    let probe = format!("\u{1f}probe {}", ff_traits::identity::unique_id());
    shared
        .query(
            "checking lock wake-ups",
            "SELECT pg_notify($1, $2)::text",
            &[
                (&shared.channel.as_str(), ff_postgres::Type::TEXT),
                (&probe.as_str(), ff_postgres::Type::TEXT),
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + shared.db.settings().call_timeout;
    loop {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Ok(payload)) if payload == probe => return Ok(listener),
            Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                return Err("the LISTEN connection closed".into());
            }
            Err(_) => return Err("a NOTIFY sent through the pool never came back".into()),
        }
    }
}

/// Waits until `until` or a release of `name`.
pub(crate) async fn wait(rx: &mut broadcast::Receiver<String>, name: &str, until: Instant) -> Woke {
    loop {
        match tokio::time::timeout_at(until.into(), rx.recv()).await {
            Ok(Ok(payload)) if payload == name => return Woke::Released,
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => return Woke::Released,
            Ok(Err(broadcast::error::RecvError::Closed)) => return Woke::Lost,
            Err(_) => return Woke::Timer,
        }
    }
}
