//! The Redis lock (`ff-lock-redis`): a key with a TTL holding the holder
//! and its fencing token; renewal by compare-and-set on the token, which
//! tells the holder when it lost the lock; release by compare-and-delete;
//! and same-host takeover: a waiter on the holder's host that sees the
//! holder dead deletes the key by compare-and-delete on the token it read,
//! then takes the lock.
//!
//! A holder counts its grant as valid for one tick less than the key's
//! TTL, on its own clock (which runs while it is paused), and acts only
//! while it is valid. Processes 0 and 1 share a host; process 2 is on
//! another. Bounds: a TTL of 3 ticks, 3 faults (crashes and pauses),
//! fencing tokens up to 6.
//!
//! Property: **no two effective holders** (holders whose grant is valid
//! as each sees it) at any moment.

use stateright::{Model, Property};

use crate::Variant;

/// Processes: 0 and 1 on one host, 2 on another.
pub const PROCESSES: usize = 3;
/// Ticks the key lives unless renewed.
pub const TTL: u8 = 3;
/// Crashes and pauses, in all.
pub const FAULTS: u8 = 3;
/// Grants in all (the fencing token's bound).
pub const GRANTS: u8 = 6;

/// The key in Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Who holds it.
    pub holder: u8,
    /// Its fencing token.
    pub token: u8,
    /// Ticks until it expires.
    pub ttl: u8,
}

/// What one process knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Wants the lock.
    Waiting,
    /// Holds it, by its own count, for `valid` more ticks.
    Holding {
        /// Its token.
        token: u8,
        /// Ticks its grant stays valid on its clock.
        valid: u8,
    },
    /// Saw the holder on its host dead, holding `token`; about to delete
    /// the key and take the lock.
    TakingOver {
        /// The token it read.
        token: u8,
    },
    /// Dead.
    Dead,
}

/// One process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Process {
    /// What it knows.
    pub phase: Phase,
    /// Paused: takes no step (its clock still runs).
    pub paused: bool,
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The key, when set.
    pub key: Option<Key>,
    /// The last token granted.
    pub fence: u8,
    /// The processes.
    pub processes: [Process; PROCESSES],
    /// Faults so far.
    pub faults: u8,
}

/// A step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `SET NX PX` with a new token.
    Acquire(usize),
    /// Extend the TTL if the key is still ours; else notice the loss.
    Renew(usize),
    /// Delete the key if it is still ours.
    Release(usize),
    /// Read the key and see its holder, on this host, dead.
    SeeDead(usize),
    /// Delete the key of the dead holder and take the lock.
    TakeOver(usize),
    /// Die.
    Crash(usize),
    /// Stop for a while.
    Pause(usize),
    /// Go on.
    Resume(usize),
    /// A tick of every clock.
    Tick,
}

/// The Redis lock, as [`Variant`] says.
#[derive(Debug, Clone, Copy)]
pub struct LockModel {
    variant: Variant,
}

impl LockModel {
    /// The model of `variant`: [`Variant::Correct`], or
    /// [`Variant::TakeoverWithoutCas`] (the takeover deletes whatever key
    /// is there, not only the dead holder's).
    #[must_use]
    pub fn new(variant: Variant) -> Self {
        Self { variant }
    }
}

fn same_host(a: usize, b: usize) -> bool {
    a < 2 && b < 2
}

fn grant(n: &mut State, p: usize) -> Option<()> {
    if n.fence >= GRANTS {
        return None;
    }
    n.fence += 1;
    n.key = Some(Key {
        holder: p as u8,
        token: n.fence,
        ttl: TTL,
    });
    n.processes[p].phase = Phase::Holding {
        token: n.fence,
        valid: TTL - 1,
    };
    Some(())
}

