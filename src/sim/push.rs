//! The Wanshitong webhook pusher: signs each submission (HMAC-SHA256 over `timestamp.body`) and
//! delivers it in submitted_at order, a few at a time, retrying with backoff until a 2xx.

use futures::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::faults;
use super::server::SimState;
use std::time::Duration;
use tokio::sync::watch;

pub const CONCURRENCY: usize = 4;
pub const BACKOFF_START: Duration = Duration::from_millis(100);
pub const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// One webhook to deliver: the JSON body is fixed, the timestamp and signature are per attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub delivery_id: String,
    pub submission_id: String,
    pub body: Vec<u8>,
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any size"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The next backoff: doubled, capped.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(BACKOFF_CAP)
}

/// Delivers everything (forever retrying each one), counting acks; sets `done` when all acked.
/// The webhook faults of `state` decide which submissions are first sent unsigned, badly signed
/// or replayed (each must be refused with 401) and which are delivered again after their ack.
pub async fn push_all(
    client: reqwest::Client,
    url: String,
    secret: String,
    deliveries: Vec<Delivery>,
    state: Arc<SimState>,
    done: watch::Sender<bool>,
) {
    let url = Arc::new(url);
    let secret = Arc::new(secret);
    futures::stream::iter(deliveries)
        .map(|d| {
            let (client, url, secret, state) =
                (client.clone(), url.clone(), secret.clone(), state.clone());
            async move {
                let f = state.faults().wanshitong;
                let seed = state.seed;
                let bad = [
                    (f.unsigned_rate, "unsigned", BadKind::Unsigned),
                    (f.bad_signature_rate, "bad_signature", BadKind::BadSignature),
                    (f.replay_rate, "replay", BadKind::Replayed),
                ];
                for (rate, what, kind) in bad {
                    if faults::hit(seed, &format!("wanshitong.{what}"), &d.submission_id, rate) {
                        state.webhooks_bad_sent.fetch_add(1, Ordering::SeqCst);
                        if !send_bad(&client, &url, &secret, &d, kind).await {
                            state.webhooks_bad_accepted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                deliver(&client, &url, &secret, &d).await;
                state.webhooks_acked.fetch_add(1, Ordering::SeqCst);
                if faults::hit(
                    seed,
                    "wanshitong.redeliver",
                    &d.submission_id,
                    f.redeliver_rate,
                ) {
                    deliver(&client, &url, &secret, &d).await;
                    state.webhooks_redelivered.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .buffered(CONCURRENCY)
        .for_each(|()| async {})
        .await;
    let _ = done.send(true);
}

#[derive(Debug, Clone, Copy)]
enum BadKind {
    Unsigned,
    BadSignature,
    Replayed,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs())
        .unwrap_or_default()
}

/// Sends one bad request; true when it was refused with 401 (retrying transport errors).
async fn send_bad(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    d: &Delivery,
    kind: BadKind,
) -> bool {
    let mut backoff = BACKOFF_START;
    loop {
        let ts = match kind {
            BadKind::Replayed => now_secs().saturating_sub(3600),
            _ => now_secs(),
        }
        .to_string();
        let mut req = client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Wst-Timestamp", &ts)
            .header("X-Wst-Delivery", &d.delivery_id)
            .body(d.body.clone());
        match kind {
            BadKind::Unsigned => {}
            BadKind::BadSignature => {
                req = req.header("X-Wst-Signature", signature("not-the-secret", &ts, &d.body))
            }
            BadKind::Replayed => {
                req = req.header("X-Wst-Signature", signature(secret, &ts, &d.body))
            }
        }
        match req.send().await {
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => return r.status() == reqwest::StatusCode::UNAUTHORIZED,
            Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = next_backoff(backoff);
    }
}

async fn deliver(client: &reqwest::Client, url: &str, secret: &str, d: &Delivery) {
    let mut backoff = BACKOFF_START;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let timestamp = now_secs().to_string();
        let result = client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Wst-Timestamp", &timestamp)
            .header("X-Wst-Signature", signature(secret, &timestamp, &d.body))
            .header("X-Wst-Delivery", &d.delivery_id)
            .body(d.body.clone())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => tracing::debug!(
                submission_id = %d.submission_id, attempt, status = %resp.status(), "wanshitong webhook not acknowledged; retrying"
            ),
            Err(e) => tracing::debug!(
                submission_id = %d.submission_id, attempt, error = %e, "wanshitong webhook delivery failed; retrying"
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = next_backoff(backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_known_hmac_and_backoff_caps() {
        // Reference value from Python: hmac.new(b"duban-dev-secret", b'1700000000.{"a":1}', sha256).
        assert_eq!(
            signature("duban-dev-secret", "1700000000", br#"{"a":1}"#),
            "sha256=e377ec76861cbeb1cc6ab2aacc020fee9e0f99fccb4f49694d263f8d4b721c4d"
        );
        assert_eq!(signature("s", "1", b"{}"), signature("s", "1", b"{}"));
        assert_ne!(signature("s", "1", b"{}"), signature("s", "2", b"{}"));
        let mut b = BACKOFF_START;
        for _ in 0..20 {
            b = next_backoff(b);
        }
        assert_eq!(b, BACKOFF_CAP);
        assert_eq!(next_backoff(BACKOFF_START), Duration::from_millis(200));
    }
}
