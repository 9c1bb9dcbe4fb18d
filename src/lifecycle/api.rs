//! The alerts HTTP API (axum): list, show, assign, feedback, verify, escalate, reopen, with bearer
//! tokens mapped to roles and their holders' names (`crate::auth`). A refused action answers 403
//! and is logged. Bodies and texts are capped and each token's actions are rate-limited.
//! `router` is mountable by other servers (the web board) with the same role checks.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::board::{ActionResult, recurrence_counts};
use super::clock::Clock;
use super::decide::{ActionKind, AlertAction, Finding, Role, permitted};
use crate::auth::{Credential, Credentials, RateLimiter, clean_note};
use crate::bus::Bus;
use crate::record::Alert;

/// Largest request body the API reads, in bytes (a larger one is answered 413).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest `reason` / `text` of an action, in bytes of UTF-8 (about 1,300 Chinese characters).
pub const MAX_TEXT_BYTES: usize = 4096;
/// Largest `unit` of an assignment, in bytes.
const MAX_UNIT_BYTES: usize = 200;

/// What the API reads: the board as last committed, recent action outcomes, and the latest
/// domain corrections (by `Label::key`).
#[derive(Default)]
pub struct View {
    pub alerts: BTreeMap<String, Alert>,
    pub results: HashMap<String, ActionResult>,
    pub labels: BTreeMap<String, crate::labels::Label>,
}

struct Inner {
    view: Arc<RwLock<View>>,
    tokens: Credentials,
    bus: Bus,
    actions_topic: String,
    clock: Clock,
    wait: Duration,
    counter: AtomicU64,
    /// Actions per token.
    limiter: RateLimiter,
    /// Domain corrections (`POST /api/labels`), when enabled.
    labels: std::sync::OnceLock<crate::labels::api::LabelDesk>,
}

/// The API's shared state.
#[derive(Clone)]
pub struct Api(Arc<Inner>);

/// How many actions a token may post: `burst` at once, then `per_minute`.
#[derive(Debug, Clone, Copy)]
pub struct ActionRate {
    pub burst: u32,
    pub per_minute: u32,
}

impl Api {
    pub fn new(
        view: Arc<RwLock<View>>,
        tokens: Credentials,
        bus: Bus,
        actions_topic: String,
        clock: Clock,
        rate: ActionRate,
    ) -> Api {
        Api(Arc::new(Inner {
            view,
            tokens,
            bus,
            actions_topic,
            clock,
            wait: Duration::from_secs(10),
            counter: AtomicU64::new(0),
            limiter: RateLimiter::new(rate.burst, rate.per_minute),
            labels: std::sync::OnceLock::new(),
        }))
    }

    /// Accept domain corrections (`POST /api/labels`) with this desk (the first call wins).
    pub fn with_labels(self, desk: crate::labels::api::LabelDesk) -> Api {
        let _ = self.0.labels.set(desk);
        self
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.0.view.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn labels_desk(&self) -> Option<&crate::labels::api::LabelDesk> {
        self.0.labels.get()
    }

    pub(crate) fn bus(&self) -> &Bus {
        &self.0.bus
    }

    pub(crate) fn actions_topic(&self) -> &str {
        &self.0.actions_topic
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.0.clock
    }

    pub(crate) fn wait(&self) -> Duration {
        self.0.wait
    }

    /// Take one of the token's actions (labels count too): 429 with `Retry-After` beyond its rate.
    pub(crate) fn throttle(&self, token: &str, role: &Role) -> Result<(), Box<Response>> {
        let Err(wait) = self.0.limiter.take(token, Instant::now()) else {
            return Ok(());
        };
        tracing::warn!(target: "duban::lifecycle", %role, "action refused (429): rate limit");
        let secs = wait.as_secs().max(1);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many actions from this token: retry in {secs} s"),
        );
        if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        Err(Box::new(r))
    }

    /// A new unique id for an action or a correction.
    pub(crate) fn new_id(&self, kind: &str) -> String {
        let n = self.0.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{kind}-{nanos:x}-{}-{n}", std::process::id())
    }
}

