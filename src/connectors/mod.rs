//! Connectors: one per channel, each pulling (or receiving) its feed and writing raw envelopes to
//! the raw topic. Delivery: at-least-once into the bus; the engine drops re-delivered complaint ids.

pub mod board;
pub mod hotline;
pub mod portal;
pub mod run;
pub mod wanshitong;

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

use crate::bus::{Bus, Topics};
use crate::record::{Channel, DeadLetter, RawEnvelope, local_offset};

/// Run until stopped, polling again after each pass (`Follow`), or stop once the feed is drained
/// (`Drain`, used by `duban demo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Follow,
    Drain,
}

/// Every channel's connector config, loaded from `connectors/<channel>.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectorFiles {
    pub hotline: hotline::HotlineConfig,
    pub board: board::BoardConfig,
    pub portal: portal::PortalConfig,
    pub wanshitong: wanshitong::WanshitongConfig,
}

impl ConnectorFiles {
    pub fn load(dir: &Path) -> Result<ConnectorFiles> {
        Ok(ConnectorFiles {
            hotline: crate::config::load_toml(&dir.join("hotline.toml"))?,
            board: crate::config::load_toml(&dir.join("board.toml"))?,
            portal: crate::config::load_toml(&dir.join("portal.toml"))?,
            wanshitong: crate::config::load_toml(&dir.join("wanshitong.toml"))?,
        })
    }

    /// Point the pulled feeds at a simulator's base URL and export folder (tests and the demo).
    pub fn point_at_sim(&mut self, base_url: &str, export_dir: &Path) {
        let rebase = |u: &str| match u
            .find("://")
            .and_then(|s| u[s + 3..].find('/').map(|p| s + 3 + p))
        {
            Some(path_at) => format!("{base_url}{}", &u[path_at..]),
            None => base_url.to_string(),
        };
        self.hotline.api.url = rebase(&self.hotline.api.url);
        self.hotline.exports.dir = export_dir.to_path_buf();
        self.board.list_url = rebase(&self.board.list_url);
        self.board.detail_url = rebase(&self.board.detail_url);
        self.portal.list_url = rebase(&self.portal.list_url);
    }
}

/// What every connector shares: where records go and an HTTP client.
#[derive(Clone)]
pub struct Output {
    pub bus: Bus,
    pub topics: Topics,
}

impl Output {
    /// Write envelopes to the raw topic; returns once the bus stored them all.
    pub async fn emit(&self, envelopes: &[RawEnvelope]) -> Result<()> {
        let records: Vec<(String, Vec<u8>)> = envelopes
            .iter()
            .map(|e| Ok((e.key(), serde_json::to_vec(e)?)))
            .collect::<Result<_>>()?;
        self.bus.send_all(&self.topics.raw, &records).await
    }

    /// Route a record the connector could not read to the dead-letter topic, with the reason.
    pub async fn dead_letter(
        &self,
        channel: Channel,
        reason: String,
        origin: &str,
        original: &[u8],
    ) -> Result<()> {
        tracing::warn!(target: "duban::connectors", channel = %channel, origin, "{reason}");
        let dl = DeadLetter::new(
            &format!("connector.{channel}"),
            Some(channel.as_str()),
            reason,
            origin,
            None,
            original,
        );
        self.bus
            .send(&self.topics.dlq, origin, serde_json::to_vec(&dl)?)
            .await
    }
}

pub fn envelope(
    channel: Channel,
    source_id: &str,
    position: serde_json::Value,
    payload: serde_json::Value,
) -> RawEnvelope {
    RawEnvelope {
        channel,
        source_id: source_id.to_string(),
        fetched_at: chrono::Utc::now().with_timezone(&local_offset()),
        position,
        payload,
    }
}

pub fn http_client(timeout_secs: u64) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        .user_agent(concat!("duban/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build HTTP client")
}

/// Exponential backoff with jitter for a failing feed: 0.5 s doubling to 30 s.
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { attempt: 0 }
    }
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
    pub fn next_delay(&mut self) -> Duration {
        let base = 500u64.saturating_mul(1 << self.attempt.min(6)).min(30_000);
        self.attempt += 1;
        let jitter = (chrono::Utc::now().timestamp_subsec_nanos() as u64) % (base / 4 + 1);
        Duration::from_millis(base - base / 8 + jitter)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// GET a URL, retrying transport errors and 5xx with backoff; 4xx is returned as an error at once.
pub async fn get_with_retry(
    client: &reqwest::Client,
    feed: &str,
    url: &str,
    query: &[(&str, String)],
) -> Result<reqwest::Response> {
    let mut backoff = Backoff::new();
    let mut last = None;
    for _ in 0..8 {
        match client.get(url).query(query).send().await {
            Ok(r) if r.status().is_server_error() => last = Some(format!("HTTP {}", r.status())),
            Ok(r) if r.status().is_client_error() => {
                anyhow::bail!("{feed}: GET {url} answered HTTP {}", r.status())
            }
            Ok(r) => return Ok(r),
            Err(e) => last = Some(e.to_string()),
        }
        let d = backoff.next_delay();
        tracing::warn!(target: "duban::connectors", feed, url, "request failed ({}), retrying in {d:?}", last.as_deref().unwrap_or(""));
        tokio::time::sleep(d).await;
    }
    anyhow::bail!(
        "{feed}: GET {url} failed 8 times, last: {}",
        last.unwrap_or_default()
    )
}

/// Run the pulled feeds' connectors (hotline API and exports, board, portal) of `enabled`:
/// in `Drain` mode until each feed is drained, in `Follow` mode until an error.
/// The Wanshitong receiver is started separately ([`wanshitong::start`]): it is pushed to.
pub async fn run_pollers(
    files: &ConnectorFiles,
    enabled: &[Channel],
    out: Output,
    mode: Mode,
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for ch in enabled {
        let out = out.clone();
        match ch {
            Channel::Hotline => {
                let (api, exports) = (files.hotline.api.clone(), files.hotline.exports.clone());
                let o2 = out.clone();
                tasks.spawn(async move { run_api_task(api, out, mode).await });
                tasks.spawn(async move {
                    hotline::run_exports(&exports, o2, mode)
                        .await
                        .context("hotline exports connector")
                });
            }
            Channel::Board => {
                let c = files.board.clone();
                tasks.spawn(
                    async move { board::run(&c, out, mode).await.context("board connector") },
                );
            }
            Channel::Portal => {
                let c = files.portal.clone();
                tasks.spawn(
                    async move { portal::run(&c, out, mode).await.context("portal connector") },
                );
            }
            Channel::Wanshitong => {}
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.context("connector task panicked")??;
    }
    Ok(())
}

async fn run_api_task(api: hotline::ApiConfig, out: Output, mode: Mode) -> Result<()> {
    hotline::run_api(&api, out, mode)
        .await
        .context("hotline API connector")
}
