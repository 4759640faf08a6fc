//! What the `ff` binary's tests share: running it, reading its answers.

#![allow(dead_code)] // each test file uses part of it

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `ff` in `dir` with none of the `FF_*` settings of the caller.
pub(crate) fn ff(dir: &Path, args: &[&str]) -> Output {
    ff_command(dir, args).output().expect("run ff")
}

/// `ff ARGS` in `dir` as [`ff`] runs it (no `FF_*` settings of the
/// caller's), to adjust before running.
pub(crate) fn ff_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ff"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_REPO")
        .env_remove("FF_BASE_PATH")
        .env_remove("FF_STATE_DIR")
        .env_remove("RUST_LOG")
        .env_remove("FF_REDIS_CA")
        .env_remove("FF_REDIS_CERT")
        .env_remove("FF_REDIS_KEY");
    command
}

/// The lock backends to run a test on: the file lock (no flag), and Redis
/// when a server runs (`--lock URL`).
pub(crate) fn lock_backends(redis: Option<&ff_testkit::redis::RedisServer>) -> Vec<Vec<String>> {
    let mut backends = vec![Vec::new()];
    if let Some(r) = redis {
        backends.push(vec!["--lock".into(), r.url()]);
    }
    if let Some(url) = postgres_url() {
        backends.push(vec!["--lock".into(), url]);
    }
    backends
}

/// One PostgreSQL server for the whole test binary (`None`, with a loud
/// skip, where it is not installed).
pub(crate) fn postgres() -> Option<&'static ff_testkit::postgres::PgServer> {
    ff_testkit::postgres::shared()
}

/// A URL of [`postgres`] with a schema of its own (so tests sharing the
/// server never see each other's locks and records).
pub(crate) fn postgres_url() -> Option<String> {
    Some(ff_testkit::postgres::isolated(&postgres()?.url()))
}

/// Starts `ff BACKEND ARGS` in `dir` without the caller's `FF_*`
/// settings, stdout discarded, stderr piped.
/// A contender: `ff` started with `args` (a `lock` that will have to wait),
/// returned once it says it waits for the lock (its debug log), with a
/// thread gathering the rest of its stderr: a readiness signal, not a
/// fixed sleep.
///
/// # Panics
/// When it never waits (within 30 s) or ends first.
pub(crate) fn spawn_ff_waiting(
    dir: &Path,
    backend: &[String],
    args: &[&str],
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut all: Vec<&str> = backend.iter().map(String::as_str).collect();
    all.extend(args);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(&all)
        .current_dir(dir)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_STATE_DIR")
        .env("RUST_LOG", "ff_metrics=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ff");
    let stderr = child.stderr.take().expect("piped stderr");
    let (waiting, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut said = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("the lock is held: waiting") {
                let _ = waiting.send(());
            }
            said.push_str(&line);
            said.push('\n');
        }
        said
    });
    if rx.recv_timeout(std::time::Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let said = reader.join().unwrap_or_default();
        panic!("ff {args:?} never waited for its lock: {said}");
    }
    (child, reader)
}

pub(crate) fn spawn_ff_with(dir: &Path, backend: &[String], args: &[&str]) -> std::process::Child {
    let mut all: Vec<&str> = backend.iter().map(String::as_str).collect();
    all.extend(args);
    Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(&all)
        .current_dir(dir)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_STATE_DIR")
        .env_remove("FF_REDIS_CA")
        .env_remove("FF_REDIS_CERT")
        .env_remove("FF_REDIS_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ff")
}

/// `ff` in `dir` with `config` as the user's configuration directory (never
/// the developer's own) and `env`.
pub(crate) fn ff_in(dir: &Path, config: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    command_in(dir, config, env, args).output().expect("run ff")
}

/// `ff` in `dir` as [`ff_in`], with `input` on stdin and its output read
/// through pipes (as an agent runs a hook: it returns only once every
/// process holding them has closed them).
pub(crate) fn ff_with_input(
    dir: &Path,
    config: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    input: &str,
) -> Output {
    use std::io::Write as _;
    let mut child = command_in(dir, config, env, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ff");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write the input");
    child.wait_with_output().expect("ff ends")
}

