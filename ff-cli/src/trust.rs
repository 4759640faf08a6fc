//! What a repository's `ff.toml` may decide, and the approvals that let it.
//!
//! A repository is someone else's input. Keys of its `ff.toml` that decide
//! what runs (`[hooks]`), where ff writes (`state_dir`, `base_path`,
//! `symlink`), which servers or URLs it talks to (`lock`, `store`,
//! `alerts.webhook`) or where its state lives take effect only once the
//! user approves them on this machine, like `direnv allow` and `mise
//! trust`: `ff trust allow` records a hash of exactly those keys' values,
//! per clone (its git common directory), in the user's own configuration
//! directory, never in the repository. Any change needs approval again.
//!
//! Approvals come in parts, so that a command refuses only for what it
//! uses (`--no-hooks` runs a repository whose hooks changed; `ff lock`
//! does not care about `alerts.webhook`): `hooks` (the whole `[hooks]`
//! table, plus the content of every file a hook command runs, see
//! [`pinned_files`]), and each steering key on its own. Flags,
//! environment variables and the user's own `config.toml` are trusted.
//!
//! The approvals file keeps its old name, `approved-hooks`. A line is
//! `trust-v1 <part> <sha256> <common dir, percent-encoded>` (`<part>`:
//! `hooks` or the key, `state_dir`, `alerts.webhook`, …): no path can
//! hold a space or a line break there, so no path can forge another line.
//! Lines of the earlier form (`<sha256> <main working tree>`, hooks only)
//! are still honoured for the hooks part.

use std::path::{Path, PathBuf};

use ff_worktree::display::{escape, escape_path};
use ff_worktree::hooks::PinnedFile;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::output::{self, Failure};

/// `ff trust`'s long help: the trust model, also docs/trust.md's.
pub(crate) const TRUST_HELP: &str = "\
A cloned repository is someone else's input. Its ff.toml (always the main
working tree's copy, never a linked worktree's) may set, without approval,
only what cannot reach outside ff's own work: max_worktrees, limit_policy,
base_ref, sync_strategy, remote, namespace, branch_template (no template
can name an existing branch: a create never takes one over),
lock_timeout, cleanup_grace, on_running (it reaches no process outside
the worktree being cleaned up), slots, port_base, port_stride,
include_max_bytes and [alerts] thresholds.

These need approval on this machine, for this clone (its git common
directory) and exactly these values:
  [hooks]          what runs (and the content of every file a hook runs)
  state_dir        where records and locks live
  base_path        where worktrees are made
  symlink          what new worktrees link to
  lock, store      which servers ff talks to
  alerts.webhook   where ff serve POSTs

Until approved, every command refuses (exit 77, kind not_approved, or
hooks_not_approved when only hooks wait; an unapproved alerts.webhook
holds back ff serve alone) and lists each such setting with
control, bidirectional and zero-width characters escaped. `ff trust` shows
them; `ff trust allow` approves them all (`ff hooks allow`: the hooks
alone); any change needs approval again. --no-hooks runs without hooks;
FF_TRUST=allow (everything) and FF_HOOKS=allow (hooks) approve one run,
for CI.

A hook runs in the worktree, whose files are its branch's: approving
`./setup.sh` approves that file's content. Files a hook command runs (a
path in command position, or the script after sh, bash, python3, node, .,
source, …) are hashed into the approval; where a worktree's copy differs
(a pull request's branch changed it, or added one that was absent), the
hook is refused (77) and nothing runs. Programs a hook starts read more
files (npm reads package.json, make a Makefile): approving `npm ci`
trusts what each branch's package.json says.

Trusted without approval: flags, FF_* variables, and your own
$XDG_CONFIG_HOME/forgeflow/config.toml (same keys as ff.toml; the
repository's approved values override it). Approvals live in the same
directory (file approved-hooks; FF_CONFIG_DIR overrides the directory).";

/// The prefix of every approval line this release writes.
const LINE_TAG: &str = "trust-v1";

/// What one approval line covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `[hooks]` and the files its commands run.
    Hooks,
    /// One steering key (`state_dir`, `alerts.webhook`, …), approved on
    /// its own so that a command refuses only for keys it uses.
    Setting(&'static str),
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hooks => "hooks",
            Self::Setting(key) => key,
        }
    }
}

