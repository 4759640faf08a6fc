//! What `ff` prints: JSON or human text on stdout, errors on stderr, and
//! the exit code each failure maps to.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use ff_model::cli::{ErrorBody, ErrorView};
use ff_traits::Timestamp;
use ff_worktree::display::{escape, escape_text};
use ff_worktree::{Error, ErrorKind};
use serde::Serialize;

pub(crate) const FAILURE: u8 = 1;
pub(crate) const INVALID_INPUT: u8 = 65;
pub(crate) const UNAVAILABLE: u8 = 69;
pub(crate) const CANNOT_CREATE: u8 = 73;
pub(crate) const TEMPORARY: u8 = 75;
pub(crate) const REFUSED: u8 = 77;
/// Something the user must configure is missing (sysexits' EX_CONFIG).
pub(crate) const NOT_CONFIGURED: u8 = 78;

/// A failure on its way to the user: which exit code, and the error
/// (kind, message and the facts a program reading `--json` may act on).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    /// Boxed: failures travel in every `Result`, and the facts are large.
    pub(crate) error: Box<ErrorBody>,
}

impl Failure {
    fn with(code: u8, kind: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            error: Box::new(ErrorBody::new(kind, message)),
        }
    }

    /// A failure `ff` found itself, by its [`Problem`].
    pub(crate) fn new(problem: Problem, message: impl Into<String>) -> Self {
        let (code, kind) = problem.classify();
        Self::with(code, kind, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(Problem::InvalidInput, message)
    }

    #[cfg(not(feature = "redis"))]
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Problem::BackendUnavailable, message)
    }

    /// A library error, by its meaning and the stage it happened in.
    pub(crate) fn of(e: Error, stage: Stage) -> Self {
        let (code, kind) = classify(&e, stage);
        Self {
            code,
            error: Box::new(ErrorBody::new(kind, e.to_string()).with_facts_of(&e)),
        }
    }
}

/// The failures `ff` finds itself, not a library: each one's exit code and
/// JSON kind are chosen in [`Problem::classify`], beside [`classify`] for
/// library errors; between them, every exit code `ff` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The command line lacks what it needs (2), as clap's own usage
    /// errors: a target where none can be inferred.
    Usage,
    /// A bad argument, setting or value (65).
    InvalidInput,
    /// No worktree, record or key by that name (65).
    NotFound,
    /// The worktree lives in another clone (65).
    Elsewhere,
    /// A backend could not be opened (69).
    BackendUnavailable,
    /// The system could not give what `ff` needs, such as randomness (69).
    Unavailable,
    /// `ff serve` could not listen where asked (69).
    ListenFailed,
    /// `ff serve` stopped serving on an error (69).
    ServeFailed,
    /// A file `ff` must write could not be written (73).
    CannotWrite,
    /// The worktree exists, but its `post_create` hook failed when it was
    /// made (73, as that create was).
    HookFailed,
    /// The key's command runs now (75).
    InProgress,
    /// Live holders keep the lock (75).
    LockHeld,
    /// The repository's settings are not approved on this machine (77).
    NotApproved,
    /// The repository's hooks are not approved on this machine (77).
    HooksNotApproved,
    /// The program to run does not exist (127).
    ProgramMissing,
    /// The program to run cannot be run (126).
    CannotRun,
    /// `ff` itself could not start its runtime (1).
    Runtime,
    /// `ff` could not listen for the signals it forwards (1; Unix, where
    /// it forwards them).
    #[cfg(unix)]
    Signals,
    /// A task of `ff` failed (1).
    Internal,
}

impl Problem {
    /// The exit code and JSON kind: the exit-code tables of README.md and docs/cli.md.
    pub(crate) fn classify(self) -> (u8, &'static str) {
        match self {
            Self::Usage => (2, "usage"),
            Self::InvalidInput => (INVALID_INPUT, "invalid_input"),
            Self::NotFound => (INVALID_INPUT, "not_found"),
            Self::Elsewhere => (INVALID_INPUT, "elsewhere"),
            Self::BackendUnavailable => (UNAVAILABLE, "backend_unavailable"),
            Self::Unavailable => (UNAVAILABLE, "unavailable"),
            Self::ListenFailed => (UNAVAILABLE, "listen_failed"),
            Self::ServeFailed => (UNAVAILABLE, "serve_failed"),
            Self::CannotWrite => (CANNOT_CREATE, "cannot_write"),
            Self::HookFailed => (CANNOT_CREATE, "hook_failed"),
            Self::InProgress => (TEMPORARY, "in_progress"),
            Self::LockHeld => (TEMPORARY, "lock_held"),
            Self::NotApproved => (REFUSED, "not_approved"),
            Self::HooksNotApproved => (REFUSED, "hooks_not_approved"),
            Self::ProgramMissing => (127, "cannot_run"),
            Self::CannotRun => (126, "cannot_run"),
            Self::Runtime => (FAILURE, "runtime"),
            #[cfg(unix)]
            Self::Signals => (FAILURE, "signals"),
            Self::Internal => (FAILURE, "internal"),
        }
    }
}

