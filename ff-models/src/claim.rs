//! The idempotency claim (`ff-idempotency`): three processes race to run
//! one operation exactly once.
//!
//! The record is absent, pending (owner, revision, lease age) or
//! completed. A process claims by conditional create; takes over a pending
//! record whose lease ran out by compare-and-set on its revision (the
//! revision rises); renews its lease by compare-and-set on revision and
//! owner, and learns of a loss that way; completes by compare-and-set on
//! revision and owner, or finds it lost and starts again. A claim whose
//! claimant crashed (the process that made it is gone: it restarted since)
//! is taken over at once, lease or not, by the same compare-and-set, as a
//! process on the claimant's host does; a paused claimant is alive and
//! keeps its lease. Processes crash (forgetting everything, and coming back
//! as a new process) and pause (time passes without them) up to a fault
//! budget. Bounds: 3 processes, 3 faults, a lease of 3 ticks, one
//! renewal per claim.
//!
//! Properties: **at most one effective completion** (a completion the
//! completing process was told succeeded); and, bounded, **once faults
//! stop, the operation completes within `K` steps** while some process
//! is live (not paused).

use stateright::{Model, Property};

use crate::Variant;

/// Processes.
pub const PROCESSES: usize = 3;
/// Crashes and pauses, in all.
pub const FAULTS: u8 = 3;
/// Ticks a lease lasts.
pub const LEASE: u8 = 3;
/// Steps after the last fault within which the operation must complete.
pub const K: u8 = 3 * LEASE + 6;

/// The record in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Record {
    /// No record.
    Absent,
    /// Claimed, not done.
    Pending {
        /// Who claimed it.
        owner: u8,
        /// Which life of the owner's claimed it: a crash starts a new one,
        /// so a claim of an earlier life is a dead claimant's.
        life: u8,
        /// Rises with every takeover.
        revision: u8,
        /// Ticks since it was claimed or renewed (saturating at the lease).
        age: u8,
    },
    /// Done.
    Completed,
}

/// What one process knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Holds nothing; will claim.
    Idle,
    /// Believes it holds the claim at this revision.
    Holding {
        /// The revision it claimed.
        revision: u8,
        /// Renewals done.
        renewals: u8,
    },
    /// Saw the operation completed.
    Done,
}

/// One process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Process {
    /// What it knows.
    pub phase: Phase,
    /// Paused: takes no step until resumed.
    pub paused: bool,
    /// Crashes so far: this process's current life.
    pub life: u8,
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The store's record.
    pub record: Record,
    /// The processes.
    pub processes: [Process; PROCESSES],
    /// Faults so far.
    pub faults: u8,
    /// Steps since the last fault (saturating past `K`).
    pub since_quiet: u8,
    /// Completions their process was told succeeded.
    pub completions: u8,
}

/// A step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create the record, or take over an expired one, or see it done.
    Claim(usize),
    /// Extend the lease.
    Renew(usize),
    /// Record the result.
    Complete(usize),
    /// Die, forgetting everything.
    Crash(usize),
    /// Stop taking steps for a while.
    Pause(usize),
    /// Take steps again.
    Resume(usize),
    /// Time passes (only when no process can take a step).
    Tick,
}

/// The claim protocol, as [`Variant`] says.
#[derive(Debug, Clone, Copy)]
pub struct ClaimModel {
    variant: Variant,
}

impl ClaimModel {
    /// The model of `variant`: [`Variant::Correct`];
    /// [`Variant::TakeoverWithoutCas`] completes by writing its result
    /// over whatever record it finds; [`Variant::NoTakeover`] never takes over
    /// an expired claim.
    #[must_use]
    pub fn new(variant: Variant) -> Self {
        Self { variant }
    }

