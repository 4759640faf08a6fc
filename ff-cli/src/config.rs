//! Settings from flags, environment variables (clap reads both) and an
//! optional `ff.toml` at the repository root, in that order of precedence;
//! and the backends they name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ff_metrics::Instrumented;
use ff_traits::{IdempotencyStorage, LockProvider};
use ff_worktree::backends::{file_lock::FileLockProvider, json::JsonStore, sqlite::SqliteStore};

use crate::backend::{LockBackend, PostgresTarget, RedisTarget, StoreBackend};
use ff_worktree::git::Git;
use ff_worktree::{LimitPolicy, OnRunning, SyncStrategy, WorktreeConfig, WorktreeManager};
use serde::Deserialize;

use crate::cli::Global;
use crate::output::Failure;
use crate::trust::{Approvals, Part, Steering};
use ff_worktree::display::escape_path;

/// The lock provider and store, behind trait objects: chosen at run time.
/// Whether a run's backends are measured ([`Instrumented`], whichever
/// backend sits inside): the work a command does is; `ff serve`'s own
/// polling of the backends it shows is not (ten reads a second would
/// drown the calls it is there to show).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metered {
    /// Measured, once.
    Yes,
    /// As opened.
    No,
}

impl Metered {
    fn locks(self, locks: Locks) -> Locks {
        match self {
            Self::Yes => Arc::new(Instrumented::new(locks)),
            Self::No => locks,
        }
    }

    fn store(self, store: Store) -> Store {
        match self {
            Self::Yes => Arc::new(Instrumented::new(store)),
            Self::No => store,
        }
    }
}

/// The backends as opened.
pub(crate) type Locks = Arc<dyn LockProvider>;
pub(crate) type Store = Arc<dyn IdempotencyStorage>;
pub(crate) type Manager = WorktreeManager<Locks, Store>;

/// `ff.toml` (and the user's `config.toml`, which takes the same keys):
/// every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    lock: Option<String>,
    store: Option<String>,
    base_path: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    max_worktrees: Option<usize>,
    limit_policy: Option<LimitPolicy>,
    base_ref: Option<String>,
    sync_strategy: Option<SyncStrategy>,
    remote: Option<String>,
    namespace: Option<String>,
    branch_template: Option<String>,
    lock_timeout: Option<String>,
    cleanup_grace: Option<String>,
    on_running: Option<OnRunning>,
    slots: Option<usize>,
    port_base: Option<u32>,
    port_stride: Option<u32>,
    symlink: Option<Vec<PathBuf>>,
    sparse: Option<Vec<String>>,
    include_max_bytes: Option<u64>,
    hooks: Option<crate::hooks::HooksFile>,
    pool: Option<PoolFile>,
    alerts: Option<ff_serve::AlertRules>,
}

/// `[pool]`: the warm pool.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolFile {
    /// How many pool worktrees to keep ready (0: no pool).
    size: Option<usize>,
}

/// The most pool worktrees `[pool] size` may ask for: each is a full
/// checkout, and a repository's `ff.toml` may set it unapproved.
pub(crate) const MAX_POOL_SIZE: usize = 32;

impl FileConfig {
    /// The keys that steer ff, which a repository's copy may set only
    /// once approved ([`crate::trust`]); `[hooks]` is approved apart.
    fn steering(&self) -> Steering {
        Steering {
            lock: self.lock.clone(),
            store: self.store.clone(),
            base_path: self.base_path.clone(),
            state_dir: self.state_dir.clone(),
            symlink: self.symlink.clone(),
            webhook: self.alerts.as_ref().and_then(|a| a.webhook.clone()),
        }
    }

    /// `self` (the repository's, approved) over `user` (the user's own),
    /// key by key.
    fn over(self, user: Self) -> Self {
        Self {
            lock: self.lock.or(user.lock),
            store: self.store.or(user.store),
            base_path: self.base_path.or(user.base_path),
            state_dir: self.state_dir.or(user.state_dir),
            max_worktrees: self.max_worktrees.or(user.max_worktrees),
            limit_policy: self.limit_policy.or(user.limit_policy),
            base_ref: self.base_ref.or(user.base_ref),
            sync_strategy: self.sync_strategy.or(user.sync_strategy),
            remote: self.remote.or(user.remote),
            namespace: self.namespace.or(user.namespace),
            branch_template: self.branch_template.or(user.branch_template),
            lock_timeout: self.lock_timeout.or(user.lock_timeout),
            cleanup_grace: self.cleanup_grace.or(user.cleanup_grace),
            on_running: self.on_running.or(user.on_running),
            slots: self.slots.or(user.slots),
            port_base: self.port_base.or(user.port_base),
            port_stride: self.port_stride.or(user.port_stride),
            symlink: self.symlink.or(user.symlink),
            sparse: self.sparse.or(user.sparse),
            include_max_bytes: self.include_max_bytes.or(user.include_max_bytes),
            hooks: self.hooks.or(user.hooks),
            pool: self.pool.or(user.pool),
            alerts: self.alerts.or(user.alerts),
        }
    }
}

