//! Kafka mode: an action that does not fit the alert's state is answered 409 at once with the
//! lifecycle's own reason (`decide` run on the board's current state), instead of waiting for a
//! result the lifecycle never writes to the board topic. Everything else — tokens, roles (403),
//! sending to `<prefix>.alert-actions` — is the lifecycle API's, unchanged. The lifecycle still
//! decides on its own state; this only spares the user a 10-second wait on an obvious refusal.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, RwLock};

use crate::lifecycle::Policy;
use crate::lifecycle::api::{ActionBody, View};
use crate::lifecycle::clock::Clock;
use crate::lifecycle::decide::{ActionKind, AlertAction, Ctx, Event, Output, decide, permitted};

pub(crate) struct Precheck {
    pub view: Arc<RwLock<View>>,
    pub tokens: crate::auth::Credentials,
    pub policy: Policy,
    pub clock: Clock,
}

pub(crate) async fn precheck(State(p): State<Arc<Precheck>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let Some((id, action)) = path
        .strip_prefix("/api/alerts/")
        .and_then(|r| r.split_once('/'))
    else {
        return next.run(req).await;
    };
    let kind = match action {
        "assign" => ActionKind::Assign,
        "feedback" => ActionKind::Feedback,
        "verify" => ActionKind::Verify,
        "escalate" => ActionKind::Escalate,
        "reopen" => ActionKind::Reopen,
        _ => return next.run(req).await,
    };
    let Some(role) = super::auth::bearer(req.headers())
        .and_then(|t| p.tokens.find(t))
        .map(|c| c.role.clone())
    else {
        return next.run(req).await;
    };
    let alert = p
        .view
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .alerts
        .get(id)
        .cloned();
    let Some(alert) = alert else {
        return next.run(req).await;
    };
    if permitted(&role, kind, &alert.unit).is_err() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, crate::lifecycle::api::MAX_BODY_BYTES).await else {
        return super::auth::error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let parsed = if bytes.iter().all(u8::is_ascii_whitespace) {
        Some(ActionBody::default())
    } else {
        serde_json::from_slice::<ActionBody>(&bytes).ok()
    };
    let now = p.clock.now().ok();
    if let (Some(b), Some(now)) = (parsed, now) {
        let act = AlertAction {
            action_id: "board-precheck".into(),
            alert_id: id.to_string(),
            action: kind,
            actor: role.to_string(),
            actor_note: None,
            role: role.to_string(),
            at: now,
            reason: b.reason.or(b.text).unwrap_or_default(),
            unit: b.unit,
            accepted: b.accepted,
            finding: b.finding,
            domain: None,
        };
        let cx = Ctx {
            policy: &p.policy,
            next_document_no: "",
        };
        let (_, outputs) = decide(Some(alert), &Event::Action(act), now, &cx);
        for o in outputs {
            if let Output::Rejected {
                reason,
                forbidden: false,
                ..
            } = o
            {
                tracing::info!(target: "duban::web", alert = %id, action, "refused before sending (409): {reason}");
                return super::auth::error(StatusCode::CONFLICT, reason);
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
