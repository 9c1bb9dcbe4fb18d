//! Who is asking the board: the lifecycle API's bearer token (`Authorization: Bearer …`), or a
//! session opened at login. A session id is opaque and random, kept in an HttpOnly, SameSite=Strict
//! cookie (the event stream and document frames cannot send headers); the token stays on the
//! server, and logout revokes the session. Roles are the lifecycle's: supervisor, or unit:<name>.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Shared;
use crate::auth::Credential;
use crate::lifecycle::decide::Role;

pub(crate) const COOKIE: &str = "duban_board";
/// The header the board's page sends with every request: a page of another origin cannot send it
/// without a CORS preflight the board never answers, so a session cookie alone cannot act.
pub(crate) const PAGE_HEADER: &str = "x-duban-board";
/// How long a session lasts after login.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest go first).
const MAX_SESSIONS: usize = 10_000;

struct Session {
    token: String,
    cred: Credential,
    expires: Instant,
}

/// Open sessions: random id → the token it stands for.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// A new session for `token`; its id (32 random bytes, hex).
    pub fn open(&self, token: &str, cred: &Credential) -> Option<String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).ok()?;
        let id = hex::encode(raw);
        let now = Instant::now();
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, s| s.expires > now);
        if m.len() >= MAX_SESSIONS
            && let Some(oldest) = m
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(
            id.clone(),
            Session {
                token: token.to_string(),
                cred: cred.clone(),
                expires: now + SESSION_TTL,
            },
        );
        Some(id)
    }

    /// The token and credential of a live session.
    pub fn get(&self, id: &str) -> Option<(String, Credential)> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(id)
            .filter(|s| s.expires > Instant::now())
            .map(|s| (s.token.clone(), s.cred.clone()))
    }

    pub fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

pub(crate) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
}

/// The token and credential behind a request: its bearer token, else its session.
pub(crate) fn caller(shared: &Shared, headers: &HeaderMap) -> Option<(String, Credential)> {
    if let Some(t) = bearer(headers) {
        return shared.tokens.find(t).map(|c| (t.to_string(), c.clone()));
    }
    shared.sessions.get(session_id(headers)?)
}

pub(crate) fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, axum::Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// The caller's credential, or 401.
pub(crate) fn credential(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<Credential, Box<Response>> {
    match caller(shared, headers) {
        Some((_, c)) => Ok(c),
        None => {
            tracing::warn!(target: "duban::web", "board request without a valid token refused");
            Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "请先登录：缺少或无效的令牌 (missing or unknown token)",
            )))
        }
    }
}

/// The caller's role, or 401.
pub(crate) fn role(shared: &Shared, headers: &HeaderMap) -> Result<Role, Box<Response>> {
    credential(shared, headers).map(|c| c.role)
}

pub(crate) fn forbidden(role: &Role, what: &str) -> Response {
    tracing::warn!(target: "duban::web", %role, what, "refused (403): not an alert of this unit");
    error(
        StatusCode::FORBIDDEN,
        "无权查看：不是本单位的预警 (not an alert of this unit)",
    )
}
