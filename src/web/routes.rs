//! The board's own routes: the page and its assets, login, the board list with filters, an
//! alert's detail with evidence, its recommendation document, the dashboard and the event
//! stream. Every read is filtered by the caller's role here, on the server: a unit sees only its
//! own alerts. Actions are the lifecycle API's routes (`/api/alerts/{id}/{action}`), mounted beside.

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

use super::Shared;
use super::auth::{COOKIE, credential, error, forbidden, role, session_id};
use crate::auth::Credential;
use crate::lifecycle::api::visible;
use crate::lifecycle::decide::Role;
use crate::record::{Alert, AlertStatus};

type S = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(super::assets::INDEX) }))
        .route("/dashboard", get(|| async { Html(super::assets::INDEX) }))
        .route("/assets/app.js", get(|| async { super::assets::js() }))
        .route("/assets/style.css", get(|| async { super::assets::css() }))
        .route("/board/api/login", post(login))
        .route("/board/api/logout", post(logout))
        .route("/board/api/me", get(me))
        .route("/board/api/session", get(session))
        .route("/board/api/alerts", get(list))
        .route("/board/api/alerts/{id}", get(detail))
        .route("/board/api/alerts/{id}/document", get(document))
        .route("/board/api/dashboard", get(dashboard))
        .route("/board/api/events", get(events))
        .route("/board/api/label-queue", get(super::labeling::queue))
        .with_state(shared)
}

macro_rules! caller {
    ($shared:expr, $headers:expr) => {
        match role(&$shared, &$headers) {
            Ok(r) => r,
            Err(resp) => return *resp,
        }
    };
}

#[derive(Serialize)]
struct Me {
    role: String,
    unit: Option<String>,
    /// The token holder's name, when the token names one.
    name: Option<String>,
    mode: &'static str,
    /// The taxonomy's domains (for a supervisor's domain corrections).
    domains: Vec<String>,
}

fn me_of(shared: &Shared, c: &Credential) -> Me {
    Me {
        role: match &c.role {
            Role::Unit(_) => "unit".into(),
            other => other.to_string(),
        },
        unit: match &c.role {
            Role::Unit(u) => Some(u.clone()),
            _ => None,
        },
        name: (c.name != c.role.to_string()).then(|| c.name.clone()),
        mode: shared.mode,
        domains: shared.domains.clone(),
    }
}

#[derive(Deserialize)]
struct LoginBody {
    token: String,
}

/// Log in with a token: a new session (an opaque id in the cookie; the token stays here). An
/// address may try 10 times at once, then 10 a minute.
async fn login(
    State(shared): S,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Json(body): Json<LoginBody>,
) -> Response {
    if let Err(wait) = shared
        .logins
        .take(&peer.ip().to_string(), std::time::Instant::now())
    {
        tracing::warn!(target: "duban::web", "board login refused (429): too many attempts");
        let secs = wait.as_secs().max(1);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("登录尝试过多，请 {secs} 秒后再试 (too many login attempts)"),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let token = body.token.trim();
    let Some(c) = shared.tokens.find(token).cloned() else {
        tracing::warn!(target: "duban::web", "board login with an unknown token refused");
        return error(StatusCode::UNAUTHORIZED, "令牌无效 (unknown token)");
    };
    let Some(id) = shared.sessions.open(token, &c) else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "cannot open a session");
    };
    let Ok(cookie) =
        HeaderValue::from_str(&format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"))
    else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot set the session cookie",
        );
    };
    tracing::info!(target: "duban::web", role = %c.role, "board login");
    let mut resp = Json(me_of(&shared, &c)).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp
}

