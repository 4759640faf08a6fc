//! A real Redis Cluster for tests: three masters (no replicas) on
//! loopback ports, created with `redis-cli --cluster create`, stopped on
//! drop; [`RedisCluster::move_slots`] moves slots between masters while
//! clients run (a resharding, as operators do).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::redis::{RedisServer, cli};

/// Three masters sharing the 16,384 slots.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the cluster and waits until every node reports it `ok`;
    /// `None` (loud skip) where `redis-server` is missing and not
    /// required.
    ///
    /// # Panics
    /// When it does not come up.
    #[must_use]
    pub fn start() -> Option<Self> {
        let nodes = (0..3)
            .map(|_| {
                RedisServer::start_custom(
                    "everysec",
                    None,
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                    None,
                )
            })
            .collect::<Option<Vec<_>>>()?;
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok(Duration::from_secs(30));
        Some(cluster)
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    #[must_use]
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Moves `count` slots from the first master to the second, with their
    /// keys (`redis-cli --cluster reshard`), and waits until the cluster is
    /// `ok` again.
    ///
    /// # Panics
    /// When the resharding fails.
    pub fn move_slots(&self, count: u32) {
        let id = |n: &RedisServer| {
            cli(n.port(), &["CLUSTER", "MYID"])
                .expect("CLUSTER MYID")
                .trim()
                .to_owned()
        };
        let (from, to) = (id(&self.nodes[0]), id(&self.nodes[1]));
        let out = Command::new("redis-cli")
            .args([
                "--cluster",
                "reshard",
                &format!("127.0.0.1:{}", self.nodes[0].port()),
                "--cluster-from",
                &from,
                "--cluster-to",
                &to,
                "--cluster-slots",
                &count.to_string(),
                "--cluster-yes",
            ])
            .output()
            .expect("redis-cli --cluster reshard");
        assert!(
            out.status.success(),
            "reshard failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_until_ok(Duration::from_secs(30));
    }

    fn wait_until_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.nodes.iter().all(|n| {
            cli(n.port(), &["CLUSTER", "INFO"]).is_some_and(|i| i.contains("cluster_state:ok"))
        }) {
            assert!(
                Instant::now() < deadline,
                "the cluster was not ok within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
