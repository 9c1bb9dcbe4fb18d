//! The feed simulator (`duban sim serve`): a deterministic complaint corpus served over real HTTP in
//! the four channels' shapes, daily hotline CSV exports, and a pusher of signed Wanshitong webhooks.

pub mod corpus;
pub mod export;
pub mod faults;
pub mod layouts;
pub mod mailbox;
pub mod peoples;
pub mod push;
pub mod rng;
pub mod server;
pub mod teddy;
pub mod text;
pub mod wire;
pub mod year;

#[cfg(test)]
mod tests;

pub use corpus::{
    Corpus, Manifest, ManifestEntry, Person, PlantedCluster, PlantedFrequent, SimComplaint, corpus,
};

use crate::record::Channel;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub const DEFAULT_BIND: &str = "127.0.0.1:8088";
pub const DEFAULT_SEED: u64 = 20261127;
pub const DEFAULT_SIZE: usize = 1200;
pub const DEFAULT_DAYS: u32 = 30;
pub const DEFAULT_EXPORT_DIR: &str = "var/sim/hotline-exports";
pub const DEFAULT_PUSH_URL: &str = "http://127.0.0.1:8089/webhooks/wanshitong";
pub const DEFAULT_WEBHOOK_SECRET: &str = "duban-dev-secret";
pub const WEBHOOK_SECRET_ENV: &str = "DUBAN_WST_SECRET";

/// What the simulator generates and where it serves and pushes it.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listen address; default 127.0.0.1:8088, port 0 = ephemeral.
    pub bind: SocketAddr,
    /// Corpus seed; default 20261127. The same seed always yields the same corpus.
    pub seed: u64,
    /// Number of distinct complaints (resubmissions come on top, ~5%); default 1200, minimum 50.
    pub size: usize,
    /// Last day of the window (local Asia/Shanghai); default today in UTC+8.
    pub end_date: chrono::NaiveDate,
    /// Length of the window in days; default 30.
    pub days: u32,
    /// Folder of the daily hotline CSV exports; default var/sim/hotline-exports.
    pub export_dir: PathBuf,
    /// Wanshitong webhook receiver; default http://127.0.0.1:8089/webhooks/wanshitong, None = no push.
    pub push_url: Option<String>,
    /// HMAC secret of the webhooks; default env DUBAN_WST_SECRET, else `duban-dev-secret`.
    pub webhook_secret: String,
    /// Folder holding a teddy `messages_unlabeled.csv` to replay instead of generated texts.
    pub teddy_dir: Option<PathBuf>,
    /// A CSV of replied messages (as teddy's `messages_replied.csv`) for the People's Daily
    /// stand-in to serve instead of the corpus's board messages.
    pub pd_replay: Option<PathBuf>,
    /// Folder for the hotline orders as real exports lay them out (`city/`, `district/`,
    /// `pushed/`; see `layouts`); none by default.
    pub profile_exports: Option<PathBuf>,
    /// Fault injection per feed; default none. Changeable while running (`POST /sim/faults`).
    pub faults: faults::Faults,
}

/// Today in Asia/Shanghai (UTC+8, no daylight saving).
pub fn today_shanghai() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

fn secret_from_env() -> String {
    std::env::var(WEBHOOK_SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_WEBHOOK_SECRET.to_string())
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8088)),
            seed: DEFAULT_SEED,
            size: DEFAULT_SIZE,
            end_date: today_shanghai(),
            days: DEFAULT_DAYS,
            export_dir: PathBuf::from(DEFAULT_EXPORT_DIR),
            push_url: Some(DEFAULT_PUSH_URL.to_string()),
            webhook_secret: secret_from_env(),
            teddy_dir: None,
            pd_replay: None,
            profile_exports: None,
            faults: faults::Faults::default(),
        }
    }
}

/// A running simulator. Dropping it leaves the tasks running; call `shutdown`.
pub struct SimHandle {
    addr: SocketAddr,
    manifest: Arc<Manifest>,
    state: Arc<server::SimState>,
    counts: Vec<(Channel, usize)>,
    done: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    pusher: Option<JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Records served per channel.
    pub fn counts(&self) -> &[(Channel, usize)] {
        &self.counts
    }

    /// The People's Daily stand-in's messages, newest first.
    pub fn pd_threads(&self) -> Vec<peoples::Thread> {
        self.state.pd().threads().to_vec()
    }