/// The user's configuration directory: `$FF_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/forgeflow`, else `~/.config/forgeflow`.
pub(crate) fn config_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("FF_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("forgeflow")))
        .or_else(|| var("HOME").map(|h| h.join(".config").join("forgeflow")))
}

/// Where approvals are recorded.
pub(crate) fn approvals_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("approved-hooks"))
}

/// The user's own `config.toml` (the same keys as `ff.toml`, trusted).
pub(crate) fn user_config_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("config.toml"))
}

/// The keys of a repository's `ff.toml`, other than `[hooks]`, that need
/// approval: each decides where ff writes, whom it talks to or where its
/// state lives. A key added later of that kind belongs here.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Steering {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lock: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) base_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) symlink: Option<Vec<PathBuf>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) webhook: Option<String>,
}

impl Steering {
    /// As `ff trust --json` shows it.
    pub(crate) fn view(&self) -> ff_model::cli::SettingsView {
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        let mut v = ff_model::cli::SettingsView::default();
        v.base_path = self.base_path.as_ref().map(path);
        v.lock.clone_from(&self.lock);
        v.state_dir = self.state_dir.as_ref().map(path);
        v.store.clone_from(&self.store);
        v.symlink = self.symlink.as_ref().map(|l| l.iter().map(path).collect());
        v.webhook.clone_from(&self.webhook);
        v
    }

    /// Whether no such key is set.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Each key set, with its value as `ff.toml` would spell it, escaped
    /// for display.
    pub(crate) fn entries(&self) -> Vec<(&'static str, String)> {
        let quoted = |s: &str| format!("\"{}\"", escape(s));
        let path = |p: &Path| format!("\"{}\"", escape_path(p));
        let mut out = Vec::new();
        if let Some(v) = &self.lock {
            out.push(("lock", quoted(v)));
        }
        if let Some(v) = &self.store {
            out.push(("store", quoted(v)));
        }
        if let Some(v) = &self.base_path {
            out.push(("base_path", path(v)));
        }
        if let Some(v) = &self.state_dir {
            out.push(("state_dir", path(v)));
        }
        if let Some(v) = &self.symlink {
            let items: Vec<String> = v.iter().map(|p| path(p)).collect();
            out.push(("symlink", format!("[{}]", items.join(", "))));
        }
        if let Some(v) = &self.webhook {
            out.push(("alerts.webhook", quoted(v)));
        }
        out
    }

    /// Each key set, with the hash an approval of its value records.
    pub(crate) fn digests(&self) -> Vec<(&'static str, String)> {
        let value = serde_json::to_value(self).unwrap_or_default();
        self.entries()
            .into_iter()
            .map(|(key, _)| {
                let field = key.strip_prefix("alerts.").unwrap_or(key);
                let text = format!("{key}\0{}", value.get(field).unwrap_or(&Value::Null));
                (key, sha256_hex(text.as_bytes()))
            })
            .collect()
    }
}

/// The files hook commands run, with their content now in the main
/// working tree `top`: the approval of the hooks covers them, and a hook
/// runs only where those files are the same (see
/// [`PinnedFile`]). A file is one named as the program of a simple command
/// when it is a path (`./setup.sh`, `scripts/init`), or as the script an
/// interpreter runs (`bash setup.sh`, `python3 tools/x.py`, `. env.sh`). A
/// named file that does not exist in the main working tree is pinned as
/// absent, so a branch cannot add it.
pub(crate) fn pinned_files<'a>(
    commands: impl IntoIterator<Item = &'a str>,
    top: &Path,
) -> Vec<PinnedFile> {
    let mut named: Vec<String> = Vec::new();
    for command in commands {
        for word in programs_and_scripts(command) {
            if !named.contains(&word) {
                named.push(word);
            }
        }
    }
    named
        .into_iter()
        .map(|word| {
            let sha256 = std::fs::read(top.join(&word))
                .ok()
                .map(|bytes| sha256_hex(&bytes));
            PinnedFile::new(word, sha256)
        })
        .collect()
}

