//! The dashboard in a real browser: Debian's headless Chromium, driven over
//! the DevTools protocol, with no network beyond loopback. It must see a
//! lock another process takes appear and disappear, an alert fire, and a
//! backend that goes away; it saves screenshots in the target directory.
//!
//! Without Chromium the tests say so and pass, unless
//! `FF_REQUIRE_CHROMIUM=1` (CI sets it, and `.ci/run` installs Chromium).

#![cfg(unix)]

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{Served, code, ff, hold_lock, stdout_json, stop};
use ff_testkit::chromium::Chromium;
use ff_testkit::git::TestRepo;

fn browser(url: &str) -> Option<Chromium> {
    let opened = Chromium::open(url);
    if opened.is_none() {
        ff_testkit::skip(
            "FF_REQUIRE_CHROMIUM",
            "chromium is not installed (set FF_CHROMIUM or install Debian's chromium)",
        );
    }
    opened
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn the_page_shows_a_lock_come_and_go_and_an_alert() {
    let repo = TestRepo::new();
    std::fs::write(
        repo.path().join("ff.toml"),
        "[alerts]\nlock_held_longer_than = \"2s\"\nworktrees_within = 8\n",
    )
    .expect("ff.toml");
    // Something to show: worktrees, and operations that succeeded and failed.
    for issue in ["101", "102"] {
        stdout_json(&ff(repo.path(), &["create", issue, "--json"]));
    }
    for i in 0..4 {
        let key = format!("build-{i}");
        assert_eq!(
            code(&ff(repo.path(), &["once", "--key", &key, "--", "true"])),
            0
        );
    }
    assert_eq!(
        code(&ff(
            repo.path(),
            &[
                "once",
                "--key",
                "flaky",
                "--max-attempts",
                "1",
                "--",
                "sh",
                "-c",
                "echo broken >&2; exit 3"
            ]
        )),
        3
    );
    let served = Served::start(repo.path(), &[]);
    let Some(mut page) = browser(&served.url) else {
        return;
    };
    assert!(
        page.wait_until(
            "document.querySelector('#live').textContent === 'live'",
            WAIT
        ),
        "the page never followed /api/events"
    );
    // The stylesheet loaded under the page's content security policy.
    assert_eq!(
        page.eval("getComputedStyle(document.querySelector('.card')).borderRadius"),
        "6px"
    );
    assert!(page.wait_until(
        "document.querySelectorAll('#worktrees-body tr').length === 2",
        WAIT
    ));
    assert!(page.wait_until("document.querySelector('#failed-body').textContent.includes('broken') || document.querySelector('#failed-body tr') !== null", WAIT));
    assert!(page.wait_until(
        "document.querySelector('#c-worktrees').textContent === '2 / 10'",
        WAIT
    ));
    // worktrees_within = 8 of a limit of 10 with 2 worktrees: firing.
    assert!(page.wait_until(
        "document.querySelector('[data-alert=\"worktrees_near_limit\"]') !== null",
        WAIT
    ));

    let holder = hold_lock(repo.path(), "dashboard-demo", 60);
    assert!(
        page.wait_until(
            "document.querySelector('[data-lock-name=\"dashboard-demo\"]') !== null",
            Duration::from_secs(3)
        ),
        "the lock another process took did not appear"
    );
    let row =
        page.eval("document.querySelector('[data-lock-name=\"dashboard-demo\"]').textContent");
    assert!(
        row.as_str()
            .is_some_and(|r| r.contains(&format!("pid {}", holder.id()))),
        "{row}"
    );
    assert!(
        page.wait_until(
            "document.querySelector('[data-alert=\"lock_held_too_long\"]') !== null",
            WAIT
        ),
        "the alert did not show"
    );
    assert!(page.wait_until(
        "document.querySelector('#activity').textContent.includes('lock_acquired  dashboard-demo')",
        WAIT
    ));
    // The plots have points by now (one per second here).
    assert!(page.wait_until(
        "document.querySelectorAll('#plot-load path').length > 0",
        WAIT
    ));
    let shot = screenshot_path("dashboard.png");
    page.screenshot(&shot);
    eprintln!("screenshot: {}", shot.display());

    stop(holder);
    assert!(
        page.wait_until(
            "document.querySelector('[data-lock-name=\"dashboard-demo\"]') === null",
            Duration::from_secs(3)
        ),
        "the released lock did not disappear"
    );
    assert!(
        page.wait_until(
            "document.querySelector('[data-alert=\"lock_held_too_long\"]') === null",
            WAIT
        ),
        "the alert did not resolve on the page"
    );
}

#[test]
fn the_page_says_when_a_backend_is_down() {
    let Some(mut redis) = ff_testkit::redis::RedisServer::start() else {
        return;
    };
    let repo = TestRepo::new();
    let url = redis.url();
    let served = Served::start(repo.path(), &["--lock", &url, "--store", &url]);
    let Some(mut page) = browser(&served.url) else {
        return;
    };
    assert!(page.wait_until(
        "document.querySelector('#live').textContent === 'live'",
        WAIT
    ));
    assert_eq!(
        page.eval("document.querySelector('#backend-banner').hidden"),
        true
    );
    redis.kill();
    assert!(
        page.wait_until(
            "!document.querySelector('#backend-banner').hidden && document.querySelector('#backend-banner').textContent.startsWith('Backend down')",
            WAIT
        ),
        "the page did not say the backend is down"
    );
    assert!(page.wait_until(
        "document.querySelector('[data-alert=\"backend_unreachable\"]') !== null",
        WAIT
    ));
    page.screenshot(&screenshot_path("dashboard-backend-down.png"));
    redis.restart();
    assert!(
        page.wait_until(
            "document.querySelector('#backend-banner').hidden",
            Duration::from_secs(20)
        ),
        "the banner stayed after the backend came back"
    );
}

/// Text from records and repositories shows escaped on the page: a
/// worktree path with a right-to-left override and a carriage return
/// appears as `\u{202e}` and `\r`, never raw.
#[test]
fn the_page_shows_hidden_characters_escaped() {
    let repo = TestRepo::new();
    let base = repo.scratch("bases").join("wt\u{202e}gpj.exe\r");
    let base_arg = base.display().to_string();
    stdout_json(&ff(
        repo.path(),
        &["--base-path", &base_arg, "create", "7", "--json"],
    ));
    let served = Served::start(repo.path(), &["--base-path", &base_arg]);
    let Some(mut page) = browser(&served.at("")) else {
        return;
    };
    assert!(
        page.wait_until(
            "document.querySelector('#worktrees-body').textContent.includes('\\\\u{202e}gpj.exe\\\\r')",
            WAIT
        ),
        "the path is not shown escaped: {}",
        page.eval("document.querySelector('#worktrees-body').textContent")
    );
    assert_eq!(
        page.eval(
            "document.body.innerText.includes('\\u202e') || document.body.innerText.includes('\\r')"
        ),
        serde_json::json!(false),
        "a hidden character reached the page raw"
    );
    page.screenshot(&screenshot_path("dashboard-escaped.png"));
}

/// An agent status set through the binary shows in the worktrees' Agent
/// column (its note as the cell's title), live; the Agent filter keeps the
/// worktrees whose agent says that.
#[test]
fn the_page_shows_agent_status_and_filters_by_it() {
    let repo = TestRepo::new();
    for issue in ["201", "202"] {
        stdout_json(&ff(repo.path(), &["create", issue, "--json"]));
    }
    let served = Served::start(repo.path(), &[]);
    let Some(mut page) = browser(&served.url) else {
        return;
    };
    assert!(page.wait_until(
        "document.querySelector('#live').textContent === 'live'",
        WAIT
    ));
    assert!(page.wait_until(
        "document.querySelectorAll('#worktrees-body tr').length === 2",
        WAIT
    ));
    assert_eq!(
        code(&ff(
            repo.path(),
            &[
                "status",
                "set",
                "waiting",
                "--note",
                "<b>needs</b> a key",
                "201"
            ]
        )),
        0
    );
    assert!(
        page.wait_until(
            "[...document.querySelectorAll('#worktrees-body td.agent')].some((td) => td.textContent.startsWith('waiting') && td.title === '<b>needs</b> a key')",
            WAIT
        ),
        "the status did not show"
    );
    // The note is text, never markup.
    assert_eq!(
        page.eval("document.querySelectorAll('#worktrees-body b').length"),
        0
    );
    page.eval(
        "(() => { const s = document.querySelector('#worktrees-agent'); s.value = 'waiting'; s.dispatchEvent(new Event('change')); return true; })()",
    );
    assert!(
        page.wait_until(
            "document.querySelectorAll('#worktrees-body tr').length === 1 && document.querySelector('#worktrees-body tr').textContent.includes('201')",
            WAIT
        ),
        "the filter did not keep the waiting agent's worktree alone"
    );
    let shot = screenshot_path("dashboard-agents.png");
    page.screenshot(&shot);
    eprintln!("screenshot: {}", shot.display());
}
