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
    /// Longest retry delay, milliseconds. Default 30000. A `Retry-After` answer waits at least
    /// its seconds (up to this).
    pub backoff_max_ms: u64,
    /// Consecutive failures that open the circuit. Default 5.
    pub circuit_failures: u32,
    /// How long an open circuit waits before one probe request, seconds. Default 10.
    pub circuit_open_secs: u64,
    /// Attempts per request before giving up in drain mode (`duban demo`, `duban connector
    /// check`); follow mode retries until the feed answers. Default 8.
    pub drain_max_attempts: u32,
    /// Environment variable holding a bearer token sent as `Authorization: Bearer …` (to the
    /// feed's own host only); the secret itself never goes in the file. Default none.
    pub bearer_token_env: Option<String>,
    /// HTTP statuses that mean "slow down" and are retried with backoff like 5xx, e.g. `[403,
    /// 429]` for a site whose firewall throttles with 403. Default `[429]`.
    pub retry_statuses: Vec<u16>,
    /// An empty 2xx answer is a throttled one and is retried with backoff. Default true.
    pub retry_empty_body: bool,
    /// Largest answer read, bytes; a longer one is refused (a detail goes to the dead-letter
    /// topic). Default 16777216 (16 MiB).
    pub max_body_bytes: u64,
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
            retry_statuses: vec![429],
            retry_empty_body: true,
            max_body_bytes: 16 << 20,
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
        if let Some(s) = self
            .retry_statuses
            .iter()
            .find(|s| !(400..=599).contains(*s))
        {
            anyhow::bail!("`{table}.retry_statuses`: {s} is not an HTTP error status (400-599)");
        }
        if self.max_body_bytes == 0 {
            anyhow::bail!("`{table}.max_body_bytes` must be positive");
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

/// The delay before retry `attempt` (from 0) under `policy`, jittered.
pub fn backoff(policy: &HttpPolicy, attempt: u32) -> Duration {
    backoff_delay(policy, attempt, jitter_source())
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

/// One request to a feed: method, full URL (query included), headers and body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Content type and bytes; None for a request without a body.
    pub body: Option<(String, Vec<u8>)>,
}

impl Request {
    pub fn get(url: &str) -> Request {
        Request {
            method: reqwest::Method::GET,
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// A feed's answer: the body and its declared content type.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: bytes::Bytes,
    pub content_type: Option<String>,
}

/// A feed refused a request, or duban refused to send or read it: retrying will not help.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// A 3xx or 4xx status that is not a "slow down" (`retry_statuses`).
    Status(u16),
    /// The answer was longer than `max_body_bytes`.
    TooLarge(u64),
    /// The URL is on another host than the feed's: never requested (a feed's credentials and
    /// requests stay on its own host).
    OffHost(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Status(s) => write!(f, "answered HTTP {s}"),
            Refused::TooLarge(n) => write!(f, "answered more than max_body_bytes ({n} bytes)"),
            Refused::OffHost(h) => write!(f, "links to another host ({h}), which is not followed"),
        }
    }
}

impl std::error::Error for Refused {}

/// The origin (scheme, host, port) of a URL, for same-host checks.
pub fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Resolve `href` (absolute, root-relative or relative) against the page it is on.
pub fn resolve(page: &str, href: &str) -> Result<url::Url> {
    let base = url::Url::parse(page).with_context(|| format!("{page:?} is not a URL"))?;
    base.join(href.trim())
        .with_context(|| format!("link {href:?} does not resolve against {page}"))
}

/// Percent-encode a value for one path segment of a URL (`/`, `?`, `#`, `%`, spaces and
/// non-ASCII are encoded), so a feed's id can never change which path is requested.
pub fn path_segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// One feed's HTTP side. Requests go to the feed's own origin only (the origin of its home
/// URL); redirects are followed within it only.
pub struct Feed {
    pub name: String,
    client: reqwest::Client,
    policy: HttpPolicy,
    mode: Mode,
    metrics: Arc<ConnectorMetrics>,
    next_slot: tokio::sync::Mutex<Instant>,
    breaker: std::sync::Mutex<Breaker>,
    bearer: Option<String>,
    origin: String,
}

/// Why one attempt failed: retry it, or give up.
enum Attempt {
    Retry(String, Option<Duration>),
    Fail(anyhow::Error),
}

impl Feed {
    /// The feed `name` at `home` (its list URL or base URL: its origin is the only one asked).
    pub fn new(
        name: &str,
        policy: &HttpPolicy,
        mode: Mode,
        metrics: Arc<ConnectorMetrics>,
        home: &str,
    ) -> Result<Feed> {
        let home =
            url::Url::parse(home).with_context(|| format!("{name}: {home:?} is not a URL"))?;
        let origin = origin(&home);
        let allowed = origin.clone();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(policy.timeout_secs.max(1)))
            .user_agent(concat!("duban/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 10 || self::origin(attempt.url()) != allowed {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
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
            origin,
        })
    }

    /// The counters of the connector this feed belongs to.
    pub fn metrics(&self) -> &ConnectorMetrics {
        &self.metrics
    }

    /// The feed's retry policy.
    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// Is `url` on the feed's own origin?
    pub fn owns(&self, url: &url::Url) -> bool {
        origin(url) == self.origin
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

    /// GET `url` with `query` and return the body of a 2xx answer (see [`Feed::send`]).
    pub async fn get(&self, url: &str, query: &[(&str, String)]) -> Result<bytes::Bytes> {
        let mut u = url::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
        if !query.is_empty() {
            u.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(self.send(&Request::get(u.as_str())).await?.body)
    }

    /// Send `req` and return a 2xx answer. Transport errors, timeouts, 5xx, the policy's
    /// `retry_statuses` and empty answers are retried with backoff (forever in follow mode);
    /// other statuses, answers over `max_body_bytes` and URLs off the feed's host fail at once
    /// with [`Refused`].
    pub async fn send(&self, req: &Request) -> Result<Answer> {
        self.send_parsed(req, |a| Ok(a.clone())).await
    }

    /// As [`Feed::send`], then `parse` the answer; an answer that does not parse (a firewall's
    /// page instead of JSON) is retried like a throttled one.
    pub async fn send_parsed<T>(
        &self,
        req: &Request,
        parse: impl Fn(&Answer) -> Result<T, String>,
    ) -> Result<T> {
        let url =
            url::Url::parse(&req.url).with_context(|| format!("{:?} is not a URL", req.url))?;
        if !self.owns(&url) {
            let host = url.host_str().unwrap_or("").to_string();
            return Err(anyhow::Error::new(Refused::OffHost(host)).context(format!(
                "{}: {} {}",
                self.name,
                req.method,
                url.path()
            )));
        }
        let mut attempt = 0u32;
        loop {
            let wait = self.breaker().wait(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            self.rate_limit().await;
            let (why, retry_after) = match self.attempt(req).await.map(|a| parse(&a)) {
                Ok(Ok(answer)) => {
                    self.breaker().success();
                    return Ok(answer);
                }
                Ok(Err(why)) => (why, None),
                Err(Attempt::Fail(e)) => {
                    self.breaker().success();
                    return Err(e.context(format!("{}: {} {}", self.name, req.method, url.path())));
                }
                Err(Attempt::Retry(why, after)) => (why, after),
            };
            self.metrics.error();
            attempt += 1;
            if self.mode == Mode::Drain && attempt >= self.policy.drain_max_attempts.max(1) {
                anyhow::bail!(
                    "{}: {} {} failed {attempt} times, last: {why}",
                    self.name,
                    req.method,
                    url.path()
                );
            }
            let opened = self.breaker().failure(&self.policy, Instant::now());
            let path = url.path();
            if opened {
                tracing::warn!(target: "duban::connectors", feed = %self.name, path, "circuit open for {} s after repeated failures (last: {why})", self.policy.circuit_open_secs);
            } else {
                let d = backoff_delay(&self.policy, attempt - 1, jitter_source());
                let cap = Duration::from_millis(self.policy.backoff_max_ms.max(1));
                let d = retry_after.map_or(d, |r| d.max(r.min(cap)));
                tracing::warn!(target: "duban::connectors", feed = %self.name, path, attempt, "request failed ({why}), retrying in {d:?}");
                tokio::time::sleep(d).await;
            }
        }
    }

    /// One try of `req`.
    async fn attempt(&self, req: &Request) -> Result<Answer, Attempt> {
        let mut r = self.client.request(req.method.clone(), &req.url);
        for (k, v) in &req.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        if let Some((ct, bytes)) = &req.body {
            r = r
                .header(reqwest::header::CONTENT_TYPE, ct.as_str())
                .body(bytes.clone());
        }
        if let Some(t) = &self.bearer {
            r = r.bearer_auth(t);
        }
        let mut resp = r
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string(), None))?;
        let status = resp.status();
        if status.is_server_error() || self.policy.retry_statuses.contains(&status.as_u16()) {
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Attempt::Retry(format!("HTTP {status}"), after));
        }
        if !status.is_success() {
            return Err(Attempt::Fail(anyhow::Error::new(Refused::Status(
                status.as_u16(),
            ))));
        }
        let limit = self.policy.max_body_bytes;
        let too_large = || Attempt::Fail(anyhow::Error::new(Refused::TooLarge(limit)));
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = bytes::BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if (body.len() + c.len()) as u64 > limit {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => return Err(Attempt::Retry(format!("reading the body: {e}"), None)),
            }
        }
        if body.is_empty() && self.policy.retry_empty_body {
            return Err(Attempt::Retry("an empty answer".into(), None));
        }
        Ok(Answer {
            body: body.freeze(),
            content_type,
        })
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
        let home = format!("http://{addr}/");
        let feed = Feed::new("t", &policy, Mode::Follow, metrics.clone(), &home).expect("feed");
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
        let feed = Feed::new("t", &drain, Mode::Drain, metrics, &home).expect("feed");
        let err = feed
            .get(&format!("http://{addr}/missing"), &[])
            .await
            .expect_err("404");
        assert_eq!(err.downcast_ref::<Refused>(), Some(&Refused::Status(404)));
    }

    /// A local feed of fixed answers: `/slow` throttles (403 with Retry-After, 429, an empty 200)
    /// before answering, `/big` is too long, `/away` redirects to another host, `/echo` returns
    /// the request's method, content type, authorization and body.
    async fn odd_feed() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use axum::http::{HeaderMap, StatusCode, header};
        use axum::response::IntoResponse;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(move || {
                    let n = h.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match n {
                            0 => (StatusCode::FORBIDDEN, [(header::RETRY_AFTER, "1")], "wait")
                                .into_response(),
                            1 => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
                            2 => (StatusCode::OK, "").into_response(),
                            _ => (StatusCode::OK, "fine").into_response(),
                        }
                    }
                }),
            )
            .route("/big", axum::routing::get(|| async { "x".repeat(5000) }))
            .route(
                "/away",
                axum::routing::get(|| async {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, "http://127.0.0.2:9/steal")],
                    )
                }),
            )
            .route(
                "/echo",
                axum::routing::post(|headers: HeaderMap, body: String| async move {
                    let h = |n: header::HeaderName| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    format!(
                        "{}|{}|{body}",
                        h(header::CONTENT_TYPE),
                        h(header::AUTHORIZATION)
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), hits)
    }

    #[tokio::test]
    async fn throttling_is_retried_and_limits_and_hosts_are_kept() {
        use std::sync::atomic::Ordering;
        let (base, hits) = odd_feed().await;
        let policy = HttpPolicy {
            backoff_initial_ms: 10,
            backoff_max_ms: 2000,
            retry_statuses: vec![403, 429],
            max_body_bytes: 4096,
            // Any variable that is set serves as the token's source.
            bearer_token_env: Some("HOME".into()),
            ..HttpPolicy::default()
        };
        let token = std::env::var("HOME").expect("HOME is set");
        let metrics = Arc::new(ConnectorMetrics::default());
        let feed = Feed::new("t", &policy, Mode::Drain, metrics.clone(), &base).expect("feed");
        let start = Instant::now();
        let body = feed
            .get(&format!("{base}/slow"), &[])
            .await
            .expect("after throttling");
        assert_eq!(&body[..], b"fine");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            4,
            "403, 429, empty, then the answer"
        );
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "Retry-After waited"
        );
        assert_eq!(ConnectorMetrics::get(&metrics.errors), 3);
        let err = feed
            .get(&format!("{base}/big"), &[])
            .await
            .expect_err("too long");
        assert_eq!(
            err.downcast_ref::<Refused>(),
            Some(&Refused::TooLarge(4096))
        );
        // A redirect to another host is not followed; a URL on another host is never asked.
        let err = feed
            .get(&format!("{base}/away"), &[])
            .await
            .expect_err("redirect");
        assert_eq!(err.downcast_ref::<Refused>(), Some(&Refused::Status(302)));
        let err = feed
            .get("http://127.0.0.2:9/steal", &[])
            .await
            .expect_err("off host");
        assert_eq!(
            err.downcast_ref::<Refused>(),
            Some(&Refused::OffHost("127.0.0.2".into()))
        );
        // A POST carries its body and content type, and the token (to the feed's own host).
        let answer = feed
            .send(&Request {
                method: reqwest::Method::POST,
                url: format!("{base}/echo"),
                headers: vec![],
                body: Some((
                    "application/x-www-form-urlencoded".into(),
                    b"a=1&b=%E4%B8%AD".to_vec(),
                )),
            })
            .await
            .expect("echo");
        assert_eq!(
            String::from_utf8_lossy(&answer.body),
            format!("application/x-www-form-urlencoded|Bearer {token}|a=1&b=%E4%B8%AD")
        );
        assert!(
            HttpPolicy {
                retry_statuses: vec![200],
                ..HttpPolicy::default()
            }
            .validate("http")
            .is_err()
        );
    }

    #[test]
    fn ids_are_encoded_as_one_path_segment_and_links_resolve() {
        assert_eq!(path_segment("123"), "123");
        assert_eq!(path_segment("../admin?x=1#f"), "..%2Fadmin%3Fx%3D1%23f");
        assert_eq!(path_segment("信 件"), "%E4%BF%A1%20%E4%BB%B6");
        let page = "http://h:1/portal/letters?page=1";
        let r = |h: &str| resolve(page, h).expect("resolves").to_string();
        assert_eq!(
            r("/portal/letters/L1.html"),
            "http://h:1/portal/letters/L1.html"
        );
        assert_eq!(r("?page=2"), "http://h:1/portal/letters?page=2");
        assert_eq!(r("L1.html"), "http://h:1/portal/L1.html");
        assert_eq!(r("//evil.example/x"), "http://evil.example/x");
    }
}