/// Words of `command` that name a file of the repository to run.
fn programs_and_scripts(command: &str) -> Vec<String> {
    const INTERPRETERS: &[&str] = &[
        "sh", "bash", "zsh", "dash", "ksh", "fish", "source", ".", "python", "python3", "node",
        "deno", "bun", "ruby", "perl", "php", "tsx", "ts-node",
    ];
    let mut out = Vec::new();
    let mut at_command = true;
    let mut after_interpreter = false;
    for raw in command.split(|c: char| c.is_whitespace() || ";&|()<>`".contains(c)) {
        let separator_follows = raw.is_empty();
        if separator_follows {
            // An operator or a run of blanks: a separator may start a new
            // simple command; blanks alone do not, but treating them so
            // only pins more.
            at_command = true;
            continue;
        }
        let word: String = raw.chars().filter(|c| !matches!(c, '\'' | '"')).collect();
        let is_assignment = at_command && word.contains('=') && !word.starts_with('=');
        if is_assignment {
            continue;
        }
        let path_like = word.contains('/') || word.starts_with('.');
        let plain = !word.starts_with('-')
            && !word.contains(['$', '*', '?', '~', '\\'])
            && !Path::new(&word).is_absolute()
            && !word.split('/').any(|s| s == "..");
        if plain && ((at_command && path_like && word != ".") || after_interpreter) {
            out.push(word.trim_start_matches("./").to_owned());
        }
        after_interpreter = at_command && INTERPRETERS.contains(&word.as_str());
        at_command = false;
    }
    out.retain(|w| !w.is_empty());
    out
}

/// The approvals recorded on this machine, read once.
#[derive(Debug, Default)]
pub(crate) struct Approvals {
    lines: Vec<String>,
}

impl Approvals {
    /// Reads the approvals file; a missing or unreadable one approves
    /// nothing.
    pub(crate) fn load() -> Self {
        let lines = approvals_file()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        Self { lines }
    }

    /// Whether `part` with hash `digest` is approved for the clone whose
    /// common directory is `common_dir`. `legacy` is the earlier form's
    /// key for the hooks part (its hash and the main working tree).
    pub(crate) fn approves(
        &self,
        part: Part,
        digest: &str,
        common_dir: &Path,
        legacy: Option<(&str, &Path)>,
    ) -> bool {
        let wanted = line(part, digest, common_dir);
        if self.lines.contains(&wanted) {
            return true;
        }
        match legacy {
            Some((digest, top)) if part == Part::Hooks => {
                let old = format!("{digest} {}", top.display());
                self.lines.contains(&old)
            }
            _ => false,
        }
    }
}

fn line(part: Part, digest: &str, common_dir: &Path) -> String {
    format!(
        "{LINE_TAG} {} {digest} {}",
        part.as_str(),
        percent_encode(common_dir)
    )
}

/// The path's bytes with every byte but `A-Z a-z 0-9 / . _ - ~ + , : @ =`
/// as `%XX`: no space, line break or other byte that could end the field.
fn percent_encode(p: &Path) -> String {
    let mut out = String::new();
    for &b in p.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~+,:@=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Records the approval of `parts` (each with its hash) for the clone
/// whose common directory is `common_dir`, replacing earlier approvals of
/// the same parts for it; written whole, private (0600), and renamed into
/// place.
pub(crate) fn approve(parts: &[(Part, String)], common_dir: &Path) -> Result<PathBuf, Failure> {
    let file = approvals_file().ok_or_else(|| {
        Failure::invalid(
            "no configuration directory to record the approval in: set HOME, XDG_CONFIG_HOME \
             or FF_CONFIG_DIR",
        )
    })?;
    let dir = file.parent().unwrap_or(Path::new("."));
    ff_worktree::private::create_dir_all(dir).map_err(|e| write_failed(dir, &e))?;
    let replaced: Vec<String> = parts
        .iter()
        .map(|(part, _)| {
            format!(
                "{LINE_TAG} {} {}",
                part.as_str(),
                percent_encode(common_dir)
            )
        })
        .collect();
    let mut lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            // `trust-v1 <part> <digest> <path>`: drop this clone's line of
            // each part being approved now.
            let mut f = l.splitn(4, ' ');
            let (tag, part, _, path) = (f.next(), f.next(), f.next(), f.next());
            let key = format!(
                "{} {} {}",
                tag.unwrap_or(""),
                part.unwrap_or(""),
                path.unwrap_or("")
            );
            !replaced.contains(&key)
        })
        .map(str::to_owned)
        .collect();
    for (part, digest) in parts {
        lines.push(line(*part, digest, common_dir));
    }
    ff_worktree::private::write_file_atomically(&file, (lines.join("\n") + "\n").as_bytes())
        .map_err(|e| write_failed(&file, &e))?;
    Ok(file)
}

