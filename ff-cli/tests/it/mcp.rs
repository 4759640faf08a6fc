//! `ff mcp` driven as an agent's MCP client drives it: a child process
//! spoken to in JSON-RPC lines on stdin and stdout. Every structured
//! result is checked against the output schema its tool lists; the
//! concurrency guarantees are checked across separate server processes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use ff_testkit::git::TestRepo;
use serde_json::{Value, json};

/// One `ff mcp` session.
struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    /// `tools/list`'s tools, by name.
    tools: Vec<Value>,
}

impl Session {
    fn start(dir: &Path, config: &Path, args: &[&str]) -> Self {
        let mut all = vec!["mcp"];
        all.extend_from_slice(args);
        let mut child = crate::common::command_in(dir, config, &[], &all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ff mcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut s = Self {
            child,
            stdin,
            stdout,
            next_id: 0,
            tools: Vec::new(),
        };
        let init = s.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "ff-tests", "version": "1"}
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "forgeflow", "{init}");
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let listed = s.request("tools/list", json!({}));
        s.tools = listed["result"]["tools"].as_array().expect("tools").clone();
        s
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").expect("write to ff mcp");
        self.stdin.flush().expect("flush");
    }

    /// Sends a request; returns its response (notifications in between
    /// are skipped).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read ff mcp");
            assert!(n > 0, "ff mcp closed its output before answering {method}");
            let message: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    fn tool(&self, name: &str) -> &Value {
        self.tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
    }

    /// Calls `name`; returns (isError, structuredContent), the content
    /// checked against the tool's output schema when it is no error.
    fn call(&mut self, name: &str, arguments: Value) -> (bool, Value) {
        let response = self.request("tools/call", json!({"name": name, "arguments": arguments}));
        let result = &response["result"];
        assert!(result.is_object(), "{name}: no result: {response}");
        let is_error = result["isError"] == json!(true);
        if is_error {
            // The error `ff --json` prints, as JSON text: no structured
            // content, which clients would check against the output schema.
            assert!(
                result.get("structuredContent").is_none(),
                "{name}: {response}"
            );
            let text = result["content"][0]["text"]
                .as_str()
                .expect("an error's text");
            let error: Value = serde_json::from_str(text).expect("an error is JSON");
            crate::common::assert_valid("error", &error);
            return (true, error);
        }
        let content = result["structuredContent"].clone();
        assert!(
            content.is_object(),
            "{name}: no structured content: {response}"
        );
        {
            let schema = &self.tool(name)["outputSchema"];
            let validator = jsonschema::validator_for(schema)
                .unwrap_or_else(|e| panic!("{name}: its output schema does not compile: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(&content)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{name}: {content} breaks its schema: {errors:?}"
            );
        }
        (is_error, content)
    }

    fn ok(&mut self, name: &str, arguments: Value) -> Value {
        let (is_error, content) = self.call(name, arguments);
        assert!(!is_error, "{name} failed: {content}");
        content
    }

    fn error_kind(&mut self, name: &str, arguments: Value) -> String {
        let (is_error, content) = self.call(name, arguments);
        assert!(is_error, "{name} did not fail: {content}");
        content["error"]["kind"].as_str().expect("kind").to_owned()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_dir(repo: &TestRepo) -> std::path::PathBuf {
    let dir = repo.scratch("config");
    std::fs::create_dir_all(&dir).expect("config dir");
    dir
}

#[test]
fn every_tool_has_schemas_and_answers_within_them() {
    let repo = TestRepo::new();
    let config = config_dir(&repo);
    let mut s = Session::start(repo.path(), &config, &[]);
    let names: Vec<&str> = s.tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for expected in [
        "worktree_create",
        "worktree_get",
        "worktree_list",
        "worktree_sync",
        "worktree_cleanup",
        "worktree_prune",
        "lock_acquire",
        "lock_renew",
        "lock_release",
        "lock_list",
        "operation_claim",
        "operation_complete",
        "operation_fail",
        "operation_status",
        "agent_status_set",
        "agent_status_get",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for tool in &s.tools {
        for which in ["inputSchema", "outputSchema"] {
            let schema = &tool[which];
            assert_eq!(
                schema["type"], "object",
                "{}: {which} {schema}",
                tool["name"]
            );
            jsonschema::validator_for(schema)
                .unwrap_or_else(|e| panic!("{}: {which} does not compile: {e}", tool["name"]));
        }
    }

    let created = s.ok("worktree_create", json!({"issue": "7"}));
    assert_eq!(created["reused"], false);
    let path = created["path"].as_str().expect("path").to_owned();
    assert!(Path::new(&path).is_dir(), "{path}");
    let again = s.ok("worktree_create", json!({"issue": "7"}));
    assert_eq!(again["reused"], true);
    assert_eq!(again["path"], created["path"]);
    assert_eq!(
        s.ok("worktree_get", json!({"target": "7"}))["id"],
        created["id"]
    );
    let listed = s.ok("worktree_list", json!({}));
    assert_eq!(listed["worktrees"].as_array().map(Vec::len), Some(1));
    s.ok("worktree_sync", json!({"target": "7"}));
    let status = s.ok(
        "agent_status_set",
        json!({"target": "7", "state": "waiting", "note": "needs a key"}),
    );
    assert_eq!(status["agent_status"]["state"], "waiting");
    assert_eq!(
        s.ok("agent_status_get", json!({"target": "7"}))["agent_status"]["note"],
        "needs a key"
    );
    assert_eq!(
        s.ok("worktree_get", json!({"target": "7"}))["agent_status"]["state"],
        "waiting"
    );
    s.ok("worktree_prune", json!({"dry_run": true}));
    assert_eq!(
        s.error_kind("worktree_get", json!({"target": "nope"})),
        "not_found"
    );

    // Work at stake: a safe cleanup refuses, saying what; force is off.
    std::fs::write(Path::new(&path).join("work.txt"), "agent's work").expect("write");
    assert_eq!(
        s.error_kind("worktree_cleanup", json!({"target": "7"})),
        "would_lose_work"
    );
    assert_eq!(
        s.error_kind("worktree_cleanup", json!({"target": "7", "force": true})),
        "refused"
    );
    assert!(
        Path::new(&path).join("work.txt").is_file(),
        "the work was lost"
    );

    // A sparse worktree per call: the top-level files alone here.
    let sparse = s.ok("worktree_create", json!({"issue": "8s", "sparse": []}));
    assert_eq!(
        sparse["sparse"],
        json!({"cone": true, "paths": []}),
        "{sparse}"
    );
    for bad in [json!(["../up"]), json!(["nowhere"])] {
        assert_eq!(
            s.error_kind("worktree_create", json!({"issue": "9s", "sparse": bad})),
            "invalid_input"
        );
    }

    // Bad arguments: a clear error, never a crash; the session goes on.
    assert_eq!(
        s.error_kind("worktree_create", json!({"issue": "bad id!"})),
        "invalid_input"
    );
    let bad = s.request(
        "tools/call",
        json!({"name": "worktree_create", "arguments": {"issue": 7, "extra": true}}),
    );
    assert!(
        bad.get("error").is_some() || bad["result"]["isError"] == json!(true),
        "{bad}"
    );
    s.ok("lock_list", json!({}));
}

#[test]
fn a_cleanup_forces_only_on_a_server_started_to_allow_it() {
    let repo = TestRepo::new();
    let config = config_dir(&repo);
    let mut s = Session::start(repo.path(), &config, &["--allow-force"]);
    let created = s.ok("worktree_create", json!({"issue": "8"}));
    let path = Path::new(created["path"].as_str().expect("path")).to_path_buf();
    // A commit the base lacks: unmerged work.
    ff_testkit::git::commit_file(&path, "work.txt", "agent's work", "work");
    let done = s.ok("worktree_cleanup", json!({"target": "8", "force": true}));
    let archive = done["archived_at"]
        .as_str()
        .expect("work kept under an archive ref");
    assert!(
        repo.archives()
            .iter()
            .any(|a| archive.ends_with(a.as_str()) || a == archive),
        "{archive}"
    );
}

#[test]
fn eight_servers_creating_one_issue_get_one_worktree() {
    let repo = TestRepo::new();
    let config = config_dir(&repo);
    let paths: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut s = Session::start(repo.path(), &config, &[]);
                    s.ok("worktree_create", json!({"issue": "42"}))["path"]
                        .as_str()
                        .expect("path")
                        .to_owned()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    assert!(paths.iter().all(|p| p == &paths[0]), "{paths:?}");
    assert_eq!(
        repo.worktree_paths().len(),
        2,
        "the main checkout and one worktree"
    );
}

#[test]
fn a_lease_lapses_unrenewed_and_the_next_holder_gets_a_higher_token() {
    let repo = TestRepo::new();
    let config = config_dir(&repo);
    let mut a = Session::start(repo.path(), &config, &[]);
    let mut b = Session::start(repo.path(), &config, &[]);
    let held = a.ok("lock_acquire", json!({"name": "deploy", "ttl_seconds": 4}));
    assert_eq!(held["outcome"], "acquired", "{held}");
    let busy = b.ok("lock_acquire", json!({"name": "deploy"}));
    assert_eq!(busy["outcome"], "busy", "{busy}");
    // Renewed, it stays held past its first deadline (2 s of margin each
    // side: a slow machine does not turn a renewal into a lapse).
    let lease = held["lease"].as_str().expect("lease").to_owned();
    std::thread::sleep(std::time::Duration::from_secs(2));
    a.ok("lock_renew", json!({"lease": lease}));
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        b.ok("lock_acquire", json!({"name": "deploy"}))["outcome"],
        "busy"
    );
    // Unrenewed, it lapses: the waiter gets it, with a higher token.
    let next = b.ok(
        "lock_acquire",
        json!({"name": "deploy", "wait_seconds": 20}),
    );
    assert_eq!(next["outcome"], "acquired", "{next}");
    assert!(
        next["fencing_token"].as_u64() > held["fencing_token"].as_u64(),
        "{next} after {held}"
    );
    assert_eq!(
        a.error_kind("lock_renew", json!({"lease": lease})),
        "not_found"
    );
    let released = b.ok("lock_release", json!({"lease": next["lease"]}));
    assert_eq!(released["name"], "deploy");
}

#[test]
fn a_claim_completed_by_one_client_is_reported_completed_to_the_others() {
    let repo = TestRepo::new();
    let config = config_dir(&repo);
    let mut a = Session::start(repo.path(), &config, &[]);
    let mut b = Session::start(repo.path(), &config, &[]);
    let op = json!({"operation": "migrate", "parameters": {"db": "main"}});
    let claimed = a.ok("operation_claim", op.clone());
    assert_eq!(claimed["outcome"], "claimed", "{claimed}");
    let held = b.ok("operation_claim", op.clone());
    assert_eq!(held["outcome"], "held", "{held}");
    assert_eq!(b.ok("operation_status", op.clone())["status"], "pending");
    a.ok(
        "operation_complete",
        json!({"claim": claimed["claim"], "result": {"rows": 3}}),
    );
    let told = b.ok("operation_claim", op.clone());
    assert_eq!(told["outcome"], "completed", "{told}");
    assert_eq!(told["result"], json!({"rows": 3}));
    assert_eq!(b.ok("operation_status", op)["status"], "completed");
    // A claim is finished once.
    assert_eq!(
        a.error_kind(
            "operation_complete",
            json!({"claim": claimed["claim"], "result": 1})
        ),
        "not_found"
    );
}

/// The directory of the Node clients (`npm ci` there installs them).
fn node_clients() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp-client");
    if dir.join("node_modules/@modelcontextprotocol/sdk").is_dir() {
        return Some(dir);
    }
    let why =
        "the MCP client tests need `npm ci` in ff-cli/tests/mcp-client (scripts/test.sh runs it)";
    assert!(
        std::env::var("FF_REQUIRE_NODE").as_deref() != Ok("1"),
        "{why}"
    );
    eprintln!("SKIPPED: {why}");
    None
}

/// The official TypeScript SDK's client, which nobody here wrote, runs its
/// checks (tests/mcp-client/client.mjs): schemas compiled by Ajv 2020,
/// every result validated, one worktree for 8 clients, leases, claims, bad
/// arguments.
#[test]
fn the_official_typescript_sdk_client_finds_every_promise_kept() {
    let Some(clients) = node_clients() else {
        return;
    };
    let repo = TestRepo::new();
    let config = config_dir(&repo);
    let out = std::process::Command::new("node")
        .arg(clients.join("client.mjs"))
        .arg(env!("CARGO_BIN_EXE_ff"))
        .arg(repo.path())
        .current_dir(&clients)
        .env("FF_CONFIG_DIR", &config)
        .env_remove("FF_REPO")
        .env_remove("FF_LOCK")
        .env_remove("FF_STORE")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the MCP Inspector's CLI with `args`; its JSON answer. From its
/// own build directory: it finds its package.json by a path relative to
/// the working directory.
fn inspector(clients: &Path, config: &Path, args: &[&std::ffi::OsStr]) -> Value {
    let build = clients.join("node_modules/@modelcontextprotocol/inspector-cli/build");
    let out = std::process::Command::new("node")
        .args(args)
        .current_dir(&build)
        .env("FF_CONFIG_DIR", config)
        .output()
        .expect("run the inspector");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the inspector prints JSON")
}

/// The MCP Inspector's CLI lists the tools.
#[test]
fn the_mcp_inspector_cli_lists_the_tools() {
    let Some(clients) = node_clients() else {
        return;
    };
    let repo = TestRepo::new();
    let config = config_dir(&repo);
    let listed = inspector(
        &clients,
        &config,
        &[
            "index.js".as_ref(),
            env!("CARGO_BIN_EXE_ff").as_ref(),
            "--repo".as_ref(),
            repo.path().as_os_str(),
            "mcp".as_ref(),
            "--method".as_ref(),
            "tools/list".as_ref(),
        ],
    );
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names.len(), 16, "{names:?}");
    assert!(names.contains(&"operation_claim"), "{names:?}");
}

/// The MCP client configuration in docs/agents.md, as a client reads it: the MCP
/// Inspector's CLI starts the server it names (with `ff` replaced by this
/// build) and lists the tools.
#[test]
fn the_readme_mcp_configuration_starts_the_server() {
    let Some(clients) = node_clients() else {
        return;
    };
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/agents.md"))
            .expect("docs/agents.md");
    let after = readme
        .split("<!-- mcp-config")
        .nth(1)
        .expect("docs/agents.md marks its MCP configuration");
    let block = after
        .split("```json\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a json block after the marker");
    let mut config: Value =
        serde_json::from_str(block).expect("the documented configuration is JSON");
    let server = &mut config["mcpServers"]["forgeflow"];
    assert_eq!(server["command"], "ff", "{block}");
    server["command"] = json!(env!("CARGO_BIN_EXE_ff"));
    let repo = TestRepo::new();
    let ff_config = config_dir(&repo);
    let file = repo.scratch("mcp-client").join("mcp.json");
    std::fs::write(&file, config.to_string()).expect("write the configuration");
    // The client starts the server in the repository; here the
    // repository is given by FF_REPO.
    let repo_env = format!("FF_REPO={}", repo.path().display());
    let config_env = format!("FF_CONFIG_DIR={}", ff_config.display());
    let listed = inspector(
        &clients,
        &ff_config,
        &[
            "cli.js".as_ref(),
            "--cli".as_ref(),
            "--config".as_ref(),
            file.as_os_str(),
            "--server".as_ref(),
            "forgeflow".as_ref(),
            "--method".as_ref(),
            "tools/list".as_ref(),
            "-e".as_ref(),
            repo_env.as_ref(),
            "-e".as_ref(),
            config_env.as_ref(),
        ],
    );
    assert_eq!(
        listed["tools"].as_array().map(Vec::len),
        Some(16),
        "{listed}"
    );
}

/// A repository's hooks run through MCP only once approved on this
/// machine, as through every command: before, the call is refused and the
/// hook has not run.
#[test]
fn an_mcp_call_never_runs_an_unapproved_hook() {
    let repo = TestRepo::new();
    let config = config_dir(&repo);
    let marker = repo.scratch("hook-ran").join("marker");
    std::fs::write(
        repo.path().join("ff.toml"),
        format!("[hooks]\npost_create = [\"touch {}\"]\n", marker.display()),
    )
    .expect("ff.toml");
    let mut s = Session::start(repo.path(), &config, &[]);
    assert_eq!(
        s.error_kind("worktree_create", json!({"issue": "5"})),
        "hooks_not_approved"
    );
    assert!(!marker.exists(), "an unapproved hook ran");
    assert_eq!(repo.worktree_paths().len(), 1, "nothing was made");
    drop(s);

    let allow = crate::common::ff_in(repo.path(), &config, &[], &["hooks", "allow"]);
    assert_eq!(crate::common::code(&allow), 0);
    let mut s = Session::start(repo.path(), &config, &[]);
    s.ok("worktree_create", json!({"issue": "5"}));
    assert!(marker.exists(), "the approved hook did not run");
}