pub(crate) fn command_in(
    dir: &Path,
    config: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ff"));
    c.args(args);
    isolated(&mut c, dir, config, env);
    c
}

/// Runs `c` in `dir` with `config` as the user's configuration directory,
/// none of the caller's `FF_*` settings, and `env`.
pub(crate) fn isolated<'c>(
    c: &'c mut Command,
    dir: &Path,
    config: &Path,
    env: &[(&str, &str)],
) -> &'c mut Command {
    c.current_dir(dir).env("FF_CONFIG_DIR", config);
    for var in [
        "FF_HOOKS",
        "FF_TRUST",
        "FF_LOCK",
        "FF_STORE",
        "FF_STATE_DIR",
        "FF_BASE_PATH",
        "FF_REPO",
    ] {
        c.env_remove(var);
    }
    c.envs(env.iter().copied())
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub(crate) fn stdout_json(o: &Output) -> Value {
    assert_eq!(
        code(o),
        0,
        "ff failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// The error JSON on stderr (checked against `schemas/error.schema.json`):
/// its kind.
pub(crate) fn error_kind(o: &Output) -> String {
    let v: Value = serde_json::from_slice(&o.stderr)
        .unwrap_or_else(|_| panic!("stderr is not JSON: {}", String::from_utf8_lossy(&o.stderr)));
    assert_valid("error", &v);
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    v["error"]["kind"].as_str().expect("kind").to_owned()
}

/// The error JSON on stderr (checked against its schema): the `error`
/// object, with its facts.
pub(crate) fn error_json(o: &Output) -> Value {
    let v: Value = serde_json::from_slice(&o.stderr)
        .unwrap_or_else(|_| panic!("stderr is not JSON: {}", String::from_utf8_lossy(&o.stderr)));
    assert_valid("error", &v);
    v["error"].clone()
}

/// Checks `value` against the shipped JSON Schema `schemas/<command>.schema.json`.
///
/// # Panics
/// With every violation, when it does not validate.
pub(crate) fn assert_valid(command: &str, value: &Value) {
    let errors = violations(command, value);
    assert!(
        errors.is_empty(),
        "`ff {command} --json` output does not match schemas/{command}.schema.json:\n{}\n{value:#}",
        errors.join("\n")
    );
}

/// What is wrong with `value` by `schemas/<command>.schema.json` and, for
/// a shape whose schema is also generated from its type
/// (`schemas/generated/<shape>.schema.json`), by that one too: the
/// hand-written schemas stay as fixtures beside the generated ones.
pub(crate) fn violations(command: &str, value: &Value) -> Vec<String> {
    // The schema generated from the shape's type (ff-model), where one is:
    // `generated/locks.schema.json` for `locks`, `generated/serve_lock…`
    // for `common#serve_lock`.
    violations_as(
        command,
        command.strip_prefix("common#").unwrap_or(command),
        value,
    )
}

/// Checks `value` against `schemas/<command>.schema.json` and the schema
/// generated from its type, `schemas/generated/<shape>.schema.json`, where
/// one hand-written schema describes several types (`top` is both `ff top`
/// and `GET /api/stats`, `serve_stats` with the server's fields).
///
/// # Panics
/// With every violation, when it does not validate.
pub(crate) fn assert_valid_as(command: &str, shape: &str, value: &Value) {
    let errors = violations_as(command, shape, value);
    assert!(
        errors.is_empty(),
        "output does not match schemas/{command}.schema.json and generated/{shape}:\n{}\n{value:#}",
        errors.join("\n")
    );
}

/// Checks `value` against `schemas/generated/<shape>.schema.json` alone: a
/// shape first described by its type (`serve_event`).
///
/// # Panics
/// With every violation, when it does not validate, or when there is no
/// such schema.
pub(crate) fn assert_generated(shape: &str, value: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/generated")
        .join(format!("{shape}.schema.json"));
    assert!(path.exists(), "no generated schema {}", path.display());
    let errors = generated_violations(shape, value);
    assert!(
        errors.is_empty(),
        "output does not match generated/{shape}:\n{}\n{value:#}",
        errors.join("\n")
    );
}

fn violations_as(command: &str, shape: &str, value: &Value) -> Vec<String> {
    let mut found = hand_written_violations(command, value);
    found.extend(generated_violations(shape, value));
    found
}

/// Shapes with a hand-written schema and none generated yet: a page of
/// the API is generic over its items (`Page<T>`), each item checked by
/// its own shape's schema.
const NOT_GENERATED: &[&str] = &["serve_page"];

fn generated_violations(shape: &str, value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas/generated")
            .join(format!("{shape}.schema.json"));
        // Every other shape has one: a missing file is a failure, never a
        // check skipped.
        let text = std::fs::read_to_string(&path);
        assert!(
            text.is_ok() || NOT_GENERATED.contains(&shape),
            "no generated schema {} (ff-model's schema::generated lists them)",
            path.display()
        );
        if let Ok(text) = text {
            let schema: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()));
            found.extend(
                validator
                    .iter_errors(value)
                    .map(|e| format!("generated {shape}: {} at {}", e, e.instance_path())),
            );
        }
    }
    found
}

