//! Headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol, for tests of the dashboard in a real browser.
//!
//! Started with the flags that keep it off the network (no background
//! fetches, no component updates, no sync), its own empty profile, and a
//! DevTools port that it picks and writes into the profile.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// Where Chromium is: `$FF_CHROMIUM`, else the usual names on `PATH`.
#[must_use]
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FF_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// A running headless Chromium with one page.
#[derive(Debug)]
pub struct Chromium {
    child: Child,
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Opens `url` in a new headless Chromium; `None` when Chromium is not
    /// installed (a test must then fail if the run requires it: see
    /// `FF_REQUIRE_CHROMIUM`).
    ///
    /// # Panics
    /// When Chromium is installed but does not start.
    #[must_use]
    pub fn open(url: &str) -> Option<Self> {
        let program = find()?;
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--window-size=1400,1900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let port = devtools_port(profile.path(), Duration::from_secs(30));
        let socket = page_socket(port, Duration::from_secs(30));
        Some(Self {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        })
    }

    /// Sends one DevTools command and returns its result.
    ///
    /// # Panics
    /// When the browser answers with an error or goes away.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// Sends one DevTools command; its result, or the error it answered.
    ///
    /// # Panics
    /// When the browser goes away.
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(tungstenite::Message::text(message))
            .expect("send to chromium");
        loop {
            let answer = self.socket.read().expect("read from chromium");
            let tungstenite::Message::Text(text) = answer else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    /// Evaluates `expression` in the page; its value. While the page is
    /// still loading (no execution context yet) it tries again, for up
    /// to 10 s.
    ///
    /// # Panics
    /// When the page never gets a context, or the expression throws.
    pub fn eval(&mut self, expression: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let params =
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
            match self.try_call("Runtime.evaluate", params) {
                Ok(r) => {
                    assert!(
                        r.get("exceptionDetails").is_none(),
                        "{expression} threw: {r}"
                    );
                    return r["result"]["value"].clone();
                }
                Err(e) if Instant::now() < deadline && e.to_string().contains("context") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("evaluating {expression} failed: {e}"),
            }
        }
    }

    /// Evaluates `expression` every 50 ms until it is `true`; whether it
    /// became so within `within`.
    pub fn wait_until(&mut self, expression: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        // An element not there yet (the page still loading) is "not yet".
        let guarded = format!(
            "(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"
        );
        while Instant::now() < deadline {
            if self.eval(&guarded) == Value::Bool(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Saves a PNG of the page to `path`.
    ///
    /// # Panics
    /// When the screenshot cannot be taken or written.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64");
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port Chromium writes into `DevToolsActivePort` in its profile.
fn devtools_port(profile: &Path, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(text) = std::fs::read_to_string(profile.join("DevToolsActivePort"))
            && let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok())
        {
            return port;
        }
        assert!(
            Instant::now() < deadline,
            "chromium wrote no DevToolsActivePort"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The DevTools socket of the first page.
fn page_socket(
    port: u16,
    within: Duration,
) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>> {
    let deadline = Instant::now() + within;
    loop {
        let list = crate::http::get(&format!("http://127.0.0.1:{port}/json/list"));
        let pages: Value = serde_json::from_str(&list.body).unwrap_or(Value::Null);
        if let Some(ws) = pages.as_array().and_then(|all| {
            all.iter()
                .find(|p| p["type"] == "page")
                .and_then(|p| p["webSocketDebuggerUrl"].as_str())
        }) {
            let (socket, _) = tungstenite::connect(ws).expect("DevTools socket");
            return socket;
        }
        assert!(Instant::now() < deadline, "chromium opened no page");
        std::thread::sleep(Duration::from_millis(100));
    }
}
