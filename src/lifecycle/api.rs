//! The alerts HTTP API (axum): list, show, assign, feedback, verify, escalate, reopen, with bearer
//! tokens mapped to roles. A refused action answers 403 and is logged. `router` is mountable by
//! other servers (the web board) with the same role checks.

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

use super::board::{ActionResult, RecurrenceCounts};
use super::clock::Clock;
use super::decide::{ActionKind, AlertAction, Finding, Role, permitted};
use crate::bus::Bus;
use crate::record::Alert;

/// What the API reads: the board as last committed, recent action outcomes, and the latest
/// domain corrections (by `Label::key`).
#[derive(Default)]
pub struct View {
    pub alerts: BTreeMap<String, Alert>,
    pub recurrences: RecurrenceCounts,
    pub results: HashMap<String, ActionResult>,
    pub labels: BTreeMap<String, crate::labels::Label>,
}

struct Inner {
    view: Arc<RwLock<View>>,
    tokens: BTreeMap<String, Role>,
    bus: Bus,
    actions_topic: String,
    clock: Clock,
    wait: Duration,
    counter: AtomicU64,
    /// Domain corrections (`POST /api/labels`), when enabled.
    labels: std::sync::OnceLock<crate::labels::api::LabelDesk>,
}

/// The API's shared state.
#[derive(Clone)]
pub struct Api(Arc<Inner>);

impl Api {
    pub fn new(
        view: Arc<RwLock<View>>,
        tokens: BTreeMap<String, Role>,
        bus: Bus,
        actions_topic: String,
        clock: Clock,
    ) -> Api {
        Api(Arc::new(Inner {
            view,
            tokens,
            bus,
            actions_topic,
            clock,
            wait: Duration::from_secs(10),
            counter: AtomicU64::new(0),
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
        .with_state(api)
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

pub(crate) fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(ErrorBody { error: msg.into() })).into_response()
}

/// The caller's role and name from `Authorization: Bearer <token>` (and `X-Duban-Actor`).
pub(crate) fn caller(api: &Api, headers: &HeaderMap) -> Result<(Role, String), Box<Response>> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(role) = token.and_then(|t| api.0.tokens.get(t)) else {
        tracing::warn!(target: "duban::lifecycle", "API call without a valid token refused");
        let r = error(StatusCode::UNAUTHORIZED, "missing or unknown bearer token");
        return Err(Box::new(r));
    };
    let actor = headers
        .get("x-duban-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| role.to_string());
    Ok((role.clone(), actor))
}

pub(crate) fn forbidden(role: &Role, what: &str, why: &str) -> Response {
    tracing::warn!(target: "duban::lifecycle", %role, what, "refused (403): {why}");
    error(StatusCode::FORBIDDEN, why)
}

fn visible(role: &Role, a: &Alert) -> bool {
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
    let (role, _) = match caller(&api, &headers) {
        Ok(c) => c,
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
    let (role, _) = match caller(&api, &headers) {
        Ok(c) => c,
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

async fn recurrences(State(api): State<Api>, headers: HeaderMap) -> Response {
    match caller(&api, &headers) {
        Ok(_) => Json(api.read().recurrences.clone()).into_response(),
        Err(r) => *r,
    }
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

async fn act(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ActionBody>>,
) -> Response {
    let (role, actor) = match caller(&api, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
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
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let now = match api.0.clock.now() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    };
    let action_id = api.new_id("act");
    let record = AlertAction {
        action_id: action_id.clone(),
        alert_id: id.clone(),
        action: kind,
        actor,
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