/// Log out: the session is revoked on the server, whatever the browser keeps.
async fn logout(State(shared): S, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        shared.sessions.close(id);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("duban_board=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

/// The page's first question: who is logged in here (`null` when nobody is: the login form,
/// without a failed request in the console).
async fn session(State(shared): S, headers: HeaderMap) -> Response {
    let me = super::auth::caller(&shared, &headers).map(|(_, c)| me_of(&shared, &c));
    Json(me).into_response()
}

async fn me(State(shared): S, headers: HeaderMap) -> Response {
    match credential(&shared, &headers) {
        Ok(c) => Json(me_of(&shared, &c)).into_response(),
        Err(r) => *r,
    }
}

/// Filters of the board list (all optional; dates are local days of the alert's raising).
#[derive(Deserialize, Default)]
struct Filter {
    domain: Option<String>,
    district: Option<String>,
    unit: Option<String>,
    trigger: Option<String>,
    level: Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    q: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn raised_day(a: &Alert) -> NaiveDate {
    a.lifecycle
        .opened_at
        .unwrap_or(a.raised_at)
        .with_timezone(&crate::record::local_offset())
        .date_naive()
}

impl Filter {
    fn keeps(&self, a: &Alert) -> bool {
        nonempty(&self.domain).is_none_or(|d| a.domain.as_deref() == Some(d))
            && nonempty(&self.district).is_none_or(|d| a.district.as_deref() == Some(d))
            && nonempty(&self.unit).is_none_or(|u| a.unit == u)
            && nonempty(&self.trigger).is_none_or(|t| a.trigger.as_str() == t)
            && nonempty(&self.level).is_none_or(|l| a.level.as_str() == l)
            && self.from.is_none_or(|f| raised_day(a) >= f)
            && self.to.is_none_or(|t| raised_day(a) <= t)
            && nonempty(&self.q).is_none_or(|q| {
                a.summary.contains(q) || a.alert_id.contains(q) || a.unit.contains(q)
            })
    }
}

/// One card of the board.
#[derive(Serialize)]
struct Card<'a> {
    alert_id: &'a str,
    level: &'static str,
    status: &'static str,
    trigger: &'static str,
    trigger_label: &'static str,
    summary: &'a str,
    domain: Option<&'a str>,
    district: Option<&'a str>,
    unit: &'a str,
    deadline: NaiveDate,
    reply_deadline: Option<NaiveDate>,
    overdue: bool,
    raised_day: NaiveDate,
    complaint_count: u64,
    distinct_complainants: u64,
    recurrent: bool,
    recurrence: u32,
    document_no: Option<&'a str>,
    revision: u64,
}

#[derive(Serialize, Default)]
struct Facets {
    domains: BTreeSet<String>,
    districts: BTreeSet<String>,
    units: BTreeSet<String>,
}

#[derive(Serialize)]
struct BoardList<'a> {
    counts: std::collections::BTreeMap<&'static str, usize>,
    cards: Vec<Card<'a>>,
    facets: Facets,
    total_visible: usize,
}

fn open(a: &Alert) -> bool {
    matches!(
        a.lifecycle.status,
        AlertStatus::Assigned | AlertStatus::FeedbackReceived
    )
}

async fn list(State(shared): S, headers: HeaderMap, Query(f): Query<Filter>) -> Response {
    let r = caller!(shared, headers);
    let now = match shared.clock.now() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    };
    let view = shared.alerts();
    let mine: Vec<&Alert> = view
        .alerts
        .values()
        .filter(|a| visible(&r, a))
        .filter(|a| a.lifecycle.status != AlertStatus::Merged)
        .collect();
    let mut facets = Facets::default();
    for a in &mine {
        facets.domains.extend(a.domain.clone());
        facets.districts.extend(a.district.clone());
        facets.units.insert(a.unit.clone());
    }
    let mut cards: Vec<Card> = mine
        .iter()
        .filter(|a| f.keeps(a))
        .map(|a| Card {
            alert_id: &a.alert_id,
            level: a.level.as_str(),
            status: a.lifecycle.status.as_str(),
            trigger: a.trigger.as_str(),
            trigger_label: a.trigger.label_zh(),
            summary: &a.summary,
            domain: a.domain.as_deref(),
            district: a.district.as_deref(),
            unit: &a.unit,
            deadline: a.deadline,
            reply_deadline: a.lifecycle.reply_deadline,
            overdue: open(a)
                && match a.level {
                    crate::record::AlertLevel::Red => a
                        .lifecycle
                        .reply_deadline
                        .is_some_and(|d| crate::lifecycle::decide::overdue(d, now)),
                    _ => crate::lifecycle::decide::overdue(a.deadline, now),
                },
            raised_day: raised_day(a),
            complaint_count: a.complaint_count,
            distinct_complainants: a.distinct_complainants,
            recurrent: a.lifecycle.recurrent,
            recurrence: a.lifecycle.recurrence,
            document_no: a.lifecycle.document_no.as_deref(),
            revision: a.lifecycle.revision,
        })
        .collect();
    // Most urgent first: overdue, then the nearest deadline.
    cards.sort_by(|a, b| {
        (!a.overdue, a.deadline, a.alert_id).cmp(&(!b.overdue, b.deadline, b.alert_id))
    });
    let mut counts = std::collections::BTreeMap::new();
    for l in ["yellow", "red", "green"] {
        counts.insert(l, cards.iter().filter(|c| c.level == l).count());
    }
    Json(BoardList {
        counts,
        total_visible: mine.len(),
        cards,
        facets,
    })
    .into_response()
}

