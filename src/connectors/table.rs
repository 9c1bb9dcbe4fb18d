//! Export files as tables — CSV/TSV (UTF-8 with or without BOM, UTF-16 with BOM, GBK, GB18030) and
//! workbooks (XLSX, XLS, ODS) read into rows of cells — and the watched folder of exports,
//! committed with the line reached in each file.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::board::Fetched;
use super::{Commit, Mode, Positions, Sink, dead_letter, pause};
use crate::record::Channel;

/// Decode an export's bytes: `forced` when given, else by its BOM (UTF-8, or UTF-16 as Excel's
/// "Unicode text" writes), else UTF-8 when valid, else GB18030 (a superset of GBK). Returns the
/// text and the encoding's name.
pub fn decode_text(
    bytes: &[u8],
    forced: Option<&'static encoding_rs::Encoding>,
) -> (String, &'static str) {
    if let Some(enc) = forced {
        let (s, used, _) = enc.decode(bytes);
        return (s.into_owned(), used.name());
    }
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return (String::from_utf8_lossy(rest).into_owned(), "utf-8");
    }
    if let Some((enc, _)) = encoding_rs::Encoding::for_bom(bytes) {
        // UTF-16 with its BOM (the BOM is removed by decoding).
        let (s, used, _) = enc.decode(bytes);
        return (s.into_owned(), used.name());
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), "utf-8"),
        Err(_) => {
            let (s, _, _) = encoding_rs::GB18030.decode(bytes);
            (s.into_owned(), "gb18030")
        }
    }
}

/// Decode an export's bytes (see [`decode_text`]), detecting the encoding.
pub fn decode_export(bytes: &[u8]) -> (String, &'static str) {
    decode_text(bytes, None)
}

/// (line, cells or why the row is unreadable, raw text) of each row of a file.
pub type Table = Vec<(u64, Result<Vec<String>, String>, Vec<u8>)>;

/// How a file is read: `what` names its kind in messages (`hotline export`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    pub what: &'a str,
    /// The sheet of a workbook; default the first.
    pub sheet: Option<&'a str>,
    /// The text encoding of a CSV file; default detected.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// The cell separator of a text file; default a tab when the first line has more tabs than
    /// commas, else a comma.
    pub delimiter: Option<u8>,
}

/// File names read as workbooks (the format is told by the content: XLS, XLSX, XLSB, ODS).
const WORKBOOKS: [&str; 5] = [".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"];
/// File names read as text tables.
const TEXTS: [&str; 3] = [".csv", ".tsv", ".txt"];

fn has_suffix(name: &str, suffixes: &[&str]) -> bool {
    let lower = name.to_ascii_lowercase();
    suffixes.iter().any(|s| lower.ends_with(s))
}

/// Read a text table (`.csv`, `.tsv`, `.txt`) or a workbook (`.xlsx`, `.xls`, …; by its name)
/// into rows of cells.
pub fn read_table(name: &str, bytes: &[u8], o: ReadOptions) -> Result<Table> {
    if has_suffix(name, &WORKBOOKS) {
        workbook_rows(name, bytes, o)
    } else {
        Ok(csv_rows(name, bytes, o))
    }
}

/// The separator of a text table: tabs when its first line has more tabs than commas.
fn sniff_delimiter(text: &str) -> u8 {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.matches('\t').count() > first.matches(',').count() {
        b'\t'
    } else {
        b','
    }
}

fn csv_rows(name: &str, bytes: &[u8], o: ReadOptions) -> Table {
    let (text, _) = decode_text(bytes, o.encoding);
    let delimiter = o.delimiter.unwrap_or_else(|| sniff_delimiter(&text));
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 1;
        match rec {
            Ok(r) => {
                let raw = r.iter().collect::<Vec<_>>().join(",").into_bytes();
                out.push((line, Ok(r.iter().map(str::to_string).collect()), raw))
            }
            Err(e) => out.push((
                line,
                Err(format!("{} {name} line {line}: {e}", o.what)),
                vec![],
            )),
        }
    }
    out
}

