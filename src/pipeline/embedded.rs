//! `duban demo`: simulator, connectors, engine and lake in one process on the in-process bus.
//! Drains the simulated feeds, processes everything, writes the output folder and a summary.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Summary;
use crate::bus::{Bus, MemoryBus, Topics};
use crate::config::Config;
use crate::connectors::{ConnectorFiles, Mode, Output, run_pollers, wanshitong};
use crate::record::{Alert, Complaint};
use crate::sim::{SimConfig, SimHandle};

/// What a demo run produced.
pub struct DemoOutcome {
    pub summary: Summary,
    pub complaints: Vec<Complaint>,
    pub alerts: BTreeMap<String, Alert>,
    pub manifest: crate::sim::Manifest,
    pub out_dir: PathBuf,
}

/// Start the webhook receiver on an ephemeral port, then the simulator pushing to it.
pub async fn start_sim_and_receiver(
    mut sim: SimConfig,
    files: &ConnectorFiles,
    out: Output,
) -> Result<(SimHandle, wanshitong::ReceiverHandle)> {
    let mut wcfg = files.wanshitong.clone();
    wcfg.bind = "127.0.0.1:0".parse().expect("loopback address");
    let receiver = wanshitong::start(&wcfg, out).await?;
    sim.push_url = Some(format!("http://{}{}", receiver.addr, wcfg.path));
    sim.webhook_secret = wanshitong::secret(&wcfg.secret_env);
    let handle = crate::sim::start(sim)
        .await
        .context("starting the feed simulator")?;
    Ok((handle, receiver))
}

pub async fn run_demo(
    config: &Config,
    connectors_dir: &Path,
    sim: SimConfig,
    out_dir: &Path,
) -> Result<DemoOutcome> {
    run_demo_reporting(config, connectors_dir, sim, out_dir, &|_| {}).await
}

/// `run_demo`, telling `progress` one line as each stage ends (the CLI prints them).
pub async fn run_demo_reporting(
    config: &Config,
    connectors_dir: &Path,
    mut sim: SimConfig,
    out_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<DemoOutcome> {
    let bus = MemoryBus::new();
    let topics = Topics::new(&config.kafka.topic_prefix);
    let out = Output {
        bus: Bus::Memory(bus.clone()),
        topics: topics.clone(),
    };
    let mut files = ConnectorFiles::load(connectors_dir)?;
    sim.bind = "127.0.0.1:0".parse().expect("loopback address");
    sim.export_dir = sim_export_dir(out_dir);
    let (sim, receiver) = start_sim_and_receiver(sim, &files, out.clone()).await?;
    progress(&format!(
        "simulator: {} complaints on four channels at {}",
        sim.manifest().records.len(),
        sim.base_url()
    ));
    files.point_at_sim(&sim.base_url(), &sim_export_dir(out_dir));
    let enabled = &config.connectors.enabled;
    run_pollers(&files, enabled, out.clone(), Mode::Drain).await?;
    if enabled.contains(&crate::record::Channel::Wanshitong) {
        sim.pushes_done()
            .await
            .context("waiting for the simulator's webhooks")?;
    }
    receiver.shutdown().await;
    let manifest = sim.manifest().clone();
    sim.shutdown().await;
    progress(&format!(
        "connectors: {} raw records, {} dead letters",
        bus.len(&topics.raw),
        bus.len(&topics.dlq)
    ));

    // The demo alone may run with the development pseudonym key (when none is set).
    let mut config = config.clone();
    if config.engine.pseudonym_key == crate::engine::PseudonymKey::Env {
        config.engine.pseudonym_key = crate::engine::PseudonymKey::EnvOrDevelopment;
    }
    let config = &config;
    let drained = super::drain::process_all(config, &bus, &topics, out_dir, None, true).await?;
    progress(&format!(
        "engine: {} complaints, {} issues, {} alerts raised; lake in {}",
        drained.summary.complaints,
        drained.summary.issues,
        drained.alerts.len(),
        out_dir.join("lake").display()
    ));
    // The lifecycle replays the raised alerts on the corpus's own clock (yellow, and red where
    // the warning period ran out), writing the board's lake tables, alerts.jsonl and documents.
    let until = drained.complaints.iter().map(|c| c.received_at).max();
    let board = crate::lifecycle::replay::replay(
        config,
        &drained.alerts,
        until.unwrap_or_else(|| chrono::Utc::now().with_timezone(&crate::record::local_offset())),
        out_dir,
    )?;
    progress(&format!(
        "lifecycle: {} alerts on the board, documents in {}",
        board.alerts.len(),
        out_dir.join("documents").display()
    ));
    // What the simulator planted, so a reader can check the alerts against it.
    std::fs::write(
        out_dir.join("sim").join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    let mut summary = drained.summary;
    summary.set_board(&board.alerts);
    Ok(DemoOutcome {
        summary,
        complaints: drained.complaints,
        alerts: drained.alerts,
        manifest,
        out_dir: out_dir.to_path_buf(),
    })
}

fn sim_export_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("sim").join("hotline-exports")
}
