//! A real PostgreSQL server for tests, and a real pgbouncer in front of it.
//!
//! [`PgServer::start`] makes a cluster with `initdb` in a temporary
//! directory and starts `postgres` on a free loopback port, with password
//! (SCRAM) logins for the superuser `ff`. One cluster per test binary is
//! the intent: tests isolate themselves by schema.
//!
//! * **Where the programs are**: `FF_PG_BINDIR`, else `pg_config
//!   --bindir`, else the newest `/usr/lib/postgresql/*/bin` (Debian keeps
//!   `initdb` off the PATH), else the PATH.
//! * **As root** (CI), `initdb`, the server and pgbouncer run as the
//!   unprivileged `postgres` user (or `nobody`), which owns the temporary
//!   directory: PostgreSQL refuses to run as root.
//! * A server outlives no test process: it runs under a small shell that
//!   stops it (fast shutdown) when this process's end of its stdin closes.
//! * Where PostgreSQL is not installed, [`PgServer::start`] prints a loud
//!   skip and returns `None`, unless `FF_REQUIRE_POSTGRES=1`, when it
//!   panics (CI sets it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis::{TlsFiles, TlsSetup};

/// The superuser's name and password.
pub const USER: &str = "ff";
/// The superuser's password.
pub const PASSWORD: &str = "ff-test-secret";

/// One server for the whole test binary (each binary links its own copy
/// of this crate, so each has its own cluster); `None`, with a loud skip,
/// as [`PgServer::start`]. Tests sharing it isolate themselves by schema
/// ([`isolated`]).
#[must_use]
pub fn shared() -> Option<&'static PgServer> {
    static SERVER: std::sync::OnceLock<Option<PgServer>> = std::sync::OnceLock::new();
    SERVER.get_or_init(PgServer::start).as_ref()
}

/// A pgbouncer in front of [`shared`], for the whole test binary.
#[must_use]
pub fn shared_bouncer() -> Option<&'static PgBouncer> {
    static BOUNCER: std::sync::OnceLock<Option<PgBouncer>> = std::sync::OnceLock::new();
    BOUNCER
        .get_or_init(|| shared().and_then(PgBouncer::start))
        .as_ref()
}

/// `url` with a schema of its own (`?schema=t_<unique id>`), so tests
/// sharing a server never see each other's tables.
#[must_use]
pub fn isolated(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}schema=t_{}",
        ff_traits::identity::unique_id().to_lowercase()
    )
}

/// A running PostgreSQL server.
#[derive(Debug)]
pub struct PgServer {
    bindir: PathBuf,
    port: u16,
    dir: PathBuf,
    tls: Option<TlsFiles>,
    /// The network namespace it runs in, if not this process's.
    netns: Option<String>,
    /// The addresses it listens on (the first is where it is asked).
    listen: String,
    child: Option<Child>,
}

/// Who the server runs as: the current user, or (as root) an
/// unprivileged one.
#[cfg(unix)]
fn server_user() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for name in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 3
                && f[0] == name
                && let (Ok(u), Ok(g)) = (f[2].parse(), f[3].parse())
            {
                return Some((u, g));
            }
        }
    }
    panic!("running as root, and neither a postgres nor a nobody user to run PostgreSQL as")
}

/// The directory of `initdb`, `postgres`, `pg_ctl` and `psql`, if
/// PostgreSQL is installed.
#[must_use]
pub fn bindir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(d) = std::env::var_os("FF_PG_BINDIR").map(PathBuf::from) {
        return has(&d).then_some(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            let d = e.path().join("bin");
            has(&d).then_some((v, d))
        })
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).find(|d| has(d)))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A command that runs as the server's user.
fn as_server_user(program: impl AsRef<std::ffi::OsStr>) -> Command {
    #[cfg(unix)]
    {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = server_user() {
            use std::os::unix::process::CommandExt as _;
            cmd.uid(uid).gid(gid);
        }
        cmd
    }
    #[cfg(not(unix))]
    Command::new(program)
}

