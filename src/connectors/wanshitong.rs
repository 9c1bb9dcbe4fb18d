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
    let mac = signed_mac(secret, timestamp, body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// HMAC-SHA256(secret) fed with what a signature covers: timestamp + "." + body.
fn signed_mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
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
    signed_mac(secret, ts, body)
        .verify_slice(&raw)
        .map_err(|_| "bad signature")
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

    /// Plan the commit of `marks`: the keys to delete with it (forgotten keys, and the ids the
    /// new ones will evict), taken out of `forgotten` (given back by `unplanned` on failure).
    fn plan(&mut self, marks: &[Mark]) -> Vec<String> {
        let new_ids = marks.iter().filter(|m| matches!(m, Mark::Id(_))).count();
        let mut keys = std::mem::take(&mut self.forgotten);
        keys.extend(self.ids.evicted_by(new_ids));
        keys
    }

    /// A planned commit failed: its deletions are owed again (but for keys still remembered).
    fn unplanned(&mut self, keys: Vec<String>) {
        let owed: Vec<String> = keys.into_iter().filter(|k| !self.contains(k)).collect();
        self.forgotten.extend(owed);
    }

    /// After a successful commit of `marks` (what their insertions forget was deleted with it).
    fn committed(&mut self, marks: Vec<Mark>) {
        for m in marks {
            match m {
                Mark::Replay(key, t) => {
                    self.replay_keys.insert(key.clone());
                    self.replays.push_back((t, key));
                }
                Mark::Id(id) => drop(self.ids.insert(id)),
            }
        }
    }
}

/// What a delivery's commit takes: a submission id, or the replay key of an id-less request
/// (with its timestamp).
#[derive(Debug, Clone, PartialEq)]
enum Mark {
    Id(String),
    Replay(String, i64),
}

