//! Reading complaints for training and evaluation: labeled CSV (`title`, `body`, `label`) and
//! unlabeled CSV (`title`/`body` or the message-board columns `留言主题`/`留言详情`).

use anyhow::{Context, Result, bail};
use std::path::Path;

/// One complaint text, with its label when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub title: String,
    pub body: String,
    pub label: Option<String>,
}

fn column(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| {
        names
            .iter()
            .any(|n| h.trim().trim_start_matches('\u{feff}') == *n)
    })
}

fn read(path: &Path, need_label: bool) -> Result<Vec<Example>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let title = column(&headers, &["title", "留言主题"]);
    let Some(body) = column(&headers, &["body", "留言详情", "text", "content"]) else {
        bail!("{}: no `body` column in the header", path.display());
    };
    let label = column(&headers, &["label", "一级分类"]);
    if need_label && label.is_none() {
        bail!("{}: no `label` column in the header", path.display());
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: bad CSV record {}", path.display(), i + 2))?;
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").trim().to_string();
        let label = label.map(|_| get(label)).filter(|l| !l.is_empty());
        if need_label && label.is_none() {
            bail!("{}: line {}: empty label", path.display(), i + 2);
        }
        out.push(Example {
            title: get(title),
            body: get(Some(body)),
            label,
        });
    }
    Ok(out)
}

/// Labeled rows; every row must have a non-empty `label`.
pub fn read_labeled(path: &Path) -> Result<Vec<Example>> {
    read(path, true)
}

/// Rows whose labels (if any) are ignored.
pub fn read_unlabeled(path: &Path) -> Result<Vec<Example>> {
    let mut rows = read(path, false)?;
    for r in &mut rows {
        r.label = None;
    }
    Ok(rows)
}

/// The `id` of every row of a CSV with an `id` column, in row order; a row with an empty id is
/// named by its data row number, `#1` for the first (`duban label suggest` prints these).
pub fn read_ids(path: &Path) -> Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let Some(id) = column(&headers, &["id", "留言编号"]) else {
        bail!("{}: no `id` column in the header", path.display());
    };
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: bad CSV record {}", path.display(), i + 2))?;
        let v = rec.get(id).unwrap_or("").trim();
        out.push(if v.is_empty() {
            format!("#{}", i + 1)
        } else {
            v.to_string()
        });
    }
    Ok(out)
}

/// Where the shared data folder is: env `DUBAN_SHARED_DIR`, else `../shared` beside the repo.
pub fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("DUBAN_SHARED_DIR")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}
