//! The `ff` binary on the Redis deployments teams run: a Cluster of three
//! masters and a Sentinel set (master, replica, three Sentinels), each
//! started by the test: a worktree created and a lock taken, with its
//! records and locks in Redis.

use crate::common::{code, ff, stdout_json};
use ff_testkit::git::TestRepo;

fn create_and_lock(url: &str) {
    let repo = TestRepo::new();
    let dir = repo.path();
    let created = stdout_json(&ff(
        dir,
        &["--lock", url, "--store", url, "create", "7", "--json"],
    ));
    assert_eq!(created["reused"], false, "{created}");
    let again = stdout_json(&ff(
        dir,
        &["--lock", url, "--store", url, "create", "7", "--json"],
    ));
    assert_eq!(again["reused"], true, "the record is in Redis: {again}");
    let out = ff(dir, &["--lock", url, "lock", "repo/deploy", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    // `ff locks` says which node answered.
    let out = ff(dir, &["--lock", url, "locks"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(from redis"), "{text}");
    assert!(text.contains("127.0.0.1:"), "{text}");
}

#[test]
fn ff_on_a_redis_cluster() {
    let Some(cluster) = ff_testkit::cluster::RedisCluster::start() else {
        return;
    };
    create_and_lock(&cluster.url());
}

#[test]
fn ff_through_redis_sentinel() {
    let Some(set) = ff_testkit::sentinel::SentinelSet::start() else {
        return;
    };
    create_and_lock(&set.url());
    // A master name the Sentinels do not know: unavailable, named.
    let unknown = set
        .url()
        .replace(ff_testkit::sentinel::MASTER_NAME, "nosuchmaster");
    let repo = TestRepo::new();
    let out = ff(repo.path(), &["--lock", &unknown, "locks"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 69, "{stderr}");
    assert!(stderr.contains("no master from the Sentinels"), "{stderr}");
}
