//! Wanshitong (皖事通) webhook receiver: verifies the HMAC-SHA256 signature and the replay window,
//! collapses re-deliveries by submission id (across restarts: the ids are positions in Kafka), and
//! answers 2xx only after the record is committed to Kafka (end-to-end acknowledgement).

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use super::board::Taken;
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
    /// Submission ids remembered to collapse re-deliveries (the most recent ones; older ids are
    /// forgotten, their keys deleted from the offsets topic). Default 100000.
    #[serde(default = "default_remember")]
    pub remember_ids: usize,
    /// Environment variable holding the bearer token that `GET /metrics` on this (public) port
    /// requires. Unset: the port serves no `/metrics`. Default none.
    #[serde(default)]
    pub metrics_token_env: Option<String>,
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
        if self.remember_ids == 0 {
            anyhow::bail!("`remember_ids` must be positive");
        }
        if let Some(var) = &self.metrics_token_env
            && std::env::var(var).map_or(true, |v| v.is_empty())
        {
            anyhow::bail!("`metrics_token_env` names {var}, which is not set");
        }
        Ok(())
    }
}

fn default_window() -> i64 {
    300
}

fn default_remember() -> usize {
    100_000
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

/// What the receiver has committed, as keys of the offsets topic: submission ids (bounded:
/// the oldest are forgotten first) and the digests of signed requests without a submission id
/// that were dead-lettered (kept for the replay window: a replay of the same request is refused
/// by its timestamp after that). Forgotten keys are deleted from the topic with the next commit.
#[derive(Debug, Default)]
struct Seen {
    ids: Taken,
    /// (request timestamp, key) of dead-lettered id-less requests, oldest first.
    replays: std::collections::VecDeque<(i64, String)>,
    replay_keys: HashSet<String>,
    /// Keys forgotten and not yet deleted from the offsets topic.
    forgotten: Vec<String>,
}

/// The offsets-topic key of a signed request without a submission id.
fn replay_key(timestamp: &str, body: &[u8]) -> String {
    let mut h = <Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, timestamp.as_bytes());
    sha2::Digest::update(&mut h, b".");
    sha2::Digest::update(&mut h, body);
    format!("sig-{}", &hex::encode(sha2::Digest::finalize(h))[..32])
}

impl Seen {
    /// Rebuild from the connector's positions (sub key → value with its `at`).
    fn restore(p: super::Positions, cap: usize, now: i64, window: i64) -> Seen {
        let mut seen = Seen {
            ids: Taken::bounded(cap),
            ..Seen::default()
        };
        // Ids carry the milliseconds they were taken at, replay digests their request's seconds.
        let at = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        let mut ids: Vec<(i64, String)> = Vec::new();
        let mut replays: Vec<(i64, String)> = Vec::new();
        for (k, v) in p {
            if k.is_empty() {
                continue;
            }
            if k.starts_with("sig-") {
                replays.push((at(&v, "at"), k));
            } else {
                ids.push((at(&v, "at_ms"), k));
            }
        }
        ids.sort();
        replays.sort();
        for (_, id) in ids {
            seen.forgotten.extend(seen.ids.insert(id));
        }
        for (t, k) in replays {
            seen.replay_keys.insert(k.clone());
            seen.replays.push_back((t, k));
        }
        seen.expire(now, window);
        seen
    }

    fn contains(&self, key: &str) -> bool {
        self.ids.contains(key) || self.replay_keys.contains(key)
    }

    /// Forget replay digests whose requests are now outside the replay window.
    fn expire(&mut self, now: i64, window: i64) {
        while let Some((t, _)) = self.replays.front()
            && *t < now - window
        {
            if let Some((_, k)) = self.replays.pop_front() {
                self.replay_keys.remove(&k);
                self.forgotten.push(k);
            }
        }
    }

    /// Deletions to write with a commit that takes a new submission id.
    fn deletions(&self, new_id: bool) -> Vec<(String, Value)> {
        let next = if new_id {
            self.ids.next_evicted()
        } else {
            None
        };
        self.forgotten
            .iter()
            .map(String::as_str)
            .chain(next)
            .map(|k| (k.to_string(), Value::Null))
            .collect()
    }

