//! Connectors: one per channel, each pulling (or receiving) its feed and committing raw envelopes,
//! dead letters and its source position together (exactly once on Kafka, see [`output`]).

pub mod board;
pub mod feed;
pub mod fields;
pub mod hotline;
pub mod metrics;
pub mod output;
pub mod portal;
pub mod run;
pub mod wanshitong;

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

use crate::bus::{Bus, Topics};
use crate::record::{Channel, DeadLetter, RawEnvelope, local_offset};
pub use output::{Commit, Positions, Sink};

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
    /// Load and check every file; an invalid one fails naming the file and the field.
    pub fn load(dir: &Path) -> Result<ConnectorFiles> {
        let file = |n: &str| dir.join(n);
        let files = ConnectorFiles {
            hotline: load_file(&file("hotline.toml"))?,
            board: load_file(&file("board.toml"))?,
            portal: load_file(&file("portal.toml"))?,
            wanshitong: load_file(&file("wanshitong.toml"))?,
        };
        files
            .hotline
            .validate()
            .map_err(|e| invalid(&file("hotline.toml"), e))?;
        files
            .board
            .validate()
            .map_err(|e| invalid(&file("board.toml"), e))?;
        portal::Scraper::new(&files.portal).map_err(|e| invalid(&file("portal.toml"), e))?;
        check_url("list_url", &files.portal.list_url)
            .and_then(|()| files.portal.http.validate("http"))
            .map_err(|e| invalid(&file("portal.toml"), e))?;
        files
            .wanshitong
            .validate()
            .map_err(|e| invalid(&file("wanshitong.toml"), e))?;
        Ok(files)
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

/// Parse one connector file; an error names the file, the line and the line's text (its field).
fn load_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read connector config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().to_string();
        match e.span() {
            Some(span) => {
                let start = span.start.min(text.len());
                let line_no = text[..start].matches('\n').count() + 1;
                let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
                let line = line.split(" #").next().unwrap_or(line).trim();
                anyhow::anyhow!("{}:{line_no}: `{line}`: {msg}", path.display())
            }
            None => anyhow::anyhow!("{}: {msg}", path.display()),
        }
    })
}

fn invalid(file: &Path, e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{}: {e:#}", file.display())
}

/// A feed URL must be http(s).
pub fn check_url(field: &str, url: &str) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        anyhow::bail!("`{field}` must be an http:// or https:// URL, got {url:?}");
    }
    Ok(())
}

/// Where connectors write: the bus and the deployment's topics.
#[derive(Clone)]
pub struct Output {
    pub bus: Bus,
    pub topics: Topics,
}

impl Output {
    /// Open the writer of connector `name` (see [`Sink::open`]).
    pub async fn sink(&self, name: &str) -> Result<Sink> {
        Sink::open(&self.bus, &self.topics, name).await
    }
}

/// A raw envelope for the raw topic.
pub fn envelope(
    channel: Channel,
    source_id: &str,
    position: serde_json::Value,
    payload: serde_json::Value,
    version: Option<String>,
) -> RawEnvelope {
    RawEnvelope {
        channel,
        source_id: source_id.to_string(),
        fetched_at: chrono::Utc::now().with_timezone(&local_offset()),
        position,
        payload,
        version,
    }
}

/// A dead letter of a connector: channel, reason, position (`origin`) and original bytes.
pub fn dead_letter(channel: Channel, reason: String, origin: &str, original: &[u8]) -> DeadLetter {
    // Reasons and origins carry feed ids and file names: one line each in the log.
    let (reason, origin) = (
        crate::redact::printable(&reason, crate::redact::MAX_REASON_CHARS),
        crate::redact::printable(origin, crate::redact::MAX_REASON_CHARS),
    );
    tracing::warn!(target: "duban::connectors", channel = %channel, origin, "dead letter: {reason}");
    DeadLetter::new(
        &format!("connector.{channel}"),
        Some(channel.as_str()),
        reason,
        &origin,
        None,
        original,
    )
}

/// One pulled connector with its config.
#[derive(Clone)]
enum Job {
    HotlineApi(hotline::ApiConfig),
    HotlineExports(hotline::ExportsConfig),
    Board(board::BoardConfig),
    Portal(portal::PortalConfig),
}

