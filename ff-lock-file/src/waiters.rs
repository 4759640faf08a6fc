//! Waiting for a kernel lock without polling, with timeouts and
//! cancellation.
//!
//! A blocking `flock` cannot be given a timeout or cancelled, so the wait
//! runs on a dedicated thread while the async waiter waits on a channel,
//! with its own timeout. One thread per lock file and mode serves every
//! waiter of this process, in arrival order: it blocks in the kernel, and
//! when it gets the lock it hands the open file (and with it the lock) to
//! the first waiter still waiting; if none is left, it closes the file,
//! which releases the lock. A waiter that times out or is dropped simply
//! drops its receiver, so no grant is ever left behind, and waiters that
//! give up never pile up threads.
//!
//! The threads are plain OS threads, not the runtime's blocking pool, so a
//! runtime that shuts down never waits for a lock held by someone else.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ff_traits::LockMode;
use tokio::sync::oneshot;

use crate::platform;

type Handoff = oneshot::Sender<io::Result<File>>;
type QueueKey = (PathBuf, LockMode);

#[derive(Default)]
struct Queue {
    waiters: VecDeque<Handoff>,
    thread_running: bool,
}

/// The per-process registry of waiting queues.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    queues: Mutex<HashMap<QueueKey, Arc<Mutex<Queue>>>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("waiters", &self.waiters.len())
            .field("thread_running", &self.thread_running)
            .finish()
    }
}

use ff_traits::lock_unpoisoned as lock;

impl Waiters {
    /// Joins the queue for `path` in `mode`; the receiver gets the locked
    /// file (or the error that stopped the wait).
    pub(crate) fn enqueue(
        &self,
        path: PathBuf,
        mode: LockMode,
    ) -> io::Result<oneshot::Receiver<io::Result<File>>> {
        let (tx, rx) = oneshot::channel();
        let queue = {
            let mut queues = lock(&self.queues);
            Arc::clone(queues.entry((path.clone(), mode)).or_default())
        };
        let start_thread = {
            let mut q = lock(&queue);
            q.waiters.push_back(tx);
            !std::mem::replace(&mut q.thread_running, true)
        };
        if start_thread {
            let for_thread = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name("ff-lock-wait".into())
                .spawn(move || wait_loop(&path, mode, &for_thread));
            if let Err(e) = spawned {
                let mut q = lock(&queue);
                q.thread_running = false;
                q.waiters.clear();
                return Err(e);
            }
        }
        Ok(rx)
    }
}

fn wait_loop(path: &Path, mode: LockMode, queue: &Mutex<Queue>) {
    loop {
        {
            let mut q = lock(queue);
            q.waiters.retain(|w| !w.is_closed());
            if q.waiters.is_empty() {
                q.thread_running = false;
                return;
            }
        }
        let locked = platform::open_lock_file(path, false).and_then(|file| {
            // Every mode but exclusive is a shared kernel lock; the record
            // of who holds which decides the rest (see `kernel`).
            if mode == LockMode::Exclusive {
                file.lock()?;
            } else {
                file.lock_shared()?;
            }
            Ok(file)
        });
        let mut outcome = Some(locked);
        let mut q = lock(queue);
        while let Some(waiter) = q.waiters.pop_front() {
            let Some(result) = outcome.take() else { break };
            match waiter.send(result) {
                // Delivered (an error goes to one waiter at a time; the
                // others try again in the next round).
                Ok(()) => break,
                // That waiter gave up; offer the lock to the next one.
                Err(returned) => outcome = Some(returned),
            }
        }
        // Nobody took it: dropping the file releases the lock.
        drop(outcome);
    }
}
