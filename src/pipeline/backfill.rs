//! `duban backfill`: run the engine over a historical export (CSV in UTF-8/GBK/GB18030, JSON lines,
//! or XLSX) mapped to a channel's raw fields by a mapping TOML, writing the same outputs as `demo`.

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

use crate::bus::{BusRecord, MemoryBus, Topics};
use crate::config::Config;
use crate::connectors::hotline::decode_export;
use crate::record::{Channel, RawEnvelope, local_offset};

/// A mapping file (e.g. connectors/board-export.toml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The channel the export came from.
    pub channel: Channel,
    /// `csv`, `jsonl` or `xlsx`; default from the input's extension.
    pub format: Option<String>,
    /// Raw field name → column header. `source_id` is required.
    pub columns: BTreeMap<String, String>,
}

/// Rows of the input as header → cell text.
pub fn read_rows(path: &Path, format: &str) -> Result<Vec<BTreeMap<String, String>>> {
    let name = path.display();
    match format {
        "csv" => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
            let text = decode_export(&bytes).0;
            let mut rdr = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.as_bytes());
            let headers: Vec<String> = rdr
                .headers()
                .with_context(|| format!("{name}: no header row"))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect();
            let mut rows = Vec::new();
            for (i, rec) in rdr.records().enumerate() {
                let rec = rec.with_context(|| format!("{name} line {}", i + 2))?;
                rows.push(
                    headers
                        .iter()
                        .cloned()
                        .zip(rec.iter().map(str::to_string))
                        .collect(),
                );
            }
            Ok(rows)
        }
        "jsonl" => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
            let text = decode_export(&bytes).0;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    let v: Map<String, Value> = serde_json::from_str(l)
                        .with_context(|| format!("{name} line {}: not a JSON object", i + 1))?;
                    Ok(v.into_iter()
                        .map(|(k, v)| {
                            (
                                k,
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string()),
                            )
                        })
                        .collect())
                })
                .collect()
        }
        "xlsx" => {
            use calamine::{Reader, Xlsx, open_workbook};
            let mut wb: Xlsx<_> =
                open_workbook(path).with_context(|| format!("cannot open {name} as xlsx"))?;
            let sheet = wb
                .sheet_names()
                .first()
                .cloned()
                .with_context(|| format!("{name}: no sheet"))?;
            let range = wb
                .worksheet_range(&sheet)
                .with_context(|| format!("{name}: cannot read sheet {sheet}"))?;
            let mut it = range.rows();
            let headers: Vec<String> = it
                .next()
                .map(|r| r.iter().map(|c| c.to_string().trim().to_string()).collect())
                .unwrap_or_default();
            Ok(it
                .map(|r| {
                    headers
                        .iter()
                        .cloned()
                        .zip(r.iter().map(|c| c.to_string()))
                        .collect()
                })
                .collect())
        }
        other => anyhow::bail!("{name}: unknown format `{other}` (csv, jsonl or xlsx)"),
    }
}

/// Map one row to a raw envelope; `None` for a row without a source id.
pub fn envelope(
    m: &Mapping,
    row: &BTreeMap<String, String>,
    position: Value,
) -> Option<RawEnvelope> {
    let mut payload = Map::new();
    for (field, col) in &m.columns {
        if let Some(v) = row.get(col) {
            payload.insert(field.clone(), Value::String(v.clone()));
        }
    }
    let id = payload
        .get("source_id")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())?;
    Some(RawEnvelope {
        channel: m.channel,
        source_id: id,
        fetched_at: chrono::Utc::now().with_timezone(&local_offset()),
        position,
        payload: Value::Object(payload),
        version: None,
    })
}

/// Run the backfill; returns the summary text.
pub async fn run(
    config: &Config,
    input: &Path,
    mapping: &Path,
    out_dir: &Path,
) -> Result<super::Summary> {
    let m: Mapping = crate::config::load_toml(mapping)?;
    if !m.columns.contains_key("source_id") {
        anyhow::bail!("{}: [columns] needs source_id", mapping.display());
    }
    let format = m
        .format
        .clone()
        .or_else(|| {
            input
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
        })
        .map(|f| {
            if f == "json" || f == "ndjson" {
                "jsonl".to_string()
            } else {
                f
            }
        })
        .unwrap_or_else(|| "csv".into());
    let rows = read_rows(input, &format)?;
    let bus = MemoryBus::new();
    let topics = Topics::new(&config.kafka.topic_prefix);
    let file = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A history is replayed in the order it happened, as it would have streamed in.
    let time_col = ["created_at", "call_time", "time", "submitted_at"]
        .iter()
        .find_map(|f| m.columns.get(*f));
    let mut order: Vec<usize> = (0..rows.len()).collect();
    if let Some(col) = time_col {
        let key = |i: &usize| {
            rows[*i]
                .get(col)
                .and_then(|t| crate::engine::normalize::parse_time(t))
                .map(|t| t.timestamp())
        };
        order.sort_by_cached_key(key);
    }
    // Envelopes are built on parallel threads, in contiguous slices of the order, and put on
    // the raw topic in that order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = order.len().div_ceil(threads).max(1);
    let slices = crate::util::par::on_threads("an envelope thread", order.chunks(per), |slice| {
        slice
            .iter()
            .map(|&i| {
                let pos = serde_json::json!({"file": file, "row": i + 1});
                envelope(&m, &rows[i], pos)
                    .map(|env| {
                        Ok(BusRecord {
                            key: Some(env.key().into_bytes()),
                            value: serde_json::to_vec(&env)?,
                        })
                    })
                    .transpose()
            })
            .collect::<Result<Vec<Option<BusRecord>>>>()
    })?;
    // The rows are not needed any more: free them beside the engine's run.
    let freeing = std::thread::spawn(move || drop(rows));
    let mut skipped = 0usize;
    for slice in slices {
        let slice = slice?;
        skipped += slice.iter().filter(|r| r.is_none()).count();
        bus.append(&topics.raw, slice.into_iter().flatten().collect());
    }
    if skipped > 0 {
        tracing::warn!(
            "{file}: {skipped} rows without {} skipped",
            m.columns["source_id"]
        );
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let bar = indicatif::ProgressBar::new(bus.len(&topics.raw) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} backfill [{bar:40}] {pos}/{len} complaints ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let drained =
        super::drain::process_all(config, &bus, &topics, out_dir, Some(&bar), false).await?;
    bar.finish_and_clear();
    freeing
        .join()
        .map_err(|_| anyhow::anyhow!("freeing the export's rows panicked"))?;
    Ok(drained.summary)
}