impl Job {
    fn name(&self) -> &'static str {
        match self {
            Job::HotlineApi(_) => "hotline-api",
            Job::HotlineExports(_) => "hotline-exports",
            Job::Board(_) => "board",
            Job::Portal(_) => "portal",
        }
    }

    async fn run(&self, sink: &Sink, pos: Positions, mode: Mode) -> Result<()> {
        match self {
            Job::HotlineApi(c) => hotline::run_api(c, sink, pos, mode).await,
            Job::HotlineExports(c) => hotline::run_exports(c, sink, pos, mode).await,
            Job::Board(c) => board::run(c, sink, pos, mode).await,
            Job::Portal(c) => portal::run(c, sink, pos, mode).await,
        }
    }
}

/// The pulled connectors of `enabled`, each with its opened writer. Opening every writer before
/// any connector restores its position fences all zombies of a previous process first.
pub struct Pollers {
    jobs: Vec<(Job, Sink)>,
    out: Output,
}

impl Pollers {
    pub async fn open(files: &ConnectorFiles, enabled: &[Channel], out: Output) -> Result<Pollers> {
        let mut jobs = Vec::new();
        for ch in enabled {
            match ch {
                Channel::Hotline => {
                    jobs.push(Job::HotlineApi(files.hotline.api.clone()));
                    jobs.push(Job::HotlineExports(files.hotline.exports.clone()));
                }
                Channel::Board => jobs.push(Job::Board(files.board.clone())),
                Channel::Portal => jobs.push(Job::Portal(files.portal.clone())),
                Channel::Wanshitong => {}
            }
        }
        let mut opened = Vec::new();
        for j in jobs {
            let sink = out.sink(j.name()).await?;
            opened.push((j, sink));
        }
        Ok(Pollers { jobs: opened, out })
    }

    /// Run every connector: in `Drain` mode until each feed is drained, in `Follow` mode until
    /// stopped (a failing connector restarts from its committed position).
    pub async fn run(self, mode: Mode) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for (job, sink) in self.jobs {
            let out = self.out.clone();
            tasks.spawn(async move { supervise(job, sink, out, mode).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.context("connector task panicked")??;
        }
        Ok(())
    }
}

/// Run the pulled feeds' connectors (hotline API and exports, board, portal) of `enabled`.
/// The Wanshitong receiver is started separately ([`wanshitong::start`]): it is pushed to.
pub async fn run_pollers(
    files: &ConnectorFiles,
    enabled: &[Channel],
    out: Output,
    mode: Mode,
) -> Result<()> {
    Pollers::open(files, enabled, out).await?.run(mode).await
}

/// Run one connector; in follow mode restart it from its committed position whenever it fails.
/// A Kafka outage is told once per interval (the connector not ready meanwhile); being fenced by a
/// newer instance of the connector ends it (and the process), so two never take turns.
async fn supervise(job: Job, mut sink: Sink, out: Output, mode: Mode) -> Result<()> {
    let name = format!("connector.{}", job.name());
    let health = crate::ops::Component::register(&name);
    let mut outage = crate::ops::Outage::new(&name, Some(health.clone()));
    let mut restarts = 0u32;
    loop {
        let result = match sink.restore().await {
            Ok(pos) => {
                outage.ok();
                health.ready();
                job.run(&sink, pos, mode).await
            }
            Err(e) => Err(e),
        };
        let err = match result {
            Ok(()) => return Ok(()),
            Err(e) if mode == Mode::Drain => {
                return Err(e.context(format!("{} connector", job.name())));
            }
            Err(e) => e,
        };
        sink.metrics.error();
        if crate::ops::outage::is_unrecoverable(&err) {
            return Err(err.context(format!("{} connector", job.name())));
        }
        let delay = match outage.failed(err) {
            Ok(delay) => delay,
            Err(err) => {
                health.not_ready("restarting after an error");
                let delay = feed::backoff_delay(
                    &feed::HttpPolicy {
                        backoff_initial_ms: 500,
                        ..feed::HttpPolicy::default()
                    },
                    restarts.min(8),
                    u64::from(chrono::Utc::now().timestamp_subsec_nanos()),
                );
                restarts += 1;
                tracing::error!(target: "duban::connectors", connector = job.name(), "stopped: {err:#}; restarting from its committed position in {delay:?}");
                delay
            }
        };
        tokio::time::sleep(delay).await;
        match out.sink(job.name()).await {
            Ok(s) => sink = s,
            Err(e) => {
                if let Err(e) = outage.failed(e) {
                    tracing::error!(target: "duban::connectors", connector = job.name(), "cannot reopen its writer: {e:#}")
                }
            }
        }
    }
}

/// Sleep between passes of a follow-mode connector.
pub async fn pause(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs.max(1))).await;
}
