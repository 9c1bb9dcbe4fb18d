//! Compaction of the `complaints` table: merges a day partition's files into one, keeping the
//! newest version of each complaint id, sorted by received_at; plus the partition readers it needs.

use anyhow::{Context, Result};
use datafusion::arrow::array::{
    Array, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
    new_null_array,
};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{VersionKey, write_parquet};
use crate::record::complaint_schema;

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CompactReport {
    pub partitions: usize,
    pub files_before: usize,
    pub files_after: usize,
    pub rows: usize,
    /// Older versions (or copies) of a complaint that were dropped.
    pub duplicates_dropped: usize,
}

impl CompactReport {
    fn add(&mut self, o: &CompactReport) {
        self.partitions += o.partitions;
        self.files_before += o.files_before;
        self.files_after += o.files_after;
        self.rows += o.rows;
        self.duplicates_dropped += o.duplicates_dropped;
    }
}

/// The Parquet data files of one folder, sorted by name (temp files excluded).
pub fn data_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "parquet") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Read a Parquet file, only `columns` when given, conformed to the complaint schema's columns
/// (missing nullable columns of files written before a column existed read as nulls).
pub(crate) fn read_file(path: &Path, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut b = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
    if let Some(cols) = columns {
        let arrow = b.schema().clone();
        let idx: Vec<usize> = cols.iter().filter_map(|c| arrow.index_of(c).ok()).collect();
        let mask = ProjectionMask::roots(b.parquet_schema(), idx);
        b = b.with_projection(mask);
    }
    let reader = b.with_batch_size(64 * 1024).build()?;
    reader
        .map(|r| r.with_context(|| format!("reading {}", path.display())))
        .collect()
}

/// Conform a batch to `schema` by column name: cast where types differ, nulls where missing.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => Ok(cast(c, f.data_type())?),
            None if f.is_nullable() => Ok(new_null_array(f.data_type(), batch.num_rows())),
            None => anyhow::bail!("lake file lacks the required column {}", f.name()),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

pub(crate) fn str_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .with_context(|| format!("lake complaints lack the text column {name}"))
}

fn ts_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a TimestampMicrosecondArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .with_context(|| format!("lake complaints lack the timestamp column {name}"))
}

fn version_at(b: &RecordBatch, i: usize) -> Result<VersionKey> {
    let v = str_col(b, "source_version")?;
    let f = ts_col(b, "fetched_at")?;
    Ok(((!v.is_null(i)).then(|| v.value(i).to_string()), f.value(i)))
}

/// Complaint id → (file, version) of every row in a day partition.
pub(crate) fn read_versions(dir: &Path) -> Result<HashMap<String, (PathBuf, VersionKey)>> {
    let mut out = HashMap::new();
    for file in data_files(dir)? {
        for b in read_file(
            &file,
            Some(&["complaint_id", "source_version", "fetched_at"]),
        )? {
            let ids = str_col(&b, "complaint_id")?;
            for i in 0..b.num_rows() {
                let v = version_at(&b, i)?;
                let id = ids.value(i).to_string();
                match out.get(&id) {
                    Some((_, old)) if *old > v => {}
                    _ => {
                        out.insert(id, (file.clone(), v));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Rewrite `file` without the rows whose complaint id is in `ids`; delete it when none is left.
pub(crate) fn remove_rows(file: &Path, ids: &HashSet<String>) -> Result<()> {
    let schema = complaint_schema();
    let mut kept = Vec::new();
    for b in read_file(file, None)? {
        let b = conform(&b, &schema)?;
        let col = str_col(&b, "complaint_id")?;
        let idx: UInt32Array = (0..b.num_rows() as u32)
            .filter(|&i| !ids.contains(col.value(i as usize)))
            .collect();
        kept.push(take_record_batch(&b, &idx)?);
    }
    let merged = concat_batches(&schema, &kept)?;
    if merged.num_rows() == 0 {
        std::fs::remove_file(file).with_context(|| format!("cannot remove {}", file.display()))?;
    } else {
        write_parquet(file, &merged)?;
    }
    Ok(())
}

/// Merge the files of one day partition into one: newest version of each complaint id, sorted
/// by (received_at, complaint_id). A partition already in one file without duplicates is left.
pub fn compact_day(dir: &Path) -> Result<CompactReport> {
    if !dir.is_dir() {
        return Ok(CompactReport::default());
    }
    let _lock = super::lock_partition(dir)?;
    compact_day_locked(dir)
}

/// `compact_day` for a caller that holds the partition's lock.
pub(crate) fn compact_day_locked(dir: &Path) -> Result<CompactReport> {
    let files = data_files(dir)?;
    let schema = complaint_schema();
    let mut batches = Vec::new();
    for f in &files {
        for b in read_file(f, None)? {
            batches.push(conform(&b, &schema).with_context(|| format!("in {}", f.display()))?);
        }
    }
    let all = concat_batches(&schema, &batches)?;
    let ids = str_col(&all, "complaint_id")?;
    let received = ts_col(&all, "received_at")?;
    let mut best: HashMap<&str, (usize, VersionKey)> = HashMap::new();
    for i in 0..all.num_rows() {
        let v = version_at(&all, i)?;
        match best.get(ids.value(i)) {
            Some((_, old)) if *old > v => {}
            _ => {
                best.insert(ids.value(i), (i, v));
            }
        }
    }
    let mut keep: Vec<usize> = best.values().map(|(i, _)| *i).collect();
    keep.sort_by_key(|&i| (received.value(i), ids.value(i)));
    let report = CompactReport {
        partitions: 1,
        files_before: files.len(),
        files_after: usize::from(!keep.is_empty()),
        rows: keep.len(),
        duplicates_dropped: all.num_rows() - keep.len(),
    };
    if files.len() <= 1 && report.duplicates_dropped == 0 {
        return Ok(CompactReport {
            files_after: files.len(),
            ..report
        });
    }
    let idx: UInt32Array = keep.iter().map(|&i| i as u32).collect();
    let merged = take_record_batch(&all, &idx)?;
    if merged.num_rows() > 0 {
        let name = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            for i in &keep {
                h.update(ids.value(*i).as_bytes());
                h.update(received.value(*i).to_le_bytes());
            }
            format!("part-c-{}.parquet", &hex::encode(h.finalize())[..12])
        };
        let path = dir.join(name);
        write_parquet(&path, &merged)?;
        for f in files.iter().filter(|f| **f != path) {
            std::fs::remove_file(f).with_context(|| format!("cannot remove {}", f.display()))?;
        }
    } else {
        for f in &files {
            std::fs::remove_file(f).with_context(|| format!("cannot remove {}", f.display()))?;
        }
    }
    Ok(report)
}

/// Compact every day partition of the lake's `complaints` table (`duban lake compact`).
pub fn compact(lake: &Path) -> Result<CompactReport> {
    let root = lake.join("complaints");
    if !lake.is_dir() {
        anyhow::bail!("lake folder {} does not exist", lake.display());
    }
    let mut total = CompactReport::default();
    if !root.is_dir() {
        return Ok(total);
    }
    let mut days: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    days.sort();
    for d in days {
        let r = compact_day(&d).with_context(|| format!("compacting {}", d.display()))?;
        total.add(&r);
    }
    Ok(total)
}
