//! `duban serve`: the supervision board (督办看板) in the browser. Three columns (yellow, red,
//! green), filters, each alert's evidence from the lake, its history and recommendation, actions
//! through the lifecycle's own HTTP API (same tokens, same role checks), a dashboard, and live
//! updates over server-sent events. Plain HTML/CSS/JS embedded in the binary; nothing is fetched
//! from outside.
//!
//! Where the board comes from:
//! - with `--config` (Kafka): the production board topic `<prefix>.alerts` is followed from its
//!   beginning; actions go to `<prefix>.alert-actions` for the lifecycle process (`duban run` or
//!   `duban lifecycle`) to apply, exactly as its own API does;
//! - without: the lifecycle runs in this process on the in-process bus, seeded from the folder's
//!   `alerts.jsonl` (as written by `demo`, `backfill` or `run`), and writes its state back to the
//!   folder (alerts.jsonl, lake `alerts`/`alert_history`, documents).

mod assets;
mod auth;
mod dashboard;
mod evidence;
mod follow;
mod guard;
mod labeling;
pub(crate) use follow::topic_follower;
mod local;
mod precheck;
mod routes;

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::auth::{Credentials, RateLimiter};
use crate::bus::{Bus, MemoryBus, Topics};
use crate::config::Config;
use crate::lifecycle::api::{Api, View};
use crate::lifecycle::clock::Clock;
use crate::record::Alert;

/// `duban serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Data folder: `lake/`, `alerts.jsonl` (as written by `demo`, `backfill` or `run`).
    #[arg(long)]
    pub data: PathBuf,
    /// Port on 127.0.0.1 (0: any free port; the address is printed and written to DIR/board.addr).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// A duban.toml with Kafka: follow its `<prefix>.alerts` board and send actions to
    /// `<prefix>.alert-actions`. Without it the lifecycle runs in this process.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Login attempts an address may make at once, then per minute (429 beyond).
const LOGIN_BURST: u32 = 10;
const LOGINS_PER_MINUTE: u32 = 10;

/// A change on the board, pushed to browsers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BoardEvent {
    pub alert_id: String,
    pub unit: String,
    pub level: &'static str,
    pub status: &'static str,
    pub revision: u64,
    /// The unit it was assigned to before, when this change moved it to another unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_unit: Option<String>,
    /// The latest transition's action (raise, feedback, verify, …).
    pub action: String,
}

impl BoardEvent {
    pub fn of(a: &Alert, before: Option<&Alert>) -> BoardEvent {
        BoardEvent {
            previous_unit: before.filter(|b| b.unit != a.unit).map(|b| b.unit.clone()),
            alert_id: a.alert_id.clone(),
            unit: a.unit.clone(),
            level: a.level.as_str(),
            status: a.lifecycle.status.as_str(),
            revision: a.lifecycle.revision,
            action: a
                .lifecycle
                .history
                .last()
                .map(|t| t.action.as_str().to_string())
                .unwrap_or_default(),
        }
    }
}

/// What the board's handlers share.
pub(crate) struct Shared {
    pub view: Arc<RwLock<View>>,
    pub tokens: Credentials,
    /// Sessions opened at login.
    pub sessions: auth::Sessions,
    /// Login attempts per client address.
    pub logins: RateLimiter,
    /// Host header values answered (`guard::allowed_hosts`).
    pub hosts: Vec<String>,
    pub data: PathBuf,
    pub events: tokio::sync::broadcast::Sender<BoardEvent>,
    pub clock: Clock,
    /// `kafka` or `in-process`.
    pub mode: &'static str,
    /// The classifier the labeling queue asks how unsure it is (the engine's, from the config).
    pub classifier: Arc<dyn crate::engine::taxonomy::DomainClassifier>,
    /// The taxonomy's domains (what a label may be).
    pub domains: Vec<String>,
}

