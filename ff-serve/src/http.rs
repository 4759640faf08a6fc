//! The routes: the page, `/metrics`, the JSON API, the event stream and
//! the admin actions.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State as Extract};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ff_traits::{LockName, RecordStatus, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use ff_model::cli::{ErrorBody, ErrorView, GcView};
use ff_model::serve::{
    AlertsView, BackendsView, HelloView, LaggedView, LockView, OperationView, Overview,
    ServerStats, WorktreeView,
};

use crate::watch::State;

type Shared = Arc<State>;

/// Rows per page unless asked otherwise, and the most a page may hold.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/app.css", get(style))
        .route("/metrics", get(metrics))
        .route("/api/locks", get(locks))
        .route("/api/worktrees", get(worktrees))
        .route("/api/operations", get(operations))
        .route("/api/stats", get(stats))
        .route("/api/alerts", get(alerts))
        .route("/api/events", get(events))
        .route("/api/admin/unlock", post(unlock))
        .route("/api/admin/gc", post(gc))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            known_host,
        ))
        .layer(axum::middleware::map_response(safe_headers))
        .with_state(state)
}

/// The host a `Host` header names, without its port.
fn host_name(header: &str) -> &str {
    if let Some(rest) = header.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    header.rsplit_once(':').map_or(header, |(h, _)| h)
}

/// Refuses requests naming a host that is neither an IP address,
/// `localhost`, nor allowed by the configuration: a page on another site
/// whose name was pointed at this server (DNS rebinding) cannot read it.
async fn known_host(
    Extract(state): Extract<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let allowed = host.parse::<std::net::IpAddr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost")
        || state
            .config
            .allowed_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&host));
    if allowed {
        next.run(request).await
    } else {
        error(
            StatusCode::FORBIDDEN,
            "unknown_host",
            format!(
                "requests must name this server by IP address or as localhost, not {host:?}; \
                 start it with `--allow-host {host}` to serve that name"
            ),
        )
    }
}

/// Headers every response carries: no sniffing, no framing, no referrer,
/// scripts and styles from this server only, nothing cached.
async fn safe_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    response
}

/// A JSON error: `{"error": {"kind": …, "message": …}}`.
fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (status, Json(ErrorView::new(ErrorBody::new(kind, message)))).into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {method} {}; the routes are /, /metrics, /api/locks, /api/worktrees, \
             /api/operations, /api/stats, /api/alerts, /api/events, and POST /api/admin/unlock \
             and /api/admin/gc",
            uri.path()
        ),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}: reads are GET, admin actions are POST",
            uri.path()
        ),
    )
}

fn bad_query(e: &QueryRejection) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_input",
        format!("bad query parameters: {}", e.body_text()),
    )
}

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

async fn page(_: NoParams) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn script(_: NoParams) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style(_: NoParams) -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

async fn metrics(Extract(state): Extract<Shared>, _: NoParams) -> Response {
    let text = crate::prom::render(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// A list's query: its paging, and whatever filters it has.
trait Paged {
    fn paging(&self) -> (Option<usize>, Option<usize>);
}

/// The query, with its `(limit, offset)` checked; a JSON 400 otherwise.
#[allow(clippy::result_large_err)] // a Response is what the handler returns anyway
fn accept<Q: Paged>(
    query: Result<Query<Q>, QueryRejection>,
) -> Result<(Q, usize, usize), Response> {
    let Query(q) = query.map_err(|e| bad_query(&e))?;
    let (limit, offset) = q.paging();
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("limit={limit}: ask for 1 to {MAX_LIMIT} rows, and page with offset"),
        ));
    }
    Ok((q, limit, offset.unwrap_or(0)))
}

/// One page of `matching`: `{"total","offset","limit","items"}`.
/// One page of a list (`serve_page` in the schemas), in name order as
/// the hand-built object before it.
#[derive(Debug, Serialize)]
struct Page<T> {
    items: Vec<T>,
    limit: usize,
    offset: usize,
    /// The repository whose worktrees these are (the worktrees page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    repository: Option<String>,
    total: usize,
    /// Its worktree limit (the worktrees page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    worktree_limit: Option<usize>,
}

