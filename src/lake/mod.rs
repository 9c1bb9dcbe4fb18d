//! The Parquet lake: `complaints/day=YYYY-MM-DD/part-<tag>.parquet` (partitioned by the local day of
//! received_at), and snapshot tables `alerts`, `issues`, `complainants` (latest state, one file each). Files are written to a temp
//! name and renamed, and named by the input range they cover, so a replay overwrites.

use anyhow::{Context, Result};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Snapshot tables of the keyed state: `issues` (one row per issue) and `complainants` (one row
/// per pseudonym), each rewritten whole as `<table>/<table>.parquet`.
pub fn write_snapshots(
    lake: &Path,
    state: &crate::engine::rules::AnalyticState,
    common_min: usize,
) -> Result<()> {
    write_parquet(
        &lake.join("issues").join("issues.parquet"),
        &issues_batch(state, common_min)?,
    )?;
    write_parquet(
        &lake.join("complainants").join("complainants.parquet"),
        &complainants_batch(state)?,
    )?;
    Ok(())
}

fn ts_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some(crate::record::TZ.into())),
        false,
    )
}

fn ts_array(v: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(
        TimestampMicrosecondArray::from_iter_values(v.map(|s| s * 1_000_000))
            .with_timezone(crate::record::TZ),
    )
}

pub fn issues_batch(
    state: &crate::engine::rules::AnalyticState,
    common_min: usize,
) -> Result<RecordBatch> {
    let mut issues: Vec<&crate::engine::cluster::Issue> = state.issues.all().collect();
    issues.sort_by(|a, b| a.issue_id.cmp(&b.issue_id));
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let schema = Arc::new(Schema::new(vec![
        s("issue_id", false),
        s("district", true),
        s("place", true),
        s("domain", true),
        s("title", false),
        s("key_terms", false),
        ts_field("first_seen"),
        ts_field("last_seen"),
        Field::new("complaints", DataType::UInt64, false),
        Field::new("complainants", DataType::UInt64, false),
        Field::new("growth", DataType::Float64, false),
        Field::new("heat", DataType::Float64, false),
        Field::new("likes", DataType::Int64, false),
        s("flags", false),
        s("merged_into", true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            issues.iter().map(|i| i.issue_id.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            issues.iter().map(|i| i.district.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            issues.iter().map(|i| i.place.as_deref()),
        )),
        Arc::new(StringArray::from_iter(issues.iter().map(|i| i.domain()))),
        Arc::new(StringArray::from_iter_values(
            issues.iter().map(|i| i.title.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            issues
                .iter()
                .map(|i| state.issues.key_terms(&i.issue_id, 6).join(",")),
        )),
        ts_array(issues.iter().map(|i| i.first_seen)),
        ts_array(issues.iter().map(|i| i.last_seen)),
        Arc::new(UInt64Array::from_iter_values(
            issues.iter().map(|i| i.complaint_ids.len() as u64),
        )),
        Arc::new(UInt64Array::from_iter_values(
            issues.iter().map(|i| i.complainants.len() as u64),
        )),
        Arc::new(Float64Array::from_iter_values(
            issues.iter().map(|i| i.growth()),
        )),
        Arc::new(Float64Array::from_iter_values(
            issues.iter().map(|i| i.heat()),
        )),
        Arc::new(Int64Array::from_iter_values(issues.iter().map(|i| i.likes))),
        Arc::new(StringArray::from_iter_values(
            issues
                .iter()
                .map(|i| state.flags_of_issue(i, common_min).join(",")),
        )),
        Arc::new(StringArray::from_iter(
            issues.iter().map(|i| i.merged_into.as_deref()),
        )),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

pub fn complainants_batch(state: &crate::engine::rules::AnalyticState) -> Result<RecordBatch> {
    use crate::engine::frequency::Person;
    let mut people: Vec<(&String, &Person)> = state.people.people.iter().collect();
    people.sort_by(|a, b| a.0.cmp(b.0));
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let schema = Arc::new(Schema::new(vec![
        s("complainant", false),
        Field::new("complaints", DataType::UInt64, false),
        Field::new("distinct_complaints", DataType::UInt64, false),
        Field::new("max_in_window", DataType::UInt64, false),
        Field::new("flagged", DataType::Boolean, false),
        Field::new("p_value", DataType::Float64, false),
        Field::new("z_score", DataType::Float64, false),
        s("top_domain", true),
        Field::new("top_domain_share", DataType::Float64, false),
        s("top_issue", true),
        Field::new("top_issue_share", DataType::Float64, false),
    ]));
    let dom: Vec<Option<(String, f64)>> = people
        .iter()
        .map(|(_, p)| Person::focus(&p.domains))
        .collect();
    let iss: Vec<Option<(String, f64)>> = people
        .iter()
        .map(|(_, p)| Person::focus(&p.issues))
        .collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            people.iter().map(|(k, _)| k.as_str()),
        )),
        Arc::new(UInt64Array::from_iter_values(
            people.iter().map(|(_, p)| p.complaint_ids.len() as u64),
        )),
        Arc::new(UInt64Array::from_iter_values(
            people.iter().map(|(_, p)| p.distinct() as u64),
        )),
        Arc::new(UInt64Array::from_iter_values(
            people.iter().map(|(_, p)| u64::from(p.max_window)),
        )),
        Arc::new(BooleanArray::from_iter(
            people.iter().map(|(_, p)| Some(p.flagged)),
        )),
        Arc::new(Float64Array::from_iter_values(
            people.iter().map(|(_, p)| p.p_value),
        )),
        Arc::new(Float64Array::from_iter_values(
            people.iter().map(|(_, p)| p.z_score),
        )),
        Arc::new(StringArray::from_iter(
            dom.iter().map(|d| d.as_ref().map(|x| x.0.as_str())),
        )),
        Arc::new(Float64Array::from_iter_values(
            dom.iter().map(|d| d.as_ref().map_or(0.0, |x| x.1)),
        )),
        Arc::new(StringArray::from_iter(
            iss.iter().map(|d| d.as_ref().map(|x| x.0.as_str())),
        )),
        Arc::new(Float64Array::from_iter_values(
            iss.iter().map(|d| d.as_ref().map_or(0.0, |x| x.1)),
        )),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}