impl Shared {
    pub fn alerts(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// How the board is fed.
pub enum Source {
    /// Follow the Kafka board of this configuration.
    Kafka(Box<Config>),
    /// Run the lifecycle in this process with this configuration (rules, units, tokens).
    InProcess(Box<Config>),
}

/// A running board server.
pub struct Handle {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<()>>>,
}

impl Handle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop the server and its feed; returns the first error any of them had.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        let mut first = Ok(());
        for t in self.tasks {
            let r = t.await.context("board task panicked").and_then(|r| r);
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// Wait until a task ends (an error, or a stop).
    pub async fn wait(mut self) -> Result<()> {
        if self.tasks.is_empty() {
            return Ok(());
        }
        let (r, _, rest) = futures::future::select_all(std::mem::take(&mut self.tasks)).await;
        self.tasks = rest;
        let r = r.context("board task panicked").and_then(|r| r);
        let _ = self.shutdown().await;
        r
    }
}

/// Start the board on `bind` (use port 0 for any free port).
pub async fn start(source: Source, data: &Path, bind: SocketAddr) -> Result<Handle> {
    let cfg = match &source {
        Source::Kafka(c) | Source::InProcess(c) => c.as_ref().clone(),
    };
    let tokens = cfg.lifecycle.all_tokens()?;
    if tokens.is_empty() {
        anyhow::bail!(
            "duban serve: no API tokens — set [lifecycle] tokens in the config or DUBAN_API_TOKENS=\"token=supervisor@NAME;token2=unit:<unit name>@NAME\""
        );
    }
    let clock = Clock::new(cfg.lifecycle.clock_file());
    let view = Arc::new(RwLock::new(View::default()));
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let topics = Topics::new(&cfg.kafka.topic_prefix);
    let mut tasks = Vec::new();
    let policy = cfg.lifecycle.policy(&cfg.rules)?;
    let desk = crate::labels::api::LabelDesk::from_config(&cfg, &topics, Some(data))?;
    let domains = desk.domains.clone();
    let classifier = crate::classify::board_classifier(&cfg)?;
    let (bus, mode) = match source {
        Source::Kafka(cfg) => {
            let bus = crate::pipeline::kafka::connect(&cfg).await?;
            let ready =
                follow::start(&cfg, &topics, view.clone(), events.clone(), stop_rx.clone())?;
            tasks.push(ready);
            // The lifecycle process writes the lake table `labels`; the board only reads.
            tasks.push(crate::labels::follow(
                &cfg.kafka.bootstrap_servers,
                &topics.labels,
                view.clone(),
                None,
                stop_rx.clone(),
            )?);
            (Bus::Kafka(bus), "kafka")
        }
        Source::InProcess(cfg) => {
            let bus = MemoryBus::new();
            let task = local::start(
                &cfg,
                data,
                bus.clone(),
                &topics,
                view.clone(),
                events.clone(),
                clock.clone(),
                stop_rx.clone(),
            )?;
            tasks.push(task);
            // The board is the folder's, loaded by now.
            crate::ops::Component::register("board").ready();
            (Bus::Memory(bus), "in-process")
        }
    };
    let api = Api::new(
        view.clone(),
        tokens.clone(),
        bus,
        topics.alert_actions.clone(),
        clock.clone(),
        cfg.lifecycle.action_rate(),
    )
    .with_labels(desk);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("duban serve: cannot bind {bind}"))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        view,
        tokens,
        sessions: auth::Sessions::default(),
        logins: RateLimiter::new(LOGIN_BURST, LOGINS_PER_MINUTE),
        hosts: guard::allowed_hosts(addr.port()),
        data: data.to_path_buf(),
        events,
        clock,
        mode,
        classifier,
        domains,
    });
    let mut lifecycle_api = crate::lifecycle::api::router(api);
    if mode == "kafka" {
        let p = Arc::new(precheck::Precheck {
            view: shared.view.clone(),
            tokens: shared.tokens.clone(),
            policy,
            clock: shared.clock.clone(),
        });
        lifecycle_api =
            lifecycle_api.layer(axum::middleware::from_fn_with_state(p, precheck::precheck));
    }
    // Outermost first: the session stands for its token before the precheck reads it.
    let lifecycle_api = lifecycle_api.layer(axum::middleware::from_fn_with_state(
        shared.clone(),
        guard::session_as_bearer,
    ));
    let app = routes::router(shared.clone())
        .merge(lifecycle_api)
        .layer(axum::middleware::from_fn_with_state(shared, guard::guard));
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    std::fs::write(data.join("board.addr"), addr.to_string())
        .with_context(|| format!("cannot write {}", data.join("board.addr").display()))?;
    let mut rx = stop_rx;
    tasks.push(tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await
        .context("board server failed")
    }));
    tracing::info!(target: "duban::web", %addr, mode, "board on http://{addr}/");
    Ok(Handle {
        addr,
        stop: stop_tx,
        tasks,
    })
}

/// `duban serve`: run until Ctrl-C.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let source = match &args.config {
        Some(path) => Source::Kafka(Box::new(Config::load(path)?)),
        None => Source::InProcess(Box::default()),
    };
    let bind = SocketAddr::from(([127, 0, 0, 1], args.port));
    let handle = start(source, &args.data, bind).await?;
    println!("督办看板 board on {}/", handle.url());
    let stop = handle.stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    handle.wait().await
}
