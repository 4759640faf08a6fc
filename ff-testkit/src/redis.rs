//! A real `redis-server` for tests: started on a free loopback port in a
//! temporary directory, with append-only persistence (so a restart keeps
//! the data, as a production server would), stopped on drop.
//!
//! Where `redis-server` is not installed, [`RedisServer::start`] prints a
//! loud skip and returns `None`, unless `FF_REQUIRE_REDIS=1`, when it
//! panics (CI sets it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    fsync: &'static str,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one, or `None` (with a loud skip message) where `redis-server`
    /// is missing and `FF_REQUIRE_REDIS` is not `1`.
    ///
    /// # Panics
    /// When it is missing and required, or does not come up.
    #[must_use]
    pub fn start() -> Option<Self> {
        Self::start_with_fsync("always")
    }

    /// As [`start`](Self::start), with the append-only file synced once a
    /// second, as production servers usually run (for benchmarks: `always`
    /// puts an fsync in every write). A SIGKILL may lose the last second.
    #[must_use]
    pub fn start_for_benchmarks() -> Option<Self> {
        Self::start_with_fsync("everysec")
    }

    fn start_with_fsync(fsync: &'static str) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var("FF_REQUIRE_REDIS").as_deref() != Ok("1"),
                "redis-server is not installed and FF_REQUIRE_REDIS=1"
            );
            eprintln!(
                "\n*** SKIPPED: redis-server is not installed; this Redis test did not run ***\n"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let dir = std::env::temp_dir().join(format!("ff-redis-{}", ff_traits::unique_id()));
        std::fs::create_dir_all(&dir).expect("redis directory");
        let mut server = Self {
            port,
            dir,
            fsync,
            child: None,
        };
        server.spawn();
        Some(server)
    }

    /// Starts `redis-server` under a small shell that SIGKILLs it when
    /// this process's end of its stdin closes: when the server is dropped,
    /// and also when the test process dies or exits without dropping it (a
    /// server kept in a `static`), so no server outlives its tests.
    fn spawn(&mut self) {
        let child = Command::new("sh")
            .args([
                "-c",
                "redis-server \"$@\" & pid=$!; cat >/dev/null; kill -9 $pid; wait $pid",
                "sh",
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                &self.dir.to_string_lossy(),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                self.fsync,
                "--protected-mode",
                "no",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.ping() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// `redis://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
