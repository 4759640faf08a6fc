//! A real `redis-server` for tests: started on a free loopback port in a
//! temporary directory, with append-only persistence (so a restart keeps
//! the data, as a production server would), stopped on drop.
//!
//! [`RedisServer::start_tls`] starts one that speaks only TLS, with a CA,
//! a server and a client certificate it generates ([`TlsFiles`]).
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
    tls: Option<TlsFiles>,
    /// Arguments after the usual ones (`--replicaof`, say).
    extra: Vec<String>,
    /// A Sentinel, configured by `<dir>/sentinel.conf`, instead of a server.
    sentinel: bool,
    child: Option<Child>,
}

/// How a TLS server is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsSetup {
    /// The server refuses clients without a certificate signed by its CA.
    pub require_client_certificate: bool,
    /// The server's certificate expired (yesterday).
    pub expired_server_certificate: bool,
}

/// The PEM files of a TLS server, in its directory.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// Another CA, which signed nothing here (for wrong-CA tests).
    pub other_ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// A client certificate the CA signed, and its key.
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
    /// Whether the server asks for client certificates.
    pub require_client_certificate: bool,
}

impl TlsFiles {
    /// Generates a CA, a server certificate for `127.0.0.1` and
    /// `localhost`, a client certificate, and a second, unrelated CA.
    ///
    /// # Panics
    /// When a certificate cannot be made or written.
    #[must_use]
    pub fn generate(dir: &std::path::Path, setup: TlsSetup) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let ca = |cn: &str| {
            let key = KeyPair::generate().expect("CA key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params.self_signed(&key).expect("CA certificate");
            (params, key, cert)
        };
        let (ca_params, ca_key, ca_cert) = ca("ForgeFlow test CA");
        let (_, _, other_cert) = ca("Some other CA");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf = |names: Vec<String>, expired: bool| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            if expired {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_secs();
                let days_ago = |d: u64| {
                    rcgen::date_time_ymd(1970, 1, 1)
                        + std::time::Duration::from_secs(now - d * 86_400)
                };
                params.not_before = days_ago(30);
                params.not_after = days_ago(1);
            }
            let cert = params.signed_by(&key, &issuer).expect("certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            setup.expired_server_certificate,
        );
        let (client_cert, client_key) = leaf(vec!["forgeflow-client".into()], false);
        Self {
            ca: write("ca.pem", ca_cert.pem()),
            other_ca: write("other-ca.pem", other_cert.pem()),
            server_cert: write("server.pem", server_cert),
            server_key: write("server.key", server_key),
            client_cert: write("client.pem", client_cert),
            client_key: write("client.key", client_key),
            require_client_certificate: setup.require_client_certificate,
        }
    }
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

    /// As [`start`](Self::start), publishing every keyspace event
    /// (`notify-keyspace-events KA`), so the Redis backends offer change
    /// feeds.
    #[must_use]
    pub fn start_with_keyspace_events() -> Option<Self> {
        Self::start_custom(
            "always",
            None,
            vec!["--notify-keyspace-events".into(), "KA".into()],
            None,
        )
    }

    /// As [`start_with_keyspace_events`](Self::start_with_keyspace_events),
    /// with the append-only file synced once a second (see
    /// [`start_for_benchmarks`](Self::start_for_benchmarks)).
    #[must_use]
    pub fn start_for_benchmarks_with_keyspace_events() -> Option<Self> {
        Self::start_custom(
            "everysec",
            None,
            vec!["--notify-keyspace-events".into(), "KA".into()],
            None,
        )
    }

    /// As [`start`](Self::start), with the append-only file synced once a
    /// second, as production servers usually run (for benchmarks: `always`
    /// puts an fsync in every write). A SIGKILL may lose the last second.
    #[must_use]
    pub fn start_for_benchmarks() -> Option<Self> {
        Self::start_with_fsync("everysec")
    }

    /// As [`start`](Self::start), speaking only TLS (no plain port), with
    /// certificates it generates: [`tls`](Self::tls) names them, and
    /// [`url`](Self::url) is a `rediss://` URL trusting its CA (and giving
    /// the client certificate when the server requires one).
    #[must_use]
    pub fn start_tls(setup: TlsSetup) -> Option<Self> {
        Self::start_in_mode("always", Some(setup))
    }

    /// A replica of `master` (`--replicaof`), waiting until its link to
    /// the master is up; `None` as [`start`](Self::start).
    ///
    /// # Panics
    /// When it does not come up or never links.
    #[must_use]
    pub fn start_replica_of(master: &Self) -> Option<Self> {
        let replica = Self::start_custom(
            "always",
            None,
            vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                master.port().to_string(),
            ],
            None,
        )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let linked = cli(replica.port(), &["INFO", "replication"])
                .is_some_and(|i| i.contains("master_link_status:up"));
            if linked {
                return Some(replica);
            }
            assert!(Instant::now() < deadline, "the replica never linked");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// As [`start_tls`](Self::start_tls), with the append-only file synced
    /// once a second (see [`start_for_benchmarks`](Self::start_for_benchmarks)).
    #[must_use]
    pub fn start_tls_for_benchmarks(setup: TlsSetup) -> Option<Self> {
        Self::start_in_mode("everysec", Some(setup))
    }