impl Mark {
    fn key(&self) -> &str {
        match self {
            Mark::Id(k) | Mark::Replay(k, _) => k,
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
    /// acknowledged without a second record.
    seen: tokio::sync::Mutex<Seen>,
    /// Submission ids (and replay keys) being stored: a concurrent delivery of one of them is
    /// answered 503 (retry), so two deliveries of one id cannot both be stored.
    in_flight: std::sync::Mutex<HashSet<String>>,
    /// Deliveries waiting for the next transaction (group commit): every delivery that arrives
    /// while a transaction is being committed joins the next one, so under load one transaction
    /// carries many webhooks, and each is answered when its transaction committed.
    pending: std::sync::Mutex<Vec<(Commit, Mark, tokio::sync::oneshot::Sender<Stored>)>>,
    /// Kafka outages seen by commits: told once per interval, not ready meanwhile.
    outage: std::sync::Mutex<crate::ops::Outage>,
}

/// How a delivery's transaction ended: committed, or failed with its error (and whether that
/// was an outage, told by the receiver once per interval).
type Stored = std::result::Result<(), (String, bool)>;

impl Receiver {
    /// Commit `c`, which takes `mark`, in the next transaction and wait for it. Whoever takes
    /// the writer commits everything pending then, for all who wait, with the deletions of the
    /// keys forgotten meanwhile.
    async fn commit(&self, c: Commit, mark: Mark) -> Stored {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((c, mark, tx));
        {
            let mut sink = self.sink.lock().await;
            let batch =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
            if !batch.is_empty() {
                let mut merged = Commit::default();
                let mut marks = Vec::with_capacity(batch.len());
                let mut waiters = Vec::with_capacity(batch.len());
                for (c, mark, w) in batch {
                    merged.records.extend(c.records);
                    merged.dead.extend(c.dead);
                    merged.positions.extend(c.positions);
                    marks.push(mark);
                    waiters.push(w);
                }
                let deleted = self.seen.lock().await.plan(&marks);
                merged
                    .positions
                    .extend(deleted.iter().map(|k| (k.clone(), Value::Null)));
                let result: Stored = match self.commit_now(&mut sink, merged).await {
                    Ok(()) => {
                        self.seen.lock().await.committed(marks);
                        Ok(())
                    }
                    Err(e) => {
                        self.seen.lock().await.unplanned(deleted);
                        Err((
                            format!("{e:#}"),
                            crate::ops::outage::outage_of(&e).is_some(),
                        ))
                    }
                };
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(("the commit was dropped".into(), false)))
    }

    /// One transaction; after a failure reopen the writer and restore what was taken (another
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
                    let now = chrono::Utc::now().timestamp();
                    *self.seen.lock().await = Seen::restore(p, self.remember, now, self.window);
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

    /// Commit a delivery that takes `mark` (unless a delivery of it is being stored: 503) and
    /// answer `ok` once Kafka committed it.
    async fn store(&self, c: Commit, mark: Mark, ok: (StatusCode, Value)) -> Response {
        let key = mark.key().to_string();
        if !self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"ok": false, "error": "a delivery of this submission is being stored, retry"}),
            );
        }
        // End-to-end acknowledgement: answer 2xx only once Kafka committed the record.
        let result = self.commit(c, mark).await;
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        match result {
            Ok(()) => answer(ok.0, ok.1),
            Err((e, outage)) => {
                // An outage is told once per interval by the receiver; anything else here and now.
                if !outage {
                    tracing::error!(target: "duban::connectors", channel = "wanshitong", "cannot store {key}: {e}");
                }
                answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"ok": false, "error": "not stored, retry"}),
                )
            }
        }
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
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
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
    let mark = match &id {
        Some(id) => Mark::Id(id.clone()),
        None => {
            let timestamp = header("x-wst-timestamp");
            let at: i64 = timestamp.trim().parse().unwrap_or(now);
            Mark::Replay(replay_key(&timestamp, &body), at)
        }
    };
    {
        let mut seen = rx.seen.lock().await;
        seen.expire(now, rx.window);
        if seen.contains(mark.key()) {
            m.dropped(1, body.len());
            return match mark {
                Mark::Id(_) => answer(StatusCode::OK, json!({"ok": true, "duplicate": true})),
                Mark::Replay(..) => answer(
                    StatusCode::ACCEPTED,
                    json!({"ok": false, "dead_lettered": true, "duplicate": true}),
                ),
            };
        }
    }
    let dead_lettered = (
        StatusCode::ACCEPTED,
        json!({"ok": false, "dead_lettered": true}),
    );
    let Some(id) = id else {
        // Without an id there is nothing to collapse re-deliveries on: dead-letter it, once
        // per signed request (a replay of the same request within the window is not stored).
        let reason =
            format!("wanshitong delivery {delivery}: body is not JSON with a submission_id");
        let positions = match &mark {
            Mark::Replay(key, at) => vec![(key.clone(), json!({"at": at}))],
            Mark::Id(_) => Vec::new(),
        };
        let c = Commit {
            dead: vec![dead_letter(Channel::Wanshitong, reason, &delivery, &body)],
            positions,
            ..Commit::default()
        };
        return rx.store(c, mark, dead_lettered).await;
    };
    let position = json!({"delivery": delivery, "submission_id": id});
    let at_ms = chrono::Utc::now().timestamp_millis();
    let mut c = Commit {
        positions: vec![
            (id.clone(), json!({"delivery": delivery, "at_ms": at_ms})),
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
    let ok = if stored {
        (StatusCode::OK, json!({"ok": true}))
    } else {
        dead_lettered
    };
    rx.store(c, mark, ok).await
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

/// Open the connector's writer, restore the ids taken, and serve the webhook, `/healthz`,
/// `/readyz` and (with its token) `/metrics` on `cfg.bind`.
pub async fn start(cfg: &WanshitongConfig, out: Output) -> Result<ReceiverHandle> {
    let health = crate::ops::Component::register("connector.wanshitong");
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
        in_flight: Default::default(),
        pending: Default::default(),
        outage: std::sync::Mutex::new(crate::ops::Outage::new(
            "connector.wanshitong",
            Some(health.clone()),
        )),
    });
    let mut app = Router::new()
        .route(&cfg.path, post(receive))
        .with_state(rx)
        // The process's health and readiness (as on the ops endpoints).
        .merge(crate::ops::server::health_router());
    if let Some(token) = metrics_token {
        // This port faces the app's servers: the counters are for the operator's token only
        // (the ops endpoints on `[ops] http_bind` serve them too).
        let token = Arc::new(token);
        app = app.route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let token = token.clone();
                async move { metrics_text(&headers, &token) }
            }),
        );
    }
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
        // The forgotten keys are deleted with the next commit, with the ids the new ones evict.
        let marks = [Mark::Id("W3".into()), Mark::Replay("sig-x".into(), 990)];
        let del = seen.plan(&marks);
        assert_eq!(del, ["W0", "sig-old", "W1"]);
        // A failed commit owes its deletions again, but for keys still remembered.
        seen.unplanned(del);
        assert_eq!(seen.plan(&[]), ["W0", "sig-old"]);
        let two = [Mark::Id("W3".into()), Mark::Id("W4".into())];
        assert_eq!(seen.plan(&two), ["W1", "W2"]);
        seen.committed(two.to_vec());
        assert!(seen.contains("W3") && seen.contains("W4") && !seen.contains("W2"));
        seen.committed(vec![Mark::Replay("sig-x".into(), 990)]);
        assert!(seen.contains("sig-x"));
        assert_eq!(seen.plan(&[]), Vec::<String>::new());
        seen.expire(1300, 300);
        assert!(!seen.contains("sig-new") && !seen.contains("sig-x"));
        assert_eq!(seen.plan(&[]), ["sig-new", "sig-x"]);
        assert_ne!(replay_key("1", b"{}"), replay_key("2", b"{}"));
        assert!(
            same_secret(b"abc", b"abc")
                && !same_secret(b"abc", b"abd")
                && !same_secret(b"ab", b"abc")
        );
    }
}
