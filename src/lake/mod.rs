//! The Parquet lake: `complaints/day=YYYY-MM-DD/part-<tag>.parquet` (partitioned by the local day of
//! received_at) and `alerts/alerts.parquet` (latest state per alert). Files are written to a temp
//! name and renamed, and named by the input range they cover, so a replay overwrites.

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::record::{Alert, Complaint, alerts_to_batch, complaints_to_batch};

pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("parquet.tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}

/// Write complaints into day partitions; `tag` names the input range (e.g. `raw-p0-000000000042`).
/// Returns the files written.
pub fn write_complaints(lake: &Path, rows: &[Complaint], tag: &str) -> Result<Vec<PathBuf>> {
    let mut by_day: BTreeMap<chrono::NaiveDate, Vec<Complaint>> = BTreeMap::new();
    for c in rows {
        by_day.entry(c.day()).or_default().push(c.clone());
    }
    let mut files = Vec::new();
    for (day, rows) in by_day {
        let path = lake
            .join("complaints")
            .join(format!("day={day}"))
            .join(format!("part-{tag}.parquet"));
        write_parquet(&path, &complaints_to_batch(&rows)?)?;
        files.push(path);
    }
    Ok(files)
}

/// Replace the alerts table with the latest state of every alert.
pub fn write_alerts(lake: &Path, alerts: &[Alert]) -> Result<PathBuf> {
    let mut sorted = alerts.to_vec();
    sorted.sort_by(|a, b| a.alert_id.cmp(&b.alert_id));
    let path = lake.join("alerts").join("alerts.parquet");
    write_parquet(&path, &alerts_to_batch(&sorted)?)?;
    Ok(path)
}