    fn start_with_fsync(fsync: &'static str) -> Option<Self> {
        Self::start_in_mode(fsync, None)
    }

    fn start_in_mode(fsync: &'static str, tls: Option<TlsSetup>) -> Option<Self> {
        Self::start_custom(fsync, tls, Vec::new(), None)
    }

    /// Starts a server with `extra` arguments, or (with `sentinel_conf`) a
    /// Sentinel configured by that text.
    pub(crate) fn start_custom(
        fsync: &'static str,
        tls: Option<TlsSetup>,
        extra: Vec<String>,
        sentinel_conf: Option<&dyn Fn(u16) -> String>,
    ) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            crate::skip(
                "FF_REQUIRE_REDIS",
                "redis-server is not installed; this Redis test did not run",
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let dir =
            std::env::temp_dir().join(format!("ff-redis-{}", ff_traits::identity::unique_id()));
        std::fs::create_dir_all(&dir).expect("redis directory");
        let tls = tls.map(|setup| TlsFiles::generate(&dir, setup));
        if let Some(conf) = sentinel_conf {
            std::fs::write(dir.join("sentinel.conf"), conf(port)).expect("sentinel.conf");
        }
        let mut server = Self {
            port,
            dir,
            fsync,
            tls,
            extra,
            sentinel: sentinel_conf.is_some(),
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
        let port = self.port.to_string();
        let mut ports: Vec<String> = vec!["--port".into(), port.clone()];
        if let Some(tls) = &self.tls {
            let path = |p: &PathBuf| p.to_string_lossy().into_owned();
            ports = vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port,
                "--tls-cert-file".into(),
                path(&tls.server_cert),
                "--tls-key-file".into(),
                path(&tls.server_key),
                "--tls-ca-cert-file".into(),
                path(&tls.ca),
                "--tls-auth-clients".into(),
                if tls.require_client_certificate {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ];
        }
        let dir = self.dir.to_string_lossy().into_owned();
        let mut args: Vec<String> = if self.sentinel {
            vec![
                format!("{dir}/sentinel.conf"),
                "--sentinel".into(),
                "--port".into(),
                self.port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir,
            ]
        } else {
            let mut a = ports;
            a.extend(
                [
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    &dir,
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    self.fsync,
                    "--protected-mode",
                    "no",
                ]
                .map(str::to_owned),
            );
            a
        };
        args.extend(self.extra.iter().cloned());
        let child = Command::new("sh")
            .args([
                "-c",
                "redis-server \"$@\" & pid=$!; cat >/dev/null; kill -9 $pid; wait $pid",
                "sh",
            ])
            .args(&args)
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
        if self.tls.is_some() {
            // Listening is as far as a plain check can see; clients retry
            // their first connection anyway.
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// `redis://127.0.0.1:PORT`; for a TLS server,
    /// `rediss://127.0.0.1:PORT?ca=…` (with `&cert=…&key=…` when it
    /// requires a client certificate).
    #[must_use]
    pub fn url(&self) -> String {
        match &self.tls {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(tls) => {
                let mut url = format!("{}?ca={}", self.url_without_files(), tls.ca.display());
                if tls.require_client_certificate {
                    url.push_str(&format!(
                        "&cert={}&key={}",
                        tls.client_cert.display(),
                        tls.client_key.display()
                    ));
                }
                url
            }
        }
    }

    /// For a TLS server, `rediss://127.0.0.1:PORT` alone (trusting only
    /// the system's roots); otherwise as [`url`](Self::url).
    #[must_use]
    pub fn url_without_files(&self) -> String {
        match &self.tls {
            None => self.url(),
            Some(_) => format!("rediss://127.0.0.1:{}", self.port),
        }
    }

    /// The certificates of a TLS server.
    #[must_use]
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
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

    /// Closes every client connection, as Redis does to idle clients
    /// under `timeout` and Sentinel to a node it reconfigures: each
    /// client's next call finds its connection gone. A plain (not TLS)
    /// server.
    ///
    /// # Panics
    /// When `redis-cli` cannot do it.
    pub fn drop_client_connections(&self) {
        for kind in ["normal", "pubsub"] {
            cli(self.port, &["CLIENT", "KILL", "TYPE", kind]).expect("redis-cli CLIENT KILL");
        }
    }

    /// `redis-cli` with `args` against this (plain) server: its output.
    ///
    /// # Panics
    /// When `redis-cli` fails.
    pub fn cli(&self, args: &[&str]) -> String {
        cli(self.port, args).unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
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

/// `redis-cli -h 127.0.0.1 -p PORT ARGS…`'s output, if it ran and
/// succeeded.
pub(crate) fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