/// Where in a command an error arose. Only backend and git failures mean
/// something different by stage: while opening, the dependency is
/// unavailable (69); while creating, the worktree could not be made (73);
/// during other work, the work failed (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Opening the repository, the lock provider or the store.
    Open,
    /// Creating a worktree.
    Create,
    /// Any other work.
    Work,
}

/// The exit code and JSON kind of every library error: the one place they
/// are chosen. docs/cli.md's exit-code table describes this function.
pub(crate) fn classify(e: &Error, stage: Stage) -> (u8, &'static str) {
    use ff_idempotency::ErrorKind as I;
    use ff_traits::ErrorKind as C;
    let kind = e.kind();
    let code = match kind {
        ErrorKind::Contract(C::InvalidInput | C::NotFound) => INVALID_INPUT,
        ErrorKind::Contract(C::LockTimeout)
        | ErrorKind::Idempotency(I::InProgress | I::BackoffNotElapsed | I::MaxAttemptsExceeded) => {
            TEMPORARY
        }
        ErrorKind::Contract(C::Unsupported) => UNAVAILABLE,
        ErrorKind::Contract(C::Backend) | ErrorKind::Git if stage == Stage::Open => {
            return Problem::BackendUnavailable.classify();
        }
        ErrorKind::Git if stage == Stage::Create => CANNOT_CREATE,
        ErrorKind::LimitReached => CANNOT_CREATE,
        ErrorKind::WouldLoseWork | ErrorKind::Refused => REFUSED,
        ErrorKind::NoIdentity => NOT_CONFIGURED,
        // A pre_ hook refuses what it guards; a failed post_create means
        // no usable worktree.
        ErrorKind::HookFailed => match e {
            Error::HookFailed { hook, .. } if hook.starts_with("pre_") => REFUSED,
            Error::HookFailed { hook, .. } if hook == "post_create" => CANNOT_CREATE,
            _ => FAILURE,
        },
        _ => FAILURE,
    };
    (code, kind.as_str())
}

/// A backend failing before the command's own work began (a lock
/// directory that cannot be made, a store that cannot be read) means the
/// backend is unavailable (69), not that the work failed (1).
pub(crate) fn before_work(e: impl Into<Error>) -> Failure {
    Failure::of(e.into(), Stage::Open)
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::of(e, Stage::Work)
    }
}

impl From<ff_traits::Error> for Failure {
    fn from(e: ff_traits::Error) -> Self {
        Self::of(e.into(), Stage::Work)
    }
}

impl From<ff_idempotency::Error> for Failure {
    fn from(e: ff_idempotency::Error) -> Self {
        Self::of(e.into(), Stage::Work)
    }
}

/// Where output goes, and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    /// Prints `value` as JSON, or `human()` as text. Text for people
    /// shows no raw control, bidi or zero-width character, whatever a
    /// repository, record or lock holder put in it (each part should be
    /// escaped where it is formatted; this is the net beneath).
    pub(crate) fn emit<T: Serialize + ?Sized>(&self, value: &T, human: impl FnOnce() -> String) {
        let text = if self.json {
            serde_json::to_string_pretty(value).unwrap_or_default()
        } else {
            escape_text(&human()).into_owned()
        };
        let mut stdout = std::io::stdout().lock();
        if !text.is_empty() {
            let _ = writeln!(stdout, "{text}");
        }
        let _ = stdout.flush();
    }

    /// Says what went wrong on stderr; returns the exit code.
    pub(crate) fn fail(&self, f: &Failure) -> ExitCode {
        let mut stderr = std::io::stderr().lock();
        if self.json {
            let view = ErrorView::new((*f.error).clone());
            let _ = writeln!(
                stderr,
                "{}",
                serde_json::to_string(&view).unwrap_or_default()
            );
        } else {
            let _ = writeln!(stderr, "ff: error: {}", escape_text(&f.error.message));
        }
        ExitCode::from(f.code)
    }
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset.
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// An aligned table: a header row, then rows. Every cell is escaped
/// ([`escape`]): a name, path or command line shows on one line, as it is.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape(c).into_owned()).collect())
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let head = line(headers.iter().map(|h| (*h).to_owned()).collect());
    let head = if colour() {
        format!("\x1b[1m{head}\x1b[0m")
    } else {
        head
    };
    let mut out = vec![head];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

