//! `duban demo`: simulator, connectors, engine and lake in one process on the in-process bus.
//! Drains the simulated feeds, processes everything, writes the output folder and a summary.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Summary, merge_alerts, write_alerts_jsonl};
use crate::bus::{Bus, MemoryBus, Topics};
use crate::config::Config;
use crate::connectors::{ConnectorFiles, Mode, Output, run_pollers, wanshitong};
use crate::engine::{Engine, RawInput};
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
    mut sim: SimConfig,
    out_dir: &Path,
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

    let lake = out_dir.join("lake");
    if lake.exists() {
        std::fs::remove_dir_all(&lake)
            .with_context(|| format!("cannot clear {}", lake.display()))?;
    }
    let mut engine = Engine::new(config)?;
    let mut summary = Summary::default();
    let mut all = Vec::new();
    let mut alerts = BTreeMap::new();
    let raw = bus.read(&topics.raw, 0);
    for (i, chunk) in raw
        .chunks(config.engine.batch_max_records.max(1))
        .enumerate()
    {
        let first = i * config.engine.batch_max_records.max(1);
        let inputs: Vec<RawInput> = chunk
            .iter()
            .enumerate()
            .map(|(j, r)| RawInput {
                key: r.key.clone(),
                value: r.value.clone(),
                origin: format!("{}/{}", topics.raw, first + j),
            })
            .collect();
        let result = engine.process(&inputs).await?;
        for c in &result.complaints {
            bus.send(
                &topics.complaints,
                Some(c.complaint_id.as_bytes()),
                &serde_json::to_vec(c)?,
            );
        }
        for a in &result.alerts {
            bus.send(
                &topics.alerts,
                Some(a.alert_id.as_bytes()),
                &serde_json::to_vec(a)?,
            );
        }
        for d in &result.dead {
            bus.send(
                &topics.dlq,
                d.key.as_deref().map(str::as_bytes),
                &serde_json::to_vec(d)?,
            );
        }
        crate::lake::write_complaints(&lake, &result.complaints, &format!("mem-{first:09}"))?;
        summary.add_complaints(&result.complaints);
        merge_alerts(&mut alerts, result.alerts);
        all.extend(result.complaints);
    }
    summary.dead_letters = bus.len(&topics.dlq);
    summary.set_alerts(&alerts);
    let alert_list: Vec<Alert> = alerts.values().cloned().collect();
    crate::lake::write_alerts(&lake, &alert_list)?;
    write_alerts_jsonl(out_dir, &alerts)?;
    std::fs::write(
        out_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    // What the simulator planted, so a reader can check the alerts against it.
    std::fs::write(
        out_dir.join("sim").join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    std::fs::write(out_dir.join("summary.txt"), summary.render())?;
    Ok(DemoOutcome {
        summary,
        complaints: all,
        alerts,
        manifest,
        out_dir: out_dir.to_path_buf(),
    })
}

fn sim_export_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("sim").join("hotline-exports")
}
