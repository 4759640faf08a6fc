//! The library and the `ff` command in one repository see the same
//! records: an embedder who opens the JSON store through its documented
//! constructor writes JSON records only, where `ff --store json` reads
//! them, and reads what `ff` wrote.

use crate::common::{code, ff, stdout_json};
use ff_testkit::git::TestRepo;
use ff_worktree::{Cleanup, WorktreeConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_on_the_json_store_shares_records_with_ff() {
    let repo = TestRepo::new();
    let dir = repo.path();
    let from_cli = stdout_json(&ff(dir, &["--store", "json", "create", "5", "--json"]));

    let manager = ff_worktree::open_json(WorktreeConfig::new(dir))
        .await
        .expect("open_json");
    let seen = manager.get("5").await.expect("get").expect("ff's worktree");
    assert_eq!(seen.id, from_cli["id"].as_str().expect("id"));
    let mine = manager
        .create_worktree("6")
        .await
        .expect("create 6")
        .worktree;

    let state = ff_worktree::locate(&WorktreeConfig::new(dir))
        .await
        .expect("locate")
        .state;
    let records: Vec<_> = std::fs::read_dir(state.json_records())
        .expect("JSON records")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(
        records.len(),
        4,
        "per worktree, one JSON record for it and one for its slot"
    );
    assert!(
        !state.sqlite().exists(),
        "the JSON constructor must not open the SQLite store"
    );

    let listed = stdout_json(&ff(dir, &["--store", "json", "list", "--json"]));
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|w| w["id"].as_str())
        .collect();
    assert!(
        ids.contains(&mine.id.as_str()),
        "ff lists the library's worktree: {ids:?}"
    );

    manager
        .cleanup_worktree("5", Cleanup::Safe)
        .await
        .expect("the library cleans up ff's worktree");
    let gone = ff(dir, &["--store", "json", "get", "5", "--json"]);
    assert_eq!(code(&gone), 65, "{}", String::from_utf8_lossy(&gone.stderr));
}