/// The steering keys every command uses (it opens the backends and knows
/// where worktrees are); `alerts.webhook` is `ff serve`'s alone.
const EVERY_COMMAND_USES: [&str; 5] = ["lock", "store", "state_dir", "base_path", "symlink"];

/// Whether commands that would refuse unapproved settings should instead
/// only load them: `ff trust` and `ff hooks`, which show and approve them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Review {
    /// Refuse a repository's unapproved settings (every other command).
    Enforce,
    /// Load them to show or approve.
    Show,
}

/// Where the repository's steering keys and hooks stand on this machine.
#[derive(Debug, Default)]
pub(crate) struct TrustState {
    /// The repository's steering keys (empty when it sets none).
    pub(crate) steering: Steering,
    /// Those of its keys that are not approved.
    pub(crate) unapproved: Vec<&'static str>,
    /// The repository's `[hooks]`, when it has any command.
    pub(crate) hooks: Option<crate::hooks::HooksFile>,
    /// The files its hook commands run, with their content now.
    pub(crate) pins: Vec<ff_worktree::hooks::PinnedFile>,
    /// Whether its hooks are approved (or there are none).
    pub(crate) hooks_approved: bool,
    /// `FF_TRUST=allow`: everything approved for this run.
    pub(crate) everything_for_this_run: bool,
}

impl TrustState {
    /// The hash an approval of the repository's hooks records.
    pub(crate) fn hooks_digest(&self) -> Option<String> {
        self.hooks.as_ref().map(|h| h.digest_with(&self.pins))
    }

    /// Whether every steering key is approved (or there is none).
    pub(crate) fn settings_approved(&self) -> bool {
        self.unapproved.is_empty()
    }

    /// What is not approved among `keys` (every key: `None`), and the
    /// hooks when they are `Asked`, for a refusal.
    fn unapproved(&self, keys: Option<&[&str]>, hooks: HooksToo) -> crate::trust::Unapproved {
        let settings = self
            .steering
            .entries()
            .into_iter()
            .filter(|(k, _)| self.unapproved.contains(k) && keys.is_none_or(|ks| ks.contains(k)))
            .collect();
        let hooks = match &self.hooks {
            Some(h) if hooks == HooksToo::Asked && !self.hooks_approved => h
                .commands()
                .into_iter()
                .map(|(hook, c)| (hook, c.to_owned()))
                .collect(),
            _ => Vec::new(),
        };
        crate::trust::Unapproved { hooks, settings }
    }
}

/// Everything resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The directory to work in.
    pub(crate) dir: PathBuf,
    /// The repository `dir` is in, as discovered once for the run: the
    /// worktree manager starts from it instead of looking again.
    repo: Option<ff_worktree::git::RepoInfo>,
    /// The configuration in force: the repository's `ff.toml` (approved)
    /// over the user's `config.toml`.
    pub(crate) file: FileConfig,
    /// The repository's own keys, and whether they are approved.
    pub(crate) trust: TrustState,
    pub(crate) base_path: Option<PathBuf>,
    pub(crate) state_dir: Option<PathBuf>,
    /// Where locks live: `--lock`, parsed once.
    pub(crate) lock: LockBackend,
    /// Where records live: `--store`, parsed once.
    pub(crate) store: StoreBackend,
    /// `--no-hooks`.
    pub(crate) no_hooks: bool,
    /// `--json`.
    pub(crate) json: bool,
    /// The state directory [`prepared`](Self::prepared) made ready.
    prepared_root: std::sync::OnceLock<PathBuf>,
    /// Whether removals leave the deletion of worktrees' files to
    /// [`start_deferred_deletion`](Self::start_deferred_deletion).
    pub(crate) defer_deletion: bool,
    /// The base path and state directory of the manager opened, if one
    /// was: where removed worktrees await deletion, and its log.
    opened: std::sync::OnceLock<(PathBuf, PathBuf)>,
    /// Whether the command may have taken a warm pool worktree, so the
    /// pool is refilled in the background when it is done
    /// ([`start_pool_fill`](Self::start_pool_fill)).
    pub(crate) refill_pool: bool,
    /// The global options given on the command line, for `ff pool fill`
    /// started in the background: the same repository and backends.
    background: Vec<(&'static str, std::ffi::OsString)>,
}

impl Settings {
    /// The repository's main working tree, when `dir` is in one.
    pub(crate) fn toplevel(&self) -> Option<&Path> {
        self.repo.as_ref().map(|r| r.toplevel.as_path())
    }

