//! No process left behind: the process groups ff started in a worktree
//! (its hooks, `ff exec`) are written down, and stopped when the worktree
//! is cleaned up; other processes working in it (the agent, a shell) make
//! a cleanup refuse unless `on_running = "stop"`.
//!
//! The record of a worktree's groups is a file per worktree under
//! `<common dir>/ff/groups/`, one `<group> <leader start time>` line per
//! group: local to the clone where the processes run, appended as each
//! starts (a torn last line is ignored), removed with the worktree. A
//! group counts as this worktree's while any process of it runs and its
//! leader, if still there, is the process that was recorded (a reused
//! group id names someone else's group).
//!
//! Git's own housekeeping is no one's work: after a commit, fetch or
//! merge, git starts `git maintenance run --auto` (older gits `git gc
//! --auto`) in the background (it forks itself off, then takes a process
//! group of its own), from the directory the command ran in. It works on
//! the shared repository, not on the worktree's files, and `git worktree
//! remove` pays it no heed, so neither does ff: it and everything in its
//! group (the `git gc`, `git repack` and `pre-auto-gc` hook it runs)
//! neither refuse a cleanup nor are signalled. Were it counted, every
//! cleanup right after an agent's commit would be refused by a process
//! that ends by itself. Nor does a process that has begun to exit count
//! (its command line reads empty by then, so it could not be told apart).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ff_process::residents::Resident;

/// What a cleanup does about processes working in the worktree that ff
/// did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnRunning {
    /// Refuse the cleanup (77), naming them (default).
    #[default]
    Refuse,
    /// Stop them as ff's own are stopped: SIGTERM, then SIGKILL after
    /// [`cleanup_grace`](crate::WorktreeConfig::cleanup_grace).
    Stop,
}

/// What runs in a worktree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Running {
    /// Process groups ff started there that still run.
    pub(crate) ours: Vec<u32>,
    /// Other processes whose working directory is inside it.
    pub(crate) others: Vec<Resident>,
}

impl Running {
    pub(crate) fn is_empty(&self) -> bool {
        self.ours.is_empty() && self.others.is_empty()
    }

