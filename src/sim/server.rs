//! The simulator's HTTP routes: hotline API, board JSON, portal HTML, control endpoints.
//! State is built once from the corpus; only hotline status changes (`/sim/hotline/advance`) mutate it.

use super::corpus::{Corpus, Manifest};
use super::faults::{self, Faults};
use super::peoples;
use super::rng::SimRng;
use super::wire::{self, BoardMessage, BoardPage, HotlineOrder, PortalLetter};
use crate::record::Channel;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::RwLock;

pub const HOTLINE_DEFAULT_LIMIT: usize = 100;
pub const HOTLINE_MAX_LIMIT: usize = 500;
pub const BOARD_DEFAULT_PAGE_SIZE: usize = 20;
pub const BOARD_MAX_PAGE_SIZE: usize = 100;
pub const PORTAL_PAGE_SIZE: usize = 20;

/// A hotline order with its sort key and the status change it will get on `advance`.
struct HotlineRow {
    key: (NaiveDateTime, String),
    order: HotlineOrder,
    pending_status: Option<String>,
}

pub struct SimState {
    pub seed: u64,
    /// Current fault injection (`POST /sim/faults`).
    pub faults: std::sync::RwLock<Faults>,
    /// Per-request fault draws (errors, latency, duplicate pages).
    rng: std::sync::Mutex<SimRng>,
    wanshitong_ids: Vec<String>,
    /// Bad webhooks sent (unsigned, badly signed, replayed), and those not answered 401.
    pub webhooks_bad_sent: Arc<AtomicUsize>,
    pub webhooks_bad_accepted: Arc<AtomicUsize>,
    /// Webhooks delivered again after their acknowledgement.
    pub webhooks_redelivered: Arc<AtomicUsize>,
    hotline: RwLock<Vec<HotlineRow>>,
    board: Vec<BoardMessage>,
    board_index: HashMap<u64, usize>,
    portal: Vec<PortalLetter>,
    portal_index: HashMap<String, usize>,
    /// The People's Daily stand-in's board (answered later by `POST /sim/pd/answer`).
    pd: std::sync::RwLock<super::peoples::Board>,
    /// The portal's letter box in a real layout (`/mailbox/...`).
    pub mailbox: super::mailbox::Mailbox,
    manifest: Arc<Manifest>,
    pub webhooks_total: usize,
    pub webhooks_acked: Arc<AtomicUsize>,
}

