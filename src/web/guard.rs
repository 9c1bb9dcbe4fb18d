//! What every board response goes through: the Host header must name this server (a page whose
//! DNS name was rebound to 127.0.0.1 is refused), security headers (CSP, frame and sniffing
//! rules), and on the lifecycle API's routes the session cookie stands for its bearer token.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

use super::Shared;
use super::auth::{PAGE_HEADER, bearer, error, session_id};

/// The board's pages load only their own scripts and styles; charts are inline SVG (styles in
/// attributes); documents are framed by the board itself.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'self'";

/// The Host values the board answers to: 127.0.0.1, localhost and [::1] on its port, plus the
/// names in env DUBAN_BOARD_HOSTS (comma-separated, e.g. behind a reverse proxy).
pub(crate) fn allowed_hosts(port: u16) -> Vec<String> {
    let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .map(|h| format!("{h}:{port}"))
        .collect();
    if let Ok(extra) = std::env::var("DUBAN_BOARD_HOSTS") {
        hosts.extend(
            extra
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty()),
        );
    }
    hosts
}

/// Host check and security headers on every response.
pub(crate) async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let mut resp = match host {
        Some(h) if shared.hosts.contains(&h) => next.run(req).await,
        _ => {
            tracing::warn!(target: "duban::web", "request for another host refused (421)");
            error(
                StatusCode::MISDIRECTED_REQUEST,
                "unknown Host: this board answers to its own address only (DUBAN_BOARD_HOSTS adds names)",
            )
        }
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// On the lifecycle API's routes: a request without a bearer token but with a live session acts
/// with the session's token, if it comes from the board's page (its `X-Duban-Board` header; a
/// read needs none).
pub(crate) async fn session_as_bearer(
    State(shared): State<Arc<Shared>>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    if bearer(req.headers()).is_none()
        && let Some((token, _)) = session_id(req.headers()).and_then(|id| shared.sessions.get(id))
    {
        if req.method() != Method::GET && !req.headers().contains_key(PAGE_HEADER) {
            return error(
                StatusCode::FORBIDDEN,
                "an action with the session cookie must come from the board's page",
            );
        }
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
    }
    next.run(req).await
}
