//! Every model, correct and with each seeded bug: the correct one passes
//! every property over every interleaving within its bounds; each bug is
//! found. State counts are printed (`--nocapture`).

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use ff_models::Variant;
use ff_models::claim::ClaimModel;
use ff_models::cleanup::CleanupModel;
use ff_models::redis_lock::LockModel;
use stateright::{Checker, Model};

/// Explores `model` whole (at most 60 s); returns the checker.
fn explore<M>(name: &str, model: M) -> impl Checker<M>
where
    M: Model + Send + Sync + 'static,
    M::State: std::fmt::Debug + std::hash::Hash + Send + Sync + Clone + PartialEq,
    M::Action: std::fmt::Debug + Send + Sync + Clone + PartialEq,
{
    let started = Instant::now();
    let checker = model
        .checker()
        .threads(2)
        .timeout(Duration::from_secs(60))
        .spawn_bfs()
        .join();
    println!(
        "{name}: {} states ({} unique), depth {}, {:.1} s",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed().as_secs_f64()
    );
    assert!(checker.is_done(), "{name}: not explored whole within 60 s");
    checker
}

#[test]
fn the_claim_protocol_holds() {
    explore("claim", ClaimModel::new(Variant::Correct)).assert_properties();
}

#[test]
fn a_completion_without_compare_and_set_completes_twice() {
    let checker = explore(
        "claim, blind completion",
        ClaimModel::new(Variant::TakeoverWithoutCas),
    );
    let path = checker.assert_any_discovery("at most one effective completion");
    let steps = path.into_actions();
    println!("found in {} steps: {steps:?}", steps.len());
}

#[test]
fn a_claim_never_taken_over_never_completes() {
    let checker = explore("claim, no takeover", ClaimModel::new(Variant::NoTakeover));
    let path = checker.assert_any_discovery("once faults stop, it completes within K steps");
    let steps = path.into_actions();
    println!("found in {} steps: {steps:?}", steps.len());
}

#[test]
fn cleanup_keeps_every_commit() {
    explore("cleanup", CleanupModel::new(Variant::Correct)).assert_properties();
}

#[test]
fn the_old_cleanup_order_loses_a_commit() {
    let checker = explore(
        "cleanup, old order",
        CleanupModel::new(Variant::OldCleanupOrder),
    );
    let path = checker.assert_any_discovery("no commit the agent made is unreachable");
    let steps = path.into_actions();
    println!("found in {} steps: {steps:?}", steps.len());
}

#[test]
fn the_redis_lock_never_has_two_effective_holders() {
    explore("redis lock", LockModel::new(Variant::Correct)).assert_properties();
}

#[test]
fn a_takeover_without_compare_and_set_makes_two_holders() {
    let checker = explore(
        "redis lock, takeover without compare-and-set",
        LockModel::new(Variant::TakeoverWithoutCas),
    );
    let path = checker.assert_any_discovery("no two effective holders");
    let steps = path.into_actions();
    println!("found in {} steps: {steps:?}", steps.len());
}