fn page_of<T, V>(matching: &[T], limit: usize, offset: usize, shape: impl Fn(&T) -> V) -> Page<V> {
    Page {
        items: matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(shape)
            .collect(),
        limit,
        offset,
        repository: None,
        total: matching.len(),
        worktree_limit: None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocksQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    /// Only held (true) or idle (false) locks.
    held: Option<bool>,
    /// Only names containing this.
    q: Option<String>,
}

impl Paged for LocksQuery {
    fn paging(&self) -> (Option<usize>, Option<usize>) {
        (self.limit, self.offset)
    }
}

async fn locks(
    Extract(state): Extract<Shared>,
    query: Result<Query<LocksQuery>, QueryRejection>,
) -> Response {
    let (q, limit, offset) = match accept(query) {
        Ok(accepted) => accepted,
        Err(r) => return r,
    };
    let view = state.read();
    let now = Timestamp::now();
    let matching: Vec<_> = view
        .locks
        .iter()
        .filter(|l| q.held.is_none_or(|h| l.held == h))
        .filter(|l| q.q.as_deref().is_none_or(|s| l.name.contains(s)))
        .collect();
    Json(page_of(&matching, limit, offset, |l| LockView::new(l, now))).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorktreesQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    /// Only worktrees whose agent says this (`working`, `waiting`, `done`,
    /// `blocked`).
    agent: Option<ff_worktree::AgentState>,
}

impl Paged for WorktreesQuery {
    fn paging(&self) -> (Option<usize>, Option<usize>) {
        (self.limit, self.offset)
    }
}

async fn worktrees(
    Extract(state): Extract<Shared>,
    query: Result<Query<WorktreesQuery>, QueryRejection>,
) -> Response {
    let (q, limit, offset) = match accept(query) {
        Ok(accepted) => accepted,
        Err(r) => return r,
    };
    let view = state.read();
    let now = Timestamp::now();
    let newest_first: Vec<_> = view
        .worktrees
        .iter()
        .rev()
        .filter(|w| {
            q.agent
                .is_none_or(|a| w.agent_status.as_ref().is_some_and(|s| s.state == a))
        })
        .collect();
    let mut body = page_of(&newest_first, limit, offset, |w| WorktreeView::new(w, now));
    if let Some(source) = &state.backends.worktrees {
        body.repository = Some(source.repository());
        body.worktree_limit = Some(source.limit());
    }
    Json(body).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationsQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    status: Option<String>,
    operation: Option<String>,
}

impl Paged for OperationsQuery {
    fn paging(&self) -> (Option<usize>, Option<usize>) {
        (self.limit, self.offset)
    }
}

async fn operations(
    Extract(state): Extract<Shared>,
    query: Result<Query<OperationsQuery>, QueryRejection>,
) -> Response {
    let (q, limit, offset) = match accept(query) {
        Ok(accepted) => accepted,
        Err(r) => return r,
    };
    let status = match q.status.as_deref().map(|s| (s, RecordStatus::parse(s))) {
        None => None,
        Some((_, Some(s))) => Some(s),
        Some((s, None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!(
                    "status={s:?}: use one of {}",
                    RecordStatus::ALL.map(RecordStatus::as_str).join(", ")
                ),
            );
        }
    };
    let view = state.read();
    let now = Timestamp::now();
    let matching: Vec<_> = view
        .records
        .iter()
        .filter(|r| status.is_none_or(|s| r.status == s))
        .filter(|r| q.operation.as_deref().is_none_or(|o| r.operation == o))
        .collect();
    Json(page_of(&matching, limit, offset, |r| {
        OperationView::new(r, now)
    }))
    .into_response()
}

/// A route that takes no parameters: any is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

/// The extractor of a route that takes no query parameters: any is
/// refused (400), as the lists refuse parameters they do not know.
struct NoParams;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NoParams {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        Query::<NoQuery>::from_request_parts(parts, state)
            .await
            .map(|_| Self)
            .map_err(|e| bad_query(&e))
    }
}

async fn stats(Extract(state): Extract<Shared>, _: NoParams) -> Response {
    let view = state.read();
    let overview = Overview::of(&state.parts(&view), state.alerts.active());
    Json(ServerStats::new(
        overview,
        view.history.iter().cloned().collect(),
        BackendsView::new(
            state.backends.locks.backend_name(),
            state.backends.locks.endpoint(),
            state.backends.store.backend_name(),
        ),
        state.config.admin_token.is_some(),
        state.started,
    ))
    .into_response()
}

async fn alerts(Extract(state): Extract<Shared>, _: NoParams) -> Response {
    // The webhook URL is often a credential (a token in its path): the
    // page says one is set, never which.
    let mut settings = serde_json::to_value(&state.alerts.rules).unwrap_or_default();
    if let Some(hook) = settings.get_mut("webhook") {
        *hook = json!(REDACTED);
    }
    Json(AlertsView::new(
        state.alerts.active(),
        state.alerts.rules.active_rules(),
        settings,
    ))
    .into_response()
}

/// How long an event stream's `hello` waits for the watch's first look at
/// the backends (far above a poll; reached only when the watch tasks do
/// not run, as for a router served without `Server::start`).
const FIRST_LOOK_WAIT: Duration = Duration::from_secs(5);