    /// Its git common directory (the default state lives there; approvals
    /// are keyed by it).
    pub(crate) fn common_dir(&self) -> Option<&Path> {
        self.repo.as_ref().map(|r| r.common_dir.as_path())
    }

    /// Resolves the settings for `global`. With [`Review::Enforce`], a
    /// repository's steering keys that are not approved refuse (77),
    /// listing them; bad values are refused (65) before that, approved or
    /// not.
    pub(crate) async fn load(global: &Global, review: Review) -> Result<Self, Failure> {
        let dir = match &global.repo {
            Some(d) => d.clone(),
            None => std::env::current_dir()
                .map_err(|e| Failure::invalid(format!("cannot read the current directory: {e}")))?,
        };
        if !dir.is_dir() {
            return Err(Failure::invalid(format!(
                "{} is not a directory (pass -C with a directory inside a git repository)",
                escape_path(&dir)
            )));
        }
        // Read in-process for the usual layouts: no git spawned.
        let repo = Git::new(&dir).repository().await.ok();
        let toplevel = repo.as_ref().map(|r| r.toplevel.clone());
        let common_dir = repo.as_ref().map(|r| r.common_dir.clone());
        // Always the main working tree's copy: a linked worktree's branch
        // (a pull request's) cannot bring its own.
        let project = match &toplevel {
            Some(top) => read_file_config(&top.join("ff.toml"))?,
            None => FileConfig::default(),
        };
        let user = match crate::trust::user_config_file() {
            Some(path) => read_file_config(&path)?,
            None => FileConfig::default(),
        };
        check_values(&project)?;
        check_values(&user)?;
        let trust = trust_state(&project, toplevel.as_deref(), common_dir.as_deref())?;
        if review == Review::Enforce {
            // Every command opens the backends and knows the paths; only
            // `ff serve` POSTs to the webhook (it asks for it itself).
            let waiting = trust.unapproved(Some(&EVERY_COMMAND_USES), HooksToo::NotAsked);
            if !waiting.settings.is_empty() {
                let top = toplevel.as_deref().unwrap_or(&dir);
                return Err(crate::trust::not_approved(&waiting, top));
            }
        }
        let file = project.over(user);
        let relative_to_top = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| match &toplevel {
                Some(top) if p.is_relative() => top.join(p),
                _ => p.clone(),
            })
        };
        Ok(Self {
            base_path: global
                .base_path
                .clone()
                .or_else(|| relative_to_top(&file.base_path)),
            state_dir: global
                .state_dir
                .clone()
                .or_else(|| relative_to_top(&file.state_dir)),
            lock: global
                .lock
                .as_deref()
                .or(file.lock.as_deref())
                .map_or(Ok(LockBackend::File), str::parse)?,
            store: global
                .store
                .as_deref()
                .or(file.store.as_deref())
                .map_or(Ok(StoreBackend::Sqlite), str::parse)?,
            no_hooks: global.no_hooks,
            json: global.json,
            dir,
            repo,
            file,
            trust,
            prepared_root: std::sync::OnceLock::new(),
            defer_deletion: false,
            opened: std::sync::OnceLock::new(),
            refill_pool: false,
            background: background_options(global),
        })
    }

    /// The manager's configuration.
    pub(crate) fn worktree_config(&self) -> Result<WorktreeConfig, Failure> {
        let mut c = WorktreeConfig::new(&self.dir).with_deferred_deletion(self.defer_deletion);
        if let Some(p) = &self.base_path {
            c = c.with_base_path(p);
        }
        if let Some(n) = self.file.max_worktrees {
            c = c.with_max_worktrees(n);
        }
        if let Some(p) = self.file.limit_policy {
            c = c.with_limit_policy(p);
        }
        if let Some(r) = &self.file.base_ref {
            c = c.with_base_ref(r);
        }
        if let Some(s) = self.file.sync_strategy {
            c = c.with_sync_strategy(s);
        }
        if let Some(r) = &self.file.remote {
            c = c.with_remote(r);
        }
        if let Some(ns) = &self.file.namespace {
            c = c.with_namespace(ns);
        }
        if let Some(t) = &self.file.branch_template {
            let t = ff_worktree::BranchTemplate::parse(t)
                .map_err(|e| Failure::invalid(format!("ff.toml: {e}")))?;
            c = c.with_branch_template(t);
        }
        if let Some(t) = &self.file.lock_timeout {
            let t = humantime::parse_duration(t)
                .map_err(|e| Failure::invalid(format!("ff.toml: lock_timeout {t:?}: {e}")))?;
            c = c.with_lock_timeout(t);
        }
        if let Some(t) = &self.file.cleanup_grace {
            let t = humantime::parse_duration(t)
                .map_err(|e| Failure::invalid(format!("ff.toml: cleanup_grace {t:?}: {e}")))?;
            c = c.with_cleanup_grace(t);
        }
        if let Some(on) = self.file.on_running {
            c = c.with_on_running(on);
        }
        if let Some(paths) = &self.file.symlink {
            c = c.with_symlinks(paths.clone());
        }
        if let Some(n) = self.file.slots {
            c = c.with_slots(n);
        }
        if let Some(dirs) = &self.file.sparse {
            let dirs = dirs
                .iter()
                .map(|d| ff_worktree::SparseDir::parse(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::invalid(format!("ff.toml: sparse: {e}")))?;
            // An empty list is a full checkout: `--no-checkout` asks for
            // the top-level files alone.
            if !dirs.is_empty() {
                c = c.with_checkout(ff_worktree::Checkout::sparse(dirs));
            }
        }
        if let Some(n) = self.file.include_max_bytes {
            c = c.with_include_max_bytes(n);
        }
        c = c.with_pool_size(self.pool_size());
        let port = |key: &str, n: u32| {
            u16::try_from(n).map_err(|_| {
                Failure::invalid(format!("ff.toml: {key} {n} is beyond 65535, the last port"))
            })
        };
        match (self.file.port_base, self.file.port_stride) {
            (Some(base), stride) => {
                c = c.with_ports(
                    port("port_base", base)?,
                    port("port_stride", stride.unwrap_or(1))?,
                );
            }
            (None, Some(_)) => {
                return Err(Failure::invalid(
                    "ff.toml: port_stride without port_base; set port_base (the port of slot 0)",
                ));
            }
            (None, None) => {}
        }
        Ok(c)
    }

    /// Where local state lives: the configured directory, else
    /// `<repository>/.git/ff` (which needs a repository).
    pub(crate) async fn state_dir(&self) -> Result<PathBuf, Failure> {
        match self.state_root()? {
            Some(d) => Ok(d.root().to_path_buf()),
            None => Err(Failure::invalid(format!(
                "{} is not inside a git repository; run ff inside one, pass -C DIR, or give \
                 --state-dir for locks and records",
                escape_path(&self.dir)
            ))),
        }
    }

    /// The state directory, if there is one: the configured directory,
    /// else `<common dir>/ff`. Locks and records need only this, not the
    /// worktree checks `locate` makes.
    pub(crate) fn state_root(&self) -> Result<Option<ff_worktree::StateDir>, Failure> {
        Ok(self
            .explicit_state_dir()?
            .map(ff_worktree::StateDir::new)
            .or_else(|| self.common_dir().map(ff_worktree::StateDir::of_repository)))
    }

    /// The state directory at `root`, made ready: private, no link where
    /// state lives (a link is refused, 65), and, outside the repository's
    /// `.git`, one that ff made on this machine (else 77: a repository can
    /// ship a directory of records; see [`crate::trust::vouch_for_store`]).
    fn prepared(&self, root: &Path) -> Result<ff_worktree::StateDir, Failure> {
        let state = ff_worktree::StateDir::new(root);
        // The lock provider and the store share one directory: checked
        // once per run, not once for each.
        if self.prepared_root.get().is_some_and(|done| done == root) {
            return Ok(state);
        }
        state.prepare().map_err(|e| {
            if e.kind() == ff_worktree::ErrorKind::Contract(ff_traits::ErrorKind::InvalidInput) {
                Failure::from(e)
            } else {
                crate::output::before_work(e)
            }
        })?;
        let inside_git = self.common_dir().is_some_and(|c| root.starts_with(c));
        if !inside_git && !self.trust.everything_for_this_run {
            crate::trust::vouch_for_store(root, crate::trust::Adopt::No)?;
        }
        let _ = self.prepared_root.set(root.to_path_buf());
        Ok(state)
    }

    /// `--state-dir` (or its `FF_`/ff.toml forms), if given.
    fn explicit_state_dir(&self) -> Result<Option<PathBuf>, Failure> {
        let Some(d) = &self.state_dir else {
            return Ok(None);
        };
        // A file in the way is the user's mistake (65), not a backend that
        // cannot be opened (69).
        if d.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(Failure::invalid(format!(
                "state dir {:?} contains a NUL byte; name a real directory",
                d.display()
            )));
        }
        if d.exists() && !d.is_dir() {
            return Err(Failure::invalid(format!(
                "state dir {} exists and is not a directory; name a directory (or a path that \
                 does not exist yet)",
                d.display()
            )));
        }
        Ok(Some(d.clone()))
    }

    /// The lock provider named by `--lock`.
    pub(crate) async fn locks(&self) -> Result<Locks, Failure> {
        self.locks_metered(Metered::Yes).await
    }

    /// The lock provider named by `--lock`, measured or not.
    pub(crate) async fn locks_metered(&self, metered: Metered) -> Result<Locks, Failure> {
        let locks = match &self.lock {
            LockBackend::Redis(url) => redis_locks(url).await?,
            LockBackend::Postgres(url) => postgres_locks(url).await?,
            LockBackend::File => self.locks_in(self.state_dir().await?).await?,
        };
        Ok(metered.locks(locks))
    }

    /// The file lock provider, when `--lock` is the file backend (`ff gc`
    /// prunes its free lock files).
    pub(crate) async fn file_locks(&self) -> Result<Option<FileLockProvider>, Failure> {
        match &self.lock {
            LockBackend::File => Ok(Some(FileLockProvider::new(
                self.prepared(&self.state_dir().await?)?.locks(),
            ))),
            LockBackend::Redis(_) | LockBackend::Postgres(_) => Ok(None),
        }
    }

    /// The store named by `--store`.
    pub(crate) async fn store(&self) -> Result<Store, Failure> {
        self.store_metered(Metered::Yes).await
    }

    /// The store named by `--store`, measured or not.
    pub(crate) async fn store_metered(&self, metered: Metered) -> Result<Store, Failure> {
        let store = match &self.store {
            StoreBackend::Redis(url) => redis_store(url).await?,
            StoreBackend::Postgres(url) => postgres_store(url).await?,
            StoreBackend::Sqlite | StoreBackend::Json => {
                self.store_in(self.state_dir().await?).await?
            }
        };
        Ok(metered.store(store))
    }

    async fn locks_in(&self, state: PathBuf) -> Result<Locks, Failure> {
        match &self.lock {
            LockBackend::File => Ok(Arc::new(FileLockProvider::new(
                self.prepared(&state)?.locks(),
            ))),
            LockBackend::Redis(url) => redis_locks(url).await,
            LockBackend::Postgres(url) => postgres_locks(url).await,
        }
    }

    async fn store_in(&self, state: PathBuf) -> Result<Store, Failure> {
        // A damaged database is corrupt state (1), not an unavailable one.
        let unavailable = crate::output::before_work;
        match &self.store {
            StoreBackend::Sqlite => Ok(Arc::new(
                SqliteStore::open(self.prepared(&state)?.sqlite()).map_err(unavailable)?,
            )),
            StoreBackend::Json => Ok(Arc::new(
                JsonStore::open(self.prepared(&state)?.json_records()).map_err(unavailable)?,
            )),
            StoreBackend::Redis(url) => redis_store(url).await,
            StoreBackend::Postgres(url) => postgres_store(url).await,
        }
    }

    /// The worktree manager on the configured backends.
    pub(crate) async fn manager(&self) -> Result<Manager, Failure> {
        self.manager_with(self.worktree_config()?).await
    }

    /// The worktree manager on the configured backends, measured or not.
    pub(crate) async fn manager_metered(&self, metered: Metered) -> Result<Manager, Failure> {
        self.manager_on(self.worktree_config()?, metered).await
    }

    /// `[alerts]`, checked.
    pub(crate) fn alert_rules(&self) -> Result<ff_serve::AlertRules, Failure> {
        let rules = self.file.alerts.clone().unwrap_or_default();
        rules
            .validate()
            .map_err(|e| Failure::invalid(format!("ff.toml: {e}")))?;
        Ok(rules)
    }

    /// Refuses (77) while any of the repository's `keys` is not approved.
    pub(crate) fn require_approved(&self, keys: &[&str]) -> Result<(), Failure> {
        let waiting = self.trust.unapproved(Some(keys), HooksToo::NotAsked);
        if waiting.settings.is_empty() {
            return Ok(());
        }
        let top = self.toplevel().unwrap_or(&self.dir);
        Err(crate::trust::not_approved(&waiting, top))
    }

    /// The `[hooks]` in force (the repository's, else the user's), if any
    /// command is configured.
    pub(crate) fn hooks_file(&self) -> Option<&crate::hooks::HooksFile> {
        self.file.hooks.as_ref().filter(|h| !h.is_empty())
    }

    /// The manager's configuration with the hooks when they may run: the
    /// user's own, or the repository's once approved for exactly this
    /// configuration and the files it runs (`ff hooks allow`, or
    /// `FF_HOOKS=allow`/`FF_TRUST=allow` for one run); none with
    /// `--no-hooks`. Unapproved hooks refuse (77), showing them.
    pub(crate) fn worktree_config_with_hooks(&self) -> Result<WorktreeConfig, Failure> {
        let config = self.worktree_config()?;
        let Some(file) = self.hooks_file() else {
            return Ok(config);
        };
        // Bad values are refused even when the hooks would not run.
        let mut hooks = file.to_hooks()?;
        if self.no_hooks {
            return Ok(config);
        }
        if self.trust.hooks.is_some() {
            if !self.trust.hooks_approved {
                let top = self.toplevel().unwrap_or(&self.dir);
                return Err(crate::trust::not_approved(
                    &self.trust.unapproved(Some(&[]), HooksToo::Asked),
                    top,
                ));
            }
            // What was approved is what runs: the files the commands name
            // must hold, in the worktree, the content approved.
            hooks.pinned_files.clone_from(&self.trust.pins);
        }
        // With --json, stderr carries only the error's JSON: hook output
        // goes to a log file per worktree.
        if self.json {
            hooks.log_dir = self.state_root()?.map(|d| d.hook_logs());
        }
        Ok(config.with_hooks(hooks))
    }

    /// The worktree manager for commands that run hooks (create, sync,
    /// cleanup, exec): see [`worktree_config_with_hooks`](Self::worktree_config_with_hooks).
    pub(crate) async fn manager_running_hooks(&self) -> Result<Manager, Failure> {
        self.manager_with(self.worktree_config_with_hooks()?).await
    }

    /// The worktree manager on the configured backends, with `config`.
    pub(crate) async fn manager_with(&self, config: WorktreeConfig) -> Result<Manager, Failure> {
        self.manager_on(config, Metered::Yes).await
    }

    async fn manager_on(
        &self,
        config: WorktreeConfig,
        metered: Metered,
    ) -> Result<Manager, Failure> {
        // The repository is checked first: its errors say more than a
        // backend's. The base path is resolved once and reused.
        // The repository found when the settings were read is not looked
        // for again.
        let at = match &self.repo {
            Some(found) if config.repo == self.dir => {
                ff_worktree::locate_discovered(&config, found.clone()).await
            }
            _ => ff_worktree::locate(&config).await,
        }
        .map_err(crate::output::before_work)?;
        let state = self
            .explicit_state_dir()?
            .unwrap_or_else(|| at.state.root().to_path_buf());
        let locks = metered.locks(self.locks_in(state.clone()).await?);
        let store = metered.store(self.store_in(state.clone()).await?);
        // A wait says what it waits for as it starts, not only at its end.
        let config = config.with_wait_report(crate::output::wait_report(Arc::clone(&locks)));
        let manager = WorktreeManager::open_at(config, at, locks, store)
            .await
            .map_err(crate::output::before_work)?;
        let _ = self.opened.set((manager.base_path().to_path_buf(), state));
        Ok(manager)
    }

    /// With [`defer_deletion`](Self::defer_deletion), once the command is
    /// done: starts the deletion of what its removals left, in the
    /// background, logging to `<state dir>/deletions.log`.
    /// How many warm pool worktrees to keep ready (`[pool] size`).
    pub(crate) fn pool_size(&self) -> usize {
        self.file.pool.and_then(|p| p.size).unwrap_or(0)
    }

    /// With [`refill_pool`](Self::refill_pool) and a pool configured, once
    /// the command is done: starts `ff pool fill` in the background,
    /// logging to `<state dir>/pool.log` (see
    /// [`crate::commands::pool::start`]). Always, not only when fewer pool
    /// directories than `[pool] size` are there: one a claim killed midway
    /// left counts as a directory but is no pool worktree, and only a fill
    /// settles it. A fill that finds the pool full ends at once.
    pub(crate) fn start_pool_fill(&self) {
        let Some((_, state)) = self.opened.get() else {
            return;
        };
        // Under --no-hooks a fill would make pool worktrees `pool_prepare`
        // never ran in, which later creates would take as prepared.
        if !self.refill_pool || self.pool_size() == 0 || self.no_hooks {
            return;
        }
        crate::commands::pool::start(&self.dir, &self.background, &state.join("pool.log"));
    }

    pub(crate) fn start_deferred_deletion(&self) {
        if let (true, Some((base, state))) = (self.defer_deletion, self.opened.get()) {
            crate::commands::delete_removed::start(base, &state.join("deletions.log"));
        }
    }
}

