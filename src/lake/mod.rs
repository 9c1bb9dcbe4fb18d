//! The Parquet lake: `complaints/day=YYYY-MM-DD/part-*.parquet` (partitioned by the local day of
//! received_at) and the snapshot tables `alerts`, `issues`, `complainants` (latest state, one file
//! each; `alert_history` is appended by the lifecycle). Files are written to a temp name and renamed.
//!
//! Idempotence: within a day partition a complaint id lives in exactly one file. A write reads the
//! ids already in the partition, keeps the newer version of each (source version, then fetched_at)
//! and rewrites the older files without the superseded rows, so a replay with any batch boundaries
//! overwrites instead of duplicating. Small files are compacted (see `compact`). Writers of one day
//! partition (the workers of `duban process` share a lake, and `duban lake compact` may run beside
//! them) take the partition's lock file `.lock` for the whole read-modify-write.

pub mod check;
pub mod compact;

pub use check::{BadFile, check, quarantine};
pub use compact::{CompactReport, compact, compact_day};

use anyhow::{Context, Result};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::record::{Alert, Complaint, alerts_to_batch, complaints_to_batch};

/// The lake's tables: `complaints` is partitioned by day, the others are snapshots.
pub const TABLES: [&str; 6] = [
    "complaints",
    "issues",
    "complainants",
    "alerts",
    "alert_history",
    "labels",
];

/// A day partition with more data files than this is compacted after a write.
pub const AUTO_COMPACT_FILES: usize = 8;

/// Version of the files' physical layout (writer settings below); benchmarks key cached lakes by it.
pub const LAYOUT: &str = "layout2";

/// Rows per Parquet row group: the unit DataFusion prunes by statistics and splits scans by.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Columns whose values are (nearly) unique per row: plain-encoded, as a dictionary only costs.
const UNIQUE_COLUMNS: [&str; 7] = [
    "complaint_id",
    "source_id",
    "title",
    "body",
    "content_hash",
    "duplicate_group",
    "address",
];

/// The lake's writer settings: Snappy, page-level statistics and the page index (so filters on
/// time and the low-cardinality columns skip row groups and pages), dictionary encoding for
/// repeated values (channel, district, domain, issue, complainant ...), plain encoding for
/// per-row unique text, no bloom filters.
pub fn writer_properties(schema: &Schema) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_bloom_filter_enabled(false);
    for f in schema.fields() {
        if UNIQUE_COLUMNS.contains(&f.name().as_str()) {
            b = b.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
        }
    }
    b.build()
}

pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    write_parquet_with(path, batch, writer_properties(&batch.schema()))
}

fn write_parquet_with(path: &Path, batch: &RecordBatch, props: WriterProperties) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // A temp name of its own per process and write, so concurrent writers never share one.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("parquet.{}-{n}.tmp", std::process::id()));
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}

/// Write complaints into their day partitions; `tag` names the input range (e.g. `p0o42`) and
/// is part of the new file's name, with a hash of the rows' ids and versions. Rows superseded by a
/// newer version already in the partition are dropped; older versions of the written rows are
/// removed from the partition's other files. Returns the files written.
pub fn write_complaints(lake: &Path, rows: &[Complaint], tag: &str) -> Result<Vec<PathBuf>> {
    let mut by_day: BTreeMap<chrono::NaiveDate, Vec<&Complaint>> = BTreeMap::new();
    for c in rows {
        by_day.entry(c.day()).or_default().push(c);
    }
    let mut files = Vec::new();
    for (day, rows) in by_day {
        let dir = day_dir(lake, day);
        let _lock = lock_partition(&dir)?;
        if let Some(path) = write_day(&dir, rows, tag)? {
            files.push(path);
        }
        if compact::data_files(&dir)?.len() > AUTO_COMPACT_FILES {
            compact::compact_day_locked(&dir)?;
        }
    }
    Ok(files)
}

/// Take the exclusive lock of a day partition (created if missing); held until the file is dropped.
/// Every process that changes the partition's files takes it, so concurrent writers never read a
/// file another one is replacing.
pub fn lock_partition(dir: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}

/// The folder of one day partition of `complaints`.
pub fn day_dir(lake: &Path, day: chrono::NaiveDate) -> PathBuf {
    lake.join("complaints").join(format!("day={day}"))
}

/// Which of two rows of one complaint is newer: source version, then fetch time.
pub(crate) type VersionKey = (Option<String>, i64);

fn version_of(c: &Complaint) -> VersionKey {
    (c.source_version.clone(), c.fetched_at.timestamp_micros())
}

