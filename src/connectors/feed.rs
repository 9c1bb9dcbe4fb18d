//! Talking to a flaky feed: per-request timeout, retries with exponential backoff and jitter, a
//! per-feed rate limit and a circuit breaker. The decisions (delay, breaker state) are pure.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Mode;
use super::metrics::ConnectorMetrics;

/// How a connector treats its feed (`[http]` in a connector's TOML; every field has a default).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpPolicy {
    /// Per-request timeout, seconds. Default 10.
    pub timeout_secs: u64,
    /// Most requests per second to this feed. Default 100; 0 = unlimited.
    pub max_requests_per_sec: f64,
    /// First retry delay, milliseconds; doubles per failure. Default 200.
    pub backoff_initial_ms: u64,
    /// Longest retry delay, milliseconds. Default 30000.
    pub backoff_max_ms: u64,
    /// Consecutive failures that open the circuit. Default 5.
    pub circuit_failures: u32,
    /// How long an open circuit waits before one probe request, seconds. Default 10.
    pub circuit_open_secs: u64,
    /// Attempts per request before giving up in drain mode (`duban demo`); follow mode retries
    /// until the feed answers. Default 8.
    pub drain_max_attempts: u32,
    /// Environment variable holding a bearer token sent as `Authorization: Bearer …`; the
    /// secret itself never goes in the file. Default none.
    pub bearer_token_env: Option<String>,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            timeout_secs: 10,
            max_requests_per_sec: 100.0,
            backoff_initial_ms: 200,
            backoff_max_ms: 30_000,
            circuit_failures: 5,
            circuit_open_secs: 10,
            drain_max_attempts: 8,
            bearer_token_env: None,
        }
    }
}

impl HttpPolicy {
    /// Check the values; `table` is where the policy sits in its file (`http`, `api.http`).
    pub fn validate(&self, table: &str) -> Result<()> {
        if self.max_requests_per_sec < 0.0 || !self.max_requests_per_sec.is_finite() {
            anyhow::bail!("`{table}.max_requests_per_sec` must be 0 (unlimited) or positive");
        }
        if self.backoff_initial_ms > self.backoff_max_ms {
            anyhow::bail!("`{table}.backoff_initial_ms` exceeds `{table}.backoff_max_ms`");
        }
        if let Some(var) = &self.bearer_token_env
            && std::env::var(var).map_or(true, |v| v.is_empty())
        {
            anyhow::bail!("`{table}.bearer_token_env` names {var}, which is not set");
        }
        Ok(())
    }
}

/// Exponential backoff with "equal jitter": half the step fixed, half random.
pub fn backoff_delay(policy: &HttpPolicy, attempt: u32, random: u64) -> Duration {
    let step = policy
        .backoff_initial_ms
        .max(1)
        .saturating_mul(1u64 << attempt.min(20))
        .min(policy.backoff_max_ms.max(1));
    let half = step / 2;
    Duration::from_millis(half + random % (step - half + 1))
}

/// Circuit breaker: closed until `circuit_failures` consecutive failures, then open for
/// `circuit_open_secs`, then one probe (half-open); a success closes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Breaker {
    pub failures: u32,
    pub open_until: Option<Instant>,
}

impl Breaker {
    /// How long to wait before the next request is allowed.
    pub fn wait(&self, now: Instant) -> Duration {
        self.open_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }
    pub fn success(&mut self) {
        *self = Breaker::default();
    }
    /// Record a failure; true when this failure opened the circuit.
    pub fn failure(&mut self, policy: &HttpPolicy, now: Instant) -> bool {
        self.failures += 1;
        if self.failures >= policy.circuit_failures.max(1) {
            self.open_until = Some(now + Duration::from_secs(policy.circuit_open_secs));
            self.failures = 0;
            return true;
        }
        false
    }
}

fn jitter_source() -> u64 {
    // Sub-second clock noise mixed (splitmix64): enough to spread retries of many instances.
    let mut z = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One feed's HTTP side.
pub struct Feed {
    pub name: String,
    client: reqwest::Client,
    policy: HttpPolicy,
    mode: Mode,
    metrics: Arc<ConnectorMetrics>,
    next_slot: tokio::sync::Mutex<Instant>,
    breaker: std::sync::Mutex<Breaker>,
    bearer: Option<String>,
}

/// A feed refused a request (4xx other than 429): retrying will not help.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "answered HTTP {}", self.status)
    }
}

impl std::error::Error for Refused {}