/// How a column of [`fitted_table`] gives way when the table is too wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Give {
    /// Never shortened.
    Keep,
    /// Shortened keeping its start (`agent-wor…`).
    Start,
    /// Shortened keeping its end (`….ff-worktrees/wt-12`), as for paths.
    End,
}

/// An aligned table, as [`table`], that fits `width` columns when given:
/// the columns that may give way are shortened (with `…`), widest first,
/// down to 6 characters each.
pub(crate) fn fitted_table(
    headers: &[&str],
    give: &[Give],
    rows: &[Vec<String>],
    width: Option<usize>,
) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape(c).into_owned()).collect())
        .collect();
    let count = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| count(h)).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(count(cell));
        }
    }
    if let Some(width) = width {
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        while total(&widths) > width {
            let Some(i) = (0..widths.len())
                .filter(|&i| give.get(i).is_some_and(|g| *g != Give::Keep) && widths[i] > 6)
                .max_by_key(|&i| widths[i])
            else {
                break;
            };
            let over = total(&widths) - width;
            widths[i] = widths[i].saturating_sub(over).max(6);
        }
    }
    let cut = |cell: &str, i: usize| -> String {
        let w = widths[i];
        let n = count(cell);
        if n <= w {
            return cell.to_owned();
        }
        match give.get(i) {
            Some(Give::End) => {
                let tail: String = cell.chars().skip(n - (w - 1)).collect();
                format!("…{tail}")
            }
            _ => {
                let head: String = cell.chars().take(w - 1).collect();
                format!("{head}…")
            }
        }
    };
    let line = |cells: &[String]| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = cut(c, i);
                if i == last {
                    c
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let head = line(&headers.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    let head = if colour() {
        format!("\x1b[1m{head}\x1b[0m")
    } else {
        head
    };
    let mut out = vec![head];
    out.extend(rows.iter().map(|r| line(r)));
    out.join("\n")
}

/// The terminal's width, for tables that fit it: `COLUMNS` when set, else
/// the terminal stdout is; `None` when stdout is no terminal (a pipe gets
/// whole lines).
pub(crate) fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    #[cfg(unix)]
    {
        let out = std::io::stdout();
        if out.is_terminal()
            && let Ok(size) = rustix::termios::tcgetwinsize(&out)
            && size.ws_col > 0
        {
            return Some(usize::from(size.ws_col));
        }
    }
    None
}

/// `3m ago`, for people.
pub(crate) fn ago(t: Timestamp) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let secs = now.saturating_sub(t.as_millis()) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3_600 => format!("{}m ago", secs / 60),
        3_600..86_400 => format!("{}h ago", secs / 3_600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// A one-line progress note on stderr for work that can take seconds,
/// shown only when stderr is a terminal; erased when dropped.
pub(crate) struct Progress(bool);

impl Progress {
    pub(crate) fn start(what: &str) -> Self {
        let shown = std::io::stderr().is_terminal();
        if shown {
            eprint!("{what}…\r");
        }
        Self(shown)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.0 {
            eprint!("\x1b[2K\r");
        }
    }
}

/// Says on stderr, as a wait for a lock begins, what it waits for and who
/// holds it (pid, host, operation), looked up in the background so the
/// wait itself is not held up.
pub(crate) fn wait_report(locks: crate::config::Locks) -> ff_worktree::WaitReport {
    ff_worktree::WaitReport::new(move |w: &ff_worktree::Waiting| {
        let what = match &w.issue {
            Some(issue) => format!("issue {}'s lock", escape(issue)),
            None => "the repository's lock".to_owned(),
        };
        let operation = w.operation.clone();
        let lock = w.lock.to_string();
        let locks = std::sync::Arc::clone(&locks);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            eprintln!("ff: {operation} is waiting for {what}, which another process holds");
            return;
        };
        runtime.spawn(async move {
            // The lock itself first, then the nodes above it; never this
            // process (which holds the nodes above while it waits).
            let me = |h: &ff_traits::LockInfo| {
                h.pid == ff_traits::identity::pid() && h.hostname == ff_traits::identity::hostname()
            };
            let holder = locks.locks().await.ok().and_then(|mut all| {
                all.retain(|l| {
                    l.held && (l.name == lock || lock.starts_with(&format!("{}/", l.name)))
                });
                all.sort_by_key(|l| l.name != lock);
                all.into_iter().flat_map(|l| l.holders).find(|h| !me(h))
            });
            match holder {
                Some(h) => eprintln!(
                    "ff: {operation} is waiting for {what}, held by pid {} on {} ({}) for {}",
                    h.pid,
                    escape(&h.hostname),
                    escape(&h.operation),
                    ff_traits::fmt_duration(h.age(ff_traits::Timestamp::now()))
                ),
                None => {
                    eprintln!("ff: {operation} is waiting for {what}, which another process holds")
                }
            }
        });
    })
}