    /// The tids whose People's Daily detail is served without the message (malformed faults).
    pub fn pd_malformed(&self) -> Vec<String> {
        self.state
            .pd()
            .threads()
            .iter()
            .map(|t| t.tid.to_string())
            .filter(|t| self.state.malformed_pd(t))
            .collect()
    }

    /// The letters of the letter box in a real layout (`/mailbox/...`), newest first.
    pub fn mailbox_letters(&self) -> Vec<mailbox::Letter> {
        self.state.mailbox.letters().to_vec()
    }

    /// Webhooks acknowledged with a 2xx so far.
    pub fn webhooks_acked(&self) -> usize {
        self.state
            .webhooks_acked
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves when every webhook was acknowledged (immediately when nothing is pushed).
    pub async fn pushes_done(&self) -> anyhow::Result<()> {
        let mut done = self.done.clone();
        done.wait_for(|d| *d)
            .await
            .context("the webhook pusher stopped before every delivery was acknowledged")?;
        Ok(())
    }

    /// Stops the pusher and the server (graceful: in-flight requests finish).
    pub async fn shutdown(mut self) {
        if let Some(p) = self.pusher.take() {
            p.abort();
            let _ = p.await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
    }
}

/// Generates the corpus, writes the exports, binds, spawns the server and the pusher; returns
/// once the server is listening.
pub async fn start(cfg: SimConfig) -> anyhow::Result<SimHandle> {
    let corpus = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || corpus::corpus(&cfg))
            .await
            .context("corpus generation panicked")??
    };
    let manifest = Arc::new(corpus.manifest.clone());
    let deliveries: Vec<push::Delivery> = corpus
        .of_channel(Channel::Wanshitong)
        .enumerate()
        .map(|(i, c)| {
            let mut value =
                serde_json::to_value(wire::wst_submission(c, &corpus.people[c.person]))?;
            let w = &cfg.faults.wanshitong;
            if faults::hit(
                cfg.seed,
                "wanshitong.malformed",
                &c.source_id,
                w.malformed_rate,
            ) && let Some(o) = value.as_object_mut()
            {
                o.remove("content");
            }
            let body = serde_json::to_vec(&value)?;
            let delivery_id = format!("dlv-{:016x}-{i:06}", cfg.seed);
            Ok(push::Delivery {
                delivery_id,
                submission_id: c.source_id.clone(),
                body,
            })
        })
        .collect::<anyhow::Result<_>>()
        .context("serializing wanshitong submissions")?;
    let webhooks_total = if cfg.push_url.is_some() {
        deliveries.len()
    } else {
        0
    };
    let pd = match &cfg.pd_replay {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the replay {}", path.display()))?;
            Some(
                peoples::replay(&bytes)
                    .with_context(|| format!("the replay {}", path.display()))?,
            )
        }
        None => None,
    };
    let state = Arc::new(server::SimState::new(
        &corpus,
        manifest.clone(),
        webhooks_total,
        cfg.seed,
        cfg.faults.clone(),
        pd,
    ));
    let counts = Channel::ALL
        .iter()
        .map(|&ch| (ch, corpus.count(ch)))
        .collect();

    let orders = state.hotline_orders().await;
    let broken: std::collections::HashSet<String> = orders
        .iter()
        .filter(|o| state.malformed(Channel::Hotline, &o.order_no))
        .map(|o| o.order_no.clone())
        .collect();
    let export_dir = cfg.export_dir.clone();
    let layouts_dir = cfg.profile_exports.clone();
    tokio::task::spawn_blocking(move || {
        export::write_exports_with(&export_dir, &orders, &broken)
            .context("writing hotline CSV exports")?;
        if let Some(dir) = layouts_dir {
            layouts::write_layouts(&dir, &orders, &broken)
                .context("writing the hotline exports in real layouts")?;
        }
        anyhow::Ok(())
    })
    .await
    .context("hotline export writer panicked")??;

    let listener = tokio::net::TcpListener::bind(cfg.bind)
        .await
        .with_context(|| format!("binding the simulator to {}", cfg.bind))?;
    let addr = listener
        .local_addr()
        .context("reading the simulator's bound address")?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let app = server::router(state.clone());
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "simulator server stopped");
        }
    });

    let (done_tx, done_rx) = watch::channel(false);
    let pusher = match &cfg.push_url {
        Some(url) => {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .context("building the webhook HTTP client")?;
            Some(tokio::spawn(push::push_all(
                client,
                url.clone(),
                cfg.webhook_secret.clone(),
                deliveries,
                state.clone(),
                done_tx,
            )))
        }
        None => {
            let _ = done_tx.send(true);
            None
        }
    };
    Ok(SimHandle {
        addr,
        manifest,
        state,
        counts,
        done: done_rx,
        stop: Some(stop_tx),
        server,
        pusher,
    })
}