    /// After a successful commit of `key` (a submission id, or a replay digest at `at`).
    fn committed(&mut self, key: String, replay_at: Option<i64>) {
        self.forgotten.clear();
        match replay_at {
            Some(t) => {
                self.replay_keys.insert(key.clone());
                self.replays.push_back((t, key));
            }
            // What the insertion forgets was deleted in the same commit.
            None => drop(self.ids.insert(key)),
        }
    }
}

struct Receiver {
    out: Output,
    /// Reopened (and the ids taken restored again) after a failed commit, e.g. when fenced.
    sink: tokio::sync::Mutex<Sink>,
    metrics: Arc<super::metrics::ConnectorMetrics>,
    map: FieldMap,
    secret: Vec<u8>,
    window: i64,
    remember: usize,
    /// What was committed (restored from the offsets topic): re-deliveries and replays are
    /// acknowledged without a second record. Held across the commit so that two concurrent
    /// deliveries of one id cannot both be stored.
    seen: tokio::sync::Mutex<Seen>,
}

impl Receiver {
    /// Commit; after a failure reopen the writer and restore what was taken (another instance
    /// may have fenced this one and taken some), so the next delivery can succeed.
    async fn commit(&self, c: Commit, seen: &mut Seen) -> Result<()> {
        let mut sink = self.sink.lock().await;
        let err = match sink.commit(c).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match self.out.sink("wanshitong").await {
            Ok(fresh) => {
                if let Ok(p) = fresh.restore().await {
                    let now = chrono::Utc::now().timestamp();
                    *seen = Seen::restore(p, self.remember, now, self.window);
                }
                *sink = fresh;
            }
            Err(e) => {
                tracing::error!(target: "duban::connectors", channel = "wanshitong", "cannot reopen the writer: {e:#}")
            }
        }
        Err(err)
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_stored(e: anyhow::Error, what: &str) -> Response {
    tracing::error!(target: "duban::connectors", channel = "wanshitong", "cannot store {what}: {e:#}");
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"ok": false, "error": "not stored, retry"}),
    )
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
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let delivery = header("x-wst-delivery");
    let parsed = serde_json::from_slice::<Value>(&body);
    let id = parsed
        .as_ref()
        .ok()
        .and_then(|v| match v.get("submission_id")? {
            Value::String(s) => Some(s.trim().to_string()),
            n @ Value::Number(_) => Some(n.to_string()),
            _ => None,
        })
        .filter(|s| !s.is_empty());
    let mut seen = rx.seen.lock().await;
    seen.expire(now, rx.window);
    let Some(id) = id else {
        // Without an id there is nothing to collapse re-deliveries on: dead-letter it, once
        // per signed request (a replay of the same request within the window is not stored).
        let timestamp = header("x-wst-timestamp");
        let key = replay_key(&timestamp, &body);
        if seen.contains(&key) {
            m.dropped(1, body.len());
            return answer(
                StatusCode::ACCEPTED,
                json!({"ok": false, "dead_lettered": true, "duplicate": true}),
            );
        }
        let at: i64 = timestamp.parse().unwrap_or(now);
        let reason =
            format!("wanshitong delivery {delivery}: body is not JSON with a submission_id");
        let mut positions = seen.deletions(false);
        positions.push((key.clone(), json!({"at": at})));
        let c = Commit {
            dead: vec![dead_letter(Channel::Wanshitong, reason, &delivery, &body)],
            positions,
            ..Commit::default()
        };
        return match rx.commit(c, &mut seen).await {
            Ok(()) => {
                seen.committed(key, Some(at));
                answer(
                    StatusCode::ACCEPTED,
                    json!({"ok": false, "dead_lettered": true}),
                )
            }
            Err(e) => not_stored(e, "a dead letter"),
        };
    };
    if seen.contains(&id) {
        m.dropped(1, body.len());
        return answer(StatusCode::OK, json!({"ok": true, "duplicate": true}));
    }
    let position = json!({"delivery": delivery, "submission_id": id});
    let mut positions = seen.deletions(true);
    let at_ms = chrono::Utc::now().timestamp_millis();
    positions.push((id.clone(), json!({"delivery": delivery, "at_ms": at_ms})));
    positions.push((String::new(), position.clone()));
    let mut c = Commit {
        positions,
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
    match rx.commit(c, &mut seen).await {
        Ok(()) => {
            seen.committed(id, None);
            if stored {
                answer(StatusCode::OK, json!({"ok": true}))
            } else {
                answer(
                    StatusCode::ACCEPTED,
                    json!({"ok": false, "dead_lettered": true}),
                )
            }
        }
        Err(e) => not_stored(e, &format!("submission {id}")),
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
    let sink = out.sink("wanshitong").await?;
    let now = chrono::Utc::now().timestamp();
    let seen = Seen::restore(
        sink.restore().await?,
        cfg.remember_ids,
        now,
        cfg.replay_window_secs,
    );
    let metrics_token = cfg
        .metrics_token_env
        .as_deref()
        .and_then(|v| std::env::var(v).ok())
        .filter(|t| !t.is_empty());
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
        remember: cfg.remember_ids,
        seen: tokio::sync::Mutex::new(seen),
    });
    let mut app = Router::new()
        .route(&cfg.path, post(receive))
        .with_state(rx)
        .route("/healthz", get(|| async { "ok" }));
    if let Some(token) = metrics_token {
        // This port faces the app's servers: the counters are for the operator's token only.
        let token = Arc::new(token);
        app = app.route(
            "/metrics",
            get(move |headers: HeaderMap| {
                let token = token.clone();
                async move { metrics_text(&headers, &token) }
            }),
        );
    }
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

