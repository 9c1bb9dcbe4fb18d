//! The engine's Kafka stage `process` (raw → engine → complaints, alerts, dlq, lake); `ingest`
//! lives in connectors/run.rs. Offsets are committed only after outputs are stored.

use anyhow::{Context, Result};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bus::KafkaBus;
use crate::config::Config;
use crate::engine::{Engine, RawInput};

/// Consume the raw topic in micro-batches, run the engine, write outputs, then commit.
pub async fn process(
    config: &Config,
    bus: Arc<KafkaBus>,
    data_dir: &Path,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let topics = bus.topics();
    let consumer = bus.consumer(&config.engine.group_id)?;
    consumer
        .subscribe(&[topics.raw.as_str()])
        .with_context(|| format!("cannot subscribe to {}", topics.raw))?;
    let mut engine = Engine::new(config)?;
    let lake = data_dir.join("lake");
    // The snapshot tables (issues, complainants) are rewritten at most this often, and at stop.
    let snapshot_every = Duration::from_secs(5);
    let mut snapshot_at = Instant::now();
    let mut snapshot_due = false;
    let common_min = config.rules.crowd_min_complainants;
    let linger = Duration::from_millis(config.engine.batch_linger_ms);
    let max = config.engine.batch_max_records.max(1);
    tokio::pin!(stop);
    loop {
        // Wait for the first record of a batch (or stop), then fill it until full or lingered.
        let first = tokio::select! {
            m = consumer.recv() => m.context("Kafka consumer failed")?.detach(),
            () = &mut stop => {
                if snapshot_due {
                    crate::lake::write_snapshots(&lake, engine.state(), common_min)?;
                }
                return Ok(());
            }
        };
        let mut msgs = vec![first];
        let until = Instant::now() + linger;
        while msgs.len() < max {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, consumer.recv()).await {
                Ok(m) => msgs.push(m.context("Kafka consumer failed")?.detach()),
                Err(_) => break,
            }
        }
        let inputs: Vec<RawInput> = msgs
            .iter()
            .map(|m| RawInput {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                origin: format!("{}/{}/{}", m.topic(), m.partition(), m.offset()),
            })
            .collect();
        let out = engine.process(&inputs).await?;
        let complaints: Vec<(String, Vec<u8>)> = out
            .complaints
            .iter()
            .map(|c| Ok((c.complaint_id.clone(), serde_json::to_vec(c)?)))
            .collect::<Result<_>>()?;
        let changed: Vec<(String, Vec<u8>)> = out
            .alerts
            .iter()
            .map(|a| Ok((a.alert_id.clone(), serde_json::to_vec(a)?)))
            .collect::<Result<_>>()?;
        let dead: Vec<(String, Vec<u8>)> = out
            .dead
            .iter()
            .map(|d| Ok((d.origin.clone(), serde_json::to_vec(d)?)))
            .collect::<Result<_>>()?;
        bus.send_all(&topics.complaints, &complaints).await?;
        // The lifecycle (src/lifecycle) takes raised alerts from here and writes the board.
        bus.send_all(&topics.alerts_raised, &changed).await?;
        bus.send_all(&topics.dlq, &dead).await?;
        // The lake file is named by the first offset of each partition in the batch.
        let mut firsts: BTreeMap<i32, i64> = BTreeMap::new();
        for m in &msgs {
            let e = firsts.entry(m.partition()).or_insert(m.offset());
            *e = (*e).min(m.offset());
        }
        let tag = firsts
            .iter()
            .map(|(p, o)| format!("p{p}o{o}"))
            .collect::<Vec<_>>()
            .join("-");
        crate::lake::write_complaints(&lake, &out.complaints, &tag)?;
        // The lake's `alerts` table and alerts.jsonl are the lifecycle's (it owns the board).
        snapshot_due |= !out.complaints.is_empty();
        if snapshot_due && snapshot_at.elapsed() >= snapshot_every {
            crate::lake::write_snapshots(&lake, engine.state(), common_min)?;
            snapshot_at = Instant::now();
            snapshot_due = false;
        }
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .context("cannot commit offsets")?;
        tracing::info!(target: "duban::engine", records = msgs.len(), complaints = out.complaints.len(), dead = out.dead.len(), "batch done");
    }
}

/// Connect to Kafka and create the topics.
pub async fn connect(config: &Config) -> Result<Arc<KafkaBus>> {
    let bus = KafkaBus::connect(&config.kafka)?;
    bus.ensure_topics().await?;
    Ok(Arc::new(bus))
}
