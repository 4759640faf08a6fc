//! A real Redis Sentinel deployment for tests: a master, a replica and
//! three Sentinels (quorum 2), all `redis-server` processes on loopback
//! ports, stopped on drop. [`SentinelSet::kill_master`] SIGKILLs the
//! master; the Sentinels promote the replica; [`SentinelSet::rejoin`]
//! starts the killed node again as a replica, so failovers can repeat.
//!
//! Readiness is read with `redis-cli` (installed with `redis-server`).

use std::time::{Duration, Instant};

use crate::redis::{RedisServer, cli};

/// The name the Sentinels monitor the master by.
pub const MASTER_NAME: &str = "ffmaster";

/// How long the Sentinels wait before judging the master down.
const DOWN_AFTER_MS: u64 = 1_000;

/// A master, a replica, three Sentinels.
#[derive(Debug)]
pub struct SentinelSet {
    /// The two data nodes; which is the master changes with failovers.
    nodes: [RedisServer; 2],
    sentinels: Vec<RedisServer>,
}

impl SentinelSet {
    /// Starts the set and waits until every Sentinel knows the master, its
    /// replica and the other Sentinels; `None` (loud skip) where
    /// `redis-server` is missing and not required.
    ///
    /// # Panics
    /// When it does not come up.
    #[must_use]
    pub fn start() -> Option<Self> {
        let master = RedisServer::start()?;
        let replica = RedisServer::start_replica_of(&master)?;
        let master_port = master.port();
        let conf = move |port: u16| {
            format!(
                "port {port}\nbind 127.0.0.1\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
                 sentinel failover-timeout {MASTER_NAME} 4000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
        };
        let sentinels = (0..3)
            .map(|_| RedisServer::start_custom("always", None, Vec::new(), Some(&conf)))
            .collect::<Option<Vec<_>>>()?;
        let set = Self {
            nodes: [master, replica],
            sentinels,
        };
        set.wait_until_settled(Duration::from_secs(30));
        Some(set)
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/ffmaster`.
    #[must_use]
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The port of the current master, as the first Sentinel that answers
    /// says.
    #[must_use]
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let out = cli(
                s.port(),
                &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
            )?;
            out.lines().nth(1)?.trim().parse().ok()
        })
    }

    /// SIGKILLs the master's process; returns the port it had. Its data
    /// node stays down until [`rejoin`](Self::rejoin).
    ///
    /// # Panics
    /// When no Sentinel names a master.
    pub fn kill_master(&mut self) -> u16 {
        let old = self.master_port().expect("a master");
        let i = self
            .nodes
            .iter()
            .position(|n| n.port() == old)
            .expect("the master is one of the nodes");
        self.nodes[i].kill();
        old
    }

    /// Waits until the Sentinels name a master other than `old`; returns
    /// its port.
    ///
    /// # Panics
    /// When that takes more than `within`.
    #[must_use]
    pub fn wait_for_new_master(&self, old: u16, within: Duration) -> u16 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(p) = self.master_port().filter(|p| *p != old) {
                return p;
            }
            assert!(Instant::now() < deadline, "no failover within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the killed node again (the Sentinels make it a replica of
    /// the new master) and waits until the set is whole.
    ///
    /// # Panics
    /// When it does not settle within 30 s.
    pub fn rejoin(&mut self, old: u16) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port() == old) {
            n.restart();
        }
        self.wait_until_settled(Duration::from_secs(30));
    }

    /// A whole failover: [`kill_master`](Self::kill_master), the wait for
    /// a new master (returned: the time from the kill), then
    /// [`rejoin`](Self::rejoin).
    ///
    /// # Panics
    /// As those.
    pub fn fail_over(&mut self) -> Duration {
        let killed_at = Instant::now();
        let old = self.kill_master();
        let _ = self.wait_for_new_master(old, Duration::from_secs(30));
        let promoted = killed_at.elapsed();
        self.rejoin(old);
        promoted
    }

    /// Waits until every Sentinel sees the master `ok` with one replica and
    /// the two other Sentinels, and the replica's link is up.
    fn wait_until_settled(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let settled = self.sentinels.iter().all(|s| {
                cli(s.port(), &["INFO", "sentinel"]).is_some_and(|info| {
                    info.contains("status=ok")
                        && info.contains("slaves=1")
                        && info.contains("sentinels=3")
                })
            }) && self.replica_linked();
            if settled {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Sentinel set did not settle within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn replica_linked(&self) -> bool {
        let Some(master) = self.master_port() else {
            return false;
        };
        self.nodes.iter().filter(|n| n.port() != master).all(|n| {
            cli(n.port(), &["INFO", "replication"])
                .is_some_and(|i| i.contains("master_link_status:up"))
        })
    }
}