fn workbook_rows(name: &str, bytes: &[u8], o: ReadOptions) -> Result<Table> {
    use calamine::Reader;
    let what = o.what;
    let mut wb = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .with_context(|| format!("{what} {name}: not a readable workbook (xlsx, xls, ods)"))?;
    let sheet = match o.sheet {
        Some(s) => s.to_string(),
        None => wb
            .sheet_names()
            .first()
            .cloned()
            .with_context(|| format!("{what} {name}: the workbook has no sheet"))?,
    };
    let range = wb
        .worksheet_range(&sheet)
        .with_context(|| format!("{what} {name}: cannot read sheet {sheet}"))?;
    let mut out = Vec::new();
    for (i, row) in range.rows().enumerate() {
        // Dates come out as Excel serial days (45681.375): a profile reads them with `excel`.
        let cells: Vec<String> = row.iter().map(|c| c.to_string()).collect();
        let raw = cells.join(",").into_bytes();
        out.push((i as u64 + 1, Ok(cells), raw));
    }
    Ok(out)
}

/// An export file is read once complete: a data file name (a text table or a workbook), not a
/// hidden or temporary name, unmodified for `settle`.
pub fn is_ready(name: &str, age: Duration, settle: Duration) -> Option<bool> {
    let data = has_suffix(name, &WORKBOOKS) || has_suffix(name, &TEXTS);
    if !data || name.starts_with('.') || name.starts_with("~$") {
        return None;
    }
    Some(age >= settle)
}

/// The exports position: files done, and the file in progress with its last committed line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportsPosition {
    pub done: BTreeSet<String>,
    pub file: Option<String>,
    pub line: u64,
}

impl ExportsPosition {
    pub fn from_position(p: Option<&Value>) -> ExportsPosition {
        let Some(p) = p else {
            return ExportsPosition::default();
        };
        ExportsPosition {
            done: p
                .get("done")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            file: p.get("file").and_then(Value::as_str).map(str::to_string),
            line: p.get("line").and_then(Value::as_u64).unwrap_or(0),
        }
    }
    pub fn to_position(&self) -> Value {
        json!({"done": self.done, "file": self.file, "line": self.line})
    }

    /// The line already committed in file `name` (0 when it is not the file in progress).
    pub fn resume_line(&self, name: &str) -> u64 {
        if self.file.as_deref() == Some(name) {
            self.line
        } else {
            0
        }
    }

    fn finish(&mut self, name: &str) {
        self.done.insert(name.to_string());
        self.file = None;
        self.line = 0;
    }
}

/// Complete export files in the folder (oldest name first), and how many are not yet settled.
/// A missing folder is empty.
pub fn list_exports(dir: &Path, settle: Duration) -> Result<(Vec<PathBuf>, usize)> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let now = SystemTime::now();
    let mut files = Vec::new();
    let mut unsettled = 0;
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let age = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        match is_ready(&name, age, settle) {
            Some(true) => files.push(path),
            Some(false) => unsettled += 1,
            None => {}
        }
    }
    files.sort();
    Ok((files, unsettled))
}

/// Commit the rows of file `name` (records or dead letters, by line) `per_commit` at a time,
/// each commit with the line reached; the last one marks the file done. Rows at or before
/// the committed line (a restart) were sent before and are skipped.
pub async fn commit_rows(
    sink: &Sink,
    name: &str,
    mut rows: Vec<(u64, Fetched)>,
    at: &mut ExportsPosition,
    per_commit: usize,
) -> Result<()> {
    let skip_to = at.resume_line(name);
    rows.retain(|(l, _)| *l > skip_to);
    rows.sort_by_key(|(l, _)| *l);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut c = Commit::default();
        let mut last = at.line;
        for (line, f) in rows.by_ref().take(per_commit.max(1)) {
            last = line;
            match f {
                Fetched::Record(e) => c.records.push(e),
                Fetched::Dead(d) => c.dead.push(d),
            }
        }
        if rows.peek().is_none() {
            // The file's last rows: the file is done in the same transaction.
            at.finish(name);
        } else {
            at.file = Some(name.to_string());
            at.line = last;
        }
        c.positions.push((String::new(), at.to_position()));
        sink.commit(c).await?;
    }
    if !at.done.contains(name) {
        at.finish(name);
        sink.commit(Commit {
            positions: vec![(String::new(), at.to_position())],
            ..Commit::default()
        })
        .await?;
    }
    Ok(())
}

