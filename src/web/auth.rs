//! Who is asking: the lifecycle API's bearer token (`Authorization: Bearer …`), or the same token
//! in the board's session cookie (set at login, HttpOnly; the event stream and document frames
//! cannot send headers). Roles are the lifecycle's: supervisor, or unit:<name>.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::lifecycle::decide::Role;
use crate::record::Alert;

pub(crate) const COOKIE: &str = "duban_board";

pub(crate) fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_string());
    }
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
}

pub(crate) fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, axum::Json(serde_json::json!({ "error": msg.into() }))).into_response()
}

/// The caller's role, or 401.
pub(crate) fn role(shared: &Shared, headers: &HeaderMap) -> Result<Role, Box<Response>> {
    match token(headers).and_then(|t| shared.tokens.get(&t).cloned()) {
        Some(r) => Ok(r),
        None => {
            tracing::warn!(target: "duban::web", "board request without a valid token refused");
            Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "请先登录：缺少或无效的令牌 (missing or unknown token)",
            )))
        }
    }
}

/// Whether `role` may see alert `a` (a unit sees only its own alerts).
pub(crate) fn visible(role: &Role, a: &Alert) -> bool {
    match role {
        Role::Unit(u) => &a.unit == u,
        _ => true,
    }
}

pub(crate) fn forbidden(role: &Role, what: &str) -> Response {
    tracing::warn!(target: "duban::web", %role, what, "refused (403): not an alert of this unit");
    error(
        StatusCode::FORBIDDEN,
        "无权查看：不是本单位的预警 (not an alert of this unit)",
    )
}