fn write_day(dir: &Path, rows: Vec<&Complaint>, tag: &str) -> Result<Option<PathBuf>> {
    // The newest version of each complaint in this write.
    let mut latest: BTreeMap<&str, &Complaint> = BTreeMap::new();
    for c in rows {
        match latest.get(c.complaint_id.as_str()) {
            Some(old) if version_of(old) > version_of(c) => {}
            _ => {
                latest.insert(&c.complaint_id, c);
            }
        }
    }
    // What the partition already holds, and which of its rows the new ones replace.
    let existing = compact::read_versions(dir)?;
    let mut replaced: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut keep: Vec<Complaint> = Vec::with_capacity(latest.len());
    for (id, c) in latest {
        match existing.get(id) {
            Some((_, v)) if *v > version_of(c) => continue,
            Some((file, _)) => {
                replaced
                    .entry(file.clone())
                    .or_default()
                    .insert(id.to_string());
            }
            None => {}
        }
        keep.push(c.clone());
    }
    if keep.is_empty() {
        return Ok(None);
    }
    keep.sort_by(|a, b| (a.received_at, &a.complaint_id).cmp(&(b.received_at, &b.complaint_id)));
    let path = dir.join(format!(
        "part-{}-{}.parquet",
        safe_tag(tag),
        rows_hash(&keep)
    ));
    // New rows first, then the old versions go: a crash in between leaves a duplicate that the
    // replay (offsets are committed after the lake write) or the next compaction removes.
    write_parquet(&path, &complaints_to_batch(&keep)?)?;
    for (file, ids) in replaced {
        if file != path {
            compact::remove_rows(&file, &ids)?;
        }
    }
    Ok(Some(path))
}

fn safe_tag(tag: &str) -> String {
    tag.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn rows_hash(rows: &[Complaint]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for c in rows {
        h.update(c.complaint_id.as_bytes());
        h.update([0x1f]);
        h.update(c.source_version.as_deref().unwrap_or("").as_bytes());
        h.update([0x1f]);
        h.update(c.fetched_at.timestamp_micros().to_le_bytes());
    }
    hex::encode(&h.finalize()[..6])
}

/// Replace the alerts table with the latest state of every alert.
pub fn write_alerts(lake: &Path, alerts: &[Alert]) -> Result<PathBuf> {
    let mut sorted = alerts.to_vec();
    sorted.sort_by(|a, b| a.alert_id.cmp(&b.alert_id));
    let path = lake.join("alerts").join("alerts.parquet");
    write_parquet(&path, &alerts_to_batch(&sorted)?)?;
    Ok(path)
}

/// The state partitions whose snapshots a writer holds: issue-block partitions (their issues)
/// and complainant partitions (their complainants), by partition number.
pub struct StateParts<'a> {
    pub blocks: Vec<(usize, &'a crate::engine::rules::AnalyticState)>,
    pub people: Vec<(usize, &'a crate::engine::people::Complainants)>,
    /// Where the state is a changelog's (`duban process`): the sequence it has reached, per
    /// (`b` or `c`, partition). Kept in the file; a file of a later sequence is never replaced by
    /// an earlier state (the partition may have another owner by now). Empty: always write.
    pub seqs: HashMap<(char, usize), u64>,
}

/// Key of the changelog sequence in a snapshot file's Parquet metadata.
const SEQ_KEY: &str = "duban.changelog_seq";

/// The changelog sequence a snapshot file was written at (None: no file, or not recorded).
fn snapshot_seq(path: &Path) -> Option<u64> {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).ok()?).ok()?;
    let kv = reader.metadata().file_metadata().key_value_metadata()?;
    kv.iter()
        .find(|e| e.key == SEQ_KEY)
        .and_then(|e| e.value.as_deref()?.parse().ok())
}

