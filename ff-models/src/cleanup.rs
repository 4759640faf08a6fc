//! `cleanup_worktree` against an agent that commits in the worktree
//! whenever it likes, holding none of ForgeFlow's locks, and a create of
//! the issue that follows the cleanup (the lock orders the two).
//!
//! Commits form a graph from the base commit `0`. The cleanup reads the
//! branch tip it judges, removes the worktree (after which nothing can
//! commit through it), then retires the branch: reads the tip again,
//! keeps it under the archive when the base lacks it, and deletes the
//! branch only by compare-and-delete on the tip it kept, reading again
//! when the branch moved. The agent commits on the worktree's branch while
//! the worktree exists. Bounds: 5 commits.
//!
//! Property: **no commit the agent made is unreachable** (from a branch or
//! an archive ref), and a sometimes-property that the race is reached: a
//! commit lands between the judgement and the removal.

use stateright::{Model, Property};

use crate::Variant;

/// Commits the agent makes, at most.
pub const COMMITS: u8 = 5;
const MAX: usize = COMMITS as usize + 1;

/// Where the cleanup is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cleanup {
    /// Not begun.
    Idle,
    /// Judged the branch at this tip (and, in the old order, archived it).
    Judged(u8),
    /// The worktree is removed.
    Removed,
    /// Kept this tip under the archive; about to delete the branch at it.
    Kept(u8),
    /// Done: branch and record gone.
    Done,
}

/// The repository, the worktree and the cleanup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Parent of each commit (index = commit; `0` is the base).
    pub parents: [u8; MAX],
    /// Commits made so far, the base included.
    pub made: u8,
    /// Tips of the first branch (cleaned up) and of the branch the
    /// create afterwards makes; `None` when deleted or not made.
    pub branches: [Option<u8>; 2],
    /// Which branch the worktree is on, when it exists.
    pub worktree: Option<usize>,
    /// Tips kept under `refs/ff/archive/…`, as a bit set.
    pub archived: u16,
    /// The cleanup.
    pub cleanup: Cleanup,
    /// Commits the agent was told it made, as a bit set.
    pub agent: u16,
    /// Whether a commit landed after the judgement, before the removal.
    pub raced: bool,
}

/// A step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The agent commits in the worktree.
    Commit,
    /// The cleanup reads the tip it judges.
    Judge,
    /// The cleanup removes the worktree.
    Remove,
    /// The cleanup reads the tip and keeps it (when the base lacks it).
    Keep,
    /// The cleanup deletes the branch (by compare-and-delete on the kept
    /// tip, or in the old order whatever it points at).
    Delete,
    /// A create of the issue after the cleanup: a new branch from the base.
    Create,
}

/// The cleanup protocol, as [`Variant`] says.
#[derive(Debug, Clone, Copy)]
pub struct CleanupModel {
    variant: Variant,
}

impl CleanupModel {
    /// The model of `variant`: [`Variant::Correct`], or
    /// [`Variant::OldCleanupOrder`] (archive the tip judged, remove the
    /// worktree, `branch -D`).
    #[must_use]
    pub fn new(variant: Variant) -> Self {
        Self { variant }
    }
}

/// Whether `commit` is `from` or one of its ancestors.
fn reaches(parents: &[u8; MAX], mut from: u8, commit: u8) -> bool {
    loop {
        if from == commit {
            return true;
        }
        if from == 0 {
            return false;
        }
        from = parents[usize::from(from)];
    }
}

impl State {
    fn reachable(&self, commit: u8) -> bool {
        self.branches
            .iter()
            .flatten()
            .any(|&tip| reaches(&self.parents, tip, commit))
            || (0..self.made)
                .filter(|a| self.archived & (1 << a) != 0)
                .any(|a| reaches(&self.parents, a, commit))
    }
}

impl Model for CleanupModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            parents: [0; MAX],
            made: 1,
            branches: [Some(0), None],
            worktree: Some(0),
            archived: 0,
            cleanup: Cleanup::Idle,
            agent: 0,
            raced: false,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.worktree.is_some() && s.made <= COMMITS {
            actions.push(Action::Commit);
        }
        actions.push(match s.cleanup {
            Cleanup::Idle => Action::Judge,
            Cleanup::Judged(_) => Action::Remove,
            Cleanup::Removed => {
                if self.variant == Variant::OldCleanupOrder {
                    Action::Delete
                } else {
                    Action::Keep
                }
            }
            Cleanup::Kept(_) => Action::Delete,
            Cleanup::Done => {
                if s.branches[1].is_none() {
                    Action::Create
                } else {
                    return;
                }
            }
        });
    }

    fn next_state(&self, s: &State, a: Action) -> Option<State> {
        let mut n = s.clone();
        let old = self.variant == Variant::OldCleanupOrder;
        match a {
            Action::Commit => {
                let branch = s.worktree?;
                let c = s.made;
                n.parents[usize::from(c)] = s.branches[branch]?;
                n.branches[branch] = Some(c);
                n.made += 1;
                n.agent |= 1 << c;
                if matches!(s.cleanup, Cleanup::Judged(_)) {
                    n.raced = true;
                }
            }
            Action::Judge => {
                let tip = s.branches[0]?;
                if old && tip != 0 {
                    // The old order kept the tip it judged, once.
                    n.archived |= 1 << tip;
                }
                n.cleanup = Cleanup::Judged(tip);
            }
            Action::Remove => {
                n.worktree = None;
                n.cleanup = Cleanup::Removed;
            }
            Action::Keep => match s.branches[0] {
                Some(tip) => {
                    if tip != 0 {
                        n.archived |= 1 << tip;
                    }
                    n.cleanup = Cleanup::Kept(tip);
                }
                None => n.cleanup = Cleanup::Done,
            },
            Action::Delete => match (old, s.cleanup) {
                (true, _) => {
                    n.branches[0] = None;
                    n.cleanup = Cleanup::Done;
                }
                (false, Cleanup::Kept(kept)) => {
                    if s.branches[0] == Some(kept) {
                        n.branches[0] = None;
                        n.cleanup = Cleanup::Done;
                    } else {
                        // It moved: judge again.
                        n.cleanup = Cleanup::Removed;
                    }
                }
                _ => return None,
            },
            Action::Create => {
                n.branches[1] = Some(0);
                n.worktree = Some(1);
            }
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("no commit the agent made is unreachable", |_, s: &State| {
                (1..s.made)
                    .filter(|c| s.agent & (1 << c) != 0)
                    .all(|c| s.reachable(c))
            }),
            Property::sometimes(
                "a commit lands between the judgement and the removal",
                |_, s: &State| s.raced,
            ),
            Property::sometimes("the cleanup finishes", |_, s: &State| {
                s.cleanup == Cleanup::Done
            }),
        ]
    }
}