/// What an answer shows in place of a secret.
const REDACTED: &str = "(set; not shown)";

async fn events(Extract(state): Extract<Shared>, _: NoParams) -> Response {
    event_stream(&state).into_response()
}

fn event_stream(
    state: &State,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>> + use<>> {
    let rx = state.events.subscribe();
    let hello = SseEvent::default().event("hello").data(
        serde_json::to_string(&HelloView::new(
            state.started,
            state.config.admin_token.is_some(),
        ))
        .unwrap_or_default(),
    );
    // `hello` once the watch has looked at every backend (or, should its
    // tasks not run, after a while): later events are then changes from
    // what the API shows.
    let looked = state.looked.subscribe();
    let stream =
        futures_util::stream::unfold((Some((hello, looked)), rx), |(first, mut rx)| async move {
            if let Some((hello, mut looked)) = first {
                let _ = tokio::time::timeout(
                    FIRST_LOOK_WAIT,
                    looked.wait_for(|n| *n >= crate::watch::WATCHERS),
                )
                .await;
                return Some((Ok(hello), (None, rx)));
            }
            match rx.recv().await {
                Ok(e) => {
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    Some((
                        Ok(SseEvent::default().event(e.kind()).data(data)),
                        (None, rx),
                    ))
                }
                // Too slow a reader: tell it to read everything again.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let data = serde_json::to_string(&LaggedView::new(n)).unwrap_or_default();
                    Some((
                        Ok(SseEvent::default().event("lagged").data(data)),
                        (None, rx),
                    ))
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Checks the bearer token of an admin request.
#[allow(clippy::result_large_err)] // a Response is what the handler returns anyway
fn authorize(state: &State, headers: &HeaderMap) -> Result<(), Response> {
    let Some(expected) = &state.config.admin_token else {
        return Err(error(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "this server is read-only: start it with `ff serve --admin` to allow admin actions",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Digests compared, so the time taken says nothing about the token.
    let matches = given.is_some_and(|g| {
        Sha256::digest(g.as_bytes()).as_slice() == Sha256::digest(expected.as_bytes()).as_slice()
    });
    if matches {
        Ok(())
    } else {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "admin actions need `Authorization: Bearer <token>`, with the token `ff serve --admin` printed or FF_SERVE_TOKEN gave",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Err(r)
    }
}

fn bad_body(e: &JsonRejection) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_input",
        format!("bad request body: {}", e.body_text()),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    name: String,
}

/// Clears a lock whose holders are all gone. A live holder's lock is
/// refused: revoking a live grant is `ff unlock --force`, on purpose not
/// a button.
async fn unlock(
    Extract(state): Extract<Shared>,
    _: NoParams,
    headers: HeaderMap,
    body: Result<Json<UnlockBody>, JsonRejection>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    let name = match LockName::new(body.name.as_str()) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_input", e.to_string()),
    };
    let statuses = match state.backends.locks.locks().await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "backend", e.to_string()),
    };
    let Some(status) = statuses.iter().find(|s| s.name == name.as_str()) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no lock named {name}"),
        );
    };
    if let Some(live) = status
        .holders
        .iter()
        .find(|h| ff_process::holder_liveness(h) != ff_process::Liveness::Dead)
    {
        return error(
            StatusCode::CONFLICT,
            "lock_held",
            format!(
                "{name} is held by pid {} on {}, which is not known to be dead; the dashboard \
                 clears only dead holders' locks (`ff unlock --force` revokes a live one)",
                live.pid, live.hostname
            ),
        );
    }
    match state.backends.locks.force_release(&name).await {
        Ok(released) => {
            tracing::warn!(lock = %name, "force-unlocked from the dashboard");
            Json(serde_json::to_value(&released).unwrap_or_default()).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "backend", e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcBody {
    /// Finished records last active longer ago than this go ("7d").
    max_age: String,
}

async fn gc(
    Extract(state): Extract<Shared>,
    _: NoParams,
    headers: HeaderMap,
    body: Result<Json<GcBody>, JsonRejection>,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    let max_age = match humantime::parse_duration(&body.max_age) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!("max_age {:?}: {e} (write \"7d\", \"12h\")", body.max_age),
            );
        }
    };
    let removed = match &state.backends.worktrees {
        Some(source) => source.gc(max_age).await,
        None => ff_worktree::cleanup_records_without_repository(
            Arc::clone(&state.backends.store),
            max_age,
        )
        .await
        .map_err(|e| e.to_string()),
    };
    match removed {
        Ok(n) => Json(GcView::new(n)).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "backend", e),
    }
}