/// Snapshot tables of the keyed state: `issues` (one row per issue) and `complainants` (one row
/// per pseudonym), one file per state partition (`issues/part-b<p>.parquet`,
/// `complainants/part-c<p>.parquet`), rewritten whole by the partition's owner. Workers of
/// `duban process` sharing a lake each write the partitions they own, so the tables are the
/// union of every partition, whoever owns it now.
pub fn write_snapshots(lake: &Path, parts: &StateParts<'_>, common_min: usize) -> Result<()> {
    // A partition's rows: its live state and, where kept (demo, backfill), what it evicted.
    // Each partition's file is built and written on its own thread.
    let files = parts.blocks.iter().map(|(p, s)| (*p, Ok(*s)));
    let files = files.chain(parts.people.iter().map(|(p, s)| (*p, Err(*s))));
    let written = crate::util::par::on_threads("a snapshot writer", files, |(p, state)| {
        let (tag, path) = match state {
            Ok(_) => ('b', lake.join("issues").join(format!("part-b{p}.parquet"))),
            Err(_) => (
                'c',
                lake.join("complainants").join(format!("part-c{p}.parquet")),
            ),
        };
        let seq = parts.seqs.get(&(tag, p)).copied();
        if let Some(seq) = seq
            && let Some(on_disk) = snapshot_seq(&path).filter(|&d| d > seq)
        {
            // Another worker owns the partition by now (or the changelog was started over
            // while the lake was kept: then remove the lake's snapshot files).
            tracing::info!(target: "duban::lake", file = %path.display(), on_disk, seq, "snapshot file kept: it holds a later changelog sequence");
            return Ok(());
        }
        let batch = match state {
            Ok(issues) => issues_batch(issues, common_min)?,
            Err(people) => complainants_batch(people)?,
        };
        let mut props = writer_properties(&batch.schema());
        if let Some(seq) = seq {
            props = props
                .into_builder()
                .set_key_value_metadata(Some(vec![
                    datafusion::parquet::file::metadata::KeyValue::new(
                        SEQ_KEY.to_string(),
                        seq.to_string(),
                    ),
                ]))
                .build();
        }
        write_parquet_with(&path, &batch, props)
    })?;
    written.into_iter().collect::<Result<()>>()?;
    // Files of the whole state, as earlier versions wrote them, would count every row twice.
    for old in ["issues/issues.parquet", "complainants/complainants.parquet"] {
        let old = lake.join(old);
        if old.exists() {
            std::fs::remove_file(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
        }
    }
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
    let mut rows = state.issue_rows(6);
    rows.sort_by(|a, b| a.0.issue_id.cmp(&b.0.issue_id));
    let (issues, terms): (Vec<&crate::engine::cluster::Issue>, Vec<Vec<String>>) =
        rows.into_iter().unzip();
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
            terms.iter().map(|t| t.join(",")),
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

/// The `complainants` snapshot table of one partition: one row per pseudonym with their filings,
/// the densest window of the horizon that decided their judgement (and every horizon's), the
/// flag, their focus, and the resubmissions linked among their filings of the retention
/// (`resubmission_links`: `complaint_id>resubmission_of`, comma-separated).
pub fn complainants_batch(state: &crate::engine::people::Complainants) -> Result<RecordBatch> {
    use crate::engine::people::Person;
    // In pseudonym order.
    let people: Vec<(&String, &Person)> = state.all_people().into_iter().collect();
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let u = |n: &str| Field::new(n, DataType::UInt64, false);
    let schema = Arc::new(Schema::new(vec![
        s("complainant", false),
        u("complaints"),
        u("distinct_complaints"),
        u("max_in_window"),
        Field::new("flagged", DataType::Boolean, false),
        Field::new("p_value", DataType::Float64, false),
        Field::new("z_score", DataType::Float64, false),
        s("top_domain", true),
        Field::new("top_domain_share", DataType::Float64, false),
        s("top_issue", true),
        Field::new("top_issue_share", DataType::Float64, false),
        u("window_days"),
        s("max_in_horizons", false),
        u("resubmissions"),
        s("resubmission_links", false),
    ]));
    let focus: Vec<_> = people.iter().map(|(_, p)| state.focus(p)).collect();
    let horizons = state.horizons();
    let u64s = |f: &dyn Fn(&Person) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(
            people.iter().map(|(_, p)| f(p)),
        ))
    };
    let f64s = |f: &dyn Fn(&Person) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            people.iter().map(|(_, p)| f(p)),
        ))
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            people.iter().map(|(k, _)| k.as_str()),
        )),
        u64s(&|p| p.complaints),
        u64s(&|p| p.distinct),
        u64s(&|p| u64::from(p.decisive().0)),
        Arc::new(BooleanArray::from_iter(
            people.iter().map(|(_, p)| Some(p.flagged)),
        )),
        f64s(&|p| p.p_value),
        f64s(&|p| p.z_score),
        Arc::new(StringArray::from_iter(
            focus.iter().map(|d| d.0.as_ref().map(|x| x.0.as_str())),
        )),
        Arc::new(Float64Array::from_iter_values(
            focus.iter().map(|d| d.0.as_ref().map_or(0.0, |x| x.1)),
        )),
        Arc::new(StringArray::from_iter(
            focus.iter().map(|d| d.1.as_ref().map(|x| x.0.as_str())),
        )),
        Arc::new(Float64Array::from_iter_values(
            focus.iter().map(|d| d.1.as_ref().map_or(0.0, |x| x.1)),
        )),
        u64s(&|p| horizons.get(p.horizon).copied().unwrap_or(0).max(0) as u64),
        Arc::new(StringArray::from_iter_values(people.iter().map(
            |(_, p)| {
                horizons
                    .iter()
                    .zip(&p.max_in)
                    .map(|(h, m)| format!("{h}:{}", m.0))
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ))),
        u64s(&|p| p.resubmissions),
        Arc::new(StringArray::from_iter_values(people.iter().map(
            |(_, p)| {
                state
                    .links(p)
                    .iter()
                    .map(|l| format!("{}>{}", l.complaint_id, l.resubmission_of))
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ))),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

#[cfg(test)]
mod tests;
