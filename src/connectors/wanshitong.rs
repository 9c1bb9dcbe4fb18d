//! Wanshitong (皖事通) webhook receiver: verifies the HMAC-SHA256 signature and the replay window,
//! collapses re-deliveries by submission id (across restarts: the ids are positions in Kafka), and
//! answers 2xx only after the record is committed to Kafka (end-to-end acknowledgement).

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
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use super::fields::FieldMap;
use super::{Commit, Output, Sink, dead_letter, envelope};
use crate::record::Channel;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanshitongConfig {
    /// Address the receiver listens on; it also serves `/metrics` and `/healthz`.
    pub bind: SocketAddr,
    /// Path of the webhook, e.g. `/webhooks/wanshitong`.
    pub path: String,
    /// Environment variable holding the shared HMAC secret (never the secret itself).
    pub secret_env: String,
    /// Requests whose timestamp is further off than this are refused (401), seconds. Default 300.
    #[serde(default = "default_window")]
    pub replay_window_secs: i64,
    /// Raw-shape field → the body's names for it (first present wins); others go to `extra`.
    #[serde(default)]
    pub fields: BTreeMap<String, Vec<String>>,
    /// Fields a submission must carry; without one it goes to the dead-letter topic (202).
    #[serde(default)]
    pub required: Vec<String>,
}

impl WanshitongConfig {
    pub fn validate(&self) -> Result<()> {
        if !self.path.starts_with('/') {
            anyhow::bail!("`path` must start with /, got {:?}", self.path);
        }
        if self.secret_env.trim().is_empty() {
            anyhow::bail!("`secret_env` must name an environment variable");
        }
        if self.replay_window_secs <= 0 {
            anyhow::bail!("`replay_window_secs` must be positive");
        }
        Ok(())
    }
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
    /// Reopened (and the ids taken restored again) after a failed commit, e.g. when fenced.
    sink: tokio::sync::Mutex<Sink>,
    metrics: Arc<super::metrics::ConnectorMetrics>,
    map: FieldMap,
    secret: Vec<u8>,
    window: i64,
    /// Submission ids already committed (restored from the offsets topic): re-deliveries are
    /// acknowledged without a second record.
    taken: tokio::sync::Mutex<HashSet<String>>,
    /// Submission ids being stored: a concurrent delivery of one of them is answered 503 (retry),
    /// so two deliveries of one id cannot both be stored.
    in_flight: std::sync::Mutex<HashSet<String>>,
    /// Deliveries waiting for the next transaction (group commit): every delivery that arrives
    /// while a transaction is being committed joins the next one, so under load one transaction
    /// carries many webhooks, and each is answered when its transaction committed.
    pending: std::sync::Mutex<Vec<(Commit, tokio::sync::oneshot::Sender<Stored>)>>,
    /// Kafka outages seen by commits: told once per interval, not ready meanwhile.
    outage: std::sync::Mutex<crate::ops::Outage>,
}

/// How a delivery's transaction ended: committed, or failed with its error (and whether that
/// was an outage, told by the receiver once per interval).
type Stored = std::result::Result<(), (String, bool)>;

impl Receiver {
    /// Commit `c` in the next transaction and wait for it. Whoever takes the writer commits
    /// everything pending then, for all who wait.
    async fn commit(&self, c: Commit) -> std::result::Result<(), (String, bool)> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((c, tx));
        {
            let mut sink = self.sink.lock().await;
            let batch =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
            if !batch.is_empty() {
                let (commits, waiters): (Vec<Commit>, Vec<_>) = batch.into_iter().unzip();
                let mut merged = Commit::default();
                for c in commits {
                    merged.records.extend(c.records);
                    merged.dead.extend(c.dead);
                    merged.positions.extend(c.positions);
                }
                let result: Stored = self.commit_now(&mut sink, merged).await.map_err(|e| {
                    (
                        format!("{e:#}"),
                        crate::ops::outage::outage_of(&e).is_some(),
                    )
                });
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(("the commit was dropped".into(), false)))
    }