    /// The others, for people: `pid 123 (sleep 30)`, escaped.
    pub(crate) fn others_shown(&self) -> String {
        self.others
            .iter()
            .map(|r| {
                let command: String = r.command.chars().take(80).collect();
                format!("pid {} ({})", r.pid, crate::display::escape(&command))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The groups file of each worktree of one clone.
#[derive(Debug, Clone)]
pub(crate) struct Groups {
    dir: PathBuf,
}

impl Groups {
    pub(crate) fn of(common_dir: &Path) -> Self {
        Self {
            dir: crate::StateDir::of_repository(common_dir)
                .root()
                .join("groups"),
        }
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Writes down that ff started process group `group` in worktree `id`
    /// (best effort: a group not written down is still stopped by its own
    /// runner, and shows as a process working in the worktree).
    pub(crate) fn record(&self, id: &str, group: u32) {
        use std::io::Write as _;
        let start = ff_process::start_time(group).unwrap_or(0);
        let written = crate::private::ensure_private_dir(&self.dir).and_then(|()| {
            let mut f = crate::private::file_options()
                .create(true)
                .append(true)
                .open(self.file(id))?;
            f.write_all(format!("{group} {start}\n").as_bytes())
        });
        if let Err(e) = written {
            tracing::warn!(id, group, error = %e, "cannot write down a process group");
        }
    }

    /// The groups ff started in `id` that still run.
    pub(crate) fn live(&self, id: &str) -> Vec<u32> {
        let text = std::fs::read_to_string(self.file(id)).unwrap_or_default();
        let mut live: Vec<u32> = text
            .lines()
            .filter_map(|line| {
                let (group, start) = line.split_once(' ')?;
                Some((group.parse::<u32>().ok()?, start.parse::<u64>().ok()?))
            })
            .filter(|&(group, start)| {
                let leader_is_another =
                    start != 0 && ff_process::start_time(group).is_some_and(|now| now != start);
                !leader_is_another
                    && ff_process::group_liveness(group) == ff_process::Liveness::Alive
            })
            .map(|(group, _)| group)
            .collect();
        live.sort_unstable();
        live.dedup();
        live
    }

    /// Moves `from`'s groups to `to` (a pool worktree handed out as an
    /// issue's: what its preparation left running is the now).
    pub(crate) fn rename(&self, from: &str, to: &str) {
        let _ = std::fs::rename(self.file(from), self.file(to));
    }

    /// Forgets `id`'s groups (its worktree is gone).
    pub(crate) fn forget(&self, id: &str) {
        let _ = std::fs::remove_file(self.file(id));
    }
}

/// What runs in the worktree `id` at `path`.
pub(crate) fn running(groups: &Groups, id: &str, path: &Path) -> Running {
    let ours = groups.live(id);
    let residents = ff_process::residents::working_in(path);
    // The groups git's housekeeping leads (see the module's docs).
    let housekeeping: Vec<u32> = residents
        .iter()
        .filter(|r| r.pid == r.process_group && is_git_housekeeping(&r.args))
        .map(|r| r.pid)
        .collect();
    let others = residents
        .into_iter()
        .filter(|r| !ours.contains(&r.process_group))
        .filter(|r| {
            // Its own arguments count too: `--detach` forks the work off
            // and only then gives it a group of its own, and the first
            // process runs in the group of the command that started it.
            let gits = housekeeping.contains(&r.process_group) || is_git_housekeeping(&r.args);
            if gits {
                tracing::debug!(pid = r.pid, command = %r.command, "git's own housekeeping; not counted");
            }
            !gits
        })
        .collect();
    Running { ours, others }
}

/// Whether `args` are those git gives the housekeeping it starts by
/// itself: `git maintenance run --auto ...` or `git gc --auto ...`.
/// Only the exact shape counts: a person's `git gc` or `git -c x=y
/// maintenance run` is someone working there.
fn is_git_housekeeping(args: &[String]) -> bool {
    let [program, command, rest @ ..] = args else {
        return false;
    };
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let name = name.strip_suffix(".exe").unwrap_or(name);
    let auto = rest.iter().any(|a| a == "--auto");
    name == "git"
        && match command.as_str() {
            "maintenance" => rest.first().is_some_and(|a| a == "run") && auto,
            "gc" => auto,
            _ => false,
        }
}

/// Stops `running`: SIGTERM to each, then, for what still runs after
/// `grace`, SIGKILL.
pub(crate) async fn stop(running: &Running, grace: Duration) {
    let alive = |running: &Running| {
        running
            .ours
            .iter()
            .any(|&g| ff_process::group_liveness(g) == ff_process::Liveness::Alive)
            || running.others.iter().any(|r| {
                ff_process::liveness(r.pid, Some(r.start_time)) == ff_process::Liveness::Alive
            })
    };
    let send = |kill: bool| {
        for &group in &running.ours {
            let _ = ff_process::residents::signal_group(group, kill);
        }
        for r in &running.others {
            let _ = ff_process::residents::signal(r, kill);
        }
    };
    if running.is_empty() {
        return;
    }
    tracing::info!(groups = ?running.ours, others = running.others.len(), "stopping what runs in the worktree");
    send(false);
    let deadline = tokio::time::Instant::now() + grace;
    while alive(running) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if alive(running) {
        tracing::warn!(groups = ?running.ours, "still running after the grace; killing");
        send(true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while alive(running) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_git_housekeeping;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn only_the_housekeeping_git_starts_by_itself_counts() {
        for line in [
            "/usr/local/libexec/git-core/git maintenance run --auto --quiet --detach",
            "git maintenance run --auto --quiet --no-detach",
            "git gc --auto",
            "/usr/bin/git gc --auto --quiet",
        ] {
            assert!(is_git_housekeeping(&args(line)), "{line}");
        }
        for line in [
            "git gc",
            "git maintenance run",
            "git maintenance start --auto",
            "git -c gc.auto=1 gc --auto",
            "git rebase -i --auto",
            "/tmp/not-git/gits gc --auto",
            "sh -c git gc --auto",
            "git",
        ] {
            assert!(!is_git_housekeeping(&args(line)), "{line}");
        }
        assert!(!is_git_housekeeping(&[]));
    }
}