impl SimState {
    /// `pd`: the People's Daily stand-in's board (default: the corpus's board messages).
    pub fn new(
        corpus: &Corpus,
        manifest: Arc<Manifest>,
        webhooks_total: usize,
        seed: u64,
        faults: Faults,
        pd: Option<super::peoples::Board>,
    ) -> SimState {
        let person = |i: usize| &corpus.people[i];
        let mut hotline: Vec<HotlineRow> = corpus
            .of_channel(Channel::Hotline)
            .map(|c| HotlineRow {
                key: (c.updated_at, c.source_id.clone()),
                order: wire::hotline_order(c, person(c.person)),
                pending_status: c.pending_status.clone(),
            })
            .collect();
        hotline.sort_by(|a, b| a.key.cmp(&b.key));
        let mut board: Vec<BoardMessage> = corpus
            .of_channel(Channel::Board)
            .map(|c| wire::board_message(c, person(c.person)))
            .collect();
        board.sort_by(|a, b| (&b.created_at, b.tid).cmp(&(&a.created_at, a.tid)));
        let board_index = board.iter().enumerate().map(|(i, m)| (m.tid, i)).collect();
        let mut portal: Vec<PortalLetter> = corpus
            .of_channel(Channel::Portal)
            .map(|c| wire::portal_letter(c, person(c.person)))
            .collect();
        portal.sort_by(|a, b| (&b.time, &b.no).cmp(&(&a.time, &a.no)));
        let portal_index = portal
            .iter()
            .enumerate()
            .map(|(i, l)| (l.no.clone(), i))
            .collect();
        SimState {
            seed,
            faults: std::sync::RwLock::new(faults),
            rng: std::sync::Mutex::new(SimRng::new(seed).fork("faults")),
            wanshitong_ids: corpus
                .of_channel(Channel::Wanshitong)
                .map(|c| c.source_id.clone())
                .collect(),
            webhooks_bad_sent: Arc::new(AtomicUsize::new(0)),
            webhooks_bad_accepted: Arc::new(AtomicUsize::new(0)),
            webhooks_redelivered: Arc::new(AtomicUsize::new(0)),
            hotline: RwLock::new(hotline),
            board,
            board_index,
            portal,
            portal_index,
            pd: std::sync::RwLock::new(
                pd.unwrap_or_else(|| super::peoples::Board::of_corpus(corpus)),
            ),
            mailbox: super::mailbox::Mailbox::of_corpus(corpus, seed),
            manifest,
            webhooks_total,
            webhooks_acked: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Current hotline orders in API order.
    pub async fn hotline_orders(&self) -> Vec<HotlineOrder> {
        self.hotline
            .read()
            .await
            .iter()
            .map(|r| r.order.clone())
            .collect()
    }

    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn draw(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().unwrap_or_else(|e| e.into_inner()).chance(p)
    }

    /// Is the record of `channel` with `id` served malformed under the current faults?
    pub fn malformed(&self, channel: Channel, id: &str) -> bool {
        let f = self.faults();
        let rate = match channel {
            Channel::Hotline => f.hotline.malformed_rate,
            Channel::Board => f.board.malformed_rate,
            Channel::Portal => f.portal.malformed_rate,
            Channel::Wanshitong => f.wanshitong.malformed_rate,
        };
        faults::hit(self.seed, &format!("{channel}.malformed"), id, rate)
    }

    /// The People's Daily stand-in's board.
    pub fn pd(&self) -> std::sync::RwLockReadGuard<'_, super::peoples::Board> {
        self.pd.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Is the People's Daily stand-in's message `tid` served without its message part?
    pub fn malformed_pd(&self, tid: &str) -> bool {
        let rate = self.faults().peoples_daily.malformed_rate;
        faults::hit(self.seed, "peoples_daily.malformed", tid.trim(), rate)
    }

    /// Is the record served with schema drift?
    pub fn drifted(&self, channel: Channel, id: &str) -> bool {
        let f = self.faults();
        let rate = match channel {
            Channel::Hotline => f.hotline.drift_rate,
            Channel::Board => f.board.drift_rate,
            _ => 0.0,
        };
        faults::hit(self.seed, &format!("{channel}.drift"), id, rate)
    }

    /// Every source id of `channel`.
    pub async fn ids(&self, channel: Channel) -> Vec<String> {
        match channel {
            Channel::Hotline => self
                .hotline
                .read()
                .await
                .iter()
                .map(|r| r.order.order_no.clone())
                .collect(),
            Channel::Board => self.board.iter().map(|m| m.tid.to_string()).collect(),
            Channel::Portal => self.portal.iter().map(|l| l.no.clone()).collect(),
            Channel::Wanshitong => self.wanshitong_ids.clone(),
        }
    }
}

/// A hotline order as served: malformed (no `call_time`) or drifted (`content` renamed,
/// a new field) when the faults say so.
pub fn hotline_value(s: &SimState, o: &HotlineOrder) -> serde_json::Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        if s.malformed(Channel::Hotline, &o.order_no) {
            obj.remove("call_time");
        }
        if s.drifted(Channel::Hotline, &o.order_no) {
            if let Some(c) = obj.remove("content") {
                obj.insert("content_text".into(), c);
            }
            obj.insert("source_system".into(), json!("12345-v2"));
        }
    }
    v
}

pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/sim/manifest", get(manifest))
        .route("/sim/status", get(status))
        .route("/sim/hotline/advance", post(hotline_advance))
        .route("/sim/pd/answer", post(pd_answer))
        .route("/sim/faults", get(get_faults).post(set_faults))
        .route("/hotline/api/v1/workorders", get(hotline_workorders))
        .route("/board/api/messages", get(board_list))
        .route("/board/api/messages/{tid}", get(board_detail))
        .route("/portal/letters", get(portal_list))
        .route("/portal/letters/{file}", get(portal_detail))
        .route("/pd/threads/queryThreadsList", post(peoples::list_unsigned))
        .route(
            "/pd/pro-dfbbs-front/threads/queryThreadsList",
            post(peoples::list_unsigned),
        )
        .route("/pd/v1/threads/list/df", post(peoples::list_v1))
        .route("/pd/v1/threads/list/bw", post(peoples::list_v1))
        .route("/pd/v1/threads/content", post(peoples::content_v1))
        .route("/mailbox/list", get(super::mailbox::list))
        .route("/mailbox/detail", get(super::mailbox::detail))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            inject_faults,
        ))
        .with_state(state)
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

type Params = Query<HashMap<String, String>>;

fn usize_param(
    params: &HashMap<String, String>,
    name: &str,
    default: usize,
) -> Result<usize, String> {
    match params.get(name) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("`{name}` must be a non-negative integer, got {v:?}")),
    }
}

async fn manifest(State(s): State<Arc<SimState>>) -> Json<Manifest> {
    Json((*s.manifest).clone())
}

async fn status(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    Json(json!({
        "webhooks_total": s.webhooks_total,
        "webhooks_acked": s.webhooks_acked.load(Ordering::SeqCst),
    }))
}