    /// One transaction; after a failure reopen the writer and restore the ids taken (another
    /// instance may have fenced this one and taken some), so the next delivery can succeed.
    async fn commit_now(&self, sink: &mut Sink, c: Commit) -> Result<()> {
        let err = match sink.commit(c).await {
            Ok(()) => {
                self.outage.lock().unwrap_or_else(|e| e.into_inner()).ok();
                return Ok(());
            }
            Err(e) => e,
        };
        if crate::ops::outage::outage_of(&err).is_some() {
            // Told (once per interval) by the tracker, which keeps its own copy of the error.
            let copy = anyhow::anyhow!("{err:#}").context(crate::ops::outage::Transient(
                crate::ops::Service::Kafka,
                "wanshitong: commit failed".into(),
            ));
            let _ = self
                .outage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .failed(copy);
        }
        match self.out.sink("wanshitong").await {
            Ok(fresh) => {
                if let Ok(p) = fresh.restore().await {
                    *self.taken.lock().await = p.into_keys().filter(|k| !k.is_empty()).collect();
                }
                *sink = fresh;
            }
            Err(e) => {
                if crate::ops::outage::outage_of(&e).is_none() {
                    tracing::error!(target: "duban::connectors", channel = "wanshitong", "cannot reopen the writer: {e:#}")
                }
            }
        }
        Err(err)
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = chrono::Utc::now().timestamp();
    let m = &rx.metrics;
    if let Err(why) = verify(&rx.secret, &headers, &body, now, rx.window) {
        m.error();
        tracing::warn!(target: "duban::connectors", channel = "wanshitong", "webhook refused: {why}");
        return answer(StatusCode::UNAUTHORIZED, json!({"ok": false, "error": why}));
    }
    m.received(1, body.len());
    let delivery = headers
        .get("x-wst-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let parsed = serde_json::from_slice::<Value>(&body);
    let id = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("submission_id")?.as_str())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let Some(id) = id else {
        // Without an id there is nothing to collapse re-deliveries on: dead-letter it.
        let reason =
            format!("wanshitong delivery {delivery}: body is not JSON with a submission_id");
        let c = Commit {
            dead: vec![dead_letter(Channel::Wanshitong, reason, &delivery, &body)],
            ..Commit::default()
        };
        return match rx.commit(c).await {
            Ok(()) => answer(
                StatusCode::ACCEPTED,
                json!({"ok": false, "dead_lettered": true}),
            ),
            Err((e, _)) => answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"ok": false, "error": e}),
            ),
        };
    };
    {
        let taken = rx.taken.lock().await;
        if taken.contains(&id) {
            m.dropped(1, body.len());
            return answer(StatusCode::OK, json!({"ok": true, "duplicate": true}));
        }
        let mut in_flight = rx.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !in_flight.insert(id.clone()) {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"ok": false, "error": "a delivery of this submission is being stored, retry"}),
            );
        }
    }
    let position = json!({"delivery": delivery, "submission_id": id});
    let mut c = Commit {
        positions: vec![
            (id.clone(), json!({"delivery": delivery})),
            (String::new(), position.clone()),
        ],
        ..Commit::default()
    };
    let stored = match parsed
        .map_err(|e| e.to_string())
        .and_then(|v| rx.map.apply(&v))
    {
        Ok(payload) => {
            c.records
                .push(envelope(Channel::Wanshitong, &id, position, payload, None));
            true
        }
        Err(why) => {
            c.dead.push(dead_letter(
                Channel::Wanshitong,
                format!("wanshitong submission {id} (delivery {delivery}): {why}"),
                &delivery,
                &body,
            ));
            false
        }
    };
    // End-to-end acknowledgement: answer 2xx only once Kafka committed the record.
    let result = rx.commit(c).await;
    if result.is_ok() {
        rx.taken.lock().await.insert(id.clone());
    }
    rx.in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    match result {
        Ok(()) => {
            if stored {
                answer(StatusCode::OK, json!({"ok": true}))
            } else {
                answer(
                    StatusCode::ACCEPTED,
                    json!({"ok": false, "dead_lettered": true}),
                )
            }
        }
        Err((e, outage)) => {
            // An outage is told once per interval by the receiver; anything else here and now.
            if !outage {
                tracing::error!(target: "duban::connectors", channel = "wanshitong", "cannot store submission {id}: {e}");
            }
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"ok": false, "error": "not stored, retry"}),
            )
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

/// Open the connector's writer, restore the ids taken, and serve the webhook, `/metrics` and
/// `/healthz` on `cfg.bind`.
pub async fn start(cfg: &WanshitongConfig, out: Output) -> Result<ReceiverHandle> {
    let health = crate::ops::Component::register("connector.wanshitong");
    let sink = out.sink("wanshitong").await?;
    let taken: HashSet<String> = sink
        .restore()
        .await?
        .into_keys()
        .filter(|k| !k.is_empty())
        .collect();
    let rx = Arc::new(Receiver {
        out,
        metrics: sink.metrics.clone(),
        sink: tokio::sync::Mutex::new(sink),
        map: FieldMap {
            names: cfg.fields.clone(),
            required: cfg.required.clone(),
        },
        secret: secret(&cfg.secret_env).into_bytes(),
        window: cfg.replay_window_secs,
        taken: tokio::sync::Mutex::new(taken),
        in_flight: Default::default(),
        pending: Default::default(),
        outage: std::sync::Mutex::new(crate::ops::Outage::new(
            "connector.wanshitong",
            Some(health.clone()),
        )),
    });
    let app = Router::new()
        .route(&cfg.path, post(receive))
        .with_state(rx)
        // The process's ops endpoints (`/metrics` from the metrics facade, `/healthz`, `/readyz`).
        .merge(crate::ops::server::router());
    let listener = tokio::net::TcpListener::bind(cfg.bind)
        .await
        .with_context(|| format!("wanshitong: cannot listen on {}", cfg.bind))?;
    let addr = listener.local_addr()?;
    health.ready();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!("wanshitong receiver stopped: {e}");
        }
    });
    tracing::info!(target: "duban::connectors", "wanshitong webhooks on http://{addr}{}, metrics on http://{addr}/metrics", cfg.path);
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