fn hand_written_violations(command: &str, value: &Value) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(format!("{name}.schema.json")))
            .unwrap_or_else(|e| panic!("schema {name}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("schema {name} is not JSON: {e}"))
    };
    let common = read("common");
    let schema = match command.strip_prefix("common#") {
        // One shape of the common schema: `common#serve_lock`.
        Some(def) => serde_json::json!({
            "$ref": format!("https://schemas.forgeflow.invalid/common.schema.json#/$defs/{def}")
        }),
        None => read(command),
    };
    let registry = jsonschema::Registry::new()
        .add(
            common["$id"].as_str().expect("common schema $id"),
            common.clone(),
        )
        .expect("register the common schema")
        .prepare()
        .expect("prepare the schema registry");
    let validator = jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {command} does not compile: {e}"));
    validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// A running `ff serve` on a free loopback port, stopped when dropped.
pub(crate) struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/`.
    pub(crate) url: String,
    /// The admin token, when started with `--admin`.
    pub(crate) token: Option<String>,
}

impl Served {
    /// `ff serve --listen 127.0.0.1:0 --json ARGS` in `dir`, with quick
    /// polling; returns once it listens.
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_with_env(dir, args, &[])
    }

    /// As [`start`](Self::start), with extra environment.
    pub(crate) fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ff"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--json"])
            .args(["--poll-interval", "100ms", "--record-interval", "200ms"])
            .args(["--history-interval", "1s"])
            .args(args)
            .current_dir(dir)
            .env_remove("FF_LOCK")
            .env_remove("FF_STORE")
            .env_remove("FF_REPO")
            .env_remove("FF_STATE_DIR")
            .env_remove("FF_SERVE_TOKEN")
            .env_remove("RUST_LOG")
            // As a user starts it, who has not set it (`serve` sets it itself).
            .env_remove("MALLOC_ARENA_MAX")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ff serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("ff serve printed {line:?} ({e})"));
        assert_valid("serve", &v);
        Self {
            child,
            url: v["listening"].as_str().expect("url").to_owned(),
            token: v["admin_token"].as_str().map(str::to_owned),
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `URL` + `path` (no leading slash).
    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path.trim_start_matches('/'))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Evaluates `check` every 50 ms until it holds or `within` passes.
pub(crate) fn eventually(within: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(unix)]
/// `ff lock NAME -- sh -c 'echo taken; sleep SECS'` in `dir`; returns
/// once the lock is held (the child said so).
pub(crate) fn hold_lock(dir: &std::path::Path, name: &str, secs: u32) -> std::process::Child {
    use std::io::BufRead;
    use std::process::Stdio;
    let script = format!("echo taken; sleep {secs}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(["lock", name, "--", "sh", "-c", &script])
        .current_dir(dir)
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .env_remove("FF_STATE_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ff lock");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "taken");
    child
}

#[cfg(unix)]
/// Stops an `ff lock` the way a user would (SIGTERM: it stops its
/// command, then releases). SIGKILL would leave the command running, and
/// the lock rightly held for it.
pub(crate) fn stop(mut holder: std::process::Child) {
    let pid =
        rustix::process::Pid::from_raw(i32::try_from(holder.id()).expect("pid")).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    holder.wait().expect("wait");
}