/// Refuses values no run could use (65), whether or not they are approved:
/// a NUL byte in a path, a backend name or URL of no known shape.
/// The global options of `global` that a background `ff pool fill` needs,
/// as environment variables (never arguments: a backend URL may carry a
/// password, which `ps` would show).
fn background_options(global: &Global) -> Vec<(&'static str, std::ffi::OsString)> {
    let mut env = Vec::new();
    if let Some(p) = &global.base_path {
        env.push(("FF_BASE_PATH", p.clone().into_os_string()));
    }
    if let Some(l) = &global.lock {
        env.push(("FF_LOCK", l.into()));
    }
    if let Some(s) = &global.store {
        env.push(("FF_STORE", s.into()));
    }
    if let Some(d) = &global.state_dir {
        env.push(("FF_STATE_DIR", d.clone().into_os_string()));
    }
    env
}

fn check_values(file: &FileConfig) -> Result<(), Failure> {
    for (key, path) in [
        ("base_path", &file.base_path),
        ("state_dir", &file.state_dir),
    ] {
        if let Some(p) = path
            && p.as_os_str().as_encoded_bytes().contains(&0)
        {
            return Err(Failure::invalid(format!(
                "ff.toml: {key} {:?} contains a NUL byte; name a real directory",
                escape_path(p)
            )));
        }
    }
    if let Some(t) = &file.branch_template {
        ff_worktree::BranchTemplate::parse(t)
            .map_err(|e| Failure::invalid(format!("ff.toml: {e}")))?;
    }
    if let Some(l) = &file.lock {
        l.parse::<LockBackend>()?;
    }
    if let Some(s) = &file.store {
        s.parse::<StoreBackend>()?;
    }
    if let Some(h) = &file.hooks {
        h.to_hooks()?;
    }
    if let Some(n) = file.pool.and_then(|p| p.size)
        && n > MAX_POOL_SIZE
    {
        return Err(Failure::invalid(format!(
            "ff.toml: pool.size {n} is more than {MAX_POOL_SIZE}; each pool worktree is a whole \
             checkout: ask for fewer"
        )));
    }
    if let Some(rules) = &file.alerts {
        rules
            .validate()
            .map_err(|e| Failure::invalid(format!("ff.toml: {e}")))?;
    }
    Ok(())
}