#[derive(Serialize)]
struct Detail {
    alert: Alert,
    evidence: super::evidence::Evidence,
    /// Actions the caller may take now (the lifecycle API decides in the end).
    actions: Vec<&'static str>,
    has_document: bool,
}

fn actions_for(r: &Role, a: &Alert) -> Vec<&'static str> {
    use crate::record::AlertLevel;
    let st = a.lifecycle.status;
    let active = matches!(st, AlertStatus::Assigned | AlertStatus::FeedbackReceived);
    let mut out = Vec::new();
    match r {
        Role::Supervisor => {
            if active {
                out.push("assign");
            }
            if st == AlertStatus::FeedbackReceived {
                out.push("verify");
            }
            if active && a.level == AlertLevel::Yellow {
                out.push("escalate");
            }
            if st == AlertStatus::Closed {
                out.push("reopen");
            }
        }
        Role::Unit(u) if *u == a.unit && active => out.push("feedback"),
        _ => {}
    }
    out
}

async fn detail(State(shared): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let r = caller!(shared, headers);
    let a = match shared.alerts().alerts.get(&id).cloned() {
        None => return error(StatusCode::NOT_FOUND, format!("没有预警 {id}")),
        Some(a) if !visible(&r, &a) => return forbidden(&r, &format!("detail {id}")),
        Some(a) => a,
    };
    let evidence = match super::evidence::evidence(&shared.data.join("lake"), &a).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(target: "duban::web", alert = %id, "evidence from the lake failed: {e:#}");
            super::evidence::Evidence {
                notes: vec![format!("读取数据湖失败：{e:#}")],
                ..Default::default()
            }
        }
    };
    Json(Detail {
        actions: actions_for(&r, &a),
        has_document: a.lifecycle.document_no.is_some(),
        alert: a,
        evidence,
    })
    .into_response()
}

async fn document(State(shared): S, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let r = caller!(shared, headers);
    match shared.alerts().alerts.get(&id) {
        None => error(StatusCode::NOT_FOUND, format!("没有预警 {id}")),
        Some(a) if !visible(&r, a) => forbidden(&r, &format!("document {id}")),
        Some(a) if a.lifecycle.document_no.is_none() => error(
            StatusCode::NOT_FOUND,
            format!("预警 {id} 未升级红色督办，没有监督建议书"),
        ),
        Some(a) => Html(crate::lifecycle::document::html(a)).into_response(),
    }
}

/// Years the dashboard answers for.
const DASHBOARD_YEARS: std::ops::RangeInclusive<i32> = 1990..=2200;

#[derive(Deserialize)]
struct DashQuery {
    date: Option<NaiveDate>,
}

async fn dashboard(State(shared): S, headers: HeaderMap, Query(q): Query<DashQuery>) -> Response {
    let r = caller!(shared, headers);
    let now = match shared.clock.now() {
        Ok(t) => t,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    };
    let date = q.date.unwrap_or_else(|| {
        now.with_timezone(&crate::record::local_offset())
            .date_naive()
    });
    // The report's windows reach back from the date: dates far from any complaint's are refused
    // before their arithmetic could overflow.
    if !(DASHBOARD_YEARS).contains(&chrono::Datelike::year(&date)) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "date must be between {}-01-01 and {}-12-31",
                DASHBOARD_YEARS.start(),
                DASHBOARD_YEARS.end()
            ),
        );
    }
    let alerts: Vec<Alert> = shared
        .alerts()
        .alerts
        .values()
        .filter(|a| visible(&r, a))
        .cloned()
        .collect();
    match super::dashboard::compute(&shared.data.join("lake"), date, &alerts, &r, now).await {
        Ok(d) => Json(d).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("态势数据计算失败：{e:#}"),
        ),
    }
}

/// Server-sent events: `alert` (a card changed; only the caller's own for a unit) and `resync`
/// (events were missed: reload the list).
async fn events(State(shared): S, headers: HeaderMap) -> Response {
    let r = caller!(shared, headers);
    let rx = shared.events.subscribe();
    let hello = futures::stream::once(async {
        Ok::<_, std::convert::Infallible>(Event::default().event("hello").data("{}"))
    });
    let stream = futures::stream::unfold((rx, r), |(mut rx, r)| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Role::Unit(u) = &r
                        && *u != ev.unit
                        && ev.previous_unit.as_ref() != Some(u)
                    {
                        continue;
                    }
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    let e = Event::default().event("alert").data(data);
                    return Some((Ok(e), (rx, r)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let e = Event::default().event("resync").data("{}");
                    return Some((Ok(e), (rx, r)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    use futures::StreamExt;
    Sse::new(hello.chain(stream))
        .keep_alive(KeepAlive::default())
        .into_response()
}