/// Gives `path` to the server's user (when running as root).
fn hand_over(path: &Path) {
    #[cfg(unix)]
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to the server's user");
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl PgServer {
    /// Starts one, or `None` (with a loud skip message) where PostgreSQL is
    /// missing and `FF_REQUIRE_POSTGRES` is not `1`.
    ///
    /// # Panics
    /// When it is missing and required, or does not come up.
    #[must_use]
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// As [`start`](Self::start), with TLS on (`hostssl` only: plain
    /// connections are refused), certificates it generates; with
    /// `require_client_certificate`, logins also need a client
    /// certificate the CA signed.
    #[must_use]
    pub fn start_tls(setup: TlsSetup) -> Option<Self> {
        Self::start_with(Some(setup))
    }

    fn start_with(tls: Option<TlsSetup>) -> Option<Self> {
        let Some(bindir) = bindir() else {
            crate::skip(
                "FF_REQUIRE_POSTGRES",
                "PostgreSQL (initdb, postgres) is not installed; this PostgreSQL test did not run",
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("ff-pg-{}", ff_traits::identity::unique_id()));
        std::fs::create_dir_all(&dir).expect("PostgreSQL directory");
        hand_over(&dir);
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("password file");
        hand_over(&pwfile);
        let out = as_server_user(bindir.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", USER, "-E", "UTF8", "--no-sync", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--locale=C"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(&dir)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tls = tls.map(|setup| {
            let files = TlsFiles::generate(&dir, setup);
            for f in [&files.server_cert, &files.server_key, &files.ca] {
                hand_over(f);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600))
                        .expect("chmod");
                }
            }
            let auth = if setup.require_client_certificate {
                "scram-sha-256 clientcert=verify-ca"
            } else {
                "scram-sha-256"
            };
            std::fs::write(
                dir.join("data/pg_hba.conf"),
                format!(
                    "local all all trust\nhostssl all all 127.0.0.1/32 {auth}\n\
                     hostnossl all all 127.0.0.1/32 reject\n"
                ),
            )
            .expect("pg_hba.conf");
            files
        });
        let mut server = Self {
            bindir,
            port: free_port(),
            dir,
            tls,
            netns: None,
            listen: "127.0.0.1".to_owned(),
            child: None,
        };
        server.spawn();
        Some(server)
    }

    /// As [`start`](Self::start), inside the network namespace `netns`
    /// (see [`crate::netns`]), listening on port 5432 of `listen` (a
    /// comma-separated list of the namespace's addresses).
    #[must_use]
    pub fn start_in_namespace(netns: &str, listen: &str) -> Option<Self> {
        let mut server = Self::start_with(None)?;
        server.stop();
        server.netns = Some(netns.to_owned());
        server.listen = listen.to_owned();
        server.port = 5432;
        // Logins from the namespace's links, not only loopback.
        std::fs::write(
            server.dir.join("data/pg_hba.conf"),
            "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n",
        )
        .expect("pg_hba.conf");
        server.spawn();
        Some(server)
    }

    /// A streaming replica of `primary` (`pg_basebackup -R`), started and
    /// caught up; `None` as [`start`](Self::start).
    ///
    /// # Panics
    /// When the base backup fails or the replica does not come up.
    #[must_use]
    pub fn start_replica_of(primary: &Self) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("ff-pg-{}", ff_traits::identity::unique_id()));
        std::fs::create_dir_all(&dir).expect("PostgreSQL directory");
        hand_over(&dir);
        let out = as_server_user(primary.bindir.join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                USER,
            ])
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-R", "-X", "stream", "--no-sync"])
            .env("PGPASSWORD", PASSWORD)
            .current_dir(&dir)
            .output()
            .expect("run pg_basebackup");
        assert!(
            out.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut replica = Self {
            bindir: primary.bindir.clone(),
            port: free_port(),
            dir,
            tls: None,
            netns: None,
            listen: "127.0.0.1".to_owned(),
            child: None,
        };
        replica.spawn();
        Some(replica)
    }

    /// Promotes a replica to a primary (`pg_ctl promote`), waiting until
    /// it accepts writes.
    ///
    /// # Panics
    /// When it cannot be promoted.
    pub fn promote(&self) {
        let out = as_server_user(self.bindir.join("pg_ctl"))
            .args(["promote", "-w", "-D"])
            .arg(self.dir.join("data"))
            .current_dir(&self.dir)
            .output()
            .expect("run pg_ctl promote");
        assert!(
            out.status.success(),
            "pg_ctl promote failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until the replica has replayed everything `primary` wrote
    /// so far.
    ///
    /// # Panics
    /// When it does not catch up within 20 s.
    pub fn catch_up_with(&self, primary: &Self) {
        let lsn = primary.psql("SELECT pg_current_wal_lsn()");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.psql(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) != "t" {
            assert!(Instant::now() < deadline, "the replica never caught up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn(&mut self) {
        let dir = self.dir.display().to_string();
        let mut args: Vec<String> = vec![
            "-D".into(),
            format!("{dir}/data"),
            "-p".into(),
            self.port.to_string(),
        ];
        let mut set = |k: &str, v: &str| {
            args.push("-c".into());
            args.push(format!("{k}={v}"));
        };
        let listen = self.listen.clone();
        set("listen_addresses", &listen);
        set("unix_socket_directories", &dir);
        set("max_connections", "300");
        set("shared_buffers", "32MB");
        set("logging_collector", "off");
        set("log_min_messages", "warning");
        if let Some(tls) = &self.tls {
            set("ssl", "on");
            set("ssl_cert_file", &tls.server_cert.display().to_string());
            set("ssl_key_file", &tls.server_key.display().to_string());
            set("ssl_ca_file", &tls.ca.display().to_string());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("postgres.log"))
            .expect("postgres.log");
        // Fast shutdown (SIGINT) when our end of stdin closes: on drop, and
        // when this process dies without dropping (a server in a static);
        // then the directory goes too, unless `stop` marked it kept (for a
        // restart).
        let _ = std::fs::remove_file(self.dir.join("keep"));
        let mut command = match &self.netns {
            None => as_server_user("sh"),
            // `ip netns exec` needs root; the server then drops to its user.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]);
                #[cfg(unix)]
                if let Some((uid, gid)) = server_user() {
                    c.args([
                        "setpriv",
                        &format!("--reuid={uid}"),
                        &format!("--regid={gid}"),
                    ])
                    .arg("--clear-groups");
                }
                c.arg("sh");
                c
            }
        };
        let child = command
            .args([
                "-c",
                "\"$0\" \"$@\" & pid=$!; cat >/dev/null; kill -INT $pid; wait $pid; \
                 [ -e keep ] || rm -rf \"$PWD\"",
            ])
            .arg(self.bindir.join("postgres"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .current_dir(&self.dir)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ready() {
            assert!(
                Instant::now() < deadline,
                "postgres did not come up; its log: {}",
                std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ready(&self) -> bool {
        let host = self.listen.split(',').next().unwrap_or("127.0.0.1").trim();
        let mut probe = match &self.netns {
            None => Command::new(self.bindir.join("pg_isready")),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns])
                    .arg(self.bindir.join("pg_isready"));
                c
            }
        };
        probe
            .args(["-q", "-h", host, "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `postgres://ff:…@ADDRESS:PORT/postgres`: the server as reached at
    /// `address` (one of a namespaced server's link addresses).
    #[must_use]
    pub fn url_at(&self, address: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@{address}:{}/postgres",
            self.port
        )
    }

    /// `postgres://ff:…@127.0.0.1:PORT/postgres`; for a TLS server with
    /// `?sslmode=verify-full&sslrootcert=…` (and the client certificate
    /// when it requires one).
    #[must_use]
    pub fn url(&self) -> String {
        let base = format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        );
        match &self.tls {
            None => base,
            Some(tls) => {
                let mut url = format!(
                    "{base}?sslmode=verify-full&sslrootcert={}",
                    tls.ca.display()
                );
                if tls.require_client_certificate {
                    url.push_str(&format!(
                        "&sslcert={}&sslkey={}",
                        tls.client_cert.display(),
                        tls.client_key.display()
                    ));
                }
                url
            }
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

    /// Runs `sql` with `psql` as the superuser; its output (unaligned,
    /// tuples only).
    ///
    /// # Panics
    /// When psql fails.
    #[must_use]
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bindir.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", &self.dir.display().to_string()])
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", "postgres"])
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stops the server (fast shutdown: sessions end, nothing is lost)
    /// and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::fs::write(self.dir.join("keep"), "");
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The server's directory (its log is `postgres.log` there).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real pgbouncer in transaction pooling mode in front of a
/// [`PgServer`]: every transaction may run on another server connection,
/// so nothing that relies on session state works through it.
#[derive(Debug)]
pub struct PgBouncer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PgBouncer {
    /// Starts one, or `None` (with a loud skip message) where `pgbouncer`
    /// is missing and `FF_REQUIRE_POSTGRES` is not `1`.
    ///
    /// # Panics
    /// When it is missing and required, or does not come up.
    #[must_use]
    pub fn start(server: &PgServer) -> Option<Self> {
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .or_else(|| {
                Command::new("pgbouncer")
                    .arg("--version")
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|_| PathBuf::from("pgbouncer"))
            });
        let Some(program) = program else {
            crate::skip(
                "FF_REQUIRE_POSTGRES",
                "pgbouncer is not installed; this pgbouncer test did not run",
            );
            return None;
        };
        let dir =
            std::env::temp_dir().join(format!("ff-pgbouncer-{}", ff_traits::identity::unique_id()));
        std::fs::create_dir_all(&dir).expect("pgbouncer directory");
        hand_over(&dir);
        let port = free_port();
        let users = dir.join("users.txt");
        std::fs::write(&users, format!("\"{USER}\" \"{PASSWORD}\"\n")).expect("users.txt");
        hand_over(&users);
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = scram-sha-256\nauth_file = {}\npool_mode = transaction\n\
                 max_client_conn = 1000\ndefault_pool_size = 20\n\
                 logfile = {}\nignore_startup_parameters = extra_float_digits,options\n",
                server.port(),
                users.display(),
                dir.join("pgbouncer.log").display()
            ),
        )
        .expect("pgbouncer.ini");
        hand_over(&ini);
        let child = as_server_user("sh")
            .args([
                "-c",
                "\"$0\" \"$@\" & pid=$!; cat >/dev/null; kill -INT $pid; wait $pid; rm -rf \"$PWD\"",
            ])
            .arg(program)
            .arg(&ini)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(&dir)
            .spawn()
            .expect("start pgbouncer");
        let bouncer = Self {
            port,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not come up; its log: {}",
                std::fs::read_to_string(bouncer.dir.join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(bouncer)
    }

    /// `postgres://ff:…@127.0.0.1:PORT/postgres`, through the bouncer.
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            drop(c.stdin.take());
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
