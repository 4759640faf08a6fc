//! A plain HTTP/1.1 client for tests of `ff serve`: one request per
//! connection, and server-sent events read as they come.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, decoded from chunks when chunked.
    pub body: String,
}

impl Response {
    /// The first header named `name` (lower case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `http://HOST:PORT/…` → (`HOST:PORT`, `/…`).
fn split(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    }
}

/// Reads a response's status line and headers.
fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    (status, read_headers(reader))
}

/// Reads header lines up to the blank line.
fn read_headers(reader: &mut impl BufRead) -> Vec<(String, String)> {
    let mut line = String::new();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    headers
}

/// Sends `method path` with `headers` and `body`; reads the whole answer.
///
/// # Panics
/// When the server cannot be reached or answers something that is not HTTP.
#[must_use]
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
    let (host, path) = split(url);
    let mut stream = TcpStream::connect(&host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    // The caller may name another host (to test how the server takes it).
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {host}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    if let Some(b) = body {
        stream.write_all(b.as_bytes()).expect("send body");
    }
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let length: Option<usize> = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok());
    let mut body = Vec::new();
    if chunked {
        while let Some(chunk) = read_chunk(&mut reader) {
            body.extend(chunk);
        }
    } else if let Some(n) = length {
        // Some servers (Chromium's DevTools) keep the connection open.
        body.resize(n, 0);
        reader.read_exact(&mut body).expect("body");
    } else {
        reader.read_to_end(&mut body).expect("body");
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `GET url`.
#[must_use]
pub fn get(url: &str) -> Response {
    request("GET", url, &[], None)
}

/// One chunk of a chunked body; `None` at its end.
fn read_chunk(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    Some(chunk)
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// Its `event:` field.
    pub kind: String,
    /// Its `data:` field, as JSON.
    pub data: serde_json::Value,
}

/// A stream of server-sent events being read.
#[derive(Debug)]
pub struct EventStream {
    reader: BufReader<TcpStream>,
    pending: String,
}

impl EventStream {
    /// Opens `url` and checks it answers as an event stream.
    ///
    /// # Panics
    /// When it does not.
    #[must_use]
    pub fn open(url: &str) -> Self {
        let (host, path) = split(url);
        let mut stream = TcpStream::connect(&host).expect("connect");
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("send");
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        assert_eq!(status, 200);
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")),
            "{headers:?}"
        );
        Self {
            reader,
            pending: String::new(),
        }
    }

    /// The next event, or `None` when none comes within `within`.
    ///
    /// # Panics
    /// When the stream breaks.
    pub fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut kind = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        kind = k.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(SseEvent {
                    kind,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
                });
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("timeout");
            match read_chunk(&mut self.reader) {
                Some(chunk) => self.pending.push_str(&String::from_utf8_lossy(&chunk)),
                None if Instant::now() >= deadline => return None,
                None => panic!("the event stream ended"),
            }
        }
    }

    /// The first event of `kind` about `subject` within `within`.
    pub fn wait_for(&mut self, kind: &str, subject: &str, within: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let e = self.next(left)?;
            if e.kind == kind && e.data["subject"] == subject {
                return Some(e);
            }
        }
    }
}

/// A test's own webhook receiver: records every POSTed body.
#[derive(Debug)]
pub struct WebhookReceiver {
    url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl WebhookReceiver {
    /// Listens on a free loopback port.
    ///
    /// # Panics
    /// When no port can be had.
    #[must_use]
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let headers = read_headers(&mut reader);
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(v) = serde_json::from_slice(&body)
                {
                    sink.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(v);
                }
                let mut stream = reader.into_inner();
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            }
        });
        Self { url, received }
    }

    /// Where to POST.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What arrived so far.
    #[must_use]
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