/// The API's routes under `/api`.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/api/alerts", get(list))
        .route("/api/alerts/{id}", get(show))
        .route("/api/alerts/{id}/{action}", post(act))
        .route("/api/recurrences", get(recurrences))
        .route(
            "/api/labels",
            get(crate::labels::api::list).post(crate::labels::api::post),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

pub(crate) fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(ErrorBody { error: msg.into() })).into_response()
}

/// The caller: the credential of `Authorization: Bearer <token>` and the token itself.
pub(crate) fn caller<'a>(
    api: &'a Api,
    headers: &HeaderMap,
) -> Result<(&'a Credential, String), Box<Response>> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    match api.0.tokens.find(token) {
        Some(c) => Ok((c, token.to_string())),
        None => {
            tracing::warn!(target: "duban::lifecycle", "API call without a valid token refused");
            let r = error(StatusCode::UNAUTHORIZED, "missing or unknown bearer token");
            Err(Box::new(r))
        }
    }
}

/// `X-Duban-Actor`: who the caller says acts, kept as an unverified note beside the token's own
/// name (bounded and plain: see `auth::clean_note`). `Ok(None)` without the header.
fn actor_note(headers: &HeaderMap) -> Result<Option<String>, String> {
    match headers.get("x-duban-actor") {
        None => Ok(None),
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| "X-Duban-Actor: not printable ASCII".to_string())?;
            // Non-ASCII names arrive percent-encoded (`duban alerts --actor` sends them so).
            let decoded = percent_decode(text).ok_or("X-Duban-Actor: bad percent-encoding")?;
            clean_note(&decoded)
                .map(Some)
                .map_err(|e| format!("X-Duban-Actor: {e}"))
        }
    }
}

/// Decode `%XX` escapes of UTF-8 text; `None` when they are not valid.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn forbidden(role: &Role, what: &str, why: &str) -> Response {
    tracing::warn!(target: "duban::lifecycle", %role, what, "refused (403): {why}");
    error(StatusCode::FORBIDDEN, why)
}

/// Whether `role` may see alert `a` (a unit sees only its own alerts).
pub fn visible(role: &Role, a: &Alert) -> bool {
    match role {
        Role::Unit(u) => &a.unit == u,
        _ => true,
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    level: Option<String>,
    status: Option<String>,
    unit: Option<String>,
}

/// One line of the list.
#[derive(Serialize)]
struct ListItem<'a> {
    alert_id: &'a str,
    level: &'a str,
    status: &'a str,
    unit: &'a str,
    deadline: chrono::NaiveDate,
    complaint_count: u64,
    recurrent: bool,
    recurrence_of: Option<&'a str>,
    document_no: Option<&'a str>,
    summary: &'a str,
}

async fn list(State(api): State<Api>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let role = match caller(&api, &headers) {
        Ok((c, _)) => c.role.clone(),
        Err(r) => return *r,
    };
    let view = api.read();
    let items: Vec<ListItem> = view
        .alerts
        .values()
        .filter(|a| visible(&role, a))
        .filter(|a| q.level.as_deref().is_none_or(|l| a.level.as_str() == l))
        .filter(|a| {
            q.status
                .as_deref()
                .is_none_or(|s| a.lifecycle.status.as_str() == s)
        })
        .filter(|a| q.unit.as_deref().is_none_or(|u| a.unit == u))
        .map(|a| ListItem {
            alert_id: &a.alert_id,
            level: a.level.as_str(),
            status: a.lifecycle.status.as_str(),
            unit: &a.unit,
            deadline: a.deadline,
            complaint_count: a.complaint_count,
            recurrent: a.lifecycle.recurrent,
            recurrence_of: a.lifecycle.recurrence_of.as_deref(),
            document_no: a.lifecycle.document_no.as_deref(),
            summary: &a.summary,
        })
        .collect();
    Json(items).into_response()
}

async fn show(State(api): State<Api>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let role = match caller(&api, &headers) {
        Ok((c, _)) => c.role.clone(),
        Err(r) => return *r,
    };
    let view = api.read();
    match view.alerts.get(&id) {
        None => error(StatusCode::NOT_FOUND, format!("no alert {id}")),
        Some(a) if !visible(&role, a) => {
            forbidden(&role, &format!("show {id}"), "not an alert of this unit")
        }
        Some(a) => Json(a).into_response(),
    }
}