fn write_failed(path: &Path, e: &std::io::Error) -> Failure {
    Failure::new(
        output::Problem::CannotWrite,
        format!("cannot write {}: {e}", escape_path(path)),
    )
}

/// Whether [`vouch_for_store`] may adopt a store it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adopt {
    /// Refuse a store ff did not make here (every command).
    No,
    /// Adopt it (`ff trust allow`: the user reviewed it).
    Yes,
}

/// The file in a state directory outside `.git` that names the store.
const STORE_ID_FILE: &str = ".ff-store-id";

/// Makes sure the state directory `root` (outside the repository's
/// `.git`) is one ff made on this machine, or one the user adopted: each
/// store ff makes gets a random id, in `root/.ff-store-id` and as a file
/// of the user's configuration directory (`stores/<id>`). A clone copies
/// the first, never the second, so records a repository ships in a
/// directory it names are refused (77) until `ff trust allow` adopts
/// them. An empty (or new) directory is made a store of this machine.
///
/// The id is registered before `.ff-store-id` is created (`O_EXCL`), so a
/// process that loses the race to create it finds the winner's id already
/// registered.
pub(crate) fn vouch_for_store(root: &Path, adopt: Adopt) -> Result<(), Failure> {
    let Some(registry) = config_dir().map(|d| d.join("stores")) else {
        // Nowhere to keep the record of it: nothing to check against.
        return Ok(());
    };
    let id_file = root.join(STORE_ID_FILE);
    let registered = |id: &str| {
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && registry.join(id).is_file()
    };
    let read_id = || {
        ff_worktree::private::refuse_link(&id_file).ok()?;
        std::fs::read_to_string(&id_file)
            .ok()
            .map(|t| t.trim().to_owned())
    };
    if read_id().is_some_and(|id| registered(&id)) {
        return Ok(());
    }
    // The id file (and its temporary) aside: another process may be
    // making this very store, and it makes nothing else before its id.
    let empty = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .all(|e| e.file_name().to_string_lossy().starts_with(STORE_ID_FILE))
        })
        .unwrap_or(false);
    // A store another process made since the first look is this machine's.
    if !empty && adopt == Adopt::No && read_id().is_some_and(|id| registered(&id)) {
        return Ok(());
    }
    if !empty && adopt == Adopt::No {
        return Err(Failure::new(
            output::Problem::NotApproved,
            format!(
                "{} holds state that ff did not make on this machine (a repository can ship a \
                 directory of records); review it, then run `ff trust allow` to adopt it, or point \
                 state_dir at a new directory (FF_TRUST=allow approves for one run)",
                escape_path(root)
            ),
        ));
    }
    let failed = |path: &Path, e: &std::io::Error| write_failed(path, e);
    ff_worktree::private::create_dir_all(&registry).map_err(|e| failed(&registry, &e))?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Failure::new(
            output::Problem::Unavailable,
            format!("cannot draw a random store id: {e}"),
        )
    })?;
    let id = ff_traits::hex_lower(&bytes);
    ff_worktree::private::write_file_atomically(
        &registry.join(&id),
        format!("{}\n", root.display()).as_bytes(),
    )
    .map_err(|e| failed(&registry.join(&id), &e))?;
    // Adopting replaces the id a clone brought; a new store creates one.
    let written = if adopt == Adopt::Yes {
        ff_worktree::private::write_file_atomically(&id_file, format!("{id}\n").as_bytes())
    } else {
        // Whole or not at all, and only if none is there: a temporary,
        // then a hard link (which fails when the name exists).
        let tmp = root.join(format!(
            "{STORE_ID_FILE}.{}",
            ff_traits::identity::unique_id()
        ));
        let linked = ff_worktree::private::file_options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{id}\n").as_bytes()))
            .and_then(|()| std::fs::hard_link(&tmp, &id_file));
        let _ = std::fs::remove_file(&tmp);
        linked
    };
    match written {
        Ok(()) => Ok(()),
        // Another process made this store a moment ago: its id stands.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(registry.join(&id));
            if read_id().is_some_and(|id| registered(&id)) {
                Ok(())
            } else {
                Err(failed(&id_file, &e))
            }
        }
        Err(e) => Err(failed(&id_file, &e)),
    }
}

