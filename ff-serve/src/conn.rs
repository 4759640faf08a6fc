//! The accept loop: HTTP/1 connections with a header-read deadline and a
//! cap, so slow or hostile clients cannot take every descriptor.
//!
//! * A connection has [`ConnectionLimits::header_timeout`] to send a
//!   request's headers, and as long again to send the next one once idle
//!   (hyper's header-read timer runs whenever it waits for a request).
//! * At most [`ConnectionLimits::max_connections`] are open. At the cap, a
//!   new connection evicts the oldest one that is not being answered
//!   (still sending its headers, or idle between requests): a thousand
//!   half-sent requests from one address cannot keep out the next real
//!   one from that same address. When every connection is being answered
//!   (event streams), the new one is closed.
//! * An `accept` that fails for want of descriptors waits a moment and
//!   goes on, instead of ending the server.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Notify;
use tower::ServiceExt as _;

/// How many connections `ff serve` keeps, and how long a client has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Most connections open at once (default 512).
    pub max_connections: usize,
    /// How long a client has to send a request's headers, and how long an
    /// idle connection stays open (default 10 s).
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// One open connection, as the cap sees it.
struct Open {
    id: u64,
    accepted: Instant,
    /// Requests being answered (a response whose body is still sent
    /// counts until it is done).
    answering: Arc<AtomicUsize>,
    evict: Arc<Notify>,
}

/// The open connections.
#[derive(Default)]
struct Table {
    open: Vec<Open>,
    next_id: u64,
}

impl Table {
    /// Makes room for one more under `max`: evicts the oldest connection
    /// answering nothing. `false` when none can go.
    fn make_room(&mut self, max: usize) -> bool {
        if self.open.len() < max {
            return true;
        }
        let oldest_idle = self
            .open
            .iter()
            .enumerate()
            .filter(|(_, c)| c.answering.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.accepted)
            .map(|(i, _)| i);
        match oldest_idle {
            Some(i) => {
                let gone = self.open.swap_remove(i);
                // notify_one stores a permit: the connection's task sees
                // it even if it was not waiting yet.
                gone.evict.notify_one();
                tracing::debug!(
                    connection = gone.id,
                    "evicted an idle connection to make room"
                );
                true
            }
            None => false,
        }
    }
}

/// Counts a request as being answered until dropped.
struct Answering(Arc<AtomicUsize>);

impl Answering {
    fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(counter))
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then closes
/// every connection.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let table = Arc::new(Mutex::new(Table::default()));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (or a connection reset before it was
                // accepted): not the server's end.
                tracing::warn!(error = %e, "accept failed; going on");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (id, answering, evict) = {
            let mut t = ff_traits::lock_unpoisoned(&table);
            if !t.make_room(limits.max_connections) {
                tracing::warn!("every connection is being answered; refusing a new one");
                drop(stream);
                continue;
            }
            let id = t.next_id;
            t.next_id += 1;
            let (answering, evict) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
            t.open.push(Open {
                id,
                accepted: Instant::now(),
                answering: Arc::clone(&answering),
                evict: Arc::clone(&evict),
            });
            (id, answering, evict)
        };
        let (router, table) = (router.clone(), Arc::clone(&table));
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let busy = Answering::start(&answering);
                let router = router.clone();
                async move {
                    let response = router.oneshot(request.map(Body::new)).await?;
                    // Answering until the body is sent: an event stream is
                    // being answered for as long as it is open.
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            let _ = &busy;
                            frame
                        }))
                    }))
                }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = http.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(connection = id, error = %e, "connection ended");
                    }
                }
                () = evict.notified() => {}
            }
            ff_traits::lock_unpoisoned(&table)
                .open
                .retain(|c| c.id != id);
        });
    }
    drop(listener);
    // Connections end at once (event streams never would by themselves).
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}