/// Whether `FF_TRUST` or `FF_HOOKS` says `allow` (one run's approval);
/// any other non-empty value is a mistake (65).
fn env_allows(name: &str) -> Result<bool, Failure> {
    match std::env::var(name) {
        Ok(v) if v == "allow" => Ok(true),
        Ok(v) if v.is_empty() => Ok(false),
        Ok(v) => Err(Failure::invalid(format!(
            "{name}={:?}: the one value it takes is `allow` (use --no-hooks to run without hooks)",
            ff_worktree::display::escape(&v)
        ))),
        Err(_) => Ok(false),
    }
}

/// Where the repository's own steering keys and hooks stand: approved on
/// this machine for this clone (its common directory) and exactly these
/// values, or for this run by `FF_TRUST=allow` (everything) or
/// `FF_HOOKS=allow` (hooks).
fn trust_state(
    project: &FileConfig,
    top: Option<&Path>,
    common_dir: Option<&Path>,
) -> Result<TrustState, Failure> {
    let steering = project.steering();
    let hooks = project.hooks.clone().filter(|h| !h.is_empty());
    let everything = env_allows("FF_TRUST")?;
    if steering.is_empty() && hooks.is_none() {
        return Ok(TrustState {
            hooks_approved: true,
            everything_for_this_run: everything,
            ..TrustState::default()
        });
    }
    let hooks_for_this_run = hooks.is_some() && env_allows("FF_HOOKS")?;
    let approvals = Approvals::load();
    let pins = match (&hooks, top) {
        (Some(h), Some(top)) => {
            crate::trust::pinned_files(h.commands().into_iter().map(|(_, c)| c), top)
        }
        _ => Vec::new(),
    };
    let approved = |part: Part, digest: &str, legacy: Option<(&str, &Path)>| {
        common_dir.is_some_and(|c| approvals.approves(part, digest, c, legacy))
    };
    let unapproved = if everything {
        Vec::new()
    } else {
        steering
            .digests()
            .into_iter()
            .filter(|(key, digest)| !approved(Part::Setting(key), digest, None))
            .map(|(key, _)| key)
            .collect()
    };
    let hooks_approved = match (&hooks, top) {
        (None, _) => true,
        (Some(h), top) => {
            // An approval of the earlier form covered the table alone: it
            // still counts for hooks that run no file of the repository.
            let old_digest = h.digest();
            let legacy = top
                .filter(|_| pins.is_empty())
                .map(|t| (old_digest.as_str(), t));
            everything || hooks_for_this_run || approved(Part::Hooks, &h.digest_with(&pins), legacy)
        }
    };
    Ok(TrustState {
        steering,
        unapproved,
        hooks,
        pins,
        hooks_approved,
        everything_for_this_run: everything,
    })
}