/// Commit a file that cannot be read at all as one dead letter, and mark it done.
pub async fn commit_unreadable(
    sink: &Sink,
    channel: Channel,
    name: &str,
    why: &anyhow::Error,
    bytes: &[u8],
    at: &mut ExportsPosition,
) -> Result<()> {
    at.finish(name);
    sink.metrics.received(1, bytes.len());
    sink.commit(Commit {
        dead: vec![dead_letter(channel, format!("{why:#}"), name, bytes)],
        positions: vec![(String::new(), at.to_position())],
        ..Commit::default()
    })
    .await
}

/// A reader of one export file into commits.
pub trait ExportReader {
    fn read(
        &self,
        sink: &Sink,
        path: &Path,
        name: &str,
        at: &mut ExportsPosition,
    ) -> impl Future<Output = Result<()>>;
}

/// Watch `dir`: read every settled file not done yet, oldest name first. In `Drain` mode stop
/// once every file is read; else look again every `poll_secs`.
pub async fn follow_folder<R: ExportReader>(
    reader: &R,
    dir: &Path,
    settle_secs: u64,
    poll_secs: u64,
    sink: &Sink,
    pos: Positions,
    mode: Mode,
) -> Result<()> {
    let mut at = ExportsPosition::from_position(pos.get(""));
    let settle = Duration::from_secs(settle_secs);
    loop {
        let (ready, unsettled) = list_exports(dir, settle)
            .with_context(|| format!("{}: the export folder", sink.name))?;
        for path in ready {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if at.done.contains(&name) {
                continue;
            }
            reader.read(sink, &path, &name, &mut at).await?;
        }
        if unsettled == 0 && mode == Mode::Drain {
            return Ok(());
        }
        if mode == Mode::Drain {
            // Files still being written: look again once they may have settled.
            tokio::time::sleep(settle.max(Duration::from_millis(200)) / 2).await;
        } else {
            pause(poll_secs).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_settled_data_files_are_ready() {
        let s = Duration::from_secs(2);
        let ready = |n: &str, ms: u64| is_ready(n, Duration::from_millis(ms), s);
        assert_eq!(ready("hotline-1.csv", 5000), Some(true));
        assert_eq!(ready("hotline-1.XLSX", 5000), Some(true));
        assert_eq!(ready("2019年工单.xls", 5000), Some(true));
        assert_eq!(ready("unicode-text.txt", 5000), Some(true));
        assert_eq!(ready("notes.docx", 5000), None);
        assert_eq!(ready("hotline-1.csv", 300), Some(false));
        assert_eq!(ready(".hotline-1.csv.tmp", 5000), None);
        assert_eq!(ready("hotline-1.csv.part", 5000), None);
        assert_eq!(ready(".hidden.csv", 5000), None);
        assert_eq!(ready("~$open.xlsx", 5000), None);
    }

    #[test]
    fn decodes_utf8_bom_gbk_and_a_forced_encoding() {
        let text = "工单编号,内容\n1,路灯\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(decode_export(&gbk), (text.to_string(), "gb18030"));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(decode_export(&bom).0, text);
        assert_eq!(decode_text(&gbk, Some(encoding_rs::GBK)).0, text);
        let t = read_table("a.csv", &gbk, ReadOptions::default()).expect("reads");
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[1].1.as_ref().expect("row"),
            &vec!["1".to_string(), "路灯".to_string()]
        );
    }
}