/// `updated_since` as a local (+08:00) time: RFC 3339, or a bare local `YYYY-MM-DD HH:MM:SS`.
pub fn parse_updated_since(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let tz = FixedOffset::east_opt(8 * 3600)?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&tz).naive_local())
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(s, wire::LOCAL_TIME).ok())
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok())
}

async fn hotline_workorders(State(s): State<Arc<SimState>>, Query(params): Params) -> Response {
    let limit = match usize_param(&params, "limit", HOTLINE_DEFAULT_LIMIT) {
        Ok(0) => return json_error(StatusCode::BAD_REQUEST, "`limit` must be at least 1"),
        Ok(l) => l.min(HOTLINE_MAX_LIMIT),
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let since = match params
        .get("updated_since")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => match parse_updated_since(v) {
            Some(t) => Some(t),
            None => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "`updated_since` must be RFC 3339 (2026-11-01T09:12:33+08:00), got {v:?}"
                    ),
                );
            }
        },
    };
    let after_id = params.get("after_id").cloned().unwrap_or_default();
    let rows = s.hotline.read().await;
    // Without `updated_since` the cursor is "from the beginning" (an `after_id` alone orders nothing).
    let start = match since {
        None => 0,
        Some(t) => {
            let cursor = (t, after_id);
            rows.partition_point(|r| r.key <= cursor)
        }
    };
    let end = (start + limit).min(rows.len());
    // A duplicate page also serves again items before the cursor.
    let from = if start > 0 && s.draw(s.faults().hotline.duplicate_rate) {
        start.saturating_sub((limit / 2).max(1))
    } else {
        start
    };
    let items: Vec<serde_json::Value> = rows[from..end]
        .iter()
        .map(|r| hotline_value(&s, &r.order))
        .collect();
    let has_more = end < rows.len();
    Json(json!({ "items": items, "has_more": has_more })).into_response()
}

/// Answers every unanswered People's Daily message now, as units do days after a message was
/// first listed: `{"answered": n}`.
async fn pd_answer(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    let now = chrono::Utc::now().naive_utc() + chrono::Duration::hours(8);
    let n =
        s.pd.write()
            .unwrap_or_else(|e| e.into_inner())
            .answer_all(now);
    Json(json!({ "answered": n }))
}