fn read_file_config(path: &Path) -> Result<FileConfig, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            Failure::invalid(format!(
                "{}: {}",
                escape_path(path),
                ff_worktree::display::escape_text(&e.to_string())
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
        Err(e) => Err(Failure::invalid(format!(
            "cannot read {}: {e}",
            escape_path(path)
        ))),
    }
}

#[cfg(feature = "redis")]
async fn redis_locks(url: &RedisTarget) -> Result<Locks, Failure> {
    use ff_worktree::backends::redis::{RedisLockConfig, RedisLockProvider};
    let p = RedisLockProvider::connect(RedisLockConfig::new(url.as_str()))
        .await
        .map_err(crate::output::before_work)?;
    Ok(Arc::new(p))
}

#[cfg(feature = "redis")]
async fn redis_store(url: &RedisTarget) -> Result<Store, Failure> {
    use ff_worktree::backends::redis::{RedisStore, RedisStoreConfig};
    let s = RedisStore::connect(RedisStoreConfig::new(url.as_str()))
        .await
        .map_err(crate::output::before_work)?;
    Ok(Arc::new(s))
}

#[cfg(not(feature = "redis"))]
async fn redis_locks(_url: &RedisTarget) -> Result<Locks, Failure> {
    Err(redis_unavailable("lock"))
}