/// Recurrence counts (屡治屡犯) over the alerts the caller may see: a unit gets its own only.
async fn recurrences(State(api): State<Api>, headers: HeaderMap) -> Response {
    let role = match caller(&api, &headers) {
        Ok((c, _)) => c.role.clone(),
        Err(r) => return *r,
    };
    let view = api.read();
    Json(recurrence_counts(
        view.alerts.values().filter(|a| visible(&role, a)),
    ))
    .into_response()
}

/// Body of an action. `text` is accepted as another name of `reason` (feedback).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub accepted: Option<bool>,
    #[serde(default)]
    pub finding: Option<Finding>,
}

impl ActionBody {
    /// Texts within their caps; the error names the field and its size, never its text.
    pub fn check(&self) -> Result<(), String> {
        for (field, text, max) in [
            ("reason", &self.reason, MAX_TEXT_BYTES),
            ("text", &self.text, MAX_TEXT_BYTES),
            ("unit", &self.unit, MAX_UNIT_BYTES),
        ] {
            let n = text.as_deref().map_or(0, str::len);
            if n > max {
                return Err(format!("`{field}` has {n} bytes; at most {max}"));
            }
        }
        Ok(())
    }
}

async fn act(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ActionBody>>,
) -> Response {
    let (cred, token) = match caller(&api, &headers) {
        Ok((c, t)) => (c.clone(), t),
        Err(r) => return *r,
    };
    let role = cred.role.clone();
    let kind = match action.as_str() {
        "assign" => ActionKind::Assign,
        "feedback" => ActionKind::Feedback,
        "verify" => ActionKind::Verify,
        "escalate" => ActionKind::Escalate,
        "reopen" => ActionKind::Reopen,
        other => return error(StatusCode::NOT_FOUND, format!("no action `{other}`")),
    };
    let unit = {
        let view = api.read();
        match view.alerts.get(&id) {
            None => return error(StatusCode::NOT_FOUND, format!("no alert {id}")),
            Some(a) => a.unit.clone(),
        }
    };
    if let Err(why) = permitted(&role, kind, &unit) {
        return forbidden(&role, &format!("{action} {id}"), &why);
    }
    if let Err(r) = api.throttle(&token, &role) {
        return *r;
    }
    let note = match actor_note(&headers) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let body = body.map(|Json(b)| b).unwrap_or_default();
    if let Err(e) = body.check() {
        return error(StatusCode::PAYLOAD_TOO_LARGE, e);
    }
    let now = match api.0.clock.now() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    };
    let action_id = api.new_id("act");
    let record = AlertAction {
        action_id: action_id.clone(),
        alert_id: id.clone(),
        action: kind,
        actor: cred.name.clone(),
        actor_note: note,
        role: role.to_string(),
        at: now,
        reason: body.reason.or(body.text).unwrap_or_default(),
        unit: body.unit,
        accepted: body.accepted,
        finding: body.finding,
        domain: None,
    };
    let bytes = match serde_json::to_vec(&record) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(e) = api.0.bus.send(&api.0.actions_topic, &id, bytes).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"));
    }
    // Wait for the lifecycle to apply it, so the caller sees the outcome.
    let until = Instant::now() + api.0.wait;
    loop {
        let outcome = {
            let view = api.read();
            view.results
                .get(&action_id)
                .cloned()
                .map(|r| (r, view.alerts.get(&id).cloned()))
        };
        match outcome {
            Some((r, Some(a))) if r.applied => return Json(a).into_response(),
            Some((r, _)) if r.forbidden => return forbidden(&role, &action, &r.reason),
            Some((r, _)) if r.applied => return Json(r).into_response(),
            Some((r, _)) => return error(StatusCode::CONFLICT, r.reason),
            None if Instant::now() >= until => {
                return (
                    StatusCode::ACCEPTED,
                    Json(serde_json::json!({"action_id": action_id, "status": "queued"})),
                )
                    .into_response();
            }
            None => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}