/// Applies every pending hotline status change: the orders move to the end of the
/// updated_at order with a fresh `updated_at`, exactly like a real backend's later update.
async fn hotline_advance(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    let mut rows = s.hotline.write().await;
    let latest = rows.iter().map(|r| r.key.0).max();
    let now = chrono::Utc::now().naive_utc() + chrono::Duration::hours(8);
    let mut at = latest.map_or(now, |l| l.max(now)) + chrono::Duration::seconds(1);
    let mut changed = Vec::new();
    for r in rows.iter_mut() {
        if let Some(status) = r.pending_status.take() {
            r.order.status = status;
            r.order.updated_at = wire::rfc3339(at);
            r.key.0 = at;
            changed.push(r.order.order_no.clone());
            at += chrono::Duration::seconds(1);
        }
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Json(json!({ "changed": changed.len(), "order_nos": changed }))
}

async fn board_list(State(s): State<Arc<SimState>>, Query(params): Params) -> Response {
    let page = match usize_param(&params, "page", 1) {
        Ok(0) => return json_error(StatusCode::BAD_REQUEST, "`page` starts at 1"),
        Ok(p) => p,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let page_size = match usize_param(&params, "page_size", BOARD_DEFAULT_PAGE_SIZE) {
        Ok(0) => return json_error(StatusCode::BAD_REQUEST, "`page_size` must be at least 1"),
        Ok(n) => n.min(BOARD_MAX_PAGE_SIZE),
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e),
    };
    let total = s.board.len();
    let first = (page - 1).saturating_mul(page_size);
    let from = if page > 1 && s.draw(s.faults().board.duplicate_rate) {
        first - page_size
    } else {
        first
    };
    let items = s
        .board
        .iter()
        .skip(from)
        .take(first + page_size - from)
        .map(|m| m.list_item())
        .collect();
    Json(BoardPage {
        page,
        page_size,
        total,
        total_pages: total.div_ceil(page_size),
        items,
    })
    .into_response()
}

async fn board_detail(State(s): State<Arc<SimState>>, Path(tid): Path<String>) -> Response {
    match tid
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|t| s.board_index.get(&t))
    {
        Some(&i) => {
            let m = &s.board[i];
            let tid = m.tid.to_string();
            let mut v = serde_json::to_value(m).unwrap_or_default();
            if s.drifted(Channel::Board, &tid)
                && let Some(obj) = v.as_object_mut()
            {
                if let Some(c) = obj.remove("content") {
                    obj.insert("body".into(), c);
                }
                obj.insert("ip_region".into(), json!("安徽"));
            }
            let body = v.to_string();
            if s.malformed(Channel::Board, &tid) {
                // Cut off mid-record: not JSON.
                let cut = body
                    .char_indices()
                    .nth(body.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body[..cut].to_string(),
                )
                    .into_response();
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
        None => json_error(
            StatusCode::NOT_FOUND,
            format!("no message with tid {tid:?}"),
        ),
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        Html(body),
    )
        .into_response()
}

async fn portal_list(State(s): State<Arc<SimState>>, Query(params): Params) -> Response {
    let page = match usize_param(&params, "page", 1) {
        Ok(0) | Err(_) => {
            return html(
                StatusCode::BAD_REQUEST,
                "<html><body><p>页码错误</p></body></html>".to_string(),
            );
        }
        Ok(p) => p,
    };
    let first = (page - 1)
        .saturating_mul(PORTAL_PAGE_SIZE)
        .min(s.portal.len());
    let to = (first + PORTAL_PAGE_SIZE).min(s.portal.len());
    let from = if page > 1 && s.draw(s.faults().portal.duplicate_rate) {
        first.saturating_sub(PORTAL_PAGE_SIZE)
    } else {
        first
    };
    html(
        StatusCode::OK,
        wire::portal_list_html(&s.portal[from..to], page, to < s.portal.len()),
    )
}

async fn portal_detail(State(s): State<Arc<SimState>>, Path(file): Path<String>) -> Response {
    match file
        .strip_suffix(".html")
        .and_then(|no| s.portal_index.get(no))
    {
        Some(&i) => {
            let mut l = s.portal[i].clone();
            if s.malformed(Channel::Portal, &l.no) {
                l.content.clear();
            }
            html(StatusCode::OK, wire::portal_detail_html(&l))
        }
        None => html(
            StatusCode::NOT_FOUND,
            format!(
                "<html><body><p>信件 {} 不存在</p></body></html>",
                wire::html_escape(&file)
            ),
        ),
    }
}

/// Errors and latency on the feeds' routes, per the current faults.
async fn inject_faults(
    State(s): State<Arc<SimState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let f = s.faults();
    let feed = if path.starts_with("/hotline/") {
        Some(f.hotline)
    } else if path.starts_with("/board/") {
        Some(f.board)
    } else if path.starts_with("/portal/") || path.starts_with("/mailbox/") {
        Some(f.portal)
    } else if path.starts_with("/pd/") {
        Some(f.peoples_daily)
    } else {
        None
    };
    if let Some(f) = feed {
        if s.draw(f.latency_rate) {
            tokio::time::sleep(std::time::Duration::from_millis(f.latency_ms)).await;
        }
        if s.draw(f.throttle_rate) {
            // A firewall's answers: 403, 429, or an empty 200.
            return match s.rng.lock().unwrap_or_else(|e| e.into_inner()).below(3) {
                0 => (StatusCode::FORBIDDEN, "<html>访问过于频繁</html>").into_response(),
                1 => (StatusCode::TOO_MANY_REQUESTS, "").into_response(),
                _ => (StatusCode::OK, "").into_response(),
            };
        }
        if s.draw(f.error_rate) {
            let code = [
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::TOO_MANY_REQUESTS,
            ][s.rng.lock().unwrap_or_else(|e| e.into_inner()).below(3)];
            return json_error(code, "injected fault");
        }
    }
    next.run(req).await
}

/// The faults in force, the records they break, and the webhook fault counts.
async fn get_faults(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    let mut malformed = serde_json::Map::new();
    let mut drifted = serde_json::Map::new();
    for ch in Channel::ALL {
        let ids = s.ids(ch).await;
        let m: Vec<&String> = ids.iter().filter(|i| s.malformed(ch, i)).collect();
        let d: Vec<&String> = ids.iter().filter(|i| s.drifted(ch, i)).collect();
        malformed.insert(ch.to_string(), json!(m));
        drifted.insert(ch.to_string(), json!(d));
    }
    let pd: Vec<String> = s
        .pd()
        .threads()
        .iter()
        .map(|t| t.tid.to_string())
        .filter(|t| s.malformed_pd(t))
        .collect();
    malformed.insert("peoples_daily".into(), json!(pd));
    Json(json!({
        "faults": s.faults(),
        "malformed": malformed,
        "drifted": drifted,
        "webhooks_bad_sent": s.webhooks_bad_sent.load(Ordering::SeqCst),
        "webhooks_bad_accepted": s.webhooks_bad_accepted.load(Ordering::SeqCst),
        "webhooks_redelivered": s.webhooks_redelivered.load(Ordering::SeqCst),
    }))
}

async fn set_faults(State(s): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            *s.faults.write().unwrap_or_else(|e| e.into_inner()) = f.clone();
            Json(json!({ "faults": f })).into_response()
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, format!("faults: {e}")),
    }
}