impl Model for LockModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            key: None,
            fence: 0,
            processes: [Process {
                phase: Phase::Waiting,
                paused: false,
            }; PROCESSES],
            faults: 0,
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        for p in 0..PROCESSES {
            if s.processes[p].phase == Phase::Dead {
                continue;
            }
            if !s.processes[p].paused {
                actions.extend([
                    Action::Acquire(p),
                    Action::Renew(p),
                    Action::Release(p),
                    Action::SeeDead(p),
                    Action::TakeOver(p),
                ]);
            }
            if s.faults < FAULTS {
                actions.push(Action::Crash(p));
                if !s.processes[p].paused {
                    actions.push(Action::Pause(p));
                }
            }
            if s.processes[p].paused {
                actions.push(Action::Resume(p));
            }
        }
        actions.push(Action::Tick);
    }

    fn next_state(&self, s: &State, a: Action) -> Option<State> {
        let mut n = s.clone();
        match a {
            Action::Acquire(p) => {
                if s.key.is_some() || s.processes[p].phase != Phase::Waiting {
                    return None;
                }
                grant(&mut n, p)?;
            }
            Action::Renew(p) => {
                let Phase::Holding { token, valid } = s.processes[p].phase else {
                    return None;
                };
                if valid == 0 {
                    return None;
                }
                match s.key {
                    Some(k) if k.token == token => {
                        if k.ttl == TTL {
                            return None;
                        }
                        n.key = Some(Key { ttl: TTL, ..k });
                        n.processes[p].phase = Phase::Holding {
                            token,
                            valid: TTL - 1,
                        };
                    }
                    // Lost: the holder is told at once and stops.
                    _ => n.processes[p].phase = Phase::Waiting,
                }
            }
            Action::Release(p) => {
                let Phase::Holding { token, .. } = s.processes[p].phase else {
                    return None;
                };
                if s.key.is_some_and(|k| k.token == token) {
                    n.key = None;
                }
                n.processes[p].phase = Phase::Waiting;
            }
            Action::SeeDead(p) => {
                let k = s.key?;
                let holder = usize::from(k.holder);
                if s.processes[p].phase != Phase::Waiting
                    || holder == p
                    || !same_host(p, holder)
                    || s.processes[holder].phase != Phase::Dead
                {
                    return None;
                }
                n.processes[p].phase = Phase::TakingOver { token: k.token };
            }
            Action::TakeOver(p) => {
                let Phase::TakingOver { token } = s.processes[p].phase else {
                    return None;
                };
                let still = s.key.is_some_and(|k| k.token == token);
                if still || (self.variant == Variant::TakeoverWithoutCas && s.key.is_some()) {
                    n.key = None;
                    n.processes[p].phase = Phase::Waiting;
                    grant(&mut n, p)?;
                } else {
                    // Someone else's key now (or none): wait as usual.
                    n.processes[p].phase = Phase::Waiting;
                }
            }
            Action::Crash(p) => {
                n.processes[p] = Process {
                    phase: Phase::Dead,
                    paused: false,
                };
                n.faults += 1;
            }
            Action::Pause(p) => {
                n.processes[p].paused = true;
                n.faults += 1;
            }
            Action::Resume(p) => n.processes[p].paused = false,
            Action::Tick => {
                let mut changed = false;
                if let Some(k) = s.key {
                    changed = true;
                    n.key = (k.ttl > 1).then_some(Key {
                        ttl: k.ttl - 1,
                        ..k
                    });
                }
                for p in &mut n.processes {
                    if let Phase::Holding { token, valid } = p.phase
                        && valid > 0
                    {
                        changed = true;
                        p.phase = Phase::Holding {
                            token,
                            valid: valid - 1,
                        };
                    }
                }
                if !changed {
                    return None;
                }
            }
        }
        Some(n)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("no two effective holders", |_, s: &State| {
                s.processes
                    .iter()
                    .filter(|p| matches!(p.phase, Phase::Holding { valid, .. } if valid > 0))
                    .count()
                    <= 1
            }),
            Property::sometimes("a dead holder is taken over on its host", |_, s: &State| {
                s.processes.iter().any(|p| p.phase == Phase::Dead)
                    && s.key.is_some_and(|k| {
                        usize::from(k.holder) < 2
                            && s.processes[usize::from(k.holder)].phase != Phase::Dead
                    })
                    && s.fence >= 2
            }),
        ]
    }
}
