//! Run the engine over everything on the in-process bus's raw topic, in micro-batches, and write
//! the output folder: lake (complaints, alerts, issues, complainants), alerts.jsonl, summaries.
//! Used by `duban demo` (after the simulated feeds drained) and `duban backfill`.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

use super::{Summary, merge_alerts, write_alerts_jsonl};
use crate::bus::{MemoryBus, Topics};
use crate::config::Config;
use crate::engine::{Engine, EngineOutput, RawInput};
use crate::record::{Alert, Complaint};

/// What the engine produced over the whole raw topic.
pub struct Drained {
    pub summary: Summary,
    pub complaints: Vec<Complaint>,
    pub alerts: BTreeMap<String, Alert>,
}

/// What the output stage tallied: the run's summary, its complaints, every alert's latest state.
type Written = (Summary, Vec<Complaint>, BTreeMap<String, Alert>);

/// One batch's output: dead letters to the in-memory dead-letter topic, complaints to the lake
/// (files named by the batch's first record). Alerts are written once, in their latest state,
/// at the end; nothing in the process reads enriched records back from the in-memory bus.
fn write_batch(
    bus: &MemoryBus,
    topics: &Topics,
    lake: &Path,
    first: usize,
    result: &EngineOutput,
) -> Result<()> {
    for d in &result.dead {
        bus.send(
            &topics.dlq,
            d.key.as_deref().map(str::as_bytes),
            &serde_json::to_vec(d)?,
        );
    }
    crate::lake::write_complaints(lake, &result.complaints, &format!("mem-{first:09}"))?;
    Ok(())
}

/// `keep_complaints`: return the enriched complaints in `Drained` (else it holds none: a
/// backfill's complaints are in the lake, and holding them all costs memory).
pub async fn process_all(
    config: &Config,
    bus: &MemoryBus,
    topics: &Topics,
    out_dir: &Path,
    progress: Option<&indicatif::ProgressBar>,
    keep_complaints: bool,
) -> Result<Drained> {
    let lake = out_dir.join("lake");
    if lake.exists() {
        std::fs::remove_dir_all(&lake)
            .with_context(|| format!("cannot clear {}", lake.display()))?;
    }
    let mut engine = Engine::new(config)?;
    // The raw topic is consumed whole, once: its records move into the engine's inputs.
    let mut raw = bus.take(&topics.raw).into_iter().enumerate();
    let size = config.engine.batch_max_records.max(1);
    // Raw records as engine inputs, built batch by batch on the engine's stateless stage.
    let batches = std::iter::from_fn(move || {
        let batch: Vec<RawInput> = raw
            .by_ref()
            .take(size)
            .map(|(offset, r)| RawInput {
                key: r.key,
                value: r.value,
                origin: format!("{}/{offset}", topics.raw),
            })
            .collect();
        (!batch.is_empty()).then_some(batch)
    });
    let lake_dir = &lake;
    let (mut summary, all, alerts) = std::thread::scope(|scope| -> Result<Written> {
        // The output stage (dead letters, lake files, the run's tallies) runs one batch
        // behind the engine on its own thread.
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, EngineOutput)>(1);
        let writer = scope.spawn(move || -> Result<Written> {
            let (mut summary, mut all, mut alerts) =
                (Summary::default(), Vec::new(), BTreeMap::new());
            let mut first = 0;
            for (n, result) in rx {
                write_batch(bus, topics, lake_dir, first, &result)?;
                first += n;
                summary.add_complaints(&result.complaints);
                merge_alerts(&mut alerts, result.alerts);
                if keep_complaints {
                    all.extend(result.complaints);
                }
                if let Some(p) = progress {
                    p.inc(n as u64);
                }
            }
            Ok((summary, all, alerts))
        });
        let run = engine.process_batches(batches, |n, out| {
            tx.send((n, out))
                .map_err(|_| anyhow::anyhow!("the output stage stopped"))
        });
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the output stage panicked"))?;
        // When the output stage failed, its error is why the engine's run stopped.
        let written = written?;
        run?;
        Ok(written)
    })?;
    summary.dead_letters = bus.len(&topics.dlq);
    summary.set_alerts(&alerts);
    summary.set_state(&engine.parts(), config.rules.crowd_min_complainants);
    let alert_list: Vec<Alert> = alerts.values().cloned().collect();
    crate::lake::write_alerts(&lake, &alert_list)?;
    crate::lake::write_snapshots(&lake, &engine.parts(), config.rules.crowd_min_complainants)?;
    write_alerts_jsonl(out_dir, &alerts)?;
    std::fs::write(
        out_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    std::fs::write(out_dir.join("summary.txt"), summary.render())?;
    Ok(Drained {
        summary,
        complaints: all,
        alerts,
    })
}