    fn process_step(&self, s: &State, a: Action) -> Option<State> {
        let mut n = s.clone();
        match a {
            Action::Claim(p) => {
                let me = &mut n.processes[p];
                if me.paused || me.phase != Phase::Idle {
                    return None;
                }
                match s.record {
                    Record::Absent => {
                        n.record = Record::Pending {
                            owner: p as u8,
                            life: me.life,
                            revision: 1,
                            age: 0,
                        };
                        me.phase = Phase::Holding {
                            revision: 1,
                            renewals: 0,
                        };
                    }
                    Record::Completed => me.phase = Phase::Done,
                    Record::Pending {
                        revision,
                        age,
                        owner,
                        life,
                    } if (age >= LEASE || s.processes[owner as usize].life != life)
                        && self.variant != Variant::NoTakeover =>
                    {
                        n.record = Record::Pending {
                            owner: p as u8,
                            life: me.life,
                            revision: revision + 1,
                            age: 0,
                        };
                        me.phase = Phase::Holding {
                            revision: revision + 1,
                            renewals: 0,
                        };
                    }
                    Record::Pending { .. } => return None,
                }
            }
            Action::Renew(p) => {
                let Phase::Holding { revision, renewals } = s.processes[p].phase else {
                    return None;
                };
                if s.processes[p].paused || renewals >= 1 {
                    return None;
                }
                match s.record {
                    Record::Pending {
                        owner,
                        life,
                        revision: r,
                        age,
                    } if owner == p as u8 && r == revision => {
                        if age == 0 {
                            return None;
                        }
                        n.record = Record::Pending {
                            owner,
                            life,
                            revision: r,
                            age: 0,
                        };
                        n.processes[p].phase = Phase::Holding {
                            revision,
                            renewals: renewals + 1,
                        };
                    }
                    // The renewal fails: the loss is noticed.
                    _ => n.processes[p].phase = Phase::Idle,
                }
            }
            Action::Complete(p) => {
                let Phase::Holding { revision, .. } = s.processes[p].phase else {
                    return None;
                };
                if s.processes[p].paused {
                    return None;
                }
                let ours = matches!(s.record, Record::Pending { owner, revision: r, .. }
                    if owner == p as u8 && r == revision);
                // The bug: a plain write of the result over whatever is there.
                let blind =
                    self.variant == Variant::TakeoverWithoutCas && s.record != Record::Absent;
                if ours || blind {
                    n.record = Record::Completed;
                    n.completions += 1;
                    n.processes[p].phase = Phase::Done;
                } else {
                    // Lost meanwhile: start again.
                    n.processes[p].phase = Phase::Idle;
                }
            }
            _ => return None,
        }
        n.since_quiet = (n.since_quiet + 1).min(K + 1);
        Some(n)
    }

    fn process_actions(p: usize) -> [Action; 3] {
        [Action::Claim(p), Action::Renew(p), Action::Complete(p)]
    }
}

impl Model for ClaimModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            record: Record::Absent,
            processes: [Process {
                phase: Phase::Idle,
                paused: false,
                life: 0,
            }; PROCESSES],
            faults: 0,
            since_quiet: 0,
            completions: 0,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        if s.record == Record::Completed && s.processes.iter().all(|p| p.phase == Phase::Done) {
            return;
        }
        let mut productive = false;
        for p in 0..PROCESSES {
            for a in Self::process_actions(p) {
                if self.process_step(s, a).is_some() {
                    actions.push(a);
                    productive = true;
                }
            }
            let me = s.processes[p];
            if s.faults < FAULTS && me.phase != Phase::Done {
                actions.push(Action::Crash(p));
                if !me.paused {
                    actions.push(Action::Pause(p));
                }
            }
            if me.paused {
                actions.push(Action::Resume(p));
            }
        }
        // Processes are fast: time passes only when none can step.
        if !productive && s.record != Record::Completed && s.since_quiet <= K {
            actions.push(Action::Tick);
        }
    }

    fn next_state(&self, s: &State, a: Action) -> Option<State> {
        let mut n = s.clone();
        match a {
            Action::Crash(p) => {
                n.processes[p] = Process {
                    phase: Phase::Idle,
                    paused: false,
                    life: s.processes[p].life + 1,
                };
                n.faults += 1;
                n.since_quiet = 0;
            }
            Action::Pause(p) => {
                n.processes[p].paused = true;
                n.faults += 1;
                n.since_quiet = 0;
            }
            Action::Resume(p) => {
                n.processes[p].paused = false;
                n.since_quiet = 0;
            }
            Action::Tick => {
                if let Record::Pending {
                    owner,
                    life,
                    revision,
                    age,
                } = s.record
                {
                    n.record = Record::Pending {
                        owner,
                        life,
                        revision,
                        age: (age + 1).min(LEASE),
                    };
                }
                n.since_quiet = (n.since_quiet + 1).min(K + 1);
            }
            step => return self.process_step(s, step),
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("at most one effective completion", |_, s: &State| {
                s.completions <= 1
            }),
            Property::always(
                "once faults stop, it completes within K steps",
                // A live claimant: some process not paused.
                |_, s: &State| {
                    s.record == Record::Completed
                        || s.since_quiet <= K
                        || s.processes.iter().all(|p| p.paused)
                },
            ),
            Property::sometimes("completed after a takeover", |_, s: &State| {
                s.record == Record::Completed && s.faults > 0
            }),
            Property::sometimes(
                "a dead claimant's claim taken over before its lease ran out",
                |_, s: &State| {
                    matches!(s.record, Record::Pending { revision, age, .. } if revision > 1 && age == 0)
                        && s.processes.iter().any(|p| p.life > 0)
                },
            ),
        ]
    }
}