/// Constant-time equality of two secrets (no early exit on the first differing byte).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn metrics_text(headers: &HeaderMap, token: &str) -> Response {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given.trim().as_bytes(), token.as_bytes()) {
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"ok": false, "error": "a bearer token is required"}),
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::metrics::render(),
    )
        .into_response()
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

    #[test]
    fn seen_ids_are_bounded_and_replays_expire_with_their_window() {
        let pos: super::super::Positions = [
            (String::new(), json!({"submission_id": "W3"})),
            ("W1".to_string(), json!({"delivery": "d", "at_ms": 10})),
            ("W2".to_string(), json!({"delivery": "d", "at_ms": 20})),
            // Written before ids carried their time: oldest.
            ("W0".to_string(), json!({"delivery": "d"})),
            ("sig-old".to_string(), json!({"at": 100})),
            ("sig-new".to_string(), json!({"at": 950})),
        ]
        .into_iter()
        .collect();
        let mut seen = Seen::restore(pos, 2, 1000, 300);
        assert!(seen.contains("W1") && seen.contains("W2") && !seen.contains("W0"));
        assert!(seen.contains("sig-new") && !seen.contains("sig-old"));
        // The forgotten keys are deleted with the next commit, with the id the new one evicts.
        let del: Vec<String> = seen.deletions(true).into_iter().map(|(k, _)| k).collect();
        assert_eq!(del, ["W0", "sig-old", "W1"]);
        assert!(seen.deletions(true).iter().all(|(_, v)| v.is_null()));
        seen.committed("W3".into(), None);
        assert!(seen.contains("W3") && !seen.contains("W1"));
        assert_eq!(seen.deletions(false), vec![]);
        seen.expire(1300, 300);
        assert!(!seen.contains("sig-new"));
        assert_eq!(
            seen.deletions(false),
            vec![("sig-new".to_string(), Value::Null)]
        );
        assert_ne!(replay_key("1", b"{}"), replay_key("2", b"{}"));
        assert!(
            same_secret(b"abc", b"abc")
                && !same_secret(b"abc", b"abd")
                && !same_secret(b"ab", b"abc")
        );
    }
}
