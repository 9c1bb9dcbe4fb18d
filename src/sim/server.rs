//! The simulator's HTTP routes: hotline API, board JSON, portal HTML, control endpoints.
//! State is built once from the corpus; only hotline status changes (`/sim/hotline/advance`) mutate it.

use super::corpus::{Corpus, Manifest};
use super::wire::{self, BoardMessage, BoardPage, HotlineOrder, HotlinePage, PortalLetter};
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
    hotline: RwLock<Vec<HotlineRow>>,
    board: Vec<BoardMessage>,
    board_index: HashMap<u64, usize>,
    portal: Vec<PortalLetter>,
    portal_index: HashMap<String, usize>,
    manifest: Arc<Manifest>,
    pub webhooks_total: usize,
    pub webhooks_acked: Arc<AtomicUsize>,
}

impl SimState {
    pub fn new(corpus: &Corpus, manifest: Arc<Manifest>, webhooks_total: usize) -> SimState {
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
            hotline: RwLock::new(hotline),
            board,
            board_index,
            portal,
            portal_index,
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
}

pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/sim/manifest", get(manifest))
        .route("/sim/status", get(status))
        .route("/sim/hotline/advance", post(hotline_advance))
        .route("/hotline/api/v1/workorders", get(hotline_workorders))
        .route("/board/api/messages", get(board_list))
        .route("/board/api/messages/{tid}", get(board_detail))
        .route("/portal/letters", get(portal_list))
        .route("/portal/letters/{file}", get(portal_detail))
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "no such endpoint") })
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
    let items: Vec<HotlineOrder> = rows[start..]
        .iter()
        .take(limit)
        .map(|r| r.order.clone())
        .collect();
    let has_more = start + items.len() < rows.len();
    Json(HotlinePage { items, has_more }).into_response()
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
    let items = s
        .board
        .iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
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
        Some(&i) => Json(s.board[i].clone()).into_response(),
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
    let from = (page - 1)
        .saturating_mul(PORTAL_PAGE_SIZE)
        .min(s.portal.len());
    let to = (from + PORTAL_PAGE_SIZE).min(s.portal.len());
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
        Some(&i) => html(StatusCode::OK, wire::portal_detail_html(&s.portal[i])),
        None => html(
            StatusCode::NOT_FOUND,
            format!(
                "<html><body><p>信件 {} 不存在</p></body></html>",
                wire::html_escape(&file)
            ),
        ),
    }
}