impl Feed {
    pub fn new(
        name: &str,
        policy: &HttpPolicy,
        mode: Mode,
        metrics: Arc<ConnectorMetrics>,
    ) -> Result<Feed> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(policy.timeout_secs.max(1)))
            .user_agent(concat!("duban/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build HTTP client")?;
        let bearer = match &policy.bearer_token_env {
            None => None,
            Some(var) => Some(
                std::env::var(var)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .with_context(|| {
                        format!("{name}: http.bearer_token_env names {var}, which is not set")
                    })?,
            ),
        };
        Ok(Feed {
            name: name.to_string(),
            client,
            policy: policy.clone(),
            mode,
            metrics,
            next_slot: tokio::sync::Mutex::new(Instant::now()),
            breaker: std::sync::Mutex::new(Breaker::default()),
            bearer,
        })
    }

    async fn rate_limit(&self) {
        if self.policy.max_requests_per_sec <= 0.0 {
            return;
        }
        let interval = Duration::from_secs_f64(1.0 / self.policy.max_requests_per_sec);
        let at = {
            let mut next = self.next_slot.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// GET `url` and return the body of a 2xx answer. Transport errors, timeouts, 5xx and 429
    /// are retried with backoff (forever in follow mode); other 4xx fail at once.
    pub async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<bytes::Bytes> {
        let mut attempt = 0u32;
        loop {
            let wait = self.breaker().wait(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            self.rate_limit().await;
            let mut req = self.client.get(url).query(query);
            if let Some(t) = &self.bearer {
                req = req.bearer_auth(t);
            }
            let why = match req.send().await {
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(b) => {
                        self.breaker().success();
                        return Ok(b);
                    }
                    Err(e) => format!("reading the body: {e}"),
                },
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                    format!("HTTP {}", r.status())
                }
                Ok(r) => {
                    self.breaker().success();
                    return Err(anyhow::Error::new(Refused {
                        status: r.status().as_u16(),
                    })
                    .context(format!("{}: GET {url}", self.name)));
                }
                Err(e) => e.to_string(),
            };
            self.metrics.error();
            attempt += 1;
            if self.mode == Mode::Drain && attempt >= self.policy.drain_max_attempts.max(1) {
                anyhow::bail!(
                    "{}: GET {url} failed {attempt} times, last: {why}",
                    self.name
                );
            }
            let opened = self.breaker().failure(&self.policy, Instant::now());
            if opened {
                tracing::warn!(target: "duban::connectors", feed = %self.name, url, "circuit open for {} s after repeated failures (last: {why})", self.policy.circuit_open_secs);
            } else {
                let d = backoff_delay(&self.policy, attempt - 1, jitter_source());
                tracing::warn!(target: "duban::connectors", feed = %self.name, url, attempt, "request failed ({why}), retrying in {d:?}");
                tokio::time::sleep(d).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = HttpPolicy {
            backoff_initial_ms: 100,
            backoff_max_ms: 1000,
            ..HttpPolicy::default()
        };
        let d0 = backoff_delay(&p, 0, 0);
        assert_eq!(d0, Duration::from_millis(50));
        assert!(backoff_delay(&p, 0, u64::MAX - 7).as_millis() <= 100);
        assert!(backoff_delay(&p, 3, 0) >= Duration::from_millis(400));
        for a in 0..40 {
            for r in [0, 17, 123_456_789, u64::MAX] {
                let d = backoff_delay(&p, a, r);
                assert!(d <= Duration::from_millis(1000) && d >= Duration::from_millis(50));
            }
        }
        assert_ne!(backoff_delay(&p, 5, 1), backoff_delay(&p, 5, 400));
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_closes_on_success() {
        let p = HttpPolicy {
            circuit_failures: 3,
            circuit_open_secs: 10,
            ..HttpPolicy::default()
        };
        let now = Instant::now();
        let mut b = Breaker::default();
        assert!(!b.failure(&p, now));
        assert!(!b.failure(&p, now));
        assert_eq!(b.wait(now), Duration::ZERO);
        assert!(b.failure(&p, now), "third failure opens");
        assert_eq!(b.wait(now), Duration::from_secs(10));
        assert_eq!(b.wait(now + Duration::from_secs(11)), Duration::ZERO);
        b.success();
        assert_eq!(b, Breaker::default());
    }

    /// A feed that is down: follow mode keeps waiting (no error, no busy loop), the circuit
    /// limits the requests, and the first good answer gets through.
    #[tokio::test]
    async fn a_down_feed_is_waited_for_without_spinning() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new().route(
            "/x",
            axum::routing::get(move || {
                let n = h.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 6 {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                    } else {
                        (axum::http::StatusCode::OK, "up")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let policy = HttpPolicy {
            backoff_initial_ms: 10,
            backoff_max_ms: 20,
            circuit_failures: 3,
            circuit_open_secs: 1,
            ..HttpPolicy::default()
        };
        let metrics = Arc::new(ConnectorMetrics::default());
        let feed = Feed::new("t", &policy, Mode::Follow, metrics.clone()).expect("feed");
        let start = Instant::now();
        let body = feed
            .get(&format!("http://{addr}/x"), &[])
            .await
            .expect("eventually up");
        assert_eq!(&body[..], b"up");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            7,
            "no request beyond the needed ones"
        );
        // Two open circuits (after failures 3 and 6) of 1 s each.
        assert!(
            start.elapsed() >= Duration::from_millis(1900),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(ConnectorMetrics::get(&metrics.errors), 6);
        // Drain mode gives up after its attempts; 4xx is refused at once.
        let drain = HttpPolicy {
            drain_max_attempts: 2,
            ..policy
        };
        let feed = Feed::new("t", &drain, Mode::Drain, metrics).expect("feed");
        let err = feed
            .get(&format!("http://{addr}/missing"), &[])
            .await
            .expect_err("404");
        assert!(err.downcast_ref::<Refused>().is_some(), "{err:#}");
    }
}
