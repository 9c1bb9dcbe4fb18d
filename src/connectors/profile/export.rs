//! Export-file sources of a connector profile: each file's header row (found below any title
//! rows) picks the profile's variant that fits it, and every row is mapped by column name.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::path::Path;

use super::http::to_fetched;
use super::{Profile, Variant};
use crate::connectors::board::Fetched;
use crate::connectors::table::{
    ExportReader, ExportsPosition, ReadOptions, Table, commit_rows, commit_unreadable,
    follow_folder, read_table,
};
use crate::connectors::{Mode, Positions, Sink, dead_letter};

/// Does a header row fit `v`: every one of its `columns`, or else a column for each required
/// field?
fn fits(v: &Variant, headers: &[String]) -> bool {
    let has = |c: &str| headers.iter().any(|h| h == c);
    if !v.columns.is_empty() {
        return v.columns.iter().all(|c| has(c));
    }
    v.mapping
        .required_keys()
        .iter()
        .all(|keys| keys.is_empty() || keys.iter().any(|k| has(k)))
}

fn clean(h: &str) -> String {
    h.trim().trim_start_matches('\u{feff}').trim().to_string()
}

/// The header row (its index in `table`) and the variant it picks.
fn header<'a>(p: &'a Profile, table: &Table, scan: usize) -> Option<(usize, &'a Variant)> {
    table
        .iter()
        .take(scan)
        .enumerate()
        .find_map(|(i, (_, row, _))| {
            let cells: Vec<String> = row.as_ref().ok()?.iter().map(|c| clean(c)).collect();
            p.variants.iter().find(|v| fits(v, &cells)).map(|v| (i, v))
        })
}

/// One file's rows, mapped: (line, record or dead letter). An error when no header row fits.
pub fn rows(p: &Profile, name: &str, bytes: &[u8]) -> Result<Vec<(u64, Fetched)>> {
    let spec = p
        .export
        .as_ref()
        .context("an export profile needs [export]")?;
    let what = format!("{} export", p.name);
    let opts = ReadOptions {
        what: &what,
        sheet: spec.sheet.as_deref(),
        encoding: spec.encoding,
        delimiter: spec.delimiter,
    };
    let table = read_table(name, bytes, opts)?;
    let Some((at, variant)) = header(p, &table, spec.header_scan_rows) else {
        let names: Vec<&str> = p.variants.iter().map(|v| v.name.as_str()).collect();
        bail!(
            "{what} {name}: no header row in the first {} rows fits a layout of the profile ({})",
            spec.header_scan_rows,
            names.join(", ")
        );
    };
    let headers: Vec<String> = match &table[at].1 {
        Ok(cells) => cells.iter().map(|c| clean(c)).collect(),
        Err(_) => Vec::new(),
    };
    let mut out = Vec::new();
    for (line, row, raw) in table.into_iter().skip(at + 1) {
        let origin = format!("{name}:{line}");
        let cells = match row {
            Ok(c) if c.iter().all(|c| c.trim().is_empty()) => continue,
            Ok(c)
                if c.len() > headers.len()
                    && c[headers.len()..].iter().any(|x| !x.trim().is_empty()) =>
            {
                let why = format!(
                    "{what} {name} line {line}: {} fields, the header has {}",
                    c.len(),
                    headers.len()
                );
                out.push((
                    line,
                    Fetched::Dead(dead_letter(p.channel, why, &origin, &raw)),
                ));
                continue;
            }
            Ok(c) => c,
            Err(why) => {
                out.push((
                    line,
                    Fetched::Dead(dead_letter(p.channel, why, &origin, &raw)),
                ));
                continue;
            }
        };
        // Cells by column name; a shorter row leaves its last columns empty; a repeated
        // header keeps its first column.
        let mut doc = Map::new();
        for (h, v) in headers.iter().zip(cells.iter()) {
            if !h.is_empty() && !doc.contains_key(h) {
                doc.insert(h.clone(), Value::String(v.clone()));
            }
        }
        let id = format!("{name}:{line}");
        let f = to_fetched(p, &variant.mapping, &id, Value::Object(doc), &origin);
        out.push((line, f));
    }
    Ok(out)
}

impl ExportReader for Profile {
    async fn read(
        &self,
        sink: &Sink,
        path: &Path,
        name: &str,
        at: &mut ExportsPosition,
    ) -> Result<()> {
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("{}: reading {}", self.name, path.display()))?;
        match rows(self, name, &bytes) {
            Ok(items) => {
                sink.metrics.received(items.len(), bytes.len());
                let per = self.export.as_ref().map_or(500, |e| e.rows_per_commit);
                commit_rows(sink, name, items, at, per).await
            }
            Err(e) => commit_unreadable(sink, self.channel, name, &e, &bytes, at).await,
        }
    }
}

/// Run an export profile: read every settled file of its folder once, in name order.
pub async fn run(p: &Profile, sink: &Sink, pos: Positions, mode: Mode) -> Result<()> {
    let spec = p
        .export
        .as_ref()
        .context("an export profile needs [export]")?;
    let dir = spec
        .dir
        .as_ref()
        .with_context(|| format!("{}: [export] dir is not set", p.name))?;
    follow_folder(
        p,
        dir,
        spec.settle_secs,
        p.poll_interval_secs,
        sink,
        pos,
        mode,
    )
    .await
}
