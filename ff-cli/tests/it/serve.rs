//! `ff serve` and `ff top` through the real binary: `/metrics` parsed as
//! Prometheus would, moving when other processes take locks and run
//! operations; the JSON API's shapes; live events; alerts with a webhook
//! receiver; bad input; a backend that goes away.

#![cfg(unix)] // `ff lock` children are stopped with signals

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    Served, assert_generated, assert_valid, assert_valid_as, code, error_kind, eventually, ff,
    hold_lock, stdout_json, stop,
};
use ff_testkit::git::TestRepo;
use ff_testkit::http::{self, EventStream, WebhookReceiver};
use ff_testkit::prometheus;
use serde_json::Value;

fn scrape(served: &Served) -> Vec<prometheus::Sample> {
    let r = http::get(&served.at("metrics"));
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    let samples = prometheus::parse(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.body));
    promtool_accepts(&r.body);
    samples
}

/// Where promtool is installed (CI installs it), it must accept the text.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    // It exits 3 for lint warnings only, 1 for errors.
    assert_ne!(
        out.status.code(),
        Some(1),
        "promtool refused /metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lint = String::from_utf8_lossy(&out.stderr);
    assert!(
        lint.trim().is_empty() || out.status.success(),
        "promtool: {lint}"
    );
}

fn metric(samples: &[prometheus::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    prometheus::value(samples, name, labels)
        .unwrap_or_else(|| panic!("no {name}{labels:?} in /metrics"))
}

fn page(served: &Served, path: &str, item: &str) -> Value {
    let r = http::get(&served.at(path));
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    let v = r.json();
    assert_valid("common#serve_page", &v);
    for i in v["items"].as_array().expect("items") {
        assert_valid(&format!("common#{item}"), i);
    }
    v
}

/// An admin token strong enough for `FF_SERVE_TOKEN` (32 characters, at
/// least 10 different).
const ADMIN_TOKEN: &str = "3f9c1a7e5b2d8f4c6a0e9b1d7c3f5a2e";

#[test]
fn metrics_and_the_api_follow_other_processes() {
    let repo = TestRepo::new();
    let served = Served::start(repo.path(), &[]);
    let before = scrape(&served);
    assert_eq!(
        metric(&before, "ff_backend_up", &[("backend", "locks")]),
        1.0
    );
    assert_eq!(
        metric(&before, "ff_backend_up", &[("backend", "store")]),
        1.0
    );
    assert_eq!(metric(&before, "ff_locks_held", &[]), 0.0);
    assert_eq!(
        metric(&before, "ff_records", &[("status", "completed")]),
        0.0
    );

    // Another process takes a lock: the gauges move at the next scrape.
    let holder = hold_lock(repo.path(), "deploy-prod", 30);
    let during = scrape(&served);
    assert_eq!(metric(&during, "ff_locks_held", &[]), 1.0);
    assert!(metric(&during, "ff_lock_oldest_hold_seconds", &[]) >= 0.0);
    assert!(eventually(Duration::from_secs(3), || {
        http::get(&served.at("api/locks?held=true")).json()["total"] == 1
    }));
    let locks = page(&served, "api/locks?held=true", "serve_lock");
    let lock = &locks["items"][0];
    assert_eq!(lock["name"], "deploy-prod");
    assert_eq!(lock["holders"][0]["pid"], holder.id());
    assert_eq!(lock["holders"][0]["liveness"], "alive");
    assert!(
        lock["holders"][0]["fencing_token"]
            .as_u64()
            .is_some_and(|t| t > 0)
    );
    stop(holder);

    // Another process runs operations: the record gauges move.
    assert_eq!(
        code(&ff(repo.path(), &["once", "--key", "ok-1", "--", "true"])),
        0
    );
    assert_eq!(
        code(&ff(
            repo.path(),
            &[
                "once",
                "--key",
                "bad-1",
                "--max-attempts",
                "1",
                "--",
                "false"
            ]
        )),
        1
    );
    let after = scrape(&served);
    assert_eq!(metric(&after, "ff_locks_held", &[]), 0.0);
    assert_eq!(
        metric(&after, "ff_records", &[("status", "completed")]),
        1.0
    );
    assert_eq!(metric(&after, "ff_records", &[("status", "failed")]), 1.0);

    // Worktrees and operations through the API.
    stdout_json(&ff(repo.path(), &["create", "7", "--json"]));
    assert!(eventually(Duration::from_secs(3), || {
        http::get(&served.at("api/worktrees")).json()["total"] == 1
    }));
    let worktrees = page(&served, "api/worktrees", "serve_worktree");
    assert_eq!(worktrees["items"][0]["issue"], "7");
    assert_eq!(worktrees["worktree_limit"], 10);
    assert!(eventually(Duration::from_secs(3), || {
        http::get(&served.at("api/operations?status=failed")).json()["total"] == 1
    }));
    let failed = page(
        &served,
        "api/operations?status=failed&operation=once",
        "serve_operation",
    );
    assert_eq!(
        failed["items"][0]["error"]["kind"]
            .as_str()
            .map(str::is_empty),
        Some(false)
    );
    // The key the user gave, not its hash, is what people are shown.
    assert_eq!(failed["items"][0]["label"], "bad-1", "{failed}");
    let all = page(
        &served,
        "api/operations?limit=1&offset=1",
        "serve_operation",
    );
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    assert!(all["total"].as_u64().is_some_and(|t| t >= 3));
    let scraped = scrape(&served);
    assert_eq!(
        metric(&scraped, "ff_repository_worktrees", &[]),
        1.0,
        "worktrees per repository"
    );

    let stats = http::get(&served.at("api/stats")).json();
    assert_valid_as("top", "serve_stats", &stats);
    assert_eq!(stats["backend_up"], true);
    let alerts = http::get(&served.at("api/alerts")).json();
    assert_eq!(alerts["active"], serde_json::json!([]));
    assert_eq!(alerts["rules"], serde_json::json!(["backend_unreachable"]));

    // ff top shows the same picture, once per refresh.
    let top = ff(
        repo.path(),
        &["top", "-n", "2", "--interval", "100ms", "--json"],
    );
    assert_eq!(code(&top), 0, "{}", String::from_utf8_lossy(&top.stderr));
    let lines: Vec<&str> = std::str::from_utf8(&top.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let v: Value = serde_json::from_str(l).expect("JSON line");
        assert_valid("top", &v);
        assert_eq!(v["worktrees"], 1);
        assert_eq!(v["by_status"]["failed"], 1);
    }
    let text = ff(repo.path(), &["top", "-n", "1"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("ff top · backends up"), "{text}");
    assert!(text.contains("ISSUE"), "{text}");
}

#[test]
fn events_arrive_within_a_second_of_another_process_acting() {
    let repo = TestRepo::new();
    let served = Served::start(repo.path(), &[]);
    let mut events = EventStream::open(&served.at("api/events"));
    let hello = events.next(Duration::from_secs(5)).expect("hello");
    assert_eq!(hello.kind, "hello");
    assert_generated("serve_hello", &hello.data);
    // `hello` comes once the watch has looked at the backends: the lock
    // below is a change from that first look.

    let holder = hold_lock(repo.path(), "sse-demo", 30);
    let taken = Instant::now();
    let e = events
        .wait_for("lock_acquired", "sse-demo", Duration::from_secs(1))
        .expect("a lock_acquired event within 1 s of the lock being taken");
    assert!(taken.elapsed() < Duration::from_secs(1));
    assert_generated("serve_event", &e.data);
    assert_eq!(e.data["detail"]["pid"], holder.id());
    assert!(
        e.data["detail"]["fencing_token"]
            .as_u64()
            .is_some_and(|t| t > 0)
    );
    stop(holder);
    events
        .wait_for("lock_released", "sse-demo", Duration::from_secs(2))
        .expect("lock_released");

    assert_eq!(
        code(&ff(repo.path(), &["once", "--key", "ev", "--", "true"])),
        0
    );
    let done = events
        .next(Duration::from_secs(2))
        .expect("an operation event");
    assert_eq!(done.kind, "operation_completed", "{:?}", done.data);
    assert_generated("serve_event", &done.data);
    assert_eq!(done.data["detail"]["operation"], "once");

    stdout_json(&ff(repo.path(), &["create", "12", "--json"]));
    let mut created = None;
    while let Some(e) = events.next(Duration::from_secs(3)) {
        if e.kind == "worktree_created" {
            created = Some(e);
            break;
        }
    }
    let created = created.expect("worktree_created");
    assert_generated("serve_event", &created.data);
    assert_eq!(created.data["detail"]["issue"], "12");
}

/// Events arrive whether the server follows the kernel's change reports
/// (the default on Linux; ff-serve's `change_feeds` tests count that an
/// idle server reads nothing) or polls (`--poll-only`).
#[test]
fn events_come_with_change_feeds_and_with_poll_only() {
    let repo = TestRepo::new();
    for args in [&[][..], &["--poll-only"][..]] {
        let served = Served::start(repo.path(), args);
        let mut events = EventStream::open(&served.at("api/events"));
        assert_eq!(
            events.next(Duration::from_secs(5)).expect("hello").kind,
            "hello"
        );
        // Long enough for a poll or two, and for an idle server to show
        // it is not stuck.
        std::thread::sleep(Duration::from_millis(600));
        let key = format!("feeds-{}", args.len());
        assert_eq!(
            code(&ff(repo.path(), &["once", "--key", &key, "--", "true"])),
            0
        );
        let ran = Instant::now();
        let done = std::iter::from_fn(|| events.next(Duration::from_secs(2)))
            .find(|e| e.kind == "operation_completed")
            .unwrap_or_else(|| panic!("{args:?}: no operation_completed"));
        assert!(ran.elapsed() < Duration::from_secs(2), "{args:?}");
        assert_eq!(done.data["detail"]["operation"], "once");
        let holder = hold_lock(repo.path(), &key, 30);
        events
            .wait_for("lock_acquired", &key, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("{args:?}: no lock_acquired"));
        stop(holder);
        events
            .wait_for("lock_released", &key, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("{args:?}: no lock_released"));
    }
}

#[test]
fn alerts_fire_and_resolve_and_the_webhook_hears_both() {
    let repo = TestRepo::new();
    let hook = WebhookReceiver::start();
    std::fs::write(
        repo.path().join("ff.toml"),
        format!(
            "[alerts]\nlock_held_longer_than = \"1s\"\nwebhook = \"{}\"\nwebhook_timeout = \"2s\"\n",
            hook.url()
        ),
    )
    .expect("ff.toml");
    // A repository's webhook is a URL it would have ff POST to: approved
    // here for this run.
    let served = Served::start_with_env(repo.path(), &[], &[("FF_TRUST", "allow")]);
    let mut events = EventStream::open(&served.at("api/events"));
    assert_eq!(
        events.next(Duration::from_secs(5)).expect("hello").kind,
        "hello"
    );
    let before = scrape(&served);
    assert_eq!(
        metric(
            &before,
            "ff_alert_active",
            &[("alert", "lock_held_too_long")]
        ),
        0.0
    );

    let holder = hold_lock(repo.path(), "slow-job", 30);
    let firing = events
        .wait_for("alert_firing", "lock_held_too_long", Duration::from_secs(5))
        .expect("the alert fires once the lock is held past 1 s");
    assert_generated("serve_event", &firing.data);
    assert!(
        firing.data["detail"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("slow-job"))
    );
    let active = http::get(&served.at("api/alerts")).json();
    assert_generated("serve_alerts", &active);
    assert_eq!(active["active"][0]["name"], "lock_held_too_long");
    assert_valid("common#serve_alert", &active["active"][0]);
    let during = scrape(&served);
    assert_eq!(
        metric(
            &during,
            "ff_alert_active",
            &[("alert", "lock_held_too_long")]
        ),
        1.0
    );

    stop(holder);
    events
        .wait_for(
            "alert_resolved",
            "lock_held_too_long",
            Duration::from_secs(5),
        )
        .expect("the alert resolves once the lock is gone");
    assert!(
        eventually(Duration::from_secs(10), || hook.received().len() >= 2),
        "the webhook got {:?}",
        hook.received()
    );
    let got = hook.received();
    let states: Vec<&str> = got.iter().filter_map(|v| v["state"].as_str()).collect();
    assert_eq!(states, ["firing", "resolved"]);
    for v in &got {
        assert_generated("serve_alert_notice", v);
        assert_eq!(v["alert"], "lock_held_too_long");
        assert_eq!(v["source"], "forgeflow");
        assert_eq!(v["threshold"], 1.0);
    }
    let after = scrape(&served);
    assert_eq!(
        metric(
            &after,
            "ff_alert_active",
            &[("alert", "lock_held_too_long")]
        ),
        0.0
    );
}

#[test]
fn bad_requests_get_clear_errors_and_admin_needs_the_token() {
    let repo = TestRepo::new();
    let read_only = Served::start(repo.path(), &[]);
    let check_error = |r: &http::Response, status: u16, kind: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        let v = r.json();
        assert_eq!(v["error"]["kind"], kind, "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| m.len() > 10));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.header("content-security-policy").is_some());
    };
    check_error(&http::get(&read_only.at("no/such/route")), 404, "not_found");
    // A page elsewhere whose name points here (DNS rebinding) reads nothing.
    let rebound = http::request(
        "GET",
        &read_only.at("api/locks"),
        &[("Host", "attacker.example:7878")],
        None,
    );
    check_error(&rebound, 403, "unknown_host");
    for bad in [
        "api/locks?limit=abc",
        "api/locks?limit=0",
        "api/locks?limit=1001",
        "api/locks?held=maybe",
        "api/locks?bogus=1",
        "api/operations?status=done",
        "api/worktrees?offset=-1",
    ] {
        check_error(&http::get(&read_only.at(bad)), 400, "invalid_input");
    }
    check_error(
        &http::request(
            "POST",
            &read_only.at("api/admin/gc"),
            &[("content-type", "application/json")],
            Some(r#"{"max_age":"1d"}"#),
        ),
        403,
        "admin_disabled",
    );
    // No action by GET.
    check_error(
        &http::get(&read_only.at("api/admin/gc")),
        405,
        "method_not_allowed",
    );
    // Every response carries the safe headers, the page included.
    let page = http::get(&read_only.url);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("script-src 'self'"))
    );
    assert!(page.body.contains("<script src=\"/app.js\""));
    drop(read_only);

    let admin = Served::start_with_env(
        repo.path(),
        &["--admin", "--allow-host", "dash.internal"],
        &[("FF_SERVE_TOKEN", ADMIN_TOKEN)],
    );
    let named = http::request(
        "GET",
        &admin.at("api/stats"),
        &[("Host", "dash.internal:7878")],
        None,
    );
    assert_eq!(
        named.status, 200,
        "an allowed host name is served: {}",
        named.body
    );
    // A token from the environment is never echoed: whoever set it has it.
    assert_eq!(admin.token, None);
    let post = |token: Option<&str>, path: &str, body: &str| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        http::request("POST", &admin.at(path), &headers, Some(body))
    };
    check_error(
        &post(None, "api/admin/gc", r#"{"max_age":"1d"}"#),
        401,
        "unauthorized",
    );
    check_error(
        &post(
            Some("wrong-token-wrong-token"),
            "api/admin/gc",
            r#"{"max_age":"1d"}"#,
        ),
        401,
        "unauthorized",
    );
    let token = Some(ADMIN_TOKEN);
    check_error(
        &post(token, "api/admin/gc", r#"{"max_age":"soon"}"#),
        400,
        "invalid_input",
    );
    check_error(
        &post(token, "api/admin/gc", "not json"),
        400,
        "invalid_input",
    );
    let gc = post(token, "api/admin/gc", r#"{"max_age":"1d"}"#);
    assert_eq!(gc.status, 200, "{}", gc.body);
    assert_eq!(gc.json()["removed"], 0);
    // A live holder's lock is refused; clearing is for dead holders only.
    let holder = hold_lock(repo.path(), "busy", 30);
    let refused = post(token, "api/admin/unlock", r#"{"name":"busy"}"#);
    check_error(&refused, 409, "lock_held");
    assert!(eventually(Duration::from_secs(3), || {
        http::get(&admin.at("api/locks?q=busy")).json()["total"] == 1
    }));
    stop(holder);
    let cleared = post(token, "api/admin/unlock", r#"{"name":"busy"}"#);
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    check_error(
        &post(token, "api/admin/unlock", r#"{"name":"never-taken"}"#),
        404,
        "not_found",
    );
    check_error(
        &post(token, "api/admin/unlock", r#"{"name":""}"#),
        400,
        "invalid_input",
    );
}

/// The value of `name` in a running process's environment.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn environment_of(pid: u32, name: &str) -> Option<String> {
    let all = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    let prefix = format!("{name}=");
    all.split(|b| *b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .find_map(|entry| entry.strip_prefix(&prefix).map(str::to_owned))
}

/// On glibc the server caps its malloc arenas at two (a long run with the
/// default arenas grew 230 MiB and kept creeping: BENCHMARKS.md), by
/// starting itself again with `MALLOC_ARENA_MAX=2`, and keeps an
/// operator's own setting.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn serve_caps_malloc_arenas_unless_told_otherwise() {
    let repo = TestRepo::new();
    let served = Served::start(repo.path(), &[]);
    assert_eq!(
        environment_of(served.pid(), "MALLOC_ARENA_MAX").as_deref(),
        Some("2")
    );
    // Still the process its parent started, and serving.
    let locks = http::get(&served.at("api/locks"));
    assert_eq!(locks.status, 200, "{}", locks.body);
    drop(served);

    let told = Served::start_with_env(repo.path(), &[], &[("MALLOC_ARENA_MAX", "4")]);
    assert_eq!(
        environment_of(told.pid(), "MALLOC_ARENA_MAX").as_deref(),
        Some("4")
    );
}

#[test]
fn bad_listen_addresses_and_settings_exit_with_their_codes() {
    let repo = TestRepo::new();
    let invalid = ff(
        repo.path(),
        &["serve", "--listen", "not-an-address", "--json"],
    );
    assert_eq!(code(&invalid), 65);
    assert_eq!(error_kind(&invalid), "invalid_input");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").to_string();
    let busy = ff(repo.path(), &["serve", "--listen", &port, "--json"]);
    assert_eq!(code(&busy), 69, "{}", String::from_utf8_lossy(&busy.stderr));
    assert_eq!(error_kind(&busy), "listen_failed");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("is taken"));
    let short = Command::new(env!("CARGO_BIN_EXE_ff"))
        .args(["serve", "--admin", "--listen", "127.0.0.1:0", "--json"])
        .current_dir(repo.path())
        .env("FF_SERVE_TOKEN", "short")
        .output()
        .expect("run");
    assert_eq!(code(&short), 65);
    for bad in [
        "[alerts]\nlock_held_longer_than = \"forever\"\n",
        "[alerts]\nfailure_rate_above = 20\n",
        "[alerts]\nwebhook = \"ftp://example\"\n",
        "[alerts]\nno_such_rule = 1\n",
    ] {
        std::fs::write(repo.path().join("ff.toml"), bad).expect("ff.toml");
        for command in [
            &["serve", "--listen", "127.0.0.1:0", "--json"][..],
            &["top", "-n", "1", "--json"],
        ] {
            let o = ff(repo.path(), command);
            assert_eq!(
                code(&o),
                65,
                "{bad}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn a_backend_that_goes_away_is_reported_not_fatal() {
    let Some(mut redis) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let server = std::cell::RefCell::new(&mut redis);
    goes_away_and_comes_back(
        &url,
        "redis",
        || server.borrow_mut().kill(),
        || server.borrow_mut().restart(),
    );
}

/// The same with PostgreSQL locks and records.
#[test]
fn a_postgres_backend_that_goes_away_is_reported_not_fatal() {
    let Some(mut pg) = ff_testkit::postgres::PgServer::start() else {
        return;
    };
    let url = format!("{}?schema=served", pg.url());
    let server = std::cell::RefCell::new(&mut pg);
    goes_away_and_comes_back(
        &url,
        "postgres",
        || server.borrow_mut().stop(),
        || server.borrow_mut().restart(),
    );
}

/// `ff serve` on locks and records at `url` (backend `kind`): up, then
/// `stop` takes the server away (events, gauges, the alert say so, and
/// serve goes on), then `start` brings it back (and they say that).
fn goes_away_and_comes_back(url: &str, kind: &str, stop: impl Fn(), start: impl Fn()) {
    let repo = TestRepo::new();
    let served = Served::start(repo.path(), &["--lock", url, "--store", url]);
    let mut events = EventStream::open(&served.at("api/events"));
    assert_eq!(
        events.next(Duration::from_secs(5)).expect("hello").kind,
        "hello"
    );
    let up = scrape(&served);
    assert_eq!(
        metric(
            &up,
            "ff_backend_up",
            &[("backend", "locks"), ("kind", kind)]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &up,
            "ff_backend_up",
            &[("backend", "store"), ("kind", kind)]
        ),
        1.0
    );

    stop();
    let down = events
        .wait_for("backend_down", "locks", Duration::from_secs(10))
        .expect("a backend_down event");
    assert!(
        down.data["detail"]["error"]
            .as_str()
            .is_some_and(|e| e.contains(kind))
    );
    let scraped = scrape(&served);
    assert_eq!(
        metric(&scraped, "ff_backend_up", &[("backend", "locks")]),
        0.0
    );
    assert_eq!(
        metric(&scraped, "ff_backend_up", &[("backend", "store")]),
        0.0
    );
    assert!(eventually(Duration::from_secs(10), || {
        let s = http::get(&served.at("api/stats")).json();
        s["backend_up"] == false && s["alerts"][0]["name"] == "backend_unreachable"
    }));

    start();
    events
        .wait_for("backend_up", "locks", Duration::from_secs(15))
        .expect("a backend_up event once it is back");
    assert!(eventually(Duration::from_secs(10), || {
        metric(&scrape(&served), "ff_backend_up", &[("backend", "locks")]) == 1.0
    }));
}

/// Raises this test process's own descriptor limit: it opens more sockets
/// than the default soft limit allows.
#[cfg(unix)]
fn allow_many_descriptors(n: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.is_some_and(|c| c < n) {
        let want = now.maximum.map_or(n, |m| m.min(n));
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: now.maximum,
            },
        )
        .expect("raise the test's descriptor limit");
    }
}

/// The `host:port` a served URL names.
#[cfg(unix)]
fn address(served: &Served) -> String {
    served
        .at("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// 1,100 requests whose headers never end, all from this one address,
/// then a real request from the same address: answered at once, because
/// at the cap a new connection evicts the oldest one still sending
/// headers. Before, they took every descriptor the server had.
#[cfg(unix)]
#[test]
fn a_thousand_half_sent_requests_do_not_keep_out_the_next_one() {
    use std::io::Write as _;
    allow_many_descriptors(4096);
    let repo = TestRepo::new();
    // A long header timeout: the cap, not the timeout, must save the day.
    let served = Served::start(repo.path(), &["--header-timeout", "60s"]);
    let at = address(&served);
    let mut stalled = Vec::new();
    for _ in 0..1_100 {
        let mut s = std::net::TcpStream::connect(&at).expect("connect");
        s.write_all(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .expect("half a request");
        stalled.push(s);
    }
    let sent = Instant::now();
    let answer = http::get(&served.at("api/stats"));
    let took = sent.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        took < Duration::from_secs(1),
        "answered {took:?} after it was sent"
    );
    // The oldest stalled connections were closed to make room.
    let mut first = stalled.swap_remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let read = std::io::Read::read(&mut first, &mut buf);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the oldest stalled connection is still open: {read:?}"
    );
}

/// A request whose headers never end is closed after --header-timeout
/// (before: it stayed open for minutes).
#[cfg(unix)]
#[test]
fn a_half_sent_request_is_closed_after_the_header_timeout() {
    use std::io::{Read as _, Write as _};
    let repo = TestRepo::new();
    let served = Served::start(repo.path(), &["--header-timeout", "1s"]);
    let mut s = std::net::TcpStream::connect(address(&served)).expect("connect");
    s.write_all(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("half a request");
    // Generous: the deadline is the server's, this only bounds the test.
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf);
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection was not closed: {read:?}"
    );
    // The server goes on.
    assert_eq!(http::get(&served.at("api/stats")).status, 200);
}

/// The webhook URL (often a credential) is in no answer; every route
/// refuses a query parameter it does not know (400).
#[test]
fn secrets_stay_out_of_answers_and_unknown_parameters_are_refused() {
    let repo = TestRepo::new();
    let secret = "http://127.0.0.1:9/hooks/T0KEN-s3cr3t";
    std::fs::write(
        repo.path().join("ff.toml"),
        format!("[alerts]\nwebhook = \"{secret}\"\nlock_held_longer_than = \"1m\"\n"),
    )
    .expect("ff.toml");
    let served = Served::start_with_env(repo.path(), &[], &[("FF_TRUST", "allow")]);
    for path in [
        "api/alerts",
        "api/stats",
        "metrics",
        "api/locks",
        "api/operations",
    ] {
        let r = http::get(&served.at(path));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            !r.body.contains("T0KEN-s3cr3t"),
            "{path} shows the webhook: {}",
            r.body
        );
    }
    let alerts = http::get(&served.at("api/alerts")).json();
    assert_eq!(alerts["settings"]["webhook"], "(set; not shown)");
    for path in [
        "api/alerts?verbose=1",
        "metrics?name=x",
        "api/events?since=0",
        "api/stats?x=1",
        "?debug=1",
        "app.js?v=2",
    ] {
        let r = http::get(&served.at(path));
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["kind"], "invalid_input", "{path}");
    }
    for path in ["api/admin/gc?force=1", "api/admin/unlock?all=1"] {
        let r = http::request(
            "POST",
            &served.at(path),
            &[("content-type", "application/json")],
            Some("{}"),
        );
        assert_eq!(r.status, 400, "{path}: {}", r.body);
    }
}

/// FF_SERVE_TOKEN below the stated strength is refused (65), and naming
/// the rule; a good one is never printed back.
#[test]
fn a_weak_serve_token_is_refused_and_a_good_one_never_echoed() {
    let repo = TestRepo::new();
    for weak in [
        "a-token-of-twenty-chars",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "abababababababababababababababababab",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ff"))
            .args(["serve", "--admin", "--listen", "127.0.0.1:0", "--json"])
            .current_dir(repo.path())
            .env("FF_SERVE_TOKEN", weak)
            .output()
            .expect("run");
        assert_eq!(code(&out), 65, "{weak}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("32 characters") && !stderr.contains(weak),
            "{stderr}"
        );
    }
    let served = Served::start_with_env(
        repo.path(),
        &["--admin"],
        &[("FF_SERVE_TOKEN", ADMIN_TOKEN)],
    );
    assert_eq!(
        served.token, None,
        "the token from the environment was printed"
    );
}

/// An agent's status, set through the binary, shows in `/api/worktrees`
/// (and its `agent` filter), comes as a `status_changed` event, and an
/// agent waiting longer than `agent_waiting_longer_than` fires an alert
/// that resolves once it works again.
#[test]
fn agent_status_shows_streams_and_a_long_wait_alerts() {
    let repo = TestRepo::new();
    std::fs::write(
        repo.path().join("ff.toml"),
        "[alerts]\nagent_waiting_longer_than = \"1s\"\n",
    )
    .expect("ff.toml");
    assert_eq!(code(&ff(repo.path(), &["trust", "allow"])), 0);
    let id = stdout_json(&ff(repo.path(), &["create", "31", "--json"]))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(code(&ff(repo.path(), &["create", "32"])), 0);
    let served = Served::start(repo.path(), &[]);
    let mut events = EventStream::open(&served.at("api/events"));
    assert_eq!(
        events.next(Duration::from_secs(5)).expect("hello").kind,
        "hello"
    );

    let set = ff(
        repo.path(),
        &["status", "set", "waiting", "--note", "which API key?", "31"],
    );
    assert_eq!(code(&set), 0, "{}", String::from_utf8_lossy(&set.stderr));
    let changed = events
        .wait_for("status_changed", &id, Duration::from_secs(3))
        .expect("a status_changed event");
    assert_generated("serve_event", &changed.data);
    assert_eq!(changed.data["detail"]["agent_status"]["state"], "waiting");
    assert_eq!(changed.data["detail"]["issue"], "31");

    let waiting = page(&served, "api/worktrees?agent=waiting", "serve_worktree");
    assert_eq!(waiting["total"], 1, "{waiting}");
    assert_eq!(waiting["items"][0]["issue"], "31");
    assert_eq!(
        waiting["items"][0]["agent_status"]["note"],
        "which API key?"
    );
    let working = page(&served, "api/worktrees?agent=working", "serve_worktree");
    assert_eq!(working["total"], 0, "{working}");
    let bad = http::get(&served.at("api/worktrees?agent=asleep"));
    assert_eq!(bad.status, 400);

    let firing = events
        .wait_for(
            "alert_firing",
            "agent_waiting_too_long",
            Duration::from_secs(10),
        )
        .expect("the alert fires once the agent waits past 1 s");
    assert_generated("serve_event", &firing.data);
    assert_eq!(
        firing.data["detail"]["detail"]["issues"],
        serde_json::json!(["31"])
    );

    assert_eq!(
        code(&ff(repo.path(), &["status", "set", "working", "31"])),
        0
    );
    events
        .wait_for(
            "alert_resolved",
            "agent_waiting_too_long",
            Duration::from_secs(10),
        )
        .expect("the alert resolves once the agent works again");
}
