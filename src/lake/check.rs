//! `duban lake check [--quarantine]`: which Parquet files of the lake cannot be read (a truncated
//! or foreign file), and moving them aside so the rest of the lake stays queryable.

use anyhow::{Context, Result};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};

/// A lake file that cannot be read, and why (the reader's error, on one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFile {
    pub table: String,
    pub path: PathBuf,
    pub reason: String,
}

/// Every `.parquet` file under `dir` (partition folders included), sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Why a Parquet file cannot be read: its footer (`full` = false, what planning a query reads) or
/// also every row group (`full` = true). `None` when it reads.
pub fn unreadable(path: &Path, full: bool) -> Option<String> {
    let read = || -> Result<()> {
        let file = std::fs::File::open(path)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        if full {
            for batch in builder.build()? {
                batch?;
            }
        }
        Ok(())
    };
    read()
        .err()
        .map(|e| crate::redact::printable(&format!("{e:#}"), 200))
}

/// The unreadable files of the lake's tables, each read to its end.
pub fn check(lake: &Path) -> Result<Vec<BadFile>> {
    if !lake.is_dir() {
        anyhow::bail!("lake folder {} not found", lake.display());
    }
    let mut bad = Vec::new();
    for table in super::TABLES {
        for path in parquet_files(&lake.join(table)) {
            if let Some(reason) = unreadable(&path, true) {
                bad.push(BadFile {
                    table: table.to_string(),
                    path,
                    reason,
                });
            }
        }
    }
    Ok(bad)
}

/// Where `quarantine` moves a lake's files: the folder `<lake>.quarantine` beside it, with the
/// same table and partition folders.
pub fn quarantine_dir(lake: &Path) -> PathBuf {
    let name = lake
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "lake".into());
    lake.with_file_name(format!("{name}.quarantine"))
}

/// Move each bad file out of the lake (see `quarantine_dir`); returns the new paths.
pub fn quarantine(lake: &Path, bad: &[BadFile]) -> Result<Vec<PathBuf>> {
    let to = quarantine_dir(lake);
    bad.iter()
        .map(|b| {
            let rel = b.path.strip_prefix(lake).unwrap_or(&b.path);
            let dest = to.join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::rename(&b.path, &dest).with_context(|| {
                format!("cannot move {} to {}", b.path.display(), dest.display())
            })?;
            Ok(dest)
        })
        .collect()
}