/// What a refusal lists: each unapproved hook command and setting.
#[derive(Debug, Default)]
pub(crate) struct Unapproved {
    /// `(hook, command)`.
    pub(crate) hooks: Vec<(&'static str, String)>,
    /// `(key, value)`, as [`Steering::entries`] shows them.
    pub(crate) settings: Vec<(&'static str, String)>,
}

/// The refusal of a repository's unapproved keys (77): each one, escaped,
/// and how to approve.
pub(crate) fn not_approved(what: &Unapproved, top: &Path) -> Failure {
    let mut text = format!(
        "{}/ff.toml has settings that have not been approved on this machine:\n",
        escape_path(top)
    );
    for (hook, command) in &what.hooks {
        text.push_str(&format!("  hook {hook}: {}\n", escape(command)));
    }
    for (key, value) in &what.settings {
        text.push_str(&format!("  {key} = {value}\n"));
    }
    let kind = if what.settings.is_empty() {
        text.push_str(
            "run `ff hooks allow` (or `ff trust allow`) to approve them (again after any change), \
             or pass --no-hooks to go on without them (FF_HOOKS=allow approves hooks for one run, \
             for CI)",
        );
        output::Problem::HooksNotApproved
    } else {
        text.push_str(
            "a cloned repository may not choose where ff writes, whom it talks to or what it \
             runs: review them, then run `ff trust allow` (again after any change), or set them \
             yourself with flags or in your own config.toml (FF_TRUST=allow approves for one \
             run, for CI)",
        );
        output::Problem::NotApproved
    };
    Failure::new(kind, text)
}

/// Hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    ff_traits::hex_lower(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_and_scripts_are_found_where_they_run() {
        let found = |c: &str| programs_and_scripts(c);
        assert_eq!(found("./setup.sh --fast"), ["setup.sh"]);
        assert_eq!(found("npm ci && scripts/init.sh"), ["scripts/init.sh"]);
        assert_eq!(
            found("bash setup.sh; python3 tools/x.py a b"),
            ["setup.sh", "tools/x.py"]
        );
        assert_eq!(found("FOO=1 ./run"), ["run"]);
        assert_eq!(found(". ./env.sh"), ["env.sh"]);
        assert!(found("npm ci").is_empty());
        assert!(found("cp .env.example .env.local").is_empty());
        assert!(found("/usr/bin/env true").is_empty());
        assert!(found("../outside.sh").is_empty());
    }

    #[test]
    fn no_path_forges_an_approval_line() {
        let evil = Path::new("/tmp/x\ntrust-v1 state_dir abc /victim/.git\t y");
        let l = line(Part::Setting("state_dir"), "abc", evil);
        assert_eq!(l.lines().count(), 1, "{l}");
        assert_eq!(l.split(' ').count(), 4, "{l}");
        assert!(l.ends_with("/tmp/x%0Atrust-v1%20state_dir%20abc%20/victim/.git%09%20y"));
    }
}