#[cfg(not(feature = "redis"))]
async fn redis_store(_url: &RedisTarget) -> Result<Store, Failure> {
    Err(redis_unavailable("store"))
}

#[cfg(not(feature = "redis"))]
fn redis_unavailable(role: &str) -> Failure {
    Failure::unavailable(format!(
        "this ff was built without the Redis {role} backend; rebuild with the `redis` feature \
         (on by default) or use --lock file --store sqlite"
    ))
}

#[cfg(feature = "postgres")]
async fn postgres_locks(url: &PostgresTarget) -> Result<Locks, Failure> {
    use ff_worktree::backends::postgres::{PostgresLockConfig, PostgresLockProvider};
    let p = PostgresLockProvider::connect(PostgresLockConfig::new(url.as_str()))
        .await
        .map_err(crate::output::before_work)?;
    Ok(Arc::new(p))
}

#[cfg(feature = "postgres")]
async fn postgres_store(url: &PostgresTarget) -> Result<Store, Failure> {
    use ff_worktree::backends::postgres::{PostgresStore, Settings};
    let s = PostgresStore::connect(url, Settings::default())
        .await
        .map_err(crate::output::before_work)?;
    Ok(Arc::new(s))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_locks(_url: &PostgresTarget) -> Result<Locks, Failure> {
    Err(postgres_unavailable("lock"))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_store(_url: &PostgresTarget) -> Result<Store, Failure> {
    Err(postgres_unavailable("store"))
}

#[cfg(not(feature = "postgres"))]
fn postgres_unavailable(role: &str) -> Failure {
    Failure::unavailable(format!(
        "this ff was built without the PostgreSQL {role} backend; rebuild with the `postgres` \
         feature (on by default) or use --lock file --store sqlite"
    ))
}

/// Whether a refusal lists unapproved hooks beside the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HooksToo {
    /// The command runs hooks: list them.
    Asked,
    /// It runs none: settings only.
    NotAsked,
}

#[cfg(test)]
mod tests {
    use super::FileConfig;

    /// The keys `ff.toml` accepts in `table` (`""` for the top level), as
    /// serde names them when it refuses one it does not know: so a key
    /// added to the types is found here without a list to keep.
    fn accepted(table: &str) -> Vec<String> {
        let text = if table.is_empty() {
            "ff_no_such_key = 1\n".to_owned()
        } else {
            format!("[{table}]\nff_no_such_key = 1\n")
        };
        let err = toml::from_str::<FileConfig>(&text)
            .expect_err("an unknown key is refused")
            .to_string();
        // "expected one of `a`, `b`", or "expected `a`" for a table of
        // one key.
        let expected = err
            .split("expected one of")
            .nth(1)
            .or_else(|| err.split("expected ").nth(1))
            .unwrap_or_else(|| panic!("serde's message changed: {err}"));
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// docs/configuration.md documents every key `ff.toml` accepts, in its
    /// table or under its `[table]` heading.
    #[test]
    fn every_accepted_key_is_documented() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md"),
        )
        .expect("docs/configuration.md");
        let section = |table: &str| -> String {
            if table.is_empty() {
                return doc.split("\n## ").next().unwrap_or_default().to_owned();
            }
            doc.split(&format!("\n## `[{table}]`"))
                .nth(1)
                .and_then(|rest| rest.split("\n## ").next())
                .unwrap_or_default()
                .to_owned()
        };
        let mut missing = Vec::new();
        for table in ["", "hooks", "alerts", "pool"] {
            let keys = accepted(table);
            let at_least = if table == "pool" { 1 } else { 6 };
            assert!(keys.len() >= at_least, "{table}: {keys:?}");
            let text = section(table);
            for key in keys {
                let shown =
                    if matches!(key.as_str(), "hooks" | "alerts" | "pool") && table.is_empty() {
                        format!("| `[{key}]` |")
                    } else {
                        format!("| `{key}` |")
                    };
                if !text.contains(&shown) {
                    missing.push(if table.is_empty() {
                        key
                    } else {
                        format!("{table}.{key}")
                    });
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys ff.toml accepts that docs/configuration.md does not document: {missing:?}"
        );
    }
}