/// `duban sim serve` arguments. The webhook secret comes only from env DUBAN_WST_SECRET.
#[derive(Debug, Clone, clap::Args)]
pub struct SimServeArgs {
    /// Listen address (port 0 = ephemeral).
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Corpus seed: the same seed always yields the same corpus.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Number of distinct complaints (at least 50).
    #[arg(long, default_value_t = DEFAULT_SIZE)]
    pub size: usize,
    /// Last day of the window, YYYY-MM-DD (default: today in Asia/Shanghai).
    #[arg(long)]
    pub end_date: Option<chrono::NaiveDate>,
    /// Window length in days.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    pub days: u32,
    /// Folder for the daily hotline CSV exports.
    #[arg(long, default_value = DEFAULT_EXPORT_DIR)]
    pub export_dir: PathBuf,
    /// Wanshitong webhook receiver URL.
    #[arg(long, default_value = DEFAULT_PUSH_URL, conflicts_with = "no_push")]
    pub push_url: String,
    /// Do not push Wanshitong webhooks.
    #[arg(long)]
    pub no_push: bool,
    /// Folder with a teddy `messages_unlabeled.csv` to replay instead of generated texts.
    #[arg(long = "teddy", value_name = "DIR")]
    pub teddy: Option<PathBuf>,
    /// A CSV of replied messages (留言编号, 留言用户, 留言主题, 留言时间, 留言详情, 答复意见,
    /// 答复时间) for the People's Daily stand-in (`/pd/...`) to serve.
    #[arg(long = "pd-replay", value_name = "FILE")]
    pub pd_replay: Option<PathBuf>,
    /// Also write the hotline orders as real exports lay them out, into DIR/city, DIR/district
    /// and DIR/pushed (for the export profiles in connectors/profiles/).
    #[arg(long = "profile-exports", value_name = "DIR")]
    pub profile_exports: Option<PathBuf>,
    /// Fault injection as JSON, e.g. `{"board": {"error_rate": 0.1, "malformed_rate": 0.05},
    /// "wanshitong": {"replay_rate": 0.1}}` (fields: see `sim::faults`); also `POST /sim/faults`.
    #[arg(long, value_name = "JSON", value_parser = parse_faults)]
    pub faults: Option<faults::Faults>,
}

fn parse_faults(s: &str) -> Result<faults::Faults, String> {
    serde_json::from_str(s).map_err(|e| format!("invalid faults JSON: {e}"))
}

impl SimServeArgs {
    pub fn to_config(&self) -> SimConfig {
        SimConfig {
            bind: self.bind,
            seed: self.seed,
            size: self.size,
            end_date: self.end_date.unwrap_or_else(today_shanghai),
            days: self.days,
            export_dir: self.export_dir.clone(),
            push_url: (!self.no_push).then(|| self.push_url.clone()),
            webhook_secret: secret_from_env(),
            teddy_dir: self.teddy.clone(),
            pd_replay: self.pd_replay.clone(),
            profile_exports: self.profile_exports.clone(),
            faults: self.faults.clone().unwrap_or_default(),
        }
    }
}

/// Starts the simulator, prints one line with the URL and per-channel counts, waits for ctrl-c.
pub async fn serve_forever(args: SimServeArgs) -> anyhow::Result<()> {
    let cfg = args.to_config();
    let handle = start(cfg.clone()).await?;
    let counts: Vec<String> = handle
        .counts()
        .iter()
        .map(|(ch, n)| format!("{ch} {n}"))
        .collect();
    let push = match &cfg.push_url {
        Some(url) => format!("pushing webhooks to {url}"),
        None => "not pushing webhooks".to_string(),
    };
    println!(
        "duban sim serving {} ({}; seed {}, {}..={}; exports in {}; {push})",
        handle.base_url(),
        counts.join(", "),
        cfg.seed,
        corpus::window_start(&cfg).date(),
        cfg.end_date,
        cfg.export_dir.display(),
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    handle.shutdown().await;
    Ok(())
}
