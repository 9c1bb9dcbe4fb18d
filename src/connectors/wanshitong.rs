//! Wanshitong (皖事通) webhook receiver: verifies the HMAC-SHA256 signature and the replay window,
//! collapses re-deliveries by submission id, and answers 2xx only after the bus stored the record.

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::{Output, envelope};
use crate::record::Channel;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanshitongConfig {
    pub bind: SocketAddr,
    pub path: String,
    pub secret_env: String,
    #[serde(default = "default_window")]
    pub replay_window_secs: i64,
}

fn default_window() -> i64 {
    300
}

/// The development secret shared with `duban sim serve` when the environment sets none.
pub const DEV_SECRET: &str = "duban-dev-secret";

pub fn secret(env_name: &str) -> String {
    match std::env::var(env_name) {
        Ok(s) if !s.is_empty() => s,
        _ => {
            tracing::warn!("{env_name} is not set: using the development webhook secret");
            DEV_SECRET.to_string()
        }
    }
}

/// `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check signature and replay window; the error says which check failed.
pub fn verify(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    window: i64,
) -> Result<(), &'static str> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let ts = h("x-wst-timestamp").ok_or("missing X-Wst-Timestamp")?;
    let sig = h("x-wst-signature").ok_or("missing X-Wst-Signature")?;
    let t: i64 = ts
        .trim()
        .parse()
        .map_err(|_| "X-Wst-Timestamp is not Unix seconds")?;
    if (now - t).abs() > window {
        return Err("timestamp outside the replay window");
    }
    let hex_sig = sig
        .trim()
        .strip_prefix("sha256=")
        .ok_or("signature lacks the sha256= prefix")?;
    let raw = hex::decode(hex_sig).map_err(|_| "signature is not hex")?;
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&raw).map_err(|_| "bad signature")
}

struct Receiver {
    out: Output,
    secret: Vec<u8>,
    window: i64,
    /// Submission ids already stored: re-deliveries are acknowledged without a second record.
    taken: Mutex<HashSet<String>>,
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = verify(&rx.secret, &headers, &body, now, rx.window) {
        tracing::warn!(target: "duban::connectors", channel = "wanshitong", "webhook refused: {why}");
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"ok": false, "error": why})),
        )
            .into_response();
    }
    let delivery = headers
        .get("x-wst-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let parsed: Option<(String, Value)> =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
            let id = v.get("submission_id")?.as_str()?.trim().to_string();
            (!id.is_empty()).then_some((id, v))
        });
    let Some((id, payload)) = parsed else {
        let reason =
            format!("wanshitong delivery {delivery}: body is not JSON with a submission_id");
        return match rx
            .out
            .dead_letter(Channel::Wanshitong, reason, &delivery, &body)
            .await
        {
            Ok(()) => (
                StatusCode::ACCEPTED,
                axum::Json(json!({"ok": false, "dead_lettered": true})),
            )
                .into_response(),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")).into_response(),
        };
    };
    if rx
        .taken
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&id)
    {
        return (
            StatusCode::OK,
            axum::Json(json!({"ok": true, "duplicate": true})),
        )
            .into_response();
    }
    let env = envelope(
        Channel::Wanshitong,
        &id,
        json!({"delivery": delivery}),
        payload,
    );
    match rx.out.emit(&[env]).await {
        Ok(()) => {
            rx.taken
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id);
            (StatusCode::OK, axum::Json(json!({"ok": true}))).into_response()
        }
        Err(e) => {
            tracing::error!(target: "duban::connectors", channel = "wanshitong", "cannot store submission {id}: {e:#}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"ok": false, "error": "not stored, retry"})),
            )
                .into_response()
        }
    }
}

/// A running receiver.
pub struct ReceiverHandle {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ReceiverHandle {
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

pub async fn start(cfg: &WanshitongConfig, out: Output) -> Result<ReceiverHandle> {
    let rx = Arc::new(Receiver {
        out,
        secret: secret(&cfg.secret_env).into_bytes(),
        window: cfg.replay_window_secs,
        taken: Mutex::new(HashSet::new()),
    });
    let app = Router::new().route(&cfg.path, post(receive)).with_state(rx);
    let listener = tokio::net::TcpListener::bind(cfg.bind)
        .await
        .with_context(|| format!("wanshitong: cannot listen on {}", cfg.bind))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!("wanshitong receiver stopped: {e}");
        }
    });
    tracing::info!(target: "duban::connectors", "wanshitong webhooks on http://{addr}{}", cfg.path);
    Ok(ReceiverHandle { addr, stop, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_replay_window() {
        let body = br#"{"submission_id":"W1"}"#;
        let mut h = HeaderMap::new();
        h.insert("x-wst-timestamp", "1000".parse().expect("header"));
        h.insert(
            "x-wst-signature",
            sign(b"s", "1000", body).parse().expect("header"),
        );
        assert_eq!(verify(b"s", &h, body, 1100, 300), Ok(()));
        assert_eq!(verify(b"other", &h, body, 1100, 300), Err("bad signature"));
        assert_eq!(verify(b"s", &h, b"{}", 1100, 300), Err("bad signature"));
        assert_eq!(
            verify(b"s", &h, body, 2000, 300),
            Err("timestamp outside the replay window")
        );
        h.remove("x-wst-signature");
        assert_eq!(
            verify(b"s", &h, body, 1000, 300),
            Err("missing X-Wst-Signature")
        );
    }
}
