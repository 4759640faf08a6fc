//! A TCP proxy that a test can cut: a partition between a client and a
//! server, without network namespaces. Once cut, nothing gets through
//! either way and nothing is closed (a dead link: no reset, no error,
//! calls just hang); healed, what was held back is delivered, as TCP
//! retransmits once a link comes back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A proxy on a free loopback port to `127.0.0.1:<upstream>`.
#[derive(Debug)]
pub struct Blackhole {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl Blackhole {
    /// Starts forwarding to `upstream` (threads, one pair per connection).
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let cut_all = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                let (a, b) = (cut_all.clone(), cut_all.clone());
                std::thread::spawn(move || pipe(client, server, &a));
                std::thread::spawn(move || pipe(server2, client2, &b));
            }
        });
        Self { port, cut }
    }

    /// The proxy's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Cuts the link: nothing sent either way gets through until healed.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Heals it: what was held back is delivered, and bytes flow again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, cut: &AtomicBool) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                // A blackhole never tells the other side.
                while cut.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                let _ = to.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        // Held back while the link is down.
        while cut.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
